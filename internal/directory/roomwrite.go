package directory

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"parley/internal/xmpp/jid"
)

// ErrRoomRefused: the directory refused a room change (access rights,
// schema: e.g. a groupOfNames must keep one member). The message says
// which attributes and why, for the room owner.
var ErrRoomRefused = errors.New("directory: room change refused")

// RoomChange is what a room owner changed over XMPP in a directory room,
// to be written back to the room's entry (room_write). Nil pointers and
// empty lists change nothing; members and admins are bare JIDs.
type RoomChange struct {
	Title, Description        *string
	AddMembers, RemoveMembers []string
	AddAdmins, RemoveAdmins   []string
}

// Empty reports whether the change touches nothing the directory holds.
func (c RoomChange) Empty() bool {
	return c.Title == nil && c.Description == nil && len(c.AddMembers)+len(c.RemoveMembers)+len(c.AddAdmins)+len(c.RemoveAdmins) == 0
}

// UpdateRoom writes c to the room entry dn with the service account.
// People are written the way the entry holds them: directory users of host
// as their entry's DN, others as their bare JID; values removed are the
// entry's own values that name the person (read from the entry first, so
// a DN stored with other spacing or case is still found). An empty value
// clears the title or description.
func (d *Directory) UpdateRoom(ctx context.Context, dn, host string, c RoomChange) error {
	if c.Empty() {
		return nil
	}
	attrs := []string{d.cfg.RoomMemberAttribute, d.cfg.RoomAdminAttribute}
	var entry *ldap.Entry
	err := d.pool.do(ctx, func(conn *ldap.Conn) error {
		res, err := conn.Search(ldap.NewSearchRequest(dn, ldap.ScopeBaseObject, ldap.NeverDerefAliases,
			1, int(d.cfg.RequestTimeout.Seconds()), false, "(objectClass=*)", attrs, nil))
		if err == nil && len(res.Entries) == 1 {
			entry = res.Entries[0]
		}
		return err
	})
	if err != nil {
		return d.wrap("room read", err)
	}
	if entry == nil {
		return fmt.Errorf("%w: the room's entry %s is gone", ErrRoomRefused, dn)
	}
	snap := d.Current()
	// name gives the bare JID an attribute value stands for ("" if none).
	name := func(v string) string {
		if looksLikeDN(v) {
			if snap != nil {
				if u, ok := snap.UserByDN(v); ok {
					return u + "@" + host
				}
			}
			return ""
		}
		if j, err := jid.Parse(strings.TrimPrefix(v, "xmpp:")); err == nil && j.IsBare() {
			return j.String()
		}
		return ""
	}
	// value is how a person is written.
	value := func(bare string) string {
		if j, err := jid.Parse(bare); err == nil && j.Domain() == host && snap != nil {
			if u := snap.Users[j.Local()]; u != nil {
				return u.DN
			}
		}
		return bare
	}
	var mods []ldap.Change
	people := func(attr string, add, remove []string) {
		cur := entry.GetEqualFoldAttributeValues(attr)
		var del, ins []string
		for _, v := range cur {
			if slices.Contains(remove, name(v)) {
				del = append(del, v)
			}
		}
		for _, b := range add {
			present := false
			for _, v := range cur {
				present = present || name(v) == b
			}
			if !present {
				ins = append(ins, value(b))
			}
		}
		// Additions first: a groupOfNames must never be left without a
		// member in between (the modify is one operation anyway).
		if len(ins) > 0 {
			mods = append(mods, ldap.Change{Operation: ldap.AddAttribute, Modification: ldap.PartialAttribute{Type: attr, Vals: ins}})
		}
		if len(del) > 0 {
			mods = append(mods, ldap.Change{Operation: ldap.DeleteAttribute, Modification: ldap.PartialAttribute{Type: attr, Vals: del}})
		}
	}
	people(d.cfg.RoomMemberAttribute, c.AddMembers, c.RemoveMembers)
	people(d.cfg.RoomAdminAttribute, c.AddAdmins, c.RemoveAdmins)
	text := func(attr string, v *string) {
		if v == nil || attr == "" {
			return
		}
		var vals []string
		if *v != "" {
			vals = []string{*v}
		}
		mods = append(mods, ldap.Change{Operation: ldap.ReplaceAttribute, Modification: ldap.PartialAttribute{Type: attr, Vals: vals}})
	}
	text(d.cfg.RoomTitleAttribute, c.Title)
	text(d.cfg.RoomDescriptionAttribute, c.Description)
	if len(mods) == 0 {
		return nil
	}
	err = d.pool.do(ctx, func(conn *ldap.Conn) error {
		return conn.Modify(&ldap.ModifyRequest{DN: dn, Changes: mods})
	})
	switch {
	case err == nil:
		d.log.Info("directory: room entry updated", "dn", dn, "changes", len(mods))
		return nil
	case errors.Is(err, ErrUnavailable) || isConnError(err):
		return d.wrap("room update", err)
	}
	d.log.Info("directory: room update refused", "dn", dn, "err", err)
	if resultCode(err) == ldap.LDAPResultInsufficientAccessRights {
		return fmt.Errorf("%w: the server has no right to change the room's directory entry", ErrRoomRefused)
	}
	return fmt.Errorf("%w: %s", ErrRoomRefused, ldap.LDAPResultCodeMap[resultCode(err)])
}
