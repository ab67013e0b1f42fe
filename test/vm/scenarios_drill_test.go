package vm

import (
	. "github.com/spofwatch/spofwatch/test/vm/scenario"
)

// md drill scenarios (issue 13): `spofwatch drill run` against a real
// kernel's md. md8 is a raid1 over two partitions of vdq (the last test
// disk). The daemon runs throughout: it sees the check start and end (md
// events) and keeps the proof in the history, where `check` finds it.
const drillMd = "storage/md/md8"

// drillMdRun runs a drill with JSON output into file and asserts its exit
// status (busybox sh; the drill's stdout stays in file for the log).
func drillMdRun(args, file string, exit string) []string {
	return []string{
		"spofwatch drill run " + drillMd + " " + args + " --format json > " + file + " 2> " + file + ".err; rc=$?; cat " + file + " " + file + ".err; test $rc -eq " + exit,
	}
}

var drillMdScenarios = []Scenario{
	{
		Name:  "drill/md-raid1",
		Needs: []string{"md"},
		Steps: []Step{
			{Name: "raid1 and daemon", Sh: []string{
				mdCreate("md8", 1, 2, "/dev/vdq1 /dev/vdq2", ""),
				// ~23 MiB at <= 2 MB/s: the check lasts ~10 s, so the
				// daemon's collection at the check's start event sees
				// it running (a check it never saw is no proof to it).
				"echo 2000 > /sys/block/md8/md/sync_speed_max"},
				Daemon: "restart",
				Wait:   []FileCond{active("md8", "raid1"), {Path: "/sys/block/md8/md/sync_action", Contains: "idle"}},
				Check:  &Check{Expect: []Expect{{Group: drillMd, State: "redundant", Working: N(2), LastProven: "none"}}}},
			{Name: "check drill passes", TimeoutSeconds: 180,
				Sh: append(drillMdRun("--wait", "/tmp/drill-pass.json", "0"),
					`grep -q '"result":"passed"' /tmp/drill-pass.json`,
					`grep -q 'mismatch_cnt 0' /tmp/drill-pass.json`,
					`tail -n 1 /var/lib/spofwatch/drills.jsonl | grep -q '"result":"passed"'`),
				Wait:  []FileCond{{Path: "/sys/block/md8/md/sync_action", Contains: "idle"}, {Path: "/sys/block/md8/md/last_sync_action", Contains: "check"}},
				Check: &Check{Expect: []Expect{{Group: drillMd, State: "redundant", LastProven: "passed"}}}},
			{Name: "legs differ: drill fails with the mismatch", TimeoutSeconds: 180,
				Sh: append([]string{
					// 1 MiB of noise 12 MiB into the second leg, behind
					// md's back (inside the data area: mdadm puts a
					// small device's data 1-2 MiB in), synced to disk.
					"mdadm --examine /dev/vdq2 | grep -i offset || true",
					"dd if=/dev/urandom of=/dev/vdq2 bs=1M seek=12 count=1 conv=notrunc,fsync",
					"echo 3 > /proc/sys/vm/drop_caches"},
					append(drillMdRun("--wait", "/tmp/drill-fail.json", "1"),
						`grep -q '"result":"failed"' /tmp/drill-fail.json`,
						`grep -Eq 'mismatch_cnt [1-9][0-9]* after check' /tmp/drill-fail.json`)...),
				Wait:  []FileCond{{Path: "/sys/block/md8/md/sync_action", Contains: "idle"}},
				Check: &Check{Expect: []Expect{{Group: drillMd, State: "redundant", LastProven: "failed"}}}},
			{Name: "one leg failed", Sh: []string{"mdadm /dev/md8 --fail /dev/vdq2"},
				Wait:  []FileCond{{Path: "/sys/block/md8/md/degraded", Contains: "1"}},
				Check: &Check{Expect: []Expect{{Group: drillMd, State: "redundancy_lost"}}}},
			{Name: "drill refused on the degraded array, nothing changed",
				Sh: append(drillMdRun("", "/tmp/drill-refused.json", "2"),
					`grep -q '"result":"refused"' /tmp/drill-refused.json`,
					`grep -q 'not redundant' /tmp/drill-refused.json`,
					`tail -n 1 /var/lib/spofwatch/drills.jsonl | grep -q '"result":"refused"'`),
				Wait: []FileCond{{Path: "/sys/block/md8/md/sync_action", Contains: "idle"}, {Path: "/sys/block/md8/md/degraded", Contains: "1"}},
				Check: &Check{Expect: []Expect{{Group: drillMd, State: "redundancy_lost",
					Members: map[string]string{"vdq1": "ok", "vdq2": "failed"}}}}},
		},
	},
}
