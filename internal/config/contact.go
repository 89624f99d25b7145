package config

import (
	"fmt"
	"net/mail"
	"net/url"
	"strings"
	"time"

	"parley/internal/xmpp/jid"
)

// ContactAddresses are the addresses a host publishes for people who
// need to reach its operators ([host.contact_addresses]): XEP-0157 puts
// them in the server's disco#info as an extended form, so that a client
// or another server's operator can find where to report abuse or a
// security problem without guessing. Each list holds URIs (xmpp:,
// mailto:, https:), in the order they are published. All empty (the
// default): no form at all.
type ContactAddresses struct {
	Abuse    []string `toml:"abuse"`
	Admin    []string `toml:"admin"`
	Feedback []string `toml:"feedback"`
	Sales    []string `toml:"sales"`
	Security []string `toml:"security"`
	Status   []string `toml:"status"`
	Support  []string `toml:"support"`
}

// ContactField is one field of the XEP-0157 form: its registered var
// (abuse-addresses, ...) and its values.
type ContactField struct {
	Var    string
	Values []string
}

// Fields returns the non-empty lists as the form's fields, in the order
// XEP-0157 registers them.
func (c ContactAddresses) Fields() []ContactField {
	var out []ContactField
	for _, f := range []ContactField{
		{"abuse-addresses", c.Abuse},
		{"admin-addresses", c.Admin},
		{"feedback-addresses", c.Feedback},
		{"sales-addresses", c.Sales},
		{"security-addresses", c.Security},
		{"status-addresses", c.Status},
		{"support-addresses", c.Support},
	} {
		if len(f.Values) > 0 {
			out = append(out, f)
		}
	}
	return out
}

// maxContactAddresses bounds each list: the form goes into every
// disco#info answer of the host.
const maxContactAddresses = 20

// validate checks that every address is a URI a reader can act on:
// xmpp: with a JID (XEP-0147 query allowed), mailto: with an address,
// https: with a host. XEP-0157 asks for valid URIs (§3: MUST for status,
// SHOULD for the others); anything else is more likely a typo than a
// contact method, so it is refused rather than published.
func (c ContactAddresses) validate(i int) []string {
	var out []string
	lists := []struct {
		key  string
		vals []string
	}{{"abuse", c.Abuse}, {"admin", c.Admin}, {"feedback", c.Feedback}, {"sales", c.Sales},
		{"security", c.Security}, {"status", c.Status}, {"support", c.Support}}
	for _, l := range lists {
		if len(l.vals) > maxContactAddresses {
			out = append(out, fmt.Sprintf("host[%d].contact_addresses.%s: %d addresses, at most %d", i, l.key, len(l.vals), maxContactAddresses))
		}
		for _, v := range l.vals {
			if err := checkContactURI(v); err != nil {
				out = append(out, fmt.Sprintf("host[%d].contact_addresses.%s: %q: %v", i, l.key, v, err))
			}
		}
	}
	return out
}

// checkContactURI applies the rules of validate to one address.
func checkContactURI(s string) error {
	if s != strings.TrimSpace(s) || s == "" {
		return fmt.Errorf("not a URI (empty, or spaces around it)")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URI: %v", err)
	}
	switch u.Scheme {
	case "xmpp":
		// RFC 5122: xmpp:node@domain[?query]; an authority component
		// (xmpp://) names the account to act as, not a contact.
		if u.Opaque == "" {
			return fmt.Errorf("an xmpp: URI names a JID, as in xmpp:abuse@example.com")
		}
		addr, err := url.PathUnescape(u.Opaque)
		if err != nil {
			return fmt.Errorf("not a URI: %v", err)
		}
		if _, err := jid.Parse(addr); err != nil {
			return fmt.Errorf("not a JID: %v", err)
		}
	case "mailto":
		addr, err := url.PathUnescape(u.Opaque)
		if err != nil || addr == "" {
			return fmt.Errorf("a mailto: URI names an address, as in mailto:abuse@example.com")
		}
		for _, a := range strings.Split(addr, ",") {
			if m, err := mail.ParseAddress(a); err != nil || m.Name != "" {
				return fmt.Errorf("not a mail address: %q", a)
			}
		}
	case "https":
		if u.Host == "" {
			return fmt.Errorf("an https: URI names a host, as in https://example.com/abuse")
		}
	default:
		return fmt.Errorf("scheme %q: use xmpp, mailto or https", u.Scheme)
	}
	return nil
}

// Reporting configures XEP-0377 spam and abuse reports, which users attach
// to a XEP-0191 block ([host.reporting]). Every report is logged and
// counted; this says who else hears of it.
type Reporting struct {
	// ForwardToAdmins sends each report to the host's admins (the
	// admins list) as a message, for hosts whose operators read XMPP
	// rather than logs. Default false: a busy host's admins would get a
	// message per report.
	ForwardToAdmins bool `toml:"forward_to_admins"`
	// ForwardInterval is the least time between two forwarded messages
	// about one reporter's reports (default 1m): reports in between are
	// logged and counted, not forwarded, so no user can fill the admins'
	// offline storage by reporting in a loop.
	ForwardInterval Duration `toml:"forward_interval"`
}

func (r *Reporting) applyDefaults() {
	if r.ForwardInterval.Duration == 0 {
		r.ForwardInterval.Duration = time.Minute
	}
}

func (r Reporting) validate(i int) []string {
	if r.ForwardInterval.Duration < 0 {
		return []string{fmt.Sprintf("host[%d].reporting.forward_interval: %s is negative", i, r.ForwardInterval)}
	}
	return nil
}
