package web

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
)

// WriteAuthorizeResponse ends an app's login at redirectURI with params, the
// way the app asked: "form_post" (OAuth 2.0 Form Post Response Mode),
// "fragment", or the query (the default), keeping any query the redirect
// URI already has.
//
// The query and fragment modes answer with a page that sends the browser on
// (see renderOnward), not with a redirect: the answer goes to a form post
// from one of mailgate's pages, and browsers (Chromium among them) hold the
// redirects of a form submission to the submitting page's CSP form-action,
// which is 'self'. Naming the app's origin in the confirmation page's
// form-action instead would need the pending login's origin on every page
// that can finish one (the set-password page and its retries too), and would
// still stop the app's own callback from sending the browser on to another
// of its origins, since form-action covers every redirect of the
// submission. A navigation started by the answer is no form submission, so
// no page's CSP has to allow any other origin.
func (p *Pages) WriteAuthorizeResponse(w http.ResponseWriter, redirectURI, mode, locale string, params url.Values) error {
	switch mode {
	case "form_post":
		fields := make([]Field, 0, len(params))
		for _, k := range slices.Sorted(maps.Keys(params)) {
			fields = append(fields, Field{Name: k, Value: params.Get(k)})
		}
		return p.RenderFormPost(w, redirectURI, locale, fields)
	case "fragment":
		return p.renderOnward(w, redirectURI+"#"+params.Encode(), locale)
	}
	u, err := url.Parse(redirectURI)
	if err != nil {
		return fmt.Errorf("web: redirect URI %q: %w", redirectURI, err)
	}
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	u.RawQuery = q.Encode()
	return p.renderOnward(w, u.String(), locale)
}

// renderOnward answers with a page that sends the browser to target at once
// by a refresh (no script, so the page keeps the strict CSP), with a link
// for a browser that does not refresh. It carries a secret like every
// authorize response: no-store, and no Referer to the app.
func (p *Pages) renderOnward(w http.ResponseWriter, target, locale string) error {
	var buf bytes.Buffer
	err := p.tmpl.ExecuteTemplate(&buf, "onward.html", struct {
		T      map[string]string
		Target string
	}{catalogue(locale), target})
	if err != nil {
		return fmt.Errorf("web: rendering onward: %w", err)
	}
	h := w.Header()
	SetSecurityHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(buf.Bytes())
	return err
}
