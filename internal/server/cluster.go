package server

import (
	"context"
	"fmt"
	"time"

	"parley/internal/cluster"
	"parley/internal/config"
	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// startCluster joins the cluster when [cluster] is configured: NATS is
// dialled, the node's registry loaded, and the router routes through it
// from then on. It runs before any listener, so no session exists yet.
func (s *Server) startCluster(ctx context.Context) error {
	cl := s.cfg.Cluster
	if !cl.Enabled {
		return nil
	}
	eng, err := cluster.DialNATS(cluster.NATSOptions{
		URLs: cl.NATSURLs, Name: cl.Node, CredsFile: cl.NATSCredsFile,
		User: cl.NATSUser, Password: cl.NATSPassword, Token: cl.NATSToken,
		CAFile: cl.NATSCAFile, CertFile: cl.NATSCertFile, KeyFile: cl.NATSKeyFile,
		Replicas: cl.Replicas, Log: s.log,
	})
	if err != nil {
		return err
	}
	lim := s.cfg.Limits
	node := cluster.New(eng, s.router, cluster.Options{
		Name: cl.Node, Heartbeat: cl.Heartbeat.Duration, Lease: cl.Lease.Duration,
		// Stanzas from other nodes were built by Parley (carbons, archive
		// results, PEP items can exceed a client's stanza), and are parsed
		// under generous bounds all the same.
		Limits:  xml.Limits{MaxStanzaBytes: 8*lim.MaxStanzaBytes + 1<<20, MaxDepth: lim.MaxDepth + 8, MaxAttrs: lim.MaxAttrs},
		Log:     s.log,
		Metrics: s.metrics.Registry,
		OnDown:  s.clusterLost,
		// Notices sent while this node was cut off were lost: the
		// directory is read again rather than trusted.
		OnUp: func() {
			if s.directory.dir != nil {
				s.directory.dir.Resync()
			}
		},
		OnHandover: s.c2s.HandOver,
		OnRoomAcquired: func(ctx context.Context, room jid.JID) error {
			for _, m := range s.modules {
				if ra, ok := m.(roomAcquirer); ok {
					if err := ra.RoomAcquired(ctx, room); err != nil {
						return err
					}
				}
			}
			return nil
		},
	})
	var rooms []string
	for _, h := range s.cfg.Hosts {
		if h.MUC.On() {
			rooms = append(rooms, h.MUC.Domain)
		}
	}
	node.SetRoomDomains(rooms)
	var comps []string
	for _, sv := range s.cfg.Component.Services {
		if sv.Type == config.ComponentExternal {
			comps = append(comps, sv.Domain)
		}
	}
	node.SetComponents(comps, s.comp.Connected)
	// A NATS cluster that starts with the nodes may need a while to elect
	// its JetStream leader: retry for a minute before giving up.
	deadline := time.Now().Add(time.Minute)
	for {
		err := node.Start(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			eng.Close()
			return fmt.Errorf("cluster: %w", err)
		}
		s.log.Warn("cluster: joining (retrying)", "err", err)
		time.Sleep(time.Second)
	}
	s.router.SetBus(node)
	for _, h := range s.hosts {
		module.Provide(h, module.ElectionKey, module.Election(node))
		module.Provide(h, module.NoticesKey, module.Notices(node))
	}
	s.cluster, s.clusterEng = node, eng
	s.log.Info("cluster: joined", "node", cl.Node)
	return nil
}

// roomAcquirer is the MUC module's side of room ownership in a cluster.
type roomAcquirer interface {
	RoomAcquired(ctx context.Context, room jid.JID) error
}

// clusterLost closes every client stream when this node has lost NATS:
// its sessions can no longer be reached from the other nodes, and their
// JIDs will soon be given to whichever node the clients reconnect to.
func (s *Server) clusterLost(reason string) {
	for _, sess := range s.router.AllSessions() {
		go sess.Close("system-shutdown", "this node lost its cluster; reconnect")
	}
}

func (s *Server) stopCluster(ctx context.Context) {
	if s.cluster == nil {
		return
	}
	s.cluster.Stop(ctx)
	s.clusterEng.Close()
}

// Cluster returns the cluster node, or nil without [cluster].
func (s *Server) Cluster() *cluster.Node { return s.cluster }
