package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels of StartSentinel monitor.
const MasterName = "mymaster"

// Sentinel timings, small so that a failover takes about a second or two
// instead of Sentinel's default half minute: the master is judged down
// after DownAfter without an answer.
const (
	DownAfter       = 500 * time.Millisecond
	failoverTimeout = 2 * time.Second
)

// Sentinel is a master, one replica and three sentinels watching them
// (quorum 2), all on 127.0.0.1: the smallest Sentinel deployment that
// survives the loss of its master.
type Sentinel struct {
	Master, Replica *Server
	Sentinels       []*Server
}

// StartSentinel starts the master, its replica and three sentinels, and
// returns once the replica is in sync and every sentinel knows the replica
// and the two other sentinels, so a failover can start as soon as the
// master dies. Everything stops when the test ends.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	master := Start(t)
	replica := Start(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))
	d := &Sentinel{Master: master, Replica: replica}
	for range 3 {
		d.Sentinels = append(d.Sentinels, startSentinel(t, master.Port()))
	}
	ctx := context.Background()
	waitFor(t, 20*time.Second, "the replica in sync and known to the three sentinels", func() bool {
		if !strings.Contains(info(ctx, master.Addr(), "replication"), "state=online") {
			return false
		}
		for _, s := range d.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr()})
			m, err := c.Master(ctx, MasterName).Result()
			_ = c.Close()
			if err != nil || m["num-other-sentinels"] != "2" || m["num-slaves"] != "1" {
				return false
			}
		}
		return true
	})
	return d
}

// Addrs are the sentinels' host:port.
func (d *Sentinel) Addrs() []string {
	addrs := make([]string, len(d.Sentinels))
	for i, s := range d.Sentinels {
		addrs[i] = s.Addr()
	}
	return addrs
}

// MasterAddr is the master's host:port as the sentinels report it.
func (d *Sentinel) MasterAddr(ctx context.Context) (string, error) {
	c := redis.NewSentinelClient(&redis.Options{Addr: d.Sentinels[0].Addr()})
	defer c.Close()
	a, err := c.GetMasterAddrByName(ctx, MasterName).Result()
	if err != nil {
		return "", err
	}
	return a[0] + ":" + a[1], nil
}

// startSentinel runs `redis-server <conf> --sentinel` monitoring the
// master on masterPort. Sentinel rewrites its config file, so each start
// writes a fresh one.
func startSentinel(t testing.TB, masterPort int) *Server {
	t.Helper()
	s := &Server{t: t, bin: need(t, "redis-server"), dir: t.TempDir()}
	s.argv = func(port int) []string {
		conf := filepath.Join(s.dir, "sentinel.conf")
		body := fmt.Sprintf(`port %d
bind 127.0.0.1
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %s %d
sentinel failover-timeout %s %d
sentinel parallel-syncs %s 1
`, port, s.dir, filepath.Join(s.dir, "redis.log"),
			MasterName, masterPort, MasterName, DownAfter.Milliseconds(), MasterName, failoverTimeout.Milliseconds(), MasterName)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{conf, "--sentinel"}
	}
	s.launch()
	return s
}

// Cluster is a Redis Cluster of three masters on 127.0.0.1, without
// replicas, made with `redis-cli --cluster create`.
type Cluster struct {
	Nodes []*Server
}

// StartCluster starts three cluster-enabled servers, joins them into one
// cluster sharing the 16384 slots, and returns once every node reports the
// cluster ok. Without redis-cli the test is skipped, or fails under CI.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli := need(t, "redis-cli")
	c := &Cluster{}
	for range 3 {
		// Each node also listens on a cluster bus port, by default its port
		// plus 10000, which need not be free: it gets a free one of its own.
		bus := strconv.Itoa(freePort(t))
		c.Nodes = append(c.Nodes, Start(t,
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "1000",
			"--cluster-port", bus))
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	out, err := exec.Command(cli, append(args, "--cluster-yes")...).CombinedOutput()
	if err != nil {
		t.Fatalf("redistest: redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	waitFor(t, 20*time.Second, "the cluster ok on every node", func() bool {
		for _, n := range c.Nodes {
			if !strings.Contains(info(ctx, n.Addr(), "cluster"), "cluster_state:ok") {
				return false
			}
		}
		return true
	})
	return c
}

// Addrs are the nodes' host:port.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// info returns the answer of INFO section (or, for "cluster", CLUSTER
// INFO) at addr, "" when it cannot be read.
func info(ctx context.Context, addr, section string) string {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	var s string
	var err error
	if section == "cluster" {
		s, err = c.ClusterInfo(ctx).Result()
	} else {
		s, err = c.Info(ctx, section).Result()
	}
	if err != nil {
		return ""
	}
	return s
}

// waitFor polls cond every 50ms until it holds, failing the test after
// within.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("redistest: waiting for %s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
