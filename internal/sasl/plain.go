package sasl

import (
	"bytes"
	"errors"
	"unicode/utf8"

	"parley/internal/storage"
)

// maxPlainMessage bounds a PLAIN message. RFC 4616 §2 requires accepting
// authcid and passwd of up to 255 octets each, plus an authzid (a JID,
// at most 3071 octets); this leaves room for all three.
const maxPlainMessage = 4096

// plainSession is one PLAIN exchange (RFC 4616): a single message
// "[authzid] NUL authcid NUL passwd". Start only offers it over TLS unless
// the server explicitly allows otherwise.
type plainSession struct {
	env        Env
	challenged bool
	finished   bool
	username   string
	authzid    string
}

func (p *plainSession) Name() string     { return Plain }
func (p *plainSession) Username() string { return p.username }

// Authzid returns the authzid the client sent. PLAIN carries it verbatim;
// deciding whether the authenticated user may act as it is the caller's
// job (see Session.Authzid).
func (p *plainSession) Authzid() string { return p.authzid }

func (p *plainSession) Next(msg []byte) ([]byte, bool, error) {
	if p.finished {
		return nil, false, fail(CondMalformedRequest, "exchange already finished")
	}
	if msg == nil && !p.challenged {
		// No initial response: ask for the credentials with an empty
		// challenge (RFC 4616 §2, RFC 6120 §6.4.2).
		p.challenged = true
		return []byte{}, false, nil
	}
	p.finished = true
	if err := p.authenticate(msg); err != nil {
		return nil, false, err
	}
	return nil, true, nil
}

func (p *plainSession) authenticate(msg []byte) error {
	authzid, authcid, passwd, f := parsePlain(msg)
	if f != nil {
		f.Negotiation = true // malformed: no credential was checked
		return f
	}

	name := authcid
	normOK := true
	if p.env.Normalize != nil {
		n, err := p.env.Normalize(authcid)
		if err != nil {
			normOK = false
		} else {
			name = n
		}
	}

	if p.env.CheckPassword != nil {
		if !normOK {
			return fail(CondNotAuthorized, "")
		}
		if err := p.env.CheckPassword(p.env.ctx(), name, passwd); err != nil {
			var f *Failure
			if errors.As(err, &f) {
				return f
			}
			return fail(CondTemporaryAuthFailure, "")
		}
		p.username, p.authzid = name, authzid
		return nil
	}
	var creds storage.Credentials
	found := false
	if normOK {
		c, err := p.env.Lookup(p.env.ctx(), name)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return fail(CondTemporaryAuthFailure, "")
		default:
			creds, found = c, true
		}
	}
	if !found {
		// Spend the same PBKDF2 work as for a real account so response
		// time does not reveal whether the user exists.
		f, _ := familyByName(HashSHA256)
		fake := storage.Credentials{Keys: map[string]storage.ScramKey{
			HashSHA256: fakeKey(f, p.env.FakeSaltKey, name, p.env.iterations()),
		}}
		VerifyPassword(fake, passwd)
		return fail(CondNotAuthorized, "")
	}
	if !VerifyPassword(creds, passwd) {
		return fail(CondNotAuthorized, "")
	}
	p.username = name
	p.authzid = authzid
	return nil
}

// parsePlain splits message = [authzid] UTF8NUL authcid UTF8NUL passwd
// (RFC 4616 §2). authcid and passwd must be non-empty and every part UTF-8.
func parsePlain(msg []byte) (authzid, authcid, passwd string, f *Failure) {
	if len(msg) > maxPlainMessage {
		return "", "", "", fail(CondMalformedRequest, "PLAIN message too long")
	}
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 {
		return "", "", "", fail(CondMalformedRequest, "PLAIN message must have exactly three NUL-separated fields")
	}
	for _, part := range parts {
		if !utf8.Valid(part) {
			return "", "", "", fail(CondMalformedRequest, "PLAIN message is not UTF-8")
		}
	}
	if len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", "", fail(CondMalformedRequest, "empty authcid or password")
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}
