package locale

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]string{"": Default, "en-GB": "en-GB", "NL-be": "nl-BE", "nl-nl": "nl-NL"} {
		if got, err := Parse(in); got != want || err != nil {
			t.Errorf("Parse(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]error{"dutch": ErrMalformed, "en_GB": ErrMalformed, "en-GBR": ErrMalformed, "de-DE": ErrUnsupported} {
		if _, err := Parse(in); !errors.Is(err, want) {
			t.Errorf("Parse(%q) err = %v, want %v", in, err, want)
		}
	}
}

func TestAllIsACopy(t *testing.T) {
	a := All()
	a[0] = "xx-XX"
	if All()[0] != Default || !Has(Default) || Has("xx-XX") {
		t.Fatal("changing All's answer changed the supported locales")
	}
}
