package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"parley/internal/cluster"
)

// cmdCluster implements "parley cluster status": it reads the cluster's
// registry, heartbeats and leases from NATS with the config's [cluster]
// settings, so it answers even when no node runs here.
func cmdCluster(args []string) int {
	cfg, asJSON, code := listCommand(args, "status", "cluster status")
	if cfg == nil {
		return code
	}
	cl := cfg.Cluster
	if !cl.Enabled {
		fmt.Fprintln(os.Stderr, "parley: this config has no [cluster] (nats_urls)")
		return 1
	}
	eng, err := cluster.DialNATS(cluster.NATSOptions{
		URLs: cl.NATSURLs, Name: cl.Node + " status", CredsFile: cl.NATSCredsFile,
		User: cl.NATSUser, Password: cl.NATSPassword, Token: cl.NATSToken,
		CAFile: cl.NATSCAFile, CertFile: cl.NATSCertFile, KeyFile: cl.NATSKeyFile, Replicas: cl.Replicas,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		return 1
	}
	defer eng.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	st, err := cluster.ReadStatus(ctx, eng, cl.Lease.Duration)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley: cluster status:", err)
		return 1
	}
	if asJSON {
		printJSON(os.Stdout, st)
		return 0
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NODE\tSTATE\tSESSIONS\tHEARTBEAT\tINCARNATION")
	for _, n := range st.Nodes {
		state := "live"
		if !n.Live {
			state = "dead"
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%s ago\t%s\n", n.Name, state, n.Sessions, n.LastHeartbeat, n.Incarnation)
	}
	if len(st.Rooms)+len(st.Leases) > 0 {
		fmt.Fprintln(w, "\nLEASE\tHOLDER\tHOLDER STATE\t\t")
		for _, r := range append(st.Rooms, st.Leases...) {
			state := "live"
			if !r.HolderUp {
				state = "dead (next user takes over)"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t\t\n", r.Name, r.Node, state)
		}
	}
	_ = w.Flush()
	return 0
}
