package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"parley/internal/config"
	"parley/internal/mod/mam"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// NSComplianceExport is the namespace of `parley archive export
// --format xml`.
const NSComplianceExport = "urn:x-parley:compliance:0"

func archiveUsage() {
	fmt.Fprint(os.Stderr, `usage:
  parley archive export --host HOST [--user JID] [--since TIME] [--until TIME] [--format jsonl|xml] [--config FILE]
      write HOST's compliance log to standard output, oldest first
  parley archive purge [--host HOST] [--config FILE]
      apply retention now ([host.archive] max_age, compliance_max_age)

TIME is RFC 3339 / XEP-0082 (2025-03-01T12:00:00Z) or a date (2025-03-01,
UTC; as --until, the whole day).
`)
}

// cmdArchive is `parley archive`: the compliance log and retention, for
// administrators. It works on the configured storage directly, like
// `parley user`, while the server runs or not.
func cmdArchive(args []string) int {
	fs := flag.NewFlagSet("archive", flag.ContinueOnError)
	fs.Usage = archiveUsage
	path := fs.String("config", "", "config file")
	host := fs.String("host", "", "the host")
	user := fs.String("user", "", "only messages this bare JID sent or received")
	since := fs.String("since", "", "only records from this time on")
	until := fs.String("until", "", "only records up to this time")
	format := fs.String("format", "jsonl", "jsonl or xml")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 || (pos[0] != "export" && pos[0] != "purge") {
		archiveUsage()
		return 2
	}
	return withStore(*path, func(ctx context.Context, cfg *config.Config, st storage.Store) error {
		if pos[0] == "purge" {
			return archivePurge(ctx, cfg, st, *host, os.Stdout)
		}
		return archiveExport(ctx, cfg, st, exportArgs{host: *host, user: *user, since: *since, until: *until, format: *format}, os.Stdout)
	})
}

type exportArgs struct{ host, user, since, until, format string }

// parseTime reads an RFC 3339 time or a date (UTC midnight; with endOfDay,
// the last millisecond of that day).
func parseTime(s string, endOfDay bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a date (YYYY-MM-DD)", s)
	}
	if endOfDay {
		d = d.Add(24*time.Hour - time.Millisecond)
	}
	return d, nil
}

func archiveExport(ctx context.Context, cfg *config.Config, st storage.Store, a exportArgs, out io.Writer) error {
	if a.host == "" {
		return errors.New("archive export: --host is required")
	}
	hc := cfg.HostByDomain(a.host)
	if hc == nil {
		return fmt.Errorf("%s is not a host of this server (see [[host]] in the config)", a.host)
	}
	if !hc.Archive.Compliance {
		fmt.Fprintf(os.Stderr, "parley: note: [host.archive] compliance is off for %s; exporting what its log holds from earlier\n", a.host)
	}
	f := storage.ComplianceFilter{Host: hc.Domain}
	if a.user != "" {
		j, err := jid.Parse(a.user)
		if err != nil || j.Local() == "" || j.Resource() != "" {
			return fmt.Errorf("--user %q is not a bare JID user@host", a.user)
		}
		f.User = j.String()
	}
	var err error
	if a.since != "" {
		if f.Since, err = parseTime(a.since, false); err != nil {
			return fmt.Errorf("--since: %w", err)
		}
	}
	if a.until != "" {
		if f.Until, err = parseTime(a.until, true); err != nil {
			return fmt.Errorf("--until: %w", err)
		}
	}
	w := bufio.NewWriter(out)
	var write func(storage.ComplianceRecord) error
	switch a.format {
	case "jsonl":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		write = func(r storage.ComplianceRecord) error {
			return enc.Encode(jsonRecord{ID: r.ID, Host: r.Host, Stamp: r.Stamp.UTC().Format(stampLayout),
				Type: r.Type, From: r.From, To: r.To, Stanza: string(clientStanza(r.Stanza))})
		}
	case "xml":
		fmt.Fprintf(w, "<?xml version='1.0' encoding='UTF-8'?>\n<log xmlns='%s' host='%s'>\n", NSComplianceExport, hc.Domain)
		write = func(r storage.ComplianceRecord) error {
			rec := xml.New(NSComplianceExport, "record").SetAttr("id", fmt.Sprint(r.ID)).
				SetAttr("stamp", r.Stamp.UTC().Format(stampLayout)).SetAttr("type", r.Type).
				SetAttr("from", r.From).SetAttr("to", r.To)
			if el, err := xml.ParseElement(r.Stanza, xml.Limits{MaxStanzaBytes: len(r.Stanza) + 1024}, stanza.NSClient); err == nil {
				rec.Append(el)
			} else {
				// Kept as text rather than lost: the record is evidence.
				rec.Append(xml.New(NSComplianceExport, "unparsed").AppendText(string(r.Stanza)))
			}
			if _, err := rec.WriteToNS(w, stanza.NSClient); err != nil {
				return err
			}
			return w.WriteByte('\n')
		}
	default:
		return fmt.Errorf("--format %q: jsonl or xml", a.format)
	}
	if err := st.Compliance().Export(ctx, f, write); err != nil {
		return err
	}
	if a.format == "xml" {
		fmt.Fprintln(w, "</log>")
	}
	return w.Flush()
}

// stampLayout is XEP-0082 with the milliseconds the log keeps.
const stampLayout = "2006-01-02T15:04:05.000Z"

// jsonRecord is one line of `--format jsonl`.
type jsonRecord struct {
	ID     int64  `json:"id"`
	Host   string `json:"host"`
	Stamp  string `json:"stamp"`
	Type   string `json:"type"`
	From   string `json:"from"`
	To     string `json:"to"`
	Stanza string `json:"stanza"`
}

// clientStanza returns a stored stanza as a standalone XML document
// fragment in jabber:client (stored stanzas leave the stream's namespace
// implicit). A stanza that does not parse is returned as stored.
func clientStanza(b []byte) []byte {
	el, err := xml.ParseElement(b, xml.Limits{MaxStanzaBytes: len(b) + 1024}, stanza.NSClient)
	if err != nil {
		return b
	}
	return inNamespace(el, stanza.NSClient).Bytes()
}

// inNamespace returns a copy of el with every element of the stream's
// content namespace (Space "") put in ns explicitly.
func inNamespace(el *xml.Element, ns string) *xml.Element {
	c := *el
	if c.Space == "" {
		c.Space = ns
	}
	c.Children = make([]xml.Node, len(el.Children))
	for i, n := range el.Children {
		if e, ok := n.(*xml.Element); ok {
			c.Children[i] = inNamespace(e, ns)
		} else {
			c.Children[i] = n
		}
	}
	return &c
}

func archivePurge(ctx context.Context, cfg *config.Config, st storage.Store, host string, out io.Writer) error {
	var named []string
	if host != "" {
		named = []string{host}
	}
	for _, h := range hostsOrAll(cfg, named) {
		hc := cfg.HostByDomain(h)
		if hc == nil {
			return fmt.Errorf("%s is not a host of this server (see [[host]] in the config)", h)
		}
		p, err := mam.Retention(ctx, st, hc, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%s: %d archived messages and %d compliance log records deleted (max_age %s, compliance_max_age %s)\n",
			h, p.Archive, p.Compliance, hc.Archive.MaxAge.Duration, hc.Archive.ComplianceMaxAge.Duration)
	}
	return nil
}
