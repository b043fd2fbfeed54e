//go:build linux

package syscalls

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// The tables are Linux's own: they agree with x/sys/unix here.
func TestLinuxErrnos(t *testing.T) {
	for nr := int64(1); nr <= 133; nr++ {
		if got, want := ErrnoName(nr), unix.ErrnoName(syscall.Errno(nr)); got != want {
			t.Errorf("ErrnoName(%d) = %q, unix says %q", nr, got, want)
		}
		if got, want := ErrnoText(nr), syscall.Errno(nr).Error(); got != want {
			t.Errorf("ErrnoText(%d) = %q, syscall says %q", nr, got, want)
		}
	}
	for nr := 1; nr <= 31; nr++ {
		name := unix.SignalName(syscall.Signal(nr))
		if got := SignalNumber(name); got != nr {
			t.Errorf("SignalNumber(%q) = %d, want %d", name, got, nr)
		}
	}
	if n, ok := ErrnoNumber("EWOULDBLOCK"); !ok || n != 11 {
		t.Errorf("EWOULDBLOCK = %d, %v", n, ok)
	}
}
