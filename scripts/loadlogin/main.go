// Command loadlogin runs sign-ins through a real Caddy with mailgate, end to
// end, as fast as it can, and reports how many went through per second.
//
// It starts everything itself: an SMTP sink (go-smtp, STARTTLS and AUTH
// PLAIN) that takes the link out of each mail, redis-server for -store
// redis, and Caddy from the binary given with -caddy, pinned with taskset to
// -cpus. Each of -conns clients then loops, on a keep-alive connection of
// its own:
//
//	login   open the login form, post an address, wait for its mail at the
//	        sink, open the link, press Sign in, and fetch the protected page
//	        with the session it got (five requests and one mail per login)
//	flood   post the login form for a new address again and again, without
//	        waiting for mail: how many mails go out while the form is
//	        flooded, and how many posts the full queue refuses (503)
//	pending post the form for -links new addresses and report Caddy's RSS
//	        every -every posts: what that many pending links cost through
//	        the real flow (see pending.go)
//
// Counts are taken over -duration after -warmup. Run the client on the
// other cores than Caddy's, so that it does not take Caddy's CPU:
//
//	go build -o /tmp/mail-caddy ./caddy
//	go build -o /tmp/loadlogin ./scripts/loadlogin
//	taskset -c 1 /tmp/loadlogin -caddy /tmp/mail-caddy -cpus 0 -store memory
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.caddy, "caddy", "", "the Caddy binary with mailgate (go build -o /tmp/mail-caddy ./caddy)")
	flag.StringVar(&o.cpus, "cpus", "0", "the CPUs Caddy runs on (taskset -c); empty: not pinned")
	flag.StringVar(&o.store, "store", "memory", "memory or redis")
	flag.StringVar(&o.redis, "redis-server", "redis-server", "the redis-server binary, for -store redis")
	flag.StringVar(&o.mode, "mode", "login", "login, flood or pending")
	flag.IntVar(&o.links, "links", 1_000_000, "pending mode: the form posts, each for a new address")
	flag.IntVar(&o.every, "every", 100_000, "pending mode: report RSS every so many posts")
	flag.IntVar(&o.sample, "sample", 100, "pending mode: the links checked at the end to be still pending")
	flag.StringVar(&o.heapProfile, "heapprofile", "", "pending mode: write Caddy's heap profile at the end to this file")
	flag.IntVar(&o.conns, "conns", 32, "clients at once, each on a connection of its own")
	flag.IntVar(&o.addresses, "addresses", 50, "login mode: the addresses each client signs in as, in turn")
	flag.DurationVar(&o.warmup, "warmup", 3*time.Second, "load before counting starts")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "how long to count")
	flag.StringVar(&o.profile, "cpuprofile", "", "write Caddy's CPU profile over the counted time to this file")
	flag.StringVar(&o.linkTTL, "link-ttl", "10m", "the site's link_ttl: pending links live this long")
	flag.StringVar(&o.maxMemory, "max-memory", "", "the memory store's max_memory; empty: its default")
	flag.DurationVar(&o.mailWait, "mail-timeout", 10*time.Second, "login mode: how long a client waits for its mail")
	flag.Parse()
	if o.caddy == "" {
		log.Fatal("loadlogin: -caddy is required")
	}
	if err := run(o); err != nil {
		log.Fatal("loadlogin: ", err)
	}
}

type options struct {
	caddy, cpus, store, redis, mode string
	profile, linkTTL, maxMemory     string
	heapProfile                     string
	conns, addresses                int
	links, every, sample            int
	warmup, duration, mailWait      time.Duration
}

func run(o options) error {
	if o.mode != "login" && o.mode != "flood" && o.mode != "pending" {
		return fmt.Errorf("unknown -mode %q", o.mode)
	}
	dir, err := os.MkdirTemp("", "loadlogin")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	ports := make([]int, 2)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			return err
		}
	}
	s := site{Dir: dir, AdminPort: ports[0], Port: ports[1], SMTPUser: "mailer", SMTPPass: "load-secret",
		LinkTTL: o.linkTTL, MaxMemory: o.maxMemory}
	sk, err := startSink(fmt.Sprintf("http://localhost:%d/.mailgate/link?", s.Port), s.SMTPUser, s.SMTPPass)
	if err != nil {
		return err
	}
	defer sk.close()
	s.SMTPAddr = sk.addr
	if err := os.WriteFile(dir+"/sink-ca.pem", sk.caPEM, 0o600); err != nil {
		return err
	}
	switch o.store {
	case "memory":
	case "redis":
		rp, addr, err := startRedis(o.redis, dir)
		if err != nil {
			return err
		}
		defer rp.stop()
		s.Redis = addr
	default:
		return fmt.Errorf("unknown -store %q", o.store)
	}
	cp, err := startCaddy(o.caddy, o.cpus, s)
	if err != nil {
		return err
	}
	defer cp.stop()

	l := &load{o: o, sink: sk, port: s.Port, admin: s.AdminPort}
	if o.mode == "pending" {
		return l.pending(cp.pid())
	}
	return l.run(cp.pid())
}

// load is one run of clients and what they counted.
type load struct {
	o           options
	sink        *sink
	port, admin int

	// counting is set for the measured window only.
	counting atomic.Bool
	stop     atomic.Bool
	logins   atomic.Int64
	// statuses counts the form posts' answers in flood mode.
	statusMu sync.Mutex
	statuses map[int]int
	// errs counts failures by their text; latencies are the full logins'.
	errMu     sync.Mutex
	errs      map[string]int
	latencies []time.Duration
	// next numbers flood mode's addresses.
	next atomic.Int64
}

func (l *load) run(pid int) error {
	l.statuses = map[int]int{}
	l.errs = map[string]int{}
	var wg sync.WaitGroup
	for w := range l.o.conns {
		wg.Go(func() { l.client(w) })
	}
	time.Sleep(l.o.warmup) // the load runs meanwhile; nothing is being timed
	cpu0, err := cpuTime(pid)
	if err != nil {
		return err
	}
	mails0 := l.sink.mails.Load()
	start := time.Now()
	l.counting.Store(true)
	profiled := make(chan error, 1)
	go func() { profiled <- l.cpuProfile() }()
	time.Sleep(l.o.duration)
	l.counting.Store(false)
	elapsed := time.Since(start).Seconds()
	mails := l.sink.mails.Load() - mails0
	cpu1, err := cpuTime(pid)
	if err != nil {
		return err
	}
	l.stop.Store(true)
	wg.Wait()
	if err := <-profiled; err != nil {
		return err
	}
	rss, err := rssBytes(pid)
	if err != nil {
		return err
	}

	fmt.Printf("store=%s mode=%s conns=%d cpus=%q duration=%s\n", l.o.store, l.o.mode, l.o.conns, l.o.cpus, l.o.duration)
	cpu := (cpu1 - cpu0).Seconds()
	fmt.Printf("caddy cpu: %.2f cores busy, rss %d MiB\n", cpu/elapsed, rss>>20)
	fmt.Printf("mails received: %.0f/s\n", float64(mails)/elapsed)
	switch l.o.mode {
	case "login":
		n := l.logins.Load()
		fmt.Printf("full logins: %.0f/s (%d)\n", float64(n)/elapsed, n)
		if n > 0 {
			fmt.Printf("caddy cpu per login: %.0f µs\n", cpu/float64(n)*1e6)
			slices.Sort(l.latencies)
			fmt.Printf("login latency: p50 %s, p99 %s\n", pct(l.latencies, 50), pct(l.latencies, 99))
		}
	case "flood":
		var posts int
		for _, c := range l.statuses {
			posts += c
		}
		fmt.Printf("form posts: %.0f/s (%d)\n", float64(posts)/elapsed, posts)
		for _, code := range slices.Sorted(maps.Keys(l.statuses)) {
			fmt.Printf("  %d: %d (%.1f%%)\n", code, l.statuses[code], 100*float64(l.statuses[code])/float64(posts))
		}
	}
	if l.sink.noLink.Load() > 0 {
		fmt.Printf("mails without a link: %d\n", l.sink.noLink.Load())
	}
	for _, e := range slices.Sorted(maps.Keys(l.errs)) {
		fmt.Printf("error: %s ×%d\n", e, l.errs[e])
	}
	return nil
}

// pct is the p-th percentile of sorted d.
func pct(d []time.Duration, p int) time.Duration {
	return d[min(len(d)-1, len(d)*p/100)].Round(10 * time.Microsecond)
}

// client runs one client's loop until the load stops.
func (l *load) client(w int) {
	c := newClient(l.port)
	ch := make(chan string, 1)
	for i := 0; !l.stop.Load(); i++ {
		var err error
		switch l.o.mode {
		case "login":
			err = l.login(c, ch, fmt.Sprintf("u%d-%d@load.example", w, i%l.o.addresses))
		case "flood":
			err = l.post(c, fmt.Sprintf("f%d@load.example", l.next.Add(1)))
		}
		if err != nil && l.counting.Load() {
			l.errMu.Lock()
			l.errs[err.Error()]++
			l.errMu.Unlock()
		}
	}
}

// login signs in as addr, end to end.
func (l *load) login(c *client, ch chan string, addr string) error {
	start := time.Now()
	l.sink.expect(addr, ch)
	status, err := c.requestLink(addr)
	if err == nil && status != http.StatusSeeOther {
		err = errStatus{"link request", status}
	}
	if err != nil {
		l.sink.forget(addr)
		return err
	}
	var link string
	select {
	case link = <-ch:
	case <-time.After(l.o.mailWait):
		l.sink.forget(addr)
		// A mail that comes after all must not be taken for the next one.
		select {
		case <-ch:
		default:
		}
		return errNoMail
	}
	if err := c.confirm(link, addr); err != nil {
		return err
	}
	if l.counting.Load() {
		l.logins.Add(1)
		l.errMu.Lock()
		l.latencies = append(l.latencies, time.Since(start))
		l.errMu.Unlock()
	}
	return nil
}

// post posts the form for addr once and counts its answer.
func (l *load) post(c *client, addr string) error {
	status, err := c.requestLink(addr)
	if err != nil {
		var es errStatus
		if !errors.As(err, &es) {
			return err
		}
		status = es.status
	}
	if l.counting.Load() {
		l.statusMu.Lock()
		l.statuses[status]++
		l.statusMu.Unlock()
	}
	return nil
}

// cpuProfile fetches Caddy's CPU profile over the counted time from its
// admin API, if -cpuprofile asks for one.
func (l *load) cpuProfile() error {
	if l.o.profile == "" {
		return nil
	}
	return saveProfile(fmt.Sprintf("http://localhost:%d/debug/pprof/profile?seconds=%d", l.admin, int(l.o.duration.Seconds())), l.o.profile)
}

// saveProfile writes the profile Caddy's admin API answers at url to file.
func saveProfile(url, file string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
