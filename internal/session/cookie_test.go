package session

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

// mailgate's cookies leave a proxied request; every other cookie stays,
// in its order, whatever its name looks like.
func TestStripOwnCookies(t *testing.T) {
	for _, c := range []struct {
		name   string
		secure bool
		in     []string
		want   []string
	}{
		{"the session alone", true, []string{"__Host-mailgate=tok"}, nil},
		{"between others", true, []string{"a=1; __Host-mailgate=tok; b=2"}, []string{"a=1; b=2"}},
		{"helpers too", true, []string{"__Host-mailgate-form=f; __Host-mailgate-code=c", "app=1", "__Host-mailgate-username=al"}, []string{"app=1"}},
		{"over plain HTTP", false, []string{"mailgate=tok; mailgate-form=f; app=1"}, []string{"app=1"}},
		{"look-alikes stay", true, []string{"mailgate=x; mailgate-form=y; __Host-mailgatex=z; __Host-other=w"}, []string{"mailgate=x; mailgate-form=y; __Host-mailgatex=z; __Host-other=w"}},
		{"no cookies", true, nil, nil},
		{"empty parts", true, []string{"a=1;; __Host-mailgate=tok;"}, []string{"a=1"}},
	} {
		h := http.Header{}
		if c.in != nil {
			h["Cookie"] = slices.Clone(c.in)
		}
		StripOwnCookies(h, c.secure)
		if got := h["Cookie"]; !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
		if _, present := h["Cookie"]; present != (c.want != nil) {
			t.Errorf("%s: Cookie present %v", c.name, present)
		}
	}
}

// The usual request, whose only cookie is the session, costs no
// allocation.
func TestStripOwnCookiesAllocatesNothingForTheSessionAlone(t *testing.T) {
	h := http.Header{}
	lines := []string{"__Host-mailgate=tok"}
	if n := testing.AllocsPerRun(100, func() {
		h["Cookie"] = lines
		StripOwnCookies(h, true)
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// Where mailgate's cookies stand at one end of the line, the rest is a
// part of it: no new string.
func TestStripOwnCookiesKeepsAPartWhereItCan(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"_ga=1; theme=dark; __Host-mailgate-form=f; __Host-mailgate=tok", "_ga=1; theme=dark"},
		{"__Host-mailgate=tok; theme=dark", "theme=dark"},
		{"a=1; __Host-mailgate=tok; b=2; __Host-mailgate-form=f; c=3", "a=1; b=2; c=3"},
	} {
		lines := []string{c.in}
		h := http.Header{"Cookie": lines}
		n := testing.AllocsPerRun(10, func() {
			lines[0] = c.in
			h["Cookie"] = lines
			StripOwnCookies(h, true)
		})
		if got := h.Get("Cookie"); got != c.want {
			t.Errorf("%q: %q, want %q", c.in, got, c.want)
		}
		if cut := c.want == "a=1; b=2; c=3"; (n == 0) == cut {
			t.Errorf("%q: %v allocations", c.in, n)
		}
	}
}

// A renewal's Set-Cookie is what http.SetCookie writes, the same line for
// every request that hands it out, and an answer's rewrite of its own
// Set-Cookie, in place or by adding, never reaches another's.
func TestRenewalSetCookie(t *testing.T) {
	r := &Renewal{Token: "tok", Expiry: time.Unix(1_800_000_000, 0), Persistent: true}
	want := httptest.NewRecorder()
	http.SetCookie(want, Cookie(r.Token, r.Expiry, true, true))

	first, second := http.Header{}, http.Header{}
	r.SetCookie(first, true)
	r.SetCookie(second, true)
	if !slices.Equal(first["Set-Cookie"], want.Header()["Set-Cookie"]) || !slices.Equal(second["Set-Cookie"], first["Set-Cookie"]) {
		t.Fatalf("Set-Cookie %q and %q, want %q", first["Set-Cookie"], second["Set-Cookie"], want.Header()["Set-Cookie"])
	}
	first["Set-Cookie"][0] += "; Partitioned"
	first.Add("Set-Cookie", "other=1")
	third := http.Header{}
	r.SetCookie(third, true)
	for _, h := range []http.Header{second, third} {
		if !slices.Equal(h["Set-Cookie"], want.Header()["Set-Cookie"]) {
			t.Fatalf("one answer's rewrite reached another: %q", h["Set-Cookie"])
		}
	}

	// After a cookie of the answer's own, the renewal's comes second.
	h := http.Header{"Set-Cookie": {"theme=dark"}}
	r.SetCookie(h, true)
	if !slices.Equal(h["Set-Cookie"], []string{"theme=dark", want.Header().Get("Set-Cookie")}) {
		t.Fatalf("Set-Cookie %q", h["Set-Cookie"])
	}
}
