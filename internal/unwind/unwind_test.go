package unwind

import (
	"debug/elf"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/snagtrace/snag/internal/elfx"
	"github.com/snagtrace/snag/internal/symbolize"
)

var record = flag.Bool("record", false, "re-record the testdata/snap snapshots with gcc and gdb")

// fixtures are the recorded stops: how the fixture was built and where gdb
// stopped it.
var fixtures = []struct {
	name   string
	cflags []string
	stop   string
}{
	// No frame pointers, CFI only: what Debian's libraries look like.
	{"omitfp-c", []string{"-O1", "-g0", "-fomit-frame-pointer", "-fasynchronous-unwind-tables", "-fno-optimize-sibling-calls", "-no-pie"}, "break c"},
	// Frame pointers and CFI.
	{"fp-c", []string{"-O1", "-g0", "-fno-omit-frame-pointer", "-fasynchronous-unwind-tables", "-fno-optimize-sibling-calls", "-no-pie"}, "break c"},
	// Frame pointers and no CFI for the fixture's code: the fallback.
	{"fp-nocfi-c", []string{"-O1", "-g0", "-fno-omit-frame-pointer", "-fno-asynchronous-unwind-tables", "-fno-unwind-tables", "-fno-optimize-sibling-calls", "-no-pie"}, "break c"},
	// Inside libc's poll, right after the syscall instruction.
	{"omitfp-poll", []string{"-O1", "-g0", "-fomit-frame-pointer", "-fasynchronous-unwind-tables", "-fno-optimize-sibling-calls", "-no-pie"}, "catch syscall poll ppoll"},
}

func TestRecord(t *testing.T) {
	if !*record {
		t.Skip("run with -record to re-record the snapshots")
	}
	for _, fx := range fixtures {
		dir := filepath.Join("testdata", "snap", fx.name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		abs, _ := filepath.Abs(dir)
		s := capture(t, abs, fx.cflags, fx.stop)
		os.Remove(filepath.Join(abs, "script.gdb"))
		t.Logf("%s: %d stack bytes, bt %v", fx.name, len(s.Stack), s.Backtrace)
	}
}

// hostFileMatches reports whether the host's file at path has buildID, so
// that frames in host libraries can be checked too.
func hostFileMatches(path, buildID string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	return elfx.BuildID(f) == buildID
}

func TestUnwindRecorded(t *testing.T) {
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "snap", fx.name)
			s := loadSnapshot(t, dir)
			fs := procRoot(t, s, filepath.Join(dir, "fixture"))
			u := New(fs, "amd64")
			pcs, complete := u.Unwind(1, Regs{PC: s.PC, SP: s.SP, FP: s.FP}, s.Stack)
			frames := symbolize.New(fs).Frames(1, pcs)
			var names []string
			for _, f := range frames {
				names = append(names, f.Function)
			}
			t.Logf("unwound %v complete=%v; gdb %v", frames, complete, s.Backtrace)
			if got, want := fixtureFrames(names), fixtureFrames(s.Backtrace); !slices.Equal(got, want) || len(want) != 4 {
				t.Fatalf("fixture frames %v, gdb says %v", got, want)
			}
			if pcs[0] != s.PC {
				t.Errorf("first pc %#x, want regs.PC %#x", pcs[0], s.PC)
			}
			libc, libcID := "", ""
			for _, f := range frames {
				if f.Module == "libc.so.6" {
					libc, libcID = f.Path, f.BuildID
				}
			}
			if fx.stop != "break c" && frames[0].Module != "libc.so.6" {
				t.Errorf("leaf frame %v, want libc's poll", frames[0])
			}
			// With the same libc as at recording time the unwind must reach
			// _start like gdb did.
			if libc != "" && hostFileMatches(libc, libcID) {
				if !complete || len(pcs) != len(s.Backtrace) {
					t.Errorf("got %d frames complete=%v, gdb has %d", len(pcs), complete, len(s.Backtrace))
				}
			}
		})
	}
}

// TestUnwindLiveLibc records a fresh stop inside this host's libc poll and
// unwinds it through libc's .eh_frame (libc has no frame pointers).
func TestUnwindLiveLibc(t *testing.T) {
	dir := t.TempDir()
	fx := fixtures[3]
	s := capture(t, dir, fx.cflags, fx.stop)
	fs := procRoot(t, s, filepath.Join(dir, "fixture"))
	u := New(fs, "amd64")
	pcs, complete := u.Unwind(1, Regs{PC: s.PC, SP: s.SP, FP: s.FP}, s.Stack)
	frames := symbolize.New(fs).Frames(1, pcs)
	t.Logf("unwound %v complete=%v; gdb %v", frames, complete, s.Backtrace)
	var names []string
	for _, f := range frames {
		names = append(names, f.Function)
	}
	if got, want := fixtureFrames(names), []string{"c", "b", "a", "main"}; !slices.Equal(got, want) {
		t.Fatalf("fixture frames %v, want %v", got, want)
	}
	if frames[0].Module != "libc.so.6" || frames[0].Function == "" {
		t.Errorf("leaf %v, want a libc function", frames[0])
	}
	if !complete || len(pcs) != len(s.Backtrace) {
		t.Errorf("got %d frames complete=%v, gdb has %d: %v", len(pcs), complete, len(s.Backtrace), s.Backtrace)
	}
}

// BenchmarkUnwind measures one unwind of the recorded stop inside libc's
// poll (8 frames through libc's and the fixture's .eh_frame) over a 16 KiB
// copy, with warm caches: the per-event cost paid in user space.
func BenchmarkUnwind(b *testing.B) {
	dir := filepath.Join("testdata", "snap", "omitfp-poll")
	s := loadSnapshot(b, dir)
	fs := procRoot(b, s, filepath.Join(dir, "fixture"))
	u := New(fs, "amd64")
	stack := make([]byte, stackCopySize)
	copy(stack, s.Stack)
	regs := Regs{PC: s.PC, SP: s.SP, FP: s.FP}
	pcs, _ := u.Unwind(1, regs, stack)
	b.ReportMetric(float64(len(pcs)), "frames")
	b.ResetTimer()
	for b.Loop() {
		u.Unwind(1, regs, stack)
	}
}

// UnwindFP gives each frame the frame pointer its code ran with: in code
// keeping frame pointers, each one holds the next one's.
func TestUnwindFPChain(t *testing.T) {
	for _, name := range []string{"fp-c", "fp-nocfi-c"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join("testdata", "snap", name)
			s := loadSnapshot(t, dir)
			fs := procRoot(t, s, filepath.Join(dir, "fixture"))
			u := New(fs, "amd64")
			pcs, fps, _ := u.UnwindFP(1, Regs{PC: s.PC, SP: s.SP, FP: s.FP}, s.Stack)
			if len(fps) != len(pcs) || fps[0] != s.FP {
				t.Fatalf("%d fps for %d pcs, first %#x; want one each, the first regs.FP %#x", len(fps), len(pcs), fps[0], s.FP)
			}
			frames := symbolize.New(fs).Frames(1, pcs)
			mem := stackCopy{base: s.SP, b: s.Stack}
			checked := 0
			for i := 0; i+1 < len(frames); i++ {
				if !slices.Contains([]string{"a", "b", "c"}, frames[i].Function) {
					continue
				}
				saved, ok := mem.read(fps[i])
				if !ok || saved != fps[i+1] {
					t.Errorf("frame %d (%s): fp %#x holds %#x, the next frame's fp is %#x", i, frames[i].Function, fps[i], saved, fps[i+1])
				}
				checked++
			}
			if checked != 3 {
				t.Errorf("checked %d of the fixture's frames a, b, c", checked)
			}
		})
	}
}
