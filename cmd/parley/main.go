// Command parley is the Parley XMPP server and its administration tool.
//
//	parley serve [--config parley.toml]   run the server in the foreground
//	parley user add|passwd|del|list|fast ...  manage accounts and FAST tokens (works while the server runs)
//	parley config check [--config FILE]    validate and print the effective config
//	parley register HOST[:PORT] [field=value ...]  in-band registration (XEP-0077) with any server
//	parley s2s list [--config FILE] [--json]  live federation streams (asks the running server)
//	parley session list|end ...            bound client sessions; end them (asks the running server)
//	parley archive export|purge ...        the compliance log and retention (works while the server runs)
//	parley cluster status [--config FILE] [--json]  nodes, sessions per node, room owners, leases
//	parley version
package main

import (
	"fmt"
	"os"

	"parley/internal/buildinfo"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		usage()
		return 2
	}
	switch args[0] {
	case "serve":
		return cmdServe(args[1:])
	case "user":
		return cmdUser(args[1:])
	case "group":
		return cmdGroup(args[1:])
	case "config":
		return cmdConfig(args[1:])
	case "register":
		return cmdRegister(args[1:])
	case "s2s":
		return cmdS2S(args[1:])
	case "session":
		return cmdSession(args[1:])
	case "archive":
		return cmdArchive(args[1:])
	case "cluster":
		return cmdCluster(args[1:])
	case "version", "--version", "-v":
		fmt.Println("parley", buildinfo.Version())
		return 0
	case "help", "-h", "--help":
		usage()
		return 0
	default:
		fmt.Fprintf(os.Stderr, "parley: unknown command %q\n\n", args[0])
		usage()
		return 2
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `Parley, an XMPP server.

Usage:
  parley serve [--config FILE]                  run the server (no config: domain localhost, data in ./data)
  parley user add JID [PASSWORD] [--config FILE]     create an account (password read from stdin if omitted)
  parley user passwd JID [PASSWORD] [--config FILE]  change a password
  parley user del JID [--config FILE]                delete an account and all its data
  parley user disable|enable JID [--config FILE]     refuse logins and end its sessions, keeping its data; allow again
  parley user list [HOST] [--config FILE]            list accounts
  parley user fast list JID [--config FILE]          list the account's FAST tokens (XEP-0484)
  parley user fast revoke JID [ID|all] [--config FILE]  revoke one FAST token, or all (the default)
  parley group add|del GROUP JID [--config FILE]     manage group membership (allowed_groups, admin_groups)
  parley group list [HOST] [--config FILE]           list group memberships
  parley config check [--config FILE]           validate the config and print the effective one
  parley register HOST[:PORT] [--insecure] [--address IP:PORT] [--plaintext] [field=value ...]
                                                registration inquiry, or attempt with fields (XEP-0077, any server)
  parley s2s list [--config FILE] [--json]      live federation streams of the running server
  parley session list [HOST] [--json] [--config FILE]  client sessions of the running server
  parley session end JID [--config FILE]        end a session (full JID) or all of an account's (bare JID)
  parley archive export --host HOST [--user JID] [--since TIME] [--until TIME] [--format jsonl|xml] [--config FILE]
                                                write HOST's compliance log to standard output
  parley archive purge [--host HOST] [--config FILE]  apply archive and compliance retention now
  parley cluster status [--config FILE] [--json]  nodes, sessions per node, room owners and leases (from NATS)
  parley version                                print the version
`)
}
