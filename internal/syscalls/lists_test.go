package syscalls

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Names that are also plain words or the names of categories and event
// kinds ("futex" time, a "connect" event): a literal of one is no list.
var plainWords = map[string]bool{
	"read": true, "write": true, "open": true, "close": true, "creat": true, "connect": true,
	"accept": true, "bind": true, "listen": true, "socket": true, "pipe": true, "sync": true,
	"time": true, "pause": true, "fork": true, "clone": true, "futex": true, "dup": true,
	"select": true, "poll": true, "uname": true,
}

// allowed are the single mentions that are about one call's own
// arguments, not a class: file (from the module root) → names.
var allowed = map[string][]string{
	"analyzer/roles.go":            {"accept4", "epoll_pwait"},                          // accept4's SOCK_NONBLOCK flag; libuv's own wait
	"internal/model/model.go":      {"sendto"},                                          // an event kind's name
	"internal/stracelog/parser.go": {"accept4", "fcntl", "ioctl", "epoll_ctl", "pipe2"}, // the fd table it keeps
}

// TestNoPrivateLists fails when a package outside this one spells syscall
// names the tables here classify: it should ask ClassOf, ArgsOf, FDArg,
// PollSet or Multiplexer, or the lists drift apart again (they once
// disagreed about _newselect).
func TestNoPrivateLists(t *testing.T) {
	known := map[string]bool{}
	for _, m := range []map[string]bool{keys(classes), keys(args), keys(fdArgs)} {
		for name := range m {
			if !plainWords[name] {
				known[name] = true
			}
		}
	}
	root := filepath.Join("..", "..")
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel == "internal/syscalls" || rel == "examples" || rel == "internal/bench" || rel == "internal/e2e" || rel == "internal/testutil" || strings.HasPrefix(d.Name(), ".") && rel != "." || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || !known[s] || slices.Contains(allowed[rel], s) {
				return true
			}
			t.Errorf("%s: syscall name %q: ask internal/syscalls (ClassOf, ArgsOf, FDArg) instead of keeping a list", fset.Position(lit.Pos()), s)
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func keys[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}
