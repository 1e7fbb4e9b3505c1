package mail

import (
	"bytes"
	"errors"
	"fmt"
	"net/textproto"
	"strings"
)

// A message costs a round trip to the server for each command that waits
// for an answer: MAIL, RCPT, DATA and the end of the data, four in all, and
// a NOOP before it on a reused connection. On a loaded server each of them
// also waits for the delivering goroutine to be scheduled again, behind
// whatever else is runnable: on one core, behind every HTTP request under
// way (docs/performance.md, "Mail to the SMTP server"). So where the server
// allows it, send sends the commands together (PIPELINING, RFC 2920): with
// CHUNKING (RFC 3030) the message itself goes along with them, in BDAT, and
// the whole of it takes one round trip, as do several messages (see
// Deliver); without, DATA must wait for its 354, and it takes two. A server
// that offers neither gets go-smtp's command by command exchange.

// errLine is an address that would end its command early and start
// another: go-smtp refuses the same.
var errLine = errors.New("an address contains a line break")

// validLine reports whether s can go in a command line.
func validLine(s string) bool { return !strings.ContainsAny(s, "\r\n") }

// send delivers the messages of batch on c, in as few round trips as the
// server allows, and returns each one's outcome. gone reports a failure
// before the server answered the first command: the connection was gone
// (the server dropped it while it was idle, or restarted), and the server
// has taken nothing of the batch, so it may go on a new connection at
// once.
//
// A batch of more than one needs PIPELINING and CHUNKING: each message
// after the first starts with RSET, so that one refused (and the commands
// after its refusal answered with 503) leaves no state behind for the
// next. The answers are read to the end, so that each message's outcome
// is the server's, and only what could not be read is an error for all
// that follow; the connection is closed after any error (see
// sendWaiting).
func (c *conn) send(batch []*message) (errs []error, gone bool) {
	errs = make([]error, len(batch))
	if !c.pipelining {
		m := batch[0]
		errs[0] = c.client.SendMail(m.from, []string{m.to}, bytes.NewReader(m.msg))
		return errs, false
	}
	w := c.text.W
	for i, m := range batch {
		if i > 0 {
			w.WriteString("RSET\r\n")
		}
		w.WriteString("MAIL FROM:<" + m.from + ">")
		// As go-smtp's Mail adds them.
		if c.eightBit {
			w.WriteString(" BODY=8BITMIME")
		}
		if !isASCII(m.from) || !isASCII(m.to) {
			w.WriteString(" SMTPUTF8")
		}
		w.WriteString("\r\nRCPT TO:<" + m.to + ">\r\n")
		if c.chunking {
			msg := crlf(m.msg)
			fmt.Fprintf(w, "BDAT %d LAST\r\n", len(msg))
			w.Write(msg)
		} else {
			w.WriteString("DATA\r\n")
		}
	}
	if err := w.Flush(); err != nil {
		return fill(errs, 0, err), true
	}
	first := true
	for i := range batch {
		// MAIL, RCPT, and BDAT or DATA; RSET before them.
		codes := []int{250, 25, 250}
		if !c.chunking {
			codes[2] = 354
		}
		if i > 0 {
			codes = append([]int{250}, codes...)
		}
		for _, code := range codes {
			_, _, err := c.text.ReadResponse(code)
			switch {
			case err == nil:
			case first && (!isReply(err) || closing(err)):
				return fill(errs, 0, smtpError(err)), true
			case !isReply(err):
				return fill(errs, i, err), false
			case errs[i] == nil:
				errs[i] = smtpError(err)
			}
			first = false
		}
	}
	if c.chunking || errs[0] != nil {
		return errs, false
	}
	// DATA was answered 354: the message follows, dot-stuffed, and its
	// end is answered.
	dw := c.text.DotWriter()
	if _, err := dw.Write(batch[0].msg); err != nil {
		return fill(errs, 0, err), false
	}
	// Close writes the final dot and flushes.
	if err := dw.Close(); err != nil {
		return fill(errs, 0, err), false
	}
	_, _, err := c.text.ReadResponse(250)
	errs[0] = smtpError(err)
	return errs, false
}

// fill sets errs from i on to err, and returns errs.
func fill(errs []error, i int, err error) []error {
	for j := i; j < len(errs); j++ {
		errs[j] = err
	}
	return errs
}

// isReply reports whether err is the server's answer, not a failure to
// read one.
func isReply(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te)
}

// closing reports a 421, with which a server says it is closing the
// connection (RFC 5321, 3.8): at its idle limit, some say so before they
// hang up, and the answer waits to be read as that of the next command.
func closing(err error) bool {
	var te *textproto.Error
	return errors.As(err, &te) && te.Code == 421
}

// crlf returns msg with every line ending in CRLF. BDAT sends the message
// as it is, where DATA's dot-stuffing writer would have completed a bare
// LF; Compose writes CRLF throughout, so this copies nothing in practice.
func crlf(msg []byte) []byte {
	bare := false
	for i, b := range msg {
		if b == '\n' && (i == 0 || msg[i-1] != '\r') {
			bare = true
			break
		}
	}
	if !bare {
		return msg
	}
	out := make([]byte, 0, len(msg)+len(msg)/32)
	for i, b := range msg {
		if b == '\n' && (i == 0 || msg[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, b)
	}
	return out
}
