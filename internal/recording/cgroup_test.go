package recording

import (
	"bytes"
	"testing"

	"github.com/snagtrace/snag/internal/cgroup"
)

// A process's cgroup round-trips with what it names, read from the path
// again; a recording from before the cgroups reads without them.
func TestRecordingCgroups(t *testing.T) {
	const path = "/system.slice/docker-3f1c9e6a7b2d4c8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f.scope"
	tr := costTrace()
	if len(tr.Processes) < 2 {
		t.Fatal("the test trace needs two processes")
	}
	cgroup.SetProcess(&tr.Processes[0], path)
	if tr.Processes[0].Container == "" {
		t.Fatal("the test path names no container")
	}
	got, _, err := Read(bytes.NewReader(writeWith(t, tr, appendedAll)))
	if err != nil {
		t.Fatal(err)
	}
	if g, w := got.Processes[0], tr.Processes[0]; g.Cgroup != w.Cgroup || g.Container != w.Container || g.Pod != w.Pod || g.Unit != w.Unit {
		t.Errorf("process %+v, want the cgroup of %+v", g, w)
	}
	if g := got.Processes[1]; g.Cgroup != "" || g.Container != "" {
		t.Errorf("process without a cgroup read as %+v", g)
	}
	got, _, err = Read(bytes.NewReader(writeWith(t, tr, appendedBacklog)))
	if err != nil || got.Processes[0].Cgroup != "" || got.Drops != tr.Drops {
		t.Errorf("a recording from before the cgroups: %+v, drops %+v, %v", got.Processes[0], got.Drops, err)
	}
}
