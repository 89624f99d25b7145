package directory

import (
	"context"
	"reflect"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"parley/internal/access"
	"parley/internal/xmpp/jid"
)

// The attributes of a host policy entry under config_base (seed 001: the
// server's configuration held in the directory). The schema is in
// docs/directory-schema.ldif (objectClass parleyHostPolicy). Each one, when
// present, replaces the file's value of the same setting for the host named
// by AttrHostDomain; a list attribute whose only value is EmptyValue
// replaces the file's list with an empty one.
const (
	AttrHostDomain      = "parleyHostDomain"      // the host (required)
	AttrAdmin           = "parleyAdmin"           // admins: bare JIDs
	AttrAdminGroup      = "parleyAdminGroup"      // admin_groups
	AttrAllowedUser     = "parleyAllowedUser"     // allowed_users: bare JIDs
	AttrAllowedGroup    = "parleyAllowedGroup"    // allowed_groups
	AttrRegistration    = "parleyRegistration"    // registration.enabled: TRUE / FALSE
	AttrFederationAllow = "parleyFederationAllow" // s2s allowed_domains
	AttrFederationBlock = "parleyFederationBlock" // s2s blocked_domains
	AttrRoomCreation    = "parleyRoomCreation"    // muc.room_creation: anyone, local, admins
	// EmptyValue, as the only value of a list attribute, means "empty list".
	EmptyValue = "-"
)

var policyAttrs = []string{AttrHostDomain, AttrAdmin, AttrAdminGroup, AttrAllowedUser, AttrAllowedGroup,
	AttrRegistration, AttrFederationAllow, AttrFederationBlock, AttrRoomCreation}

// policies reads the host policy entries under config_base. A value that
// does not parse (a JID that is not bare, an unknown room creation policy)
// is left out with a warning, so the file's value stays in force; a second
// entry for the same host is ignored with a warning.
func (d *Directory) policies(ctx context.Context) (map[string]*access.Overrides, error) {
	entries, err := d.search(ctx, d.cfg.ConfigBase, d.cfg.ConfigFilter, policyAttrs)
	if err != nil {
		return nil, err
	}
	out := map[string]*access.Overrides{}
	for _, e := range entries {
		host := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(e.GetEqualFoldAttributeValue(AttrHostDomain)), "."))
		if host == "" {
			d.log.Warn("directory: policy entry without "+AttrHostDomain+"; ignored", "dn", e.DN)
			continue
		}
		if prev, ok := out[host]; ok {
			d.log.Warn("directory: second policy entry for a host; ignored", "host", host, "dn", e.DN, "used", prev.Source)
			continue
		}
		out[host] = d.parsePolicy(e)
	}
	return out, nil
}

func (d *Directory) parsePolicy(e *ldap.Entry) *access.Overrides {
	o := &access.Overrides{Source: e.DN}
	bad := func(attr, v string) {
		d.log.Warn("directory: policy value ignored", "dn", e.DN, "attribute", attr, "value", v)
	}
	list := func(attr string, check func(string) (string, bool)) []string {
		vs := e.GetEqualFoldAttributeValues(attr)
		if len(vs) == 0 {
			return nil
		}
		out := []string{}
		if len(vs) == 1 && strings.TrimSpace(vs[0]) == EmptyValue {
			return out
		}
		for _, v := range vs {
			if c, ok := check(strings.TrimSpace(v)); ok {
				out = append(out, c)
			} else {
				bad(attr, v)
			}
		}
		if len(out) == 0 {
			// Every value was bad: keep the file's list rather than
			// replacing it with an empty one (which could open access).
			return nil
		}
		return out
	}
	bareJID := func(v string) (string, bool) {
		j, err := jid.Parse(v)
		if err != nil || j.Local() == "" || j.Resource() != "" {
			return "", false
		}
		return j.String(), true
	}
	name := func(v string) (string, bool) { return v, v != "" }
	domain := func(v string) (string, bool) {
		// Prepared as addresses' domains are (A- and U-labels alike).
		d, err := jid.PrepareDomain(v)
		return d, err == nil
	}
	o.Admins = list(AttrAdmin, bareJID)
	o.AdminGroups = list(AttrAdminGroup, name)
	o.AllowedUsers = list(AttrAllowedUser, bareJID)
	o.AllowedGroups = list(AttrAllowedGroup, name)
	o.FederationAllow = list(AttrFederationAllow, domain)
	o.FederationBlock = list(AttrFederationBlock, domain)
	if v := strings.TrimSpace(e.GetEqualFoldAttributeValue(AttrRegistration)); v != "" {
		switch strings.ToUpper(v) {
		case "TRUE":
			t := true
			o.Registration = &t
		case "FALSE":
			f := false
			o.Registration = &f
		default:
			bad(AttrRegistration, v)
		}
	}
	if v := strings.ToLower(strings.TrimSpace(e.GetEqualFoldAttributeValue(AttrRoomCreation))); v != "" {
		switch v {
		case "anyone", "local", "admins":
			o.RoomCreation = v
		default:
			bad(AttrRoomCreation, v)
		}
	}
	return o
}

// HostPolicies reads the host policy entries now (for `parley config
// check`): host domain → the values the directory sets. Without
// config_base it returns nil.
func (d *Directory) HostPolicies(ctx context.Context) (map[string]*access.Overrides, error) {
	if d.cfg.ConfigBase == "" {
		return nil, nil
	}
	return d.policies(ctx)
}

func policiesEqual(a, b *Snapshot) bool {
	var pa, pb map[string]*access.Overrides
	if a != nil {
		pa = a.Policies
	}
	if b != nil {
		pb = b.Policies
	}
	return reflect.DeepEqual(pa, pb)
}
