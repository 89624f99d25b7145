package sasl

import (
	"bytes"
	"testing"

	"github.com/xdg-go/scram"

	"parley/internal/storage"
)

func TestDeriveCredentials(t *testing.T) {
	c := testCreds()
	if c.Plain != "" {
		t.Error("cleartext password stored")
	}
	if len(c.Keys) != 3 {
		t.Fatalf("%d keys, want 3", len(c.Keys))
	}
	clients := map[string]scram.HashGeneratorFcn{HashSHA1: scram.SHA1, HashSHA256: scram.SHA256, HashSHA512: scram.SHA512}
	var salts [][]byte
	for name, hg := range clients {
		k, ok := c.Keys[name]
		if !ok {
			t.Fatalf("no %s key", name)
		}
		if len(k.Salt) < 16 || k.Iterations != DefaultIterations {
			t.Errorf("%s: salt %d bytes, %d iterations", name, len(k.Salt), k.Iterations)
		}
		for _, s := range salts {
			if bytes.Equal(s, k.Salt) {
				t.Errorf("%s reuses a salt", name)
			}
		}
		salts = append(salts, k.Salt)
		// The keys must be what a SCRAM client derives from the password.
		cl, _ := hg.NewClient(testUser, testPassword, "")
		want, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(k.Salt), Iters: k.Iterations})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want.StoredKey, k.StoredKey) || !bytes.Equal(want.ServerKey, k.ServerKey) {
			t.Errorf("%s keys differ from the client's", name)
		}
	}

	again, err := DeriveCredentials(testPassword, 0)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(again.Keys[HashSHA256].Salt, c.Keys[HashSHA256].Salt) {
		t.Error("salt not random")
	}
}

func TestDeriveCredentialsArguments(t *testing.T) {
	tests := []struct {
		name     string
		password string
		iters    int
		wantErr  bool
		wantIter int
	}{
		{"default", "pw", 0, false, DefaultIterations},
		{"negative means default", "pw", -1, false, DefaultIterations},
		{"explicit", "pw", 5000, false, 5000},
		{"too few", "pw", 4095, true, 0},
		{"one", "pw", 1, true, 0},
		{"empty password", "", 0, true, 0},
		{"maps to empty", "\u00AD", 0, true, 0},
		{"prohibited character", "a\u0007b", 0, true, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := DeriveCredentials(tc.password, tc.iters)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && c.Keys[HashSHA512].Iterations != tc.wantIter {
				t.Fatalf("iterations %d", c.Keys[HashSHA512].Iterations)
			}
		})
	}
}

func TestVerifyPassword(t *testing.T) {
	c := testCreds()
	only1 := storage.Credentials{Keys: map[string]storage.ScramKey{HashSHA1: c.Keys[HashSHA1]}}
	broken256 := storage.Credentials{Keys: map[string]storage.ScramKey{
		HashSHA256: {Salt: []byte("s"), Iterations: 4096, StoredKey: []byte("short"), ServerKey: []byte("short")},
		HashSHA512: c.Keys[HashSHA512],
	}}
	tests := []struct {
		name  string
		creds storage.Credentials
		pw    string
		want  bool
	}{
		{"right", c, testPassword, true},
		{"wrong", c, "r0m3o!pencik", false},
		{"empty", c, "", false},
		{"SASLprep equivalent (NBSP is a space)", mustDerive(t, "a b"), "a\u00A0b", true},
		{"only SHA-1 key", only1, testPassword, true},
		{"malformed SHA-256 key skipped", broken256, testPassword, true},
		{"no credentials", storage.Credentials{}, testPassword, false},
		{"legacy plain", storage.Credentials{Plain: "secret"}, "secret", true},
		{"legacy plain wrong", storage.Credentials{Plain: "secret"}, "secreT", false},
		{"keys win over plain", storage.Credentials{Keys: c.Keys, Plain: "secret"}, "secret", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := VerifyPassword(tc.creds, tc.pw); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func mustDerive(t *testing.T, pw string) storage.Credentials {
	t.Helper()
	c, err := DeriveCredentials(pw, 0)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestNewFakeSaltKey(t *testing.T) {
	a, err := NewFakeSaltKey()
	if err != nil || len(a) < minFakeSaltKey {
		t.Fatal(a, err)
	}
	b, _ := NewFakeSaltKey()
	if bytes.Equal(a, b) {
		t.Fatal("not random")
	}
}
