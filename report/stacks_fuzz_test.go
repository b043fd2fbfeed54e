package report

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"

	"github.com/snagtrace/snag/internal/model"
)

// FuzzStackRenderers feeds arbitrary symbol, module, thread and syscall
// names through all three stack renderers: folded lines must keep one stack
// per line with the right number of frames, the SVG must stay well-formed
// XML, and the profile must parse back with the same total.
func FuzzStackRenderers(f *testing.F) {
	f.Add("pvio_socket_wait_io_or_timeout", "libmariadb.so.3", "python3", "poll", int64(25e6), false)
	f.Add("a;b\nc", "x;y.so", "worker;1", "read\n", int64(1), false)
	f.Add("", "", "", "", int64(0), true)
	f.Add("tcp_recvmsg", "", "<&>\"'", "futex", int64(-5), true)
	f.Add("\x00\x01\xff\xfe", "]]>", "\u2028", "\r\t", int64(1<<62), false)
	f.Fuzz(func(t *testing.T, fn, module, thread, syscall string, dur int64, kernel bool) {
		frame := model.Frame{Addr: 0x1000, Function: fn, Module: module, Path: "/lib/" + module}
		if kernel {
			frame.Kind = model.FrameKernel
		}
		tr := &model.Trace{
			Target:  model.Target{PID: 10, Comm: thread, Cmdline: []string{thread}},
			Threads: []model.Thread{{PID: 10, TID: 11, Name: thread}},
			Events: []model.Event{
				{Kind: model.EvSyscall, PID: 10, TID: 11, Syscall: syscall, Duration: time.Duration(dur),
					Stack: []model.Frame{frame, libcFrame("main", 0x2000)}},
				{Kind: model.EvSyscall, PID: 10, TID: 12, Syscall: "read", Duration: time.Millisecond},
			},
		}

		var folded bytes.Buffer
		if err := Folded(&folded, tr, nil); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(folded.String(), "\n"), "\n")
		if len(lines) != 2 {
			t.Fatalf("%d folded lines, want 2:\n%s", len(lines), folded.String())
		}
		frames := map[int]bool{}
		for _, line := range lines {
			sp := strings.LastIndexByte(line, ' ')
			if sp < 0 {
				t.Fatalf("folded line %q has no value", line)
			}
			frames[strings.Count(line[:sp], ";")+1] = true
		}
		// process;thread;main;frame;syscall and process;thread;read.
		if !frames[5] || !frames[3] {
			t.Fatalf("folded frame counts %v:\n%s", frames, folded.String())
		}

		var svg bytes.Buffer
		if err := FlameSVG(&svg, tr, nil); err != nil {
			t.Fatal(err)
		}
		parseFlame(t, svg.Bytes())

		var pb bytes.Buffer
		if err := Pprof(&pb, tr, nil); err != nil {
			t.Fatal(err)
		}
		p, err := profile.Parse(&pb)
		if err != nil {
			t.Fatalf("parse profile: %v", err)
		}
		var total int64
		for _, s := range p.Sample {
			total += s.Value[0]
		}
		if want := max(dur, 0) + int64(time.Millisecond); total != want {
			t.Fatalf("profile total %d, want %d", total, want)
		}
	})
}
