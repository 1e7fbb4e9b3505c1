package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

// sentinels are all the API's errors, to check them as a set.
var sentinels = map[string]*Error{
	"ErrInvalidInput": ErrInvalidInput, "ErrInvalidInputMethod": ErrInvalidInputMethod,
	"ErrSelectorInvalid": ErrSelectorInvalid, "ErrBothEmailAndUsername": ErrBothEmailAndUsername,
	"ErrNoRedirectURI": ErrNoRedirectURI, "ErrRedirectURIMismatch": ErrRedirectURIMismatch,
	"ErrLocaleInvalid": ErrLocaleInvalid, "ErrLocaleNotSupported": ErrLocaleNotSupported,
	"ErrAccountNotFound": ErrAccountNotFound, "ErrTemporarilyUnavailable": ErrTemporarilyUnavailable,
	"ErrServerError": ErrServerError, "ErrInvalidRequest": ErrInvalidRequest,
	"ErrInvalidRequestMethod": ErrInvalidRequestMethod, "ErrUnsupportedGrantType": ErrUnsupportedGrantType,
	"ErrInvalidClient": ErrInvalidClient, "ErrInvalidScope": ErrInvalidScope, "ErrInvalidGrant": ErrInvalidGrant,
	"ErrInvalidDPoPProof": ErrInvalidDPoPProof, "ErrInvalidToken": ErrInvalidToken,
	"ErrInvalidDPoPProofResource": ErrInvalidDPoPProofResource, "ErrInsufficientScope": ErrInsufficientScope,
}

// Each sentinel is a bare code and status, and no two share both: errors.Is
// must tell every one of them apart.
func TestSentinelsAreDistinct(t *testing.T) {
	seen := map[string]string{}
	for name, e := range sentinels {
		if e.Code == "" || e.Status < 400 || e.Description != "" || e.Challenge != "" {
			t.Errorf("%s = %+v: want a code and an error status, nothing else", name, e)
		}
		key := fmt.Sprint(e.Status, " ", e.Code)
		if other, dup := seen[key]; dup {
			t.Errorf("%s and %s are both %s", name, other, key)
		}
		seen[key] = name
		for other, o := range sentinels {
			if other != name && errors.Is(e, o) {
				t.Errorf("errors.Is(%s, %s)", name, other)
			}
		}
	}
}

// WithHint and WithChallenge return copies: the sentinels are shared by
// every request, so a hint set in place would leak into other answers.
func TestHintsAreCopies(t *testing.T) {
	e := ErrInvalidClient.WithHint("client authentication failed")
	c := e.WithChallenge(`Basic realm="mailgate"`)
	if ErrInvalidClient.Description != "" || ErrInvalidClient.Challenge != "" {
		t.Fatalf("the sentinel was changed: %+v", ErrInvalidClient)
	}
	if e.Challenge != "" {
		t.Fatalf("WithChallenge changed its receiver: %+v", e)
	}
	want := Error{Status: 401, Code: "invalid_client", Description: "client authentication failed", Challenge: `Basic realm="mailgate"`}
	if *c != want {
		t.Fatalf("got %+v, want %+v", *c, want)
	}
	if c.Error() != "invalid_client: client authentication failed" {
		t.Fatalf("Error() = %q", c.Error())
	}
}

func TestErrorsIsMatchesCopies(t *testing.T) {
	hinted := ErrInvalidGrant.WithHint("the account is not available")
	if !errors.Is(hinted, ErrInvalidGrant) || !errors.Is(fmt.Errorf("exchange: %w", hinted), ErrInvalidGrant) {
		t.Error("a hinted copy does not match its sentinel")
	}
	if errors.Is(hinted, ErrInvalidRequest) {
		t.Error("invalid_grant matches invalid_request")
	}
	// Same code, other status: the token endpoint's 400 is not the API's
	// 401.
	if errors.Is(ErrInvalidDPoPProof.WithHint("x"), ErrInvalidDPoPProofResource) {
		t.Error("a 400 invalid_dpop_proof matches the 401 one")
	}
	var nilErr *Error
	if hinted.Is(nilErr) || hinted.Is(errors.New("invalid_grant: the account is not available")) {
		t.Error("Is matches a nil *Error or another error type")
	}
}

// WriteError sends the RFC 6749 shape, with the challenge as
// WWW-Authenticate.
func TestWriteErrorShape(t *testing.T) {
	w := httptest.NewRecorder()
	WriteError(w, ErrInvalidClient.WithHint(`client "x" <failed>`).WithChallenge(`Basic realm="mailgate"`))
	if w.Code != http.StatusUnauthorized || w.Header().Get("WWW-Authenticate") != `Basic realm="mailgate"` ||
		w.Body.String() != `{"error":"invalid_client","error_description":"client \"x\" <failed>"}`+"\n" {
		t.Fatalf("%d %v %s", w.Code, w.Header(), w.Body)
	}
	w = httptest.NewRecorder()
	WriteError(w, ErrServerError)
	if w.Code != http.StatusInternalServerError || w.Header().Get("WWW-Authenticate") != "" || w.Body.String() != `{"error":"server_error"}`+"\n" {
		t.Fatalf("bare sentinel: %d %v %s", w.Code, w.Header(), w.Body)
	}
}
