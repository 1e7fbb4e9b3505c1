package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Each endpoint answers a method it does not serve in its own contract's
// shape, with Allow and the caller's correlation id where the contract
// echoes it; a path none of them serves is left to the next contract.
func TestRoutesAnswerOtherMethodsInTheirContractsShape(t *testing.T) {
	mux := Routes("/.mailgate", Endpoints{Discovery: &Discovery{Issuer: base + "/.mailgate"}})
	for _, c := range []struct {
		method, path, allow string
		key, code           string
		correlated          bool
	}{
		{http.MethodPost, "/.well-known/openid-configuration", "GET, HEAD", "error", "invalid_request", false},
		{http.MethodDelete, "/.well-known/oauth-authorization-server", "GET, HEAD", "error", "invalid_request", false},
		{http.MethodGet, "/oauth/token", "POST", "error", "invalid_request", false},
		{http.MethodGet, "/api/v1/login-email", "POST", "error", "invalid_input", true},
		{http.MethodPut, "/api/v1/magic-link", "POST", "message", "Use POST", true},
	} {
		r := httptest.NewRequest(c.method, base+"/.mailgate"+c.path, nil)
		r.Header.Set("X-Request-ID", "req-1")
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, r)
		var body map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &body)
		if w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != c.allow || body[c.key] != c.code {
			t.Errorf("%s %s: %d, Allow %q, %s", c.method, c.path, w.Code, w.Header().Get("Allow"), w.Body)
		}
		if got := w.Header().Get("X-Request-ID") == "req-1"; got != c.correlated {
			t.Errorf("%s %s: X-Request-ID echoed %v, want %v", c.method, c.path, got, c.correlated)
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(method, base+"/.mailgate/.well-known/openid-configuration", nil))
		if w.Code != http.StatusOK {
			t.Errorf("%s discovery: %d", method, w.Code)
		}
	}
	for _, path := range []string{"/login", "/api/v1/login-email/", "/users/me", "/api/v1"} {
		if _, pattern := mux.Handler(httptest.NewRequest(http.MethodPost, base+"/.mailgate"+path, nil)); pattern != "" {
			t.Errorf("%s: routed to %q, want no pattern", path, pattern)
		}
	}
}
