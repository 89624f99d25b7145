// Package xmppclient is a minimal XMPP client for Parley's command-line
// tools: it opens a client stream (RFC 6120 §4), negotiates STARTTLS when the
// server offers it (§5), and exchanges IQs before authentication — enough
// for in-band registration (XEP-0077) against any server. It reuses the
// server's own XML decoder and serializer, with their limits.
package xmppclient

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

const (
	nsTLS    = "urn:ietf:params:xml:ns:xmpp-tls"
	nsStream = "http://etherx.jabber.org/streams"
)

// Options configures Dial.
type Options struct {
	// Domain is the XMPP domain (the stream's 'to' and the certificate name),
	// a JID domainpart (RFC 7622 §3.2): never host:port.
	Domain string
	// Address is host:port to connect to.
	Address string
	// Insecure accepts any server certificate (self-signed test servers).
	Insecure bool
	// RequireTLS fails when the server does not offer STARTTLS.
	RequireTLS bool
	// Timeout bounds connecting and each exchange; default 10s.
	Timeout time.Duration
	// From is the stream header's 'from' (XEP-0388 and XEP-0484 clients
	// name the account they log in to); "" for none.
	From string
}

// Client is one open client stream.
type Client struct {
	opts     Options
	conn     net.Conn
	dec      *xml.Decoder
	Features *xml.Element
	// Encrypted is true once TLS is established.
	Encrypted bool
	seq       int
}

// PrepareDomain checks that s can be an XMPP domain, the domainpart of a
// JID (RFC 7622 §3.2: a DNS name or an IP literal, IPv6 in brackets), and
// returns its prepared form. host:port and a bare IPv6 address are refused
// with an error that says so, since the port (or the address to connect
// to) belongs in Options.Address.
func PrepareDomain(s string) (string, error) {
	if s == "" {
		return "", errors.New("no XMPP domain given")
	}
	if !strings.HasPrefix(s, "[") && strings.Contains(s, ":") {
		if _, err := netip.ParseAddr(s); err == nil {
			return "", fmt.Errorf("%q is an IPv6 address, not an XMPP domain (as a domain it is written [%s])", s, s)
		}
		if _, _, err := net.SplitHostPort(s); err == nil {
			return "", fmt.Errorf("%q is host:port, not an XMPP domain (the address to connect to is separate)", s)
		}
	}
	j, err := jid.New("", s, "")
	if err != nil {
		return "", fmt.Errorf("%q is not an XMPP domain: %w", s, err)
	}
	return j.Domain(), nil
}

// IsIPLiteral reports whether domain is an IP address (IPv4, or IPv6 with or
// without brackets) rather than a DNS name. RFC 7622 allows such domains,
// but servers almost never serve one: an IP address given where a domain is
// expected is usually the server's address.
func IsIPLiteral(domain string) bool {
	s := strings.TrimSuffix(strings.TrimPrefix(domain, "["), "]")
	_, err := netip.ParseAddr(s)
	return err == nil
}

// StreamError is a <stream:error/> the server sent (RFC 6120 §4.9): it was
// reached and refused the stream.
type StreamError struct {
	Condition stanza.StreamCondition
	// Text is the server's human-readable <text/>, if any.
	Text string
}

func (e *StreamError) Error() string {
	if e.Text != "" {
		return fmt.Sprintf("stream error: %s (%s)", e.Condition, e.Text)
	}
	return "stream error: " + string(e.Condition)
}

// Dial connects, opens the stream and negotiates STARTTLS when offered.
// Options.Domain is checked with PrepareDomain before connecting. A
// failure to connect is a *net.OpError; a refusal by the server a
// *StreamError.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	domain, err := PrepareDomain(opts.Domain)
	if err != nil {
		return nil, err
	}
	opts.Domain = domain
	d := net.Dialer{Timeout: opts.Timeout}
	conn, err := d.DialContext(ctx, "tcp", opts.Address)
	if err != nil {
		return nil, err
	}
	c := &Client{opts: opts, conn: conn}
	if err := c.open(); err != nil {
		conn.Close()
		return nil, err
	}
	if c.Features.Child(nsTLS, "starttls") != nil {
		if err := c.startTLS(); err != nil {
			c.conn.Close()
			return nil, err
		}
	} else if opts.RequireTLS {
		conn.Close()
		return nil, errors.New("the server does not offer STARTTLS")
	}
	return c, nil
}

// open sends the stream header and reads the server's header and features.
func (c *Client) open() error {
	_ = c.conn.SetDeadline(time.Now().Add(c.opts.Timeout))
	hdr := xml.StreamHeaderBytes(xml.StreamHeader{
		Space: nsStream, Local: "stream", DefaultNS: stanza.NSClient,
		To: c.opts.Domain, From: c.opts.From, Version: "1.0",
	})
	if _, err := c.conn.Write(hdr); err != nil {
		return err
	}
	c.dec = xml.NewDecoder(c.conn, xml.DefaultLimits())
	c.dec.SetContentNamespace(stanza.NSClient)
	if _, err := c.dec.ReadHeader(); err != nil {
		return fmt.Errorf("stream header: %w", err)
	}
	el, err := c.dec.Next()
	if err != nil {
		return fmt.Errorf("stream features: %w", err)
	}
	if el.Space == nsStream && el.Local == "error" {
		return streamError(el)
	}
	if el.Space != nsStream || el.Local != "features" {
		return fmt.Errorf("expected stream features, got %s", el.Local)
	}
	c.Features = el
	return nil
}

// startTLS upgrades the stream (RFC 6120 §5.4) and verifies the certificate
// for the domain unless Insecure.
func (c *Client) startTLS() error {
	if err := c.write(xml.New(nsTLS, "starttls")); err != nil {
		return err
	}
	el, err := c.dec.Next()
	if err != nil {
		return err
	}
	if el.Space == nsStream && el.Local == "error" {
		return streamError(el)
	}
	if el.Local != "proceed" {
		return errors.New("the server refused STARTTLS")
	}
	tc := tls.Client(c.conn, &tls.Config{
		// An IPv6 domain is checked against the certificate's IP
		// addresses, which crypto/tls does for a ServerName without
		// brackets.
		ServerName:         strings.TrimSuffix(strings.TrimPrefix(c.opts.Domain, "["), "]"),
		InsecureSkipVerify: c.opts.Insecure,
		MinVersion:         tls.VersionTLS12,
	})
	_ = tc.SetDeadline(time.Now().Add(c.opts.Timeout))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	c.conn = tc
	c.Encrypted = true
	return c.open()
}

func (c *Client) write(el *xml.Element) error {
	var buf bytes.Buffer
	_, _ = el.WriteToNS(&buf, stanza.NSClient)
	_ = c.conn.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
	_, err := c.conn.Write(buf.Bytes())
	return err
}

// IQ sends an IQ of type typ with payload and returns the reply with the
// same id (other stanzas are skipped).
func (c *Client) IQ(typ string, payload *xml.Element) (*xml.Element, error) {
	c.seq++
	id := "parley-" + strconv.Itoa(c.seq)
	iq := xml.New("", "iq").SetAttr("type", typ).SetAttr("id", id).SetAttr("to", c.opts.Domain)
	if payload != nil {
		iq.Append(payload)
	}
	if err := c.write(iq); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(c.opts.Timeout)
	for {
		_ = c.conn.SetReadDeadline(deadline)
		el, err := c.dec.Next()
		if err != nil {
			return nil, err
		}
		if el.Space == nsStream && el.Local == "error" {
			return nil, streamError(el)
		}
		if el.Space == "" && el.Local == "iq" && el.Attr("id") == id {
			return el, nil
		}
	}
}

// Close ends the stream and the connection.
func (c *Client) Close() error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = c.conn.Write([]byte(xml.StreamClose))
	return c.conn.Close()
}

// streamError turns a received <stream:error/> into a *StreamError.
func streamError(el *xml.Element) error {
	cond, text, ok := stanza.ParseStreamError(el)
	if !ok {
		cond = stanza.StreamUndefinedCondition
	}
	return &StreamError{Condition: cond, Text: text}
}
