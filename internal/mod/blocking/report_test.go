package blocking_test

import (
	"slices"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// The tests of this file put their client listeners on 127.0.10.3.
const loopback = "[c2s]\nlisten = [\"127.0.10.3:0\"]\ndirect_tls_listen = [\"127.0.10.3:0\"]\n"

const (
	nsReporting  = "urn:xmpp:reporting:1"
	nsReporting0 = "urn:xmpp:reporting:0"
)

// reports returns parley_abuse_reports_total{host="localhost",reason}.
func reports(t *testing.T, ts *testserver.TS, reason string) float64 {
	t.Helper()
	var m dto.Metric
	if err := ts.Metrics().AbuseReports.WithLabelValues("localhost", reason).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// reportLines returns the server's log lines about abuse reports.
func reportLines(ts *testserver.TS) []string {
	var out []string
	for _, l := range ts.LogLines() {
		if strings.Contains(l, "blocking: abuse report") {
			out = append(out, l)
		}
	}
	return out
}

// blockReport sends a block command whose items are given as XML.
func blockReport(c *testserver.Client, itemsXML string) *xml.Element {
	return c.IQ("set", "", "<block xmlns='"+nsBlocking+"'>"+itemsXML+"</block>")
}

// TestSpamReport: XEP-0377. The server announces reporting (both
// versions' features); a report inside a block item leaves the block as
// it would be without one, is logged at info with reporter, reported JID,
// reason, the reporter's text and the stanza-ids (and nothing of the
// reported messages), and is counted by reason. The old form (<spam/>
// child, urn:xmpp:reporting:0) counts the same; an unknown reason counts
// as other; a report without a reason is no report. Nothing goes to the
// admins unless the host asks for it.
func TestSpamReport(t *testing.T) {
	ts := start(t, loopback+"[[host]]\ndomain = \"localhost\"\nadmins = [\"boss@localhost\"]\n", "alice", "boss")
	a := online(t, ts, "alice", "r")
	boss := online(t, ts, "boss", "r")

	info := a.IQ("get", "localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	for _, f := range []string{nsReporting, nsReporting0, "urn:xmpp:reporting:reason:spam:0", "urn:xmpp:reporting:reason:abuse:0"} {
		if !strings.Contains(info.String(), "var='"+f+"'") {
			t.Fatalf("server disco#info lacks %s: %s", f, info)
		}
	}

	mustOK(t, blockReport(a, "<item jid='spammer@evil.example'><report xmlns='"+nsReporting+"' reason='urn:xmpp:reporting:spam'>"+
		"<stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='sid-1'/><text xml:lang='en'>Never came trouble to my house like this.</text>"+
		"</report></item><item jid='plain@evil.example'/>"))
	if got := stored(t, ts, "alice"); !slices.Equal(got, []string{"plain@evil.example", "spammer@evil.example"}) {
		t.Fatalf("blocked with a report: %v", got)
	}
	if n := reports(t, ts, "spam"); n != 1 {
		t.Fatalf("spam reports counted: %v", n)
	}
	lines := reportLines(ts)
	if len(lines) != 1 {
		t.Fatalf("report log lines: %q", lines)
	}
	for _, want := range []string{"level=INFO", "reporter=alice@localhost", "reported=spammer@evil.example", "reason=spam",
		"Never came trouble", "sid-1"} {
		if !strings.Contains(lines[0], want) {
			t.Fatalf("report log line lacks %q: %s", want, lines[0])
		}
	}

	// The old form; an abuse reason; a reason nobody registered; a report
	// without a reason (no report, but still a block).
	mustOK(t, blockReport(a, "<item jid='old@evil.example'><report xmlns='"+nsReporting0+"'><spam/></report></item>"+
		"<item jid='troll@evil.example'><report xmlns='"+nsReporting+"' reason='urn:xmpp:reporting:abuse'/></item>"+
		"<item jid='odd@evil.example'><report xmlns='"+nsReporting+"' reason='urn:example:phishing'/></item>"+
		"<item jid='vague@evil.example'><report xmlns='"+nsReporting+"'/></item>"))
	if got := stored(t, ts, "alice"); !slices.Contains(got, "vague@evil.example") || len(got) != 6 {
		t.Fatalf("blocked: %v", got)
	}
	if s, ab, o := reports(t, ts, "spam"), reports(t, ts, "abuse"), reports(t, ts, "other"); s != 2 || ab != 1 || o != 1 {
		t.Fatalf("reports counted: spam %v abuse %v other %v", s, ab, o)
	}
	if l := reportLines(ts); len(l) != 4 || !strings.Contains(l[3], "urn:example:phishing") {
		t.Fatalf("report log lines: %q", l)
	}

	// A refused block reports nothing.
	if r := blockReport(a, "<item jid='alice@localhost'><report xmlns='"+nsReporting+"' reason='urn:xmpp:reporting:spam'/></item>"); cond(r) != "not-acceptable" {
		t.Fatalf("blocking oneself: %s", r)
	}
	if n := reports(t, ts, "spam"); n != 2 {
		t.Fatalf("a refused block was counted: %v", n)
	}
	// Forwarding is off by default.
	for _, el := range pendingAfterSync(t, boss) {
		if el.Local == "message" {
			t.Fatalf("an admin got a report without forward_to_admins: %s", el)
		}
	}
}

// TestSpamReportForwarded: with [host.reporting] forward_to_admins, the
// host's admins get each block request's reports as one message from the
// host, offline admins through offline storage.
func TestSpamReportForwarded(t *testing.T) {
	ts := start(t, loopback+"[[host]]\ndomain = \"localhost\"\nadmins = [\"boss@localhost\", \"deputy@localhost\"]\n"+
		"[host.reporting]\nforward_to_admins = true\n", "alice", "boss", "deputy")
	a := online(t, ts, "alice", "r")
	boss := online(t, ts, "boss", "r")

	mustOK(t, blockReport(a, "<item jid='spammer@evil.example'><report xmlns='"+nsReporting+"' reason='urn:xmpp:reporting:spam'>"+
		"<text>buy potions</text><stanza-id xmlns='urn:xmpp:sid:0' by='alice@localhost' id='sid-9'/></report></item>"+
		"<item jid='troll@evil.example'><report xmlns='"+nsReporting0+"'><abuse/></report></item>"))
	msg := boss.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.Attr("from") == "localhost" })
	body := msg.ChildText("", "body")
	for _, want := range []string{"alice@localhost reported spammer@evil.example for spam", "buy potions", "sid-9",
		"troll@evil.example for abuse"} {
		if !strings.Contains(body, want) {
			t.Fatalf("forwarded report lacks %q: %s", want, msg)
		}
	}
	if msg.Attr("type") != "normal" || msg.ChildText("", "subject") == "" {
		t.Fatalf("forwarded report: %s", msg)
	}
	for _, el := range pendingAfterSync(t, boss) {
		if el.Local == "message" {
			t.Fatalf("one request, two messages: %s", el)
		}
	}
	// The deputy was offline: the report waits for them.
	d := online(t, ts, "deputy", "r")
	d.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && el.Attr("from") == "localhost" && strings.Contains(el.ChildText("", "body"), "spammer@evil.example")
	})
	// Reporting again within forward_interval (1m): logged, not forwarded,
	// so no loop of reports fills the admins' offline storage.
	mustOK(t, blockReport(a, "<item jid='again@evil.example'><report xmlns='"+nsReporting+"' reason='urn:xmpp:reporting:spam'/></item>"))
	for _, el := range pendingAfterSync(t, boss) {
		if el.Local == "message" {
			t.Fatalf("a second report within forward_interval was forwarded: %s", el)
		}
	}
}

// A reporter's text cannot pass for lines of the server's own in the
// forwarded message: it is quoted line by line, control characters gone.
func TestSpamReportTextQuoted(t *testing.T) {
	ts := start(t, loopback+"[[host]]\ndomain = \"localhost\"\nadmins = [\"boss@localhost\"]\n"+
		"[host.reporting]\nforward_to_admins = true\n", "alice", "boss")
	a := online(t, ts, "alice", "r")
	boss := online(t, ts, "boss", "r")
	mustOK(t, blockReport(a, "<item jid='x@evil.example'><report xmlns='"+nsReporting+"' reason='urn:xmpp:reporting:spam'>"+
		"<text>first line&#10;mallory@localhost reported boss@localhost for abuse and blocked it.&#8238;</text></report></item>"))
	body := boss.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.Attr("from") == "localhost" }).ChildText("", "body")
	if !strings.Contains(body, "\n> first line\n> mallory@localhost reported") || strings.ContainsRune(body, '\u202e') {
		t.Fatalf("reporter's text not quoted: %q", body)
	}
}

// pendingAfterSync returns what c received and did not consume, after a
// round trip through the server.
func pendingAfterSync(t *testing.T, c *testserver.Client) []*xml.Element {
	t.Helper()
	sync(t, c)
	return c.Pending()
}

func cond(el *xml.Element) string { return testserver.ErrorCondition(el) }
