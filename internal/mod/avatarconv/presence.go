package avatarconv

import (
	"context"
	"strings"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// setHash records owner's current avatar hash ("" for none) after a
// conversion, or forgets it (known false) so that the next presence looks
// it up. Only accounts with sessions are remembered: only they send
// presence. Every change bumps gen, which stops a lookup that started
// before it from caching what it read.
func (c *Conv) setHash(owner jid.JID, hash string, known bool) {
	owner = owner.Bare()
	online := len(c.h.Router.Sessions(owner)) > 0
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if known && online {
		c.hashes[owner] = hash
	} else {
		delete(c.hashes, owner)
	}
}

// hash returns owner's current avatar hash, "" when it has none: the ID of
// the image its XEP-0084 metadata announces, else (no metadata published)
// the SHA-1 of its vCard PHOTO, which on directory hosts may come from the
// directory. ok is false when storage could not tell.
func (c *Conv) hash(ctx context.Context, owner jid.JID) (string, bool) {
	c.mu.Lock()
	h, ok := c.hashes[owner]
	gen := c.gen
	c.mu.Unlock()
	if ok {
		return h, true
	}
	h, ok = c.lookup(ctx, owner)
	if !ok {
		return "", false
	}
	c.mu.Lock()
	if c.gen == gen {
		c.hashes[owner] = h
	}
	c.mu.Unlock()
	return h, true
}

func (c *Conv) lookup(ctx context.Context, owner jid.JID) (string, bool) {
	last, err := c.pep.PubSub().LastItem(ctx, owner.String(), NSMetadata)
	if err != nil {
		c.h.Log.Warn("avatarconv: avatar metadata", "owner", owner.String(), "err", err)
		return "", false
	}
	if last != nil && last.Payload != nil {
		if info, empty := localInfo(last.Payload); info != nil {
			return strings.ToLower(info.Attr("id")), true
		} else if empty {
			return "", true
		}
	}
	card, err := c.vcard.Get(ctx, owner)
	if err != nil {
		c.h.Log.Warn("avatarconv: vCard", "owner", owner.String(), "err", err)
		return "", false
	}
	if data, _, ok := vcardPhoto(card); ok {
		return hashOf(data), true
	}
	return "", true
}

// stamp returns available presence el of owner with the XEP-0153 update
// element carrying the current hash, replacing any the client put there
// (XEP-0398 §4), except an empty <photo/>: a client sends that while it is
// not ready to advertise an avatar, and §4 says to leave it. The server
// never adds an empty <photo/> itself, for the same reason: a stored
// presence it had stamped so would then keep "no avatar" after one was
// published. With no avatar, a hash the client claims is replaced by an
// empty <photo/> and a presence without one is left as it is. Anything
// else, and any presence when the hash cannot be learnt, is unchanged.
func (c *Conv) stamp(ctx context.Context, owner jid.JID, el *xml.Element) *xml.Element {
	if el.Attr("type") != "" {
		return el
	}
	cur := ""
	if x := el.Child(NSUpdate, "x"); x != nil {
		p := x.Child(NSUpdate, "photo")
		if p != nil && strings.TrimSpace(p.Text()) == "" {
			return el
		}
		if p != nil {
			cur = strings.TrimSpace(p.Text())
		}
	}
	h, ok := c.hash(ctx, owner)
	if !ok || (h == "" && cur == "") {
		return el
	}
	x := xml.New(NSUpdate, "x").Append(xml.New(NSUpdate, "photo").AppendText(h))
	if x := el.Child(NSUpdate, "x"); x != nil && cur == h && len(x.Elements()) == 1 {
		return el // already right: keep the stanza as it is
	}
	return el.WithoutChildren(func(e *xml.Element) bool { return e.Space == NSUpdate && e.Local == "x" }).WithChildren(x)
}

// stampOut stamps a client's presence before the presence module stores
// and broadcasts it, so the reflection to the client's own resources and
// the presence answered to later probes carry the hash too.
func (c *Conv) stampOut(ev *module.StanzaEvent) bool {
	if ev.Origin != nil && ev.From.Local() != "" {
		ev.Stanza = c.stamp(ev.Ctx, ev.From.Bare(), ev.Stanza)
	}
	return false
}

// stampEgress stamps every available presence an account sends, its
// clients' and what modules send for it (broadcasts, directed presence
// such as MUC joins, answers to probes), so a presence stored before the
// avatar changed goes out with the current hash.
func (c *Conv) stampEgress(ev *module.StanzaEvent) bool {
	if ev.From.Local() != "" && ev.From.Resource() != "" {
		ev.Stanza = c.stamp(ev.Ctx, ev.From.Bare(), ev.Stanza)
	}
	return false
}

// unbound forgets the hash of an account whose last session ended.
func (c *Conv) unbound(ev *module.SessionEvent) bool {
	owner := ev.Session.JID().Bare()
	if len(c.h.Router.Sessions(owner)) == 0 {
		c.mu.Lock()
		delete(c.hashes, owner)
		c.mu.Unlock()
	}
	return false
}

// deleted forgets a deleted account.
func (c *Conv) deleted(ev *module.AccountEvent) bool {
	c.setHash(ev.JID, "", false)
	return false
}
