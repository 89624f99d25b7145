package config

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLoginGateDefaults(t *testing.T) {
	c, err := Parse([]byte("[[host]]\ndomain = \"a.test\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	l := c.Limits
	if want := 8 * runtime.GOMAXPROCS(0); l.MaxConcurrentLogins != want || l.MaxConcurrentLoginsPerIP != max(1, want/2) || l.LoginSlotTimeout.Duration != 2*time.Second {
		t.Errorf("login gate defaults: %d, %d per address, %s", l.MaxConcurrentLogins, l.MaxConcurrentLoginsPerIP, l.LoginSlotTimeout.Duration)
	}
	// A pre-auth time shorter than the slot timeout's default lowers it:
	// a connection waiting for its address's share must not be closed
	// while it waits.
	c, err = Parse([]byte("[[host]]\ndomain = \"a.test\"\n[limits]\npreauth_timeout = \"1s\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Limits.LoginSlotTimeout.Duration != time.Second {
		t.Errorf("login_slot_timeout with preauth_timeout 1s: %s", c.Limits.LoginSlotTimeout.Duration)
	}
}

func TestLoginGateValidation(t *testing.T) {
	cases := map[string]string{
		"max_concurrent_logins = -1":                                  "limits.max_concurrent_logins",
		"max_concurrent_logins_per_ip = -1":                           "limits.max_concurrent_logins_per_ip",
		"max_concurrent_logins = 4\nmax_concurrent_logins_per_ip = 8": "exceeds limits.max_concurrent_logins",
		"login_slot_timeout = \"-1s\"":                                "must not be negative",
		"login_slot_timeout = \"1m\"":                                 "exceeds limits.preauth_timeout",
	}
	for lines, want := range cases {
		_, err := Parse([]byte("[[host]]\ndomain = \"a.test\"\n[limits]\n" + lines + "\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", lines, err, want)
		}
	}
}

// password_write (like room_write) needs a directory to write to.
func TestPasswordWriteNeedsDirectory(t *testing.T) {
	_, err := Parse([]byte("[[host]]\ndomain = \"a.test\"\n[directory]\npassword_write = true\n"))
	if err == nil || !strings.Contains(err.Error(), "password_write need directory.servers") {
		t.Errorf("password_write without servers: %v", err)
	}
}

// limits.park_idle_after: 2s by default, negative turns parking off, and
// a positive value under 100ms is refused.
func TestParkIdleAfter(t *testing.T) {
	parse := func(line string) (*Config, error) {
		return Parse([]byte("[[host]]\ndomain = \"a.test\"\n[limits]\n" + line + "\n"))
	}
	for line, want := range map[string]time.Duration{"": 2 * time.Second, `park_idle_after = "30s"`: 30 * time.Second, `park_idle_after = "-1s"`: -time.Second} {
		c, err := parse(line)
		if err != nil || c.Limits.ParkIdleAfter.Duration != want {
			t.Errorf("%q: %v, %v; want %s", line, c.Limits.ParkIdleAfter.Duration, err, want)
		}
	}
	if _, err := parse(`park_idle_after = "10ms"`); err == nil || !strings.Contains(err.Error(), "limits.park_idle_after") {
		t.Errorf("10ms: %v", err)
	}
}

// limits.release_memory_after: 30s by default, negative turns it off, and
// a positive value under 1s is refused.
func TestReleaseMemoryAfter(t *testing.T) {
	parse := func(line string) (*Config, error) {
		return Parse([]byte("[[host]]\ndomain = \"a.test\"\n[limits]\n" + line + "\n"))
	}
	for line, want := range map[string]time.Duration{"": 30 * time.Second, `release_memory_after = "5m"`: 5 * time.Minute, `release_memory_after = "-1s"`: -time.Second} {
		c, err := parse(line)
		if err != nil || c.Limits.ReleaseMemoryAfter.Duration != want {
			t.Errorf("%q: %v, %v; want %s", line, c.Limits.ReleaseMemoryAfter.Duration, err, want)
		}
	}
	if _, err := parse(`release_memory_after = "100ms"`); err == nil || !strings.Contains(err.Error(), "limits.release_memory_after") {
		t.Errorf("100ms: %v", err)
	}
}
