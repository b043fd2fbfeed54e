package tracer

import (
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

func names(fs []model.Frame) string {
	var s []string
	for _, f := range fs {
		if f.Kind == model.FrameTruncated {
			s = append(s, "[truncated]")
		} else {
			s = append(s, f.Function)
		}
	}
	return strings.Join(s, ",")
}

func frames(spec string) []model.Frame {
	var out []model.Frame
	for _, n := range strings.Split(spec, ",") {
		switch {
		case n == "[truncated]":
			out = append(out, model.Frame{Kind: model.FrameTruncated})
		case strings.HasPrefix(n, "py:"):
			out = append(out, model.Frame{Function: strings.TrimPrefix(n, "py:"), Kind: model.FrameInterpreter})
		default:
			out = append(out, model.Frame{Function: n})
		}
	}
	return out
}

func TestMergePython(t *testing.T) {
	for _, tc := range []struct {
		name   string
		native string
		py     string
		entry  uint32
		want   string
	}{
		{
			// One eval call ran query, execute and app (app entered from C).
			name:   "one eval frame runs inlined python calls",
			native: "poll,mysql_query,_PyEval_EvalFrameDefault,PyObject_Call,main",
			py:     "py:query,py:execute,py:app", entry: 0b100,
			want: "poll,mysql_query,query,execute,app,PyObject_Call,main",
		},
		{
			name:   "each entry frame closes one eval frame",
			native: "poll,_PyEval_EvalFrameDefault,call_callbacks,_PyEval_EvalFrameDefault,main",
			py:     "py:inner,py:outer_cb,py:loop", entry: 0b101,
			want: "poll,inner,call_callbacks,outer_cb,loop,main",
		},
		{
			name:   "frames left over go last, before the truncation mark",
			native: "poll,_PyEval_EvalFrameDefault,[truncated]",
			py:     "py:a,py:b,py:c", entry: 0b001,
			want: "poll,a,b,c,[truncated]",
		},
		{
			name:   "no eval frame found: python frames after the native ones",
			native: "poll,mysql_query",
			py:     "py:a", entry: 0b1,
			want: "poll,mysql_query,a",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := names(mergePython(frames(tc.native), frames(tc.py), tc.entry))
			if got != tc.want {
				t.Errorf("merged %s\nwant   %s", got, tc.want)
			}
		})
	}
}
