package caddymodule

import (
	"net"
	"net/http"
	"strings"

	"go.uber.org/zap"
)

// warnForeignHost tells the operator, once per config, that mailgate's
// pages were asked for on a host other than base_url's. Mailed links and the
// form checks use base_url, so a person who came by another name gets links
// to another host and has their forms refused as cross-site. Caddy does not
// show a handler its site's addresses, so this is noticed at the first such
// request, not at provisioning; it runs under the prefix only, never on the
// guard's path.
func (m *Mailgate) warnForeignHost(r *http.Request) {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if strings.EqualFold(host, m.baseHost) || !m.hostWarned.CompareAndSwap(false, true) {
		return
	}
	m.logger.Warn("mailgate's pages were asked for on a host that is not base_url's: mailed links and form checks use base_url; make base_url the address people use",
		zap.String("host", r.Host), zap.String("base_url", m.origin))
}
