package caddymodule

import (
	"cmp"
	"fmt"
	"runtime"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mailgate/caddy-mailgate/internal/clientapi"
	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

const (
	defaultHashingMemory = 256 << 20
	// hashingWait is how long a sign-in waits for a turn at hashing
	// before it is answered 503: long enough for a burst, short enough
	// that a flood is refused rather than queued.
	hashingWait = time.Second
	// hashingShare is the most of the machine's cores' time that checking
	// and storing passwords may take, so that a flood of passwords leaves
	// the rest to the proxied requests (docs/performance.md).
	hashingShare = 0.25
)

// hashingBounds spreads hashingShare of cores over its slots: half the
// cores (one at least) hash at once, each resting long enough between hashes
// that together they take no more than their share. On one core, one slot
// hashes a quarter of the time; on two, one slot half of it; on four, two.
func hashingBounds(cores int) (slots int, share float64) {
	slots = max(1, cores/2)
	return slots, min(1, hashingShare*float64(cores)/float64(slots))
}

// checkPasswordMaxAge refuses an age so short that a password could expire
// between its setting and the next sign-in.
func checkPasswordMaxAge(d caddy.Duration) error {
	if d != 0 && time.Duration(d) < 24*time.Hour {
		return fmt.Errorf("mailgate: password_max_age %s: must be at least 24h, or 0 for passwords that do not age", time.Duration(d))
	}
	return nil
}

func checkHashingMemory(n int64) error {
	if n < password.HashMemory {
		return fmt.Errorf("mailgate: password_hashing_memory %d bytes: must be at least 19MiB, the memory of one check", n)
	}
	return nil
}

// passwords is the password sign-in engine: the check of a username and
// password and the steps after it, built once per config so that seed
// 004's API, the login page's password form and the profile's change of
// password share one hashing bound, one lockout and one set of steps.
type passwords struct {
	signIn *flow.SignIn
	steps  *flow.SignInSteps
}

// provisionPasswords builds the password engine, or nil when nothing signs
// people in with passwords: no client has sign_in and password_login is
// off.
func (m *Mailgate) provisionPasswords(store ticket.Store, users *directory.Directory, allow flow.Allowlist) *passwords {
	someSignIn := m.PasswordLogin
	secondFactor := map[string]flow.EmailCodeClient{}
	for _, c := range m.Clients {
		someSignIn = someSignIn || c.SignIn
		if c.SecondFactor == SecondFactorEmailCode {
			ec := flow.EmailCodeClient{Name: cmp.Or(c.Name, c.ID)}
			if len(c.CORSOrigins) > 0 {
				ec.ReturnURL = c.CORSOrigins[0]
			}
			secondFactor[c.ID] = ec
		}
	}
	if !someSignIn {
		return nil
	}
	if m.PasswordHashingMemory == 0 {
		m.PasswordHashingMemory = defaultHashingMemory
	}
	// The new passwords of expired ones share the sign-ins' bound.
	slots, share := hashingBounds(runtime.GOMAXPROCS(0))
	hashing := password.NewHashing(m.PasswordHashingMemory, slots, share, hashingWait)
	return &passwords{
		signIn: &flow.SignIn{
			Users:     users,
			Allowlist: allow,
			Hashing:   hashing,
			Limits:    m.Limits.signInLimits(store),
			Observer:  m.observer,
		},
		steps: &flow.SignInSteps{
			Store:          store,
			Users:          users,
			Hashing:        hashing,
			PasswordMaxAge: time.Duration(m.PasswordMaxAge),
			Failures:       m.Limits.failures(store),
			EndSessions:    m.sessions.RevokeUser,
			Now:            now,
			Observer:       m.observer,
			SecondFactor:   secondFactor,
		},
	}
}

// provisionSignIn builds seed 004's sign-in for the clients that may sign
// people in; nil when none may, so that its route is not mounted.
func (m *Mailgate) provisionSignIn(pw *passwords) *clientapi.SignIn {
	clients := make(map[string]*clientapi.SignInClient, len(m.Clients))
	someSignIn := false
	for _, c := range m.Clients {
		clients[c.ID] = &clientapi.SignInClient{
			ID: c.ID, SignIn: c.SignIn, AskPersist: c.AskPersist, CORSOrigins: c.CORSOrigins,
			SecondFactor: c.SecondFactor != "",
		}
		someSignIn = someSignIn || c.SignIn
	}
	if !someSignIn {
		return nil
	}
	return &clientapi.SignIn{
		Clients:     clients,
		Credentials: pw.signIn,
		Steps:       pw.steps,
		Now:         now,
		Sessions:    m.sessions,
		Tenant:      m.Realm,
		Secure:      m.secure,
		ClientIP:    clientIP,
		Observer:    m.observer,
	}
}

// SecondFactorEmailCode is the second_factor of a client whose sign-ins
// need a code mailed after the password.
const SecondFactorEmailCode = "email_code"

// secondFactorBy gives the sign-in's email_code step the email-code
// engine, built after the sign-in since the engine's routes carry it.
func (pw *passwords) secondFactorBy(codes *flow.EmailCode) {
	if pw != nil {
		pw.steps.Codes = codes
	}
}
