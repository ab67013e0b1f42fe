#!/bin/sh
# Side-by-side: spofwatch BMC poll vs prometheus-ipmi-exporter scrape vs ipmitool sdr elist,
# against one ipmi_sim through a request-counting UDP relay. Prints a table and the ratios.
# Needs Debian openipmi, ipmitool, prometheus-ipmi-exporter (scripts/apt-packages.txt).
set -eu
cd "$(dirname "$0")/../.."
exec go test -run '^$' -bench SideBySide -benchtime 1x -count 1 ./bench/ipmi/
