package server_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"parley/internal/certs"
	"parley/internal/testserver"
)

func TestHealthAndMetrics(t *testing.T) {
	ts := testserver.Start(t, "[http]\nlisten = \"127.0.0.1:0\"\n")
	ts.AddUser(t, "alice", "password1")
	ts.Login(t, "alice", "password1", "r")
	base := "http://" + ts.HTTPAddr().String()
	get := func(path string) string {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	if got := get("/healthz"); strings.TrimSpace(got) != "ok" {
		t.Fatalf("healthz: %q", got)
	}
	wants := []string{
		`parley_sessions{host="localhost"} 1`,
		`parley_auth_successes_total{mechanism="PLAIN"} 1`,
		`parley_connections{kind="c2s"} 1`,
		`parley_storage_seconds_count{op="accounts.get"}`,
		`parley_stanzas_out_total{kind="iq"}`,
	}
	// The bind result goes out before the session gauge counts the
	// session: the client can be ahead of the metrics for a moment.
	var missing []string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		m := get("/metrics")
		missing = missing[:0]
		for _, want := range wants {
			if !strings.Contains(m, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	for _, want := range missing {
		t.Errorf("metrics lack %s", want)
	}
}

// TestVirtualHostsWithTheirOwnCertificates: each host presents its own
// certificate (chosen by SNI); a host without one gets the generated default;
// accounts are per host.
func TestVirtualHostsWithTheirOwnCertificates(t *testing.T) {
	dir := t.TempDir()
	crt, key, err := certs.GenerateSelfSigned([]string{"a.test"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "a.crt"), filepath.Join(dir, "a.key")
	if err := os.WriteFile(certFile, crt, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	ts := testserver.Start(t, fmt.Sprintf(`
[[host]]
domain = "a.test"
cert_file = %q
key_file = %q

[[host]]
domain = "b.test"
`, certFile, keyFile))
	ts.AddUser(t, "alice@a.test", "password1")
	ts.AddUser(t, "bob@b.test", "password1")

	for _, tc := range []struct{ domain, wantCN string }{{"a.test", "a.test"}, {"b.test", "b.test"}} {
		conn, err := tls.Dial("tcp", ts.DirectTLSAddr(), &tls.Config{ServerName: tc.domain, InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		leaf := conn.ConnectionState().PeerCertificates[0]
		_ = conn.Close()
		if err := leaf.VerifyHostname(tc.domain); err != nil {
			t.Errorf("SNI %s: certificate %v does not cover it: %v", tc.domain, leaf.DNSNames, err)
		}
	}
	a := ts.Login(t, "alice@a.test", "password1", "r")
	b := ts.Login(t, "bob@b.test", "password1", "r")
	if a.JID != "alice@a.test/r" || b.JID != "bob@b.test/r" {
		t.Fatalf("jids %s %s", a.JID, b.JID)
	}
	// Accounts are per host: alice does not exist on b.test.
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("b.test")
	c.StartTLS("b.test")
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBhc3N3b3JkMQ==</auth>")
	c.ExpectStanza("failure")
	// Messages cross hosts of the same server.
	a.Send("<message to='bob@b.test/r' type='chat' id='x1'><body>hi</body></message>")
	if el := b.ExpectStanza("message", "id=x1"); el.Attr("from") != "alice@a.test/r" {
		t.Fatalf("from %s", el.Attr("from"))
	}
}

// After a start with no traffic the usual series exist at zero, and a
// server without a directory exports no directory health.
func TestMetricsExistAtZero(t *testing.T) {
	ts := testserver.Start(t, "[http]\nlisten = \"127.0.0.1:0\"\n")
	resp, err := http.Get("http://" + ts.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := string(b)
	for _, want := range []string{`parley_sessions{host="localhost"} 0`, `parley_auth_failures_total{mechanism="PLAIN"} 0`, `parley_connections{kind="c2s"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(m, "parley_directory_up") {
		t.Error("parley_directory_up exported without a directory")
	}
}

// The public HTTPS listener serves what modules mount and host-meta, never
// /metrics (which stays on the loopback listener); with nothing to serve
// it is not bound at all.
func TestHTTPSFrontDoor(t *testing.T) {
	if ts := testserver.Start(t, ""); ts.HTTPSAddr() != nil {
		t.Fatalf("zero config bound HTTPS on %v", ts.HTTPSAddr())
	}
	ts := testserver.Start(t, `
[http]
listen = "127.0.0.1:0"
[https]
listen = "127.0.0.1:0"
websocket = true
[[host]]
domain = "localhost"
[host.upload]
enabled = true
`)
	c := ts.HTTPSClient(t)
	get := func(u string) (int, string) {
		resp, err := c.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("https://localhost/.well-known/host-meta"); code != 200 || !strings.Contains(body, "wss://localhost:") {
		t.Errorf("host-meta: %d %s", code, body)
	}
	if code, _ := get("https://localhost/metrics"); code != 404 {
		t.Errorf("/metrics on the public listener: %d", code)
	}
	resp, err := http.Get("http://" + ts.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `parley_connections{kind="https"}`) {
		t.Error("no https connection gauge")
	}
}

// Runtime profiles are served on the local HTTP listener only with
// [http] pprof = true: they show the server's internals.
func TestPprofOnlyWhenConfigured(t *testing.T) {
	for _, on := range []bool{false, true} {
		cfg := "[http]\nlisten = \"127.0.0.1:0\"\n"
		if on {
			cfg += "pprof = true\n"
		}
		ts := testserver.Start(t, cfg)
		resp, err := http.Get("http://" + ts.HTTPAddr().String() + "/debug/pprof/goroutine?debug=1")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		served := resp.StatusCode == 200 && strings.Contains(string(b), "goroutine profile")
		if served != on {
			t.Errorf("pprof = %v: status %d, profile served %v", on, resp.StatusCode, served)
		}
	}
}
