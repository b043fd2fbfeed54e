package bench

import (
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// WorkerArg, as the first argument, makes the snagbench binary run one
// workload loop instead of the driver: the driver starts its workloads by
// re-executing itself, so they need no compiler and no helper files.
const WorkerArg = "__snagbench-worker"

// counterFD is where a worker finds the shared counter (first ExtraFiles).
const counterFD = 3

// batch is how many operations a worker does between counter updates; an
// atomic add per syscall would cost more than the syscall it counts.
const batch = 256

// RunWorker runs the workload named by args[0] until the process is killed.
// It is the worker half of the driver and returns only on error.
func RunWorker(args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("worker: no workload named")
	}
	loops := map[string]func(*counter) error{
		"getppid":  getppidLoop,
		"mtmix":    mtmix,
		"pingpong": pingpong,
		"threads":  manyThreads,
		"conns":    func(c *counter) error { return connBurst(c, args[1:]) },
		// The soak's mix, and the traced bystander of pingpong (idle); the
		// soak's driver appends a marker argument that they ignore and its
		// selector matches.
		"paced": pacedLoop,
		"idle":  idleLoop,
		"churn": func(c *counter) error { return churn(c, args[1:]) },
		"blip":  blip,
	}
	loop, ok := loops[args[0]]
	if !ok {
		return fmt.Errorf("worker: unknown workload %q", args[0])
	}
	// Only now: descriptor 3 is the counter only in a worker.
	c, err := openCounter(counterFD)
	if err != nil {
		return fmt.Errorf("worker %s: %w", args[0], err)
	}
	return loop(c)
}

// getppidLoop makes the cheapest syscall there is, as fast as it can, on
// the last CPU: the loop's rate then shows almost nothing but the cost of
// entering and leaving the kernel, which is what tracing adds to.
func getppidLoop(c *counter) error {
	runtime.LockOSThread()
	if err := pinSelf(runtime.NumCPU() - 1); err != nil {
		return fmt.Errorf("getppid: %w", err)
	}
	for {
		for range batch {
			unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0)
		}
		c.add(batch)
	}
}

// mtmix runs four OS threads in two pairs. One pair bounces a byte over
// two blocking pipes (read and write syscalls, a sleep and a wake-up in
// the kernel each way); the other hands a token back and forth over Go
// channels between goroutines locked to their threads, so every hand-off
// parks one thread on a futex and wakes it with another. One operation is
// one round trip of either pair.
func mtmix(c *counter) error {
	// All on one CPU: where the scheduler puts the two ends of a pair
	// otherwise changes the rate more than any tracer does.
	if err := pinSelf(runtime.NumCPU() - 1); err != nil {
		return fmt.Errorf("mtmix: %w", err)
	}
	errc := make(chan error, 2)
	if err := pipePair(c, errc); err != nil {
		return fmt.Errorf("mtmix: %w", err)
	}
	ping, pong := make(chan struct{}), make(chan struct{})
	go chanEnd(c, ping, pong, true)
	go chanEnd(nil, pong, ping, false)
	return <-errc
}

// pingpong is mtmix's pipe pair alone. The driver runs it untraced next to
// a traced process: what a tracer's host-wide programs (one on
// sched_switch, say, runs on every context switch) cost the processes it
// does not trace.
func pingpong(c *counter) error {
	if err := pinSelf(runtime.NumCPU() - 1); err != nil {
		return fmt.Errorf("pingpong: %w", err)
	}
	errc := make(chan error, 2)
	if err := pipePair(c, errc); err != nil {
		return fmt.Errorf("pingpong: %w", err)
	}
	return <-errc
}

// pipePair starts two threads bouncing a byte over two blocking pipes;
// the first counts the round trips and either reports its failure on errc.
func pipePair(c *counter, errc chan<- error) error {
	var ab, ba [2]int
	if err := unix.Pipe2(ab[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	if err := unix.Pipe2(ba[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("pipe: %w", err)
	}
	go pipeEnd(c, ab[1], ba[0], true, errc)
	go pipeEnd(nil, ba[1], ab[0], false, errc)
	return nil
}

// pipeEnd writes to w and reads from r, forever; the side that starts
// counts the round trips.
func pipeEnd(c *counter, w, r int, starts bool, errc chan<- error) {
	runtime.LockOSThread()
	buf := []byte{1}
	if starts {
		if _, err := unix.Write(w, buf); err != nil {
			errc <- fmt.Errorf("mtmix: pipe write: %w", err)
			return
		}
	}
	for n := uint64(1); ; n++ {
		if _, err := unix.Read(r, buf); err != nil {
			errc <- fmt.Errorf("mtmix: pipe read: %w", err)
			return
		}
		if _, err := unix.Write(w, buf); err != nil {
			errc <- fmt.Errorf("mtmix: pipe write: %w", err)
			return
		}
		if c != nil && n%batch == 0 {
			c.add(batch)
		}
	}
}

// chanEnd is pipeEnd over channels; being locked to its thread, a
// goroutine that blocks puts the thread itself to sleep on a futex.
func chanEnd(c *counter, out chan<- struct{}, in <-chan struct{}, starts bool) {
	runtime.LockOSThread()
	if starts {
		out <- struct{}{}
	}
	for n := uint64(1); ; n++ {
		<-in
		out <- struct{}{}
		if c != nil && n%batch == 0 {
			c.add(batch)
		}
	}
}

// pinSelf binds every thread of this process to cpu. Threads started
// later inherit the mask of the thread that starts them, and the Go
// runtime starts its threads from ones already pinned.
func pinSelf(cpu int) error {
	return pinThreads(os.Getpid(), cpu)
}
