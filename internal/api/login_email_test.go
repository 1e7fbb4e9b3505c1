package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/memstorage"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

// sentLinks records what LoginEmail asked to mail.
type sentLinks struct {
	user   directory.User
	locale string
	login  flow.ClientLogin
	n      int
	fail   error
}

func (s *sentLinks) RequestForClient(_ context.Context, u directory.User, locale string, c flow.ClientLogin) error {
	if s.fail != nil {
		return s.fail
	}
	s.user, s.locale, s.login = u, locale, c
	s.n++
	return nil
}

type loginEmailFixture struct {
	*fixture
	h     http.Handler
	links *sentLinks
	alice directory.User
	key   testdpop.Key
	token string
}

func newLoginEmailFixture(t *testing.T) *loginEmailFixture {
	f := &loginEmailFixture{fixture: newFixture(t), links: &sentLinks{}, key: testdpop.NewKey(t)}
	users := directory.New(memstorage.New(), "mg", time.Now)
	var err error
	if f.alice, err = users.EnsureByEmail(context.Background(), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	f.h = EchoCorrelation(&LoginEmail{Auth: f.auth, URL: apiURL, Users: users, Links: f.links})
	f.token = f.dpopToken(t, "shop", shopSecret, f.key)
	return f
}

// post calls the endpoint as the shop client with a fresh proof.
func (f *loginEmailFixture) post(t *testing.T, body string, hdr ...string) (*httptest.ResponseRecorder, Error) {
	r := httptest.NewRequest(http.MethodPost, apiURL, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "DPoP "+f.token)
	r.Header.Set("DPoP", f.key.Proof(t, "POST", apiURL, f.token, f.now))
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	var e Error
	_ = json.Unmarshal(w.Body.Bytes(), &e)
	return w, e
}

const cb = "https://shop.example.com/callback"

func TestLoginEmailSendsTheLink(t *testing.T) {
	f := newLoginEmailFixture(t)
	w, _ := f.post(t, `{"selector":"email","email":"Alice@Example.com","redirect_uri":"`+cb+`","state":"1234","locale":"nl-be"}`,
		"X-Request-ID", "req-1", "X-Correlation-ID", "corr-1")
	if w.Code != http.StatusOK || f.links.n != 1 {
		t.Fatalf("%d %s; %d links", w.Code, w.Body, f.links.n)
	}
	if w.Header().Get("X-Request-ID") != "req-1" || w.Header().Get("X-Correlation-ID") != "corr-1" {
		t.Errorf("correlation headers not echoed: %v", w.Header())
	}
	want := flow.ClientLogin{ClientID: "shop", AppName: "shop", RedirectURI: cb, State: "1234"}
	if f.links.user.ID != f.alice.ID || f.links.locale != "nl-BE" || f.links.login != want {
		t.Fatalf("asked to mail %+v in %s for %+v", f.links.user, f.links.locale, f.links.login)
	}

	w, _ = f.post(t, `{"selector":"username","username":"`+f.alice.Username+`","redirect_uri":"`+cb+`"}`)
	if w.Code != http.StatusOK || f.links.locale != "en-GB" {
		t.Fatalf("by username: %d %s, locale %s", w.Code, w.Body, f.links.locale)
	}
}

func TestLoginEmailErrors(t *testing.T) {
	f := newLoginEmailFixture(t)
	cases := []struct {
		name, body string
		status     int
		code       string
	}{
		{"no selector", `{"email":"alice@example.com","redirect_uri":"` + cb + `"}`, 400, "selector_invalid"},
		{"unknown selector", `{"selector":"phone","redirect_uri":"` + cb + `"}`, 400, "selector_invalid"},
		{"both", `{"selector":"email","email":"alice@example.com","username":"alice","redirect_uri":"` + cb + `"}`, 400, "both_email_and_username_are_provided"},
		{"no redirect_uri", `{"selector":"email","email":"alice@example.com"}`, 400, "no_redirect_uri_provided"},
		{"foreign redirect_uri", `{"selector":"email","email":"alice@example.com","redirect_uri":"https://evil.example/cb"}`, 400, "redirect_uri_mismatch"},
		{"redirect_uri differing by a slash", `{"selector":"email","email":"alice@example.com","redirect_uri":"` + cb + `/"}`, 400, "redirect_uri_mismatch"},
		{"not JSON", `selector=email`, 400, "invalid_input"},
		{"unknown field", `{"selector":"email","email":"alice@example.com","redirect_uri":"` + cb + `","emial":"x"}`, 400, "invalid_input"},
		{"wrong type", `{"selector":"email","email":42,"redirect_uri":"` + cb + `"}`, 400, "invalid_input"},
		{"bad email", `{"selector":"email","email":"alice","redirect_uri":"` + cb + `"}`, 400, "invalid_input"},
		{"email selector without email", `{"selector":"email","redirect_uri":"` + cb + `"}`, 400, "invalid_input"},
		{"username selector without username", `{"selector":"username","redirect_uri":"` + cb + `"}`, 400, "invalid_input"},
		{"malformed locale", `{"selector":"email","email":"alice@example.com","redirect_uri":"` + cb + `","locale":"en_GB"}`, 400, "locale_invalid"},
		{"unsupported locale", `{"selector":"email","email":"alice@example.com","redirect_uri":"` + cb + `","locale":"fr-FR"}`, 400, "locale_not_supported"},
		{"plain PKCE", `{"selector":"email","email":"alice@example.com","redirect_uri":"` + cb + `","code_challenge":"abc","code_challenge_method":"plain"}`, 400, "invalid_input"},
		{"unknown email", `{"selector":"email","email":"nobody@example.com","redirect_uri":"` + cb + `"}`, 404, "account_not_found"},
		{"unknown username", `{"selector":"username","username":"nobody","redirect_uri":"` + cb + `"}`, 404, "account_not_found"},
	}
	for _, c := range cases {
		w, e := f.post(t, c.body, "X-Request-ID", "r-"+c.name)
		if w.Code != c.status || e.Code != c.code || e.Description == "" {
			t.Errorf("%s: %d %s, want %d %s", c.name, w.Code, w.Body, c.status, c.code)
		}
		if w.Header().Get("X-Request-ID") != "r-"+c.name {
			t.Errorf("%s: X-Request-ID not echoed", c.name)
		}
	}
	if f.links.n != 0 {
		t.Fatalf("%d links were sent for refused requests", f.links.n)
	}

	// Authentication failures carry the same shape and the echo too.
	r := httptest.NewRequest(http.MethodPost, apiURL, strings.NewReader(`{}`))
	r.Header.Set("X-Correlation-ID", "c-9")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	var e Error
	_ = json.Unmarshal(w.Body.Bytes(), &e)
	if w.Code != 401 || e.Code != "invalid_token" || w.Header().Get("X-Correlation-ID") != "c-9" {
		t.Fatalf("no token: %d %s %v", w.Code, w.Body, w.Header())
	}
}

// A body that is not JSON by its media type, or that goes on after the
// JSON object, is seed 000's invalid_input, and no link is sent.
func TestLoginEmailRefusesOtherMediaTypesAndTrailingData(t *testing.T) {
	f := newLoginEmailFixture(t)
	body := `{"selector":"email","email":"alice@example.com","redirect_uri":"` + cb + `"}`
	for _, c := range []struct{ name, contentType, body, hint string }{
		{"no Content-Type", "", body, "send the body as Content-Type: application/json"},
		{"text/plain", "text/plain", body, "send the body as Content-Type: application/json"},
		{"a stray bracket", "application/json", body + "]", "the body holds data after the JSON object"},
		{"a stray brace", "application/json", body + " }", "the body holds data after the JSON object"},
		{"a second object", "application/json", body + `{"selector":"username"}`, "the body holds data after the JSON object"},
		{"text", "application/json", body + " hello", "the body holds data after the JSON object"},
	} {
		w, e := f.post(t, c.body, "Content-Type", c.contentType)
		if w.Code != http.StatusBadRequest || e.Code != "invalid_input" || e.Description != c.hint {
			t.Errorf("%s: %d %s, want 400 invalid_input %q", c.name, w.Code, w.Body, c.hint)
		}
	}
	if f.links.n != 0 {
		t.Fatalf("%d links were sent for refused bodies", f.links.n)
	}
	// A charset parameter and trailing white space are still one JSON body.
	if w, _ := f.post(t, body+"\n", "Content-Type", "application/json; charset=utf-8"); w.Code != http.StatusOK || f.links.n != 1 {
		t.Fatalf("application/json; charset=utf-8: %d %s", w.Code, w.Body)
	}
}

// TestLoginEmailDeliveryFailure: a 503 says the mail was not sent only
// when sending it failed; a store that failed first is not blamed on the
// mail.
func TestLoginEmailDeliveryFailure(t *testing.T) {
	f := newLoginEmailFixture(t)
	for cause, hint := range map[error]string{
		fmt.Errorf("%w: smtp down", flow.ErrDelivery): "the email could not be sent; try again later",
		errors.New("ticket: redis down"):              "the request could not be handled now and no email was sent; try again later",
	} {
		f.links.fail = cause
		w, e := f.post(t, `{"selector":"email","email":"alice@example.com","redirect_uri":"`+cb+`"}`)
		if w.Code != http.StatusServiceUnavailable || e.Code != "temporarily_unavailable" || e.Description != hint {
			t.Fatalf("%v: %d %s, want 503 saying %q", cause, w.Code, w.Body, hint)
		}
	}
}
