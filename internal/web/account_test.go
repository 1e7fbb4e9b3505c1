package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/directory"
)

// state on the account pages is only ever a way back to this site.
func TestReturnOfStateIsSameOriginOnly(t *testing.T) {
	h := &Handler{Forms: Forms{Origin: "https://app.example.com"}}
	for state, want := range map[string]string{
		"/orders?id=7":                          "/orders?id=7",
		"https://app.example.com/orders?id=7":   "/orders?id=7",
		"https://app.example.com":               "",
		"https://app.example.com.evil.example/": "",
		"https://evil.example/":                 "",
		"//evil.example/":                       "",
		"/\\evil.example":                       "",
		"javascript:alert(1)":                   "",
		"":                                      "",
	} {
		if got := h.returnOf(state); got != want {
			t.Errorf("returnOf(%q) = %q, want %q", state, got, want)
		}
	}
}

// The account pages render in every locale with every text filled in, and
// escape what a user record holds.
func TestAccountPagesRenderSafely(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	hostile := `"><script>alert(1)</script>`
	u := directory.User{ID: "u1", Email: hostile + "@x.org", Username: "dana", Name: hostile, Status: directory.StatusInvited}
	for locale := range catalogues {
		for page, d := range map[string]Data{
			PageNoAccess:  {Email: hostile, Return: "/a?b=1"},
			PageForbidden: {Email: hostile},
			PageProfile: {Next: "/a?b=1", Error: "current_password_wrong", Profile: &ProfileData{
				User: u, Password: true, Notice: "password_changed",
				Sessions: []ListedSession{{Agent: hostile, Method: "method_link", Issued: "x", Expires: "y", Current: true}, {Method: "method_other"}},
			}},
			PageDashboard: {Email: hostile, Dashboard: &DashboardData{
				Query: hostile, Users: []directory.User{u, {ID: "u2", Email: "b@x.org", Status: directory.StatusActive}, {ID: "u3", Email: "c@x.org", Status: directory.StatusDisabled}},
				Matched: 3, Total: 3, Notice: "dash_link_exists", Failed: true,
				Recent: []RecentSignIn{{Email: hostile, Agent: hostile, Method: "method_password", Issued: "x"}, {Method: "method_other"}},
			}},
		} {
			d.SiteName, d.Prefix, d.FormToken, d.Locale = "Example", "/.mailgate", "tok", locale
			rec := httptest.NewRecorder()
			if err := p.Render(rec, http.StatusOK, page, d); err != nil {
				t.Fatalf("%s in %s: %v", page, locale, err)
			}
			body := rec.Body.String()
			if strings.Contains(body, "<script>") || strings.Contains(body, "%!") || strings.Contains(body, "<no value>") {
				t.Errorf("%s in %s: unescaped input or a missing text:\n%s", page, locale, body)
			}
			if !strings.HasPrefix(rec.Header().Get("Content-Security-Policy"), CSP) {
				t.Errorf("%s: CSP %q", page, rec.Header().Get("Content-Security-Policy"))
			}
		}
	}
}
