package mail

import (
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Letters rendered without running the templates for each mail.
//
// A letter's templates take the same branches for every mail of one shape
// (its locale, its letter, which of its values are empty, its booleans and
// its lifetime), and differ only in the values they print. So the first
// mail of a shape runs the templates once with a marker in place of each
// value and keeps the result as constant text and the places the values go,
// each with the escaping its place needs in the HTML part (HTML text, or a
// link's URL in an href). Every later mail of the shape is the constant text
// with its values put in: no reflection, no template calls, a fraction of
// the templates' time (BenchmarkCompose).
//
// A shape is only compiled when its result is proven the same as the
// templates': with hostile values (quotes, angle brackets, ampersands, a
// plus) in every place, the compiled letter and the templates must give the
// same bytes, or the shape keeps using the templates. TestGoldenLetters
// checks both paths against the golden letters.

// slot numbers the values a compiled letter puts in.
const (
	slotSiteName = iota
	slotLink
	slotCode
	slotRequestIP
	slotApp
	slotRevokeLink
	slotWhen
	slotAgent
	numSlots
)

// slots returns pointers to d's values, by slot.
func (d *letterData) slots() [numSlots]*string {
	return [numSlots]*string{&d.SiteName, &d.Link, &d.Code, &d.RequestIP, &d.App, &d.RevokeLink, &d.When, &d.Agent}
}

// slotMarker is what the templates print for slot i when a shape is
// compiled: letters and digits only, which no escaper changes and no
// layout or catalogue entry holds.
func slotMarker(i int) string { return "Qz7slot" + string(rune('A'+i)) + "Q" }

const slotMarkerPrefix = "Qz7slot"

// shape is what decides a letter's branches and constant words.
type shape struct {
	locale, template        string
	filled                  uint8 // bit i: slot i is not empty
	newAccount, setPassword bool
	expires                 time.Duration
}

// piece is constant text, then the value of a slot (slot < 0: none).
type piece struct {
	text string
	slot int8
	// url: the slot is a link's URL in an attribute of the HTML part.
	url bool
}

type compiledLetter struct{ subject, text, html []piece }

// compiledLetters holds a compiled letter, or nil for a shape that keeps
// using the templates, by shape. Shapes are few (a site's letters, locales
// and lifetimes, times which values are empty); maxCompiled bounds them
// all the same, and shapes past it use the templates.
var (
	compiledLetters sync.Map // shape → *compiledLetter
	compiledCount   atomic.Int32
)

const maxCompiled = 4096

// renderCompiled renders d with its shape's compiled letter, compiling it
// first if need be; false when the shape uses the templates.
func renderCompiled(d *letterData, lt parsedLetter) (subject, text, html string, ok bool) {
	k := shape{locale: d.Locale, template: d.Template, newAccount: d.NewAccount, setPassword: d.SetPassword, expires: d.Expires}
	for i, v := range d.slots() {
		if *v != "" {
			k.filled |= 1 << i
		}
	}
	c, found := compiledLetters.Load(k)
	if !found {
		if compiledCount.Load() >= maxCompiled {
			return "", "", "", false
		}
		var cl *compiledLetter
		if built, ok := compileLetter(*d, lt); ok {
			cl = built
		}
		if _, loaded := compiledLetters.LoadOrStore(k, cl); !loaded {
			compiledCount.Add(1)
		}
		c = cl
	}
	cl, _ := c.(*compiledLetter)
	if cl == nil {
		return "", "", "", false
	}
	subject, text, html = cl.fill(d)
	return subject, text, html, true
}

// compileLetter runs the templates once with markers for d's values and
// checks the result (see above).
func compileLetter(d letterData, lt parsedLetter) (*compiledLetter, bool) {
	marked := d
	for i, v := range marked.slots() {
		if *v != "" {
			*v = slotMarker(i)
		}
	}
	subject, text, html, err := execute(&marked, lt)
	if err != nil {
		return nil, false
	}
	var c compiledLetter
	var ok [3]bool
	c.subject, ok[0] = split(subject, false)
	c.text, ok[1] = split(text, false)
	c.html, ok[2] = split(html, true)
	if !ok[0] || !ok[1] || !ok[2] {
		return nil, false
	}
	hostile := d
	for i, v := range hostile.slots() {
		if *v != "" {
			*v = `Tom & "Jerry's" <b>Club+</b> é` + string(rune('A'+i))
		}
	}
	// A URL that stays one, so that its place's filter lets it through.
	for _, v := range []*string{&hostile.Link, &hostile.RevokeLink} {
		if *v != "" {
			*v = `https://example.com/a b?t=x&y='1'"2"<3>+é`
		}
	}
	s, t, h, err := execute(&hostile, lt)
	if err != nil {
		return nil, false
	}
	if cs, ct, ch := c.fill(&hostile); cs != strings.TrimSpace(s) || ct != t || ch != h {
		return nil, false
	}
	return &c, true
}

// split cuts a part rendered with markers into pieces. In the HTML part a
// value stands in text or in an href; anywhere else inside a tag it is not
// compiled.
func split(s string, html bool) ([]piece, bool) {
	var ps []piece
	for {
		i := strings.Index(s, slotMarkerPrefix)
		if i < 0 {
			return append(ps, piece{text: s, slot: -1}), true
		}
		rest := s[i+len(slotMarkerPrefix):]
		if len(rest) < 2 || rest[0] < 'A' || rest[0] >= 'A'+numSlots || rest[1] != 'Q' {
			return nil, false
		}
		p := piece{text: s[:i], slot: int8(rest[0] - 'A')}
		if html {
			before := s[:i]
			inTag := strings.LastIndexByte(before, '<') > strings.LastIndexByte(before, '>')
			p.url = strings.HasSuffix(before, `href="`)
			if inTag && !p.url {
				return nil, false
			}
		}
		ps = append(ps, p)
		s = rest[2:]
	}
}

// fill puts d's values into the compiled parts.
func (c *compiledLetter) fill(d *letterData) (subject, text, html string) {
	slots := d.slots()
	raw := func(ps []piece) string {
		var b strings.Builder
		for _, p := range ps {
			b.WriteString(p.text)
			if p.slot >= 0 {
				b.WriteString(*slots[p.slot])
			}
		}
		return b.String()
	}
	var b strings.Builder
	b.Grow(4096)
	var urls [numSlots]string
	for _, p := range c.html {
		b.WriteString(p.text)
		switch {
		case p.slot < 0:
		case p.url:
			if urls[p.slot] == "" {
				urls[p.slot] = escapeHref(*slots[p.slot])
			}
			b.WriteString(urls[p.slot])
		default:
			htmlText.WriteString(&b, *slots[p.slot])
		}
	}
	return strings.TrimSpace(raw(c.subject)), raw(c.text), b.String()
}

// htmlText escapes a value in HTML text (or a quoted attribute) as
// html/template does (its htmlReplacementTable).
var htmlText = strings.NewReplacer("\x00", "\uFFFD", `"`, "&#34;", "&", "&amp;", "'", "&#39;", "+", "&#43;", "<", "&lt;", ">", "&gt;")

// escapeHref escapes a URL at the start of a quoted href as html/template
// does there: its URL filter (a scheme other than http, https or mailto
// becomes "#ZgotmplZ"), its normalizer (percent-encoding what a URL may not
// hold as it is) and its attribute escaper. TestEscapeHrefAsTheTemplate
// holds it to html/template's own output.
func escapeHref(u string) string {
	if scheme, _, ok := strings.Cut(u, ":"); ok && !strings.Contains(scheme, "/") &&
		!strings.EqualFold(scheme, "http") && !strings.EqualFold(scheme, "https") && !strings.EqualFold(scheme, "mailto") {
		return "#ZgotmplZ"
	}
	var b strings.Builder
	written := 0
	for i := 0; i < len(u); i++ {
		c := u[i]
		switch {
		case strings.IndexByte("!#$&*+,/:;=?@[]-._~", c) >= 0,
			'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
			continue
		case c == '%' && i+2 < len(u) && isHex(u[i+1]) && isHex(u[i+2]):
			continue
		}
		if written == 0 {
			b.Grow(len(u) + 16)
		}
		b.WriteString(u[written:i])
		b.WriteByte('%')
		b.WriteByte(lowerHex[c>>4])
		b.WriteByte(lowerHex[c&15])
		written = i + 1
	}
	if written != 0 {
		b.WriteString(u[written:])
		u = b.String()
	}
	return htmlText.Replace(u)
}

const lowerHex = "0123456789abcdef"

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
