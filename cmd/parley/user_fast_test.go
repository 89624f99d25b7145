package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"parley/internal/config"
	"parley/internal/server"
	"parley/internal/storage"
)

func TestUserFASTCommands(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "parley.toml")
	if err := os.WriteFile(cfgPath, []byte("data_dir = \"data\"\n[[host]]\ndomain = \"example.test\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := captureRun(t, "user", "add", "alice@example.test", "password1", "--config", cfgPath); code != 0 {
		t.Fatal("user add failed")
	}
	// Tokens as the server would have issued them.
	issue := func(ids ...string) {
		t.Helper()
		cfg, err := config.Load(cfgPath)
		if err != nil {
			t.Fatal(err)
		}
		st, err := server.OpenStore(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		for i, id := range ids {
			now := time.Now().Add(time.Duration(i) * time.Second)
			err := st.FAST().Issue(context.Background(), "example.test", "alice", storage.FASTToken{
				ID: id, ClientID: "client-" + id, Software: "App", Device: "Phone " + id, Mechanism: "HT-SHA-256-NONE",
				Hash: []byte("0123456789abcdef0123456789abcdef"), IssuedAt: now, ExpiresAt: now.Add(time.Hour)}, 20)
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	issue("aaa111", "bbb222", "ccc333")

	code, out := captureRun(t, "user", "fast", "list", "alice@example.test", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "aaa111") || !strings.Contains(out, "App on Phone bbb222") || strings.Count(out, "HT-SHA-256-NONE") != 3 {
		t.Fatalf("list: %d %q", code, out)
	}
	if strings.Contains(out, "0123456789abcdef") {
		t.Fatal("list shows the stored hash")
	}
	if code, _ := captureRun(t, "user", "fast", "revoke", "alice@example.test", "bbb222", "--config", cfgPath); code != 0 {
		t.Fatal("revoke one failed")
	}
	if code, _ := captureRun(t, "user", "fast", "revoke", "alice@example.test", "bbb222", "--config", cfgPath); code == 0 {
		t.Fatal("revoking an unknown token succeeded")
	}
	_, out = captureRun(t, "user", "fast", "list", "alice@example.test", "--config", cfgPath)
	if strings.Contains(out, "bbb222") || !strings.Contains(out, "ccc333") {
		t.Fatalf("after revoking one: %q", out)
	}
	if code, out := captureRun(t, "user", "fast", "revoke", "alice@example.test", "all", "--config", cfgPath); code != 0 || !strings.Contains(out, "revoked 2") {
		t.Fatalf("revoke all: %d %q", code, out)
	}
	issue("ddd444")
	if code, _ := captureRun(t, "user", "passwd", "alice@example.test", "password2", "--config", cfgPath); code != 0 {
		t.Fatal("passwd failed")
	}
	if _, out := captureRun(t, "user", "fast", "list", "alice@example.test", "--config", cfgPath); !strings.Contains(out, "no FAST tokens") {
		t.Fatalf("tokens survived a password change: %q", out)
	}
	for _, bad := range [][]string{
		{"user", "fast", "list"},
		{"user", "fast", "list", "not a jid"},
		{"user", "fast", "list", "alice@elsewhere.test"},
		{"user", "fast", "frob", "alice@example.test"},
		{"user", "fast", "revoke", "alice@example.test", "a", "b"},
	} {
		if code, _ := captureRun(t, append(bad, "--config", cfgPath)...); code == 0 {
			t.Errorf("%v succeeded", bad)
		}
	}
}
