package server

import (
	"context"
	"reflect"

	"parley/internal/access"
	"parley/internal/cluster"
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
	if d.Config().ConfigBase != "" {
		d.Watch(func(_, snap *directory.Snapshot) { s.applyPolicies(snap) })
	}
}

// applyPolicies installs the directory's host policies (config_base) in
// every host's access control; a host without an entry goes back to the
// file's values. An unreachable directory produces no new snapshot, so
// the last values read stay in force.
func (s *Server) applyPolicies(snap *directory.Snapshot) {
	for _, h := range s.hosts {
		o := snap.Policies[h.Domain]
		prev := h.Access.Overrides()
		h.Access.SetOverrides(o)
		if !reflect.DeepEqual(prev, o) {
			h.ForgetAdmins()
			h.Log.Info("directory: host policy applied", "entry", sourceOf(o))
		}
	}
	for domain := range snap.Policies {
		if s.cfg.HostByDomain(domain) == nil {
			s.log.Warn("directory: policy entry for a host this server does not serve; ignored", "host", domain, "dn", snap.Policies[domain].Source)
		}
	}
}

func sourceOf(o *access.Overrides) string {
	if o == nil {
		return "(none: the file's values)"
	}
	return o.Source
}

// loadPolicies reads the directory once before the listeners start, so
// the first logins already meet the directory's policy; if the directory
// is down the file's values apply until a poll succeeds.
func (s *Server) loadPolicies(ctx context.Context) {
	d := s.directory.dir
	if d == nil || d.Config().ConfigBase == "" || d.Current() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, d.Config().RequestTimeout.Duration+d.Config().DialTimeout.Duration)
	defer cancel()
	if _, err := d.Refresh(ctx); err != nil {
		s.log.Warn("directory: host policies not read at start; the file's apply until a poll succeeds", "err", err)
	}
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
// watch them started, and after the cluster was joined): in a cluster one
// elected node polls and tells the others when something changed; a lone
// server is its own leader (cluster.Standalone), through the same loop.
func (s *Server) startDirectory() {
	if s.directory.dir == nil {
		return
	}
	var c directory.Coordinator = cluster.Standalone{}
	if s.cluster != nil {
		c = s.cluster
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.directory.stop, s.directory.done = cancel, make(chan struct{})
	go func() {
		defer close(s.directory.done)
		s.directory.dir.Run(ctx, c)
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
