package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"parley/internal/s2s"
)

// cmdS2S implements "parley s2s list": it asks the running server over the
// admin unix socket (admin_socket, mode 0600) for its live
// server-to-server streams.
func cmdS2S(args []string) int {
	cfg, asJSON, code := listCommand(args, "list", "s2s list")
	if cfg == nil {
		return code
	}
	if !cfg.S2S.Enabled {
		fmt.Fprintln(os.Stderr, "parley: federation is off in this config (turn it on with enabled = true under [s2s])")
		return 1
	}
	hc, running, err := adminClient(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		return 1
	}
	if !running {
		fmt.Fprintf(os.Stderr, "parley: no server is running with this config (no admin socket at %s)\n", cfg.AdminSocket)
		return 1
	}
	resp, err := hc.Get("http://parley/s2s")
	if err != nil {
		fmt.Fprintf(os.Stderr, "parley: cannot reach the server at %s: %v\n", cfg.AdminSocket, err)
		return 1
	}
	defer resp.Body.Close()
	var list []s2s.ConnInfo
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		fmt.Fprintln(os.Stderr, "parley: bad answer:", err)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(list)
		return 0
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DIR\tLOCAL\tREMOTE\tADDR\tTLS\tCERTIFICATE\tMETHOD\tSTATE\tSINCE")
	for _, c := range list {
		m := c.Method
		if m == "" {
			m = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Direction, c.Local, c.Remote, c.Addr, c.TLS,
			c.Certificate, m, c.State, c.Since.Format(time.RFC3339))
	}
	_ = tw.Flush()
	return 0
}
