package config

import (
	"strings"
	"testing"
	"time"
)

func TestConsoleDefaults(t *testing.T) {
	c, err := Parse([]byte(""))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Console
	if k.Admin || k.Account || k.IdleTimeout.Duration != 30*time.Minute || k.MaxAge.Duration != 8*time.Hour ||
		k.MaxSessions != 10000 || k.LogLines != 1000 || k.PageSize != 50 || k.MaxArchiveExport != 100000 {
		t.Errorf("[console] defaults: %+v", k)
	}
	if p := c.Auth.Password; p.RequireClasses != 0 || p.History != 0 || p.MaxLength != 1024 {
		t.Errorf("[auth.password] defaults: %+v", p)
	}
	if c.ServesHTTPS() {
		t.Error("the console is off by default but counts as served")
	}
	c2, err := Parse([]byte("[console]\naccount = true\n"))
	if err != nil || !c2.ServesHTTPS() {
		t.Errorf("a console config does not count as served: %v", err)
	}
}

func TestConsoleValidation(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[console]\nidle_timeout = \"10s\"\n", "idle_timeout"},
		{"[console]\nidle_timeout = \"2h\"\nmax_age = \"1h\"\n", "max_age"},
		{"[console]\nlog_lines = 0\nmax_sessions = -1\n", "log_lines"},
		{"[console]\npage_size = 5000\n", "page_size"},
		{"[console]\nadmin = true\n[https]\nlisten = \"\"\n", "[https] listener, which is off"},
		{"[auth.password]\nrequire_classes = 5\n", "require_classes"},
		{"[auth.password]\nhistory = 51\n", "history"},
		{"[auth]\nmin_password_length = 12\n[auth.password]\nmax_length = 10\n", "max_length"},
	} {
		_, err := Parse([]byte(tc.text))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error naming %s", tc.text, err, tc.want)
		}
	}
}
