package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"parley/internal/s2s"
)

// startS2S binds the federation listeners and the admin socket that
// "parley s2s list" queries. The admin socket is a unix socket (mode 0600
// in data_dir), never TCP: only local users with the server's file
// permissions can reach it.
func (s *Server) startS2S() error {
	if s.s2s == nil {
		return nil
	}
	if err := s.s2s.Listen(); err != nil {
		return err
	}
	path := s.cfg.S2S.AdminSocket
	if path == "-" {
		return nil
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		s.s2s.Shutdown(context.Background())
		return fmt.Errorf("admin socket %s: another server is listening on it", path)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path) // stale, from a server that did not shut down
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		s.s2s.Shutdown(context.Background())
		return fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		s.s2s.Shutdown(context.Background())
		return err
	}
	s.adminLn = ln
	mux := http.NewServeMux()
	mux.Handle("/s2s", s.s2s.AdminHandler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("admin socket", "err", err)
		}
	}()
	return nil
}

func (s *Server) stopS2S(ctx context.Context) {
	if s.s2s == nil {
		return
	}
	if s.adminLn != nil {
		_ = s.adminLn.Close() // unix listeners remove their socket file
	}
	s.s2s.Shutdown(ctx)
}

// S2S returns the federation service, or nil when [s2s] is not enabled.
func (s *Server) S2S() *s2s.Service { return s.s2s }
