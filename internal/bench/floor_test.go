package bench

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// TestFloorAttach attaches the no-op programs and checks they are on both
// tracepoints, are found the way snag's are (through this process's
// fdinfo), run for syscalls, and are gone after detach.
func TestFloorAttach(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("attaching BPF programs needs root")
	}
	stats, err := ebpf.EnableStats(unix.BPF_STATS_RUN_TIME)
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Skip("BPF run-time statistics not supported")
	}
	if err != nil {
		t.Fatal(err)
	}
	defer stats.Close()
	a, err := floor{}.attach(context.Background(), 0)
	if errors.Is(err, ebpf.ErrNotSupported) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if n, err := syscallTracers(); err != nil || n < 1 {
		t.Errorf("syscallTracers = %d, %v; want the floor counted", n, err)
	}
	links, err := rawTracepointLinks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	progs, release, err := a.(progSource).programs()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for _, tp := range []string{"sys_enter", "sys_exit"} {
		info, err := progs[tp].Info()
		if err != nil {
			t.Fatal(err)
		}
		id, _ := info.ID()
		if links[tp] != uint32(id) {
			t.Errorf("%s: link runs program %d, want the floor's %d", tp, links[tp], id)
		}
	}
	before, err := progs["sys_enter"].Stats()
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		unix.Getppid()
	}
	after, err := progs["sys_enter"].Stats()
	if err != nil {
		t.Fatal(err)
	}
	if after.RunCount < before.RunCount+100 {
		t.Errorf("sys_enter ran %d times for 100 syscalls", after.RunCount-before.RunCount)
	}
	if _, err := a.detach(); err != nil {
		t.Fatal(err)
	}
	if links, err := rawTracepointLinks(os.Getpid()); err != nil || len(links) != 0 {
		t.Errorf("after detach: links %v, %v; want none", links, err)
	}
}
