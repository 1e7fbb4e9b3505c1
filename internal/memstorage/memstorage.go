// Package memstorage is an in-memory stand-in for Caddy's storage in unit
// tests: Load, Store, Delete, List, Lock and Unlock, with fs.ErrNotExist
// for a missing key as Caddy's file storage returns.
package memstorage

import (
	"context"
	"io/fs"
	"strings"
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

// Delete removes key, or returns fs.ErrNotExist.
func (s *Storage) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.files[key]; !ok {
		return fs.ErrNotExist
	}
	delete(s.files, key)
	return nil
}

// List returns the keys right below dir (every key under it when
// recursive), or fs.ErrNotExist when there are none, as a missing folder of
// Caddy's file storage does. Not recursive, a folder is listed once.
func (s *Storage) List(_ context.Context, dir string, recursive bool) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var keys []string
	for k := range s.files {
		rest, ok := strings.CutPrefix(k, dir+"/")
		if !ok {
			continue
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 && !recursive {
			k = dir + "/" + rest[:i]
		}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fs.ErrNotExist
	}
	return keys, nil
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
