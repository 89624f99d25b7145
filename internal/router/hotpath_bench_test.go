package router_test

import (
	"bytes"
	"context"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"parley/internal/stream"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// The hot path of issue 15: one chat message between two local sessions,
// parsed from the sender's byte stream, stamped with its from, routed
// (RFC 6121 delivery, hooks), and serialised for the recipient.
//
// Both benchmarks report cpu-ns/op besides ns/op: the process's CPU time
// (user + system, GC and every goroutine included) per message. On a shared
// machine wall time per op also counts time the benchmark waited for a CPU;
// run with -cpu 1 so that one core does everything.

var chatMessage = []byte("<message to='bob@example.com/phone' type='chat' id='abc123'><body>Are we still on for lunch today?</body><active xmlns='http://jabber.org/protocol/chatstates'/></message>")

// BenchmarkChatMessage serialises into a reused buffer in the routing
// goroutine, as a session's queue would if it wrote synchronously.
func BenchmarkChatMessage(b *testing.B) {
	var out bytes.Buffer
	benchChat(b, func(el *xml.Element) {
		out.Reset()
		_, _ = el.WriteToNS(&out, stanza.NSClient)
	})
	if out.Len() == 0 {
		b.Fatal("nothing delivered")
	}
}

// BenchmarkChatMessageWire delivers through the real output path: the
// recipient's stream.Writer queue, its drain goroutine, serialisation and
// one Write per drained batch to a connection that discards (and counts)
// what it is given. burst is how many messages the sender routes before
// the writer gets the CPU: burst=1 is the worst case (a drain goroutine and
// a Write per message), larger bursts show the coalescing.
func BenchmarkChatMessageWire(b *testing.B) {
	for _, c := range []struct {
		burst  int
		pooled bool // drains on a stream.DrainPool, as c2s runs them
	}{{1, false}, {16, false}, {1, true}, {16, true}} {
		name := "burst=" + strconv.Itoa(c.burst)
		if c.pooled {
			name += "/pooled"
		}
		burst := c.burst
		b.Run(name, func(b *testing.B) {
			conn := &countConn{}
			w := stream.NewWriter(conn, 1<<10, time.Minute, stanza.NSClient)
			if c.pooled {
				w.Drains = stream.NewDrainPool(stream.DefaultDrainIdle, stream.DefaultDrainLinger)
			}
			n := 0
			benchChat(b, func(el *xml.Element) {
				if !w.Send(el) {
					b.Fatal("queue full")
				}
				if n++; n%burst == 0 {
					runtime.Gosched() // let the drain run, as a real sender's read would
				}
			})
			w.Close(true)
			<-w.Done()
			conn.mu.Lock()
			defer conn.mu.Unlock()
			if conn.bytes < int64(b.N)*int64(len(chatMessage)) {
				b.Fatalf("wrote %d bytes for %d messages", conn.bytes, b.N)
			}
			b.ReportMetric(float64(conn.writes)/float64(b.N), "writes/op")
		})
	}
}

func benchChat(b *testing.B, deliver func(*xml.Element)) {
	e := newEnv(b, 0)
	sender := e.bind(b, "alice@example.com/desk", 0, true)
	recipient := e.bind(b, "bob@example.com/phone", 0, true)
	recipient.sink = deliver
	stream := bytes.NewReader(nil)
	ctx := context.Background()
	to := jid.MustParse("bob@example.com/phone")
	from := sender.jid.String()
	const batch = 1024
	buf := append([]byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>"),
		bytes.Repeat(chatMessage, batch)...)
	b.ReportAllocs()
	b.SetBytes(int64(len(chatMessage)))
	var dec *xml.Decoder
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%batch == 0 {
			b.StopTimer()
			stream.Reset(buf)
			dec = xml.NewDecoder(stream, xml.DefaultLimits())
			if _, err := dec.ReadHeader(); err != nil {
				b.Fatal(err)
			}
			dec.SetContentNamespace(stanza.NSClient)
			b.StartTimer()
		}
		el, err := dec.Next()
		if err != nil {
			b.Fatal(err)
		}
		el.SetAttr("from", from) // as c2s stamps it
		e.r.FromSession(ctx, sender, el, to)
	}
	b.StopTimer()
	if cpu := cpuTime() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

// countConn is a net.Conn that discards writes and counts them.
type countConn struct {
	net.Conn // nil: only the methods below are used
	mu       sync.Mutex
	writes   int64
	bytes    int64
}

func (c *countConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.bytes += int64(len(p))
	c.mu.Unlock()
	return len(p), nil
}
func (c *countConn) SetWriteDeadline(time.Time) error { return nil }
func (c *countConn) Close() error                     { return nil }
