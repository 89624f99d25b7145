// Package krbtest plays a Kerberos KDC and a GSS-API initiator in tests,
// without a KDC process: it writes a service keytab, issues tickets
// encrypted in its keys (the way a KDC would), and builds the client's
// tokens with github.com/jcmturner/gokrb5's own message code, so the
// acceptor in internal/gssapi is checked against another implementation
// of the encodings. Tests that need the real thing start MIT krb5kdc
// (internal/gssapi/mitkdc).
package krbtest

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gofork "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/crypto"
	gss "github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/chksumtype"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Realm is a fake KDC's view: one realm and the service's keys.
type Realm struct {
	Name    string
	Service string // "xmpp/host"
	Keytab  string // path of the service keytab
	Etype   int32
	kt      *keytab.Keytab
}

// New writes a keytab for service ("xmpp/localhost") in realm into a
// temporary directory. etype 0 means aes256-cts-hmac-sha1-96.
// (aes256-cts-hmac-sha384-192 cannot be faked: gokrb5 generates session
// keys of the wrong size for it. Tickets from a real KDC are fine.)
func New(t testing.TB, realm, service string, etype int32) *Realm {
	t.Helper()
	if etype == 0 {
		etype = etypeID.AES256_CTS_HMAC_SHA1_96
	}
	kt := keytab.New()
	// A random password: two Realms of the same names are two KDCs.
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	if err := kt.AddEntry(service, realm, hex.EncodeToString(pw), time.Now(), 2, etype); err != nil {
		t.Fatal(err)
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "xmpp.keytab")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return &Realm{Name: realm, Service: service, Keytab: path, Etype: etype, kt: kt}
}

// Options shape one client token.
type Options struct {
	// Client is the client principal's name ("alice", "alice/admin");
	// ClientRealm defaults to the realm.
	Client, ClientRealm string
	// Service overrides the ticket's service principal.
	Service string
	// Mutual asks for mutual authentication (GSS_C_MUTUAL_FLAG and the
	// AP option), as MIT clients do by default.
	Mutual bool
	// NoSubkey leaves the subkey out of the authenticator, so per-message
	// tokens use the ticket's session key.
	NoSubkey bool
	// NoChecksum leaves out the GSS-API checksum.
	NoChecksum bool
	// Expired issues a ticket that ended an hour ago.
	Expired bool
	// ClockOffset shifts the authenticator's time.
	ClockOffset time.Duration
}

// Initiator is the client side of one context.
type Initiator struct {
	SessionKey types.EncryptionKey
	Key        types.EncryptionKey // per-message key (subkey or session key)
	ctime      time.Time
	cusec      int
	seq        uint64
}

// Token returns an RFC 2743 initial context token with an AP-REQ for the
// service, and the initiator state to continue with.
func (r *Realm) Token(t testing.TB, o Options) ([]byte, *Initiator) {
	t.Helper()
	crealm := o.ClientRealm
	if crealm == "" {
		crealm = r.Name
	}
	svc := r.Service
	if o.Service != "" {
		svc = o.Service
	}
	cname := types.PrincipalName{NameType: 1, NameString: strings.Split(o.Client, "/")}
	sname := types.PrincipalName{NameType: 2, NameString: strings.Split(svc, "/")}
	now := time.Now().UTC()
	end := now.Add(time.Hour)
	if o.Expired {
		now, end = now.Add(-2*time.Hour), now.Add(-time.Hour)
	}
	// The ticket is encrypted with the real service's key even when it
	// names another service: what the acceptor must check is the name.
	realSname := types.PrincipalName{NameType: 2, NameString: strings.Split(r.Service, "/")}
	tkt, sessKey, err := messages.NewTicket(cname, crealm, realSname, r.Name, types.NewKrbFlags(), r.kt, r.Etype, 2, now, now, end, end)
	if err != nil {
		t.Fatal(err)
	}
	tkt.SName = sname
	auth, err := types.NewAuthenticator(crealm, cname)
	if err != nil {
		t.Fatal(err)
	}
	auth.CTime = auth.CTime.Add(o.ClockOffset)
	if !o.NoChecksum {
		ck := make([]byte, 24)
		binary.LittleEndian.PutUint32(ck, 16)
		fl := uint32(gss.ContextFlagInteg | gss.ContextFlagConf | gss.ContextFlagSequence)
		if o.Mutual {
			fl |= gss.ContextFlagMutual
		}
		binary.LittleEndian.PutUint32(ck[20:], fl)
		auth.Cksum = types.Checksum{CksumType: chksumtype.GSSAPI, Checksum: ck}
	}
	in := &Initiator{SessionKey: sessKey, Key: sessKey}
	if !o.NoSubkey {
		et, _ := crypto.GetEtype(sessKey.KeyType)
		if err := auth.GenerateSeqNumberAndSubKey(sessKey.KeyType, et.GetKeyByteSize()); err != nil {
			t.Fatal(err)
		}
		in.Key = auth.SubKey
	}
	in.ctime, in.cusec, in.seq = auth.CTime, auth.Cusec, uint64(auth.SeqNumber)
	req, err := messages.NewAPReq(tkt, sessKey, auth)
	if err != nil {
		t.Fatal(err)
	}
	if o.Mutual {
		types.SetFlag(&req.APOptions, flags.APOptionMutualRequired)
	}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return Frame([]byte{1, 0}, b), in
}

// Frame wraps an inner token in the RFC 2743 §3.1 framing with the
// Kerberos OID, independently of the acceptor's own code.
func Frame(tokID, inner []byte) []byte {
	oid, _ := gofork.Marshal(gss.OIDKRB5.OID())
	body := append(append(oid, tokID...), inner...)
	out, _ := gofork.Marshal(gofork.RawValue{Class: gofork.ClassApplication, IsCompound: true, Tag: 0, Bytes: body})
	return out
}

// CheckAPRep verifies the acceptor's AP-REP: framing, decryption with the
// session key, and the echo of the authenticator's time.
func (in *Initiator) CheckAPRep(t testing.TB, tok []byte) {
	t.Helper()
	var rv gofork.RawValue
	if _, err := gofork.Unmarshal(tok, &rv); err != nil || rv.Class != gofork.ClassApplication || rv.Tag != 0 {
		t.Fatalf("AP-REP framing: %v", err)
	}
	oid, _ := gofork.Marshal(gss.OIDKRB5.OID())
	body := rv.Bytes
	if len(body) < len(oid)+2 || string(body[:len(oid)]) != string(oid) || body[len(oid)] != 2 || body[len(oid)+1] != 0 {
		t.Fatalf("AP-REP token: OID or TOK_ID wrong: %x", body)
	}
	var rep messages.APRep
	if err := rep.Unmarshal(body[len(oid)+2:]); err != nil {
		t.Fatalf("AP-REP: %v", err)
	}
	plain, err := crypto.DecryptEncPart(rep.EncPart, in.SessionKey, keyusage.AP_REP_ENCPART)
	if err != nil {
		t.Fatalf("AP-REP does not decrypt with the session key: %v", err)
	}
	var part messages.EncAPRepPart
	if err := part.Unmarshal(plain); err != nil {
		t.Fatalf("EncAPRepPart: %v", err)
	}
	if !part.CTime.Equal(in.ctime.Truncate(time.Second)) || part.Cusec != in.cusec {
		t.Fatalf("AP-REP time %v/%d, want %v/%d", part.CTime, part.Cusec, in.ctime, in.cusec)
	}
}

// Unwrap checks an acceptor's Wrap token with gokrb5's implementation.
func (in *Initiator) Unwrap(t testing.TB, tok []byte) []byte {
	t.Helper()
	var wt gss.WrapToken
	if err := wt.Unmarshal(tok, true); err != nil {
		t.Fatalf("acceptor wrap token: %v", err)
	}
	if ok, err := wt.Verify(in.Key, keyusage.GSSAPI_ACCEPTOR_SEAL); !ok {
		t.Fatalf("acceptor wrap token checksum: %v", err)
	}
	return wt.Payload
}

// Wrap makes an initiator Wrap token without confidentiality.
func (in *Initiator) Wrap(t testing.TB, payload []byte) []byte {
	t.Helper()
	wt, err := gss.NewInitiatorWrapToken(payload, in.Key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := wt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
