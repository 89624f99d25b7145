package module

import (
	"context"
	"errors"
	"slices"
	"testing"

	"parley/internal/config"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

func TestIsAdmin(t *testing.T) {
	h := NewHost("example.com")
	h.HostCfg = &config.Host{Domain: "example.com", Admins: []string{"boss@example.com"}}
	calls := 0
	h.AdminCheck = func(_ context.Context, bare jid.JID) (bool, error) {
		calls++
		switch bare.Local() {
		case "ops":
			return true, nil
		case "broken":
			return true, errors.New("directory down")
		}
		return false, nil
	}
	ctx := context.Background()
	cases := []struct {
		jid  string
		want bool
	}{
		{"boss@example.com/phone", true}, // static list, any resource
		{"ops@example.com", true},        // through the check (admin_groups)
		{"alice@example.com", false},     // neither
		{"broken@example.com", false},    // errors fail closed
		{"ops@elsewhere.example", false}, // another host's user
		{"example.com", false},           // a domain is nobody
	}
	for _, tc := range cases {
		if got := h.IsAdmin(ctx, jid.MustParse(tc.jid)); got != tc.want {
			t.Errorf("IsAdmin(%s) = %v, want %v", tc.jid, got, tc.want)
		}
	}
	before := calls
	h.IsAdmin(ctx, jid.MustParse("ops@example.com"))
	if calls != before {
		t.Error("a repeated question was not answered from the cache")
	}
}

func TestServices(t *testing.T) {
	h := NewHost("example.com")
	key := NewServiceKey[*int]("counter")
	if _, ok := Lookup(h, key); ok {
		t.Fatal("lookup before Provide succeeded")
	}
	n := 7
	Provide(h, key, &n)
	if got, ok := Lookup(h, key); !ok || *got != 7 {
		t.Fatalf("Lookup = %v, %v", got, ok)
	}
	// A key of another type with the same name is a different key.
	if _, ok := Lookup(h, NewServiceKey[*string]("counter")); ok {
		t.Fatal("keys of different types collided")
	}
}

// A refusing handler answers but is not announced: disco derives features
// from what modules implement, and a refusal implements nothing.
func TestRegisterRefusingIQ(t *testing.T) {
	h := NewHost("example.com")
	refuse := func(*StanzaEvent, *xml.Element) *xml.Element { return nil }
	h.RegisterRefusingIQ("get", TargetHost, "urn:example:refused", refuse)
	h.RegisterRefusingIQ("get", TargetBare, "urn:example:refused-bare", refuse)
	h.RegisterIQ("get", TargetHost, "urn:example:served", refuse)
	if h.IQ("get", TargetHost, "urn:example:refused") == nil || h.IQ("get", TargetSelf, "urn:example:refused-bare") == nil {
		t.Fatal("refusing handlers not found")
	}
	if got := h.Features(); !slices.Equal(got, []string{"urn:example:served"}) {
		t.Errorf("host features %v, want only the served namespace", got)
	}
	if got := h.AccountFeatures(); len(got) != 0 {
		t.Errorf("account features %v, want none", got)
	}
}

// countingRouter answers MessageTargets with one fresh slice per call and
// counts the calls.
type countingRouter struct {
	Router
	calls int
}

func (r *countingRouter) MessageTargets(bare jid.JID, typ string) []Session {
	r.calls++
	return make([]Session, r.calls) // a different answer each time
}

// The handlers of one message share one lookup of its targets; another
// bare JID or type is looked up again.
func TestStanzaEventMessageTargetsLooksUpOnce(t *testing.T) {
	r := &countingRouter{}
	ev := &StanzaEvent{}
	alice, bob := jid.MustParse("alice@example.com"), jid.MustParse("bob@example.com")
	first := ev.MessageTargets(r, alice, "chat")
	if again := ev.MessageTargets(r, alice, "chat"); len(again) != len(first) || r.calls != 1 {
		t.Fatalf("second ask: %d targets after %d lookups, want the first answer (%d) from one lookup", len(again), r.calls, len(first))
	}
	if ev.MessageTargets(r, bob, "chat"); r.calls != 2 {
		t.Fatalf("another bare JID: %d lookups, want 2", r.calls)
	}
	if ev.MessageTargets(r, bob, "headline"); r.calls != 3 {
		t.Fatalf("another type: %d lookups, want 3", r.calls)
	}
	if got := (&StanzaEvent{}).MessageTargets(r, bob, "headline"); len(got) != 4 {
		t.Fatalf("a new event shares a lookup: %d targets", len(got))
	}
}
