package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// NATSOptions say how to reach the NATS cluster.
type NATSOptions struct {
	URLs []string
	// Name is the client name the NATS server shows (the node's name).
	Name string
	// CredsFile is a NATS credentials file (JWT and NKey seed).
	CredsFile string
	// User/Password or Token, when the servers use them.
	User, Password, Token string
	// CAFile verifies the servers' certificates; CertFile/KeyFile is the
	// client certificate when the servers ask for one.
	CAFile, CertFile, KeyFile string
	// Replicas of the key/value buckets (1 to the NATS cluster's size).
	Replicas int
	Log      *slog.Logger
}

// natsEngine is the Engine of a real cluster: JetStream key/value buckets
// (in memory: the registry and leases are rebuilt by the live nodes) and
// core NATS subjects.
type natsEngine struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	replicas int
}

// DialNATS connects to the NATS servers. The client reconnects forever;
// while it is disconnected Err reports it and the node fences itself.
func DialNATS(o NATSOptions) (Engine, error) {
	opts := []nats.Option{
		nats.Name("parley " + o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.Timeout(5 * time.Second),
		nats.PingInterval(2 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.RetryOnFailedConnect(false),
	}
	if o.Log != nil {
		log := o.Log
		opts = append(opts,
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("cluster: NATS disconnected", "err", err) }),
			nats.ReconnectHandler(func(c *nats.Conn) { log.Info("cluster: NATS reconnected", "server", c.ConnectedUrlRedacted()) }),
		)
	}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	if o.CAFile != "" {
		opts = append(opts, nats.RootCAs(o.CAFile))
	}
	if o.CertFile != "" {
		opts = append(opts, nats.ClientCert(o.CertFile, o.KeyFile))
	}
	nc, err := nats.Connect(strings.Join(o.URLs, ","), opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: NATS: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	r := o.Replicas
	if r <= 0 {
		r = 1
	}
	if v := nc.ConnectedServerVersion(); o.Log != nil && unsafeRevisionChecks(v, r) {
		o.Log.Warn("cluster: this NATS server does not check revisions atomically in replicated buckets "+
			"(nats-server issue 4320, fixed in 2.9.21): two nodes may both win one claim or lease; upgrade NATS or use replicas = 1",
			"server_version", v, "replicas", r)
	}
	return &natsEngine{nc: nc, js: js, replicas: r}, nil
}

func (e *natsEngine) Err() error {
	if e.nc.IsConnected() {
		return nil
	}
	if err := e.nc.LastError(); err != nil {
		return fmt.Errorf("%w: %v", ErrDown, err)
	}
	return ErrDown
}

func (e *natsEngine) Close() { e.nc.Close() }

func (e *natsEngine) Bucket(ctx context.Context, name string) (Bucket, error) {
	kv, err := e.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: name, History: 1, Storage: jetstream.MemoryStorage, Replicas: e.replicas,
	})
	if err != nil {
		return nil, err
	}
	return &natsBucket{kv: kv}, nil
}

const (
	hdrOp   = "Parley-Op"
	hdrTo   = "Parley-To"
	hdrSid  = "Parley-Sid"
	hdrCond = "Parley-Cond"
	hdrText = "Parley-Text"
	hdrFrom = "Parley-From"
	// hdrTarget, once per recipient of a fanout: "<sid> <full JID>" (a
	// stream ID has no space; a JID has no line break).
	hdrTarget = "Parley-Target"
)

func toNATS(subject string, m Msg) *nats.Msg {
	nm := nats.NewMsg(subject)
	nm.Header.Set(hdrOp, m.Op)
	if m.To != "" {
		nm.Header.Set(hdrTo, m.To)
	}
	if m.Sid != "" {
		nm.Header.Set(hdrSid, m.Sid)
	}
	if m.Cond != "" {
		nm.Header.Set(hdrCond, m.Cond)
	}
	if m.Text != "" {
		nm.Header.Set(hdrText, m.Text)
	}
	if m.From != "" {
		nm.Header.Set(hdrFrom, m.From)
	}
	for _, t := range m.Targets {
		nm.Header.Add(hdrTarget, t.Sid+" "+t.To)
	}
	nm.Data = m.Body
	return nm
}

func fromNATS(nm *nats.Msg) Msg {
	m := Msg{
		Op: nm.Header.Get(hdrOp), To: nm.Header.Get(hdrTo), Sid: nm.Header.Get(hdrSid),
		Cond: nm.Header.Get(hdrCond), Text: nm.Header.Get(hdrText), From: nm.Header.Get(hdrFrom), Body: nm.Data,
	}
	for _, v := range nm.Header.Values(hdrTarget) {
		if sid, to, ok := strings.Cut(v, " "); ok {
			m.Targets = append(m.Targets, Target{To: to, Sid: sid})
		}
	}
	return m
}

// Subscribe delivers on one goroutine per subscription (nats.go's), so
// messages from one publisher are handled in their order.
func (e *natsEngine) Subscribe(subject string, fn func(Msg)) (func(), error) {
	sub, err := e.nc.Subscribe(subject, func(nm *nats.Msg) {
		m := fromNATS(nm)
		if nm.Reply != "" {
			m.Reply = func(r Msg) { _ = nm.RespondMsg(toNATS(nm.Reply, r)) }
		}
		fn(m)
	})
	if err != nil {
		return nil, err
	}
	// A node receives every stanza for its sessions here: generous
	// pending limits, so bursts are queued rather than dropped.
	_ = sub.SetPendingLimits(1<<20, 1<<30)
	// The SUB is only queued so far: a round trip to the server makes it
	// take effect, so nothing published after Subscribe returns (a
	// notice sent right after this node joined) is missed.
	if err := e.nc.FlushTimeout(5 * time.Second); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("cluster: subscribe %s: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

func (e *natsEngine) Publish(subject string, m Msg) error {
	if err := e.Err(); err != nil {
		return err
	}
	return e.nc.PublishMsg(toNATS(subject, m))
}

func (e *natsEngine) Request(ctx context.Context, subject string, m Msg) (Msg, error) {
	r, err := e.nc.RequestMsgWithContext(ctx, toNATS(subject, m))
	if err != nil {
		return Msg{}, err
	}
	return fromNATS(r), nil
}

type natsBucket struct{ kv jetstream.KeyValue }

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return ErrNotFound
	case errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return ErrRevision
	case errors.Is(err, jetstream.ErrKeyExists):
		return ErrExists
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return ErrRevision
	}
	return err
}

func entryOf(en jetstream.KeyValueEntry) Entry {
	return Entry{
		Key: en.Key(), Value: en.Value(), Revision: en.Revision(), Created: en.Created(),
		Deleted: en.Operation() != jetstream.KeyValuePut,
	}
}

func (b *natsBucket) Get(ctx context.Context, key string) (Entry, error) {
	en, err := b.kv.Get(ctx, key)
	if err != nil {
		return Entry{}, mapErr(err)
	}
	return entryOf(en), nil
}

func (b *natsBucket) Create(ctx context.Context, key string, v []byte) (uint64, error) {
	rev, err := b.kv.Create(ctx, key, v)
	return rev, mapErr(err)
}

func (b *natsBucket) Update(ctx context.Context, key string, v []byte, rev uint64) (uint64, error) {
	r, err := b.kv.Update(ctx, key, v, rev)
	return r, mapErr(err)
}

func (b *natsBucket) Put(ctx context.Context, key string, v []byte) (uint64, error) {
	r, err := b.kv.Put(ctx, key, v)
	return r, mapErr(err)
}

func (b *natsBucket) Delete(ctx context.Context, key string, rev uint64) error {
	var opts []jetstream.KVDeleteOpt
	if rev != 0 {
		opts = append(opts, jetstream.LastRevision(rev))
	}
	return mapErr(b.kv.Delete(ctx, key, opts...))
}

func (b *natsBucket) Watch(ctx context.Context) (<-chan Entry, error) {
	w, err := b.kv.WatchAll(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan Entry)
	go func() {
		defer close(out)
		defer func() { _ = w.Stop() }()
		for {
			select {
			case <-ctx.Done():
				return
			case en, ok := <-w.Updates():
				if !ok {
					return
				}
				e := Entry{}
				if en != nil {
					e = entryOf(en)
				}
				select {
				case out <- e:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out, nil
}

// unsafeRevisionChecks reports whether a nats-server of this version
// accepts several concurrent writes to one key that all expect the same
// revision, in a bucket with replicas > 1: before 2.9.21 a clustered
// stream checked the expected revision before, not within, its
// replicated write (nats-server issue 4320). Every claim and lease here
// is such a write, so only one may win. An unparsable version says
// nothing.
func unsafeRevisionChecks(version string, replicas int) bool {
	if replicas <= 1 {
		return false
	}
	parts := strings.SplitN(strings.TrimPrefix(version, "v"), ".", 3)
	if len(parts) != 3 {
		return false
	}
	var v [3]int
	for i, p := range parts {
		digits := 0
		for _, c := range p {
			if c < '0' || c > '9' {
				break
			}
			v[i] = v[i]*10 + int(c-'0')
			digits++
		}
		if digits == 0 {
			return false
		}
	}
	fixed := [3]int{2, 9, 21}
	for i := range v {
		if v[i] != fixed[i] {
			return v[i] < fixed[i]
		}
	}
	return false
}
