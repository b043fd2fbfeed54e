package tracer

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/snagtrace/snag/bpf"
	"github.com/snagtrace/snag/internal/cpython"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/nodejs"
	"github.com/snagtrace/snag/internal/perfmap"
	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/symbolize"
	"github.com/snagtrace/snag/internal/syscalls"
	"github.com/snagtrace/snag/internal/unwind"
)

// stackResolver turns the registers and stack copy of a slow event into
// symbolized frames: DWARF CFI unwinding in user space first, since Debian's
// libc and C client libraries have no frame pointers, and the kernel's
// frame-pointer walk only when the copy yields nothing: in code without
// frame pointers that walk follows garbage.
type stackResolver struct {
	fs  procfs.FS
	unw *unwind.Unwinder
	sym *symbolize.Symbolizer
	py  *cpython.Reader
	jit *perfmap.Maps
	js  *nodejs.Reader
	// jsTried holds the processes already looked at for node, found or not.
	jsTried map[int]bool
	// seen shares the frames of stacks already symbolized: a blocking call
	// repeats from the same place thousands of times, and each event then
	// costs neither symbolization nor its own copy of the frames.
	seen map[stackKey][]model.Frame
	// noteJIT hears why a process's perf map, which exists, could not be read.
	noteJIT func(pid int, err error)
	// noteNode hears why a node process's frames cannot be named.
	noteNode func(pid int, err error)
}

type stackKey struct {
	pid int
	pcs string // the return addresses' bytes
}

// maxSeenStacks bounds the cache; past it the cache starts over.
const maxSeenStacks = 4096

// userSpaceEnd bounds user addresses on amd64 and arm64 (48-bit VAs).
const userSpaceEnd = 1 << 48

// newStackResolver reads processes through p; note hears, once per file,
// why a mapped file could not be read for symbols or unwinding.
func newStackResolver(p procfs.FS, note func(string)) *stackResolver {
	r := &stackResolver{fs: p, unw: unwind.New(p, syscalls.Native()), sym: symbolize.New(p), py: cpython.NewReader(p),
		jit: perfmap.New(p), js: nodejs.NewReader(p), jsTried: map[int]bool{}, seen: map[stackKey][]model.Frame{}}
	noted := map[string]bool{}
	onError := func(pid int, m procfs.Mapping, err error) {
		if !noted[m.Path] {
			noted[m.Path] = true
			note(fmt.Sprintf("stacks without %s: %v", m.Path, err))
		}
	}
	r.unw.OnError(onError)
	r.sym.OnError(onError)
	r.noteNode = func(pid int, err error) {
		note(fmt.Sprintf("no JavaScript frames for pid %d: %v", pid, err))
	}
	r.noteJIT = func(pid int, err error) {
		if !noted[perfmap.Path(p, pid)] {
			noted[perfmap.Path(p, pid)] = true
			note(fmt.Sprintf("JIT frames of pid %d without its perf map: %v", pid, err))
		}
	}
	return r
}

func (r *stackResolver) resolve(pid int, rec *bpf.Record) []model.Frame {
	var pcs, fps []uint64
	complete := false
	if len(rec.Stack) > 0 {
		regs := unwind.Regs{PC: rec.Regs.IP, SP: rec.Regs.SP, FP: rec.Regs.FP, LR: rec.Regs.LR}
		pcs, fps, complete = r.unw.UnwindFP(pid, regs, rec.Stack)
	}
	if len(pcs) <= 1 && len(rec.FPStack) > len(pcs) {
		pcs, fps, complete = rec.FPStack, nil, true
	}
	for i, pc := range pcs {
		if pc >= userSpaceEnd {
			// Past the user address space: the unwind followed garbage
			// (a greenlet's stack switch, say). Stop honestly there.
			pcs, complete = pcs[:i], false
			fps = fps[:min(i, len(fps))]
			break
		}
	}
	if len(pcs) == 0 {
		return nil
	}
	// JavaScript frames are told apart by the function each holds, not by
	// the return address: every interpreted frame returns into the same
	// trampoline.
	var slots []uint64
	if len(fps) > 0 && r.node(pid) {
		slots = r.js.Slots(pid, fps, rec.Regs.SP, rec.Stack)
	}
	key := stackKey{pid, pcsKey(pcs, complete, rec.PyCode, rec.PyLasti, rec.PyEntry, slots)}
	if frames, ok := r.seen[key]; ok {
		return frames
	}
	// Clipped: events share it, so an append by a reader must copy.
	frames := r.symbolize(pid, pcs, complete)
	if len(slots) > 0 {
		r.js.Name(pid, frames, slots)
	}
	if len(rec.PyCode) > 0 {
		frames = mergePython(frames, r.py.Frames(pid, rec.PyCode, rec.PyLasti), rec.PyEntry)
	}
	frames = slices.Clip(frames)
	if len(r.seen) >= maxSeenStacks {
		clear(r.seen)
	}
	r.seen[key] = frames
	return frames
}

// node reports whether pid runs node with V8 metadata snag can read,
// looking the first time pid is asked about.
func (r *stackResolver) node(pid int) bool {
	if !r.jsTried[pid] {
		r.jsTried[pid] = true
		p, err := nodejs.Detect(r.fs, pid)
		switch {
		case err == nil:
			r.js.Add(p)
		case !errors.Is(err, nodejs.ErrNotNode) && !errors.Is(err, fs.ErrNotExist): // gone: nothing to say
			r.noteNode(pid, err)
		}
	}
	return r.js.Has(pid)
}

// exec forgets what was learnt of a process's address space before it
// exec'd: its maps, its JIT's perf map, whether it ran node, and the
// stacks already symbolized. (Python state is set up by the tracer on exec
// itself.)
func (r *stackResolver) exec(pid int) {
	r.unw.Forget(pid)
	r.sym.Forget(pid)
	r.jit.Forget(pid)
	r.js.Forget(pid)
	delete(r.jsTried, pid)
	for k := range r.seen {
		if k.pid == pid {
			delete(r.seen, k)
		}
	}
}

func (r *stackResolver) symbolize(pid int, pcs []uint64, complete bool) []model.Frame {
	frames := r.sym.Frames(pid, pcs)
	r.nameJIT(pid, frames)
	for i, f := range frames {
		if coroutineEntry[f.Function] {
			// A coroutine's call chain starts at its entry; frames below it
			// belong to whatever stack it was first switched in from.
			return frames[:i+1]
		}
	}
	if !complete {
		frames = append(frames, model.Frame{Kind: model.FrameTruncated})
	}
	return frames
}

// nameJIT names frames in code no mapped file covers (a JIT's anonymous
// memory) from the process's perf map, when its JIT writes one.
func (r *stackResolver) nameJIT(pid int, frames []model.Frame) {
	for i, f := range frames {
		if f.Kind != model.FrameNative || f.Function != "" || (f.Module != "" && !strings.HasPrefix(f.Module, "[anon")) {
			continue
		}
		lookup := f.Addr
		if i > 0 && lookup > 0 {
			lookup-- // a return address: the call is before it
		}
		if s, ok := r.jit.Lookup(pid, lookup); ok {
			frames[i] = perfmap.Frame(s, f.Addr)
		} else if err := r.jit.Err(pid); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.noteJIT(pid, err)
		}
	}
}

// coroutineEntry names the functions where a coroutine's own stack begins.
var coroutineEntry = map[string]bool{
	"greenlet::UserGreenlet::g_initialstub": true, // greenlet ≥ 2 (gevent, eventlet)
	"g_initialstub":                         true, // greenlet 1
}

// addPython names the CPython frames of p's slow calls.
func (r *stackResolver) addPython(p *cpython.Process) { r.py.Add(p) }

// forget drops a process's cached state once it has exited.
func (r *stackResolver) forget(pid int) {
	r.exec(pid)
	r.py.Forget(pid)
}

func pcsKey(pcs []uint64, complete bool, py []uint64, lasti []uint32, entry uint32, js []uint64) string {
	b := make([]byte, 0, 8*(len(pcs)+len(py)+len(js))+4*len(lasti)+6)
	for _, pc := range pcs {
		b = binary.LittleEndian.AppendUint64(b, pc)
	}
	if complete {
		b = append(b, 1)
	}
	b = append(b, 0xff) // separates native from Python frames
	for _, c := range py {
		b = binary.LittleEndian.AppendUint64(b, c)
	}
	for _, l := range lasti {
		b = binary.LittleEndian.AppendUint32(b, l)
	}
	b = binary.LittleEndian.AppendUint32(b, entry)
	for _, f := range js {
		b = binary.LittleEndian.AppendUint64(b, f)
	}
	return string(b)
}

// pyEval is the C function that runs Python frames. From CPython 3.11 on
// one call of it runs a frame and every Python frame that frame calls
// directly; a frame marked entry is where it was called from C. In 3.10
// every frame is its own call, and every frame an entry.
const pyEval = "_PyEval_EvalFrameDefault"

// mergePython puts Python frames (innermost first) where the interpreter
// ran them: each run of Python frames up to an entry frame replaces one
// _PyEval_EvalFrameDefault frame of the native stack, innermost first.
// Frames left over, when the native stack ended early, go at its end.
func mergePython(native, py []model.Frame, entry uint32) []model.Frame {
	out := make([]model.Frame, 0, len(native)+len(py))
	next := 0 // first Python frame not yet placed
	for _, f := range native {
		if f.Function != pyEval || next >= len(py) {
			out = append(out, f)
			continue
		}
		for next < len(py) {
			out = append(out, py[next])
			next++
			if entry&(1<<(next-1)) != 0 {
				break
			}
		}
	}
	if next < len(py) {
		at := len(out)
		if at > 0 && out[at-1].Kind == model.FrameTruncated {
			at-- // keep the truncation mark last
		}
		out = slices.Insert(out, at, py[next:]...)
	}
	return out
}
