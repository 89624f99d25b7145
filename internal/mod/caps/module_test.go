package caps

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// router records what the module routes.
type router struct {
	module.Router
	mu  sync.Mutex
	out []*xml.Element
}

func (r *router) Route(_ context.Context, el *xml.Element) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.out = append(r.out, el)
}

func (r *router) take() []*xml.Element {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.out
	r.out = nil
	return out
}

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func setup(t *testing.T) (*Caps, *router, *logBuffer) {
	t.Helper()
	h := module.NewHost("example.org")
	r := &router{}
	h.Router = r
	logs := &logBuffer{}
	h.Log = slog.New(slog.NewTextHandler(logs, nil))
	m, err := New(h)
	if err != nil {
		t.Fatal(err)
	}
	c := m.(*Caps)
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	return c, r, logs
}

func ver(features ...string) string {
	s := "client/pc//x<" + strings.Join(features, "<") + "<"
	sum := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

func presence(hash, v string) *xml.Element {
	return xml.New("", "presence").Append(xml.New(NS, "c").SetAttr("hash", hash).SetAttr("node", "n").SetAttr("ver", v))
}

// answer builds the disco#info result of entity to query q.
func answer(q *xml.Element, from string, features ...string) *module.StanzaEvent {
	res := xml.New(nsDiscoInfo, "query").Append(xml.New(nsDiscoInfo, "identity").
		SetAttr("category", "client").SetAttr("type", "pc").SetAttr("name", "x"))
	for _, f := range features {
		res.Append(xml.New(nsDiscoInfo, "feature").SetAttr("var", f))
	}
	iq := xml.New("", "iq").SetAttr("type", "result").SetAttr("id", q.Attr("id")).SetAttr("from", from).Append(res)
	return &module.StanzaEvent{Ctx: context.Background(), Stanza: iq, From: jid.MustParse(from)}
}

// TestVerifyShareAndLie: one query per verification string, whose verified
// answer serves every entity advertising it; an answer that does not match
// is ignored and logged, and the next entity is asked.
func TestVerifyShareAndLie(t *testing.T) {
	c, r, logs := setup(t)
	var changes []*Change
	c.Changes.On(EventChanged, 0, func(ch *Change) bool { changes = append(changes, ch); return false })
	ctx := context.Background()
	a, b, d := jid.MustParse("a@x.net/1"), jid.MustParse("b@x.net/1"), jid.MustParse("d@x.net/1")
	v := ver("urn:f")
	c.observe(ctx, a, presence("sha-1", v), jid.MustParse("u@example.org"))
	c.observe(ctx, b, presence("sha-1", v), jid.MustParse("u@example.org"))
	qs := r.take()
	if len(qs) != 1 || qs[0].Attr("to") != a.String() || qs[0].Attr("from") != "u@example.org" {
		t.Fatalf("queries %v, want one to %s", qs, a)
	}
	// a lies: its answer has a feature the string does not cover.
	if !c.result(answer(qs[0], a.String(), "urn:f", "urn:g+notify")) {
		t.Fatal("answer not consumed")
	}
	if c.Info(a) != nil || c.Info(b) != nil {
		t.Fatal("a lying answer was used")
	}
	if !strings.Contains(logs.String(), "fail verification") || !strings.Contains(logs.String(), a.String()) {
		t.Fatalf("lie not logged: %s", logs)
	}
	qs = r.take()
	if len(qs) != 1 || qs[0].Attr("to") != b.String() {
		t.Fatalf("after the lie, queries %v, want one to %s", qs, b)
	}
	// An answer from someone other than the one asked is not taken.
	if c.result(answer(qs[0], d.String(), "urn:f")) {
		t.Fatal("answer from the wrong entity consumed")
	}
	c.result(answer(qs[0], b.String(), "urn:f"))
	// The string is verified now, so it means the same for everyone who
	// advertises it, the liar included: what it claimed beyond it
	// (urn:g+notify) is not believed.
	if !c.Supports(b, "urn:f") || !c.Supports(a, "urn:f") || c.Supports(a, "urn:g+notify") {
		t.Fatalf("b %v, a %v: want both exactly the verified features", c.Info(b), c.Info(a))
	}
	// A third entity with the same string is known at once, no query.
	c.observe(ctx, d, presence("sha-1", v), jid.MustParse("u@example.org"))
	if !c.Supports(d, "urn:f") || len(r.take()) != 0 {
		t.Fatal("verified string not shared")
	}
	if len(changes) != 3 || changes[2].Entity != d {
		t.Fatalf("changes %v, want a and b (verified), then d", changes)
	}
	c.forget(d)
	if c.Info(d) != nil {
		t.Fatal("forgotten entity still known")
	}
}

// TestUnverifiableHash: a hash the server cannot compute is not verified
// and its answer serves only the entity asked (§5.4 point 2).
func TestUnverifiableHash(t *testing.T) {
	c, r, _ := setup(t)
	ctx := context.Background()
	a, b := jid.MustParse("a@x.net/1"), jid.MustParse("b@x.net/1")
	c.observe(ctx, a, presence("md5", "whatever"), jid.MustParse("u@example.org"))
	c.observe(ctx, b, presence("md5", "whatever"), jid.MustParse("u@example.org"))
	qs := r.take()
	if len(qs) != 2 {
		t.Fatalf("%d queries, want one per entity", len(qs))
	}
	c.result(answer(qs[0], a.String(), "urn:f"))
	if !c.Supports(a, "urn:f") || c.Info(b) != nil {
		t.Fatal("an unverified answer was shared")
	}
	// Legacy caps (no hash) count as nothing, and ask nothing.
	e := jid.MustParse("e@x.net/1")
	c.observe(ctx, e, xml.New("", "presence").Append(xml.New(NS, "c").SetAttr("node", "n").SetAttr("ver", "1.0")), jid.MustParse("u@example.org"))
	if c.Info(e) != nil || len(r.take()) != 0 {
		t.Fatal("legacy caps used")
	}
}

// TestPendingBound: no more than MaxPending queries are in flight.
func TestPendingBound(t *testing.T) {
	c, r, _ := setup(t)
	ctx := context.Background()
	for i := range MaxPending + 10 {
		c.observe(ctx, jid.MustParse("a@x.net/"+string(rune('a'+i%26))+strings.Repeat("x", i/26)), presence("sha-1", ver("urn:"+strings.Repeat("f", i+1))), jid.MustParse("u@example.org"))
	}
	if n := len(r.take()); n != MaxPending {
		t.Fatalf("%d queries sent, want %d", n, MaxPending)
	}
}
