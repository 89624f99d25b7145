// Command sasl2client is the interop client of interop/sasl2.sh: no
// Debian XMPP library speaks XEP-0388 SASL2, XEP-0386 Bind 2 or XEP-0484
// FAST yet, so this one, written to the XEPs (package xmppclient), logs in
// to a running server over the network as a mobile client does and prints
// one PASS or FAIL line per check.
//
//	sasl2client -addr IP:PORT -domain D -password P -token-file F            the full run
//	sasl2client -addr IP:PORT -domain D -token-file F -expect-refused        the saved token must fail
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"parley/internal/xmpp/xml"
	"parley/internal/xmppclient"
)

const (
	alicePhone = "6b0ae2f9-5f3c-4f7e-9a53-0f4c1b6a1d11"
	bobLaptop  = "2f1c8a7e-0d4b-4c47-8a9e-7d6e5f4a3b21"
)

var (
	addr     = flag.String("addr", "", "server address host:port (STARTTLS)")
	domain   = flag.String("domain", "", "XMPP domain")
	password = flag.String("password", "", "password of alice and bob")
	tokFile  = flag.String("token-file", "", "where the FAST token is saved")
	refused  = flag.Bool("expect-refused", false, "only check that the saved token no longer logs in")
	failed   = false
)

func pass(format string, a ...any) { fmt.Printf("PASS: "+format+"\n", a...) }
func fail(format string, a ...any) {
	failed = true
	fmt.Printf("FAIL: "+format+"\n", a...)
}

func dial(user string) (*xmppclient.Client, error) {
	return xmppclient.Dial(context.Background(), xmppclient.Options{
		Domain: *domain, Address: *addr, Insecure: true, RequireTLS: true,
		From: user + "@" + *domain, Timeout: 15 * time.Second,
	})
}

func main() {
	flag.Parse()
	if *refused {
		expectRefused()
	} else {
		run()
	}
	if failed {
		os.Exit(1)
	}
}

func expectRefused() {
	tok, err := os.ReadFile(*tokFile)
	if err != nil {
		fail("read token file: %v", err)
		return
	}
	c, err := dial("alice")
	if err != nil {
		fail("connect: %v", err)
		return
	}
	defer c.Close()
	_, err = c.LoginSASL2(xmppclient.SASL2Login{User: "alice", Token: string(tok), Mechanism: "HT-SHA-256-EXPR", UserAgentID: alicePhone})
	var f *xmppclient.SASL2Failure
	if errors.As(err, &f) && f.Condition == "not-authorized" {
		pass("revoked FAST token refused (not-authorized)")
	} else {
		fail("revoked FAST token: %v", err)
	}
}

func run() {
	// 1. Password login over SASL2 with Bind 2 (stream management and
	// carbons inline) and a token request, as Conversations or Monal do.
	a, err := dial("alice")
	if err != nil {
		fail("connect: %v", err)
		return
	}
	if len(a.SASL2Mechanisms()) > 0 {
		pass("SASL2 offered: %s", strings.Join(a.SASL2Mechanisms(), " "))
	} else {
		fail("no SASL2 feature")
		return
	}
	if fm := a.FASTMechanisms(); len(fm) > 0 {
		pass("FAST offered: %s", strings.Join(fm, " "))
	} else {
		fail("no FAST mechanisms")
	}
	res, err := a.LoginSASL2(xmppclient.SASL2Login{
		User: "alice", Password: *password, Mechanism: "SCRAM-SHA-256-PLUS",
		UserAgentID: alicePhone, Software: "sasl2client", Device: "interop",
		Bind:         &xmppclient.Bind2{Tag: "interop", EnableSM: true, Carbons: true},
		RequestToken: "HT-SHA-256-EXPR",
	})
	if err != nil {
		fail("SCRAM-SHA-256-PLUS login with Bind 2: %v", err)
		return
	}
	pass("SCRAM-SHA-256-PLUS login bound %s in %d round trips", res.AuthzID, res.RoundTrips)
	check(res.SSDPChecked, "XEP-0474 downgrade protection hash matches the advertised lists")
	check(res.SMID != "", "stream management enabled inline (Bind 2)")
	check(res.Token != "" && res.Expiry.After(time.Now()), "FAST token issued (expires %s)", res.Expiry.Format(time.RFC3339))
	if res.Token == "" || res.SMID == "" {
		return
	}
	if err := os.WriteFile(*tokFile, []byte(res.Token), 0o600); err != nil {
		fail("save token: %v", err)
	}
	full := res.AuthzID

	// 2. The connection is lost (no </stream:stream>); bob writes meanwhile.
	_ = a.Conn().Close()
	b, err := dial("bob")
	if err != nil {
		fail("bob connects: %v", err)
		return
	}
	defer b.Close()
	if _, err := b.LoginSASL2(xmppclient.SASL2Login{User: "bob", Password: *password, Mechanism: "SCRAM-SHA-1", UserAgentID: bobLaptop, Bind: &xmppclient.Bind2{Tag: "interop"}}); err != nil {
		fail("bob's SCRAM-SHA-1 login: %v", err)
		return
	}
	msg := xml.New("", "message").SetAttr("to", full).SetAttr("type", "chat").Append(xml.New("", "body").AppendText("sent while alice was away"))
	_ = b.Send(msg)
	if r, err := b.IQ("get", xml.New("urn:xmpp:ping", "ping")); err != nil || r.Attr("type") != "result" {
		fail("bob's ping: %v", err)
	}

	// 3. Reconnect with the token in one round trip, resuming inline.
	a2, err := dial("alice")
	if err != nil {
		fail("reconnect: %v", err)
		return
	}
	defer a2.Close()
	start := time.Now()
	res2, err := a2.LoginSASL2(xmppclient.SASL2Login{
		User: "alice", Token: res.Token, Mechanism: "HT-SHA-256-EXPR", UserAgentID: alicePhone, FASTCount: 1,
		ResumeID: res.SMID, ResumeH: 0, Bind: &xmppclient.Bind2{Tag: "interop", EnableSM: true},
	})
	if err != nil {
		fail("FAST login: %v", err)
		return
	}
	check(res2.RoundTrips == 1, "FAST login (HT-SHA-256-EXPR) in %d round trip(s), %s", res2.RoundTrips, time.Since(start).Round(time.Millisecond))
	check(res2.Resumed != nil && res2.AuthzID == full, "stream management session resumed inline as %s", res2.AuthzID)
	got, err := a2.Expect(func(el *xml.Element) bool { return el.Local == "message" })
	check(err == nil && got.ChildText("", "body") == "sent while alice was away", "message sent while away delivered after the resumption")

	// 4. A forged token and the same count again both fail.
	for _, tc := range []struct {
		name  string
		token string
		count int
	}{{"forged token", strings.Repeat("A", len(res.Token)), 0}, {"replayed count", res.Token, 1}} {
		c, err := dial("alice")
		if err != nil {
			fail("connect: %v", err)
			continue
		}
		_, err = c.LoginSASL2(xmppclient.SASL2Login{User: "alice", Token: tc.token, Mechanism: "HT-SHA-256-EXPR", UserAgentID: alicePhone, FASTCount: tc.count})
		var f *xmppclient.SASL2Failure
		check(errors.As(err, &f) && f.Condition == "not-authorized", "%s refused (%v)", tc.name, err)
		_ = c.Close()
	}
}

func check(ok bool, format string, a ...any) {
	if ok {
		pass(format, a...)
	} else {
		fail(format, a...)
	}
}
