// Package otlpprof turns snag's pprof profiles into OTLP profiles and pushes
// them to an OpenTelemetry Collector over OTLP/HTTP.
//
// The OTLP profiles format is still in development; this package follows
// go.opentelemetry.io/collector/pdata/pprofile v0.165.0 (development version
// 1 of the wire format) and go.mod pins it exactly.
package otlpprof

import (
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/snagtrace/snag/internal/model"
)

// Resource says what a profile describes: the traced process and where it
// runs. Empty fields are left out of the resource attributes.
type Resource struct {
	ServiceName string // service.name; unknown_service:COMM when empty, as OpenTelemetry SDKs do
	HostName    string // host.name
	PID         int    // process.pid; 0 when unknown
	Comm        string // process.executable.name
	Executable  string // process.executable.path
	ContainerID string // container.id
	PodUID      string // k8s.pod.uid
}

// WindowResource describes what a trace (or a window of one) covers: this
// host, and what its processes have in common: the process itself when
// there is one, else the command, executable, container and pod they
// share. Each sample names its own process anyway (process.pid).
func WindowResource(t *model.Trace) Resource {
	r := Resource{}
	r.HostName, _ = os.Hostname()
	procs := t.Processes
	if len(procs) == 0 {
		return r
	}
	first := procs[0]
	if len(procs) == 1 {
		r.PID = first.PID
	}
	r.Comm, r.Executable, r.ContainerID, r.PodUID = first.Comm, first.Exe, first.Container, first.Pod
	for _, p := range procs[1:] {
		if p.Comm != r.Comm {
			r.Comm = ""
		}
		if p.Exe != r.Executable {
			r.Executable = ""
		}
		if p.Container != r.ContainerID {
			r.ContainerID = ""
		}
		if p.Pod != r.PodUID {
			r.PodUID = ""
		}
	}
	return r
}

// Attribute keys from the OpenTelemetry semantic conventions.
const (
	attrServiceName    = "service.name"
	attrHostName       = "host.name"
	attrPID            = "process.pid"
	attrExecutableName = "process.executable.name"
	attrExecutablePath = "process.executable.path"
	attrContainerID    = "container.id"
	attrPodUID         = "k8s.pod.uid"
	// attrBuildID carries a mapping's GNU build ID, which OTLP has no field for.
	attrBuildID = "process.executable.build_id.gnu"
	// attrComment carries the pprof comments (the trace's source, its
	// threshold and its dropped events), which OTLP has no field for.
	attrComment = "pprof.profile.comment"
)

// labelKeys renames the pprof labels of report's profiles that OpenTelemetry's
// semantic conventions name, so that backends group by them; the other
// labels (syscall, peer, role) keep their names.
var labelKeys = map[string]string{
	"pid":     "process.pid",
	"tid":     "thread.id",
	"thread":  "thread.name",
	"process": attrExecutableName,
}

func attributeKey(label string) string {
	if k, ok := labelKeys[label]; ok {
		return k
	}
	return label
}

// scopeName names the instrumentation scope of every exported profile.
const scopeName = "github.com/snagtrace/snag"

func (r Resource) putAttributes(m pcommon.Map) {
	service := r.ServiceName
	if service == "" {
		service = "unknown_service"
		if r.Comm != "" {
			service += ":" + r.Comm
		}
	}
	for _, kv := range []struct{ k, v string }{
		{attrServiceName, service},
		{attrHostName, r.HostName},
		{attrExecutableName, r.Comm},
		{attrExecutablePath, r.Executable},
		{attrContainerID, r.ContainerID},
		{attrPodUID, r.PodUID},
	} {
		if kv.v != "" {
			m.PutStr(kv.k, kv.v)
		}
	}
	if r.PID > 0 {
		m.PutInt(attrPID, int64(r.PID))
	}
}

// Convert turns p into OTLP profiles under one resource. OTLP gives each
// profile a single sample type, so a pprof profile with n sample types becomes
// n profiles that share one dictionary, the default sample type first. A
// sample whose value is 0 for a sample type is left out of that profile.
// Labels become sample attributes (numeric labels keep their unit; see
// labelKeys for their names), and the pprof comments a profile attribute.
func Convert(p *profile.Profile, res Resource) (pprofile.Profiles, error) {
	out := pprofile.NewProfiles()
	if p == nil {
		return out, errors.New("convert pprof profile: no profile")
	}
	if err := p.CheckValid(); err != nil {
		return out, fmt.Errorf("convert pprof profile: %w", err)
	}
	d := newDictionary(out.Dictionary())

	rp := out.ResourceProfiles().AppendEmpty()
	res.putAttributes(rp.Resource().Attributes())
	sp := rp.ScopeProfiles().AppendEmpty()
	sp.Scope().SetName(scopeName)

	stacks := make([]int32, len(p.Sample))
	attrs := make([][]int32, len(p.Sample))
	for i, s := range p.Sample {
		stacks[i] = d.stack(s.Location)
		attrs[i] = d.sampleAttributes(s)
	}
	var profileAttrs []int32
	if len(p.Comments) > 0 {
		v := pcommon.NewValueSlice()
		for _, c := range p.Comments {
			v.Slice().AppendEmpty().SetStr(c)
		}
		profileAttrs = append(profileAttrs, d.attribute(attrComment, v, ""))
	}

	for _, ti := range sampleTypeOrder(p) {
		op := sp.Profiles().AppendEmpty()
		id, err := newProfileID()
		if err != nil {
			return out, err
		}
		op.SetProfileID(id)
		st := p.SampleType[ti]
		op.SampleType().SetTypeStrindex(d.str(st.Type))
		op.SampleType().SetUnitStrindex(d.str(st.Unit))
		if p.PeriodType != nil {
			op.PeriodType().SetTypeStrindex(d.str(p.PeriodType.Type))
			op.PeriodType().SetUnitStrindex(d.str(p.PeriodType.Unit))
		}
		op.SetPeriod(p.Period)
		op.SetTime(pcommon.Timestamp(max(p.TimeNanos, 0)))
		op.SetDurationNano(uint64(max(p.DurationNanos, 0)))
		op.AttributeIndices().FromRaw(profileAttrs)

		for i, s := range p.Sample {
			if s.Value[ti] == 0 {
				continue
			}
			os := op.Samples().AppendEmpty()
			os.SetStackIndex(stacks[i])
			os.Values().Append(s.Value[ti])
			os.AttributeIndices().FromRaw(attrs[i])
		}
	}
	return out, nil
}

// sampleTypeOrder lists the indexes of p's sample types, the default first.
func sampleTypeOrder(p *profile.Profile) []int {
	def := 0
	for i, st := range p.SampleType {
		if st.Type == p.DefaultSampleType {
			def = i
			break
		}
	}
	order := []int{def}
	for i := range p.SampleType {
		if i != def {
			order = append(order, i)
		}
	}
	return order
}

func newProfileID() (pprofile.ProfileID, error) {
	var id pprofile.ProfileID
	if _, err := rand.Read(id[:]); err != nil {
		return id, fmt.Errorf("profile id: %w", err)
	}
	return id, nil
}

// dictionary fills the tables every profile of a request refers to by index.
// Index 0 of every table holds the zero value, as the format requires, so an
// unset reference points at nothing. Lookups go through maps: the pprofile
// Set* helpers scan the whole table on every insert.
type dictionary struct {
	d         pprofile.ProfilesDictionary
	strings   map[string]int32
	mappings  map[uint64]int32 // by pprof mapping ID
	functions map[uint64]int32 // by pprof function ID
	locations map[uint64]int32 // by pprof location ID
	stacks    map[string]int32 // by the location indexes, leaf first
	attrs     map[string]int32 // by key, unit and value
}

func newDictionary(d pprofile.ProfilesDictionary) *dictionary {
	d.StringTable().Append("")
	d.MappingTable().AppendEmpty()
	d.FunctionTable().AppendEmpty()
	d.LocationTable().AppendEmpty()
	d.StackTable().AppendEmpty()
	d.AttributeTable().AppendEmpty()
	d.LinkTable().AppendEmpty()
	return &dictionary{
		d:         d,
		strings:   map[string]int32{"": 0},
		mappings:  map[uint64]int32{},
		functions: map[uint64]int32{},
		locations: map[uint64]int32{},
		stacks:    map[string]int32{},
		attrs:     map[string]int32{},
	}
}

func (d *dictionary) str(s string) int32 {
	if i, ok := d.strings[s]; ok {
		return i
	}
	i := int32(d.d.StringTable().Len())
	d.d.StringTable().Append(s)
	d.strings[s] = i
	return i
}

// attribute returns the index of the attribute key=v with unit.
func (d *dictionary) attribute(key string, v pcommon.Value, unit string) int32 {
	k := key + "\x00" + unit + "\x00" + v.Type().String() + "\x00" + v.AsString()
	if i, ok := d.attrs[k]; ok {
		return i
	}
	i := int32(d.d.AttributeTable().Len())
	a := d.d.AttributeTable().AppendEmpty()
	a.SetKeyStrindex(d.str(key))
	a.SetUnitStrindex(d.str(unit))
	v.CopyTo(a.Value())
	d.attrs[k] = i
	return i
}

func (d *dictionary) sampleAttributes(s *profile.Sample) []int32 {
	var idx []int32
	for _, k := range slices.Sorted(maps.Keys(s.Label)) {
		for _, v := range s.Label[k] {
			idx = append(idx, d.attribute(attributeKey(k), pcommon.NewValueStr(v), ""))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(s.NumLabel)) {
		units := s.NumUnit[k]
		for j, v := range s.NumLabel[k] {
			var unit string
			if j < len(units) {
				unit = units[j]
			}
			idx = append(idx, d.attribute(attributeKey(k), pcommon.NewValueInt(v), unit))
		}
	}
	return idx
}

func (d *dictionary) mapping(m *profile.Mapping) int32 {
	if m == nil {
		return 0
	}
	if i, ok := d.mappings[m.ID]; ok {
		return i
	}
	i := int32(d.d.MappingTable().Len())
	om := d.d.MappingTable().AppendEmpty()
	om.SetMemoryStart(m.Start)
	om.SetMemoryLimit(m.Limit)
	om.SetFileOffset(m.Offset)
	om.SetFilenameStrindex(d.str(m.File))
	if m.BuildID != "" {
		om.AttributeIndices().Append(d.attribute(attrBuildID, pcommon.NewValueStr(m.BuildID), ""))
	}
	d.mappings[m.ID] = i
	return i
}

func (d *dictionary) function(f *profile.Function) int32 {
	if f == nil {
		return 0
	}
	if i, ok := d.functions[f.ID]; ok {
		return i
	}
	i := int32(d.d.FunctionTable().Len())
	of := d.d.FunctionTable().AppendEmpty()
	of.SetNameStrindex(d.str(f.Name))
	of.SetSystemNameStrindex(d.str(f.SystemName))
	of.SetFilenameStrindex(d.str(f.Filename))
	of.SetStartLine(f.StartLine)
	d.functions[f.ID] = i
	return i
}

func (d *dictionary) location(l *profile.Location) int32 {
	if i, ok := d.locations[l.ID]; ok {
		return i
	}
	mi := d.mapping(l.Mapping)
	i := int32(d.d.LocationTable().Len())
	ol := d.d.LocationTable().AppendEmpty()
	ol.SetMappingIndex(mi)
	ol.SetAddress(l.Address)
	// Both formats list inlined functions first and their caller last.
	for _, ln := range l.Line {
		fi := d.function(ln.Function)
		oln := ol.Lines().AppendEmpty()
		oln.SetFunctionIndex(fi)
		oln.SetLine(ln.Line)
		oln.SetColumn(ln.Column)
	}
	d.locations[l.ID] = i
	return i
}

// stack returns the index of the stack of locs; both formats put the leaf first.
func (d *dictionary) stack(locs []*profile.Location) int32 {
	idx := make([]int32, len(locs))
	var key []byte
	for j, l := range locs {
		idx[j] = d.location(l)
		key = strconv.AppendInt(key, int64(idx[j]), 10)
		key = append(key, ',')
	}
	if i, ok := d.stacks[string(key)]; ok {
		return i
	}
	i := int32(d.d.StackTable().Len())
	d.d.StackTable().AppendEmpty().LocationIndices().FromRaw(idx)
	d.stacks[string(key)] = i
	return i
}
