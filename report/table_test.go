package report

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

func TestTableGolden(t *testing.T) {
	gevent, analysis := geventFixture()
	tests := []struct {
		name   string
		trace  *model.Trace
		an     *model.Analysis
		opt    TableOptions
		golden string
	}{
		{"gevent", gevent, analysis, TableOptions{}, "table_gevent.txt"},
		{"gevent top 2", gevent, analysis, TableOptions{Top: 2}, "table_gevent_top2.txt"},
		{"gevent color", gevent, analysis, TableOptions{Color: true}, "table_gevent_color.txt"},
		{"bare", bareFixture(), nil, TableOptions{}, "table_bare.txt"},
		{"empty", &model.Trace{}, &model.Analysis{}, TableOptions{}, "table_empty.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Table(&buf, tt.trace, tt.an, tt.opt); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, tt.golden, buf.Bytes())
		})
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestTableErrors(t *testing.T) {
	tr, a := geventFixture()
	if err := Table(failingWriter{}, tr, a, TableOptions{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("failing writer: err = %v, want the write error", err)
	}
	if err := Table(&bytes.Buffer{}, nil, a, TableOptions{}); err == nil {
		t.Error("nil trace: no error")
	}
}

func TestTableContent(t *testing.T) {
	tr, a := geventFixture()
	var buf bytes.Buffer
	if err := Table(&buf, tr, a, TableOptions{Top: 1}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	// Sections in the documented order, findings first.
	order := []string{"Findings", "Blocked at attach", "Syscalls", "Threads", "Connections"}
	last := -1
	for _, s := range order {
		i := strings.Index(out, "\n"+s+"\n")
		if i < 0 {
			t.Fatalf("section %q missing", s)
		}
		if i < last {
			t.Errorf("section %q out of order", s)
		}
		last = i
	}
	for _, want := range []string{
		"dropped    0\n",
		"… 4 more syscalls",
		"… 1 more connections",
		"10.0.0.5:3306", // the unexpected peer sorts first and survives the cut
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(out, "127.0.0.1:3306  mysql") {
		t.Error("expected connection shown despite Top 1")
	}
	if strings.Contains(out, "\x1b[") {
		t.Error("colour codes without Color")
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("trailing blank in %q", line)
		}
	}
}
