package main

import (
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
	hc, ok := runningServer(cfg)
	if !ok {
		return 1
	}
	var list []s2s.ConnInfo
	if !adminGet(hc, cfg.AdminSocket, "/s2s", &list) {
		return 1
	}
	if asJSON {
		printJSON(os.Stdout, list)
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
