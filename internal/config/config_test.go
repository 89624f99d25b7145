package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c := Default()
	if len(c.Hosts) != 1 || c.Hosts[0].Domain != "localhost" {
		t.Fatalf("default host: %+v", c.Hosts)
	}
	if !*c.C2S.RequireTLS || c.Storage != "sqlite" || c.DataDir != "data" {
		t.Fatalf("defaults: %+v", c)
	}
	if c.Limits.MaxStanzaBytes != 256*1024 || c.Limits.PreAuthTimeout.Duration != 30*time.Second {
		t.Fatalf("limits: %+v", c.Limits)
	}
	if len(c.validate()) != 0 {
		t.Fatalf("defaults do not validate: %v", c.validate())
	}
}

func TestUnknownKeysAreNamed(t *testing.T) {
	_, err := Parse([]byte("[limits]\nmax_stanza_bytez = 5\n[c2s]\nlisten = [':5222']\nbogus = 1\n"))
	if err == nil {
		t.Fatal("unknown keys accepted")
	}
	for _, k := range []string{"limits.max_stanza_bytez", "c2s.bogus"} {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error %q does not name %s", err, k)
		}
	}
}

func TestValidationReportsEveryProblem(t *testing.T) {
	cases := map[string]string{
		"bad storage":          "storage = \"mongo\"\n",
		"postgres needs dsn":   "storage = \"postgres\"\n",
		"log level":            "[log]\nlevel = \"loud\"\n",
		"duplicate host":       "[[host]]\ndomain = \"a.test\"\n[[host]]\ndomain = \"A.test\"\n",
		"bad domain":           "[[host]]\ndomain = \"a@b\"\n",
		"cert without key":     "[[host]]\ndomain = \"a.test\"\ncert_file = \"x.crt\"\n",
		"admin not bare":       "[[host]]\ndomain = \"a.test\"\nadmins = [\"a.test\"]\n",
		"listen address":       "[c2s]\nlisten = [\"5222\"]\n",
		"tls version":          "[tls]\nmin_version = \"1.0\"\n",
		"tiny stanza limit":    "[limits]\nmax_stanza_bytes = 100\n",
		"tiny attribute limit": "[limits]\nmax_attrs = 3\n",
		"tiny depth limit":     "[limits]\nmax_depth = 2\n",
		"burst below stanza":   "[limits]\nrate_burst_bytes = 5000\n",
		"negative quota":       "[limits]\noffline_quota = -1\n",
		"csi above output":     "[limits]\noutput_queue = 50\ncsi_queue = 60\n",
		"negative csi queue":   "[limits]\ncsi_queue = -1\n",
		"short preauth":        "[limits]\npreauth_timeout = \"10ms\"\n",
		"weak scram":           "[auth]\nscram_iterations = 1000\n",
		"bad duration":         "[limits]\npreauth_timeout = \"soon\"\n",
		"archive default":      "[[host]]\ndomain = \"a.test\"\n[host.archive]\ndefault = \"sometimes\"\n",
		"archive page size":    "[[host]]\ndomain = \"a.test\"\n[host.archive]\nmax_page_size = 5000\n",
		"archive cap":          "[[host]]\ndomain = \"a.test\"\n[host.archive]\nmax_messages = -2\n",
		"archive purge":        "[[host]]\ndomain = \"a.test\"\n[host.archive]\npurge_interval = \"1ms\"\n",
		"fast lifetime short":  "[auth.fast]\nlifetime = \"10s\"\n",
		"fast lifetime long":   "[auth.fast]\nlifetime = \"9000h\"\n",
		"fast one token":       "[auth.fast]\nmax_per_account = 1\n",
		"fast without sasl2":   "[auth]\nsasl2 = false\n[auth.fast]\nenabled = true\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(text)); err == nil {
				t.Fatalf("accepted:\n%s", text)
			}
		})
	}
	// Several problems are reported together, not one at a time.
	_, err := Parse([]byte("storage = \"mongo\"\n[log]\nlevel = \"loud\"\n"))
	if err == nil || !strings.Contains(err.Error(), "storage") || !strings.Contains(err.Error(), "log.level") {
		t.Fatalf("want both problems, got %v", err)
	}
}

func TestLoadResolvesPathsRelativeToTheFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "parley.toml")
	if err := os.WriteFile(p, []byte("data_dir = \"state\"\n[[host]]\ndomain = \"Example.COM.\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != filepath.Join(dir, "state") {
		t.Fatalf("data_dir %q", c.DataDir)
	}
	if c.SQLitePath != filepath.Join(dir, "state", "parley.db") {
		t.Fatalf("sqlite_path %q", c.SQLitePath)
	}
	if c.Hosts[0].Domain != "example.com" {
		t.Fatalf("domain not normalised: %q", c.Hosts[0].Domain)
	}
	if c.HostByDomain("example.com") == nil {
		t.Fatal("HostByDomain")
	}
}

func TestEncodeRoundTrips(t *testing.T) {
	c := Default()
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(b)
	if err != nil {
		t.Fatalf("effective config does not parse back: %v\n%s", err, b)
	}
	if c2.Limits != c.Limits || c2.Hosts[0].Domain != c.Hosts[0].Domain {
		t.Fatalf("round trip changed the config")
	}
}

func TestFASTFollowsSASL2(t *testing.T) {
	c, err := Parse([]byte("[auth]\nsasl2 = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Auth.FAST.Enabled {
		t.Fatal("FAST on by default with SASL2 off")
	}
	c, err = Parse(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !*c.Auth.SASL2 || !*c.Auth.FAST.Enabled || c.Auth.FAST.Lifetime.Duration != 21*24*time.Hour || c.Auth.FAST.MaxPerAccount != 20 {
		t.Fatalf("defaults %+v sasl2 %v", c.Auth.FAST, *c.Auth.SASL2)
	}
}
