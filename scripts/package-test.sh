#!/usr/bin/env bash
# make package-test: builds the .deb and .rpm from bin/spofwatch and proves
# them by installing them for real:
#   - lintian: no errors, and every warning justified in packaging/README.md;
#   - the .deb into a debootstrapped Debian root with `chroot ... dpkg -i`:
#     files, modes, owners, system user, enabled unit; an upgrade over an
#     edited config keeps the edit; remove, then purge, leaves nothing behind
#     but what Debian policy expects (the system user);
#   - the .rpm with `rpm --root` into a scratch root: file list, modes,
#     owners, config files marked noreplace, upgrade keeps the edit (.rpmnew),
#     erase saves it (.rpmsave);
#   - `systemd-analyze verify` on the installed unit prints nothing, and
#     `systemd-analyze security` stays at or below the recorded exposure.
#
# Needs root (chroot, dpkg/rpm into a root) and the Debian packages lintian,
# rpm, debootstrap, systemd (scripts/apt-packages.txt). The bootstrapped root
# is cached as a tarball under build/package-test/ (git-ignored); delete it
# to re-bootstrap. Environment:
#   PKG_BIN        binary to package (default bin/spofwatch)
#   SUITE          Debian suite for the root (default: this machine's)
#   MIRROR         Debian mirror (default: the one apt uses here)
#   MAX_EXPOSURE   highest accepted `systemd-analyze security` score (2.0)
#   KEEP=1         keep the work directory for inspection
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

PKG_BIN=${PKG_BIN:-bin/spofwatch}
MAX_EXPOSURE=${MAX_EXPOSURE:-2.0}
cache=$repo/build/package-test

fails=0
step() { printf '\n== %s\n' "$*"; }
ok() { printf 'ok   %s\n' "$*"; }
bad() { printf 'FAIL %s\n' "$*"; fails=$((fails + 1)); }
# check DESCRIPTION WANT GOT
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: want '$2', got '$3'"; fi; }
die() { echo "package-test: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "needs root (chroot, dpkg --root, rpm --root)"
for t in lintian rpm debootstrap systemd-analyze chroot; do
  command -v "$t" >/dev/null || die "$t missing: run make deps (scripts/apt-packages.txt)"
done
[ -x "$PKG_BIN" ] || die "$PKG_BIN missing: run make build"

work=$(mktemp -d /tmp/spofwatch-package-test.XXXXXX)
cleanup() {
  # Never leave mounts behind in a root we are about to delete.
  for m in "$work"/*/proc; do mountpoint -q "$m" 2>/dev/null && umount "$m"; done
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# ---------------------------------------------------------------- packages
step "build packages"
# v1 is what `make package` builds. v2 is the next revision with a changed
# default config, so the upgrade meets a conffile that both the admin and
# the package changed (the case that prompts).
PKG_BIN=$PKG_BIN DIST=$work/v1 scripts/package.sh
sed 's|^\(  - src: \)packaging/spofwatch.yml$|\1'"$work"'/v2-spofwatch.yml|' packaging/nfpm.yaml >"$work/v2-nfpm.yaml"
{ cat packaging/spofwatch.yml; echo "# Changed in the test upgrade package."; } >"$work/v2-spofwatch.yml"
grep -q "$work/v2-spofwatch.yml" "$work/v2-nfpm.yaml" || die "could not point the v2 package at its changed config"
newest=$(sed -n 's/^- semver:[[:space:]]*//p' packaging/changelog.yml | head -n1)
v1_release=${newest##*-}
NFPM_CONFIG=$work/v2-nfpm.yaml PKG_RELEASE=$((v1_release + 1)) PKG_BIN=$PKG_BIN DIST=$work/v2 scripts/package.sh
deb1=$(ls "$work"/v1/*.deb) deb2=$(ls "$work"/v2/*.deb)
rpm1=$(ls "$work"/v1/*.rpm) rpm2=$(ls "$work"/v2/*.rpm)

# ----------------------------------------------------------------- lintian
step "lintian $(basename "$deb1")"
lintian --pedantic --display-info "$deb1" 2>&1 | grep -v 'running with root privileges' | tee "$work/lintian.txt" || true
if grep -q '^E:' "$work/lintian.txt"; then bad "lintian reports errors"; else ok "lintian: no errors"; fi
if grep -q 'statically-linked-binary' "$work/lintian.txt"; then
  echo "hint: build the binary with -buildmode=pie (see packaging/README.md, Building)"
fi
# Each warning tag must be justified in packaging/README.md, where the
# justifications are a list of "- `tag`: why".
for tag in $(sed -n 's/^W: [^ ]*: \([^ ]*\).*/\1/p' "$work/lintian.txt" | sort -u); do
  if grep -q "^- \`$tag\`:" packaging/README.md; then ok "lintian warning $tag justified"; else bad "lintian warning $tag not justified in packaging/README.md"; fi
done

# ------------------------------------------------------------ debian root
suite=${SUITE:-$(. /etc/os-release && echo "$VERSION_CODENAME")}
if [ -z "${MIRROR:-}" ]; then
  # The mirror apt uses on this machine: deb822 .sources first, then one-line.
  MIRROR=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }')
  [ -n "$MIRROR" ] || MIRROR=$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list |
    awk '$0 !~ /security/ { print $2; exit }')
fi
# systemd (for sysinit.target and systemctl, as on a real host) and procps
# (/bin/kill in ExecReload) make `systemd-analyze verify --root` meaningful.
include=adduser,init-system-helpers,systemd,procps
tarball=$cache/debian-$suite-minbase-${include//,/-}.tar
if [ ! -s "$tarball" ]; then
  step "debootstrap $suite from $MIRROR (once; cached in $tarball)"
  mkdir -p "$cache"
  debootstrap --variant=minbase --include="$include" "$suite" "$work/bootstrap" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
    { tail -20 "$work/debootstrap.log"; die "debootstrap failed (log above)"; }
  tar -C "$work/bootstrap" -cf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  rm -rf "$work/bootstrap"
fi
new_root() { mkdir -p "$1" && tar -C "$1" -xf "$tarball"; }

# in ROOT CMD...: run in the root, with a clean environment.
inroot() { local r=$1; shift; env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C.UTF-8 chroot "$r" "$@"; }
# attrs ROOT PATH: "mode user:group" as the root's own passwd/group name them.
attrs() { inroot "$1" stat -c '%a %U:%G' "$2" 2>/dev/null || echo missing; }
# tree ROOT: every path with mode and owner, for before/after comparisons.
# /run and /tmp are tmpfs on a real host (adduser leaves its lock in /run).
tree() { (cd "$1" && find . -xdev ! -path './proc/*' ! -path './tmp/*' ! -path './run/*' -printf '%p %m %u:%g\n' | LC_ALL=C sort); }

expect_user() { # ROOT
  local pw
  pw=$(inroot "$1" getent passwd spofwatch || true)
  [ -n "$pw" ] || { bad "user spofwatch exists"; return; }
  IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
  if [ "$uid" -lt 1000 ]; then ok "spofwatch is a system user (uid $uid)"; else bad "spofwatch uid $uid is not a system uid"; fi
  check "spofwatch home" /var/lib/spofwatch "$home"
  case $shell in */nologin) ok "spofwatch shell $shell" ;; *) bad "spofwatch shell $shell is not nologin" ;; esac
  check "spofwatch primary group" spofwatch "$(inroot "$1" getent group "$gid" | cut -d: -f1)"
}

# --------------------------------------------------------------- deb test
step "deb: install $(basename "$deb1") into a $suite root with chroot dpkg -i"
root=$work/deb
new_root "$root"
mkdir -p "$root/tmp/pkg" && cp "$deb1" "$deb2" "$root/tmp/pkg/"
tree "$root" >"$work/tree-before"
inroot "$root" dpkg -i "/tmp/pkg/$(basename "$deb1")" || bad "dpkg -i failed"
check "dpkg status" "install ok installed" "$(inroot "$root" dpkg-query -W -f='${Status}' spofwatch)"

deb_files="/etc/default/spofwatch
/etc/spofwatch
/etc/spofwatch/spofwatch.yml
/lib/systemd/system/spofwatch-drill.service
/lib/systemd/system/spofwatch-drill.timer
/lib/systemd/system/spofwatch.service
/lib/udev/rules.d/60-spofwatch-ipmi.rules
/usr/bin/spofwatch
/usr/share/doc/spofwatch/README.md
/usr/share/doc/spofwatch/changelog.Debian.gz
/usr/share/doc/spofwatch/copyright
/usr/share/doc/spofwatch/examples/disk-health/61-spofwatch-nvme.rules
/usr/share/doc/spofwatch/examples/disk-health/disk-health.conf
/usr/share/doc/spofwatch/examples/grafana/spofwatch.json
/usr/share/doc/spofwatch/examples/prometheus/alertmanager.example.yml
/usr/share/doc/spofwatch/examples/prometheus/prometheus.example.yml
/usr/share/doc/spofwatch/examples/prometheus/spofwatch.rules.yml
/usr/share/man/man1/spofwatch.1.gz
/var/lib/spofwatch"
# dpkg -L also lists every parent directory; compare the package's own paths.
got=$(inroot "$root" dpkg -L spofwatch | grep -Ev '^/\.$|^/(etc|etc/default|lib|lib/systemd|lib/systemd/system|lib/udev|lib/udev/rules.d|usr|usr/bin|usr/share|usr/share/doc|usr/share/doc/spofwatch|usr/share/doc/spofwatch/examples|usr/share/doc/spofwatch/examples/disk-health|usr/share/doc/spofwatch/examples/grafana|usr/share/doc/spofwatch/examples/prometheus|usr/share/man|usr/share/man/man1|var|var/lib)$' | LC_ALL=C sort)
if [ "$got" = "$deb_files" ]; then ok "deb file list"; else bad "deb file list:"; diff <(echo "$deb_files") <(echo "$got") || true; fi
check "deb conffiles" "/etc/default/spofwatch /etc/spofwatch/spofwatch.yml" \
  "$(inroot "$root" dpkg-query -W -f='${Conffiles}' spofwatch | awk 'NF { print $1 }' | LC_ALL=C sort | xargs)"

expect_deb_attrs() {
  check "/usr/bin/spofwatch" "755 root:root" "$(attrs "$root" /usr/bin/spofwatch)"
  check "/etc/spofwatch/spofwatch.yml" "640 root:spofwatch" "$(attrs "$root" /etc/spofwatch/spofwatch.yml)"
  check "/etc/default/spofwatch" "644 root:root" "$(attrs "$root" /etc/default/spofwatch)"
  check "/var/lib/spofwatch" "750 spofwatch:spofwatch" "$(attrs "$root" /var/lib/spofwatch)"
  check "unit" "644 root:root" "$(attrs "$root" /lib/systemd/system/spofwatch.service)"
  check "udev rule" "644 root:root" "$(attrs "$root" /lib/udev/rules.d/60-spofwatch-ipmi.rules)"
  check "man page" "644 root:root" "$(attrs "$root" /usr/share/man/man1/spofwatch.1.gz)"
}
expect_deb_attrs
expect_user "$root"
check "unit enabled (multi-user.target.wants)" /lib/systemd/system/spofwatch.service \
  "$(readlink "$root/etc/systemd/system/multi-user.target.wants/spofwatch.service" || echo missing)"
check "systemctl is-enabled in the root" enabled "$(inroot "$root" systemctl is-enabled spofwatch.service 2>&1 || true)"
# The drill timer is shipped, never enabled by the package.
check "drill timer not enabled" disabled "$(inroot "$root" systemctl is-enabled spofwatch-drill.timer 2>&1 || true)"
if inroot "$root" /usr/bin/spofwatch version >/dev/null 2>&1; then ok "binary runs in the root"; else bad "binary does not run in the root"; fi

step "systemd-analyze verify (installed unit, in the root)"
# --root makes verify resolve ExecStart, /bin/kill and targets inside the
# root; MANPATH lets its Documentation= check find the packaged man page.
out=$(MANPATH=$root/usr/share/man systemd-analyze verify --root="$root" /lib/systemd/system/spofwatch.service 2>&1) || true
if [ -z "$out" ]; then ok "systemd-analyze verify prints nothing"; else bad "systemd-analyze verify:"; echo "$out"; fi
score=$(systemd-analyze security --offline=true --root="$root" spofwatch.service 2>&1 |
  sed -n 's/.*Overall exposure level for spofwatch.service: \([0-9.]*\).*/\1/p')
echo "systemd-analyze security exposure: ${score:-?}"
if [ -n "$score" ] && awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
  ok "exposure $score <= $MAX_EXPOSURE"
else bad "exposure ${score:-unknown} above $MAX_EXPOSURE"; fi

step "deb: upgrade over an edited config"
printf '\nhost_labels:\n  rack: edited-by-admin\n' >>"$root/etc/spofwatch/spofwatch.yml"
sed -i 's|^ARGS=.*|ARGS="--config.file=/etc/spofwatch/spofwatch.yml --log.level=debug"|' "$root/etc/default/spofwatch"
inroot "$root" install -o spofwatch -g spofwatch -d /var/lib/spofwatch/outbox
inroot "$root" touch /var/lib/spofwatch/outbox/pending-alert
inroot "$root" systemctl disable spofwatch.service >/dev/null 2>&1 || bad "systemctl disable in the root"
# --force-confold keeps the admin's version of a conffile both sides changed,
# as unattended-upgrades and most config management do.
inroot "$root" dpkg --force-confdef --force-confold -i "/tmp/pkg/$(basename "$deb2")" || bad "dpkg -i (upgrade) failed"
check "upgraded version" "$(dpkg-deb -f "$deb2" Version)" "$(inroot "$root" dpkg-query -W -f='${Version}' spofwatch)"
if grep -q 'rack: edited-by-admin' "$root/etc/spofwatch/spofwatch.yml"; then ok "edited spofwatch.yml kept"; else bad "edited spofwatch.yml lost"; fi
if [ -f "$root/etc/spofwatch/spofwatch.yml.dpkg-dist" ]; then ok "new default config saved as .dpkg-dist"; else bad "no spofwatch.yml.dpkg-dist"; fi
if grep -q -- '--log.level=debug' "$root/etc/default/spofwatch"; then ok "edited /etc/default/spofwatch kept"; else bad "edited /etc/default/spofwatch lost"; fi
if [ -f "$root/var/lib/spofwatch/outbox/pending-alert" ]; then ok "state (outbox) kept"; else bad "state (outbox) lost on upgrade"; fi
check "admin's disable survives the upgrade" disabled "$(inroot "$root" systemctl is-enabled spofwatch.service 2>&1 || true)"
expect_deb_attrs
inroot "$root" systemctl enable spofwatch.service >/dev/null 2>&1 || true

step "deb: remove, then purge"
inroot "$root" dpkg -r spofwatch || bad "dpkg -r failed"
for f in /usr/bin/spofwatch /lib/systemd/system/spofwatch.service /lib/udev/rules.d/60-spofwatch-ipmi.rules; do
  if [ -e "$root$f" ]; then bad "$f left after remove"; else ok "$f removed"; fi
done
if [ -f "$root/etc/spofwatch/spofwatch.yml" ]; then ok "conffiles kept after remove"; else bad "conffiles gone after remove"; fi
inroot "$root" dpkg -P spofwatch || bad "dpkg -P failed"
check "dpkg status after purge" "" "$(inroot "$root" dpkg-query -W -f='${Status}' spofwatch 2>/dev/null || true)"
tree "$root" >"$work/tree-after"
# What Debian policy expects to remain: the system user and group (policy
# 9.2.1: never reuse a uid), dpkg's own bookkeeping and logs.
leftover=$(diff "$work/tree-before" "$work/tree-after" | grep '^[<>]' |
  grep -Ev ' \./(etc/(passwd|group|shadow|gshadow|subuid|subgid)-?|var/log/(dpkg|alternatives)\.log|var/lib/dpkg(/.*)?|var/cache/debconf/[^ ]*) ' || true)
if [ -z "$leftover" ]; then ok "purge leaves nothing behind but the system user"; else bad "left after purge:"; echo "$leftover"; fi
if inroot "$root" getent passwd spofwatch >/dev/null; then ok "system user kept after purge (policy)"; else bad "system user removed on purge"; fi

# --------------------------------------------------------------- rpm test
step "rpm: $(basename "$rpm1") metadata"
rpm -qpil "$rpm1" | tee "$work/rpm-qpil.txt" | sed -n '/^\//p'
flags=$(rpm -qp --qf '[%{FILEFLAGS:fflags}|%{FILENAMES}\n]' "$rpm1" | awk -F'|' '$1 ~ /c/ { print $1, $2 }' | LC_ALL=C sort | xargs)
check "rpm config files, all noreplace (cn)" "cn /etc/spofwatch/spofwatch.yml cn /etc/sysconfig/spofwatch" "$flags"
check "rpm -qpc" "/etc/spofwatch/spofwatch.yml /etc/sysconfig/spofwatch" "$(rpm -qpc "$rpm1" | LC_ALL=C sort | xargs)"

rpm_expect="drwxr-xr-x root root /etc/spofwatch
-rw-r----- root spofwatch /etc/spofwatch/spofwatch.yml
-rw-r--r-- root root /etc/sysconfig/spofwatch
-rwxr-xr-x root root /usr/bin/spofwatch
-rw-r--r-- root root /usr/lib/systemd/system/spofwatch-drill.service
-rw-r--r-- root root /usr/lib/systemd/system/spofwatch-drill.timer
-rw-r--r-- root root /usr/lib/systemd/system/spofwatch.service
-rw-r--r-- root root /usr/lib/udev/rules.d/60-spofwatch-ipmi.rules
-rw-r--r-- root root /usr/share/doc/spofwatch/README.md
-rw-r--r-- root root /usr/share/doc/spofwatch/examples/disk-health/61-spofwatch-nvme.rules
-rw-r--r-- root root /usr/share/doc/spofwatch/examples/disk-health/disk-health.conf
-rw-r--r-- root root /usr/share/doc/spofwatch/examples/grafana/spofwatch.json
-rw-r--r-- root root /usr/share/doc/spofwatch/examples/prometheus/alertmanager.example.yml
-rw-r--r-- root root /usr/share/doc/spofwatch/examples/prometheus/prometheus.example.yml
-rw-r--r-- root root /usr/share/doc/spofwatch/examples/prometheus/spofwatch.rules.yml
-rw-r--r-- root root /usr/share/man/man1/spofwatch.1.gz
drwxr-x--- spofwatch spofwatch /var/lib/spofwatch"
got=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} %{FILENAMES}\n]' "$rpm1" | LC_ALL=C sort -k4)
if [ "$got" = "$rpm_expect" ]; then ok "rpm file list, modes and owners"; else bad "rpm file list:"; diff <(echo "$rpm_expect") <(echo "$got") || true; fi

step "rpm: install into a scratch root with rpm --root"
# The scratch root is the same minimal Debian tree: it has /bin/sh, getent,
# groupadd and useradd for the scriptlets, and no RPM dependencies, hence
# --nodeps (the package only declares shadow-utils).
rroot=$work/rpm
new_root "$rroot"
rpm --root "$rroot" --initdb
rpm --root "$rroot" -i --nodeps "$rpm1" || bad "rpm -i failed"
got=$(rpm --root "$rroot" -ql spofwatch | LC_ALL=C sort | xargs)
check "installed rpm file list" "$(echo "$rpm_expect" | awk '{ print $4 }' | LC_ALL=C sort | xargs)" "$got"
expect_user "$rroot"
check "rpm: /etc/spofwatch/spofwatch.yml" "640 root:spofwatch" "$(attrs "$rroot" /etc/spofwatch/spofwatch.yml)"
check "rpm: /etc/sysconfig/spofwatch" "644 root:root" "$(attrs "$rroot" /etc/sysconfig/spofwatch)"
check "rpm: /var/lib/spofwatch" "750 spofwatch:spofwatch" "$(attrs "$rroot" /var/lib/spofwatch)"
check "rpm: /usr/bin/spofwatch" "755 root:root" "$(attrs "$rroot" /usr/bin/spofwatch)"
out=$(rpm --root "$rroot" -V --nodeps spofwatch 2>&1) || true
if [ -z "$out" ]; then ok "rpm -V clean"; else bad "rpm -V:"; echo "$out"; fi

step "rpm: upgrade over an edited config, then erase"
printf '\nhost_labels:\n  rack: edited-by-admin\n' >>"$rroot/etc/spofwatch/spofwatch.yml"
rpm --root "$rroot" -U --nodeps "$rpm2" || bad "rpm -U failed"
check "rpm upgraded version" "$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$rpm2")" "$(rpm --root "$rroot" -q --qf '%{VERSION}-%{RELEASE}' spofwatch)"
if grep -q 'rack: edited-by-admin' "$rroot/etc/spofwatch/spofwatch.yml"; then ok "rpm: edited spofwatch.yml kept"; else bad "rpm: edited spofwatch.yml lost"; fi
if [ -f "$rroot/etc/spofwatch/spofwatch.yml.rpmnew" ]; then ok "rpm: new default config saved as .rpmnew"; else bad "rpm: no spofwatch.yml.rpmnew"; fi
rpm --root "$rroot" -e spofwatch || bad "rpm -e failed"
if [ -e "$rroot/usr/bin/spofwatch" ]; then bad "rpm -e left /usr/bin/spofwatch"; else ok "rpm -e removed the binary"; fi
if [ -f "$rroot/etc/spofwatch/spofwatch.yml.rpmsave" ]; then ok "rpm -e saved the edited config as .rpmsave"; else bad "rpm -e: no spofwatch.yml.rpmsave"; fi

echo
if [ "$fails" -gt 0 ]; then echo "package-test: $fails check(s) failed"; exit 1; fi
echo "package-test: all checks passed"
