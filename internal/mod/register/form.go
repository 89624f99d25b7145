package register

import (
	"strings"

	"parley/internal/xmpp/xml"
)

// labels are the human-readable names of the fields in the data form.
func label(field string) string {
	switch field {
	case "username":
		return "Username"
	case "password":
		return "Password"
	case "email":
		return "Email address"
	case "name":
		return "Full name"
	case "nick":
		return "Nickname"
	case "first":
		return "Given name"
	case "last":
		return "Family name"
	case "url":
		return "Web page"
	}
	return strings.ToUpper(field[:1]) + field[1:]
}

// fields returns every field of the inquiry in order: username and password
// (always required, XEP-0077 §3.1), then the configured ones.
func (r *Register) fields() []string {
	return append([]string{"username", "password"}, r.cfg.Fields...)
}

// inquiry builds the <query/> answering an IQ get. values are the current
// registration of an authenticated user (nil before authentication); the
// password is never sent back.
func (r *Register) inquiry(values map[string]string) *xml.Element {
	q := xml.New(NS, "query")
	if values != nil {
		q.Append(xml.New(NS, "registered"))
	}
	q.Append(xml.New(NS, "instructions").AppendText(r.cfg.Instructions))
	for _, f := range r.fields() {
		el := xml.New(NS, f)
		if v := values[f]; v != "" && f != "password" {
			el.AppendText(v)
		}
		q.Append(el)
	}
	// XEP-0077 §4: the same fields as a XEP-0004 form with FORM_TYPE.
	x := xml.New(NSData, "x").SetAttr("type", "form")
	x.Append(xml.New(NSData, "title").AppendText("Registration on " + r.h.Domain))
	x.Append(xml.New(NSData, "instructions").AppendText(r.cfg.Instructions))
	x.Append(xml.New(NSData, "field").SetAttr("type", "hidden").SetAttr("var", "FORM_TYPE").
		Append(xml.New(NSData, "value").AppendText(NS)))
	for _, f := range r.fields() {
		typ := "text-single"
		if f == "password" {
			typ = "text-private"
		}
		fe := xml.New(NSData, "field").SetAttr("type", typ).SetAttr("var", f).SetAttr("label", label(f))
		fe.Append(xml.New(NSData, "required"))
		if v := values[f]; v != "" && f != "password" {
			fe.Append(xml.New(NSData, "value").AppendText(v))
		}
		x.Append(fe)
	}
	q.Append(x)
	return q
}

// submission is a parsed IQ set.
type submission struct {
	values map[string]string // field → value, only fields present
	remove bool
	others int // child elements other than <remove/>
	form   bool
}

// formError is a malformed data form submission (bad-request).
type formError string

func (e formError) Error() string { return string(e) }

// parse reads an IQ set's <query/>: the XEP-0004 form when there is one
// (XEP-0077 §4: the form takes precedence), the legacy elements otherwise.
// Elements the host did not ask for are ignored (and not stored).
func (r *Register) parse(q *xml.Element) (submission, error) {
	s := submission{values: make(map[string]string)}
	wanted := make(map[string]bool)
	for _, f := range r.fields() {
		wanted[f] = true
	}
	if x := q.Child(NSData, "x"); x != nil && x.Space == NSData {
		s.form = true
		if t := x.Attr("type"); t != "submit" && t != "" {
			return s, formError("the data form must be of type submit")
		}
		for _, fe := range x.Elements() {
			if fe.Space != NSData || fe.Local != "field" {
				continue
			}
			v := fe.ChildText(NSData, "value")
			switch name := fe.Attr("var"); {
			case name == "FORM_TYPE":
				if v != NS {
					return s, formError("FORM_TYPE must be " + NS)
				}
			case wanted[name]:
				s.values[name] = v
			}
		}
		s.others = 1
		return s, nil
	}
	for _, el := range q.Elements() {
		if el.Space != NS {
			s.others++
			continue
		}
		switch {
		case el.Local == "remove":
			s.remove = true
		case wanted[el.Local]:
			s.values[el.Local] = el.Text()
			s.others++
		default:
			s.others++
		}
	}
	return s, nil
}

// echo is the submitted <query/> as returned in an error reply (seed 004 and
// XEP-0077 §3.1 examples), with the password blanked: the client knows what
// it sent, and a password copied back is one more place for it to be logged.
// A submitted data form is not echoed (it would carry the password too).
func echo(q *xml.Element) *xml.Element {
	out := xml.New(NS, "query")
	for _, el := range q.Elements() {
		switch {
		case el.Space == NS && el.Local == "password":
			out.Append(xml.New(NS, "password"))
		case el.Space == NS:
			out.Append(el)
		}
	}
	return out
}
