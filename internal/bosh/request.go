package bosh

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"parley/internal/xmpp/xml"
)

// maxRID is the largest request ID a client may use (XEP-0124 §14.1:
// 2^53-1, which languages with only doubles can still count to).
const maxRID = 1<<53 - 1

// request is one <body/> a client sent, from arrival to its answer.
type request struct {
	rid  uint64
	sid  string
	body *xml.Element // the wrapper; its children are the payloads
	size int          // bytes of the HTTP body (input accounting)

	// What the wrapper asks for.
	creation, restart, terminate bool
	pause                        time.Duration
	hasPause                     bool
	ack                          uint64 // client's response acknowledgement; 0: none
	key, newkey                  string

	arrived   time.Time
	processed time.Time // when it was processed in rid order; its wait counts from here

	// ch receives the request's one reply (capacity 1, so answering never
	// blocks). A retransmission of a request still outstanding takes the
	// request over with its own channel; the replaced one gets an empty
	// reply at once.
	ch chan reply

	answered, answeredEmpty bool
	// exempt: answered for a reason other than the client's next request
	// (its wait ended, a pause, a report, the client gave up on it); such
	// an empty answer does not count towards the polling rule.
	exempt bool
}

// payloads returns the elements the client sent in the request.
func (r *request) payloads() []*xml.Element { return r.body.Elements() }

// emptyPoll reports whether r is an empty request that only asks for
// output, the kind the polling rule counts (XEP-0124 §12).
func (r *request) emptyPoll() bool {
	return !r.creation && !r.restart && !r.terminate && !r.hasPause && len(r.body.Children) == 0
}

var (
	errNoRID      = errors.New("bosh: 'rid' missing or not an integer between 1 and 2^53-1")
	errBadAttr    = errors.New("bosh: malformed attribute")
	errRestartArg = errors.New("bosh: a restart request must be empty (XEP-0206 §5)")
)

// newRequest reads the wrapper's attributes; malformed ones are
// bad-request.
func newRequest(body *xml.Element, size int) (*request, error) {
	r := &request{body: body, size: size, arrived: time.Now(), sid: body.Attr("sid")}
	rid, err := strconv.ParseUint(body.Attr("rid"), 10, 64)
	if err != nil || rid == 0 || rid > maxRID {
		return nil, errNoRID
	}
	r.rid = rid
	r.creation = r.sid == ""
	r.terminate = body.Attr("type") == "terminate"
	if v := nsAttr(body, NSXBOSH, "restart"); v == "true" || v == "1" {
		r.restart = true
		if len(body.Children) > 0 {
			return nil, errRestartArg
		}
	}
	if body.HasAttr("pause") {
		n, err := strconv.ParseUint(body.Attr("pause"), 10, 31)
		if err != nil {
			return nil, errBadAttr
		}
		r.pause, r.hasPause = time.Duration(n)*time.Second, true
	}
	if v := body.Attr("ack"); v != "" && !r.creation {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return nil, errBadAttr
		}
		r.ack = n
	}
	r.key, r.newkey = body.Attr("key"), body.Attr("newkey")
	if len(r.key) > 128 || len(r.newkey) > 128 {
		return nil, errBadAttr
	}
	return r, nil
}

// nsAttr returns the value of the attribute local in namespace space.
func nsAttr(el *xml.Element, space, local string) string {
	for _, a := range el.Attrs {
		if a.Space == space && a.Local == local {
			return a.Value
		}
	}
	return ""
}

// seconds parses a non-negative count of seconds; ok is false when the
// attribute is absent. A malformed value is an error.
func seconds(el *xml.Element, name string) (n int, ok bool, err error) {
	v := el.Attr(name)
	if v == "" {
		return 0, false, nil
	}
	u, err := strconv.ParseUint(v, 10, 31)
	if err != nil {
		return 0, false, errBadAttr
	}
	return int(u), true, nil
}

// lowerVersion returns the lower of two "major.minor" versions, each
// number compared as an integer (XEP-0124 §7.1); an unparsable client
// version yields ours.
func lowerVersion(client, ours string) string {
	cm, cn, ok1 := splitVersion(client)
	om, on, ok2 := splitVersion(ours)
	if !ok1 || !ok2 || cm > om || cm == om && cn > on {
		return ours
	}
	return strconv.Itoa(cm) + "." + strconv.Itoa(cn)
}

func splitVersion(v string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(v, ".")
	if !found {
		return 0, 0, false
	}
	x, err1 := strconv.Atoi(a)
	y, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil || x < 0 || y < 0 {
		return 0, 0, false
	}
	return x, y, true
}

// secs is d in whole seconds for an attribute, rounded up (a sub-second
// duration, which only tests configure, is announced as one second).
func secs(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Second-1)/time.Second), 10)
}
