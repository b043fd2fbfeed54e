package elfx

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/snagtrace/snag/internal/procfs"
	"github.com/snagtrace/snag/internal/safefile"
)

// ErrNoMapping means no mapping of the process covers an address.
var ErrNoMapping = errors.New("address in no mapping")

// ErrNoFile means the mapping is not backed by a file (anonymous memory,
// [stack], [vdso], …).
var ErrNoFile = errors.New("mapping has no file")

// Parser extracts what a consumer needs from an ELF file. It returns the
// data and its approximate size in bytes, which counts against the cache
// budget. The file is closed after Parser returns, so T must not keep
// readers into it.
type Parser[T any] func(f *elf.File) (data T, size int64, err error)

// Resolver maps process addresses to parsed ELF objects. Objects are cached
// by build ID, else by (dev, inode, size, mtime), in an LRU bounded by bytes.
// It is not safe for concurrent use.
type Resolver[T any] struct {
	fs      procfs.FS
	parse   Parser[T]
	objects *LRU[string, *Object[T]]
	alias   map[statKey]string // stat identity → objects key
	spaces  map[int]*space

	// Parsed counts the files parsed so far (cache misses).
	Parsed int
	// OnError, when set, hears once per process and mapping why a file
	// could not be opened or parsed (not mappings without a file).
	OnError func(pid int, m procfs.Mapping, err error)
}

type space struct {
	maps []procfs.Mapping // ascending Start, as /proc/PID/maps lists them
	keys []string         // objects key per mapping once resolved
	errs []error          // sticky per-mapping failure (open or parse)
	read time.Time        // when maps was read
}

// MissRefreshInterval bounds how often a miss re-reads a process's maps.
// Some addresses miss for good (a garbage return address at the end of an
// unwind, a JIT region): without a bound every stack would re-read and
// re-parse /proc/PID/maps. A library dlopen()ed since the last read is
// found within this interval: short, for an interpreter loads its C
// modules (asyncio's task step) just before the calls that block in them;
// a missing address then re-reads one small file at most ten times a
// second.
var MissRefreshInterval = 100 * time.Millisecond

type statKey struct {
	dev, ino     uint64
	size, mtimeN int64
}

func (k statKey) String() string {
	return fmt.Sprintf("s:%x:%d:%d:%d", k.dev, k.ino, k.size, k.mtimeN)
}

// NewResolver returns a resolver reading fs whose object cache holds up to
// budget bytes of parsed data.
func NewResolver[T any](fs procfs.FS, budget int64, parse Parser[T]) *Resolver[T] {
	r := &Resolver[T]{fs: fs, parse: parse, alias: make(map[statKey]string), spaces: make(map[int]*space)}
	r.objects = NewLRU[string, *Object[T]](budget, func(_ string, o *Object[T]) {
		for _, a := range o.aliases {
			delete(r.alias, a)
		}
	})
	return r
}

// Refresh re-reads the mappings of pid, e.g. after an address missed
// because the process dlopen()ed a library.
func (r *Resolver[T]) Refresh(pid int) error {
	maps, err := r.fs.Maps(pid)
	if err != nil {
		return err
	}
	sort.Slice(maps, func(i, j int) bool { return maps[i].Start < maps[j].Start })
	r.spaces[pid] = &space{maps: maps, keys: make([]string, len(maps)), errs: make([]error, len(maps)), read: time.Now()}
	return nil
}

// RefreshAfterMiss re-reads pid's maps after an address missed, unless they
// were read less than MissRefreshInterval ago. It reports whether it did.
func (r *Resolver[T]) RefreshAfterMiss(pid int) bool {
	if sp, ok := r.spaces[pid]; ok && time.Since(sp.read) < MissRefreshInterval {
		return false
	}
	return r.Refresh(pid) == nil
}

// Forget drops what is known about pid's address space.
func (r *Resolver[T]) Forget(pid int) { delete(r.spaces, pid) }

// Mapping returns the mapping of pid covering addr, reading the maps the
// first time pid is seen. It does not refresh on a miss; see Refresh.
func (r *Resolver[T]) Mapping(pid int, addr uint64) (procfs.Mapping, int, error) {
	sp, ok := r.spaces[pid]
	if !ok {
		if err := r.Refresh(pid); err != nil {
			return procfs.Mapping{}, -1, err
		}
		sp = r.spaces[pid]
	}
	i := sort.Search(len(sp.maps), func(i int) bool { return sp.maps[i].End > addr })
	if i == len(sp.maps) || addr < sp.maps[i].Start {
		return procfs.Mapping{}, -1, ErrNoMapping
	}
	return sp.maps[i], i, nil
}

// Lookup returns the mapping of pid covering addr and the parsed object
// behind it. The mapping is returned even when the object cannot be had
// (err is then ErrNoFile or an open/parse error).
func (r *Resolver[T]) Lookup(pid int, addr uint64) (procfs.Mapping, *Object[T], error) {
	m, i, err := r.Mapping(pid, addr)
	if err != nil {
		return m, nil, err
	}
	sp := r.spaces[pid]
	if sp.errs[i] != nil {
		return m, nil, sp.errs[i]
	}
	if k := sp.keys[i]; k != "" {
		if o, ok := r.objects.Get(k); ok {
			return m, o, nil
		}
	}
	o, key, err := r.load(pid, m)
	if err != nil {
		sp.errs[i] = err
		if r.OnError != nil && !errors.Is(err, ErrNoFile) {
			r.OnError(pid, m, err)
		}
		return m, nil, err
	}
	sp.keys[i] = key
	return m, o, nil
}

func (r *Resolver[T]) load(pid int, m procfs.Mapping) (*Object[T], string, error) {
	if m.Path == "" || strings.HasPrefix(m.Path, "[") {
		return nil, "", ErrNoFile
	}
	f, err := OpenMapping(r.fs, pid, m)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	sk, err := fileStatKey(f)
	if err != nil {
		return nil, "", err
	}
	if k, ok := r.alias[sk]; ok {
		if o, ok := r.objects.Get(k); ok {
			return o, k, nil
		}
	}
	ef, err := Open(f)
	if err != nil {
		return nil, "", fmt.Errorf("read elf %s: %w", m.Path, err)
	}
	id := BuildID(ef)
	key := sk.String()
	if id != "" {
		key = "b:" + id
		if o, ok := r.objects.Get(key); ok {
			o.aliases = append(o.aliases, sk)
			r.alias[sk] = key
			return o, key, nil
		}
	}
	data, size, err := r.parse(ef)
	if err != nil {
		return nil, "", fmt.Errorf("parse %s: %w", m.Path, err)
	}
	r.Parsed++
	o := &Object[T]{Path: strings.TrimSuffix(m.Path, " (deleted)"), BuildID: id, Data: data, loads: segments(ef), aliases: []statKey{sk}}
	r.objects.Add(key, o, size+256)
	r.alias[sk] = key
	return o, key, nil
}

// ErrReplaced means the file at a mapping's path is not the file mapped
// (dev and inode differ from the maps line): it was replaced since, or the
// process put something else there to be read in its place.
var ErrReplaced = errors.New("not the file the process mapped")

// OpenMapping opens the file behind m as pid sees it: its path resolved
// inside /proc/PID/root (so containers resolve their own paths, and no
// symlink leads out of the process's root), and only when it is the very
// file mapped (dev and inode of the maps line). Otherwise, and when the
// path was deleted, it opens /proc/PID/map_files/START-END, the kernel's
// own link to the mapped file (which needs CAP_SYS_ADMIN). Either way the
// file must be regular and of bounded size (see safefile), and the open
// cannot hang.
func OpenMapping(fs procfs.FS, pid int, m procfs.Mapping) (*os.File, error) {
	p := strconv.Itoa(pid)
	var first error
	if !strings.HasSuffix(m.Path, " (deleted)") {
		f, err := safefile.InRoot(filepath.Join(fs.Root, p, "root"), m.Path, safefile.Options{})
		err = pathless(err)
		if err == nil {
			if err = sameFile(f, m); err == nil {
				return f, nil
			}
			f.Close()
		}
		if errors.Is(err, safefile.ErrTimeout) {
			// Whatever stalls the lookup may stall the next one too.
			return nil, fmt.Errorf("open %s of pid %d: %w", m.Path, pid, err)
		}
		first = err
	}
	mf := filepath.Join(fs.Root, p, "map_files", fmt.Sprintf("%x-%x", m.Start, m.End))
	f, err := safefile.Link(mf, safefile.Options{})
	if err != nil {
		err = pathless(err)
		if first != nil && !errors.Is(first, os.ErrNotExist) {
			err = first // what went wrong with the path says more
		}
		return nil, fmt.Errorf("open %s of pid %d: %w", m.Path, pid, err)
	}
	return f, nil
}

// pathless drops the path of an *os.PathError: the caller names the
// mapping's path itself.
func pathless(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// sameFile checks f against the maps line's dev and inode. A line with no
// inode (a test's fake /proc) is not checked.
func sameFile(f *os.File, m procfs.Mapping) error {
	if m.Inode == 0 {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	var major, minor uint32
	if _, err := fmt.Sscanf(m.Dev, "%x:%x", &major, &minor); err != nil {
		return fmt.Errorf("maps line device %q: %w", m.Dev, err)
	}
	if st.Ino != m.Inode || unix.Major(st.Dev) != major || unix.Minor(st.Dev) != minor {
		return fmt.Errorf("%w: the path leads to inode %d on %02x:%02x, the mapping is inode %d on %s", ErrReplaced,
			st.Ino, unix.Major(st.Dev), unix.Minor(st.Dev), m.Inode, m.Dev)
	}
	return nil
}

func fileStatKey(f *os.File) (statKey, error) {
	fi, err := f.Stat()
	if err != nil {
		return statKey{}, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	k := statKey{size: fi.Size(), mtimeN: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.dev, k.ino = uint64(st.Dev), st.Ino
	}
	return k, nil
}
