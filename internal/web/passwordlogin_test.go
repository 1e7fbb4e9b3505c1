package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/password"
)

// The password sign-in's pages render in every locale, escape what was
// typed, leak no placeholder, and list a sentence for every rule a new
// password can break: a missing key would show an empty line.
func TestPasswordPagesRenderEveryRule(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	rules := []password.Rule{password.RuleTooShort, password.RuleTooLong, password.RuleNotText, password.RuleCommon,
		password.RuleContext, password.RuleRepetitive, flow.RuleSameAsExpired}
	for locale, cat := range catalogues {
		d := Data{SiteName: "Example", Prefix: "/.mailgate", FormToken: "tok", Return: "/a?b=1", Secret: "state",
			Username: `"><script>alert(1)</script>`, Minutes: 15, Until: "5 Dec 2026 21:47 UTC", Locale: locale,
			KeepCheckbox: true, Error: "password_rules"}
		for _, r := range rules {
			key := "password_" + string(r)
			if cat[key] == "" {
				t.Errorf("%s: no sentence for the rule %s", locale, r)
			}
			d.Rules = append(d.Rules, key)
		}
		for _, page := range []string{PagePasswordLogin, PagePasswordExpired, PagePasswordKeep, PageAccountLocked, PageMayNotSignIn} {
			rec := httptest.NewRecorder()
			if page == PagePasswordLogin {
				d.Error = "password_login_wrong"
			}
			if err := p.Render(rec, http.StatusOK, page, d); err != nil {
				t.Fatalf("%s: %v", page, err)
			}
			body := rec.Body.String()
			if strings.Contains(body, "%!") || strings.Contains(body, "<no value>") || strings.Contains(body, "<script>alert") {
				t.Errorf("%s in %s: a placeholder leaked or input is not escaped:\n%s", page, locale, body)
			}
			if page == PagePasswordExpired {
				for _, key := range d.Rules {
					if !strings.Contains(body, "<li>"+escaped(cat[key])+"</li>") {
						t.Errorf("%s in %s: the rule %s is not listed:\n%s", page, locale, key, body)
					}
				}
			}
		}
	}
}

// escaped is s as html/template writes text.
func escaped(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&#34;", "'", "&#39;").Replace(s)
}
