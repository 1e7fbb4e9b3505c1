package directory

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"

	"github.com/mailgate/caddy-mailgate/internal/memstorage"
)

// The list keeps the newest MaxSessionRecords, newest first, and drops the
// expired ones and those signed out.
func TestSessionRecordsBoundedAndPruned(t *testing.T) {
	ctx := context.Background()
	clock := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	d := New(memstorage.New(), "mg", func() time.Time { return clock })
	for i := range MaxSessionRecords + 5 {
		issued := clock.Add(time.Duration(i) * time.Minute)
		if err := d.RecordSession(ctx, "u1", SessionRecord{ID: fmt.Sprint("s", i), Issued: issued, Expires: issued.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := d.Sessions(ctx, "u1")
	if err != nil || len(list) != MaxSessionRecords || list[0].ID != "s24" || list[len(list)-1].ID != "s5" {
		t.Fatalf("after 25 sign-ins: %d sessions, %v", len(list), err)
	}
	// An hour and ten minutes on, s0 to s10 have expired.
	clock = clock.Add(70 * time.Minute)
	if list, _ := d.Sessions(ctx, "u1"); len(list) != 14 || list[len(list)-1].ID != "s11" {
		t.Fatalf("after an hour: %+v", list)
	}
	if err := d.ForgetSession(ctx, "u1", "s24"); err != nil {
		t.Fatal(err)
	}
	if list, _ := d.Sessions(ctx, "u1"); len(list) != 13 || list[0].ID != "s23" {
		t.Fatalf("after signing s24 out: %+v", list)
	}
	if err := d.ForgetSessions(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	if list, err := d.Sessions(ctx, "u1"); len(list) != 0 || err != nil {
		t.Fatalf("after signing out everywhere: %+v, %v", list, err)
	}
	if err := d.ForgetSessions(ctx, "u1"); err != nil {
		t.Fatalf("forgetting an empty list: %v", err)
	}
}

// Sign-ins of one person at once on Caddy's file storage (whose lock is
// real, unlike memstorage's) lose no entry of the list.
func TestSessionRecordsConcurrentSignIns(t *testing.T) {
	ctx := context.Background()
	d := New(&certmagic.FileStorage{Path: t.TempDir()}, "mg", time.Now)
	const n = 8 // the file lock polls once a second: enough to overlap
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- d.RecordSession(ctx, "u1", SessionRecord{ID: fmt.Sprint("s", i), Issued: time.Now(), Expires: time.Now().Add(time.Hour)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if list, err := d.Sessions(ctx, "u1"); err != nil || len(list) != n {
		t.Fatalf("%d sign-ins at once left %d entries (%v)", n, len(list), err)
	}
}
