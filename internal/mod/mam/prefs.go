package mam

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Preferences (XEP-0441) live in the KV store: bucket "mam.prefs", owner
// the account, key "prefs", a JSON record. Accounts.Delete removes them
// with the account.
const (
	prefsBucket = "mam.prefs"
	prefsKey    = "prefs"
	// maxPrefsJIDs bounds the always and never lists together, so that
	// the record read for every message stays small.
	maxPrefsJIDs = 1000
)

// prefs is an account's archiving preferences.
type prefs struct {
	Default string   `json:"default"` // always, never, roster
	Always  []string `json:"always,omitempty"`
	Never   []string `json:"never,omitempty"`
}

// load returns owner's preferences, or the host default when none are set.
func (m *Module) load(ctx context.Context, owner jid.JID) (prefs, error) {
	p := prefs{Default: m.cfg.Default}
	b, err := m.h.Store.KV().Get(ctx, prefsBucket, owner.String(), prefsKey)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return p, nil
	case err != nil:
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return prefs{Default: m.cfg.Default}, err
	}
	return p, nil
}

// matches applies XEP-0441 §2.3: an entry with a resource matches that full
// JID only, a bare entry any JID of that account.
func matches(list []string, target jid.JID) bool {
	for _, e := range list {
		if e == target.String() || e == target.Bare().String() {
			return true
		}
	}
	return false
}

// wants reports whether owner archives messages exchanged with other
// (the 'to' of an outgoing message, the 'from' of an incoming one). The
// never list wins over the always list: a JID on both is a contradiction,
// and not keeping a message is the outcome its owner cannot regret later.
// When the preferences cannot be read the host default applies, and the
// error is returned for the log.
func (m *Module) wants(ctx context.Context, owner, other jid.JID) (bool, error) {
	p, err := m.load(ctx, owner)
	switch {
	case matches(p.Never, other):
		return false, err
	case matches(p.Always, other):
		return true, err
	}
	switch p.Default {
	case "always":
		return true, err
	case "roster":
		if other.Bare() == owner {
			return true, err // one's own messages, from another device
		}
		_, rerr := m.h.Store.Roster().Get(ctx, owner.String(), other.Bare().String())
		if rerr != nil && !errors.Is(rerr, storage.ErrNotFound) {
			return false, rerr
		}
		return rerr == nil, err
	}
	return false, err
}

// prefsElement is the <prefs/> answer: the default and both lists, always
// present even when empty (XEP-0441 §2.1).
func prefsElement(p prefs) *xml.Element {
	el := xml.New(NS, "prefs").SetAttr("default", p.Default)
	for _, l := range []struct {
		name string
		jids []string
	}{{"always", p.Always}, {"never", p.Never}} {
		list := xml.New(NS, l.name)
		for _, j := range l.jids {
			list.Append(xml.New(NS, "jid").AppendText(j))
		}
		el.Append(list)
	}
	return el
}

// getPrefs answers a preferences request of the account itself.
func (m *Module) getPrefs(ev *module.StanzaEvent) *xml.Element {
	p, err := m.load(ev.Ctx, ev.To.Bare())
	if err != nil {
		m.h.Log.Warn("mam: preferences", "owner", ev.To.Bare().String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	return stanza.IQResult(ev.Stanza, prefsElement(p))
}

// setPrefs replaces the account's preferences and answers with what was
// stored (XEP-0441 §2.1): JIDs normalised, duplicates dropped.
func (m *Module) setPrefs(ev *module.StanzaEvent, q *xml.Element) *xml.Element {
	p := prefs{Default: q.Attr("default")}
	switch p.Default {
	case "always", "never", "roster":
	default:
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "default must be always, never or roster")
	}
	n := 0
	for _, l := range []struct {
		name string
		dst  *[]string
	}{{"always", &p.Always}, {"never", &p.Never}} {
		seen := map[string]bool{}
		for _, list := range q.Elements() {
			if list.Space != NS || list.Local != l.name {
				continue
			}
			for _, e := range list.Elements() {
				if e.Space != NS || e.Local != "jid" {
					continue
				}
				j, err := jid.Parse(e.Text())
				if err != nil {
					return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "not a JID: "+e.Text())
				}
				if seen[j.String()] {
					continue
				}
				seen[j.String()] = true
				if n++; n > maxPrefsJIDs {
					return stanza.ErrorReply(ev.Stanza, stanza.PolicyViolation, "at most "+strconv.Itoa(maxPrefsJIDs)+" JIDs in always and never")
				}
				*l.dst = append(*l.dst, j.String())
			}
		}
	}
	b, err := json.Marshal(p)
	if err == nil {
		err = m.h.Store.KV().Set(ev.Ctx, prefsBucket, ev.To.Bare().String(), prefsKey, b)
	}
	if err != nil {
		m.h.Log.Warn("mam: preferences", "owner", ev.To.Bare().String(), "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	return stanza.IQResult(ev.Stanza, prefsElement(p))
}
