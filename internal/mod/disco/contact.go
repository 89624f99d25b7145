package disco

import (
	"parley/internal/xmpp/xml"
)

// NSServerInfo is the FORM_TYPE of the server information form (XEP-0128
// §5) in which XEP-0157 publishes contact addresses.
const NSServerInfo = "http://jabber.org/network/serverinfo"

// NSData is XEP-0004 data forms.
const NSData = "jabber:x:data"

// contactForm is the host's XEP-0157 contact addresses as the extended
// disco#info form XEP-0128 defines, from [host.contact_addresses] (read
// per request, like everything else here), or nil when the host lists
// none: an empty form would only say there is nobody to contact. Fields
// are list-multi, as XEP-0157 §5 registers them, in registry order.
func (d *Disco) contactForm() *xml.Element {
	if d.h.HostCfg == nil {
		return nil
	}
	fields := d.h.HostCfg.ContactAddresses.Fields()
	if len(fields) == 0 {
		return nil
	}
	x := xml.New(NSData, "x").SetAttr("type", "result").
		Append(xml.New(NSData, "field").SetAttr("var", "FORM_TYPE").SetAttr("type", "hidden").
			Append(xml.New(NSData, "value").AppendText(NSServerInfo)))
	for _, f := range fields {
		field := xml.New(NSData, "field").SetAttr("var", f.Var).SetAttr("type", "list-multi")
		for _, v := range f.Values {
			field.Append(xml.New(NSData, "value").AppendText(v))
		}
		x.Append(field)
	}
	return x
}
