package clientapi

import (
	"strings"
	"time"

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
	return EmailCodeItems{Email: maskEmail(st.Email), ExpiresIn: max(0, int((left+time.Second-1)/time.Second))}
}

// maskEmail shows enough of an address for its owner to know it (the
// first and last characters of the local part, and the domain), as the
// code page does.
func maskEmail(email string) string {
	const dots = "•••"
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return dots
	}
	local, domain := []rune(email[:at]), email[at:]
	switch len(local) {
	case 0:
		return dots + domain
	case 1:
		return string(local[0]) + dots + domain
	}
	return string(local[0]) + dots + string(local[len(local)-1]) + domain
}
