package caddymodule

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// healthTimeout bounds each health check, so that a hung store or storage
// is answered 503 well within a load balancer's probe timeout.
const healthTimeout = 2 * time.Second

// healthProbeKey is the key the store check reads: nobody writes it, so the
// read costs one round trip and finds nothing.
const healthProbeKey = "health-probe"

// healthReport is what the admin endpoint tells of one mailgate handler
// (GET /mailgate/health on Caddy's admin address). The public
// {prefix}/health answers only with its status.
type healthReport struct {
	Realm   string `json:"realm"`
	BaseURL string `json:"base_url"`
	// Healthy is what {prefix}/health answers: 200 when true, else 503.
	Healthy        bool        `json:"healthy"`
	Store          storeHealth `json:"store"`
	Keys           keysHealth  `json:"keys"`
	RevocationFeed feedHealth  `json:"revocation_feed"`
	MailQueue      queueHealth `json:"mail_queue"`
}

type storeHealth struct {
	Backend   string  `json:"backend"`
	OK        bool    `json:"ok"`
	LatencyMS float64 `json:"latency_ms"`
	Error     string  `json:"error,omitempty"`
}

type keysHealth struct {
	OK bool `json:"ok"`
	// AgeSeconds is the time since the key ring was last written
	// (created or rotated); absent when the storage does not tell.
	AgeSeconds float64 `json:"age_seconds,omitempty"`
	// KeyID is the kid of the key that signs now.
	KeyID string `json:"kid"`
	Error string `json:"error,omitempty"`
}

type feedHealth struct {
	Fresh      bool    `json:"fresh"`
	LagSeconds float64 `json:"lag_seconds"`
}

type queueHealth struct {
	Depth int `json:"depth"`
}

// checkHealth reads the realm's keys and store now: healthy when both are
// readable and the revocation feed is fresh enough to vouch for sessions.
func (m *Mailgate) checkHealth(ctx context.Context) healthReport {
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	rep := healthReport{Realm: m.Realm, BaseURL: m.BaseURL}

	rep.Store.Backend = m.Store.Type
	start := time.Now()
	_, err := m.store.Get(ctx, healthProbeKey)
	rep.Store.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
	if err != nil && !errors.Is(err, ticket.ErrNotFound) {
		rep.Store.Error = err.Error()
	} else {
		rep.Store.OK = true
	}

	if _, err := m.storage.Load(ctx, m.realmKey+"/keys.json"); err != nil {
		rep.Keys.Error = err.Error()
	} else {
		rep.Keys.OK = true
		rep.Keys.KeyID = m.ring.KeyID()
	}
	if age, ok := m.keyAgeIn(ctx); ok {
		rep.Keys.AgeSeconds = age.Seconds()
	}

	// Revoked answers from memory, and fails exactly when the guard would
	// refuse every session for want of a current revocation set.
	_, err = m.store.Revoked(healthProbeKey)
	rep.RevocationFeed.Fresh = err == nil
	rep.RevocationFeed.LagSeconds = feedLag(m.store).Seconds()

	if m.deliveries != nil {
		rep.MailQueue.Depth = m.deliveries.Len()
	}
	rep.Healthy = rep.Store.OK && rep.Keys.OK && rep.RevocationFeed.Fresh
	return rep
}

// keyAge is the time since the key ring was last written, when the
// storage tells its files' times.
func (m *Mailgate) keyAge() (time.Duration, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), healthTimeout)
	defer cancel()
	return m.keyAgeIn(ctx)
}

func (m *Mailgate) keyAgeIn(ctx context.Context) (time.Duration, bool) {
	info, err := m.storage.Stat(ctx, m.realmKey+"/keys.json")
	if err != nil || info.Modified.IsZero() {
		return 0, false
	}
	return now().Sub(info.Modified), true
}

// healthAnswer is a public health answer and when it was found.
type healthAnswer struct {
	at      time.Time
	healthy bool
}

// healthReuse is how long a public health answer is given again without
// checking: the endpoint is public, and a flood of probes must not turn
// into a flood of reads of the store and the storage.
const healthReuse = time.Second

// serveHealth answers {prefix}/health for a load balancer: 200 or 503 and
// nothing more, since what is wrong is the operator's business, told on
// the admin endpoint (admin.go).
func (m *Mailgate) serveHealth(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	// Two probes at once may both check: harmless, and no lock to wait on.
	a := m.lastHealth.Load()
	if t := now(); a == nil || t.Sub(a.at) >= healthReuse || t.Before(a.at) {
		a = &healthAnswer{at: t, healthy: m.checkHealth(r.Context()).Healthy}
		m.lastHealth.Store(a)
	}
	if !a.healthy {
		h.Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("unavailable\n"))
		return nil
	}
	_, _ = w.Write([]byte("ok\n"))
	return nil
}
