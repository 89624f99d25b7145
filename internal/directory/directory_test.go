package directory

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"parley/internal/config"
	"parley/internal/directory/ldaptest"
	"parley/internal/metrics"
	"parley/internal/xmpp/xml"
)

// newDir builds a Directory against servers with the fixture's layout;
// extra is appended to the [directory] table.
func newDir(t *testing.T, servers []string, extra string) (*Directory, *metrics.Metrics) {
	t.Helper()
	q := make([]string, len(servers))
	for i, s := range servers {
		q[i] = fmt.Sprintf("%q", s)
	}
	tlsLine := `tls = "none"`
	if strings.Contains(extra, "tls =") {
		tlsLine = ""
	}
	toml := fmt.Sprintf(`[[host]]
domain = "example.test"
accounts = "directory"
[directory]
servers = [%s]
%s
bind_dn = %q
bind_password = %q
user_base = %q
group_base = %q
room_base = %q
dial_timeout = "2s"
request_timeout = "5s"
retry_delay = "10ms"
pool_size = 4
%s
`, strings.Join(q, ", "), tlsLine, ldaptest.ServiceDN, ldaptest.ServicePassword,
		ldaptest.PeopleBase, ldaptest.GroupBase, ldaptest.RoomBase, extra)
	c, err := config.Parse([]byte(toml))
	if err != nil {
		t.Fatalf("config: %v\n%s", err, toml)
	}
	m := metrics.New()
	d, err := New(c.Directory, slog.New(slog.NewTextHandler(io.Discard, nil)), m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d, m
}

func TestLookup(t *testing.T) {
	srv := ldaptest.Start(t, "")
	d, _ := newDir(t, []string{srv.Addr}, `disabled_attribute = "employeeType"
disabled_values = ["disabled"]`)
	ctx := context.Background()
	for _, name := range []string{"alice", "ALICE", "Alice"} {
		u, err := d.LookupUser(ctx, name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if u.Username != "alice" || !strings.EqualFold(u.DN, "uid=alice,"+ldaptest.PeopleBase) || u.Disabled {
			t.Fatalf("%s: %+v", name, u)
		}
	}
	for _, name := range []string{"nobody", "", "*", "*)(uid=*", "alice)(uid=*", "al*", "alice\x00", "\\2a"} {
		if _, err := d.LookupUser(ctx, name); !errors.Is(err, ErrNoSuchUser) {
			t.Errorf("lookup %q: got %v, want ErrNoSuchUser", name, err)
		}
	}
	if ok, err := d.AccountExists(ctx, "bob"); !ok || err != nil {
		t.Fatalf("bob exists: %v %v", ok, err)
	}
	if ok, err := d.AccountExists(ctx, "dave"); ok || err != nil {
		t.Fatalf("disabled dave exists: %v %v", ok, err)
	}
}

func TestFilterEscaping(t *testing.T) {
	tmpl := "(&(objectClass=inetOrgPerson)(uid=%u))"
	for in, want := range map[string]string{
		"alice":       "(&(objectClass=inetOrgPerson)(uid=alice))",
		"*)(uid=*":    `(&(objectClass=inetOrgPerson)(uid=\2a\29\28uid=\2a))`,
		`a\b`:         `(&(objectClass=inetOrgPerson)(uid=a\5cb))`,
		"x\x00":       `(&(objectClass=inetOrgPerson)(uid=x\00))`,
		"j\u00fcrgen": `(&(objectClass=inetOrgPerson)(uid=j\c3\bcrgen))`,
	} {
		if got := Filter(tmpl, in); got != want {
			t.Errorf("Filter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	srv := ldaptest.Start(t, "")
	d, _ := newDir(t, []string{srv.Addr}, `disabled_attribute = "employeeType"
disabled_values = ["disabled", "locked"]`)
	ctx := context.Background()
	cases := []struct {
		user, pass string
		want       error
	}{
		{"alice", "alice-pass", nil},
		{"Alice", "alice-pass", nil},
		{"alice", "wrong", ErrInvalidCredentials},
		{"alice", "", ErrInvalidCredentials}, // RFC 4513 §5.1.2: never an unauthenticated bind
		{"nobody", "x", ErrInvalidCredentials},
		{"*", "alice-pass", ErrInvalidCredentials},
		{"*)(uid=*", "alice-pass", ErrInvalidCredentials},
		{"dave", "dave-pass", ErrDisabled},
		{"dave", "wrong", ErrInvalidCredentials},
		{"bob", "alice-pass", ErrInvalidCredentials},
	}
	for _, tc := range cases {
		u, err := d.Authenticate(ctx, tc.user, tc.pass)
		if !errors.Is(err, tc.want) || (tc.want == nil && u.Username != strings.ToLower(tc.user)) {
			t.Errorf("Authenticate(%q, %q) = %v, %v; want %v", tc.user, tc.pass, u, err, tc.want)
		}
	}
	// After user binds, pooled connections are back to the service
	// account: searches (which anonymous binds may not do) still work.
	for range 10 {
		if _, err := d.LookupUser(ctx, "bob"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDisabledBitmask(t *testing.T) {
	srv := ldaptest.Start(t, "")
	// The AD convention (userAccountControl bit 2), on employeeNumber
	// in the fixture: dave has 514, the others 512.
	d, _ := newDir(t, []string{srv.Addr}, `disabled_attribute = "employeeNumber"
disabled_bitmask = 2`)
	ctx := context.Background()
	if _, err := d.Authenticate(ctx, "dave", "dave-pass"); !errors.Is(err, ErrDisabled) {
		t.Fatalf("dave: %v", err)
	}
	if _, err := d.Authenticate(ctx, "bob", "bob-pass"); err != nil {
		t.Fatalf("bob: %v", err)
	}
}

func TestFailoverAndOutage(t *testing.T) {
	srv := ldaptest.Start(t, "")
	dead := ldaptest.DeadAddr
	d, m := newDir(t, []string{dead, srv.Addr}, "")
	ctx := context.Background()
	if _, err := d.Authenticate(ctx, "alice", "alice-pass"); err != nil {
		t.Fatalf("with the first server down: %v", err)
	}
	if n := value(m.DirectoryErrors.WithLabelValues("connect")); n < 1 {
		t.Fatalf("connect errors = %v", n)
	}
	if value(m.DirectoryUp) != 1 || !d.Up() {
		t.Fatal("directory should be up")
	}
	srv.Stop()
	_, err := d.Authenticate(ctx, "alice", "alice-pass")
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("all servers down: %v, want ErrUnavailable", err)
	}
	if _, err := d.LookupUser(ctx, "alice"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("lookup while down: %v", err)
	}
	if _, err := d.AccountExists(ctx, "alice"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("exists while down: %v", err)
	}
	if value(m.DirectoryUp) != 0 || d.Up() {
		t.Fatal("directory should be down")
	}
	if n := value(m.DirectoryErrors.WithLabelValues("unavailable")); n < 1 {
		t.Fatalf("unavailable errors = %v", n)
	}
}

func TestRecoveryAfterOutage(t *testing.T) {
	srv := ldaptest.Start(t, "")
	d, _ := newDir(t, []string{srv.Addr}, "")
	ctx := context.Background()
	if _, err := d.LookupUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, err := d.LookupUser(ctx, "alice"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("down: %v", err)
	}
	srv2 := ldaptest.Start(t, "")
	d2, _ := newDir(t, []string{srv2.Addr}, "")
	if _, err := d2.LookupUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
}

func TestTLSModes(t *testing.T) {
	srv := ldaptest.Start(t, "")
	ctx := context.Background()
	for _, tc := range []struct{ addr, mode string }{{srv.Addr, "starttls"}, {srv.LDAPSAddr, "ldaps"}} {
		d, _ := newDir(t, []string{tc.addr}, fmt.Sprintf("tls = %q\nca_file = %q\n", tc.mode, srv.CAFile))
		if _, err := d.Authenticate(ctx, "alice", "alice-pass"); err != nil {
			t.Fatalf("%s: %v", tc.mode, err)
		}
	}
	// Without the CA the certificate is not trusted: unavailable, never
	// a silent fallback to plaintext.
	d, _ := newDir(t, []string{srv.Addr}, "tls = \"starttls\"\n")
	if _, err := d.LookupUser(ctx, "alice"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("untrusted certificate: %v", err)
	}
}

func TestGroupsAndPolling(t *testing.T) {
	srv := ldaptest.Start(t, "")
	d, _ := newDir(t, []string{srv.Addr}, `roster_attribute = "seeAlso"
poll_interval = "1s"`)
	ctx := context.Background()
	s, err := d.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"engineering": {"alice", "bob"},   // groupOfNames/member
		"sales":       {"alice", "carol"}, // groupOfUniqueNames/uniqueMember
		"ops":         {"bob", "erin"},    // posixGroup/memberUid
		"xmpp-admins": {"alice"},
	}
	for g, ms := range want {
		if !slices.Equal(s.Groups[g], ms) {
			t.Errorf("group %s = %v, want %v", g, s.Groups[g], ms)
		}
	}
	if g, _ := d.Groups(ctx, "example.test", "alice"); !slices.Equal(g, []string{"engineering", "sales", "xmpp-admins"}) {
		t.Errorf("alice's groups: %v", g)
	}
	if got := d.StaticRoster(s, s.Users["alice"], "example.test"); !slices.Equal(got, []string{"carol@example.test"}) {
		t.Errorf("static roster: %v", got)
	}
	if len(s.Rooms) != 2 || s.Rooms[1].Name != "lobby" || s.Rooms[1].Description != "Company lobby" ||
		!slices.Equal(s.Rooms[1].MemberJIDs("example.test"), []string{"alice@example.test", "bob@example.test"}) ||
		!slices.Equal(s.Rooms[1].AdminJIDs("example.test"), []string{"alice@example.test"}) {
		t.Errorf("rooms: %+v", s.Rooms)
	}

	var mu sync.Mutex
	var seen []string
	changed := make(chan struct{}, 10)
	cancel := d.Watch(func(old, new *Snapshot) {
		mu.Lock()
		seen = new.Groups["engineering"]
		mu.Unlock()
		changed <- struct{}{}
	})
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go d.Run(runCtx, lone{})
	srv.Modify(t, "dn: cn=engineering,"+ldaptest.GroupBase+"\nchangetype: modify\nadd: member\nmember: uid=carol,"+ldaptest.PeopleBase+"\n")
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-changed:
		case <-deadline:
			t.Fatal("membership change not seen by polling")
		}
		mu.Lock()
		ok := slices.Equal(seen, []string{"alice", "bob", "carol"})
		mu.Unlock()
		if ok {
			break
		}
	}
	if g, _ := d.Groups(ctx, "example.test", "carol"); !slices.Contains(g, "engineering") {
		t.Fatalf("carol's groups after poll: %v", g)
	}
}

func vcardText(v *xml.Element, path ...string) string {
	for _, p := range path {
		if v == nil {
			return ""
		}
		v = v.Child("", p)
	}
	if v == nil {
		return ""
	}
	return v.Text()
}

func TestProfileModes(t *testing.T) {
	srv := ldaptest.Start(t, "")
	ctx := context.Background()
	for _, bind := range []string{"service", "user"} {
		t.Run(bind, func(t *testing.T) {
			d, _ := newDir(t, []string{srv.Addr}, fmt.Sprintf(`profile_update_bind = %q
[directory.profile.mobile]
mode = "update"
[directory.profile.org_name]
mode = "static"
value = "Example Corp"
[directory.profile.nickname]
mode = "local"
[directory.profile.description]
mode = "update"
`, bind))
			local := xml.New(NSVCard, "vCard").Append(
				xml.New(NSVCard, "NICKNAME").AppendText("ally"),
				xml.New(NSVCard, "X-CUSTOM").AppendText("kept"),
				xml.New(NSVCard, "FN").AppendText("stale local FN ignored"))
			v, err := d.VCard(ctx, "alice", local)
			if err != nil {
				t.Fatal(err)
			}
			checks := map[string]string{
				"FN": "Alice Liddell", "N/FAMILY": "Liddell", "N/GIVEN": "Alice", "TITLE": "Staff Engineer",
				"ORG/ORGNAME": "Example Corp", "ORG/ORGUNIT": "Engineering", "NICKNAME": "ally",
				"X-CUSTOM": "kept", "EMAIL/USERID": "alice@example.test", "PHOTO/BINVAL": "/9j/4AAQSkZJRgABAQAAAQABAAD/2Q==",
				"PHOTO/TYPE": "image/jpeg",
			}
			for path, want := range checks {
				if got := vcardText(v, strings.Split(path, "/")...); got != want {
					t.Errorf("%s = %q, want %q\n%s", path, got, want, v.String())
				}
			}
			var cell string
			for _, tel := range v.Elements() {
				if tel.Local == "TEL" && tel.Child("", "CELL") != nil {
					cell = tel.ChildText("", "NUMBER")
				}
			}
			if bind == "service" && cell != "+1 555 0101" {
				t.Errorf("mobile = %q\n%s", cell, v.String())
			}

			// readonly: changing FN is refused, nothing is written.
			edit := func(mut func(*xml.Element) *xml.Element) error {
				cur, err := d.VCard(ctx, "alice", local)
				if err != nil {
					t.Fatal(err)
				}
				_, err = d.UpdateVCard(ctx, "alice", mut(cur))
				return err
			}
			replace := func(name, text string) func(*xml.Element) *xml.Element {
				return func(v *xml.Element) *xml.Element {
					out := v.WithoutChildren(func(e *xml.Element) bool { return e.Local == name })
					return out.WithChildren(xml.New(NSVCard, name).AppendText(text))
				}
			}
			var ro *ReadOnlyError
			if err := edit(replace("FN", "Mallory")); !errors.As(err, &ro) || ro.Field != "display_name" {
				t.Fatalf("readonly FN edit: %v", err)
			}
			if err := edit(func(v *xml.Element) *xml.Element {
				return v.WithoutChildren(func(e *xml.Element) bool { return e.Local == "ORG" }).
					WithChildren(xml.New(NSVCard, "ORG").Append(xml.New(NSVCard, "ORGNAME").AppendText("Evil Corp"), xml.New(NSVCard, "ORGUNIT").AppendText("Engineering")))
			}); !errors.As(err, &ro) || ro.Field != "org_name" {
				t.Fatalf("static ORGNAME edit: %v", err)
			}
			if out := srv.Search(t, ldaptest.PeopleBase, "(uid=alice)", "displayName"); !strings.Contains(out, "displayName: Alice Liddell") {
				t.Fatalf("readonly field changed in the directory:\n%s", out)
			}

			// update: a new DESC goes to the directory; the unchanged
			// readonly fields sent along are fine.
			desc := "Likes rabbits (" + bind + ")"
			cur, _ := d.VCard(ctx, "alice", local)
			newLocal, err := d.UpdateVCard(ctx, "alice", replace("DESC", desc)(replace("NICKNAME", "al")(cur)))
			if err != nil {
				t.Fatalf("update DESC: %v", err)
			}
			if out := srv.Search(t, ldaptest.PeopleBase, "(uid=alice)", "description"); !strings.Contains(out, "description: "+desc) {
				t.Fatalf("update not in the directory:\n%s", out)
			}
			// local: the returned element keeps only local fields and
			// unmapped elements.
			if vcardText(newLocal, "NICKNAME") != "al" || vcardText(newLocal, "X-CUSTOM") != "kept" || vcardText(newLocal, "FN") != "" || vcardText(newLocal, "DESC") != "" {
				t.Fatalf("local part: %s", newLocal.String())
			}
			// A partial vCard (photo-less, FN-less) changes nothing else.
			if _, err := d.UpdateVCard(ctx, "alice", xml.New(NSVCard, "vCard").Append(xml.New(NSVCard, "NICKNAME").AppendText("x"))); err != nil {
				t.Fatalf("partial vCard: %v", err)
			}
		})
	}
}

func TestProfileUserBindRespectsDirectoryACL(t *testing.T) {
	srv := ldaptest.Start(t, "")
	// The fixture's ACL lets the service account write title but not the
	// user: with profile_update_bind = "user" (RFC 4370 proxied
	// authorization) the directory applies the user's rights and refuses.
	ctx := context.Background()
	for bind, ok := range map[string]bool{"user": false, "service": true} {
		d, _ := newDir(t, []string{srv.Addr}, fmt.Sprintf(`profile_update_bind = %q
[directory.profile.job_title]
mode = "update"
`, bind))
		v := xml.New(NSVCard, "vCard").Append(xml.New(NSVCard, "TITLE").AppendText("CEO " + bind))
		_, err := d.UpdateVCard(ctx, "bob", v)
		if ok && err != nil || !ok && !errors.Is(err, ErrProfileRefused) {
			t.Fatalf("%s bind: got %v", bind, err)
		}
	}
}

// value reads a gauge or counter.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	if m.Gauge != nil {
		return m.Gauge.GetValue()
	}
	return m.Counter.GetValue()
}
