package loadgen_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math"
	"net"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"parley/internal/loadgen"
)

// Several addresses (a cluster's nodes) and several server processes (its
// nodes and NATS servers): sessions go round-robin over the addresses,
// CPU and memory are summed over the processes.

func TestParseAddrs(t *testing.T) {
	got, err := loadgen.ParseAddrs(" 127.0.0.1:5222, [::1]:5223,,127.0.0.2:5222 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:5222", "[::1]:5223", "127.0.0.2:5222"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	for _, bad := range []string{"", " , ", "127.0.0.1", "127.0.0.1:5222,host", "127.0.0.1:"} {
		if a, err := loadgen.ParseAddrs(bad); err == nil {
			t.Errorf("%q: got %q, want an error", bad, a)
		}
	}
}

func TestParsePIDs(t *testing.T) {
	got, err := loadgen.ParsePIDs("12, 34,0,,56")
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{12, 34, 56}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got, err := loadgen.ParsePIDs(""); err != nil || len(got) != 0 {
		t.Errorf("empty: got %v, %v; want none", got, err)
	}
	for _, bad := range []string{"x", "12,-3", "1.5"} {
		if p, err := loadgen.ParsePIDs(bad); err == nil {
			t.Errorf("%q: got %v, want an error", bad, p)
		}
	}
}

func TestTargetFor(t *testing.T) {
	o := &loadgen.Options{Target: loadgen.Target{Addr: "a:1", Domain: "bench.test", TLS: loadgen.TLSNone, Mech: "PLAIN"}}
	if got := o.TargetFor(5); !reflect.DeepEqual(got, o.Target) {
		t.Errorf("no Addrs: got %+v, want Target", got)
	}
	o.Addrs = []string{"n1:5222", "n2:5222", "n3:5222"}
	for i, want := range []string{"n1:5222", "n2:5222", "n3:5222", "n1:5222", "n2:5222", "n3:5222", "n1:5222"} {
		got := o.TargetFor(i)
		if got.Addr != want || got.Domain != "bench.test" || got.Mech != "PLAIN" {
			t.Errorf("session %d: got %+v, want address %s and the rest of Target", i, got, want)
		}
	}
	if o.Target.Addr != "a:1" {
		t.Errorf("TargetFor changed Target: %+v", o.Target)
	}
}

// recorder is a listener that keeps what each accepted connection's
// client sent, to see which accounts logged in through it.
type recorder struct {
	net.Listener
	mu    sync.Mutex
	conns []*bytes.Buffer
}

type recConn struct {
	net.Conn
	r   *recorder
	buf *bytes.Buffer
}

func (c *recConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.buf.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}

func (r *recorder) Accept() (net.Conn, error) {
	c, err := r.Listener.Accept()
	if err != nil {
		return nil, err
	}
	buf := new(bytes.Buffer)
	r.mu.Lock()
	r.conns = append(r.conns, buf)
	r.mu.Unlock()
	return &recConn{Conn: c, r: r, buf: buf}, nil
}

var plainAuth = regexp.MustCompile(`<auth[^>]*>([^<]*)</auth>`)

// users lists the account of every PLAIN login made through r, in the
// order the connections were accepted.
func (r *recorder) users(t *testing.T) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, b := range r.conns {
		m := plainAuth.FindSubmatch(b.Bytes())
		if m == nil {
			continue // a connection that never authenticated
		}
		raw, err := base64.StdEncoding.DecodeString(string(m[1]))
		parts := bytes.Split(raw, []byte{0})
		if err != nil || len(parts) != 3 {
			t.Fatalf("bad PLAIN message %q", m[1])
		}
		out = append(out, string(parts[1]))
	}
	return out
}

// spreadReflector serves one reflector on n listeners (sessions on
// different listeners reach each other, like users on different nodes).
func spreadReflector(t *testing.T, n int) ([]string, []*recorder) {
	t.Helper()
	rf := &loadgen.Reflector{Domain: "bench.test"}
	var addrs []string
	var recs []*recorder
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{Listener: ln}
		t.Cleanup(func() { ln.Close() })
		go rf.Serve(rec)
		addrs = append(addrs, ln.Addr().String())
		recs = append(recs, rec)
	}
	return addrs, recs
}

func TestChatSessionsSpreadRoundRobin(t *testing.T) {
	addrs, recs := spreadReflector(t, 3)
	o := options(addrs[0], loadgen.TLSNone, "PLAIN", loadgen.ScenarioChat, 7, 300)
	o.Addrs = addrs
	checkRun(t, o)
	// bench1 is session 0: sessions 0, 3, 6 on the first address, 1, 4
	// on the second, 2, 5 on the third; each logged in once.
	for k, rec := range recs {
		got := map[string]int{}
		for _, u := range rec.users(t) {
			got[u]++
		}
		want := map[string]int{}
		for i := k; i < 7; i += 3 {
			want[fmt.Sprintf("bench%d", i+1)] = 1
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("address %d: logins %v, want %v", k, got, want)
		}
	}
}

func TestLoginArrivalsSpreadRoundRobin(t *testing.T) {
	addrs, recs := spreadReflector(t, 2)
	o := options(addrs[0], loadgen.TLSNone, "PLAIN", loadgen.ScenarioLogin, 4, 40)
	o.Addrs = addrs
	rs, err := loadgen.Run(o)
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	if r.Delivered == 0 || r.Errors > 0 || r.Lost() > 0 {
		t.Fatalf("login step: %s", r.Line())
	}
	// Arrival n uses account n % 4 and address n % 2: odd accounts
	// (bench1, bench3) always on the first, even ones on the second, and
	// the arrivals alternate.
	first, second := recs[0].users(t), recs[1].users(t)
	for _, u := range first {
		if u != "bench1" && u != "bench3" {
			t.Errorf("first address: login of %s", u)
		}
	}
	for _, u := range second {
		if u != "bench2" && u != "bench4" {
			t.Errorf("second address: login of %s", u)
		}
	}
	if n := uint64(len(first) + len(second)); n != r.Delivered {
		t.Errorf("%d logins seen by the listeners, %d reported", n, r.Delivered)
	}
	if d := len(first) - len(second); d < 0 || d > 1 {
		t.Errorf("logins per address %d and %d: not alternating", len(first), len(second))
	}
}

// busy starts a child that spins, for CPU to measure.
func busy(t *testing.T) *exec.Cmd {
	t.Helper()
	c := exec.Command("sh", "-c", "while :; do :; done")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill(); c.Wait() })
	return c
}

func TestProcUsageSumsProcesses(t *testing.T) {
	a, b := busy(t), busy(t)
	time.Sleep(300 * time.Millisecond)
	// Stopped, their counters no longer move: the sums are exact.
	for _, c := range []*exec.Cmd{a, b} {
		if err := c.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	pa, pb := a.Process.Pid, b.Process.Pid
	ua, ub, both := loadgen.ProcUsage(pa), loadgen.ProcUsage(pb), loadgen.ProcUsage(pa, pb)
	if !ua.OK || !ub.OK || !both.OK {
		t.Fatalf("not OK: %+v %+v %+v", ua, ub, both)
	}
	if ua.CPU <= 0 || ub.CPU <= 0 {
		t.Errorf("spinning children used no CPU: %v s, %v s", ua.CPU, ub.CPU)
	}
	if math.Abs(both.CPU-(ua.CPU+ub.CPU)) > 1e-9 || both.Procs != ua.Procs+ub.Procs || both.RSSKiB != ua.RSSKiB+ub.RSSKiB {
		t.Errorf("sum: got %+v, want the sum of %+v and %+v", both, ua, ub)
	}
	if twice := loadgen.ProcUsage(pa, pa); twice != ua {
		t.Errorf("a pid given twice: got %+v, want %+v", twice, ua)
	}
	// The children are below this process: naming them too adds nothing.
	self := loadgen.ProcUsage(syscall.Getpid())
	withChild := loadgen.ProcUsage(syscall.Getpid(), pa)
	if withChild.Procs != self.Procs || self.Procs < 3 {
		t.Errorf("self %d processes, self and a child %d: want the same, at least 3", self.Procs, withChild.Procs)
	}
	if u := loadgen.ProcUsage(); u.OK {
		t.Errorf("no pid: got %+v, want not OK", u)
	}
	a.Process.Kill()
	a.Wait()
	if u := loadgen.ProcUsage(pa, pb); u.OK {
		t.Errorf("one process gone: got %+v, want not OK", u)
	}
}

func TestServerCPUByProcess(t *testing.T) {
	addrs, _ := spreadReflector(t, 1)
	a, b := busy(t), busy(t)
	o := options(addrs[0], loadgen.TLSNone, "PLAIN", loadgen.ScenarioChat, 4, 100)
	o.PIDs = []int{a.Process.Pid, b.Process.Pid}
	rs, err := loadgen.Run(o)
	if err != nil {
		t.Fatal(err)
	}
	r := rs[0]
	t.Log(r.Line())
	if len(r.TargetCPUEach) != 2 || r.TargetCPUEach[0] <= 0 || r.TargetCPUEach[1] <= 0 {
		t.Fatalf("CPU by process %v, want two spinning processes' CPU", r.TargetCPUEach)
	}
	// Both spin throughout; the parts and the sum are of one reading.
	if sum := r.TargetCPUEach[0] + r.TargetCPUEach[1]; math.Abs(sum-r.TargetCPU) > 1e-9 {
		t.Errorf("CPU by process %v sums to %.3f s, the total is %.3f s", r.TargetCPUEach, sum, r.TargetCPU)
	}
	var row bytes.Buffer
	if err := loadgen.WriteTSV(&row, "x", &o.Target, rs); err != nil {
		t.Fatal(err)
	}
	head := strings.Split(loadgen.TSVHeader, "\t")
	cols := strings.Split(strings.TrimSuffix(row.String(), "\n"), "\t")
	if len(cols) != len(head) || head[len(head)-1] != "server_cpu_each_s" {
		t.Fatalf("%d columns for a %d-column header ending %q", len(cols), len(head), head[len(head)-1])
	}
	want := fmt.Sprintf("%.3f,%.3f", r.TargetCPUEach[0], r.TargetCPUEach[1])
	if got := cols[len(cols)-1]; got != want {
		t.Errorf("server_cpu_each_s %q, want %q", got, want)
	}
	// The CPU window is the step (1 s) and its drain.
	if got := cols[len(cols)-2]; got != fmt.Sprintf("%.3f", r.Window) || r.Window < 1 || r.Window > 1+o.Drain.Seconds()+1 {
		t.Errorf("window_s %q, Window %.3f s: want the step and its drain", got, r.Window)
	}
}
