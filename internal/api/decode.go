package api

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
)

// ErrNotJSON and ErrTrailing are why DecodeJSON refused a body, beside
// encoding/json's own errors; each contract answers them in its own error
// shape.
var (
	ErrNotJSON  = errors.New("send the body as Content-Type: application/json")
	ErrTrailing = errors.New("the body holds data after the JSON object")
)

// DecodeJSON reads r's body, at most maxBody bytes, into dst: one JSON value
// sent as application/json, without unknown fields, and nothing after it
// but white space. Every JSON API shares it (the client-side API too), so that none is laxer than the
// others.
//
// The media type matters to browsers: a request of another type than the
// CORS-safelisted ones (text/plain, forms) makes them ask a preflight first,
// so a page of another origin cannot post to the API from its visitors'
// browsers. Trailing data is refused because a body that two parsers would
// read differently (one stops at the first object, another reads on) is
// one a proxy's check and mailgate could disagree about.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any) error {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		return ErrNotJSON
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return err
	}
	// Token, not More: More reports false for a stray ']' or '}'.
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailing
	}
	return nil
}
