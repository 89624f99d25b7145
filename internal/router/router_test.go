package router_test

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"parley/internal/metrics"
	"parley/internal/module"
	"parley/internal/router"
	"parley/internal/storage"
	"parley/internal/storage/sqlite"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// fakeSession records what the router delivers to it.
type fakeSession struct {
	jid      jid.JID
	mu       sync.Mutex
	got      []*xml.Element
	presence *xml.Element
	priority int
	values   map[any]any
	sink     func(*xml.Element)
}

func (s *fakeSession) JID() jid.JID { return s.jid }
func (s *fakeSession) ID() string   { return "id-" + s.jid.String() }
func (s *fakeSession) Send(el *xml.Element) {
	if s.sink != nil {
		s.sink(el)
		return
	}
	s.mu.Lock()
	s.got = append(s.got, el)
	s.mu.Unlock()
}
func (s *fakeSession) Close(stanza.StreamCondition, string) {}
func (s *fakeSession) Presence() *xml.Element               { return s.presence }
func (s *fakeSession) SetPresence(p *xml.Element)           { s.presence = p }
func (s *fakeSession) Priority() int                        { return s.priority }
func (s *fakeSession) Interested() bool                     { return false }
func (s *fakeSession) SetInterested(bool)                   {}
func (s *fakeSession) Deliver(el *xml.Element)              { s.Send(el) }
func (s *fakeSession) Value(k any) any                      { return s.values[k] }
func (s *fakeSession) SetValue(k, v any) {
	if s.values == nil {
		s.values = map[any]any{}
	}
	s.values[k] = v
}
func (s *fakeSession) received() []*xml.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*xml.Element(nil), s.got...)
}

type env struct {
	r    *router.Router
	host *module.Host
}

func newEnv(t testing.TB, maxSessions int) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	for _, u := range []string{"alice", "bob"} {
		if err := st.Accounts().Create(context.Background(), storage.Account{Host: "example.com", Username: u}); err != nil {
			t.Fatal(err)
		}
	}
	r := router.New(slog.New(slog.NewTextHandler(io.Discard, nil)), metrics.New(), maxSessions)
	h := module.NewHost("example.com")
	h.Store = st
	r.AddHost(h)
	return &env{r: r, host: h}
}

func (e *env) bind(t testing.TB, full string, prio int, available bool) *fakeSession {
	t.Helper()
	j := jid.MustParse(full)
	s := &fakeSession{priority: prio}
	got, _, err := e.r.Bind(s, j.Bare(), j.Resource())
	if err != nil {
		t.Fatal(err)
	}
	s.jid = got
	if available {
		s.presence = xml.New("", "presence")
	}
	return s
}

func msg(from, to, typ string) *xml.Element {
	m := xml.New("", "message").SetAttr("from", from).SetAttr("to", to).SetAttr("id", "m1")
	if typ != "" {
		m.SetAttr("type", typ)
	}
	return m.Append(xml.New("", "body").AppendText("hi"))
}

// RFC 6121 §8.5.2.1.1: bare-JID chat goes to the highest non-negative
// priority resources; negative priority never gets bare-JID messages;
// headline goes to every non-negative resource.
func TestBareJIDMessageDeliveryByPriority(t *testing.T) {
	e := newEnv(t, 0)
	hi := e.bind(t, "bob@example.com/hi", 5, true)
	lo := e.bind(t, "bob@example.com/lo", 1, true)
	neg := e.bind(t, "bob@example.com/neg", -1, true)
	ctx := context.Background()
	e.r.Route(ctx, msg("alice@example.com/x", "bob@example.com", "chat"))
	if len(hi.received()) != 1 || len(lo.received()) != 0 || len(neg.received()) != 0 {
		t.Fatalf("chat: hi=%d lo=%d neg=%d", len(hi.received()), len(lo.received()), len(neg.received()))
	}
	e.r.Route(ctx, msg("alice@example.com/x", "bob@example.com", "headline"))
	if len(hi.received()) != 2 || len(lo.received()) != 1 || len(neg.received()) != 0 {
		t.Fatalf("headline: hi=%d lo=%d neg=%d", len(hi.received()), len(lo.received()), len(neg.received()))
	}
	// A full-JID message reaches even the negative-priority resource.
	e.r.Route(ctx, msg("alice@example.com/x", "bob@example.com/neg", "chat"))
	if len(neg.received()) != 1 {
		t.Fatal("full JID message not delivered to negative-priority resource")
	}
}

func TestErrorsBounceToTheSender(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.bind(t, "alice@example.com/x", 0, true)
	ctx := context.Background()
	cases := []struct {
		name string
		el   *xml.Element
		cond string
	}{
		{"no such account", msg("alice@example.com/x", "nobody@example.com", "chat"), "service-unavailable"},
		{"groupchat to bare", msg("alice@example.com/x", "bob@example.com", "groupchat"), "service-unavailable"},
		{"remote domain", msg("alice@example.com/x", "someone@remote.test", "chat"), "remote-server-not-found"},
		{"iq to offline full JID", xml.New("", "iq").SetAttr("from", "alice@example.com/x").SetAttr("to", "bob@example.com/gone").SetAttr("type", "get").SetAttr("id", "m1").Append(xml.New("urn:x", "q")), "service-unavailable"},
		{"unknown namespace to host", xml.New("", "iq").SetAttr("from", "alice@example.com/x").SetAttr("to", "example.com").SetAttr("type", "get").SetAttr("id", "m1").Append(xml.New("urn:x", "q")), "service-unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(alice.received())
			e.r.Route(ctx, tc.el)
			got := alice.received()
			if len(got) != before+1 {
				t.Fatalf("got %d replies", len(got)-before)
			}
			el := got[len(got)-1]
			if el.Attr("type") != "error" || el.Child("", "error").Child(stanza.NSStanzas, tc.cond) == nil {
				t.Fatalf("want %s, got %s", tc.cond, el)
			}
		})
	}
	// Errors are never answered with errors.
	before := len(alice.received())
	e.r.Route(ctx, msg("alice@example.com/x", "nobody@example.com", "error"))
	if len(alice.received()) != before {
		t.Fatal("an error stanza was bounced")
	}
}

func TestBindReplacesAndLimits(t *testing.T) {
	e := newEnv(t, 2)
	a := e.bind(t, "alice@example.com/one", 0, true)
	b := &fakeSession{}
	_, replaced, err := e.r.Bind(b, jid.MustParse("alice@example.com"), "one")
	if err != nil || replaced != module.Session(a) {
		t.Fatalf("replace: %v %v", replaced, err)
	}
	c := &fakeSession{}
	if _, _, err := e.r.Bind(c, jid.MustParse("alice@example.com"), ""); err != nil {
		t.Fatal(err)
	}
	d := &fakeSession{}
	if _, _, err := e.r.Bind(d, jid.MustParse("alice@example.com"), "three"); err != router.ErrResourceConstraint {
		t.Fatalf("want ErrResourceConstraint, got %v", err)
	}
}

// egress/<kind> fires on the sender's host for every stanza from a local
// account, whether a client sent it (Origin set) or a module routed it for
// the account (Origin nil); a handler can stop it or replace what is
// routed. Stanzas from the host itself carry no account and skip it.
func TestEgressEvent(t *testing.T) {
	e := newEnv(t, 0)
	alice := e.bind(t, "alice@example.com/x", 0, true)
	bob := e.bind(t, "bob@example.com/y", 0, true)
	var seen []string
	e.host.Stanzas.On(module.EventEgressMessage, 0, func(ev *module.StanzaEvent) bool {
		seen = append(seen, ev.From.String()+">"+ev.To.String()+" origin="+strconv.FormatBool(ev.Origin != nil))
		switch ev.Stanza.Attr("id") {
		case "stop":
			return true
		case "swap":
			ev.Stanza = ev.Stanza.WithAttr("id", "swapped")
		}
		return false
	})
	ctx := context.Background()
	send := func(id string) {
		m := msg("alice@example.com/x", "bob@example.com/y", "chat").WithAttr("id", id)
		e.r.FromSession(ctx, alice, m, jid.MustParse("bob@example.com/y"))
	}
	send("stop")
	send("swap")
	e.r.Route(ctx, msg("bob@example.com/y", "alice@example.com/x", "chat"))
	e.r.Route(ctx, msg("example.com", "alice@example.com/x", "chat"))
	want := []string{
		"alice@example.com/x>bob@example.com/y origin=true",
		"alice@example.com/x>bob@example.com/y origin=true",
		"bob@example.com/y>alice@example.com/x origin=false",
	}
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("egress events:\n%s\nwant\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
	got := bob.received()
	if len(got) != 1 || got[0].Attr("id") != "swapped" {
		t.Fatalf("bob received %v, want only the swapped stanza", got)
	}
	if n := len(alice.received()); n != 2 {
		t.Fatalf("alice received %d stanzas, want 2", n)
	}
}

func TestHookPriorityAndStop(t *testing.T) {
	var h module.Hook[int]
	var order []string
	h.On("e", 1, func(int) bool { order = append(order, "low"); return false })
	off := h.On("e", 10, func(int) bool { order = append(order, "high"); return false })
	h.On("e", 5, func(v int) bool { order = append(order, "mid"); return v == 1 })
	if !h.Fire("e", 1) || strings.Join(order, ",") != "high,mid" {
		t.Fatalf("order %v", order)
	}
	order = nil
	off()
	if h.Fire("e", 0) || strings.Join(order, ",") != "mid,low" {
		t.Fatalf("after off: %v", order)
	}
}
