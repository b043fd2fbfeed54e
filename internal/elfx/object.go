package elfx

import (
	"debug/elf"

	"github.com/snagtrace/snag/internal/procfs"
)

// Object is one parsed ELF file with the consumer's data T.
type Object[T any] struct {
	Path    string // the path the process mapped it from
	BuildID string // hex, "" when the file has none
	Data    T

	loads   []segment
	aliases []statKey // stat identities that lead to this object, for eviction
}

type segment struct{ off, filesz, vaddr uint64 }

func segments(f *elf.File) []segment {
	var out []segment
	for _, p := range f.Progs {
		if p.Type == elf.PT_LOAD {
			out = append(out, segment{off: p.Off, filesz: p.Filesz, vaddr: p.Vaddr})
		}
	}
	return out
}

// Vaddr translates addr, mapped by m, into the ELF virtual address that
// symbol tables and CFI use. It goes through the file offset so that it is
// right for executables, PIE and shared objects alike.
func (o *Object[T]) Vaddr(m procfs.Mapping, addr uint64) (uint64, bool) {
	if addr < m.Start || addr >= m.End {
		return 0, false
	}
	off := addr - m.Start + m.Offset
	for _, s := range o.loads {
		if off >= s.off && off < s.off+s.filesz {
			return off - s.off + s.vaddr, true
		}
	}
	return 0, false
}

// Addr is the inverse of Vaddr: where ELF address v lives in m.
func (o *Object[T]) Addr(m procfs.Mapping, v uint64) (uint64, bool) {
	for _, s := range o.loads {
		if v >= s.vaddr && v < s.vaddr+s.filesz {
			off := v - s.vaddr + s.off
			if off >= m.Offset && off-m.Offset < m.End-m.Start {
				return m.Start + off - m.Offset, true
			}
		}
	}
	return 0, false
}
