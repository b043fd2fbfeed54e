package report

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

var updateStackGolden = flag.Bool("update-stack-golden", false, "rewrite report/testdata golden files of the stack renderers")

func TestFoldedGolden(t *testing.T) {
	tr, a := stackFixture()
	var buf bytes.Buffer
	if err := Folded(&buf, tr, a); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "gevent-mysql.folded")
	if *updateStackGolden {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden file (run with -update-stack-golden to create it): %v", err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("folded output differs from %s:\n%s", golden, buf.String())
	}
}

// parseFolded reads folded lines back into stack → value.
func parseFolded(t *testing.T, out string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp <= 0 {
			t.Fatalf("line %d %q: no value", i+1, line)
		}
		v, err := strconv.ParseInt(line[sp+1:], 10, 64)
		if err != nil {
			t.Fatalf("line %d %q: %v", i+1, line, err)
		}
		if _, dup := got[line[:sp]]; dup {
			t.Fatalf("line %d: stack %q repeated", i+1, line[:sp])
		}
		got[line[:sp]] = v
	}
	return got
}

func TestFoldedTotalsPerSyscall(t *testing.T) {
	tr, a := stackFixture()
	var buf bytes.Buffer
	if err := Folded(&buf, tr, a); err != nil {
		t.Fatal(err)
	}
	stacks := parseFolded(t, buf.String())
	blocked, _ := fixtureTotals(tr)
	got := map[string]time.Duration{}
	for stack, v := range stacks {
		frames := strings.Split(stack, ";")
		if frames[0] != "python3 (4242)" {
			t.Errorf("stack %q does not start at the process", stack)
		}
		// The syscall sits where user code enters the kernel.
		sc := frames[len(frames)-1]
		for i := len(frames) - 1; i > 0 && strings.HasSuffix(frames[i], "_[k]"); i-- {
			sc = frames[i-1]
		}
		got[sc] += time.Duration(v)
	}
	for sc, want := range blocked {
		if got[sc] != want {
			t.Errorf("%s: folded %v, events %v", sc, got[sc], want)
		}
	}
	if len(got) != len(blocked) {
		t.Errorf("syscalls %v, want %v", got, blocked)
	}
	mysql := "python3 (4242);python3 (4242);__libc_start_call_main (libc.so.6);main (python3.11);PyEval_EvalCode (python3.11);" +
		"_PyEval_EvalFrameDefault (python3.11);get_user (app/views.py:42);execute (MySQLdb/cursors.py);cfunction_call (python3.11);" +
		"_mysql_ConnectionObject_query (_mysql.cpython-311-x86_64-linux-gnu.so);mthd_my_read_one_row (libmariadb.so.3);" +
		"ma_net_safe_read (libmariadb.so.3);ma_pvio_read (libmariadb.so.3);pvio_socket_read (libmariadb.so.3);" +
		"pvio_socket_wait_io_or_timeout (libmariadb.so.3);poll (libc.so.6);poll"
	if stacks[mysql] != blocked["poll"].Nanoseconds() {
		t.Errorf("mysql stack: %d, want all poll time %d", stacks[mysql], blocked["poll"].Nanoseconds())
	}
	if v, ok := stacks["python3 (4242);ThreadPoolExec (4250);futex"]; !ok || v != int64(500*time.Millisecond) {
		t.Errorf("stackless futex: %d, %v", v, ok)
	}
}

func TestFoldedIsSorted(t *testing.T) {
	tr, a := stackFixture()
	var buf bytes.Buffer
	if err := Folded(&buf, tr, a); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for i := 1; i < len(lines); i++ {
		if lines[i-1] >= lines[i] {
			t.Errorf("line %d not after line %d:\n%s\n%s", i+1, i, lines[i-1], lines[i])
		}
	}
}

func TestFoldedEmpty(t *testing.T) {
	for _, tr := range []*model.Trace{nil, {}} {
		var buf bytes.Buffer
		if err := Folded(&buf, tr, nil); err != nil || buf.Len() != 0 {
			t.Errorf("empty trace: %q, %v", buf.String(), err)
		}
	}
}

type stackFailWriter struct{}

var errStackWriterFull = errors.New("disk full")

func (stackFailWriter) Write([]byte) (int, error) { return 0, errStackWriterFull }

func TestStackRenderersReportWriteErrors(t *testing.T) {
	tr, a := stackFixture()
	for name, render := range map[string]func() error{
		"folded": func() error { return Folded(stackFailWriter{}, tr, a) },
		"pprof":  func() error { return Pprof(stackFailWriter{}, tr, a) },
		"flame":  func() error { return FlameSVG(stackFailWriter{}, tr, a) },
	} {
		if err := render(); !errors.Is(err, errStackWriterFull) {
			t.Errorf("%s: error %v, want the writer's", name, err)
		}
	}
}
