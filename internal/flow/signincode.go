package flow

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailgate/caddy-mailgate/internal/directory"
)

// StepEmailCode: the client enforces a second factor. A code and a link
// are mailed to the account's address (by the email-code engine, with its
// limits and its count of tries); the sign-in waits at this step until
// the link is confirmed on mailgate's code-confirm page, and
// login-resume then takes it on.
const StepEmailCode SignInStep = "email_code"

// SignInCodes is the email-code engine (EmailCode) as the email_code step
// uses it: it mails, says whether the link was confirmed (ErrNotConfirmed
// until then, ErrCodeExpired once the operation is over) and takes the
// operation with its code, once.
type SignInCodes interface {
	Start(ctx context.Context, r CodeRequest) (string, error)
	Code(ctx context.Context, project, email, id string) (string, error)
	Complete(ctx context.Context, project, email, id, code string) (CodeLogin, error)
}

// EmailCodeClient is a client whose sign-ins need an emailed code after
// the password.
type EmailCodeClient struct {
	// Name is the app the mail names.
	Name string
	// ReturnURL is where the confirmation page sends the person back to
	// (the app); empty: no link.
	ReturnURL string
}

// signInCodeProject is the engine's project for a client's second
// factor: its own counts of mails and wrong codes, apart from seed 003's
// projects (whose ids are UUIDs).
func signInCodeProject(clientID string) string { return "sign-in:" + clientID }

// startCode mails the code of st's sign-in of u and parks the sign-in at
// StepEmailCode until the code's link is confirmed; the state expires with
// the code. The engine's refusals come through: an *limit.ExceededError
// over its limits, ErrDelivery when no mail can be queued.
func (f *SignInSteps) startCode(ctx context.Context, who Requester, u directory.User, st SignInState, c EmailCodeClient) (SignInState, string, error) {
	id, err := f.Codes.Start(ctx, CodeRequest{
		Project: signInCodeProject(st.ClientID), App: c.Name, Email: u.Email,
		SendLink: true, LinkURL: c.ReturnURL, Requester: who,
	})
	if err != nil {
		return SignInState{}, "", err
	}
	st.Step, st.CodeOperation, st.Email = StepEmailCode, id, u.Email
	return f.parkFor(ctx, st, EmailCodeTTL)
}

// resumeCode answers a resume of a sign-in at StepEmailCode: unchanged
// (the same token, not used up) until the code's link is confirmed; then
// the token is used up, once, and the operation with it, and use is handed
// the step after it (with its own token, or StepDone). Of resumes sent at
// once after the confirmation, one gets the next step and the others
// ErrLinkInvalid.
func (f *SignInSteps) resumeCode(ctx context.Context, token string, st SignInState, u directory.User,
	use func(directory.User, SignInState, string) error) error {
	project := signInCodeProject(st.ClientID)
	code, err := f.Codes.Code(ctx, project, st.Email, st.CodeOperation)
	switch {
	case errors.Is(err, ErrNotConfirmed):
		return use(u, st, token)
	case errors.Is(err, ErrCodeExpired):
		return ErrLinkInvalid
	case err != nil:
		return err
	}
	return redeem(ctx, f.tickets(StepEmailCode), token, f.Now, stateHeld, func(st SignInState) error {
		login, err := f.Codes.Complete(ctx, project, st.Email, st.CodeOperation, code)
		if errors.Is(err, ErrCodeExpired) || (err == nil && login.User.ID != st.UserID) {
			return ErrLinkInvalid
		}
		if err != nil {
			return fmt.Errorf("flow: completing a sign-in's code: %w", err)
		}
		next := st
		next.CodeOperation, next.Email = "", ""
		next.Step = StepDone
		switch {
		case f.Expired(u):
			next.Step = StepExpiredPassword
		case st.AskPersist:
			next.Step = StepPersist
		}
		next, nextToken, err := f.park(ctx, next)
		if err != nil {
			return err
		}
		return use(u, next, nextToken)
	})
}
