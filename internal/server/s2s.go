package server

import (
	"context"

	"parley/internal/s2s"
)

// startS2S binds the federation listeners.
func (s *Server) startS2S() error {
	if s.s2s == nil {
		return nil
	}
	return s.s2s.Listen()
}

func (s *Server) stopS2S(ctx context.Context) {
	if s.s2s != nil {
		s.s2s.Shutdown(ctx)
	}
}

// S2S returns the federation service, or nil when [s2s] is not enabled.
func (s *Server) S2S() *s2s.Service { return s.s2s }
