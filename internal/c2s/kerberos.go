package c2s

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"

	"parley/internal/directory"
	"parley/internal/gssapi"
	"parley/internal/sasl"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
)

// This file connects SASL GSSAPI (RFC 4752) to the hosts: one Kerberos
// acceptor per host with a [host.kerberos] keytab, and the mapping of an
// authenticated principal to the host's account.

// LoadKerberos creates the Kerberos acceptors of the hosts that have a
// keytab; a keytab that cannot be read or lacks the service principal is
// an error, so the server does not start with a GSSAPI it cannot serve.
// Call it once after New, before Listen.
func (s *Server) LoadKerberos() error {
	acc := map[string]*gssapi.Acceptor{}
	for _, h := range s.cfg.Hosts {
		k := h.Kerberos
		if !k.Enabled() {
			continue
		}
		a, err := gssapi.New(gssapi.Config{
			Keytab: k.Keytab, Principal: k.ServicePrincipal(), MaxTokenBytes: k.MaxTokenBytes,
			MaxClockSkew: k.MaxClockSkew.Duration, ReplayCacheSize: k.ReplayCacheSize,
		})
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Domain, err)
		}
		acc[h.Domain] = a
	}
	s.mu.Lock()
	s.kerberos = acc
	s.mu.Unlock()
	return nil
}

// kerberos returns the acceptor of this stream's host, nil without one.
func (c *conn) kerberos() *gssapi.Acceptor {
	if c.host == nil {
		return nil
	}
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.srv.kerberos[c.host.Domain]
}

// remoteIP is the client's address for Kerberos address restrictions.
func (c *conn) remoteIP() net.IP {
	if a, ok := c.t.RemoteAddr().(*net.TCPAddr); ok {
		return a.IP
	}
	if h, _, err := net.SplitHostPort(c.t.RemoteAddr().String()); err == nil {
		return net.ParseIP(h)
	}
	return nil
}

// mapPrincipal is the principal-to-account rule of a host: user@REALM with
// REALM in kerberos.realms and no instance becomes the localpart user
// (prepared like any JID localpart), which must be an enabled account of
// the host, in storage or, on directory hosts, in the directory (by
// kerberos.directory_attribute when set). Everything else is
// not-authorized; a store that cannot answer is temporary-auth-failure.
func (c *conn) mapPrincipal(ctx context.Context, p gssapi.Principal) (string, error) {
	k := c.hostCfg().Kerberos
	if !slices.Contains(k.Realms, p.Realm) {
		return "", fmt.Errorf("realm %s is not one of kerberos.realms: %w", p.Realm, sasl.NewFailure(sasl.CondNotAuthorized, ""))
	}
	if len(p.Components) != 1 {
		return "", fmt.Errorf("principals with an instance are not users: %w", sasl.NewFailure(sasl.CondNotAuthorized, ""))
	}
	j, err := jid.New(p.Components[0], c.host.Domain, "")
	if err != nil {
		return "", fmt.Errorf("name is not a JID localpart: %w", sasl.NewFailure(sasl.CondNotAuthorized, ""))
	}
	if d := c.directory(); d != nil {
		return c.directoryPrincipal(ctx, d, k.DirectoryAttribute, p, j.Local())
	}
	a, err := c.srv.store.Accounts().Get(ctx, c.host.Domain, j.Local())
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "", fmt.Errorf("no account %s: %w", j, sasl.NewFailure(sasl.CondNotAuthorized, ""))
	case err != nil:
		return "", fmt.Errorf("account lookup: %v: %w", err, sasl.NewFailure(sasl.CondTemporaryAuthFailure, ""))
	case a.Disabled:
		return "", fmt.Errorf("account %s is disabled: %w", j, sasl.NewFailure(sasl.CondNotAuthorized, ""))
	}
	return j.Local(), nil
}

// directoryPrincipal finds a principal's user entry on a directory host.
func (c *conn) directoryPrincipal(ctx context.Context, d *directory.Directory, attr string, p gssapi.Principal, local string) (string, error) {
	var u *directory.User
	var err error
	if attr != "" {
		u, err = d.LookupByAttribute(ctx, attr, p.String())
	} else {
		u, err = d.LookupUser(ctx, local)
	}
	switch {
	case errors.Is(err, directory.ErrNoSuchUser):
		return "", fmt.Errorf("no directory user: %w", sasl.NewFailure(sasl.CondNotAuthorized, ""))
	case err != nil:
		return "", fmt.Errorf("directory lookup: %v: %w", err, sasl.NewFailure(sasl.CondTemporaryAuthFailure, ""))
	case u.Disabled:
		return "", fmt.Errorf("directory account disabled: %w", sasl.NewFailure(sasl.CondNotAuthorized, ""))
	}
	return u.Username, nil
}
