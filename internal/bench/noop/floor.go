//go:build linux

package noop

import (
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Floor is the no-op programs attached to sys_enter and sys_exit.
type Floor struct {
	objs  noopObjects
	links []link.Link
}

// Attach loads the programs and attaches them; every syscall on the host
// runs them until Close.
func Attach() (*Floor, error) {
	f := &Floor{}
	if err := loadNoopObjects(&f.objs, nil); err != nil {
		return nil, fmt.Errorf("load no-op programs: %w", err)
	}
	for _, a := range []struct {
		tp   string
		prog *ebpf.Program
	}{
		{"sys_enter", f.objs.NoopSysEnter},
		{"sys_exit", f.objs.NoopSysExit},
	} {
		l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: a.tp, Program: a.prog})
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("attach raw_tp %s: %w", a.tp, err)
		}
		f.links = append(f.links, l)
	}
	return f, nil
}

// Programs returns the attached programs by tracepoint name, for reading
// their run statistics.
func (f *Floor) Programs() map[string]*ebpf.Program {
	return map[string]*ebpf.Program{
		"sys_enter": f.objs.NoopSysEnter,
		"sys_exit":  f.objs.NoopSysExit,
	}
}

// Close detaches and unloads the programs.
func (f *Floor) Close() error {
	var errs []error
	for _, l := range f.links {
		errs = append(errs, l.Close())
	}
	f.links = nil
	errs = append(errs, f.objs.Close())
	return errors.Join(errs...)
}
