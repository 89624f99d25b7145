package push

import (
	"context"
	"strconv"
	"strings"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

const (
	nsData          = "jabber:x:data"
	nsPubSub        = "http://jabber.org/protocol/pubsub"
	formPublishOpts = "http://jabber.org/protocol/pubsub#publish-options"
	formPushSummary = "urn:xmpp:push:summary"
	maxNodeBytes    = 1024
	maxOptionsBytes = 4096
	registrationSep = " "
)

// registration is one stored enable: where to publish, and the
// publish-options form to publish with (nil when the client gave none).
type registration struct {
	service string
	node    string
	options *xml.Element
}

func regKey(service, node string) string { return service + registrationSep + node }

// iqSet answers <enable/> and <disable/> (XEP-0357 §5). TargetSelf already
// limits both to the account itself.
func (p *Push) iqSet(ev *module.StanzaEvent, el *xml.Element) *xml.Element {
	switch el.Local {
	case "enable":
		return p.enable(ev, el)
	case "disable":
		return p.disable(ev, el)
	}
	return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "expected <enable/> or <disable/>")
}

// enable stores a registration, replacing one with the same service and
// node (a client re-enables on every login with a fresh form). Both
// attributes are required by §5; the optional form must be a submitted
// publish-options form, kept whole to go with every notification.
func (p *Push) enable(ev *module.StanzaEvent, el *xml.Element) *xml.Element {
	service, err := jid.Parse(el.Attr("jid"))
	if err != nil || el.Attr("jid") == "" {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "enable needs the app server's jid")
	}
	node := el.Attr("node")
	if node == "" || len(node) > maxNodeBytes {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "enable needs a node")
	}
	var value []byte
	if x := el.Child(nsData, "x"); x != nil {
		if x.Attr("type") != "submit" || formType(x) != formPublishOpts {
			return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "the form must be a submitted "+formPublishOpts+" form")
		}
		if value = x.Bytes(); len(value) > maxOptionsBytes {
			return stanza.ErrorReply(ev.Stanza, stanza.NotAcceptable, "publish-options form exceeds "+strconv.Itoa(maxOptionsBytes)+" bytes")
		}
	}
	owner := ev.From.Bare().String()
	kv := p.h.Store.KV()
	regs, err := kv.List(ev.Ctx, kvBucket, owner)
	if err != nil {
		p.h.Log.Warn("push: list registrations", "owner", owner, "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	key := regKey(service.String(), node)
	if _, known := regs[key]; !known && len(regs) >= p.h.HostCfg.Push.MaxRegistrations {
		return stanza.ErrorReply(ev.Stanza, stanza.ResourceConstraint, "at most "+strconv.Itoa(p.h.HostCfg.Push.MaxRegistrations)+" push registrations per account")
	}
	if value == nil {
		value = []byte{} // stored as "no options"
	}
	if err := kv.Set(ev.Ctx, kvBucket, owner, key, value); err != nil {
		p.h.Log.Warn("push: store registration", "owner", owner, "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	p.h.Log.Debug("push: enabled", "owner", owner, "service", service.String())
	return stanza.IQResult(ev.Stanza, nil)
}

// disable removes the registration with the given service and node, or
// every registration with that service when no node is given (§5.2).
// Removing what is not there succeeds: the client's wish is fulfilled.
func (p *Push) disable(ev *module.StanzaEvent, el *xml.Element) *xml.Element {
	service, err := jid.Parse(el.Attr("jid"))
	if err != nil || el.Attr("jid") == "" {
		return stanza.ErrorReply(ev.Stanza, stanza.BadRequest, "disable needs the app server's jid")
	}
	owner := ev.From.Bare().String()
	if node := el.Attr("node"); node != "" {
		err = p.h.Store.KV().Delete(ev.Ctx, kvBucket, owner, regKey(service.String(), node))
	} else {
		err = p.removeService(ev.Ctx, owner, service.String())
	}
	if err != nil {
		p.h.Log.Warn("push: disable", "owner", owner, "err", err)
		return stanza.ErrorReply(ev.Stanza, stanza.InternalServerError, "")
	}
	return stanza.IQResult(ev.Stanza, nil)
}

func (p *Push) removeService(ctx context.Context, owner, service string) error {
	kv := p.h.Store.KV()
	regs, err := kv.List(ctx, kvBucket, owner)
	if err != nil {
		return err
	}
	for k := range regs {
		if s, _, _ := strings.Cut(k, registrationSep); s == service {
			if err := kv.Delete(ctx, kvBucket, owner, k); err != nil {
				return err
			}
		}
	}
	return nil
}

// registrations returns owner's registrations; a stored form that no
// longer parses is dropped from the notification but the registration
// still fires (the app server may not need the options).
func (p *Push) registrations(ctx context.Context, owner jid.JID) ([]registration, error) {
	regs, err := p.h.Store.KV().List(ctx, kvBucket, owner.String())
	if err != nil {
		return nil, err
	}
	out := make([]registration, 0, len(regs))
	lim := xml.Limits{MaxStanzaBytes: 2 * maxOptionsBytes, MaxDepth: p.h.Config.Limits.MaxDepth + 1, MaxAttrs: p.h.Config.Limits.MaxAttrs}
	for k, v := range regs {
		service, node, _ := strings.Cut(k, registrationSep)
		r := registration{service: service, node: node}
		if len(v) > 0 {
			if x, err := xml.ParseElement(v, lim, stanza.NSClient); err == nil {
				r.options = x
			} else {
				p.h.Log.Warn("push: stored publish-options do not parse", "owner", owner.String(), "err", err)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// formType returns a data form's FORM_TYPE value.
func formType(x *xml.Element) string {
	for _, f := range x.Elements() {
		if f.Local == "field" && f.Attr("var") == "FORM_TYPE" {
			return strings.TrimSpace(f.ChildText(nsData, "value"))
		}
	}
	return ""
}
