package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// runningServer is adminClient for the commands that need a running
// server; it says why on standard error when there is none.
func runningServer(cfg *config.Config) (*http.Client, bool) {
	hc, running, err := adminClient(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		return nil, false
	}
	if !running {
		fmt.Fprintf(os.Stderr, "parley: no server is running with this config (no admin socket at %s)\n", cfg.AdminSocket)
		return nil, false
	}
	return hc, true
}

// adminGet reads path's JSON answer from the running server into v; on
// failure it says why on standard error.
func adminGet(hc *http.Client, sock, path string, v any) bool {
	resp, err := hc.Get("http://parley" + path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "parley: cannot reach the server at %s: %v\n", sock, err)
		return false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		fmt.Fprintf(os.Stderr, "parley: the running server answered %s: %s", resp.Status, body)
		return false
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		fmt.Fprintln(os.Stderr, "parley: bad answer:", err)
		return false
	}
	return true
}

// adminPost posts to the running server's admin socket and returns the
// answer's body; on failure it says why on standard error.
func adminPost(hc *http.Client, sock, path string) (string, bool) {
	resp, err := hc.Post("http://parley"+path, "text/plain", nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "parley: cannot reach the server at %s: %v\n", sock, err)
		return "", false
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "parley: the running server answered %s: %s", resp.Status, body)
		return "", false
	}
	return string(body), true
}

// printJSON writes v indented, for the --json flags.
func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
