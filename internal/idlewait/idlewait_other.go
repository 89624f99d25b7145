//go:build !linux

package idlewait

import (
	"errors"
	"syscall"
	"time"
)

// Set exists only on Linux; New says so elsewhere.
type Set struct{}

// New returns errors.ErrUnsupported: there is no epoll here.
func New() (*Set, error) { return nil, errors.ErrUnsupported }

func (s *Set) Add(syscall.RawConn, time.Time, func()) (*Wait, error) { return nil, ErrClosed }
func (s *Set) finish(uint64)                                         {}
func (s *Set) Len() int                                              { return 0 }
func (s *Set) Close()                                                {}
