package fedaccess

import (
	"context"
	"path/filepath"
	"testing"

	"parley/internal/access"
	"parley/internal/config"
	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/storage/sqlite"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// routes records what the module routes; example.test and its chat
// service are local, everything else remote.
type routes struct{ got []*xml.Element }

func (r *routes) Route(_ context.Context, el *xml.Element)               { r.got = append(r.got, el) }
func (r *routes) Sessions(jid.JID) []module.Session                      { return nil }
func (r *routes) Session(jid.JID) module.Session                         { return nil }
func (r *routes) MessageTargets(jid.JID, string) []module.Session        { return nil }
func (r *routes) Hosts() []*module.Host                                  { return nil }
func (r *routes) IsLocal(d string) bool                                  { return d == "example.test" || d == "conference.example.test" }
func (r *routes) AddComponent(string, module.Component) module.Component { return nil }
func (r *routes) RemoveComponent(string, module.Component)               {}

func setup(t *testing.T) (*Module, *routes) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "p.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	g := access.KVGroups{Store: st}
	for _, u := range []string{"alice", "bob"} {
		if err := st.Accounts().Create(ctx, storage.Account{Host: "example.test", Username: u}); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Add(ctx, "example.test", "alice", "staff"); err != nil {
		t.Fatal(err)
	}
	hc := &config.Host{Domain: "example.test"}
	hc.Access.Federation = config.AccessRule{Groups: []string{"staff"}}
	h := module.NewHost("example.test")
	r := &routes{}
	h.HostCfg, h.Store, h.Router = hc, st, r
	h.Access = access.NewControl(hc, g, nil)
	m, _ := New(h)
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Stop(ctx) })
	return m.(*Module), r
}

func event(t *testing.T, m *Module, raw string) *module.StanzaEvent {
	t.Helper()
	el, err := xml.ParseElement([]byte(raw), xml.DefaultLimits(), stanza.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	from, _ := jid.Parse(el.Attr("from"))
	to, _ := jid.Parse(el.Attr("to"))
	return &module.StanzaEvent{Ctx: context.Background(), Host: m.h, Stanza: el, From: from, To: to}
}

func TestEgress(t *testing.T) {
	m, r := setup(t)
	for _, tc := range []struct {
		raw     string
		refused bool
		reply   stanza.Condition
	}{
		{`<message from='bob@example.test/r' to='eve@remote.test' id='1' type='chat'><body>x</body></message>`, true, stanza.Forbidden},
		{`<iq from='bob@example.test/r' to='remote.test' id='2' type='get'><ping xmlns='urn:xmpp:ping'/></iq>`, true, stanza.Forbidden},
		{`<presence from='bob@example.test' to='eve@remote.test' type='subscribe'/>`, true, stanza.Forbidden},
		{`<presence from='bob@example.test/r' to='eve@remote.test'/>`, true, ""},
		{`<message from='bob@example.test/r' to='eve@remote.test' type='error' id='3'/>`, true, ""},
		{`<message from='bob@example.test/r' to='alice@example.test' id='4'><body>x</body></message>`, false, ""},
		{`<presence from='bob@example.test/r' to='room@conference.example.test/bob'/>`, false, ""},
		{`<message from='alice@example.test/r' to='eve@remote.test' id='5'><body>x</body></message>`, false, ""},
	} {
		r.got = nil
		if got := m.egress(event(t, m, tc.raw)); got != tc.refused {
			t.Errorf("%s: refused = %v", tc.raw, got)
		}
		switch {
		case tc.reply == "" && len(r.got) > 0:
			t.Errorf("%s: unexpected reply %s", tc.raw, r.got[0])
		case tc.reply != "":
			if len(r.got) != 1 {
				t.Fatalf("%s: %d replies", tc.raw, len(r.got))
			}
			cond, _, text, _ := stanza.ParseError(r.got[0])
			if cond != tc.reply || text == "" || r.got[0].Attr("to") != event(t, m, tc.raw).From.String() {
				t.Errorf("%s: reply %s", tc.raw, r.got[0])
			}
		}
	}
}

func TestInbound(t *testing.T) {
	m, r := setup(t)
	for _, tc := range []struct {
		raw     string
		refused bool
		reply   bool
	}{
		{`<message from='eve@remote.test/r' to='bob@example.test' id='1'><body>x</body></message>`, true, true},
		{`<iq from='eve@remote.test/r' to='bob@example.test/r' id='2' type='get'><ping xmlns='urn:xmpp:ping'/></iq>`, true, true},
		{`<presence from='eve@remote.test/r' to='bob@example.test'/>`, true, false},
		{`<message from='eve@remote.test/r' to='bob@example.test' type='error' id='3'/>`, false, false},
		{`<message from='eve@remote.test/r' to='alice@example.test' id='4'><body>x</body></message>`, false, false},
		{`<message from='carol@example.test/r' to='bob@example.test' id='5'><body>x</body></message>`, false, false},
	} {
		r.got = nil
		if got := m.inbound(event(t, m, tc.raw)); got != tc.refused {
			t.Errorf("%s: refused = %v", tc.raw, got)
		}
		if tc.reply != (len(r.got) == 1) {
			t.Fatalf("%s: replies %v", tc.raw, r.got)
		}
		if tc.reply {
			if cond, _, _, _ := stanza.ParseError(r.got[0]); cond != stanza.ServiceUnavailable {
				t.Errorf("%s: reply %s", tc.raw, r.got[0])
			}
		}
	}
}
