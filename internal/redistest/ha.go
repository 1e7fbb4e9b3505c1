package redistest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels of StartSentinel monitor.
const MasterName = "mymaster"

// Sentinel timings, small so that a failover takes seconds instead of
// Sentinel's default half minute: the master is judged down after
// DownAfter without an answer. Below a second, a loaded test machine made
// the sentinels judge a busy new master down too, and fail over again.
const (
	DownAfter       = time.Second
	failoverTimeout = 3 * time.Second
)

// replicated are the flags of every data node of a Sentinel deployment:
// a replica that must resync in full (one that rejoins after a failover)
// starts at once instead of after diskless replication's 5s delay.
var replicated = []string{"--repl-diskless-sync-delay", "0"}

// Sentinel is a master, its replicas and three sentinels watching them
// (quorum 2), all on 127.0.0.1: with one replica, the smallest Sentinel
// deployment that survives the loss of its master.
type Sentinel struct {
	Master    *Server
	Replicas  []*Server
	Sentinels []*Server
	// Password and SentinelPassword, when set, are required by the data
	// nodes and by the sentinels (see StartSentinelAuth).
	Password, SentinelPassword string
}

// StartSentinel starts the master, replicas (at least 1) replicas of it and
// three sentinels, and returns once the replicas are in sync and every
// sentinel knows them and the two other sentinels, so a failover can start
// as soon as the master dies. Everything stops when the test ends.
func StartSentinel(t testing.TB, replicas int) *Sentinel {
	t.Helper()
	return StartSentinelAuth(t, replicas, "", "")
}

// StartSentinelAuth is StartSentinel with the data nodes requiring
// password (requirepass, and masterauth for the replicas) and the
// sentinels requiring sentinelPassword; each empty for none.
func StartSentinelAuth(t testing.TB, replicas int, password, sentinelPassword string) *Sentinel {
	t.Helper()
	nodeArgs := replicated
	if password != "" {
		nodeArgs = append(slices.Clone(replicated), "--requirepass", password, "--masterauth", password)
	}
	master := Start(t, nodeArgs...)
	d := &Sentinel{Master: master, Password: password, SentinelPassword: sentinelPassword}
	for range replicas {
		d.Replicas = append(d.Replicas, Start(t, append(slices.Clone(nodeArgs), "--replicaof", "127.0.0.1", strconv.Itoa(master.Port()))...))
	}
	for range 3 {
		d.Sentinels = append(d.Sentinels, startSentinel(t, master.Port(), password, sentinelPassword))
	}
	ctx := context.Background()
	waitFor(t, 20*time.Second, "the replicas in sync and known to the three sentinels", func() bool {
		if strings.Count(info(ctx, master.Addr(), password, "replication"), "state=online") != replicas {
			return false
		}
		for _, s := range d.Sentinels {
			c := redis.NewSentinelClient(&redis.Options{Addr: s.Addr(), Password: sentinelPassword})
			m, err := c.Master(ctx, MasterName).Result()
			_ = c.Close()
			if err != nil || m["num-other-sentinels"] != "2" || m["num-slaves"] != strconv.Itoa(replicas) {
				return false
			}
		}
		return true
	})
	return d
}

// WaitPromoted waits until the sentinels report one of the replicas as the
// master, and returns its address.
func (d *Sentinel) WaitPromoted(t testing.TB) string {
	t.Helper()
	var addr string
	waitFor(t, 30*time.Second, "a replica promoted", func() bool {
		a, err := d.MasterAddr(context.Background())
		addr = a
		return err == nil && d.IsReplica(a)
	})
	return addr
}

// Rejoin restarts the stopped master as a replica of the current one, as
// a Sentinel-aware supervisor does (it asks the sentinels where the master
// is before it starts the node): left to the sentinels, a node that comes
// back as a master is turned into a replica only some 8s later.
func (d *Sentinel) Rejoin(t testing.TB) {
	t.Helper()
	addr, err := d.MasterAddr(context.Background())
	if err != nil {
		t.Fatalf("redistest: asking the sentinels for the master: %v", err)
	}
	host, port, _ := strings.Cut(addr, ":")
	d.Master.RestartWith("--replicaof", host, port)
}

// IsReplica reports whether addr is one of the replicas started with d.
func (d *Sentinel) IsReplica(addr string) bool {
	for _, r := range d.Replicas {
		if r.Addr() == addr {
			return true
		}
	}
	return false
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
	c := redis.NewSentinelClient(&redis.Options{Addr: d.Sentinels[0].Addr(), Password: d.SentinelPassword})
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
func startSentinel(t testing.TB, masterPort int, password, sentinelPassword string) *Server {
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
		if password != "" {
			body += fmt.Sprintf("sentinel auth-pass %s %s\n", MasterName, password)
		}
		if sentinelPassword != "" {
			// Sentinels talk to each other too: each presents the password.
			body += fmt.Sprintf("requirepass %s\nsentinel sentinel-pass %s\n", sentinelPassword, sentinelPassword)
		}
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
			if !strings.Contains(info(ctx, n.Addr(), "", "cluster"), "cluster_state:ok") {
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
func info(ctx context.Context, addr, password, section string) string {
	c := redis.NewClient(&redis.Options{Addr: addr, Password: password, MaxRetries: -1})
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
