package csi

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// fakeSession records what is delivered to it; Send runs the hold logic as
// the Outbound hook would.
type fakeSession struct {
	module.Session // methods the tests do not use panic
	jid            jid.JID
	st             *state
	lim            limits

	mu        sync.Mutex
	delivered []*xml.Element
	// onDeliver, when set, runs after each delivery, in the delivering
	// goroutine (what a real session may do from Deliver: end itself).
	onDeliver func(*xml.Element)
}

func newFake(t *testing.T, lim limits) *fakeSession {
	j, err := jid.Parse("alice@localhost/phone")
	if err != nil {
		t.Fatal(err)
	}
	return &fakeSession{jid: j, st: &state{}, lim: lim}
}

func (f *fakeSession) JID() jid.JID { return f.jid }

func (f *fakeSession) Deliver(el *xml.Element) {
	f.mu.Lock()
	f.delivered = append(f.delivered, el)
	f.mu.Unlock()
	if f.onDeliver != nil {
		f.onDeliver(el)
	}
}

func (f *fakeSession) Send(el *xml.Element) {
	if !f.st.offer(f, el, f.lim, time.Unix(1700000000, 0)) {
		f.Deliver(el)
	}
}

// take returns and forgets what was delivered, as "local:from:id" strings.
func (f *fakeSession) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, el := range f.delivered {
		out = append(out, el.Local+":"+el.Attr("from")+":"+el.Attr("id"))
	}
	f.delivered = nil
	return out
}

func presence(from, id string) *xml.Element {
	return xml.New("", "presence").SetAttr("from", from).SetAttr("id", id)
}

func chatState(from, id, state string) *xml.Element {
	return xml.New("", "message").SetAttr("type", "chat").SetAttr("from", from).SetAttr("id", id).
		Append(xml.New(nsChatStates, state))
}

func chat(from, id string) *xml.Element {
	return xml.New("", "message").SetAttr("type", "chat").SetAttr("from", from).SetAttr("id", id).
		Append(xml.New("", "body").AppendText("hi"))
}

func same(t *testing.T, got []string, want ...string) {
	t.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("delivered\n  %v\nwant\n  %v", got, want)
	}
}

// TestHoldAndFlush: held stanzas come out in arrival order before the
// urgent stanza, the latest presence per resource and chat state per
// conversation only; an urgent message's own chat state supersedes a held
// one; presence gets a delay stamp.
func TestHoldAndFlush(t *testing.T) {
	f := newFake(t, limits{stanzas: 100, bytes: 1 << 20})
	f.Send(presence("bob@localhost/r", "p0")) // active: straight through
	same(t, f.take(), "presence:bob@localhost/r:p0")

	f.st.setInactive()
	f.Send(presence("bob@localhost/r", "p1"))
	f.Send(presence("carol@localhost/r", "p2"))
	f.Send(chatState("dave@localhost/r", "c1", "composing"))
	f.Send(presence("bob@localhost/r", "p3"))
	f.Send(chatState("dave@localhost/r", "c2", "paused"))
	f.Send(chatState("erin@localhost/r", "c3", "composing"))
	same(t, f.take())
	if f.st.live != 4 {
		t.Fatalf("live %d, want 4", f.st.live)
	}

	m := chat("erin@localhost/r", "m1").Append(xml.New(nsChatStates, "active"))
	f.Send(m)
	f.mu.Lock()
	stamped := f.delivered[0].Child(stanza.NSDelay, "delay")
	f.mu.Unlock()
	if stamped == nil || stamped.Attr("stamp") != "2023-11-14T22:13:20.000Z" || stamped.Attr("from") != "localhost" {
		t.Fatalf("held presence delivered without the delay stamp: %v", stamped)
	}
	same(t, f.take(),
		"presence:carol@localhost/r:p2", "presence:bob@localhost/r:p3",
		"message:dave@localhost/r:c2", "message:erin@localhost/r:m1")

	// Still inactive: holding again, and an IQ flushes too.
	f.Send(presence("bob@localhost/r", "p4"))
	f.Send(xml.New("", "iq").SetAttr("type", "get").SetAttr("from", "localhost").SetAttr("id", "q1"))
	same(t, f.take(), "presence:bob@localhost/r:p4", "iq:localhost:q1")

	// <active/> flushes and ends holding.
	f.Send(presence("bob@localhost/r", "p5"))
	f.st.setActive(f)
	same(t, f.take(), "presence:bob@localhost/r:p5")
	f.Send(presence("bob@localhost/r", "p6"))
	same(t, f.take(), "presence:bob@localhost/r:p6")
	if f.st.held != nil || f.st.index != nil {
		t.Fatal("an active session keeps its buffer")
	}
}

// TestBounds: reaching csi_queue or the byte bound delivers everything
// held together with the new stanza; superseding at the bound does not.
func TestBounds(t *testing.T) {
	f := newFake(t, limits{stanzas: 3, bytes: 1 << 20})
	f.st.setInactive()
	for i := range 3 {
		f.Send(presence(fmt.Sprintf("c%d@localhost/r", i), "p"))
	}
	f.Send(presence("c0@localhost/r", "again")) // supersedes: still 3
	same(t, f.take())
	f.Send(presence("c9@localhost/r", "p"))
	same(t, f.take(), "presence:c1@localhost/r:p", "presence:c2@localhost/r:p",
		"presence:c0@localhost/r:again", "presence:c9@localhost/r:p")

	big := presence("big@localhost/r", "big").Append(xml.New("", "status").AppendText(strings.Repeat("x", 600)))
	f = newFake(t, limits{stanzas: 100, bytes: 1000})
	f.st.setInactive()
	f.Send(big)
	same(t, f.take())
	f.Send(presence("big@localhost/r", "small")) // replaces: fits
	f.Send(big.WithAttr("from", "other@localhost/r"))
	same(t, f.take())
	f.Send(big.WithAttr("from", "third@localhost/r"))
	same(t, f.take(), "presence:big@localhost/r:small", "presence:other@localhost/r:big", "presence:third@localhost/r:big")
}

// TestCompaction: a presence that flaps all day keeps the buffer small.
func TestCompaction(t *testing.T) {
	f := newFake(t, limits{stanzas: 10, bytes: 1 << 20})
	f.st.setInactive()
	f.Send(presence("carol@localhost/r", "first"))
	for i := range 1000 {
		f.Send(presence("bob@localhost/r", strconv.Itoa(i)))
	}
	if len(f.st.held) > 20 || f.st.live != 2 {
		t.Fatalf("held %d entries, %d live", len(f.st.held), f.st.live)
	}
	f.st.setActive(f)
	same(t, f.take(), "presence:carol@localhost/r:first", "presence:bob@localhost/r:999")
}

// TestEnded: a session that ended holds nothing and keeps nothing.
func TestEnded(t *testing.T) {
	f := newFake(t, limits{stanzas: 10, bytes: 1 << 20})
	f.st.setInactive()
	f.Send(presence("bob@localhost/r", "p1"))
	f.st.end()
	if f.st.held != nil || f.st.live != 0 {
		t.Fatal("state kept after end")
	}
	f.Send(presence("bob@localhost/r", "p2"))
	f.st.setInactive()
	f.Send(presence("bob@localhost/r", "p3"))
	same(t, f.take(), "presence:bob@localhost/r:p2", "presence:bob@localhost/r:p3")
}

// TestReentrantDeliver: Session.Deliver may end the session (a full
// stream management queue closes it, and "unbound" runs in the same
// goroutine) or cause another stanza to be offered to the same session;
// neither deadlocks, and a stanza offered from inside a delivery comes
// after the batch being delivered.
func TestReentrantDeliver(t *testing.T) {
	f := newFake(t, limits{stanzas: 10, bytes: 1 << 20})
	f.st.setInactive()
	f.Send(presence("bob@localhost/r", "p1"))
	f.onDeliver = func(el *xml.Element) {
		if el.Attr("id") == "p1" {
			f.Send(chat("bob@localhost/r", "nested")) // urgent, offered mid-delivery
		}
		if el.Attr("id") == "nested" {
			f.st.end()
		}
	}
	f.Send(chat("carol@localhost/r", "m1"))
	same(t, f.take(), "presence:bob@localhost/r:p1", "message:carol@localhost/r:m1", "message:bob@localhost/r:nested")
	if n := f.st.live; n != 0 || !f.st.ended {
		t.Fatalf("after end: %d held, ended %v", n, f.st.ended)
	}
	f.Send(presence("bob@localhost/r", "p2")) // ended: straight through
	same(t, f.take(), "presence:bob@localhost/r:p2")
}

// TestConcurrentSenders: many goroutines send to one session while its
// state flips between active and inactive. Each sender's stanzas arrive in
// its order, every urgent one exactly once, and the last presence of each
// sender arrives before its last (urgent) message. Run with -race.
func TestConcurrentSenders(t *testing.T) {
	const senders, per = 8, 400
	f := newFake(t, limits{stanzas: 16, bytes: 1 << 20})
	f.st.setInactive()
	stop := make(chan struct{})
	var flips sync.WaitGroup
	flips.Add(1)
	go func() {
		defer flips.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			f.st.setActive(f)
			f.st.setInactive()
		}
	}()
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := fmt.Sprintf("c%d@localhost/r", g)
			for i := range per {
				id := strconv.Itoa(i)
				switch {
				case i%10 == 9:
					f.Send(chat(from, id))
				case i%10 == 4:
					f.Send(chatState(from, id, "composing"))
				default:
					f.Send(presence(from, id))
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	flips.Wait()
	f.st.setActive(f)

	last := map[string]int{}
	urgent := map[string]int{}
	var order []string
	for _, el := range f.delivered {
		from := el.Attr("from")
		i, _ := strconv.Atoi(el.Attr("id"))
		if prev, ok := last[from]; ok && i <= prev {
			t.Fatalf("%s: %s after %d", from, el.Attr("id"), prev)
		}
		last[from] = i
		if el.Child("", "body") != nil {
			urgent[from]++
		}
		if i >= per-2 {
			order = append(order, from+":"+el.Attr("id"))
		}
	}
	for g := range senders {
		from := fmt.Sprintf("c%d@localhost/r", g)
		if urgent[from] != per/10 {
			t.Errorf("%s: %d messages delivered, want %d", from, urgent[from], per/10)
		}
		if last[from] != per-1 {
			t.Errorf("%s: last delivered %d", from, last[from])
		}
	}
	// The last presence (per-2) of every sender was delivered.
	n := 0
	for _, o := range order {
		if strings.HasSuffix(o, ":"+strconv.Itoa(per-2)) {
			n++
		}
	}
	if n != senders {
		t.Fatalf("last presences delivered: %d of %d (%v)", n, senders, order)
	}
}
