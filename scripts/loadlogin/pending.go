package main

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// pending is the pending mode: -links form posts, each for an address never
// used before, through the whole request path (the form token, the
// requests_per_ip and mails_per_address counters, the queue, the store, the
// mail at the sink), as fast as -conns clients get answers. Every
// -every posts it prints Caddy's RSS and the answers so far; at the end it
// opens the links mailed to -sample addresses spread over the run, the
// first and the last among them, to check that the store still holds
// them, and saves Caddy's heap profile if -heapprofile asks for one.
//
// Each client opens the login page once and then posts the form again and
// again with the form token each answer renews (as a browser that submits
// the form it is shown again would), so that the posts, not the pages,
// are what is measured. The links must all be pending at the end:
// -link-ttl must outlast the run.
func (l *load) pending(pid int) error {
	links := l.o.links
	sampleEvery := max(links/max(l.o.sample, 1), 1)
	samples := map[int64]chan string{}
	for n := int64(1); n <= int64(links); n += int64(sampleEvery) {
		samples[n] = make(chan string, 1)
	}
	samples[int64(links)] = make(chan string, 1)
	for n, ch := range samples {
		l.sink.expect(pendingAddr(n), ch)
	}
	rss0, err := rssBytes(pid)
	if err != nil {
		return err
	}
	fmt.Printf("pending: %d links, %d clients, link_ttl %s, max_memory %q; caddy rss at start %d MiB\n",
		links, l.o.conns, l.o.linkTTL, l.o.maxMemory, rss0>>20)
	var (
		done     atomic.Int64
		statusMu sync.Mutex
		statuses = map[int]int{}
		errs     atomic.Int64
		wg       sync.WaitGroup
		next     atomic.Int64
	)
	start := time.Now()
	for range l.o.conns {
		wg.Go(func() {
			c := newClient(l.port)
			for {
				n := next.Add(1)
				if n > int64(links) {
					return
				}
				status, err := c.postLink(pendingAddr(n))
				if err != nil {
					errs.Add(1)
				}
				statusMu.Lock()
				statuses[status]++
				statusMu.Unlock()
				done.Add(1)
			}
		})
	}
	report := func(n int64) error {
		rss, err := rssBytes(pid)
		if err != nil {
			return err
		}
		statusMu.Lock()
		answers := ""
		for _, code := range slices.Sorted(maps.Keys(statuses)) {
			answers += fmt.Sprintf(" %d:%d", code, statuses[code])
		}
		statusMu.Unlock()
		el := time.Since(start)
		fmt.Printf("%8d posts  %6.0fs  %5.0f/s  rss %4d MiB  mails %d  answers%s  errors %d\n",
			n, el.Seconds(), float64(n)/el.Seconds(), rss>>20, l.sink.mails.Load(), answers, errs.Load())
		return nil
	}
	every := int64(max(l.o.every, 1))
	for mark := every; ; {
		time.Sleep(100 * time.Millisecond)
		n := done.Load()
		if n >= mark || n >= int64(links) {
			if err := report(n); err != nil {
				return err
			}
			mark = (n/every + 1) * every
		}
		if n >= int64(links) {
			break
		}
	}
	wg.Wait()
	// The last mails may still be in the queue.
	for deadline := time.Now().Add(30 * time.Second); l.sink.mails.Load() < int64(statuses[http.StatusSeeOther]) && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	if err := report(done.Load()); err != nil {
		return err
	}

	// Every sampled link must still open its confirmation page.
	c := newClient(l.port)
	held, gone, unseen := 0, []int64{}, 0
	for _, n := range slices.Sorted(maps.Keys(samples)) {
		var link string
		select {
		case link = <-samples[n]:
		default:
			unseen++
			continue
		}
		u, err := url.Parse(link)
		if err != nil {
			return err
		}
		p, err := c.get(u.RequestURI())
		if err != nil {
			return err
		}
		if p.status == http.StatusOK {
			held++
		} else {
			gone = append(gone, n)
		}
	}
	fmt.Printf("sampled links still pending: %d of %d (not mailed: %d; gone: %v)\n", held, len(samples), unseen, gone)
	return l.heapProfile()
}

// pendingAddr is the n-th address of pending mode.
func pendingAddr(n int64) string { return fmt.Sprintf("p%d@load.example", n) }

// heapProfile saves Caddy's heap profile from its admin API, if
// -heapprofile asks for one.
func (l *load) heapProfile() error {
	if l.o.heapProfile == "" {
		return nil
	}
	return saveProfile(fmt.Sprintf("http://localhost:%d/debug/pprof/heap", l.admin), l.o.heapProfile)
}

// postLink posts the login form for addr with the form token the last
// answer renewed, opening the login page first when there is none or the
// token was refused.
func (c *client) postLink(addr string) (int, error) {
	if c.form == "" {
		return c.requestLink(addr)
	}
	p, err := c.post("/.mailgate/login/email", url.Values{"email": {addr}, "return": {"/"}})
	if err == nil && p.status == http.StatusForbidden {
		return c.requestLink(addr)
	}
	return p.status, err
}
