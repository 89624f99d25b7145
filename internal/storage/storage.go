// Package storage defines the persistence interfaces Parley's modules use,
// one per domain (accounts, roster, offline messages, vCards, private XML,
// publish-subscribe nodes, a generic key/value store, message archives).
// Implementations live in sub-packages (sqlite, postgres) and must all pass
// the conformance suite in storetest.
//
// Owners are bare JIDs in string form ("user@host"); implementations treat
// them as opaque keys. Every method takes a context so a slow database never
// blocks a session past its deadline.
package storage

import (
	"context"
	"errors"
	"time"
)

// Errors every implementation returns for the same conditions.
var (
	ErrNotFound      = errors.New("storage: not found")
	ErrExists        = errors.New("storage: already exists")
	ErrQuotaExceeded = errors.New("storage: quota exceeded")
)

// Store is one opened backend. It is safe for concurrent use.
type Store interface {
	Accounts() Accounts
	Roster() Roster
	Offline() Offline
	VCards() VCards
	Private() Private
	PubSub() PubSub
	KV() KV
	Archive() Archive
	Compliance() Compliance
	FAST() FASTTokens
	Passwords() PasswordHistory
	Close() error
}

// PasswordHistory remembers hashes of an account's previous passwords, for
// the reuse rule of the password policy (auth.password.history). The
// hashes are opaque here (internal/passpolicy makes and checks them);
// they go with the account when it is deleted.
type PasswordHistory interface {
	// Add records hash as the account's newest entry and keeps only the
	// newest keep entries (0: none). ErrNotFound if there is no account.
	Add(ctx context.Context, host, username string, hash []byte, keep int) error
	// List returns the account's entries, newest first.
	List(ctx context.Context, host, username string) ([][]byte, error)
}

// ScramKey is the salted SCRAM secret for one hash family (RFC 5802): the
// server never stores the password itself for SCRAM.
type ScramKey struct {
	Salt       []byte
	Iterations int
	StoredKey  []byte
	ServerKey  []byte
}

// Credentials is what an account authenticates with. Keys holds one ScramKey
// per hash name ("SHA-1", "SHA-256", "SHA-512"). Plain is set only when the
// administrator enabled a legacy mechanism that needs the cleartext password
// (jabber:iq:auth digest); otherwise it is empty.
type Credentials struct {
	Keys  map[string]ScramKey
	Plain string
}

// Account is one registered user of a virtual host.
type Account struct {
	Host      string
	Username  string // nodeprep'd localpart
	Creds     Credentials
	Fields    map[string]string // extra registration fields (XEP-0077: name, email, ...)
	Disabled  bool
	CreatedAt time.Time
}

// Accounts stores user accounts per virtual host.
type Accounts interface {
	// Create adds a new account; ErrExists if the username is taken.
	Create(ctx context.Context, a Account) error
	// Get returns the account; ErrNotFound if there is none.
	Get(ctx context.Context, host, username string) (Account, error)
	// SetCredentials replaces the credentials; ErrNotFound if no account.
	SetCredentials(ctx context.Context, host, username string, c Credentials) error
	// SetFields replaces the extra registration fields; ErrNotFound if no account.
	SetFields(ctx context.Context, host, username string, fields map[string]string) error
	// SetDisabled disables or re-enables the account (a disabled account
	// keeps its data but cannot log in); ErrNotFound if no account.
	SetDisabled(ctx context.Context, host, username string, disabled bool) error
	// Delete removes the account and every piece of data owned by its bare
	// JID (roster, offline, vCard, private XML, publish-subscribe nodes of
	// its PEP service, KV, message archive) in one transaction.
	// ErrNotFound if no account.
	Delete(ctx context.Context, host, username string) error
	// List returns the usernames of a host in sorted order.
	List(ctx context.Context, host string) ([]string, error)
}

// Subscription states of a roster item (RFC 6121 §2.1.2.5).
const (
	SubNone = "none"
	SubTo   = "to"
	SubFrom = "from"
	SubBoth = "both"
)

// RosterItem is one contact in a user's roster, with the server-side
// subscription state that RFC 6121 requires the server to keep.
type RosterItem struct {
	JID          string // bare JID of the contact
	Name         string
	Subscription string   // SubNone, SubTo, SubFrom, SubBoth
	AskOut       bool     // we sent a subscribe the contact has not answered ("ask='subscribe'")
	PendingIn    bool     // the contact asked to subscribe to us and we have not answered
	PreApproved  bool     // we pre-approved a subscription from the contact (RFC 6121 §3.4)
	Groups       []string // sorted, deduplicated
}

// Roster stores rosters with a version (RFC 6121 §2.6) per owner. Versions
// are opaque, never empty, and change on every modification. A roster that
// was never modified (a new account's, or one whose account was deleted) is
// empty and has a version of its own that no modification produces: a
// versioning client must be able to cache even the empty roster it starts
// with, and a version it cached from a deleted account must never match
// the roster of an account registered later under the same name.
type Roster interface {
	// Items returns the roster and its current version (never "").
	Items(ctx context.Context, owner string) (items []RosterItem, version string, err error)
	// Get returns one item; ErrNotFound if absent.
	Get(ctx context.Context, owner, contact string) (RosterItem, error)
	// Put inserts or replaces an item and returns the new roster version.
	Put(ctx context.Context, owner string, item RosterItem) (version string, err error)
	// Delete removes an item and returns the new version; ErrNotFound if absent.
	Delete(ctx context.Context, owner, contact string) (version string, err error)
}

// OfflineMessage is one stored stanza, serialized XML.
type OfflineMessage struct {
	ID     int64
	Stanza []byte
	Stored time.Time
}

// Offline stores stanzas for users without an available resource (XEP-0160).
type Offline interface {
	// Push stores a stanza; ErrQuotaExceeded if owner already has max stored
	// (max <= 0 means no limit).
	Push(ctx context.Context, owner string, stanza []byte, max int) error
	// Count returns how many stanzas owner has stored.
	Count(ctx context.Context, owner string) (int, error)
	// Pop returns and deletes all of owner's stanzas, oldest first.
	Pop(ctx context.Context, owner string) ([]OfflineMessage, error)
}

// VCards stores one vcard-temp (XEP-0054) element per owner, serialized.
type VCards interface {
	Get(ctx context.Context, owner string) ([]byte, error) // ErrNotFound if none
	Set(ctx context.Context, owner string, vcard []byte) error
}

// Private stores private XML (XEP-0049): one element per owner and
// namespace key ("<local> <namespace>").
type Private interface {
	Get(ctx context.Context, owner, key string) ([]byte, error) // ErrNotFound if none
	Set(ctx context.Context, owner, key string, data []byte) error
}

// KV is a small generic store for the long tail of per-user and per-host
// state (last activity, legacy-auth sequences, ...). Bucket names a purpose;
// owner is a bare JID or a host.
type KV interface {
	Get(ctx context.Context, bucket, owner, key string) ([]byte, error) // ErrNotFound if none
	Set(ctx context.Context, bucket, owner, key string, value []byte) error
	// SetIfAbsent stores value unless the key has one, and returns the
	// value stored now: value, or the one that was there. Of several
	// callers racing (cluster nodes starting together), all get the first
	// writer's value.
	SetIfAbsent(ctx context.Context, bucket, owner, key string, value []byte) ([]byte, error)
	Delete(ctx context.Context, bucket, owner, key string) error // no error if absent
	// List returns all keys and values of owner in bucket, keys sorted.
	List(ctx context.Context, bucket, owner string) (map[string][]byte, error)
}

// PubSubNode is one node of a publish-subscribe service (XEP-0060). Service
// names the service: an account's bare JID for its personal eventing service
// (XEP-0163), or a domain for a standalone service. Config is the node's
// configuration, encoded by package pubsub and opaque here, so that new
// options never need a schema change.
type PubSubNode struct {
	Service string
	Node    string
	Config  []byte
	Created time.Time
}

// PubSubItem is one published item. Payload is the serialized payload
// element (empty for an item without payload).
type PubSubItem struct {
	ID        string
	Publisher string // the JID that published it
	Payload   []byte
	Published time.Time
}

// PubSubAffiliation is an entity's affiliation with a node ("owner",
// "publisher", "member", "outcast"; XEP-0060 §4.1).
type PubSubAffiliation struct {
	Node        string
	JID         string
	Affiliation string
}

// PubSubSubscription is an entity's explicit subscription to a node
// (XEP-0060 §6.1). State is "subscribed" or "pending".
type PubSubSubscription struct {
	Node  string
	JID   string
	State string
}

// PubSub stores the nodes, items, affiliations and subscriptions of
// publish-subscribe services. Every method that names a node fails with
// ErrNotFound when the node does not exist; deleting a node deletes its
// items, affiliations and subscriptions with it.
type PubSub interface {
	// CreateNode creates a node: ErrExists if the service has one of that
	// name, ErrQuotaExceeded if it already has maxNodes nodes (maxNodes <=
	// 0: no limit). The count and the insert are atomic. A zero Created
	// stores the current time.
	CreateNode(ctx context.Context, n PubSubNode, maxNodes int) error
	// Node returns one node.
	Node(ctx context.Context, service, node string) (PubSubNode, error)
	// Nodes returns the nodes of a service sorted bytewise by name.
	Nodes(ctx context.Context, service string) ([]PubSubNode, error)
	// SetConfig replaces a node's configuration.
	SetConfig(ctx context.Context, service, node string, config []byte) error
	// DeleteNode deletes a node with everything attached to it.
	DeleteNode(ctx context.Context, service, node string) error

	// PutItem publishes it: a new ID is added, an existing one replaced,
	// and either way it becomes the node's newest item (XEP-0060 §7.1.2:
	// republishing is modification). Then only the maxItems newest items
	// are kept (maxItems <= 0: no limit), in the same transaction, so
	// concurrent publishers never leave more. A zero Published stores the
	// current time.
	PutItem(ctx context.Context, service, node string, it PubSubItem, maxItems int) error
	// Items returns the node's items oldest first; with max > 0 only the
	// max newest of them.
	Items(ctx context.Context, service, node string, max int) ([]PubSubItem, error)
	// ItemsByID returns the items with the given IDs that exist, oldest
	// first.
	ItemsByID(ctx context.Context, service, node string, ids []string) ([]PubSubItem, error)
	// DeleteItem deletes one item; ErrNotFound if the node or the item
	// does not exist.
	DeleteItem(ctx context.Context, service, node, id string) error
	// TrimItems deletes all but the keep newest items (keep <= 0: all).
	TrimItems(ctx context.Context, service, node string, keep int) error

	// SetAffiliation sets jid's affiliation with a node; "none" (or "")
	// removes it.
	SetAffiliation(ctx context.Context, service, node, jid, affiliation string) error
	// Affiliations lists the affiliations of one node, or with node "" of
	// every node of the service, sorted by node and JID.
	Affiliations(ctx context.Context, service, node string) ([]PubSubAffiliation, error)
	// SetSubscription sets jid's subscription state; "none" (or "")
	// removes it. A new subscription to a node that already has max of
	// them fails with ErrQuotaExceeded (max <= 0: no limit), atomically.
	SetSubscription(ctx context.Context, service, node, jid, state string, max int) error
	// Subscriptions lists the subscriptions of one node, or with node ""
	// of every node of the service, sorted by node and JID.
	Subscriptions(ctx context.Context, service, node string) ([]PubSubSubscription, error)
}

// ArchiveEntry is one message to add to a message archive (XEP-0313).
type ArchiveEntry struct {
	// Owner is the bare JID whose archive this is: an account, or a chat
	// room. Its domain is the host that retention purges by.
	Owner string
	// ID is the archive UID, the XEP-0359 stanza-id clients see: unique
	// within the archive and never reused. The caller makes it up (random,
	// so that it reveals nothing about the archive, XEP-0359 §5).
	ID string
	// With is the bare JID of the other party (in a room archive: the
	// sender's real bare JID); WithResource its resource, "" if none.
	With, WithResource string
	// Stamp is when the server took the message.
	Stamp  time.Time
	Stanza []byte
}

// ArchivedMessage is one message of an archive as a query returns it.
type ArchivedMessage struct {
	ID                 string
	With, WithResource string
	// Stamp is the stored time (UTC, milliseconds): what the caller gave,
	// raised to the previous message's stamp if the clock went backwards.
	Stamp  time.Time
	Stanza []byte
}

// ArchiveQuery selects messages of one archive (XEP-0313 §4) and one page
// of them (XEP-0059). The filters define the result set; PageAfter,
// PageBefore, Last and Limit choose the page within it.
type ArchiveQuery struct {
	// With keeps messages whose other party has this bare JID; with
	// WithResource also set, only that full JID. "" keeps all.
	With, WithResource string
	// Start and End keep messages stamped at or after Start and at or
	// before End; zero means unbounded.
	Start, End time.Time
	// AfterID and BeforeID keep messages strictly after and before the
	// message with that ID ("" for none).
	AfterID, BeforeID string
	// IDs, when not nil, keeps only the messages with these IDs.
	IDs []string
	// PageAfter and PageBefore bound the page to messages after and
	// before the one with that ID, within the set.
	PageAfter, PageBefore string
	// Last asks for the page at the end of the bounds (RSM <before/>):
	// the Limit newest messages rather than the Limit oldest.
	Last bool
	// Limit is the most messages returned; 0 returns none (only Count).
	Limit int
}

// ArchivePage is the answer to an ArchiveQuery.
type ArchivePage struct {
	// Messages are the page, oldest first.
	Messages []ArchivedMessage
	// Count is the size of the whole result set, Index the position of
	// Messages[0] in it (0 when the page is empty).
	Count, Index int
	// Complete is true when no message of the set lies beyond the page in
	// the direction of paging (after it forwards, before it with Last).
	Complete bool
}

// Archive stores XEP-0313 message archives, one per owner, in the order
// messages were appended. Every query and count is served by indexes,
// whatever the size of the archive.
type Archive interface {
	// Append adds messages, in order, at the end of their owners'
	// archives, all in one transaction, and returns the stamps stored.
	// With keep > 0 each owner's oldest messages beyond the newest keep are
	// deleted in the same transaction. ErrExists, and nothing stored, if
	// an owner already has a message with the ID of one of its entries.
	Append(ctx context.Context, keep int, entries ...ArchiveEntry) ([]time.Time, error)
	// Query returns one page of owner's archive. ErrNotFound if any ID the
	// query names (AfterID, BeforeID, IDs, PageAfter, PageBefore) is not
	// in the archive.
	Query(ctx context.Context, owner string, q ArchiveQuery) (ArchivePage, error)
	// Ends returns the oldest and the newest message of owner's archive
	// without their stanzas; ErrNotFound if it is empty.
	Ends(ctx context.Context, owner string) (first, last ArchivedMessage, err error)
	// Replace puts stanza in place of the stored stanza of the message
	// with id in owner's archive, keeping its ID, stamp, party and place:
	// a retracted message becomes its tombstone (XEP-0424 §5, XEP-0425
	// §5), so queries return the tombstone where the message was and
	// paging is undisturbed. ErrNotFound if owner has no message with id.
	Replace(ctx context.Context, owner, id string, stanza []byte) error
	// Delete removes owner's whole archive (a destroyed room; an account's
	// goes with Accounts.Delete).
	Delete(ctx context.Context, owner string) error
	// PurgeBefore deletes the messages stamped before t from every archive
	// whose owner's domain is host, oldest first, and returns how many.
	PurgeBefore(ctx context.Context, host string, t time.Time) (int64, error)
}

// ComplianceRecord is one message in a host's compliance log.
type ComplianceRecord struct {
	// ID is the record's position in the log, set by Append (ignored
	// there); increasing, never reused.
	ID int64
	// Host is the virtual host whose log this is.
	Host string
	// Stamp is when the server took the message (milliseconds, never
	// before the previous record of the host).
	Stamp time.Time
	// Type is the message's type: chat, normal or groupchat.
	Type string
	// From and To are the sender and recipient as routed: full or bare
	// JIDs. In a room, From is the sender's real JID and To the room.
	From, To string
	Stanza   []byte
}

// ComplianceFilter selects records of one host's log for Export.
type ComplianceFilter struct {
	Host string
	// User, a bare JID, keeps the messages it sent or that were addressed
	// to it ("" keeps all).
	User string
	// Since and Until keep records stamped at or after Since and at or
	// before Until; zero means unbounded.
	Since, Until time.Time
}

// Compliance stores the compliance log of each host: every message of its
// users, kept whatever they prefer and beyond their accounts, for
// administrators to export. Nothing here is reachable over XMPP.
type Compliance interface {
	// Append adds records in order, in one transaction.
	Append(ctx context.Context, recs ...ComplianceRecord) error
	// Export calls fn for each record matching f, oldest first, reading in
	// batches so the log is never held in memory; an error from fn stops
	// it and is returned.
	Export(ctx context.Context, f ComplianceFilter, fn func(ComplianceRecord) error) error
	// PurgeBefore deletes host's records stamped before t and returns how
	// many.
	PurgeBefore(ctx context.Context, host string, t time.Time) (int64, error)
}

// FASTToken is one XEP-0484 token of an account as stored. The token
// itself is never stored: Hash is its SHA-256. Parley's tokens are longer
// than SHA-256's block, and HMAC keys with the hash of such a key, so the
// hash is all the HT mechanisms need (package sasl); the token cannot be
// recovered from it.
type FASTToken struct {
	// ID names the token for listing and revoking; it is not secret.
	ID string
	// ClientID is the XEP-0388 user-agent id of the client it was issued to.
	ClientID string
	// Software and Device are the client's own descriptions (user-agent).
	Software, Device string
	// Mechanism is the HT mechanism the token is bound to.
	Mechanism string
	Hash      []byte
	// Current is true once the client logged in with the token; a token
	// issued and not yet used is the client's "new" one (XEP-0484 §6.1).
	Current bool
	// Count is the highest XEP-0484 'count' accepted with the token, 0
	// when the client sent none.
	Count               int64
	IssuedAt, ExpiresAt time.Time
	// LastUsed is the last login with the token, zero if none.
	LastUsed time.Time
}

// FASTTokens stores XEP-0484 tokens per account (keyed by host and
// username). Accounts.Delete and Accounts.SetCredentials remove an
// account's tokens in the same transaction, so a deleted account or a
// changed password leaves no token that still logs in.
type FASTTokens interface {
	// Issue stores t as the client's new token. The client's earlier
	// unused token goes (XEP-0484: a newer one replaces it), and so do
	// the account's expired tokens and, beyond max tokens, the least
	// recently issued others.
	Issue(ctx context.Context, host, username string, t FASTToken, max int) error
	// Client returns the tokens of one client of an account (at most
	// two: its current and its new token), unexpired or not.
	Client(ctx context.Context, host, username, clientID string) ([]FASTToken, error)
	// Use records a login with token id at now: it becomes the client's
	// current token, replacing the one that was (XEP-0484 §6.1), and the
	// client's tokens that expire before it go (§3.5). With count > 0 it succeeds only if count is
	// above the stored Count (replay protection). ErrNotFound if the
	// token is gone (revoked) or the count is not new.
	Use(ctx context.Context, host, username, id string, count int64, now time.Time) error
	// List returns the account's tokens, oldest first.
	List(ctx context.Context, host, username string) ([]FASTToken, error)
	// Revoke removes the token id of the account, or all its tokens when
	// id is "", and reports how many were removed.
	Revoke(ctx context.Context, host, username, id string) (int, error)
}
