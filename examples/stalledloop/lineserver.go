package main

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// maxLine bounds one protocol line of the database and the result store.
const maxLine = 4096

// ioTimeout keeps a stuck client from holding a server goroutine forever.
const ioTimeout = 30 * time.Second

// lineServer accepts TCP connections and hands each to handle on its own
// goroutine. It tracks open connections so Close can end them all.
type lineServer struct {
	ln     net.Listener
	handle func(c net.Conn, done <-chan struct{})
	done   chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}

	accepted atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

func listenLine(addr string, handle func(net.Conn, <-chan struct{})) (*lineServer, error) {
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	s := &lineServer{ln: ln, handle: handle, done: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.acceptLoop()
	return s, nil
}

func (s *lineServer) addr() *net.TCPAddr { return s.ln.Addr().(*net.TCPAddr) }

func (s *lineServer) acceptLoop() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Transient failures (EMFILE, aborted handshakes): back off briefly.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.accepted.Add(1)
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			s.handle(c, s.done)
		}()
	}
}

// Close stops accepting, ends open connections and waits for their handlers.
// Later calls return the first call's result.
func (s *lineServer) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.closeErr = s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s.closeErr
}

// dbServer stands in for a slow database: every request line gets a one-line
// answer after delay, and a connection may carry any number of requests.
type dbServer struct {
	*lineServer
	delay   time.Duration
	queries atomic.Int64
}

func startDB(addr string, delay time.Duration) (*dbServer, error) {
	d := &dbServer{delay: delay}
	ls, err := listenLine(addr, d.serve)
	if err != nil {
		return nil, fmt.Errorf("database: %w", err)
	}
	d.lineServer = ls
	return d, nil
}

func (d *dbServer) serve(c net.Conn, done <-chan struct{}) {
	r := bufio.NewReaderSize(c, maxLine)
	for {
		if err := c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
			return
		}
		if _, err := r.ReadSlice('\n'); err != nil {
			return // EOF, timeout, or a line longer than the protocol allows
		}
		d.queries.Add(1)
		t := time.NewTimer(d.delay)
		select {
		case <-done:
			t.Stop()
			return
		case <-t.C:
		}
		if err := c.SetWriteDeadline(time.Now().Add(ioTimeout)); err != nil {
			return
		}
		if _, err := c.Write([]byte("OK\n")); err != nil {
			return
		}
	}
}

// storeServer stands in for a result backend that is written once per job:
// it reads one line per connection and closes it, so the client sees EOF as
// the acknowledgement and the server side keeps the TIME_WAIT entries.
type storeServer struct {
	*lineServer
	results atomic.Int64
}

func startStore(addr string) (*storeServer, error) {
	s := &storeServer{}
	ls, err := listenLine(addr, s.serve)
	if err != nil {
		return nil, fmt.Errorf("result store: %w", err)
	}
	s.lineServer = ls
	return s, nil
}

func (s *storeServer) serve(c net.Conn, _ <-chan struct{}) {
	if err := c.SetReadDeadline(time.Now().Add(ioTimeout)); err != nil {
		return
	}
	if _, err := bufio.NewReaderSize(c, maxLine).ReadSlice('\n'); err != nil {
		return
	}
	s.results.Add(1)
}
