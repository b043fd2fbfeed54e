package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

func TestNotesReachEveryReport(t *testing.T) {
	tr := &model.Trace{Source: "ebpf", Notes: []string{"no symbols for /usr/bin/python3.11 of pid 7: not a regular file (a FIFO)"}}
	a := &model.Analysis{}
	var table bytes.Buffer
	if err := Table(&table, tr, a, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(table.String(), "a FIFO") {
		t.Errorf("table lacks the note:\n%s", table.String())
	}
	var doc struct{ Notes []string }
	var js bytes.Buffer
	if err := JSON(&js, tr, a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil || len(doc.Notes) != 1 {
		t.Errorf("json notes %v (%v)", doc.Notes, err)
	}
}
