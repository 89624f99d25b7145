package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"parley/internal/admin"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
)

// The admin socket is how the command line talks to the running server. It
// is a unix socket with mode 0600 in data_dir, never TCP: only local users
// with the server's file permissions can reach it, so it needs no
// authentication of its own.
//
//	GET  /s2s                      live server-to-server streams (parley s2s list)
//	POST /accounts/deleted?jid=J   an account was deleted by the CLI: end its sessions
//	POST /accounts/disabled?jid=J  an account was disabled by the CLI: end its sessions
//	GET  /sessions[?host=H]        bound client sessions (parley session list)
//	POST /sessions/end?jid=J       end the sessions of a bare JID, or one full JID's
func (s *Server) startAdmin() error {
	path := s.cfg.AdminSocket
	if path == "-" {
		return nil
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return fmt.Errorf("admin socket %s: another server is listening on it", path)
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		_ = os.Remove(path) // stale, from a server that did not shut down
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = ln.Close()
		return err
	}
	s.adminLn = ln
	srv := &http.Server{Handler: s.adminHandler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
			s.log.Warn("admin socket", "err", err)
		}
	}()
	return nil
}

func (s *Server) stopAdmin() {
	if s.adminLn != nil {
		_ = s.adminLn.Close() // unix listeners remove their socket file
	}
}

func (s *Server) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/s2s", func(w http.ResponseWriter, r *http.Request) {
		if s.s2s == nil {
			http.Error(w, "federation is not enabled", http.StatusNotFound)
			return
		}
		s.s2s.AdminHandler().ServeHTTP(w, r)
	})
	mux.HandleFunc("POST /accounts/deleted", func(w http.ResponseWriter, r *http.Request) {
		j, err := jid.Parse(r.URL.Query().Get("jid"))
		if err != nil || j.Local() == "" || j.Resource() != "" {
			http.Error(w, "jid: want a bare JID", http.StatusBadRequest)
			return
		}
		n, err := s.AccountDeleted(j)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		fmt.Fprintf(w, "%d\n", n)
	})
	mux.HandleFunc("POST /accounts/disabled", func(w http.ResponseWriter, r *http.Request) {
		j, ops, ok := s.adminTarget(w, r, false)
		if !ok {
			return
		}
		ss := ops.Host().Router.Sessions(j)
		for _, sess := range ss {
			sess.Close("not-authorized", "account disabled")
		}
		ops.Audit(cliActor, "disable-user", j.String())
		fmt.Fprintf(w, "%d\n", len(ss))
	})
	mux.HandleFunc("GET /sessions", func(w http.ResponseWriter, r *http.Request) {
		list := []SessionInfo{}
		for _, h := range s.hosts {
			if q := r.URL.Query().Get("host"); q != "" && q != h.Domain {
				continue
			}
			ops := admin.For(h)
			users, _ := ops.Online()
			for _, u := range users {
				bare, err := jid.Parse(u)
				if err != nil {
					continue
				}
				for _, d := range ops.Sessions(bare) {
					list = append(list, SessionInfo{JID: d.JID.String(), Available: d.Available, Show: d.Show,
						Status: d.Status, Priority: d.Priority, Client: d.Client, Address: d.Address})
				}
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	})
	mux.HandleFunc("POST /sessions/end", func(w http.ResponseWriter, r *http.Request) {
		j, ops, ok := s.adminTarget(w, r, true)
		if !ok {
			return
		}
		n, err := ops.EndSessions(r.Context(), cliActor, j)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprintf(w, "%d\n", n)
	})
	return mux
}

// cliActor is who acts through the admin socket: a local user with the
// server's file permissions, running the parley command.
var cliActor = admin.Actor{Via: "cli"}

// SessionInfo is one bound session as GET /sessions lists it.
type SessionInfo struct {
	JID       string `json:"jid"`
	Available bool   `json:"available"`
	Show      string `json:"show,omitempty"`
	Status    string `json:"status,omitempty"`
	Priority  int    `json:"priority"`
	Client    string `json:"client,omitempty"`
	Address   string `json:"address,omitempty"`
}

// adminTarget parses the jid parameter of an admin-socket request (a bare
// JID, or a full one when full is allowed) and finds its host's
// operations; it answers the request itself when either fails.
func (s *Server) adminTarget(w http.ResponseWriter, r *http.Request, full bool) (jid.JID, *admin.Ops, bool) {
	j, err := jid.Parse(r.URL.Query().Get("jid"))
	if err != nil || j.Local() == "" || (j.Resource() != "" && !full) {
		http.Error(w, "jid: want a JID user@host", http.StatusBadRequest)
		return jid.JID{}, nil, false
	}
	h := s.router.Host(j.Domain())
	if h == nil {
		http.Error(w, j.Domain()+" is not a host of this server", http.StatusNotFound)
		return jid.JID{}, nil, false
	}
	return j, admin.For(h), true
}

// AccountDeleted tells a running server that an account was deleted behind
// its back (by `parley user del`): modules hear the "deleted" account event
// and every session of the account ends with <not-authorized/>, so nothing
// keeps acting for, or writing data of, an account that no longer exists.
// It returns how many sessions were closed.
func (s *Server) AccountDeleted(bare jid.JID) (int, error) {
	h := s.router.Host(bare.Domain())
	if h == nil {
		return 0, fmt.Errorf("%s is not a host of this server", bare.Domain())
	}
	h.Accounts.Fire(module.EventAccountDeleted, &module.AccountEvent{Ctx: context.Background(), Host: h, JID: bare})
	sessions := s.router.Sessions(bare)
	for _, sess := range sessions {
		sess.Close("not-authorized", "account deleted")
	}
	return len(sessions), nil
}
