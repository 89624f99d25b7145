package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Status is what `parley cluster status` prints: read from the buckets,
// so it needs NATS, not a running node.
type Status struct {
	Nodes []NodeStatus `json:"nodes"`
	Rooms []RoomStatus `json:"rooms"`
	// Leases other than rooms (elected jobs).
	Leases []RoomStatus `json:"leases"`
}

// NodeStatus is one node as its heartbeat tells.
type NodeStatus struct {
	Name string `json:"name"`
	// Live: heartbeat younger than the lease.
	Live          bool          `json:"live"`
	Incarnation   string        `json:"incarnation"`
	LastHeartbeat time.Duration `json:"last_heartbeat_ago"`
	// Sessions counts the registry's entries of this incarnation.
	Sessions int `json:"sessions"`
}

// RoomStatus is one lease and its holder.
type RoomStatus struct {
	Name      string `json:"name"`
	Node      string `json:"node"`
	HolderUp  bool   `json:"holder_live"`
	Incarnate string `json:"incarnation"`
}

// snapshot reads every entry of a bucket.
func snapshot(ctx context.Context, b Bucket) ([]Entry, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := b.Watch(ctx)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for en := range ch {
		if en.Key == "" {
			return out, nil
		}
		if !en.Deleted {
			out = append(out, en)
		}
	}
	return out, ctx.Err()
}

// ReadStatus reads the cluster's state from its buckets; lease is the
// configured node lease (a node is live if its heartbeat is younger).
func ReadStatus(ctx context.Context, eng Engine, lease time.Duration) (*Status, error) {
	var bs [3]Bucket
	for i, name := range []string{NodesBucket, SessionsBucket, LeasesBucket} {
		b, err := eng.Bucket(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", name, err)
		}
		bs[i] = b
	}
	nodes, err := snapshot(ctx, bs[0])
	if err != nil {
		return nil, err
	}
	st := &Status{}
	incs := map[string]string{}
	for _, en := range nodes {
		var m member
		if json.Unmarshal(en.Value, &m) != nil {
			continue
		}
		age := time.Since(en.Created)
		incs[en.Key] = m.Inc
		st.Nodes = append(st.Nodes, NodeStatus{Name: en.Key, Live: age < lease, Incarnation: m.Inc, LastHeartbeat: age.Round(time.Millisecond)})
	}
	live := func(node, inc string) bool {
		for _, n := range st.Nodes {
			if n.Name == node {
				return n.Live && n.Incarnation == inc
			}
		}
		return false
	}
	recs, err := snapshot(ctx, bs[1])
	if err != nil {
		return nil, err
	}
	for _, en := range recs {
		var rec record
		if json.Unmarshal(en.Value, &rec) != nil {
			continue
		}
		for _, e := range rec.R {
			for i := range st.Nodes {
				if st.Nodes[i].Name == e.Node && st.Nodes[i].Incarnation == e.Inc {
					st.Nodes[i].Sessions++
				}
			}
		}
	}
	leases, err := snapshot(ctx, bs[2])
	if err != nil {
		return nil, err
	}
	for _, en := range leases {
		var l roomLease
		if json.Unmarshal(en.Value, &l) != nil {
			continue
		}
		rs := RoomStatus{Node: l.Node, Incarnate: l.Inc, HolderUp: live(l.Node, l.Inc)}
		if k, ok := strings.CutPrefix(en.Key, "room."); ok {
			if j, err := bareOfKey(k); err == nil {
				rs.Name = j.String()
				st.Rooms = append(st.Rooms, rs)
				continue
			}
		}
		rs.Name = en.Key
		for prefix, kind := range map[string]string{"comp.": "component ", "job.": "job "} {
			if k, ok := strings.CutPrefix(en.Key, prefix); ok {
				if b, err := base64.RawURLEncoding.DecodeString(k); err == nil {
					rs.Name = kind + string(b)
				}
			}
		}
		st.Leases = append(st.Leases, rs)
	}
	sort.Slice(st.Nodes, func(i, j int) bool { return st.Nodes[i].Name < st.Nodes[j].Name })
	sort.Slice(st.Rooms, func(i, j int) bool { return st.Rooms[i].Name < st.Rooms[j].Name })
	sort.Slice(st.Leases, func(i, j int) bool { return st.Leases[i].Name < st.Leases[j].Name })
	return st, nil
}
