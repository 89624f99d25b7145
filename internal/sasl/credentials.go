package sasl

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"

	"github.com/xdg-go/scram"
	"github.com/xdg-go/stringprep"

	"parley/internal/storage"
)

const (
	// DefaultIterations is the PBKDF2 iteration count for new credentials:
	// the minimum RFC 7677 §4 asks for SCRAM-SHA-256, and what xdg-go/scram
	// clients accept by default.
	DefaultIterations = 4096
	// MinIterations is the lowest count DeriveCredentials accepts. Clients
	// such as xdg-go/scram refuse fewer, so weaker keys would only lock
	// users out.
	MinIterations = 4096
	// SaltSize is the length of the random salt per hash family. Fake salts
	// for unknown users have the same length so they cannot be told apart.
	SaltSize = 16

	minFakeSaltKey = 16
)

// Hash family names used as keys of storage.Credentials.Keys.
const (
	HashSHA1   = "SHA-1"
	HashSHA256 = "SHA-256"
	HashSHA512 = "SHA-512"
)

// scramFamily ties a storage key name to its hash function.
type scramFamily struct {
	name string
	hash scram.HashGeneratorFcn
}

func (f scramFamily) size() int { return f.hash().Size() }

// families lists every family DeriveCredentials fills, in the order
// VerifyPassword prefers them. It is a function, not a variable, so nothing
// at package level can be mutated.
func families() []scramFamily {
	return []scramFamily{
		{HashSHA256, func() hash.Hash { return sha256.New() }},
		{HashSHA512, func() hash.Hash { return sha512.New() }},
		{HashSHA1, func() hash.Hash { return sha1.New() }},
	}
}

func familyByName(name string) (scramFamily, bool) {
	for _, f := range families() {
		if f.name == name {
			return f, true
		}
	}
	return scramFamily{}, false
}

// scramFamilyOf maps a SCRAM mechanism name to its hash family and whether
// it is the channel-binding (-PLUS) variant.
func scramFamilyOf(mech string) (fam scramFamily, plus bool, ok bool) {
	var name string
	switch mech {
	case SCRAMSHA1, SCRAMSHA1Plus:
		name = HashSHA1
	case SCRAMSHA256, SCRAMSHA256Plus:
		name = HashSHA256
	case SCRAMSHA512, SCRAMSHA512Plus:
		name = HashSHA512
	default:
		return scramFamily{}, false, false
	}
	fam, ok = familyByName(name)
	plus = mech == SCRAMSHA1Plus || mech == SCRAMSHA256Plus || mech == SCRAMSHA512Plus
	return fam, plus, ok
}

// preparePassword applies SASLprep (RFC 4013), the same profile
// xdg-go/scram's client applies before hashing. RFC 7677 points at the
// PRECIS OpaqueString profile instead; the two agree on ASCII and on most
// normalized text, and where they differ what matters is that the stored
// keys match what clients compute, and the SASLprep clients are the ones in
// the wild (and in our tests).
func preparePassword(password string) (string, error) {
	p, err := stringprep.SASLprep.Prepare(password)
	if err != nil {
		return "", fmt.Errorf("sasl: password not allowed by SASLprep: %w", err)
	}
	if p == "" {
		return "", fmt.Errorf("sasl: empty password")
	}
	return p, nil
}

// deriveKey computes the RFC 5802 §3 StoredKey and ServerKey for one family.
func deriveKey(f scramFamily, prepped string, salt []byte, iterations int) (storage.ScramKey, error) {
	salted, err := pbkdf2.Key(f.hash, prepped, salt, iterations, f.size())
	if err != nil {
		return storage.ScramKey{}, err
	}
	clientKey := hmacSum(f.hash, salted, []byte("Client Key"))
	stored := f.hash()
	stored.Write(clientKey)
	return storage.ScramKey{
		Salt:       salt,
		Iterations: iterations,
		StoredKey:  stored.Sum(nil),
		ServerKey:  hmacSum(f.hash, salted, []byte("Server Key")),
	}, nil
}

func hmacSum(h func() hash.Hash, key, data []byte) []byte {
	m := hmac.New(h, key)
	m.Write(data)
	return m.Sum(nil)
}

// DeriveCredentials turns a new password into what storage keeps: for each
// of SHA-1, SHA-256 and SHA-512 a fresh random salt and the SCRAM
// StoredKey/ServerKey, never the password. Every family is filled so that
// clients that only know SCRAM-SHA-1 keep working and PLAIN can be verified
// against any of them. iterations <= 0 means DefaultIterations; values
// below MinIterations are refused. The password is SASLprepped; one that
// SASLprep rejects (or that is empty) is an error.
func DeriveCredentials(password string, iterations int) (storage.Credentials, error) {
	if iterations <= 0 {
		iterations = DefaultIterations
	}
	if iterations < MinIterations {
		return storage.Credentials{}, fmt.Errorf("sasl: %d iterations is below the minimum of %d", iterations, MinIterations)
	}
	prepped, err := preparePassword(password)
	if err != nil {
		return storage.Credentials{}, err
	}
	c := storage.Credentials{Keys: make(map[string]storage.ScramKey, 3)}
	for _, f := range families() {
		salt := make([]byte, SaltSize)
		if _, err := rand.Read(salt); err != nil {
			return storage.Credentials{}, fmt.Errorf("sasl: reading salt: %w", err)
		}
		k, err := deriveKey(f, prepped, salt, iterations)
		if err != nil {
			return storage.Credentials{}, fmt.Errorf("sasl: deriving %s key: %w", f.name, err)
		}
		c.Keys[f.name] = k
	}
	return c, nil
}

// validKey reports whether k can be used with family f; a truncated or
// half-migrated record is treated as absent rather than trusted.
func validKey(f scramFamily, k storage.ScramKey) bool {
	return len(k.Salt) > 0 && k.Iterations > 0 &&
		len(k.StoredKey) == f.size() && len(k.ServerKey) == f.size()
}

// VerifyPassword reports whether password matches c. It recomputes the
// StoredKey of the first usable family (SHA-256, then SHA-512, then SHA-1)
// and compares in constant time. Only when c holds no usable SCRAM key does
// it fall back to the legacy cleartext c.Plain. It is what PLAIN uses, and
// costs one PBKDF2 run with the stored iteration count.
func VerifyPassword(c storage.Credentials, password string) bool {
	prepped, err := preparePassword(password)
	if err != nil {
		return false
	}
	for _, f := range families() {
		k, ok := c.Keys[f.name]
		if !ok || !validKey(f, k) {
			continue
		}
		got, err := deriveKey(f, prepped, k.Salt, k.Iterations)
		if err != nil {
			return false
		}
		return hmac.Equal(got.StoredKey, k.StoredKey)
	}
	if c.Plain == "" {
		return false
	}
	want, err := preparePassword(c.Plain)
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(want), []byte(prepped)) == 1
}

// NewFakeSaltKey returns a random key suitable for Env.FakeSaltKey. Generate
// it once and persist it: if it changed, the fake salt of an unknown user
// would change too, which is exactly the tell it exists to hide.
func NewFakeSaltKey() ([]byte, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("sasl: reading fake salt key: %w", err)
	}
	return k, nil
}

// fakeSalt derives the salt shown for an unknown user. It depends on the
// family because real accounts have a distinct salt per family, and on the
// username so different probes get different, stable salts.
func fakeSalt(key []byte, family, username string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("parley sasl fake salt\x00"))
	m.Write([]byte(family))
	m.Write([]byte{0})
	m.Write([]byte(username))
	return m.Sum(nil)[:SaltSize]
}

// fakeKey is a credential no password matches: the salt is derived as
// above, StoredKey and ServerKey are random.
func fakeKey(f scramFamily, key []byte, username string, iterations int) storage.ScramKey {
	k := storage.ScramKey{
		Salt:       fakeSalt(key, f.name, username),
		Iterations: iterations,
		StoredKey:  make([]byte, f.size()),
		ServerKey:  make([]byte, f.size()),
	}
	// crypto/rand.Read never fails on supported platforms (it panics
	// instead), and a zero key would still match no password.
	_, _ = rand.Read(k.StoredKey)
	_, _ = rand.Read(k.ServerKey)
	return k
}
