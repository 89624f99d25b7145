package gssapi_test

import (
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	gss "github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"parley/internal/gssapi"
	"parley/internal/gssapi/mitkdc"
)

// MITTicket returns an initial context token for service made from a
// ticket that the real MIT KDC issued to user.
func mitToken(t *testing.T, k *mitkdc.KDC, user, password, service string) []byte {
	t.Helper()
	cfg, err := krbconfig.Load(k.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.NewWithPassword(user, k.Realm, password, cfg, client.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatalf("login at the MIT KDC: %v", err)
	}
	defer cl.Destroy()
	tkt, key, err := cl.GetServiceTicket(service)
	if err != nil {
		t.Fatalf("service ticket: %v", err)
	}
	tok, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key, []int{gss.ContextFlagInteg, gss.ContextFlagMutual}, []int{flags.APOptionMutualRequired})
	if err != nil {
		t.Fatal(err)
	}
	b, err := tok.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Tickets of a real MIT KDC, for the keytab its kadmin wrote, are
// accepted; a ticket for another service in the same keytab is not.
func TestMITKDCTickets(t *testing.T) {
	k := mitkdc.Start(t, "MIT.PARLEY.TEST", "127.0.0.110", "localhost")
	k.AddUser(t, "alice", "alice-pass")
	kt := k.AddService(t, "xmpp/localhost")
	a, err := gssapi.New(gssapi.Config{Keytab: kt, Principal: "xmpp/localhost", MaxTokenBytes: 1 << 16, MaxClockSkew: 5 * time.Minute, ReplayCacheSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx, rep, err := a.Accept(mitToken(t, k, "alice", "alice-pass", "xmpp/localhost"), local)
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Principal.String() != "alice@MIT.PARLEY.TEST" || rep == nil {
		t.Fatalf("principal %s, AP-REP %d bytes", ctx.Principal, len(rep))
	}
	k.AddService(t, "host/localhost")
	if _, _, err := a.Accept(mitToken(t, k, "alice", "alice-pass", "host/localhost"), local); err == nil {
		t.Fatal("ticket for host/localhost accepted as xmpp/localhost")
	}
}
