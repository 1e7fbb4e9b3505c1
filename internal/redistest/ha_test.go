package redistest

import (
	"context"
	"testing"
	"time"
)

// TestSentinelFailsOver: the sentinels promote the replica once the master
// is killed, within seconds: what the Redis store's failover tests build on.
func TestSentinelFailsOver(t *testing.T) {
	d := StartSentinel(t)
	ctx := context.Background()
	old, err := d.MasterAddr(ctx)
	if err != nil || old != d.Master.Addr() {
		t.Fatalf("master = %q, %v; want %s", old, err, d.Master.Addr())
	}
	d.Master.Stop()
	began := time.Now()
	waitFor(t, 15*time.Second, "the replica promoted", func() bool {
		a, err := d.MasterAddr(ctx)
		return err == nil && a == d.Replica.Addr()
	})
	t.Logf("sentinels promoted the replica %s after the master was killed", time.Since(began))
}

// TestClusterForms: three masters share the slots.
func TestClusterForms(t *testing.T) {
	c := StartCluster(t)
	if len(c.Addrs()) != 3 {
		t.Fatal(c.Addrs())
	}
}
