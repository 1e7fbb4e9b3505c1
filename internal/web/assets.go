package web

import (
	"net/http"
	"strconv"
)

// serveJWKS publishes the realm's public keys, read from the ring on every
// request so that they follow it when it changes underneath.
func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) error {
	jwks := h.JWKS(r.Context())
	hdr := w.Header()
	hdr.Set("Content-Type", "application/jwk-set+json")
	hdr.Set("Cache-Control", "public, max-age=300")
	hdr.Set("Content-Length", strconv.Itoa(len(jwks)))
	_, err := w.Write(jwks)
	return err
}

// serveCSS serves the only stylesheet; the CSP allows no inline style.
func serveCSS(w http.ResponseWriter, _ *http.Request) error {
	css := StyleCSS()
	hdr := w.Header()
	hdr.Set("Content-Type", "text/css; charset=utf-8")
	hdr.Set("Cache-Control", "public, max-age=3600")
	hdr.Set("Content-Length", strconv.Itoa(len(css)))
	_, err := w.Write(css)
	return err
}
