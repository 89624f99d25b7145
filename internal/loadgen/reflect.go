package loadgen

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"parley/internal/sockio"
)

// Reflector is the generator's trivial target: a minimal XMPP router
// built on the same framer, that accepts any PLAIN login (optionally after
// STARTTLS), binds, answers IQs with empty results and forwards each
// <message/> byte for byte to the session of the local part it is
// addressed to. It does no validation, stamping, rosters, presence or
// storage, so its cost per message is a read and a write: pointed at it,
// the generator measures its own ceiling.
type Reflector struct {
	Domain string
	TLS    *tls.Config // nil: no STARTTLS

	mu       sync.RWMutex
	sessions map[string]*rconn
	seq      atomic.Int64
}

type rconn struct {
	mu   sync.Mutex
	conn net.Conn
}

func (c *rconn) write(b []byte) {
	c.mu.Lock()
	c.conn.Write(b)
	c.mu.Unlock()
}

// SelfSignedTLS makes a throwaway ECDSA certificate for domain.
func SelfSignedTLS(domain string) (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(48 * time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, nil
}

// Serve accepts connections until ln is closed.
func (rf *Reflector) Serve(ln net.Listener) error {
	rf.mu.Lock()
	if rf.sessions == nil {
		rf.sessions = make(map[string]*rconn)
	}
	rf.mu.Unlock()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		go rf.serve(sockio.Wrap(c))
	}
}

func (rf *Reflector) serve(conn net.Conn) {
	rc := &rconn{conn: conn}
	var user string
	defer func() {
		if user != "" {
			rf.mu.Lock()
			if rf.sessions[user] == rc {
				delete(rf.sessions, user)
			}
			rf.mu.Unlock()
		}
		conn.Close()
	}()
	fr := NewFramer(conn, readSize, readMax)
	secure, authed := false, false
	var out []byte
	for {
		kind, el, err := fr.Next()
		if err != nil {
			return
		}
		switch kind {
		case FrameEnd:
			rc.write([]byte("</stream:stream>"))
			return
		case FrameHeader:
			out = append(out[:0], "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='"...)
			out = append(out, rf.Domain...)
			out = append(out, "' id='r"...)
			out = strconv.AppendInt(out, rf.seq.Add(1), 10)
			out = append(out, "'><stream:features>"...)
			switch {
			case authed:
				out = append(out, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"...)
			case rf.TLS != nil && !secure:
				out = append(out, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"...)
			default:
				out = append(out, "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"...)
			}
			out = append(out, "</stream:features>"...)
			rc.write(out)
			continue
		}
		switch string(Name(el)) {
		case "message":
			to := Bare(Attr(el, "to"))
			if i := bytes.IndexByte(to, '@'); i >= 0 {
				to = to[:i]
			}
			rf.mu.RLock()
			dst := rf.sessions[string(to)]
			rf.mu.RUnlock()
			if dst != nil {
				dst.write(el)
			}
		case "starttls":
			if rf.TLS == nil || secure {
				return
			}
			rc.write([]byte("<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"))
			tc := tls.Server(conn, rf.TLS)
			if tc.Handshake() != nil {
				return
			}
			rc.mu.Lock()
			rc.conn = tc
			rc.mu.Unlock()
			fr.Reset(tc)
			secure = true
		case "auth":
			data, err := base64.StdEncoding.DecodeString(string(textOf(el)))
			parts := bytes.Split(data, []byte{0})
			if err != nil || len(parts) != 3 || len(parts[1]) == 0 {
				rc.write([]byte("<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>"))
				continue
			}
			user = string(parts[1])
			authed = true
			rc.write([]byte("<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"))
			fr.Reset(rc.conn)
		case "iq":
			typ := string(Attr(el, "type"))
			if typ != "get" && typ != "set" {
				continue
			}
			out = append(out[:0], "<iq type='result' id='"...)
			out = append(out, Attr(el, "id")...)
			out = append(out, "'>"...)
			if HasChild(el, "urn:ietf:params:xml:ns:xmpp-bind") && authed {
				out = append(out, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>"...)
				out = append(out, user+"@"+rf.Domain+"/r"...)
				out = strconv.AppendInt(out, rf.seq.Add(1), 10)
				out = append(out, "</jid></bind>"...)
				rf.mu.Lock()
				rf.sessions[user] = rc
				rf.mu.Unlock()
			}
			out = append(out, "</iq>"...)
			rc.write(out)
		}
	}
}
