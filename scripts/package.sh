#!/usr/bin/env bash
# Builds the spofwatch .deb and .rpm with nfpm (pinned in go.mod as a Go tool)
# from an already built binary. `make package` runs `make build` first.
#
#   PKG_BIN      binary to package          (default bin/spofwatch)
#   PKG_VERSION  upstream version           (default: newest packaging/changelog.yml entry)
#   PKG_RELEASE  package revision           (default: newest packaging/changelog.yml entry)
#   PKG_ARCH     Go architecture            (default: go env GOARCH)
#   DIST         output directory           (default dist)
#   PACKAGERS    which packages to build    (default "deb rpm")
#   NFPM_CONFIG  nfpm config                (default packaging/nfpm.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}

export PKG_BIN=${PKG_BIN:-bin/spofwatch}
export PKG_ARCH=${PKG_ARCH:-$($GO env GOARCH)}
newest=$(sed -n 's/^- semver:[[:space:]]*//p' packaging/changelog.yml | head -n1)
export PKG_VERSION=${PKG_VERSION:-${newest%%-*}}
export PKG_RELEASE=${PKG_RELEASE:-${newest##*-}}
DIST=${DIST:-dist}
PACKAGERS=${PACKAGERS:-deb rpm}
NFPM_CONFIG=${NFPM_CONFIG:-packaging/nfpm.yaml}

[ -x "$PKG_BIN" ] || { echo "package: $PKG_BIN missing: run make build" >&2; exit 1; }
[ -n "$PKG_VERSION" ] || { echo "package: no version in packaging/changelog.yml" >&2; exit 1; }

# Reproducible timestamps: the last commit, unless the caller set one.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

export PKG_BUILD
PKG_BUILD=$(mktemp -d)
trap 'rm -rf "$PKG_BUILD"' EXIT

# The man page comes from the flags themselves (kingpin's --help-man), so it
# cannot drift from the binary. The nonexistent --config.file makes the
# binary exit at once should it go on to start the daemon after printing
# (kingpin with Terminate(nil) does). kingpin's header carries the
# multi-line version string and a bare NAME line; replace the header and
# give NAME the "name \- summary" form that whatis (and lintian) expect.
timeout 30 "$PKG_BIN" --help-man --config.file=/nonexistent/spofwatch-help-man.yml \
  >"$PKG_BUILD/help-man.out" 2>"$PKG_BUILD/help-man.err" </dev/null || true
if ! grep -q '^\.SH "OPTIONS"' "$PKG_BUILD/help-man.out"; then
  echo "package: $PKG_BIN --help-man printed no man page:" >&2
  cat "$PKG_BUILD/help-man.err" >&2
  exit 1
fi
date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)
awk -v th=".TH SPOFWATCH 1 \"$date\" \"spofwatch $PKG_VERSION\" \"User Commands\"" '
  !started && /^\.TH / { print th; skipping = 1; started = 1; next }
  skipping && !/^\.SH / { next }
  /^\.SH "NAME"/ { skipping = 0; print; getline; print "spofwatch \\- which single failure would take this host down now"; next }
  { skipping = 0; print }
' "$PKG_BUILD/help-man.out" >"$PKG_BUILD/spofwatch.1"
gzip -9n "$PKG_BUILD/spofwatch.1"
touch -d "@$SOURCE_DATE_EPOCH" "$PKG_BUILD/spofwatch.1.gz"

mkdir -p "$DIST"
for p in $PACKAGERS; do
  $GO tool nfpm package --config "$NFPM_CONFIG" --packager "$p" --target "$DIST/"
done
