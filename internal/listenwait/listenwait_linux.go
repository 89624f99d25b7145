package listenwait

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// tcpListen is the TCP_LISTEN state in /proc/net/tcp's "st" column.
const tcpListen = "0A"

// listens reports whether pid has a socket listening on addr: the inodes
// of the sockets listening there against the sockets among pid's open
// files. An IPv6 address is looked up in /proc/net/tcp6; an IPv4 address
// in /proc/net/tcp and in tcp6 too, where a dual-stack listener on "::"
// (Go's net.Listen("tcp", ":port")) or on the address's v4-mapped form
// takes it. /proc does not show IPV6_V6ONLY, so a "::" listener that
// refuses IPv4 counts too: the process does listen on the port.
func listens(pid int, addr *net.TCPAddr) (bool, error) {
	tables := []string{"/proc/net/tcp6"}
	if addr.IP.To4() != nil {
		tables = []string{"/proc/net/tcp", "/proc/net/tcp6"}
	}
	inodes := map[string]bool{}
	for _, table := range tables {
		if err := listeningInodes(table, addr, inodes); err != nil {
			if os.IsNotExist(err) && table == "/proc/net/tcp6" && len(tables) > 1 {
				continue // a kernel without IPv6
			}
			return false, err
		}
	}
	if len(inodes) == 0 {
		return false, nil
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		// The process is gone (or not ours to look at): not listening.
		return false, nil
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err != nil {
			continue
		}
		if inode, ok := strings.CutPrefix(target, "socket:["); ok && inodes[strings.TrimSuffix(inode, "]")] {
			return true, nil
		}
	}
	return false, nil
}

// listeningInodes adds to out the inodes of the listening sockets bound to
// addr, or to the wildcard address on its port, in a /proc/net/tcp table.
// net.IP.Equal takes an IPv4 address and its v4-mapped IPv6 form as equal.
func listeningInodes(table string, addr *net.TCPAddr, out map[string]bool) error {
	f, err := os.Open(table)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != tcpListen {
			continue
		}
		ip, port, err := parseProcAddr(fields[1])
		if err != nil || port != addr.Port {
			continue
		}
		if ip.Equal(addr.IP) || ip.IsUnspecified() {
			out[fields[9]] = true
		}
	}
	return sc.Err()
}

// parseProcAddr decodes /proc/net/tcp's "IP:PORT": the address as hex
// 32-bit words, the port as hex.
func parseProcAddr(s string) (net.IP, int, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return nil, 0, fmt.Errorf("bad address %q", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return nil, 0, err
	}
	if len(h) != 8 && len(h) != 32 {
		return nil, 0, fmt.Errorf("bad address %q", s)
	}
	ip := make(net.IP, len(h)/2)
	for w := 0; w < len(ip); w += 4 {
		// Each 32-bit word is printed as the number the machine stores,
		// so its bytes are that number in the machine's own order.
		v, err := strconv.ParseUint(h[2*w:2*w+8], 16, 32)
		if err != nil {
			return nil, 0, err
		}
		binary.NativeEndian.PutUint32(ip[w:], uint32(v))
	}
	return ip, int(port), nil
}
