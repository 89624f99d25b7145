package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
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
	address := fs.String("address", "", "connect to IP:PORT instead of HOST:PORT (no DNS)")
	plaintext := fs.Bool("plaintext", false, "continue when the server does not offer STARTTLS (the password travels in clear)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) == 0 {
		registerUsage(stderr)
		return 2
	}
	domain, port := pos[0], "5222"
	if h, p, err := net.SplitHostPort(pos[0]); err == nil {
		domain, port = h, p
	}
	if domain == "" {
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
	addr := *address
	if addr == "" {
		addr = net.JoinHostPort(domain, port)
	}
	c, err := xmppclient.Dial(ctx, xmppclient.Options{
		Domain: domain, Address: addr, Insecure: *insecure, RequireTLS: !*plaintext,
	})
	if err != nil {
		fmt.Fprintf(stderr, "parley register: cannot reach the XMPP server %s at %s: %v\n", domain, addr, err)
		return 1
	}
	defer c.Close()

	if query == nil {
		fmt.Fprint(stdout, "[Enquiry] ")
		res, err := c.IQ(stanza.TypeGet, xml.New(nsRegister, "query"))
		if err != nil {
			fmt.Fprintln(stdout, "Error:", err)
			return 1
		}
		if res.Attr("type") != stanza.TypeResult {
			fmt.Fprintln(stdout, describeError(res, stderr))
			return 1
		}
		fmt.Fprintln(stdout, "Fields: "+strings.Join(inquiryFields(res), " "))
		return 0
	}
	fmt.Fprint(stdout, "[Attempt] ")
	if username != "" {
		fmt.Fprintf(stdout, "(%s) ", username)
	}
	res, err := c.IQ(stanza.TypeSet, query)
	if err != nil {
		fmt.Fprintln(stdout, "Error:", err)
		return 1
	}
	if res.Attr("type") != stanza.TypeResult {
		fmt.Fprintln(stdout, describeError(res, stderr))
		return 1
	}
	fmt.Fprintln(stdout, "Successful registration")
	return 0
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
// (policy-violation) is shown by name. The server's <text/> goes to stderr.
func describeError(res *xml.Element, stderr io.Writer) string {
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
	if text != "" {
		fmt.Fprintln(stderr, "parley register: server says:", text)
	}
	if phrase := codePhrase(code); phrase != "" {
		return fmt.Sprintf("Error: %d (%s)", code, phrase)
	}
	switch {
	case ok && code == 0:
		return fmt.Sprintf("Error: %s (%s)", cond, text)
	case legacyText != "":
		return fmt.Sprintf("Error: %d (%s)", code, legacyText)
	}
	return fmt.Sprintf("Error: %d (%s)", code, cond)
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
