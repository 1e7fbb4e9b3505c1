// Package flow holds mailgate's login flows, a file each (mailed link,
// mailed code, app logins, the password step), as plain code over the
// ticket store, the directory and the mailer. It knows nothing of HTTP or
// Caddy: the contracts in api, clientapi and web decode a request, call a
// flow, and answer in their own shape. This file has what the flows share.
package flow

import (
	"context"
	"errors"
	"fmt"

	"github.com/mailgate/caddy-mailgate/internal/directory"
	"github.com/mailgate/caddy-mailgate/internal/mail"
)

// ErrDelivery means the login mail could not be handed to the mail server
// (an API request) or to the delivery queue (the browser form, when the
// queue is full or stopping). No link is left that could be used: it was
// dropped, or never issued. The person should try again later.
var ErrDelivery = errors.New("flow: the email could not be sent")

// Bounds on what a request stores with its pending link. They are checked
// before anything reaches the store, which never drops a marker to make
// room and must not fill with one visitor's padding.
const (
	// MaxReturn bounds the path a browser login returns to.
	MaxReturn = 2 << 10
	// MaxState bounds an app's opaque state, echoed to its redirect URI.
	MaxState = 1 << 10
	// MaxScope bounds the scope an app asks its tokens to carry.
	MaxScope = 1 << 10
)

// TooLongError names a request field over its bound; contracts answer it
// with their own 400.
type TooLongError struct {
	Field string
	Max   int
}

func (e *TooLongError) Error() string {
	return fmt.Sprintf("%s is longer than %d bytes", e.Field, e.Max)
}

// checkLength returns a TooLongError when v is longer than max bytes.
func checkLength(field, v string, max int) error {
	if len(v) > max {
		return &TooLongError{Field: field, Max: max}
	}
	return nil
}

// Requester is who asked for a mail from a browser: limits count per IP,
// and the mail repeats both, so that a person who did not ask can tell.
type Requester struct {
	// IP is the client IP as the server resolved it (trusted proxies
	// only), never a raw header.
	IP    string
	Agent string
}

// Mailer hands letters to the mail server: at once for an app, whose
// answer promises the handover, or through a queue for the browser form,
// whose answer must not wait for the mail server (see MagicLink.Request).
// mail.Queue is the production one.
type Mailer interface {
	// Send returns once the mail server took l, or with why not.
	Send(ctx context.Context, l mail.Letter) error
	// Enqueue takes l for delivery in the background and returns at once;
	// if l is finally given up, undelivered runs. A queue that cannot take
	// l returns an error, and then undelivered never runs.
	Enqueue(l mail.Letter, undelivered func(context.Context) error) error
	// Room returns the error Enqueue would return now, taking nothing.
	Room() error
}

// Login is a redeemed link: who logs in, and where they go next.
type Login struct {
	User directory.User
	// Return is the path on this site to go to, for a browser login.
	Return string
	Locale string
	// Client is set for a login an app asked for.
	Client *ClientLogin
	// Method is how the person proved the address.
	Method Method
}
