package presence

import "parley/internal/mod/roster"

// Presence types of the subscription protocol (RFC 6121 §3).
const (
	typeSubscribe    = "subscribe"
	typeSubscribed   = "subscribed"
	typeUnsubscribe  = "unsubscribe"
	typeUnsubscribed = "unsubscribed"
)

func isSubscription(typ string) bool {
	switch typ {
	case typeSubscribe, typeSubscribed, typeUnsubscribe, typeUnsubscribed:
		return true
	}
	return false
}

// outcome is what the server does with a subscription stanza besides the
// state change.
type outcome struct {
	// forward: route the stanza to the contact (outbound) or deliver it to
	// the user's available resources (inbound).
	forward bool
	// reply is the type of a presence the server answers on the user's
	// behalf (inbound subscribe from an already subscribed or pre-approved
	// contact: "subscribed").
	reply string
	// sendAvailable: send the current presence of each of the user's
	// available resources to the contact (the contact just became a
	// subscriber, RFC 6121 §3.1.5).
	sendAvailable bool
	// sendUnavailable: send unavailable presence from each of the user's
	// available resources to the contact (the contact stopped being a
	// subscriber, RFC 6121 §3.2.2, §3.3.3).
	sendUnavailable bool
}

// applyOutbound applies a subscription stanza the user sends to the contact
// c, following RFC 6121 Appendix A.2 (and §3.4 for pre-approval, which this
// server supports). The user's server routes every outbound subscribe and
// unsubscribe; subscribed and unsubscribed only when they answer or cancel
// something, so a client cannot make the server spray meaningless stanzas.
func applyOutbound(typ string, c *roster.Contact) outcome {
	switch typ {
	case typeSubscribe:
		// A.2.1: None → None+PendingOut, None+PendingIn → +PendingOut,
		// From → From+PendingOut; already subscribed or asking: no change.
		// §3.1.2: the item is created if the contact is not in the roster.
		if !c.HasTo() && !c.AskOut {
			c.AskOut = true
			c.InRoster = true
		}
		return outcome{forward: true}
	case typeUnsubscribe:
		// A.2.2: To → None, Both → From, To+PendingIn → None+PendingIn,
		// and a pending outbound request is withdrawn.
		c.SetTo(false)
		c.AskOut = false
		return outcome{forward: true}
	case typeSubscribed:
		switch {
		case c.PendingIn:
			// A.2.3: approve the contact's request.
			c.PendingIn = false
			c.PreApproved = false
			c.SetFrom(true)
			c.InRoster = true
			return outcome{forward: true, sendAvailable: true}
		case !c.HasFrom():
			// §3.4.2: nothing to approve yet, so this pre-approves the
			// contact; the stanza is not routed.
			c.PreApproved = true
			c.InRoster = true
		}
		return outcome{}
	case typeUnsubscribed:
		// §3.4: unsubscribed also withdraws a pre-approval.
		c.PreApproved = false
		// A.2.4: deny the contact's request or cancel its subscription.
		return cancelFrom(c)
	}
	return outcome{}
}

// cancelFrom ends the contact's side of the relationship, whichever way it
// is reached (the user sends unsubscribed, A.2.4; the contact sends
// unsubscribe, A.3.3): a pending request is dropped, or an existing
// subscription from the contact is cancelled and the contact is told the
// user is now unavailable to it.
func cancelFrom(c *roster.Contact) outcome {
	switch {
	case c.PendingIn:
		c.PendingIn = false
		return outcome{forward: true}
	case c.HasFrom():
		c.SetFrom(false)
		return outcome{forward: true, sendUnavailable: true}
	}
	return outcome{}
}

// applyInbound applies a subscription stanza that the contact c sent to the
// user, following RFC 6121 Appendix A.3 and §3.4 (pre-approval).
func applyInbound(typ string, c *roster.Contact) outcome {
	switch typ {
	case typeSubscribe:
		switch {
		case c.HasFrom():
			// A.3.1: already subscribed; the server SHOULD answer
			// subscribed itself (the request may be a retry after a lost
			// answer).
			return outcome{reply: typeSubscribed}
		case c.PreApproved:
			// §3.4.2: approve automatically, without bothering the user.
			c.PreApproved = false
			c.PendingIn = false
			c.SetFrom(true)
			return outcome{reply: typeSubscribed, sendAvailable: true}
		case c.PendingIn:
			// A.3.1: a duplicate request is not delivered again.
			return outcome{}
		}
		c.PendingIn = true
		return outcome{forward: true}
	case typeSubscribed:
		// A.3.2: only an answer to our pending request counts.
		if !c.AskOut {
			return outcome{}
		}
		c.AskOut = false
		c.SetTo(true)
		return outcome{forward: true}
	case typeUnsubscribe:
		// A.3.3: the contact withdraws its request or its subscription.
		return cancelFrom(c)
	case typeUnsubscribed:
		// A.3.4: the contact denies our request or cancels our
		// subscription.
		switch {
		case c.AskOut:
			c.AskOut = false
			return outcome{forward: true}
		case c.HasTo():
			c.SetTo(false)
			return outcome{forward: true}
		}
		return outcome{}
	}
	return outcome{}
}
