// Package sockio gives TCP connections reads and writes that do not wake
// the Go runtime's system monitor.
//
// Every system call made through package syscall's Syscall tells the
// scheduler it is entering a call that may block. When the process was
// idle the system monitor thread is asleep, and that notice wakes it: it
// then polls every 20 µs until the process is idle again. A server that
// is busy a fraction of the time (a chat message every hundred
// microseconds, say) pays that wake-up on every message: measured on
// Parley at 8,000 chat messages/s on one core, the system monitor was
// 9 % of the CPU, and two context switches in three were its.
//
// A socket that Go's net package opened is non-blocking: a read or write
// returns at once, with EAGAIN when it would have to wait. Such a call
// cannot block the thread, so the scheduler needs no notice: Conn makes it
// as a raw system call and, on EAGAIN, waits in the runtime's network
// poller through the socket's syscall.RawConn, as net.Conn does. Deadlines
// and Close work as on the net.Conn it wraps, whose poller registration
// it shares.
//
// Wrap is for the long-lived streams that carry stanzas (client, server
// and component connections, and the load generator's). File-transfer
// relays keep the plain connection: its ReadFrom splices bytes in the
// kernel, which a wrapper would hide.
package sockio
