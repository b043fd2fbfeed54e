package tracer

import (
	"github.com/snagtrace/snag/bpf"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/procfs"
)

// stackResolver turns the registers and stack bytes of a slow event into
// symbolized frames.
type stackResolver struct {
	proc procfs.FS
}

func newStackResolver(p procfs.FS) *stackResolver { return &stackResolver{proc: p} }

func (r *stackResolver) resolve(pid int, rec *bpf.Record) []model.Frame {
	frames := make([]model.Frame, 0, len(rec.FPStack))
	for _, pc := range rec.FPStack {
		frames = append(frames, model.Frame{Addr: pc})
	}
	return frames
}

func (r *stackResolver) forget(pid int) {}
