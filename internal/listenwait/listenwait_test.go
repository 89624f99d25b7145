package listenwait

import (
	"errors"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func TestListensOwnSocket(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ok, err := listens(os.Getpid(), l.Addr().(*net.TCPAddr))
	if err != nil || !ok {
		t.Fatalf("own listener on %s: %v %v", l.Addr(), ok, err)
	}
}

// The case Wait exists for: the address answers, but another process
// owns it. Wait must not report it as ours, and must notice our process
// exiting.
func TestWaitOtherOwner(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cmd := exec.Command("sleep", "0.3")
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	if runtime.GOOS != "linux" {
		t.Skip("only Linux can tell the owner")
	}
	err = Wait(cmd.Process.Pid, l.Addr().String(), exited, 10*time.Second)
	if !errors.Is(err, ErrExited) {
		t.Fatalf("another process's listener: %v", err)
	}
	// This process owns it.
	if err := Wait(os.Getpid(), l.Addr().String(), nil, time.Second); err != nil {
		t.Fatal(err)
	}
	// Nobody listens on a closed port: a timeout naming the address.
	addr := l.Addr().String()
	l.Close()
	if err := Wait(os.Getpid(), addr, nil, 50*time.Millisecond); err == nil {
		t.Fatal("closed listener reported as listening")
	}
}

func TestWaitIPv6(t *testing.T) {
	l, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback")
	}
	defer l.Close()
	if err := Wait(os.Getpid(), l.Addr().String(), nil, time.Second); err != nil {
		t.Fatal(err)
	}
}

// A dual-stack listener on "::" takes IPv4 connections too: waiting for
// an IPv4 address finds it in /proc/net/tcp6.
func TestWaitIPv4OnDualStack(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	l, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	a := l.Addr().(*net.TCPAddr)
	if a.IP.To4() != nil {
		t.Skip("no dual-stack listener on this machine")
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port))
	if err := Wait(os.Getpid(), addr, nil, time.Second); err != nil {
		t.Fatal(err)
	}
}
