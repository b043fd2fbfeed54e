package report

import (
	"bytes"
	"encoding/xml"
	"io"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// svgFrame is one <g class="f"> of a rendered flame graph.
type svgFrame struct {
	id, title, label, fill string
	start, weight          int64
	depth                  int
	x, y, width            float64
}

func (f svgFrame) name() string { name, _, _ := strings.Cut(f.title, "\n"); return name }

// svgDoc is what the tests read back from a flame graph.
type svgDoc struct {
	total   int64
	unit    string
	frames  []svgFrame
	texts   map[string]string // by id
	classes map[string]int    // element class → count
	script  string
	style   string
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

// parseFlame decodes the SVG as XML, failing the test if it is not well formed.
func parseFlame(t *testing.T, data []byte) svgDoc {
	t.Helper()
	doc := svgDoc{texts: map[string]string{}, classes: map[string]int{}}
	dec := xml.NewDecoder(bytes.NewReader(data))
	var cur *svgFrame
	var stack []string
	var textID string
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("flame graph is not well-formed XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			stack = append(stack, el.Name.Local)
			for _, c := range strings.Fields(attr(el, "class")) {
				doc.classes[c]++
			}
			switch {
			case el.Name.Local == "svg":
				doc.total, _ = strconv.ParseInt(attr(el, "data-total"), 10, 64)
				doc.unit = attr(el, "data-unit")
			case el.Name.Local == "g" && attr(el, "class") == "f":
				cur = &svgFrame{id: attr(el, "id")}
				cur.start, _ = strconv.ParseInt(attr(el, "data-s"), 10, 64)
				cur.weight, _ = strconv.ParseInt(attr(el, "data-v"), 10, 64)
				cur.depth, _ = strconv.Atoi(attr(el, "data-d"))
			case el.Name.Local == "rect" && cur != nil:
				cur.x, _ = strconv.ParseFloat(attr(el, "x"), 64)
				cur.y, _ = strconv.ParseFloat(attr(el, "y"), 64)
				cur.width, _ = strconv.ParseFloat(attr(el, "width"), 64)
				cur.fill = attr(el, "fill")
			case el.Name.Local == "text":
				textID = attr(el, "id")
			}
		case xml.CharData:
			if len(stack) == 0 {
				continue
			}
			switch top := stack[len(stack)-1]; {
			case top == "title" && cur != nil:
				cur.title += string(el)
			case top == "text" && cur != nil:
				cur.label += string(el)
			case top == "text" && textID != "":
				doc.texts[textID] += string(el)
			case top == "script":
				doc.script += string(el)
			case top == "style":
				doc.style += string(el)
			}
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			if el.Name.Local == "g" && cur != nil {
				doc.frames = append(doc.frames, *cur)
				cur = nil
			}
			if el.Name.Local == "text" {
				textID = ""
			}
		}
	}
	return doc
}

func renderFlame(t *testing.T, tr *model.Trace, a *model.Analysis) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := FlameSVG(&buf, tr, a); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (d svgDoc) frame(t *testing.T, name string, depth int) svgFrame {
	t.Helper()
	for _, f := range d.frames {
		if f.name() == name && f.depth == depth {
			return f
		}
	}
	t.Fatalf("no frame %q at depth %d", name, depth)
	return svgFrame{}
}

func TestFlameFramesAndWidths(t *testing.T) {
	tr, a := stackFixture()
	doc := parseFlame(t, renderFlame(t, tr, a))
	const inner = flameWidth - 2*flamePadX

	if doc.total != int64(1900*time.Millisecond) || doc.unit != "ns" {
		t.Fatalf("total %d %s, want 1.9 s in ns", doc.total, doc.unit)
	}
	all := doc.frame(t, "all · 1.90s blocked", 0)
	if all.width != inner || all.x != flamePadX {
		t.Errorf("all frame at %.2f width %.2f, want the full width", all.x, all.width)
	}
	// Widths follow blocked time: poll is 995 ms of 1900 ms.
	cases := []struct {
		name  string
		depth int
		want  time.Duration
	}{
		{"python3 (4242)", 1, 1900 * time.Millisecond},
		{"python3 (4242)", 2, 1400 * time.Millisecond},
		{"ThreadPoolExec (4250)", 2, 500 * time.Millisecond},
		{"futex", 3, 500 * time.Millisecond},
		{"poll (libc.so.6)", 16, 995 * time.Millisecond},
		{"poll", 17, 995 * time.Millisecond},
		{"pvio_socket_wait_io_or_timeout (libmariadb.so.3)", 15, 995 * time.Millisecond},
		{"recvfrom", 10, 200 * time.Millisecond},
		{"tcp_recvmsg_[k]", 8, 5 * time.Millisecond},
	}
	for _, tc := range cases {
		f := doc.frame(t, tc.name, tc.depth)
		want := float64(tc.want) / float64(doc.total) * inner
		if math.Abs(f.width-want) > 0.01 {
			t.Errorf("%s: width %.2f, want %.2f", tc.name, f.width, want)
		}
		if f.weight != int64(tc.want) {
			t.Errorf("%s: data-v %d, want %d", tc.name, f.weight, int64(tc.want))
		}
	}
	// Every frame's geometry agrees with its data attributes, and children
	// sit inside their parent's span.
	for _, f := range doc.frames {
		wantX := flamePadX + float64(f.start)/float64(doc.total)*inner
		wantW := float64(f.weight) / float64(doc.total) * inner
		if math.Abs(f.x-wantX) > 0.01 || math.Abs(f.width-wantW) > 0.01 {
			t.Errorf("%s: x %.2f width %.2f, want %.2f %.2f", f.name(), f.x, f.width, wantX, wantW)
		}
		if f.label != "" && f.label != f.name() && !strings.HasSuffix(f.label, "..") {
			t.Errorf("%s: label %q neither the name nor truncated with ..", f.name(), f.label)
		}
		if float64(len([]rune(f.label)))*flameCharPx > f.width {
			t.Errorf("%s: label %q overflows %.2f px", f.name(), f.label, f.width)
		}
	}
	// The root sits at the bottom, the syscall tips above.
	if poll := doc.frame(t, "poll", 17); poll.y >= all.y {
		t.Errorf("poll at y=%.0f is not above the base at y=%.0f", poll.y, all.y)
	}
}

func TestFlameTooltipsAndHeader(t *testing.T) {
	tr, a := stackFixture()
	doc := parseFlame(t, renderFlame(t, tr, a))
	poll := doc.frame(t, "poll", 17)
	for _, want := range []string{"995ms blocked", "52.37% of total", "40 calls", "24.9ms each"} {
		if !strings.Contains(poll.title, want) {
			t.Errorf("poll tooltip %q lacks %q", poll.title, want)
		}
	}
	if hub := doc.frame(t, "python3 (4242)", 2); !strings.Contains(hub.title, "event-loop thread: 1.40s blocked") {
		t.Errorf("hub thread tooltip %q lacks its role", hub.title)
	}
	if !strings.HasPrefix(poll.fill, "hsl(") || poll.fill == doc.frame(t, "poll (libc.so.6)", 16).fill {
		t.Errorf("syscall and native frames share colour %q", poll.fill)
	}
	data := string(renderFlame(t, tr, a))
	for _, want := range []string{
		"Blocked time · /usr/bin/python3 -m gunicorn -k gevent app.wsgi (pid 4242)",
		"1.90s blocked in 73 syscalls",
		"calls ≥ 1.00ms",
		"traced 10.0s",
		"2 threads",
	} {
		if !strings.Contains(data, want) {
			t.Errorf("header lacks %q", want)
		}
	}
	for _, class := range []string{"legend", "btn", "matched", "detail", "title"} {
		if doc.classes[class] == 0 {
			t.Errorf("no element of class %q", class)
		}
	}
	for _, want := range []string{"function zoom", "function search", "function reset", "getComputedTextLength", "URLSearchParams"} {
		if !strings.Contains(doc.script, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	if !strings.Contains(doc.style, ".f.match") || strings.Contains(data, "http://") && !strings.Contains(data, `xmlns="http://www.w3.org/2000/svg"`) {
		t.Error("style missing or an external reference present")
	}
	if strings.Contains(data, "<script src") || strings.Contains(data, "href=") {
		t.Error("the flame graph references an external resource")
	}
}

// The script and style are inlined in CDATA sections, which their text must
// not close early.
func TestFlameAssetsFitInCDATA(t *testing.T) {
	for name, asset := range map[string]string{"flame.js": flameScript, "flame.css": flameStyle} {
		if asset == "" || strings.Contains(asset, "]]>") {
			t.Errorf("%s is empty or contains ]]>", name)
		}
	}
}

func TestFlameLegendListsKindsPresent(t *testing.T) {
	tr, a := stackFixture()
	data := string(renderFlame(t, tr, a))
	for _, kind := range []string{">process<", ">thread<", ">interpreter<", ">native code<", ">syscall<", ">kernel<", ">unknown<"} {
		if !strings.Contains(data, kind) {
			t.Errorf("legend lacks %s", kind)
		}
	}
	tr.Events = tr.Events[60:70] // the stackless futex waits alone
	data = string(renderFlame(t, tr, a))
	for _, kind := range []string{">native code<", ">kernel<", ">interpreter<"} {
		if strings.Contains(data, kind) {
			t.Errorf("legend shows %s without such frames", kind)
		}
	}
}

func TestFlameElidesTinyFrames(t *testing.T) {
	tr, a := stackFixture()
	tr.Events = append(tr.Events, model.Event{Kind: model.EvSyscall, PID: 4242, TID: 4242, Syscall: "nanosleep", Duration: time.Nanosecond})
	doc := parseFlame(t, renderFlame(t, tr, a))
	for _, f := range doc.frames {
		if f.name() == "nanosleep" {
			t.Errorf("a 1 ns frame of %d ns was drawn %.5f px wide", doc.total, f.width)
		}
	}
}

func TestFlameCountsWhenNoDurations(t *testing.T) {
	tr, a := stackFixture()
	for i := range tr.Events {
		tr.Events[i].Duration = 0
	}
	doc := parseFlame(t, renderFlame(t, tr, a))
	if doc.unit != "calls" || doc.total != 73 {
		t.Fatalf("total %d %s, want 73 calls", doc.total, doc.unit)
	}
	if f := doc.frame(t, "poll", 17); f.weight != 40 {
		t.Errorf("poll weight %d, want 40 calls", f.weight)
	}
}

func TestFlameEmpty(t *testing.T) {
	for _, tr := range []*model.Trace{nil, {Target: model.Target{PID: 1, Comm: "init"}}} {
		data := renderFlame(t, tr, nil)
		doc := parseFlame(t, data)
		if len(doc.frames) != 0 || !bytes.Contains(data, []byte("No syscall events")) {
			t.Errorf("empty trace: %d frames", len(doc.frames))
		}
	}
}

func TestFitLabel(t *testing.T) {
	cases := []struct {
		name  string
		width float64
		want  string
	}{
		{"poll", 100, "poll"},
		{"pvio_socket_wait_io_or_timeout (libmariadb.so.3)", 100, "pvio_socket.."},
		{"poll", 20, ""},
		{"abcdefgh", 40, ""},
		{"abcdefghij", 48, "abc.."},
		{"épée", 40, "épée"},
	}
	for _, tc := range cases {
		if got := fitLabel(tc.name, tc.width); got != tc.want {
			t.Errorf("fitLabel(%q, %v) = %q, want %q", tc.name, tc.width, got, tc.want)
		}
	}
}
