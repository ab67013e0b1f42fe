package drill

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spofwatch/spofwatch/internal/stubcmd"
)

// zpool status -p texts in the layout of the fixtures in raid/testdata/zfs
// (OpenZFS documentation), with the scan lines zpool_main.c prints.
func zpoolStatus(state, scan string) string {
	return fmt.Sprintf(`  pool: tank
 state: %s
  scan: %s
config:

	NAME        STATE     READ WRITE CKSUM
	tank        %s       0     0     0
	  mirror-0  %s       0     0     0
	    sda     ONLINE       0     0     0
	    sdb     ONLINE       0     0     0

errors: No known data errors
`, state, scan, state, state)
}

const (
	scanOld     = "scrub repaired 0B in 00:00:10 with 0 errors on Tue Apr  5 16:05:49 2022"
	scanRunning = "scrub in progress since Sun Mar  1 12:00:00 2026\n\t19.6G scanned at 1.2G/s, 4.37G issued at 280M/s, 54.5G total\n\t0B repaired, 8.02% done, 00:03:02 to go"
	scanResilv  = "resilver in progress since Sun Mar  1 12:00:00 2026\n\t19.6G scanned at 1.2G/s, 4.37G issued at 280M/s, 54.5G total\n\t4.37G resilvered, 8.02% done, 00:03:02 to go"
	scanPaused  = "scrub paused since Sun Mar  1 12:00:00 2026\n\tscrub started on Sun Mar  1 11:00:00 2026"
)

func scanDone(errors int) string {
	return fmt.Sprintf("scrub repaired 0B in 00:10:00 with %d errors on Sun Mar  1 12:10:00 2026", errors)
}

// stubZpool writes a zpool stand-in: each `status` prints the next of
// statuses (the last one repeats), `scrub` and `scrub -s` are recorded in
// calls; scrubErr makes `scrub` fail with that message.
func stubZpool(t *testing.T, scrubErr string, statuses ...string) (bin, dir string) {
	t.Helper()
	dir = t.TempDir()
	for i, s := range statuses {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("status.%d", i+1)), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fail := ""
	if scrubErr != "" {
		fail = fmt.Sprintf(`[ "$2" = "-s" ] || { echo %q >&2; exit 1; }`, scrubErr)
	}
	bin = stubcmd.Write(t, "zpool", fmt.Sprintf(`d=%s
echo "$*" >> "$d/calls"
case "$1" in
status)
  n=$(cat "$d/n" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$d/n"
  [ $n -gt %d ] && n=%d
  cat "$d/status.$n" ;;
scrub)
  %s
  ;;
esac`, dir, len(statuses), len(statuses), fail))
	return bin, dir
}

func calls(t *testing.T, dir string) []string {
	b, err := os.ReadFile(filepath.Join(dir, "calls"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
}

func TestZpoolScrub(t *testing.T) {
	for _, tc := range []struct {
		name       string
		statuses   []string
		wantResult Result
		wantReason string
	}{
		{"passes", []string{zpoolStatus("ONLINE", scanOld), zpoolStatus("ONLINE", scanRunning), zpoolStatus("ONLINE", scanDone(0))}, ResultPassed, "scrub of tank done: 0 errors, repaired 0B"},
		{"never scrubbed before", []string{zpoolStatus("ONLINE", "none requested"), zpoolStatus("ONLINE", scanDone(0))}, ResultPassed, "scrub of tank done"},
		{"errors", []string{zpoolStatus("ONLINE", scanOld), zpoolStatus("ONLINE", scanRunning), zpoolStatus("ONLINE", scanDone(3))}, ResultFailed, "scrub of tank found 3 errors it could not repair"},
		{"pool degraded by the end", []string{zpoolStatus("ONLINE", scanOld), zpoolStatus("DEGRADED", scanDone(0))}, ResultFailed, "pool tank is DEGRADED after the scrub"},
		{"resilver takes over", []string{zpoolStatus("ONLINE", scanOld), zpoolStatus("DEGRADED", scanResilv)}, ResultFailed, "gave way to resilver"},
		{"canceled by someone else", []string{zpoolStatus("ONLINE", scanOld), zpoolStatus("ONLINE", "scrub canceled on Sun Mar  1 12:01:00 2026")}, ResultFailed, "was canceled"},
		{"gone without a result", []string{zpoolStatus("ONLINE", scanOld)}, ResultFailed, "not running and left no result"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin, dir := stubZpool(t, "", tc.statuses...)
			z := &ZpoolScrub{Pool: "tank", ZpoolPath: bin, Poll: time.Millisecond, Loc: time.UTC}
			var pcts []float64
			out := z.Run(context.Background(), true, func(done, total float64, msg string) {
				if total > 0 {
					pcts = append(pcts, done/total*100)
				}
			})
			if out.Result != tc.wantResult || !strings.Contains(out.Reason, tc.wantReason) {
				t.Errorf("outcome %+v, want %s ~ %q", out, tc.wantResult, tc.wantReason)
			}
			c := calls(t, dir)
			if len(c) < 2 || c[0] != "status_-p_tank" || c[1] != "scrub_tank" {
				t.Errorf("zpool calls %v", c)
			}
			if slices.Contains(tc.statuses, zpoolStatus("ONLINE", scanRunning)) {
				if len(pcts) < 2 || pcts[1] != 8.02 {
					t.Errorf("progress %v, want 8.02%% reported", pcts)
				}
			}
		})
	}
}

func TestZpoolScrubWithoutWaitStarts(t *testing.T) {
	bin, dir := stubZpool(t, "", zpoolStatus("ONLINE", scanOld), zpoolStatus("ONLINE", scanRunning))
	out := (&ZpoolScrub{Pool: "tank", ZpoolPath: bin}).Run(context.Background(), false, func(float64, float64, string) {})
	if out.Result != ResultStarted {
		t.Errorf("outcome %+v", out)
	}
	if c := calls(t, dir); strings.Join(c, " ") != "status_-p_tank scrub_tank" {
		t.Errorf("zpool calls %v", c)
	}
}

// auditlog.Interrupted while following: the method stops the scrub it started.
func TestZpoolScrubCancelStops(t *testing.T) {
	bin, dir := stubZpool(t, "", zpoolStatus("ONLINE", scanOld), zpoolStatus("ONLINE", scanRunning))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := (&ZpoolScrub{Pool: "tank", ZpoolPath: bin, Poll: time.Millisecond}).Run(ctx, true, func(done, total float64, msg string) {
		if done > 0 {
			cancel()
		}
	})
	if out.Result != ResultFailed || !strings.Contains(out.Reason, "the scrub of tank was stopped at 8.02%") {
		t.Errorf("outcome %+v", out)
	}
	c := calls(t, dir)
	if len(c) == 0 || c[len(c)-1] != "scrub_-s_tank" {
		t.Errorf("zpool calls %v, want scrub -s last", c)
	}
}

// A busy or unhealthy pool is refused by Plan and by Run, and zpool scrub
// never runs.
func TestZpoolScrubRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, status, scrubErr, want string
	}{
		{"scrub running", zpoolStatus("ONLINE", scanRunning), "", "pool tank is busy: scrub 8.02% done"},
		{"resilver running", zpoolStatus("ONLINE", scanResilv), "", "pool tank is busy: resilver"},
		{"paused scrub", zpoolStatus("ONLINE", scanPaused), "", "has a paused scrub"},
		{"degraded", zpoolStatus("DEGRADED", scanOld), "", "pool tank is DEGRADED, not ONLINE"},
		{"unknown pool", strings.ReplaceAll(zpoolStatus("ONLINE", scanOld), "pool: tank", "pool: other"), "", "pool not in the output"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin, dir := stubZpool(t, tc.scrubErr, tc.status)
			z := &ZpoolScrub{Pool: "tank", ZpoolPath: bin, Poll: time.Millisecond}
			if _, err := z.Plan(context.Background()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("plan error %v, want %q", err, tc.want)
			}
			out := z.Run(context.Background(), true, func(float64, float64, string) {})
			if out.Result != ResultRefused || !strings.Contains(out.Reason, tc.want) {
				t.Errorf("outcome %+v, want refused ~ %q", out, tc.want)
			}
			for _, c := range calls(t, dir) {
				if strings.HasPrefix(c, "scrub") {
					t.Errorf("zpool %s ran", c)
				}
			}
		})
	}
	// zpool itself refusing the scrub: refused with its words.
	bin, _ := stubZpool(t, "cannot scrub tank: pool is currently being resilvered", zpoolStatus("ONLINE", scanOld))
	out := (&ZpoolScrub{Pool: "tank", ZpoolPath: bin}).Run(context.Background(), true, func(float64, float64, string) {})
	if out.Result != ResultRefused || !strings.Contains(out.Reason, "currently being resilvered") {
		t.Errorf("outcome %+v", out)
	}
	// No zpool at all.
	out = (&ZpoolScrub{Pool: "tank", ZpoolPath: filepath.Join(t.TempDir(), "zpool")}).Run(context.Background(), true, func(float64, float64, string) {})
	if out.Result != ResultRefused || !strings.Contains(out.Reason, "zpool command not found") {
		t.Errorf("outcome %+v", out)
	}
}
