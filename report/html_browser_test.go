package report

import (
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/snagtrace/snag/internal/model"
)

// These tests open the HTML report in headless Chromium, as the flame graph
// tests do (and skip the same way when it is not installed), and read the
// DOM after the page's scripts ran. SNAG_FLAME_ARTIFACTS keeps the pages,
// DOMs and screenshots for a look.

// offline are flags that leave Chromium no network at all: every host name
// fails to resolve and every request goes to a proxy nobody listens on.
var offline = []string{`--host-resolver-rules=MAP * ~NOTFOUND`, "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>"}

func writePage(t *testing.T, dir, name string, tr *model.Trace, a *model.Analysis) string {
	t.Helper()
	file := filepath.Join(dir, name)
	if err := os.WriteFile(file, renderHTML(t, tr, a), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// dumpDOM loads a page, lets its scripts run and returns the DOM.
func dumpDOM(t *testing.T, bin, url string, extra ...string) string {
	t.Helper()
	args := append([]string{"--virtual-time-budget=3000", "--window-size=1280,1000", "--dump-dom"}, extra...)
	return string(runChromium(t, bin, append(args, url)...))
}

var (
	cardRe   = regexp.MustCompile(`<article class="card sev-(\w+)" id="finding-\d+" data-kind="([\w-]+)"`)
	barRe    = regexp.MustCompile(`<div class="thread" id="(thread-\d+-\d+)"[^>]*data-role="([\w-]*)" data-top="([^"]*)">`)
	sliceRe  = regexp.MustCompile(`<rect class="sl[ "]`)
	findRe   = regexp.MustCompile(`<rect class="sl finding`)
	markRe   = regexp.MustCompile(`<g class="mark sev-high" data-n="1">`)
	readyRe  = regexp.MustCompile(`<svg class="tl-svg"[^>]*data-ready="1"`)
	framesRe = regexp.MustCompile(`id="fg-host" class="fg" data-frames="(\d+)" data-ready="1"`)
)

type domFacts struct {
	cards    [][]string // severity, kind
	hubRole  string
	hubTop   string
	slices   int
	findings int
	mark     bool
	frames   int
}

func readDOM(t *testing.T, dom string) domFacts {
	t.Helper()
	if !strings.Contains(dom, `<html lang="en" data-ready="1">`) {
		t.Fatalf("page scripts did not finish:\n%.2000s", dom)
	}
	var f domFacts
	for _, m := range cardRe.FindAllStringSubmatch(dom, -1) {
		f.cards = append(f.cards, m[1:])
	}
	for _, m := range barRe.FindAllStringSubmatch(dom, -1) {
		if m[1] == "thread-4100-4100" {
			f.hubRole, f.hubTop = m[2], m[3]
		}
	}
	if !readyRe.MatchString(dom) {
		t.Errorf("timeline not drawn")
	}
	f.slices = len(sliceRe.FindAllString(dom, -1))
	f.findings = len(findRe.FindAllString(dom, -1))
	f.mark = markRe.MatchString(dom)
	if m := framesRe.FindStringSubmatch(dom); m != nil {
		f.frames, _ = strconv.Atoi(m[1])
	}
	return f
}

func checkIncidentDOM(t *testing.T, dom string) {
	t.Helper()
	f := readDOM(t, dom)
	if len(f.cards) == 0 || f.cards[0][0] != "high" || f.cards[0][1] != model.KindLoopStall {
		t.Errorf("first card is not the high loop stall: %v", f.cards)
	}
	if f.hubRole != "event-loop" || !strings.HasPrefix(f.hubTop, "peer 127.0.0.1:3306 (") || !strings.Contains(f.hubTop, "mariadbd") {
		t.Errorf("hub bar: role %q, largest segment %q; want the event loop dominated by MariaDB", f.hubRole, f.hubTop)
	}
	// 440 polls of about 20 ms and a few epoll_waits over 10 s on a plot
	// a thousand pixels wide: each is about two pixels, none merges.
	if f.slices < 440 || f.findings != 440 || !f.mark {
		t.Errorf("timeline: %d slices, %d in the finding, mark %v", f.slices, f.findings, f.mark)
	}
	if f.frames < 8 {
		t.Errorf("flame graph: %d frames", f.frames)
	}
}

func TestHTMLBrowserIncident(t *testing.T) {
	bin := chromium(t)
	dir := artifactDir(t)
	tr, a := analyzed(incidentTrace(false))
	file := writePage(t, dir, "mysqldb.html", tr, a)

	dom := dumpDOM(t, bin, "file://"+file+"?s=libmariadb")
	if err := os.WriteFile(filepath.Join(dir, "mysqldb.dom.html"), []byte(dom), 0o644); err != nil {
		t.Fatal(err)
	}
	checkIncidentDOM(t, dom)
	// The search box drove the embedded flame graph.
	if m := regexp.MustCompile(`<span id="fg-matched" class="matched">Matched “libmariadb”: ([\d.]+)%`).FindStringSubmatch(dom); m == nil {
		t.Errorf("flame graph search did not report a match")
	} else if v, _ := strconv.ParseFloat(m[1], 64); v < 40 || v > 60 {
		// 8.8 s of poll under libmariadb beside 9.6 s of the pool's futex.
		t.Errorf("libmariadb matched %.1f%% of blocked time, want about half", v)
	}

	t.Run("zoomed", func(t *testing.T) {
		// Half a second of the hub: about 23 polls, each some 40 px wide.
		dom := dumpDOM(t, bin, "file://"+file+"?t=2,2.5", offline...)
		if !strings.Contains(dom, `<span class="tl-window" id="tl-window">2.00 s – 2.50 s (zoomed)</span>`) {
			t.Errorf("timeline window not zoomed to 2–2.5 s")
		}
		wide := 0
		for _, m := range regexp.MustCompile(`<rect class="sl finding" x="[\d.]+" y="[\d.]+" width="([\d.]+)"`).FindAllStringSubmatch(dom, -1) {
			if w, _ := strconv.ParseFloat(m[1], 64); w > 25 {
				wide++
			}
		}
		if wide < 15 || wide > 30 {
			t.Errorf("%d wide poll slices in the zoomed view, want about 23", wide)
		}
		shot := filepath.Join(dir, "mysqldb-zoomed.png")
		runChromium(t, bin, append([]string{"--virtual-time-budget=3000", "--window-size=1280,2900", "--screenshot=" + shot}, append(offline, "file://"+file+"?t=2,2.5")...)...)
	})

	t.Run("offline", func(t *testing.T) {
		checkIncidentDOM(t, dumpDOM(t, bin, "file://"+file, offline...))
	})

	shot := filepath.Join(dir, "mysqldb.png")
	runChromium(t, bin, append([]string{"--virtual-time-budget=3000", "--window-size=1280,2900", "--screenshot=" + shot}, append(offline, "file://"+file)...)...)
	checkScreenshot(t, shot)
}

func TestHTMLBrowserControl(t *testing.T) {
	bin := chromium(t)
	dir := artifactDir(t)
	tr, a := analyzed(incidentTrace(true))
	file := writePage(t, dir, "pymysql.html", tr, a)
	for _, flags := range [][]string{nil, offline} {
		dom := dumpDOM(t, bin, "file://"+file, flags...)
		f := readDOM(t, dom)
		if len(f.cards) != 0 || !strings.Contains(dom, `<p class="verdict clean">No findings`) {
			t.Errorf("control shows cards %v", f.cards)
		}
		if f.hubRole != "event-loop" || f.hubTop != "idle" {
			t.Errorf("control hub bar: role %q, largest segment %q; want an event loop mostly idle", f.hubRole, f.hubTop)
		}
		if f.slices < 300 || f.findings != 0 || f.mark {
			t.Errorf("control timeline: %d slices, %d in findings, mark %v", f.slices, f.findings, f.mark)
		}
	}
	shot := filepath.Join(dir, "pymysql.png")
	runChromium(t, bin, append([]string{"--virtual-time-budget=3000", "--window-size=1280,1600", "--screenshot=" + shot}, append(offline, "file://"+file)...)...)
	checkScreenshot(t, shot)
}

// TestHTMLBrowserHostile loads a page whose every trace string is markup
// and script: the browser must build no element from them, and the page's
// own scripts must still run.
func TestHTMLBrowserHostile(t *testing.T) {
	bin := chromium(t)
	dir := artifactDir(t)
	tr, a := hostileTrace()
	file := writePage(t, dir, "hostile.html", tr, a)
	dom := dumpDOM(t, bin, "file://"+file, offline...)
	if err := os.WriteFile(filepath.Join(dir, "hostile.dom.html"), []byte(dom), 0o644); err != nil {
		t.Fatal(err)
	}
	readDOM(t, dom) // the scripts finished
	// The serializer escapes < and > in text and attributes alike, so any
	// of these is an element the page did not write.
	if n := strings.Count(dom, "<script"); n != 3 {
		t.Errorf("%d script elements in the DOM, want 3", n)
	}
	for _, raw := range []string{"<img", "<style><style", "alert(1)</script>"} {
		if strings.Contains(dom, raw) {
			t.Errorf("DOM contains %q", raw)
		}
	}
	if !strings.Contains(dom, "&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Errorf("hostile name not shown as text")
	}
}

func checkScreenshot(t *testing.T, shot string) {
	t.Helper()
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 1200 || b.Dy() < 1000 {
		t.Fatalf("screenshot is %dx%d", b.Dx(), b.Dy())
	}
	// Bars, cards, slices and frames colour the page; a blank or unstyled
	// one would be nearly all white and grey.
	if share := saturatedShare(img); share < 0.02 {
		t.Errorf("only %.1f%% of the screenshot is coloured", share*100)
	}
}

// probe is appended to a copy of the page: it hovers the first slice of the
// stall, then zooms with the wheel, through the page's own handlers, and
// leaves what it saw in attributes for the DOM dump.
const probe = `<script>
(function () {
  var svg = document.querySelector("svg.tl-svg");
  var rect = svg.querySelector("rect.sl.finding");
  var box = rect.getBoundingClientRect();
  rect.dispatchEvent(new MouseEvent("mousemove", { bubbles: true, clientX: box.left + 1, clientY: box.top + 1 }));
  var tip = document.getElementById("tl-tip");
  document.body.setAttribute("data-tip", tip.hidden ? "" : tip.textContent);
  var before = svg.querySelectorAll("rect.sl").length;
  var r = svg.getBoundingClientRect();
  svg.dispatchEvent(new WheelEvent("wheel", { bubbles: true, cancelable: true, deltaY: -800, clientX: r.left + r.width * 0.5, clientY: r.top + 60 }));
  document.body.setAttribute("data-window", document.getElementById("tl-window").textContent);
  document.body.setAttribute("data-zoom", before + ">" + svg.querySelectorAll("rect.sl").length);
})();
</script>`

func TestHTMLBrowserTimelineInteraction(t *testing.T) {
	bin := chromium(t)
	dir := artifactDir(t)
	tr, a := analyzed(incidentTrace(false))
	page := strings.Replace(string(renderHTML(t, tr, a)), "</body>", probe+"</body>", 1)
	file := filepath.Join(dir, "mysqldb-probe.html")
	if err := os.WriteFile(file, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	dom := dumpDOM(t, bin, "file://"+file, offline...)
	m := regexp.MustCompile(`<body data-tip="([^"]*)" data-window="([^"]*)" data-zoom="(\d+)&gt;(\d+)">`).FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("probe did not run:\n%.3000s", dom)
	}
	t.Logf("hover %q, window %q, slices %s then %s", m[1], m[2], m[3], m[4])
	for _, want := range []string{"poll", "ms", "on 127.0.0.1:3306", "returned 1", "began at", "127.0.0.1:3306 (mysql, mariadbd pid 900)", "part of finding 1"} {
		if !strings.Contains(m[1], want) {
			t.Errorf("hover text %q lacks %q", m[1], want)
		}
	}
	if !strings.HasSuffix(m[2], "(zoomed)") {
		t.Errorf("wheel did not zoom: window %q", m[2])
	}
	before, _ := strconv.Atoi(m[3])
	after, _ := strconv.Atoi(m[4])
	if after >= before {
		t.Errorf("zoomed view draws %d slices, the whole trace %d", after, before)
	}
}
