// Package bookmarks keeps XEP-0402 PEP native bookmarks (the
// urn:xmpp:bookmarks:1 node of the account's personal eventing service, one
// item per room) and the XEP-0048 bookmarks that older clients keep in
// XEP-0049 private XML storage (one <storage xmlns='storage:bookmarks'/>)
// in step, as XEP-0402 §5.3 ("Compatibility") allows and announces with
// urn:xmpp:bookmarks:1#compat: a legacy client's change reaches PEP
// clients as notifications of exactly the items that changed, and a PEP
// client's change is what legacy clients read next. The third form, the
// XEP-0048 <storage/> published to the storage:bookmarks PEP node, is
// kept in step as well (XEP-0411, urn:xmpp:bookmarks-conversion:0):
// private XML is its mirror, so every change of either legacy form is
// the same change.
package bookmarks

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"

	"parley/internal/mod/pep"
	"parley/internal/mod/private"
	"parley/internal/module"
	"parley/internal/pubsub"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Namespaces.
const (
	// NS is XEP-0402's node and payload namespace.
	NS = "urn:xmpp:bookmarks:1"
	// NSCompat announces the unification with private XML (XEP-0402 §5.3).
	NSCompat = NS + "#compat"
	// NSLegacy is XEP-0048's storage namespace, and the name of the PEP
	// node XEP-0048 §3.3 publishes it to.
	NSLegacy = "storage:bookmarks"
	// NSConversion announces that the server converts between the private
	// XML and the PEP form of XEP-0048 (XEP-0411 §2).
	NSConversion = "urn:xmpp:bookmarks-conversion:0"
	// legacyItem is the one item of the storage:bookmarks node
	// (XEP-0048 §3.3).
	legacyItem = "current"
)

// lockStripes is the number of locks owners are spread over: conversions
// of one owner run one at a time, and the lock table never grows.
const lockStripes = 64

// Bookmarks is the module of one host.
type Bookmarks struct {
	h     *module.Host
	pep   *pep.PEP
	priv  *private.Private
	locks [lockStripes]sync.Mutex
	offs  []func()
}

var _ module.Module = (*Bookmarks)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) { return &Bookmarks{h: h}, nil }

// Name implements module.Module.
func (*Bookmarks) Name() string { return "bookmarks" }

// Start connects the two views: it watches private XML sets of
// storage:bookmarks and the events of the bookmarks node, and converts
// existing bookmarks when a user logs in. Both the private and the pep
// module must run.
func (b *Bookmarks) Start(context.Context) error {
	b.pep, b.priv = pep.Of(b.h), private.Of(b.h)
	if b.pep == nil || b.priv == nil {
		return errors.New("bookmarks: the private and pep modules must run")
	}
	b.priv.Watch(NSLegacy, "storage", b.fromPrivate)
	b.pep.Subscribe(b.fromPEP)
	b.h.AddAccountFeature(NSCompat)
	b.h.AddAccountFeature(NSConversion)
	b.offs = append(b.offs, b.h.Sessions.On(module.EventSessionBound, 0, b.bound))
	return nil
}

// Stop removes the hooks (the watchers live as long as the host).
func (b *Bookmarks) Stop(context.Context) error {
	for _, off := range b.offs {
		off()
	}
	b.offs = nil
	return nil
}

func (b *Bookmarks) lock(owner jid.JID) func() {
	h := fnv.New32a()
	h.Write([]byte(owner.String()))
	m := &b.locks[h.Sum32()%lockStripes]
	m.Lock()
	return m.Unlock
}

// converting marks a context in which the module itself changes the
// bookmarks node, so that it does not convert its own change back.
type converting struct{}

func isConverting(ctx context.Context) bool { return ctx.Value(converting{}) != nil }

// nodeConfig is the configuration XEP-0402 §3 asks clients to publish with:
// persistent, as many items as allowed, never sent as last items, and
// private to the account (XEP-0223). The module creates the node with it.
func nodeConfig() *xml.Element {
	return form(pubsub.NSNodeConfig, "persist_items", "true", "max_items", "max",
		"send_last_published_item", "never", "access_model", pubsub.AccessWhitelist)
}

// preconditions are what the module requires of an existing node before it
// publishes converted bookmarks there: that it keeps them (all of them) and
// keeps them private. A node someone configured otherwise is left alone
// rather than reconfigured: the conversion must never make bookmarks
// readable by others (XEP-0411 §5 makes the same point) nor drop them.
func preconditions() *xml.Element {
	return form(pubsub.NSPublishOptions, "persist_items", "true", "max_items", "max", "access_model", pubsub.AccessWhitelist)
}

func form(formType string, fields ...string) *xml.Element {
	x := xml.New(pubsub.NSData, "x").SetAttr("type", "submit")
	x.Append(xml.New(pubsub.NSData, "field").SetAttr("var", "FORM_TYPE").SetAttr("type", "hidden").
		Append(xml.New(pubsub.NSData, "value").AppendText(formType)))
	for i := 0; i+1 < len(fields); i += 2 {
		x.Append(xml.New(pubsub.NSData, "field").SetAttr("var", "pubsub#"+fields[i]).
			Append(xml.New(pubsub.NSData, "value").AppendText(fields[i+1])))
	}
	return x
}

// fromPrivate applies a legacy client's <storage/> to the bookmarks node:
// new and changed rooms are published, rooms no longer listed retracted,
// unchanged ones left alone (XEP-0402 §5.3.2: no notifications for them).
// A room's <extensions/> from its PEP item are kept, since the legacy
// format cannot carry them.
func (b *Bookmarks) fromPrivate(ctx context.Context, owner jid.JID, storageEl *xml.Element) {
	defer b.lock(owner)()
	ctx = context.WithValue(ctx, converting{}, true)
	b.toPEP(ctx, owner, storageEl)
	b.toLegacyPEP(ctx, owner, storageEl)
}

// legacyOptions are the publish options XEP-0048 §3.3 asks for: the
// storage kept, and private to the account.
func legacyOptions() *xml.Element {
	return form(pubsub.NSPublishOptions, "persist_items", "true", "access_model", pubsub.AccessWhitelist)
}

// toLegacyPEP publishes storageEl as the one item of the storage:bookmarks
// node (XEP-0411 §3: what a private XML client stores, PEP clients of
// XEP-0048 receive). ctx is a converting one, so the module does not
// convert its own publication back. A node configured to be readable by
// others is left alone (the preconditions fail), as for the native node.
func (b *Bookmarks) toLegacyPEP(ctx context.Context, owner jid.JID, storageEl *xml.Element) {
	svc := b.pep.PubSub()
	_, err := svc.Items(ctx, owner.String(), owner, NSLegacy, []string{legacyItem}, 0)
	var pe *pubsub.Error
	if errors.As(err, &pe) && pe.Condition == stanza.ItemNotFound {
		err = svc.CreateNode(ctx, owner.String(), owner, NSLegacy,
			form(pubsub.NSNodeConfig, "persist_items", "true", "access_model", pubsub.AccessWhitelist))
		if errors.As(err, &pe) && pe.Condition == stanza.Conflict {
			err = nil
		}
	}
	if err != nil {
		b.h.Log.Error("bookmarks: preparing the storage:bookmarks node", "owner", owner.String(), "err", err)
		return
	}
	_, err = svc.Publish(ctx, owner.String(), owner, NSLegacy, pubsub.Item{ID: legacyItem, Payload: storageEl}, legacyOptions())
	if errors.As(err, &pe) && pe.App == "precondition-not-met" {
		b.h.Log.Warn("bookmarks: not converting to the storage:bookmarks node, it is not private or does not keep its item", "owner", owner.String(), "reason", pe.Text)
		return
	}
	if err != nil {
		b.h.Log.Error("bookmarks: publishing to the storage:bookmarks node", "owner", owner.String(), "err", err)
	}
}

// fromLegacyPEP applies a <storage/> a client published to the
// storage:bookmarks node: private XML takes it as it is (its <url/>
// bookmarks included), and the native node the rooms in it.
func (b *Bookmarks) fromLegacyPEP(ctx context.Context, owner jid.JID, ev *pubsub.Event) {
	if len(ev.Items) == 0 {
		return
	}
	storageEl := ev.Items[len(ev.Items)-1].Payload
	if storageEl == nil || storageEl.Space != NSLegacy || storageEl.Local != "storage" {
		return
	}
	defer b.lock(owner)()
	if err := b.priv.Put(ctx, owner, storageEl); err != nil {
		b.h.Log.Error("bookmarks: writing private XML bookmarks", "owner", owner.String(), "err", err)
		return
	}
	b.toPEP(context.WithValue(ctx, converting{}, true), owner, storageEl)
}

func (b *Bookmarks) toPEP(ctx context.Context, owner jid.JID, storageEl *xml.Element) {
	svc := b.pep.PubSub()
	existing, err := svc.Items(ctx, owner.String(), owner, NS, nil, 0)
	var pe *pubsub.Error
	if errors.As(err, &pe) && pe.Condition == stanza.ItemNotFound {
		if storageEl.Child(NSLegacy, "conference") == nil {
			return // nothing to publish, no node to create
		}
		existing = nil
		err = svc.CreateNode(ctx, owner.String(), owner, NS, nodeConfig())
		if errors.As(err, &pe) && pe.Condition == stanza.Conflict {
			err = nil // created meanwhile; the preconditions check it
		}
	}
	if err != nil {
		b.h.Log.Error("bookmarks: preparing the bookmarks node", "owner", owner.String(), "err", err)
		return
	}
	have := make(map[string]*xml.Element, len(existing))
	for _, it := range existing {
		have[it.ID] = it.Payload
	}
	want := map[string]bool{}
	for _, c := range storageEl.Elements() {
		if c.Space != NSLegacy || c.Local != "conference" {
			continue
		}
		room, err := jid.Parse(c.Attr("jid"))
		if err != nil || room.Local() == "" || want[room.String()] {
			continue
		}
		id := room.String()
		want[id] = true
		conf := toNative(c, have[id])
		if old, ok := have[id]; ok && same(old, conf) {
			continue
		}
		_, err = svc.Publish(ctx, owner.String(), owner, NS, pubsub.Item{ID: id, Payload: conf}, preconditions())
		if errors.As(err, &pe) && pe.App == "precondition-not-met" {
			b.h.Log.Warn("bookmarks: not converting private XML bookmarks, the bookmarks node is not private or does not keep them all", "owner", owner.String(), "reason", pe.Text)
			return
		}
		if err != nil {
			b.h.Log.Error("bookmarks: publishing a converted bookmark", "owner", owner.String(), "room", id, "err", err)
			return
		}
	}
	for _, it := range existing {
		if want[it.ID] {
			continue
		}
		if err := svc.Retract(ctx, owner.String(), owner, NS, it.ID, nil); err != nil {
			b.h.Log.Error("bookmarks: retracting a removed bookmark", "owner", owner.String(), "room", it.ID, "err", err)
		}
	}
}

// fromPEP rewrites the legacy <storage/> after any change of the bookmarks
// node that the module did not make itself: publications, retractions, a
// purge or the node's deletion. The legacy <url/> bookmarks, which
// XEP-0402 dropped, are kept as they were.
func (b *Bookmarks) fromPEP(ctx context.Context, ev *pubsub.Event) {
	if isConverting(ctx) {
		return
	}
	if ev.Node == NSLegacy && ev.Kind == pubsub.EventPublish {
		if owner, err := jid.Parse(ev.Service); err == nil {
			b.fromLegacyPEP(ctx, owner, ev)
		}
		return
	}
	if ev.Node != NS {
		return
	}
	switch ev.Kind {
	case pubsub.EventPublish, pubsub.EventRetract, pubsub.EventPurge, pubsub.EventDelete:
	default:
		return
	}
	owner, err := jid.Parse(ev.Service)
	if err != nil {
		return
	}
	defer b.lock(owner)()
	b.toPrivate(ctx, owner)
}

func (b *Bookmarks) toPrivate(ctx context.Context, owner jid.JID) {
	items, err := b.pep.PubSub().Items(ctx, owner.String(), owner, NS, nil, 0)
	var pe *pubsub.Error
	if errors.As(err, &pe) && pe.Condition == stanza.ItemNotFound {
		items, err = nil, nil
	}
	if err != nil {
		b.h.Log.Error("bookmarks: reading the bookmarks node", "owner", owner.String(), "err", err)
		return
	}
	old, err := b.priv.Get(ctx, owner, NSLegacy, "storage")
	if err != nil {
		b.h.Log.Error("bookmarks: reading private XML bookmarks", "owner", owner.String(), "err", err)
		return
	}
	out := xml.New(NSLegacy, "storage")
	for _, it := range items {
		if it.Payload != nil && it.Payload.Space == NS && it.Payload.Local == "conference" {
			out.Append(toLegacy(it.ID, it.Payload))
		}
	}
	if old != nil {
		for _, c := range old.Elements() {
			if c.Space == NSLegacy && c.Local == "url" {
				out.Append(c)
			}
		}
	}
	if err := b.priv.Put(ctx, owner, out); err != nil {
		b.h.Log.Error("bookmarks: writing private XML bookmarks", "owner", owner.String(), "err", err)
		return
	}
	b.toLegacyPEP(context.WithValue(ctx, converting{}, true), owner, out)
}

// bound converts bookmarks that exist in one form only when a user logs
// in, before any client reads them (XEP-0411 §4 asks for the same): legacy
// bookmarks without a bookmarks node are published, a bookmarks node
// without legacy bookmarks is written to private XML.
func (b *Bookmarks) bound(ev *module.SessionEvent) bool {
	ctx := ev.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	owner := ev.Session.JID().Bare()
	defer b.lock(owner)()
	legacy, err := b.priv.Get(ctx, owner, NSLegacy, "storage")
	if err != nil {
		b.h.Log.Error("bookmarks: reading private XML bookmarks", "owner", owner.String(), "err", err)
		return false
	}
	_, err = b.h.Store.PubSub().Node(ctx, owner.String(), NS)
	hasNode := err == nil
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		b.h.Log.Error("bookmarks: reading the bookmarks node", "owner", owner.String(), "err", err)
		return false
	}
	switch {
	case legacy != nil && !hasNode && legacy.Child(NSLegacy, "conference") != nil:
		b.toPEP(context.WithValue(ctx, converting{}, true), owner, legacy)
	case legacy == nil && hasNode:
		b.toPrivate(ctx, owner)
	}
	return false
}

// toNative converts a XEP-0048 <conference/> into XEP-0402's, keeping the
// <extensions/> of the room's current item (old, may be nil).
func toNative(c, old *xml.Element) *xml.Element {
	out := xml.New(NS, "conference")
	if n := c.Attr("name"); n != "" {
		out.SetAttr("name", n)
	}
	if autojoin(c) {
		out.SetAttr("autojoin", "true")
	}
	for _, name := range []string{"nick", "password"} {
		if el := c.Child(NSLegacy, name); el != nil {
			out.Append(xml.New(NS, name).AppendText(el.Text()))
		}
	}
	if old != nil {
		if ext := old.Child(NS, "extensions"); ext != nil {
			out.Append(ext)
		}
	}
	return out
}

// toLegacy converts an item of the bookmarks node into XEP-0048's
// <conference/>; the room is the item's ID (XEP-0402 §2).
func toLegacy(id string, c *xml.Element) *xml.Element {
	out := xml.New(NSLegacy, "conference").SetAttr("jid", id)
	if n := c.Attr("name"); n != "" {
		out.SetAttr("name", n)
	}
	if autojoin(c) {
		out.SetAttr("autojoin", "true")
	}
	for _, name := range []string{"nick", "password"} {
		if el := c.Child(NS, name); el != nil {
			out.Append(xml.New(NSLegacy, name).AppendText(el.Text()))
		}
	}
	return out
}

// autojoin reads the XML Schema boolean of both formats.
func autojoin(c *xml.Element) bool {
	v := c.Attr("autojoin")
	return v == "true" || v == "1"
}

// same reports whether two native conferences say the same thing.
func same(a, b *xml.Element) bool {
	if a == nil || b == nil {
		return a == b
	}
	if a.Attr("name") != b.Attr("name") || autojoin(a) != autojoin(b) {
		return false
	}
	for _, name := range []string{"nick", "password"} {
		x, y := a.Child(NS, name), b.Child(NS, name)
		if (x == nil) != (y == nil) || (x != nil && x.Text() != y.Text()) {
			return false
		}
	}
	x, y := a.Child(NS, "extensions"), b.Child(NS, "extensions")
	return (x == nil) == (y == nil) && (x == nil || x.Equal(y))
}
