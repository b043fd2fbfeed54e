package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// redisPort is out of the way of a redis the machine may already run.
const redisPort = 16379

// redisClients matches what a busy cache sees, and keeps redis-server, not
// the single-threaded client, the bottleneck.
const redisClients = 50

// redisLoad is redis-server under redis-benchmark's GET/SET loop. Progress
// is redis's own total_commands_processed, read over one idle connection,
// so the driver adds one command per sample to millions.
type redisLoad struct {
	server, client *exec.Cmd
	serverExited   chan struct{}
	conn           net.Conn
	rd             *bufio.Reader
	stderr         bytes.Buffer
}

func (r *redisLoad) name() string { return "redis" }
func (r *redisLoad) unit() string { return "req/s" }

func (r *redisLoad) start(ctx context.Context) error {
	srvPath, err := exec.LookPath("redis-server")
	if err != nil {
		return skipf("redis-server not found (apt-get install -y redis-server)")
	}
	benchPath, err := exec.LookPath("redis-benchmark")
	if err != nil {
		return skipf("redis-benchmark not found (apt-get install -y redis-server)")
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(redisPort))
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("redis: port %d is already in use", redisPort)
	}
	r.server = exec.Command(srvPath,
		"--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--daemonize", "no",
		"--loglevel", "warning", "--logfile", "")
	r.server.Stdout = &r.stderr
	r.server.Stderr = &r.stderr
	r.server.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.server.Start(); err != nil {
		return fmt.Errorf("redis: start redis-server: %w", err)
	}
	r.serverExited = make(chan struct{})
	go func() {
		r.server.Wait()
		close(r.serverExited)
	}()
	if err := r.dial(ctx, addr); err != nil {
		r.stop()
		return err
	}
	// Server and client on different CPUs: the client then cannot steal
	// the server's time, and a tracer's user-space CPU shows up as such.
	if runtime.NumCPU() > 1 {
		if err := pinThreads(r.server.Process.Pid, runtime.NumCPU()-1); err != nil {
			r.stop()
			return fmt.Errorf("redis: %w", err)
		}
	}
	// -l repeats the tests forever; -n keeps each GET and SET phase short
	// so every measurement window sees both.
	r.client = exec.Command(benchPath, "-h", "127.0.0.1", "-p", strconv.Itoa(redisPort),
		"-t", "get,set", "-n", "20000", "-c", strconv.Itoa(redisClients), "-q", "-l")
	r.client.Stdout = io.Discard
	r.client.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.client.Start(); err != nil {
		r.stop()
		return fmt.Errorf("redis: start redis-benchmark: %w", err)
	}
	if runtime.NumCPU() > 1 {
		if err := pinThreads(r.client.Process.Pid, 0); err != nil {
			r.stop()
			return fmt.Errorf("redis: %w", err)
		}
	}
	return nil
}

// dial waits for redis-server to accept connections and answer PING.
func (r *redisLoad) dial(ctx context.Context, addr string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-r.serverExited:
			return fmt.Errorf("redis: redis-server exited: %s", strings.TrimSpace(r.stderr.String()))
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			r.conn, r.rd = c, bufio.NewReader(c)
			if reply, err := r.command("PING"); err == nil && string(reply) == "PONG" {
				return nil
			}
			c.Close()
			r.conn = nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis: redis-server did not answer on %s within 10s", addr)
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

func (r *redisLoad) pid() int      { return r.server.Process.Pid }
func (r *redisLoad) measured() int { return r.pid() }

func (r *redisLoad) count() (uint64, error) {
	info, err := r.command("INFO", "stats")
	if err != nil {
		return 0, err
	}
	return infoField(info, "total_commands_processed")
}

// command sends one RESP command and returns a simple or bulk string reply.
func (r *redisLoad) command(args ...string) ([]byte, error) {
	var b bytes.Buffer
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	r.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := r.conn.Write(b.Bytes()); err != nil {
		return nil, fmt.Errorf("redis %s: %w", args[0], err)
	}
	reply, err := readReply(r.rd)
	if err != nil {
		return nil, fmt.Errorf("redis %s: %w", args[0], err)
	}
	return reply, nil
}

// maxBulk bounds the replies readReply accepts; INFO is a few KiB.
const maxBulk = 1 << 20

// readReply reads one RESP simple string ("+OK") or bulk string reply.
func readReply(rd *bufio.Reader) ([]byte, error) {
	line, err := rd.ReadBytes('\n')
	if err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	line = bytes.TrimRight(line, "\r\n")
	if len(line) == 0 {
		return nil, fmt.Errorf("empty reply line")
	}
	switch line[0] {
	case '+':
		return line[1:], nil
	case '-':
		return nil, fmt.Errorf("server error: %s", line[1:])
	case '$':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil || n < 0 || n > maxBulk {
			return nil, fmt.Errorf("bad bulk length %q", line[1:])
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, fmt.Errorf("read bulk reply: %w", err)
		}
		return buf[:n], nil
	}
	return nil, fmt.Errorf("unexpected reply %q", line)
}

// infoField returns a numeric "key:value" field of an INFO reply.
func infoField(info []byte, key string) (uint64, error) {
	for line := range bytes.Lines(info) {
		v, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte(key+":"))
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO %s: %w", key, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("INFO has no %s", key)
}

func (r *redisLoad) stop() error {
	if r.client != nil && r.client.Process != nil {
		r.client.Process.Kill()
		r.client.Wait()
		r.client = nil
	}
	if r.conn != nil {
		r.conn.Close()
		r.conn = nil
	}
	if r.serverExited != nil {
		r.server.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.serverExited:
		case <-time.After(5 * time.Second):
			r.server.Process.Kill()
			<-r.serverExited
		}
		r.serverExited = nil
	}
	return nil
}
