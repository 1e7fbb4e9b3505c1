package web

import (
	"cmp"
	"net/url"

	"github.com/mailgate/caddy-mailgate/internal/flow"

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

// The pages behind seed 001's default URL prefixes, and the revoke link of
// its mails. A ticket is appended to each as it is (a base64url secret
// needs no escaping); the page reads the link's locale from its ticket.
const (
	invitePath  = "/account/invite/"
	pwresetPath = "/account/pwreset/"
	revokePath  = "/account/revoke/"
)

// EmailLinkURL is seed 001's default urlPrefix for a link of type t: the
// ticket is appended to it.
func (u URLs) EmailLinkURL(t flow.EmailLinkType) string {
	if t == flow.Invitation {
		return u.Origin + u.Prefix + invitePath + "?x="
	}
	return u.Origin + u.Prefix + pwresetPath + "?x="
}

// RevokeURL is the "this wasn't me" link of an invitation or reset mail,
// served by GET {prefix}/account/revoke/.
func (u URLs) RevokeURL(secret string) string {
	return u.Origin + u.Prefix + revokePath + "?x=" + secret
}

// linkLocale is the l= of a mailed link for loc, query-escaped: an empty
// locale is mailgate's default (seed 000), not the site's.
func linkLocale(loc string) string { return url.QueryEscape(cmp.Or(loc, locale.Default)) }
