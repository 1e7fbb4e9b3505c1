package password

import (
	"slices"
	"strings"
	"testing"
)

// A password is long enough, not common, not the account's own name and
// not one character repeated; every printable character and the space are
// welcome, and nothing else is asked.
func TestPolicy(t *testing.T) {
	single, second := Policy{}, Policy{MinLength: MinLengthWithSecond}
	for _, c := range []struct {
		p    Policy
		pw   string
		want []Rule
	}{
		{single, "correct horse battery staple", nil},
		{single, "Ünïcödé ünd späces 🐴", nil},
		{single, "short but fine", []Rule{RuleTooShort}},
		{second, "tr0ub4dor&3", nil},
		{second, "password", []Rule{RuleCommon}},
		{second, "PassWord1", []Rule{RuleCommon}},
		{second, "1qaz2wsx3edc4rfv", []Rule{RuleCommon}},
		{single, "1qaz2wsx3edc4rfv", []Rule{RuleCommon}},
		{single, "123456789987654321", []Rule{RuleCommon}},
		{single, strings.Repeat("a", 20), []Rule{RuleRepetitive}},
		{single, strings.Repeat("x", 257), []Rule{RuleTooLong}},
		{single, strings.Repeat("é", 64), []Rule{RuleRepetitive}},
		{single, "tab\tin the middle of it", []Rule{RuleNotText}},
		{single, "bad utf-8 \xff in the middle", []Rule{RuleNotText}},
		{second, "Alice-2026!", []Rule{RuleContext}},
		{second, "example-example", nil},
		{second, "Example!!1", []Rule{RuleContext}},
		{second, "alice in wonderland", nil},
	} {
		got := c.p.Check(c.pw, "alice", "alice@example.com", "Example")
		if !slices.Equal(got, c.want) {
			t.Errorf("%q (min %d): %v, want %v", c.pw, c.p.minLength(), got, c.want)
		}
	}
}

// Fullwidth letters are the same password as their plain forms (NFKC), so
// a common one typed on another keyboard is still common.
func TestPolicyNormalizes(t *testing.T) {
	if got := (Policy{MinLength: 8}).Check("ｐａｓｓｗｏｒｄ"); !slices.Equal(got, []Rule{RuleCommon}) {
		t.Fatalf("fullwidth password: %v", got)
	}
}
