package stracelog

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary input through the parser: it must never panic,
// must account for every line, and must keep no more events than lines.
func FuzzParse(f *testing.F) {
	paths, _ := filepath.Glob("testdata/*.log")
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		// Seed with small windows of real lines, so mutations stay near
		// the formats that matter.
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		var window []byte
		n := 0
		for sc.Scan() {
			window = append(window, sc.Bytes()...)
			window = append(window, '\n')
			if n++; n%8 == 0 {
				f.Add(window)
				window = nil
			}
		}
	}
	f.Add([]byte("1 10:00:00.000000 poll([{fd=5<TCP:[10.0.0.1:4040->10.0.0.5:3306]>, events=POLLIN}], 1, 1000 <unfinished ...>\n2 10:00:00.1 <... poll resumed>) = 1 <0.5>\n > /lib/libc.so.6(poll+0x4f) [0xfc26f]\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		tr, st, err := Parse(bytes.NewReader(in), Options{})
		if st == nil {
			t.Fatal("nil stats")
		}
		if st.Parsed+st.Unparsed != st.Lines {
			t.Fatalf("lines %d != parsed %d + unparsed %d", st.Lines, st.Parsed, st.Unparsed)
		}
		if err != nil {
			return
		}
		if uint64(len(tr.Events)) > 2*st.Lines {
			t.Fatalf("%d events from %d lines", len(tr.Events), st.Lines)
		}
		var calls uint64
		for _, s := range tr.Syscalls {
			if s.Hist.Count() != s.Count {
				t.Fatalf("%s: histogram %d != count %d", s.Name, s.Hist.Count(), s.Count)
			}
			calls += s.Count
		}
		if calls > st.Lines {
			t.Fatalf("%d calls from %d lines", calls, st.Lines)
		}
	})
}
