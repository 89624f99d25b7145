package directory

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-ldap/ldap/v3"

	"parley/internal/config"
	"parley/internal/xmpp/xml"
)

// NSVCard is the vcard-temp namespace (XEP-0054).
const NSVCard = "vcard-temp"

// fieldDef places one XEP-0154 profile field in a vcard-temp element and
// gives its default LDAP attribute (XEP-0154 §"Field Standardization"
// mappings; "" where XEP-0154 names none, which makes the field local by
// default, as seed 001 asks).
type fieldDef struct {
	name string
	// container is the vCard element holding the value ("" for a
	// top-level element named child); marker is the type flag the
	// container must carry (TEL's CELL, FAX, ...).
	container, marker, child string
	ldap                     string
}

// fieldDefs is the mapping, in vCard output order.
var fieldDefs = []fieldDef{
	{name: "display_name", child: "FN", ldap: "displayName"},
	{name: "family_name", container: "N", child: "FAMILY", ldap: "sn"},
	{name: "given_name", container: "N", child: "GIVEN", ldap: "givenName"},
	{name: "middle_name", container: "N", child: "MIDDLE"},
	{name: "name_prefix", container: "N", child: "PREFIX"},
	{name: "name_suffix", container: "N", child: "SUFFIX"},
	{name: "nickname", child: "NICKNAME"},
	{name: "photo_data", container: "PHOTO", child: "BINVAL", ldap: "jpegPhoto"},
	{name: "birthday", child: "BDAY"},
	{name: "postalbox", container: "ADR", marker: "WORK", child: "POBOX", ldap: "postOfficeBox"},
	{name: "street", container: "ADR", marker: "WORK", child: "STREET", ldap: "street"},
	{name: "locality", container: "ADR", marker: "WORK", child: "LOCALITY", ldap: "l"},
	{name: "region", container: "ADR", marker: "WORK", child: "REGION", ldap: "st"},
	{name: "postalcode", container: "ADR", marker: "WORK", child: "PCODE", ldap: "postalCode"},
	{name: "country", container: "ADR", marker: "WORK", child: "CTRY", ldap: "c"},
	{name: "landline", container: "TEL", marker: "VOICE", child: "NUMBER", ldap: "telephoneNumber"},
	{name: "mobile", container: "TEL", marker: "CELL", child: "NUMBER", ldap: "mobile"},
	{name: "fax", container: "TEL", marker: "FAX", child: "NUMBER", ldap: "facsimileTelephoneNumber"},
	{name: "pager", container: "TEL", marker: "PAGER", child: "NUMBER", ldap: "pager"},
	{name: "email", container: "EMAIL", marker: "INTERNET", child: "USERID", ldap: "mail"},
	{name: "jid", child: "JABBERID"},
	{name: "job_title", child: "TITLE", ldap: "title"},
	{name: "org_role", child: "ROLE"},
	{name: "org_name", container: "ORG", child: "ORGNAME", ldap: "o"},
	{name: "org_unit", container: "ORG", child: "ORGUNIT", ldap: "ou"},
	{name: "homepage", child: "URL", ldap: "labeledURI"},
	{name: "description", child: "DESC", ldap: "description"},
}

// mappedElements are the top-level vCard elements the mapping rebuilds;
// any other element a user stores is kept locally as it is.
var mappedElements = map[string]bool{"FN": true, "N": true, "NICKNAME": true, "PHOTO": true, "BDAY": true,
	"ADR": true, "TEL": true, "EMAIL": true, "JABBERID": true, "TITLE": true, "ROLE": true, "ORG": true, "URL": true, "DESC": true}

// telMarkers are the TEL type flags that make a number something other
// than a landline.
var telMarkers = []string{"CELL", "FAX", "PAGER"}

// ProfileField is one field's effective mapping.
type ProfileField struct {
	Name      string
	Mode      string // config.Profile*
	Attribute string // readonly, update
	Value     string // static
	def       fieldDef
}

// profileFields returns the effective mapping: configured overrides over
// the XEP-0154 defaults (readonly from the default attribute, or local).
func (d *Directory) profileFields() []ProfileField {
	out := make([]ProfileField, 0, len(fieldDefs))
	for _, f := range fieldDefs {
		pf := ProfileField{Name: f.name, Mode: config.ProfileLocal, def: f}
		if f.ldap != "" {
			pf.Mode, pf.Attribute = config.ProfileReadonly, f.ldap
		}
		if c, ok := d.cfg.Profile[f.name]; ok {
			pf.Mode, pf.Value = c.Mode, c.Value
			if c.Attribute != "" {
				pf.Attribute = c.Attribute
			}
			if (pf.Mode == config.ProfileReadonly || pf.Mode == config.ProfileUpdate) && pf.Attribute == "" {
				// Configured as directory-backed but XEP-0154 names no
				// attribute and none was given: nothing to read.
				pf.Mode = config.ProfileLocal
			}
		}
		out = append(out, pf)
	}
	return out
}

// ProfileFields returns the effective profile mapping (for documentation
// and `parley config check`).
func (d *Directory) ProfileFields() []ProfileField { return d.profileFields() }

// ReadOnlyError is returned when a vCard update changes a field the user
// may not change (readonly or static): the vCard module answers
// not-allowed.
type ReadOnlyError struct{ Field, Mode string }

func (e *ReadOnlyError) Error() string {
	return fmt.Sprintf("profile field %s is %s: it is managed by the directory", e.Field, e.Mode)
}

// ErrProfileRefused wraps the directory's refusal of an update (access
// rights, syntax): the vCard module answers not-acceptable or forbidden.
var ErrProfileRefused = errors.New("directory: profile update refused")

// extract returns a field's value in a vCard and whether it is present.
func extract(v *xml.Element, f fieldDef) (string, bool) {
	if v == nil {
		return "", false
	}
	if f.container == "" {
		if c := v.Child("", f.child); c != nil {
			return strings.TrimSpace(c.Text()), true
		}
		return "", false
	}
	for _, c := range v.Elements() {
		if c.Local != f.container || !hasMarker(c, f) {
			continue
		}
		if x := c.Child("", f.child); x != nil {
			t := x.Text()
			if f.child == "BINVAL" {
				t = strings.Join(strings.Fields(t), "")
			}
			return strings.TrimSpace(t), true
		}
		return "", false
	}
	return "", false
}

func hasMarker(c *xml.Element, f fieldDef) bool {
	switch {
	case f.container == "TEL" && f.marker == "VOICE":
		// A landline: any TEL that is not a mobile, fax or pager number.
		for _, m := range telMarkers {
			if c.Child("", m) != nil {
				return false
			}
		}
		return true
	case f.container == "TEL":
		return c.Child("", f.marker) != nil
	}
	// ADR, EMAIL: the first one (the markers are only added on output).
	return true
}

// directoryValue is a field's value from the user's entry.
func directoryValue(u *User, pf ProfileField) string {
	if pf.def.child == "BINVAL" {
		if raw := u.RawValues(pf.Attribute); len(raw) > 0 {
			return base64.StdEncoding.EncodeToString(raw[0])
		}
		return ""
	}
	return u.Attr(pf.Attribute)
}

// VCard builds username's vcard-temp element: readonly and update fields
// from the directory entry, static fields from the configuration, local
// fields (and any element outside the mapping) from local, the vCard Parley
// stores for the user (nil if none).
func (d *Directory) VCard(ctx context.Context, username string, local *xml.Element) (*xml.Element, error) {
	u, err := d.LookupUser(ctx, username)
	if err != nil {
		return nil, err
	}
	vals := map[string]string{}
	for _, pf := range d.profileFields() {
		switch pf.Mode {
		case config.ProfileReadonly, config.ProfileUpdate:
			vals[pf.Name] = directoryValue(u, pf)
		case config.ProfileStatic:
			vals[pf.Name] = pf.Value
		case config.ProfileLocal:
			vals[pf.Name], _ = extract(local, pf.def)
		}
	}
	return buildVCard(vals, others(local)), nil
}

// others returns the elements of a vCard outside the mapping.
func others(v *xml.Element) []*xml.Element {
	if v == nil {
		return nil
	}
	var out []*xml.Element
	for _, c := range v.Elements() {
		if !mappedElements[c.Local] {
			out = append(out, c)
		}
	}
	return out
}

func buildVCard(vals map[string]string, extra []*xml.Element) *xml.Element {
	v := xml.New(NSVCard, "vCard")
	containers := map[string]*xml.Element{}
	for _, f := range fieldDefs {
		val := vals[f.name]
		if val == "" {
			continue
		}
		el := xml.New(NSVCard, f.child).AppendText(val)
		if f.container == "" {
			v.Append(el)
			continue
		}
		key := f.container + "/" + f.marker
		c := containers[key]
		if c == nil {
			c = xml.New(NSVCard, f.container)
			switch f.container {
			case "TEL":
				if f.marker == "VOICE" {
					c.Append(xml.New(NSVCard, "WORK"))
				}
				c.Append(xml.New(NSVCard, f.marker))
			case "ADR":
				c.Append(xml.New(NSVCard, "WORK"))
			case "EMAIL":
				c.Append(xml.New(NSVCard, "INTERNET"), xml.New(NSVCard, "PREF"))
			case "PHOTO":
				c.Append(xml.New(NSVCard, "TYPE").AppendText("image/jpeg"))
			}
			containers[key] = c
			v.Append(c)
		}
		c.Append(el)
	}
	for _, e := range extra {
		v.Append(e)
	}
	return v
}

// UpdateVCard applies a vcard-temp set from username: update-mode fields
// that changed are written to the directory; a change to a readonly or
// static field fails the whole update with *ReadOnlyError (nothing is
// written). It returns the element Parley stores locally: the local-mode
// fields and any element outside the mapping.
//
// A mapped field the vCard leaves out is left as it is rather than
// deleted (clients often publish partial vCards, e.g. only a photo); an
// empty element (<TITLE/>) clears an update-mode field.
func (d *Directory) UpdateVCard(ctx context.Context, username string, in *xml.Element) (*xml.Element, error) {
	u, err := d.LookupUser(ctx, username)
	if err != nil {
		return nil, err
	}
	fields := d.profileFields()
	var mods []ldap.Change
	localVals := map[string]string{}
	for _, pf := range fields {
		v, present := extract(in, pf.def)
		switch pf.Mode {
		case config.ProfileLocal:
			localVals[pf.Name] = v
			continue
		case config.ProfileStatic:
			if present && v != pf.Value {
				return nil, &ReadOnlyError{Field: pf.Name, Mode: pf.Mode}
			}
			continue
		}
		cur := directoryValue(u, pf)
		if !present || sameValue(pf, v, cur) {
			continue
		}
		if pf.Mode == config.ProfileReadonly {
			return nil, &ReadOnlyError{Field: pf.Name, Mode: pf.Mode}
		}
		attr := ldap.PartialAttribute{Type: pf.Attribute}
		op := uint(ldap.ReplaceAttribute)
		switch {
		case v == "" && cur == "":
			continue
		case v == "":
			op = ldap.DeleteAttribute
		case pf.def.child == "BINVAL":
			raw, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return nil, fmt.Errorf("%w: %s: bad base64", ErrProfileRefused, pf.Name)
			}
			attr.Vals = []string{string(raw)}
		default:
			attr.Vals = []string{v}
		}
		mods = append(mods, ldap.Change{Operation: op, Modification: attr})
	}
	if len(mods) > 0 {
		if err := d.modify(ctx, u, mods); err != nil {
			return nil, err
		}
	}
	return buildVCard(localVals, others(in)), nil
}

func sameValue(pf ProfileField, a, b string) bool {
	if pf.def.child == "BINVAL" {
		x, err1 := base64.StdEncoding.DecodeString(a)
		y, err2 := base64.StdEncoding.DecodeString(b)
		return err1 == nil && err2 == nil && bytes.Equal(x, y)
	}
	return a == b
}

// proxiedAuthzOID is the RFC 4370 Proxied Authorization control.
const proxiedAuthzOID = "2.16.840.1.113730.3.4.18"

// modify writes changes to u's entry with the service account, or, with
// profile_update_bind = "user", as the user through RFC 4370 proxied
// authorization (the directory's access rules for the user apply; the
// service account needs the right to proxy, e.g. OpenLDAP authzTo).
func (d *Directory) modify(ctx context.Context, u *User, mods []ldap.Change) error {
	var controls []ldap.Control
	if d.cfg.ProfileUpdateBind == "user" {
		controls = append(controls, ldap.NewControlString(proxiedAuthzOID, true, "dn:"+u.DN))
	}
	err := d.pool.do(ctx, func(c *ldap.Conn) error {
		return c.Modify(&ldap.ModifyRequest{DN: u.DN, Changes: mods, Controls: controls})
	})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnavailable) || isConnError(err):
		return d.wrap("profile update", err)
	}
	d.log.Info("directory: profile update refused", "dn", u.DN, "err", err)
	names := make([]string, 0, len(mods))
	for _, m := range mods {
		names = append(names, m.Modification.Type)
	}
	slices.Sort(names)
	var le *ldap.Error
	if errors.As(err, &le) && le.ResultCode == ldap.LDAPResultInsufficientAccessRights {
		return fmt.Errorf("%w: no right to change %s", ErrProfileRefused, strings.Join(names, ", "))
	}
	return fmt.Errorf("%w: %s: %v", ErrProfileRefused, strings.Join(names, ", "), ldap.LDAPResultCodeMap[resultCode(err)])
}

func resultCode(err error) uint16 {
	var le *ldap.Error
	if errors.As(err, &le) {
		return le.ResultCode
	}
	return 0
}
