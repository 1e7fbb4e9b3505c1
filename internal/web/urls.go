package web

import (
	"cmp"
	"net/url"

	"github.com/mailgate/caddy-mailgate/internal/locale"
)

// URLs builds the links mailgate mails, beside the routes that serve them
// (see Mount), from the configured origin and never from a request.
type URLs struct {
	// Origin is base_url, such as https://app.example.com.
	Origin string
	// Prefix is where the pages live, such as /.mailgate.
	Prefix string
}

// LinkURL is the mailed sign-in link for secret, served by the
// confirmation page (GET {prefix}/link). Its locale rides along, the
// default's too, so the page speaks the mail's language, whatever the
// site's default or the opening browser's preference.
func (u URLs) LinkURL(secret, loc string) string {
	return u.Origin + u.Prefix + "/link?t=" + secret + "&l=" + linkLocale(loc)
}

// CodeLinkURL is the link mailed with a project's code (seed 003's
// send_link), served by GET {prefix}/login/email/link, which knows the
// project from p.
func (u URLs) CodeLinkURL(secret, loc, project string) string {
	return u.Origin + u.Prefix + "/login/email/link?t=" + secret + "&p=" + url.QueryEscape(project) + "&l=" + linkLocale(loc)
}

// linkLocale is the l= of a mailed link for loc, query-escaped: an empty
// locale is mailgate's default (seed 000), not the site's.
func linkLocale(loc string) string { return url.QueryEscape(cmp.Or(loc, locale.Default)) }
