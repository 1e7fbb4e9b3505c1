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
// the whole of it takes one round trip; without, DATA must wait for its 354,
// and it takes two. A server that offers neither gets go-smtp's command by
// command exchange.

// errLine is a command argument that would end the command early and start
// another: go-smtp refuses the same.
var errLine = errors.New("mail: an address contains a line break")

// unanswered is a failure before the server answered the message's first
// command: the connection was gone (the server dropped it while it was
// idle, or restarted), and the server has taken nothing of the message, so
// it may go on a new connection at once. Only sendPipelined, which knows
// where its exchange stopped, reports it.
type unanswered struct{ err error }

func (e unanswered) Error() string { return e.err.Error() }
func (e unanswered) Unwrap() error { return e.err }

// send delivers msg on c, in as few round trips as the server allows.
func (c *conn) send(from, to string, msg []byte) error {
	if !c.pipelining {
		return c.client.SendMail(from, []string{to}, bytes.NewReader(msg))
	}
	return c.sendPipelined(from, to, msg)
}

// sendPipelined sends MAIL, RCPT and DATA, or BDAT with the message, at
// once, then reads their answers in order. A refusal comes back as the
// *smtp.SMTPError go-smtp would return for it; what the commands after it
// were answered is not read, since the connection is closed after any
// error (see Deliver).
func (c *conn) sendPipelined(from, to string, msg []byte) error {
	if strings.ContainsAny(from, "\r\n") || strings.ContainsAny(to, "\r\n") {
		return errLine
	}
	w := c.text.W
	w.WriteString("MAIL FROM:<" + from + ">")
	// As go-smtp's Mail adds them.
	if c.eightBit {
		w.WriteString(" BODY=8BITMIME")
	}
	if !isASCII(from) || !isASCII(to) {
		w.WriteString(" SMTPUTF8")
	}
	w.WriteString("\r\nRCPT TO:<" + to + ">\r\n")
	if c.chunking {
		msg = crlf(msg)
		fmt.Fprintf(w, "BDAT %d LAST\r\n", len(msg))
		w.Write(msg)
	} else {
		w.WriteString("DATA\r\n")
	}
	if err := w.Flush(); err != nil {
		return unanswered{err}
	}
	if _, _, err := c.text.ReadResponse(250); err != nil {
		if isReply(err) && !closing(err) {
			return smtpError(err)
		}
		return unanswered{smtpError(err)}
	}
	if _, _, err := c.text.ReadResponse(25); err != nil {
		return smtpError(err)
	}
	if c.chunking {
		_, _, err := c.text.ReadResponse(250)
		return smtpError(err)
	}
	if _, _, err := c.text.ReadResponse(354); err != nil {
		return smtpError(err)
	}
	dw := c.text.DotWriter()
	if _, err := dw.Write(msg); err != nil {
		return err
	}
	// Close writes the final dot and flushes.
	if err := dw.Close(); err != nil {
		return err
	}
	_, _, err := c.text.ReadResponse(250)
	return smtpError(err)
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
