package loadgen

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Scenarios.
const (
	ScenarioLogin    = "login"    // open-loop logins at a fixed rate, each closed after bind
	ScenarioChat     = "chat"     // one-to-one chat between online users, Poisson arrivals
	ScenarioPresence = "presence" // presence updates fanned out to N-contact rosters
	ScenarioMUC      = "muc"      // one room, K occupants, groupchat at a fixed rate
	ScenarioIdle     = "idle"     // N authenticated sessions held idle: memory per session
)

// Options configure one run: one scenario against one server, in steps of
// increasing offered rate.
type Options struct {
	Target Target
	// Addrs spreads the sessions over several c2s addresses (the nodes
	// of a cluster): session i (login arrival i) connects to
	// Addrs[i % len(Addrs)], in every scenario. Empty: Target.Addr.
	Addrs       []string
	UserPattern string // account local part, with one %d for the index ("bench%d")
	PassPattern string // password, with one %d ("benchpass%d"), or a fixed password
	First       int    // first account index
	Users       int    // accounts: online users, room occupants, or the login pool

	Scenario     string
	Rates        []float64     // offered rate per step: messages, presence updates or logins per second
	StepDuration time.Duration // length of each step
	Drain        time.Duration // after a step, wait at most this long for what is still in flight
	MsgSize      int           // body (or status) bytes, stamp included
	Contacts     int           // presence: roster size per user (even, < Users)
	Room         string        // muc: room JID
	Setup        int           // logins in parallel while setting up sessions
	MaxInflight  int           // login: most logins in flight before arrivals are skipped
	Settle       time.Duration // idle: wait before measuring memory
	// StopSaturated ends the run after a step that lost more than 10 %
	// of its deliveries or had a median latency above a second: the
	// server is past its capacity, and higher steps would only measure
	// its backlog. (The median, not p99: on a shared machine a burst of
	// other work can push p99 past a second at any rate.)
	StopSaturated bool

	// MetricsURL is the target's Prometheus endpoint; with it the login
	// scenario reads ServerHist (default parley_login_seconds) before and
	// after each step and reports the server's own login time next to the
	// generator's latency, which also counts the wait in the listen
	// backlog.
	MetricsURL string
	ServerHist string

	// PIDs are the server's processes (a cluster's nodes and its NATS
	// servers, say): their CPU and memory, each with its descendants, are
	// summed. None: not measured.
	PIDs []int
	Log  io.Writer // progress and errors
}

// ParseAddrs reads a comma-separated list of host:port addresses.
func ParseAddrs(s string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		if _, port, err := net.SplitHostPort(f); err != nil || port == "" {
			return nil, fmt.Errorf("bad address %q: want host:port", f)
		}
		out = append(out, f)
	}
	if len(out) == 0 {
		return nil, errors.New("no address")
	}
	return out, nil
}

// TargetFor is the target of session (or login arrival) i: Target with
// the address Addrs[i % len(Addrs)], or Target itself without Addrs.
func (o *Options) TargetFor(i int) Target {
	t := o.Target
	if len(o.Addrs) > 0 {
		t.Addr = o.Addrs[i%len(o.Addrs)]
	}
	return t
}

// StepResult is the outcome of one step.
type StepResult struct {
	Scenario  string
	Step      int
	Offered   float64 // per second
	Seconds   float64 // the step's sending window
	Sent      uint64  // messages, updates or logins started
	Expected  uint64  // deliveries expected (sent × fan-out)
	Delivered uint64  // deliveries seen (successful logins for login)
	Errors    uint64
	Skipped   uint64 // login: arrivals dropped at the in-flight cap
	// FirstError is the step's first failed login, for the report.
	FirstError string
	Hist       *Histogram
	Sessions   int

	TargetCPU float64 // server CPU seconds over the step and its drain
	// TargetCPUEach is TargetCPU by server process, in Options.PIDs
	// order, when there are several (how a cluster's load spreads).
	TargetCPUEach []float64
	TargetRSSKiB  int64   // server RSS at the end of the step
	TargetBefore  int64   // idle: server RSS before the sessions logged in
	SelfCPU       float64 // the generator's own CPU seconds over the same window
	Window        float64 // seconds over which CPU was measured
	// Server is the step's share of the target's login histogram
	// (Options.MetricsURL), nil when not read.
	Server *ServerHist
}

// Saturated reports a step past the server's capacity (see
// Options.StopSaturated).
func (r *StepResult) Saturated() bool {
	return r.Delivered*10 < r.Expected*9 || r.Hist.Quantile(.5) > time.Second
}

// Lost is what was expected and never arrived.
func (r *StepResult) Lost() uint64 {
	if r.Delivered >= r.Expected {
		return 0
	}
	return r.Expected - r.Delivered
}

type stepStats struct {
	sent, expected, delivered, errors, skipped atomic.Uint64
	hist                                       Histogram
}

type runner struct {
	o       *Options
	targets []Target // by address: TargetFor(i) is targets[i % len]
	accts   []*Account
	sess    []*Session
	jids    [][]byte       // bare JIDs by slot
	slot    map[string]int // bare JID -> slot
	start   time.Time
	steps   []*stepStats
	closed  atomic.Int64 // sessions whose stream ended during the run

	subscribed atomic.Int64 // presence setup: subscribed received
	occupants  int
	contacts   int
}

func (r *runner) now() int64 { return int64(time.Since(r.start)) }

// target is session (or login arrival) i's target, without a copy per call.
func (r *runner) target(i int) *Target { return &r.targets[i%len(r.targets)] }

func (r *runner) logf(format string, a ...any) {
	if r.o.Log != nil {
		fmt.Fprintf(r.o.Log, format+"\n", a...)
	}
}

// Accounts builds the account list from the patterns.
func Accounts(userPattern, passPattern string, first, n int) []*Account {
	out := make([]*Account, n)
	for i := range out {
		k := first + i
		out[i] = &Account{Index: i, User: expand(userPattern, k), Password: expand(passPattern, k)}
	}
	return out
}

func expand(pattern string, k int) string {
	if strings.Contains(pattern, "%d") {
		return strings.Replace(pattern, "%d", strconv.Itoa(k), 1)
	}
	return pattern
}

// Run executes the scenario and returns one result per step.
func Run(o *Options) ([]*StepResult, error) {
	if o.Users < 1 {
		return nil, errors.New("need at least one account")
	}
	if o.MsgSize < 32 {
		o.MsgSize = 32
	}
	if o.Setup < 1 {
		o.Setup = 32
	}
	if o.Target.Timeout == 0 {
		o.Target.Timeout = 30 * time.Second
	}
	r := &runner{o: o, accts: Accounts(o.UserPattern, o.PassPattern, o.First, o.Users), start: time.Now()}
	for i := 0; i < max(1, len(o.Addrs)); i++ {
		r.targets = append(r.targets, o.TargetFor(i))
	}
	r.slot = make(map[string]int, o.Users)
	r.jids = make([][]byte, o.Users)
	for i, a := range r.accts {
		r.jids[i] = []byte(a.User + "@" + o.Target.Domain)
		r.slot[string(r.jids[i])] = i
	}
	steps := len(o.Rates)
	if o.Scenario == ScenarioIdle {
		steps = 1
	}
	if steps == 0 {
		return nil, errors.New("no rates given")
	}
	for i := 0; i < steps; i++ {
		r.steps = append(r.steps, &stepStats{})
	}
	switch o.Scenario {
	case ScenarioLogin:
		return r.runLogin()
	case ScenarioChat, ScenarioPresence, ScenarioMUC:
		return r.runMessaging()
	case ScenarioIdle:
		return r.runIdle()
	}
	return nil, fmt.Errorf("unknown scenario %q", o.Scenario)
}

// connectAll logs every account in, Setup at a time; sessions that fail
// stay nil and are counted.
func (r *runner) connectAll(presence bool) (ok int, err error) {
	r.sess = make([]*Session, len(r.accts))
	var next atomic.Int64
	var fails atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for w := 0; w < min(r.o.Setup, len(r.accts)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(r.accts) {
					return
				}
				s, err := Login(r.target(i), r.accts[i])
				if err == nil && presence {
					// As a client does: the roster first (servers deliver
					// subscription requests only to resources that asked
					// for it, RFC 6121 §3.1.3), then initial presence.
					err = s.Write([]byte("<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq><presence/>"))
				}
				if err != nil {
					fails.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				r.sess[i] = s
			}
		}()
	}
	wg.Wait()
	n := len(r.accts) - int(fails.Load())
	if f := fails.Load(); f > 0 {
		r.logf("setup: %d of %d logins failed, first: %v", f, len(r.accts), firstErr.Load())
	}
	if n == 0 {
		return 0, fmt.Errorf("no session could log in: %v", firstErr.Load())
	}
	return n, nil
}

func (r *runner) closeAll() {
	for _, s := range r.sess {
		if s != nil {
			s.Close()
		}
	}
}

// reader runs one session's receive loop for the messaging scenarios.
func (r *runner) reader(idx int, s *Session) {
	var now int64
	var reply []byte
	// Read returns only when the stream ends: by the server, or because
	// closeAll closed it after the run (then nobody looks at the count).
	s.Read(func(el []byte, fresh bool) {
		if fresh {
			now = r.now()
		}
		reply = r.handle(idx, s, el, now, reply[:0])
	})
	r.closed.Add(1)
}

// handle looks at one received element: stamped deliveries are counted
// and timed; IQs from the server are answered; subscription requests are
// accepted (presence setup).
func (r *runner) handle(idx int, s *Session, el []byte, now int64, reply []byte) []byte {
	name := Name(el)
	if len(name) == 0 {
		return reply
	}
	switch string(name) {
	case "message":
		typ := Attr(el, "type")
		if string(typ) == "error" {
			r.countError(ChildText(el, "body"))
			return reply
		}
		r.deliver(ChildText(el, "body"), idx, false, now)
	case "presence":
		typ := Attr(el, "type")
		switch string(typ) {
		case "":
			if r.o.Scenario == ScenarioPresence {
				r.deliver(ChildText(el, "status"), idx, true, now)
			}
		case "subscribe":
			from := Bare(Attr(el, "from"))
			reply = append(reply, "<presence type='subscribed' to='"...)
			reply = append(reply, from...)
			reply = append(reply, "'/>"...)
			if j, ok := r.slot[string(from)]; ok && r.initiatedBy(j, idx) {
				reply = append(reply, "<presence type='subscribe' to='"...)
				reply = append(reply, from...)
				reply = append(reply, "'/>"...)
			}
			s.Write(reply)
		case "subscribed":
			r.subscribed.Add(1)
		case "error":
			r.countError(ChildText(el, "status"))
		}
	case "iq":
		typ := string(Attr(el, "type"))
		if typ == "get" || typ == "set" {
			reply = append(reply, "<iq type='result' id='"...)
			reply = append(reply, Attr(el, "id")...)
			if from := Attr(el, "from"); from != nil {
				reply = append(reply, "' to='"...)
				reply = append(reply, from...)
			}
			reply = append(reply, "'/>"...)
			s.Write(reply)
		}
	}
	return reply
}

func (r *runner) countError(text []byte) {
	if st, ok := ParseStamp(text); ok && st.Step < len(r.steps) {
		r.steps[st.Step].errors.Add(1)
	}
}

// deliver records one stamped delivery.
func (r *runner) deliver(text []byte, idx int, skipSelf bool, now int64) {
	st, ok := ParseStamp(text)
	if !ok || st.Step >= len(r.steps) {
		return
	}
	if skipSelf && st.Sender == idx {
		return // a user's own presence, reflected to its resource
	}
	ss := r.steps[st.Step]
	ss.delivered.Add(1)
	ss.hist.Record(time.Duration(now - st.Due))
}

// initiatedBy: in the presence ring, user a subscribes to the next
// Contacts/2 users; b is one of them.
func (r *runner) initiatedBy(a, b int) bool {
	n := len(r.accts)
	d := (b - a + n) % n
	return d >= 1 && d <= r.contacts/2
}

// pacer drives one step: Poisson arrivals at rate for dur, fire called
// for each with its due time; flush after each batch. Returns arrivals.
func (r *runner) pace(rate float64, dur time.Duration, rng *rand.Rand, fire func(due int64), flush func()) uint64 {
	begin := r.now()
	end := begin + int64(dur)
	next := begin + int64(rng.ExpFloat64()/rate*1e9)
	var n uint64
	for next < end {
		now := r.now()
		for next <= now && next < end {
			fire(next)
			n++
			next += int64(rng.ExpFloat64() / rate * 1e9)
		}
		flush()
		if wait := next - r.now(); wait > 0 {
			// Sleeping costs a timer wake-up; at high rates the next
			// arrival is microseconds away, so batches form by themselves
			// (a due time is kept, so latency still counts from it).
			time.Sleep(time.Duration(max(wait, int64(50*time.Microsecond))))
		}
	}
	return n
}

// batcher collects the bytes due on each session during one pacing batch
// so that each session gets one write per batch.
type batcher struct {
	r     *runner
	pend  [][]byte
	dirty []int
}

func newBatcher(r *runner) *batcher {
	return &batcher{r: r, pend: make([][]byte, len(r.sess))}
}

func (b *batcher) buf(i int) []byte {
	if len(b.pend[i]) == 0 {
		b.dirty = append(b.dirty, i)
	}
	return b.pend[i]
}

func (b *batcher) flush(step *stepStats) {
	for _, i := range b.dirty {
		if err := b.r.sess[i].Write(b.pend[i]); err != nil {
			step.errors.Add(1)
		}
		b.pend[i] = b.pend[i][:0]
	}
	b.dirty = b.dirty[:0]
}

func (r *runner) runMessaging() ([]*StepResult, error) {
	o := r.o
	switch o.Scenario {
	case ScenarioPresence:
		r.contacts = o.Contacts &^ 1
		if r.contacts < 2 || r.contacts >= o.Users {
			return nil, fmt.Errorf("presence: contacts must be even, at least 2 and below the number of users (%d)", o.Users)
		}
	case ScenarioChat:
		if o.Users < 2 {
			return nil, errors.New("chat needs at least two users")
		}
	}
	r.logf("setup: logging in %d sessions", o.Users)
	n, err := r.connectAll(o.Scenario != ScenarioMUC)
	if err != nil {
		return nil, err
	}
	defer r.closeAll()
	if n != o.Users {
		return nil, fmt.Errorf("only %d of %d sessions logged in", n, o.Users)
	}
	if o.Scenario == ScenarioMUC {
		if err := r.joinRoom(); err != nil {
			return nil, err
		}
	}
	for i, s := range r.sess {
		go r.reader(i, s)
	}
	if o.Scenario == ScenarioPresence {
		if err := r.subscribeRing(); err != nil {
			return nil, err
		}
	}
	fanout := uint64(1)
	switch o.Scenario {
	case ScenarioMUC:
		fanout = uint64(o.Users)
	case ScenarioPresence:
		fanout = uint64(r.contacts)
	}
	time.Sleep(500 * time.Millisecond) // let setup traffic settle
	var results []*StepResult
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	b := newBatcher(r)
	for k, rate := range o.Rates {
		ss := r.steps[k]
		s0 := r.sample()
		var fire func(due int64)
		switch o.Scenario {
		case ScenarioChat:
			fire = func(due int64) {
				i := rng.IntN(len(r.sess))
				j := rng.IntN(len(r.sess) - 1)
				if j >= i {
					j++
				}
				p := b.buf(i)
				p = append(p, "<message type='chat' to='"...)
				p = append(p, r.jids[j]...)
				p = append(p, "'><body>"...)
				p = AppendStamp(p, Stamp{Step: k, Due: due, Sender: i}, o.MsgSize)
				b.pend[i] = append(p, "</body></message>"...)
			}
		case ScenarioMUC:
			fire = func(due int64) {
				i := rng.IntN(len(r.sess))
				p := b.buf(i)
				p = append(p, "<message type='groupchat' to='"...)
				p = append(p, o.Room...)
				p = append(p, "'><body>"...)
				p = AppendStamp(p, Stamp{Step: k, Due: due, Sender: i}, o.MsgSize)
				b.pend[i] = append(p, "</body></message>"...)
			}
		case ScenarioPresence:
			fire = func(due int64) {
				i := rng.IntN(len(r.sess))
				p := b.buf(i)
				p = append(p, "<presence><status>"...)
				p = AppendStamp(p, Stamp{Step: k, Due: due, Sender: i}, o.MsgSize)
				b.pend[i] = append(p, "</status></presence>"...)
			}
		}
		sent := r.pace(rate, o.StepDuration, rng, fire, func() { b.flush(ss) })
		ss.sent.Store(sent)
		ss.expected.Store(sent * fanout)
		deadline := time.Now().Add(o.Drain)
		for time.Now().Before(deadline) && ss.delivered.Load() < ss.expected.Load() {
			time.Sleep(20 * time.Millisecond)
		}
		res := r.result(k, rate, ss, s0, r.sample())
		results = append(results, res)
		r.logf("%s", res.Line())
		if c := r.closed.Load(); c > 0 {
			r.logf("%d sessions were closed by the server; stopping", c)
			break
		}
		if o.StopSaturated && res.Saturated() {
			r.logf("saturated; no higher steps")
			break
		}
	}
	return results, nil
}

// sample is what the CPU and memory figures of a step are made of.
type sample struct {
	server Usage   // the server's processes together
	each   []Usage // each of them alone (with its descendants)
	self   Usage   // the generator
	t      time.Time
}

func (r *runner) sample() sample {
	s := sample{self: ProcUsage(os.Getpid()), t: time.Now()}
	s.server, s.each = procUsageEach(r.o.PIDs, len(r.o.PIDs) > 1)
	return s
}

func (r *runner) result(k int, rate float64, ss *stepStats, s0, s1 sample) *StepResult {
	res := &StepResult{
		Scenario: r.o.Scenario, Step: k, Offered: rate, Seconds: r.o.StepDuration.Seconds(),
		Sent: ss.sent.Load(), Expected: ss.expected.Load(), Delivered: ss.delivered.Load(),
		Errors: ss.errors.Load(), Skipped: ss.skipped.Load(), Hist: &ss.hist, Sessions: len(r.accts),
		SelfCPU: s1.self.CPU - s0.self.CPU, Window: s1.t.Sub(s0.t).Seconds(),
	}
	if s0.server.OK && s1.server.OK {
		res.TargetCPU = s1.server.CPU - s0.server.CPU
		res.TargetRSSKiB = s1.server.RSSKiB
		for i := range s0.each {
			res.TargetCPUEach = append(res.TargetCPUEach, s1.each[i].CPU-s0.each[i].CPU)
		}
	}
	return res
}

// joinRoom enters every session into the room: the first creates it and
// accepts the default configuration (an instant room, XEP-0045 §10.1.2),
// then the others join, Setup at a time. Each join waits for the
// occupant's own presence (status 110).
func (r *runner) joinRoom() error {
	o := r.o
	if o.Room == "" {
		return errors.New("muc: no room JID")
	}
	join := func(i int) error {
		s := r.sess[i]
		if err := s.Write([]byte("<presence to='" + o.Room + "/u" + strconv.Itoa(i) + "'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='0'/></x></presence>")); err != nil {
			return err
		}
		el, err := s.WaitFor(o.Target.Timeout, func(el []byte) bool {
			if string(Name(el)) != "presence" {
				return false
			}
			if string(Attr(el, "type")) == "error" {
				return true
			}
			return HasChild(el, "code='110'") || HasChild(el, `code="110"`)
		})
		if err != nil {
			return err
		}
		if string(Attr(el, "type")) == "error" {
			return fmt.Errorf("join refused: %.300s", el)
		}
		if HasChild(el, "code='201'") || HasChild(el, `code="201"`) {
			_, err := s.Query([]byte("<iq type='set' id='cfg1' to='"+o.Room+"'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>"), "cfg1", o.Target.Timeout)
			if err != nil {
				return fmt.Errorf("room configuration: %w", err)
			}
		}
		return nil
	}
	if err := join(0); err != nil {
		return fmt.Errorf("muc: first occupant: %w", err)
	}
	var next atomic.Int64
	next.Store(1)
	var wg sync.WaitGroup
	var firstErr atomic.Value
	for w := 0; w < min(o.Setup, len(r.sess)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(r.sess) {
					return
				}
				if err := join(i); err != nil {
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return fmt.Errorf("muc: join: %w", e.(error))
	}
	r.occupants = len(r.sess)
	return nil
}

// subscribeRing gives every user a roster of Contacts users with mutual
// subscriptions: user i asks the next Contacts/2 users of the ring, each
// of them accepts and asks back, and i accepts (answers in handle). Done
// when every user has seen its Contacts "subscribed" answers.
func (r *runner) subscribeRing() error {
	o := r.o
	want := int64(len(r.sess) * r.contacts)
	r.logf("setup: %d-contact rosters (%d subscriptions)", r.contacts, want)
	for i, s := range r.sess {
		var b []byte
		for d := 1; d <= r.contacts/2; d++ {
			j := (i + d) % len(r.sess)
			b = append(b, "<presence type='subscribe' to='"...)
			b = append(b, r.jids[j]...)
			b = append(b, "'/>"...)
		}
		if err := s.Write(b); err != nil {
			return err
		}
		if i%50 == 49 {
			time.Sleep(10 * time.Millisecond) // spread the setup burst
		}
	}
	deadline := time.Now().Add(o.Target.Timeout * 2)
	for r.subscribed.Load() < want {
		if time.Now().After(deadline) {
			return fmt.Errorf("presence: only %d of %d subscriptions confirmed", r.subscribed.Load(), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // the presence that follows each new subscription
	return nil
}

// runLogin opens connections at the offered rate, open loop: each arrival
// logs in (TLS, SASL, bind) in its own goroutine, timed from its due time
// to the bind result, then closes. Arrivals beyond MaxInflight concurrent
// logins are skipped and counted.
func (r *runner) runLogin() ([]*StepResult, error) {
	o := r.o
	if o.MaxInflight < 1 {
		o.MaxInflight = 4096
	}
	var inflight atomic.Int64
	var results []*StepResult
	var acct int
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11))
	for k, rate := range o.Rates {
		var firstErr atomic.Value
		ss := r.steps[k]
		hist0, histOK := r.serverHist()
		s0 := r.sample()
		var wg sync.WaitGroup
		sent := r.pace(rate, o.StepDuration, rng, func(due int64) {
			if inflight.Load() >= int64(o.MaxInflight) {
				ss.skipped.Add(1)
				return
			}
			a, t := r.accts[acct%len(r.accts)], r.target(acct)
			acct++
			inflight.Add(1)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer inflight.Add(-1)
				s, err := Login(t, a)
				if err != nil {
					ss.errors.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					return
				}
				ss.hist.Record(time.Duration(r.now() - due))
				ss.delivered.Add(1)
				s.CloseGracefully(2 * time.Second)
			}()
		}, func() {})
		ss.sent.Store(sent)
		ss.expected.Store(sent - ss.skipped.Load())
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(o.Drain + o.Target.Timeout):
		}
		res := r.result(k, rate, ss, s0, r.sample())
		res.Sessions = 0
		if hist1, ok := r.serverHist(); ok && histOK {
			d := hist1.Sub(hist0)
			res.Server = &d
		}
		if e, ok := firstErr.Load().(string); ok {
			res.FirstError = e
		}
		results = append(results, res)
		r.logf("%s", res.Line())
		if o.StopSaturated && res.Saturated() {
			r.logf("saturated; no higher steps")
			break
		}
	}
	return results, nil
}

// serverHist reads the target's login histogram, if a metrics URL was
// given; a failed read is logged and the step reported without it.
func (r *runner) serverHist() (ServerHist, bool) {
	if r.o.MetricsURL == "" {
		return ServerHist{}, false
	}
	name := r.o.ServerHist
	if name == "" {
		name = "parley_login_seconds"
	}
	h, err := ScrapeHist(r.o.MetricsURL, name, 5*time.Second)
	if err != nil {
		r.logf("metrics: %v", err)
		return ServerHist{}, false
	}
	return h, true
}

// runIdle logs Users sessions in (with initial presence), waits Settle,
// and reports the server's memory per session; they then stay idle for
// StepDuration, and the result counts those still connected.
func (r *runner) runIdle() ([]*StepResult, error) {
	o := r.o
	ss := r.steps[0]
	s0 := r.sample()
	r.logf("setup: logging in %d idle sessions", o.Users)
	n, err := r.connectAll(true)
	ss.sent.Store(uint64(o.Users))
	ss.expected.Store(uint64(o.Users))
	ss.errors.Store(uint64(o.Users - n))
	if err != nil {
		return nil, err
	}
	defer r.closeAll()
	for i, s := range r.sess {
		if s != nil {
			go r.reader(i, s)
		}
	}
	time.Sleep(o.Settle)
	mem := ProcUsage(o.PIDs...)
	time.Sleep(o.StepDuration)
	ss.delivered.Store(uint64(int64(n) - r.closed.Load()))
	res := r.result(0, 0, ss, s0, r.sample())
	res.Sessions = n
	if mem.OK {
		res.TargetRSSKiB = mem.RSSKiB
		res.TargetBefore = s0.server.RSSKiB
	}
	r.logf("%s", res.Line())
	return []*StepResult{res}, nil
}
