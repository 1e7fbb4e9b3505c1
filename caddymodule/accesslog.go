package caddymodule

import (
	"net/http"
	"time"

	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"
)

// serveLogged serves an endpoint under the prefix without Caddy's access
// log. Those requests and answers carry secrets where the access log writes
// them down: link tickets in the URI, authorization codes and tokens in the
// Location header, DPoP proofs in a request header. Whoever reads the log
// could sign in before the person does, whatever `log` configuration the
// operator has. mailgate logs a line of its own instead, with the path but
// no query and no headers.
func (m *Mailgate) serveLogged(w http.ResponseWriter, r *http.Request) error {
	caddyhttp.SetVar(r.Context(), caddyhttp.LogSkipVar, true)
	start := time.Now()
	rec := &statusRecorder{ResponseWriter: w}
	err := m.serveEndpoint(rec, r)
	status := rec.status
	if he, ok := err.(caddyhttp.HandlerError); ok {
		status = he.StatusCode
	}
	if c := m.access.Check(zap.InfoLevel, "handled request"); c != nil {
		ip, _ := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string)
		c.Write(
			zap.String("client_ip", ip),
			zap.String("method", r.Method),
			zap.String("host", r.Host),
			zap.String("path", r.URL.Path),
			zap.Int("status", status),
			zap.Duration("duration", time.Since(start)),
		)
	}
	return err
}

// statusRecorder remembers the status an endpoint answered with.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the writer underneath.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
