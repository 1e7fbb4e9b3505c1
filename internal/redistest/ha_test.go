package redistest

import (
	"context"
	"testing"
	"time"
)

// TestSentinelFailsOver: the sentinels promote the replica once the master
// is killed, within seconds: what the Redis store's failover tests build on.
func TestSentinelFailsOver(t *testing.T) {
	d := StartSentinel(t, 1)
	ctx := context.Background()
	old, err := d.MasterAddr(ctx)
	if err != nil || old != d.Master.Addr() {
		t.Fatalf("master = %q, %v; want %s", old, err, d.Master.Addr())
	}
	d.Master.Stop()
	began := time.Now()
	d.WaitPromoted(t)
	t.Logf("sentinels promoted the replica %s after the master was killed", time.Since(began))
}

// TestClusterForms: three masters share the slots.
func TestClusterForms(t *testing.T) {
	c := StartCluster(t)
	if len(c.Addrs()) != 3 {
		t.Fatal(c.Addrs())
	}
}
