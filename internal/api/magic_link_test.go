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

	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

const magicURL = base + "/.mailgate/api/v1/magic-link"

type magicFixture struct {
	*fixture
	h     http.Handler
	links *sentLinks
	key   testdpop.Key
}

func newMagicFixture(t *testing.T) *magicFixture {
	f := &magicFixture{fixture: newFixture(t), links: &sentLinks{}, key: testdpop.NewKey(t)}
	if _, err := f.users.EnsureByEmail(context.Background(), "alice@example.com"); err != nil {
		t.Fatal(err)
	}
	f.h = &MagicLink{Auth: f.auth, URL: magicURL, Users: f.users, Links: f.links}
	return f
}

// post calls the endpoint as client, with a JSON body as the seed sends it.
func (f *magicFixture) post(t *testing.T, client, secret, body string) (int, MagicLinkResponse) {
	t.Helper()
	return f.postAs(t, client, secret, "application/json", body)
}

// postAs is post with the body sent as contentType; empty sends none.
func (f *magicFixture) postAs(t *testing.T, client, secret, contentType, body string) (int, MagicLinkResponse) {
	t.Helper()
	tok := f.dpopToken(t, client, secret, f.key)
	r := httptest.NewRequest(http.MethodPost, magicURL, strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	r.Header.Set("Authorization", "DPoP "+tok)
	r.Header.Set("DPoP", f.key.Proof(t, "POST", magicURL, tok, f.now))
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	var resp MagicLinkResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
		t.Fatalf("answer %q is not the seed's shape", w.Body)
	}
	return w.Code, resp
}

func magicBody(fields map[string]any) string {
	b := map[string]any{
		"email": "alice@example.com", "clientId": "shop", "redirectUri": "https://shop.example.com/callback",
		"scope": "open_id", "responseMode": "form_post", "responseType": "code token",
	}
	for k, v := range fields {
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
	}
	out, _ := json.Marshal(b)
	return string(out)
}

const shopSecret = "shop-secret-0123456789"

func TestMagicLinkSends(t *testing.T) {
	f := newMagicFixture(t)
	status, resp := f.post(t, "shop", shopSecret, magicBody(map[string]any{"responseType": "token code"}))
	want := MagicLinkResponse{Message: "Mail was sent successfully to provided email id with magic link", Status: "Ok", SubSystem: 5}
	if status != http.StatusOK || resp != want {
		t.Fatalf("%d %+v", status, resp)
	}
	got := f.links.login
	if got.ClientID != "shop" || got.ResponseType != "code token" || got.ResponseMode != "form_post" || got.Scope != "open_id" {
		t.Fatalf("login to mail: %+v", got)
	}
}

func TestMagicLinkErrors(t *testing.T) {
	f := newMagicFixture(t)
	const badMode = "Invalid response type or response mode"
	cases := []struct {
		name    string
		body    string
		status  int
		message string
	}{
		{"bad responseMode", magicBody(map[string]any{"responseMode": "web_message"}), 400, badMode},
		{"bad responseType", magicBody(map[string]any{"responseType": "id_token"}), 400, badMode},
		{"token in a query", magicBody(map[string]any{"responseType": "token", "responseMode": "query"}), 400, badMode},
		{"unknown user", magicBody(map[string]any{"email": "nobody@example.com"}), 404, "User is not present, Please enable user"},
		{"forceCreate without permission", magicBody(map[string]any{"email": "new@example.com", "forceCreate": true}), 404, "User is not present, Please enable user"},
		{"missing scope", magicBody(map[string]any{"scope": nil}), 400, "Invalid request: scope is required"},
		{"other client's id", magicBody(map[string]any{"clientId": "crm"}), 400, "Invalid request: clientId is not the authenticated client"},
		{"unregistered redirectUri", magicBody(map[string]any{"redirectUri": "https://evil.example/"}), 400, "Invalid request: redirectUri is not registered for this client"},
		// A typo is named, so the caller sees which field to fix.
		{"unknown field", magicBody(map[string]any{"reponseMode": "query"}), 400, `Invalid request: the body must be a JSON object with the documented fields: json: unknown field "reponseMode"`},
	}
	for _, c := range cases {
		status, resp := f.post(t, "shop", shopSecret, c.body)
		if status != c.status || resp.SubSystem != 5 || (c.message != "" && resp.Message != c.message) {
			t.Errorf("%s: %d %+v, want %d %q", c.name, status, resp, c.status, c.message)
		}
		wantStatus := map[int]string{400: "BAD REQUEST", 404: "Not Found"}[c.status]
		if resp.Status != wantStatus {
			t.Errorf("%s: status %q, want %q", c.name, resp.Status, wantStatus)
		}
	}
	if f.links.n != 0 {
		t.Fatalf("%d links sent for refused requests", f.links.n)
	}
}

// A body that is not JSON by its media type, or that goes on after the
// JSON object, is the seed's 400 BAD REQUEST, as every JSON API of mailgate
// answers it in its own shape; the link is not sent.
func TestMagicLinkRefusesOtherMediaTypesAndTrailingData(t *testing.T) {
	f := newMagicFixture(t)
	body := magicBody(nil)
	for _, c := range []struct{ name, contentType, body, message string }{
		{"no Content-Type", "", body, "Invalid request: send the body as Content-Type: application/json"},
		{"text/plain", "text/plain", body, "Invalid request: send the body as Content-Type: application/json"},
		{"a form's type", "application/x-www-form-urlencoded", body, "Invalid request: send the body as Content-Type: application/json"},
		{"a stray bracket", "application/json", body + "]", "Invalid request: the body holds data after the JSON object"},
		{"a stray brace", "application/json", body + " }", "Invalid request: the body holds data after the JSON object"},
		{"a second object", "application/json", body + `{"email":"bob@example.com"}`, "Invalid request: the body holds data after the JSON object"},
		{"text", "application/json", body + "\nhello", "Invalid request: the body holds data after the JSON object"},
	} {
		status, resp := f.postAs(t, "shop", shopSecret, c.contentType, c.body)
		if status != http.StatusBadRequest || resp.Status != "BAD REQUEST" || resp.SubSystem != 5 || resp.Message != c.message {
			t.Errorf("%s: %d %+v, want 400 BAD REQUEST %q", c.name, status, resp, c.message)
		}
	}
	if f.links.n != 0 {
		t.Fatalf("%d links sent for refused bodies", f.links.n)
	}
	// A charset parameter and trailing white space are still one JSON body.
	if status, resp := f.postAs(t, "shop", shopSecret, "application/json; charset=utf-8", body+"\r\n"); status != http.StatusOK {
		t.Fatalf("application/json; charset=utf-8: %d %+v", status, resp)
	}
}

func TestMagicLinkForceCreate(t *testing.T) {
	f := newMagicFixture(t)
	status, resp := f.post(t, "crm", "crm-secret-0123456789", magicBody(map[string]any{
		"email": "New.Person@Example.com", "clientId": "crm", "redirectUri": "https://crm.example.com/cb",
		"responseMode": "query", "responseType": "code", "forceCreate": true,
	}))
	if status != http.StatusOK {
		t.Fatalf("%d %+v", status, resp)
	}
	u, err := f.users.ByEmail(context.Background(), "new.person@example.com")
	if err != nil || f.links.user.ID != u.ID {
		t.Fatalf("forceCreate did not create the user the link goes to: %+v, %v", u, err)
	}
}

func TestMagicLinkAuthFailureInSeedShape(t *testing.T) {
	f := newMagicFixture(t)
	r := httptest.NewRequest(http.MethodPost, magicURL, strings.NewReader(magicBody(nil)))
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	var resp MagicLinkResponse
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || w.Code != 401 || resp.Status != "UNAUTHORIZED" || resp.SubSystem != 5 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "DPoP ") {
		t.Fatalf("no DPoP challenge: %v", w.Header())
	}
}

// A body missing several required fields names the first of them in the
// seed's order, the same on every call. The fields were once checked by
// ranging over a map, whose order Go randomizes, so the message changed
// from call to call.
func TestMagicLinkNamesTheFirstMissingField(t *testing.T) {
	f := newMagicFixture(t)
	body := magicBody(map[string]any{"clientId": nil, "scope": nil, "responseMode": nil, "responseType": nil})
	const want = "Invalid request: clientId is required"
	for i := 0; i < 20; i++ {
		status, resp := f.post(t, "shop", shopSecret, body)
		if status != http.StatusBadRequest || resp.Message != want || resp.Status != "BAD REQUEST" {
			t.Fatalf("call %d: %d %+v, want 400 %q", i, status, resp, want)
		}
	}
	status, resp := f.post(t, "shop", shopSecret, "{}")
	if status != http.StatusBadRequest || resp.Message != "Invalid request: email is required" {
		t.Fatalf("empty body: %d %+v", status, resp)
	}
}

// TestMagicLinkUnavailableSaysWhatFailed: the 503 blames the mail only when
// sending it failed.
func TestMagicLinkUnavailableSaysWhatFailed(t *testing.T) {
	f := newMagicFixture(t)
	for cause, msg := range map[error]string{
		fmt.Errorf("%w: smtp down", flow.ErrDelivery): "Service unavailable: the email could not be sent; try again later",
		errors.New("ticket: redis down"):              "Service unavailable: the request could not be handled now and no email was sent; try again later",
	} {
		f.links.fail = cause
		if status, resp := f.post(t, "shop", shopSecret, magicBody(nil)); status != http.StatusServiceUnavailable || resp.Message != msg {
			t.Fatalf("%v: %d %+v, want 503 saying %q", cause, status, resp, msg)
		}
	}
}
