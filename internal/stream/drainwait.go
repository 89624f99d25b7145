package stream

import (
	"bytes"
	"runtime"
)

// WaitingDrains counts the goroutines of every DrainPool in the process
// that wait for work now (blocked in their select), from the stacks of all
// goroutines. It is slow and meant for tests: a goroutine count taken as a
// leak test's baseline must not include pooled goroutines that end by
// themselves later, and a test of the pool must know a goroutine is
// really waiting before it hands it work.
func WaitingDrains() (waiting, all int) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if !bytes.Contains(g, []byte("stream.(*DrainPool).serve(")) {
			continue
		}
		all++
		if bytes.HasPrefix(g[bytes.IndexByte(g, '[')+1:], []byte("select")) {
			waiting++
		}
	}
	return waiting, all
}
