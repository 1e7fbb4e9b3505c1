// Package memstorage is an in-memory stand-in for Caddy's storage in unit
// tests: Load, Store, Lock and Unlock, with fs.ErrNotExist for a missing key
// as Caddy's file storage returns.
package memstorage

import (
	"context"
	"io/fs"
	"sync"
)

// Storage keeps values in a map.
type Storage struct {
	mu    sync.Mutex
	files map[string][]byte
}

// New returns an empty Storage.
func New() *Storage { return &Storage{files: map[string][]byte{}} }

// Load returns the value under key, or fs.ErrNotExist.
func (s *Storage) Load(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.files[key]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return v, nil
}

// Store sets the value under key.
func (s *Storage) Store(_ context.Context, key string, value []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.files[key] = value
	return nil
}

// Lock does nothing: one process, and the tests do not race on keys.
func (s *Storage) Lock(context.Context, string) error { return nil }

// Unlock does nothing.
func (s *Storage) Unlock(context.Context, string) error { return nil }

// Keys returns every stored key.
func (s *Storage) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]string, 0, len(s.files))
	for k := range s.files {
		keys = append(keys, k)
	}
	return keys
}
