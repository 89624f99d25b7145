package muc

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"time"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Affiliations (XEP-0045 §5.2) and roles (§5.1).
const (
	AffOwner   = "owner"
	AffAdmin   = "admin"
	AffMember  = "member"
	AffNone    = "none"
	AffOutcast = "outcast"

	RoleModerator   = "moderator"
	RoleParticipant = "participant"
	RoleVisitor     = "visitor"
	RoleNone        = "none"
)

// affRank orders affiliations; outcast is below none.
func affRank(a string) int {
	switch a {
	case AffOwner:
		return 3
	case AffAdmin:
		return 2
	case AffMember:
		return 1
	case AffOutcast:
		return -1
	}
	return 0
}

func validAff(a string) bool {
	switch a {
	case AffOwner, AffAdmin, AffMember, AffNone, AffOutcast:
		return true
	}
	return false
}

func validRole(r string) bool {
	switch r {
	case RoleModerator, RoleParticipant, RoleVisitor, RoleNone:
		return true
	}
	return false
}

// roomConfig is what an owner sets with the muc#roomconfig form.
type roomConfig struct {
	Name          string `json:"name,omitempty"`
	Description   string `json:"description,omitempty"`
	Persistent    bool   `json:"persistent,omitempty"`
	Public        bool   `json:"public,omitempty"`
	MembersOnly   bool   `json:"members_only,omitempty"`
	Moderated     bool   `json:"moderated,omitempty"`
	Password      string `json:"password,omitempty"`
	MaxUsers      int    `json:"max_users"`
	WhoIs         string `json:"whois"`          // "moderators" (semi-anonymous) or "anyone" (non-anonymous)
	HistoryLength int    `json:"history_length"` // messages kept for new occupants
	ChangeSubject bool   `json:"change_subject,omitempty"`
	AllowInvites  bool   `json:"allow_invites,omitempty"`
	AllowPM       string `json:"allow_pm"` // anyone, participants, moderators, none
	// Archive is the owner's muc#roomconfig_enablearchiving; nil while the
	// owner has not chosen (then public rooms archive, see archiving).
	Archive *bool `json:"archive,omitempty"`
}

// affEntry is one stored affiliation.
type affEntry struct {
	Aff    string `json:"aff"`
	Reason string `json:"reason,omitempty"`
}

// occupant is one user in a room under one nickname (one session: a second
// session of the same user needs its own nickname).
type occupant struct {
	nick string
	real jid.JID // full JID
	role string
	pres *xml.Element // the occupant's last presence, MUC elements stripped
	// oid is the occupant's XEP-0421 id (Service.occupantID), which the
	// room attaches to every presence and message it sends for it.
	oid string
}

// histEntry is one message of the discussion history.
type histEntry struct {
	msg  *xml.Element // groupchat message from the occupant's room JID, no 'to'
	at   time.Time
	size int
}

// room is one chat room. Every field is guarded by mu.
type room struct {
	svc   *Service
	local string
	jid   jid.JID // bare room JID

	mu        sync.Mutex
	gone      bool // destroyed; callers that waited for mu treat it as absent
	locked    bool // created, waiting for its owner's configuration (§10.1.1)
	created   time.Time
	creator   string // bare JID that created it over XMPP ("" for stored/directory rooms); counts towards max_rooms_per_user
	cfg       roomConfig
	affs      map[string]affEntry // bare JID (or domain) → affiliation
	occupants map[string]*occupant
	byReal    map[jid.JID]*occupant
	history   []histEntry
	histBytes int
	subject   string
	subjNick  string            // room nickname of who set the subject ("" for the room)
	subjOID   string            // occupant id of who set the subject ("" for the room, or set before ids)
	invited   map[string]string // invitee bare JID → inviter bare JID, for declines
	vcard     *roomVCard        // the room's vCard (vcard.go), nil when none
}

// maxPendingInvites bounds the remembered invitations of one room.
const maxPendingInvites = 100

func newRoom(s *Service, local string) *room {
	j, _ := jid.New(local, s.domain, "")
	return &room{
		svc:   s,
		local: local,
		jid:   j,
		cfg: roomConfig{
			Public:        true,
			MaxUsers:      s.cfg.DefaultOccupants,
			WhoIs:         "moderators",
			HistoryLength: s.cfg.HistoryDefault,
			AllowInvites:  true,
			AllowPM:       "anyone",
		},
		affs:      make(map[string]affEntry),
		occupants: make(map[string]*occupant),
		byReal:    make(map[jid.JID]*occupant),
		invited:   make(map[string]string),
	}
}

// affOf returns the affiliation of a user: by bare JID, then by domain
// (XEP-0045 §9.2 domain bans). Host admins are owners of every room.
func (r *room) affOf(j jid.JID) string {
	if e, ok := r.affs[j.Bare().String()]; ok {
		return e.Aff
	}
	if e, ok := r.affs[j.Domain()]; ok && e.Aff == AffOutcast {
		return e.Aff
	}
	if r.svc.isHostAdmin(j) {
		return AffOwner
	}
	return AffNone
}

// setAff changes a stored affiliation ("none" removes it).
func (r *room) setAff(bare, aff, reason string) {
	if aff == AffNone {
		delete(r.affs, bare)
		return
	}
	r.affs[bare] = affEntry{Aff: aff, Reason: reason}
}

// owners returns the bare JIDs with the owner affiliation.
func (r *room) listAff(aff string) []string {
	var out []string
	for j, e := range r.affs {
		if e.Aff == aff {
			out = append(out, j)
		}
	}
	sort.Strings(out)
	return out
}

// defaultRole is the role an occupant gets on entering (§5.1.2 table).
func (r *room) defaultRole(aff string) string {
	switch aff {
	case AffOwner, AffAdmin:
		return RoleModerator
	case AffMember:
		return RoleParticipant
	}
	if r.cfg.Moderated {
		return RoleVisitor
	}
	return RoleParticipant
}

// sortedOccupants returns the occupants in nickname order (deterministic
// broadcasts make tests and logs readable).
func (r *room) sortedOccupants() []*occupant {
	out := make([]*occupant, 0, len(r.occupants))
	for _, o := range r.occupants {
		out = append(out, o)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].nick < out[j].nick })
	return out
}

// occJID returns the room JID of a nickname.
func (r *room) occJID(nick string) string {
	return r.jid.String() + "/" + nick
}

// seesJIDs reports whether viewer may see occupants' real JIDs: everyone
// in non-anonymous rooms, moderators in semi-anonymous ones (§7.2.3-4).
func (r *room) seesJIDs(viewer *occupant) bool {
	return r.cfg.WhoIs == "anyone" || (viewer != nil && viewer.role == RoleModerator)
}

// presOpts describes one presence broadcast about an occupant.
type presOpts struct {
	unavailable bool
	newNick     string // 303: the nickname the occupant changes to
	codes       []int  // status codes for everyone
	selfCodes   []int  // status codes for the occupant itself (110 is added)
	reason      string
	actor       string       // actor nick, shown to the occupant itself
	destroy     *xml.Element // <destroy/> for room destruction
	role        string       // overrides o.role (e.g. "none" when leaving)
}

// presenceFor builds the presence about o that viewer receives.
func (r *room) presenceFor(o, viewer *occupant, opt presOpts) *xml.Element {
	p := xml.New("", "presence").SetAttr("from", r.occJID(o.nick)).SetAttr("to", viewer.real.String())
	if opt.unavailable {
		p.SetAttr("type", "unavailable")
		if o.pres != nil && opt.destroy == nil {
			// Keep a custom exit <status/> (§7.14).
			for _, c := range o.pres.Elements() {
				if c.Space == "" && c.Local == "status" {
					p.Append(c)
				}
			}
		}
	} else if o.pres != nil {
		p.Children = append(p.Children, o.pres.Children...)
	}
	role := o.role
	if opt.role != "" {
		role = opt.role
	}
	self := viewer == o
	item := xml.New(NSUser, "item").SetAttr("affiliation", r.affOf(o.real)).SetAttr("role", role)
	if self || r.seesJIDs(viewer) {
		item.SetAttr("jid", o.real.String())
	}
	if opt.newNick != "" {
		item.SetAttr("nick", opt.newNick)
	}
	if self && opt.actor != "" {
		item.Append(xml.New(NSUser, "actor").SetAttr("nick", opt.actor))
	}
	if opt.reason != "" {
		item.Append(xml.New(NSUser, "reason").AppendText(opt.reason))
	}
	x := xml.New(NSUser, "x").Append(item)
	if opt.destroy != nil {
		x.Append(opt.destroy)
	}
	codes := append([]int(nil), opt.codes...)
	if self {
		codes = append(codes, opt.selfCodes...)
		codes = append(codes, 110)
	}
	sort.Ints(codes)
	for i, c := range codes {
		if i > 0 && codes[i-1] == c {
			continue
		}
		x.Append(xml.New(NSUser, "status").SetAttr("code", strconv.Itoa(c)))
	}
	// XEP-0421 §4: on every presence the room sends for an occupant,
	// unavailable ones too, to every viewer, the occupant itself included.
	return p.Append(x, occupantIDElement(o.oid))
}

// broadcastPresence sends the presence about o to every occupant, and to o
// itself when it is no longer in the room (leaving, kicked). Like a
// message, it goes to the occupants on another cluster node in one
// message per run of equal copies (module.Batch).
func (r *room) broadcastPresence(ctx context.Context, o *occupant, opt presOpts) {
	ctx, batch := module.WithBatch(ctx)
	defer batch.Flush()
	others := presenceFanout{r: r, o: o, opt: opt}
	for _, v := range r.sortedOccupants() {
		if v == o {
			r.svc.route(ctx, r.presenceFor(o, v, opt))
			continue
		}
		r.svc.route(ctx, others.to(v))
	}
	if r.byReal[o.real] != o {
		r.svc.route(ctx, r.presenceFor(o, o, opt))
	}
}

// presenceFanout hands out the presence about o to viewers other than o.
// It differs between them only in whether it shows o's real JID, so it is
// built and serialised (xml ForFanout) once per kind of viewer and copied
// with each viewer's "to": a presence to a room of hundreds is not built
// and serialised hundreds of times.
type presenceFanout struct {
	r      *room
	o      *occupant
	opt    presOpts
	shared [2]*xml.Element // for viewers that do not / do see real JIDs
}

// to returns the presence for viewer v (v != o).
func (p *presenceFanout) to(v *occupant) *xml.Element {
	k := 0
	if p.r.seesJIDs(v) {
		k = 1
	}
	if p.shared[k] == nil {
		// Occupants are almost all on client streams; see room.fanOut.
		p.shared[k] = p.r.presenceFor(p.o, v, p.opt).ForFanout(stanza.NSClient)
	}
	// Every viewer gets a copy, the first too: the template is never
	// handed to the router, so nothing downstream can touch it.
	return p.shared[k].WithAttr("to", v.real.String())
}

// stripMUC returns a client's presence without the MUC elements it may
// carry (the join <x/>, or a forged muc#user <x/> or occupant-id), keeping
// show, status, priority, capabilities and the like.
func stripMUC(p *xml.Element) *xml.Element {
	out := xml.New("", "presence")
	for _, c := range p.Children {
		el, ok := c.(*xml.Element)
		if !ok {
			continue
		}
		if el.Space == NS || el.Space == NSUser || isOccupantID(el) || (el.Space == "" && el.Local == "error") {
			continue
		}
		out.Append(el)
	}
	return out
}

// removeOccupant takes o out of the room's maps.
func (r *room) removeOccupant(o *occupant) {
	delete(r.occupants, o.nick)
	if r.byReal[o.real] == o {
		delete(r.byReal, o.real)
	}
}

// afterLeave destroys a temporary room that became empty, and a room whose
// creator left before configuring it (§10.1.1).
func (r *room) afterLeave(ctx context.Context) {
	if len(r.occupants) > 0 {
		return
	}
	if r.locked || !r.cfg.Persistent {
		r.svc.dropRoom(r)
		r.svc.deleteStored(ctx, r)
		r.svc.forgetArchive(ctx, r)
	}
}

// statusMessage sends a groupchat message from the room carrying status
// codes (configuration changes, §10.2.1).
func (r *room) statusMessage(ctx context.Context, codes ...int) {
	x := xml.New(NSUser, "x")
	for _, c := range codes {
		x.Append(xml.New(NSUser, "status").SetAttr("code", strconv.Itoa(c)))
	}
	r.fanOut(ctx, xml.New("", "message").SetAttr("type", "groupchat").SetAttr("from", r.jid.String()).Append(x))
}
