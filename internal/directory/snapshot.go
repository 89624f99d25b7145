package directory

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"parley/internal/access"
	"parley/internal/config"
	"parley/internal/xmpp/jid"
)

// Snapshot is one enumeration of the directory's users, groups and rooms.
// It is read by many goroutines and never modified after Refresh builds it.
type Snapshot struct {
	// Users maps localparts to users (disabled ones included, marked).
	Users map[string]*User
	// Groups maps group names to their members' localparts, sorted. A
	// member that is no directory user (a DN outside user_base, an unknown
	// memberUid) is left out.
	Groups map[string][]string
	// Rooms are the persistent room definitions under room_base.
	Rooms []Room
	// Policies are the host policy entries under config_base, by host
	// domain (policy.go); nil without config_base.
	Policies map[string]*access.Overrides
	// Taken is when the snapshot was made.
	Taken time.Time
	// photoAttr is the photo attribute the enumeration read (the users'
	// PhotoHash), "" when it read none.
	photoAttr string

	byDN map[string]string // normalised DN → localpart
}

// Room is a persistent room defined in the directory.
type Room struct {
	DN          string
	Name        string // the room's localpart
	Description string
	// Title is the room's natural-language name (room_title_attribute;
	// "" when unset or not configured).
	Title string
	// Members and Admins are bare JIDs (directory users as
	// localpart@host are filled in by RoomJIDs).
	Members, Admins []string
	// memberUsers/adminUsers are directory users by localpart; others are
	// bare JIDs given literally.
	memberUsers, adminUsers []string
}

// MemberJIDs returns the room's members as bare JIDs, directory users on
// host.
func (r Room) MemberJIDs(host string) []string { return jids(r.memberUsers, r.Members, host) }

// AdminJIDs returns the room's admins as bare JIDs.
func (r Room) AdminJIDs(host string) []string { return jids(r.adminUsers, r.Admins, host) }

func jids(users, literal []string, host string) []string {
	out := append([]string(nil), literal...)
	for _, u := range users {
		out = append(out, u+"@"+host)
	}
	sort.Strings(out)
	return slices.Compact(out)
}

// GroupsOf returns the groups username belongs to, sorted.
func (s *Snapshot) GroupsOf(username string) []string {
	var out []string
	for g, members := range s.Groups {
		if _, ok := slices.BinarySearch(members, username); ok {
			out = append(out, g)
		}
	}
	sort.Strings(out)
	return out
}

// UserByDN returns the localpart of the user with that DN.
func (s *Snapshot) UserByDN(dn string) (string, bool) {
	u, ok := s.byDN[normDN(dn)]
	return u, ok
}

// Enabled reports whether username is a directory user not disabled.
func (s *Snapshot) Enabled(username string) bool {
	u := s.Users[username]
	return u != nil && !u.Disabled
}

// equal reports whether two snapshots have the same users' states and
// group memberships (rooms are compared by the MUC side).
func (s *Snapshot) equal(o *Snapshot) bool {
	if s == nil || o == nil {
		return s == o
	}
	if len(s.Users) != len(o.Users) || !maps.EqualFunc(s.Groups, o.Groups, slices.Equal) {
		return false
	}
	for k, u := range s.Users {
		if v := o.Users[k]; v == nil || v.Disabled != u.Disabled {
			return false
		}
	}
	return true
}

// normDN normalises a DN for comparison: attribute types and values
// lowercased, spaces around separators dropped (RFC 4514 syntax; values
// compared case-insensitively as the common string attributes are).
func normDN(s string) string {
	d, err := ldap.ParseDN(s)
	if err != nil || len(d.RDNs) == 0 {
		return strings.ToLower(strings.TrimSpace(s))
	}
	var b strings.Builder
	for i, r := range d.RDNs {
		if i > 0 {
			b.WriteByte(',')
		}
		for j, a := range r.Attributes {
			if j > 0 {
				b.WriteByte('+')
			}
			b.WriteString(strings.ToLower(a.Type))
			b.WriteByte('=')
			b.WriteString(strings.ToLower(a.Value))
		}
	}
	return b.String()
}

// looksLikeDN tells DN-valued members (member, uniqueMember, owner) from
// localparts (memberUid) and JIDs.
func looksLikeDN(v string) bool {
	if !strings.Contains(v, "=") {
		return false
	}
	d, err := ldap.ParseDN(v)
	return err == nil && len(d.RDNs) > 0
}

// Snapshot returns the latest snapshot, taking one if there is none yet.
func (d *Directory) Snapshot(ctx context.Context) (*Snapshot, error) {
	d.mu.Lock()
	s := d.snap
	d.mu.Unlock()
	if s != nil {
		return s, nil
	}
	return d.Refresh(ctx)
}

// Current returns the latest snapshot without taking one (nil if none yet).
func (d *Directory) Current() *Snapshot {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snap
}

// DisplayName returns the user's display name from the directory (the
// display_name profile field's attribute), "" if unmapped or empty.
func (d *Directory) DisplayName(u *User) string {
	if a := d.displayNameAttr(); a != "" && u != nil {
		return u.Attr(a)
	}
	return ""
}

func (d *Directory) displayNameAttr() string {
	for _, f := range d.profileFields() {
		if f.Name == "display_name" && (f.Mode == config.ProfileReadonly || f.Mode == config.ProfileUpdate) {
			return f.Attribute
		}
	}
	return ""
}

// Watch registers fn to be called (from the refreshing goroutine) with the
// previous and the new snapshot whenever users or group membership change,
// and after the first snapshot (old = nil). It returns a function that
// removes the watcher.
func (d *Directory) Watch(fn func(old, new *Snapshot)) (cancel func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.watchers = append(d.watchers, fn)
	i := len(d.watchers) - 1
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if i < len(d.watchers) {
			d.watchers[i] = nil
		}
	}
}

// Refresh enumerates users, groups and rooms now and notifies watchers
// when something changed. On error the previous snapshot stays.
func (d *Directory) Refresh(ctx context.Context) (*Snapshot, error) {
	s, _, err := d.refresh(ctx)
	return s, err
}

// refresh is Refresh that also reports whether anything a watcher or a
// photo watcher sees changed (always, for the first snapshot).
func (d *Directory) refresh(ctx context.Context) (*Snapshot, bool, error) {
	s, err := d.take(ctx)
	if err != nil {
		return nil, false, err
	}
	d.mu.Lock()
	old := d.snap
	d.snap = s
	changed := !old.equal(s) || !slices.EqualFunc(old.roomsOrNil(), s.Rooms, roomEqual) || !policiesEqual(old, s)
	ws := slices.Clone(d.watchers)
	pws := slices.Clone(d.photoWatchers)
	d.mu.Unlock()
	if changed {
		for _, fn := range ws {
			if fn != nil {
				fn(old, s)
			}
		}
	}
	photos := !old.samePhotos(s)
	if photos {
		for _, fn := range pws {
			if fn != nil {
				fn(old, s)
			}
		}
	}
	return s, changed || photos, nil
}

// WatchPhotos registers fn to be called (from the refreshing goroutine)
// with the previous and the new snapshot whenever a user's photo (the
// photo_data profile field's attribute, when it is readonly or update)
// changed, and after the first snapshot (old = nil). While a photo
// watcher is registered, every enumeration also reads that attribute of
// every user, keeping only a digest (User.PhotoHash). It returns a
// function that removes the watcher.
func (d *Directory) WatchPhotos(fn func(old, new *Snapshot)) (cancel func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.photoWatchers = append(d.photoWatchers, fn)
	i := len(d.photoWatchers) - 1
	return func() {
		d.mu.Lock()
		defer d.mu.Unlock()
		if i < len(d.photoWatchers) {
			d.photoWatchers[i] = nil
		}
	}
}

// polledPhotoAttribute is the photo attribute enumerations read: the
// photo_data field's, when the directory holds it and someone watches.
func (d *Directory) polledPhotoAttribute() string {
	d.mu.Lock()
	watched := slices.ContainsFunc(d.photoWatchers, func(fn func(old, new *Snapshot)) bool { return fn != nil })
	d.mu.Unlock()
	if !watched {
		return ""
	}
	if f := d.PhotoField(); f.Mode == config.ProfileReadonly || f.Mode == config.ProfileUpdate {
		return f.Attribute
	}
	return ""
}

// PhotoField returns the effective mapping of the photo_data profile
// field (vCard PHOTO/BINVAL).
func (d *Directory) PhotoField() ProfileField {
	for _, f := range d.profileFields() {
		if f.Name == "photo_data" {
			return f
		}
	}
	return ProfileField{Name: "photo_data", Mode: config.ProfileLocal}
}

// samePhotos reports whether two snapshots read the same photo attribute
// and have the same users with the same photos; a first snapshot (s nil)
// never does.
func (s *Snapshot) samePhotos(o *Snapshot) bool {
	if s == nil || o == nil || s.photoAttr != o.photoAttr || len(s.Users) != len(o.Users) {
		return false
	}
	for k, u := range s.Users {
		if v := o.Users[k]; v == nil || v.PhotoHash != u.PhotoHash {
			return false
		}
	}
	return true
}

func (s *Snapshot) roomsOrNil() []Room {
	if s == nil {
		return nil
	}
	return s.Rooms
}

func roomEqual(a, b Room) bool {
	return a.DN == b.DN && a.Name == b.Name && a.Description == b.Description && a.Title == b.Title &&
		slices.Equal(a.Members, b.Members) && slices.Equal(a.Admins, b.Admins) &&
		slices.Equal(a.memberUsers, b.memberUsers) && slices.Equal(a.adminUsers, b.adminUsers)
}

func (d *Directory) search(ctx context.Context, base, filter string, attrs []string) ([]*ldap.Entry, error) {
	var res *ldap.SearchResult
	err := d.pool.do(ctx, func(c *ldap.Conn) error {
		var err error
		req := ldap.NewSearchRequest(base, ldap.ScopeWholeSubtree, ldap.NeverDerefAliases,
			d.cfg.MaxEntries, int(d.cfg.RequestTimeout.Seconds()), false, filter, attrs, nil)
		res, err = c.SearchWithPaging(req, 500)
		return err
	})
	if ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded) && res != nil {
		d.log.Warn("directory: more entries than max_entries; the rest are ignored", "base", base, "max_entries", d.cfg.MaxEntries)
		return res.Entries, nil
	}
	if err != nil {
		return nil, d.wrap("search "+base, err)
	}
	return res.Entries, nil
}

func (d *Directory) take(ctx context.Context) (*Snapshot, error) {
	s := &Snapshot{Users: map[string]*User{}, Groups: map[string][]string{}, byDN: map[string]string{}, Taken: time.Now()}
	attrs := []string{d.cfg.LocalpartAttribute}
	if d.cfg.DisabledAttribute != "" {
		attrs = append(attrs, d.cfg.DisabledAttribute)
	}
	if d.cfg.RosterAttribute != "" {
		attrs = append(attrs, d.cfg.RosterAttribute)
	}
	if a := d.displayNameAttr(); a != "" {
		attrs = append(attrs, a)
	}
	photo := d.polledPhotoAttribute()
	s.photoAttr = photo
	if photo != "" {
		attrs = append(attrs, photo)
	}
	users, err := d.search(ctx, d.cfg.UserBase, d.cfg.UserListFilter, attrs)
	if err != nil {
		return nil, err
	}
	for _, e := range users {
		hash := ""
		if photo != "" {
			// Only the digest is kept: a snapshot holding every
			// user's image would cost megabytes for as long as it
			// is current.
			if raw := e.GetEqualFoldRawAttributeValues(photo); len(raw) > 0 {
				sum := sha1.Sum(raw[0])
				hash = hex.EncodeToString(sum[:])
			}
			e.Attributes = slices.DeleteFunc(e.Attributes, func(a *ldap.EntryAttribute) bool { return strings.EqualFold(a.Name, photo) })
		}
		if u := d.userFromEntry(e); u != nil {
			u.PhotoHash = hash
			s.Users[u.Username] = u
			s.byDN[normDN(u.DN)] = u.Username
		}
	}
	// member resolves one member value to a localpart: a DN of a user, or
	// a memberUid naming one.
	member := func(v string) (string, bool) {
		if looksLikeDN(v) {
			u, ok := s.byDN[normDN(v)]
			return u, ok
		}
		u := prepLocal(v)
		_, ok := s.Users[u]
		return u, ok
	}
	if d.cfg.GroupBase != "" {
		gattrs := append([]string{d.cfg.GroupNameAttribute}, d.cfg.GroupMemberAttributes...)
		groups, err := d.search(ctx, d.cfg.GroupBase, d.cfg.GroupFilter, gattrs)
		if err != nil {
			return nil, err
		}
		for _, e := range groups {
			name := e.GetEqualFoldAttributeValue(d.cfg.GroupNameAttribute)
			if name == "" {
				continue
			}
			var ms []string
			for _, a := range d.cfg.GroupMemberAttributes {
				for _, v := range e.GetEqualFoldAttributeValues(a) {
					if u, ok := member(v); ok {
						ms = append(ms, u)
					}
				}
			}
			ms = append(ms, s.Groups[name]...)
			sort.Strings(ms)
			s.Groups[name] = slices.Compact(ms)
		}
	}
	if d.cfg.RoomBase != "" {
		rattrs := []string{d.cfg.RoomNameAttribute, d.cfg.RoomDescriptionAttribute, d.cfg.RoomMemberAttribute, d.cfg.RoomAdminAttribute}
		if d.cfg.RoomTitleAttribute != "" {
			rattrs = append(rattrs, d.cfg.RoomTitleAttribute)
		}
		rooms, err := d.search(ctx, d.cfg.RoomBase, d.cfg.RoomFilter, rattrs)
		if err != nil {
			return nil, err
		}
		for _, e := range rooms {
			name := e.GetEqualFoldAttributeValue(d.cfg.RoomNameAttribute)
			rj, err := jid.New(name, "localhost", "")
			if name == "" || err != nil {
				d.log.Warn("directory: room entry without a usable name; skipped", "dn", e.DN)
				continue
			}
			r := Room{DN: e.DN, Name: rj.Local(), Description: e.GetEqualFoldAttributeValue(d.cfg.RoomDescriptionAttribute)}
			if d.cfg.RoomTitleAttribute != "" {
				r.Title = e.GetEqualFoldAttributeValue(d.cfg.RoomTitleAttribute)
			}
			r.memberUsers, r.Members = d.people(e.GetEqualFoldAttributeValues(d.cfg.RoomMemberAttribute), member)
			r.adminUsers, r.Admins = d.people(e.GetEqualFoldAttributeValues(d.cfg.RoomAdminAttribute), member)
			s.Rooms = append(s.Rooms, r)
		}
		sort.Slice(s.Rooms, func(i, j int) bool { return s.Rooms[i].Name < s.Rooms[j].Name })
	}
	if d.cfg.ConfigBase != "" {
		if s.Policies, err = d.policies(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// people splits attribute values into directory users (by DN or
// localpart) and literal bare JIDs; anything else is ignored.
func (d *Directory) people(values []string, member func(string) (string, bool)) (users, literal []string) {
	for _, v := range values {
		if u, ok := member(v); ok {
			users = append(users, u)
			continue
		}
		if j, err := jid.Parse(strings.TrimPrefix(v, "xmpp:")); err == nil && j.Local() != "" && j.IsBare() {
			literal = append(literal, j.String())
		}
	}
	sort.Strings(users)
	sort.Strings(literal)
	return slices.Compact(users), slices.Compact(literal)
}

// Groups returns the directory groups of username (the access package's
// GroupResolver interface); host is ignored: one directory serves every
// directory host. It fails when no snapshot could ever be taken, so access
// checks fail closed.
func (d *Directory) Groups(ctx context.Context, host, username string) ([]string, error) {
	s, err := d.Snapshot(ctx)
	if err != nil {
		return nil, err
	}
	return s.GroupsOf(username), nil
}

// StaticRoster returns the static roster entries of a user
// (roster_attribute): DNs of directory users become localpart@host, bare
// JIDs are taken as they are.
func (d *Directory) StaticRoster(s *Snapshot, u *User, host string) []string {
	if d.cfg.RosterAttribute == "" || u == nil {
		return nil
	}
	member := func(v string) (string, bool) {
		if looksLikeDN(v) {
			x, ok := s.byDN[normDN(v)]
			return x, ok
		}
		return "", false
	}
	users, literal := d.people(u.Values(d.cfg.RosterAttribute), member)
	out := jids(users, literal, host)
	self := u.Username + "@" + host
	return slices.DeleteFunc(out, func(j string) bool { return j == self })
}

// HostGroups is the GroupResolver (internal/access) of the directory hosts:
// it answers with directory groups for those hosts and with none for the
// others, whose groups come from elsewhere.
type HostGroups struct {
	Dir   *Directory
	Hosts map[string]bool
}

// Groups implements access.GroupResolver.
func (h HostGroups) Groups(ctx context.Context, host, username string) ([]string, error) {
	if !h.Hosts[host] {
		return nil, nil
	}
	return h.Dir.Groups(ctx, host, username)
}
