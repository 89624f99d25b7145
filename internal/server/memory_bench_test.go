package server_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"parley/internal/testserver"
)

// BenchmarkIdleSessionMemory measures the server memory one idle,
// authenticated client session costs, over STARTTLS ("tls") and without
// TLS ("plain"). The server runs as its own process (the built binary) so
// the figure excludes the test's client connections: heap in use plus
// goroutine stacks, read from the server's own /metrics before and after
// b.N sessions are opened (B/session), and on Linux the process's resident
// set (rss-B/session). Run it with a fixed count, e.g. -benchtime=2000x
// (the figure is at 10000x; the test process then needs about
// 20000 file descriptors).
func BenchmarkIdleSessionMemory(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "parley")
	if out, err := exec.Command("go", "build", "-o", bin, "parley/cmd/parley").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	for _, mode := range []string{"tls", "plain"} {
		b.Run(mode, func(b *testing.B) { benchIdleSessions(b, bin, mode == "tls") })
	}
}

func benchIdleSessions(b *testing.B, bin string, useTLS bool) {
	dir := b.TempDir()
	c2sAddr, httpAddr := freeAddr(b), freeAddr(b)
	cfg := filepath.Join(dir, "parley.toml")
	plain := ""
	if !useTLS {
		plain = "require_tls = false\nallow_plain_without_tls = true\n"
	}
	err := os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir = %q
[c2s]
listen = [%q]
direct_tls_listen = []
%s[http]
listen = %q
pprof = true
[limits]
max_sessions_per_account = 100000
max_connections_per_ip = 100000
rate_bytes_per_second = 100000000
rate_burst_bytes = 1000000
`, dir, c2sAddr, plain, httpAddr)), 0o600)
	if err != nil {
		b.Fatal(err)
	}
	if out, err := exec.Command(bin, "user", "add", "bench@localhost", "benchpassword", "--config", cfg).CombinedOutput(); err != nil {
		b.Fatalf("user add: %v\n%s", err, out)
	}
	srv := exec.Command(bin, "serve", "--config", cfg)
	if err := srv.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _, _ = srv.Process.Wait() }()
	waitPort(b, c2sAddr)
	var clients []*testserver.Client
	login := func() {
		c := testserver.Dial(b, c2sAddr)
		c.Open("localhost")
		if useTLS {
			c.StartTLS("localhost")
		}
		c.AuthPlain("localhost", "bench", "benchpassword")
		c.Bind("")
		clients = append(clients, c)
	}
	login() // warm up: first TLS handshake, caches
	settle(b, httpAddr)
	before, stack0 := serverMemory(b, httpAddr)
	rss0 := processRSS(srv.Process.Pid)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		login()
	}
	b.StopTimer()
	settle(b, httpAddr)
	after, stack1 := serverMemory(b, httpAddr)
	rss1 := processRSS(srv.Process.Pid)
	b.ReportMetric(float64(after-before)/float64(b.N), "B/session")
	b.ReportMetric(float64(stack1-stack0)/float64(b.N), "stack-B/session")
	if rss0 > 0 && rss1 > 0 {
		b.ReportMetric(float64(rss1-rss0)/float64(b.N), "rss-B/session")
	}
	for _, c := range clients {
		_ = c.Conn.Close()
	}
}

// settle brings the server to the steady state of idle sessions before it
// is measured: the sessions' readers have parked (limits.park_idle_after,
// 2s by default, plus a margin); the collector has run twice since
// (through net/http/pprof's gc=1), as it does at least every two minutes
// on its own: it shrinks the stacks of goroutines that use less than a
// quarter of theirs, halving them at each collection; and the server has
// been left quiet for half a minute, in which the runtime's background
// scavenger gives back to the system the pages the logins left free (RSS
// right after a storm includes them). Nothing polls the server meanwhile:
// every scrape would leave garbage behind.
func settle(b *testing.B, httpAddr string) {
	time.Sleep(3 * time.Second)
	for range 2 {
		resp, err := http.Get("http://" + httpAddr + "/debug/pprof/heap?gc=1")
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	time.Sleep(30 * time.Second)
}

// processRSS returns the resident set of process pid in bytes, or 0 where
// /proc is not available.
func processRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return pages * int64(os.Getpagesize())
}

func freeAddr(b *testing.B) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitPort(b *testing.B, addr string) {
	for i := 0; i < 200; i++ {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.Fatalf("server did not listen on %s", addr)
}

// serverMemory returns heap-in-use plus stack-in-use bytes from /metrics,
// and stack-in-use alone.
func serverMemory(b *testing.B, httpAddr string) (total, stack int64) {
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		for _, m := range []string{"go_memstats_heap_inuse_bytes ", "go_memstats_stack_inuse_bytes "} {
			if strings.HasPrefix(line, m) {
				v, err := strconv.ParseFloat(strings.TrimPrefix(line, m), 64)
				if err == nil {
					total += int64(v)
					if strings.HasPrefix(m, "go_memstats_stack") {
						stack = int64(v)
					}
				}
			}
		}
	}
	return total, stack
}
