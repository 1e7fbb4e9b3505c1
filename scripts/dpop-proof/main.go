// Command dpop-proof prints a DPoP proof (RFC 9449) for one request, so that
// mailgate's API can be tried with curl. It keeps its P-256 key in a JWK
// file, created on first use, because a token is bound to the key that
// asked for it: every later proof must be signed with the same key.
//
//	go run ./scripts/dpop-proof -key dpop.jwk -url https://app.example.com/.mailgate/oauth/token
//	go run ./scripts/dpop-proof -key dpop.jwk -url https://app.example.com/.mailgate/api/v1/login-email -token "$TOKEN"
//	go run ./scripts/dpop-proof -key dpop.jwk -thumbprint
//
// It is a tool for trying the API, not a client library: a real client
// keeps its key in memory or a key store and makes proofs in-process.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/mailgate/caddy-mailgate/internal/testdpop"
)

func main() {
	keyFile := flag.String("key", "dpop.jwk", "file holding the private key as a JWK; created if missing")
	method := flag.String("method", "POST", "the request's method (htm)")
	target := flag.String("url", "", "the request's URL without query or fragment (htu)")
	token := flag.String("token", "", "the access token the request carries, if any (ath)")
	thumbprint := flag.Bool("thumbprint", false, "print the key's RFC 7638 thumbprint (the token's cnf.jkt) instead of a proof")
	flag.Parse()

	key, err := loadOrCreateKey(*keyFile)
	if err == nil {
		var out string
		switch {
		case *thumbprint:
			out, err = testdpop.Thumbprint(key)
		case *target == "":
			err = errors.New("-url is required")
		default:
			out, err = testdpop.Sign(key, *method, *target, *token, time.Now())
		}
		if err == nil {
			fmt.Println(out)
			return
		}
	}
	fmt.Fprintln(os.Stderr, "dpop-proof:", err)
	os.Exit(1)
}

// loadOrCreateKey reads the key in path, or makes one and writes it there
// readable by its owner only.
func loadOrCreateKey(path string) (*ecdsa.PrivateKey, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		raw, err = json.Marshal(jose.JSONWebKey{Key: k, Algorithm: string(jose.ES256), Use: "sig"})
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(raw); err != nil {
			f.Close()
			return nil, err
		}
		return k, f.Close()
	}
	if err != nil {
		return nil, err
	}
	var jwk jose.JSONWebKey
	if err := json.Unmarshal(raw, &jwk); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	k, ok := jwk.Key.(*ecdsa.PrivateKey)
	if !ok || k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: not a P-256 private key", path)
	}
	return k, nil
}
