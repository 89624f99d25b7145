package httpfront

import (
	"encoding/json"
	"encoding/xml"
	"net"
	"net/http"
	"strings"
)

const hostMetaPath = "/.well-known/host-meta"

// Link relations of XEP-0156 §3 (HTTP lookup method) and the paths the
// transports mount at.
const (
	RelWebSocket  = "urn:xmpp:alt-connections:websocket"
	RelBOSH       = "urn:xmpp:alt-connections:xbosh"
	WebSocketPath = "/xmpp-websocket"
	BOSHPath      = "/http-bind"
	nsXRD         = "http://docs.oasis-open.org/ns/xri/xrd-1.0"
)

// Link is one host-meta link.
type Link struct {
	Rel  string `json:"rel" xml:"rel,attr"`
	Href string `json:"href" xml:"href,attr"`
}

// Links returns the alternative connection methods of a host (XEP-0156):
// the WebSocket and BOSH URLs under its public base URL, each only when
// the transport is enabled, so a client is never sent to an endpoint that
// does not answer.
func (f *Front) Links(domain string) []Link {
	base := f.BaseURL(domain)
	links := []Link{}
	if f.cfg.HTTPS.WebSocket {
		links = append(links, Link{Rel: RelWebSocket, Href: "wss" + strings.TrimPrefix(base, "https") + WebSocketPath})
	}
	if f.cfg.HTTPS.BOSH {
		links = append(links, Link{Rel: RelBOSH, Href: base + BOSHPath})
	}
	return links
}

// hostFor returns the host domain a request is for, from its Host header:
// a host domain, or the host name of a host's public_url; "" if none.
func (f *Front) hostFor(r *http.Request) string {
	name := r.Host
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	name = strings.ToLower(strings.TrimSuffix(strings.Trim(name, "[]"), "."))
	return f.byName[name]
}

// hostMeta serves /.well-known/host-meta (XRD, which XEP-0156 requires)
// or host-meta.json. Web clients fetch it from another origin, so it
// carries Access-Control-Allow-Origin: * (it holds nothing private).
func (f *Front) hostMeta(asJSON bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
		case http.MethodOptions:
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
			return
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		domain := f.hostFor(r)
		if domain == "" {
			http.Error(w, "no XMPP host of this server is named by the Host header", http.StatusNotFound)
			return
		}
		links := f.Links(domain)
		var body []byte
		if asJSON {
			h.Set("Content-Type", "application/json")
			body, _ = json.Marshal(struct {
				Links []Link `json:"links"`
			}{links})
		} else {
			h.Set("Content-Type", "application/xrd+xml; charset=utf-8")
			doc := struct {
				XMLName xml.Name `xml:"XRD"`
				NS      string   `xml:"xmlns,attr"`
				Links   []Link   `xml:"Link"`
			}{NS: nsXRD, Links: links}
			b, _ := xml.MarshalIndent(doc, "", "  ")
			body = append([]byte(xml.Header), b...)
		}
		body = append(body, '\n')
		h.Set("Cache-Control", "max-age=300")
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	})
}
