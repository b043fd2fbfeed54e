package recording

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

func FuzzRead(f *testing.F) {
	full := encode(f, richTrace())
	f.Add(full)
	f.Add(encode(f, &model.Trace{}))
	data, flushed, _ := flushedRecording(f, 5)
	f.Add(data)
	f.Add(data[:flushed])
	f.Add(data[:flushed+7])
	f.Add(full[:len(full)/2])
	f.Add(full[:headerSize])
	f.Add(append(bytes.Clone(full), "trailing garbage"...))
	f.Add([]byte(Magic))
	f.Add([]byte{})

	f.Fuzz(func(t *testing.T, data []byte) {
		tr, st, err := Read(bytes.NewReader(data))
		if err != nil {
			if tr != nil || st != nil {
				t.Fatalf("error %v with a result", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("multi-line error %q", err)
			}
			return
		}
		if st.Events != uint64(len(tr.Events)) {
			t.Fatalf("stats.Events = %d, trace holds %d", st.Events, len(tr.Events))
		}
		if st.Truncated == (st.Reason == "") || strings.Contains(st.Reason, "\n") {
			t.Fatalf("truncated %v with reason %q", st.Truncated, st.Reason)
		}
		// Whatever was read must survive writing and reading again.
		var buf bytes.Buffer
		if err := Write(&buf, tr); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		again, st2, err := Read(&buf)
		if err != nil {
			t.Fatalf("reread: %v", err)
		}
		if st2.Truncated {
			t.Fatalf("reread truncated: %s", st2.Reason)
		}
		if !reflect.DeepEqual(again.Events, tr.Events) {
			t.Fatalf("events change over a rewrite")
		}
		if !reflect.DeepEqual(again.Syscalls, tr.Syscalls) || !reflect.DeepEqual(again.Sockets, tr.Sockets) {
			t.Fatalf("aggregates change over a rewrite")
		}
	})
}
