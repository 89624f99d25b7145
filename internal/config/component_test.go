package config

import (
	"strings"
	"testing"
)

func TestComponentDefaults(t *testing.T) {
	c, err := Parse([]byte(`
[[host]]
domain = "Example.COM"
[[component.service]]
domain = "GW.example.com."
secret = "s"
[[component.service]]
domain = "calc.example.com"
type = "client_proxy"
target_address = "bot@example.com"
[proxy65]
enabled = true
`))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Component.Listen != "127.0.0.1:5347" || c.Component.Services[0].Type != ComponentExternal ||
		c.Component.Services[0].Domain != "gw.example.com" || !*c.Component.Services[0].Public {
		t.Fatalf("component defaults: %+v", c.Component)
	}
	if sv := c.Component.Services[1]; sv.MaxPending != 256 || sv.Timeout.Duration == 0 {
		t.Fatalf("client_proxy defaults: %+v", sv)
	}
	if p := c.Proxy65; p.Domain != "proxy.example.com" || p.Listen != ":7777" || p.MaxTransferBytes == 0 || p.ActivationTimeout.Duration == 0 {
		t.Fatalf("proxy65 defaults: %+v", p)
	}
	if got := c.ParentHost("a.b.example.com"); got != "example.com" {
		t.Fatalf("ParentHost = %q", got)
	}
}

func TestComponentValidation(t *testing.T) {
	_, err := Parse([]byte(`
[[host]]
domain = "example.com"
[component]
listen = "nope"
[[component.service]]
domain = "gw.example.com"
[[component.service]]
domain = "gw.example.com"
secret = "x"
[[component.service]]
domain = "example.com"
secret = "x"
[[component.service]]
domain = "p.example.com"
type = "client_proxy"
target_address = "example.com/res"
[[component.service]]
domain = "q.example.com"
type = "carrier_pigeon"
[proxy65]
enabled = true
domain = "example.com"
public_port = 70000
`))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		"component.listen", "service[0].secret: required", "used twice", "is a virtual host",
		"target_address", "carrier_pigeon", "proxy65.domain", "proxy65.public_port",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in: %v", want, err)
		}
	}
}
