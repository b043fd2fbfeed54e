//go:build linux

package tracer

import (
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/procfs"
)

// TestQueueSamplerFullBacklog listens with a backlog of 4, connects 20
// clients and never accepts: the sampler sees the queue at its limit in
// every sample once the handshakes are done. No BPF: it runs rootless.
func TestQueueSamplerFullBacklog(t *testing.T) {
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		t.Skipf("no /proc: %v", err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 4); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	port := sa.(*unix.SockaddrInet4).Port
	var st unix.Stat_t
	unix.Fstat(fd, &st)

	q := startQueueSampler(procfs.Default, os.Getpid(), []int{os.Getpid()})
	if q == nil {
		t.Skip("no sock_diag here")
	}
	defer q.stop()
	for i := 0; i < 20; i++ {
		c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(c)
		if err := unix.Connect(c, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil && err != unix.EINPROGRESS {
			t.Fatal(err)
		}
	}
	time.Sleep(5*queueSampleInterval + queueSampleInterval/2)
	queues, counters := q.stop()
	var found bool
	for _, lq := range queues {
		if lq.Inode != st.Ino {
			continue
		}
		found = true
		if lq.PID != os.Getpid() || lq.Addr.Port != uint16(port) || lq.Limit != 4 || lq.Full == 0 || lq.Max < 4 || lq.Samples < 4 {
			t.Errorf("listener %+v: want pid %d, port %d, limit 4, full in some of ≥4 samples, max ≥ 4", lq, os.Getpid(), port)
		}
		if lq.Sum < uint64(lq.Full)*4 {
			t.Errorf("listener %+v: depth sum below 4 per full sample", lq)
		}
	}
	if !found {
		t.Fatalf("listener inode %d not among %+v", st.Ino, queues)
	}
	if !counters.Known {
		t.Error("listen overflow counters unknown")
	}
	if again, _ := q.stop(); again != nil {
		t.Error("a second stop returned the queues again")
	}
	t.Logf("%+v %+v", queues, counters)
}
