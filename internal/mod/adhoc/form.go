package adhoc

import (
	"strings"

	"parley/internal/xmpp/xml"
)

// Form is a submitted XEP-0004 form: values by field var, in order.
type Form struct {
	Type   string
	Values map[string][]string
}

// Value returns the first value of field v, trimmed, or "".
func (f *Form) Value(v string) string {
	if f == nil || len(f.Values[v]) == 0 {
		return ""
	}
	return strings.TrimSpace(f.Values[v][0])
}

// Multi returns the values of field v that are not blank.
func (f *Form) Multi(v string) []string {
	if f == nil {
		return nil
	}
	var out []string
	for _, s := range f.Values[v] {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Text joins the lines of a text-multi field (XEP-0004 §3.3: one <value/>
// per line).
func (f *Form) Text(v string) string {
	if f == nil {
		return ""
	}
	return strings.Join(f.Values[v], "\n")
}

// parseForm reads the data form in cmd, nil when there is none.
func parseForm(cmd *xml.Element) *Form {
	x := cmd.Child(NSData, "x")
	if x == nil {
		return nil
	}
	f := &Form{Type: x.Attr("type"), Values: make(map[string][]string)}
	for _, fl := range x.Elements() {
		if fl.Space != NSData || fl.Local != "field" || fl.Attr("var") == "" {
			continue
		}
		var vals []string
		for _, v := range fl.Elements() {
			if v.Space == NSData && v.Local == "value" {
				vals = append(vals, v.Text())
			}
		}
		f.Values[fl.Attr("var")] = append(f.Values[fl.Attr("var")], vals...)
	}
	return f
}

// field describes one field of a form the module sends.
type field struct {
	Var, Type, Label string
	Required         bool
	Values           []string
}

// form builds a data form of type typ ("form" or "result") with the
// XEP-0133 FORM_TYPE first.
func form(typ, title, instructions string, fields ...field) *xml.Element {
	x := xml.New(NSData, "x").SetAttr("type", typ)
	if title != "" {
		x.Append(xml.New(NSData, "title").AppendText(title))
	}
	if instructions != "" {
		x.Append(xml.New(NSData, "instructions").AppendText(instructions))
	}
	all := append([]field{{Var: "FORM_TYPE", Type: "hidden", Values: []string{NSAdmin}}}, fields...)
	for _, f := range all {
		el := xml.New(NSData, "field").SetAttr("var", f.Var)
		if f.Type != "" {
			el.SetAttr("type", f.Type)
		}
		if f.Label != "" {
			el.SetAttr("label", f.Label)
		}
		if f.Required {
			el.Append(xml.New(NSData, "required"))
		}
		for _, v := range f.Values {
			el.Append(xml.New(NSData, "value").AppendText(v))
		}
		x.Append(el)
	}
	return x
}
