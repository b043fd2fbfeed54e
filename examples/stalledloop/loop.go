//go:build linux

package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// loopThreadName is what /proc/PID/task/TID/comm shows for the loop, so
	// a trace can name the stalled thread.
	loopThreadName = "loop"
	// epollTimeout bounds each wait so idle connections get swept even when
	// nothing happens, as an event loop's timer would.
	epollTimeout = time.Second
	// idleTimeout closes keep-alive connections a client abandoned.
	idleTimeout = 30 * time.Second
	// backendTimeout bounds each blocking call to the database and the result
	// store, so a dead backend turns into 502s rather than a frozen process.
	backendTimeout = 10 * time.Second
)

// httpConn is one client connection owned by the loop.
type httpConn struct {
	fd         int
	in, out    []byte
	closing    bool // close once out is flushed
	wantWrite  bool // registered for EPOLLOUT
	lastActive time.Time
}

// eventLoop is a single-threaded epoll HTTP server whose handler blocks its
// thread on the database and the result store, like a C client library
// called from a cooperative event loop.
type eventLoop struct {
	lfd, epfd, wakefd int
	addr              *net.TCPAddr
	db, store         unix.SockaddrInet4
	dbfd              int // persistent blocking connection; -1 when broken
	conns             map[int]*httpConn
	served            int64
	lastSweep         time.Time

	wakeMu sync.Mutex // guards wakefd against wake racing close
}

func toSockaddr(a *net.TCPAddr) (unix.SockaddrInet4, error) {
	ip4 := a.IP.To4()
	if ip4 == nil {
		return unix.SockaddrInet4{}, fmt.Errorf("%s is not an IPv4 address", a)
	}
	sa := unix.SockaddrInet4{Port: a.Port}
	copy(sa.Addr[:], ip4)
	return sa, nil
}

// newEventLoop listens on addr and connects to the database. The caller must
// call run, which owns and closes every descriptor, or close on failure.
func newEventLoop(addr string, db, store *net.TCPAddr) (*eventLoop, error) {
	l := &eventLoop{lfd: -1, epfd: -1, wakefd: -1, dbfd: -1, conns: map[int]*httpConn{}}
	var err error
	if l.db, err = toSockaddr(db); err != nil {
		return nil, fmt.Errorf("database address: %w", err)
	}
	if l.store, err = toSockaddr(store); err != nil {
		return nil, fmt.Errorf("result store address: %w", err)
	}
	if err := l.listen(addr); err != nil {
		l.close()
		return nil, err
	}
	if l.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		l.close()
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	if l.wakefd, err = unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC); err != nil {
		l.close()
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	for _, fd := range []int{l.lfd, l.wakefd} {
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			l.close()
			return nil, fmt.Errorf("epoll_ctl add %d: %w", fd, err)
		}
	}
	if err := l.connectDB(); err != nil {
		l.close()
		return nil, err
	}
	return l, nil
}

func (l *eventLoop) listen(addr string) error {
	ta, err := net.ResolveTCPAddr("tcp4", addr)
	if err != nil {
		return fmt.Errorf("resolve %s: %w", addr, err)
	}
	sa, err := toSockaddr(ta)
	if err != nil {
		return fmt.Errorf("listen address: %w", err)
	}
	if l.lfd, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0); err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := unix.SetsockoptInt(l.lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		return fmt.Errorf("setsockopt SO_REUSEADDR: %w", err)
	}
	if err := unix.Bind(l.lfd, &sa); err != nil {
		return fmt.Errorf("bind %s: %w", addr, err)
	}
	if err := unix.Listen(l.lfd, unix.SOMAXCONN); err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	bound, err := unix.Getsockname(l.lfd)
	if err != nil {
		return fmt.Errorf("getsockname: %w", err)
	}
	b4, ok := bound.(*unix.SockaddrInet4)
	if !ok {
		return fmt.Errorf("listening socket has unexpected address %T", bound)
	}
	l.addr = &net.TCPAddr{IP: net.IP(b4.Addr[:]).To16(), Port: b4.Port}
	return nil
}

// dialBlocking opens a TCP connection without O_NONBLOCK, on purpose: every
// read on it blocks the loop thread, which is the stall being reproduced.
func dialBlocking(sa *unix.SockaddrInet4) (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("socket: %w", err)
	}
	tv := unix.NsecToTimeval(backendTimeout.Nanoseconds())
	for _, opt := range []int{unix.SO_RCVTIMEO, unix.SO_SNDTIMEO} {
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, opt, &tv); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("setsockopt timeout: %w", err)
		}
	}
	if err := connect(fd, sa); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect %s: %w", sockaddrString(sa), err)
	}
	return fd, nil
}

// connect connects a blocking socket. With a send timeout set, a signal
// interrupts connect instead of restarting it while the handshake goes on in
// the kernel; then wait for it and collect its result.
func connect(fd int, sa *unix.SockaddrInet4) error {
	err := unix.Connect(fd, sa)
	if !errors.Is(err, unix.EINTR) {
		return err
	}
	deadline := time.Now().Add(backendTimeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return unix.ETIMEDOUT
		}
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(pfd, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		if n > 0 {
			break
		}
	}
	soErr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	if err != nil {
		return fmt.Errorf("getsockopt SO_ERROR: %w", err)
	}
	if soErr != 0 {
		return unix.Errno(soErr)
	}
	return nil
}

func sockaddrString(sa *unix.SockaddrInet4) string {
	return (&net.TCPAddr{IP: net.IP(sa.Addr[:]), Port: sa.Port}).String()
}

func (l *eventLoop) connectDB() error {
	fd, err := dialBlocking(&l.db)
	if err != nil {
		return fmt.Errorf("database: %w", err)
	}
	l.dbfd = fd
	return nil
}

// writeAll writes b to a blocking descriptor.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// queryDB sends one request line and blocks in recvfrom until the answer
// line arrives. A broken connection is dropped and redialled next time.
func (l *eventLoop) queryDB(id int64) (err error) {
	if l.dbfd < 0 {
		if err := l.connectDB(); err != nil {
			return err
		}
	}
	defer func() {
		if err != nil {
			unix.Close(l.dbfd)
			l.dbfd = -1
		}
	}()
	if err := writeAll(l.dbfd, fmt.Appendf(nil, "SELECT payload FROM jobs WHERE id = %d\n", id)); err != nil {
		return fmt.Errorf("database write: %w", err)
	}
	var buf [maxLine]byte
	got := 0
	for {
		n, _, err := unix.Recvfrom(l.dbfd, buf[got:], 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("database recvfrom: %w", err)
		}
		if n == 0 {
			return errors.New("database closed the connection")
		}
		got += n
		if i := bytes.IndexByte(buf[:got], '\n'); i >= 0 {
			if i != got-1 {
				return errors.New("database sent more than one answer")
			}
			return nil
		}
		if got == len(buf) {
			return errors.New("database answer too long")
		}
	}
}

// storeResult opens a new connection per request, writes one line and waits
// for the store to close: the per-request connect is the churn to be found.
func (l *eventLoop) storeResult(id int64) error {
	fd, err := dialBlocking(&l.store)
	if err != nil {
		return fmt.Errorf("result store: %w", err)
	}
	defer unix.Close(fd)
	if err := writeAll(fd, fmt.Appendf(nil, "result %d ok\n", id)); err != nil {
		return fmt.Errorf("result store write: %w", err)
	}
	var buf [64]byte
	for {
		n, err := unix.Read(fd, buf[:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("result store read: %w", err)
		}
		if n == 0 {
			return nil
		}
	}
}

// wake makes run return. It is safe to call from any goroutine, also after
// run has returned.
func (l *eventLoop) wake() error {
	l.wakeMu.Lock()
	defer l.wakeMu.Unlock()
	if l.wakefd < 0 {
		return nil
	}
	var one [8]byte
	binary.NativeEndian.PutUint64(one[:], 1)
	_, err := unix.Write(l.wakefd, one[:])
	if err != nil && !errors.Is(err, unix.EAGAIN) {
		return fmt.Errorf("wake loop: %w", err)
	}
	return nil
}

// run serves until wake is called, on one locked and named OS thread, and
// closes every descriptor before returning.
func (l *eventLoop) run() error {
	// Never unlocked: the thread exits with the goroutine and takes its name
	// along instead of handing it to another goroutine.
	runtime.LockOSThread()
	defer l.close()
	name, err := unix.BytePtrFromString(loopThreadName)
	if err != nil {
		return fmt.Errorf("thread name: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(name)), 0, 0, 0); err != nil {
		return fmt.Errorf("prctl PR_SET_NAME: %w", err)
	}

	events := make([]unix.EpollEvent, 64)
	l.lastSweep = time.Now()
	for {
		n, err := unix.EpollWait(l.epfd, events, int(epollTimeout.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		for _, ev := range events[:n] {
			switch fd := int(ev.Fd); fd {
			case l.wakefd:
				return nil
			case l.lfd:
				if err := l.acceptAll(); err != nil {
					return err
				}
			default:
				if c, ok := l.conns[fd]; ok {
					l.service(c, ev.Events)
				}
			}
		}
		if now := time.Now(); now.Sub(l.lastSweep) >= epollTimeout {
			l.sweepIdle(now)
			l.lastSweep = now
		}
	}
}

func (l *eventLoop) acceptAll() error {
	for {
		fd, _, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch {
		case err == nil:
		case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
			return nil
		case errors.Is(err, unix.ECONNABORTED), errors.Is(err, unix.EMFILE), errors.Is(err, unix.ENFILE):
			// Transient; the backlog keeps the client until fds free up.
			return nil
		default:
			return fmt.Errorf("accept4: %w", err)
		}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}); err != nil {
			unix.Close(fd)
			continue
		}
		l.conns[fd] = &httpConn{fd: fd, lastActive: time.Now()}
	}
}

// service reads what the client sent, answers every complete request in
// order and flushes as much of the output as the socket takes.
func (l *eventLoop) service(c *httpConn, events uint32) {
	c.lastActive = time.Now()
	if events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 && !c.closing {
		var buf [16 << 10]byte
		for {
			n, err := unix.Read(c.fd, buf[:])
			if errors.Is(err, unix.EINTR) {
				continue
			}
			if errors.Is(err, unix.EAGAIN) {
				break
			}
			if err != nil || n == 0 {
				// The client is gone or half-closed; answer what it sent.
				c.closing = true
				break
			}
			c.in = append(c.in, buf[:n]...)
			if len(c.in) > maxHeaderBytes+maxBodyBytes {
				break // parseRequest rejects it below
			}
		}
		l.answer(c)
	}
	l.flush(c)
}

func (l *eventLoop) answer(c *httpConn) {
	for len(c.in) > 0 {
		req, n, err := parseRequest(c.in)
		if err != nil {
			c.out = appendResponse(c.out, errorStatus(err), err.Error()+"\n", false, false)
			c.in, c.closing = nil, true
			return
		}
		if n == 0 {
			if c.closing {
				c.in = nil // an incomplete request from a client that left
			}
			return
		}
		c.in = c.in[n:]
		status, body := l.handle(req)
		c.out = appendResponse(c.out, status, body, req.method == http.MethodHead, req.keepAlive)
		if !req.keepAlive {
			c.in, c.closing = nil, true
			return
		}
	}
}

// handle does a request's work synchronously on the loop thread.
func (l *eventLoop) handle(req request) (int, string) {
	path, _, _ := strings.Cut(req.target, "?")
	if path != "/" {
		return http.StatusNotFound, "not found\n"
	}
	if req.method != http.MethodGet && req.method != http.MethodHead {
		return http.StatusMethodNotAllowed, "method not allowed\n"
	}
	l.served++
	id := l.served
	if err := l.queryDB(id); err != nil {
		return http.StatusBadGateway, err.Error() + "\n"
	}
	if err := l.storeResult(id); err != nil {
		return http.StatusBadGateway, err.Error() + "\n"
	}
	return http.StatusOK, fmt.Sprintf("job %d done\n", id)
}

func (l *eventLoop) flush(c *httpConn) {
	for len(c.out) > 0 {
		n, err := unix.Write(c.fd, c.out)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			break
		}
		if err != nil {
			l.closeConn(c)
			return
		}
		c.out = c.out[n:]
	}
	if len(c.out) == 0 {
		c.out = nil
		if c.closing {
			l.closeConn(c)
			return
		}
	}
	if want := len(c.out) > 0; want != c.wantWrite {
		ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
		if want {
			ev |= unix.EPOLLOUT
		}
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: ev, Fd: int32(c.fd)}); err != nil {
			l.closeConn(c)
			return
		}
		c.wantWrite = want
	}
}

func (l *eventLoop) sweepIdle(now time.Time) {
	for _, c := range l.conns {
		if now.Sub(c.lastActive) > idleTimeout {
			l.closeConn(c)
		}
	}
}

func (l *eventLoop) closeConn(c *httpConn) {
	delete(l.conns, c.fd)
	unix.Close(c.fd) // closing also removes it from the epoll set
}

func (l *eventLoop) close() {
	for _, c := range l.conns {
		l.closeConn(c)
	}
	l.wakeMu.Lock()
	defer l.wakeMu.Unlock()
	for _, fd := range []*int{&l.dbfd, &l.wakefd, &l.epfd, &l.lfd} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}
