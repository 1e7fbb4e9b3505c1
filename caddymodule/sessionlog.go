package caddymodule

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/session"
)

// sessionRecords keeps each user's list of the sessions issued to them
// (directory.Directory), for the profile page.
type sessionRecords interface {
	RecordSession(ctx context.Context, userID string, s directory.SessionRecord) error
}

// recordTimeout bounds the storage write of a session's record: the
// sign-in does not wait on a slow storage for a convenience.
const recordTimeout = 2 * time.Second

// recordSessions wraps the answer to a request under the prefix so that a
// session cookie it sets is recorded in its user's list. Sessions are
// issued in several flows and two contracts (the pages and seed 004's
// sign-in); watching the one thing they all do, setting the cookie, is
// the smallest hook that sees every one of them with its request.
func (m *Mailgate) recordSessions(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	if m.sessionLog == nil {
		return w
	}
	return &sessionRecorder{ResponseWriter: w, m: m, r: r}
}

type sessionRecorder struct {
	http.ResponseWriter
	m    *Mailgate
	r    *http.Request
	seen bool
}

func (s *sessionRecorder) WriteHeader(code int) {
	s.record()
	s.ResponseWriter.WriteHeader(code)
}

func (s *sessionRecorder) Write(b []byte) (int, error) {
	s.record()
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *sessionRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// record looks, once, for a new session cookie among the headers about to
// be sent, and records its session. A failure is logged: the person is
// signed in all the same, and only the profile's list misses the session.
func (s *sessionRecorder) record() {
	if s.seen {
		return
	}
	s.seen = true
	name := session.CookieName(s.m.secure)
	for _, line := range s.Header().Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err != nil || c.Name != name || c.Value == "" || c.MaxAge < 0 {
			continue
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.r.Context()), recordTimeout)
		defer cancel()
		// Verified although mailgate just minted it: its id and user come
		// from the checked token, and the guard finds it cached.
		sess, err := s.m.sessions.Verify(ctx, c.Value)
		if err != nil {
			return
		}
		rec := directory.SessionRecord{
			ID: sess.ID, Issued: issuedAt(c.Value, now()), Expires: sess.Expiry,
			Method: string(methodOf(strings.TrimPrefix(s.r.URL.Path, s.m.Prefix))), Agent: agentLabel(s.r.UserAgent()),
		}
		if err := s.m.sessionLog.RecordSession(ctx, sess.UserID, rec); err != nil {
			s.m.logger.Warn("recording a session in its user's list", zap.String("user_id", sess.UserID), zap.Error(err))
		}
		return
	}
}

// issuedAt reads a verified token's iat, so that the record is held to
// RevokeUser's cut-off by the same second as the session; fallback when it
// cannot be read.
func issuedAt(token string, fallback time.Time) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fallback
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fallback
	}
	var claims struct {
		IssuedAt int64 `json:"iat"`
	}
	if json.Unmarshal(raw, &claims) != nil || claims.IssuedAt == 0 {
		return fallback
	}
	return time.Unix(claims.IssuedAt, 0).UTC()
}

// methodOf names the sign-in method by the endpoint that set the cookie
// (path is under the prefix); "" when none fits.
func methodOf(path string) flow.Method {
	switch {
	case path == "/link" || path == "/password":
		// A mailed link, and the set-password step that follows one.
		return flow.MethodLink
	case path == "/login/code":
		return flow.MethodCode
	case strings.HasPrefix(path, "/account/invite/"):
		return flow.MethodInvitation
	case strings.HasPrefix(path, "/account/pwreset/"):
		return flow.MethodPasswordReset
	case strings.HasPrefix(path, "/api/account/") || path == "/profile/password" || strings.HasPrefix(path, "/login/password"):
		return flow.MethodPassword
	}
	return ""
}

// agentLabel is a coarse name of a browser and its system, such as
// "Firefox · Linux": enough for a person to tell their devices apart, not
// the User-Agent string itself, which would help fingerprint them.
func agentLabel(ua string) string {
	browser := ""
	for _, b := range [...]struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chrome/", "Chrome"},
		{"Safari/", "Safari"}, {"curl/", "curl"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, o := range [...]struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			system = o.name
			break
		}
	}
	switch {
	case browser != "" && system != "":
		return browser + " · " + system
	case browser != "":
		return browser
	}
	return system
}
