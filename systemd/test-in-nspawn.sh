#!/usr/bin/env bash
# tributary under a real systemd: boots systemd in a systemd-nspawn container (this
# machine's / as the read-only lower layer of an overlay, a private network, booting
# basic.target only), installs the unit and checks what a sysadmin relies on:
#   - `systemctl start` returns only once /healthz answers;
#   - `systemctl reload` applies a good edit; a broken one fails and keeps the old config;
#   - the watchdog is not tripped by a slow reload;
#   - journald records the daemon's priorities;
#   - the sandbox leaves the store writable and /etc read-only;
#   - `systemctl stop` is clean within TimeoutStopSec;
# then the Debian package, as a sysadmin uses it (`apt-get install ./tributary_*.deb`
# is `apt install`'s scriptable twin): enabled, started and answering on install; an
# upgrade to a higher revision keeps the edited config and restarts the service;
# `remove` stops it and keeps the config and the store; `purge` removes both.
# Needs root, systemd-nspawn (Debian: systemd-container), curl, python3 (the feed
# server inside) and dpkg-deb, on a Debian-like host (apt and systemd in the
# container are the host's). Every step has a timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

[ "$(id -u)" = 0 ] || { echo "test-in-nspawn.sh: needs root" >&2; exit 1; }
for tool in systemd-nspawn nsenter curl /usr/bin/python3 dpkg-deb apt-get; do
  command -v "$tool" >/dev/null || { echo "test-in-nspawn.sh: needs $tool" >&2; exit 1; }
done

timeout 900 cargo build --quiet
work=$(mktemp -d /tmp/tributary-nspawn.XXXXXX)
root=$work/root
stage=$work/stage
mkdir -p "$root" "$stage/feeds"
cp target/debug/tributary systemd/tributary.service systemd/tributary.sysusers "$stage/"
cp tests/fixtures/feeds/rss2.xml tests/fixtures/feeds/atom.xml "$stage/feeds/"
# The package, revisions 1 and 2 (for the upgrade), from the debug build: the
# contents are what Cargo.toml's [package.metadata.deb] lists, as for a release, so
# CI needs neither a release build nor cargo-deb.
deb1=$(timeout 300 debian/build-deb.py --binary target/debug/tributary --out "$stage/deb" --revision 1)
deb2=$(timeout 300 debian/build-deb.py --binary target/debug/tributary --out "$stage/deb" --revision 2)
deb1=/srv/tributary-test/deb/$(basename "$deb1")
deb2=/srv/tributary-test/deb/$(basename "$deb2")

nspawn_pid=
cleanup() {
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    kill -TERM "$nspawn_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
  fi
  mountpoint -q "$root" && umount "$root"
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  in_ct journalctl --no-pager -u tributary -n 60 >&2 || true
  exit 1
}
ok() { echo "ok: $*"; }

# nspawn refuses / itself; a private bind of it is the lower layer of the overlay.
mount --bind --make-private / "$root"
timeout 600 systemd-nspawn --quiet --directory="$root" --volatile=overlay \
  --private-network --register=no --keep-unit --bind-ro="$stage:/srv/tributary-test" \
  -b systemd.unit=basic.target >"$work/console.log" 2>&1 &
nspawn_pid=$!

leader=
for _ in $(seq 100); do
  # $nspawn_pid is timeout's; its child is systemd-nspawn, whose child is PID 1.
  nspawn=$(pgrep -P "$nspawn_pid" -x systemd-nspawn || true)
  [ -n "$nspawn" ] && leader=$(pgrep -P "$nspawn" -x systemd || true)
  [ -n "$leader" ] && break
  sleep 0.1
done
[ -n "$leader" ] || { cat "$work/console.log" >&2; echo "FAIL: the container did not boot" >&2; exit 1; }

in_ct() { timeout 60 nsenter --target "$leader" --all -- "$@"; }
# Waits (at most 30 s) until GET $1 inside the container contains $2.
wait_for_body() {
  for _ in $(seq 150); do
    in_ct curl -fsS "http://127.0.0.1:8080$1" 2>/dev/null | grep -qF "$2" && return 0
    sleep 0.2
  done
  return 1
}

for _ in $(seq 100); do
  state=$(in_ct systemctl is-system-running 2>/dev/null || true)
  case $state in running|degraded) break ;; esac
  sleep 0.2
done
ok "systemd is up in the container ($state)"

# Install as the README says.
in_ct install -m 0755 /srv/tributary-test/tributary /usr/bin/tributary
in_ct install -D -m 0644 /srv/tributary-test/tributary.sysusers /etc/sysusers.d/tributary.conf
in_ct systemd-sysusers
in_ct install -m 0644 /srv/tributary-test/tributary.service /etc/systemd/system/
config() {
  in_ct sh -c "mkdir -p /etc/tributary && cat >/etc/tributary/feeds.toml.new && chown root:tributary /etc/tributary/feeds.toml.new && chmod 0640 /etc/tributary/feeds.toml.new && mv /etc/tributary/feeds.toml.new /etc/tributary/feeds.toml"
}
head='[server]
listen = "127.0.0.1:8080"
[store]
max_age = "36500d"
'
rss='[[source]]
url = "http://127.0.0.1:8001/rss2.xml"
'
atom='[[source]]
url = "http://127.0.0.1:8001/atom.xml"
'
printf '%s%s' "$head" "$rss" | config
in_ct systemctl daemon-reload
in_ct systemd-run --quiet --unit=feeds /usr/bin/python3 -m http.server 8001 \
  --bind 127.0.0.1 --directory /srv/tributary-test/feeds
for _ in $(seq 50); do in_ct curl -fsS -o /dev/null http://127.0.0.1:8001/rss2.xml 2>/dev/null && break; sleep 0.2; done

# Start: returns once READY=1 is sent, and by then /healthz answers.
in_ct timeout 30 systemctl start tributary || fail "systemctl start"
in_ct curl -fsS --max-time 5 http://127.0.0.1:8080/healthz >/dev/null || fail "/healthz does not answer right after start"
ok "systemctl start returned with /healthz answering"
wait_for_body /feed.xml "Talks resume in Geneva" || fail "the first source's items are not served"
pid=$(in_ct systemctl show -p MainPID --value tributary)

# A good edit: reload applies it, same process.
printf '%s%s%s' "$head" "$rss" "$atom" | config
in_ct timeout 30 systemctl reload tributary || fail "reload of a good edit"
wait_for_body /feed.xml "New compiler release" || fail "the added source is not served after reload"
[ "$(in_ct systemctl show -p MainPID --value tributary)" = "$pid" ] || fail "reload restarted the process"
ok "systemctl reload applied a good edit without a restart"

# A broken edit: reload fails, the old config stays.
printf '%s%sinterval = "10s"\n' "$head" "$rss" | config
if in_ct timeout 30 systemctl reload tributary 2>/dev/null; then fail "reload of a broken edit succeeded"; fi
in_ct systemctl is-active --quiet tributary || fail "a broken edit stopped the service"
[ "$(in_ct systemctl show -p MainPID --value tributary)" = "$pid" ] || fail "a broken edit restarted the process"
in_ct curl -fsS http://127.0.0.1:8080/feed.xml | grep -qF "New compiler release" || fail "the former config is not in force"
# Even a SIGHUP that skips the check leaves it in force, and logs the place.
in_ct systemctl kill -s HUP tributary
sleep 1
in_ct journalctl --no-pager -u tributary -o cat | grep -q "feeds.toml:7:12:" || fail "the broken line and column are not logged"
in_ct curl -fsS http://127.0.0.1:8080/feed.xml | grep -qF "New compiler release" || fail "the former config is not in force after SIGHUP"
ok "a broken edit fails systemctl reload and keeps the former config"
printf '%s%s%s' "$head" "$rss" "$atom" | config

# A slow reload (6 s, three times WatchdogSec) does not trip the watchdog.
in_ct mkdir -p /etc/systemd/system/tributary.service.d
in_ct sh -c 'cat >/etc/systemd/system/tributary.service.d/slow-reload.conf' <<'UNIT'
[Service]
WatchdogSec=2s
ExecReload=
ExecReload=/bin/sleep 6
ExecReload=/usr/bin/tributary check --config /etc/tributary/feeds.toml
ExecReload=/bin/kill -HUP $MAINPID
UNIT
in_ct systemctl daemon-reload
in_ct timeout 30 systemctl restart tributary || fail "restart with a 2 s watchdog"
pid=$(in_ct systemctl show -p MainPID --value tributary)
in_ct timeout 30 systemctl reload tributary || fail "the slow reload"
sleep 3
[ "$(in_ct systemctl show -p MainPID --value tributary)" = "$pid" ] || fail "the watchdog restarted the service"
[ "$(in_ct systemctl show -p NRestarts --value tributary)" = 0 ] || fail "the service restarted"
if in_ct journalctl --no-pager -u tributary | grep -q "Watchdog timeout"; then fail "the watchdog fired"; fi
ok "a 6 s reload under WatchdogSec=2s did not trip the watchdog"

# journald recorded the priorities: the "up" line as info, the broken edit as errors.
in_ct journalctl --no-pager -u tributary -p info..info -o cat | grep -q "tributary is up" || fail "info lines are not recorded at priority 6"
in_ct journalctl --no-pager -u tributary -p err..err -o cat | grep -q "the running one stays in force" || fail "error lines are not recorded at priority 3"
if in_ct journalctl --no-pager -u tributary -o cat | grep -q "^<[0-9]>"; then fail "priority prefixes leaked into the messages"; fi
ok "journald records the daemon's priorities"

# The sandbox: the store is writable, /etc is not (seen from the service's mounts).
in_ct ls /var/lib/tributary | grep -q . || fail "the store is not in /var/lib/tributary"
in_ct nsenter --target "$(in_ct systemctl show -p MainPID --value tributary)" --mount -- \
  sh -c 'touch /var/lib/tributary/.write-test && rm /var/lib/tributary/.write-test' || fail "the store is not writable in the sandbox"
if in_ct nsenter --target "$(in_ct systemctl show -p MainPID --value tributary)" --mount -- \
  sh -c 'touch /etc/tributary/write-test' 2>/dev/null; then fail "/etc is writable in the sandbox"; fi
ok "the sandbox leaves the store writable and /etc read-only"

# Stop: clean, well within TimeoutStopSec.
limit=$(in_ct systemctl show -p TimeoutStopUSec --value tributary)
started=$(date +%s)
in_ct timeout 60 systemctl stop tributary || fail "systemctl stop"
took=$(( $(date +%s) - started ))
[ "$(in_ct systemctl show -p Result --value tributary)" = success ] || fail "the stop was not clean"
[ "$(in_ct systemctl show -p ExecMainStatus --value tributary)" = 0 ] || fail "the exit status was not 0"
in_ct journalctl --no-pager -u tributary -o cat | grep -q "tributary::daemon: stopped$" || fail "the daemon did not log its clean stop"
ok "systemctl stop was clean in ${took}s (TimeoutStopSec=$limit)"

# The Debian package. First the hand installation above goes.
in_ct rm -rf /usr/bin/tributary /etc/systemd/system/tributary.service \
  /etc/systemd/system/tributary.service.d /etc/sysusers.d/tributary.conf /etc/tributary \
  /var/lib/tributary
in_ct systemctl daemon-reload
# Docker-built hosts forbid package scripts to start services (policy-rc.d exits
# 101); a real host has no such file.
in_ct rm -f /usr/sbin/policy-rc.d
apt_get() {
  timeout 300 nsenter --target "$leader" --all -- env DEBIAN_FRONTEND=noninteractive \
    apt-get -y -q -o Dpkg::Options::=--force-confold "$@" >"$work/apt.log" 2>&1 \
    || { cat "$work/apt.log" >&2; fail "apt-get $*"; }
}
apt_get install "$deb1"
[ "$(in_ct systemctl is-enabled tributary)" = enabled ] || fail "the package did not enable the service"
in_ct systemctl is-active --quiet tributary || fail "the package did not start the service"
wait_for_body /healthz "" || fail "the packaged service does not answer"
in_ct curl -fsS http://127.0.0.1:8080/feed.xml | grep -qF "<rss" || fail "the packaged service serves no feed"
[ "$(in_ct stat -c '%U:%G %a' /etc/tributary/feeds.toml)" = "root:tributary 640" ] || fail "the config's owner or mode"
for file in /usr/lib/systemd/system/tributary.service /usr/share/man/man1/tributary.1.gz \
  /usr/share/man/man1/tributary-check.1.gz /usr/share/bash-completion/completions/tributary \
  /usr/share/zsh/vendor-completions/_tributary /usr/share/fish/vendor_completions.d/tributary.fish; do
  in_ct test -s "$file" || fail "the package lacks $file"
done
# The process_* metrics are read from /proc/self, which the sandbox keeps.
metrics=$(in_ct curl -fsS http://127.0.0.1:8080/metrics)
for metric in process_cpu_seconds_total process_resident_memory_bytes process_open_fds \
  process_max_fds process_start_time_seconds 'tributary_build_info{'; do
  grep -q "^$metric" <<<"$metrics" || fail "no $metric in the packaged service's /metrics"
done
ok "apt install ./$(basename "$deb1"): enabled, running, answering on 8080"

# The sysadmin's edit: a source; then the upgrade keeps it and restarts the service.
printf '%s%s' "$head" "$rss" | config
in_ct timeout 30 systemctl reload tributary || fail "reload of the packaged service"
wait_for_body /feed.xml "Talks resume in Geneva" || fail "the packaged service does not serve the source"
pid=$(in_ct systemctl show -p MainPID --value tributary)
apt_get install "$deb2"
[ "$(in_ct dpkg-query -W -f '${Version}' tributary)" = "$(basename "$deb2" | cut -d_ -f2)" ] || fail "not upgraded"
in_ct grep -qF "127.0.0.1:8001/rss2.xml" /etc/tributary/feeds.toml || fail "the upgrade replaced the edited config"
in_ct systemctl is-active --quiet tributary || fail "the service is not running after the upgrade"
new_pid=$(in_ct systemctl show -p MainPID --value tributary)
[ "$new_pid" != 0 ] && [ "$new_pid" != "$pid" ] || fail "the upgrade did not restart the service ($pid, $new_pid)"
wait_for_body /feed.xml "Talks resume in Geneva" || fail "the store or the source was lost in the upgrade"
ok "upgrade to $(basename "$deb2"): config kept, service restarted (MainPID $pid -> $new_pid)"

apt_get remove tributary
if in_ct systemctl is-active --quiet tributary; then fail "remove left the service running"; fi
in_ct test -f /etc/tributary/feeds.toml || fail "remove deleted the config"
in_ct test -d /var/lib/tributary || fail "remove deleted the store"
in_ct test ! -e /usr/bin/tributary || fail "remove left the binary"
[ "$(in_ct dpkg-query -W -f '${Status}' tributary)" = "deinstall ok config-files" ] || fail "the package state after remove"
ok "apt remove: service stopped, config and store kept"

apt_get purge tributary
in_ct test ! -e /etc/tributary/feeds.toml || fail "purge left the config"
in_ct test ! -e /var/lib/tributary || fail "purge left the store"
in_ct test ! -e /etc/systemd/system/multi-user.target.wants/tributary.service || fail "purge left the unit enabled"
if in_ct dpkg-query -W tributary >/dev/null 2>&1; then fail "dpkg still knows the package after purge"; fi
ok "apt purge: config, store and enablement gone (the tributary user stays, as Debian policy has it)"
echo "all nspawn checks passed"
