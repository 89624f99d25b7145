package xml

import (
	"errors"
	"io"
	"strconv"
)

// readBufSize is how much limitReader asks the transport for at once. It is
// the only read-ahead the package does: at most this many bytes beyond the
// current position are ever held, which is what Decoder.Buffered reports.
const readBufSize = 4096

// maxEmptyReads bounds how often a misbehaving io.Reader may return (0, nil)
// in a row before we give up instead of spinning.
const maxEmptyReads = 100

// limitReader sits between the transport and encoding/xml.
//
// It implements io.ByteReader, so encoding/xml uses it directly instead of
// wrapping it in its own bufio.Reader. That gives us two properties the
// stream layer depends on:
//
//   - Accounting is exact. Every byte encoding/xml consumes goes through
//     ReadByte, so the size limits fire on the byte that crosses them, before
//     encoding/xml has buffered a giant name, attribute value or text run.
//   - Read-ahead is ours. We only call the transport when encoding/xml needs
//     another byte and our buffer is empty, so Decoder.Next never blocks on
//     bytes past the end of the element it returns (STARTTLS), and we know
//     exactly how many unconsumed bytes we hold (Decoder.Buffered).
//
// Between top-level elements ("between" mode) the reader also swallows XML
// whitespace itself, so keepalives never reach encoding/xml and never pile
// up in its text buffer, and it rejects any other character data at stream
// level immediately. The '<' that starts the next element switches it to the
// stanza budget.
type limitReader struct {
	src  io.Reader
	buf  []byte
	r, w int // buf[r:w] is read from src but not yet handed out

	handed int64 // bytes handed to encoding/xml so far
	limit  int64 // handed may not exceed this

	// What the current budget is for, for the policy-violation text.
	budgetName string
	budgetSize int

	between   bool   // discard whitespace, start the stanza budget at '<'
	maxStanza int    // stanza budget started at '<' in between mode
	strayCond string // condition for character data at stream level

	ioErr error  // sticky error from src, returned once buf is drained
	fail  *Error // sticky limit or content error; ends the stream

	// lead holds the entity's first bytes, for sniffEncoding.
	lead [3]byte
}

func (lr *limitReader) init(src io.Reader) {
	lr.src = src
	lr.buf = make([]byte, readBufSize)
}

// setBudget starts a fresh budget of n bytes from the current position.
func (lr *limitReader) setBudget(name string, n int) {
	lr.budgetName, lr.budgetSize = name, n
	lr.limit = lr.handed + int64(n)
}

// enterBetween is called at a top-level element boundary.
func (lr *limitReader) enterBetween() {
	lr.between = true
}

// buffered is the number of bytes read from src but not yet handed out.
func (lr *limitReader) buffered() int { return lr.w - lr.r }

func (lr *limitReader) fill() error {
	if lr.ioErr != nil {
		return lr.ioErr
	}
	lr.r, lr.w = 0, 0
	for range maxEmptyReads {
		n, err := lr.src.Read(lr.buf)
		if n < 0 || n > len(lr.buf) {
			lr.ioErr = errors.New("xml: transport returned invalid count from Read")
			return lr.ioErr
		}
		lr.w = n
		if err != nil {
			// Hand out what we got; report err when it is drained.
			lr.ioErr = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	lr.ioErr = io.ErrNoProgress
	return lr.ioErr
}

// ReadByte is encoding/xml's only way to get input. It is on the hot path:
// one bounds check, one mode check and one budget check per byte.
func (lr *limitReader) ReadByte() (byte, error) {
	if lr.fail != nil {
		return 0, lr.fail
	}
	for {
		if lr.r == lr.w {
			if err := lr.fill(); err != nil {
				return 0, err
			}
		}
		c := lr.buf[lr.r]
		lr.r++
		if lr.between {
			switch c {
			case ' ', '\t', '\r', '\n':
				// Whitespace keepalive (RFC 6120 §4.6.1): dropped here so
				// it costs no memory however long the stream lives.
				continue
			case '<':
				lr.between = false
				lr.setBudget("stanza", lr.maxStanza)
			default:
				lr.fail = &Error{Condition: lr.strayCond, Text: "character data at stream level"}
				return 0, lr.fail
			}
		}
		if lr.handed >= lr.limit {
			lr.fail = &Error{
				Condition: CondPolicyViolation,
				Text:      lr.budgetName + " exceeds " + strconv.Itoa(lr.budgetSize) + " bytes",
			}
			return 0, lr.fail
		}
		if lr.handed < int64(len(lr.lead)) {
			if f := lr.sniffEncoding(c); f != nil {
				lr.fail = f
				return 0, f
			}
		}
		lr.handed++
		return c, nil
	}
}

// sniffEncoding looks at the first bytes of the stream, c being the next
// one, the way XML 1.0 Appendix F detects an encoding without a
// declaration. A UTF-16 or UTF-32 byte-order mark, the NUL bytes of
// UTF-16/32 text, or EBCDIC's "<?" mean the peer is not speaking UTF-8, and
// RFC 6120 §11.6 asks for <unsupported-encoding/>, not the
// not-well-formed encoding/xml would report for the same bytes.
func (lr *limitReader) sniffEncoding(c byte) *Error {
	i := lr.handed
	lr.lead[i] = c
	bad := false
	switch i {
	case 0:
		bad = c == 0x00 || c == 0xFE || c == 0xFF // UTF-16/32 BE text, BOMs
	case 1:
		bad = lr.lead[0] == '<' && c == 0x00 // UTF-16/32 LE text
	case 2:
		bad = lr.lead == [3]byte{0x4C, 0x6F, 0xA7} // EBCDIC "<?x"
	}
	if bad {
		return &Error{Condition: CondUnsupportedEncoding, Text: "only UTF-8 is supported"}
	}
	return nil
}

// Read exists only because encoding/xml type-asserts its reader to
// io.Reader before calling CharsetReader. Our CharsetReader always refuses,
// so this is never used for bulk input; it is correct all the same.
func (lr *limitReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c, err := lr.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = c
	return 1, nil
}
