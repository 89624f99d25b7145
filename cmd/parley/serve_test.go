package main

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"parley/internal/config"
	"parley/internal/testserver"
)

func TestRestartNeededNamesChangedSections(t *testing.T) {
	a, err := config.Parse([]byte("[log]\nlevel = \"info\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := config.Parse([]byte("[log]\nlevel = \"debug\"\n[auth]\nmin_password_length = 12\n[limits]\noffline_quota = 9\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := restartNeeded(a, a); len(got) != 0 {
		t.Fatalf("unchanged config reported %v", got)
	}
	if got, want := restartNeeded(a, b), []string{"limits", "auth"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v (the log level reloads and must not be listed)", got, want)
	}
}

// TestWelcomeListsClientProxiesApart: the banner shows only external
// components under the XEP-0114 listener; a client proxy is an IQ service
// answered by an account, listed as such (issue 9).
func TestWelcomeListsClientProxiesApart(t *testing.T) {
	ts := testserver.Start(t, `
[[host]]
domain = "example.test"
[component]
listen = "127.0.0.1:0"
[[component.service]]
domain = "gateway.example.test"
secret = "component-secret"
[[component.service]]
domain = "calc.example.test"
type = "client_proxy"
target_address = "calc-bot@example.test"
`)
	var b bytes.Buffer
	printWelcome(&b, ts.Config, ts.Server, "")
	out := b.String()
	t.Log(out)
	for _, want := range []string{
		"  components:  " + ts.ComponentAddr().String() + " (XEP-0114: gateway.example.test)\n",
		"  IQ service:  calc.example.test (client proxy, answered by calc-bot@example.test)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q", want)
		}
	}
}

// The banner says why the public HTTPS port is open and where uploads go.
func TestWelcomeListsHTTPS(t *testing.T) {
	ts := testserver.Start(t, `
[[host]]
domain = "example.test"
[host.upload]
enabled = true
[https]
listen = "127.0.0.1:0"
bosh = true
`)
	var b bytes.Buffer
	printWelcome(&b, ts.Config, ts.Server, "")
	out := b.String()
	for _, want := range []string{
		"  file upload: upload.example.test (XEP-0363)\n",
		"  https:       " + ts.HTTPSAddr().String() + " (public: file upload, BOSH, host-meta)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}
}
