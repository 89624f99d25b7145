package server

import (
	"fmt"

	"parley/internal/access"
	"parley/internal/console"
	"parley/internal/s2s"
)

// newConsole builds the web console when [console] enables it and mounts
// it on the HTTPS listener. Its logins run through the client stream
// server (console.StreamLogin), so they meet the brute-force limiter,
// the access policy and the log lines of XMPP logins.
func (s *Server) newConsole() error {
	if !s.cfg.Console.Admin && !s.cfg.Console.Account {
		return nil
	}
	groups := s.groups
	if groups == nil {
		groups = access.KVGroups{Store: s.store}
	}
	c, err := console.New(console.Deps{
		Config:   s.cfg,
		Hosts:    s.hosts,
		Store:    s.store,
		Login:    console.StreamLogin(s.c2s),
		Gatherer: s.metrics.Registry,
		Logs:     s.logs,
		S2S: func() []s2s.ConnInfo {
			if s.s2s == nil {
				return nil
			}
			return s.s2s.List()
		},
		Groups: groups,
		Log:    s.log,
	})
	if err != nil {
		return fmt.Errorf("console: %w", err)
	}
	if err := c.Mount(s.front); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	s.console = c
	return nil
}

// Console returns the web console, nil when it is off (tests).
func (s *Server) Console() *console.Console { return s.console }
