// Package redistest runs a real redis-server for tests: the Redis store's
// guarantees (atomic scripts, GETDEL, streams, what a client sees while the
// server is down) are Redis's own behaviour, which a fake would only
// restate. So are Sentinel's failover and Cluster's slots: StartSentinel
// and StartCluster (ha.go) run those deployments on loopback too.
package redistest

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long a server may take to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process on 127.0.0.1, without persistence
// unless the test asks for it, that a test can stop and start again on the
// same port to stage an outage.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	// argv is the command line for a port: a plain server's flags, or a
	// sentinel's config file (see StartSentinels).
	argv func(port int) []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{} // closed when cmd has exited
}

// Start runs redis-server on a free port and stops it when the test ends.
// args go on its command line after the defaults, which they override:
// "--appendonly", "yes" turns persistence on. Without redis-server on PATH
// the test is skipped, or fails under CI (CI set), where a missing server
// must not pass silently.
func Start(t testing.TB, args ...string) *Server {
	t.Helper()
	s := &Server{t: t, bin: need(t, "redis-server"), dir: t.TempDir()}
	s.argv = func(port int) []string {
		return append([]string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--save", "",
			"--appendonly", "no",
			"--dir", s.dir,
			"--logfile", filepath.Join(s.dir, "redis.log"),
		}, args...)
	}
	s.launch()
	return s
}

// need returns the path of a Redis program, skipping the test without it,
// or failing it under CI (CI set), where a missing program must not pass
// silently.
func need(t testing.TB, program string) string {
	t.Helper()
	bin, err := exec.LookPath(program)
	if err != nil {
		msg := program + " not on PATH: apt-get install redis-server redis-tools"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return bin
}

// launch starts s on a free port and stops it when the test ends.
func (s *Server) launch() {
	t := s.t
	t.Helper()
	// The port is free when asked for but could be taken before
	// redis-server binds it, so a failed start tries another.
	for attempt := 1; ; attempt++ {
		s.port = freePort(t)
		err := s.start()
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("redistest: starting redis-server: %v\n%s", err, s.logTail())
		}
	}
	t.Cleanup(s.Stop)
}

// Port is the server's port, the same after Restart.
func (s *Server) Port() int { return s.port }

// Addr is the server's host:port, the same after Restart.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop kills the server with SIGKILL, as a crash would, and waits for it to
// exit. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.exit
	s.cmd = nil
}

// Restart starts the server again on the same port, empty unless Start's
// args turned persistence on, and returns once it answers PING.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("redistest: restarting redis-server on %s: %v\n%s", s.Addr(), err, s.logTail())
	}
}

// RestartWith is Restart with args added to the command line, for this
// start and the next.
func (s *Server) RestartWith(args ...string) {
	s.t.Helper()
	argv := s.argv
	s.argv = func(port int) []string { return append(argv(port), args...) }
	s.Restart()
}

// start runs redis-server on s.port and waits until it answers PING, or
// fails if it exits or stays silent for startTimeout.
func (s *Server) start() error {
	cmd := exec.Command(s.bin, s.argv(s.port)...)
	if err := cmd.Start(); err != nil {
		return err
	}
	exit := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exit)
	}()
	deadline := time.Now().Add(startTimeout)
	for !s.ping() {
		select {
		case <-exit:
			return fmt.Errorf("redis-server exited: %v", cmd.ProcessState)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exit
			return fmt.Errorf("no answer to PING within %s", startTimeout)
		}
	}
	s.mu.Lock()
	s.cmd, s.exit = cmd, exit
	s.mu.Unlock()
	return nil
}

// ping reports whether a Redis answers PING on s.port.
func (s *Server) ping() bool {
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return false
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	// A server that requires a password answers, and is up, all the same.
	line = strings.TrimSpace(line)
	return err == nil && (line == "+PONG" || strings.HasPrefix(line, "-NOAUTH"))
}

// LogTail returns the end of the server's log, for a failure message.
func (s *Server) LogTail() string { return s.logTail() }

// logTail returns the end of the server's log, for a failure message.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	const tail = 2000
	if len(b) > tail {
		b = b[len(b)-tail:]
	}
	return string(b)
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: finding a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
