package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"time"

	"parley/internal/config"
)

// errNoAdminSocket means the config disables the admin socket.
var errNoAdminSocket = errors.New("the admin socket is disabled in this config (admin_socket = \"-\")")

// adminClient returns an HTTP client that talks to the running server over
// its admin unix socket (admin_socket, mode 0600). running is false when no
// server is listening there, which is not an error for commands that work
// on storage alone.
func adminClient(cfg *config.Config) (hc *http.Client, running bool, err error) {
	sock := cfg.AdminSocket
	if sock == "-" {
		return nil, false, errNoAdminSocket
	}
	if _, err := os.Stat(sock); err != nil {
		return nil, false, nil
	}
	hc = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	return hc, true, nil
}
