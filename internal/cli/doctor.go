//go:build linux

package cli

import (
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"

	"github.com/snagtrace/snag/internal/cpython"
	"github.com/snagtrace/snag/internal/elfx"
	"github.com/snagtrace/snag/internal/features"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/nodejs"
	"github.com/snagtrace/snag/internal/perfmap"
	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/runtimes"
	"github.com/snagtrace/snag/internal/tracer"
)

func cmdDoctor(_ context.Context, args []string, env Env) error {
	fs := newFlags("doctor", "snag doctor [--pid PID]", env)
	pid := fs.Int("pid", 0, "also say which runtime runs this process and whether its frames can be named")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("doctor takes no arguments (got %q)", fs.Args())
	}
	if fs.Changed("pid") {
		if *pid <= 0 {
			return usagef("--pid %d: not a process id", *pid)
		}
		if !procfs.Default.Exists(*pid) {
			return fmt.Errorf("pid %d: %w", *pid, tracer.ErrNoProcess)
		}
		doctorProcess(env.Stdout, procfs.Default, *pid)
		fmt.Fprintln(env.Stdout)
	}
	var missing int
	for _, c := range features.All() {
		if c.Err == nil {
			fmt.Fprintf(env.Stdout, "OK       %s\n", c.Name)
			continue
		}
		missing++
		status := "MISSING"
		if errors.Is(c.Err, features.ErrNotChecked) {
			status = "UNKNOWN"
		}
		fmt.Fprintf(env.Stdout, "%-8s %s: %v\n         fix: %s\n", status, c.Name, c.Err, c.Fix)
	}
	// Root in a container has only the capabilities its runtime grants:
	// say which of snag's it has, and what each is for.
	if caps, err := features.EffectiveCaps(); err == nil {
		fmt.Fprintln(env.Stdout, "\ncapabilities (as the systemd unit and the Kubernetes DaemonSet grant them):")
		for _, c := range features.Capabilities {
			status := "OK"
			if !caps.Has(c) {
				status = "NO"
			}
			fmt.Fprintf(env.Stdout, "%-8s %s, to %s\n", status, c.Name, c.Why)
		}
	}
	if missing > 0 {
		return &features.MissingError{What: fmt.Sprintf("%d of %d requirements missing or unchecked: snag cannot trace here", missing, len(features.All()))}
	}
	fmt.Fprintln(env.Stdout, "snag can trace on this host.")
	return nil
}

// frameCheck is one answer of doctor --pid: whether a kind of frame can be
// named in the process, and why not.
type frameCheck struct {
	What string // "JavaScript frames", …
	OK   bool
	How  string // how they are read, or why they cannot be
}

// processReport is what doctor --pid finds in a process.
type processReport struct {
	PID     int
	Comm    string
	Runtime model.Runtime
	Checks  []frameCheck
}

// examineProcess finds the runtime of pid and whether snag can name the
// frames of its code.
func examineProcess(fs procfs.FS, pid int) processReport {
	rep := processReport{PID: pid}
	rep.Comm, _ = fs.Comm(pid)
	rt, err := runtimes.Detect(fs, pid)
	if err != nil {
		rep.Checks = append(rep.Checks, frameCheck{"runtime", false, err.Error()})
		return rep
	}
	rep.Checks = append(rep.Checks, frameCheck{"native frames", true, "unwound with each object's .eh_frame, named from .symtab/.dynsym"})
	switch rt.Name {
	case model.RuntimeCPython:
		c := frameCheck{What: "Python frames"}
		if p, err := cpython.Detect(fs, pid); err != nil {
			c.How = err.Error()
		} else {
			v := p.Version
			if p.Patch != "" {
				v = p.Patch
			}
			c.OK, c.How = true, fmt.Sprintf("CPython %s, offsets %s; interpreter state at %#x", v, p.Layout, p.Runtime)
		}
		rep.Checks = append(rep.Checks, c)
	case model.RuntimeNode:
		c := frameCheck{What: "JavaScript frames"}
		p, err := nodejs.Detect(fs, pid)
		if err == nil {
			c.OK, c.How = true, "V8 metadata (v8dbg_* symbols) in "+p.Object
			if rt.Version == "" {
				rt.Version = nodejs.ObjectVersion(fs, pid, p.Object)
			}
		} else {
			c.How = err.Error()
		}
		if pm := perfMap(fs, pid); pm.OK {
			if !c.OK {
				c.OK, c.How = true, pm.How
			} else {
				c.How += "; " + pm.How
			}
		} else if !c.OK {
			c.How += "; " + pm.How + " (start node with --perf-basic-prof to write one)"
		}
		rep.Checks = append(rep.Checks, c)
	case model.RuntimeGo:
		rep.Checks = append(rep.Checks, goSymbols(fs, pid))
	case model.RuntimeJVM:
		c := perfMap(fs, pid)
		c.What = "Java frames"
		if !c.OK {
			c.How += " (write one with jcmd PID Compiler.perf_map on JDK 17+, or perf-map-agent)"
		}
		rep.Checks = append(rep.Checks, c)
	case model.RuntimeRuby:
		rep.Checks = append(rep.Checks, frameCheck{"Ruby frames", false, "not read by snag: Ruby methods show as the interpreter's C functions"})
	}
	rep.Runtime = rt
	return rep
}

// perfMap checks for a JIT's perf map in pid.
func perfMap(fs procfs.FS, pid int) frameCheck {
	c := frameCheck{What: "JIT frames"}
	f, err := perfmap.Open(fs, pid)
	if err != nil {
		c.How = "no perf map: " + err.Error()
		return c
	}
	defer f.Close()
	t, err := perfmap.Parse(io.LimitReader(f, perfmap.MaxFileSize))
	if err != nil {
		c.How = err.Error()
		return c
	}
	c.OK, c.How = true, fmt.Sprintf("perf map %s names %d code ranges", perfmap.Path(fs, pid), t.Len())
	return c
}

// goSymbols checks that a Go executable keeps its symbol table, which
// names its functions.
func goSymbols(fs procfs.FS, pid int) frameCheck {
	c := frameCheck{What: "Go function names"}
	file, err := fs.OpenExe(pid)
	if err != nil {
		c.How = err.Error()
		return c
	}
	defer file.Close()
	f, err := elfx.Open(file)
	if err != nil {
		c.How = "read elf: " + err.Error()
		return c
	}
	syms, err := elfx.Symbols(f)
	switch {
	case err != nil && !errors.Is(err, elf.ErrNoSymbols):
		c.How = err.Error()
	case len(syms) == 0:
		c.How = "the executable is stripped (built with -ldflags=-s): its frames show as module+offset"
	default:
		c.OK, c.How = true, fmt.Sprintf(".symtab names %d symbols", len(syms))
	}
	return c
}

func doctorProcess(w io.Writer, fs procfs.FS, pid int) {
	rep := examineProcess(fs, pid)
	rt := rep.Runtime.String()
	if rt == "" {
		rt = "runtime unknown"
	}
	if rep.Runtime.Name != "" && rep.Runtime.Name != model.RuntimeNative && rep.Runtime.Version == "" {
		rt += " (version unknown)"
	}
	fmt.Fprintf(w, "pid %d (%s): %s\n", rep.PID, rep.Comm, rt)
	for _, c := range rep.Checks {
		status := "OK"
		if !c.OK {
			status = "NO"
		}
		fmt.Fprintf(w, "%-8s %s: %s\n", status, c.What, c.How)
	}
}
