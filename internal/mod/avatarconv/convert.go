package avatarconv

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"image"
	_ "image/gif" // DecodeConfig: the sizes of converted vCard photos
	_ "image/jpeg"
	_ "image/png"
	"net/http"
	"strconv"
	"strings"

	"parley/internal/directory"
	"parley/internal/mod/vcard"
	"parley/internal/pubsub"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// converting marks a context in which the module itself publishes to the
// avatar nodes, so that it does not convert its own publication back. The
// vCard direction needs no mark: vcard.Put does not tell watchers.
type converting struct{}

func isConverting(ctx context.Context) bool { return ctx.Value(converting{}) != nil }

func (c *Conv) lock(owner jid.JID) func() {
	h := fnv.New32a()
	h.Write([]byte(owner.String()))
	m := &c.locks[h.Sum32()%lockStripes]
	m.Lock()
	return m.Unlock
}

// hashOf is the XEP-0084 / XEP-0153 identifier of image bytes: SHA-1, hex.
func hashOf(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

// decode64 decodes base64 as vCards and avatar data carry it, with line
// breaks and other whitespace, which XEP-0054 producers often insert.
func decode64(s string) ([]byte, bool) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return nil, false
	}
	b, err := base64.StdEncoding.DecodeString(s)
	return b, err == nil
}

// localInfo returns the metadata's <info/> that describes the image in the
// data node: XEP-0398 §3.1 says to pick the one without an external URL.
// empty reports a metadata element without any <info/>, which XEP-0084
// §4.5 defines as "avatar disabled".
func localInfo(md *xml.Element) (info *xml.Element, empty bool) {
	n := 0
	for _, el := range md.Elements() {
		if el.Space != NSMetadata || el.Local != "info" {
			continue
		}
		n++
		if el.Attr("url") == "" && el.Attr("id") != "" {
			return el, false
		}
	}
	return nil, n == 0
}

// vcardPhoto returns the image of a vCard's PHOTO, if it carries one inline.
func vcardPhoto(card *xml.Element) (data []byte, typ string, ok bool) {
	if card == nil {
		return nil, "", false
	}
	p := card.Child(vcard.NS, "PHOTO")
	if p == nil {
		return nil, "", false
	}
	data, ok = decode64(p.ChildText(vcard.NS, "BINVAL"))
	return data, strings.TrimSpace(p.ChildText(vcard.NS, "TYPE")), ok
}

// withPhoto returns card (nil: an empty vCard) with its PHOTO replaced by
// the image, or removed when b64 is empty.
func withPhoto(card *xml.Element, typ, b64 string) *xml.Element {
	if card == nil {
		card = xml.New(vcard.NS, "vCard")
	}
	out := card.WithoutChildren(func(el *xml.Element) bool { return el.Space == vcard.NS && el.Local == "PHOTO" })
	if b64 == "" {
		return out
	}
	photo := xml.New(vcard.NS, "PHOTO")
	if typ != "" {
		photo.Append(xml.New(vcard.NS, "TYPE").AppendText(typ))
	}
	photo.Append(xml.New(vcard.NS, "BINVAL").AppendText(b64))
	return out.WithChildren(photo)
}

// fromPEP writes an avatar published to the metadata node into the vCard
// (XEP-0398 §3.1): the image comes from the data node item whose ID the
// chosen <info/> names, and is taken only if its SHA-1 is that ID. A
// metadata item without <info/> (avatar disabled) removes the PHOTO. A
// vCard whose PHOTO is already that image is not written again, and the
// module's own publications (fromVCard) are ignored: one change, one
// write.
func (c *Conv) fromPEP(ctx context.Context, ev *pubsub.Event) {
	if ev.Node != NSMetadata || isConverting(ctx) {
		return
	}
	owner, err := jid.Parse(ev.Service)
	if err != nil {
		return
	}
	if ev.Kind != pubsub.EventPublish || len(ev.Items) == 0 {
		// Retracted, purged or deleted metadata: nothing to convert,
		// but the advertised hash must be looked up again.
		c.setHash(owner, "", false)
		return
	}
	md := ev.Items[len(ev.Items)-1].Payload
	if md == nil || md.Space != NSMetadata || md.Local != "metadata" {
		return
	}
	info, empty := localInfo(md)
	if info == nil && !empty {
		return // only external images: nothing a vCard can hold
	}
	// The presence hash follows PEP (XEP-0398 makes it primary), from now
	// on, not once the vCard is written (a directory write can be slow):
	// what a cache miss would look up (lookup) is what is recorded.
	if info != nil {
		c.setHash(owner, strings.ToLower(info.Attr("id")), true)
	} else {
		c.setHash(owner, "", true)
	}
	defer c.lock(owner)()
	var id, typ, b64 string
	if info != nil {
		id, typ = strings.ToLower(info.Attr("id")), info.Attr("type")
		items, err := c.pep.PubSub().Items(ctx, owner.String(), owner, NSData, []string{info.Attr("id")}, 0)
		if err != nil || len(items) == 0 || items[0].Payload == nil {
			c.h.Log.Info("avatarconv: metadata names no data item; vCard unchanged", "owner", owner.String(), "id", id, "err", err)
			return
		}
		b64 = items[0].Payload.Text()
		data, ok := decode64(b64)
		if !ok || hashOf(data) != id {
			c.h.Log.Info("avatarconv: avatar data does not match its id; vCard unchanged", "owner", owner.String(), "id", id)
			return
		}
		b64 = base64.StdEncoding.EncodeToString(data)
	}
	card, err := c.vcard.Get(ctx, owner)
	if err != nil {
		c.h.Log.Warn("avatarconv: reading the vCard", "owner", owner.String(), "err", err)
		return
	}
	cur, _, has := vcardPhoto(card)
	if (id == "" && !has) || (has && hashOf(cur) == id) {
		c.setHash(owner, id, true)
		return
	}
	err = c.vcard.Put(ctx, owner, withPhoto(card, typ, b64))
	var ro *directory.ReadOnlyError
	switch {
	case errors.As(err, &ro):
		// The directory owns the photo: PEP keeps the user's avatar,
		// the vCard the directory's.
		c.h.Log.Info("avatarconv: the directory holds the vCard photo read-only; not converted", "owner", owner.String(), "reason", ro.Error())
	case err != nil:
		c.h.Log.Warn("avatarconv: writing the vCard photo", "owner", owner.String(), "err", err)
	}
	// The presence hash follows PEP, the view XEP-0398 makes primary.
	c.setHash(owner, id, true)
}

// fromVCard publishes a PHOTO a client set through vcard-temp as XEP-0084
// data and then metadata (XEP-0398 §3.2), unless the metadata node already
// announces that image. A vCard without a PHOTO leaves the PEP avatar
// alone: many clients that edit a vCard omit the photo they never loaded.
func (c *Conv) fromVCard(ctx context.Context, owner jid.JID, card *xml.Element) {
	data, typ, ok := vcardPhoto(card)
	if !ok {
		return
	}
	id := hashOf(data)
	defer c.lock(owner)()
	svc := c.pep.PubSub()
	if last, err := svc.LastItem(ctx, owner.String(), NSMetadata); err == nil && last != nil && last.Payload != nil {
		if info, _ := localInfo(last.Payload); info != nil && strings.EqualFold(info.Attr("id"), id) {
			c.setHash(owner, id, true)
			return
		}
	}
	if c.publish(ctx, owner, data, typ) {
		c.setHash(owner, id, true)
	}
}

// publish publishes image data as owner's XEP-0084 avatar: the data item
// (ID the SHA-1 hex), then metadata with one <info/>. The type is the
// image's own where the bytes tell it (PNG, JPEG, GIF, or what
// http.DetectContentType recognises as an image), else typ, else
// image/png (XEP-0084 §4.2.1 requires one); width and height are given
// for the formats Go decodes. It reports whether both publications
// succeeded (failures are logged).
func (c *Conv) publish(ctx context.Context, owner jid.JID, data []byte, typ string) bool {
	id := hashOf(data)
	svc := c.pep.PubSub()
	ctx = context.WithValue(ctx, converting{}, true)
	payload := xml.New(NSData, "data").AppendText(base64.StdEncoding.EncodeToString(data))
	if _, err := svc.Publish(ctx, owner.String(), owner, NSData, pubsub.Item{ID: id, Payload: payload}, nil); err != nil {
		c.h.Log.Info("avatarconv: publishing avatar data", "owner", owner.String(), "err", err)
		return false
	}
	info := xml.New(NSMetadata, "info").SetAttr("id", id).SetAttr("bytes", strconv.Itoa(len(data)))
	if cfg, format, err := image.DecodeConfig(bytes.NewReader(data)); err == nil {
		typ = "image/" + format
		info.SetAttr("width", strconv.Itoa(cfg.Width)).SetAttr("height", strconv.Itoa(cfg.Height))
	} else if sniffed := http.DetectContentType(data); strings.HasPrefix(sniffed, "image/") {
		typ = sniffed
	}
	if typ == "" {
		typ = "image/png"
	}
	info.SetAttr("type", typ)
	md := xml.New(NSMetadata, "metadata").Append(info)
	if _, err := svc.Publish(ctx, owner.String(), owner, NSMetadata, pubsub.Item{ID: id, Payload: md}, nil); err != nil {
		c.h.Log.Info("avatarconv: publishing avatar metadata", "owner", owner.String(), "err", err)
		return false
	}
	return true
}
