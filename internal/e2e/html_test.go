//go:build linux

package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/snagtrace/snag/internal/testutil"
)

// The HTML report of the real gevent example, opened offline in headless
// Chromium: the MySQLdb incident shows the loop-stall card, the hub's bar
// dominated by MariaDB and the timeline's slices; the PyMySQL control shows
// no card and a hub mostly idle.
func TestGeventHTMLReport(t *testing.T) {
	requireGevent(t)
	testutil.RequireCommands(t, testutil.Command{Name: "chromium", Package: "chromium"})
	browser, _ := testutil.LookCommand("chromium")
	for _, tc := range []struct {
		driver   string
		stall    bool
		topRegex string
	}{
		{"mysqldb", true, `^peer 127\.0\.0\.1:13306 \(.*mariadbd`},
		{"pymysql", false, `^idle`},
	} {
		t.Run(tc.driver, func(t *testing.T) {
			pid := geventApp(t, tc.driver)
			page := filepath.Join(t.TempDir(), "report.html")
			if out, err := exec.Command(bin("snag"), "attach", "-p", strconv.Itoa(pid), "-d", "3s", "-o", page).CombinedOutput(); err != nil {
				t.Fatalf("snag attach -o %s: %v\n%s", page, err, out)
			}
			dom := offlineDOM(t, browser, page)
			if !strings.Contains(dom, `data-ready="1"`) {
				t.Fatalf("page scripts did not finish:\n%.2000s", dom)
			}
			stallCard := regexp.MustCompile(`<article class="card sev-high" id="finding-\d+" data-kind="loop-stall"`).MatchString(dom)
			if stallCard != tc.stall {
				t.Errorf("high loop-stall card present = %v, want %v", stallCard, tc.stall)
			}
			hub := regexp.MustCompile(`<div class="thread" id="thread-` + strconv.Itoa(pid) + `-` + strconv.Itoa(pid) + `"[^>]*data-role="([\w-]*)" data-top="([^"]*)">`).FindStringSubmatch(dom)
			if hub == nil {
				t.Fatalf("no bar for the hub (tid %d)", pid)
			}
			if hub[1] != "event-loop" || !regexp.MustCompile(tc.topRegex).MatchString(hub[2]) {
				t.Errorf("hub bar: role %q, largest segment %q; want event-loop and %s", hub[1], hub[2], tc.topRegex)
			}
			if n := len(regexp.MustCompile(`<rect class="sl[ "]`).FindAllString(dom, -1)); n == 0 {
				t.Errorf("the timeline drew no slice")
			}
		})
	}
}

// offlineDOM loads a page in headless Chromium with the network cut off and
// returns the DOM after its scripts ran.
func offlineDOM(t *testing.T, browser, page string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir="+t.TempDir(),
		"--host-resolver-rules=MAP * ~NOTFOUND", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
		"--virtual-time-budget=3000", "--window-size=1280,1000", "--dump-dom", "file://"+page)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	return string(out)
}
