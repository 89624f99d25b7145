// Package sm is the protocol state of XEP-0198 stream management on the
// server side, apart from any connection: the handled-stanza counters with
// their 32-bit wrap-around, the bounded queue of stanzas the client has not
// acknowledged, the validation of the client's <a h='…'/>, and the wire
// elements. The c2s package wires it to sessions and connections; keeping
// the arithmetic here lets it be tested exhaustively on its own.
package sm

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strconv"

	"parley/internal/xmpp/xml"
)

// NS is the XEP-0198 namespace (version 3).
const NS = "urn:xmpp:sm:3"

// nsStanzas is the namespace of the stanza error conditions <failed/>
// carries (RFC 6120 §8.3.3).
const nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

// ErrQueueFull reports that the unacknowledged queue has reached its bound:
// the client does not acknowledge, and the stream must end
// (resource-constraint) rather than let memory grow or drop a stanza.
var ErrQueueFull = errors.New("sm: too many unacknowledged stanzas")

// HandledCountTooHigh is returned by Ack when the client acknowledges more
// stanzas than were sent: XEP-0198 §4 requires the stream to end with
// <undefined-condition/> and <handled-count-too-high/>.
type HandledCountTooHigh struct {
	H, Sent uint32
}

func (e *HandledCountTooHigh) Error() string {
	return "sm: h=" + strconv.FormatUint(uint64(e.H), 10) + " but only " + strconv.FormatUint(uint64(e.Sent), 10) + " stanzas were sent"
}

// Element is the <handled-count-too-high/> element for the stream error.
func (e *HandledCountTooHigh) Element() *xml.Element {
	return xml.New(NS, "handled-count-too-high").
		SetAttr("h", strconv.FormatUint(uint64(e.H), 10)).
		SetAttr("send-count", strconv.FormatUint(uint64(e.Sent), 10))
}

// Outbound tracks the stanzas sent to the client. sent counts every stanza
// handed to the stream since <enabled/>, modulo 2^32 as XEP-0198 §4 asks;
// acked is the last h the client reported; queue holds the stanzas in
// between, oldest first, so len(queue) == sent-acked (mod 2^32) always.
// Not safe for concurrent use: the session's mutex guards it.
type Outbound struct {
	sent, acked uint32
	queue       []*xml.Element
	max         int
	// requested: an <r/> is outstanding; another is sent only after the
	// client answers, so a burst of stanzas costs one request.
	requested bool
}

// NewOutbound returns an Outbound that holds at most max unacknowledged
// stanzas.
func NewOutbound(max int) *Outbound { return &Outbound{max: max} }

// Restore returns an Outbound that carries on one handed over from
// another node (a session resumed elsewhere in a cluster): the client has
// acknowledged acked stanzas, and queue holds those sent after them,
// oldest first. The counters continue where they were, so the client's
// next h means what it meant on the old node.
func Restore(max int, acked uint32, queue []*xml.Element) *Outbound {
	return &Outbound{sent: acked + uint32(len(queue)), acked: acked, queue: queue, max: max}
}

// Acked is the last h the client reported (mod 2^32).
func (o *Outbound) Acked() uint32 { return o.acked }

// Push records el as sent. It returns ErrQueueFull when the queue already
// holds max stanzas; el is queued all the same, so that whoever ends the
// session finds it with the others and nothing is lost.
func (o *Outbound) Push(el *xml.Element) error {
	o.queue = append(o.queue, el)
	o.sent++
	if len(o.queue) > o.max {
		return ErrQueueFull
	}
	return nil
}

// WantRequest reports whether an <r/> should follow the stanzas just
// pushed, and notes that one is outstanding.
func (o *Outbound) WantRequest() bool {
	if o.requested || len(o.queue) == 0 {
		return false
	}
	o.requested = true
	return true
}

// Ack applies the client's h: the stanzas up to h are acknowledged and
// leave the queue. An h below the last one is stale (a reordered or
// repeated answer) and changes nothing; an h above what was sent is an
// error. Both comparisons are modulo 2^32.
func (o *Outbound) Ack(h uint32) error {
	n := h - o.acked // stanzas newly acknowledged, wrap-around included
	if int64(n) > int64(len(o.queue)) {
		if o.acked-h < 1<<31 {
			// Behind the last ack (a reordered or repeated answer): half
			// the counter's range separates "behind" from "ahead".
			return nil
		}
		return &HandledCountTooHigh{H: h, Sent: o.sent}
	}
	clear(o.queue[:n])
	o.queue = o.queue[n:]
	if len(o.queue) == 0 {
		o.queue = nil // let the backing array go
	}
	o.acked = h
	o.requested = false
	return nil
}

// Resumed notes that the queue was sent again on a new connection: an <r/>
// outstanding on the old one will never be answered.
func (o *Outbound) Resumed() { o.requested = false }

// Sent is the number of stanzas sent so far (mod 2^32).
func (o *Outbound) Sent() uint32 { return o.sent }

// Unacked returns the stanzas not yet acknowledged, oldest first. The
// slice is the queue's own: callers copy it if they keep it past the next
// Push or Ack.
func (o *Outbound) Unacked() []*xml.Element { return o.queue }

// Take empties the queue and returns what it held, for a session that ends
// with stanzas nobody acknowledged.
func (o *Outbound) Take() []*xml.Element {
	q := o.queue
	o.queue = nil
	o.acked = o.sent
	return q
}

// ParseH reads an h attribute: an unsigned 32-bit decimal integer.
func ParseH(s string) (uint32, bool) {
	if s == "" || len(s) > 10 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(n), true
}

// FormatH writes an h attribute.
func FormatH(h uint32) string { return strconv.FormatUint(uint64(h), 10) }

// NewResumptionID returns an unguessable identifier for a resumable
// session: 18 random bytes, so knowing one gives nothing about another.
func NewResumptionID() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Feature is the <sm/> stream feature.
func Feature() *xml.Element { return xml.New(NS, "sm") }

// Request is <r/>.
func Request() *xml.Element { return xml.New(NS, "r") }

// Answer is <a h='…'/>.
func Answer(h uint32) *xml.Element { return xml.New(NS, "a").SetAttr("h", FormatH(h)) }

// Enabled is the answer to <enable/>: id and max only when the session can
// be resumed (max in seconds).
func Enabled(id string, maxSeconds int) *xml.Element {
	el := xml.New(NS, "enabled")
	if id != "" {
		el.SetAttr("id", id).SetAttr("resume", "true").SetAttr("max", strconv.Itoa(maxSeconds))
	}
	return el
}

// Resumed answers a successful <resume/>: h is what the server handled of
// the previous connection's stanzas.
func Resumed(previd string, h uint32) *xml.Element {
	return xml.New(NS, "resumed").SetAttr("previd", previd).SetAttr("h", FormatH(h))
}

// Failed is <failed/> with a stanza error condition (unexpected-request,
// item-not-found, ...). withH adds h, which lets a client whose resumption
// failed learn which of its stanzas the server handled (XEP-0198 §5).
func Failed(condition string, h uint32, withH bool) *xml.Element {
	el := xml.New(NS, "failed")
	if withH {
		el.SetAttr("h", FormatH(h))
	}
	return el.Append(xml.New(nsStanzas, condition))
}
