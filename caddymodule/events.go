package caddymodule

import (
	"time"

	"go.uber.org/zap"

	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// events is the Observer that writes what the flows and contracts report
// as lines in the operator's log. None holds an address or a secret: a
// refusal names the domain, a login the user id.
type events struct{ logger *zap.Logger }

func (e events) LoginStarted(method flow.Method) {
	e.logger.Debug("login mail handed on for delivery", zap.String("method", string(method)))
}

func (e events) LoginDone(userID string, method flow.Method) {
	e.logger.Info("login", zap.String("user_id", userID), zap.String("method", string(method)))
}

// Refused tells an operator whose allow rule is wrong why nobody gets a
// mail, which the person's answer must not tell.
func (e events) Refused(method flow.Method, domain string) {
	msg := "a login request matched no allow rule; no mail was sent"
	if method == flow.MethodCode {
		msg = "a code request matched no allow rule; no mail was sent"
	}
	e.logger.Info(msg, zap.String("domain", domain))
}

func (e events) Limited(rule string) {
	e.logger.Info("a login request was over a limit; no mail was sent", zap.String("limit", rule))
}

// MailGivenUp writes nothing: the mail queue has logged the letter it gave
// up, with the mail server's answer, at error.
func (e events) MailGivenUp(flow.Method) {}

func (e events) SignedOut(userID string, everywhere bool) {
	if everywhere {
		e.logger.Info("logout everywhere (with_logout)", zap.String("user_id", userID))
		return
	}
	e.logger.Info("logout", zap.String("user_id", userID))
}

func (e events) PasswordSet(userID string) {
	e.logger.Info("password set", zap.String("user_id", userID))
}

// UserChanged is the audit line of who changed a user's standing.
func (e events) UserChanged(userID string, change flow.UserChange, by string) {
	e.logger.Info("user "+string(change), zap.String("user_id", userID), zap.String("by", by))
}

// EmailLinkRevoked is worth an operator's attention: someone was sent an
// invitation or a reset they say they did not expect.
func (e events) EmailLinkRevoked(userID string) {
	e.logger.Warn("an email link was revoked by its recipient (this wasn't me)", zap.String("user_id", userID))
}

func (e events) Failed(what string, err error) { e.logger.Error(what, zap.Error(err)) }

// MailDelivered and MailRetried write nothing: the mail queue logs each
// delivery at debug and each retry at warn, with the recipient's domain.
func (e events) MailDelivered(string, int, time.Duration) {}
func (e events) MailRetried(string)                       {}

// LoginFailed is at debug: a dead link or a wrong code is everyday; the
// audit log and the metrics keep count of them.
func (e events) LoginFailed(method flow.Method, reason string) {
	e.logger.Debug("a login secret was refused", zap.String("method", string(method)), zap.String("reason", reason))
}

// KeyRotated writes nothing: the key upkeep logs the rotation itself.
func (e events) KeyRotated(string) {}

// TokenIssued writes nothing: a login's line says as much.
func (e events) TokenIssued(string) {}

// StoreCall writes nothing: a failing store is logged by whoever called it.
func (e events) StoreCall(string, string, time.Duration, error) {}

var _ flow.Observer = events{}

// observers tells every Observer in it what it is told: the log lines,
// the metrics and the audit trail are three, each its own file.
type observers []flow.Observer

func (o observers) LoginStarted(m flow.Method) {
	for _, x := range o {
		x.LoginStarted(m)
	}
}

func (o observers) LoginDone(userID string, m flow.Method) {
	for _, x := range o {
		x.LoginDone(userID, m)
	}
}

func (o observers) Refused(m flow.Method, domain string) {
	for _, x := range o {
		x.Refused(m, domain)
	}
}

func (o observers) Limited(rule string) {
	for _, x := range o {
		x.Limited(rule)
	}
}

func (o observers) MailGivenUp(m flow.Method) {
	for _, x := range o {
		x.MailGivenUp(m)
	}
}

func (o observers) SignedOut(userID string, everywhere bool) {
	for _, x := range o {
		x.SignedOut(userID, everywhere)
	}
}

func (o observers) PasswordSet(userID string) {
	for _, x := range o {
		x.PasswordSet(userID)
	}
}

func (o observers) UserChanged(userID string, change flow.UserChange, by string) {
	for _, x := range o {
		x.UserChanged(userID, change, by)
	}
}

func (o observers) EmailLinkRevoked(userID string) {
	for _, x := range o {
		x.EmailLinkRevoked(userID)
	}
}

func (o observers) Failed(what string, err error) {
	for _, x := range o {
		x.Failed(what, err)
	}
}

func (o observers) MailDelivered(template string, attempts int, latency time.Duration) {
	for _, x := range o {
		x.MailDelivered(template, attempts, latency)
	}
}

func (o observers) MailRetried(template string) {
	for _, x := range o {
		x.MailRetried(template)
	}
}

func (o observers) LoginFailed(m flow.Method, reason string) {
	for _, x := range o {
		x.LoginFailed(m, reason)
	}
}

func (o observers) KeyRotated(kid string) {
	for _, x := range o {
		x.KeyRotated(kid)
	}
}

func (o observers) StoreCall(backend, op string, d time.Duration, err error) {
	for _, x := range o {
		x.StoreCall(backend, op, d, err)
	}
}

func (o observers) TokenIssued(kind string) {
	for _, x := range o {
		x.TokenIssued(kind)
	}
}

// Acting binds every observer in o that records actors to a.
func (o observers) Acting(a flow.Actor) flow.Observer {
	bound := make(observers, len(o))
	for i, x := range o {
		bound[i] = x
		if ao, ok := x.(flow.ActorObserver); ok {
			bound[i] = ao.Acting(a)
		}
	}
	return bound
}

var _ flow.ActorObserver = observers(nil)
