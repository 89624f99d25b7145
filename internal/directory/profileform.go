package directory

import (
	"parley/internal/config"
	"parley/internal/xmpp/xml"
)

// ProfileValues returns the values of the XEP-0154 profile fields present
// in a vcard-temp element (the self-service page shows them as a form).
func ProfileValues(card *xml.Element) map[string]string {
	out := map[string]string{}
	for _, f := range fieldDefs {
		if v, ok := extract(card, f); ok {
			out[f.name] = v
		}
	}
	return out
}

// WithProfileValues returns a copy of card with the named profile fields
// set to vals (an empty value removes the field) and everything else
// kept: the other mapped fields' values and every element outside the
// mapping. The photo is kept as it is (its type included); it is not a
// form field.
func WithProfileValues(card *xml.Element, vals map[string]string) *xml.Element {
	cur := ProfileValues(card)
	delete(cur, "photo_data")
	for k, v := range vals {
		if k != "photo_data" {
			cur[k] = v
		}
	}
	extra := others(card)
	if card != nil {
		if p := card.Child("", "PHOTO"); p != nil {
			extra = append([]*xml.Element{p}, extra...)
		}
	}
	return buildVCard(cur, extra)
}

// LocalProfileFields is the profile mapping of a host whose accounts live
// in its database: every field is the user's own (local).
func LocalProfileFields() []ProfileField {
	out := make([]ProfileField, 0, len(fieldDefs))
	for _, f := range fieldDefs {
		out = append(out, ProfileField{Name: f.name, Mode: config.ProfileLocal, def: f})
	}
	return out
}
