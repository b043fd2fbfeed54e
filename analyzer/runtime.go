package analyzer

import (
	"strings"

	"github.com/snagtrace/snag/internal/model"
)

// runtimeOf is the process's runtime as its source detected it. Traces
// without one (older recordings, strace logs that show no exec) fall back to
// the command line, which can name the interpreter but never its loop.
func (s *session) runtimeOf(pid int) model.Runtime {
	if r, ok := s.runtimes[pid]; ok {
		return r
	}
	return model.Runtime{}
}

func (s *session) indexRuntimes() {
	s.runtimes = map[int]model.Runtime{}
	// Old traces carry no runtime: only the command line is left, which
	// names an interpreter (or the servers that embed one) but never its
	// loop. internal/runtimes decides from the mapped objects instead.
	guess := func(comm string, cmdline []string, exe string) model.Runtime {
		all := strings.ToLower(comm + " " + exe + " " + strings.Join(cmdline, " "))
		switch {
		case strings.Contains(all, "python") || strings.Contains(all, "celery") ||
			strings.Contains(all, "gunicorn") || strings.Contains(all, "uwsgi"):
			return model.Runtime{Name: model.RuntimeCPython}
		case comm == "node" || strings.HasSuffix(exe, "/node") || strings.HasSuffix(exe, "/nodejs"):
			return model.Runtime{Name: model.RuntimeNode, Loop: model.LoopLibuv}
		case comm == "java" || strings.HasSuffix(exe, "/java"):
			return model.Runtime{Name: model.RuntimeJVM}
		}
		return model.Runtime{}
	}
	for _, p := range s.t.Processes {
		r := p.Runtime
		if r.IsZero() {
			r = guess(p.Comm, p.Cmdline, p.Exe)
		}
		s.runtimes[p.PID] = r
	}
	if _, ok := s.runtimes[s.t.Target.PID]; !ok {
		tg := s.t.Target
		s.runtimes[tg.PID] = guess(tg.Comm, tg.Cmdline, tg.Exe)
	}
}

// isPython reports whether the process runs CPython.
func (s *session) isPython(pid int) bool { return s.runtimeOf(pid).Name == model.RuntimeCPython }

// strongLoop reports whether the process's runtime is itself an event
// loop. asyncio is not enough: Django and many libraries import it in
// processes that never run a loop.
func strongLoop(r model.Runtime) bool {
	switch r.Loop {
	case model.LoopGevent, model.LoopEventlet, model.LoopUvloop, model.LoopLibuv, model.LoopNetty:
		return true
	}
	// A JVM thread waits in epoll only inside an NIO selector (Netty,
	// Tomcat's poller, the JDK's HTTP server): thread-per-connection Java
	// blocks in accept and read instead.
	return r.Name == model.RuntimeNode || r.Name == model.RuntimeJVM
}

// poolRuntime reports whether the runtime parks idle threads of its own
// pools in futex (libuv's threadpool, the JVM's, Go's Ms): their futex waits
// are waits for work, not for a lock.
func poolRuntime(r model.Runtime) bool {
	switch r.Name {
	case model.RuntimeNode, model.RuntimeJVM, model.RuntimeGo:
		return true
	}
	return false
}
