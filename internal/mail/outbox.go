package mail

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Outbox is a development Transport: each message becomes an .eml file in
// Dir instead of leaving the machine.
type Outbox struct {
	Dir string
	Now func() time.Time
}

// Deliver implements Transport. Files are written under a temporary name and
// renamed, so a reader never sees half a message; they are private to the
// user because they hold live login links.
func (o *Outbox) Deliver(_ context.Context, _, to string, msg []byte) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("%s-%s.eml", o.Now().UTC().Format("20060102T150405Z"), hex.EncodeToString(rnd[:]))
	tmp, err := os.CreateTemp(o.Dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	defer os.Remove(tmp.Name()) //nolint:errcheck // gone after a successful rename
	if _, err := tmp.Write(msg); err != nil {
		tmp.Close()
		return fmt.Errorf("mail: outbox: writing message to %s: %w", to, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(o.Dir, name)); err != nil {
		return fmt.Errorf("mail: outbox: %w", err)
	}
	return nil
}
