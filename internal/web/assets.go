package web

import (
	"net/http"
	"strconv"
	"time"
)

// serveJWKS publishes the realm's public keys, asked for on every request
// so that they follow the ring when it changes underneath.
func (h *Handler) serveJWKS(w http.ResponseWriter, r *http.Request) error {
	return writeAsset(w, "application/jwk-set+json", "public, max-age="+strconv.Itoa(int(h.JWKSMaxAge/time.Second)), h.JWKS(r.Context()))
}

// serveCSS serves the only stylesheet; the CSP allows no inline style.
func serveCSS(w http.ResponseWriter, _ *http.Request) error {
	return writeAsset(w, "text/css; charset=utf-8", "public, max-age=3600", StyleCSS())
}

// serveBusyJS serves the pages' only script, which marks a sent form busy.
func serveBusyJS(w http.ResponseWriter, _ *http.Request) error {
	return writeAsset(w, "text/javascript; charset=utf-8", "public, max-age=3600", busyJS)
}

// writeAsset writes a public, cacheable answer: the ones that loosen the
// no-store every other answer under the prefix carries.
func writeAsset(w http.ResponseWriter, contentType, cacheControl string, body []byte) error {
	hdr := w.Header()
	hdr.Set("Content-Type", contentType)
	hdr.Set("Cache-Control", cacheControl)
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	_, err := w.Write(body)
	return err
}
