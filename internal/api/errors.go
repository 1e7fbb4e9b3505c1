package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
)

// Error is the one JSON error shape of every API endpoint, the RFC 6749
// shape: a machine-readable code and a sentence for people.
type Error struct {
	Status      int    `json:"-"`
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
	// Challenge, if set, is sent as WWW-Authenticate.
	Challenge string `json:"-"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

// WriteJSON writes v with status and no caching: API answers carry tokens,
// codes or facts about accounts. nosniff keeps a browser from reading a JSON
// answer as anything else.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Descriptions quote <token> and the like; \u003c would only confuse
	// the person reading them.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"server_error"}` + "\n")
	}
	b := buf.Bytes()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// WriteError writes e in the API's error shape.
func WriteError(w http.ResponseWriter, e *Error) {
	if e.Challenge != "" {
		w.Header().Set("WWW-Authenticate", e.Challenge)
	}
	WriteJSON(w, e.Status, e)
}
