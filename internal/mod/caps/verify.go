package caps

import (
	"cmp"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha3"
	"crypto/sha512"
	"encoding/base64"
	"hash"
	"slices"
	"strings"

	"parley/internal/xmpp/xml"
)

// hashes are the algorithms whose verification strings the server checks,
// by their IANA "Hash Function Textual Names" (XEP-0115 §5.1 point 9; SHA-1
// is mandatory, §8.1). A 'hash' outside this list is not verified: what the
// entity answers is used for it alone (§5.4 point 2).
func newHash(name string) hash.Hash {
	switch name {
	case "sha-1":
		return sha1.New()
	case "sha-224":
		return sha256.New224()
	case "sha-256":
		return sha256.New()
	case "sha-384":
		return sha512.New384()
	case "sha-512":
		return sha512.New()
	case "sha3-256":
		return sha3.New256()
	case "sha3-512":
		return sha3.New512()
	}
	return nil
}

// identity is a disco#info identity as the verification string sees it.
type identity struct{ category, typ, lang, name string }

func (i identity) String() string { return i.category + "/" + i.typ + "/" + i.lang + "/" + i.name }

// form is an extended information form (XEP-0128): its FORM_TYPE and the
// other fields' values.
type form struct {
	formType string
	fields   map[string][]string
}

// discoInfo is a disco#info result parsed for verification.
type discoInfo struct {
	identities []identity
	features   []string
	forms      []form
}

// parseInfo reads a disco#info <query/> and applies the well-formedness
// rules of XEP-0115 §5.4 point 3: duplicate identities, duplicate features,
// two forms with one FORM_TYPE or a FORM_TYPE with differing values make
// the whole answer ill-formed (ok false, with the reason); a form without
// a hidden FORM_TYPE is ignored. As a defence against the known caps
// poisoning attack (§8.3), a '<' in any string that goes into the
// verification string, where it could shift the boundaries between
// components, also makes the answer ill-formed.
func parseInfo(q *xml.Element) (info discoInfo, ok bool, why string) {
	seenID := map[identity]bool{}
	seenFeature := map[string]bool{}
	seenForm := map[string]bool{}
	for _, el := range q.Elements() {
		switch {
		case el.Space == nsDiscoInfo && el.Local == "identity":
			id := identity{el.Attr("category"), el.Attr("type"), el.Lang(), el.Attr("name")}
			if seenID[id] {
				return info, false, "duplicate identity " + id.String()
			}
			seenID[id] = true
			info.identities = append(info.identities, id)
		case el.Space == nsDiscoInfo && el.Local == "feature":
			f := el.Attr("var")
			if seenFeature[f] {
				return info, false, "duplicate feature " + f
			}
			seenFeature[f] = true
			info.features = append(info.features, f)
		case el.Space == nsData && el.Local == "x":
			f, keep, why := parseForm(el)
			if why != "" {
				return info, false, why
			}
			if !keep {
				continue
			}
			if seenForm[f.formType] {
				return info, false, "two forms of type " + f.formType
			}
			seenForm[f.formType] = true
			info.forms = append(info.forms, f)
		}
	}
	if s := info.verificationString(identityOrder); strings.Count(s, "<") != info.separators() {
		return info, false, "'<' inside an identity, feature or form value"
	}
	return info, true, ""
}

func parseForm(x *xml.Element) (f form, keep bool, why string) {
	f.fields = map[string][]string{}
	hidden := false
	for _, fl := range x.Elements() {
		if fl.Space != nsData || fl.Local != "field" {
			continue
		}
		var vals []string
		for _, v := range fl.Elements() {
			if v.Space == nsData && v.Local == "value" {
				vals = append(vals, v.Text())
			}
		}
		name := fl.Attr("var")
		if name == "FORM_TYPE" {
			for _, v := range vals[min(1, len(vals)):] {
				if v != vals[0] {
					return f, false, "FORM_TYPE with differing values"
				}
			}
			if len(vals) > 0 {
				f.formType = vals[0]
			}
			hidden = fl.Attr("type") == "hidden"
			continue
		}
		f.fields[name] = append(f.fields[name], vals...)
	}
	// §5.4 point 3.6: a form without a hidden FORM_TYPE is ignored.
	return f, f.formType != "" && hidden, ""
}

// identityOrder sorts identities as XEP-0115 §5.1 point 2 says: by
// category, then type, then xml:lang (then name, for determinism).
func identityOrder(a, b identity) int {
	return cmp.Or(strings.Compare(a.category, b.category), strings.Compare(a.typ, b.typ),
		strings.Compare(a.lang, b.lang), strings.Compare(a.name, b.name))
}

// stringOrder sorts identities by their formatted strings, which is what
// several clients do. It differs from identityOrder only when a category
// or type contains a character below '/', so the server accepts either.
func stringOrder(a, b identity) int { return strings.Compare(a.String(), b.String()) }

// separators is the number of '<' the verification string has when no
// component contains one.
func (d discoInfo) separators() int {
	n := len(d.identities) + len(d.features)
	for _, f := range d.forms {
		n++
		for _, vs := range f.fields {
			n += 1 + len(vs)
		}
	}
	return n
}

// verificationString builds S of XEP-0115 §5.1 with identities in the
// given order.
func (d discoInfo) verificationString(order func(a, b identity) int) string {
	var b strings.Builder
	ids := slices.Clone(d.identities)
	slices.SortFunc(ids, order)
	for _, id := range ids {
		b.WriteString(id.String())
		b.WriteByte('<')
	}
	features := slices.Clone(d.features)
	slices.Sort(features)
	for _, f := range features {
		b.WriteString(f)
		b.WriteByte('<')
	}
	forms := slices.Clone(d.forms)
	slices.SortFunc(forms, func(a, b form) int { return strings.Compare(a.formType, b.formType) })
	for _, f := range forms {
		b.WriteString(f.formType)
		b.WriteByte('<')
		names := make([]string, 0, len(f.fields))
		for n := range f.fields {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			b.WriteString(n)
			b.WriteByte('<')
			vals := slices.Clone(f.fields[n])
			slices.Sort(vals)
			for _, v := range vals {
				b.WriteString(v)
				b.WriteByte('<')
			}
		}
	}
	return b.String()
}

// verify reports whether ver is the verification string of d under the
// named hash (XEP-0115 §5.4 point 3.7–3.9).
func (d discoInfo) verify(hashName, ver string) bool {
	for _, order := range []func(a, b identity) int{identityOrder, stringOrder} {
		h := newHash(hashName)
		if h == nil {
			return false
		}
		h.Write([]byte(d.verificationString(order)))
		if base64.StdEncoding.EncodeToString(h.Sum(nil)) == ver {
			return true
		}
	}
	return false
}
