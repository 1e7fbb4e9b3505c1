package web

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestEveryPageRendersSafely(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	pages := []string{PageLogin, PageSent, PageConfirm, PageInvalid, PageSendFailed, PageLogout, PageSignedOut, PageSetPassword, "bad_form"}
	for locale := range catalogues {
		for _, page := range pages {
			rec := httptest.NewRecorder()
			d := Data{SiteName: "Ex<ample>", Prefix: "/.mailgate", FormToken: "tok", Return: "/a?b=1&c=<x>",
				Email: `"><script>alert(1)</script>`, Secret: "sec", Minutes: 15, Error: "invalid_email", Locale: locale}
			if err := p.Render(rec, http.StatusOK, page, d); err != nil {
				t.Fatalf("%s: %v", page, err)
			}
			body := rec.Body.String()
			h := rec.Header()
			if h.Get("Content-Security-Policy") != CSP || h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("%s: security headers missing: %v", page, h)
			}
			if strings.Contains(body, "<script") || strings.Contains(body, "style=") || strings.Contains(body, "<style") {
				t.Errorf("%s: inline script or style, or unescaped input:\n%s", page, body)
			}
			if strings.Contains(body, "Ex<ample>") {
				t.Errorf("%s: site name not escaped", page)
			}
			if strings.Contains(body, "%!") || strings.Contains(body, "<no value>") {
				t.Errorf("%s: template placeholder leaked:\n%s", page, body)
			}
			if !strings.Contains(body, `<html lang="`+locale+`">`) {
				t.Errorf("%s in %s: wrong lang attribute", page, locale)
			}
		}
	}
}

func TestCataloguesHaveTheSameKeys(t *testing.T) {
	ref := catalogues[DefaultLocale]
	for locale, c := range catalogues {
		for k := range ref {
			if c[k] == "" {
				t.Errorf("%s lacks %q", locale, k)
			}
		}
		for k := range c {
			if _, ok := ref[k]; !ok {
				t.Errorf("%s has %q, which %s lacks", locale, k, DefaultLocale)
			}
		}
	}
	for _, locale := range []string{"en-GB", "nl-BE", "nl-NL"} {
		if !Supported(locale) {
			t.Errorf("%s is not supported", locale)
		}
	}
}

func TestFormTokenAndOrigin(t *testing.T) {
	const origin = "https://app.example.com"
	rec := httptest.NewRecorder()
	tok := FormToken(rec, httptest.NewRequest("GET", "/", nil), true)
	cookie := rec.Result().Cookies()[0]
	if cookie.Name != "__Host-mailgate-form" || !cookie.Secure || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("form cookie = %+v", cookie)
	}
	post := func(field string, hdr map[string]string) *http.Request {
		r := httptest.NewRequest("POST", "/", strings.NewReader(url.Values{FormTokenField: {field}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(cookie)
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		r.ParseForm()
		return r
	}
	cases := []struct {
		name  string
		r     *http.Request
		valid bool
	}{
		{"same-origin fetch metadata", post(tok, map[string]string{"Sec-Fetch-Site": "same-origin"}), true},
		{"matching Origin", post(tok, map[string]string{"Origin": origin}), true},
		{"cross-site", post(tok, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": origin}), false},
		{"same-site but other origin", post(tok, map[string]string{"Sec-Fetch-Site": "same-site"}), false},
		{"foreign Origin", post(tok, map[string]string{"Origin": "https://evil.example"}), false},
		{"neither header", post(tok, nil), false},
		{"wrong token", post(otherFirstChar(tok), map[string]string{"Origin": origin}), false},
		{"empty token", post("", map[string]string{"Origin": origin}), false},
	}
	for _, c := range cases {
		if err := CheckForm(c.r, origin, true); (err == nil) != c.valid {
			t.Errorf("%s: err = %v, valid = %v", c.name, err, c.valid)
		}
	}
	// A browser that already has a token keeps it.
	r := httptest.NewRequest("GET", "/", nil)
	r.AddCookie(cookie)
	rec = httptest.NewRecorder()
	if again := FormToken(rec, r, true); again != tok || len(rec.Result().Cookies()) != 0 {
		t.Fatal("form token was replaced although the browser had one")
	}
}

// otherFirstChar returns tok with its first character changed; replacing it
// with a fixed letter would leave the token intact whenever it already began
// with that letter.
func otherFirstChar(tok string) string {
	if tok[0] == 'A' {
		return "B" + tok[1:]
	}
	return "A" + tok[1:]
}
