package report

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "unknown"
}

// requireKeys checks that obj has each key with the given JSON type.
func requireKeys(t *testing.T, where string, obj any, keys map[string]string) {
	t.Helper()
	m, ok := obj.(map[string]any)
	if !ok {
		t.Fatalf("%s is %s, want object", where, jsonKind(obj))
	}
	for k, want := range keys {
		v, ok := m[k]
		if !ok {
			t.Errorf("%s lacks %q", where, k)
			continue
		}
		if got := jsonKind(v); got != want {
			t.Errorf("%s.%s is %s, want %s", where, k, got, want)
		}
	}
}

func decodeJSON(t *testing.T, tr *model.Trace, a *model.Analysis) map[string]any {
	t.Helper()
	var buf bytes.Buffer
	if err := JSON(&buf, tr, a); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, buf.Bytes())
	}
	return doc
}

// TestJSONSchema checks every key DESIGN.md's "The model's JSON" lists, with
// its JSON type, plus the drops breakdown.
func TestJSONSchema(t *testing.T) {
	tr, a := geventFixture()
	doc := decodeJSON(t, tr, a)
	requireKeys(t, "document", doc, map[string]string{
		"schema": "string", "target": "object", "duration_ns": "number", "dropped_events": "number",
		"drops": "object", "threads": "array", "syscalls": "array", "connections": "array",
		"findings": "array", "blocked_at_attach": "array",
	})
	if doc["schema"] != "snag/v1" {
		t.Errorf("schema = %v", doc["schema"])
	}
	requireKeys(t, "target", doc["target"], map[string]string{"pid": "number", "comm": "string", "cmdline": "array"})
	requireKeys(t, "drops", doc["drops"], map[string]string{
		"ring_buffer": "number", "aggregate_map": "number", "in_flight_map": "number", "stack_read": "number", "unparsed": "number",
	})
	sections := []struct {
		key  string
		keys map[string]string
	}{
		{"threads", map[string]string{
			"tid": "number", "pid": "number", "name": "string", "role": "string", "loop_wait": "string",
			"on_cpu_ns": "number", "blocked_ns": "number", "idle_ns": "number", "syscalls": "number",
		}},
		{"syscalls", map[string]string{
			"name": "string", "tid": "number", "pid": "number", "count": "number", "errors": "number",
			"total_ns": "number", "p50_ns": "number", "p99_ns": "number", "max_ns": "number",
		}},
		{"connections", map[string]string{
			"peer": "string", "family": "string", "service": "string", "count": "number", "tids": "array",
			"expected": "bool", "established_before_attach": "bool",
		}},
		{"findings", map[string]string{
			"kind": "string", "severity": "string", "title": "string", "tid": "number", "syscall": "string",
			"count": "number", "total_ns": "number", "p50_ns": "number", "max_ns": "number", "share": "number",
			"peer": "string", "library": "string", "stack": "array", "hint": "string", "detail": "string",
		}},
		{"blocked_at_attach", map[string]string{
			"pid": "number", "tid": "number", "syscall": "string", "fd": "number", "peer": "string", "wchan": "string", "running": "bool",
		}},
	}
	for _, s := range sections {
		arr := doc[s.key].([]any)
		if len(arr) == 0 {
			t.Errorf("%s is empty for the fixture", s.key)
		}
		for i, el := range arr {
			requireKeys(t, s.key+"["+string(rune('0'+i))+"]", el, s.keys)
		}
	}
}

// TestJSONEmptyArrays: a trace with nothing in it still has [] everywhere.
func TestJSONEmptyArrays(t *testing.T) {
	for name, a := range map[string]*model.Analysis{"nil analysis": nil, "empty analysis": {}} {
		var buf bytes.Buffer
		if err := JSON(&buf, &model.Trace{}, a); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(buf.Bytes(), []byte("null")) {
			t.Errorf("%s: output has null:\n%s", name, buf.Bytes())
		}
		doc := decodeJSON(t, &model.Trace{}, a)
		for _, k := range []string{"threads", "syscalls", "connections", "findings", "blocked_at_attach", "processes"} {
			if arr, ok := doc[k].([]any); !ok || len(arr) != 0 {
				t.Errorf("%s: %s = %v, want []", name, k, doc[k])
			}
		}
	}
}

func TestJSONValues(t *testing.T) {
	tr, a := geventFixture()
	tr.Drops = model.Drops{RingBuffer: 5, Unparsed: 2}
	var buf bytes.Buffer
	if err := JSON(&buf, tr, a); err != nil {
		t.Fatal(err)
	}
	var doc jsonDoc
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.DroppedEvents != 7 || doc.Drops.RingBuffer != 5 || doc.Drops.Unparsed != 2 {
		t.Errorf("drops = %d %+v, want 7 total", doc.DroppedEvents, doc.Drops)
	}
	if doc.DurationNS != int64(10*time.Second) {
		t.Errorf("duration_ns = %d", doc.DurationNS)
	}
	// One row per thread and syscall, by thread then total time.
	if len(doc.Syscalls) != len(tr.Syscalls) {
		t.Fatalf("%d syscall rows, want %d", len(doc.Syscalls), len(tr.Syscalls))
	}
	if s := doc.Syscalls[0]; s.TID != 4242 || s.Name != "poll" || s.Count != 1234 {
		t.Errorf("first syscall row = %+v, want poll of tid 4242", s)
	}
	var backend *jsonConnection
	for i := range doc.Connections {
		if doc.Connections[i].Peer == "10.0.0.5:3306" {
			backend = &doc.Connections[i]
		}
	}
	if backend == nil {
		t.Fatal("unexpected connection missing")
	}
	if backend.Count != 12 || backend.Expected || len(backend.TIDs) != 1 || backend.FirstSeenNS != 1_200_000_000 {
		t.Errorf("backend connection = %+v", backend)
	}
	if f := doc.Findings[0]; f.Severity != "high" || f.Library != "libmariadb.so.3" || len(f.Stack) != 10 {
		t.Errorf("first finding = %+v", f)
	}
	if doc.Threads[1].Role != "idle" || !doc.Threads[1].Started {
		t.Errorf("pool thread = %+v", doc.Threads[1])
	}
}

func TestJSONGolden(t *testing.T) {
	tr, a := geventFixture()
	var buf bytes.Buffer
	if err := JSON(&buf, tr, a); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "gevent.json", buf.Bytes())

	buf.Reset()
	if err := JSON(&buf, bareFixture(), nil); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "bare.json", buf.Bytes())
}

func TestJSONErrors(t *testing.T) {
	if err := JSON(&bytes.Buffer{}, nil, nil); err == nil {
		t.Error("nil trace: no error")
	}
	tr, a := geventFixture()
	if err := JSON(failingWriter{}, tr, a); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("failing writer: err = %v", err)
	}
}

// TestJSONProcessRuntime: a process's runtime is an object with name,
// version and loop, and absent when nothing is known.
func TestJSONProcessRuntime(t *testing.T) {
	tr := &model.Trace{Processes: []model.Process{
		{PID: 1, Runtime: model.Runtime{Name: model.RuntimeCPython, Version: "3.11.7", Loop: model.LoopGevent}},
		{PID: 2},
		{PID: 3, Runtime: model.Runtime{Name: model.RuntimeGo, Version: "go1.22.1"}},
	}}
	procs := decodeJSON(t, tr, nil)["processes"].([]any)
	if len(procs) != 3 {
		t.Fatalf("%d processes", len(procs))
	}
	requireKeys(t, "processes[0].runtime", procs[0].(map[string]any)["runtime"], map[string]string{
		"name": "string", "version": "string", "loop": "string",
	})
	rt := procs[0].(map[string]any)["runtime"].(map[string]any)
	if rt["name"] != "cpython" || rt["version"] != "3.11.7" || rt["loop"] != "gevent" {
		t.Errorf("runtime %v", rt)
	}
	if _, ok := procs[1].(map[string]any)["runtime"]; ok {
		t.Error("an unknown runtime is not omitted")
	}
	if rt := procs[2].(map[string]any)["runtime"].(map[string]any); rt["name"] != "go" || rt["loop"] != "" {
		t.Errorf("runtime %v", rt)
	}
}

// A futex row carries its operation class; other rows have no "op" key.
func TestJSONFutexOp(t *testing.T) {
	tr := bareFixture()
	tr.Syscalls = append(tr.Syscalls,
		model.SyscallStat{PID: 77, TID: 77, Nr: 202, Name: "futex", Op: "wait_bitset", Count: 4, Total: time.Second},
		model.SyscallStat{PID: 77, TID: 77, Nr: 202, Name: "futex", Op: "wait", Count: 9, Total: time.Second},
	)
	doc := decodeJSON(t, tr, nil)
	var ops []any
	for _, row := range doc["syscalls"].([]any) {
		m := row.(map[string]any)
		op, ok := m["op"]
		if (m["name"] == "futex") != ok {
			t.Errorf("syscall row %v: op present %v", m, ok)
		}
		if ok {
			ops = append(ops, op)
		}
	}
	// Equal totals: ordered by op.
	if len(ops) != 2 || ops[0] != "wait" || ops[1] != "wait_bitset" {
		t.Errorf("futex ops = %v, want [wait wait_bitset]", ops)
	}
}
