package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// Calls counted but not timed show a count and no times, in the table and
// in JSON, with a word on why.
func TestUntimedSyscalls(t *testing.T) {
	tr, a := geventFixture()
	tr.Syscalls = []model.SyscallStat{
		{PID: 4242, TID: 4242, Name: "getppid", Count: 123456, Untimed: true},
		{PID: 4242, TID: 4242, Name: "read", Count: 10, Total: 5 * time.Millisecond, Max: time.Millisecond},
	}
	var buf bytes.Buffer
	if err := Table(&buf, tr, a, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	var row string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "getppid") {
			row = line
		}
	}
	if !strings.Contains(row, "123,456") || strings.Count(row, untimedMark) != 6 {
		t.Errorf("getppid row %q: want its count and %s in the six time columns", row, untimedMark)
	}
	if !strings.Contains(out, "not timed") {
		t.Error("table does not say what the mark means")
	}

	buf.Reset()
	if err := JSON(&buf, tr, a); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Syscalls []struct {
			Name    string `json:"name"`
			Untimed bool   `json:"untimed"`
		} `json:"syscalls"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, s := range doc.Syscalls {
		got[s.Name] = s.Untimed
	}
	if !got["getppid"] || got["read"] {
		t.Errorf("json untimed by name %v, want getppid only", got)
	}
}
