package caddymodule

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
)

// faultyStorage is Caddy's file_system storage whose writes a test can make
// fail, as a full disk or a read-only mount does: the global option
// `storage mailgate_test_faulty <root>`. A real storage module, so that
// mailgate meets the failures where Caddy hands them over.
type faultyStorage struct {
	Root string `json:"root"`
}

func init() { caddy.RegisterModule(faultyStorage{}) }

func (faultyStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.storage.mailgate_test_faulty",
		New: func() caddy.Module { return new(faultyStorage) },
	}
}

// CertMagicStorage implements caddy.StorageConverter.
func (s *faultyStorage) CertMagicStorage() (certmagic.Storage, error) {
	return faultyFiles{&certmagic.FileStorage{Path: s.Root}}, nil
}

// UnmarshalCaddyfile reads `mailgate_test_faulty <root>`.
func (s *faultyStorage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if !d.NextArg() {
		return d.ArgErr()
	}
	s.Root = d.Val()
	return nil
}

// storageFault, while set, is asked before every write (Store, Lock,
// Delete) of the faulty storage, with the operation and the key, and the
// write fails with what it returns.
var storageFault atomic.Pointer[func(op, key string) error]

// failStorage makes the faulty storage's writes fail as fault says until
// the test ends.
func failStorage(t *testing.T, fault func(op, key string) error) {
	storageFault.Store(&fault)
	t.Cleanup(func() { storageFault.Store(nil) })
}

// errReadOnly is what a read-only mount answers.
var errReadOnly = errors.New("read-only file system")

type faultyFiles struct{ *certmagic.FileStorage }

func (s faultyFiles) fault(op, key string) error {
	if f := storageFault.Load(); f != nil {
		return (*f)(op, key)
	}
	return nil
}

func (s faultyFiles) Store(ctx context.Context, key string, value []byte) error {
	if err := s.fault("Store", key); err != nil {
		return err
	}
	return s.FileStorage.Store(ctx, key, value)
}

func (s faultyFiles) Lock(ctx context.Context, name string) error {
	if err := s.fault("Lock", name); err != nil {
		return err
	}
	return s.FileStorage.Lock(ctx, name)
}

func (s faultyFiles) Delete(ctx context.Context, key string) error {
	if err := s.fault("Delete", key); err != nil {
		return err
	}
	return s.FileStorage.Delete(ctx, key)
}

var (
	_ caddy.StorageConverter = (*faultyStorage)(nil)
	_ caddyfile.Unmarshaler  = (*faultyStorage)(nil)
)
