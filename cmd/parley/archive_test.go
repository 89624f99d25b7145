package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"parley/internal/mod/mam"
	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// TestArchiveExport: `parley archive export` writes a host's compliance
// log as JSON lines or XML, filtered by user and time, while the server
// runs.
func TestArchiveExport(t *testing.T) {
	ts := testserver.Start(t, "[[host]]\ndomain = \"localhost\"\n[host.archive]\ncompliance = true\n")
	ts.AddUsers(t, "password1", "alice", "bob", "carol")
	a := ts.Online(t, "alice", "password1", "r")
	b := ts.Online(t, "bob", "password1", "r")
	a.Send("<message to='bob@localhost' type='chat' id='1'><body>hello &amp; welcome</body></message>")
	b.ExpectStanza("message", "id=1")
	b.Send("<message to='carol@localhost' type='chat' id='2'><body>to carol</body></message>")
	a.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
	b.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
	m, _ := module.Lookup(ts.Hosts()[0], mam.Key)
	if err := m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	export := func(a exportArgs) string {
		t.Helper()
		var out bytes.Buffer
		if err := archiveExport(ctx, ts.Config, ts.Store(), a, &out); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}

	lines := strings.Split(strings.TrimSpace(export(exportArgs{host: "localhost", format: "jsonl"})), "\n")
	if len(lines) != 2 {
		t.Fatalf("jsonl: %q", lines)
	}
	var rec jsonRecord
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Host != "localhost" || rec.Type != "chat" || rec.From != a.JID || rec.To != "bob@localhost" || rec.ID == 0 ||
		!strings.HasSuffix(rec.Stamp, "Z") {
		t.Fatalf("record %+v", rec)
	}
	el, err := xml.ParseElement([]byte(rec.Stanza), xml.DefaultLimits(), "")
	if err != nil || el.Space != "jabber:client" || el.ChildText("jabber:client", "body") != "hello & welcome" {
		t.Fatalf("stanza %q: %v", rec.Stanza, err)
	}

	if got := export(exportArgs{host: "localhost", user: "carol@localhost", format: "jsonl"}); strings.Count(got, "\n") != 1 ||
		!strings.Contains(got, "to carol") {
		t.Fatalf("--user carol: %q", got)
	}
	if got := export(exportArgs{host: "localhost", since: time.Now().Add(time.Hour).Format(time.RFC3339), format: "jsonl"}); got != "" {
		t.Fatalf("--since the future: %q", got)
	}
	today := time.Now().UTC().Format(time.DateOnly)
	if got := export(exportArgs{host: "localhost", since: today, until: today, format: "jsonl"}); strings.Count(got, "\n") != 2 {
		t.Fatalf("--since and --until today: %q", got)
	}

	doc := export(exportArgs{host: "localhost", user: "alice@localhost", format: "xml"})
	log, err := xml.ParseElement([]byte(strings.TrimPrefix(doc, "<?xml version='1.0' encoding='UTF-8'?>\n")), xml.DefaultLimits(), "")
	if err != nil {
		t.Fatalf("xml export does not parse: %v\n%s", err, doc)
	}
	recs := log.Elements()
	if log.Attr("host") != "localhost" || len(recs) != 1 || recs[0].Attr("from") != a.JID ||
		recs[0].Child("jabber:client", "message").ChildText("jabber:client", "body") != "hello & welcome" {
		t.Fatalf("xml export:\n%s", doc)
	}

	for _, bad := range []exportArgs{
		{format: "jsonl"},
		{host: "nowhere.example", format: "jsonl"},
		{host: "localhost", user: "not a jid@", format: "jsonl"},
		{host: "localhost", user: "alice@localhost/r", format: "jsonl"},
		{host: "localhost", since: "yesterday", format: "jsonl"},
		{host: "localhost", format: "csv"},
	} {
		if err := archiveExport(ctx, ts.Config, ts.Store(), bad, &bytes.Buffer{}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestArchivePurge: `parley archive purge` applies both retentions. The
// server runs without retention (its own purge would race the command's);
// the command gets a config with it.
func TestArchivePurge(t *testing.T) {
	ts := testserver.Start(t, "[[host]]\ndomain = \"localhost\"\n[host.archive]\ncompliance = true\n")
	cfg := *ts.Config
	cfg.Hosts = slices.Clone(cfg.Hosts)
	cfg.Hosts[0].Archive.MaxAge.Duration = 24 * time.Hour
	cfg.Hosts[0].Archive.ComplianceMaxAge.Duration = 48 * time.Hour
	ctx := context.Background()
	old := time.Now().Add(-36 * time.Hour)
	if _, err := ts.Store().Archive().Append(ctx, 0, storage.ArchiveEntry{Owner: "alice@localhost", ID: "x", With: "bob@localhost", Stamp: old}); err != nil {
		t.Fatal(err)
	}
	if err := ts.Store().Compliance().Append(ctx, storage.ComplianceRecord{Host: "localhost", Type: "chat", From: "a@localhost", To: "b@localhost", Stamp: old}); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := archivePurge(ctx, &cfg, ts.Store(), "localhost", &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "localhost: 1 archived messages and 0 compliance log records deleted") {
		t.Fatalf("purge said %q", out.String())
	}
	if err := archivePurge(ctx, &cfg, ts.Store(), "nowhere.example", &out); err == nil {
		t.Fatal("purge of an unknown host accepted")
	}
}
