package c2s

import (
	"fmt"
	"strings"
	"testing"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// A session keeps at most maxArchiveQueries archive queries, forgetting
// the oldest; only set queries of the mam namespace to a bare JID other
// than the account's are kept, and queryids over maxQueryIDBytes not at all.
func TestArchiveQueriesBounded(t *testing.T) {
	s := &session{jid: jid.MustParse("alice@localhost/a")}
	query := func(typ, to, queryid string) {
		t.Helper()
		raw := fmt.Sprintf("<iq type='%s' id='q' to='%s'><query xmlns='urn:xmpp:mam:2' queryid='%s'/></iq>", typ, to, queryid)
		el, err := xml.ParseElement([]byte(raw), xml.DefaultLimits(), "jabber:client")
		if err != nil {
			t.Fatal(err)
		}
		s.noteArchiveQuery(el, jid.MustParse(to))
	}
	answers := func(from, queryid string) bool {
		el := xml.New("", "message").SetAttr("from", from).
			Append(xml.New("urn:xmpp:mam:2", "result").SetAttr("queryid", queryid))
		return s.answersQuery(el)
	}
	for i := range maxArchiveQueries + 1 {
		query("set", fmt.Sprintf("room%d@conference.localhost", i), "q")
	}
	query("set", "room1@conference.localhost", "q") // already known: no new entry
	if n := len(s.Value(archiveQueriesKey{}).(archiveQueries)); n != maxArchiveQueries {
		t.Fatalf("%d queries kept, want %d", n, maxArchiveQueries)
	}
	if answers("room0@conference.localhost", "q") {
		t.Fatal("the oldest query was not forgotten past the cap")
	}
	for _, c := range []struct {
		from, id string
		want     bool
	}{
		{"room1@conference.localhost", "q", true},
		{fmt.Sprintf("room%d@conference.localhost", maxArchiveQueries), "q", true},
		{"room1@conference.localhost", "other", false},
		{"room1@conference.localhost/nick", "q", false},
		{"bob@localhost/b", "q", false},
	} {
		if got := answers(c.from, c.id); got != c.want {
			t.Errorf("result from %s queryid %s: answers %v, want %v", c.from, c.id, got, c.want)
		}
	}

	s = &session{jid: s.jid}
	query("get", "room@conference.localhost", "g")                                    // a form request, not a query
	query("set", "alice@localhost", "own")                                            // the account's own archive: isQueryResult
	query("set", "room@conference.localhost/nick", "n")                               // an occupant, not an archive
	query("set", "room@conference.localhost", strings.Repeat("x", 1+maxQueryIDBytes)) // too long to keep
	if qs := s.Value(archiveQueriesKey{}); qs != nil {
		t.Fatalf("kept %v", qs)
	}
}
