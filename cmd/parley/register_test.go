package main

import (
	"bytes"
	"context"
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
