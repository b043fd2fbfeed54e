// Package symbolize turns user-space addresses of a process into frames:
// the mapped object (module, path, build ID) and the function from its ELF
// symbol table (.symtab, else .dynsym).
package symbolize

import (
	"debug/elf"
	"errors"
	"path/filepath"
	"sort"
	"strings"

	"github.com/ianlancetaylor/demangle"

	"github.com/snagtrace/snag/internal/elfx"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
)

// cacheBudget bounds the symbol tables kept in memory. libc's .dynsym is
// about 3,000 functions (~150 KiB parsed); a large C++ or Go binary's
// .symtab can reach tens of MiB.
const cacheBudget = 128 << 20

// Symbolizer symbolizes addresses of traced processes. It is safe for use by
// one goroutine.
type Symbolizer struct {
	res *elfx.Resolver[*symtab]
}

// New returns a symbolizer reading processes through fs.
func New(fs procfs.FS) *Symbolizer {
	return &Symbolizer{res: elfx.NewResolver(fs, cacheBudget, parseSymbols)}
}

// OnError has fn hear, once per process and mapping, why a mapped file
// could not be read.
func (s *Symbolizer) OnError(fn func(pid int, m procfs.Mapping, err error)) { s.res.OnError = fn }

// Forget drops per-process state when a process exits.
func (s *Symbolizer) Forget(pid int) { s.res.Forget(pid) }

// Frames symbolizes user addresses of pid, leaf first. Addresses after the
// first are return addresses, so addr-1 is looked up for them: a call that
// ends a function returns to the start of the next one. Frames are never
// dropped: with no symbol a frame is "module+0xoffset" (Function "", Offset
// the ELF virtual address, as addr2line takes it), and an address in no
// mapping is kept with Module "".
func (s *Symbolizer) Frames(pid int, pcs []uint64) []model.Frame {
	out := make([]model.Frame, len(pcs))
	refreshed := false
	for i, pc := range pcs {
		lookup := pc
		if i > 0 && pc > 0 {
			lookup = pc - 1
		}
		m, o, err := s.res.Lookup(pid, lookup)
		if errors.Is(err, elfx.ErrNoMapping) && !refreshed {
			// The process may have mapped a library since we read its maps.
			refreshed = true
			if s.res.RefreshAfterMiss(pid) {
				m, o, err = s.res.Lookup(pid, lookup)
			}
		}
		out[i] = frame(pc, lookup, m, o, err)
	}
	return out
}

func frame(pc, lookup uint64, m procfs.Mapping, o *elfx.Object[*symtab], err error) model.Frame {
	f := model.Frame{Addr: pc, Kind: model.FrameNative}
	if m.End == 0 {
		return f // in no mapping, or the maps could not be read
	}
	path := strings.TrimSuffix(m.Path, " (deleted)")
	if strings.HasPrefix(path, "[") {
		f.Module = path // [vdso], [heap], …
	} else if path != "" {
		f.Path, f.Module = path, filepath.Base(path)
	}
	if err != nil || o == nil {
		// No usable file: the offset into the mapped file is what is known.
		f.Offset = pc - m.Start + m.Offset
		return f
	}
	f.BuildID = o.BuildID
	v, ok := o.Vaddr(m, pc)
	vl, okl := o.Vaddr(m, lookup)
	if !ok || !okl {
		f.Offset = pc - m.Start + m.Offset
		return f
	}
	if sym, ok := o.Data.find(vl); ok {
		f.Function = readable(sym.name)
		f.Offset = v - sym.start
		return f
	}
	f.Offset = v
	return f
}

// symtab is a sorted function symbol table.
type symtab struct {
	syms []symbol
	from string // ".symtab" or ".dynsym"
}

type symbol struct {
	start, end uint64
	name       string
}

// find returns the function containing ELF address v.
func (t *symtab) find(v uint64) (symbol, bool) {
	i := sort.Search(len(t.syms), func(i int) bool { return t.syms[i].start > v }) - 1
	if i < 0 || v >= t.syms[i].end {
		return symbol{}, false
	}
	return t.syms[i], true
}

// parseSymbols reads .symtab, else .dynsym (a stripped file, or a .symtab
// over elfx.MaxSymtab). A file with neither yields an empty table, so its
// frames are module+offset; one whose tables are both unreadable is an
// error the trace notes.
func parseSymbols(f *elf.File) (*symtab, int64, error) {
	t := &symtab{from: ".symtab"}
	syms, serr := elfx.Symbols(f)
	t.syms = functions(syms)
	if len(t.syms) == 0 {
		var derr error
		syms, derr = elfx.DynamicSymbols(f)
		t.syms, t.from = functions(syms), ".dynsym"
		if len(t.syms) == 0 && errors.Is(serr, elfx.ErrTooLarge) {
			return nil, 0, serr
		}
		if len(t.syms) == 0 && errors.Is(derr, elfx.ErrTooLarge) {
			return nil, 0, derr
		}
	}
	var size int64
	for _, s := range t.syms {
		size += int64(len(s.name)) + 40
	}
	return t, size, nil
}

// functions keeps defined function symbols, sorted, one per start address,
// with sizeless symbols extended to the next symbol.
func functions(syms []elf.Symbol) []symbol {
	type cand struct {
		symbol
		sized, global bool
	}
	var cs []cand
	for _, s := range syms {
		typ := elf.ST_TYPE(s.Info)
		if (typ != elf.STT_FUNC && typ != elf.STT_GNU_IFUNC) || s.Section == elf.SHN_UNDEF || s.Value == 0 || s.Name == "" {
			continue
		}
		cs = append(cs, cand{
			symbol: symbol{start: s.Value, end: s.Value + s.Size, name: s.Name},
			sized:  s.Size > 0,
			global: elf.ST_BIND(s.Info) != elf.STB_LOCAL,
		})
	}
	// At one address prefer a sized symbol, then a global one (an exported
	// name over a local alias), then the shorter name (poll over __poll).
	sort.SliceStable(cs, func(i, j int) bool {
		a, b := cs[i], cs[j]
		if a.start != b.start {
			return a.start < b.start
		}
		if a.sized != b.sized {
			return a.sized
		}
		if a.global != b.global {
			return a.global
		}
		return len(a.name) < len(b.name)
	})
	out := make([]symbol, 0, len(cs))
	for _, c := range cs {
		if len(out) > 0 && out[len(out)-1].start == c.start {
			continue
		}
		out = append(out, c.symbol)
	}
	for i := range out {
		if out[i].end == out[i].start {
			if i+1 < len(out) {
				out[i].end = out[i+1].start
			} else {
				out[i].end = out[i].start + 1
			}
		}
	}
	return out
}

// readable demangles C++ names (greenlet, libstdc++ users) without their
// parameter and template lists, which would drown the function's name.
func readable(name string) string {
	if !strings.HasPrefix(name, "_Z") {
		return name
	}
	return demangle.Filter(name, demangle.NoParams, demangle.NoTemplateParams)
}
