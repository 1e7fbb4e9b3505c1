package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/template"
	"time"
)

// caddyfile is the site under load: the login form at full speed, so the
// limits are raised far above what one client IP and a few thousand
// addresses would meet (the defaults would stop the load within a second,
// as they should stop anyone else).
const caddyfile = `{
	admin localhost:{{.AdminPort}}
	persist_config off
	storage file_system {{.Dir}}/storage
	log {
		output file {{.Dir}}/caddy.log
		level WARN
	}
}

http://localhost:{{.Port}} {
	bind 127.0.0.1
	mailgate {
		base_url http://localhost:{{.Port}}
		site_name "loadlogin"
		allow domain load.example
		link_ttl {{.LinkTTL}}
		smtp {{.SMTPAddr}} {
			tls starttls
			ca_file {{.Dir}}/sink-ca.pem
			username {{.SMTPUser}}
			password {{.SMTPPass}}
			from "Load <login@load.example>"
		}
{{- if .Redis}}
		store redis {
			address {{.Redis}}
		}
{{- else if .MaxMemory}}
		store memory {
			max_memory {{.MaxMemory}}
		}
{{- end}}
		limits {
			mails_per_address 1000000 1s
			requests_per_ip 1000000 1s
			requests_per_client 1000000 1s
			failures_per_ip 1000000 1s
		}
	}
	respond "signed in as {http.auth.user.email}"
}
`

// site is what the Caddyfile is filled in with.
type site struct {
	Dir                string
	AdminPort, Port    int
	SMTPAddr, Redis    string
	SMTPUser, SMTPPass string
	LinkTTL, MaxMemory string
}

// proc is a child process stopped by its PID.
type proc struct {
	cmd  *exec.Cmd
	done chan error
}

// start starts cmd, which the kernel ends when loadlogin ends: a run that
// is interrupted must not leave a Caddy or a Redis behind.
func start(cmd *exec.Cmd) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// stop asks the process to end, and kills it if it has not within 10s.
func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the process has ended, and why.
func (p *proc) exited() (error, bool) {
	select {
	case err := <-p.done:
		p.done <- err
		return err, true
	default:
		return nil, false
	}
}

// freePort returns a port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startRedis starts a redis-server that keeps nothing on disk, on a free
// loopback port, and waits until it answers.
func startRedis(bin, dir string) (*proc, string, error) {
	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir)
	p, err := start(cmd)
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			_, err = c.Write([]byte("PING\r\n"))
			buf := make([]byte, 7)
			if err == nil {
				_, err = c.Read(buf)
			}
			c.Close()
			if err == nil && string(buf) == "+PONG\r\n" {
				return p, addr, nil
			}
		}
		if _, ok := p.exited(); ok || time.Now().After(deadline) {
			p.stop()
			return nil, "", errors.New("redis-server did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startCaddy writes the Caddyfile and runs Caddy, pinned to cpus with
// taskset if cpus is not empty (Go then sets GOMAXPROCS to their number),
// and waits until the login page answers.
func startCaddy(bin, cpus string, s site) (*proc, error) {
	var buf bytes.Buffer
	if err := template.Must(template.New("").Parse(caddyfile)).Execute(&buf, s); err != nil {
		return nil, err
	}
	path := filepath.Join(s.Dir, "Caddyfile")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	args := []string{bin, "run", "--config", path, "--adapter", "caddyfile"}
	if cpus != "" {
		// taskset execs Caddy, so the PID is Caddy's.
		args = append([]string{"taskset", "-c", cpus}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+s.Dir, "XDG_DATA_HOME="+s.Dir)
	out, err := os.Create(filepath.Join(s.Dir, "caddy.out"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	p, err := start(cmd)
	out.Close()
	if err != nil {
		return nil, err
	}
	c := newClient(s.Port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/.mailgate/login", nil)
		resp, err := c.http.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		if err, ok := p.exited(); ok {
			return nil, fmt.Errorf("caddy exited (%v); see %s", err, filepath.Join(s.Dir, "caddy.out"))
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, errors.New("caddy did not answer within 60s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// cpuTime is the CPU time pid has used so far, user and system.
func cpuTime(pid int) (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, in parentheses, may hold spaces: count the fields
	// after it. utime and stime are fields 14 and 15, in clock ticks of
	// 1/100 s on Linux.
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}

// rssBytes is pid's resident set size.
func rssBytes(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmRSS")
}
