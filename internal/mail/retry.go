package mail

import (
	"errors"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// backoff is the wait after failed attempt n (1-based): Backoff doubled for
// each attempt before it, of which a random part of up to half is taken
// off. The jitter keeps letters that failed together (a mail server that
// was down) from all coming back at once; taking it off rather than adding
// it keeps the nominal schedule the upper bound, so the whole retry time
// stays below Backoff × (2^(Attempts-1) - 1).
func (q *Queue) backoff(n int) time.Duration {
	d := q.Backoff << min(n-1, 16)
	half := int64(d / 2)
	if half <= 0 {
		return d
	}
	return d - time.Duration(q.Jitter(half))
}

// permanent reports a failure that another attempt would only repeat: an
// SMTP 5xx (no such mailbox, authentication failed, TLS required), an
// address the server cannot take (errNoSMTPUTF8), or a letter that cannot
// be composed (errCompose). A 4xx, a timeout or a connection that failed
// may pass next time.
func permanent(err error) bool {
	var se *smtp.SMTPError
	return errors.As(err, &se) && se.Code >= 500 || errors.Is(err, errNoSMTPUTF8) || errors.Is(err, errCompose)
}

// domainOf is what the log may say about a recipient: the domain, which
// tells an operator which mail system refused, and not who.
func domainOf(to string) string {
	return to[strings.LastIndexByte(to, '@')+1:]
}

// redact returns err's text with the recipient's mailbox name taken out: a
// mail server's refusal often repeats the address ("<alice@example.com>:
// Recipient address rejected"), and the log must not hold it. Servers may
// change its case, so the match ignores case.
func redact(err error, to string) string {
	msg := err.Error()
	at := strings.LastIndexByte(to, '@')
	if at <= 0 {
		return msg
	}
	name := to[:at+1] // the mailbox name and its '@'
	var b strings.Builder
	for i := 0; i < len(msg); {
		if len(msg)-i >= len(name) && strings.EqualFold(msg[i:i+len(name)], name) {
			b.WriteString("…@")
			i += len(name)
			continue
		}
		b.WriteByte(msg[i])
		i++
	}
	return b.String()
}
