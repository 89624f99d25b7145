package sasl

import (
	"errors"
	"unicode/utf8"
)

// maxAuthzid bounds the EXTERNAL message: a JID is at most 3071 octets.
const maxAuthzid = 3071

// externalSession is one EXTERNAL exchange (RFC 4422 Appendix A): the
// client's only message is an optional authorization identity; who it is
// was established outside SASL and Env.External decides.
type externalSession struct {
	env        Env
	challenged bool
	finished   bool
	username   string
	authzid    string
}

func (e *externalSession) Name() string     { return External }
func (e *externalSession) Username() string { return e.username }
func (e *externalSession) Authzid() string  { return e.authzid }

func (e *externalSession) Next(msg []byte) ([]byte, bool, error) {
	if e.finished {
		return nil, false, fail(CondMalformedRequest, "exchange already finished")
	}
	if msg == nil && !e.challenged {
		// No initial response: an empty challenge asks for the (possibly
		// empty) authzid (RFC 6120 §6.4.2).
		e.challenged = true
		return []byte{}, false, nil
	}
	e.finished = true
	if len(msg) > maxAuthzid || !utf8.Valid(msg) {
		return nil, false, fail(CondMalformedRequest, "authzid is not a JID")
	}
	user, err := e.env.External(e.env.ctx(), string(msg))
	if err != nil {
		var f *Failure
		if errors.As(err, &f) {
			return nil, false, f
		}
		return nil, false, fail(CondTemporaryAuthFailure, "")
	}
	e.username, e.authzid = user, string(msg)
	return nil, true, nil
}

// NewFailure returns a *Failure for callers that implement Env hooks.
func NewFailure(cond, text string) *Failure { return fail(cond, text) }
