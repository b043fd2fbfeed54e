// Package unistd turns the kernel's UAPI syscall headers into Go tables. It
// runs the host C preprocessor over the headers, so the numbers come from
// the same macros the kernel and libc build with, arch choices included.
package unistd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"go/format"
	"io"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"text/template"
)

// Source says where one architecture's syscall numbers are defined.
type Source struct {
	Arch    string // GOARCH
	Header  string // header defining __NR_* for this arch
	Include string // include root the header's own #includes resolve against
	Package string // Debian package that ships the header, named in the output
}

// Sources are the headers the committed tables come from. The arm64 header
// only sets __ARCH_WANT_* switches and includes asm-generic/unistd.h, so it
// must be expanded by the preprocessor with the arm64 include root.
var Sources = []Source{
	{
		Arch:    "amd64",
		Header:  "/usr/include/x86_64-linux-gnu/asm/unistd_64.h",
		Include: "/usr/include",
		Package: "linux-libc-dev",
	},
	{
		Arch:    "arm64",
		Header:  "/usr/aarch64-linux-gnu/include/asm/unistd.h",
		Include: "/usr/aarch64-linux-gnu/include",
		Package: "linux-libc-dev-arm64-cross",
	},
}

// Table is one architecture's syscall numbers.
type Table struct {
	Source  Source
	Version string         // kernel headers version, "6.1.4"
	Numbers map[string]int // syscall name (without __NR_) to number
}

// Load preprocesses src's header with cpp and returns its syscall numbers.
func Load(ctx context.Context, src Source) (*Table, error) {
	defs, err := preprocess(ctx, src.Include, src.Header)
	if err != nil {
		return nil, err
	}
	nums, err := Resolve(defs)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Header, err)
	}
	vdefs, err := preprocess(ctx, src.Include, src.Include+"/linux/version.h")
	if err != nil {
		return nil, err
	}
	version, err := headersVersion(vdefs)
	if err != nil {
		return nil, fmt.Errorf("%s/linux/version.h: %w", src.Include, err)
	}
	return &Table{Source: src, Version: version, Numbers: nums}, nil
}

// preprocess returns the macros defined after expanding header. -undef keeps
// the host's own predefined macros (__x86_64__, …) out of another arch's
// expansion; -nostdinc keeps host headers out.
func preprocess(ctx context.Context, include, header string) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, "cpp", "-dM", "-undef", "-nostdinc", "-I", include, header)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("cpp %s: %w: %s", header, err, strings.TrimSpace(stderr.String()))
	}
	return ParseDefines(bytes.NewReader(out))
}

// ParseDefines reads `cpp -dM` output into macro name to replacement text.
// Function-like macros are skipped: syscall numbers never use them.
func ParseDefines(r io.Reader) (map[string]string, error) {
	defs := make(map[string]string)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "#define ")
		if !ok {
			continue
		}
		name, value, _ := strings.Cut(rest, " ")
		if name == "" || strings.Contains(name, "(") {
			continue
		}
		defs[name] = strings.TrimSpace(value)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read macro definitions: %w", err)
	}
	return defs, nil
}

// notSyscalls are __NR_ macros that mark ranges rather than name syscalls.
var notSyscalls = map[string]bool{
	"syscalls":              true,
	"arch_specific_syscall": true,
}

// Resolve evaluates every __NR_name macro in defs to a number. Values are
// decimal literals, other macros (arm64's __NR3264_fstatat) or sums of the
// two in parentheses, so that is all it evaluates.
func Resolve(defs map[string]string) (map[string]int, error) {
	nums := make(map[string]int)
	byNr := make(map[int]string)
	for macro := range defs {
		name, ok := strings.CutPrefix(macro, "__NR_")
		if !ok || notSyscalls[name] {
			continue
		}
		nr, err := eval(defs, macro, 0)
		if err != nil {
			return nil, fmt.Errorf("evaluate %s: %w", macro, err)
		}
		if nr < 0 {
			return nil, fmt.Errorf("%s is negative (%d)", macro, nr)
		}
		if other, dup := byNr[nr]; dup {
			return nil, fmt.Errorf("%s and __NR_%s share number %d", macro, other, nr)
		}
		byNr[nr] = name
		nums[name] = nr
	}
	if len(nums) == 0 {
		return nil, fmt.Errorf("no __NR_ macros found")
	}
	return nums, nil
}

const maxDepth = 16

func eval(defs map[string]string, macro string, depth int) (int, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("macro %s nests too deeply", macro)
	}
	value, ok := defs[macro]
	if !ok {
		return 0, fmt.Errorf("undefined macro %s", macro)
	}
	expr := strings.TrimSpace(value)
	for strings.HasPrefix(expr, "(") && strings.HasSuffix(expr, ")") {
		expr = strings.TrimSpace(expr[1 : len(expr)-1])
	}
	sum := 0
	for _, term := range strings.Split(expr, "+") {
		term = strings.TrimSpace(term)
		if term == "" {
			return 0, fmt.Errorf("empty term in %q", value)
		}
		if n, err := strconv.ParseInt(term, 0, 32); err == nil {
			sum += int(n)
			continue
		}
		if !isIdent(term) {
			return 0, fmt.Errorf("cannot evaluate %q", value)
		}
		n, err := eval(defs, term, depth+1)
		if err != nil {
			return 0, err
		}
		sum += n
	}
	return sum, nil
}

func isIdent(s string) bool {
	for i, c := range s {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

func headersVersion(defs map[string]string) (string, error) {
	var parts []string
	for _, m := range []string{"LINUX_VERSION_MAJOR", "LINUX_VERSION_PATCHLEVEL", "LINUX_VERSION_SUBLEVEL"} {
		v, ok := defs[m]
		if !ok {
			break
		}
		parts = append(parts, v)
	}
	if len(parts) == 3 {
		return strings.Join(parts, "."), nil
	}
	// Older headers only carry the packed code: major<<16 | minor<<8 | patch.
	code, ok := defs["LINUX_VERSION_CODE"]
	if !ok {
		return "", fmt.Errorf("no LINUX_VERSION_CODE")
	}
	n, err := strconv.ParseUint(code, 0, 32)
	if err != nil {
		return "", fmt.Errorf("bad LINUX_VERSION_CODE %q: %w", code, err)
	}
	return fmt.Sprintf("%d.%d.%d", n>>16, n>>8&0xff, n&0xff), nil
}

// FileName is the generated file for arch. It must not end in _<arch>.go,
// which would make it a build constraint: every build needs every table,
// since recordings and strace logs may come from another machine.
func FileName(arch string) string { return "zsyscalls_" + arch + "_table.go" }

type entry struct {
	Nr   int
	Name string
}

var fileTmpl = template.Must(template.New("file").Parse(`// Code generated by internal/gen; DO NOT EDIT.

// Source: {{.Source.Header}}
// Kernel headers {{.Version}} (Debian package {{.Source.Package}}), expanded with
// cpp -dM -undef -nostdinc -I {{.Source.Include}}.

package syscalls

// {{.Source.Arch}}Names maps a syscall number to its name; gaps are "".
var {{.Source.Arch}}Names = [...]string{
{{- range .Entries}}
	{{.Nr}}: "{{.Name}}",
{{- end}}
}
`))

// Render returns the gofmt'ed Go source of t's table.
func Render(t *Table) ([]byte, error) {
	entries := make([]entry, 0, len(t.Numbers))
	for name, nr := range t.Numbers {
		entries = append(entries, entry{Nr: nr, Name: name})
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Nr < entries[j].Nr })
	var buf bytes.Buffer
	err := fileTmpl.Execute(&buf, struct {
		*Table
		Entries []entry
	}{t, entries})
	if err != nil {
		return nil, fmt.Errorf("render %s table: %w", t.Source.Arch, err)
	}
	src, err := format.Source(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("gofmt %s table: %w", t.Source.Arch, err)
	}
	return src, nil
}
