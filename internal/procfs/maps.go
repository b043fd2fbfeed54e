// Package procfs reads what snag needs from /proc. Every reader takes the
// proc root as a parameter so tests run over a testdata tree without root.
package procfs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// FS is a proc filesystem rooted at Root ("/proc" on a live system).
type FS struct{ Root string }

// Default is the host's /proc.
var Default = FS{Root: "/proc"}

func (fs FS) path(pid int, elem ...string) string {
	return filepath.Join(append([]string{fs.Root, strconv.Itoa(pid)}, elem...)...)
}

// Mapping is one line of /proc/PID/maps.
type Mapping struct {
	Start, End uint64
	Perms      string // "r-xp"
	Offset     uint64 // file offset of Start
	Dev        string // "fd:01"
	Inode      uint64
	Path       string // "" for anonymous mappings; "[stack]", "[vdso]", … for special ones
}

// Exec reports whether the mapping is executable.
func (m Mapping) Exec() bool { return len(m.Perms) > 2 && m.Perms[2] == 'x' }

// Maps reads /proc/PID/maps.
func (fs FS) Maps(pid int) ([]Mapping, error) {
	f, err := os.Open(fs.path(pid, "maps"))
	if err != nil {
		return nil, fmt.Errorf("read maps of pid %d: %w", pid, err)
	}
	defer f.Close()
	return ParseMaps(f)
}

// ParseMaps parses the format of /proc/PID/maps.
func ParseMaps(r io.Reader) ([]Mapping, error) {
	var out []Mapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		m, err := parseMapsLine(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("maps line %d: %w", line, err)
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func parseMapsLine(s string) (Mapping, error) {
	// 7f2c1c000000-7f2c1c021000 r-xp 00000000 fd:01 1234   /usr/lib/libc.so.6
	var m Mapping
	fields := strings.Fields(s)
	if len(fields) < 5 {
		return m, fmt.Errorf("want at least 5 fields, got %d in %q", len(fields), s)
	}
	lo, hi, ok := strings.Cut(fields[0], "-")
	if !ok {
		return m, fmt.Errorf("bad address range %q", fields[0])
	}
	var err error
	if m.Start, err = strconv.ParseUint(lo, 16, 64); err != nil {
		return m, fmt.Errorf("bad start address: %w", err)
	}
	if m.End, err = strconv.ParseUint(hi, 16, 64); err != nil {
		return m, fmt.Errorf("bad end address: %w", err)
	}
	m.Perms = fields[1]
	if m.Offset, err = strconv.ParseUint(fields[2], 16, 64); err != nil {
		return m, fmt.Errorf("bad offset: %w", err)
	}
	m.Dev = fields[3]
	if m.Inode, err = strconv.ParseUint(fields[4], 10, 64); err != nil {
		return m, fmt.Errorf("bad inode: %w", err)
	}
	// The path is the rest of the line after the inode; it may contain spaces.
	m.Path = afterFields(s, 5)
	return m, nil
}

// afterFields returns what follows the first n blank-separated fields of s,
// without the blanks before it: the free-form last column of a /proc table
// (a path that may contain spaces).
func afterFields(s string, n int) string {
	for range n {
		s = strings.TrimLeft(s, " \t")
		end := strings.IndexAny(s, " \t")
		if end < 0 {
			return ""
		}
		s = s[end:]
	}
	return strings.TrimLeft(s, " \t")
}
