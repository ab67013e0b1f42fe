#!/usr/bin/env python3
# Regenerates spofwatch.rules.test.yml from the alerts in spofwatch.rules.yml:
# input series per finding code, hold times from each rule's `for`, and the
# expected annotations rendered by a tiny re-implementation of the template
# subset the rules use ({{ $labels.x }}, {{ if }}/{{ else }}/{{ end }},
# {{ $value }}). promtool then checks Prometheus renders the same. Run from
# the repository root after changing the rules; review the diff.
# Needs python3-yaml.
import re, yaml, json
rules = yaml.safe_load(open("packaging/prometheus/spofwatch.rules.yml"))
alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"] if "alert" in r}

def render(t, labels, value):
    def cond(m):
        var, a, b = m.group(1), m.group(2), m.group(3) or ""
        return a if labels.get(var) else b
    t = re.sub(r"\{\{ if \$labels\.(\w+) \}\}(.*?)(?:\{\{ else \}\}(.*?))?\{\{ end \}\}", cond, t)
    t = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), t)
    t = t.replace("{{ $value }}", value)
    return t

def dur(s):
    m = re.fullmatch(r"(\d+)([smh])", s)
    return int(m.group(1)) * {"s":1,"m":60,"h":3600}[m.group(2)]

def series(name, labels):
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"

def exp(alertname, labels, value="1"):
    a = alerts[alertname]
    al = {k: v for k, v in labels.items() if v != ""}  # empty label = absent
    al["alertname"] = alertname
    al.update(a.get("labels", {}))
    ann = {k: render(v, al, value) for k, v in a.get("annotations", {}).items()}
    return {"exp_labels": al, "exp_annotations": ann}

tests = []
host = {"instance": "db1:19847", "job": "spofwatch"}
samples = {
 "group_down": ("critical", "storage/md/md0", ""),
 "redundancy_lost": ("critical", "power/ipmi/psu", "PSU2 Status"),
 "redundancy_degraded": ("warning", "storage/md/md1", "sdc1"),
 "no_redundancy": ("warning", "storage/mount/root", ""),
 "shared_failure_domain": ("warning", "network/bond/bond0", "0000:3b:00"),
 "failure_undetectable": ("warning", "network/bond/bond0", ""),
 "member_degraded": ("warning", "ups/nut/ups-a", "battery"),
 "rebuild_in_progress": ("info", "storage/md/md0", "sdb1"),
 "ups_on_battery": ("critical", "ups/nut/ups-a", ""),
 "ups_low_battery": ("critical", "ups/nut/ups-a", ""),
 "ups_bypass": ("warning", "ups/nut/ups-b", ""),
 "ups_overload": ("warning", "ups/nut/ups-b", ""),
 "collector_unavailable": ("warning", "power/ipmi/psu", ""),
 "alerting_degraded": ("warning", "", ""),
 "chassis_power_fault": ("critical", "power/ipmi/psu", ""),
 "chassis_power_overload": ("warning", "power/ipmi/psu", ""),
 "chassis_cooling_fault": ("warning", "cooling/ipmi/fans", ""),
 "power_restore_always_off": ("warning", "power/ipmi/psu", ""),
 "redundancy_untested": ("warning", "storage/zfs/tank/mirror-0", ""),
 "drill_failed": ("warning", "network/bond/bond0", ""),
 "virtual_machine": ("info", "host/dmi/virtualization", ""),
 "notice": ("info", "network/bond/bond1", "eth3"),
}
for name, a in alerts.items():
    m = re.fullmatch(r'spofwatch_finding\{code="(\w+)"\} == 1 unless on\(instance, job, code, group, member\) spofwatch_finding_accepted == 1', a["expr"].strip())
    if not m: continue
    code = m.group(1)
    sev, group, member = samples[code]
    lab = dict(host, code=code, severity=sev, group=group, member=member)
    f = dur(a["for"])
    # Active for 2x the hold time (at least 2m), then resolved.
    mins = max(2 * f // 60, 2) + 1
    t = {"interval": "1m",
         "input_series": [{"series": series("spofwatch_finding", lab), "values": f"1x{mins} _x10"}],
         "alert_rule_test": []}
    if f >= 120:
        t["alert_rule_test"].append({"eval_time": f"{f//60 - 1}m", "alertname": name, "exp_alerts": []})
    t["alert_rule_test"].append({"eval_time": f"{mins}m", "alertname": name, "exp_alerts": [exp(name, lab)]})
    t["alert_rule_test"].append({"eval_time": f"{mins+8}m", "alertname": name, "exp_alerts": []})
    tests.append(t)

# The agent: down, absent, collector.
tests.append({"interval": "1m",
  "input_series": [
    {"series": 'up{instance="db1:19847", job="spofwatch"}', "values": "1x5 0x10"},
    {"series": 'up{instance="db2:19847", job="spofwatch"}', "values": "1x15"},
    {"series": 'spofwatch_collector_up{instance="db1:19847", job="spofwatch", collector="ipmi"}', "values": "1x2 0x13"},
    {"series": 'spofwatch_collector_up{instance="db2:19847", job="spofwatch", collector="ipmi"}', "values": "1x15"}],
  "alert_rule_test": [
    {"eval_time": "8m", "alertname": "SpofwatchDown", "exp_alerts": []},
    {"eval_time": "11m", "alertname": "SpofwatchDown", "exp_alerts": [exp("SpofwatchDown", {"instance": "db1:19847", "job": "spofwatch"}, "0")]},
    {"eval_time": "11m", "alertname": "SpofwatchAbsent", "exp_alerts": []},
    {"eval_time": "11m", "alertname": "SpofwatchCollectorDown", "exp_alerts": []},
    {"eval_time": "14m", "alertname": "SpofwatchCollectorDown", "exp_alerts": [exp("SpofwatchCollectorDown", {"instance": "db1:19847", "job": "spofwatch", "collector": "ipmi"}, "0")]}]})
tests.append({"interval": "1m",
  "input_series": [{"series": 'node_load1{instance="db1:9100", job="node"}', "values": "1x30"}],
  "alert_rule_test": [
    {"eval_time": "10m", "alertname": "SpofwatchAbsent", "exp_alerts": []},
    {"eval_time": "20m", "alertname": "SpofwatchAbsent", "exp_alerts": [exp("SpofwatchAbsent", {"job": "spofwatch"}, "1")]}]})

# An accepted finding (spofwatch_finding_accepted) raises no alert, here
# no_redundancy on the root mount; the same finding on another host does.
nr = {"instance": "db1:19847", "job": "spofwatch", "code": "no_redundancy", "severity": "warning", "group": "storage/mount/root", "member": ""}
nr2 = dict(nr, instance="db2:19847")
tests.append({"interval": "1m",
  "input_series": [
    {"series": series("spofwatch_finding", nr), "values": "1x30"},
    {"series": series("spofwatch_finding_accepted", {k: nr[k] for k in ("instance", "job", "code", "group", "member")}), "values": "1x30"},
    {"series": series("spofwatch_finding", nr2), "values": "1x30"}],
  "alert_rule_test": [
    {"eval_time": "20m", "alertname": "SpofNoRedundancy", "exp_alerts": [exp("SpofNoRedundancy", nr2)]}]})

# Acceptances: one expires 10 days after the epoch (promtool's clock starts
# there), one after 30 days; only the first is within 14 days.
acc = {"instance": "db1:19847", "job": "spofwatch", "code": "no_redundancy", "group": "storage/mount/root", "member": ""}
tests.append({"interval": "1m",
  "input_series": [
    {"series": series("spofwatch_acceptance_expiry_timestamp_seconds", acc), "values": f"{10*86400}x120"},
    {"series": series("spofwatch_acceptance_expiry_timestamp_seconds", dict(acc, group="network/uplink/default")), "values": f"{30*86400}x120"}],
  "alert_rule_test": [
    {"eval_time": "30m", "alertname": "SpofAcceptanceExpiresSoon", "exp_alerts": []},
    {"eval_time": "90m", "alertname": "SpofAcceptanceExpiresSoon", "exp_alerts": [exp("SpofAcceptanceExpiresSoon", acc, str(10*86400 - 90*60))]}]})

# Fleet: rack r1 (feed pdu-a) has 4 hosts, 3 lose a PSU at once; rack r2
# (feed pdu-b) has 3 hosts, 1 loses a PSU: a host problem, not the PDU.
inp = []
hosts = {"r1": ["a1", "a2", "a3", "a4"], "r2": ["b1", "b2", "b3"]}
feed = {"r1": "pdu-a", "r2": "pdu-b"}
lost = {"a1", "a2", "a3", "b1"}
for rack, hs in hosts.items():
    for h in hs:
        base = {"instance": f"{h}:19847", "job": "spofwatch"}
        inp.append({"series": series("spofwatch_host_info", dict(base, rack=rack, feed=feed[rack])), "values": "1x20"})
        for st in ["redundant", "redundancy_lost"]:
            v = ("0x3 1x16" if st == "redundancy_lost" else "1x3 0x16") if h in lost else ("1x19" if st == "redundant" else "0x19")
            inp.append({"series": series("spofwatch_group_state", dict(base, group="power/ipmi/psu", kind="power", state=st)), "values": v})
        inp.append({"series": series("spofwatch_group_state", dict(base, group="storage/md/md0", kind="storage", state="redundant")), "values": "1x19"})
        if h in lost:
            inp.append({"series": series("spofwatch_finding", dict(base, code="redundancy_lost", severity="critical", group="power/ipmi/psu", member="PSU1 Status")), "values": "_x4 1x15"})
# b2 has a RAID0 (no_redundancy, warning) and an info finding.
b2 = {"instance": "b2:19847", "job": "spofwatch"}
inp.append({"series": series("spofwatch_finding", dict(b2, code="no_redundancy", severity="warning", group="storage/md/md1", member="")), "values": "1x19"})
inp.append({"series": series("spofwatch_finding", dict(b2, code="rebuild_in_progress", severity="info", group="storage/md/md2", member="sdd1")), "values": "1x19"})
tests.append({"interval": "1m", "input_series": inp,
  "alert_rule_test": [
    {"eval_time": "4m", "alertname": "SpofRackPowerFailure", "exp_alerts": []},
    {"eval_time": "6m", "alertname": "SpofRackPowerFailure", "exp_alerts": [exp("SpofRackPowerFailure", {"rack": "r1"}, "3")]},
    {"eval_time": "6m", "alertname": "SpofPowerFeedFailure", "exp_alerts": [exp("SpofPowerFeedFailure", {"feed": "pdu-a"}, "3")]}],
  "promql_expr_test": [
    {"expr": "kind_state:spofwatch_hosts:count", "eval_time": "6m", "exp_samples": [
        {"labels": 'kind_state:spofwatch_hosts:count{kind="power", state="redundant"}', "value": 3},
        {"labels": 'kind_state:spofwatch_hosts:count{kind="power", state="redundancy_lost"}', "value": 4},
        {"labels": 'kind_state:spofwatch_hosts:count{kind="storage", state="redundant"}', "value": 7}]},
    {"expr": 'rack_kind_state:spofwatch_hosts:count{kind="power"}', "eval_time": "6m", "exp_samples": [
        {"labels": 'rack_kind_state:spofwatch_hosts:count{rack="r1", kind="power", state="redundant"}', "value": 1},
        {"labels": 'rack_kind_state:spofwatch_hosts:count{rack="r1", kind="power", state="redundancy_lost"}', "value": 3},
        {"labels": 'rack_kind_state:spofwatch_hosts:count{rack="r2", kind="power", state="redundant"}', "value": 2},
        {"labels": 'rack_kind_state:spofwatch_hosts:count{rack="r2", kind="power", state="redundancy_lost"}', "value": 1}]},
    {"expr": 'feed_kind_state:spofwatch_hosts:count{kind="power", state="redundancy_lost"}', "eval_time": "6m", "exp_samples": [
        {"labels": 'feed_kind_state:spofwatch_hosts:count{feed="pdu-a", kind="power", state="redundancy_lost"}', "value": 3},
        {"labels": 'feed_kind_state:spofwatch_hosts:count{feed="pdu-b", kind="power", state="redundancy_lost"}', "value": 1}]},
    {"expr": "kind:spofwatch_hosts_with_spof:count", "eval_time": "6m", "exp_samples": [
        {"labels": 'kind:spofwatch_hosts_with_spof:count{kind="power"}', "value": 4},
        {"labels": 'kind:spofwatch_hosts_with_spof:count{kind="storage"}', "value": 1}]},
    {"expr": 'instance_kind:spofwatch_spofs:count{instance="b2:19847"}', "eval_time": "6m", "exp_samples": [
        {"labels": 'instance_kind:spofwatch_spofs:count{instance="b2:19847", job="spofwatch", kind="storage"}', "value": 1}]},
    {"expr": 'instance:spofwatch_worst_severity:max{instance=~"a1:19847|a4:19847|b2:19847"}', "eval_time": "6m", "exp_samples": [
        {"labels": 'instance:spofwatch_worst_severity:max{instance="a1:19847", job="spofwatch"}', "value": 3},
        {"labels": 'instance:spofwatch_worst_severity:max{instance="a4:19847", job="spofwatch"}', "value": 0},
        {"labels": 'instance:spofwatch_worst_severity:max{instance="b2:19847", job="spofwatch"}', "value": 2}]},
    {"expr": "rack:spofwatch_hosts_power_redundancy_reduced:count", "eval_time": "2m", "exp_samples": []},
  ]})

# Disk wear: nvme0n1 crosses 90% of its rated endurance, nvme1n1 stays below.
dw = {"instance": "db1:19847", "job": "spofwatch"}
tests.append({"interval": "1m", "input_series": [
    {"series": series("spofwatch_disk_percentage_used_ratio", dict(dw, disk="nvme0n1")), "values": "0.89x10 0.91x70"},
    {"series": series("spofwatch_disk_percentage_used_ratio", dict(dw, disk="nvme1n1")), "values": "0.5x80"}],
  "alert_rule_test": [
    {"eval_time": "60m", "alertname": "SpofDiskWornOut", "exp_alerts": []},
    {"eval_time": "75m", "alertname": "SpofDiskWornOut", "exp_alerts": [exp("SpofDiskWornOut", dict(dw, disk="nvme0n1"), "0.91")]}]})

doc = {"rule_files": ["spofwatch.rules.yml"], "evaluation_interval": "1m", "tests": tests}
hdr = ("# promtool unit tests for spofwatch.rules.yml:\n"
       "#   promtool test rules packaging/prometheus/spofwatch.rules.test.yml\n"
       "# Every alert in the rules file has a test (packaging_test.go checks it).\n"
       "# Fleet test: rack r1 (feed pdu-a) has 4 hosts and 3 lose a PSU at once;\n"
       "# rack r2 (feed pdu-b) has 3 hosts and 1 loses a PSU (a host problem).\n")
open("packaging/prometheus/spofwatch.rules.test.yml", "w").write(hdr + yaml.safe_dump(doc, sort_keys=False, width=200, allow_unicode=True))
