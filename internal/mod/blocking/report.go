package blocking

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// XEP-0377 Spam Reporting: a user who blocks a JID may say why, with a
// <report/> inside the block's <item/>. The block happens as it would
// without one (§6: the report changes nothing about it); then the server
// logs the report for its operators, counts it, and, when the host asks
// for it, forwards it to the host's admins.
//
// Two versions are in use. 0.4 (urn:xmpp:reporting:1) carries the reason
// as a URI in 'reason'; the older urn:xmpp:reporting:0 carried it as a
// <spam/> or <abuse/> child. Conversations and its forks have sent the
// old form, and offer "block and report" only when the server announces
// the old urn:xmpp:reporting:reason:spam:0 feature; slixmpp and newer
// clients send the new one. Both are accepted and all their features
// announced.
const (
	// NSReporting is XEP-0377 0.4, announced on the server (§3).
	NSReporting = "urn:xmpp:reporting:1"
	// NSReporting0 is the namespace of the reports of earlier versions.
	NSReporting0 = "urn:xmpp:reporting:0"
	// ReasonSpam and ReasonAbuse are the reasons XEP-0377 defines (§4).
	ReasonSpam  = "urn:xmpp:reporting:spam"
	ReasonAbuse = "urn:xmpp:reporting:abuse"
)

// reportFeatures are announced on the host: the current namespace, and
// the old namespace and reason features clients of the old version look
// for.
func reportFeatures() []string {
	return []string{NSReporting, NSReporting0, "urn:xmpp:reporting:reason:spam:0", "urn:xmpp:reporting:reason:abuse:0"}
}

// Bounds on what one block request's reports make the server log, count
// and send: a <block/> may carry up to limits.max_blocklist_items items,
// each with a report, and a report any number of ids and any text.
const (
	maxReportsPerRequest = 20
	maxReportText        = 1024
	maxReportIDs         = 20
	maxReasonURI         = 128
)

// report is one XEP-0377 report.
type report struct {
	reported jid.JID
	// reason is what the metric and the admins see: "spam", "abuse", or
	// "other" for a reason this server does not know (a later XEP may
	// register more, §9.3); uri is the reason as the client sent it.
	reason, uri string
	// text is the reporter's own explanation (§4), bounded.
	text string
	// ids are the stanza-ids of the reported messages (§6), each as
	// "id by assigner".
	ids []string
	// originOptIn and thirdPartyOptIn are the reporter's consent to
	// forwarding (§5). This server forwards nowhere outside the host, so
	// they are only logged.
	originOptIn, thirdPartyOptIn bool
}

// parseReport reads the report of one block item, if it has one. A report
// without a reason breaks §4's MUST and is not a report: it is ignored,
// the block stands (§6: as if no report were present). A reason this
// server does not know is still a report, of reason "other".
func parseReport(item *xml.Element, reported jid.JID) (report, bool) {
	el := item.Child(NSReporting, "report")
	if el == nil {
		el = item.Child(NSReporting0, "report")
	}
	if el == nil {
		return report{}, false
	}
	r := report{reported: reported, uri: el.Attr("reason")}
	if r.uri == "" && el.Space == NSReporting0 {
		switch {
		case el.Child(NSReporting0, "spam") != nil:
			r.uri = ReasonSpam
		case el.Child(NSReporting0, "abuse") != nil:
			r.uri = ReasonAbuse
		}
	}
	switch r.uri {
	case "":
		return report{}, false
	case ReasonSpam:
		r.reason = "spam"
	case ReasonAbuse:
		r.reason = "abuse"
	default:
		r.reason = "other"
		r.uri = bound(r.uri, maxReasonURI)
	}
	for _, c := range el.Elements() {
		switch {
		case c.Space == el.Space && c.Local == "text" && r.text == "":
			r.text = bound(strings.TrimSpace(c.Text()), maxReportText)
		case c.Space == nsSID && c.Local == "stanza-id" && len(r.ids) < maxReportIDs:
			r.ids = append(r.ids, bound(c.Attr("id"), maxReasonURI)+" by "+bound(c.Attr("by"), maxReasonURI))
		case c.Space == el.Space && c.Local == "report-origin":
			r.originOptIn = true
		case c.Space == el.Space && c.Local == "third-party":
			r.thirdPartyOptIn = true
		}
	}
	return r, true
}

// nsSID is XEP-0359, whose <stanza-id/> names a reported message.
const nsSID = "urn:xmpp:sid:0"

// bound cuts s to at most n bytes, on a rune boundary.
func bound(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// reports handles the reports of a block request that succeeded: each is
// logged at info (reporter, reported JID, reason, the reporter's text and
// the ids of the messages it names; never the messages themselves, which
// the report does not carry), counted in parley_abuse_reports_total, and
// with [host.reporting] forward_to_admins sent to the host's admins in
// one message. Beyond maxReportsPerRequest in one request, reports are
// dropped with a note in the log.
func (b *Blocking) reports(ctx context.Context, reporter jid.JID, payload *xml.Element) {
	var rs []report
	dropped := 0
	for _, el := range payload.Elements() {
		if el.Space != NS || el.Local != "item" {
			continue
		}
		j, err := jid.Parse(el.Attr("jid"))
		if err != nil {
			continue // parseItems refused the request already
		}
		r, ok := parseReport(el, j)
		if !ok {
			continue
		}
		if len(rs) == maxReportsPerRequest {
			dropped++
			continue
		}
		rs = append(rs, r)
	}
	for _, r := range rs {
		b.h.Log.Info("blocking: abuse report", "reporter", reporter.String(), "reported", r.reported.String(),
			"reason", r.reason, "reason_uri", r.uri, "text", r.text, "stanza_ids", strings.Join(r.ids, "; "),
			"report_origin", r.originOptIn, "third_party", r.thirdPartyOptIn)
		if b.metrics != nil {
			b.metrics.AbuseReports.WithLabelValues(b.h.Domain, r.reason).Inc()
		}
	}
	if dropped > 0 {
		b.h.Log.Info("blocking: abuse reports beyond the first of a block request ignored",
			"reporter", reporter.String(), "kept", maxReportsPerRequest, "ignored", dropped)
	}
	if len(rs) > 0 && b.h.HostCfg != nil && b.h.HostCfg.Reporting.ForwardToAdmins {
		if b.mayForward(reporter.Bare(), b.h.HostCfg.Reporting.ForwardInterval.Duration) {
			b.forward(ctx, reporter, rs)
		} else {
			b.h.Log.Info("blocking: abuse report not forwarded: the reporter's last was forwarded less than forward_interval ago",
				"reporter", reporter.String())
		}
	}
}

// maxForwardTracked bounds the reporters mayForward remembers; past it the
// entries older than the interval are dropped first, and if none are, all.
const maxForwardTracked = 10000

// mayForward reports whether reporter's reports may be forwarded now (none
// forwarded within interval) and records the forwarding if so.
func (b *Blocking) mayForward(reporter jid.JID, interval time.Duration) bool {
	now := time.Now()
	b.forwardMu.Lock()
	defer b.forwardMu.Unlock()
	if last, ok := b.forwarded[reporter]; ok && now.Sub(last) < interval {
		return false
	}
	if b.forwarded == nil || len(b.forwarded) >= maxForwardTracked {
		old := b.forwarded
		b.forwarded = make(map[jid.JID]time.Time)
		for j, t := range old {
			if now.Sub(t) < interval && len(b.forwarded) < maxForwardTracked/2 {
				b.forwarded[j] = t
			}
		}
	}
	b.forwarded[reporter] = now
	return true
}

// quoted makes text from a reporter safe to put in the admins' message:
// control and bidirectional-formatting characters go, and each line is
// prefixed with "> ", so that it cannot pass for lines of the server's own.
func quoted(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = "> " + oneLine(l)
	}
	return strings.Join(lines, "\n")
}

// oneLine removes control and bidirectional-formatting characters, for a
// value that must stay on one line (a line of text, a reason URI, a
// stanza-id).
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return -1
		}
		return r
	}, s)
}

// forward sends the reports of one request to each of the host's admins
// (the admins list) as one normal message from the host: through the
// router, so an offline admin finds it in offline storage.
func (b *Blocking) forward(ctx context.Context, reporter jid.JID, rs []report) {
	var body strings.Builder
	for i, r := range rs {
		if i > 0 {
			body.WriteString("\n\n")
		}
		fmt.Fprintf(&body, "%s reported %s for %s", reporter.Bare(), r.reported, r.reason)
		if r.reason == "other" {
			fmt.Fprintf(&body, " (%s)", oneLine(r.uri))
		}
		body.WriteString(" and blocked it.")
		if r.text != "" {
			fmt.Fprintf(&body, "\nTheir words:\n%s", quoted(r.text))
		}
		if len(r.ids) > 0 {
			fmt.Fprintf(&body, "\nReported messages (stanza-ids): %s", oneLine(strings.Join(r.ids, "; ")))
		}
	}
	for _, a := range b.h.HostCfg.Admins {
		to, err := jid.Parse(a)
		// Reports stay on the server: an administrator listed with an
		// address elsewhere is not sent them (XEP-0377 leaves passing
		// reports on to the reporter's <third-party/> consent).
		if err != nil || to.Bare() == reporter.Bare() || !b.h.Router.IsLocal(to.Domain()) {
			continue
		}
		msg := xml.New("", "message").SetAttr("from", b.h.Domain).SetAttr("to", to.String()).
			SetAttr("type", stanza.TypeNormal).SetAttr("id", "report-"+strings.TrimPrefix(pushID(), "block-"))
		msg.Append(xml.New("", "subject").AppendText("Abuse report on " + b.h.Domain))
		msg.Append(xml.New("", "body").AppendText(body.String()))
		b.h.Router.Route(ctx, msg)
	}
}
