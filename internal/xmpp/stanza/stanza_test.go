package stanza

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"parley/internal/xmpp/xml"
)

// el builds an element: args are xml.Attr, *xml.Element, xml.CharData or
// "name=value" strings for unnamespaced attributes.
func el(space, local string, args ...any) *xml.Element {
	e := &xml.Element{Space: space, Local: local}
	for _, a := range args {
		switch v := a.(type) {
		case string:
			k, val, _ := strings.Cut(v, "=")
			e.Attrs = append(e.Attrs, xml.Attr{Local: k, Value: val})
		case xml.Attr:
			e.Attrs = append(e.Attrs, v)
		case *xml.Element:
			e.Children = append(e.Children, v)
		case xml.CharData:
			e.Children = append(e.Children, v)
		default:
			panic(fmt.Sprintf("el: %T", a))
		}
	}
	return e
}

var lang = xml.Attr{Space: xml.NSXML, Local: "lang", Value: "en"}

// diffTree compares trees structurally (attribute order matters, nil and
// empty slices are equal) and describes the first difference.
func diffTree(path string, got, want *xml.Element) string {
	if got == nil || want == nil {
		if got != want {
			return fmt.Sprintf("%s: got %v, want %v", path, got, want)
		}
		return ""
	}
	path += "/" + want.Local
	if got.Space != want.Space || got.Local != want.Local {
		return fmt.Sprintf("%s: got {%s}%s", path, got.Space, got.Local)
	}
	if len(got.Attrs) != len(want.Attrs) {
		return fmt.Sprintf("%s: attrs %v, want %v", path, got.Attrs, want.Attrs)
	}
	for i := range got.Attrs {
		if got.Attrs[i] != want.Attrs[i] {
			return fmt.Sprintf("%s: attrs %v, want %v", path, got.Attrs, want.Attrs)
		}
	}
	if len(got.Children) != len(want.Children) {
		return fmt.Sprintf("%s: %d children, want %d", path, len(got.Children), len(want.Children))
	}
	for i := range got.Children {
		switch w := want.Children[i].(type) {
		case xml.CharData:
			if g, ok := got.Children[i].(xml.CharData); !ok || g != w {
				return fmt.Sprintf("%s: child %d = %#v, want %q", path, i, got.Children[i], w)
			}
		case *xml.Element:
			g, ok := got.Children[i].(*xml.Element)
			if !ok {
				return fmt.Sprintf("%s: child %d = %#v, want element", path, i, got.Children[i])
			}
			if d := diffTree(path, g, w); d != "" {
				return d
			}
		}
	}
	return ""
}

func TestConditionCatalogue(t *testing.T) {
	// Types: RFC 6120 §8.3.3 ("the associated error type SHOULD be ...").
	// Codes: XEP-0086 §2 Table 1. policy-violation is not in XEP-0086.
	tests := []struct {
		c    Condition
		name string
		typ  string
		code int
	}{
		{BadRequest, "bad-request", "modify", 400},                        // §8.3.3.1
		{Conflict, "conflict", "cancel", 409},                             // §8.3.3.2
		{FeatureNotImplemented, "feature-not-implemented", "cancel", 501}, // §8.3.3.3 (cancel or modify)
		{Forbidden, "forbidden", "auth", 403},                             // §8.3.3.4
		{Gone, "gone", "cancel", 302},                                     // §8.3.3.5 (XEP-0086: modify)
		{InternalServerError, "internal-server-error", "cancel", 500},     // §8.3.3.6 (XEP-0086: wait)
		{ItemNotFound, "item-not-found", "cancel", 404},                   // §8.3.3.7
		{JIDMalformed, "jid-malformed", "modify", 400},                    // §8.3.3.8
		{NotAcceptable, "not-acceptable", "modify", 406},                  // §8.3.3.9
		{NotAllowed, "not-allowed", "cancel", 405},                        // §8.3.3.10
		{NotAuthorized, "not-authorized", "auth", 401},                    // §8.3.3.11
		{PolicyViolation, "policy-violation", "modify", 0},                // §8.3.3.12 (modify or wait)
		{RecipientUnavailable, "recipient-unavailable", "wait", 404},      // §8.3.3.13
		{Redirect, "redirect", "modify", 302},                             // §8.3.3.14
		{RegistrationRequired, "registration-required", "auth", 407},      // §8.3.3.15
		{RemoteServerNotFound, "remote-server-not-found", "cancel", 404},  // §8.3.3.16
		{RemoteServerTimeout, "remote-server-timeout", "wait", 504},       // §8.3.3.17
		{ResourceConstraint, "resource-constraint", "wait", 500},          // §8.3.3.18
		{ServiceUnavailable, "service-unavailable", "cancel", 503},        // §8.3.3.19
		{SubscriptionRequired, "subscription-required", "auth", 407},      // §8.3.3.20
		{UndefinedCondition, "undefined-condition", "cancel", 500},        // §8.3.3.21 (any type)
		{UnexpectedRequest, "unexpected-request", "wait", 400},            // §8.3.3.22 (wait or modify)
	}
	if len(tests) != 22 {
		t.Fatalf("RFC 6120 §8.3.3 defines 22 conditions, table has %d", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if string(tt.c) != tt.name || tt.c.String() != tt.name {
				t.Errorf("name = %q", tt.c)
			}
			if tt.c.Type() != tt.typ {
				t.Errorf("Type() = %q, want %q", tt.c.Type(), tt.typ)
			}
			if tt.c.Code() != tt.code {
				t.Errorf("Code() = %d, want %d", tt.c.Code(), tt.code)
			}
			if c, ok := Cond(tt.name); !ok || c != tt.c {
				t.Errorf("Cond(%q) = %q, %v", tt.name, c, ok)
			}
			// The element carries exactly this mapping.
			e := ErrorElement(tt.c, "")
			if e.Attr("type") != tt.typ {
				t.Errorf("element type = %q", e.Attr("type"))
			}
			wantCode := ""
			if tt.code != 0 {
				wantCode = fmt.Sprint(tt.code)
			}
			if e.Attr("code") != wantCode || e.HasAttr("code") != (tt.code != 0) {
				t.Errorf("element code = %q, want %q", e.Attr("code"), wantCode)
			}
		})
	}
	for _, bad := range []string{"", "payment-required", "Bad-Request", "text"} {
		if c, ok := Cond(bad); ok || c.Type() != "" || c.Code() != 0 {
			t.Errorf("Cond(%q) accepted", bad)
		}
	}
}

func TestErrorElement(t *testing.T) {
	got := ErrorElement(ItemNotFound, "no such user")
	want := el("", "error", "type=cancel", "code=404",
		el(NSStanzas, "item-not-found"),
		el(NSStanzas, "text", lang, xml.CharData("no such user")))
	if d := diffTree("", got, want); d != "" {
		t.Error(d)
	}

	got = ErrorElement(BadRequest, "")
	want = el("", "error", "type=modify", "code=400", el(NSStanzas, "bad-request"))
	if d := diffTree("", got, want); d != "" {
		t.Error(d)
	}

	app := el("urn:xmpp:example", "too-many")
	got = ErrorElementTyped(PolicyViolation, "wait", "slow down", app)
	want = el("", "error", "type=wait",
		el(NSStanzas, "policy-violation"),
		el(NSStanzas, "text", lang, xml.CharData("slow down")),
		app)
	if d := diffTree("", got, want); d != "" {
		t.Error(d)
	}

	// Invalid type falls back to the default; unknown condition to
	// undefined-condition, so the output is always schema-valid.
	got = ErrorElementTyped(Conflict, "bogus", "", nil)
	if got.Attr("type") != "cancel" {
		t.Errorf("bogus type kept: %q", got.Attr("type"))
	}
	got = ErrorElementTyped(Condition("nonsense"), "", "", nil)
	want = el("", "error", "type=cancel", "code=500", el(NSStanzas, "undefined-condition"))
	if d := diffTree("", got, want); d != "" {
		t.Error(d)
	}
}

func TestErrorReply(t *testing.T) {
	body := el("", "body", xml.CharData("hi"))
	tests := []struct {
		name string
		orig *xml.Element
		want *xml.Element
	}{
		{
			name: "message swaps addresses and keeps payload",
			orig: el("", "message", "from=romeo@example.net/orchard", "to=juliet@example.com", "id=m1", "type=chat", body),
			want: el("", "message", "id=m1", "type=error", "to=romeo@example.net/orchard", "from=juliet@example.com",
				body, ErrorElement(ServiceUnavailable, "")),
		},
		{
			name: "presence without id or to",
			orig: el("", "presence", "from=romeo@example.net/orchard", "type=subscribe"),
			want: el("", "presence", "type=error", "to=romeo@example.net/orchard", ErrorElement(ServiceUnavailable, "")),
		},
		{
			name: "iq drops payload",
			orig: el("", "iq", "from=a@example.com/r", "to=example.com", "id=q1", "type=get", el("jabber:iq:version", "query")),
			want: el("", "iq", "id=q1", "type=error", "to=a@example.com/r", "from=example.com", ErrorElement(ServiceUnavailable, "")),
		},
		{
			name: "iq from client with no addresses",
			orig: el("", "iq", "id=q2", "type=set", el("urn:ietf:params:xml:ns:xmpp-bind", "bind")),
			want: el("", "iq", "id=q2", "type=error", ErrorElement(ServiceUnavailable, "")),
		},
		{
			name: "iq result may be answered",
			orig: el("", "iq", "from=a@b", "id=q3", "type=result"),
			want: el("", "iq", "id=q3", "type=error", "to=a@b", ErrorElement(ServiceUnavailable, "")),
		},
		{name: "never reply to message error", orig: el("", "message", "from=a@b", "type=error", ErrorElement(ItemNotFound, ""))},
		{name: "never reply to presence error", orig: el("", "presence", "from=a@b", "type=error")},
		{name: "never reply to iq error", orig: el("", "iq", "from=a@b", "id=x", "type=error", ErrorElement(ItemNotFound, ""))},
		{name: "not a stanza", orig: el(NSStream, "features")},
		{name: "stanza name in other namespace", orig: el("urn:example", "message")},
		{name: "nil", orig: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []xml.Attr
			if tt.orig != nil {
				before = append(before, tt.orig.Attrs...)
			}
			got := ErrorReply(tt.orig, ServiceUnavailable, "")
			if d := diffTree("", got, tt.want); d != "" {
				t.Error(d)
			}
			if tt.orig != nil && fmt.Sprint(before) != fmt.Sprint(tt.orig.Attrs) {
				t.Errorf("original modified: %v", tt.orig.Attrs)
			}
		})
	}

	// ErrorReplyFor honours the Type override of *Error.
	orig := el("", "iq", "id=1", "type=set", el("urn:x", "q"))
	got := ErrorReplyFor(orig, &Error{Condition: PolicyViolation, Type: ErrorTypeWait, Text: "rate"})
	if c, typ, text, ok := ParseError(got); !ok || c != PolicyViolation || typ != "wait" || text != "rate" {
		t.Errorf("ErrorReplyFor round trip = %v %v %v %v", c, typ, text, ok)
	}
	// ... and places an application-specific condition after the defined
	// one (RFC 6120 §8.3.2).
	app := xml.New("urn:xmpp:blocking:errors", "blocked")
	got = ErrorReplyFor(orig, &Error{Condition: NotAcceptable, App: app})
	errEl := got.Child("", "error")
	if kids := errEl.Elements(); len(kids) != 2 || kids[0].Local != "not-acceptable" || kids[1] != app {
		t.Errorf("application condition: %s", got)
	}
}

func TestParseError(t *testing.T) {
	tests := []struct {
		name      string
		in        *xml.Element
		cond      Condition
		typ, text string
		ok        bool
	}{
		{"stanza", ErrorReply(el("", "message", "from=a@b", "id=1"), ItemNotFound, "gone away"), ItemNotFound, "cancel", "gone away", true},
		{"error element", ErrorElementTyped(ResourceConstraint, "", "", nil), ResourceConstraint, "wait", "", true},
		{"explicit type kept", el("", "error", "type=modify", el(NSStanzas, "unexpected-request")), UnexpectedRequest, "modify", "", true},
		{"bad type replaced", el("", "error", "type=later", el(NSStanzas, "conflict")), Conflict, "cancel", "", true},
		{"text before condition", el("", "error", "type=auth",
			el(NSStanzas, "text", xml.CharData("who?")), el(NSStanzas, "not-authorized")), NotAuthorized, "auth", "who?", true},
		{"app-specific ignored", el("", "error", "type=cancel",
			el(NSStanzas, "feature-not-implemented"), el("http://jabber.org/protocol/pubsub#errors", "unsupported")),
			FeatureNotImplemented, "cancel", "", true},
		{"unknown condition", el("", "error", "type=auth", el(NSStanzas, "payment-required")), UndefinedCondition, "auth", "", true},
		{"legacy code-only", el("", "error", "code=404", xml.CharData("Not Found")), "", "", "", false},
		{"no error child", el("", "message", "type=error"), "", "", "", false},
		{"condition in wrong namespace", el("", "error", el("urn:other", "conflict")), "", "", "", false},
		{"stream error is not a stanza error", StreamError(StreamConflict, ""), "", "", "", false},
		{"nil", nil, "", "", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, typ, text, ok := ParseError(tt.in)
			if c != tt.cond || typ != tt.typ || text != tt.text || ok != tt.ok {
				t.Errorf("ParseError = (%q, %q, %q, %v), want (%q, %q, %q, %v)",
					c, typ, text, ok, tt.cond, tt.typ, tt.text, tt.ok)
			}
		})
	}
}

func TestViews(t *testing.T) {
	tests := []struct {
		in       *xml.Element
		stanza   bool
		kind, ty string
	}{
		{el("", "message"), true, "message", "normal"},
		{el("", "message", "type=chat"), true, "message", "chat"},
		{el("", "presence"), true, "presence", ""},
		{el("", "presence", "type=unavailable"), true, "presence", "unavailable"},
		{el("", "iq", "type=get"), true, "iq", "get"},
		{el("", "iq"), true, "iq", ""},
		{el(NSClient, "message"), false, "", ""},
		{el(NSStream, "features"), false, "", ""},
		{el("", "body"), false, "", ""},
		{nil, false, "", ""},
	}
	for _, tt := range tests {
		if IsStanza(tt.in) != tt.stanza || Kind(tt.in) != tt.kind || Type(tt.in) != tt.ty {
			t.Errorf("%v: IsStanza=%v Kind=%q Type=%q", tt.in, IsStanza(tt.in), Kind(tt.in), Type(tt.in))
		}
	}
	m := el("", "message", "to=a@b", "from=c@d", "id=1", "type=chat", el("", "body"))
	if n := testing.AllocsPerRun(100, func() { _, _, _ = IsStanza(m), Kind(m), Type(m) }); n != 0 {
		t.Errorf("views allocate: %v", n)
	}
}

func TestIQResult(t *testing.T) {
	payload := el("jabber:iq:version", "query", el("jabber:iq:version", "name", xml.CharData("Parley")))
	req := el("", "iq", "from=a@example.com/r", "to=example.com", "id=v1", "type=get", el("jabber:iq:version", "query"))
	got := IQResult(req, payload)
	want := el("", "iq", "id=v1", "type=result", "to=a@example.com/r", "from=example.com", payload)
	if d := diffTree("", got, want); d != "" {
		t.Error(d)
	}
	got = IQResult(el("", "iq", "id=s", "type=set", el("urn:x", "x")), nil)
	want = el("", "iq", "id=s", "type=result")
	if d := diffTree("", got, want); d != "" {
		t.Error(d)
	}
	for _, bad := range []*xml.Element{
		el("", "iq", "id=r", "type=result"),
		el("", "iq", "id=e", "type=error"),
		el("", "message", "id=m"),
		nil,
	} {
		if r := IQResult(bad, nil); r != nil {
			t.Errorf("IQResult(%v) = %v, want nil", bad, r)
		}
	}
}

func TestValidateIQ(t *testing.T) {
	q := func() *xml.Element { return el("jabber:iq:roster", "query") }
	ws := xml.CharData("\n  ")
	tests := []struct {
		name string
		in   *xml.Element
		ok   bool
	}{
		{"get with one child", el("", "iq", "id=1", "type=get", q()), true},
		{"set with one child and whitespace", el("", "iq", "id=1", "type=set", ws, q(), ws), true},
		{"result empty", el("", "iq", "id=1", "type=result"), true},
		{"result one child", el("", "iq", "id=1", "type=result", q()), true},
		{"error with error child", el("", "iq", "id=1", "type=error", ErrorElement(BadRequest, "")), true},
		{"error with request and error", el("", "iq", "id=1", "type=error", q(), ErrorElement(BadRequest, "")), true},
		{"missing id", el("", "iq", "type=get", q()), false},
		{"empty id", el("", "iq", "id=", "type=get", q()), false},
		{"missing type", el("", "iq", "id=1", q()), false},
		{"unknown type", el("", "iq", "id=1", "type=chat", q()), false},
		{"get without child", el("", "iq", "id=1", "type=get"), false},
		{"get with text only", el("", "iq", "id=1", "type=get", xml.CharData("x")), false},
		{"set with two children", el("", "iq", "id=1", "type=set", q(), q()), false},
		{"result with two children", el("", "iq", "id=1", "type=result", q(), q()), false},
		{"error without error child", el("", "iq", "id=1", "type=error", q()), false},
		{"not an iq", el("", "message", "id=1", "type=get", q()), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateIQ(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateIQ = %v, want ok=%v", err, tt.ok)
			}
			if err == nil {
				return
			}
			var se *Error
			if !errors.As(err, &se) || se.Condition != BadRequest || se.Text == "" {
				t.Fatalf("error = %#v, want *Error with bad-request", err)
			}
			if tt.in != nil && tt.in.Attr("type") != TypeError {
				r := ErrorReplyFor(tt.in, se)
				if tt.in.Local == "iq" || tt.in.Local == "message" {
					if c, _, _, ok := ParseError(r); !ok || c != BadRequest {
						t.Errorf("reply does not carry bad-request: %v", r)
					}
				}
			}
		})
	}
}

func TestStreamError(t *testing.T) {
	all := []StreamCondition{
		StreamBadFormat, StreamBadNamespacePrefix, StreamConflict, StreamConnectionTimeout,
		StreamHostGone, StreamHostUnknown, StreamImproperAddressing, StreamInternalServerError,
		StreamInvalidFrom, StreamInvalidNamespace, StreamInvalidXML, StreamNotAuthorized,
		StreamNotWellFormed, StreamPolicyViolation, StreamRemoteConnectionFailed, StreamReset,
		StreamResourceConstraint, StreamRestrictedXML, StreamSeeOtherHost, StreamSystemShutdown,
		StreamUndefinedCondition, StreamUnsupportedEncoding, StreamUnsupportedFeature,
		StreamUnsupportedStanzaType, StreamUnsupportedVersion,
	}
	names := "bad-format bad-namespace-prefix conflict connection-timeout host-gone host-unknown " +
		"improper-addressing internal-server-error invalid-from invalid-namespace invalid-xml " +
		"not-authorized not-well-formed policy-violation remote-connection-failed reset " +
		"resource-constraint restricted-xml see-other-host system-shutdown undefined-condition " +
		"unsupported-encoding unsupported-feature unsupported-stanza-type unsupported-version"
	if len(all) != 25 || strings.Join(func() []string {
		s := make([]string, len(all))
		for i, c := range all {
			s[i] = c.String()
		}
		return s
	}(), " ") != names {
		t.Fatalf("stream conditions do not match RFC 6120 §4.9.3.1-25")
	}
	for _, c := range all {
		if !c.Valid() {
			t.Errorf("%s not valid", c)
		}
		got := StreamError(c, "bye")
		want := el(NSStream, "error", el(NSStreams, string(c)), el(NSStreams, "text", lang, xml.CharData("bye")))
		if d := diffTree("", got, want); d != "" {
			t.Error(d)
		}
		if pc, text, ok := ParseStreamError(got); !ok || pc != c || text != "bye" {
			t.Errorf("ParseStreamError(%s) = %q, %q, %v", c, pc, text, ok)
		}
	}
	got := StreamError(StreamHostUnknown, "")
	if d := diffTree("", got, el(NSStream, "error", el(NSStreams, "host-unknown"))); d != "" {
		t.Error(d)
	}
	got = StreamError("bogus", "")
	if d := diffTree("", got, el(NSStream, "error", el(NSStreams, "undefined-condition"))); d != "" {
		t.Error(d)
	}
	got = SeeOtherHost("[2001:db8::1]:5222", "")
	if d := diffTree("", got, el(NSStream, "error", el(NSStreams, "see-other-host", xml.CharData("[2001:db8::1]:5222")))); d != "" {
		t.Error(d)
	}
	if got.ChildText(NSStreams, "see-other-host") != "[2001:db8::1]:5222" {
		t.Error("see-other-host host not readable")
	}
	for _, bad := range []*xml.Element{nil, el("", "error", el(NSStreams, "conflict")), el(NSStream, "error")} {
		if _, _, ok := ParseStreamError(bad); ok {
			t.Errorf("ParseStreamError(%v) ok", bad)
		}
	}
	if c, _, ok := ParseStreamError(el(NSStream, "error", el(NSStreams, "future-thing"))); !ok || c != StreamUndefinedCondition {
		t.Errorf("unknown stream condition = %q, %v", c, ok)
	}
}

func TestDelay(t *testing.T) {
	stamp := time.Date(2002, 9, 10, 23, 8, 25, 123456789, time.FixedZone("X", 2*3600))
	got := Delay("capulet.com", stamp, "Offline Storage")
	want := el(NSDelay, "delay", "from=capulet.com", "stamp=2002-09-10T21:08:25.123Z", xml.CharData("Offline Storage"))
	if d := diffTree("", got, want); d != "" {
		t.Error(d)
	}
	got = Delay("", time.Date(2002, 9, 10, 23, 8, 25, 0, time.UTC), "")
	want = el(NSDelay, "delay", "stamp=2002-09-10T23:08:25.000Z")
	if d := diffTree("", got, want); d != "" {
		t.Error(d)
	}
}

func TestErrorString(t *testing.T) {
	if s := (&Error{Condition: BadRequest}).Error(); s != "stanza error: bad-request" {
		t.Errorf("Error() = %q", s)
	}
	if s := (&Error{Condition: BadRequest, Text: "x"}).Error(); s != "stanza error: bad-request: x" {
		t.Errorf("Error() = %q", s)
	}
}
