package report

import (
	"bufio"
	"bytes"
	"cmp"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
	"github.com/snagtrace/snag/internal/syscalls"
	"github.com/snagtrace/snag/internal/version"
)

// The page's template, style and script are files of their own so they can
// be read and linted as HTML, CSS and JavaScript; every report inlines them
// and so needs no network and no other file.
//
//go:embed html/report.html.tmpl html/report.css html/report.js
var htmlAssets embed.FS

var htmlTemplate = template.Must(template.New("report.html.tmpl").ParseFS(htmlAssets, "html/report.html.tmpl"))

// Bounds on what a page embeds, so a 30 s trace of a busy server stays a
// file that mail and chat accept (about 2 MB at most). What is left out is
// said on the page.
const (
	// htmlMaxBars is how many threads get a time bar: the busiest.
	htmlMaxBars = 200
	// htmlMaxLanes is how many threads get a timeline lane: those with the
	// most time in recorded slow calls.
	htmlMaxLanes = 64
	// htmlMaxSlices caps the timeline's slices over all lanes, and
	// htmlMaxLaneSlices per lane; the longest calls are kept.
	htmlMaxSlices     = 24000
	htmlMaxLaneSlices = 3000
	// htmlFlameMinPx elides flame graph frames narrower than this, coarser
	// than the standalone SVG's: the page holds more than the graph.
	htmlFlameMinPx = 0.5
	// htmlStackFrames is how many frames of a finding's stack are listed.
	htmlStackFrames = 12
)

// HTML writes a self-contained report page: the findings first, where each
// thread's time went, a timeline of the slow calls, the blocked-time flame
// graph, the connections and how the trace was taken. Scripts, styles and
// data are inline; the page fetches nothing.
func HTML(w io.Writer, t *model.Trace, a *model.Analysis) error {
	if t == nil {
		return errors.New("html report: no trace")
	}
	if a == nil {
		a = &model.Analysis{}
	}
	p, err := buildPage(t, a)
	if err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	bw := bufio.NewWriter(w)
	if err := htmlTemplate.Execute(bw, p); err != nil {
		return fmt.Errorf("html report: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("html report: write: %w", err)
	}
	return nil
}

// htmlPage is everything the template shows. Strings are plain text: the
// template escapes them for where they land, and the trace's own strings
// (process names, paths, peers) are hostile input.
type htmlPage struct {
	Title    string
	Target   string
	Cmdline  string
	Subtitle string
	Verdict  string
	Findings []htmlFinding

	Legend   []htmlCategory
	Procs    []htmlProcess
	BarsNote string
	Analyzed bool

	Timeline     htmlTimeline
	TimelineNote []string

	Flame     template.HTML // rendered by flameWriter, which escapes every name
	FlameNote string

	Conns []htmlConn
	Info  []htmlKV

	Version string
	CSS     template.CSS
	JS      template.JS
	FlameJS template.JS
}

type htmlKV struct{ Key, Value, Class string }

type htmlFinding struct {
	N         int
	ID        string
	Severity  string
	Kind      string
	Title     string
	Numbers   string
	Thread    string
	ThreadRef string // fragment of the thread's bar, "" when no thread
	Evidence  []htmlKV
	Stack     []htmlFrame
	StackMore int
	Detail    string
	Hint      string
}

type htmlFrame struct {
	Text  string
	Class string // "lib" for the blocking library, "py" for interpreter frames
}

type htmlProcess struct {
	ID      string
	PID     int
	Name    string
	Runtime string
	Cmdline string
	Roles   []htmlRole
}

type htmlRole struct {
	Role    string
	Label   string
	Threads []htmlBar
}

type htmlBar struct {
	ID       string
	PID, TID int
	Name     string
	Role     string
	Evidence string
	Life     string
	Top      string // the largest segment's category
	Summary  string // "81.2% blocked on 127.0.0.1:3306"
	Segments []htmlSegment
}

type htmlSegment struct {
	Category string // the analyzer's budget category, "peer 127.0.0.1:3306"
	Label    string
	Class    string // cpu, idle, unaccounted or blocked
	Color    string
	Width    string // CSS percentage
	Share    string // of the thread's time
	Time     string
}

type htmlCategory struct {
	Category string
	Label    string
	Class    string
	Color    string
}

type htmlConn struct {
	Peer, Service, Direction string
	Connects, Accepts        string
	Threads                  string
	Expected, BeforeAttach   bool
	Rate                     string // connects per second
	Lifetime, ConnectTime    string
	Churn                    bool // a finding names this peer as churn
	Unexpected               bool // a finding names this peer as unexpected
}

// htmlTimeline is the timeline's data, embedded as JSON. Slices are a flat
// array of numbers (sliceStride per slice) into a string table: a trace
// holds thousands of them, and names repeat.
type htmlTimeline struct {
	Dur    int64         `json:"dur"` // µs
	Strs   []string      `json:"strs"`
	Cats   []htmlCatJSON `json:"cats"`
	Lanes  []htmlLane    `json:"lanes"`
	Slices []int64       `json:"sl"`
	Marks  []htmlMark    `json:"marks"`
}

// Fields of one slice in htmlTimeline.Slices.
const (
	slLane = iota
	slStart
	slDur
	slName     // string: the syscall
	slDetail   // string: peer, file or fd
	slRet      // string: the return value
	slDurLabel // string: the duration, formatted as everywhere else
	slCat      // index into Cats
	slFlags
	slFinding // finding number, 0 for none
	sliceStride
)

// Slice flags.
const (
	slicePartial = 1 // began before the attach: the start is the attach
)

type htmlCatJSON struct {
	Label string `json:"label"`
	Color string `json:"color"`
}

type htmlLane struct {
	ID    string `json:"id"`
	Label string `json:"label"`
	Role  string `json:"role,omitempty"`
	Proc  string `json:"proc,omitempty"` // set on the first lane of each process
	Total int    `json:"total"`          // slow calls recorded on the thread
	Shown int    `json:"shown"`
}

type htmlMark struct {
	Lane     int    `json:"lane"`
	At       int64  `json:"at"` // µs
	N        int    `json:"n"`
	Severity string `json:"sev"`
	Title    string `json:"title"`
}

// buildPage gathers the page's content from the trace and its analysis.
func buildPage(t *model.Trace, a *model.Analysis) (*htmlPage, error) {
	css, err := htmlAssets.ReadFile("html/report.css")
	if err != nil {
		return nil, err
	}
	js, err := htmlAssets.ReadFile("html/report.js")
	if err != nil {
		return nil, err
	}
	target := "pid " + strconv.Itoa(t.Target.PID)
	if t.Target.Comm != "" {
		target = t.Target.Comm + " (" + target + ")"
	}
	p := &htmlPage{
		Title:   "snag · " + target,
		Target:  target,
		Version: version.Get().String(),
		CSS:     template.CSS(css),
		JS:      template.JS(js),
		FlameJS: template.JS(flameScript),
	}
	if len(t.Target.Cmdline) > 0 {
		p.Cmdline = truncate(formatCmdline(t.Target.Cmdline), 200)
	}
	var sub []string
	if t.Duration > 0 {
		sub = append(sub, "traced "+model.FormatDuration(t.Duration))
	}
	if !t.Start.IsZero() {
		sub = append(sub, "from "+t.Start.UTC().Format("2006-01-02 15:04:05 MST"))
	}
	if t.Source != "" {
		sub = append(sub, "source "+t.Source)
	}
	p.Subtitle = strings.Join(sub, " · ")

	rows, analyzed := threadRows(t, a)
	p.Analyzed = analyzed
	pal := newPalette(rows)
	p.findings(t, a)
	p.bars(t, a, rows, pal)
	p.timeline(t, a, rows, pal)
	p.Legend = pal.legend()
	if err := p.flame(t, a); err != nil {
		return nil, err
	}
	p.connections(t, a)
	p.info(t)
	return p, nil
}

// threadID is the fragment naming a thread's bar, which findings link to.
func threadID(pid, tid int) string { return "thread-" + strconv.Itoa(pid) + "-" + strconv.Itoa(tid) }

func (p *htmlPage) findings(t *model.Trace, a *model.Analysis) {
	fs := slices.Clone(a.Findings)
	slices.SortStableFunc(fs, func(x, y model.Finding) int { return cmp.Compare(y.Severity, x.Severity) })
	counts := map[model.Severity]int{}
	names := threadNames(t, a)
	for i := range fs {
		f := &fs[i]
		counts[f.Severity]++
		hf := htmlFinding{N: i + 1, ID: "finding-" + strconv.Itoa(i+1), Severity: f.Severity.String(), Kind: f.Kind,
			Title: f.Title, Numbers: findingNumbers(f, t.Duration), Detail: f.Detail, Hint: f.Hint}
		if hf.Title == "" {
			hf.Title = f.Kind
		}
		if f.TID != 0 || f.Thread != "" {
			name := f.Thread
			if name == "" {
				name = names[threadKey{f.PID, f.TID}]
			}
			hf.Thread = threadLabel(name, f.TID)
			if f.TID != 0 {
				pid := f.PID
				if pid == 0 {
					pid = pidOf(t, f.TID)
				}
				hf.ThreadRef = threadID(pid, f.TID)
			}
		}
		ev := func(k, v string) {
			if v != "" {
				hf.Evidence = append(hf.Evidence, htmlKV{Key: k, Value: v})
			}
		}
		ev("syscall", f.Syscall)
		peer := f.Peer
		if f.Service != "" {
			if peer == "" {
				peer = f.Service
			} else {
				peer += " (" + f.Service + ")"
			}
		}
		ev("peer", peer)
		ev("file", f.Path)
		ev("library", f.Library)
		ev("runtime", f.Runtime)
		shown := f.Stack[:min(len(f.Stack), htmlStackFrames)]
		// Mark the blocking library's frames, unless every frame is in it
		// (a static binary), where marking tells nothing.
		lib := f.Library != "" && slices.ContainsFunc(f.Stack, func(fr string) bool {
			return !strings.Contains(fr, "("+f.Library+")") && fr != "[truncated]"
		})
		for _, fr := range shown {
			class := ""
			switch {
			case lib && strings.Contains(fr, "("+f.Library+")"):
				class = "lib"
			case strings.HasSuffix(fr, ".py)"):
				class = "py"
			}
			hf.Stack = append(hf.Stack, htmlFrame{Text: fr, Class: class})
		}
		hf.StackMore = len(f.Stack) - len(shown)
		p.Findings = append(p.Findings, hf)
	}
	var parts []string
	for _, s := range []model.Severity{model.SeverityHigh, model.SeverityMedium, model.SeverityLow} {
		if counts[s] > 0 {
			parts = append(parts, strconv.Itoa(counts[s])+" "+s.String())
		}
	}
	switch {
	case len(fs) == 0:
		p.Verdict = "No findings: nothing in this trace blocked an event loop, saturated a pool or reached an unexpected peer."
	case len(fs) == 1:
		p.Verdict = "1 finding (" + strings.Join(parts, ", ") + ")."
	default:
		p.Verdict = strconv.Itoa(len(fs)) + " findings (" + strings.Join(parts, ", ") + "), most severe first."
	}
}

// Budget categories the analyzer names (analyzer/threads.go).
const (
	budgetCPU         = "cpu"
	budgetIdle        = "idle"
	budgetUnaccounted = "unaccounted"
	budgetPeerPrefix  = "peer "
)

// budgetOf is a thread's wall time by category: the analyzer's budget, or
// what the trace alone tells (on CPU, in syscalls) without an analysis.
func budgetOf(r threadRow, wall time.Duration) []model.BudgetItem {
	items := slices.Clone(r.Budget)
	has := func(cat string) bool {
		return slices.ContainsFunc(items, func(it model.BudgetItem) bool { return it.Category == cat })
	}
	if len(items) == 0 {
		if r.OnCPU > 0 {
			items = append(items, model.BudgetItem{Category: budgetCPU, Time: r.OnCPU})
		}
		if r.Blocked > 0 {
			items = append(items, model.BudgetItem{Category: "blocked", Time: r.Blocked})
		} else if r.Idle == 0 && r.InSyscall > 0 {
			items = append(items, model.BudgetItem{Category: "in syscalls", Time: r.InSyscall})
		}
	}
	if r.Idle > 0 && !has(budgetIdle) {
		items = append(items, model.BudgetItem{Category: budgetIdle, Time: r.Idle})
	}
	if !has(budgetUnaccounted) && !r.Started && !r.Exited {
		var sum time.Duration
		for _, it := range items {
			sum += it.Time
		}
		if rest := wall - sum; rest > 0 {
			items = append(items, model.BudgetItem{Category: budgetUnaccounted, Time: rest})
		}
	}
	// CPU first, then what blocked the thread, largest first, then its
	// idle wait and what is unaccounted for.
	rank := func(c string) int {
		switch c {
		case budgetCPU:
			return 0
		case budgetIdle:
			return 2
		case budgetUnaccounted:
			return 3
		}
		return 1
	}
	slices.SortStableFunc(items, func(x, y model.BudgetItem) int {
		if c := cmp.Compare(rank(x.Category), rank(y.Category)); c != 0 {
			return c
		}
		if c := cmp.Compare(y.Time, x.Time); c != 0 {
			return c
		}
		return strings.Compare(x.Category, y.Category)
	})
	return slices.DeleteFunc(items, func(it model.BudgetItem) bool { return it.Time <= 0 })
}

func segmentClass(cat string) string {
	switch cat {
	case budgetCPU, budgetIdle, budgetUnaccounted:
		return cat
	}
	return "blocked"
}

// categoryLabel names a budget category for people: a peer with the service
// its connection was named, "on CPU", "idle".
func categoryLabel(cat string, services map[string]string) string {
	switch cat {
	case budgetCPU:
		return "on CPU"
	case budgetIdle:
		return "idle wait"
	}
	peer, ok := strings.CutPrefix(cat, budgetPeerPrefix)
	if !ok {
		return cat
	}
	addr, _, _ := strings.Cut(peer, " ")
	if svc := services[addr]; svc != "" && !strings.Contains(peer, svc) {
		return peer + " · " + svc
	}
	return peer
}

// palette gives every category one colour across bars, legend and
// timeline: fixed hues for the kinds of wait, and strong hues for the peers
// the most time went to, so the worst stands out in red. Peers past those
// share one colour and one legend entry.
type palette struct {
	colors   map[string]string
	order    []string // legend entries in use
	services map[string]string
}

// otherPeers is the legend entry of the peers without a colour of their own.
const otherPeers = "other peers"

var fixedColors = map[string]string{
	budgetCPU:         "#3d9a5b",
	budgetIdle:        "#d3d9e3",
	budgetUnaccounted: "#eceef2",
	"futex":           "#9a7fd0",
	"sleep":           "#cdb54f",
	"file":            "#c9783a",
	"io":              "#dba46b",
	"pipe":            "#5fa8a0",
	"network":         "#5b8fd6",
	"readiness":       "#86b6e6",
	"child wait":      "#a3a3ad",
	"other":           "#8d8d99",
	"blocked":         "#c85a5a",
	"in syscalls":     "#8d8d99",
	otherPeers:        "#b08f8f",
}

var peerColors = []string{"#d64541", "#e8843a", "#c23f86", "#2f7fb8", "#8a5a2b", "#7b52c7", "#1f9a8a", "#b8860b"}

func newPalette(rows []threadRow) *palette {
	pal := &palette{colors: map[string]string{}}
	peerTime := map[string]time.Duration{}
	for _, r := range rows {
		for _, it := range r.Budget {
			if strings.HasPrefix(it.Category, budgetPeerPrefix) {
				peerTime[it.Category] += it.Time
			}
		}
	}
	peers := make([]string, 0, len(peerTime))
	for c := range peerTime {
		peers = append(peers, c)
	}
	slices.SortFunc(peers, func(x, y string) int {
		if c := cmp.Compare(peerTime[y], peerTime[x]); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	for i, c := range peers[:min(len(peers), len(peerColors))] {
		pal.colors[c] = peerColors[i]
	}
	return pal
}

// legendKey is the legend entry a category is shown under.
func (pal *palette) legendKey(cat string) string {
	if _, ok := pal.colors[cat]; !ok && strings.HasPrefix(cat, budgetPeerPrefix) {
		return otherPeers
	}
	return cat
}

// color returns the category's colour and notes it for the legend.
func (pal *palette) color(cat string) string {
	key := pal.legendKey(cat)
	if !slices.Contains(pal.order, key) {
		pal.order = append(pal.order, key)
	}
	if c, ok := pal.colors[key]; ok {
		return c
	}
	if c, ok := fixedColors[key]; ok {
		return c
	}
	return fixedColors["other"]
}

func (pal *palette) legend() []htmlCategory {
	rank := func(c string) int {
		switch {
		case c == budgetCPU:
			return 0
		case strings.HasPrefix(c, budgetPeerPrefix):
			return 1
		case c == otherPeers:
			return 2
		case c == budgetIdle:
			return 4
		case c == budgetUnaccounted:
			return 5
		}
		return 3
	}
	order := slices.Clone(pal.order)
	slices.SortStableFunc(order, func(x, y string) int { return cmp.Compare(rank(x), rank(y)) })
	out := make([]htmlCategory, len(order))
	for i, c := range order {
		out[i] = htmlCategory{Category: c, Label: categoryLabel(c, pal.services), Class: segmentClass(c), Color: pal.color(c)}
	}
	return out
}

// roleOrder puts the threads that serve work first: where a stall hurts.
func roleOrder(r model.Role) int {
	switch r {
	case model.RoleEventLoop:
		return 0
	case model.RoleSyncWorker:
		return 1
	case model.RoleWorker:
		return 2
	case model.RoleAcceptor:
		return 3
	case model.RoleOther:
		return 4
	case model.RoleIdle:
		return 5
	}
	return 6
}

// orderRows sorts threads by process, then role, then busiest first.
func orderRows(rows []threadRow) {
	busy := func(r threadRow) time.Duration { return r.OnCPU + r.Blocked + r.InSyscall - r.Idle }
	slices.SortStableFunc(rows, func(x, y threadRow) int {
		if c := cmp.Compare(x.PID, y.PID); c != 0 {
			return c
		}
		if c := cmp.Compare(roleOrder(x.Role), roleOrder(y.Role)); c != 0 {
			return c
		}
		if c := cmp.Compare(busy(y), busy(x)); c != 0 {
			return c
		}
		return cmp.Compare(x.TID, y.TID)
	})
}

func (p *htmlPage) bars(t *model.Trace, a *model.Analysis, rows []threadRow, pal *palette) {
	pal.services = map[string]string{}
	for _, c := range a.Connections {
		if c.Service != "" {
			pal.services[c.Peer.String()] = c.Service
		}
	}
	shown := slices.Clone(rows)
	if len(shown) > htmlMaxBars {
		// Keep the busiest: idle threads of a large pool say little apiece.
		slices.SortStableFunc(shown, func(x, y threadRow) int {
			return cmp.Compare(y.OnCPU+y.Blocked+y.InSyscall-y.Idle, x.OnCPU+x.Blocked+x.InSyscall-x.Idle)
		})
		p.BarsNote = fmt.Sprintf("%d of %d threads shown, the busiest; the other %d spent their time mostly idle.",
			htmlMaxBars, len(rows), len(rows)-htmlMaxBars)
		shown = shown[:htmlMaxBars]
	}
	orderRows(shown)
	procNames := processNames(t)
	runtimes := map[int]string{}
	cmdlines := map[int]string{}
	for _, pr := range t.Processes {
		if !pr.Runtime.IsZero() {
			runtimes[pr.PID] = pr.Runtime.String()
		}
		if len(pr.Cmdline) > 0 {
			cmdlines[pr.PID] = truncate(formatCmdline(pr.Cmdline), 160)
		}
	}
	if _, ok := cmdlines[t.Target.PID]; !ok && len(t.Target.Cmdline) > 0 {
		cmdlines[t.Target.PID] = truncate(formatCmdline(t.Target.Cmdline), 160)
	}
	for _, r := range shown {
		if len(p.Procs) == 0 || p.Procs[len(p.Procs)-1].PID != r.PID {
			name := procNames[r.PID]
			if name == "" {
				name = "pid " + strconv.Itoa(r.PID)
			} else {
				name += " (pid " + strconv.Itoa(r.PID) + ")"
			}
			p.Procs = append(p.Procs, htmlProcess{ID: "proc-" + strconv.Itoa(r.PID), PID: r.PID, Name: name,
				Runtime: runtimes[r.PID], Cmdline: cmdlines[r.PID]})
		}
		proc := &p.Procs[len(p.Procs)-1]
		role := string(r.Role)
		if len(proc.Roles) == 0 || proc.Roles[len(proc.Roles)-1].Role != role {
			label := role
			if label == "" {
				label = "threads"
			}
			proc.Roles = append(proc.Roles, htmlRole{Role: role, Label: label})
		}
		group := &proc.Roles[len(proc.Roles)-1]
		group.Threads = append(group.Threads, p.bar(r, t.Duration, pal))
	}
	for i := range p.Procs {
		for j := range p.Procs[i].Roles {
			g := &p.Procs[i].Roles[j]
			g.Label += " · " + strconv.Itoa(len(g.Threads)) + " thread"
			if len(g.Threads) != 1 {
				g.Label += "s"
			}
		}
	}
}

func (p *htmlPage) bar(r threadRow, wall time.Duration, pal *palette) htmlBar {
	b := htmlBar{ID: threadID(r.PID, r.TID), PID: r.PID, TID: r.TID, Name: threadLabel(r.Name, r.TID),
		Role: string(r.Role), Evidence: r.Evidence}
	switch {
	case r.Started && r.Exited:
		b.Life = "started and ended while traced"
	case r.Started:
		b.Life = "started while traced"
	case r.Exited:
		b.Life = "ended while traced"
	}
	items := budgetOf(r, wall)
	var sum time.Duration
	for _, it := range items {
		sum += it.Time
	}
	if sum <= 0 {
		b.Summary = "no time recorded"
		return b
	}
	var top model.BudgetItem
	for _, it := range items {
		share := float64(it.Time) / float64(sum)
		label := categoryLabel(it.Category, pal.services)
		b.Segments = append(b.Segments, htmlSegment{
			Category: it.Category, Label: label, Class: segmentClass(it.Category), Color: pal.color(it.Category),
			Width: strconv.FormatFloat(share*100, 'f', 3, 64) + "%", Share: formatShare(share), Time: model.FormatDuration(it.Time),
		})
		if it.Time > top.Time {
			top = it
		}
	}
	b.Top = top.Category
	share := formatShare(float64(top.Time) / float64(sum))
	switch segmentClass(top.Category) {
	case budgetCPU:
		b.Summary = share + " on CPU"
	case budgetIdle:
		b.Summary = share + " idle"
		if r.LoopWait != "" {
			b.Summary += " in " + r.LoopWait
		}
	case budgetUnaccounted:
		b.Summary = share + " unaccounted"
	default:
		if strings.HasPrefix(top.Category, budgetPeerPrefix) {
			b.Summary = share + " blocked on " + categoryLabel(top.Category, pal.services)
		} else {
			b.Summary = share + " blocked: " + categoryLabel(top.Category, pal.services)
		}
	}
	return b
}

// sliceEvent reports whether an event is drawn as a slice: the syscalls and
// the calls that name a peer, as in the Perfetto output.
func sliceEvent(e *model.Event) bool {
	switch e.Kind {
	case model.EvSyscall, model.EvConnect, model.EvAccept, model.EvBind, model.EvSendTo:
		return true
	}
	return false
}

// sliceCategory colours a slice as the thread's bar colours its time: the
// loop's own wait is idle, a call on a peer is that peer, others go by the
// kind of fd or of call.
func sliceCategory(e *model.Event, r *threadRow) string {
	name := syscallName(e.Syscall, e.Nr)
	if r != nil && r.LoopWait != "" && name == r.LoopWait {
		return budgetIdle
	}
	// A peer the thread's bar names; other peers (a server's clients, each
	// on its own port) go by the kind of fd below, and the hover names them.
	if !e.Peer.IsZero() && r != nil {
		peer := budgetPeerPrefix + e.Peer.String()
		for _, it := range r.Budget {
			if it.Category == peer || strings.HasPrefix(it.Category, peer+" ") {
				return it.Category
			}
		}
	}
	if e.FDKnown {
		switch e.FDKind {
		case model.FDFile:
			return "file"
		case model.FDPipe:
			return "pipe"
		case model.FDSocket:
			return "network"
		}
	}
	if !e.Peer.IsZero() {
		return "network"
	}
	switch syscalls.ClassOf(name) {
	case syscalls.ClassReadiness:
		return "readiness"
	case syscalls.ClassSocketRecv, syscalls.ClassSocketSend, syscalls.ClassConnect, syscalls.ClassAccept:
		return "network"
	case syscalls.ClassFileIO:
		return "io"
	case syscalls.ClassSync:
		return "file"
	case syscalls.ClassSleep:
		return "sleep"
	case syscalls.ClassFutex:
		return "futex"
	case syscalls.ClassProcWait:
		return "child wait"
	}
	return "other"
}

// retLabel renders a syscall's return value, naming an errno.
func retLabel(e *model.Event) string {
	if e.Failed() {
		return strconv.FormatInt(e.Ret, 10) + " (" + syscalls.ErrnoText(-e.Ret) + ")"
	}
	return strconv.FormatInt(e.Ret, 10)
}

// stringTable interns the timeline's strings.
type stringTable struct {
	strs  []string
	index map[string]int
}

func (st *stringTable) id(s string) int64 {
	if i, ok := st.index[s]; ok {
		return int64(i)
	}
	if st.index == nil {
		st.index = map[string]int{}
	}
	st.index[s] = len(st.strs)
	st.strs = append(st.strs, s)
	return int64(len(st.strs) - 1)
}

func (p *htmlPage) timeline(t *model.Trace, a *model.Analysis, rows []threadRow, pal *palette) {
	tl := &p.Timeline
	tl.Dur = int64(max(t.Duration, 0) / time.Microsecond)
	rowOf := map[threadKey]*threadRow{}
	for i := range rows {
		rowOf[threadKey{rows[i].PID, rows[i].TID}] = &rows[i]
	}
	// Slow calls by thread, and threads seen only in events.
	byThread := map[threadKey][]*model.Event{}
	var slowTime = map[threadKey]time.Duration{}
	var end uint64
	for i := range t.Events {
		e := &t.Events[i]
		if !sliceEvent(e) {
			continue
		}
		k := threadKey{e.PID, e.TID}
		byThread[k] = append(byThread[k], e)
		slowTime[k] += max(e.Duration, 0)
		end = max(end, e.Time)
	}
	if t.StartNS > 0 && end > t.StartNS {
		tl.Dur = max(tl.Dur, int64((end-t.StartNS)/1e3))
	}
	laneRows := slices.Clone(rows)
	for k := range byThread {
		if rowOf[k] == nil {
			laneRows = append(laneRows, threadRow{PID: k.pid, TID: k.tid})
		}
	}
	if len(laneRows) > htmlMaxLanes {
		slices.SortStableFunc(laneRows, func(x, y threadRow) int {
			return cmp.Compare(slowTime[threadKey{y.PID, y.TID}], slowTime[threadKey{x.PID, x.TID}])
		})
		p.TimelineNote = append(p.TimelineNote, fmt.Sprintf("%d of %d threads have a lane: those with the most time in slow calls.",
			htmlMaxLanes, len(laneRows)))
		laneRows = laneRows[:htmlMaxLanes]
	}
	orderRows(laneRows)

	// Findings: which slices they are about, and a mark at the first one.
	fs := slices.Clone(a.Findings)
	slices.SortStableFunc(fs, func(x, y model.Finding) int { return cmp.Compare(y.Severity, x.Severity) })
	about := func(e *model.Event) int {
		for i := range fs {
			f := &fs[i]
			if f.TID == 0 && f.Syscall == "" && f.Peer == "" {
				continue
			}
			if (f.TID != 0 && e.TID != f.TID) || (f.PID != 0 && e.PID != f.PID) ||
				(f.Syscall != "" && syscallName(e.Syscall, e.Nr) != f.Syscall) ||
				(f.Peer != "" && e.Peer.String() != f.Peer) {
				continue
			}
			return i + 1
		}
		return 0
	}

	perLane := htmlMaxLaneSlices
	if n := len(laneRows); n > 0 {
		perLane = min(perLane, max(htmlMaxSlices/n, 200))
	}
	var st stringTable
	catIndex := map[string]int64{}
	cat := func(c string) int64 {
		if i, ok := catIndex[c]; ok {
			return i
		}
		i := int64(len(tl.Cats))
		catIndex[c] = i
		tl.Cats = append(tl.Cats, htmlCatJSON{Label: categoryLabel(c, pal.services), Color: pal.color(c)})
		return i
	}
	fdPaths := map[[2]int]string{}
	for _, f := range t.Files {
		fdPaths[[2]int{f.PID, f.FD}] = f.Path
	}
	procNames := processNames(t)
	names := threadNames(t, a)
	laneOf := map[threadKey]int{}
	var cut, cutLanes int
	for li, r := range laneRows {
		k := threadKey{r.PID, r.TID}
		laneOf[k] = li
		evs := byThread[k]
		lane := htmlLane{ID: threadID(r.PID, r.TID), Label: threadLabel(names[k], r.TID), Role: string(r.Role), Total: len(evs)}
		if li == 0 || laneRows[li-1].PID != r.PID {
			lane.Proc = procNames[r.PID]
			if lane.Proc == "" {
				lane.Proc = "pid " + strconv.Itoa(r.PID)
			} else {
				lane.Proc += " (pid " + strconv.Itoa(r.PID) + ")"
			}
		}
		if len(evs) > perLane {
			// The longest calls tell where the time went; the rest are said
			// to be left out.
			evs = slices.Clone(evs)
			slices.SortFunc(evs, func(x, y *model.Event) int {
				if c := cmp.Compare(y.Duration, x.Duration); c != 0 {
					return c
				}
				return cmp.Compare(x.Time, y.Time)
			})
			evs = evs[:perLane]
			cut += lane.Total - perLane
			cutLanes++
		}
		slices.SortFunc(evs, func(x, y *model.Event) int {
			if c := cmp.Compare(eventBegin(x), eventBegin(y)); c != 0 {
				return c
			}
			return cmp.Compare(x.Time, y.Time)
		})
		lane.Shown = len(evs)
		for _, e := range evs {
			begin := int64(usSince(t, eventBegin(e)))
			dur := max(int64(usSince(t, e.Time))-begin, 0)
			detail := e.Peer.String()
			if detail == "" && e.FD >= 0 {
				if path := fdPaths[[2]int{e.PID, e.FD}]; path != "" {
					detail = path
				} else {
					detail = "fd " + strconv.Itoa(e.FD)
					if e.FDKnown {
						detail += " (" + e.FDKind.String() + ")"
					}
				}
			}
			var flags int64
			if e.Partial {
				flags |= slicePartial
			}
			tl.Slices = append(tl.Slices, int64(li), begin, dur,
				st.id(syscallName(e.Syscall, e.Nr)), st.id(detail), st.id(retLabel(e)), st.id(model.FormatDuration(e.Duration)),
				cat(sliceCategory(e, rowOf[k])), flags, int64(about(e)))
		}
		tl.Lanes = append(tl.Lanes, lane)
	}
	tl.Strs = st.strs
	if tl.Strs == nil {
		tl.Strs = []string{}
	}
	if tl.Slices == nil {
		tl.Slices = []int64{}
	}
	if cut > 0 {
		p.TimelineNote = append(p.TimelineNote, fmt.Sprintf(
			"%s shorter slow calls on %d busy threads are left out of the timeline (at most %s a thread, the longest kept); the bars, the flame graph and the findings count them all.",
			formatCount(uint64(cut)), cutLanes, formatCount(uint64(perLane))))
	}
	for i := range fs {
		f := &fs[i]
		m := htmlMark{N: i + 1, Severity: f.Severity.String(), Title: f.Title}
		if m.Title == "" {
			m.Title = f.Kind
		}
		if e := firstMatch(t, f); e != nil {
			li, ok := laneOf[threadKey{e.PID, e.TID}]
			if !ok {
				continue
			}
			m.Lane, m.At = li, int64(usSince(t, eventBegin(e)))
		} else {
			pid := f.PID
			if pid == 0 && f.TID != 0 {
				pid = pidOf(t, f.TID)
			}
			tid := f.TID
			if tid == 0 {
				tid = pid
			}
			li, ok := laneOf[threadKey{pid, tid}]
			if !ok {
				continue
			}
			m.Lane = li
		}
		tl.Marks = append(tl.Marks, m)
	}
	if tl.Marks == nil {
		tl.Marks = []htmlMark{}
	}
	if tl.Lanes == nil {
		tl.Lanes = []htmlLane{}
	}
	if tl.Cats == nil {
		tl.Cats = []htmlCatJSON{}
	}
}

func (p *htmlPage) flame(t *model.Trace, a *model.Analysis) error {
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	fg := flameWriter{w: bw, root: buildFlameTree(blockedSamples(t, a)), embedded: true, minPx: htmlFlameMinPx}
	fg.render(t)
	if err := bw.Flush(); err != nil {
		return err
	}
	// flameWriter escapes every name it writes (flameEsc).
	p.Flame = template.HTML(buf.String())
	if fg.elided > 0 {
		p.FlameNote = fmt.Sprintf("%s frames narrower than %.1f px are left out; click a frame to zoom into it.",
			formatCount(uint64(fg.elided)), htmlFlameMinPx)
	}
	return nil
}

func (p *htmlPage) connections(t *model.Trace, a *model.Analysis) {
	churn, unexpected := map[string]bool{}, map[string]bool{}
	for _, f := range a.Findings {
		switch f.Kind {
		case model.KindConnectionChurn:
			churn[f.Peer] = true
		case model.KindUnexpectedConnection:
			unexpected[f.Peer] = true
		}
	}
	conns := slices.Clone(a.Connections)
	sortConnections(conns)
	for _, c := range conns {
		hc := htmlConn{Peer: tablePeer(c), Service: c.Service, Direction: connDirection(c),
			Connects: formatCount(c.Connects), Accepts: formatCount(c.Accepts), Threads: formatTIDs(c.TIDs),
			Expected: c.Expected, BeforeAttach: c.BeforeAttach,
			Churn: churn[c.Peer.String()], Unexpected: unexpected[c.Peer.String()]}
		if c.Connects > 0 && t.Duration > 0 {
			hc.Rate = strconv.FormatFloat(float64(c.Connects)/t.Duration.Seconds(), 'f', 1, 64) + "/s"
		}
		if c.MedianLifetime > 0 {
			hc.Lifetime = model.FormatDuration(c.MedianLifetime)
		}
		if c.ConnectTime > 0 {
			hc.ConnectTime = model.FormatDuration(c.ConnectTime)
		}
		p.Conns = append(p.Conns, hc)
	}
}

func (p *htmlPage) info(t *model.Trace) {
	kv := func(k, v string) { p.Info = append(p.Info, htmlKV{Key: k, Value: v}) }
	target := "pid " + strconv.Itoa(t.Target.PID)
	if t.Target.Comm != "" {
		target += " " + t.Target.Comm
	}
	kv("target", target)
	if len(t.Target.Cmdline) > 0 {
		kv("command line", formatCmdline(t.Target.Cmdline))
	}
	if t.Target.Exe != "" {
		kv("executable", t.Target.Exe)
	}
	if len(t.Processes) > 1 {
		exited := 0
		for _, pr := range t.Processes {
			if pr.Exited {
				exited++
			}
		}
		kv("processes", fmt.Sprintf("%d traced (%d exited)", len(t.Processes), exited))
	}
	source := t.Source
	switch t.Source {
	case "ebpf":
		source = "live eBPF trace"
	case "recording":
		source = "a snag recording"
	case "strace":
		source = "an strace log"
	case "":
		source = "unknown"
	}
	if t.Arch != "" {
		source += " (" + t.Arch + ")"
	}
	kv("source", source)
	if !t.Start.IsZero() {
		kv("started", t.Start.UTC().Format(time.RFC3339))
	}
	kv("duration", model.FormatDuration(t.Duration))
	if t.Threshold > 0 {
		kv("threshold", "calls of "+model.FormatDuration(t.Threshold)+" or longer recorded one by one; every call counted")
	} else {
		kv("threshold", "none: every call recorded")
	}
	kv("events", eventSummary(t.Events))
	dropped := formatCount(t.Drops.Total())
	if parts := dropBreakdown(t.Drops); len(parts) > 0 {
		dropped += " (" + strings.Join(parts, ", ") + ")"
		p.Info = append(p.Info, htmlKV{Key: "dropped", Value: dropped, Class: "warn"})
	} else {
		kv("dropped", dropped)
	}
	blocked := 0
	for _, b := range t.Blocked {
		if !b.Running {
			blocked++
		}
	}
	if blocked > 0 {
		kv("in a syscall at attach", strconv.Itoa(blocked)+" threads; their calls show as partial slices when they returned")
	}
	if lines := costLines(t); len(lines) > 0 {
		kv("cost", strings.Join(lines, "; "))
	}
	kv("version", p.Version)
}
