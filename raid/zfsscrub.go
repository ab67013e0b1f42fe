package raid

import (
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ZfsScrub is a pool's last completed scrub, from zpool status' scan line.
type ZfsScrub struct {
	// End is when the scrub finished.
	End time.Time
	// Errors is the count of errors the scrub could not repair.
	Errors uint64
	// Repaired is zpool's own size text ("0B", "15.8M"; "" in the old
	// Solaris form, which does not say).
	Repaired string
}

// zfsScrubDone matches the finished-scrub forms of the scan line, as
// OpenZFS' zpool_main.c prints them:
//
//	scrub repaired 0B in 00:00:00 with 0 errors on Tue Apr  5 16:05:49 2022
//	scrub repaired 0 in 17h57m with 0 errors on Thu May  9 10:59:20 2019 (ZoL 0.6/0.7)
//	scrub repaired 0B in 0 days 00:00:00 with 0 errors on Sun Apr 10 00:24:01 2022
//	scrub completed after 0h0m with 8 errors on Tue Jul 13 13:17:32 2010 (Solaris)
//
// "scrub canceled on …" and "scrub in progress since …" are not a completed
// scrub and do not match.
var zfsScrubDone = regexp.MustCompile(`^scrub (?:repaired (\S+) in .+?|completed after \S+) with (\d+) errors on (.+)$`)

// ParseScrubDone reads a completed scrub from the scan line's text. The end
// time is ctime(3) text in the host's time zone, so loc is the zone zpool
// ran in (time.Local for a local zpool).
func ParseScrubDone(scan string, loc *time.Location) (ZfsScrub, bool) {
	line, _, _ := strings.Cut(scan, "\n")
	m := zfsScrubDone.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil {
		return ZfsScrub{}, false
	}
	errs, err := strconv.ParseUint(m[2], 10, 64)
	if err != nil {
		return ZfsScrub{}, false
	}
	end, err := time.ParseInLocation(time.ANSIC, strings.TrimSpace(m[3]), loc)
	if err != nil {
		return ZfsScrub{}, false
	}
	return ZfsScrub{End: end, Errors: errs, Repaired: m[1]}, true
}

// scanDateLayouts are end_time as format_timestamp prints it without -p:
// strftime with nl_langinfo(_DATE_FMT), which in the C locale zpool runs
// in is "%a %b %e %H:%M:%S %Z %Y" (glibc), or ctime's form (musl and
// others without _DATE_FMT).
var scanDateLayouts = []string{"Mon Jan _2 15:04:05 MST 2006", time.ANSIC}

// ParseScanStatsDone reads a completed scrub from `zpool status -j`
// scan_stats (OpenZFS cmd/zpool/zpool_main.c, scan_status_nvlist): state
// FINISHED with an end time. end is a Unix time (with -p or --json-int) or
// date text in loc; errors is the count of errors the scrub could not
// repair. A scan still running, canceled or never run is not completed.
func ParseScanStatsDone(state, end, errors string, loc *time.Location) (ZfsScrub, bool) {
	if strings.ToUpper(strings.TrimSpace(state)) != "FINISHED" {
		return ZfsScrub{}, false
	}
	errs, err := parseCount(strings.TrimSpace(errors))
	if err != nil {
		return ZfsScrub{}, false
	}
	end = strings.TrimSpace(end)
	var at time.Time
	if secs, err := strconv.ParseInt(end, 10, 64); err == nil {
		// 0 is "has not ended", never the epoch; beyond year 9999 is
		// not a time zpool printed.
		if secs <= 0 || secs > 253402300799 {
			return ZfsScrub{}, false
		}
		at = time.Unix(secs, 0).In(loc)
	} else {
		for _, layout := range scanDateLayouts {
			if t, err := time.ParseInLocation(layout, end, loc); err == nil {
				at = t
				break
			}
		}
	}
	if at.IsZero() {
		return ZfsScrub{}, false
	}
	return ZfsScrub{End: at, Errors: errs}, true
}
