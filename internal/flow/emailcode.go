package flow

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/limit"
	"github.com/mailgate/caddy-mailgate/internal/mail"
	"github.com/mailgate/caddy-mailgate/internal/ticket"
)

// EmailCodeTTL is how long a mailed code works: exactly three minutes (seed 003).
const EmailCodeTTL = 3 * time.Minute

// CodeDigits is the length of a mailed code.
const CodeDigits = 6

// MaxPayload bounds the custom data an app may attach to a code login. The
// contract recommends under 500 characters; the bound leaves room and keeps
// one visitor from filling the store.
const MaxPayload = 2 << 10

// ErrCodeWrong is a code that is not the one mailed for the operation. It
// comes as a *WrongCodeError, which says how many tries are left.
var ErrCodeWrong = errors.New("flow: wrong code")

// CodeAttempts is how many codes may be tried against one operation: the
// contract's three. The third wrong one ends the operation.
const CodeAttempts = 3

// RuleWrongCodes names the per-address bound on wrong codes in an
// *limit.ExceededError.
const RuleWrongCodes = "wrong_codes_per_address"

// WrongCodeError is a wrong code, with the tries its operation has left; at
// 0 the operation is over and the person needs a new code.
type WrongCodeError struct{ Left int }

func (e *WrongCodeError) Error() string {
	return fmt.Sprintf("flow: wrong code, %d tries left", e.Left)
}

// Is makes a WrongCodeError an ErrCodeWrong.
func (e *WrongCodeError) Is(target error) bool { return target == ErrCodeWrong }

// ErrCodeExpired covers an operation that is unknown, expired, used,
// superseded by a newer code, or for another project or address, or whose
// address may no longer log in: the app is told only that it is over.
var ErrCodeExpired = errors.New("flow: the code has expired or was used")

// ErrNotConfirmed is asking for the code of an operation whose mailed link
// nobody has confirmed yet: the app polls until somebody does.
var ErrNotConfirmed = errors.New("flow: the link has not been confirmed yet")

// CodeLimits bound code logins. Each is counted in the store, so a cluster
// sharing the store shares the counts.
type CodeLimits struct {
	// PerIP counts start requests per client IP (IPv6 per /64 and /48).
	PerIP limit.Rule
	// PerAddress counts mails per recipient address, for every address
	// alike, so being over it tells nothing about who has an account.
	PerAddress limit.Rule
	// WrongPerAddress counts wrong codes per project and address, across
	// operations, so that starting again buys only a bounded number of
	// guesses. Each operation allows CodeAttempts on its own; this bound is
	// the softer one above them, and while an address is over it no code
	// is mailed to it (the person is offered a link instead).
	WrongPerAddress limit.Rule
}

// EmailCode is the login-by-mailed-code flow behind the client-side "auth by
// email" API (seed 003): an app starts it for an address and gets an
// operation id; mailgate mails a six-digit code (and, if asked, a link); the
// person types the code into the app, or confirms through the link and the
// app fetches the code; the app completes the operation with the code for a
// login. An address outside the allow rules gets the same answer and no
// mail, and gets an account at its first completed login like the browser
// form's.
//
// The operation id is the secret the store hashes (ticket.Kind); the code
// travels inside the operation, since the app may fetch it once the link is
// confirmed.
type EmailCode struct {
	Store     ticket.Store
	Users     Users
	Mailer    Mailer
	Allowlist Allowlist
	// LinkURL turns a link secret into the confirmation page's URL, for a
	// page in locale that knows which project's link it is, built from the
	// configured base URL.
	LinkURL  func(secret, locale, project string) string
	SiteName string
	Now      func() time.Time
	Limits   CodeLimits
	// Observer is told of the codes mailed, refused and given up. Nil:
	// nobody is told.
	Observer Observer
}

// CodeRequest is an app's request for a code. The caller has checked
// Project, LoginURL and LinkURL against the project's configuration.
type CodeRequest struct {
	Project string
	// App names the project in the mail.
	App      string
	Email    string
	LoginURL string
	// SendLink asks for a link in the mail besides the code; LinkURL is
	// where the person is sent once they confirmed it.
	SendLink bool
	LinkURL  string
	// Payload is the app's custom data, returned with the login.
	Payload    string
	WithLogout bool
	Locale     string
	Requester  Requester
}

// CodeLogin is a completed code login.
type CodeLogin struct {
	User       directory.User
	Project    string
	LoginURL   string
	Payload    string
	WithLogout bool
}

// codeOperation is what an operation id stands for in the store.
type codeOperation struct {
	Project    string `json:"project"`
	Email      string `json:"email"`
	Code       string `json:"code"`
	LoginURL   string `json:"login_url"`
	Payload    string `json:"payload,omitempty"`
	WithLogout bool   `json:"with_logout,omitempty"`
	Locale     string `json:"locale,omitempty"`
	// Expires is when the code stops working, in Unix nanoseconds: the
	// store's own expiry may be coarser than the contract's three minutes.
	Expires int64 `json:"expires"`
	// Issued is when the code was mailed, in Unix nanoseconds, held
	// against the address's EndPending.
	Issued int64 `json:"issued,omitempty"`
	// Decoy marks the operation of an address outside the allow rules: it
	// answers every code as wrong, so that the app cannot tell it from a
	// real one by what a wrong code gets.
	Decoy bool `json:"decoy,omitempty"`
}

// codeLink is what a mailed link's secret stands for: the operation it
// confirms, by the digest of its id (the store never holds a secret).
type codeLink struct {
	Project string `json:"project"`
	Email   string `json:"email"`
	Digest  string `json:"op"`
	LinkURL string `json:"link_url"`
	Expires int64  `json:"expires"`
	Locale  string `json:"locale,omitempty"`
}

func (f *EmailCode) operations() ticket.Kind[codeOperation] {
	return ticket.Kind[codeOperation]{Store: f.Store, Name: "email-code"}
}

func (f *EmailCode) links() ticket.Kind[codeLink] {
	return ticket.Kind[codeLink]{Store: f.Store, Name: "email-code-link"}
}

// Start mails a code for r.Email and returns the operation's id. An address
// outside the allow rules gets an id too, and no mail, after the same store
// writes and queue check, so that neither the answer nor its timing tells
// who may log in. It fails with a *limit.ExceededError over a limit,
// directory.ErrInvalidEmail for an address that does not parse, a
// TooLongError for a payload over MaxPayload, and ErrDelivery when the mail
// queue cannot take a letter, whether or not one was due.
func (f *EmailCode) Start(ctx context.Context, r CodeRequest) (string, error) {
	if err := f.Limits.PerIP.HitIP(ctx, f.Store, "requests_per_ip", r.Requester.IP); err != nil {
		return "", err
	}
	email, err := directory.NormalizeEmail(r.Email)
	if err != nil {
		return "", err
	}
	if err := checkLength("payload", r.Payload, MaxPayload); err != nil {
		return "", err
	}
	// A code the address may not try would be a mail that cannot be used.
	if err := f.wrongCodes().Locked(ctx, r.Project+"\n"+email); err != nil {
		return "", err
	}
	if err := f.Limits.PerAddress.Hit(ctx, f.Store, "mails_per_address", email); err != nil {
		return "", err
	}
	if err := f.Mailer.Room(); err != nil {
		return "", fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	if !f.Allowlist.Allows(email) {
		ObservedIn(ctx, f.Observer).Refused(MethodCode, email[strings.LastIndexByte(email, '@')+1:])
		return f.startNothing(ctx, r, email)
	}
	r.Email = email
	return f.start(ctx, r)
}

// start issues the operation (superseding the project's previous one for
// the address) and, if asked, its link, and queues the letter.
func (f *EmailCode) start(ctx context.Context, r CodeRequest) (string, error) {
	now := f.Now()
	op := codeOperation{
		Project: r.Project, Email: r.Email, Code: newCode(), LoginURL: r.LoginURL,
		Payload: r.Payload, WithLogout: r.WithLogout, Locale: r.Locale,
		Issued: now.UnixNano(), Expires: now.Add(EmailCodeTTL).UnixNano(),
	}
	id, err := f.operations().Issue(ctx, r.Project+"\n"+r.Email, op, EmailCodeTTL)
	if err != nil {
		return "", fmt.Errorf("flow: storing a code: %w", err)
	}
	letter := mail.Letter{
		To: r.Email, Locale: r.Locale, Template: "code", SiteName: f.SiteName, App: r.App,
		Code: op.Code, Expires: EmailCodeTTL,
		RequestedAt: now, RequestIP: r.Requester.IP, RequestAgent: r.Requester.Agent,
	}
	if r.SendLink {
		link := codeLink{
			Project: r.Project, Email: r.Email, Digest: digest(id), LinkURL: r.LinkURL,
			Expires: op.Expires, Locale: r.Locale,
		}
		secret, err := f.links().Issue(ctx, "", link, EmailCodeTTL)
		if err != nil {
			_ = f.operations().Drop(context.WithoutCancel(ctx), id)
			return "", fmt.Errorf("flow: storing a code's link: %w", err)
		}
		letter.Link = f.LinkURL(secret, r.Locale, r.Project)
	}
	drop := func(ctx context.Context) error {
		if err := f.operations().Drop(ctx, id); err != nil {
			return fmt.Errorf("flow: dropping an undelivered code: %w", err)
		}
		return nil
	}
	given := func(ctx context.Context) error {
		Observed(f.Observer).MailGivenUp(MethodCode)
		return drop(ctx)
	}
	if err := f.Mailer.Enqueue(letter, given); err != nil {
		_ = drop(context.WithoutCancel(ctx))
		return "", fmt.Errorf("%w: %w", ErrDelivery, err)
	}
	ObservedIn(ctx, f.Observer).LoginStarted(MethodCode)
	return id, nil
}

// startNothing answers a request that gets no mail like one that does: an
// operation that no code completes (Decoy), which counts tries and ends
// after three wrong ones like a real one, after as many store writes as
// start makes (the link's is a delete of a key nobody has).
func (f *EmailCode) startNothing(ctx context.Context, r CodeRequest, email string) (string, error) {
	op := codeOperation{
		Project: r.Project, Email: email, Code: newCode(), Decoy: true,
		Expires: f.Now().Add(EmailCodeTTL).UnixNano(),
	}
	id, err := f.operations().Issue(ctx, r.Project+"\n"+email, op, EmailCodeTTL)
	if err != nil {
		return "", fmt.Errorf("flow: storing a code: %w", err)
	}
	if r.SendLink {
		if err := f.links().Drop(ctx, ticket.NewSecret()); err != nil {
			return "", fmt.Errorf("flow: storing a code's link: %w", err)
		}
	}
	return id, nil
}

// Complete checks code against the operation and, when it is the one
// mailed, consumes the operation and returns the login; the first login of
// an allowed address creates its user. Each try is counted before the code
// is compared, against the operation (CodeAttempts: the last wrong one
// drops the operation, and a try past them is not compared) and against the project and address (Limits.WrongPerAddress, a
// *limit.ExceededError when over it), so that tries sent at once get no
// more compares than tries sent one by one. An unknown, expired, used or
// used-up operation is ErrCodeExpired, a wrong code a *WrongCodeError.
func (f *EmailCode) Complete(ctx context.Context, project, email, id, code string) (CodeLogin, error) {
	email, err := directory.NormalizeEmail(email)
	if err != nil {
		return CodeLogin{}, ErrCodeExpired
	}
	op, err := f.operation(ctx, project, email, id)
	if err != nil {
		return CodeLogin{}, err
	}
	n, err := f.operations().Attempt(ctx, id, CodeAttempts)
	if errors.Is(err, ticket.ErrNotFound) || (err == nil && n > CodeAttempts) {
		ObservedIn(ctx, f.Observer).LoginFailed(MethodCode, "code_expired")
		return CodeLogin{}, ErrCodeExpired
	}
	if err != nil {
		return CodeLogin{}, fmt.Errorf("flow: counting a code's try: %w", err)
	}
	subject := project + "\n" + email
	try, err := f.wrongCodes().Try(ctx, subject)
	if err != nil {
		return CodeLogin{}, err
	}
	// A try that was not a wrong code is given back. Should that fail, the
	// address is over-counted by one for the window: nothing to refuse for.
	defer func() { _ = try.Done(context.WithoutCancel(ctx)) }()
	if subtle.ConstantTimeCompare([]byte(normalizeCode(code)), []byte(op.Code)) != 1 || op.Decoy {
		try.Failed()
		if n == CodeAttempts {
			// The last try is spent: nothing may be tried against this
			// code again.
			if err := f.operations().Drop(ctx, id); err != nil {
				return CodeLogin{}, fmt.Errorf("flow: dropping a guessed code: %w", err)
			}
		}
		ObservedIn(ctx, f.Observer).LoginFailed(MethodCode, "wrong_code")
		return CodeLogin{}, &WrongCodeError{Left: int(CodeAttempts - n)}
	}
	if err := f.wrongCodes().Forgive(ctx, subject); err != nil {
		return CodeLogin{}, err
	}
	// Of two completions with the right code, one takes the operation; it
	// is put back if the login cannot be completed now (see redeem).
	var login CodeLogin
	err = redeem(ctx, f.operations(), id, f.Now, codeOperationHeld, func(op codeOperation) error {
		// The allow rules may have shrunk since the code was mailed.
		if !f.Allowlist.Allows(op.Email) {
			return ErrLinkInvalid
		}
		u, err := signingIn(ctx, f.Users, f.Store, op.Email, time.Unix(0, op.Issued))
		if err != nil {
			return err
		}
		login = CodeLogin{User: u, Project: op.Project, LoginURL: op.LoginURL, Payload: op.Payload, WithLogout: op.WithLogout}
		return nil
	})
	if errors.Is(err, ErrLinkInvalid) {
		return CodeLogin{}, ErrCodeExpired
	}
	return login, err
}

// codeOperationHeld is who an operation was issued for, as start issued
// it, and when its code expires.
func codeOperationHeld(op codeOperation) (string, time.Time) {
	return op.Project + "\n" + op.Email, time.Unix(0, op.Expires)
}

// CompleteOperation is Complete for a caller that holds the operation id
// but not the address: the browser form, whose code page keeps only a
// masked address. The address is the operation's own.
func (f *EmailCode) CompleteOperation(ctx context.Context, project, id, code string) (CodeLogin, error) {
	op, err := f.peek(ctx, id)
	if err != nil {
		return CodeLogin{}, err
	}
	return f.Complete(ctx, project, op.Email, id, code)
}

// Code returns the operation's code for the app that started it, once a
// person has confirmed the mailed link (ConfirmLink); before that,
// ErrNotConfirmed.
func (f *EmailCode) Code(ctx context.Context, project, email, id string) (string, error) {
	email, err := directory.NormalizeEmail(email)
	if err != nil {
		return "", ErrCodeExpired
	}
	op, err := f.operation(ctx, project, email, id)
	if err != nil {
		return "", err
	}
	confirmed, err := f.Store.Marked(ctx, confirmedKey(digest(id)))
	if err != nil {
		return "", fmt.Errorf("flow: reading a code's confirmation: %w", err)
	}
	if !confirmed {
		return "", ErrNotConfirmed
	}
	return op.Code, nil
}

// LinkAccount returns the address a code's link confirms, without
// consuming it, for the confirmation page.
func (f *EmailCode) LinkAccount(ctx context.Context, secret string) (string, error) {
	l, err := f.links().Peek(ctx, secret)
	if errors.Is(err, ticket.ErrNotFound) || (err == nil && !f.Now().Before(time.Unix(0, l.Expires))) {
		return "", ErrLinkInvalid
	}
	if err != nil {
		return "", fmt.Errorf("flow: reading a code's link: %w", err)
	}
	return l.Email, nil
}

// ConfirmLink consumes a code's link and records that its operation was
// confirmed, so that the app that started it may fetch the code; it returns
// where the person goes next (the app's status page, link_url). The
// confirmation is a marker next to the operation rather than a change to
// it: rewriting the operation could bring back one completed meanwhile. A
// confirmation the store has no room for leaves the link usable (see
// redeem).
func (f *EmailCode) ConfirmLink(ctx context.Context, secret string) (string, error) {
	var next string
	err := redeem(ctx, f.links(), secret, f.Now, codeLinkHeld, func(l codeLink) error {
		left := time.Unix(0, l.Expires).Sub(f.Now())
		if left <= 0 {
			return ErrLinkInvalid
		}
		if _, err := f.Store.Mark(ctx, confirmedKey(l.Digest), left); err != nil {
			return fmt.Errorf("flow: recording a code's confirmation: %w", err)
		}
		next = l.LinkURL
		return nil
	})
	return next, err
}

// codeLinkHeld is when a code's link expires; it has no owner.
func codeLinkHeld(l codeLink) (string, time.Time) { return "", time.Unix(0, l.Expires) }

// operation reads the live operation behind id for project and email.
func (f *EmailCode) operation(ctx context.Context, project, email, id string) (codeOperation, error) {
	op, err := f.peek(ctx, id)
	if err != nil {
		return codeOperation{}, err
	}
	if op.Project != project || op.Email != email || !f.Now().Before(time.Unix(0, op.Expires)) {
		return codeOperation{}, ErrCodeExpired
	}
	return op, nil
}

// peek reads the operation behind id without consuming it; an unknown one
// is ErrCodeExpired.
func (f *EmailCode) peek(ctx context.Context, id string) (codeOperation, error) {
	op, err := f.operations().Peek(ctx, id)
	if errors.Is(err, ticket.ErrNotFound) {
		return codeOperation{}, ErrCodeExpired
	}
	if err != nil {
		return codeOperation{}, fmt.Errorf("flow: reading a code: %w", err)
	}
	return op, nil
}

func (f *EmailCode) wrongCodes() limit.Failures {
	return limit.Failures{Rule: f.Limits.WrongPerAddress, Store: f.Store, Name: RuleWrongCodes}
}

// newCode is CodeDigits uniformly random decimal digits from crypto/rand.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		// crypto/rand does not fail on supported platforms (Go 1.24+).
		panic(err)
	}
	return fmt.Sprintf("%0*d", CodeDigits, n)
}

// normalizeCode drops the spaces a person types or pastes into a code.
func normalizeCode(code string) string {
	return strings.Join(strings.Fields(code), "")
}

// digest names an operation without its secret id.
func digest(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

func confirmedKey(digest string) string { return "email-code-confirmed:" + digest }
