// Package loggen writes synthetic `strace -f -tt -T -yy` logs of a gevent
// style web worker: an event-loop thread waiting in epoll_wait, serving
// requests over TCP, blocking in poll/recvfrom on a MySQL socket, a few pool
// threads handing work over futexes, log-file writes and reconnects. The
// parser benchmarks and `make bench` use it to produce logs of any size.
package loggen

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
)

// GenerateLog writes about size bytes of log lines (whole lines, so a little
// more) to w. The same seed always produces the same log.
func GenerateLog(w io.Writer, size int64, seed uint64) error {
	g := &gen{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		pid: 4242,
		// 09:15:00 on the time-of-day clock, in microseconds.
		now:   (9*3600 + 15*60) * 1_000_000,
		mysql: "10.0.0.5:3306",
		local: 40000,
	}
	bw := bufio.NewWriterSize(w, 1<<16)
	cw := &countWriter{w: bw}
	for cw.n < size {
		g.request(cw)
		if cw.err != nil {
			return fmt.Errorf("write log: %w", cw.err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write log: %w", err)
	}
	return nil
}

type countWriter struct {
	w   *bufio.Writer
	n   int64
	err error
}

func (c *countWriter) printf(format string, args ...any) {
	if c.err != nil {
		return
	}
	n, err := fmt.Fprintf(c.w, format, args...)
	c.n += int64(n)
	c.err = err
}

type gen struct {
	rng   *rand.Rand
	pid   int
	now   int64 // microseconds since midnight
	mysql string
	local int
	reqs  int
}

func (g *gen) ts() string {
	us := g.now % (24 * 3600 * 1_000_000)
	s := us / 1_000_000
	return fmt.Sprintf("%02d:%02d:%02d.%06d", s/3600, s/60%60, s%60, us%1_000_000)
}

// call writes one complete syscall line and advances the clock.
func (g *gen) call(w *countWriter, tid int, body string, ret string, durUS int64) {
	w.printf("%d %s %s = %s <%d.%06d>\n", tid, g.ts(), body, ret, durUS/1_000_000, durUS%1_000_000)
	g.now += durUS + 3 + g.rng.Int64N(20)
}

// lat draws a latency in microseconds: mostly short, with a long tail.
func (g *gen) lat(typical int64) int64 {
	d := 1 + g.rng.Int64N(typical)
	if g.rng.IntN(50) == 0 {
		d *= 50 + g.rng.Int64N(400)
	}
	return d
}

func (g *gen) request(w *countWriter) {
	loop, worker := g.pid, g.pid+1+g.rng.IntN(4)
	g.reqs++
	client := fmt.Sprintf("10.0.1.%d:%d", 2+g.rng.IntN(200), 30000+g.rng.IntN(30000))
	conn := fmt.Sprintf("7<TCP:[10.0.0.1:8000->%s]>", client)
	db := fmt.Sprintf("9<TCP:[10.0.0.1:%d->%s]>", g.local, g.mysql)
	ep := "4<anon_inode:[eventpoll]>"

	g.call(w, loop, fmt.Sprintf("epoll_wait(%s, [{events=EPOLLIN, data={u32=7, u64=7}}], 1024, 5000)", ep), "1", g.lat(2000))
	g.call(w, loop, fmt.Sprintf("recvfrom(%s, \"GET /orders/%d HTTP/1.1\\r\\nHost: api\\r\\n\"..., 65536, 0, NULL, NULL)", conn, g.reqs), "412", g.lat(15))

	if g.reqs%200 == 0 {
		// The driver reconnects now and then.
		g.call(w, loop, fmt.Sprintf("close(%s)", db), "0", g.lat(10))
		g.local++
		db = fmt.Sprintf("9<TCP:[10.0.0.1:%d->%s]>", g.local, g.mysql)
		g.call(w, loop, "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_TCP)", "9<TCP:[81234]>", g.lat(10))
		g.call(w, loop, "connect(9<TCP:[81234]>, {sa_family=AF_INET, sin_port=htons(3306), sin_addr=inet_addr(\"10.0.0.5\")}, 16)", "0", g.lat(400))
	}

	// The C driver's blocking round trip, on the loop thread.
	g.call(w, loop, fmt.Sprintf("sendto(%s, \"\\3SELECT * FROM orders WHERE id=%d\", 36, MSG_DONTWAIT, NULL, 0)", db, g.reqs), "36", g.lat(20))
	g.call(w, loop, fmt.Sprintf("poll([{fd=9<TCP:[10.0.0.1:%d->%s]>, events=POLLIN}], 1, 28800000)", g.local, g.mysql), "1 ([{fd=9, revents=POLLIN}])", g.lat(3000))
	g.call(w, loop, fmt.Sprintf("recvfrom(%s, \"\\1\\0\\0\\1\\2\\32\\0\\0\\2\\3def\\6orders\"..., 16384, MSG_DONTWAIT, NULL, NULL)", db), "1187", g.lat(15))

	// Work handed to a pool thread, which finishes while the loop waits.
	w.printf("%d %s futex(0x7f3a2c0011a8, FUTEX_WAIT_BITSET_PRIVATE|FUTEX_CLOCK_REALTIME, 0, NULL, FUTEX_BITSET_MATCH_ANY <unfinished ...>\n", loop, g.ts())
	start := g.now
	g.now += 5
	g.call(w, worker, fmt.Sprintf("write(3</var/log/app/worker.log>, \"%d INFO order %d served\\n\", 38)", g.now, g.reqs), "38", g.lat(30))
	g.call(w, worker, "futex(0x7f3a2c0011a8, FUTEX_WAKE_PRIVATE, 1)", "1", g.lat(5))
	waited := g.now - start
	w.printf("%d %s <... futex resumed>) = 0 <%d.%06d>\n", loop, g.ts(), waited/1_000_000, waited%1_000_000)
	g.now += 4

	g.call(w, loop, fmt.Sprintf("sendto(%s, \"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\"..., 2048, 0, NULL, 0)", conn), "2048", g.lat(25))
	g.call(w, loop, "read(5</etc/app/settings.json>, \"{\\\"debug\\\": false}\", 4096)", "16", g.lat(8))
	if g.rng.IntN(10) == 0 {
		g.call(w, loop, fmt.Sprintf("epoll_ctl(%s, EPOLL_CTL_DEL, %s, 0x7ffd5d1f8a40)", ep, conn), "0", g.lat(5))
	}
}
