package bench

import (
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// counterSize is one page: the counter only needs 8 bytes, but a mapping
// is page-sized anyway.
const counterSize = 4096

// counter is a uint64 in a shared memory page that a workload process
// bumps and the driver reads. Reading it costs the workload no syscall, so
// the measurement itself does not show up in what is being traced.
type counter struct {
	f   *os.File
	mem []byte
}

// newCounter creates the shared page as a memfd, handed to the workload
// process as an inherited descriptor, so there is no file to clean up.
func newCounter() (*counter, error) {
	fd, err := unix.MemfdCreate("snagbench-counter", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create counter memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "snagbench-counter")
	if err := f.Truncate(counterSize); err != nil {
		f.Close()
		return nil, fmt.Errorf("size counter memfd: %w", err)
	}
	return mapCounter(f)
}

// openCounter maps the counter a driver passed down as descriptor fd.
func openCounter(fd uintptr) (*counter, error) {
	return mapCounter(os.NewFile(fd, "snagbench-counter"))
}

func mapCounter(f *os.File) (*counter, error) {
	mem, err := unix.Mmap(int(f.Fd()), 0, counterSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("map counter: %w", err)
	}
	return &counter{f: f, mem: mem}, nil
}

func (c *counter) word() *uint64 { return (*uint64)(unsafe.Pointer(&c.mem[0])) }

func (c *counter) load() uint64   { return atomic.LoadUint64(c.word()) }
func (c *counter) add(n uint64)   { atomic.AddUint64(c.word(), n) }
func (c *counter) file() *os.File { return c.f }

func (c *counter) close() error {
	err := unix.Munmap(c.mem)
	if cerr := c.f.Close(); err == nil {
		err = cerr
	}
	return err
}
