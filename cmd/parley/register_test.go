package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"parley/internal/testserver"
)

// reg runs "parley register" and returns its exit code and stdout.
func reg(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	rc := registerCommand(context.Background(), args, &out, &errb)
	t.Logf("parley register %v → %d: %q %q", args, rc, out.String(), errb.String())
	return rc, out.String()
}

// TestRegisterCommand replays seed 004's reguser session against Parley.
func TestRegisterCommand(t *testing.T) {
	ts := testserver.Start(t, `
[[host]]
domain = "localhost"
[host.registration]
enabled = true
fields = ["email", "name"]
`)
	addr := ts.StartTLSAddr()
	base := []string{"localhost:5222", "--insecure", "--address", addr}
	cases := []struct {
		args []string
		rc   int
		out  string
	}{
		{nil, 0, "[Enquiry] Fields: username password email name\n"},
		{[]string{"username=joseph", "password=spinach1", "name=Joseph Adams", "email=joseph@yak"}, 0, "[Attempt] (joseph) Successful registration\n"},
		{[]string{"username=joseph", "password=secret12", "name=Joseph Adams", "email=joseph@yak"}, 1, "[Attempt] (joseph) Error: 409 (Username Not Available)\n"},
		{[]string{"username=leslie", "email=lel@plevna.com", "name=Leslie Hawke"}, 1, "[Attempt] (leslie) Error: 406 (Not Acceptable)\n"},
	}
	for _, tc := range cases {
		rc, out := reg(t, append(append([]string(nil), base...), tc.args...)...)
		if rc != tc.rc || out != tc.out {
			t.Errorf("%v: got %d %q, want %d %q", tc.args, rc, out, tc.rc, tc.out)
		}
	}
	// Without --insecure the self-signed certificate is refused.
	if rc, _ := reg(t, "localhost", "--address", addr); rc != 1 {
		t.Errorf("unverified certificate accepted: rc %d", rc)
	}
	if rc, _ := reg(t, "localhost", "--insecure", "--address", addr, "bad field"); rc != 2 {
		t.Errorf("bad argument: rc %d", rc)
	}
}

// TestRegisterCommandDisabled: the XEP's service-unavailable shows as 503.
func TestRegisterCommandDisabled(t *testing.T) {
	ts := testserver.Start(t, "")
	rc, out := reg(t, "localhost", "--insecure", "--address", ts.StartTLSAddr())
	if rc != 1 || out != "[Enquiry] Error: 503 (Service Unavailable)\n" {
		t.Errorf("got %d %q", rc, out)
	}
}

// TestRegisterCommandErrorLineWhole: the reguser line is written whole
// before the server's explanation, so stdout and stderr sharing a terminal
// show "[Attempt] (joseph) Error: 409 (...)" on one line and the server's
// text on the next (issue 9: it used to tear the line in two).
func TestRegisterCommandErrorLineWhole(t *testing.T) {
	ts := testserver.Start(t, "[[host]]\ndomain = \"localhost\"\n[host.registration]\nenabled = true\n")
	args := []string{"localhost", "--insecure", "--address", ts.StartTLSAddr(), "username=joseph", "password=spinach1"}
	if rc, _ := reg(t, args...); rc != 0 {
		t.Fatalf("first registration: rc %d", rc)
	}
	var term bytes.Buffer // one writer for both, like a terminal
	rc := registerCommand(context.Background(), args, &term, &term)
	want := "[Attempt] (joseph) Error: 409 (Username Not Available)\n" +
		"parley register: server says: the username is not available\n"
	if rc != 1 || term.String() != want {
		t.Fatalf("got %d %q, want 1 %q", rc, term.String(), want)
	}
}

// TestRegisterCommandIPAsDomain: an IP address (here host:port) given where
// the domain belongs is named as such, not reported as the server being
// unreachable; the server's host-unknown is quoted as its answer.
func TestRegisterCommandIPAsDomain(t *testing.T) {
	ts := testserver.Start(t, "[[host]]\ndomain = \"localhost\"\n[host.registration]\nenabled = true\n")
	addr := ts.StartTLSAddr()
	var out, errb bytes.Buffer
	rc := registerCommand(context.Background(), []string{addr, "--insecure", "username=joseph", "password=spinach1"}, &out, &errb)
	msg := errb.String()
	t.Logf("stderr: %s", msg)
	if rc != 1 || out.Len() != 0 {
		t.Fatalf("rc %d, stdout %q", rc, out.String())
	}
	for _, want := range []string{
		"127.0.0.1 is an IP address where the server's XMPP domain is expected",
		"the server at " + addr + " answered: it does not serve the domain 127.0.0.1 (host-unknown",
		"parley register DOMAIN --address " + addr,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
	if strings.Contains(msg, "cannot") {
		t.Errorf("the server was reached, but stderr says %q", msg)
	}

	// A server that is not there is a connection failure, said as such.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	errb.Reset()
	if rc := registerCommand(context.Background(), []string{"localhost", "--address", closed}, &out, &errb); rc != 1 ||
		!strings.HasPrefix(errb.String(), "parley register: cannot connect to "+closed) {
		t.Errorf("unreachable server: rc %d, %q", rc, errb.String())
	}
}

// TestRegisterTarget: HOST[:PORT] to domain and address; what cannot be a
// domain is refused before anything connects.
func TestRegisterTarget(t *testing.T) {
	cases := []struct {
		arg, domain, addr, err string
	}{
		{"example.com", "example.com", "example.com:5222", ""},
		{"Example.COM:5223", "example.com", "Example.COM:5223", ""},
		{"127.0.0.1:5222", "127.0.0.1", "127.0.0.1:5222", ""},
		{"[::1]:5222", "[::1]", "[::1]:5222", ""},
		{"::1", "[::1]", "[::1]:5222", ""},
		{"example.com:xmpp", "", "", "is not a number"},
		{"example.com:0", "", "", "is not a number"},
		{"127.0.0.1:5222:1", "", "", "not an XMPP domain"},
		{":5222", "", "", "no XMPP domain"},
		{"a b", "", "", "not an XMPP domain"},
	}
	for _, tc := range cases {
		d, a, err := registerTarget(tc.arg)
		switch {
		case tc.err == "" && (err != nil || d != tc.domain || a != tc.addr):
			t.Errorf("%q: got %q %q %v, want %q %q", tc.arg, d, a, err, tc.domain, tc.addr)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: got %q %q %v, want an error with %q", tc.arg, d, a, err, tc.err)
		}
	}
	var out, errb bytes.Buffer
	if rc := registerCommand(context.Background(), []string{"127.0.0.1:5222:1"}, &out, &errb); rc != 2 || !strings.Contains(errb.String(), "not an XMPP domain") {
		t.Errorf("bad target: rc %d, %q", rc, errb.String())
	}
}

// TestUserCommands: add, passwd, list and del through run(), with the
// password policy and deletion of all data.
func TestUserCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "parley.toml")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg, []byte("data_dir = \"data\"\n[[host]]\ndomain = \"example.test\"\n[auth]\nmin_password_length = 10\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		args []string
		rc   int
	}{
		{[]string{"user", "add", "alice@example.test", "short", "--config", cfg}, 1},              // policy
		{[]string{"user", "add", "alice@example.test", "long-enough-pw", "--config", cfg}, 0},     // created
		{[]string{"user", "add", "alice@example.test", "long-enough-pw", "--config", cfg}, 1},     // exists
		{[]string{"user", "add", "bob@elsewhere.test", "long-enough-pw", "--config", cfg}, 1},     // not a host
		{[]string{"user", "add", "not a jid", "long-enough-pw", "--config", cfg}, 1},              // bad JID
		{[]string{"user", "passwd", "alice@example.test", "tiny", "--config", cfg}, 1},            // policy
		{[]string{"user", "passwd", "alice@example.test", "another-long-pw", "--config", cfg}, 0}, // changed
		{[]string{"user", "passwd", "nobody@example.test", "another-long-pw", "--config", cfg}, 1},
		{[]string{"user", "list", "--config", cfg}, 0},
		{[]string{"user", "del", "alice@example.test", "--config", cfg}, 0},
		{[]string{"user", "del", "alice@example.test", "--config", cfg}, 1},                   // gone
		{[]string{"user", "add", "alice@example.test", "long-enough-pw", "--config", cfg}, 0}, // name free again
	}
	for _, s := range steps {
		if rc := run(s.args); rc != s.rc {
			t.Fatalf("parley %s: rc %d, want %d", strings.Join(s.args, " "), rc, s.rc)
		}
	}
}
