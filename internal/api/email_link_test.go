package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// fakeLinks answers every call with err and records the last request.
type fakeLinks struct {
	err  error
	req  flow.EmailLinkRequest
	link flow.EmailLink
}

func (f *fakeLinks) Create(_ context.Context, req flow.EmailLinkRequest) error {
	f.req = req
	return f.err
}

func (f *fakeLinks) Status(context.Context, string) (flow.EmailLink, error) { return f.link, f.err }
func (f *fakeLinks) Withdraw(context.Context, string) error                 { return f.err }
func (f *fakeLinks) Verify(context.Context, string) (flow.EmailLink, error) { return f.link, f.err }

type linkFixture struct {
	*fixture
	mux   http.Handler
	links *fakeLinks
	key   testdpop.Key
}

func newLinkFixture(t *testing.T, failures limit.Failures) *linkFixture {
	f := &linkFixture{fixture: newFixture(t), links: &fakeLinks{}, key: testdpop.NewKey(t)}
	f.mux = Routes("/.mailgate", Endpoints{EmailLink: &EmailLink{
		Auth: f.auth, Origin: base, Prefix: "/.mailgate", Links: f.links, Failures: failures,
	}})
	return f
}

// do calls path as client with a DPoP-bound token and returns the status,
// the Location and the seed's error sentence or the JSON body.
func (f *linkFixture) do(t *testing.T, client, secret, method, path, body string) (int, http.Header, map[string]any) {
	t.Helper()
	tok := f.dpopToken(t, client, secret, f.key)
	r := httptest.NewRequest(method, base+path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", f.key.Proof(t, method, base+path, tok, f.now))
	w := httptest.NewRecorder()
	f.mux.ServeHTTP(w, r)
	var out map[string]any
	if w.Body.Len() > 0 {
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("answer %q is not JSON", w.Body)
		}
	}
	return w.Code, w.Header(), out
}

const hrSecret = "hr-secret-0123456789"

// TestEmailLinkCreateAnswers: each outcome of the flow in the seed's status
// and words; 500 is never the answer to what a caller or a store did.
func TestEmailLinkCreateAnswers(t *testing.T) {
	f := newLinkFixture(t, limit.Failures{})
	path := "/.mailgate/api/v1/users/u-1/email-link"
	for _, c := range []struct {
		err    error
		status int
		msg    string
	}{
		{directory.ErrNotFound, 404, "User with id: u-1 cannot be found."},
		{flow.ErrEmailLinkExists, 422, "User with id: u-1 already has an email-link."},
		{flow.ErrSignedUp, 422, "User with id: u-1 has already completed the signup."},
		{flow.ErrNotSignedUp, 422, "User with id: u-1 has not completed the signup."},
		{flow.ErrUserDisabled, 422, "User with id: u-1 is disabled."},
		{errors.Join(flow.ErrDelivery, errors.New("550")), 503, "the email could not be sent"},
		{errors.New("redis: connection refused"), 503, "no email was sent"},
	} {
		f.links.err = c.err
		status, _, out := f.do(t, "hr", hrSecret, "POST", path, `{"type":"invitation"}`)
		if msg, _ := out["error"].(string); status != c.status || !strings.Contains(msg, c.msg) {
			t.Errorf("%v: %d %v, want %d %q", c.err, status, out, c.status, c.msg)
		}
	}

	f.links.err = nil
	status, h, _ := f.do(t, "hr", hrSecret, "POST", path, `{"type":"invitation","urlPrefix":"https://hr.example.com/?invitation=","locale":"nl-be"}`)
	if status != 201 || h.Get("Location") != base+path {
		t.Fatalf("create: %d %v", status, h)
	}
	want := flow.EmailLinkRequest{UserID: "u-1", Type: flow.Invitation, URLPrefix: "https://hr.example.com/?invitation=", Locale: "nl-BE", Sender: "The HR Desk"}
	if f.links.req != want {
		t.Errorf("the flow was asked for %+v, want %+v", f.links.req, want)
	}
	if _, _, _ = f.do(t, "hr", hrSecret, "POST", path, `{"type":"passwordReset"}`); f.links.req.Locale != "" {
		t.Errorf("an omitted locale became %q, not the user's", f.links.req.Locale)
	}

	for _, body := range []string{`{"type":"invitation","urlPrefix":"https://hr.example.com/"}`, `{"type":"Invitation"}`, `{"type":"invitation"} {}`, `[]`} {
		if status, _, out := f.do(t, "hr", hrSecret, "POST", path, body); status != 422 || !strings.HasPrefix(out["error"].(string), "Invalid request: ") {
			t.Errorf("%s: %d %v, want 422", body, status, out)
		}
	}
	if status, _, out := f.do(t, "shop", "shop-secret-0123456789", "POST", path, `{"type":"invitation"}`); status != 403 || out["error"] == nil {
		t.Errorf("a client without the scope: %d %v", status, out)
	}
}

// TestEmailLinkShowWithdrawVerify: GET, DELETE and verify in the seed's
// shape, and wrong tickets counted before the lookup.
func TestEmailLinkShowWithdrawVerify(t *testing.T) {
	store, err := ticket.NewMemory(ticket.MinMemory, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	f := newLinkFixture(t, limit.Failures{Rule: limit.Rule{Max: 2, Window: time.Minute}, Store: store, Name: "failures_per_ip"})
	path := "/.mailgate/api/v1/users/u-1/email-link"
	expires := time.Date(2026, 8, 8, 10, 0, 0, 5, time.UTC)
	f.links.link = flow.EmailLink{UserID: "u-1", Type: flow.PasswordReset, Expires: expires}
	status, _, out := f.do(t, "hr", hrSecret, "GET", path, "")
	if status != 200 || out["type"] != "passwordReset" || out["userId"] != "u-1" || out["expiresAt"] != "2026-08-08T10:00:00Z" {
		t.Errorf("GET: %d %v", status, out)
	}
	if status, _, _ := f.do(t, "hr", hrSecret, "DELETE", path, ""); status != 204 {
		t.Errorf("DELETE: %d", status)
	}
	f.links.err = flow.ErrNoEmailLink
	for _, m := range []string{"GET", "DELETE"} {
		if status, _, out := f.do(t, "hr", hrSecret, m, path, ""); status != 404 || out["error"] != "User with id: u-1 has no email-link." {
			t.Errorf("%s without a link: %d %v", m, status, out)
		}
	}

	verify := "/.mailgate/api/v1/email-link/verify"
	f.links.err = nil
	if status, _, out := f.do(t, "hr", hrSecret, "POST", verify, `{"ticket":"t"}`); status != 200 || out["userId"] != "u-1" || out["type"] != "passwordReset" {
		t.Errorf("verify: %d %v", status, out)
	}
	f.links.err = flow.ErrLinkInvalid
	for i := range 3 {
		status, _, out := f.do(t, "hr", hrSecret, "POST", verify, `{"ticket":"t"}`)
		want, msg := 404, ticketNotFound
		if i == 2 {
			want, msg = 429, "Too many tickets that could not be found (failures_per_ip); try again after Retry-After seconds."
		}
		if status != want || out["error"] != msg {
			t.Errorf("wrong ticket %d: %d %v, want %d %q", i+1, status, out, want, msg)
		}
	}
}
