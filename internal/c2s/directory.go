package c2s

import (
	"context"
	"errors"

	"parley/internal/directory"
	"parley/internal/sasl"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
)

// This file connects hosts with accounts = "directory" to the LDAP
// directory (issue 6): PLAIN passwords are checked by binding as the user,
// SCRAM-SHA-1/256 is offered when entries hold RFC 5803 secrets
// (authPassword) and checked against them,
// EXTERNAL maps certificates to directory entries, and XEP-0078 is off.
// A directory outage fails new logins with temporary-auth-failure; bound
// sessions never consult the directory again and continue.

// SetDirectory sets the directory of the hosts whose accounts live there.
// Call it before Serve.
func (s *Server) SetDirectory(d *directory.Directory) {
	s.mu.Lock()
	s.dir = d
	s.mu.Unlock()
}

// directory returns the directory when this stream's host keeps its
// accounts there, nil otherwise.
func (c *conn) directory() *directory.Directory {
	if c.host == nil || !c.hostCfg().AccountsInDirectory() {
		return nil
	}
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.srv.dir
}

// passwordMechanisms are the password-based mechanisms for this stream.
func (c *conn) passwordMechanisms() []string {
	if d := c.directory(); d != nil {
		return sasl.OfferedDirectory(c.tls, c.serverCert(), c.srv.cfg.C2S.AllowPlainWithoutTLS || c.secure(), d.SCRAMOffered(c.ctx))
	}
	return sasl.Offered(c.tls, c.serverCert(), c.srv.cfg.C2S.AllowPlainWithoutTLS || c.secure())
}

// directoryCheckPassword checks a PLAIN password with an LDAP bind.
func (c *conn) directoryCheckPassword(d *directory.Directory) func(ctx context.Context, user, pass string) error {
	return func(ctx context.Context, user, pass string) error {
		_, err := d.Authenticate(ctx, user, pass)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, directory.ErrInvalidCredentials), errors.Is(err, directory.ErrNoSuchUser):
			return sasl.NewFailure(sasl.CondNotAuthorized, "")
		case errors.Is(err, directory.ErrDisabled):
			c.srv.log.Info("c2s: disabled directory account refused", "remote", c.t.RemoteAddr().String(), "user", user+"@"+c.host.Domain)
			return sasl.NewFailure(sasl.CondNotAuthorized, "")
		}
		c.srv.log.Warn("c2s: directory login failed", "remote", c.t.RemoteAddr().String(), "user", user+"@"+c.host.Domain, "err", err)
		return sasl.NewFailure(sasl.CondTemporaryAuthFailure, "the user directory is unavailable; try again later")
	}
}

// directorySCRAM makes the SCRAM secrets of directory entries (RFC 5803
// authPassword) the credentials SCRAM checks on a directory host. Unknown
// and disabled users look like users without secrets (storage.ErrNotFound:
// a fake salt, then the wrong-password answer); an outage is
// temporary-auth-failure.
func (c *conn) directorySCRAM(d *directory.Directory) func(ctx context.Context, user string) (storage.Credentials, error) {
	return func(ctx context.Context, user string) (storage.Credentials, error) {
		creds, err := d.SCRAMCredentials(ctx, user)
		switch {
		case err == nil:
			return creds, nil
		case errors.Is(err, directory.ErrNoSuchUser), errors.Is(err, directory.ErrDisabled):
			return storage.Credentials{}, storage.ErrNotFound
		}
		c.srv.log.Warn("c2s: directory lookup for SCRAM failed", "remote", c.t.RemoteAddr().String(), "user", user+"@"+c.host.Domain, "err", err)
		return storage.Credentials{}, err
	}
}

// directoryExternal is the account check of SASL EXTERNAL on a directory
// host (seed 001: only users configured in the directory may connect).
// With directory.certificate_attribute the certificate's address must be
// that attribute's value in exactly one user entry; otherwise its
// localpart must name a user.
func (c *conn) directoryExternal(ctx context.Context, d *directory.Directory, pick jid.JID) (string, error) {
	var u *directory.User
	var err error
	if attr := d.Config().CertificateAttribute; attr != "" {
		u, err = d.LookupByAttribute(ctx, attr, pick.Bare().String())
	} else {
		u, err = d.LookupUser(ctx, pick.Local())
	}
	switch {
	case errors.Is(err, directory.ErrNoSuchUser):
		return "", sasl.NewFailure(sasl.CondNotAuthorized, "")
	case err != nil:
		c.srv.log.Warn("c2s: directory lookup for EXTERNAL failed", "remote", c.t.RemoteAddr().String(), "jid", pick.String(), "err", err)
		return "", sasl.NewFailure(sasl.CondTemporaryAuthFailure, "")
	case u.Disabled:
		return "", sasl.NewFailure(sasl.CondNotAuthorized, "")
	}
	return u.Username, nil
}
