package presence

import (
	"strings"
	"testing"

	"parley/internal/mod/roster"
	"parley/internal/storage"
)

// state builds a contact from the notation of RFC 6121 Appendix A:
// "None", "None+Out", "None+In", "None+Out+In", "To", "To+In", "From",
// "From+Out", "Both"; "+Pre" adds a pre-approval.
func state(s string) roster.Contact {
	parts := strings.Split(s, "+")
	c := roster.Contact{InRoster: true}
	c.Subscription = strings.ToLower(parts[0])
	for _, p := range parts[1:] {
		switch p {
		case "Out":
			c.AskOut = true
		case "In":
			c.PendingIn = true
		case "Pre":
			c.PreApproved = true
		}
	}
	return c
}

func name(c roster.Contact) string {
	s := strings.ToUpper(c.Subscription[:1]) + c.Subscription[1:]
	if c.AskOut {
		s += "+Out"
	}
	if c.PendingIn {
		s += "+In"
	}
	if c.PreApproved {
		s += "+Pre"
	}
	return s
}

type row struct {
	from    string
	forward bool
	to      string // "" = no state change
}

func check(t *testing.T, dir, typ string, apply func(string, *roster.Contact) outcome, rows []row) {
	t.Helper()
	for _, r := range rows {
		c := state(r.from)
		out := apply(typ, &c)
		want := r.to
		if want == "" {
			want = r.from
		}
		if name(c) != want || out.forward != r.forward {
			t.Errorf("%s %s in %s: got %s forward=%v, want %s forward=%v", dir, typ, r.from, name(c), out.forward, want, r.forward)
		}
	}
}

// The tables of RFC 6121 Appendix A.2 (outbound) and A.3 (inbound), row by
// row.
func TestAppendixA(t *testing.T) {
	check(t, "outbound", typeSubscribe, applyOutbound, []row{ // A.2.1
		{"None", true, "None+Out"},
		{"None+Out", true, ""},
		{"None+In", true, "None+Out+In"},
		{"None+Out+In", true, ""},
		{"To", true, ""},
		{"To+In", true, ""},
		{"From", true, "From+Out"},
		{"From+Out", true, ""},
		{"Both", true, ""},
	})
	check(t, "outbound", typeUnsubscribe, applyOutbound, []row{ // A.2.2
		{"None", true, ""},
		{"None+Out", true, "None"},
		{"None+In", true, ""},
		{"None+Out+In", true, "None+In"},
		{"To", true, "None"},
		{"To+In", true, "None+In"},
		{"From", true, ""},
		{"From+Out", true, "From"},
		{"Both", true, "From"},
	})
	check(t, "outbound", typeSubscribed, applyOutbound, []row{ // A.2.3, §3.4 pre-approval
		{"None", false, "None+Pre"},
		{"None+Out", false, "None+Out+Pre"},
		{"None+In", true, "From"},
		{"None+Out+In", true, "From+Out"},
		{"To", false, "To+Pre"},
		{"To+In", true, "Both"},
		{"From", false, ""},
		{"From+Out", false, ""},
		{"Both", false, ""},
	})
	check(t, "outbound", typeUnsubscribed, applyOutbound, []row{ // A.2.4
		{"None", false, ""},
		{"None+Out", false, ""},
		{"None+In", true, "None"},
		{"None+Out+In", true, "None+Out"},
		{"To", false, ""},
		{"To+In", true, "To"},
		{"From", true, "None"},
		{"From+Out", true, "None+Out"},
		{"Both", true, "To"},
		{"None+Pre", false, "None"},
	})
	check(t, "inbound", typeSubscribe, applyInbound, []row{ // A.3.1
		{"None", true, "None+In"},
		{"None+Out", true, "None+Out+In"},
		{"None+In", false, ""},
		{"None+Out+In", false, ""},
		{"To", true, "To+In"},
		{"To+In", false, ""},
		{"From", false, ""},
		{"From+Out", false, ""},
		{"Both", false, ""},
		{"None+Pre", false, "From"},
		{"To+Pre", false, "Both"},
	})
	check(t, "inbound", typeSubscribed, applyInbound, []row{ // A.3.2
		{"None", false, ""},
		{"None+Out", true, "To"},
		{"None+In", false, ""},
		{"None+Out+In", true, "To+In"},
		{"To", false, ""},
		{"To+In", false, ""},
		{"From", false, ""},
		{"From+Out", true, "Both"},
		{"Both", false, ""},
	})
	check(t, "inbound", typeUnsubscribe, applyInbound, []row{ // A.3.3
		{"None", false, ""},
		{"None+Out", false, ""},
		{"None+In", true, "None"},
		{"None+Out+In", true, "None+Out"},
		{"To", false, ""},
		{"To+In", true, "To"},
		{"From", true, "None"},
		{"From+Out", true, "None+Out"},
		{"Both", true, "To"},
	})
	check(t, "inbound", typeUnsubscribed, applyInbound, []row{ // A.3.4
		{"None", false, ""},
		{"None+Out", true, "None"},
		{"None+In", false, ""},
		{"None+Out+In", true, "None+In"},
		{"To", true, "None"},
		{"To+In", true, "None+In"},
		{"From", false, ""},
		{"From+Out", true, "From"},
		{"Both", true, "From"},
	})
}

// The server answers for the user where RFC 6121 lets it, and shares or
// withdraws presence when a subscriber comes or goes.
func TestOutcomes(t *testing.T) {
	tests := []struct {
		dir, typ, from string
		want           outcome
	}{
		{"in", typeSubscribe, "Both", outcome{reply: typeSubscribed}},
		{"in", typeSubscribe, "None+Pre", outcome{reply: typeSubscribed, sendAvailable: true}},
		{"in", typeUnsubscribe, "From", outcome{forward: true, sendUnavailable: true}},
		{"out", typeSubscribed, "None+In", outcome{forward: true, sendAvailable: true}},
		{"out", typeUnsubscribed, "Both", outcome{forward: true, sendUnavailable: true}},
		{"out", typeUnsubscribed, "None+In", outcome{forward: true}},
	}
	for _, tt := range tests {
		c := state(tt.from)
		apply := applyOutbound
		if tt.dir == "in" {
			apply = applyInbound
		}
		if got := apply(tt.typ, &c); got != tt.want {
			t.Errorf("%s %s in %s: %+v, want %+v", tt.dir, tt.typ, tt.from, got, tt.want)
		}
	}
}

// A contact that is not in the roster gets one only where RFC 6121 says
// the server creates the item.
func TestItemCreation(t *testing.T) {
	tests := []struct {
		dir, typ string
		pending  bool
		want     bool
	}{
		{"out", typeSubscribe, false, true},    // §3.1.2
		{"out", typeSubscribed, true, true},    // §3.1.5
		{"out", typeSubscribed, false, true},   // §3.4.2 pre-approval
		{"out", typeUnsubscribed, true, false}, // denying a request
		{"out", typeUnsubscribe, false, false},
		{"in", typeSubscribe, false, false}, // kept outside the roster
		{"in", typeSubscribed, false, false},
		{"in", typeUnsubscribe, true, false},
	}
	for _, tt := range tests {
		c := roster.Contact{}
		c.Subscription = storage.SubNone
		c.PendingIn = tt.pending
		apply := applyOutbound
		if tt.dir == "in" {
			apply = applyInbound
		}
		apply(tt.typ, &c)
		if c.InRoster != tt.want {
			t.Errorf("%s %s (pending %v): in roster %v, want %v", tt.dir, tt.typ, tt.pending, c.InRoster, tt.want)
		}
	}
}
