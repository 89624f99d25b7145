package directory

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"parley/internal/directory/ldaptest"
	"parley/internal/sasl"
	"parley/internal/storage"
)

func TestParseAuthPassword(t *testing.T) {
	b := base64.StdEncoding.EncodeToString
	k20, k32 := b(bytes.Repeat([]byte{1}, 20)), b(bytes.Repeat([]byte{2}, 32))
	salt := b([]byte("0123456789abcdef"))
	for _, tc := range []struct {
		v, family, err string
	}{
		{"SCRAM-SHA-1$4096:" + salt + "$" + k20 + ":" + k20, "SHA-1", ""},
		{"SCRAM-SHA-256$4096:" + salt + "$" + k32 + ":" + k32, "SHA-256", ""},
		{" scram-sha-256 $ 10000:" + salt + " $ " + k32 + ":" + k32 + " ", "SHA-256", ""},
		{"MD5$" + salt + "$" + k20, "", "not SCRAM"},
		{"SCRAM-SHA-512$4096:" + salt + "$" + k32 + ":" + k32, "", "not SCRAM"},
		{"SCRAM-SHA-256$4096:" + salt + "$" + k20 + ":" + k20, "", "StoredKey is not 32 bytes"},
		{"SCRAM-SHA-256$4096:" + salt + "$" + k32 + ":" + k20, "", "ServerKey is not 32 bytes"},
		{"SCRAM-SHA-256$4096:%%%$" + k32 + ":" + k32, "", "salt is not base64"},
		{"SCRAM-SHA-256$0:" + salt + "$" + k32 + ":" + k32, "", "iteration count"},
		{"SCRAM-SHA-256$999999999:" + salt + "$" + k32 + ":" + k32, "", "iteration count"},
		{"SCRAM-SHA-256$" + salt + "$" + k32 + ":" + k32, "", "iterations:salt"},
		{"SCRAM-SHA-256$4096:" + salt + "$" + k32, "", "StoredKey:ServerKey"},
		{"SCRAM-SHA-256", "", "scheme$authInfo$authValue"},
		{"", "", "scheme$authInfo$authValue"},
	} {
		fam, key, err := ParseAuthPassword(tc.v)
		switch {
		case tc.err == "" && (err != nil || fam != tc.family || key.Iterations < 4096):
			t.Errorf("%q: %s %+v %v", tc.v, fam, key, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want an error with %q", tc.v, err, tc.err)
		case err != nil && (strings.Contains(err.Error(), k32) || strings.Contains(err.Error(), k20)):
			t.Errorf("%q: the error shows the secret: %v", tc.v, err)
		}
	}
	creds, err := sasl.DeriveCredentials("pencil", 4096)
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range []string{"SHA-1", "SHA-256"} {
		v, ok := FormatAuthPassword(fam, creds.Keys[fam])
		if !ok {
			t.Fatal(fam)
		}
		gotFam, got, err := ParseAuthPassword(v)
		if err != nil || gotFam != fam || !bytes.Equal(got.StoredKey, creds.Keys[fam].StoredKey) || !bytes.Equal(got.Salt, creds.Keys[fam].Salt) {
			t.Fatalf("round trip %s: %v", fam, err)
		}
	}
	if _, ok := FormatAuthPassword("SHA-512", creds.Keys["SHA-512"]); ok {
		t.Fatal("RFC 5803 has no SCRAM-SHA-512 scheme")
	}
}

// authPasswordLDIF adds SCRAM secrets for password to the entry of uid.
func authPasswordLDIF(t *testing.T, uid, password string, extra ...string) string {
	t.Helper()
	creds, err := sasl.DeriveCredentials(password, 4096)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := FormatAuthPassword("SHA-1", creds.Keys["SHA-1"])
	s256, _ := FormatAuthPassword("SHA-256", creds.Keys["SHA-256"])
	ldif := "dn: uid=" + uid + "," + ldaptest.PeopleBase + "\nchangetype: modify\nadd: objectClass\nobjectClass: authPasswordObject\n-\nadd: authPassword\nauthPassword: " + s1 + "\nauthPassword: " + s256 + "\n"
	for _, e := range extra {
		ldif += "authPassword: " + e + "\n"
	}
	return ldif + "-\n"
}

func TestSCRAMSecretsFromSlapd(t *testing.T) {
	s := ldaptest.Start(t, "")
	ctx := context.Background()
	before, _ := newDir(t, []string{s.Addr}, "")
	if before.SCRAMOffered(ctx) {
		t.Fatal("SCRAM offered though no entry has an authPassword")
	}
	const malformed = "SCRAM-SHA-256$4096:c2FsdA==$c2VjcmV0c2VjcmV0:c2VjcmV0c2VjcmV0"
	s.Modify(t, authPasswordLDIF(t, "alice", "alice-pass", malformed, "MD5$x$y"))
	d, _ := newDir(t, []string{s.Addr}, "")
	var logs bytes.Buffer
	d.log = slog.New(slog.NewTextHandler(&logs, nil))
	if !d.SCRAMOffered(ctx) {
		t.Fatal("SCRAM not offered though alice has secrets")
	}
	creds, err := d.SCRAMCredentials(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(creds.Keys) != 2 || !sasl.VerifyPassword(storage.Credentials{Keys: map[string]storage.ScramKey{"SHA-256": creds.Keys["SHA-256"]}}, "alice-pass") ||
		!sasl.VerifyPassword(storage.Credentials{Keys: map[string]storage.ScramKey{"SHA-1": creds.Keys["SHA-1"]}}, "alice-pass") {
		t.Fatalf("alice's keys: %d families, or they do not verify alice-pass", len(creds.Keys))
	}
	if !strings.Contains(logs.String(), "malformed authPassword") || strings.Contains(logs.String(), "c2VjcmV0c2VjcmV0") {
		t.Fatalf("malformed value: want a log line without the value, got:\n%s", logs.String())
	}
	// bob has none; unknown users and disabled ones are told apart from
	// users for the caller (which answers all of them like a wrong
	// password).
	if creds, err := d.SCRAMCredentials(ctx, "bob"); err != nil || len(creds.Keys) != 0 {
		t.Fatalf("bob: %v %d", err, len(creds.Keys))
	}
	if _, err := d.SCRAMCredentials(ctx, "nobody"); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("unknown user: %v", err)
	}
}

// A password change made through Parley sets the password and replaces
// the SCRAM secrets; the old password works for neither.
func TestSetPasswordWritesSCRAMSecrets(t *testing.T) {
	s := ldaptest.Start(t, "")
	ctx := context.Background()
	d, _ := newDir(t, []string{s.Addr}, "")
	for i, pw := range []string{"bob-new-pass", "bob-newer-pass"} {
		creds, err := sasl.DeriveCredentials(pw, 4096)
		if err != nil {
			t.Fatal(err)
		}
		if err := d.SetPassword(ctx, "bob", pw, creds); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if _, err := d.Authenticate(ctx, "bob", pw); err != nil {
			t.Fatalf("change %d: new password: %v", i, err)
		}
		got, err := d.SCRAMCredentials(ctx, "bob")
		if err != nil || len(got.Keys) != 2 || !sasl.VerifyPassword(got, pw) {
			t.Fatalf("change %d: SCRAM secrets %d, %v", i, len(got.Keys), err)
		}
	}
	if _, err := d.Authenticate(ctx, "bob", "bob-pass"); !errors.Is(err, ErrInvalidCredentials) {
		t.Fatalf("old password still binds: %v", err)
	}
	if out := s.Search(t, ldaptest.PeopleBase, "(uid=bob)", "authPassword"); strings.Count(out, "authPassword:") != 2 {
		t.Fatalf("entry holds %d authPassword values, want 2:\n%s", strings.Count(out, "authPassword:"), out)
	}
	if err := d.SetPassword(ctx, "nobody", "x-pass", storage.Credentials{}); !errors.Is(err, ErrNoSuchUser) {
		t.Fatalf("unknown user: %v", err)
	}
}

// FuzzParseAuthPassword: any value parses or fails without panicking, and
// an error never repeats the value's key material.
func FuzzParseAuthPassword(f *testing.F) {
	f.Add("SCRAM-SHA-256$4096:c2FsdA==$" + strings.Repeat("A", 43) + "=:" + strings.Repeat("B", 43) + "=")
	f.Add("SCRAM-SHA-1$1:$:")
	f.Add("$$")
	f.Fuzz(func(t *testing.T, v string) {
		fam, key, err := ParseAuthPassword(v)
		if err == nil && (fam == "" || len(key.StoredKey) != keySizes[fam] || len(key.Salt) == 0) {
			t.Fatalf("%q accepted as %s %+v", v, fam, key)
		}
	})
}

// A directory that is down answers "no SCRAM" once and is not asked again
// by every stream (the next check runs in the background after a minute).
func TestSCRAMOfferedDuringOutage(t *testing.T) {
	s := ldaptest.Start(t, "")
	d, _ := newDir(t, []string{s.Addr}, "")
	s.Stop()
	ctx := context.Background()
	if d.SCRAMOffered(ctx) {
		t.Fatal("SCRAM offered while the directory is down")
	}
	start := time.Now()
	for i := 0; i < 20; i++ {
		d.SCRAMOffered(ctx)
	}
	if el := time.Since(start); el > time.Second {
		t.Fatalf("20 calls during an outage took %v: each one asked the directory", el)
	}
}
