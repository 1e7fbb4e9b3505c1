package web

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
)

// WriteAuthorizeResponse ends an app's login at redirectURI with params, the
// way the app asked: "form_post" (OAuth 2.0 Form Post Response Mode),
// "fragment", or the query (the default), keeping any query the redirect
// URI already has. The redirects are 303, so the browser follows with a GET.
func (p *Pages) WriteAuthorizeResponse(w http.ResponseWriter, r *http.Request, redirectURI, mode, locale string, params url.Values) error {
	switch mode {
	case "form_post":
		fields := make([]Field, 0, len(params))
		for _, k := range slices.Sorted(maps.Keys(params)) {
			fields = append(fields, Field{Name: k, Value: params.Get(k)})
		}
		return p.RenderFormPost(w, redirectURI, locale, fields)
	case "fragment":
		http.Redirect(w, r, redirectURI+"#"+params.Encode(), http.StatusSeeOther)
		return nil
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
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
	return nil
}
