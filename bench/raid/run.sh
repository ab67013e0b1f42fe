#!/bin/sh
# Side by side: spofwatch's md reader vs prometheus/procfs (node_exporter's
# mdadm collector) on the same 16-array fixture tree, and the full md
# collection. Prints ns/op and the ratio. Run from the repository root.
set -eu
out=$(go test -run '^$' -bench 'BenchmarkMdFSArrays16|BenchmarkProcfsMd16' -benchtime "${BENCHTIME:-200x}" -count "${COUNT:-3}" ./raid/)
full=$(go test -run '^$' -bench 'BenchmarkMdCollect16' -benchtime "${BENCHTIME:-200x}" -count "${COUNT:-3}" ./collectors/)
echo "$out" | grep Benchmark
echo "$full" | grep Benchmark
ours=$(echo "$out" | awk '/BenchmarkMdFSArrays16/ {s+=$3; n++} END {print s/n}')
theirs=$(echo "$out" | awk '/BenchmarkProcfsMd16/ {s+=$3; n++} END {print s/n}')
coll=$(echo "$full" | awk '/BenchmarkMdCollect16/ {s+=$3; n++} END {print s/n}')
echo "mean ns/op: spofwatch reader $ours, procfs $theirs, full md collection $coll"
awk -v a="$ours" -v b="$theirs" 'BEGIN {printf "ratio spofwatch/procfs: %.2f\n", a/b}'
awk -v c="$coll" 'BEGIN {printf "full collection of 16 arrays: %.3f ms (target < 2 ms)\n", c/1e6}'
