package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
	"parley/internal/xmppclient"
)

const nsRegister = "jabber:iq:register"

// cmdRegister is seed 004's reguser: an in-band registration (XEP-0077)
// inquiry when given only a server, an attempt when given field=value pairs.
func cmdRegister(args []string) int {
	return registerCommand(context.Background(), args, os.Stdout, os.Stderr)
}

func registerUsage(w io.Writer) {
	fmt.Fprint(w, `usage:
  inquiry: parley register HOST[:PORT] [--insecure] [--address IP:PORT] [--plaintext]
  attempt: parley register HOST[:PORT] [flags] field1=value1 [fieldN=valueN ...]
`)
}

func registerCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("register", flag.ContinueOnError)
	fs.SetOutput(stderr)
	insecure := fs.Bool("insecure", false, "accept any server certificate (self-signed test servers)")
	address := fs.String("address", "", "connect to IP[:PORT] instead of HOST:PORT (no DNS; the port defaults to HOST's)")
	plaintext := fs.Bool("plaintext", false, "continue when the server does not offer STARTTLS (the password travels in clear)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) == 0 {
		registerUsage(stderr)
		return 2
	}
	domain, addr, err := registerTarget(pos[0])
	if err != nil {
		fmt.Fprintln(stderr, "parley register:", err)
		registerUsage(stderr)
		return 2
	}
	// The fields, in the order given (seed: username=joseph 'name=Joseph Adams').
	var query *xml.Element
	username := ""
	if fields := pos[1:]; len(fields) > 0 {
		query = xml.New(nsRegister, "query")
		for _, f := range fields {
			name, value, ok := strings.Cut(f, "=")
			if !ok || !validFieldName(name) {
				fmt.Fprintf(stderr, "parley register: %q is not field=value\n", f)
				return 2
			}
			if name == "username" {
				username = value
			}
			query.Append(xml.New(nsRegister, name).AppendText(value))
		}
	}
	if *address != "" {
		// An address without a port takes HOST's (5222 by default).
		if _, _, err := net.SplitHostPort(*address); err == nil {
			addr = *address
		} else {
			_, port, _ := net.SplitHostPort(addr)
			addr = net.JoinHostPort(strings.TrimSuffix(strings.TrimPrefix(*address, "["), "]"), port)
		}
	}
	c, err := xmppclient.Dial(ctx, xmppclient.Options{
		Domain: domain, Address: addr, Insecure: *insecure, RequireTLS: !*plaintext,
	})
	if err != nil {
		fmt.Fprintln(stderr, "parley register:", dialFailure(domain, addr, err))
		return 1
	}
	defer c.Close()

	// Each result is one whole line on stdout, written at once; the
	// server's explanation (an error's <text/>) follows it on stderr, so
	// the two never interleave on a terminal.
	prefix, typ, payload := "[Enquiry] ", stanza.TypeGet, xml.New(nsRegister, "query")
	if query != nil {
		prefix, typ, payload = "[Attempt] ", stanza.TypeSet, query
		if username != "" {
			prefix += "(" + username + ") "
		}
	}
	res, err := c.IQ(typ, payload)
	if err != nil {
		fmt.Fprintln(stdout, prefix+"Error: "+err.Error())
		return 1
	}
	if res.Attr("type") != stanza.TypeResult {
		line, text := describeError(res)
		fmt.Fprintln(stdout, prefix+line)
		if text != "" {
			fmt.Fprintln(stderr, "parley register: server says:", text)
		}
		return 1
	}
	if query == nil {
		fmt.Fprintln(stdout, prefix+"Fields: "+strings.Join(inquiryFields(res), " "))
	} else {
		fmt.Fprintln(stdout, prefix+"Successful registration")
	}
	return 0
}

// registerTarget splits the HOST[:PORT] argument into the XMPP domain and
// the address to connect to (port 5222 by default). HOST must be usable as
// a domain: "127.0.0.1:5222:1" or a port that is not a number are refused
// here rather than sent to a server. An IPv6 address becomes the domain
// [addr]. An IP address is otherwise accepted (RFC 7622 allows it as a
// domain); dialFailure explains it when the server does not serve it.
func registerTarget(arg string) (domain, addr string, err error) {
	host, port := arg, "5222"
	if h, p, err := net.SplitHostPort(arg); err == nil {
		host, port = h, p
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return "", "", fmt.Errorf("%q: the port %q is not a number from 1 to 65535", arg, port)
		}
	}
	bare := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	domain = host
	if ip, err := netip.ParseAddr(bare); err == nil && ip.Is6() {
		domain = "[" + bare + "]"
	}
	if domain, err = xmppclient.PrepareDomain(domain); err != nil {
		return "", "", err
	}
	return domain, net.JoinHostPort(bare, port), nil
}

// dialFailure says why Dial failed: the server could not be reached, or
// it was reached and refused (a stream error such as host-unknown, TLS).
// When the domain is an IP address, a refusal is most likely the server's
// address given where its domain belongs, and the message says so first
// and how to give both.
func dialFailure(domain, addr string, err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Sprintf("cannot connect to %s: %v", addr, err)
	}
	answer := err.Error()
	var se *xmppclient.StreamError
	if errors.As(err, &se) && se.Condition == stanza.StreamHostUnknown {
		answer = fmt.Sprintf("it does not serve the domain %s (host-unknown", domain)
		if se.Text != "" {
			answer += ": " + se.Text
		}
		answer += ")"
	}
	if xmppclient.IsIPLiteral(domain) {
		return fmt.Sprintf("%s is an IP address where the server's XMPP domain is expected; the server at %s answered: %s\n"+
			"  give its domain first, and its address with --address: parley register DOMAIN --address %s [flags] [field=value ...]",
			domain, addr, answer, addr)
	}
	return fmt.Sprintf("the XMPP server at %s (domain %s): %s", addr, domain, answer)
}

// inquiryFields lists the fields of an inquiry result in the server's order,
// without <instructions/> and <registered/> (which are not fields).
func inquiryFields(res *xml.Element) []string {
	var out []string
	q := res.Child(nsRegister, "query")
	if q == nil {
		return nil
	}
	for _, el := range q.Elements() {
		if el.Space != nsRegister || el.Local == "instructions" || el.Local == "registered" {
			continue
		}
		out = append(out, el.Local)
	}
	return out
}

// describeError renders an IQ error as the seed's reguser did:
// "Error: CODE (Phrase)". The code is the XEP-0086 legacy code of the
// condition (servers such as Prosody send no 'code' attribute), or the
// server's 'code' for a legacy-only error; the phrase is the seed's wording
// for the registration errors it shows. A condition without a legacy code
// (policy-violation) is shown by name. text is the server's <text/>, for
// the caller to show after the line.
func describeError(res *xml.Element) (line, text string) {
	cond, _, text, ok := stanza.ParseError(res)
	code := 0
	legacyText := ""
	for _, el := range res.Elements() {
		if el.Space == "" && el.Local == "error" {
			code, _ = strconv.Atoi(el.Attr("code"))
			legacyText = strings.TrimSpace(el.Text())
		}
	}
	if ok && cond.Code() != 0 {
		code = cond.Code()
	}
	if phrase := codePhrase(code); phrase != "" {
		return fmt.Sprintf("Error: %d (%s)", code, phrase), text
	}
	switch {
	case ok && code == 0:
		return fmt.Sprintf("Error: %s", cond), text
	case legacyText != "":
		return fmt.Sprintf("Error: %d (%s)", code, legacyText), text
	}
	return fmt.Sprintf("Error: %d (%s)", code, cond), text
}

// codePhrase is the seed-era phrase of a legacy error code.
func codePhrase(code int) string {
	switch code {
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 403:
		return "Forbidden"
	case 405:
		return "Not Allowed"
	case 406:
		return "Not Acceptable"
	case 409:
		return "Username Not Available"
	case 500:
		return "Internal Server Error"
	case 501:
		return "Not Implemented"
	case 503:
		return "Service Unavailable"
	}
	return ""
}

// validFieldName accepts the simple names registration fields have.
func validFieldName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
		case i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}
