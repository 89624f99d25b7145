package sasl

import (
	"crypto/sha1"
	"strings"
	"testing"

	"github.com/xdg-go/scram"
)

// TestSSDPVector is the XEP-0474 §5.3 example: SHA-1 over
// "SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point".
func TestSSDPVector(t *testing.T) {
	a := &Advertised{Mechanisms: []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"}, ChannelBindings: []string{"tls-server-end-point", "tls-exporter"}}
	if got := a.ssdp(sha1.New); got != "G6k/rBLDqgOhRRaCuuatSDFkJ08=" {
		t.Fatalf("ssdp = %s", got)
	}
	// No XEP-0440 list: no 0x1F separator at all.
	b := &Advertised{Mechanisms: []string{"SCRAM-SHA-1"}}
	c := &Advertised{Mechanisms: []string{"SCRAM-SHA-1"}, ChannelBindings: []string{}}
	if b.ssdp(sha1.New) == c.ssdp(sha1.New) {
		t.Fatal("an empty announced list must differ from none")
	}
}

func TestSCRAMSendsSSDPAndSignsIt(t *testing.T) {
	env := testEnv(t)
	env.Advertised = &Advertised{Mechanisms: []string{SCRAMSHA256, SCRAMSHA1, Plain}}
	tr := runFull(t, env, SCRAMSHA256, testUser, testPassword)
	if tr.err != nil || tr.clientErr != nil {
		t.Fatalf("exchange with h: %v %v", tr.err, tr.clientErr)
	}
	h, ok := strings.CutPrefix(tr.serverFirst[strings.LastIndex(tr.serverFirst, ","):], ",h=")
	if !ok || h != env.Advertised.ssdp(scram.SHA256) {
		t.Fatalf("server-first %q lacks the right h", tr.serverFirst)
	}
	// Without Advertised, no h.
	tr = runFull(t, testEnv(t), SCRAMSHA256, testUser, testPassword)
	if strings.Contains(tr.serverFirst, ",h=") || tr.err != nil {
		t.Fatalf("server-first %q (%v)", tr.serverFirst, tr.err)
	}
}

// TestSCRAMSSDPTampered: a man in the middle who rewrites h (to hide the
// mechanisms he removed) breaks the proof, since the client signs the
// server-first-message it saw.
func TestSCRAMSSDPTampered(t *testing.T) {
	env := testEnv(t)
	env.Advertised = &Advertised{Mechanisms: []string{SCRAMSHA256, SCRAMSHA1}}
	sess := mustStart(t, SCRAMSHA256, env)
	cl, _ := scram.SHA256.NewClient(testUser, testPassword, "")
	cc := cl.NewConversation()
	c1, _ := cc.Step("")
	s1, _, err := sess.Next([]byte(c1))
	if err != nil {
		t.Fatal(err)
	}
	forged := &Advertised{Mechanisms: []string{SCRAMSHA1}}
	i := strings.LastIndex(string(s1), ",h=")
	tampered := string(s1[:i]) + ",h=" + forged.ssdp(scram.SHA256)
	c2, err := cc.Step(tampered)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sess.Next([]byte(c2)); condition(err) != CondNotAuthorized {
		t.Fatalf("tampered h accepted: %v", err)
	}
}
