package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/google/pprof/profile"

	"github.com/snagtrace/snag/internal/model"
)

// Pprof writes the blocked time as a gzipped pprof profile with two sample
// types, blocked/nanoseconds (the default) and syscalls/count. Each sample's
// leaf is a synthetic "syscall:NAME" function above the captured user stack.
// Threads and processes travel as labels (thread, tid, pid, process) rather
// than frames; `pprof -tagroot thread` turns them back into roots.
func Pprof(w io.Writer, t *model.Trace, a *model.Analysis) error {
	p, err := Profile(t, a)
	if err != nil {
		return err
	}
	if err := p.Write(w); err != nil {
		return fmt.Errorf("write pprof profile: %w", err)
	}
	return nil
}

// Profile is the profile Pprof writes, checked, for outputs that convert
// or serve it rather than write it (the agent's HTTP endpoint, OTLP).
func Profile(t *model.Trace, a *model.Analysis) (*profile.Profile, error) {
	p := buildPprof(t, a)
	if err := p.CheckValid(); err != nil {
		return nil, fmt.Errorf("build pprof profile: %w", err)
	}
	return p, nil
}

// syscallFunctionPrefix marks the synthetic leaf function, so the syscall
// never merges with a libc wrapper of the same name.
const syscallFunctionPrefix = "syscall:"

// kernelMapping is the file pprof and perf use for kernel text.
const kernelMapping = "[kernel.kallsyms]"

func buildPprof(t *model.Trace, a *model.Analysis) *profile.Profile {
	p := &profile.Profile{
		SampleType: []*profile.ValueType{
			{Type: "blocked", Unit: "nanoseconds"},
			{Type: "syscalls", Unit: "count"},
		},
		DefaultSampleType: "blocked",
		PeriodType:        &profile.ValueType{Type: "blocked", Unit: "nanoseconds"},
		Period:            1,
	}
	if t == nil {
		return p
	}
	if !t.Start.IsZero() {
		p.TimeNanos = t.Start.UnixNano()
	}
	p.DurationNanos = t.Duration.Nanoseconds()
	p.Comments = pprofComments(t)

	b := profileBuilder{
		p:         p,
		mappings:  map[string]*profile.Mapping{},
		functions: map[functionKey]*profile.Function{},
		locations: map[locationKey]*profile.Location{},
		samples:   map[string]*profile.Sample{},
	}
	for _, s := range blockedSamples(t, a) {
		b.add(s)
	}
	return p
}

func pprofComments(t *model.Trace) []string {
	c := []string{"snag: time blocked in syscalls"}
	if t.Threshold > 0 {
		c[0] += " of at least " + t.Threshold.String()
	}
	if t.Source != "" {
		c = append(c, "source: "+t.Source)
	}
	if n := t.Drops.Total(); n > 0 {
		c = append(c, "dropped events: "+strconv.FormatUint(n, 10))
	}
	return c
}

type functionKey struct{ name, file string }

type locationKey struct {
	mapping string
	addr    uint64
	line    int64 // an interpreter frame's source line; 0 for native code
	fn      functionKey
}

// profileBuilder deduplicates mappings, functions and locations, and merges
// samples that share a stack and labels.
type profileBuilder struct {
	p         *profile.Profile
	mappings  map[string]*profile.Mapping
	functions map[functionKey]*profile.Function
	locations map[locationKey]*profile.Location
	samples   map[string]*profile.Sample
}

func (b *profileBuilder) add(s blockedSample) {
	ev := s.ev
	locs := make([]*profile.Location, 0, len(ev.Stack)+1)
	nkernel := 0
	for nkernel < len(ev.Stack) && ev.Stack[nkernel].Kind == model.FrameKernel {
		nkernel++
	}
	// Leaf first, with the syscall where user code enters the kernel.
	for _, f := range ev.Stack[:nkernel] {
		locs = append(locs, b.frameLocation(f))
	}
	locs = append(locs, b.location(locationKey{fn: functionKey{name: syscallFunctionPrefix + stackSyscallName(ev)}}, nil))
	for _, f := range ev.Stack[nkernel:] {
		locs = append(locs, b.frameLocation(f))
	}

	labels := map[string][]string{
		"thread":  {s.tname},
		"process": {s.process},
		"syscall": {stackSyscallName(ev)},
	}
	if !ev.Peer.IsZero() {
		labels["peer"] = []string{ev.Peer.String()}
	}
	if s.role != "" {
		labels["role"] = []string{string(s.role)}
	}
	numLabels := map[string][]int64{"tid": {int64(ev.TID)}, "pid": {int64(ev.PID)}}

	key := pprofSampleKey(locs, labels, numLabels)
	if smp, ok := b.samples[key]; ok {
		smp.Value[0] += max(ev.Duration.Nanoseconds(), 0)
		smp.Value[1]++
		return
	}
	smp := &profile.Sample{
		Location: locs,
		Value:    []int64{max(ev.Duration.Nanoseconds(), 0), 1},
		Label:    labels,
		NumLabel: numLabels,
	}
	b.samples[key] = smp
	b.p.Sample = append(b.p.Sample, smp)
}

func (b *profileBuilder) frameLocation(f model.Frame) *profile.Location {
	name := f.Function
	if name == "" || f.Kind == model.FrameTruncated {
		// Unsymbolized frames keep a readable name rather than a bare address.
		name = f.String()
	}
	var file string
	if f.Kind == model.FrameInterpreter {
		file = f.Path // the script, for Python frames
	}
	m := b.mapping(f)
	return b.location(locationKey{mapping: m.File, addr: f.Addr, line: int64(f.Line), fn: functionKey{name, file}}, m)
}

func (b *profileBuilder) location(k locationKey, m *profile.Mapping) *profile.Location {
	if l, ok := b.locations[k]; ok {
		return l
	}
	fn, ok := b.functions[k.fn]
	if !ok {
		fn = &profile.Function{
			ID:         uint64(len(b.p.Function) + 1),
			Name:       k.fn.name,
			SystemName: k.fn.name,
			Filename:   k.fn.file,
		}
		b.functions[k.fn] = fn
		b.p.Function = append(b.p.Function, fn)
	}
	l := &profile.Location{
		ID:      uint64(len(b.p.Location) + 1),
		Mapping: m,
		Address: k.addr,
		Line:    []profile.Line{{Function: fn, Line: k.line}},
	}
	b.locations[k] = l
	b.p.Location = append(b.p.Location, l)
	return l
}

// mapping returns the one Mapping of a frame's module, keyed by its path.
func (b *profileBuilder) mapping(f model.Frame) *profile.Mapping {
	file := f.Path
	if file == "" {
		file = f.Module
	}
	if f.Kind == model.FrameKernel && file == "" {
		file = kernelMapping
	}
	if file == "" {
		file = "[unknown]"
	}
	if m, ok := b.mappings[file]; ok {
		if m.BuildID == "" {
			m.BuildID = f.BuildID
		}
		return m
	}
	m := &profile.Mapping{
		ID:      uint64(len(b.p.Mapping) + 1),
		File:    file,
		BuildID: f.BuildID,
		// Frames arrive symbolized; this keeps pprof from trying again
		// against binaries that may not exist where it runs.
		HasFunctions: true,
	}
	b.mappings[file] = m
	b.p.Mapping = append(b.p.Mapping, m)
	return m
}

func pprofSampleKey(locs []*profile.Location, labels map[string][]string, num map[string][]int64) string {
	var k strings.Builder
	for _, l := range locs {
		k.WriteString(strconv.FormatUint(l.ID, 10))
		k.WriteByte(',')
	}
	// Fixed label order keeps the key independent of map iteration.
	for _, name := range []string{"thread", "process", "syscall", "peer", "role"} {
		k.WriteString("\x01" + strings.Join(labels[name], "\x00"))
	}
	for _, name := range []string{"tid", "pid"} {
		for _, v := range num[name] {
			k.WriteString("\x01" + strconv.FormatInt(v, 10))
		}
	}
	return k.String()
}
