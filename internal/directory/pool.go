package directory

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/go-ldap/ldap/v3"

	"parley/internal/config"
	"parley/internal/metrics"
)

// pool holds the connections to the directory. At most cfg.PoolSize are
// checked out at once (callers wait for a slot, bounded by their context);
// returned connections are kept for reuse. Each one is bound as the service
// account (or anonymous) whenever it is in the pool.
//
// New connections try the servers in configured order, then again after
// retry_delay, retries more times; when every attempt fails the pool is
// "down": one error log line and parley_directory_up = 0 mark the change,
// and callers get ErrUnavailable. The first success marks it up again.
type pool struct {
	cfg       config.Directory
	servicePW string
	tls       *tls.Config
	log       *slog.Logger
	m         *metrics.Metrics

	slots chan struct{}
	idle  chan *ldap.Conn

	mu    sync.Mutex
	state int // 0 unknown, 1 up, -1 down
}

func newPool(cfg config.Directory, log *slog.Logger, m *metrics.Metrics) (*pool, error) {
	pw, err := cfg.ServiceBindPassword()
	if err != nil {
		return nil, fmt.Errorf("directory: bind_password_file: %w", err)
	}
	if cfg.BindDN != "" && pw == "" {
		return nil, errors.New("directory: empty service bind password (RFC 4513 unauthenticated bind)")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: cfg.ServerName}
	if cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("directory: ca_file: %w", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("directory: ca_file %s: no PEM certificates", cfg.CAFile)
		}
		tc.RootCAs = roots
	}
	return &pool{
		cfg: cfg, servicePW: pw, tls: tc, log: log, m: m,
		slots: make(chan struct{}, cfg.PoolSize),
		idle:  make(chan *ldap.Conn, cfg.PoolSize),
	}, nil
}

// get checks out a connection bound as the service account.
func (p *pool) get(ctx context.Context) (*ldap.Conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for a connection: %v", ErrUnavailable, ctx.Err())
	}
	for {
		select {
		case c := <-p.idle:
			if c.IsClosing() {
				continue
			}
			return c, nil
		default:
		}
		break
	}
	c, err := p.dial(ctx)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return c, nil
}

// put returns a connection; broken ones are closed.
func (p *pool) put(c *ldap.Conn, broken bool) {
	if broken || c.IsClosing() {
		c.Close()
	} else {
		select {
		case p.idle <- c:
		default:
			c.Close()
		}
	}
	<-p.slots
}

// close drops every idle connection.
func (p *pool) close() {
	for {
		select {
		case c := <-p.idle:
			c.Close()
		default:
			return
		}
	}
}

// dial connects to the first server that answers, in order, with retries.
func (p *pool) dial(ctx context.Context) (*ldap.Conn, error) {
	var errs []string
	for round := 0; round <= p.cfg.Retries; round++ {
		if round > 0 {
			select {
			case <-time.After(p.cfg.RetryDelay.Duration):
			case <-ctx.Done():
				errs = append(errs, ctx.Err().Error())
				round = p.cfg.Retries + 1
				continue
			}
		}
		for _, s := range p.cfg.Servers {
			c, err := p.dialOne(s)
			if err == nil {
				p.markUp(s)
				return c, nil
			}
			errs = append(errs, s+": "+err.Error())
			if p.m != nil {
				p.m.DirectoryErrors.WithLabelValues("connect").Inc()
			}
		}
	}
	err := fmt.Errorf("%w: %s", ErrUnavailable, strings.Join(errs, "; "))
	p.markDown(err)
	return nil, err
}

func (p *pool) dialOne(server string) (*ldap.Conn, error) {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		host, port = server, "389"
		if p.cfg.TLS == "ldaps" {
			port = "636"
		}
	}
	addr := net.JoinHostPort(host, port)
	d := &net.Dialer{Timeout: p.cfg.DialTimeout.Duration}
	tc := p.tls.Clone()
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	var c *ldap.Conn
	if p.cfg.TLS == "ldaps" {
		c, err = ldap.DialURL("ldaps://"+addr, ldap.DialWithDialer(d), ldap.DialWithTLSConfig(tc))
	} else {
		c, err = ldap.DialURL("ldap://"+addr, ldap.DialWithDialer(d))
	}
	if err != nil {
		return nil, err
	}
	// The dial timeout also bounds StartTLS and the service bind.
	c.SetTimeout(p.cfg.DialTimeout.Duration)
	if p.cfg.TLS == "starttls" {
		if err := c.StartTLS(tc); err != nil {
			c.Close()
			return nil, fmt.Errorf("starttls: %w", err)
		}
	}
	if err := p.bindService(c); err != nil {
		c.Close()
		if ldap.IsErrorWithCode(err, ldap.LDAPResultInvalidCredentials) {
			p.log.Error("directory: the service account's bind_dn/bind_password are refused", "server", server, "bind_dn", p.cfg.BindDN)
		}
		return nil, fmt.Errorf("service bind: %w", err)
	}
	c.SetTimeout(p.cfg.RequestTimeout.Duration)
	return c, nil
}

// bindService binds c as the service account, or anonymously without one.
func (p *pool) bindService(c *ldap.Conn) error {
	if p.cfg.BindDN == "" {
		return c.UnauthenticatedBind("")
	}
	return c.Bind(p.cfg.BindDN, p.servicePW)
}

func (p *pool) markUp(server string) {
	p.mu.Lock()
	was := p.state
	p.state = 1
	p.mu.Unlock()
	if p.m != nil {
		p.m.DirectoryUp.Set(1)
	}
	if was == -1 {
		p.log.Info("directory: reachable again", "server", server)
	}
}

func (p *pool) markDown(err error) {
	p.mu.Lock()
	was := p.state
	p.state = -1
	p.mu.Unlock()
	if p.m != nil {
		p.m.DirectoryUp.Set(0)
		p.m.DirectoryErrors.WithLabelValues("unavailable").Inc()
	}
	if was != -1 {
		p.log.Error("directory: UNREACHABLE; directory users cannot log in (temporary-auth-failure) until it is back; open sessions continue",
			"servers", strings.Join(p.cfg.Servers, ","), "err", err)
	}
}

// up reports the last known state (true until a failure is seen).
func (p *pool) up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state != -1
}

// isConnError reports whether err means the connection (not the request)
// failed, so the operation is worth retrying on a fresh connection.
func isConnError(err error) bool {
	if err == nil {
		return false
	}
	var le *ldap.Error
	if errors.As(err, &le) {
		switch le.ResultCode {
		case ldap.ErrorNetwork, ldap.LDAPResultBusy, ldap.LDAPResultUnavailable, ldap.LDAPResultServerDown,
			ldap.LDAPResultTimeout, ldap.LDAPResultConnectError:
			return true
		}
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// do runs fn on a pooled connection. A connection failure (an idle
// connection the server closed, a server that went away) is retried once
// on a fresh connection, which fails over to the next server; a second
// connection failure is ErrUnavailable.
func (p *pool) do(ctx context.Context, fn func(*ldap.Conn) error) error {
	for attempt := 0; ; attempt++ {
		c, err := p.get(ctx)
		if err != nil {
			return err
		}
		err = fn(c)
		broken := isConnError(err) || c.IsClosing()
		p.put(c, broken)
		if !broken {
			return err
		}
		if attempt == 1 {
			p.markDown(err)
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		if p.m != nil {
			p.m.DirectoryErrors.WithLabelValues("request").Inc()
		}
	}
}
