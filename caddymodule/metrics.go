package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/session"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// The Prometheus collectors are created once, for the process, and
// registered with the metrics registry of every config that runs mailgate,
// as mholt/caddy-ratelimit does: Caddy makes a new registry at each reload
// and serves it at the admin endpoint's /metrics, so registering the same
// collectors again keeps the counts across reloads. Every series is
// labelled by realm, never by user or address. docs/operations.md lists
// them.
var (
	collectorsOnce sync.Once
	collectors     *mailgateCollectors
)

type mailgateCollectors struct {
	guard         *prometheus.CounterVec
	loginsStarted *prometheus.CounterVec
	loginsDone    *prometheus.CounterVec
	loginFailures *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	limited       *prometheus.CounterVec
	mailsSent     *prometheus.CounterVec
	mailsRetried  *prometheus.CounterVec
	mailsGivenUp  *prometheus.CounterVec
	mailLatency   *prometheus.HistogramVec
	signOuts      *prometheus.CounterVec
	userChanges   *prometheus.CounterVec
	keyRotations  *prometheus.CounterVec
	failures      *prometheus.CounterVec
	storeSeconds  *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
	tokens        *prometheus.CounterVec
	cacheHits     *prometheus.CounterVec
	cacheMisses   *prometheus.CounterVec
	gauges        *realmGauges
}

func newCollectors() *mailgateCollectors {
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "mailgate", Name: name, Help: help}, append([]string{"realm"}, labels...))
	}
	return &mailgateCollectors{
		guard: counter("guard_decisions_total",
			"Requests the guard decided: allowed (passed on with a session), redirected (to the login page), refused (401), unavailable (503).", "decision"),
		loginsStarted: counter("logins_started_total", "Login mails handed on for delivery, per method.", "method"),
		loginsDone:    counter("logins_completed_total", "Sign-ins that ended with a session or a token, per method.", "method"),
		loginFailures: counter("login_failures_total", "Login secrets refused, per method and reason.", "method", "reason"),
		refusals:      counter("login_refusals_total", "Login requests for an address that matched no allow rule (no mail sent).", "method"),
		limited:       counter("rate_limit_hits_total", "Requests stopped by a limit, per limit.", "limit"),
		mailsSent:     counter("mails_sent_total", "Mails the mail server took from the queue, per template.", "template"),
		mailsRetried:  counter("mails_retried_total", "Failed delivery attempts that are tried again, per template.", "template"),
		mailsGivenUp:  counter("mails_given_up_total", "Login mails given up (their link or code dropped), per method.", "method"),
		mailLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "mailgate", Name: "mail_delivery_seconds",
			Help:    "Time from queueing a mail to the mail server taking it.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120},
		}, []string{"realm"}),
		signOuts:     counter("signouts_total", "Sessions ended: one session, or everywhere (with_logout, user disabled).", "scope"),
		userChanges:  counter("user_changes_total", "Users created, enabled, disabled or deleted.", "change"),
		keyRotations: counter("key_rotations_total", "Signing key rotations done by this instance."),
		failures:     counter("failures_total", "Operations that failed (store, storage or mail server), whose answer said only that."),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "mailgate", Name: "store_operation_seconds",
			Help:    "Latency of the ticket store's operations, per backend and operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"realm", "backend", "op"}),
		storeErrors: counter("store_errors_total", "Ticket store operations that failed, per backend and operation.", "backend", "op"),
		tokens:      counter("tokens_issued_total", "Tokens signed, per kind: session, access_token, id_token, user_jwt.", "kind"),
		cacheHits:   counter("session_cache_hits_total", "Session tokens the guard found verified in its cache."),
		cacheMisses: counter("session_cache_misses_total", "Session tokens the guard had to verify: signature checked, user read."),
		gauges:      &realmGauges{},
	}
}

// registerMetrics registers mailgate's collectors with reg, a config's
// metrics registry. A collector already there (a second mailgate handler of
// the same config registered it) is fine.
func registerMetrics(reg prometheus.Registerer) (*mailgateCollectors, error) {
	collectorsOnce.Do(func() { collectors = newCollectors() })
	c := collectors
	if reg == nil {
		return c, nil
	}
	for _, x := range []prometheus.Collector{
		c.guard, c.loginsStarted, c.loginsDone, c.loginFailures, c.refusals, c.limited,
		c.mailsSent, c.mailsRetried, c.mailsGivenUp, c.mailLatency, c.signOuts,
		c.userChanges, c.keyRotations, c.failures, c.storeSeconds, c.storeErrors, c.tokens,
		c.cacheHits, c.cacheMisses, c.gauges,
	} {
		var already prometheus.AlreadyRegisteredError
		if err := reg.Register(x); err != nil && !errors.As(err, &already) {
			return nil, err
		}
	}
	return c, nil
}

// guardCounters are the guard's decisions for one realm, resolved once at
// provisioning: on the hot path a decision is an atomic add, with no label
// lookup and no allocation.
type guardCounters struct {
	allowed, redirected, refused, unavailable prometheus.Counter
	// cache counts the verified-session cache's lookups.
	cache session.CacheCounters
}

func (c *mailgateCollectors) guardFor(realm string) guardCounters {
	return guardCounters{
		allowed:     c.guard.WithLabelValues(realm, "allowed"),
		redirected:  c.guard.WithLabelValues(realm, "redirected"),
		refused:     c.guard.WithLabelValues(realm, "refused"),
		unavailable: c.guard.WithLabelValues(realm, "unavailable"),
		cache: session.CacheCounters{
			Hit:  c.cacheHits.WithLabelValues(realm).Inc,
			Miss: c.cacheMisses.WithLabelValues(realm).Inc,
		},
	}
}

// metrics is the Observer that counts what the flows report, for one
// realm.
type metrics struct {
	realm string
	c     *mailgateCollectors
	// Curried with the realm at provisioning.
	storeSeconds prometheus.ObserverVec
	storeErrors  *prometheus.CounterVec
}

func newMetricsObserver(c *mailgateCollectors, realm string) metrics {
	return metrics{
		realm:        realm,
		c:            c,
		storeSeconds: c.storeSeconds.MustCurryWith(prometheus.Labels{"realm": realm}),
		storeErrors:  c.storeErrors.MustCurryWith(prometheus.Labels{"realm": realm}),
	}
}

func (m metrics) LoginStarted(method flow.Method) {
	m.c.loginsStarted.WithLabelValues(m.realm, string(method)).Inc()
}

func (m metrics) LoginDone(_ string, method flow.Method) {
	m.c.loginsDone.WithLabelValues(m.realm, string(method)).Inc()
}

func (m metrics) Refused(method flow.Method, _ string) {
	m.c.refusals.WithLabelValues(m.realm, string(method)).Inc()
}

func (m metrics) Limited(rule string) { m.c.limited.WithLabelValues(m.realm, rule).Inc() }

func (m metrics) MailGivenUp(method flow.Method) {
	m.c.mailsGivenUp.WithLabelValues(m.realm, string(method)).Inc()
}

func (m metrics) SignedOut(_ string, everywhere bool) {
	scope := "session"
	if everywhere {
		scope = "everywhere"
	}
	m.c.signOuts.WithLabelValues(m.realm, scope).Inc()
}

func (m metrics) PasswordSet(string) {}

func (m metrics) UserChanged(_ string, change flow.UserChange, _ string) {
	m.c.userChanges.WithLabelValues(m.realm, string(change)).Inc()
}

func (m metrics) EmailLinkRevoked(string) {}

func (m metrics) Failed(string, error) { m.c.failures.WithLabelValues(m.realm).Inc() }

func (m metrics) MailDelivered(template string, _ int, latency time.Duration) {
	m.c.mailsSent.WithLabelValues(m.realm, template).Inc()
	m.c.mailLatency.WithLabelValues(m.realm).Observe(latency.Seconds())
}

func (m metrics) MailRetried(template string) {
	m.c.mailsRetried.WithLabelValues(m.realm, template).Inc()
}

func (m metrics) LoginFailed(method flow.Method, reason string) {
	m.c.loginFailures.WithLabelValues(m.realm, string(method), reason).Inc()
}

func (m metrics) KeyRotated(string) { m.c.keyRotations.WithLabelValues(m.realm).Inc() }

func (m metrics) StoreCall(backend, op string, d time.Duration, err error) {
	m.storeSeconds.WithLabelValues(backend, op).Observe(d.Seconds())
	if err != nil {
		m.storeErrors.WithLabelValues(backend, op).Inc()
	}
}

func (m metrics) TokenIssued(kind string) { m.c.tokens.WithLabelValues(m.realm, kind).Inc() }

var _ flow.Observer = metrics{}

// realmGauges reports, at each scrape, what is read rather than counted:
// the depth of the mail queues, the revocation feed's lag and the signing
// key's age, per realm, from the mailgate handlers running now (live).
type realmGauges struct{}

var (
	queueDepthDesc = prometheus.NewDesc("mailgate_mail_queue_depth",
		"Mails held by the delivery queues (waiting or being delivered).", []string{"realm"}, nil)
	feedLagDesc = prometheus.NewDesc("mailgate_revocation_feed_lag_seconds",
		"Time since the revocation feed last completed a read (0 for the memory store).", []string{"realm"}, nil)
	keyAgeDesc = prometheus.NewDesc("mailgate_signing_key_age_seconds",
		"Time since the realm's key ring was last written (created or rotated).", []string{"realm"}, nil)
)

func (*realmGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepthDesc
	ch <- feedLagDesc
	ch <- keyAgeDesc
}

// Collect sums the queues of the handlers of one realm; the lag and the
// key age are the realm's, the worst reading if two configs overlap during
// a reload.
func (*realmGauges) Collect(ch chan<- prometheus.Metric) {
	type reading struct {
		depth       int
		lag, keyAge float64
		keyKnown    bool
	}
	byRealm := map[string]*reading{}
	for _, m := range liveHandlers() {
		r := byRealm[m.Realm]
		if r == nil {
			r = &reading{}
			byRealm[m.Realm] = r
		}
		if m.deliveries != nil {
			r.depth += m.deliveries.Len()
		}
		r.lag = max(r.lag, feedLag(m.store).Seconds())
		if age, ok := m.keyAge(); ok {
			r.keyAge, r.keyKnown = max(r.keyAge, age.Seconds()), true
		}
	}
	for realm, r := range byRealm {
		ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(r.depth), realm)
		ch <- prometheus.MustNewConstMetric(feedLagDesc, prometheus.GaugeValue, r.lag, realm)
		if r.keyKnown {
			ch <- prometheus.MustNewConstMetric(keyAgeDesc, prometheus.GaugeValue, r.keyAge, realm)
		}
	}
}

// feedLag is the revocation feed's lag of a store that has one.
func feedLag(s ticket.Store) time.Duration {
	if f, ok := s.(interface{ FeedLag() time.Duration }); ok {
		return f.FeedLag()
	}
	return 0
}

// live is every mailgate handler provisioned and not yet cleaned up: what
// the gauges and the admin endpoint read.
var live sync.Map // *Mailgate → struct{}

func liveHandlers() []*Mailgate {
	var ms []*Mailgate
	live.Range(func(k, _ any) bool {
		ms = append(ms, k.(*Mailgate))
		return true
	})
	return ms
}

// timedStore tells the observer how long each of the store's round trips
// took and whether it failed. The revocation checks (Revoked,
// RevokedBefore) are answered from memory on the guard's hot path and pass
// through untimed.
type timedStore struct {
	ticket.Store
	backend  string
	observer flow.Observer
}

func (s timedStore) done(op string, start time.Time, err error) {
	if errors.Is(err, ticket.ErrNotFound) {
		err = nil
	}
	s.observer.StoreCall(s.backend, op, time.Since(start), err)
}

func (s timedStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.Put(ctx, key, value, ttl)
	s.done("put", start, err)
	return err
}

func (s timedStore) PutOwned(ctx context.Context, owner, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.PutOwned(ctx, owner, key, value, ttl)
	s.done("put_owned", start, err)
	return err
}

func (s timedStore) PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	start := time.Now()
	ok, err := s.Store.PutNew(ctx, key, value, ttl)
	s.done("put_new", start, err)
	return ok, err
}

func (s timedStore) Get(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := s.Store.Get(ctx, key)
	s.done("get", start, err)
	return v, err
}

func (s timedStore) Take(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := s.Store.Take(ctx, key)
	s.done("take", start, err)
	return v, err
}

func (s timedStore) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := s.Store.Delete(ctx, key)
	s.done("delete", start, err)
	return err
}

func (s timedStore) Mark(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	start := time.Now()
	ok, err := s.Store.Mark(ctx, key, ttl)
	s.done("mark", start, err)
	return ok, err
}

func (s timedStore) Marked(ctx context.Context, key string) (bool, error) {
	start := time.Now()
	ok, err := s.Store.Marked(ctx, key)
	s.done("marked", start, err)
	return ok, err
}

func (s timedStore) Incr(ctx context.Context, key string, window time.Duration) (ticket.Count, error) {
	start := time.Now()
	c, err := s.Store.Incr(ctx, key, window)
	s.done("incr", start, err)
	return c, err
}

func (s timedStore) Attempt(ctx context.Context, key string, limit int64) (int64, error) {
	start := time.Now()
	n, err := s.Store.Attempt(ctx, key, limit)
	s.done("attempt", start, err)
	return n, err
}

func (s timedStore) Revoke(ctx context.Context, key string, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.Revoke(ctx, key, ttl)
	s.done("revoke", start, err)
	return err
}

func (s timedStore) RevokeBefore(ctx context.Context, key string, before time.Time, ttl time.Duration) error {
	start := time.Now()
	err := s.Store.RevokeBefore(ctx, key, before, ttl)
	s.done("revoke_before", start, err)
	return err
}

// provisionObservers builds what hears the flows: the operator's log
// lines, the metrics (registered with this config's registry) and the
// audit trail.
func (m *Mailgate) provisionObservers(ctx caddy.Context) error {
	c, err := registerMetrics(ctx.GetMetricsRegistry())
	if err != nil {
		return fmt.Errorf("mailgate: registering metrics: %v", err)
	}
	m.decisions = c.guardFor(m.Realm)
	a, err := newAudit(ctx, m.logger, m.Realm)
	if err != nil {
		return err
	}
	m.observer = observers{events{logger: m.logger}, newMetricsObserver(c, m.Realm), a}
	return nil
}
