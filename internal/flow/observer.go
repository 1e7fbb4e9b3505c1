package flow

import (
	"context"
	"time"
)

// Observer is told what the flows and the contracts over them do that an
// operator may want to see: the log lines, the metrics and the audit
// trail are implementations of it (caddymodule's events.go, metrics.go,
// audit.go), so a new signal is a method here and a line in each
// implementation, not a call sprinkled through handlers. It is called on
// the request's goroutine (MailGivenUp, MailDelivered and MailRetried on
// the mail queue's, KeyRotated on the key upkeep's) and must not block. Nothing it is told holds a secret or an address.
type Observer interface {
	// LoginStarted: a mail that starts a login by method was handed on
	// for delivery.
	LoginStarted(method Method)
	// LoginDone: userID signed in by method, and has a session or a
	// token.
	LoginDone(userID string, method Method)
	// Refused: an address of domain asked for a mail by method and matched
	// no allow rule; none was sent, and the person was answered as if it
	// had been.
	Refused(method Method, domain string)
	// Limited: rule silently stopped a mail; the person was answered as
	// if it went out.
	Limited(rule string)
	// MailGivenUp: a login mail was given up and its link or code dropped.
	MailGivenUp(method Method)
	// SignedOut: userID's session ended, or with everywhere every session
	// and user JWT issued to userID until now (with_logout).
	SignedOut(userID string, everywhere bool)
	// PasswordSet: userID chose a password.
	PasswordSet(userID string)
	// UserChanged: by (the command line, or an API client) created,
	// enabled, disabled or deleted userID. A disable is reported once it
	// is stored, before every session, token, link and code of the user is
	// ended; a failure to end them is reported as Failed.
	UserChanged(userID string, change UserChange, by string)
	// EmailLinkRevoked: the recipient of userID's invitation or reset
	// link said it was not for them ("this wasn't me"), which ended it.
	EmailLinkRevoked(userID string)
	// Failed: what could not be done, for err; the answer said only that
	// it failed, or nothing.
	Failed(what string, err error)

	// MailDelivered: the mail server took a mail of template after
	// attempts tries, latency after it was queued. Called on the mail
	// queue's goroutine.
	MailDelivered(template string, attempts int, latency time.Duration)
	// MailRetried: a mail of template failed an attempt and is tried
	// again after a wait. Called on the mail queue's goroutine.
	MailRetried(template string)
	// LoginFailed: a secret offered to sign in by method was refused for
	// reason (LinkDead: a link unknown, used or expired).
	LoginFailed(method Method, reason string)
	// KeyRotated: the realm's signing key was rotated; kid is the new key.
	// Called on the key upkeep's goroutine.
	KeyRotated(kid string)
	// StoreCall: the ticket store (backend: memory or redis) answered op
	// after d, with err when it failed (a missing key is no failure). It
	// is called for every round trip, so it must cost next to nothing.
	StoreCall(backend, op string, d time.Duration, err error)
	// TokenIssued: a token of kind (TokenSession, TokenAccess, TokenID,
	// TokenUserJWT) was signed for someone.
	TokenIssued(kind string)
}

// The kinds of token TokenIssued reports.
const (
	TokenSession = "session"
	TokenAccess  = "access_token"
	TokenID      = "id_token"
	TokenUserJWT = "user_jwt"
)

// LinkDead is LoginFailed's reason for a link that is unknown, used or
// expired: the three look alike by design.
const LinkDead = "link_dead"

// Actor is who a request came from, as the server resolved it: what an
// audit trail records beside what was done. The server puts it in each
// request's context (WithActor); ObservedIn hands it to an observer that
// records it, so no flow's signature has to carry it.
type Actor struct {
	// IP is the client IP (trusted proxies only, never a raw header).
	IP string
	// Client is the app the request came through, when one did.
	Client string
}

type actorKey struct{}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorOf returns the Actor ctx carries, or the zero Actor.
func ActorOf(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}

// ActorObserver is an Observer that records who did what: Acting returns
// it bound to the request's actor.
type ActorObserver interface {
	Observer
	Acting(a Actor) Observer
}

// ObservedIn is Observed, bound to ctx's Actor when o records actors and
// ctx carries one. It costs an allocation; the hot path does not call it.
func ObservedIn(ctx context.Context, o Observer) Observer {
	o = Observed(o)
	if ao, ok := o.(ActorObserver); ok {
		if a, ok := ctx.Value(actorKey{}).(Actor); ok {
			return ao.Acting(a)
		}
	}
	return o
}

// Method is how a person signs in.
type Method string

// The ways to sign in today; OpenID and passkeys come next.
const (
	// MethodLink is a mailed sign-in link.
	MethodLink Method = "link"
	// MethodCode is a mailed code, typed in or confirmed through its link.
	MethodCode Method = "code"
	// MethodPassword is a username and password.
	MethodPassword Method = "password"
	// MethodInvitation is an invitation's email link (seed 001).
	MethodInvitation Method = "invitation"
	// MethodPasswordReset is a password reset's email link (seed 001).
	MethodPasswordReset Method = "password_reset"
)

// UserChange is what UserChanged reports.
type UserChange string

// The changes of a user's standing that are reported.
const (
	UserCreated  UserChange = "created"
	UserEnabled  UserChange = "enabled"
	UserDisabled UserChange = "disabled"
	UserDeleted  UserChange = "deleted"
)

// Observed returns o, or an Observer that ignores everything when o is
// nil: the zero value of an Observer field means nobody is listening.
func Observed(o Observer) Observer {
	if o == nil {
		return Unobserved{}
	}
	return o
}

// Unobserved ignores everything it is told. A test's observer embeds it
// and keeps only the methods it checks.
type Unobserved struct{}

func (Unobserved) LoginStarted(Method)                    {}
func (Unobserved) LoginDone(string, Method)               {}
func (Unobserved) Refused(Method, string)                 {}
func (Unobserved) Limited(string)                         {}
func (Unobserved) MailGivenUp(Method)                     {}
func (Unobserved) SignedOut(string, bool)                 {}
func (Unobserved) PasswordSet(string)                     {}
func (Unobserved) UserChanged(string, UserChange, string) {}
func (Unobserved) EmailLinkRevoked(string)                {}
func (Unobserved) Failed(string, error)                   {}

func (Unobserved) MailDelivered(string, int, time.Duration)       {}
func (Unobserved) MailRetried(string)                             {}
func (Unobserved) LoginFailed(Method, string)                     {}
func (Unobserved) KeyRotated(string)                              {}
func (Unobserved) StoreCall(string, string, time.Duration, error) {}
func (Unobserved) TokenIssued(string)                             {}

var _ Observer = Unobserved{}
