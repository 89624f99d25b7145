package pep_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestBoundsPerAccount: the limits hold per account and storage stays
// bounded: an account that fills limits.max_pep_nodes gets
// resource-constraint while another account publishes as usual; a node
// with max_items = max keeps limits.max_pep_items items however many are
// published (the oldest go); a configuration above the limit is refused; a payload over limits.max_pep_item_bytes is refused without
// touching what is stored; and an account cannot publish into another's
// service even to a node that does not exist yet.
func TestBoundsPerAccount(t *testing.T) {
	ts := start(t, "[limits]\nmax_pep_nodes = 3\nmax_pep_items = 5\nmax_pep_item_bytes = 1024\n", "alice", "bob")
	alice := ts.Login(t, "alice", password, "r")
	bob := ts.Login(t, "bob", password, "r")
	item := func(i int) string { return fmt.Sprintf("<x xmlns='urn:x'>%d</x>", i) }
	opts := "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>" +
		"<field var='pubsub#max_items'><value>max</value></field></x></publish-options>"

	// max_items = max: 12 publications, 5 kept, the newest.
	for i := 0; i < 12; i++ {
		if r := pubsubIQ(alice, "set", "", false, fmt.Sprintf("<publish node='many'><item id='i%d'>%s</item></publish>", i, item(i))+opts); errorOf(r) != "" {
			t.Fatalf("publish %d: %s", i, r)
		}
	}
	items, err := ts.Store().PubSub().Items(context.Background(), "alice@localhost", "many", 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range items {
		ids = append(ids, it.ID)
	}
	if len(ids) != 5 || strings.Contains(strings.Join(ids, ","), "i0,") || !strings.Contains(strings.Join(ids, ","), "i11") {
		t.Fatalf("stored items %v, want the 5 newest", ids)
	}

	// A configuration above the limit is refused (not-acceptable) and
	// creates nothing; a node with the default keeps within the limit.
	if got := errorOf(pubsubIQ(alice, "set", "", false, "<create node='big'/><configure><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#node_config</value></field><field var='pubsub#max_items'><value>1000</value></field></x></configure>")); got != "not-acceptable" {
		t.Fatalf("configuring 1000 items: %q, want not-acceptable", got)
	}
	for i := 0; i < 8; i++ {
		publish(t, alice, "big", fmt.Sprint(i), item(i))
	}
	if items, _ := ts.Store().PubSub().Items(context.Background(), "alice@localhost", "big", 0); len(items) != 1 {
		t.Fatalf("a default node stores %d items, want 1", len(items))
	}

	// The third node fills alice's quota; the fourth is refused, also
	// through auto-create and explicit create.
	publish(t, alice, "third", "1", item(1))
	for _, inner := range []string{"<publish node='fourth'><item id='1'>" + item(1) + "</item></publish>", "<create node='fourth'/>"} {
		if got := errorOf(pubsubIQ(alice, "set", "", false, inner)); got != "resource-constraint/max-nodes-exceeded" {
			t.Fatalf("fourth node: %q", got)
		}
	}
	// bob is unaffected by alice's quota, and cannot use alice's service.
	for i := 0; i < 3; i++ {
		publish(t, bob, fmt.Sprintf("bob%d", i), "1", item(i))
	}
	if got := errorOf(pubsubIQ(bob, "set", "alice@localhost", false, "<publish node='fresh'><item id='1'>"+item(1)+"</item></publish>")); got != "forbidden" {
		t.Fatalf("bob publishing into alice's service: %q", got)
	}

	// A payload over the byte limit is refused; the node keeps its items.
	huge := "<x xmlns='urn:x'>" + strings.Repeat("y", 2000) + "</x>"
	if got := errorOf(pubsubIQ(alice, "set", "", false, "<publish node='many'><item id='huge'>"+huge+"</item></publish>")); got != "not-acceptable/payload-too-big" {
		t.Fatalf("huge item: %q", got)
	}
	if items, _ := ts.Store().PubSub().Items(context.Background(), "alice@localhost", "many", 0); len(items) != 5 {
		t.Fatalf("after a refused huge item the node holds %d items", len(items))
	}
	nodes, err := ts.Store().PubSub().Nodes(context.Background(), "alice@localhost")
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 {
		t.Fatalf("alice has %d nodes, want 3", len(nodes))
	}
}
