package sasl

import "slices"

// GSSAPI is the Kerberos V5 mechanism of RFC 4752 (gssapi.go).
const GSSAPI = "GSSAPI"

// Allow is the per-host mechanism policy (`[host] mechanisms`): it keeps,
// in their order, the mechanisms of offered that allowed names. An empty
// allowed list allows everything, so a host without the key offers what it
// always did.
//
// Every place that lists or starts mechanisms for a host goes through
// Allow (Offered and Start via Env.Allowed, and the stream code for the
// <mechanisms/> of RFC 6120 and XEP-0388 alike), so a mechanism an
// administrator switched off is neither advertised nor accepted when a
// client asks for it anyway.
func Allow(allowed, offered []string) []string {
	if len(allowed) == 0 {
		return offered
	}
	out := make([]string, 0, len(offered))
	for _, m := range offered {
		if slices.Contains(allowed, m) {
			out = append(out, m)
		}
	}
	return out
}

// Allowed reports whether the policy allowed admits the mechanism name.
func Allowed(allowed []string, name string) bool {
	return len(allowed) == 0 || slices.Contains(allowed, name)
}
