// Package passpolicy is the password policy of the self-service page: the
// length bounds (auth.min_password_length, auth.password.max_length), the
// character classes (auth.password.require_classes) and the reuse rule
// (auth.password.history), whose previous passwords are kept in storage
// only as salted PBKDF2-SHA-256 hashes made here.
package passpolicy

import (
	"bytes"
	"context"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"

	"parley/internal/config"
	"parley/internal/storage"
)

// Violation is a password the policy refuses; its text is for the user.
type Violation struct{ Msg string }

func (v *Violation) Error() string { return v.Msg }

// Check applies the length and character-class rules to password.
func Check(cfg *config.Config, password string) error {
	n := utf8.RuneCountInString(password)
	if n < cfg.Auth.MinPasswordLength {
		return &Violation{fmt.Sprintf("the password needs at least %d characters", cfg.Auth.MinPasswordLength)}
	}
	if len(password) > cfg.Auth.Password.MaxLength {
		return &Violation{fmt.Sprintf("the password may have at most %d bytes", cfg.Auth.Password.MaxLength)}
	}
	if want := cfg.Auth.Password.RequireClasses; want > 0 && Classes(password) < want {
		return &Violation{fmt.Sprintf("the password needs characters of at least %d of these kinds: lower case, upper case, digits, others", want)}
	}
	return nil
}

// Classes counts the character classes in s: lower case, upper case,
// digits, anything else.
func Classes(s string) int {
	var lower, upper, digit, other int
	for _, r := range s {
		switch {
		case unicode.IsLower(r):
			lower = 1
		case unicode.IsUpper(r):
			upper = 1
		case unicode.IsDigit(r):
			digit = 1
		default:
			other = 1
		}
	}
	return lower + upper + digit + other
}

// Hash format: version byte, iterations (uint32), 16-byte salt, 32-byte
// PBKDF2-SHA-256 key.
const (
	hashVersion = 1
	saltLen     = 16
	keyLen      = 32
)

// Hash returns the stored form of password for the history.
func Hash(password string, iterations int) ([]byte, error) {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt)
	return hashWith(password, salt, iterations)
}

func hashWith(password string, salt []byte, iterations int) ([]byte, error) {
	key, err := pbkdf2.Key(sha256.New, password, salt, iterations, keyLen)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteByte(hashVersion)
	_ = binary.Write(&b, binary.BigEndian, uint32(iterations))
	b.Write(salt)
	b.Write(key)
	return b.Bytes(), nil
}

// Matches reports whether stored is the hash of password.
func Matches(stored []byte, password string) bool {
	if len(stored) != 1+4+saltLen+keyLen || stored[0] != hashVersion {
		return false
	}
	iter := int(binary.BigEndian.Uint32(stored[1:5]))
	if iter < 1 || iter > 10_000_000 {
		return false
	}
	got, err := hashWith(password, stored[5:5+saltLen], iter)
	return err == nil && subtle.ConstantTimeCompare(got, stored) == 1
}

// ErrReused is the reuse rule's refusal.
var ErrReused = &Violation{"this password was used before; choose another"}

// History applies the reuse rule with an account's stored history.
type History struct {
	Store      storage.PasswordHistory
	Keep       int // auth.password.history; 0: no rule
	Iterations int
}

// CheckReuse refuses password when it is one the account had before.
func (h History) CheckReuse(ctx context.Context, host, user, password string) error {
	if h.Keep == 0 {
		return nil
	}
	hs, err := h.Store.List(ctx, host, user)
	if err != nil {
		return err
	}
	for _, s := range hs {
		if Matches(s, password) {
			return ErrReused
		}
	}
	return nil
}

// Remember records password (the one just set) in the history.
func (h History) Remember(ctx context.Context, host, user, password string) error {
	if h.Keep == 0 {
		return nil
	}
	b, err := Hash(password, h.Iterations)
	if err != nil {
		return err
	}
	return h.Store.Add(ctx, host, user, b, h.Keep)
}

// IsViolation reports whether err is a policy refusal (to show the user)
// rather than a failure.
func IsViolation(err error) bool {
	var v *Violation
	return errors.As(err, &v)
}
