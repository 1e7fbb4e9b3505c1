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

// passwordSteps records the password login hands the steps.
type passwordSteps struct {
	fakeSteps
	got *string
}

func (s passwordSteps) Start(_ context.Context, _ flow.Requester, _ directory.User, pw string, st flow.SignInState) (flow.SignInState, string, error) {
	*s.got = pw
	return st, "", nil
}

// login hands the steps the password it checked, as typed, so that the
// steps decide whether it is long enough to be the only factor
// (flow.SignInSteps.Start, tested there); nothing the adapter could forget
// to set decides it.
func TestLoginHandsTheStepsThePassword(t *testing.T) {
	var got string
	h := Routes("/.mailgate", nil, &SignIn{
		Clients:     map[string]*SignInClient{"shop": {ID: "shop", SignIn: true, CORSOrigins: []string{"https://shop.example.com"}}},
		Credentials: anyPassword{},
		Sessions:    fakeIssuer{},
		Steps:       passwordSteps{got: &got},
		Tenant:      "default",
		ClientIP:    func(*http.Request) string { return "192.0.2.1" },
	})
	const pw = "Kx9#e\u0301qqqqqqqqq"
	body, _ := json.Marshal(map[string]string{"username": "alice", "password": pw, "clientId": "shop"})
	if w, _ := signIn(t, h, string(body)); w.Code != http.StatusOK || got != pw {
		t.Fatalf("%d %s; the steps got %q, want %q", w.Code, w.Body, got, pw)
	}
}
