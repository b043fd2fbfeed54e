package report

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/analyzer"
	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/version"
)

// incidentTrace builds DESIGN.md's first incident as the live source
// records it: a gevent worker (hub thread plus an idle thread pool) talking
// to a local MariaDB. With MySQLdb the hub blocks in libmariadb's poll on the
// database socket; with PyMySQL (the control) it waits for the same replies
// in its own epoll_wait, and its recvfrom calls return at once.
func incidentTrace(pymysql bool) *model.Trace {
	const (
		ms             = time.Millisecond
		pid, hub, pool = 4100, 4100, 4107
		start          = uint64(7_000_000_000_000)
	)
	db := inet("127.0.0.1:3306")
	listen := inet("0.0.0.0:8000")
	client := inet("127.0.0.1:40100")
	t := &model.Trace{
		Source: "ebpf", Arch: "amd64",
		Target: model.Target{PID: pid, Comm: "gunicorn",
			Cmdline: []string{"/usr/bin/python3", "/usr/bin/gunicorn", "-k", "gevent", "-b", "0.0.0.0:8000", "app:app"}},
		Processes: []model.Process{{PID: pid, PPID: 1, Comm: "gunicorn",
			Cmdline: []string{"/usr/bin/python3", "/usr/bin/gunicorn", "-k", "gevent", "-b", "0.0.0.0:8000", "app:app"},
			Runtime: model.Runtime{Name: model.RuntimeCPython, Version: "3.11.2", Loop: model.LoopGevent}}},
		Start:     time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC),
		StartNS:   start,
		Duration:  10 * time.Second,
		Threshold: 10 * ms,
		Threads: []model.Thread{
			{PID: pid, TID: hub, Name: "gunicorn", OnCPU: 1200 * ms},
			{PID: pid, TID: pool, Name: "ThreadPool", OnCPU: 4 * ms},
		},
		Sockets: []model.Socket{
			{PID: pid, FD: 5, Proto: "tcp", Local: listen, State: "LISTEN"},
			{PID: pid, FD: 7, Proto: "tcp", Local: inet("127.0.0.1:50000"), Peer: db, State: "ESTABLISHED"},
		},
		Listeners: []model.Listener{{Addr: db, PID: 900, Comm: "mariadbd"}},
		Blocked: []model.BlockedState{
			{PID: pid, TID: hub, Nr: 232, Syscall: "epoll_wait", FD: 4},
			{PID: pid, TID: pool, Nr: 202, Syscall: "futex", FD: -1, Wchan: "futex_wait_queue"},
		},
	}
	watched := []model.EpollFD{{FD: 5, Kind: model.FDSocket, Listening: true, Local: listen},
		{FD: 9, Kind: model.FDSocket, Peer: client}}
	if pymysql {
		watched = append(watched, model.EpollFD{FD: 7, Kind: model.FDSocket, Peer: db})
	}
	t.Epoll = []model.EpollSet{{PID: pid, EPFD: 4, FDs: watched}, {PID: pid, EPFD: 4, End: true, FDs: watched}}

	stats := map[[2]any]*model.SyscallStat{}
	var order [][2]any
	count := func(tid int, name string, n int, d time.Duration, errs int) {
		k := [2]any{tid, name}
		st := stats[k]
		if st == nil {
			st = &model.SyscallStat{PID: pid, TID: tid, Nr: -1, Name: name}
			stats[k] = st
			order = append(order, k)
		}
		for range n {
			st.Count++
			st.Total += d
			st.Max = max(st.Max, d)
			st.Hist.Add(uint64(d))
		}
		st.Errors += uint64(errs)
	}
	now := map[int]uint64{hub: start + uint64(15*ms), pool: start}
	slow := func(tid int, ev model.Event) {
		ev.PID, ev.TID, ev.Kind, ev.Nr = pid, tid, model.EvSyscall, -1
		now[tid] += uint64(ev.Duration) + uint64(2*ms)
		ev.Time = now[tid]
		t.Events = append(t.Events, ev)
		count(tid, ev.Syscall, 1, ev.Duration, 0)
	}
	stack := []model.Frame{
		{Function: "__poll", Module: "libc.so.6"},
		{Function: "pvio_socket_wait_io_or_timeout", Module: "libmariadb.so.3"},
		{Function: "ma_net_safe_read", Module: "libmariadb.so.3"},
		{Function: "mysql_real_query", Module: "libmariadb.so.3"},
		{Function: "_mysql_ConnectionObject_query", Module: "_mysql.cpython-311-x86_64-linux-gnu.so"},
		{Function: "BaseCursor.execute", Module: "cursors.py", Path: "/usr/lib/python3/dist-packages/MySQLdb/cursors.py", Kind: model.FrameInterpreter},
		{Function: "get_user", Module: "views.py", Path: "/srv/app/views.py", Kind: model.FrameInterpreter},
	}
	// A call that began before the attach: the hub was already waiting.
	t.Events = append(t.Events, model.Event{Kind: model.EvSyscall, PID: pid, TID: hub, Nr: -1, Syscall: "epoll_wait",
		FD: 4, FDKnown: true, FDKind: model.FDOther, Time: start + uint64(15*ms), Duration: 15 * ms, Ret: 1, Partial: true, PollFD: -1})
	if pymysql {
		for i := range 330 {
			slow(hub, model.Event{Syscall: "epoll_wait", FD: 4, FDKnown: true, FDKind: model.FDOther, Duration: 22 * ms, Ret: 1 + int64(i%2), PollFD: -1})
		}
		count(hub, "epoll_wait", 2400, 300*time.Microsecond, 0)
		count(hub, "recvfrom", 3000, 8*time.Microsecond, 1500)
		count(hub, "sendto", 1500, 12*time.Microsecond, 0)
		t.Threads[0].OnCPU = 2100 * ms
	} else {
		for i := range 440 {
			if i%40 == 0 {
				slow(hub, model.Event{Syscall: "epoll_wait", FD: 4, FDKnown: true, FDKind: model.FDOther, Duration: 12 * ms, Ret: 1, PollFD: -1})
			}
			d := 17*ms + time.Duration(i%7)*ms
			slow(hub, model.Event{Syscall: "poll", FD: 7, FDKnown: true, FDKind: model.FDSocket, PollNFDs: 1, PollFD: 7, PollTimeout: -1,
				Peer: db, Duration: d, Ret: 1, Stack: stack})
		}
		count(hub, "epoll_wait", 300, 200*time.Microsecond, 0)
		count(hub, "recvfrom", 880, 15*time.Microsecond, 0)
		count(hub, "sendto", 440, 12*time.Microsecond, 0)
	}
	for range 4 {
		slow(pool, model.Event{Syscall: "futex", FD: -1, PollFD: -1, Duration: 2400 * ms, Ret: -110})
	}
	count(pool, "futex", 20, 50*time.Microsecond, 0)
	for _, k := range order {
		t.Syscalls = append(t.Syscalls, *stats[k])
	}
	return t
}

func analyzed(t *model.Trace) (*model.Trace, *model.Analysis) {
	return t, analyzer.Analyze(t, analyzer.Config{Threshold: t.Threshold})
}

func renderHTML(t *testing.T, tr *model.Trace, a *model.Analysis) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := HTML(&buf, tr, a); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// node is an element of a parsed page, or a text node when tag is "".
type node struct {
	tag      string
	attrs    map[string]string
	text     string
	children []*node
}

// page is a parsed report. Script and style bodies are blanked before the
// page is read as lenient XML (no HTML parser in the module graph); the
// data block is kept aside, and the browser tests check the page as a
// browser parses it.
type page struct {
	root *node
	data string // the timeline's JSON
}

var (
	dataBlock = regexp.MustCompile(`(?s)<script type="application/json" id="snag-timeline">(.*?)</script>`)
	rawBodies = regexp.MustCompile(`(?s)(<(script|style)\b[^>]*>)(.*?)(</(script|style)>)`)
)

func parsePage(t *testing.T, data []byte) page {
	t.Helper()
	var p page
	if m := dataBlock.FindSubmatch(data); m != nil {
		p.data = string(m[1])
	}
	blank := rawBodies.ReplaceAll(data, []byte("$1$4"))
	d := xml.NewDecoder(bytes.NewReader(blank))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	p.root = &node{tag: "#document"}
	stack := []*node{p.root}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("parse page: %v", err)
		}
		top := stack[len(stack)-1]
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &node{tag: tok.Name.Local, attrs: map[string]string{}}
			for _, a := range tok.Attr {
				n.attrs[a.Name.Local] = a.Value
			}
			top.children = append(top.children, n)
			stack = append(stack, n)
		case xml.EndElement:
			for i := len(stack) - 1; i > 0; i-- {
				if stack[i].tag == tok.Name.Local {
					stack = stack[:i]
					break
				}
			}
		case xml.CharData:
			top.children = append(top.children, &node{text: string(tok)})
		}
	}
	return p
}

func attrOf(n *node, key string) string { return n.attrs[key] }

func hasClass(n *node, class string) bool {
	return strings.Contains(" "+n.attrs["class"]+" ", " "+class+" ")
}

// all returns the nodes under n that match, n included.
func all(n *node, match func(*node) bool) []*node {
	var out []*node
	var walk func(*node)
	walk = func(n *node) {
		if match(n) {
			out = append(out, n)
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(n)
	return out
}

func (p page) all(match func(*node) bool) []*node { return all(p.root, match) }

func (p page) byID(id string) *node {
	ns := p.all(func(n *node) bool { return n.tag != "" && n.attrs["id"] == id })
	if len(ns) == 0 {
		return nil
	}
	return ns[0]
}

func textOf(n *node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	for _, t := range all(n, func(n *node) bool { return n.tag == "" }) {
		b.WriteString(t.text)
	}
	return b.String()
}

func elements(tag string) func(*node) bool {
	return func(n *node) bool { return n.tag == tag }
}

func withClass(class string) func(*node) bool {
	return func(n *node) bool { return n.tag != "" && hasClass(n, class) }
}

// barShares reads a thread's bar: each segment's category and its share in
// percent.
func barShares(t *testing.T, bar *node) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, s := range all(bar, withClass("seg")) {
		var v float64
		if _, err := fmt.Sscanf(attrOf(s, "data-share"), "%f%%", &v); err != nil {
			t.Fatalf("segment share %q: %v", attrOf(s, "data-share"), err)
		}
		out[attrOf(s, "data-cat")] += v
	}
	return out
}

// timelineData decodes the JSON block the timeline is drawn from.
func timelineData(t *testing.T, p page) htmlTimeline {
	t.Helper()
	if p.data == "" {
		t.Fatal("no timeline data block")
	}
	var tl htmlTimeline
	if err := json.Unmarshal([]byte(p.data), &tl); err != nil {
		t.Fatalf("timeline data is not JSON: %v", err)
	}
	return tl
}

func TestHTMLIncidentPage(t *testing.T) {
	tr, a := analyzed(incidentTrace(false))
	p := parsePage(t, renderHTML(t, tr, a))

	cards := p.all(withClass("card"))
	if len(cards) == 0 || attrOf(cards[0], "data-kind") != model.KindLoopStall || attrOf(cards[0], "data-severity") != "high" {
		t.Fatalf("first card is not the high loop stall: %d cards", len(cards))
	}
	card := textOf(cards[0])
	for _, want := range []string{"poll", "127.0.0.1:3306", "libmariadb.so.3", "gunicorn (tid 4100)", "PyMySQL", "get_user (views.py)"} {
		if !strings.Contains(card, want) {
			t.Errorf("stall card lacks %q:\n%s", want, card)
		}
	}
	links := all(cards[0], withClass("thread-link"))
	if len(links) != 1 || attrOf(links[0], "href") != "#thread-4100-4100" || p.byID("thread-4100-4100") == nil {
		t.Errorf("stall card does not link to the hub's bar")
	}

	hub := p.byID("thread-4100-4100")
	shares := barShares(t, hub)
	top, topShare := "", 0.0
	for c, v := range shares {
		if v > topShare {
			top, topShare = c, v
		}
	}
	if !strings.HasPrefix(top, "peer 127.0.0.1:3306") || topShare < 60 || attrOf(hub, "data-top") != top {
		t.Errorf("hub bar's largest segment %q at %.1f%% (data-top %q), want the MariaDB peer over 60%%: %v",
			top, topShare, attrOf(hub, "data-top"), shares)
	}
	if !strings.Contains(top, "mariadbd") {
		t.Errorf("peer segment %q does not name the process serving it", top)
	}
	var sum float64
	for _, v := range shares {
		sum += v
	}
	if sum < 99.9 || sum > 100.1 {
		t.Errorf("hub bar segments sum to %.2f%%", sum)
	}
	if got := textOf(p.byID("proc-4100")); !strings.Contains(got, "CPython 3.11.2 with gevent") || !strings.Contains(got, "event-loop") {
		t.Errorf("process group lacks runtime or role: %q", got)
	}

	tl := timelineData(t, p)
	if len(tl.Slices)%sliceStride != 0 || len(tl.Slices)/sliceStride != len(tr.Events) {
		t.Errorf("timeline has %d slice fields for %d events", len(tl.Slices), len(tr.Events))
	}
	var partial, inFinding int
	for i := 0; i < len(tl.Slices); i += sliceStride {
		s := tl.Slices[i : i+sliceStride]
		if s[slFlags]&slicePartial != 0 {
			partial++
			if s[slStart] != 0 {
				t.Errorf("partial slice starts at %d µs, want the attach", s[slStart])
			}
		}
		if s[slFinding] == 1 {
			inFinding++
			if tl.Strs[s[slName]] != "poll" || tl.Strs[s[slDetail]] != "127.0.0.1:3306" {
				t.Errorf("slice of finding 1 is %s on %s", tl.Strs[s[slName]], tl.Strs[s[slDetail]])
			}
		}
	}
	if partial != 1 || inFinding != 440 {
		t.Errorf("%d partial slices and %d in the stall, want 1 and 440", partial, inFinding)
	}
	if len(tl.Marks) == 0 || tl.Marks[0].N != 1 || tl.Lanes[tl.Marks[0].Lane].ID != "thread-4100-4100" {
		t.Errorf("no mark for the stall on the hub's lane: %+v", tl.Marks)
	}

	if conns := textOf(p.byID("connections")); !strings.Contains(conns, "127.0.0.1:3306") || !strings.Contains(conns, "mysql") {
		t.Errorf("connections table lacks the database: %q", conns)
	}
	info := textOf(p.byID("trace"))
	for _, want := range []string{"pid 4100 gunicorn", "10.0s", "10.0ms", "dropped", version.Get().String()} {
		if !strings.Contains(info, want) {
			t.Errorf("trace facts lack %q: %q", want, info)
		}
	}
	// The flame graph sits in a template for a shadow root, scripts out.
	host := p.byID("fg-host")
	if host == nil || len(all(host, elements("svg"))) != 1 || len(all(host, withClass("f"))) < 8 {
		t.Errorf("flame graph not embedded")
	}
	if len(all(host, elements("script"))) != 0 {
		t.Errorf("embedded flame graph carries its own script")
	}
}

func TestHTMLControlPage(t *testing.T) {
	tr, a := analyzed(incidentTrace(true))
	p := parsePage(t, renderHTML(t, tr, a))
	if cards := p.all(withClass("card")); len(cards) != 0 {
		t.Errorf("control has %d finding cards", len(cards))
	}
	if v := p.all(withClass("verdict")); len(v) != 1 || !hasClass(v[0], "clean") || !strings.HasPrefix(textOf(v[0]), "No findings") {
		t.Errorf("control verdict is not clean")
	}
	hub := p.byID("thread-4100-4100")
	if hub == nil || attrOf(hub, "data-role") != "event-loop" {
		t.Fatalf("control hub missing or not an event loop")
	}
	shares := barShares(t, hub)
	if shares["idle"] < 60 || attrOf(hub, "data-top") != "idle" {
		t.Errorf("control hub bar: idle %.1f%%, top %q: %v", shares["idle"], attrOf(hub, "data-top"), shares)
	}
	for c, v := range shares {
		if strings.HasPrefix(c, "peer ") && v > 5 {
			t.Errorf("control hub blocked %.1f%% on %s", v, c)
		}
	}
	if tl := timelineData(t, p); len(tl.Slices) == 0 || len(tl.Marks) != 0 {
		t.Errorf("control timeline: %d slice fields, %d marks", len(tl.Slices), len(tl.Marks))
	}
}

// hostile names every string the trace controls with markup and script.
const hostile = `</script><script>alert(1)</script><img src=x onerror=alert(2)>"'&<!--` + "\u2028"

// hostileTrace is the incident with every string the trace controls
// replaced by markup and script.
func hostileTrace() (*model.Trace, *model.Analysis) {
	tr, a := analyzed(incidentTrace(false))
	tr.Target.Comm = hostile
	tr.Target.Cmdline = []string{hostile, "--name", "</style><style>*{display:none}</style>"}
	tr.Processes[0].Comm = hostile
	tr.Processes[0].Cmdline = tr.Target.Cmdline
	for i := range tr.Threads {
		tr.Threads[i].Name = hostile
	}
	for i := range a.Threads {
		a.Threads[i].Name = hostile
		a.Threads[i].Evidence = hostile
		for j := range a.Threads[i].Budget {
			if strings.HasPrefix(a.Threads[i].Budget[j].Category, "peer ") {
				a.Threads[i].Budget[j].Category = "peer " + hostile
			}
		}
	}
	evil := model.Addr{Family: model.FamilyUnix, Path: "/run/" + hostile}
	for i := range tr.Events {
		tr.Events[i].Peer = evil
		tr.Events[i].Syscall = hostile
		for j := range tr.Events[i].Stack {
			tr.Events[i].Stack[j].Function = hostile
		}
	}
	tr.Files = append(tr.Files, model.OpenFile{PID: 4100, FD: 4, Path: hostile})
	for i := range a.Findings {
		f := &a.Findings[i]
		f.Title, f.Detail, f.Hint, f.Peer, f.Path, f.Library, f.Thread = hostile, hostile, hostile, hostile, hostile, hostile, hostile
		f.Stack = []string{hostile}
	}
	a.Connections = append(a.Connections, model.Connection{Peer: evil, Service: hostile})
	return tr, a
}

func TestHTMLEscapesHostileStrings(t *testing.T) {
	tr, a := hostileTrace()
	evil := model.Addr{Family: model.FamilyUnix, Path: "/run/" + hostile}
	out := renderHTML(t, tr, a)

	// Nothing the trace holds reaches the page as markup: every hostile
	// string is escaped wherever it lands (text, attributes, JSON, SVG).
	for _, raw := range []string{"<script>alert", "<img", "</style><style>", "<!--"} {
		if bytes.Contains(out, []byte(raw)) {
			t.Errorf("page contains %q unescaped", raw)
		}
	}
	if n := bytes.Count(out, []byte("</script>")); n != 3 {
		t.Errorf("%d </script> tags in the page, want 3", n)
	}
	p := parsePage(t, out)
	if n := len(p.all(elements("script"))); n != 3 {
		t.Errorf("%d script elements, want the data block and the two scripts", n)
	}
	for _, n := range p.all(func(n *node) bool { return n.tag != "" }) {
		for k := range n.attrs {
			if strings.HasPrefix(k, "on") {
				t.Errorf("<%s> got an event handler attribute %s", n.tag, k)
			}
		}
	}
	// The strings survive as text.
	if !strings.Contains(textOf(p.byID("verdict")), hostile) {
		t.Errorf("finding title not shown as text")
	}
	tl := timelineData(t, p)
	found := false
	for _, s := range tl.Strs {
		if s == evil.String() {
			found = true
		}
	}
	if !found || tl.Lanes[0].Label == "" || !strings.Contains(tl.Lanes[0].Label, hostile) {
		t.Errorf("hostile peer or thread name did not survive the JSON round trip")
	}
	if strings.Contains(p.data, "\u2028") {
		t.Errorf("data block carries a raw U+2028")
	}
}

func TestHTMLBoundsBusyTrace(t *testing.T) {
	// A 30 s trace of a busy server: 256 threads in 4 processes, 300,000
	// slow calls on 40 peers, deep stacks.
	tr := &model.Trace{Source: "ebpf", Target: model.Target{PID: 1000, Comm: "uwsgi"}, Duration: 30 * time.Second,
		Threshold: time.Millisecond, StartNS: 1_000_000_000}
	stacks := make([][]model.Frame, 64)
	for i := range stacks {
		for d := range 24 {
			stacks[i] = append(stacks[i], model.Frame{Function: fmt.Sprintf("fn_%d_%d", i%(d+1), d), Module: fmt.Sprintf("lib%d.so", d%5)})
		}
	}
	for p := range 4 {
		pid := 1000 + p*1000
		tr.Processes = append(tr.Processes, model.Process{PID: pid, Comm: "uwsgi"})
		for th := range 64 {
			tid := pid + th
			tr.Threads = append(tr.Threads, model.Thread{PID: pid, TID: tid, Name: "uwsgi", OnCPU: time.Second})
			st := model.SyscallStat{PID: pid, TID: tid, Nr: 45, Name: "recvfrom"}
			for i := range 300_000 / 256 {
				d := time.Millisecond + time.Duration(i%50)*time.Millisecond/10
				st.Count++
				st.Total += d
				tr.Events = append(tr.Events, model.Event{Kind: model.EvSyscall, PID: pid, TID: tid, Syscall: "recvfrom",
					Time: tr.StartNS + uint64(i)*uint64(12*time.Millisecond) + uint64(d), Duration: d, FD: 9, Ret: 100,
					Peer: inet(fmt.Sprintf("10.0.%d.%d:5432", i%4, th%10)), Stack: stacks[(i*7+th)%len(stacks)]})
			}
			tr.Syscalls = append(tr.Syscalls, st)
		}
	}
	a := analyzer.Analyze(tr, analyzer.Config{Threshold: tr.Threshold})
	start := time.Now()
	out := renderHTML(t, tr, a)
	t.Logf("busy trace: %d events, page %d bytes, rendered in %v", len(tr.Events), len(out), time.Since(start))
	if len(out) > 2<<20 {
		t.Errorf("page is %d bytes, want at most 2 MiB", len(out))
	}
	p := parsePage(t, out)
	tl := timelineData(t, p)
	if n := len(tl.Slices) / sliceStride; n > htmlMaxSlices {
		t.Errorf("%d slices embedded, cap %d", n, htmlMaxSlices)
	}
	if len(tl.Lanes) > htmlMaxLanes {
		t.Errorf("%d lanes", len(tl.Lanes))
	}
	notes := textOf(p.byID("timeline"))
	if !strings.Contains(notes, "left out of the timeline") || !strings.Contains(notes, "64 of 256 threads have a lane") {
		t.Errorf("timeline does not say what it left out: %q", notes)
	}
	if bars := p.all(withClass("thread")); len(bars) != min(256, htmlMaxBars) {
		t.Errorf("%d bars", len(bars))
	} else if !strings.Contains(textOf(p.byID("threads")), "threads shown") {
		t.Errorf("bars do not say what they left out")
	}
}

func TestHTMLBareTraceAndErrors(t *testing.T) {
	out := renderHTML(t, bareFixture(), nil)
	p := parsePage(t, out)
	if p.byID("thread-77-77") == nil || p.byID("thread-78-78") == nil {
		t.Errorf("bare trace threads missing")
	}
	if !strings.Contains(textOf(p.byID("trace")), "ring buffer full: 1,200") {
		t.Errorf("drops not shown")
	}
	timelineData(t, p)
	if err := HTML(io.Discard, nil, nil); err == nil {
		t.Error("nil trace rendered")
	}
	tr, a := geventFixture()
	if err := HTML(failWriter{}, tr, a); err == nil || !errors.Is(err, errFull) {
		t.Errorf("write error not reported: %v", err)
	}
	for _, name := range []string{"report.html", "x.perfetto.json.html"} {
		if f, err := FormatOf(name); err != nil || f != FormatHTML {
			t.Errorf("FormatOf(%q) = %v, %v", name, f, err)
		}
	}
}

var errFull = errors.New("disk full")

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errFull }

// The inlined assets must not end their own element early.
func TestHTMLAssetsCannotCloseTheirElements(t *testing.T) {
	closing := regexp.MustCompile(`(?i)</(script|style)`)
	for _, name := range []string{"html/report.js", "html/report.css"} {
		b, err := htmlAssets.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if closing.Match(b) || bytes.Contains(b, []byte("<!--")) {
			t.Errorf("%s contains a closing tag or comment opener", name)
		}
	}
	if closing.MatchString(flameScript) || closing.MatchString(flameStyle) {
		t.Errorf("flame assets contain a closing tag")
	}
}

func TestHTMLPaletteNamesTheTopPeers(t *testing.T) {
	var budget []model.BudgetItem
	for i := range 12 {
		budget = append(budget, model.BudgetItem{Category: fmt.Sprintf("peer 10.0.0.%d:5432", i+1), Time: time.Duration(12-i) * time.Second})
	}
	pal := newPalette([]threadRow{{Budget: budget}})
	seen := map[string]bool{}
	for _, it := range budget {
		seen[pal.color(it.Category)] = true
	}
	if pal.color("peer 10.0.0.1:5432") != peerColors[0] {
		t.Errorf("the peer with the most time is not first in colour")
	}
	legend := pal.legend()
	if len(legend) != len(peerColors)+1 || legend[len(legend)-1].Category != otherPeers {
		t.Errorf("legend has %d entries, want %d peers and %q", len(legend), len(peerColors), otherPeers)
	}
	if len(seen) != len(peerColors)+1 {
		t.Errorf("%d colours for 12 peers, want %d", len(seen), len(peerColors)+1)
	}
}

// The page must open without a network: nothing it could fetch.
func TestHTMLReferencesNothingOutside(t *testing.T) {
	tr, a := analyzed(incidentTrace(false))
	out := string(renderHTML(t, tr, a))
	for _, re := range []string{`(?i)<[a-z][^<>]*\ssrc\s*=`, `(?i)<link\b`, `(?i)@import`, `(?i)url\(\s*['"]?[^#'"\s]`, `(?i)@font-face`, `(?i)<iframe`, `(?i)\bfetch\(|XMLHttpRequest|\.load\(`} {
		if m := regexp.MustCompile(re).FindString(out); m != "" {
			t.Errorf("page has %q", m)
		}
	}
	for _, m := range regexp.MustCompile(`https?://[^\s"'<)]*`).FindAllString(out, -1) {
		if m != "http://www.w3.org/2000/svg" {
			t.Errorf("page names %s", m)
		}
	}
}
