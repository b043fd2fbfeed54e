//go:build !linux

package main

import (
	"errors"
	"net"
)

// The epoll loop needs Linux; elsewhere serve fails cleanly, and load works.
type eventLoop struct{ addr *net.TCPAddr }

func newEventLoop(string, *net.TCPAddr, *net.TCPAddr) (*eventLoop, error) {
	return nil, errors.New("serve needs Linux (epoll)")
}

func (*eventLoop) run() error  { return nil }
func (*eventLoop) wake() error { return nil }
