package loadgen

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/xdg-go/scram"

	"parley/internal/sockio"
)

// Target says how to reach and log in to the server under test.
type Target struct {
	Addr     string // host:port of the c2s listener
	Domain   string // XMPP domain of the accounts
	TLS      string // "none", "starttls" or "direct" (XEP-0368 TLS from the first byte)
	Mech     string // "PLAIN", "SCRAM-SHA-1" or "SCRAM-SHA-256"
	Resource string // resource requested at bind ("" lets the server choose)
	Timeout  time.Duration
	// Sources are local IP addresses to connect from, one per account in
	// turn (account index modulo their number); empty: the system's
	// choice. Many loopback sources stand for many clients to a server
	// that bounds what one address may do (Parley's
	// limits.max_concurrent_logins_per_ip).
	Sources []string
}

// TLS modes.
const (
	TLSNone     = "none"
	TLSStartTLS = "starttls"
	TLSDirect   = "direct"
)

// Account is one user of the run. Its SCRAM client keeps the salted
// password of the last conversation (RFC 5802 §5 allows clients to cache
// it), so a login storm that reuses accounts costs the generator HMACs, not
// a PBKDF2 per login; the server still does its full work every time.
type Account struct {
	Index    int
	User     string // local part
	Password string

	once  sync.Once
	scram *scram.Client
	err   error
}

func (a *Account) scramClient(mech string) (*scram.Client, error) {
	a.once.Do(func() {
		gen := scram.SHA1
		if mech == "SCRAM-SHA-256" {
			gen = scram.SHA256
		}
		a.scram, a.err = gen.NewClient(a.User, a.Password, "")
	})
	return a.scram, a.err
}

// Phase names a login step; a failed login reports the phase it failed in.
type Phase string

// Login phases.
const (
	PhaseConnect Phase = "connect"
	PhaseTLS     Phase = "tls"
	PhaseAuth    Phase = "auth"
	PhaseBind    Phase = "bind"
	PhaseStream  Phase = "stream"
)

// LoginError is a failed login and the phase it failed in.
type LoginError struct {
	Phase Phase
	Err   error
}

func (e *LoginError) Error() string { return string(e.Phase) + ": " + e.Err.Error() }
func (e *LoginError) Unwrap() error { return e.Err }

// Session is one logged-in client stream. Writes are serialised by a
// mutex (the scheduler and the reader, answering the server, both write);
// reads belong to whoever calls Read.
type Session struct {
	Account *Account
	JID     string // full JID from bind

	conn net.Conn
	fr   *Framer
	wmu  sync.Mutex
}

// Read buffer sizes: most stanzas here are a few hundred bytes; one
// element may grow the buffer up to readMax.
const (
	readSize = 4096
	readMax  = 1 << 20
)

// Login connects, negotiates TLS as configured, authenticates with the
// configured mechanism, binds a resource and, when the server asks for it,
// establishes the legacy session. It does not send presence.
func Login(t *Target, a *Account) (*Session, error) {
	d := net.Dialer{Timeout: t.Timeout}
	if len(t.Sources) > 0 {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(t.Sources[a.Index%len(t.Sources)])}
	}
	conn, err := d.Dial("tcp", t.Addr)
	if err != nil {
		return nil, &LoginError{PhaseConnect, err}
	}
	// Raw reads and writes (package sockio): the generator, too, is
	// often idle between messages at the lower rates.
	s := &Session{Account: a, conn: sockio.Wrap(conn)}
	if err := s.login(t); err != nil {
		s.conn.Close()
		return nil, err
	}
	s.conn.SetDeadline(time.Time{})
	return s, nil
}

func (s *Session) tlsConfig(t *Target) *tls.Config {
	// The generator measures servers, it does not authenticate them:
	// certificates are self-signed test certificates. No session cache, so
	// every login costs every server a full handshake.
	return &tls.Config{ServerName: t.Domain, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
}

func (s *Session) login(t *Target) error {
	if t.Timeout > 0 {
		s.conn.SetDeadline(time.Now().Add(t.Timeout))
	}
	if t.TLS == TLSDirect {
		tc := tls.Client(s.conn, s.tlsConfig(t))
		if err := tc.Handshake(); err != nil {
			return &LoginError{PhaseTLS, err}
		}
		s.conn = tc
	}
	s.fr = NewFramer(s.conn, readSize, readMax)
	feats, err := s.open(t)
	if err != nil {
		return err
	}
	if t.TLS == TLSStartTLS {
		if !HasChild(feats, "<starttls") {
			return &LoginError{PhaseTLS, errors.New("server offers no STARTTLS")}
		}
		if err := s.write([]byte("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")); err != nil {
			return &LoginError{PhaseTLS, err}
		}
		el, err := s.next(PhaseTLS)
		if err != nil {
			return err
		}
		if !bytes.Equal(Name(el), []byte("proceed")) {
			return &LoginError{PhaseTLS, fmt.Errorf("STARTTLS refused: %.200s", el)}
		}
		tc := tls.Client(s.conn, s.tlsConfig(t))
		if err := tc.Handshake(); err != nil {
			return &LoginError{PhaseTLS, err}
		}
		s.conn = tc
		s.fr.Reset(tc)
		if feats, err = s.open(t); err != nil {
			return err
		}
	}
	if err := s.auth(t, feats); err != nil {
		return err
	}
	s.fr.Reset(s.conn)
	if feats, err = s.open(t); err != nil {
		return err
	}
	return s.bind(t, feats)
}

// open sends a stream header and returns the stream features.
func (s *Session) open(t *Target) ([]byte, error) {
	var b []byte
	b = append(b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' to='"...)
	b = append(b, t.Domain...)
	b = append(b, "'>"...)
	if err := s.write(b); err != nil {
		return nil, &LoginError{PhaseStream, err}
	}
	kind, el, err := s.fr.Next()
	if err != nil {
		return nil, &LoginError{PhaseStream, err}
	}
	if kind != FrameHeader {
		return nil, &LoginError{PhaseStream, fmt.Errorf("expected a stream header, got %.200s", el)}
	}
	el, err = s.next(PhaseStream)
	if err != nil {
		return nil, err
	}
	if n := Name(el); !bytes.HasSuffix(n, []byte("features")) {
		return nil, &LoginError{PhaseStream, fmt.Errorf("expected stream features, got %.200s", el)}
	}
	return el, nil
}

// next returns the next top-level element; a stream error or the end of
// the stream is an error of phase p.
func (s *Session) next(p Phase) ([]byte, error) {
	kind, el, err := s.fr.Next()
	if err != nil {
		return nil, &LoginError{p, err}
	}
	switch {
	case kind == FrameEnd:
		return nil, &LoginError{p, errors.New("server closed the stream")}
	case bytes.HasSuffix(Name(el), []byte(":error")) || bytes.Equal(Name(el), []byte("error")):
		return nil, &LoginError{p, fmt.Errorf("stream error: %.300s", el)}
	}
	return el, nil
}

func (s *Session) auth(t *Target, feats []byte) error {
	mech := t.Mech
	if !bytes.Contains(feats, []byte(">"+mech+"<")) {
		return &LoginError{PhaseAuth, fmt.Errorf("server does not offer %s: %.300s", mech, feats)}
	}
	var conv *scram.ClientConversation
	var first []byte
	switch mech {
	case "PLAIN":
		first = []byte("\x00" + s.Account.User + "\x00" + s.Account.Password)
	case "SCRAM-SHA-1", "SCRAM-SHA-256":
		c, err := s.Account.scramClient(mech)
		if err != nil {
			return &LoginError{PhaseAuth, err}
		}
		conv = c.NewConversation()
		msg, err := conv.Step("")
		if err != nil {
			return &LoginError{PhaseAuth, err}
		}
		first = []byte(msg)
	default:
		return &LoginError{PhaseAuth, fmt.Errorf("unsupported mechanism %q", mech)}
	}
	b := []byte("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + mech + "'>")
	b = base64.StdEncoding.AppendEncode(b, first)
	b = append(b, "</auth>"...)
	if err := s.write(b); err != nil {
		return &LoginError{PhaseAuth, err}
	}
	for {
		el, err := s.next(PhaseAuth)
		if err != nil {
			return err
		}
		name := Name(el)
		text := textOf(el)
		switch string(name) {
		case "success":
			if conv != nil && !conv.Done() {
				data, err := base64.StdEncoding.DecodeString(string(text))
				if err != nil {
					return &LoginError{PhaseAuth, err}
				}
				if _, err := conv.Step(string(data)); err != nil {
					return &LoginError{PhaseAuth, fmt.Errorf("server signature: %w", err)}
				}
			}
			return nil
		case "challenge":
			if conv == nil {
				return &LoginError{PhaseAuth, errors.New("challenge to PLAIN")}
			}
			data, err := base64.StdEncoding.DecodeString(string(text))
			if err != nil {
				return &LoginError{PhaseAuth, err}
			}
			var resp string
			if !conv.Done() {
				if resp, err = conv.Step(string(data)); err != nil {
					return &LoginError{PhaseAuth, err}
				}
			}
			r := []byte("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>")
			r = base64.StdEncoding.AppendEncode(r, []byte(resp))
			r = append(r, "</response>"...)
			if err := s.write(r); err != nil {
				return &LoginError{PhaseAuth, err}
			}
		default:
			return &LoginError{PhaseAuth, fmt.Errorf("authentication failed: %.300s", el)}
		}
	}
}

// textOf is the character data of a simple element (<a>text</a>).
func textOf(el []byte) []byte {
	st := startTag(el)
	if len(st) >= 2 && st[len(st)-2] == '/' {
		return nil
	}
	return textUntilTag(el[len(st):])
}

func (s *Session) bind(t *Target, feats []byte) error {
	if !HasChild(feats, "urn:ietf:params:xml:ns:xmpp-bind") {
		return &LoginError{PhaseBind, fmt.Errorf("no bind feature: %.300s", feats)}
	}
	b := []byte("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>")
	if t.Resource != "" {
		b = append(b, "<resource>"+t.Resource+"</resource>"...)
	}
	b = append(b, "</bind></iq>"...)
	if err := s.write(b); err != nil {
		return &LoginError{PhaseBind, err}
	}
	el, err := s.waitIQ("bind1", PhaseBind)
	if err != nil {
		return err
	}
	s.JID = string(ChildText(el, "jid"))
	if s.JID == "" {
		return &LoginError{PhaseBind, fmt.Errorf("no JID in bind result: %.300s", el)}
	}
	// RFC 3921 sessions: only where the server still requires them.
	if HasChild(feats, "urn:ietf:params:xml:ns:xmpp-session") && !sessionOptional(feats) {
		if err := s.write([]byte("<iq type='set' id='sess1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")); err != nil {
			return &LoginError{PhaseBind, err}
		}
		if _, err := s.waitIQ("sess1", PhaseBind); err != nil {
			return err
		}
	}
	return nil
}

func sessionOptional(feats []byte) bool {
	i := bytes.Index(feats, []byte("urn:ietf:params:xml:ns:xmpp-session"))
	return i >= 0 && bytes.Contains(feats[i:], []byte("<optional"))
}

// waitIQ reads until the IQ result with the given id (skipping anything
// else the server sends meanwhile, e.g. presence); an error result fails.
func (s *Session) waitIQ(id string, p Phase) ([]byte, error) {
	for {
		el, err := s.next(p)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(Name(el), []byte("iq")) || string(Attr(el, "id")) != id {
			continue
		}
		if string(Attr(el, "type")) != "result" {
			return nil, &LoginError{p, fmt.Errorf("%.300s", el)}
		}
		return el, nil
	}
}

// Query sends an IQ and waits for its answer, before Read takes over the
// stream (setup steps such as room configuration). d bounds the wait.
func (s *Session) Query(iq []byte, id string, d time.Duration) ([]byte, error) {
	s.conn.SetReadDeadline(time.Now().Add(d))
	defer s.conn.SetReadDeadline(time.Time{})
	if err := s.Write(iq); err != nil {
		return nil, err
	}
	return s.waitIQ(id, PhaseStream)
}

// WaitFor reads until match accepts an element (or d passes), before Read
// takes over the stream.
func (s *Session) WaitFor(d time.Duration, match func(el []byte) bool) ([]byte, error) {
	s.conn.SetReadDeadline(time.Now().Add(d))
	defer s.conn.SetReadDeadline(time.Time{})
	for {
		el, err := s.next(PhaseStream)
		if err != nil {
			return nil, err
		}
		if match(el) {
			return el, nil
		}
	}
}

func (s *Session) write(b []byte) error {
	_, err := s.conn.Write(b)
	return err
}

// Write sends b in one write (one TLS record up to 16 KB).
func (s *Session) Write(b []byte) error {
	s.wmu.Lock()
	_, err := s.conn.Write(b)
	s.wmu.Unlock()
	return err
}

// Read hands every top-level element to h until the stream ends or fails.
// fresh is true when the element came with a new read from the socket, so
// a handler can take the time once per read instead of once per element.
func (s *Session) Read(h func(el []byte, fresh bool)) error {
	for {
		reads := s.fr.reads
		kind, el, err := s.fr.Next()
		if err != nil {
			return err
		}
		if kind == FrameEnd {
			return errors.New("stream closed by the server")
		}
		if kind == FrameStanza {
			h(el, s.fr.reads != reads)
		}
	}
}

// Close ends the stream politely and closes the connection after the
// server's answer or a short wait.
func (s *Session) Close() {
	s.wmu.Lock()
	s.conn.SetWriteDeadline(time.Now().Add(time.Second))
	s.conn.Write([]byte("</stream:stream>"))
	s.wmu.Unlock()
	s.conn.Close()
}

// CloseGracefully sends </stream:stream>, waits (up to d) for the server to
// end its stream too, then closes. Used when Read is not running.
func (s *Session) CloseGracefully(d time.Duration) {
	s.conn.SetDeadline(time.Now().Add(d))
	if s.write([]byte("</stream:stream>")) == nil {
		for {
			kind, _, err := s.fr.Next()
			if err != nil || kind == FrameEnd {
				break
			}
		}
	}
	s.conn.Close()
}

// Abort closes the connection at once.
func (s *Session) Abort() { s.conn.Close() }
