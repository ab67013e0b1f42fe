#!/bin/sh
# Side-by-side: spofwatch's NUT client vs upsc, one poll of 2 UPSes against a
# real upsd started on a free port. Needs Debian nut-server and nut-client.
set -eu
cd "$(dirname "$0")/../.."
exec go run ./bench/ups "$@"
