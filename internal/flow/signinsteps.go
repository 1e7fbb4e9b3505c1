package flow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/password"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// SignInStep is what a password sign-in must do before its session starts:
// seed 004's next.
type SignInStep string

// The steps, spelled as seed 004's next spells them.
const (
	// StepDone: nothing is left; the session starts.
	StepDone SignInStep = "done"
	// StepExpiredPassword: the password is past its age
	// (SignInSteps.PasswordMaxAge) or the operator expired it; a new one
	// must be chosen before any session starts.
	StepExpiredPassword SignInStep = "expired_password"
	// StepPersist: the client offers "keep me signed in", and the person
	// answers before the session starts, so that its cookie is the one
	// they chose.
	StepPersist SignInStep = "persist"
)

// RuleSameAsExpired is a new password that is the expired one: an expiry
// the operator ordered (a password that may have leaked) would otherwise
// change nothing.
const RuleSameAsExpired password.Rule = "same_as_expired"

// StateTokenTTL is how long a stateToken can be used.
const StateTokenTTL = 10 * time.Minute

// ErrStateInvalid is a stateToken that is unknown, used, expired, for
// another step, or for another client: one error, so that the answer does
// not tell which.
var ErrStateInvalid = errors.New("flow: the stateToken is unknown, used, expired or not for this step")

// SignInState is a password sign-in waiting at a step, carried by a
// stateToken: what it needs to go on without the password.
type SignInState struct {
	Step     SignInStep `json:"step"`
	UserID   string     `json:"user_id"`
	ClientID string     `json:"client_id"`
	// Persistent is what the sign-in asked for: the session is kept when
	// no persist step asks again.
	Persistent bool `json:"persistent,omitempty"`
	// AskPersist is the client's ask_persist: the persist step comes last.
	AskPersist bool `json:"ask_persist,omitempty"`
	// Expires is when the token stops working, in Unix nanoseconds: the
	// store's own expiry follows its own clock (Redis's), this one the
	// flow's.
	Expires int64 `json:"expires"`
	// CodeOperation is the email-code operation of StepEmailCode, and
	// Email the address its code went to.
	CodeOperation string `json:"code_op,omitempty"`
	Email         string `json:"email,omitempty"`
}

// SignInStepUsers reads the account a step is for and stores its new
// password.
type SignInStepUsers interface {
	ByID(ctx context.Context, id string) (directory.User, error)
	SetPassword(ctx context.Context, id, hash string) error
}

// SignInSteps are the steps of seed 004 between a right password and a
// session: each waits in a one-time ticket (the stateToken), bound to its
// step by the ticket's kind, so that a token of one step is unknown to
// another and a refused one is not used up.
type SignInSteps struct {
	// Store keeps the tickets; only their hashes reach it.
	Store ticket.Store
	Users SignInStepUsers
	// Hashing bounds the argon2id work of a new password.
	Hashing *password.Hashing
	// PasswordMaxAge is how old a password may get before a sign-in must
	// replace it; zero: passwords do not age (NIST SP 800-63B-4 advises
	// against periodic change).
	PasswordMaxAge time.Duration
	// Failures counts tries at stateTokens per IP, before the token is
	// looked up (the failures_per_ip of every secret).
	Failures limit.Failures
	// EndSessions ends every session of userID issued before before
	// (session.Manager.RevokeUser): a replaced password leaves no other
	// device signed in.
	EndSessions func(ctx context.Context, userID string, before time.Time) error
	Now         func() time.Time
	// Observer is told of the passwords replaced. Nil: nobody is told.
	Observer Observer
	// SecondFactor are the clients, by id, whose sign-ins need an emailed
	// code after the password (StepEmailCode), mailed by Codes. Their new
	// passwords need only password.MinLengthWithSecond characters; such a
	// password signs in through no other client (Start).
	SecondFactor map[string]EmailCodeClient
	Codes        SignInCodes
}

func (f *SignInSteps) tickets(step SignInStep) ticket.Kind[SignInState] {
	return ticket.Kind[SignInState]{Store: f.Store, Name: "signin-" + string(step)}
}

// pending are the steps a stateToken can be for.
var pending = []SignInStep{StepEmailCode, StepExpiredPassword, StepPersist}

// Expired reports whether u's password must be replaced before u signs in.
// A password without a known set time does not age: its age is unknown.
func (f *SignInSteps) Expired(u directory.User) bool {
	if u.PasswordExpired {
		return true
	}
	return f.PasswordMaxAge > 0 && !u.PasswordSet.IsZero() && f.Now().Sub(u.PasswordSet) >= f.PasswordMaxAge
}

// Start returns the first step of a sign-in of u, whose password pw was
// right: StepDone, when the caller starts the session, or a step with the
// stateToken that goes on from it. st holds what the client asked for.
// The second factor comes first: nothing else is told or done before it.
// Its mail's refusals come through (see startCode). Without a second
// factor, a password that is expired, or too short to be the only factor
// (ShortForSingleFactor), must be replaced first: a password of 8
// characters that a second-factor client accepted does not sign in alone.
// Start measures pw itself, so that no caller can forget to.
func (f *SignInSteps) Start(ctx context.Context, who Requester, u directory.User, pw string, st SignInState) (SignInState, string, error) {
	st.UserID = u.ID
	st.Step = StepDone
	if c, ok := f.SecondFactor[st.ClientID]; ok {
		return f.startCode(ctx, who, u, st, c)
	}
	switch {
	case f.Expired(u), ShortForSingleFactor(pw):
		st.Step = StepExpiredPassword
	case st.AskPersist:
		st.Step = StepPersist
	}
	return f.park(ctx, st)
}

// park issues the stateToken of st's step; a sign-in that is done has none.
func (f *SignInSteps) park(ctx context.Context, st SignInState) (SignInState, string, error) {
	return f.parkFor(ctx, st, StateTokenTTL)
}

// parkFor is park with a token that works for ttl.
func (f *SignInSteps) parkFor(ctx context.Context, st SignInState, ttl time.Duration) (SignInState, string, error) {
	if st.Step == StepDone {
		return st, "", nil
	}
	st.Expires = f.Now().Add(ttl).UnixNano()
	token, err := f.tickets(st.Step).Issue(ctx, "", st, ttl)
	if err != nil {
		return SignInState{}, "", fmt.Errorf("flow: storing the sign-in's %s step: %w", st.Step, err)
	}
	return st, token, nil
}

// Resume hands use the step token waits at, its account and the token:
// what the sign-in answered when it issued it, without using the token up.
// A sign-in at StepEmailCode whose link was confirmed goes on instead: use
// gets the step after it, with its own token (none when it is StepDone,
// when use starts the session), and the token is used up (see
// resumeCode). The try is counted per IP before the token is looked up;
// over the limit, an *limit.ExceededError. An account that may no longer
// sign in is ErrMayNotSignIn.
func (f *SignInSteps) Resume(ctx context.Context, who Requester, token string, use func(u directory.User, st SignInState, stateToken string) error) error {
	return f.try(ctx, who, func() error {
		var st SignInState
		var err error
		for _, step := range pending {
			st, err = f.tickets(step).Peek(ctx, token)
			if !errors.Is(err, ticket.ErrNotFound) {
				break
			}
		}
		switch {
		case errors.Is(err, ticket.ErrNotFound):
			return ErrLinkInvalid
		case err != nil:
			return fmt.Errorf("flow: reading a stateToken: %w", err)
		case f.Now().UnixNano() >= st.Expires:
			return ErrLinkInvalid
		}
		u, err := f.account(ctx, st)
		if err != nil {
			return err
		}
		if st.Step == StepEmailCode {
			return f.resumeCode(ctx, token, st, u, use)
		}
		return use(u, st, token)
	})
}

// Persist uses up the persist step of token and hands the account and the
// state to use, which starts the session kept or not as the person chose.
// When use fails, the token is put back, so that the person can try again.
func (f *SignInSteps) Persist(ctx context.Context, who Requester, token string, use func(directory.User, SignInState) error) error {
	return f.try(ctx, who, func() error {
		return redeem(ctx, f.tickets(StepPersist), token, f.Now, stateHeld, func(st SignInState) error {
			if f.Now().UnixNano() >= st.Expires {
				return ErrLinkInvalid
			}
			u, err := f.account(ctx, st)
			if err != nil {
				return err
			}
			return use(u, st)
		})
	})
}

// UpdateExpired replaces the expired password of token's sign-in with pw
// for the client clientID: the policy is checked first (a
// *PasswordRulesError, and the token stays usable; so for the account's own
// words and for the expired password itself, RuleSameAsExpired, once the
// token shows whose it is), then the token is used up, the account's other sessions ended, the password stored (argon2id),
// and use is handed the account and what comes next (StepDone, when it
// starts the session, or the persist step and its new stateToken). A token
// of another client is ErrStateInvalid and used up: whoever holds it is not
// that client's page.
func (f *SignInSteps) UpdateExpired(ctx context.Context, who Requester, token, clientID, pw string,
	use func(u directory.User, next SignInState, nextToken string) error) error {
	if err := f.checkNew(clientID, pw); err != nil {
		return err
	}
	return f.try(ctx, who, func() error {
		return redeem(ctx, f.tickets(StepExpiredPassword), token, f.Now, stateHeld, func(st SignInState) error {
			if f.Now().UnixNano() >= st.Expires || st.ClientID != clientID {
				return ErrLinkInvalid
			}
			u, err := f.account(ctx, st)
			if err != nil {
				return err
			}
			if err := checkOwnWords(pw, u); err != nil {
				return err
			}
			var h password.Hash
			same := false
			if err := f.Hashing.Do(ctx, func() {
				if old, err := password.Parse(u.PasswordHash); err == nil && old.Matches(pw) {
					same = true
					return
				}
				h = password.New(pw)
			}); err != nil {
				return err
			}
			if same {
				return &PasswordRulesError{Rules: []password.Rule{RuleSameAsExpired}}
			}
			// The sessions end before the new password is stored: a
			// failure between the two must leave the step to retry, not a
			// replaced password with the old sessions running. The
			// cut-off is read before the new session is issued, so that
			// it ends every other session and not the new one (see
			// session.Manager.RevokeUser).
			cutoff := f.Now()
			if err := f.EndSessions(ctx, u.ID, cutoff); err != nil {
				return err
			}
			if err := f.Users.SetPassword(ctx, u.ID, h.String()); err != nil {
				return err
			}
			ObservedIn(ctx, f.Observer).PasswordSet(u.ID)
			next := st
			next.Step = StepDone
			if st.AskPersist {
				next.Step = StepPersist
			}
			next, nextToken, err := f.park(ctx, next)
			if err != nil {
				return err
			}
			return use(u, next, nextToken)
		})
	})
}

// checkNew holds a new password for a sign-in of clientID to the policy:
// at least password.MinLengthWithSecond characters where the client
// enforces a second factor, password.MinLengthSingleFactor elsewhere.
func (f *SignInSteps) checkNew(clientID, pw string) error {
	p := password.Policy{}
	if _, ok := f.SecondFactor[clientID]; ok {
		p.MinLength = password.MinLengthWithSecond
	}
	if broken := p.Check(pw); len(broken) > 0 {
		return &PasswordRulesError{Rules: broken}
	}
	return nil
}

// try counts one try at a stateToken from who's IP before do looks it up,
// and makes a token do did not find (ErrLinkInvalid) a failure of that IP
// and ErrStateInvalid.
func (f *SignInSteps) try(ctx context.Context, who Requester, do func() error) error {
	attempt, err := f.Failures.TryIP(ctx, who.IP)
	if err != nil {
		return err
	}
	defer func() { _ = attempt.Done(context.WithoutCancel(ctx)) }()
	err = do()
	if errors.Is(err, ErrLinkInvalid) {
		attempt.Failed()
		return ErrStateInvalid
	}
	return err
}

// account reads the account a state is for, which must still be allowed
// to sign in: one disabled or deleted since is ErrMayNotSignIn.
func (f *SignInSteps) account(ctx context.Context, st SignInState) (directory.User, error) {
	u, err := f.Users.ByID(ctx, st.UserID)
	if errors.Is(err, directory.ErrNotFound) || (err == nil && u.Status != directory.StatusActive) {
		return directory.User{}, ErrMayNotSignIn
	}
	return u, err
}

// stateHeld is when a stateToken expires; it has no owner.
func stateHeld(st SignInState) (string, time.Time) { return "", time.Unix(0, st.Expires) }
