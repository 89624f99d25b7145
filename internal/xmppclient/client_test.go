package xmppclient

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"parley/internal/xmpp/stanza"
)

func TestPrepareDomain(t *testing.T) {
	cases := []struct {
		in, out, err string
	}{
		{"example.com", "example.com", ""},
		{"Example.COM.", "example.com", ""},
		{"127.0.0.1", "127.0.0.1", ""}, // RFC 7622 §3.2 allows IP literals
		{"[::1]", "[::1]", ""},
		{"", "", "no XMPP domain"},
		{"example.com:5222", "", "is host:port"},
		{"127.0.0.1:5222", "", "is host:port"},
		{"::1", "", "IPv6 address"},
		{"a b", "", "not an XMPP domain"},
		{"user@example.com", "", "not an XMPP domain"},
	}
	for _, tc := range cases {
		got, err := PrepareDomain(tc.in)
		switch {
		case tc.err == "" && (err != nil || got != tc.out):
			t.Errorf("%q: got %q, %v; want %q", tc.in, got, err, tc.out)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: got %q, %v; want an error with %q", tc.in, got, err, tc.err)
		}
	}
	for s, want := range map[string]bool{"127.0.0.1": true, "[::1]": true, "::1": true, "example.com": false, "1.2.3.4.example": false} {
		if IsIPLiteral(s) != want {
			t.Errorf("IsIPLiteral(%q) = %v", s, !want)
		}
	}
}

// TestDialRefusesHostPortDomain: a host:port domain fails before any
// connection is made (the address is never dialled).
func TestDialRefusesHostPortDomain(t *testing.T) {
	_, err := Dial(context.Background(), Options{Domain: "127.0.0.1:5222", Address: "192.0.2.1:1", Timeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "is host:port") {
		t.Fatalf("got %v", err)
	}
}

// TestDialStreamError: a server that answers the header with a stream error
// gives a *StreamError with its condition and text, not a connection error.
func TestDialStreamError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = bufio.NewReader(c).ReadString('>') // the client's header, roughly
		_, _ = c.Write([]byte(`<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x' version='1.0'>` +
			`<stream:error><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>` +
			`<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>this server does not serve 127.0.0.1</text></stream:error></stream:stream>`))
	}()
	_, err = Dial(context.Background(), Options{Domain: "127.0.0.1", Address: l.Addr().String(), Timeout: 5 * time.Second})
	var se *StreamError
	if !errors.As(err, &se) || se.Condition != stanza.StreamHostUnknown || se.Text != "this server does not serve 127.0.0.1" {
		t.Fatalf("got %#v", err)
	}
	if got, want := err.Error(), "stream error: host-unknown (this server does not serve 127.0.0.1)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
