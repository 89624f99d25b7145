package upload

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// limits are the quota keys of [host.upload].
type limits struct {
	quotaBytes, maxTotal int64
	quotaFiles           int
	slotTimeout, purge   time.Duration
}

// refusal says why a file may not be stored now and when to try again
// (zero: unknown).
type refusal struct {
	full  bool // the service's max_total_bytes, not the user's quota
	text  string
	retry time.Time
}

// ref is one stored file in the index.
type ref struct {
	id      string
	size    int64
	expires time.Time
}

type usage struct {
	refs []ref
	// reserved and nreserved count uploads in progress, so that two
	// uploads at once cannot both fit in the space that holds one.
	reserved  int64
	nreserved int
}

// index counts what each account stores, for the quotas and the purge. It
// is rebuilt from the store at start and kept in memory: its size is
// bounded by the files the quotas allow.
type index struct {
	lim limits

	mu     sync.Mutex
	owners map[string]*usage
	total  int64 // bytes stored (expired but not yet purged included) or reserved
	// inflight holds the slot ids being uploaded: a second PUT of a slot
	// is refused at once rather than after streaming its body.
	inflight map[string]bool
}

func newIndex(lim limits) *index {
	return &index{lim: lim, owners: make(map[string]*usage), inflight: make(map[string]bool)}
}

func (x *index) owner(o string) *usage {
	u := x.owners[o]
	if u == nil {
		u = &usage{}
		x.owners[o] = u
	}
	return u
}

// add records a stored file (from the walk at start).
func (x *index) add(owner string, r ref) {
	x.mu.Lock()
	defer x.mu.Unlock()
	u := x.owner(owner)
	u.refs = append(u.refs, r)
	x.total += r.size
}

// check reports whether owner may store size more bytes now.
func (x *index) check(owner string, size int64, now time.Time) *refusal {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.checkLocked(owner, size, now)
}

func (x *index) checkLocked(owner string, size int64, now time.Time) *refusal {
	if x.total+size > x.lim.maxTotal {
		// Space comes back when expired files are purged.
		return &refusal{full: true, text: "the upload service is full", retry: now.Add(x.lim.purge).Truncate(time.Second)}
	}
	u := x.owners[owner]
	if u == nil {
		return nil
	}
	// Expired files no longer count against the quota, purged or not.
	var live []ref
	bytes := u.reserved
	for _, r := range u.refs {
		if r.expires.After(now) {
			live = append(live, r)
			bytes += r.size
		}
	}
	files := len(live) + u.nreserved
	needBytes := bytes + size - x.lim.quotaBytes
	needFiles := files + 1 - x.lim.quotaFiles
	if needBytes <= 0 && needFiles <= 0 {
		return nil
	}
	rf := &refusal{text: fmt.Sprintf("quota reached: %d files, %d bytes stored (at most %d files, %d bytes)",
		files, bytes, x.lim.quotaFiles, x.lim.quotaBytes)}
	// The quota frees up as the oldest files expire: the retry time is the
	// expiry that frees enough, or (if uploads in progress are what fills
	// it) when their slots run out.
	slices.SortFunc(live, func(a, b ref) int { return a.expires.Compare(b.expires) })
	var freed int64
	for i, r := range live {
		freed += r.size
		if freed >= needBytes && i+1 >= needFiles {
			rf.retry = r.expires.Add(time.Second).Truncate(time.Second)
			return rf
		}
	}
	rf.retry = time.Unix(expiresAt(now, x.lim.slotTimeout), 0) // when the slots made now have expired
	return rf
}

// reserve claims size bytes of owner's quota for the upload of slot id. It
// reports false when that slot is being uploaded already, and a refusal
// when the quota or the service is full.
func (x *index) reserve(owner, id string, size int64, now time.Time) (*refusal, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.inflight[id] {
		return nil, false
	}
	if rf := x.checkLocked(owner, size, now); rf != nil {
		return rf, true
	}
	x.inflight[id] = true
	u := x.owner(owner)
	u.reserved += size
	u.nreserved++
	x.total += size
	return nil, true
}

// commit turns a reservation into a stored file.
func (x *index) commit(owner string, r ref) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.inflight, r.id)
	u := x.owner(owner)
	u.reserved -= r.size
	u.nreserved--
	u.refs = append(u.refs, r)
}

// cancel gives a reservation back (the upload failed).
func (x *index) cancel(owner, id string, size int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.inflight, id)
	u := x.owner(owner)
	u.reserved -= size
	u.nreserved--
	x.total -= size
	x.forgetIfEmpty(owner, u)
}

func (x *index) forgetIfEmpty(owner string, u *usage) {
	if len(u.refs) == 0 && u.nreserved == 0 {
		delete(x.owners, owner)
	}
}

// expired removes the files that expired by now and returns their ids,
// for the purge to delete.
func (x *index) expired(now time.Time) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	var ids []string
	for o, u := range x.owners {
		keep := u.refs[:0]
		for _, r := range u.refs {
			if r.expires.After(now) {
				keep = append(keep, r)
				continue
			}
			ids = append(ids, r.id)
			x.total -= r.size
		}
		clear(u.refs[len(keep):])
		u.refs = keep
		x.forgetIfEmpty(o, u)
	}
	return ids
}

// removeOwner forgets every file of owner (the account was deleted) and
// returns their ids.
func (x *index) removeOwner(owner string) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	u := x.owners[owner]
	if u == nil {
		return nil
	}
	ids := make([]string, 0, len(u.refs))
	for _, r := range u.refs {
		ids = append(ids, r.id)
		x.total -= r.size
	}
	u.refs = nil
	x.forgetIfEmpty(owner, u)
	return ids
}

// usageOf returns owner's stored bytes and files (expired ones included),
// for tests and logs.
func (x *index) usageOf(owner string) (int64, int) {
	x.mu.Lock()
	defer x.mu.Unlock()
	u := x.owners[owner]
	if u == nil {
		return 0, 0
	}
	var b int64
	for _, r := range u.refs {
		b += r.size
	}
	return b, len(u.refs)
}
