package report

import (
	"bufio"
	_ "embed"
	"fmt"
	"hash/fnv"
	"html"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/snagtrace/snag/internal/model"
)

// The flame graph's behaviour and look live in files of their own so they
// can be read and linted as JavaScript and CSS; they are inlined into every
// SVG, which then needs no network and no other file.
var (
	//go:embed flame/flame.js
	flameScript string
	//go:embed flame/flame.css
	flameStyle string
)

// Flame graph geometry, in SVG pixels.
const (
	flameWidth   = 1200
	flamePadX    = 10
	flameTop     = 96 // header, legend and controls above the frames
	flameFrameH  = 18
	flameFooterH = 34 // the hover detail line below the frames
	flameFontPx  = 12
	// flameCharPx estimates the advance of one character at flameFontPx
	// for the initial labels; the script measures the real font on load.
	flameCharPx = 7.2
	// flameMinPx elides frames narrower than this: invisible, and a large
	// trace would otherwise carry millions of them.
	flameMinPx = 0.1
	// flameThinPx drops the separating outline from frames this narrow,
	// which it would otherwise wash out.
	flameThinPx = 3
)

// FlameSVG writes a self-contained interactive flame graph of blocked time:
// process and thread at the base, then the user stack, the syscall at the
// tip. Frames are as wide as the time blocked beneath them; click zooms,
// "Search" highlights matches and reports their share.
func FlameSVG(w io.Writer, t *model.Trace, a *model.Analysis) error {
	root := buildFlameTree(blockedSamples(t, a))
	bw := bufio.NewWriter(w)
	fg := flameWriter{w: bw, root: root}
	fg.render(t)
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write flame graph: %w", err)
	}
	return nil
}

// flameNode is one frame of the merged call tree.
type flameNode struct {
	name     string
	class    frameClass
	blocked  time.Duration
	count    uint64
	weight   int64      // blocked ns, or calls when no event has a duration
	role     model.Role // thread frames: what the analyzer found it does
	children []*flameNode
	index    map[pathFrame]*flameNode
}

func (n *flameNode) child(f pathFrame) *flameNode {
	if c, ok := n.index[f]; ok {
		return c
	}
	c := &flameNode{name: f.name, class: f.class}
	if n.index == nil {
		n.index = map[pathFrame]*flameNode{}
	}
	n.index[f] = c
	n.children = append(n.children, c)
	return c
}

// buildFlameTree merges sample paths under an "all" frame.
func buildFlameTree(samples []blockedSample) *flameNode {
	root := &flameNode{name: "all", class: classAll}
	for _, s := range samples {
		d := max(s.ev.Duration, 0)
		n := root
		n.blocked += d
		n.count++
		for _, f := range s.path {
			n = n.child(f)
			n.blocked += d
			n.count++
			if f.class == classThread {
				n.role = s.role
			}
		}
	}
	byCount := root.blocked == 0
	var weigh func(n *flameNode)
	weigh = func(n *flameNode) {
		if byCount {
			n.weight = int64(n.count)
		} else {
			n.weight = n.blocked.Nanoseconds()
		}
		for _, c := range n.children {
			weigh(c)
		}
		// Heaviest first, so what matters most sits to the left.
		sort.Slice(n.children, func(i, j int) bool {
			a, b := n.children[i], n.children[j]
			if a.weight != b.weight {
				return a.weight > b.weight
			}
			if a.name != b.name {
				return a.name < b.name
			}
			return a.class < b.class
		})
	}
	weigh(root)
	return root
}

func (n *flameNode) depth() int {
	d := 0
	for _, c := range n.children {
		d = max(d, c.depth()+1)
	}
	return d
}

type flameWriter struct {
	w       *bufio.Writer
	root    *flameNode
	maxD    int
	nextID  int
	classes map[frameClass]bool
	// embedded leaves out the XML declaration and the script, for a page
	// that carries the SVG inline and runs flame.js itself.
	embedded bool
	// minPx elides frames narrower than this; 0 means flameMinPx.
	minPx float64
	// elided counts the frames left out for being too narrow.
	elided int
}

func (g *flameWriter) printf(format string, args ...any) {
	fmt.Fprintf(g.w, format, args...) // errors surface at Flush
}

func (g *flameWriter) render(t *model.Trace) {
	g.maxD = g.root.depth()
	g.classes = map[frameClass]bool{}
	height := flameTop + (g.maxD+1)*flameFrameH + flameFooterH
	unit := "ns"
	if g.root.blocked == 0 && g.root.count > 0 {
		unit = "calls"
	}

	if !g.embedded {
		g.printf(`<?xml version="1.0" encoding="UTF-8" standalone="no"?>` + "\n")
	}
	g.printf(`<svg version="1.1" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" data-total="%d" data-unit="%s" data-x0="%d" data-w="%d">`+"\n",
		flameWidth, height, flameWidth, height, g.root.weight, unit, flamePadX, flameWidth-2*flamePadX)
	g.printf("<style><![CDATA[\n%s]]></style>\n", flameStyle)
	g.printf(`<rect class="bg" x="0" y="0" width="%d" height="%d"/>`+"\n", flameWidth, height)

	g.header(t, unit)

	g.printf(`<g id="frames">` + "\n")
	if g.root.count > 0 {
		g.node(g.root, 0, 0)
	} else {
		g.printf(`<text class="empty" x="%d" y="%d">No syscall events to show: nothing blocked at or above the threshold.</text>`+"\n",
			flameWidth/2, flameTop+flameFrameH)
	}
	g.printf("</g>\n")

	g.legend()
	g.printf(`<text id="detail" class="detail" x="%d" y="%d"> </text>`+"\n", flamePadX, height-12)
	if !g.embedded {
		g.printf("<script><![CDATA[\n%s]]></script>\n", flameScript)
	}
	g.printf("</svg>\n")
}

func (g *flameWriter) header(t *model.Trace, unit string) {
	target := "blocked time"
	if t != nil {
		target = flameTarget(t)
	}
	g.printf(`<text class="title" x="%d" y="30">Blocked time · %s</text>`+"\n", flamePadX, flameEsc(target))

	var sub []string
	if unit == "calls" {
		sub = append(sub, flamePlural(g.root.count, "syscall")+" (no durations recorded: widths show call counts)")
	} else {
		s := model.FormatDuration(g.root.blocked) + " blocked in " + flamePlural(g.root.count, "syscall")
		sub = append(sub, s)
	}
	if t != nil {
		if t.Threshold > 0 {
			sub = append(sub, "calls ≥ "+model.FormatDuration(t.Threshold))
		}
		if t.Duration > 0 {
			sub = append(sub, "traced "+model.FormatDuration(t.Duration))
		}
		if n := flameThreadCount(g.root); n > 0 {
			sub = append(sub, flamePlural(uint64(n), "thread"))
		}
		if t.Source != "" {
			sub = append(sub, "source "+t.Source)
		}
		if n := t.Drops.Total(); n > 0 {
			sub = append(sub, flamePlural(n, "event")+" dropped")
		}
	}
	g.printf(`<text class="sub" x="%d" y="52">%s</text>`+"\n", flamePadX, flameEsc(strings.Join(sub, "  ·  ")))

	// Controls, right-aligned; the script wires them up.
	right := flameWidth - flamePadX
	const btnW = 100
	g.printf(`<g id="search" class="btn" transform="translate(%d,14)"><rect width="%d" height="24" rx="5"/><text x="%d" y="16.5">Search</text></g>`+"\n", right-btnW, btnW, btnW/2)
	g.printf(`<g id="reset" class="btn hidden" transform="translate(%d,14)"><rect width="%d" height="24" rx="5"/><text x="%d" y="16.5">Reset zoom</text></g>`+"\n", right-2*btnW-8, btnW, btnW/2)
	g.printf(`<text id="matched" class="matched" x="%d" y="82"> </text>`+"\n", right)
}

// legend lists the frame kinds present, drawn after the frames so only the
// kinds actually used appear.
func (g *flameWriter) legend() {
	entries := []struct {
		class frameClass
		label string
	}{
		{classProcess, "process"},
		{classThread, "thread"},
		{classInterpreter, "interpreter"},
		{classNative, "native code"},
		{classSyscall, "syscall"},
		{classKernel, "kernel"},
		{classUnknown, "unknown"},
	}
	g.printf(`<g class="legend" transform="translate(%d,70)">`+"\n", flamePadX)
	x := 0
	for _, e := range entries {
		if !g.classes[e.class] {
			continue
		}
		// The script respaces the items by their measured width.
		g.printf(`<g class="item" transform="translate(%d,0)"><rect width="12" height="12" rx="2" fill="%s"/><text x="17" y="10.5">%s</text></g>`+"\n",
			x, flameColor(e.class, e.label), e.label)
		x += 17 + int(float64(len(e.label))*6.0) + 18
	}
	g.printf(`<g class="item" transform="translate(%d,0)"><text class="hint" y="10.5">click a frame to zoom · Ctrl+F to search · Esc to reset</text></g>`+"\n", x+8)
	g.printf("</g>\n")
}

// node draws n at depth d starting at weight offset start, then its children.
func (g *flameWriter) node(n *flameNode, d int, start int64) {
	inner := float64(flameWidth - 2*flamePadX)
	total := float64(g.root.weight)
	w := float64(n.weight) / total * inner
	minPx := g.minPx
	if minPx == 0 {
		minPx = flameMinPx
	}
	if w < minPx {
		g.elided++
		return
	}
	g.classes[n.class] = true
	x := flamePadX + float64(start)/total*inner
	y := flameTop + (g.maxD-d)*flameFrameH
	g.nextID++

	class := "f"
	if w < flameThinPx {
		class = "f thin"
	}
	g.printf(`<g class="%s" id="f%d" data-s="%d" data-v="%d" data-d="%d">`, class, g.nextID, start, n.weight, d)
	g.printf("<title>%s</title>", flameEsc(g.tooltip(n)))
	g.printf(`<rect x="%.2f" y="%d" width="%.2f" height="%d" rx="2" fill="%s"/>`,
		x, y, w, flameFrameH-1, flameColor(n.class, n.name))
	g.printf(`<text x="%.2f" y="%.1f">%s</text>`, x+3, float64(y)+12.5, flameEsc(fitLabel(g.label(n), w)))
	g.printf("</g>\n")

	off := start
	for _, c := range n.children {
		g.node(c, d+1, off)
		off += c.weight
	}
}

// label is the text drawn in a frame: its name, and for the base frame the
// total it stands for.
func (g *flameWriter) label(n *flameNode) string {
	if n != g.root {
		return n.name
	}
	if g.root.blocked > 0 {
		return "all · " + model.FormatDuration(n.blocked) + " blocked"
	}
	return "all · " + flamePlural(n.count, "call")
}

func (g *flameWriter) tooltip(n *flameNode) string {
	share := 0.0
	if g.root.weight > 0 {
		share = float64(n.weight) / float64(g.root.weight) * 100
	}
	var b strings.Builder
	b.WriteString(g.label(n))
	b.WriteByte('\n')
	if n.role != "" {
		b.WriteString(string(n.role) + " thread: ")
	}
	if g.root.blocked > 0 {
		b.WriteString(model.FormatDuration(n.blocked) + " blocked, ")
	}
	b.WriteString(strconv.FormatFloat(share, 'f', 2, 64) + "% of total, " + flamePlural(n.count, "call"))
	if n.count > 0 && n.blocked > 0 {
		b.WriteString(", " + model.FormatDuration(n.blocked/time.Duration(n.count)) + " each on average")
	}
	return b.String()
}

// fitLabel truncates a label to the frame's width with "..", or drops it
// when not even a few characters fit.
func fitLabel(name string, width float64) string {
	room := int((width - 6) / flameCharPx)
	r := []rune(name)
	switch {
	case len(r) <= room:
		return name
	case room < 5:
		return "" // fewer than three characters and ".." say nothing
	}
	return string(r[:room-2]) + ".."
}

// flameColor picks a colour from the class's family, varied by name so
// neighbours stay distinguishable and each function keeps its colour.
func flameColor(c frameClass, name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	v := float64(h.Sum32()%1000) / 1000
	hsl := func(h0, h1, s, l0, l1 float64) string {
		return fmt.Sprintf("hsl(%.0f,%.0f%%,%.0f%%)", h0+(h1-h0)*v, s, l0+(l1-l0)*(1-v))
	}
	switch c {
	case classAll:
		return "hsl(220,10%,80%)"
	case classProcess:
		return hsl(212, 222, 32, 66, 72)
	case classThread:
		return hsl(200, 212, 42, 76, 82)
	case classNative:
		return hsl(6, 42, 82, 60, 68)
	case classInterpreter:
		return hsl(95, 135, 48, 56, 64)
	case classKernel:
		return hsl(178, 192, 45, 56, 64)
	case classSyscall:
		return hsl(262, 282, 62, 72, 78)
	}
	return "hsl(0,0%,80%)"
}

func flameTarget(t *model.Trace) string {
	name := t.Target.Comm
	if len(t.Target.Cmdline) > 0 {
		name = strings.Join(t.Target.Cmdline, " ")
	}
	if r := []rune(name); len(r) > 90 {
		name = string(r[:88]) + ".."
	}
	if t.Target.PID != 0 {
		if name == "" {
			return "pid " + strconv.Itoa(t.Target.PID)
		}
		return name + " (pid " + strconv.Itoa(t.Target.PID) + ")"
	}
	if name == "" {
		return "trace"
	}
	return name
}

func flameThreadCount(root *flameNode) int {
	n := 0
	for _, p := range root.children {
		n += len(p.children)
	}
	return n
}

func flamePlural(n uint64, what string) string {
	s := strconv.FormatUint(n, 10) + " " + what
	if n != 1 {
		s += "s"
	}
	return s
}

// flameEsc escapes text for XML character data and attribute values, and
// replaces what XML 1.0 cannot carry at all (control characters, invalid
// UTF-8) so a strange symbol name cannot break the document.
func flameEsc(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0xFFFE || r == 0xFFFF || (r >= 0xD800 && r <= 0xDFFF) {
			return '\uFFFD'
		}
		return r
	}, s)
	return html.EscapeString(s)
}
