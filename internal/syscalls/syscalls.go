// Package syscalls names Linux syscalls by number for amd64 and arm64 and
// sorts them into the classes the analyzer reasons about (readiness waits,
// socket reads, futexes, …).
//
// The number tables are generated from the kernel UAPI headers. Both arches
// are compiled into every build: a recording or strace log may come from a
// machine of the other arch.
package syscalls

//go:generate go run ./internal/gen -dir .

import "runtime"

var tables = map[string][]string{
	"amd64": amd64Names[:],
	"arm64": arm64Names[:],
}

// Kernel spellings of the arch names, as uname and strace logs print them.
var archAliases = map[string]string{
	"x86_64":  "amd64",
	"aarch64": "arm64",
}

var numbers = func() map[string]map[string]int {
	m := make(map[string]map[string]int, len(tables))
	for arch, names := range tables {
		byName := make(map[string]int, len(names))
		for nr, name := range names {
			if name != "" {
				byName[name] = nr
			}
		}
		m[arch] = byName
	}
	return m
}()

func canonArch(arch string) string {
	if a, ok := archAliases[arch]; ok {
		return a
	}
	return arch
}

// Name returns the name of syscall nr on arch ("amd64" or "arm64"; the
// kernel spellings "x86_64" and "aarch64" are accepted too), or "" when
// either is unknown.
func Name(arch string, nr int) string {
	names := tables[canonArch(arch)]
	if nr < 0 || nr >= len(names) {
		return ""
	}
	return names[nr]
}

// Number returns the number of the named syscall on arch.
func Number(arch, name string) (int, bool) {
	nr, ok := numbers[canonArch(arch)][name]
	return nr, ok
}

// Arches lists the architectures with a syscall table.
func Arches() []string { return []string{"amd64", "arm64"} }

// Native returns the running arch if it has a table, else "amd64".
func Native() string {
	if _, ok := tables[runtime.GOARCH]; ok {
		return runtime.GOARCH
	}
	return "amd64"
}
