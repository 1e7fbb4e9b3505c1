package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// metadata fetches the discovery document as a client library does.
func metadata(t *testing.T, h http.Handler, path string) map[string]any {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, base+path, nil))
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || w.Code != http.StatusOK {
		t.Fatalf("%s: %d %s", path, w.Code, w.Body)
	}
	return doc
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, s := range list {
		str, _ := s.(string)
		out = append(out, str)
	}
	return out
}

// A client with an Ed25519 key picks the alg name it sends from this list:
// oauth4webapi and the npm dpop package send Ed25519 (RFC 9864), older
// libraries EdDSA.
func TestDiscoveryListsBothNamesOfEd25519ForDPoP(t *testing.T) {
	doc := metadata(t, &Discovery{Issuer: base + "/.mailgate"}, "/.mailgate/.well-known/openid-configuration")
	algs := stringList(doc["dpop_signing_alg_values_supported"])
	for _, want := range []string{"EdDSA", "Ed25519", "ES256"} {
		if !slices.Contains(algs, want) {
			t.Errorf("dpop_signing_alg_values_supported %v lacks %s", algs, want)
		}
	}
	for _, never := range []string{"none", "HS256"} {
		if slices.Contains(algs, never) {
			t.Errorf("dpop_signing_alg_values_supported %v offers %s", algs, never)
		}
	}
}
