package config

import (
	"strings"
	"testing"
	"time"
)

func TestRegistrationDefaults(t *testing.T) {
	c, err := Parse([]byte("[[host]]\ndomain = \"a.test\"\n[[host]]\ndomain = \"b.test\"\n[host.registration]\nenabled = true\nfields = [\"email\", \"name\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Hosts[0].Registration, c.Hosts[1].Registration
	if a.Enabled || !b.Enabled || len(b.Fields) != 2 || b.Fields[0] != "email" {
		t.Errorf("per-host registration: %+v %+v", a, b)
	}
	for _, r := range []Registration{a, b} {
		if r.AllowWithoutTLS || r.NotifyAdmins || r.MaxPerIP != 5 || r.Window.Duration != time.Hour ||
			r.MaxTrackedIPs != 10000 || r.MaxFieldBytes != 1024 || r.Instructions == "" {
			t.Errorf("defaults: %+v", r)
		}
	}
}

func TestRegistrationValidation(t *testing.T) {
	cases := map[string]string{
		"fields = [\"password2\"]":        "not a XEP-0077 field",
		"fields = [\"email\", \"email\"]": "listed twice",
		"fields = [\"username\"]":         "not a XEP-0077 field",
		"max_per_ip = -1":                 "must be positive",
		"window = \"-1h\"":                "must be positive",
		"captcha = true":                  "unknown key",
	}
	for line, want := range cases {
		_, err := Parse([]byte("[[host]]\ndomain = \"a.test\"\n[host.registration]\n" + line + "\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", line, err, want)
		}
	}
}
