package clientapi

import (
	"context"
	"net/http"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// fakeCodes is the code flow as far as the API's checks need it: it reads
// the address and bounds the payload as the real one does, and remembers
// each login it started.
type fakeCodes struct{ started []flow.CodeRequest }

func (f *fakeCodes) Start(_ context.Context, r flow.CodeRequest) (string, error) {
	if _, err := directory.NormalizeEmail(r.Email); err != nil {
		return "", err
	}
	if len(r.Payload) > flow.MaxPayload {
		return "", &flow.TooLongError{Field: "payload", Max: flow.MaxPayload}
	}
	f.started = append(f.started, r)
	return "operation", nil
}

func (f *fakeCodes) Complete(context.Context, string, string, string, string) (flow.CodeLogin, error) {
	return flow.CodeLogin{}, flow.ErrCodeExpired
}

func (f *fakeCodes) Code(context.Context, string, string, string) (string, error) {
	return "", flow.ErrCodeExpired
}

// newAPI mounts the API over a fake flow, with the projects of
// caddymodule's tests: one with one callback URL, CORS and custom payloads,
// one with two callback URLs and neither.
func newAPI() (*http.ServeMux, *fakeCodes) {
	codes := &fakeCodes{}
	projects := Projects{
		gameProject: {
			Project:      flow.Project{ID: gameProject, CustomPayload: true, TokenTTL: time.Hour},
			Name:         "The Game",
			CallbackURLs: []string{gameCallback},
			CORSOrigins:  []string{gameOrigin},
		},
		twoCallbacks: {
			Project:      flow.Project{ID: twoCallbacks, TokenTTL: time.Hour},
			Name:         twoCallbacks,
			CallbackURLs: []string{"https://a.example.com/cb", "https://b.example.com/cb"},
		},
	}
	return Routes("/.mailgate", &EmailCode{
		Projects: projects, Flow: codes,
		ClientIP: func(*http.Request) string { return "192.0.2.1" },
	}, nil), codes
}
