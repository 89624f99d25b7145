package console

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"parley/internal/c2s"
	"parley/internal/stream"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

const nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"

// LoginResult is the outcome of checking a console login.
type LoginResult int

// Login outcomes.
const (
	// LoginOK: the credentials are right and the access policy admits the
	// user.
	LoginOK LoginResult = iota
	// LoginFailed: wrong user or password, a disabled account, or a user
	// the access policy refuses (indistinguishable, as over XMPP).
	LoginFailed
	// LoginThrottled: the address is paused by the brute-force limiter.
	LoginThrottled
	// LoginUnavailable: the server could not check (directory down,
	// shutting down).
	LoginUnavailable
)

// Login checks user@domain's password for a console login from remote.
type Login func(ctx context.Context, remote net.Addr, domain, user, password string) LoginResult

// StreamLogin checks console logins by running them through the client
// stream server as a SASL PLAIN authentication on an in-memory transport
// (the same seam the WebSocket and BOSH transports use). So a console login
// is an XMPP login in every respect that matters: the same brute-force
// limiter counts and pauses the address, the same mechanism checks the
// password (or the directory bind), the same access policy and disabled
// flag apply, and the same log lines and metrics record it. The stream
// ends right after the SASL outcome; no session is bound.
func StreamLogin(srv *c2s.Server) Login {
	return func(ctx context.Context, remote net.Addr, domain, user, password string) LoginResult {
		auth := xml.New(nsSASL, "auth").SetAttr("mechanism", "PLAIN").
			AppendText(base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password)))
		t := &loginTransport{remote: remote, domain: domain, auth: auth, done: make(chan struct{})}
		if !srv.ServeTransport(t) {
			return LoginUnavailable
		}
		return t.result()
	}
}

// loginTransport is a c2s.Transport that plays a client opening a stream
// to domain and sending one SASL <auth/>, and records the answer.
type loginTransport struct {
	remote net.Addr
	domain string
	auth   *xml.Element

	mu       sync.Mutex
	headers  int
	sent     bool
	outcome  *xml.Element // <success/> or <failure/>
	done     chan struct{}
	doneOnce sync.Once
}

var _ c2s.Transport = (*loginTransport)(nil)

func (t *loginTransport) RemoteAddr() net.Addr            { return t.remote }
func (t *loginTransport) TLS() *tls.ConnectionState       { return nil }
func (t *loginTransport) Secure() bool                    { return true } // the console is served over HTTPS
func (t *loginTransport) SetReadDeadline(time.Time) error { return nil }
func (t *loginTransport) WriteHeader(xml.StreamHeader) error {
	return nil
}
func (t *loginTransport) OpenBeforeError(error, string) {}

// ReadHeader opens the stream once; the restart a success asks for ends it.
func (t *loginTransport) ReadHeader() (xml.StreamHeader, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.headers++
	if t.headers > 1 {
		return xml.StreamHeader{}, io.EOF
	}
	return xml.StreamHeader{Space: stanza.NSStream, Local: "stream", DefaultNS: stanza.NSClient, To: t.domain, Version: "1.0"}, nil
}

// Next sends the <auth/> once, then ends the stream.
func (t *loginTransport) Next() (*xml.Element, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sent {
		return nil, io.EOF
	}
	t.sent = true
	return t.auth, nil
}

// WriteElement records the SASL outcome; features and the rest are
// ignored.
func (t *loginTransport) WriteElement(el *xml.Element) error {
	if el.Space == nsSASL && (el.Local == "success" || el.Local == "failure") {
		t.mu.Lock()
		if t.outcome == nil {
			t.outcome = el
		}
		t.mu.Unlock()
	}
	return nil
}

func (t *loginTransport) NewWriter(max int, timeout time.Duration) *stream.Writer {
	// Never bound: the stream ends before a resource could be.
	return stream.NewWriter(discardConn{}, max, timeout, stanza.NSClient)
}

func (t *loginTransport) End(*stream.Writer, *xml.Element, bool) {
	t.doneOnce.Do(func() { close(t.done) })
}

func (t *loginTransport) result() LoginResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.outcome == nil:
		return LoginUnavailable
	case t.outcome.Local == "success":
		return LoginOK
	case t.outcome.Child(nsSASL, "temporary-auth-failure") != nil:
		// The same condition means "paused by the limiter" and "the
		// directory is down"; c2s's text tells them apart.
		if strings.Contains(t.outcome.ChildText(nsSASL, "text"), "too many failed logins") {
			return LoginThrottled
		}
		return LoginUnavailable
	}
	return LoginFailed
}

// discardConn is a net.Conn that accepts and drops writes.
type discardConn struct{}

func (discardConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (discardConn) Write(b []byte) (int, error)      { return len(b), nil }
func (discardConn) Close() error                     { return nil }
func (discardConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (discardConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (discardConn) SetDeadline(time.Time) error      { return nil }
func (discardConn) SetReadDeadline(time.Time) error  { return nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
