package loadgen

// A stamp is what the generator writes at the start of each message body
// (or presence status) it sends, so that the receiving session can tell
// which step of the run it belongs to, when it was due to be sent, and who
// sent it, without any state shared between sender and receiver:
//
//	s<step>.<due ns since the run's start>.<sender index>.
//
// followed by padding up to the configured body size. Decimal digits and
// dots need no XML escaping, so every server relays them byte for byte.

// Stamp is a decoded stamp.
type Stamp struct {
	Step   int
	Due    int64 // nanoseconds since the run's start
	Sender int
}

// AppendStamp appends the stamp and pad bytes of filler so that the whole
// text is at least size bytes.
func AppendStamp(b []byte, s Stamp, size int) []byte {
	n := len(b)
	b = append(b, 's')
	b = appendUint(b, uint64(s.Step))
	b = append(b, '.')
	b = appendUint(b, uint64(s.Due))
	b = append(b, '.')
	b = appendUint(b, uint64(s.Sender))
	b = append(b, '.')
	if pad := size - (len(b) - n); pad > 0 {
		for pad > len(filler) {
			b = append(b, filler...)
			pad -= len(filler)
		}
		b = append(b, filler[:pad]...)
	}
	return b
}

var filler = []byte("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")

func appendUint(b []byte, v uint64) []byte {
	var tmp [20]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return append(b, tmp[i:]...)
}

// ParseStamp decodes the stamp at the start of text.
func ParseStamp(text []byte) (Stamp, bool) {
	if len(text) < 7 || text[0] != 's' {
		return Stamp{}, false
	}
	var f [3]uint64
	i := 1
	for k := range f {
		start := i
		var v uint64
		for i < len(text) && text[i] >= '0' && text[i] <= '9' {
			v = v*10 + uint64(text[i]-'0')
			i++
		}
		if i == start || i >= len(text) || text[i] != '.' || i-start > 19 {
			return Stamp{}, false
		}
		f[k] = v
		i++
	}
	return Stamp{Step: int(f[0]), Due: int64(f[1]), Sender: int(f[2])}, true
}
