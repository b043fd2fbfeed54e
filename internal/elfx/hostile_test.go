package elfx

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/safefile"
	"github.com/snagtrace/snag/internal/testutil"
)

func mappingOf(t *testing.T, pid int, path string) procfs.Mapping {
	t.Helper()
	maps, err := procfs.Default.Maps(pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		if m.Path == path {
			return m
		}
	}
	t.Fatalf("pid %d has no mapping of %s: %v", pid, path, maps)
	return procfs.Mapping{}
}

// Files a hostile target can put where snag looks: each must give an
// error quickly, never a hang, a panic or a huge allocation.

type craftSec struct {
	name string
	typ  elf.SectionType
	off  uint64
	size uint64
	link uint32
	data []byte
}

// craftELF writes a minimal ELF64 whose section headers claim what secs
// say, then makes the file size bytes long (sparse beyond what was written).
func craftELF(t *testing.T, path string, secs []craftSec, size int64) {
	t.Helper()
	var names bytes.Buffer
	names.WriteByte(0)
	nameOff := make([]uint32, len(secs)+1)
	for i, s := range secs {
		nameOff[i] = uint32(names.Len())
		names.WriteString(s.name + "\x00")
	}
	nameOff[len(secs)] = uint32(names.Len())
	names.WriteString(".shstrtab\x00")
	const shstrOff = 64
	shoff := uint64(shstrOff+names.Len()+7) &^ 7
	shnum := len(secs) + 2

	le := binary.LittleEndian
	b := make([]byte, shoff+uint64(shnum)*64)
	copy(b, []byte{0x7f, 'E', 'L', 'F', 2, 1, 1})
	le.PutUint16(b[16:], uint16(elf.ET_DYN))
	le.PutUint16(b[18:], uint16(elf.EM_X86_64))
	le.PutUint32(b[20:], 1)
	le.PutUint64(b[40:], shoff)
	le.PutUint16(b[52:], 64)
	le.PutUint16(b[54:], 56)
	le.PutUint16(b[58:], 64)
	le.PutUint16(b[60:], uint16(shnum))
	le.PutUint16(b[62:], uint16(shnum-1))
	copy(b[shstrOff:], names.Bytes())
	put := func(i int, name uint32, typ elf.SectionType, off, size uint64, link uint32, entsize uint64) {
		h := b[shoff+uint64(i)*64:]
		le.PutUint32(h[0:], name)
		le.PutUint32(h[4:], uint32(typ))
		le.PutUint64(h[24:], off)
		le.PutUint64(h[32:], size)
		le.PutUint32(h[40:], link)
		le.PutUint64(h[48:], 1)
		le.PutUint64(h[56:], entsize)
	}
	for i, s := range secs {
		var ent uint64
		if s.typ == elf.SHT_SYMTAB || s.typ == elf.SHT_DYNSYM {
			ent = 24
		}
		put(i+1, nameOff[i], s.typ, s.off, s.size, s.link, ent)
	}
	put(shnum-1, nameOff[len(secs)], elf.SHT_STRTAB, shstrOff, uint64(names.Len()), 0, 0)
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	for _, s := range secs {
		if s.data != nil {
			if _, err := f.WriteAt(s.data, int64(s.off)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

func openELF(t *testing.T, path string) (*elf.File, error) {
	t.Helper()
	f, err := safefile.InRoot("/", path, safefile.Options{})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { f.Close() })
	return Open(f)
}

func TestHostileELF(t *testing.T) {
	dir := t.TempDir()
	const gib = 1 << 30

	sparse := filepath.Join(dir, "sparse-symtab.so")
	craftELF(t, sparse, []craftSec{
		{name: ".symtab", typ: elf.SHT_SYMTAB, off: 1 << 20, size: gib, link: 2},
		{name: ".strtab", typ: elf.SHT_STRTAB, off: 1<<20 + gib, size: 16, data: []byte("\x00x\x00")},
	}, 1<<20+gib+16)
	hugeStr := filepath.Join(dir, "sparse-strtab.so")
	craftELF(t, hugeStr, []craftSec{
		{name: ".dynsym", typ: elf.SHT_DYNSYM, off: 4096, size: 48, link: 2},
		{name: ".dynstr", typ: elf.SHT_STRTAB, off: 8192, size: gib},
	}, 8192+gib)
	sparseEH := filepath.Join(dir, "sparse-ehframe.so")
	craftELF(t, sparseEH, []craftSec{{name: ".eh_frame", typ: elf.SHT_PROGBITS, off: 4096, size: gib}}, 4096+gib)
	pastEOF := filepath.Join(dir, "past-eof.so")
	craftELF(t, pastEOF, []craftSec{{name: ".eh_frame", typ: elf.SHT_PROGBITS, off: 4096, size: 1 << 20}}, 8192)

	start := time.Now()
	for _, tc := range []struct {
		name string
		path string
		read func(*elf.File) error
		want error
	}{
		{"1 GiB sparse .symtab", sparse, func(f *elf.File) error { _, err := Symbols(f); return err }, ErrTooLarge},
		{"1 GiB sparse .dynstr", hugeStr, func(f *elf.File) error { _, err := DynamicSymbols(f); return err }, ErrTooLarge},
		{"1 GiB sparse .eh_frame", sparseEH, func(f *elf.File) error { _, _, err := SectionData(f, ".eh_frame"); return err }, ErrTooLarge},
		{"section past the end of the file", pastEOF, func(f *elf.File) error { _, _, err := SectionData(f, ".eh_frame"); return err }, io.ErrUnexpectedEOF},
	} {
		f, err := openELF(t, tc.path)
		if err != nil {
			t.Errorf("%s: open: %v", tc.name, err)
			continue
		}
		if err := tc.read(f); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("hostile sections took %s", d)
	}

	// A huge section-name table is the headers' business: bounded too.
	names := filepath.Join(dir, "sparse-shstrtab.so")
	craftELF(t, names, nil, 4096)
	b, _ := os.ReadFile(names)
	shoff := binary.LittleEndian.Uint64(b[40:])
	binary.LittleEndian.PutUint64(b[shoff+64+24:], 4096) // .shstrtab at 4096 …
	binary.LittleEndian.PutUint64(b[shoff+64+32:], gib)  // … 1 GiB long
	os.WriteFile(names, b, 0o644)
	os.Truncate(names, 4096+gib)
	if _, err := openELF(t, names); !errors.Is(err, safefile.ErrTooLarge) {
		t.Errorf("1 GiB .shstrtab: err %v, want ErrTooLarge", err)
	}

	// A truncated real ELF: errors, no panic.
	self, _ := os.Executable()
	whole, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{0, 10, 64, len(whole) / 3, len(whole) - 100} {
		p := filepath.Join(dir, fmt.Sprintf("cut-%d", n))
		os.WriteFile(p, whole[:n], 0o644)
		f, err := openELF(t, p)
		if err != nil {
			continue
		}
		Symbols(f)
		DynamicSymbols(f)
		SectionData(f, ".eh_frame")
		BuildID(f)
	}
}

// TestOpenMappingHostileTarget: a target hides the binary it mapped under
// a tmpfs and puts a FIFO, a symlink out to a file it cannot read, a
// device or another file at its path. snag must neither hang nor read what
// was planted: it reads the mapped file through map_files, and without
// map_files it gives an error.
func TestOpenMappingHostileTarget(t *testing.T) {
	secretDir := t.TempDir()
	secret := filepath.Join(secretDir, "secret")
	os.WriteFile(secret, []byte("\x7fELF not for the target's eyes"), 0o600)
	for _, tc := range []struct {
		name, plant string
	}{
		{"fifo", `mkfifo "$1"`},
		{"symlink out of the root", `ln -s ` + secret + ` "$1"`},
		{"dev zero", `ln -s /dev/zero "$1"`},
		{"other file", `cp /bin/sh "$1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pid, exe := testutil.HostileTarget(t, tc.plant)
			m := mappingOf(t, pid, exe)
			start := time.Now()
			f, err := OpenMapping(procfs.Default, pid, m)
			if time.Since(start) > time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			if err != nil {
				t.Fatalf("the mapped file is still there for map_files: %v", err)
			}
			var st syscall.Stat_t
			syscall.Fstat(int(f.Fd()), &st)
			f.Close()
			if st.Ino != m.Inode {
				t.Errorf("opened inode %d, the mapping's is %d", st.Ino, m.Inode)
			}

			// Where map_files cannot be had (a fake /proc whose root is
			// the target's), an error, quickly.
			fake := t.TempDir()
			pdir := filepath.Join(fake, fmt.Sprint(pid))
			os.MkdirAll(pdir, 0o755)
			os.Symlink(fmt.Sprintf("/proc/%d/root", pid), filepath.Join(pdir, "root"))
			start = time.Now()
			f, err = OpenMapping(procfs.FS{Root: fake}, pid, m)
			if time.Since(start) > time.Second {
				t.Errorf("took %s", time.Since(start))
			}
			if err == nil {
				f.Close()
				t.Fatalf("opened what the target planted")
			}
			if !errors.Is(err, safefile.ErrNotRegular) && !errors.Is(err, ErrReplaced) {
				t.Errorf("err %v, want not regular or replaced", err)
			}
			t.Logf("without map_files: %v", err)
		})
	}
}
