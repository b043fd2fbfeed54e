package report

import (
	"context"
	"image"
	"image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// These tests load the flame graph in headless Chromium (Debian's chromium
// package) and skip when it is not installed. SNAG_FLAME_ARTIFACTS names a
// directory to keep the SVG and screenshot in for a look.

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("chromium not installed")
	return ""
}

func artifactDir(t *testing.T) string {
	if dir := os.Getenv("SNAG_FLAME_ARTIFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// runChromium runs a headless browser with everything that could reach the
// network switched off; the timeout only guards against a hung browser.
func runChromium(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir(),
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...)
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return []byte(stdout.String())
}

func writeFixtureSVG(t *testing.T, dir string) string {
	t.Helper()
	tr, a := stackFixture()
	file := filepath.Join(dir, "flame.svg")
	if err := os.WriteFile(file, renderFlame(t, tr, a), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestFlameScreenshot(t *testing.T) {
	bin := chromium(t)
	dir := artifactDir(t)
	svg := writeFixtureSVG(t, dir)
	shot := filepath.Join(dir, "flame.png")
	runChromium(t, bin, "--screenshot="+shot, "--window-size=1200,800", "file://"+svg)

	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	b := img.Bounds()
	if b.Dx() < 1000 || b.Dy() < 400 {
		t.Fatalf("screenshot is %dx%d", b.Dx(), b.Dy())
	}
	colours := map[uint32]int{}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			colours[(r>>8)<<16|(g>>8)<<8|bl>>8]++
		}
	}
	if len(colours) < 50 {
		t.Errorf("screenshot has %d distinct colours: blank or unstyled", len(colours))
	}
	// The frames fill a good part of the page, not one corner.
	if share := saturatedShare(img); share < 0.05 {
		t.Errorf("only %.1f%% of the screenshot is coloured frames", share*100)
	}
}

// saturatedShare is the fraction of pixels with a clearly coloured hue,
// which the frames have and the background and text do not.
func saturatedShare(img image.Image) float64 {
	b := img.Bounds()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			hi := math.Max(float64(r), math.Max(float64(g), float64(bl)))
			lo := math.Min(float64(r), math.Min(float64(g), float64(bl)))
			if hi > 0 && (hi-lo)/hi > 0.25 {
				n++
			}
		}
	}
	return float64(n) / float64(b.Dx()*b.Dy())
}

// TestFlameScriptZoomAndSearch runs the script with a zoom and a search
// given in the URL and reads the resulting DOM.
func TestFlameScriptZoomAndSearch(t *testing.T) {
	bin := chromium(t)
	dir := artifactDir(t)
	svg := writeFixtureSVG(t, dir)
	tr, a := stackFixture()
	doc := parseFlame(t, renderFlame(t, tr, a))
	target := doc.frame(t, "_mysql_ConnectionObject_query (_mysql.cpython-311-x86_64-linux-gnu.so)", 10)
	futex := doc.frame(t, "futex", 3)

	dom := runChromium(t, bin, "--virtual-time-budget=2000", "--dump-dom",
		"file://"+svg+"?z="+target.id+"&s=libmariadb")
	if err := os.WriteFile(filepath.Join(dir, "flame-zoomed.dom.svg"), dom, 0o644); err != nil {
		t.Fatal(err)
	}
	got := parseFlame(t, dom)
	if got.classes["hide"] == 0 || got.classes["parent"] == 0 {
		t.Fatalf("no frame hidden or dimmed after zoom (classes %v)", got.classes)
	}
	byID := map[string]svgFrame{}
	for _, f := range got.frames {
		byID[f.id] = f
	}
	const inner = flameWidth - 2*flamePadX
	if z := byID[target.id]; math.Abs(z.width-inner) > 0.01 || math.Abs(z.x-flamePadX) > 0.01 {
		t.Errorf("zoomed frame at x %.2f width %.2f, want full width", z.x, z.width)
	}
	if z := byID[target.id]; !strings.HasPrefix(z.label, "_mysql_ConnectionObject_query") {
		t.Errorf("zoomed frame label %q", z.label)
	}
	// A descendant scales with it: poll covers the whole zoomed span too.
	if p := byID[doc.frame(t, "poll", 17).id]; math.Abs(p.width-inner) > 0.01 {
		t.Errorf("poll under the zoomed frame is %.2f wide, want %d", p.width, inner)
	}
	hidden := false
	for _, line := range strings.Split(string(dom), "\n") {
		if strings.Contains(line, `id="`+futex.id+`"`) && strings.Contains(line, "hide") {
			hidden = true
		}
	}
	if !hidden {
		t.Errorf("futex frame %s outside the zoom is not hidden", futex.id)
	}
	if got.classes["match"] != 6 {
		t.Errorf("%d frames match libmariadb, want 6", got.classes["match"])
	}
	// libmariadb is under 995 ms of poll and 5 ms of read: 1000 of 1900 ms.
	if m := got.texts["matched"]; !strings.Contains(m, "52.6%") || !strings.Contains(m, "1.00 s") {
		t.Errorf("matched text %q, want 52.6%% (1.00 s)", m)
	}
}
