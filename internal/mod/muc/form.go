package muc

import (
	"errors"

	"parley/internal/xmpp/xml"
)

// form builds a XEP-0004 data form.
type form struct{ el *xml.Element }

func newForm(typ, formType string) *form {
	f := &form{el: xml.New(NSData, "x").SetAttr("type", typ)}
	f.el.Append(xml.New(NSData, "field").SetAttr("var", "FORM_TYPE").SetAttr("type", "hidden").
		Append(xml.New(NSData, "value").AppendText(formType)))
	return f
}

// field adds a field with zero or more values and returns it for options.
func (f *form) field(v, typ, label string, values ...string) *xml.Element {
	fl := xml.New(NSData, "field").SetAttr("var", v).SetAttr("type", typ)
	if label != "" {
		fl.SetAttr("label", label)
	}
	for _, val := range values {
		fl.Append(xml.New(NSData, "value").AppendText(val))
	}
	f.el.Append(fl)
	return fl
}

// option adds a <option/> to a list field.
func option(fl *xml.Element, label, value string) {
	fl.Append(xml.New(NSData, "option").SetAttr("label", label).Append(xml.New(NSData, "value").AppendText(value)))
}

// submitted is a parsed submit form: var → values.
type submitted map[string][]string

var errBadForm = errors.New("malformed data form")

// parseSubmit reads a form of type submit (XEP-0004 §3.2). A FORM_TYPE,
// when present, must be formType.
func parseSubmit(x *xml.Element, formType string) (submitted, error) {
	out := submitted{}
	for _, fl := range x.Elements() {
		if fl.Space != NSData || fl.Local != "field" {
			continue
		}
		v := fl.Attr("var")
		if v == "" {
			continue
		}
		var vals []string
		for _, c := range fl.Elements() {
			if c.Space == NSData && c.Local == "value" {
				vals = append(vals, c.Text())
			}
		}
		out[v] = vals
	}
	if ft, ok := out["FORM_TYPE"]; ok && (len(ft) != 1 || ft[0] != formType) {
		return nil, errBadForm
	}
	return out, nil
}

// one returns the single value of a field and whether it was given.
func (s submitted) one(v string) (string, bool) {
	vals, ok := s[v]
	if !ok {
		return "", false
	}
	if len(vals) == 0 {
		return "", true
	}
	return vals[0], true
}

// boolean parses a boolean field (XEP-0004 §3.3: "0", "1", "false", "true").
func (s submitted) boolean(v string, cur bool) (bool, error) {
	val, ok := s.one(v)
	if !ok {
		return cur, nil
	}
	switch val {
	case "1", "true":
		return true, nil
	case "0", "false", "":
		return false, nil
	}
	return cur, errBadForm
}
