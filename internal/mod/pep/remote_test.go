package pep_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"parley/internal/pubsub"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// peer stands in for another server: every stanza routed to its domain
// lands in a channel.
type peer struct{ in chan *xml.Element }

func (p *peer) Deliver(_ context.Context, el *xml.Element, _, _ jid.JID) { p.in <- el }

func (p *peer) next(t *testing.T, match func(*xml.Element) bool) *xml.Element {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case el := <-p.in:
			if match(el) {
				return el
			}
		case <-timeout:
			t.Fatal("peer: nothing matching arrived")
			return nil
		}
	}
}

func (p *peer) none(t *testing.T, match func(*xml.Element) bool) {
	t.Helper()
	for {
		select {
		case el := <-p.in:
			if match(el) {
				t.Fatalf("peer got %s", el)
			}
		default:
			return
		}
	}
}

// TestRemoteContact: for a contact of another server the service learns
// its resources from the presence it sends (XEP-0163 §4.3.1), asks it for
// its capabilities from the account's bare JID, sends the last item once
// they are known, notifies it of later publications, and forgets it when
// it goes unavailable.
func TestRemoteContact(t *testing.T) {
	ts := start(t, "", "alice")
	h := ts.Hosts()[0]
	remote := &peer{in: make(chan *xml.Element, 64)}
	h.AddComponent("remote.example", remote)
	ctx := context.Background()
	for _, c := range []string{"romeo@remote.example"} {
		if _, err := ts.Store().Roster().Put(ctx, "alice@localhost", storage.RosterItem{JID: c, Subscription: storage.SubBoth}); err != nil {
			t.Fatal(err)
		}
	}
	alice := online(t, ts, "alice", "r", features(), nil)
	publish(t, alice, nodeTune, "first", tune)

	ver := capsVer(features(nodeTune))
	h.Router.Route(ctx, xml.New("", "presence").SetAttr("from", "romeo@remote.example/phone").SetAttr("to", "alice@localhost").
		Append(xml.New(nsCaps, "c").SetAttr("hash", "sha-1").SetAttr("node", capsNode).SetAttr("ver", ver)))
	q := remote.next(t, func(el *xml.Element) bool { return el.Local == "iq" && el.Child(nsDiscoInfo, "query") != nil })
	if q.Attr("from") != "alice@localhost" || q.Attr("to") != "romeo@remote.example/phone" ||
		q.Child(nsDiscoInfo, "query").Attr("node") != capsNode+"#"+ver {
		t.Fatalf("caps query %s", q)
	}
	res := xml.New("", "iq").SetAttr("type", "result").SetAttr("id", q.Attr("id")).
		SetAttr("from", "romeo@remote.example/phone").SetAttr("to", "alice@localhost")
	query := xml.New(nsDiscoInfo, "query").Append(xml.New(nsDiscoInfo, "identity").SetAttr("category", "client").SetAttr("type", "pc").SetAttr("name", "test"))
	for _, f := range features(nodeTune) {
		query.Append(xml.New(nsDiscoInfo, "feature").SetAttr("var", f))
	}
	h.Router.Route(ctx, res.Append(query))
	last := remote.next(t, isEvent("alice@localhost", nodeTune))
	if last.Attr("to") != "romeo@remote.example/phone" || last.Child(stanza.NSDelay, "delay") == nil || !strings.Contains(last.String(), "id='first'") {
		t.Fatalf("last item to the remote contact: %s", last)
	}

	publish(t, alice, nodeTune, "second", tune)
	ev := remote.next(t, isEvent("alice@localhost", nodeTune))
	if !strings.Contains(ev.String(), "id='second'") || ev.Child(pubsub.NSAddress, "addresses") == nil {
		t.Fatalf("event to the remote contact: %s", ev)
	}

	// A bounced notification forgets the resource (XEP-0163 §4.3.1 point
	// 2): the next publication does not go there.
	h.Router.Route(ctx, ev.WithAttr("type", "error").WithAttr("from", "romeo@remote.example/phone").WithAttr("to", "alice@localhost").
		WithChildren(stanza.ErrorElement(stanza.RecipientUnavailable, "")))
	publish(t, alice, nodeTune, "bounced", tune)
	remote.none(t, isEvent("alice@localhost", nodeTune))
	h.Router.Route(ctx, xml.New("", "presence").SetAttr("from", "romeo@remote.example/phone").SetAttr("to", "alice@localhost").
		Append(xml.New(nsCaps, "c").SetAttr("hash", "sha-1").SetAttr("node", capsNode).SetAttr("ver", ver)))
	remote.next(t, isEvent("alice@localhost", nodeTune)) // back: the last item again

	// A stranger's presence is not remembered: it gets nothing.
	h.Router.Route(ctx, xml.New("", "presence").SetAttr("from", "iago@remote.example/x").SetAttr("to", "alice@localhost").
		Append(xml.New(nsCaps, "c").SetAttr("hash", "sha-1").SetAttr("node", capsNode).SetAttr("ver", ver)))
	h.Router.Route(ctx, xml.New("", "presence").SetAttr("from", "romeo@remote.example/phone").SetAttr("to", "alice@localhost").SetAttr("type", "unavailable"))
	publish(t, alice, nodeTune, "third", tune)
	remote.none(t, isEvent("alice@localhost", nodeTune))
}
