package caddymodule

import (
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
)

func TestAgentLabelIsCoarse(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36":                                   "Chrome · Linux",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 Edg/131.0":                   "Edge · Windows",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1": "Safari · iOS",
		"Mozilla/5.0 (Android 14; Mobile; rv:131.0) Gecko/131.0 Firefox/131.0":                                                                    "Firefox · Android",
		"Go-http-client/1.1": "",
	} {
		if got := agentLabel(ua); got != want {
			t.Errorf("agentLabel(%q) = %q, want %q", ua, got, want)
		}
	}
}

func TestMethodOfTheEndpointThatSetTheCookie(t *testing.T) {
	for path, want := range map[string]flow.Method{
		"/link": flow.MethodLink, "/password": flow.MethodLink, "/login/code": flow.MethodCode,
		"/account/invite/": flow.MethodInvitation, "/account/pwreset/": flow.MethodPasswordReset,
		"/api/account/login": flow.MethodPassword, "/profile/password": flow.MethodPassword, "/logout": "",
		"/login/password": flow.MethodPassword, "/login/password/expired": flow.MethodPassword, "/login/password/keep": flow.MethodPassword,
	} {
		if got := methodOf(path); got != want {
			t.Errorf("methodOf(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestIsAdminByIDOrAddress(t *testing.T) {
	m := &Mailgate{Admins: []string{"Alice@Example.com", "5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77"}}
	for _, c := range []struct {
		u    directory.User
		want bool
	}{
		{directory.User{ID: "x", Email: "alice@example.com"}, true},
		{directory.User{ID: "5b7c3a1e-6c1d-4d1f-9a51-3c1f0e9a2b77", Email: "bob@example.com"}, true},
		{directory.User{ID: "y", Email: "bob@example.com"}, false},
		{directory.User{ID: "alice@example.com", Email: "eve@example.com"}, false},
	} {
		if got := m.isAdmin(c.u); got != c.want {
			t.Errorf("isAdmin(%+v) = %v", c.u, got)
		}
	}
}
