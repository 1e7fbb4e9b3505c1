package clientapi

import (
	"time"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/flow"
)

// EmailCodeItems is the items of next "email_code": where the code went,
// masked, and how many seconds it (and the stateToken) still work.
type EmailCodeItems struct {
	Email     string `json:"email"`
	ExpiresIn int    `json:"expiresIn"`
}

// items is what st's step needs, in the seed's items; null for the steps
// that need nothing to be shown.
func (h *SignIn) items(st flow.SignInState) any {
	if st.Step != flow.StepEmailCode {
		return nil
	}
	now := time.Now
	if h.Now != nil {
		now = h.Now
	}
	left := time.Unix(0, st.Expires).Sub(now())
	return EmailCodeItems{Email: directory.MaskEmail(st.Email), ExpiresIn: max(0, int((left+time.Second-1)/time.Second))}
}
