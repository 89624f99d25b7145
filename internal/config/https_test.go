package config

import (
	"strings"
	"testing"
	"time"
)

func TestHTTPSDefaults(t *testing.T) {
	c, err := Parse([]byte("[[host]]\ndomain = \"A.test\"\n[host.upload]\nenabled = true\n[[host]]\ndomain = \"b.test\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	h := c.HTTPS
	if *h.Listen != ":5443" || h.PlainListen != "" || len(h.TrustedProxies) != 0 || h.WebSocket || h.BOSH ||
		h.ReadHeaderTimeout.Duration != 10*time.Second || h.ReadTimeout.Duration != 30*time.Second ||
		h.WriteTimeout.Duration != 30*time.Second || h.IdleTimeout.Duration != 2*time.Minute ||
		h.MaxHeaderBytes != 32768 || h.MaxConcurrentStreams != 100 {
		t.Errorf("[https] defaults: %+v", h)
	}
	a, b := c.Hosts[0].Upload, c.Hosts[1].Upload
	if !a.Enabled || b.Enabled || a.Domain != "upload.a.test" || b.Domain != "upload.b.test" || a.Name != "HTTP File Upload" {
		t.Errorf("per-host upload: %+v %+v", a, b)
	}
	if a.MaxFileSize != 50<<20 || a.QuotaBytes != 1<<30 || a.QuotaFiles != 1000 || a.MaxTotalBytes != 10<<30 ||
		a.ExpireAfter.Duration != 30*24*time.Hour || a.SlotTimeout.Duration != 5*time.Minute || a.PurgeInterval.Duration != time.Hour {
		t.Errorf("upload defaults: %+v", a)
	}
	if !c.ServesHTTPS() {
		t.Error("an upload host does not count as served")
	}
	if d := Default(); d.ServesHTTPS() {
		t.Error("the zero config serves HTTPS")
	}
}

func TestTrustedProxyPrefixes(t *testing.T) {
	c, err := Parse([]byte("[https]\nplain_listen = \"127.0.0.1:5280\"\ntrusted_proxies = [\"10.1.2.3\", \"192.168.0.0/16\", \"::ffff:10.9.9.9\", \"fd00::1/64\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.HTTPS.TrustedProxyPrefixes()
	want := []string{"10.1.2.3/32", "192.168.0.0/16", "10.9.9.9/32", "fd00::/64"}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d: %s, want %s", i, got[i], want[i])
		}
	}
}

func TestHTTPSValidation(t *testing.T) {
	cases := map[string]string{
		"listen address":             "[https]\nlisten = \"5443\"\n",
		"plain without proxies":      "[https]\nplain_listen = \"127.0.0.1:5280\"\n",
		"bad proxy":                  "[https]\nplain_listen = \"127.0.0.1:5280\"\ntrusted_proxies = [\"proxy.example\"]\n",
		"short timeout":              "[https]\nread_header_timeout = \"10ms\"\n",
		"tiny headers":               "[https]\nmax_header_bytes = 100\n",
		"public url not https":       "[[host]]\ndomain = \"a.test\"\n[host.http]\npublic_url = \"http://a.test\"\n",
		"public url with query":      "[[host]]\ndomain = \"a.test\"\n[host.http]\npublic_url = \"https://a.test/?x=1\"\n",
		"proxy only, no public url":  "[https]\nlisten = \"\"\nplain_listen = \"127.0.0.1:5280\"\ntrusted_proxies = [\"127.0.0.1\"]\n[[host]]\ndomain = \"a.test\"\n[host.upload]\nenabled = true\n",
		"upload without listener":    "[https]\nlisten = \"\"\n[[host]]\ndomain = \"a.test\"\n[host.upload]\nenabled = true\n",
		"upload on a host domain":    "[[host]]\ndomain = \"a.test\"\n[host.upload]\nenabled = true\ndomain = \"b.test\"\n[[host]]\ndomain = \"b.test\"\n",
		"upload on the chat service": "[[host]]\ndomain = \"a.test\"\n[host.upload]\nenabled = true\ndomain = \"conference.a.test\"\n",
		"quota below file size":      "[[host]]\ndomain = \"a.test\"\n[host.upload]\nenabled = true\nmax_file_size = 1000\nquota_bytes = 10\n",
		"negative size":              "[[host]]\ndomain = \"a.test\"\n[host.upload]\nenabled = true\nmax_file_size = -1\n",
		"expiry within slot time":    "[[host]]\ndomain = \"a.test\"\n[host.upload]\nenabled = true\nexpire_after = \"5m\"\nslot_timeout = \"10m\"\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(text)); err == nil {
				t.Fatalf("accepted:\n%s", text)
			}
		})
	}
	// Behind a proxy only, with the URL the proxy serves.
	ok := "[https]\nlisten = \"\"\nplain_listen = \"127.0.0.1:5280\"\ntrusted_proxies = [\"127.0.0.1\"]\n" +
		"[[host]]\ndomain = \"a.test\"\n[host.http]\npublic_url = \"https://xmpp.a.test/parley/\"\n[host.upload]\nenabled = true\n"
	c, err := Parse([]byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Hosts[0].HTTP.PublicURL; got != "https://xmpp.a.test/parley" {
		t.Errorf("public_url %q: the trailing slash stays", got)
	}
	// An upload domain that is also a host is reported under the upload's key.
	_, err = Parse([]byte("[[host]]\ndomain = \"a.test\"\n[host.upload]\nenabled = true\n[[host]]\ndomain = \"upload.a.test\"\n"))
	if err == nil || !strings.Contains(err.Error(), "host[0].upload") {
		t.Errorf("upload domain that is a host: %v", err)
	}
}
