package cluster

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"parley/internal/cluster/natstest"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// countingSession counts what reaches it and signals when want arrived.
type countingSession struct {
	fakeSession
	mu   sync.Mutex
	n    int
	want int
	done chan struct{}
}

func (s *countingSession) Send(*xml.Element) {
	s.mu.Lock()
	s.n++
	if s.n == s.want {
		close(s.done)
	}
	s.mu.Unlock()
}

// cpuOf returns the user+system CPU time of a process from /proc.
func cpuOf(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	// Fields after the command: state is [0], utime [11], stime [12].
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ 100
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchNodes starts a nats-server and two nodes on it, in this process.
func benchNodes(b *testing.B) (*natstest.Server, []*testNode) {
	srv := natstest.Start(b, natsTestAddr)
	var engs []Engine
	for i := 0; i < 2; i++ {
		e, err := DialNATS(NATSOptions{URLs: []string{srv.URL()}, Name: fmt.Sprintf("bench%d", i)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(e.Close)
		engs = append(engs, e)
	}
	return srv, startNodes(b, func(testing.TB, int) []Engine { return engs }, 2, 0)
}

// benchRoute routes b.N chat messages from node 1 to a session bound on
// node `on` and reports the CPU per message of the whole process plus the
// NATS server (the two nodes share the test process).
func benchRoute(b *testing.B, on int) {
	srv, ns := benchNodes(b)
	full := jid.MustParse("alice@example.com/phone")
	s := &countingSession{fakeSession: fakeSession{r: ns[on].r, id: "bench"}, want: b.N, done: make(chan struct{})}
	if _, _, err := ns[on].r.Bind(s, full.Bare(), full.Resource()); err != nil {
		b.Fatal(err)
	}
	for ns[0].r.Session(full) == nil {
		time.Sleep(time.Millisecond)
	}
	msg := chat(full.String(), "a message of ordinary length, say forty-five bytes")
	ctx := context.Background()
	cpu0, nats0 := selfCPU(), cpuOf(srv.Pid())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ns[0].r.Route(ctx, msg)
	}
	<-s.done
	b.StopTimer()
	cpu := selfCPU() - cpu0 + cpuOf(srv.Pid()) - nats0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
}

// Within one node: the router's delivery to a local session.
func BenchmarkRouteLocal(b *testing.B) { benchRoute(b, 0) }

// Across nodes: serialise, publish, NATS, parse, deliver.
func BenchmarkRouteAcrossNodes(b *testing.B) { benchRoute(b, 1) }

// A room's message to occupants on another node: each iteration routes
// one groupchat message to 50 sessions bound on node 2, one NATS message
// per copy without a batch, one for all of them in a fan-out batch
// (module.Batch, as the MUC sends). CPU per delivery, both nodes and the
// NATS server.
func BenchmarkRoomFanoutAcrossNodes(b *testing.B) {
	for _, batched := range []bool{false, true} {
		b.Run(fmt.Sprintf("batch=%v", batched), func(b *testing.B) { benchFanout(b, batched) })
	}
}

func benchFanout(b *testing.B, batched bool) {
	const occupants = 50
	srv, ns := benchNodes(b)
	var sessions []*countingSession
	var fulls []string
	for i := 0; i < occupants; i++ {
		full := jid.MustParse(fmt.Sprintf("alice@example.com/r%d", i))
		s := &countingSession{fakeSession: fakeSession{r: ns[1].r, id: fmt.Sprintf("bench%d", i)}, want: b.N, done: make(chan struct{})}
		if _, _, err := ns[1].r.Bind(s, full.Bare(), full.Resource()); err != nil {
			b.Fatal(err)
		}
		sessions = append(sessions, s)
		fulls = append(fulls, full.String())
	}
	for _, f := range fulls {
		for ns[0].r.Session(jid.MustParse(f)) == nil {
			time.Sleep(time.Millisecond)
		}
	}
	msg := xml.New("", "message").SetAttr("from", "room@conference.example.com/nick").SetAttr("type", "groupchat").
		Append(xml.New("", "body").AppendText("a message of ordinary length, say forty-five bytes")).ForFanout("jabber:client")
	cpu0, nats0 := selfCPU(), cpuOf(srv.Pid())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx := context.Background()
		var batch *module.Batch
		if batched {
			ctx, batch = module.WithBatch(ctx)
		}
		for _, f := range fulls {
			ns[0].r.Route(ctx, msg.WithAttr("to", f))
		}
		if batch != nil {
			batch.Flush()
		}
	}
	for _, s := range sessions {
		<-s.done
	}
	b.StopTimer()
	cpu := selfCPU() - cpu0 + cpuOf(srv.Pid()) - nats0
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*occupants), "cpu-ns/delivery")
}
