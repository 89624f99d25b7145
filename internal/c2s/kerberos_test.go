package c2s_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	gss "github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"

	"parley/internal/directory/ldaptest"
	"parley/internal/gssapi/mitkdc"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const krbRealm = "PARLEY.TEST"

// krbServer starts a real MIT KDC on 127.0.0.111 with users alice and bob
// (bob has no XMPP account) and a Parley whose host localhost offers
// GSSAPI with the KDC's keytab for xmpp/localhost.
func krbServer(t *testing.T, extra string) (*mitkdc.KDC, *testserver.TS) {
	t.Helper()
	k := mitkdc.Start(t, krbRealm, "127.0.0.111", "localhost")
	k.AddUser(t, "alice", "alice-pass")
	k.AddUser(t, "bob", "bob-pass")
	k.AddUser(t, "alice/admin", "admin-pass")
	kt := k.AddService(t, "xmpp/localhost")
	ts := testserver.Start(t, fmt.Sprintf("[[host]]\ndomain = \"localhost\"\n%s\n[host.kerberos]\nkeytab = %q\nrealms = [%q]\n", extra, kt, krbRealm))
	ts.AddUser(t, "alice", "password1")
	return k, ts
}

// gokrbInitiator is the client side of one context built with gokrb5
// from a ticket the MIT KDC issued (no subkey: per-message tokens use the
// session key).
type gokrbInitiator struct{ key types.EncryptionKey }

func gokrbToken(t *testing.T, k *mitkdc.KDC, user, pass string) ([]byte, *gokrbInitiator) {
	t.Helper()
	return gokrbTokenFor(t, k, user, pass, "xmpp/localhost")
}

func gokrbTokenFor(t *testing.T, k *mitkdc.KDC, user, pass, service string) ([]byte, *gokrbInitiator) {
	t.Helper()
	cfg, err := krbconfig.Load(k.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithPassword(user, k.Realm, pass, cfg, client.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatalf("login at the KDC: %v", err)
	}
	defer cl.Destroy()
	tkt, key, err := cl.GetServiceTicket(service)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key, []int{gss.ContextFlagInteg, gss.ContextFlagMutual}, []int{flags.APOptionMutualRequired})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tok.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b, &gokrbInitiator{key: key}
}

// saslStep sends data as <auth/> (first) or <response/> and returns the
// server's next element.
func saslStep(c *testserver.Client, first bool, mech string, data []byte) *xml.Element {
	enc := base64.StdEncoding.EncodeToString(data)
	if len(data) == 0 {
		enc = "="
	}
	if first {
		c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>", mech, enc)
	} else {
		c.Send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>", enc)
	}
	return c.Expect(func(el *xml.Element) bool {
		return el.Local == "challenge" || el.Local == "success" || el.Local == "failure"
	})
}

func decoded(t *testing.T, el *xml.Element) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(el.Text()))
	if err != nil {
		t.Fatalf("%s: %v", el, err)
	}
	return b
}

// gokrbLogin runs RFC 4752 with the gokrb5 initiator; it returns the
// final element (success or failure).
func gokrbLogin(t *testing.T, c *testserver.Client, tok []byte, in *gokrbInitiator, authzid string) *xml.Element {
	t.Helper()
	el := saslStep(c, true, "GSSAPI", tok)
	if el.Local != "challenge" {
		return el
	}
	// AP-REP; gokrb5 has no AP-REP check, the MIT client test does it.
	el = saslStep(c, false, "", nil)
	if el.Local != "challenge" {
		return el
	}
	var wt gss.WrapToken
	if err := wt.Unmarshal(decoded(t, el), true); err != nil {
		t.Fatal(err)
	}
	if ok, err := wt.Verify(in.key, keyusage.GSSAPI_ACCEPTOR_SEAL); !ok {
		t.Fatalf("server wrap token: %v", err)
	}
	if string(wt.Payload) != "\x01\x00\x00\x00" {
		t.Fatalf("server offers layers %x", wt.Payload)
	}
	reply, err := gss.NewInitiatorWrapToken(append([]byte{1, 0, 0, 0}, authzid...), in.key)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := reply.Marshal()
	return saslStep(c, false, "", b)
}

func krbClient(t *testing.T, ts *testserver.TS) *testserver.Client {
	t.Helper()
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("localhost")
	c.StartTLS("localhost")
	return c
}

func TestKerberosLoginWithMITKDC(t *testing.T) {
	k, ts := krbServer(t, `mechanisms = ["GSSAPI", "PLAIN"]`)
	c := krbClient(t, ts)
	if got := offeredMechanisms(c); !slices.Equal(got, []string{"GSSAPI", "PLAIN"}) {
		t.Fatalf("offered %q", got)
	}
	tok, in := gokrbToken(t, k, "alice", "alice-pass")
	if el := gokrbLogin(t, c, tok, in, "alice@localhost"); el.Local != "success" {
		t.Fatalf("GSSAPI login: %s", el)
	}
	c.Open("localhost")
	if jid := c.Bind("krb"); jid != "alice@localhost/krb" {
		t.Fatalf("bound %q", jid)
	}

	// The same token again is a replay.
	c = krbClient(t, ts)
	if el := saslStep(c, true, "GSSAPI", tok); el.Local != "failure" || el.Child("", "not-authorized") == nil {
		t.Fatalf("replayed token: %s", el)
	}
	// A principal without an XMPP account, and one with an instance.
	for _, p := range [][2]string{{"bob", "bob-pass"}, {"alice/admin", "admin-pass"}} {
		c = krbClient(t, ts)
		tok, in := gokrbToken(t, k, p[0], p[1])
		if el := gokrbLogin(t, c, tok, in, ""); el.Local != "failure" || el.Child("", "not-authorized") == nil {
			t.Fatalf("%s: %s", p[0], el)
		}
	}
	// Someone else's JID as authzid.
	c = krbClient(t, ts)
	tok, in = gokrbToken(t, k, "alice", "alice-pass")
	if el := gokrbLogin(t, c, tok, in, "root@localhost"); el.Local != "failure" || el.Child("", "invalid-authzid") == nil {
		t.Fatalf("foreign authzid: %s", el)
	}
	// Garbage and oversized tokens fail cleanly and the stream goes on.
	c = krbClient(t, ts)
	if el := saslStep(c, true, "GSSAPI", []byte("garbage garbage garbage")); el.Child("", "malformed-request") == nil {
		t.Fatalf("garbage: %s", el)
	}
	if el := saslStep(c, true, "GSSAPI", make([]byte, 70000)); el.Child("", "malformed-request") == nil {
		t.Fatalf("oversized: %s", el)
	}
	c.AuthPlain("localhost", "alice", "password1")
}

// Only GSSAPI: the password mechanisms are neither offered nor accepted.
func TestKerberosOnlyHost(t *testing.T) {
	_, ts := krbServer(t, `mechanisms = ["GSSAPI"]`)
	c := krbClient(t, ts)
	if got := offeredMechanisms(c); !slices.Equal(got, []string{"GSSAPI"}) {
		t.Fatalf("offered %q", got)
	}
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", base64.StdEncoding.EncodeToString([]byte("\x00alice\x00password1")))
	if f := c.ExpectStanza("failure"); f.Child("", "invalid-mechanism") == nil {
		t.Fatalf("PLAIN on a Kerberos-only host: %s", f)
	}
}

// mitPython is a GSSAPI initiator in MIT's own library (python3-gssapi):
// it prints base64 tokens and reads the server's, one per line.
const mitPython = `
import sys, base64, gssapi
name = gssapi.Name('xmpp@localhost', gssapi.NameType.hostbased_service)
ctx = gssapi.SecurityContext(name=name, usage='initiate',
    flags=gssapi.RequirementFlag.mutual_authentication | gssapi.RequirementFlag.integrity | gssapi.RequirementFlag.out_of_sequence_detection)
def out(b): print(base64.b64encode(b or b'').decode() or '=', flush=True)
def inp(): return base64.b64decode(sys.stdin.readline().strip())
out(ctx.step())
while not ctx.complete:
    out(ctx.step(inp()))
msg = ctx.unwrap(inp()).message
assert msg[0] & 1, msg
out(ctx.wrap(bytes([1, 0, 0, 0]) + sys.argv[1].encode(), sys.argv[2] == 'seal').message)
`

// The MIT GSSAPI library as the client (with its initiator subkey, AP-REP
// check, and both sealed and unsealed final messages).
func TestKerberosLoginWithMITClient(t *testing.T) {
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import gssapi").Run(); err != nil {
		t.Skipf("python3-gssapi not installed: %v", err)
	}
	k, ts := krbServer(t, "")
	k.Kinit(t, "alice", "alice-pass")
	for _, mode := range []string{"plain", "seal"} {
		t.Run(mode, func(t *testing.T) {
			c := krbClient(t, ts)
			if got := offeredMechanisms(c); !slices.Contains(got, "GSSAPI") {
				t.Fatalf("GSSAPI not offered: %q", got)
			}
			cmd := exec.Command(py, "-c", mitPython, "alice", mode)
			cmd.Env = k.Env
			cmd.Stderr = os.Stderr
			stdin, _ := cmd.StdinPipe()
			stdout, _ := cmd.StdoutPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
			lines := bufio.NewScanner(stdout)
			next := func() []byte {
				if !lines.Scan() {
					t.Fatalf("MIT client ended early")
				}
				if lines.Text() == "=" {
					return []byte{}
				}
				b, err := base64.StdEncoding.DecodeString(lines.Text())
				if err != nil {
					t.Fatal(err)
				}
				return b
			}
			el := saslStep(c, true, "GSSAPI", next())
			for el.Local == "challenge" {
				if _, err := io.WriteString(stdin, strings.TrimSpace(el.Text())+"\n"); err != nil {
					t.Fatal(err)
				}
				el = saslStep(c, false, "", next())
			}
			if el.Local != "success" {
				t.Fatalf("MIT client login: %s", el)
			}
			c.Open("localhost")
			if jid := c.Bind("mit"); jid != "alice@localhost/mit" {
				t.Fatalf("bound %q", jid)
			}
		})
	}
}

// On a directory host the principal maps to a directory entry: by
// localpart, or with kerberos.directory_attribute to the entry whose
// attribute holds the principal.
func TestKerberosOnDirectoryHost(t *testing.T) {
	srv := ldaptest.Start(t, "")
	k := mitkdc.Start(t, krbRealm, "127.0.0.113", "example.test")
	k.AddUser(t, "alice", "alice-pass")
	k.AddUser(t, "carol", "carol-pass")
	k.AddUser(t, "zed", "zed-pass")
	kt := k.AddService(t, "xmpp/example.test")
	conf := func(attr string) string {
		return fmt.Sprintf(`[[host]]
domain = "example.test"
accounts = "directory"
[host.kerberos]
keytab = %q
realms = [%q]
directory_attribute = %q
[directory]
servers = [%q]
tls = "none"
bind_dn = %q
bind_password = %q
user_base = %q
dial_timeout = "2s"
retry_delay = "10ms"
`, kt, krbRealm, attr, srv.Addr, ldaptest.ServiceDN, ldaptest.ServicePassword, ldaptest.PeopleBase)
	}
	// login returns the bound JID, or "" after a failure.
	login := func(ts *testserver.TS, user, pass string) string {
		c := testserver.Dial(t, ts.StartTLSAddr())
		c.Open("example.test")
		c.StartTLS("example.test")
		tok, in := gokrbTokenFor(t, k, user, pass, "xmpp/example.test")
		el := gokrbLogin(t, c, tok, in, "")
		if el.Local != "success" {
			if el.Child("", "not-authorized") == nil {
				t.Fatalf("%s: %s, want success or not-authorized", user, el)
			}
			return ""
		}
		c.Open("example.test")
		return c.Bind("k")
	}
	byName := testserver.Start(t, conf(""))
	if got := login(byName, "alice", "alice-pass"); got != "alice@example.test/k" {
		t.Fatalf("alice by localpart: %q", got)
	}
	if got := login(byName, "zed", "zed-pass"); got != "" {
		t.Fatalf("zed has no directory entry but logged in as %q", got)
	}
	// carol's principal is named in alice's entry: it logs in as alice.
	srv.Modify(t, "dn: uid=alice,"+ldaptest.PeopleBase+"\nchangetype: modify\nadd: description\ndescription: carol@"+krbRealm+"\n-\n")
	byAttr := testserver.Start(t, conf("description"))
	if got := login(byAttr, "carol", "carol-pass"); got != "alice@example.test/k" {
		t.Fatalf("carol by directory_attribute: %q", got)
	}
	if got := login(byAttr, "alice", "alice-pass"); got != "" {
		t.Fatalf("alice's principal is in no entry's description, but logged in as %q", got)
	}
}
