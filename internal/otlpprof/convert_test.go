package otlpprof

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pprofile"

	"github.com/snagtrace/snag/internal/model"
)

// frame is a location's function, file and line as a test reads it back.
type frame struct {
	fn, file string
	line     int64
	mapping  string
}

func (f frame) String() string { return fmt.Sprintf("%s %s:%d [%s]", f.fn, f.file, f.line, f.mapping) }

// flat is one OTLP sample read back through the dictionary: its frames leaf
// first (an inlined location gives one frame per line), its value and its
// attributes as key=value.
type flat struct {
	frames []string
	value  int64
	attrs  []string
}

// flatten resolves every sample of every profile through the dictionary,
// keyed by the profile's sample type and unit, and fails on any index out of
// range, so a table filled wrongly shows up here.
func flatten(t *testing.T, ps pprofile.Profiles) (map[string][]flat, pcommon.Map) {
	t.Helper()
	d := ps.Dictionary()
	strs := d.StringTable()
	str := func(i int32) string {
		t.Helper()
		if i < 0 || int(i) >= strs.Len() {
			t.Fatalf("string index %d out of %d", i, strs.Len())
		}
		return strs.At(int(i))
	}
	checkZero(t, d)
	if ps.ResourceProfiles().Len() != 1 || ps.ResourceProfiles().At(0).ScopeProfiles().Len() != 1 {
		t.Fatalf("want one resource with one scope")
	}
	rp := ps.ResourceProfiles().At(0)
	out := map[string][]flat{}
	profiles := rp.ScopeProfiles().At(0).Profiles()
	for pi := range profiles.Len() {
		p := profiles.At(pi)
		st := str(p.SampleType().TypeStrindex()) + "/" + str(p.SampleType().UnitStrindex())
		for si := range p.Samples().Len() {
			s := p.Samples().At(si)
			if s.Values().Len() != 1 {
				t.Fatalf("%s sample %d has %d values", st, si, s.Values().Len())
			}
			var f flat
			f.value = s.Values().At(0)
			if s.StackIndex() <= 0 || int(s.StackIndex()) >= d.StackTable().Len() {
				t.Fatalf("stack index %d out of (0, %d)", s.StackIndex(), d.StackTable().Len())
			}
			stack := d.StackTable().At(int(s.StackIndex()))
			locs, err := pprofile.FromLocationIndices(d.LocationTable(), stack)
			if err != nil {
				t.Fatal(err)
			}
			for li := range locs.Len() {
				loc := locs.At(li)
				var mapping string
				if mi := loc.MappingIndex(); mi != 0 {
					mapping = str(d.MappingTable().At(int(mi)).FilenameStrindex())
				}
				for ln := range loc.Lines().Len() {
					line := loc.Lines().At(ln)
					fn := d.FunctionTable().At(int(line.FunctionIndex()))
					f.frames = append(f.frames, frame{str(fn.NameStrindex()), str(fn.FilenameStrindex()), line.Line(), mapping}.String())
				}
			}
			attrs, err := pprofile.FromAttributeIndices(d.AttributeTable(), s, d)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range attrs.All() {
				f.attrs = append(f.attrs, k+"="+v.AsString())
			}
			slices.Sort(f.attrs)
			out[st] = append(out[st], f)
		}
	}
	return out, rp.Resource().Attributes()
}

// checkZero asserts index 0 of every table holds the zero value.
func checkZero(t *testing.T, d pprofile.ProfilesDictionary) {
	t.Helper()
	if d.StringTable().Len() == 0 || d.StringTable().At(0) != "" {
		t.Errorf("string_table[0] must be empty")
	}
	for name, ok := range map[string]bool{
		"mapping":   d.MappingTable().Len() > 0 && d.MappingTable().At(0).Equal(pprofile.NewMapping()),
		"location":  d.LocationTable().Len() > 0 && d.LocationTable().At(0).Equal(pprofile.NewLocation()),
		"function":  d.FunctionTable().Len() > 0 && d.FunctionTable().At(0).Equal(pprofile.NewFunction()),
		"stack":     d.StackTable().Len() > 0 && d.StackTable().At(0).Equal(pprofile.NewStack()),
		"attribute": d.AttributeTable().Len() > 0 && d.AttributeTable().At(0).Equal(pprofile.NewKeyValueAndUnit()),
		"link":      d.LinkTable().Len() > 0 && d.LinkTable().At(0).Equal(pprofile.NewLink()),
	} {
		if !ok {
			t.Errorf("%s_table[0] must be the zero value", name)
		}
	}
}

// blockedProfile is a profile shaped like report's: blocked nanoseconds and
// a syscall count, a synthetic syscall leaf, labels and numeric labels.
func blockedProfile() *profile.Profile {
	libc := &profile.Mapping{ID: 1, File: "/usr/lib/x86_64-linux-gnu/libc.so.6", BuildID: "c047672cae7964324658491e7dee26748ae5d2f8", HasFunctions: true}
	maria := &profile.Mapping{ID: 2, File: "/usr/lib/x86_64-linux-gnu/libmariadb.so.3", Start: 0x7f00_0000_0000, Limit: 0x7f00_0010_0000, Offset: 0x1000, HasFunctions: true}
	script := &profile.Mapping{ID: 3, File: "/srv/app.py", HasFunctions: true}
	fSys := &profile.Function{ID: 1, Name: "syscall:poll", SystemName: "syscall:poll"}
	fPoll := &profile.Function{ID: 2, Name: "poll", SystemName: "poll"}
	fRead := &profile.Function{ID: 3, Name: "pvio_socket_wait_io_or_timeout", SystemName: "pvio_socket_wait_io_or_timeout"}
	fInl := &profile.Function{ID: 4, Name: "pvio_socket_read", SystemName: "pvio_socket_read"}
	fPy := &profile.Function{ID: 5, Name: "make_app.<locals>.app", SystemName: "make_app.<locals>.app", Filename: "/srv/app.py", StartLine: 90}
	fSysR := &profile.Function{ID: 6, Name: "syscall:recvfrom", SystemName: "syscall:recvfrom"}
	lSys := &profile.Location{ID: 1, Line: []profile.Line{{Function: fSys}}}
	lPoll := &profile.Location{ID: 2, Mapping: libc, Address: 0x7f3a1c51d0e1, Line: []profile.Line{{Function: fPoll}}}
	// An inlined pair: pvio_socket_wait_io_or_timeout inlined into pvio_socket_read.
	lMaria := &profile.Location{ID: 3, Mapping: maria, Address: 0x7f00_0001_f000, Line: []profile.Line{{Function: fRead, Line: 41}, {Function: fInl, Line: 77}}}
	lPy := &profile.Location{ID: 4, Mapping: script, Line: []profile.Line{{Function: fPy, Line: 100}}}
	lSysR := &profile.Location{ID: 5, Line: []profile.Line{{Function: fSysR}}}
	return &profile.Profile{
		SampleType:        []*profile.ValueType{{Type: "blocked", Unit: "nanoseconds"}, {Type: "syscalls", Unit: "count"}},
		DefaultSampleType: "blocked",
		PeriodType:        &profile.ValueType{Type: "blocked", Unit: "nanoseconds"},
		Period:            1,
		TimeNanos:         time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC).UnixNano(),
		DurationNanos:     int64(15 * time.Second),
		Comments:          []string{"snag: time blocked in syscalls of at least 1ms", "dropped events: 3"},
		Mapping:           []*profile.Mapping{libc, maria, script},
		Function:          []*profile.Function{fSys, fPoll, fRead, fInl, fPy, fSysR},
		Location:          []*profile.Location{lSys, lPoll, lMaria, lPy, lSysR},
		Sample: []*profile.Sample{
			{
				Location: []*profile.Location{lSys, lPoll, lMaria, lPy},
				Value:    []int64{2_000_000_000, 40},
				Label:    map[string][]string{"thread": {"python3"}, "syscall": {"poll"}, "peer": {"127.0.0.1:3306"}},
				NumLabel: map[string][]int64{"tid": {4242}, "pid": {4242}},
			},
			{
				Location: []*profile.Location{lSysR, lPoll, lMaria},
				Value:    []int64{0, 3}, // calls too short to weigh anything
				Label:    map[string][]string{"thread": {"python3"}, "syscall": {"recvfrom"}},
				NumLabel: map[string][]int64{"bytes": {512}},
				NumUnit:  map[string][]string{"bytes": {"bytes"}},
			},
		},
	}
}

func TestConvert(t *testing.T) {
	pollStack := []string{
		"syscall:poll :0 []",
		"poll :0 [/usr/lib/x86_64-linux-gnu/libc.so.6]",
		"pvio_socket_wait_io_or_timeout :41 [/usr/lib/x86_64-linux-gnu/libmariadb.so.3]",
		"pvio_socket_read :77 [/usr/lib/x86_64-linux-gnu/libmariadb.so.3]",
		"make_app.<locals>.app /srv/app.py:100 [/srv/app.py]",
	}
	recvStack := []string{
		"syscall:recvfrom :0 []",
		"poll :0 [/usr/lib/x86_64-linux-gnu/libc.so.6]",
		"pvio_socket_wait_io_or_timeout :41 [/usr/lib/x86_64-linux-gnu/libmariadb.so.3]",
		"pvio_socket_read :77 [/usr/lib/x86_64-linux-gnu/libmariadb.so.3]",
	}
	pollAttrs := []string{"peer=127.0.0.1:3306", "process.pid=4242", "syscall=poll", "thread.id=4242", "thread.name=python3"}
	recvAttrs := []string{"bytes=512", "syscall=recvfrom", "thread.name=python3"}

	tests := []struct {
		name    string
		profile func() *profile.Profile
		res     Resource
		want    map[string][]flat
		order   []string // sample types in profile order
		resAttr map[string]string
	}{
		{
			name:    "two sample types, default first, zero values left out",
			profile: blockedProfile,
			res:     Resource{HostName: "web-1", PID: 4242, Comm: "python3", Executable: "/usr/bin/python3.11", ContainerID: "abc123", PodUID: "5b8c7f2e-1d3a-4e6b-9c0d-2f4a6b8c0d1e"},
			want: map[string][]flat{
				"blocked/nanoseconds": {{pollStack, 2_000_000_000, pollAttrs}},
				"syscalls/count":      {{pollStack, 40, pollAttrs}, {recvStack, 3, recvAttrs}},
			},
			order: []string{"blocked", "syscalls"},
			resAttr: map[string]string{
				"service.name": "unknown_service:python3", "host.name": "web-1", "process.pid": "4242", "process.executable.name": "python3",
				"process.executable.path": "/usr/bin/python3.11", "container.id": "abc123", "k8s.pod.uid": "5b8c7f2e-1d3a-4e6b-9c0d-2f4a6b8c0d1e",
			},
		},
		{
			name: "default sample type second in pprof comes first",
			profile: func() *profile.Profile {
				p := blockedProfile()
				p.DefaultSampleType = "syscalls"
				return p
			},
			res: Resource{ServiceName: "shop", PID: 7},
			want: map[string][]flat{
				"blocked/nanoseconds": {{pollStack, 2_000_000_000, pollAttrs}},
				"syscalls/count":      {{pollStack, 40, pollAttrs}, {recvStack, 3, recvAttrs}},
			},
			order:   []string{"syscalls", "blocked"},
			resAttr: map[string]string{"service.name": "shop", "process.pid": "7"},
		},
		{
			name: "no samples",
			profile: func() *profile.Profile {
				p := blockedProfile()
				p.Sample = nil
				return p
			},
			want:    map[string][]flat{},
			order:   []string{"blocked", "syscalls"},
			resAttr: map[string]string{"service.name": "unknown_service"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.profile()
			ps, err := Convert(p, tt.res)
			if err != nil {
				t.Fatal(err)
			}
			got, res := flatten(t, ps)
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("samples\n got %v\nwant %v", got, tt.want)
			}
			gotRes := map[string]string{}
			for k, v := range res.All() {
				gotRes[k] = v.AsString()
			}
			if fmt.Sprint(gotRes) != fmt.Sprint(tt.resAttr) {
				t.Errorf("resource\n got %v\nwant %v", gotRes, tt.resAttr)
			}

			d := ps.Dictionary()
			profiles := ps.ResourceProfiles().At(0).ScopeProfiles().At(0).Profiles()
			var order []string
			for i := range profiles.Len() {
				op := profiles.At(i)
				order = append(order, d.StringTable().At(int(op.SampleType().TypeStrindex())))
				if op.Time().AsTime().UnixNano() != p.TimeNanos || op.DurationNano() != uint64(p.DurationNanos) || op.Period() != 1 {
					t.Errorf("time %v duration %d period %d", op.Time(), op.DurationNano(), op.Period())
				}
				if op.ProfileID().IsEmpty() {
					t.Error("empty profile id")
				}
				attrs, err := pprofile.FromAttributeIndices(d.AttributeTable(), op, d)
				if err != nil {
					t.Fatal(err)
				}
				if c, ok := attrs.Get(attrComment); !ok || !strings.Contains(c.AsString(), "dropped events: 3") {
					t.Errorf("profile attributes %v lack the comments", attrs.AsRaw())
				}
			}
			if !slices.Equal(order, tt.order) {
				t.Errorf("sample types %v, want %v", order, tt.order)
			}
		})
	}
}

// TestConvertDictionaryShared checks each table entry is written once: the
// two profiles of one pprof share functions, locations, stacks and strings.
func TestConvertDictionaryShared(t *testing.T) {
	ps, err := Convert(blockedProfile(), Resource{})
	if err != nil {
		t.Fatal(err)
	}
	d := ps.Dictionary()
	// One zero entry plus the pprof's own.
	for name, tc := range map[string]struct{ got, want int }{
		"mapping":  {d.MappingTable().Len(), 1 + 3},
		"function": {d.FunctionTable().Len(), 1 + 6},
		"location": {d.LocationTable().Len(), 1 + 5},
		"stack":    {d.StackTable().Len(), 1 + 2},
	} {
		if tc.got != tc.want {
			t.Errorf("%s table has %d entries, want %d", name, tc.got, tc.want)
		}
	}
	seen := map[string]bool{}
	for _, s := range d.StringTable().All() {
		if seen[s] {
			t.Errorf("string %q written twice", s)
		}
		seen[s] = true
	}
	m := d.MappingTable().At(1)
	attrs, err := pprofile.FromAttributeIndices(d.AttributeTable(), m, d)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := attrs.Get(attrBuildID); v.AsString() != "c047672cae7964324658491e7dee26748ae5d2f8" {
		t.Errorf("libc mapping attributes %v, want its build id", attrs.AsRaw())
	}
	maria := d.MappingTable().At(2)
	if maria.MemoryStart() != 0x7f00_0000_0000 || maria.MemoryLimit() != 0x7f00_0010_0000 || maria.FileOffset() != 0x1000 {
		t.Errorf("libmariadb mapping %#x-%#x+%#x", maria.MemoryStart(), maria.MemoryLimit(), maria.FileOffset())
	}
	if a := d.LocationTable().At(3).Address(); a != 0x7f00_0001_f000 {
		t.Errorf("libmariadb location address %#x", a)
	}
	var units []string
	for _, a := range d.AttributeTable().All() {
		if u := d.StringTable().At(int(a.UnitStrindex())); u != "" {
			units = append(units, d.StringTable().At(int(a.KeyStrindex()))+" in "+u)
		}
	}
	if !slices.Equal(units, []string{"bytes in bytes"}) {
		t.Errorf("attribute units %v, want the bytes label's", units)
	}
	if sl := d.FunctionTable().At(5).StartLine(); sl != 90 {
		t.Errorf("python function start line %d, want 90", sl)
	}
}

// TestConvertWireRoundTrip encodes and decodes the request the way a
// collector does and compares it with the converted profiles.
func TestConvertWireRoundTrip(t *testing.T) {
	ps, err := Convert(blockedProfile(), Resource{PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(ps)
	if err != nil {
		t.Fatal(err)
	}
	back, err := (&pprofile.ProtoUnmarshaler{}).UnmarshalProfiles(raw)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := flatten(t, ps)
	got, _ := flatten(t, back)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("after the wire\n got %v\nwant %v", got, want)
	}
	raw2, err := (&pprofile.ProtoMarshaler{}).MarshalProfiles(back)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, raw2) {
		t.Error("re-encoding the decoded profiles changes the bytes")
	}
}

func TestConvertInvalid(t *testing.T) {
	tests := []struct {
		name    string
		profile func() *profile.Profile
	}{
		{"nil", func() *profile.Profile { return nil }},
		{"one value for two sample types", func() *profile.Profile {
			p := blockedProfile()
			p.Sample[0].Value = []int64{1}
			return p
		}},
		{"location without an id", func() *profile.Profile {
			p := blockedProfile()
			p.Location[0].ID = 0
			return p
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Convert(tt.profile(), Resource{}); err == nil || !strings.HasPrefix(err.Error(), "convert pprof profile: ") {
				t.Fatalf("err %v, want a conversion error", err)
			}
		})
	}
}

// TestWindowResource keeps what the processes of a window share.
func TestWindowResource(t *testing.T) {
	host, _ := os.Hostname()
	gevent := model.Process{PID: 10, Comm: "python3", Exe: "/usr/bin/python3.11", Container: "abc", Pod: "uid-1"}
	for _, tt := range []struct {
		name  string
		procs []model.Process
		want  Resource
	}{
		{"none", nil, Resource{HostName: host}},
		{"one process", []model.Process{gevent}, Resource{HostName: host, PID: 10, Comm: "python3", Executable: "/usr/bin/python3.11", ContainerID: "abc", PodUID: "uid-1"}},
		{"workers of one pod", []model.Process{gevent, {PID: 11, Comm: "python3", Exe: "/usr/bin/python3.11", Container: "abc", Pod: "uid-1"}},
			Resource{HostName: host, Comm: "python3", Executable: "/usr/bin/python3.11", ContainerID: "abc", PodUID: "uid-1"}},
		{"two containers of one pod", []model.Process{gevent, {PID: 12, Comm: "nginx", Exe: "/usr/sbin/nginx", Container: "def", Pod: "uid-1"}},
			Resource{HostName: host, PodUID: "uid-1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := WindowResource(&model.Trace{Processes: tt.procs}); got != tt.want {
				t.Errorf("%+v, want %+v", got, tt.want)
			}
		})
	}
}
