package clientapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const (
	base         = "https://app.example.com"
	gameProject  = "5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77"
	twoCallbacks = "0f6f1a43-2b1a-4b6f-8d0e-5a4b1c2d3e4f"
	gameOrigin   = "https://game.example.com"
	gameCallback = "https://game.example.com/auth/callback"
	alice        = `{"email":"alice@example.com"}`
)

type answer struct {
	*httptest.ResponseRecorder
	out map[string]any
}

// call is a call to the API: method, path under the prefix with its query,
// a JSON body, and headers in pairs.
func call(t *testing.T, mux http.Handler, method, pathQuery, body string, hdr ...string) answer {
	t.Helper()
	req := httptest.NewRequest(method, base+"/.mailgate"+pathQuery, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, req)
	a := answer{ResponseRecorder: w}
	if w.Header().Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(w.Body.Bytes(), &a.out); err != nil {
			t.Fatalf("%s %s: body %q: %v", method, pathQuery, w.Body, err)
		}
	}
	return a
}

// code is the error code of an answer in the API's shape.
func (a answer) code(t *testing.T) string {
	t.Helper()
	e, ok := a.out["error"].(map[string]any)
	if !ok || e["description"] == "" {
		t.Fatalf("%d: not the API's error shape: %s", a.Code, a.Body)
	}
	code, _ := e["code"].(string)
	return code
}

// The contract's 400, 404, 405 and 422, each before the flow is asked for
// anything but what only it can tell (a valid address, the payload bound).
func TestStartRefusesWhatTheContractRefuses(t *testing.T) {
	mux, codes := newAPI()
	for _, c := range []struct {
		name, query, body string
		status            int
		code              string
	}{
		{"no projectId", "", alice, 400, "invalid_project_id"},
		{"projectId not a UUID", "?projectId=game", alice, 400, "invalid_project_id"},
		{"unknown project", "?projectId=00000000-0000-4000-8000-000000000000", alice, 404, "project_not_found"},
		{"not JSON", "?projectId=" + gameProject, `{"email":`, 400, "bad_request"},
		{"an unknown field", "?projectId=" + gameProject, `{"email":"alice@example.com","mail":"x"}`, 422, "unknown_field"},
		{"email of the wrong type", "?projectId=" + gameProject, `{"email":42}`, 422, "invalid_field"},
		{"no email", "?projectId=" + gameProject, `{}`, 422, "invalid_email"},
		{"email over 255 characters", "?projectId=" + gameProject, `{"email":"` + strings.Repeat("a", 250) + `@example.com"}`, 422, "invalid_email"},
		{"email not an address", "?projectId=" + gameProject, `{"email":"alice"}`, 422, "invalid_email"},
		{"login_url not a callback", "?projectId=" + gameProject + "&login_url=https://evil.example/cb", alice, 422, "invalid_login_url"},
		{"login_url a prefix of a callback", "?projectId=" + gameProject + "&login_url=https://game.example.com/auth", alice, 422, "invalid_login_url"},
		{"no login_url with two callbacks", "?projectId=" + twoCallbacks, alice, 422, "invalid_login_url"},
		{"send_link without link_url", "?projectId=" + gameProject, `{"email":"alice@example.com","send_link":true}`, 422, "invalid_link_url"},
		{"link_url not a callback", "?projectId=" + gameProject, `{"email":"alice@example.com","send_link":true,"link_url":"https://evil.example/"}`, 422, "invalid_link_url"},
		{"payload without custom_payload", "?projectId=" + twoCallbacks + "&login_url=https://a.example.com/cb&payload=x", alice, 422, "payload_not_allowed"},
		{"payload over the bound", "?projectId=" + gameProject + "&payload=" + strings.Repeat("x", 2049), alice, 422, "payload_too_long"},
		{"with_logout neither 0 nor 1", "?projectId=" + gameProject + "&with_logout=yes", alice, 422, "invalid_with_logout"},
	} {
		a := call(t, mux, http.MethodPost, "/login/email/request"+c.query, c.body)
		if a.Code != c.status || a.code(t) != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, a.Code, a.Body, c.status, c.code)
		}
	}
	if len(codes.started) != 0 {
		t.Fatalf("refused requests started %d logins", len(codes.started))
	}
	// Two callbacks and one named: accepted, and that one is where the
	// login ends.
	if a := call(t, mux, http.MethodPost, "/login/email/request?projectId="+twoCallbacks+"&login_url=https://b.example.com/cb", alice); a.Code != http.StatusOK {
		t.Errorf("login_url one of two callbacks: %d %s", a.Code, a.Body)
	}
	if len(codes.started) != 1 || codes.started[0].LoginURL != "https://b.example.com/cb" {
		t.Errorf("started %+v", codes.started)
	}
	if a := call(t, mux, http.MethodGet, "/login/email/request?projectId="+gameProject, ""); a.Code != http.StatusMethodNotAllowed || a.code(t) != "method_not_allowed" || a.Header().Get("Allow") != "POST, OPTIONS" {
		t.Errorf("GET: %d %s %v", a.Code, a.Body, a.Header())
	}
	if a := call(t, mux, http.MethodHead, "/login/email/request/code?projectId="+gameProject, ""); a.Code != http.StatusMethodNotAllowed {
		t.Errorf("HEAD of a GET call: %d", a.Code)
	}
}

// CORS answers the project's origins only, and exposes what a page must
// read.
func TestCORSForTheProjectsOriginsOnly(t *testing.T) {
	mux, codes := newAPI()
	pre := func(path, origin, method, headers string) answer {
		return call(t, mux, http.MethodOptions, path+"?projectId="+gameProject, "",
			"Origin", origin, "Access-Control-Request-Method", method, "Access-Control-Request-Headers", headers)
	}
	if a := pre("/login/email/request", gameOrigin, "POST", "content-type"); a.Code != http.StatusNoContent || a.Header().Get("Access-Control-Allow-Origin") != gameOrigin ||
		!strings.Contains(a.Header().Get("Access-Control-Allow-Methods"), "POST") || !strings.Contains(strings.ToLower(a.Header().Get("Access-Control-Allow-Headers")), "content-type") {
		t.Fatalf("preflight from the project's origin: %d %v", a.Code, a.Header())
	}
	if a := pre("/login/email/request", "https://evil.example", "POST", "content-type"); a.Code == http.StatusNoContent || a.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin: %d %v", a.Code, a.Header())
	}
	a := call(t, mux, http.MethodPost, "/login/email/request?projectId="+gameProject, alice, "Origin", gameOrigin)
	if a.Header().Get("Access-Control-Allow-Origin") != gameOrigin || !strings.Contains(a.Header().Get("Vary"), "Origin") {
		t.Fatalf("an answer to the project's origin: %v", a.Header())
	}
	if exposed := a.Header().Get("Access-Control-Expose-Headers"); !strings.Contains(exposed, "Retry-After") || !strings.Contains(exposed, "WWW-Authenticate") {
		t.Fatalf("an answer to the project's origin hides Retry-After or WWW-Authenticate: %v", a.Header())
	}
	a = call(t, mux, http.MethodPost, "/login/email/request?projectId="+gameProject, alice, "Origin", "https://evil.example")
	if a.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("an answer to another origin carries CORS: %v", a.Header())
	}
	// /users/me takes the token in Authorization, which a preflight must
	// allow.
	if a := pre("/users/me", gameOrigin, "GET", "authorization"); a.Code != http.StatusNoContent || !strings.Contains(strings.ToLower(a.Header().Get("Access-Control-Allow-Headers")), "authorization") {
		t.Fatalf("preflight for /users/me with Authorization: %d %v", a.Code, a.Header())
	}
	// A "simple" request needs no preflight: the API takes JSON only, so
	// another site's page cannot start logins without one.
	before := len(codes.started)
	plain := httptest.NewRequest(http.MethodPost, base+"/.mailgate/login/email/request?projectId="+gameProject, strings.NewReader(alice))
	plain.Header.Set("Content-Type", "text/plain")
	plain.Header.Set("Origin", "https://evil.example")
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, plain)
	if w.Code != http.StatusBadRequest || len(codes.started) != before {
		t.Fatalf("a text/plain start: %d %s, %d logins started", w.Code, w.Body, len(codes.started)-before)
	}
}
