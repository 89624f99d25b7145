package caps

import (
	"testing"

	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

func parseQuery(t *testing.T, s string) *xml.Element {
	t.Helper()
	el, err := xml.ParseElement([]byte(s), xml.DefaultLimits(), stanza.NSClient)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

// The two examples of XEP-0115 §5.2 and §5.3.
func TestVerificationExamples(t *testing.T) {
	simple := `<query xmlns='http://jabber.org/protocol/disco#info'>
	  <identity category='client' name='Exodus 0.9.1' type='pc'/>
	  <feature var='http://jabber.org/protocol/caps'/>
	  <feature var='http://jabber.org/protocol/disco#info'/>
	  <feature var='http://jabber.org/protocol/disco#items'/>
	  <feature var='http://jabber.org/protocol/muc'/>
	</query>`
	complex := `<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
	  <identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
	  <identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>
	  <feature var='http://jabber.org/protocol/caps'/>
	  <feature var='http://jabber.org/protocol/disco#info'/>
	  <feature var='http://jabber.org/protocol/disco#items'/>
	  <feature var='http://jabber.org/protocol/muc'/>
	  <x xmlns='jabber:x:data' type='result'>
	    <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
	    <field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>
	    <field var='os'><value>Mac</value></field>
	    <field var='os_version'><value>10.5.1</value></field>
	    <field var='software'><value>Psi</value></field>
	    <field var='software_version'><value>0.11</value></field>
	  </x>
	</query>`
	for _, tc := range []struct {
		name, xml, ver string
	}{
		{"simple", simple, "QgayPKawpkPSDYmwT/WM94uAlu0="},
		{"complex", complex, "q07IKJEyjvHSyhy//CH0CxmKi8w="},
	} {
		d, ok, why := parseInfo(parseQuery(t, tc.xml))
		if !ok {
			t.Fatalf("%s: ill-formed: %s", tc.name, why)
		}
		if !d.verify("sha-1", tc.ver) {
			t.Errorf("%s: %q does not verify; S = %q", tc.name, tc.ver, d.verificationString(identityOrder))
		}
		if d.verify("sha-1", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=") || d.verify("md5", tc.ver) {
			t.Errorf("%s: a wrong string or unknown hash verified", tc.name)
		}
	}
}

func TestIllFormed(t *testing.T) {
	for name, q := range map[string]string{
		"duplicate identity": `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' type='pc'/><identity category='client' type='pc'/></query>`,
		"duplicate feature":  `<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/><feature var='a'/></query>`,
		"duplicate form": `<query xmlns='http://jabber.org/protocol/disco#info'>
			<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>t</value></field></x>
			<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>t</value></field></x></query>`,
		"FORM_TYPE values differ": `<query xmlns='http://jabber.org/protocol/disco#info'>
			<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>t</value><value>u</value></field></x></query>`,
		"'<' in a feature": `<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a&lt;b'/></query>`,
	} {
		if _, ok, _ := parseInfo(parseQuery(t, q)); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	// A form without a hidden FORM_TYPE is ignored, not fatal (§5.4 3.6).
	d, ok, _ := parseInfo(parseQuery(t, `<query xmlns='http://jabber.org/protocol/disco#info'><feature var='a'/>
		<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>t</value></field></x></query>`))
	if !ok || len(d.forms) != 0 {
		t.Errorf("form without hidden FORM_TYPE: ok=%v forms=%v", ok, d.forms)
	}
}
