package bench

import (
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sizes of the memory workloads: what snag keeps must grow with the
// threads and distinct stacks it sees, not with the events.
const (
	memThreads   = 2000
	memConns     = 20000
	memConnsOver = 2 * time.Second
	// memNap is how long a thread of the threads workload sleeps between
	// its calls: above the default threshold, so each nap is an event
	// with a stack, and the same stack every time.
	memNap = 100 * time.Millisecond
)

// manyThreads starts memThreads OS threads that each make a few syscalls
// and nap, forever; one operation is one thread's round.
func manyThreads(c *counter) error {
	var ready sync.WaitGroup
	ready.Add(memThreads)
	for range memThreads {
		go func() {
			runtime.LockOSThread()
			ready.Done()
			ts := unix.NsecToTimespec(int64(memNap))
			for {
				unix.Getppid()
				unix.Getuid()
				unix.Nanosleep(&ts, nil)
				c.add(1)
			}
		}()
	}
	ready.Wait()
	select {}
}

// connBurst makes one connection to the listener named by args[0] to show
// it runs, then waits for SIGUSR1 and makes memConns short connections to
// it, paced over memConnsOver; every SIGUSR1 starts another burst. One
// operation is one connection.
func connBurst(c *counter, args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("conns: want the listener's port")
	}
	port, err := strconv.Atoi(args[0])
	if err != nil {
		return fmt.Errorf("conns: port: %w", err)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	runtime.LockOSThread()
	conn := func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("conns: socket: %w", err)
		}
		defer unix.Close(fd)
		// Reset rather than linger in TIME_WAIT: bursts of 20,000 would
		// otherwise run out of local ports.
		if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
			return fmt.Errorf("conns: SO_LINGER: %w", err)
		}
		if err := unix.Connect(fd, &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
			return fmt.Errorf("conns: connect: %w", err)
		}
		c.add(1)
		return nil
	}
	if err := conn(); err != nil {
		return err
	}
	for range sigs {
		start := time.Now()
		for i := range memConns {
			// Paced: connection i is due at i/memConns of the burst.
			if due := start.Add(memConnsOver * time.Duration(i) / memConns); time.Until(due) > 0 {
				time.Sleep(time.Until(due))
			}
			if err := conn(); err != nil {
				return err
			}
		}
	}
	return nil
}
