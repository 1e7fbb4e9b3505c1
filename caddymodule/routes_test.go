package caddymodule

import (
	"encoding/json"
	"net/http"
	"testing"
)

// TestEachContractAnswersItsOwnPaths: under the prefix a request reaches
// the contract whose path it names, for any method, and gets that
// contract's own 405; a path no contract has is the pages' 404.
func TestEachContractAnswersItsOwnPaths(t *testing.T) {
	e := startCaddyWith(t, func(*env) siteConfig { return siteConfig{Mailgate: projectsConfig} })
	for _, c := range []struct {
		method, path string
		status       int
		// key and value of the answer's JSON that says whose it is.
		key, value string
	}{
		{http.MethodGet, "/.mailgate/oauth/token", 405, "error", "invalid_request"},
		{http.MethodGet, "/.mailgate/api/v1/login-email", 405, "error", "invalid_input"},
		{http.MethodGet, "/.mailgate/api/v1/magic-link", 405, "message", "Use POST"},
		{http.MethodPost, "/.mailgate/.well-known/openid-configuration", 405, "error", "invalid_request"},
		{http.MethodGet, "/.mailgate/.well-known/openid-configuration", 200, "issuer", e.base + "/.mailgate"},
		{http.MethodGet, "/.mailgate/login/email/request?projectId=" + gameProject, 405, "", ""},
		{http.MethodPost, "/.mailgate/users/me?projectId=" + gameProject, 405, "", ""},
		{http.MethodPost, "/.mailgate/jwks.json", 405, "", ""},
		{http.MethodGet, "/.mailgate/api/v1/nothing", 404, "", ""},
	} {
		req, _ := http.NewRequest(c.method, e.base+c.path, nil)
		r := e.browser(t).do(req)
		var out map[string]any
		_ = json.Unmarshal([]byte(r.body), &out)
		if r.StatusCode != c.status {
			t.Errorf("%s %s: %s %s", c.method, c.path, r.Status, r.body)
			continue
		}
		switch {
		case c.key != "" && out[c.key] != c.value:
			t.Errorf("%s %s: %s, want %s %q", c.method, c.path, r.body, c.key, c.value)
		case c.key == "" && c.status == 405 && r.Header.Get("Content-Type") == "application/json" && codeError(t, r, out) != "method_not_allowed":
			t.Errorf("%s %s: %s, want seed 003's method_not_allowed", c.method, c.path, r.body)
		}
	}
}
