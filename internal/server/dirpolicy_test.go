package server_test

import (
	"strings"
	"testing"
	"time"

	"parley/internal/directory/ldaptest"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const policyLDIF = `
dn: ou=config,dc=example,dc=test
objectClass: organizationalUnit
ou: config

dn: cn=example.test,ou=config,dc=example,dc=test
objectClass: parleyHostPolicy
cn: example.test
parleyHostDomain: example.test
parleyAllowedUser: alice@example.test
parleyAllowedUser: bob@example.test
parleyRoomCreation: admins
parleyAdmin: bob@example.test
`

// The host policy held in the directory (config_base) overrides the
// file's and is re-read at every poll.
func TestDirectoryConfigBase(t *testing.T) {
	srv := ldaptest.Start(t, ldaptest.Fixture+policyLDIF)
	ts := testserver.Start(t, withDirectoryKeys(directoryConfig(srv.Addr, `admins = ["alice@example.test"]`),
		"config_base = \"ou=config,"+ldaptest.Suffix+"\""))

	// allowed_users from the directory: carol is refused at once.
	if got := failureCond(saslAttempt(t, ts, "carol", "carol-pass")); got != "not-authorized" {
		t.Fatalf("carol (not in parleyAllowedUser): %s", got)
	}
	// room_creation = admins and admins = [bob] from the directory: the
	// file's admin alice may not create a room, bob may.
	join := func(c *testserver.Client, room, nick string) *xml.Element {
		c.Send("<presence to='%s@conference.example.test/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>", room, nick)
		return c.Expect(func(el *xml.Element) bool {
			return el.Local == "presence" && el.Attr("from") == room+"@conference.example.test/"+nick
		})
	}
	alice := ts.Online(t, "alice", "alice-pass", "r1")
	if el := join(alice, "aliceroom", "Alice"); testserver.ErrorCondition(el) != "not-allowed" {
		t.Fatalf("alice (file admin, not a directory admin) created a room: %s", el)
	}
	bob := ts.Online(t, "bob", "bob-pass", "r1")
	if el := join(bob, "bobroom", "Bob"); el.Attr("type") == "error" {
		t.Fatalf("bob (directory admin) could not create a room: %s", el)
	}

	// The entry changes: carol may log in after the next poll.
	srv.Modify(t, "dn: cn=example.test,ou=config,"+ldaptest.Suffix+"\nchangetype: modify\nadd: parleyAllowedUser\nparleyAllowedUser: carol@example.test\n")
	deadline := time.Now().Add(20 * time.Second)
	for failureCond(saslAttempt(t, ts, "carol", "carol-pass")) != "success" {
		if time.Now().After(deadline) {
			t.Fatal("carol still refused after the directory allowed her")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Owners' changes to directory rooms: refused with room_write = false,
// written to the room's entry with room_write = true.
func TestDirectoryRoomWrite(t *testing.T) {
	for _, write := range []bool{false, true} {
		name := "refused"
		if write {
			name = "written"
		}
		t.Run(name, func(t *testing.T) {
			srv := ldaptest.Start(t, "")
			// carol administers the host, so she owns every room; alice is
			// an admin of the lobby (its owner attribute).
			extra := `admins = ["carol@example.test"]`
			keys := "room_title_attribute = \"parleyRoomTitle\""
			if write {
				keys += "\nroom_write = true"
			}
			cfg := withDirectoryKeys(directoryConfig(srv.Addr, extra), keys)
			srv.Modify(t, "dn: cn=lobby,"+ldaptest.RoomBase+"\nchangetype: modify\nadd: objectClass\nobjectClass: parleyRoom\n")
			ts := testserver.Start(t, cfg)
			alice := ts.Online(t, "alice", "alice-pass", "r1")
			room := "lobby@conference.example.test"
			alice.Send("<presence to='%s/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>", room)
			alice.Expect(func(el *xml.Element) bool { return el.Local == "presence" && el.Attr("from") == room+"/Alice" })

			// erin becomes a member, bob stops being one.
			res := alice.IQ("set", room, "<query xmlns='http://jabber.org/protocol/muc#admin'>"+
				"<item affiliation='member' jid='erin@example.test'/><item affiliation='none' jid='bob@example.test'/></query>")
			carol := ts.Online(t, "carol", "carol-pass", "r1")
			form := carol.IQ("set", room, "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'>"+
				"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#roomconfig</value></field>"+
				"<field var='muc#roomconfig_roomname'><value>The Lobby</value></field>"+
				"<field var='muc#roomconfig_roomdesc'><value>Where everyone meets</value></field></x></query>")
			entry := srv.Search(t, "cn=lobby,"+ldaptest.RoomBase, "(objectClass=*)", "member", "description", "parleyRoomTitle")
			if !write {
				for what, el := range map[string]*xml.Element{"affiliations": res, "configuration": form} {
					if testserver.ErrorCondition(el) != "not-allowed" || !strings.Contains(el.String(), "directory") {
						t.Errorf("%s change with room_write = false: %s", what, el)
					}
				}
				if strings.Contains(entry, "erin") || !strings.Contains(entry, "uid=bob") || strings.Contains(entry, "Where everyone") {
					t.Errorf("entry changed although room_write = false:\n%s", entry)
				}
				return
			}
			if res.Attr("type") != "result" || form.Attr("type") != "result" {
				t.Fatalf("changes refused: %s\n%s", res, form)
			}
			for _, want := range []string{"member: uid=erin,", "description: Where everyone meets", "parleyRoomTitle: The Lobby"} {
				if !strings.Contains(entry, want) {
					t.Errorf("entry lacks %q:\n%s", want, entry)
				}
			}
			if strings.Contains(entry, "member: uid=bob,") {
				t.Errorf("bob still a member in the entry:\n%s", entry)
			}
			// The next polls keep erin a member (the directory now says so)
			// and bob out.
			time.Sleep(2500 * time.Millisecond)
			for _, u := range []struct{ name, nick, want string }{{"erin", "Erin", ""}, {"bob", "Bob", "registration-required"}} {
				c := ts.Online(t, u.name, u.name+"-pass", "r1")
				c.Send("<presence to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>", room, u.nick)
				el := c.Expect(func(el *xml.Element) bool { return el.Local == "presence" && el.Attr("from") == room+"/"+u.nick })
				if testserver.ErrorCondition(el) != u.want {
					t.Errorf("%s joining after the write-back: %s", u.name, el)
				}
			}
		})
	}
}

// withDirectoryKeys adds keys to the [directory] table of cfg.
func withDirectoryKeys(cfg, keys string) string {
	return strings.Replace(cfg, "[directory]\n", "[directory]\n"+keys+"\n", 1)
}
