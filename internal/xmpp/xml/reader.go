package xml

import (
	"errors"
	"io"
	"strconv"
	"sync"
)

// readBufSize is how much the decoder asks the transport for at once while
// it is inside a stanza. It is the only read-ahead the package does: at most
// this many bytes beyond the current position are ever held, which is what
// Decoder.Buffered reports.
const readBufSize = 4096

// idleBufSize is the buffer a decoder reads into while it waits between
// stanzas: small, so a connection that sits in Read holds no 4 KiB buffer,
// and big enough that a typical chat stanza still arrives in one read.
const idleBufSize = 512

// maxEmptyReads bounds how often a misbehaving io.Reader may return (0, nil)
// in a row before we give up instead of spinning.
const maxEmptyReads = 100

// readBufs recycles the 4 KiB read buffers of connections that are between
// stanzas. A sync.Pool is a cache, not shared state: what Get returns is
// owned by one decoder until it is Put back.
var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// idleBufs recycles the idle buffers. A decoder holds one while it waits in
// Read or has unread bytes in it, and gives it back when a Read between
// stanzas ends with nothing (a parked reader's timeout, the end of the
// stream): an idle session whose reader parked keeps no read buffer at all.
var idleBufs = sync.Pool{New: func() any { return new([idleBufSize]byte) }}

// input is the decoder's byte source: the transport, a read buffer, and the
// byte budgets.
//
// Accounting is exact. pos (base + r) counts the bytes the tokenizer has
// looked at, whitespace between stanzas excepted; a byte may only be looked
// at while pos < limit, so the size limits fire on the byte that crosses
// them, before the tokenizer has buffered a giant name, value or text run.
//
// Read-ahead is ours. The transport is read only when every byte read so
// far has been consumed, so Decoder.Next never blocks on bytes past the end
// of the element it returns (STARTTLS), and w-r is exactly the number of
// unconsumed bytes (Decoder.Buffered).
//
// Between top-level elements ("between" mode, driven by the decoder) the
// caller discards XML whitespace itself (skipBetween), so keepalives cost
// nothing and count against no budget, and any other character data is
// refused at its first byte.
type input struct {
	src  io.Reader
	buf  []byte // what r and w index: idle[:], *big, or a caller's slice
	r, w int
	// end is how far the tokenizer may read in buf without calling more:
	// min(w, the budget), and r+1 while the first three bytes are sniffed.
	end int

	base  int64 // pos = base + r
	limit int64 // pos may not reach this

	// What the current budget is for, for the policy-violation text.
	budgetName string
	budgetSize int

	ioErr error // sticky error from src, returned once buf is drained

	idle  bool // between stanzas: read into small
	big   *[]byte
	small *[idleBufSize]byte

	// lead holds the entity's first bytes, for sniffEncoding.
	lead [3]byte
}

// setBudget starts a fresh budget of n bytes from the current position.
func (in *input) setBudget(name string, n int) {
	in.budgetName, in.budgetSize = name, n
	in.limit = in.base + int64(in.r) + int64(n)
	in.end = in.r // recompute in more
}

// pos is the number of budgeted bytes looked at so far.
func (in *input) pos() int64 { return in.base + int64(in.r) }

// buffered is the number of bytes read from src but not yet consumed.
func (in *input) buffered() int { return in.w - in.r }

// fill reads from src into an empty buffer.
func (in *input) fill() error {
	if in.ioErr != nil {
		return in.ioErr
	}
	in.base += int64(in.w)
	in.r, in.w, in.end = 0, 0, 0
	if in.src == nil {
		in.ioErr = io.EOF
		return in.ioErr
	}
	if in.idle {
		in.releaseBig()
		if in.small == nil {
			in.small = idleBufs.Get().(*[idleBufSize]byte)
		}
		in.buf = in.small[:]
	} else {
		in.releaseSmall()
		if in.big == nil {
			in.big = readBufs.Get().(*[]byte)
		}
		in.buf = *in.big
	}
	for range maxEmptyReads {
		n, err := in.src.Read(in.buf)
		if n < 0 || n > len(in.buf) {
			in.ioErr = errors.New("xml: transport returned invalid count from Read")
			return in.ioErr
		}
		in.w = n
		if err != nil {
			// Hand out what we got; report err when it is drained.
			in.ioErr = err
			if n > 0 {
				return nil
			}
			in.releaseSmall()
			return err
		}
		if n > 0 {
			return nil
		}
	}
	in.ioErr = io.ErrNoProgress
	return in.ioErr
}

// releaseBig gives the 4 KiB buffer back once nothing in it is unread.
func (in *input) releaseBig() {
	if in.big != nil && in.r == in.w {
		readBufs.Put(in.big)
		in.big = nil
		in.buf = nil
		in.r, in.w, in.end = 0, 0, 0
	}
}

// releaseSmall gives the idle buffer back once nothing in it is unread.
func (in *input) releaseSmall() {
	if in.small != nil && in.r == in.w {
		idleBufs.Put(in.small)
		in.small = nil
		in.buf = nil
		in.r, in.w, in.end = 0, 0, 0
	}
}

// more makes buf[r] readable: it reads from the transport when the buffer
// is drained, and enforces the budget and the encoding sniff. It is the
// slow path of peek; on success r < end.
func (in *input) more() error {
	if in.r == in.w {
		if err := in.fill(); err != nil {
			return err
		}
	}
	pos := in.pos()
	if pos >= in.limit {
		return &Error{
			Condition: CondPolicyViolation,
			Text:      in.budgetName + " exceeds " + strconv.Itoa(in.budgetSize) + " bytes",
		}
	}
	if pos < int64(len(in.lead)) {
		if err := in.sniffEncoding(int(pos), in.buf[in.r]); err != nil {
			return err
		}
		in.end = in.r + 1
		return nil
	}
	in.end = in.w
	if room := in.limit - in.base; room < int64(in.end) {
		in.end = int(room)
	}
	return nil
}

// peek returns the next byte without consuming it. Errors are the
// transport's (io.EOF included) or a budget or encoding *Error; calling
// peek again returns the same error.
func (in *input) peek() (byte, error) {
	if in.r < in.end {
		return in.buf[in.r], nil
	}
	if err := in.more(); err != nil {
		return 0, err
	}
	return in.buf[in.r], nil
}

// skipBetween discards XML whitespace without counting it and returns the
// next byte, unconsumed. Whitespace keepalives (RFC 6120 §4.6.1) are
// dropped here so they cost no memory however long the stream lives.
func (in *input) skipBetween() (byte, error) {
	for {
		if in.r == in.w {
			if err := in.fill(); err != nil {
				return 0, err
			}
		}
		switch c := in.buf[in.r]; c {
		case ' ', '\t', '\r', '\n':
			in.r++
			in.base-- // pos stays: skipped bytes are not budgeted
		default:
			in.end = in.r
			return c, nil
		}
	}
}

// sniffEncoding looks at the first bytes of the stream, c being byte i,
// the way XML 1.0 Appendix F detects an encoding without a declaration. A
// UTF-16 or UTF-32 byte-order mark, the NUL bytes of UTF-16/32 text, or
// EBCDIC's "<?" mean the peer is not speaking UTF-8, and RFC 6120 §11.6
// asks for <unsupported-encoding/>, not the not-well-formed the same bytes
// would otherwise get.
func (in *input) sniffEncoding(i int, c byte) *Error {
	in.lead[i] = c
	bad := false
	switch i {
	case 0:
		bad = c == 0x00 || c == 0xFE || c == 0xFF // UTF-16/32 BE text, BOMs
	case 1:
		bad = in.lead[0] == '<' && c == 0x00 // UTF-16/32 LE text
	case 2:
		bad = in.lead == [3]byte{0x4C, 0x6F, 0xA7} // EBCDIC "<?x"
	}
	if bad {
		return &Error{Condition: CondUnsupportedEncoding, Text: "only UTF-8 is supported"}
	}
	return nil
}
