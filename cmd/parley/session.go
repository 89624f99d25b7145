package main

import (
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"

	"parley/internal/config"
	"parley/internal/server"
	"parley/internal/xmpp/jid"
)

const sessionUsage = "usage: parley session list [HOST] [--json] [--config FILE] | parley session end JID [--config FILE]"

// cmdSession implements "parley session list|end": it asks the running
// server over the admin socket for its bound client sessions, or to end
// some (as the web console's and XEP-0133's "end user session" do).
func cmdSession(args []string) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "end") {
		fmt.Fprintln(os.Stderr, sessionUsage)
		return 2
	}
	fs := flag.NewFlagSet("session", flag.ContinueOnError)
	path := fs.String("config", "", "config file")
	asJSON := fs.Bool("json", false, "print JSON (list)")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley: config:", err)
		return 1
	}
	return sessionCommand(cfg, args[0], pos, *asJSON, os.Stdout)
}

// sessionCommand runs "session list" or "session end" (sub) against the
// server running with cfg, writing results to out.
func sessionCommand(cfg *config.Config, sub string, pos []string, asJSON bool, out io.Writer) int {
	hc, ok := runningServer(cfg)
	if !ok {
		return 1
	}
	if sub == "end" {
		if len(pos) != 1 {
			fmt.Fprintln(os.Stderr, sessionUsage)
			return 2
		}
		j, err := jid.Parse(pos[0])
		if err != nil || j.Local() == "" {
			fmt.Fprintf(os.Stderr, "parley: %q is not a JID user@host or user@host/resource\n", pos[0])
			return 2
		}
		body, ok := adminPost(hc, cfg.AdminSocket, "/sessions/end?jid="+url.QueryEscape(j.String()))
		if !ok {
			return 1
		}
		n := strings.TrimSpace(body)
		if n == "0" {
			fmt.Fprintf(os.Stderr, "parley: %s has no session on the running server\n", j)
			return 1
		}
		fmt.Fprintf(out, "ended %s session(s) of %s\n", n, j)
		return 0
	}
	if len(pos) > 1 {
		fmt.Fprintln(os.Stderr, sessionUsage)
		return 2
	}
	q := ""
	if len(pos) == 1 {
		if cfg.HostByDomain(pos[0]) == nil {
			fmt.Fprintf(os.Stderr, "parley: %s is not a host of this server (see [[host]] in the config)\n", pos[0])
			return 1
		}
		q = "?host=" + url.QueryEscape(pos[0])
	}
	var list []server.SessionInfo
	if !adminGet(hc, cfg.AdminSocket, "/sessions"+q, &list) {
		return 1
	}
	if asJSON {
		printJSON(out, list)
		return 0
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "JID\tPRESENCE\tPRIORITY\tADDRESS\tCLIENT")
	for _, s := range list {
		p := "not sent"
		if s.Available {
			p = "available"
			if s.Show != "" {
				p = s.Show
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", s.JID, p, s.Priority, dash(s.Address), dash(s.Client))
	}
	_ = tw.Flush()
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
