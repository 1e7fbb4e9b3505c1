package clientapi

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// anyPassword takes every password of alice as right.
type anyPassword struct{}

func (anyPassword) Check(context.Context, flow.Requester, string, string) (directory.User, error) {
	return aliceUser, nil
}

// shortSteps stops a sign-in whose password it was told is short at
// expired_password, as flow.SignInSteps does without a second factor.
type shortSteps struct{ fakeSteps }

func (shortSteps) Start(_ context.Context, _ flow.Requester, _ directory.User, st flow.SignInState) (flow.SignInState, string, error) {
	if st.ShortPassword {
		st.Step = flow.StepExpiredPassword
		return st, "st-short", nil
	}
	return st, "", nil
}

// login tells the steps whether the typed password has the single-factor
// 15 characters, counted after NFKC: 14 with a combining accent (15
// runes typed) are short, 15 are not.
func TestLoginTellsTheStepsAShortPassword(t *testing.T) {
	h := Routes("/.mailgate", nil, &SignIn{
		Clients:     map[string]*SignInClient{"shop": {ID: "shop", SignIn: true, CORSOrigins: []string{"https://shop.example.com"}}},
		Credentials: anyPassword{},
		Sessions:    fakeIssuer{},
		Steps:       shortSteps{},
		Tenant:      "default",
		ClientIP:    func(*http.Request) string { return "192.0.2.1" },
	})
	for pw, next := range map[string]string{
		"Kx9#e\u0301qqqqqqqqq":  "expired_password",
		"Kx9#e\u0301qqqqqqqqqq": "done",
	} {
		body, _ := json.Marshal(map[string]string{"username": "alice", "password": pw, "clientId": "shop"})
		w, out := signIn(t, h, string(body))
		_, session := cookies(w)["mailgate"]
		if w.Code != http.StatusOK || out["next"] != next || session != (next == "done") {
			t.Errorf("%q: %d %s; want next %s", pw, w.Code, w.Body, next)
		}
	}
}
