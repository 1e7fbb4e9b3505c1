package caddymodule

import (
	"maps"
	"slices"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyevents"
	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// audit is the Observer that keeps the audit trail: one line on the logger
// http.handlers.mailgate.audit per thing a person or an operator did, and
// the same as a Caddy event named mailgate.<event>, which other modules can
// subscribe to. Each carries the realm, and, when the request's Actor is
// known (flow.ObservedIn), the client IP and the app it came through. None
// carries a secret, a code, a token or an address: an account is named by
// its user id, an address that matched no rule by its domain.
// docs/operations.md lists the events and their fields.
type audit struct {
	logger *zap.Logger
	// events is Caddy's events app, and ctx the handler's, whose module is
	// the events' origin; events is nil where there is none (the command
	// line).
	events *caddyevents.App
	ctx    caddy.Context
	realm  string
	actor  flow.Actor
}

// The audit events, as logged (the message) and emitted (mailgate.<name>).
const (
	auditLoginStarted   = "login_started"
	auditLoginCompleted = "login_completed"
	auditLoginFailed    = "login_failed"
	auditLoginRefused   = "login_refused"
	auditLimitHit       = "limit_hit"
	auditMailGivenUp    = "mail_given_up"
	auditSignedOut      = "signed_out"
	auditPasswordSet    = "password_set"
	auditEmailLinkEnded = "email_link_revoked"
	auditKeyRotated     = "key_rotated"
	// User changes are user_created, user_enabled, user_disabled and
	// user_deleted.
	auditUserPrefix = "user_"
)

// newAudit builds the audit trail of a handler provisioned in ctx; the
// events app is loaded only if the config has one or can make one.
func newAudit(ctx caddy.Context, logger *zap.Logger, realm string) (audit, error) {
	a := audit{logger: logger.Named("audit"), ctx: ctx, realm: realm}
	app, err := ctx.App("events")
	if err != nil {
		return a, err
	}
	a.events = app.(*caddyevents.App)
	return a, nil
}

// record logs and emits event with fields, which are strings or bools.
func (a audit) record(event string, fields map[string]any) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["realm"] = a.realm
	if a.actor.IP != "" {
		fields["client_ip"] = a.actor.IP
	}
	if a.actor.Client != "" {
		fields["client"] = a.actor.Client
	}
	// In a steady order, for whoever reads the lines.
	keys := slices.Sorted(maps.Keys(fields))
	zf := make([]zap.Field, 0, len(fields))
	for _, k := range keys {
		zf = append(zf, zap.Any(k, fields[k]))
	}
	a.logger.Info(event, zf...)
	if a.events != nil {
		a.events.Emit(a.ctx, "mailgate."+event, fields)
	}
}

// Acting returns the audit trail bound to a request's actor.
func (a audit) Acting(actor flow.Actor) flow.Observer {
	a.actor = actor
	return a
}

func (a audit) LoginStarted(method flow.Method) {
	a.record(auditLoginStarted, map[string]any{"method": string(method)})
}

func (a audit) LoginDone(userID string, method flow.Method) {
	a.record(auditLoginCompleted, map[string]any{"user_id": userID, "method": string(method)})
}

func (a audit) LoginFailed(method flow.Method, reason string) {
	a.record(auditLoginFailed, map[string]any{"method": string(method), "reason": reason})
}

// Refused names the domain only: the address matched no rule, so it may
// belong to nobody the operator knows.
func (a audit) Refused(method flow.Method, domain string) {
	a.record(auditLoginRefused, map[string]any{"method": string(method), "domain": domain})
}

func (a audit) Limited(rule string) { a.record(auditLimitHit, map[string]any{"limit": rule}) }

func (a audit) MailGivenUp(method flow.Method) {
	a.record(auditMailGivenUp, map[string]any{"method": string(method)})
}

func (a audit) SignedOut(userID string, everywhere bool) {
	a.record(auditSignedOut, map[string]any{"user_id": userID, "everywhere": everywhere})
}

func (a audit) PasswordSet(userID string) {
	a.record(auditPasswordSet, map[string]any{"user_id": userID})
}

func (a audit) UserChanged(userID string, change flow.UserChange, by string) {
	a.record(auditUserPrefix+string(change), map[string]any{"user_id": userID, "by": by})
}

func (a audit) EmailLinkRevoked(userID string) {
	a.record(auditEmailLinkEnded, map[string]any{"user_id": userID})
}

func (a audit) KeyRotated(kid string) { a.record(auditKeyRotated, map[string]any{"kid": kid}) }

// What failed, the mail queue's work and the store's round trips are the
// operator's log's and the metrics' business, not the audit trail's.
func (audit) Failed(string, error)                           {}
func (audit) MailDelivered(string, int, time.Duration)       {}
func (audit) MailRetried(string)                             {}
func (audit) StoreCall(string, string, time.Duration, error) {}
func (audit) TokenIssued(string)                             {}

var _ flow.ActorObserver = audit{}
