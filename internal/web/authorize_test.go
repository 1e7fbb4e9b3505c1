package web

import (
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"testing"
)

// TestAuthorizeResponseSendsTheBrowserOn: the query and fragment modes
// answer with a page, not a redirect, whose refresh and link lead to the
// redirect URI with the parameters where the app looks for them. The page
// keeps the strict CSP, for the browser may follow a navigation that a
// form-action of 'self' would stop as a redirect.
func TestAuthorizeResponseSendsTheBrowserOn(t *testing.T) {
	p, err := New()
	if err != nil {
		t.Fatal(err)
	}
	params := url.Values{"code": {"c-1"}, "state": {`order 7 & "more"=<yes>`}}
	for mode, want := range map[string]string{
		"query":    "https://shop.example.com/cb?app=1&code=c-1&state=order+7+%26+%22more%22%3D%3Cyes%3E",
		"":         "https://shop.example.com/cb?app=1&code=c-1&state=order+7+%26+%22more%22%3D%3Cyes%3E",
		"fragment": "https://shop.example.com/cb?app=1#code=c-1&state=order+7+%26+%22more%22%3D%3Cyes%3E",
	} {
		rec := httptest.NewRecorder()
		if err := p.WriteAuthorizeResponse(rec, "https://shop.example.com/cb?app=1", mode, "en-GB", params); err != nil {
			t.Fatal(err)
		}
		h, body := rec.Header(), rec.Body.String()
		if rec.Code != http.StatusOK || h.Get("Location") != "" {
			t.Errorf("%q: %d to %q, want a page", mode, rec.Code, h.Get("Location"))
		}
		if h.Get("Content-Security-Policy") != CSP || h.Get("Cache-Control") != "no-store" || h.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%q: security headers %v", mode, h)
		}
		refresh := regexp.MustCompile(`<meta http-equiv="refresh" content="0; url=([^"]*)">`).FindStringSubmatch(body)
		link := regexp.MustCompile(`<a href="([^"]*)">`).FindStringSubmatch(body)
		if refresh == nil || html.UnescapeString(refresh[1]) != want || link == nil || html.UnescapeString(link[1]) != want {
			t.Errorf("%q: the page does not lead to %s:\n%s", mode, want, body)
		}
	}
}
