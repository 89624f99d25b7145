package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// capture runs the CLI and returns its exit code and standard output.
func captureRun(t *testing.T, args ...string) (int, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	code := run(args)
	os.Stdout = old
	_ = w.Close()
	var buf bytes.Buffer
	_, _ = io.Copy(&buf, r)
	return code, buf.String()
}

func TestGroupCommands(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "parley.toml")
	if err := os.WriteFile(cfg, []byte("data_dir = \"data\"\n[[host]]\ndomain = \"example.test\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _ := captureRun(t, "user", "add", "alice@example.test", "password1", "--config", cfg); code != 0 {
		t.Fatal("user add failed")
	}
	if code, _ := captureRun(t, "group", "add", "staff", "alice@example.test", "--config", cfg); code != 0 {
		t.Fatal("group add failed")
	}
	if code, _ := captureRun(t, "group", "add", "staff", "nobody@example.test", "--config", cfg); code == 0 {
		t.Fatal("group add accepted an unknown account")
	}
	code, out := captureRun(t, "group", "list", "--config", cfg)
	if code != 0 || strings.TrimSpace(out) != "staff\talice@example.test" {
		t.Fatalf("list: %d %q", code, out)
	}
	if code, _ := captureRun(t, "group", "del", "staff", "alice@example.test", "--config", cfg); code != 0 {
		t.Fatal("group del failed")
	}
	if _, out := captureRun(t, "group", "list", "--config", cfg); strings.TrimSpace(out) != "" {
		t.Fatalf("still listed: %q", out)
	}
	// Removing a non-member is an error, not a "removed" that did nothing.
	if code, out := captureRun(t, "group", "del", "staff", "alice@example.test", "--config", cfg); code == 0 || strings.Contains(out, "removed") {
		t.Fatalf("del of a non-member: %d %q", code, out)
	}
}
