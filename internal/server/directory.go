package server

import (
	"context"

	"parley/internal/access"
	"parley/internal/directory"
	"parley/internal/xmpp/jid"
)

// dirState is the LDAP directory of the hosts with accounts = "directory"
// (issue 6) and its polling goroutine.
type dirState struct {
	dir  *directory.Directory
	stop context.CancelFunc
	done chan struct{}
}

// newDirectory connects (lazily) to the [directory] when one is configured.
func (s *Server) newDirectory() error {
	if !s.cfg.Directory.Enabled() {
		return nil
	}
	s.metrics.EnableDirectory()
	d, err := directory.New(s.cfg.Directory, s.log.With("component", "directory"), s.metrics)
	if err != nil {
		return err
	}
	s.directory.dir = d
	return nil
}

// wireDirectory gives the directory to c2s (authentication, and group
// membership for the access policy next to the KV groups of `parley
// group`). The directory hosts got it as their AccountSource when they
// were created (read by AccountExists and the vcard, dirroster and muc
// modules).
func (s *Server) wireDirectory() {
	d := s.directory.dir
	if d == nil {
		return
	}
	s.c2s.SetDirectory(d)
	s.c2s.SetGroupResolver(s.groups)
}

// groupSources is where group membership comes from: the stored groups of
// `parley group`, and with a directory the directory's groups on its hosts.
func (s *Server) groupSources() access.GroupResolver {
	kv := access.KVGroups{Store: s.store}
	d := s.directory.dir
	if d == nil {
		return kv
	}
	hosts := map[string]bool{}
	for _, h := range s.cfg.Hosts {
		if h.AccountsInDirectory() {
			hosts[h.Domain] = true
		}
	}
	return access.Union{kv, directory.HostGroups{Dir: d, Hosts: hosts}}
}

// wireAdmins lets modules recognise administrators by admin_groups as well
// as the admins list, through the host's access control (the same group
// sources as login, and the directory's overrides).
func (s *Server) wireAdmins() {
	for _, h := range s.hosts {
		h.AdminCheck = func(ctx context.Context, bare jid.JID) (bool, error) {
			return h.Access.IsAdmin(ctx, bare)
		}
	}
}

// startDirectory starts polling groups and rooms (after the modules that
// watch them started).
func (s *Server) startDirectory() {
	if s.directory.dir == nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.directory.stop, s.directory.done = cancel, make(chan struct{})
	go func() {
		defer close(s.directory.done)
		s.directory.dir.Run(ctx)
	}()
}

func (s *Server) stopDirectory() {
	if s.directory.stop != nil {
		s.directory.stop()
		<-s.directory.done
		s.directory.stop = nil
	}
	if s.directory.dir != nil {
		s.directory.dir.Close()
	}
}

// Directory returns the server's directory, nil without one.
func (s *Server) Directory() *directory.Directory { return s.directory.dir }
