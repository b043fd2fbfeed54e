package elfx

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/snagtrace/snag/internal/safefile"
)

// Bounds on what snag reads of one ELF file. The file comes from a process
// that may be hostile: a header may claim a section of any size, and a
// sparse file makes any claim cheap to back with zeros.
const (
	// maxHeaderRead bounds what elf.NewFile reads: program and section
	// headers (65535 section headers are 4 MiB) and the section names,
	// which are a few hundred bytes in real files.
	maxHeaderRead = 16 << 20
	// MaxSymtab bounds a symbol table or its string table. debug/elf turns
	// each 24-byte entry into an elf.Symbol of some 80 bytes, so 32 MiB
	// costs about 150 MiB while it is parsed; the largest tables seen in
	// practice (a big Go or C++ binary) are a few MiB. Over it, .dynsym is
	// used instead.
	MaxSymtab = 32 << 20
	// MaxSection bounds any other section read whole (.eh_frame,
	// .debug_frame, notes): libc's .eh_frame is under 200 KiB.
	MaxSection = 64 << 20
	// maxFileRead bounds the bytes read of one file in all.
	maxFileRead = 256 << 20
	// readTimeout bounds the time spent reading one file. Local regular
	// files (safefile refuses FUSE) answer in milliseconds.
	readTimeout = 2 * time.Second
)

// ErrTooLarge marks a section over its bound.
var ErrTooLarge = errors.New("too large")

// Open parses the ELF headers of f, opened by OpenMapping or safefile,
// reading it within the bounds above. The returned file reads f, which
// the caller closes after it is done with the elf.File.
func Open(f *os.File) (*elf.File, error) {
	r, err := safefile.NewReader(f, maxHeaderRead, readTimeout)
	if err != nil {
		return nil, err
	}
	ef, err := elf.NewFile(r)
	if err != nil {
		return nil, err
	}
	r.SetBudget(maxFileRead)
	return ef, nil
}

// SectionData returns the bytes of section name, or nil when the file has
// no such section or it takes no file space (SHT_NOBITS).
func SectionData(f *elf.File, name string) ([]byte, *elf.Section, error) {
	s := f.Section(name)
	if s == nil || s.Type == elf.SHT_NOBITS {
		return nil, nil, nil
	}
	if s.Size > MaxSection {
		return nil, s, fmt.Errorf("section %s: %w: %d bytes, more than the %d snag reads", name, ErrTooLarge, s.Size, MaxSection)
	}
	b, err := s.Data()
	if err != nil {
		return nil, s, fmt.Errorf("read section %s: %w", name, err)
	}
	return b, s, nil
}

// Symbols returns the .symtab symbols, as f.Symbols does, after checking
// the table and its strings are within MaxSymtab.
func Symbols(f *elf.File) ([]elf.Symbol, error) {
	if err := checkTable(f, elf.SHT_SYMTAB); err != nil {
		return nil, err
	}
	return f.Symbols()
}

// DynamicSymbols returns the .dynsym symbols, as f.DynamicSymbols does,
// after checking the table and its strings are within MaxSymtab.
func DynamicSymbols(f *elf.File) ([]elf.Symbol, error) {
	if err := checkTable(f, elf.SHT_DYNSYM); err != nil {
		return nil, err
	}
	return f.DynamicSymbols()
}

func checkTable(f *elf.File, typ elf.SectionType) error {
	for _, s := range f.Sections {
		if s.Type != typ {
			continue
		}
		if s.Size > MaxSymtab {
			return fmt.Errorf("section %s: %w: %d bytes, more than the %d snag reads", s.Name, ErrTooLarge, s.Size, MaxSymtab)
		}
		if int(s.Link) < len(f.Sections) {
			if str := f.Sections[s.Link]; str.Size > MaxSymtab {
				return fmt.Errorf("section %s: %w: %d bytes, more than the %d snag reads", str.Name, ErrTooLarge, str.Size, MaxSymtab)
			}
		}
		return nil // debug/elf reads the first table of the type
	}
	return nil
}
