package caddymodule

import (
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

var _ flow.Observer = events{}
