// Package observed wraps a storage.Store so that every call reports its
// latency (the parley_storage_seconds histogram). It is a decorator, not a
// backend: the backends stay free of metrics, and the conformance suite
// still runs against them directly.
package observed

import (
	"context"
	"time"

	"parley/internal/storage"
)

// Observer receives the duration of each storage operation, named
// "<area>.<method>" (e.g. "roster.put").
type Observer func(op string, start time.Time)

// Wrap returns st with every call observed.
func Wrap(st storage.Store, obs Observer) storage.Store {
	return &store{Store: st, obs: obs}
}

type store struct {
	storage.Store
	obs Observer
}

func (s *store) Accounts() storage.Accounts { return accounts{s.Store.Accounts(), s.obs} }
func (s *store) Roster() storage.Roster     { return roster{s.Store.Roster(), s.obs} }
func (s *store) Offline() storage.Offline   { return offline{s.Store.Offline(), s.obs} }
func (s *store) VCards() storage.VCards     { return vcards{s.Store.VCards(), s.obs} }
func (s *store) Private() storage.Private   { return private{s.Store.Private(), s.obs} }
func (s *store) PubSub() storage.PubSub     { return pubsub{s.Store.PubSub(), s.obs} }
func (s *store) KV() storage.KV             { return kv{s.Store.KV(), s.obs} }
func (s *store) Archive() storage.Archive   { return archive{s.Store.Archive(), s.obs} }
func (s *store) Compliance() storage.Compliance {
	return compliance{s.Store.Compliance(), s.obs}
}
func (s *store) FAST() storage.FASTTokens { return fast{s.Store.FAST(), s.obs} }

func (s *store) Passwords() storage.PasswordHistory {
	return passwords{s.Store.Passwords(), s.obs}
}

type passwords struct {
	p   storage.PasswordHistory
	obs Observer
}

func (x passwords) Add(ctx context.Context, host, username string, hash []byte, keep int) error {
	defer x.obs("passwords.add", time.Now())
	return x.p.Add(ctx, host, username, hash, keep)
}

func (x passwords) List(ctx context.Context, host, username string) ([][]byte, error) {
	defer x.obs("passwords.list", time.Now())
	return x.p.List(ctx, host, username)
}

type accounts struct {
	a   storage.Accounts
	obs Observer
}

func (x accounts) Create(ctx context.Context, a storage.Account) error {
	defer x.obs("accounts.create", time.Now())
	return x.a.Create(ctx, a)
}

func (x accounts) Get(ctx context.Context, host, username string) (storage.Account, error) {
	defer x.obs("accounts.get", time.Now())
	return x.a.Get(ctx, host, username)
}

func (x accounts) SetCredentials(ctx context.Context, host, username string, c storage.Credentials) error {
	defer x.obs("accounts.set_credentials", time.Now())
	return x.a.SetCredentials(ctx, host, username, c)
}

func (x accounts) SetFields(ctx context.Context, host, username string, f map[string]string) error {
	defer x.obs("accounts.set_fields", time.Now())
	return x.a.SetFields(ctx, host, username, f)
}

func (x accounts) SetDisabled(ctx context.Context, host, username string, disabled bool) error {
	defer x.obs("accounts.set_disabled", time.Now())
	return x.a.SetDisabled(ctx, host, username, disabled)
}

func (x accounts) Delete(ctx context.Context, host, username string) error {
	defer x.obs("accounts.delete", time.Now())
	return x.a.Delete(ctx, host, username)
}

func (x accounts) List(ctx context.Context, host string) ([]string, error) {
	defer x.obs("accounts.list", time.Now())
	return x.a.List(ctx, host)
}

type roster struct {
	r   storage.Roster
	obs Observer
}

func (x roster) Items(ctx context.Context, owner string) ([]storage.RosterItem, string, error) {
	defer x.obs("roster.items", time.Now())
	return x.r.Items(ctx, owner)
}

func (x roster) Get(ctx context.Context, owner, contact string) (storage.RosterItem, error) {
	defer x.obs("roster.get", time.Now())
	return x.r.Get(ctx, owner, contact)
}

func (x roster) Put(ctx context.Context, owner string, item storage.RosterItem) (string, error) {
	defer x.obs("roster.put", time.Now())
	return x.r.Put(ctx, owner, item)
}

func (x roster) Delete(ctx context.Context, owner, contact string) (string, error) {
	defer x.obs("roster.delete", time.Now())
	return x.r.Delete(ctx, owner, contact)
}

type offline struct {
	o   storage.Offline
	obs Observer
}

func (x offline) Push(ctx context.Context, owner string, stanza []byte, max int) error {
	defer x.obs("offline.push", time.Now())
	return x.o.Push(ctx, owner, stanza, max)
}

func (x offline) Count(ctx context.Context, owner string) (int, error) {
	defer x.obs("offline.count", time.Now())
	return x.o.Count(ctx, owner)
}

func (x offline) Pop(ctx context.Context, owner string) ([]storage.OfflineMessage, error) {
	defer x.obs("offline.pop", time.Now())
	return x.o.Pop(ctx, owner)
}

type vcards struct {
	v   storage.VCards
	obs Observer
}

func (x vcards) Get(ctx context.Context, owner string) ([]byte, error) {
	defer x.obs("vcard.get", time.Now())
	return x.v.Get(ctx, owner)
}

func (x vcards) Set(ctx context.Context, owner string, vcard []byte) error {
	defer x.obs("vcard.set", time.Now())
	return x.v.Set(ctx, owner, vcard)
}

type private struct {
	p   storage.Private
	obs Observer
}

func (x private) Get(ctx context.Context, owner, key string) ([]byte, error) {
	defer x.obs("private.get", time.Now())
	return x.p.Get(ctx, owner, key)
}

func (x private) Set(ctx context.Context, owner, key string, data []byte) error {
	defer x.obs("private.set", time.Now())
	return x.p.Set(ctx, owner, key, data)
}

type kv struct {
	k   storage.KV
	obs Observer
}

func (x kv) Get(ctx context.Context, bucket, owner, key string) ([]byte, error) {
	defer x.obs("kv.get", time.Now())
	return x.k.Get(ctx, bucket, owner, key)
}

func (x kv) Set(ctx context.Context, bucket, owner, key string, value []byte) error {
	defer x.obs("kv.set", time.Now())
	return x.k.Set(ctx, bucket, owner, key, value)
}

func (x kv) SetIfAbsent(ctx context.Context, bucket, owner, key string, value []byte) ([]byte, error) {
	defer x.obs("kv.set", time.Now())
	return x.k.SetIfAbsent(ctx, bucket, owner, key, value)
}

func (x kv) Delete(ctx context.Context, bucket, owner, key string) error {
	defer x.obs("kv.delete", time.Now())
	return x.k.Delete(ctx, bucket, owner, key)
}

func (x kv) List(ctx context.Context, bucket, owner string) (map[string][]byte, error) {
	defer x.obs("kv.list", time.Now())
	return x.k.List(ctx, bucket, owner)
}

type pubsub struct {
	p   storage.PubSub
	obs Observer
}

func (x pubsub) CreateNode(ctx context.Context, n storage.PubSubNode, maxNodes int) error {
	defer x.obs("pubsub.create_node", time.Now())
	return x.p.CreateNode(ctx, n, maxNodes)
}

func (x pubsub) Node(ctx context.Context, service, node string) (storage.PubSubNode, error) {
	defer x.obs("pubsub.node", time.Now())
	return x.p.Node(ctx, service, node)
}

func (x pubsub) Nodes(ctx context.Context, service string) ([]storage.PubSubNode, error) {
	defer x.obs("pubsub.nodes", time.Now())
	return x.p.Nodes(ctx, service)
}

func (x pubsub) SetConfig(ctx context.Context, service, node string, config []byte) error {
	defer x.obs("pubsub.set_config", time.Now())
	return x.p.SetConfig(ctx, service, node, config)
}

func (x pubsub) DeleteNode(ctx context.Context, service, node string) error {
	defer x.obs("pubsub.delete_node", time.Now())
	return x.p.DeleteNode(ctx, service, node)
}

func (x pubsub) PutItem(ctx context.Context, service, node string, it storage.PubSubItem, maxItems int) error {
	defer x.obs("pubsub.put_item", time.Now())
	return x.p.PutItem(ctx, service, node, it, maxItems)
}

func (x pubsub) Items(ctx context.Context, service, node string, max int) ([]storage.PubSubItem, error) {
	defer x.obs("pubsub.items", time.Now())
	return x.p.Items(ctx, service, node, max)
}

func (x pubsub) ItemsByID(ctx context.Context, service, node string, ids []string) ([]storage.PubSubItem, error) {
	defer x.obs("pubsub.items_by_id", time.Now())
	return x.p.ItemsByID(ctx, service, node, ids)
}

func (x pubsub) DeleteItem(ctx context.Context, service, node, id string) error {
	defer x.obs("pubsub.delete_item", time.Now())
	return x.p.DeleteItem(ctx, service, node, id)
}

func (x pubsub) TrimItems(ctx context.Context, service, node string, keep int) error {
	defer x.obs("pubsub.trim_items", time.Now())
	return x.p.TrimItems(ctx, service, node, keep)
}

func (x pubsub) SetAffiliation(ctx context.Context, service, node, jid, affiliation string) error {
	defer x.obs("pubsub.set_affiliation", time.Now())
	return x.p.SetAffiliation(ctx, service, node, jid, affiliation)
}

func (x pubsub) Affiliations(ctx context.Context, service, node string) ([]storage.PubSubAffiliation, error) {
	defer x.obs("pubsub.affiliations", time.Now())
	return x.p.Affiliations(ctx, service, node)
}

func (x pubsub) SetSubscription(ctx context.Context, service, node, jid, state string, max int) error {
	defer x.obs("pubsub.set_subscription", time.Now())
	return x.p.SetSubscription(ctx, service, node, jid, state, max)
}

func (x pubsub) Subscriptions(ctx context.Context, service, node string) ([]storage.PubSubSubscription, error) {
	defer x.obs("pubsub.subscriptions", time.Now())
	return x.p.Subscriptions(ctx, service, node)
}

type archive struct {
	a   storage.Archive
	obs Observer
}

func (x archive) Append(ctx context.Context, keep int, entries ...storage.ArchiveEntry) ([]time.Time, error) {
	defer x.obs("archive.append", time.Now())
	return x.a.Append(ctx, keep, entries...)
}

func (x archive) Query(ctx context.Context, owner string, q storage.ArchiveQuery) (storage.ArchivePage, error) {
	defer x.obs("archive.query", time.Now())
	return x.a.Query(ctx, owner, q)
}

func (x archive) Ends(ctx context.Context, owner string) (storage.ArchivedMessage, storage.ArchivedMessage, error) {
	defer x.obs("archive.ends", time.Now())
	return x.a.Ends(ctx, owner)
}

func (x archive) Replace(ctx context.Context, owner, id string, stanza []byte) error {
	defer x.obs("archive.replace", time.Now())
	return x.a.Replace(ctx, owner, id, stanza)
}

func (x archive) Delete(ctx context.Context, owner string) error {
	defer x.obs("archive.delete", time.Now())
	return x.a.Delete(ctx, owner)
}

func (x archive) PurgeBefore(ctx context.Context, host string, t time.Time) (int64, error) {
	defer x.obs("archive.purge", time.Now())
	return x.a.PurgeBefore(ctx, host, t)
}

type compliance struct {
	c   storage.Compliance
	obs Observer
}

func (x compliance) Append(ctx context.Context, recs ...storage.ComplianceRecord) error {
	defer x.obs("compliance.append", time.Now())
	return x.c.Append(ctx, recs...)
}

func (x compliance) Export(ctx context.Context, f storage.ComplianceFilter, fn func(storage.ComplianceRecord) error) error {
	defer x.obs("compliance.export", time.Now())
	return x.c.Export(ctx, f, fn)
}

func (x compliance) PurgeBefore(ctx context.Context, host string, t time.Time) (int64, error) {
	defer x.obs("compliance.purge", time.Now())
	return x.c.PurgeBefore(ctx, host, t)
}

type fast struct {
	f   storage.FASTTokens
	obs Observer
}

func (x fast) Issue(ctx context.Context, host, username string, t storage.FASTToken, max int) error {
	defer x.obs("fast.issue", time.Now())
	return x.f.Issue(ctx, host, username, t, max)
}

func (x fast) Client(ctx context.Context, host, username, clientID string) ([]storage.FASTToken, error) {
	defer x.obs("fast.client", time.Now())
	return x.f.Client(ctx, host, username, clientID)
}

func (x fast) Use(ctx context.Context, host, username, id string, count int64, now time.Time) error {
	defer x.obs("fast.use", time.Now())
	return x.f.Use(ctx, host, username, id, count, now)
}

func (x fast) List(ctx context.Context, host, username string) ([]storage.FASTToken, error) {
	defer x.obs("fast.list", time.Now())
	return x.f.List(ctx, host, username)
}

func (x fast) Revoke(ctx context.Context, host, username, id string) (int, error) {
	defer x.obs("fast.revoke", time.Now())
	return x.f.Revoke(ctx, host, username, id)
}
