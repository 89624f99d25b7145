package avatarconv_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"parley/internal/directory/ldaptest"
	"parley/internal/mod/avatarconv"
	"parley/internal/testserver"
)

// TestMain says in one line when the directory tests skip for want of slapd.
func TestMain(m *testing.M) { os.Exit(ldaptest.Main(m)) }

// TestDirectoryPhotoReadOnly: on a directory host the vCard PHOTO comes
// from the directory (readonly by default), so a PEP avatar is not written
// over it: contacts keep reading the directory's photo, the PEP avatar
// stays, and presence advertises the PEP avatar's hash.
func TestDirectoryPhotoReadOnly(t *testing.T) {
	srv := ldaptest.Start(t, "")
	ts := testserver.Start(t, fmt.Sprintf(`[[host]]
domain = "example.test"
accounts = "directory"
[directory]
servers = [%q]
tls = "none"
bind_dn = %q
bind_password = %q
user_base = %q
group_base = %q
dial_timeout = "2s"
retry_delay = "10ms"
`, srv.Addr, ldaptest.ServiceDN, ldaptest.ServicePassword, ldaptest.PeopleBase, ldaptest.GroupBase))
	alice := ts.Online(t, "alice", "alice-pass", "r1")
	bob := ts.Online(t, "bob", "bob-pass", "r1")
	before := bob.IQ("get", "alice@example.test", "<vCard xmlns='vcard-temp'/>")
	dirPhoto := before.Child("vcard-temp", "vCard").Child("vcard-temp", "PHOTO").ChildText("vcard-temp", "BINVAL")
	if dirPhoto == "" {
		t.Fatalf("fixture: alice has no directory photo: %s", before)
	}
	id, _ := pngHash(t)
	publish(t, alice, avatarconv.NSData, id, "<data xmlns='urn:xmpp:avatar:data'>"+png+"</data>")
	publish(t, alice, avatarconv.NSMetadata, id, "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='"+id+"' type='image/png' bytes='70'/></metadata>")
	after := bob.IQ("get", "alice@example.test", "<vCard xmlns='vcard-temp'/>")
	if got := after.Child("vcard-temp", "vCard").Child("vcard-temp", "PHOTO").ChildText("vcard-temp", "BINVAL"); got != dirPhoto {
		t.Fatalf("directory photo overwritten: %s", after)
	}
	alice.Send("<presence><status>pep</status></presence>")
	el := alice.ExpectStanza("presence", "from="+alice.JID)
	if h, _ := photoOf(el); h != id || !strings.Contains(el.String(), "pep") {
		t.Fatalf("presence %s, want photo %s", el, id)
	}
}
