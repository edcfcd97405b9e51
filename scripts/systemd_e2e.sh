#!/usr/bin/env bash
# motiond under a real systemd: boots a minimal Debian tree with systemd-nspawn, installs motiond
# into it the way docs/operations.md tells a user, and checks the unit's behaviour (see check_*
# below).
#
# Needs root, debootstrap, systemd-nspawn (systemd-container) and nsenter; network to the Debian
# mirror and to PyPI only while the tree is built and motiond installed (before booting; the
# container itself runs with --private-network). Safety rules: shared/notes/systemd-e2e.md.
#
# Exit status: 0 all checks passed, 1 a check failed, 2 this machine cannot run the test.
# The Debian tree with the Python dependencies is cached in $MOTIOND_E2E_CACHE
# (default /var/cache/motiond-e2e) as <suite>-<hash of packages and dependencies>.tar.
# MOTIOND_E2E_JOURNAL=FILE saves the container's whole journal there at the end.
set -Eeuo pipefail

REPO=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
SUITE=bookworm
# procps: /bin/kill for ExecReload (every real install has it; minbase does not).
PACKAGES=systemd,systemd-sysv,dbus,procps,python3,python3-venv,python3-pip
TREE_FORMAT=1 # bump when the way the cached tree is built changes
CACHE_DIR=${MOTIOND_E2E_CACHE:-/var/cache/motiond-e2e}
NAME=motiond-e2e-$$ # cgroup and machine name; the leftover check looks for motiond-*
CHROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

WORK=""
BUILD=""
ROOT=""
TARBALL=""
NSPAWN_PID=""
LEADER=""
CGROUPS=()
STARTED=$SECONDS

log() { printf '[e2e %3ds] %s\n' "$((SECONDS - STARTED))" "$*"; }
fail() {
    printf 'systemd e2e FAILED: %s\n' "$*" >&2
    exit 1
}
cannot_run() {
    printf 'systemd e2e CANNOT RUN on this machine: %s\n' "$*" >&2
    exit 2
}

# -- teardown (always) ---------------------------------------------------------------------------

wait_gone() { # pid seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        if [[ -n $LEADER ]]; then
            if [[ $rc -ne 0 ]]; then
                printf '\n--- journalctl -u motiond (last 40 lines) ---\n' >&2
                inside journalctl -u motiond -o short-monotonic --no-pager -n 40 >&2 || true
            fi
            if [[ -n ${MOTIOND_E2E_JOURNAL:-} ]]; then
                inside journalctl -o short-monotonic --no-pager >"$MOTIOND_E2E_JOURNAL" || true
            fi
            timeout 10 nsenter -t "$LEADER" -a systemctl poweroff >/dev/null 2>&1 || true
        fi
        if ! wait_gone "$NSPAWN_PID" 30; then
            log "container did not power off; stopping systemd-nspawn (pid $NSPAWN_PID)"
            kill -TERM "$NSPAWN_PID" 2>/dev/null || true # nspawn asks the container's init to halt
            if ! wait_gone "$NSPAWN_PID" 15; then
                kill -KILL "$NSPAWN_PID" 2>/dev/null || true
            fi
        fi
        wait "$NSPAWN_PID" 2>/dev/null || true
    fi
    local dir pid
    for dir in "${CGROUPS[@]}"; do
        [[ -d $dir ]] || continue
        # Whatever is still in our own cgroup was started by this script (the container).
        while read -r pid; do
            kill -KILL "$pid" 2>/dev/null || true
        done < <(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null)
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true
            [[ -d $dir ]] || break
            sleep 0.2
        done
        [[ -d $dir ]] && printf 'systemd e2e: could not remove cgroup %s\n' "$dir" >&2 && rc=1
    done
    [[ -n $WORK ]] && rm -rf --one-file-system "$WORK"
    [[ -n $BUILD ]] && rm -rf --one-file-system "$BUILD"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -- prerequisites -------------------------------------------------------------------------------

check_machine() {
    [[ $EUID -eq 0 ]] || cannot_run "needs root (systemd-nspawn, debootstrap, cgroups); run as root"
    local tool missing=()
    for tool in debootstrap systemd-nspawn nsenter tar sha256sum flock python3; do
        command -v "$tool" >/dev/null || missing+=("$tool")
    done
    ((${#missing[@]} == 0)) ||
        cannot_run "missing ${missing[*]}: apt-get install -y debootstrap systemd-container"
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        CGROUPS=("/sys/fs/cgroup/$NAME") # unified hierarchy only
    elif [[ -d /sys/fs/cgroup/systemd && -d /sys/fs/cgroup/unified ]]; then
        CGROUPS=("/sys/fs/cgroup/systemd/$NAME" "/sys/fs/cgroup/unified/$NAME") # hybrid
    else
        cannot_run "no usable cgroup hierarchy under /sys/fs/cgroup (systemd-nspawn needs one)"
    fi
}

in_root() { # run a command in the tree (chroot; shares the host's network, used before booting)
    chroot "$1" /usr/bin/env -i PATH="$CHROOT_PATH" HOME=/root LANG=C.UTF-8 \
        ${http_proxy:+http_proxy=$http_proxy} ${https_proxy:+https_proxy=$https_proxy} \
        ${no_proxy:+no_proxy=$no_proxy} PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_DEFAULT_TIMEOUT=120 \
        PIP_CERT=/etc/motiond-e2e-host-ca.crt "${@:2}"
}

give_host_ca() { # the host's CA bundle, so pip trusts what the host trusts (proxies included)
    cp /etc/resolv.conf "$1/etc/resolv.conf"
    if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
        cp /etc/ssl/certs/ca-certificates.crt "$1/etc/motiond-e2e-host-ca.crt"
    else
        cp "$1/etc/ssl/certs/ca-certificates.crt" "$1/etc/motiond-e2e-host-ca.crt"
    fi
}

# -- the cached tree: Debian + a venv with motiond's dependencies ---------------------------------

python_dependencies() {
    python3 - "$REPO/pyproject.toml" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    print("\n".join(tomllib.load(f)["project"]["dependencies"]))
PY
}

debian_mirror() {
    local mirror=${MOTIOND_E2E_MIRROR:-}
    if [[ -z $mirror ]]; then
        mirror=$(apt-cache policy 2>/dev/null | awk "/ $SUITE\\/main/ {print \$2; exit}" || true)
    fi
    echo "${mirror:-http://deb.debian.org/debian}"
}

cached_tree() { # sets TARBALL, building the tree first if needed
    local deps key
    deps=$(python_dependencies)
    key=$(printf '%s\n' "$TREE_FORMAT" "$SUITE" "$PACKAGES" "$deps" | sha256sum | cut -c1-16)
    TARBALL=$CACHE_DIR/$SUITE-$key.tar
    mkdir -p "$CACHE_DIR"
    exec {lock}>"$CACHE_DIR/.lock"
    flock "$lock" # one build at a time; a second run waits and then uses it
    if [[ ! -f $TARBALL ]]; then
        build_tree "$TARBALL" "$deps"
        find "$CACHE_DIR" -maxdepth 1 -name "$SUITE-*.tar" ! -path "$TARBALL" -delete
    else
        log "using the cached tree $TARBALL"
    fi
    exec {lock}>&-
}

build_tree() { # tarball deps
    local mirror
    mirror=$(debian_mirror)
    BUILD=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
    log "building the Debian $SUITE tree (debootstrap from $mirror; cached afterwards)"
    if ! debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$BUILD/root" "$mirror" \
        >"$BUILD/debootstrap.log" 2>&1; then
        tail -n 30 "$BUILD/debootstrap.log" >&2
        fail "debootstrap failed (log above)"
    fi
    give_host_ca "$BUILD/root"
    log "installing motiond's Python dependencies into /opt/motiond/venv"
    local -a deps
    mapfile -t deps <<<"$2"
    in_root "$BUILD/root" python3 -m venv /opt/motiond/venv
    in_root "$BUILD/root" /opt/motiond/venv/bin/pip install --quiet "${deps[@]}" ||
        fail "pip install of the dependencies inside the tree failed"
    rm -rf "$BUILD/root/root/.cache" "$BUILD/root/var/cache/apt/archives/"*.deb
    tar -C "$BUILD/root" -cf "$1.tmp" .
    mv "$1.tmp" "$1"
    rm -rf --one-file-system "$BUILD"
    BUILD=""
}

# -- installing motiond as docs/operations.md says -------------------------------------------------

copy_source() { # the files of a clone: tracked and new, not ignored
    mkdir -p "$1"
    if git -C "$REPO" rev-parse --git-dir >/dev/null 2>&1; then
        (cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
            while IFS= read -r -d '' file; do
                if [[ -f $file ]]; then printf '%s\0' "$file"; fi
            done | tar --null -T - -cf -) | tar -C "$1" -xf -
    else
        tar -C "$REPO" --exclude=.git --exclude='__pycache__' --exclude='*.egg-info' \
            --exclude=build --exclude=motiond-data -cf - . | tar -C "$1" -xf -
    fi
}

install_motiond() {
    local src=/opt/motiond/src
    log "installing motiond from the source tree into /opt/motiond/venv"
    copy_source "$ROOT$src"
    give_host_ca "$ROOT"
    # docs/operations.md: the system user (sysusers.d), the venv, the unit, the config. The venv
    # already holds the dependencies (cached tree), so `pip install` builds and adds motiond itself.
    install -D -m 644 "$ROOT$src/systemd/motiond.sysusers" "$ROOT/etc/sysusers.d/motiond.conf"
    in_root "$ROOT" systemd-sysusers /etc/sysusers.d/motiond.conf
    in_root "$ROOT" /opt/motiond/venv/bin/pip install --quiet "$src" ||
        fail "pip install $src inside the tree failed"
    install -m 644 "$ROOT$src/systemd/motiond.service" "$ROOT$src/systemd/motiond@.service" \
        "$ROOT/etc/systemd/system/"
    install -d -m 755 "$ROOT/etc/motiond"
    write_config good
}

write_config() { # good | bad | disk2 (storage on "another disk") | porch (motiond@porch)
    local name=motiond extra=""
    case $1 in
    bad) extra="    colour: purple" ;;
    disk2) extra="storage: {dir: /srv/disk2/motiond}" ;;
    porch) name=porch extra="web: {port: 8101}" ;;
    esac
    local file=$ROOT/etc/motiond/$name.yaml
    cat >"$file" <<YAML
# The demo source: a synthetic camera, motion about every 20-30 s.
cameras:
  - name: demo
    source: demo
    capture: {width: 640, height: 480, fps: 15}
$extra
YAML
    chown "0:$(awk -F: '$1 == "motiond" {print $3}' "$ROOT/etc/group")" "$file"
    chmod 640 "$file"
}

# -- the container ---------------------------------------------------------------------------------

boot() {
    log "booting the tree with systemd-nspawn (cgroup $NAME, private network)"
    local dir
    for dir in "${CGROUPS[@]}"; do mkdir -p "$dir"; done
    (
        for dir in "${CGROUPS[@]}"; do echo "$BASHPID" >"$dir/cgroup.procs"; done
        exec systemd-nspawn --quiet --register=no --keep-unit --console=passive \
            --private-network -D "$ROOT" -M "$NAME" -b
    ) >"$WORK/nspawn.log" 2>&1 </dev/null &
    NSPAWN_PID=$!
    local i
    for ((i = 0; i < 200; i++)); do
        LEADER=$(pgrep -P "$NSPAWN_PID" -x systemd || true)
        [[ -n $LEADER ]] && break
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        sleep 0.05
    done
    [[ -n $LEADER ]] || {
        cat "$WORK/nspawn.log" >&2
        fail "systemd-nspawn did not start systemd (log above)"
    }
    for ((i = 0; i < 200; i++)); do
        nsenter -t "$LEADER" -a true 2>/dev/null && break
        sleep 0.05
    done
    # systemctl can talk to the manager once /run/systemd/private exists.
    for ((i = 0; i < 200; i++)); do
        inside test -S /run/systemd/private 2>/dev/null && break
        sleep 0.05
    done
    local state
    state=$(inside timeout 60 systemctl is-system-running --wait || true)
    if [[ $state != running ]]; then
        log "system state: $state; failed units: $(inside systemctl --failed --no-legend | tr '\n' ' ')"
    fi
}

inside() { # run a command inside the booted container (systemctl -M needs machined: not here)
    nsenter -t "$LEADER" -a /usr/bin/env -i PATH="$CHROOT_PATH" LANG=C.UTF-8 SYSTEMD_PAGER= "$@"
}

prop() { inside systemctl show -P "$1" motiond; }

wait_for() { # seconds description command...: until the command succeeds
    local seconds=$1 what=$2 deadline=$((SECONDS + $1))
    shift 2
    until "$@"; do
        ((SECONDS < deadline)) || fail "$what: not within $seconds s (journal: $(journal_tail))"
        sleep 0.5
    done
}

journal_tail() { inside journalctl -u motiond -o cat --no-pager -n 15 | tr '\n' '|'; }

state_dir=/var/lib/motiond
kept_clips() { find "$ROOT$state_dir/clips" -name '*.mp4' ! -name '*.partial.mp4' 2>/dev/null; }
partial_clips() { find "$ROOT$state_dir/clips" -name '*.partial.mp4' -newer "$1" 2>/dev/null; }
has_kept_clip() { [[ -n $(kept_clips) ]]; }
has_partial_since() { [[ -n $(partial_clips "$1") ]]; }

# -- the checks ------------------------------------------------------------------------------------

check_start() {
    local started took
    started=${EPOCHREALTIME/./}
    inside systemctl enable --now motiond >/dev/null 2>&1 ||
        fail "systemctl enable --now motiond failed: $(journal_tail)"
    took=$(((${EPOCHREALTIME/./} - started) / 1000))
    # Type=notify: start returns after READY=1, which motiond sends once the port listens.
    [[ $(prop ActiveState)/$(prop SubState) == active/running ]] ||
        fail "after systemctl start: $(prop ActiveState)/$(prop SubState), want active/running"
    inside /opt/motiond/venv/bin/python -c \
        'import socket; socket.create_connection(("127.0.0.1", 8100), timeout=2).close()' ||
        fail "web port 8100 not accepting connections right after systemctl start returned"
    local status
    status=$(prop StatusText)
    [[ $status == *"cameras online"* ]] || fail "StatusText=$status, want the daemon's summary"
    log "ok: systemctl start returned after READY (${took} ms), port 8100 open, status: $status"
}

check_unprivileged() {
    local pid status uid groups user_uid video_gid owner
    pid=$(prop MainPID)
    status=$(inside cat "/proc/$pid/status")
    uid=$(awk '/^Uid:/ {print $2}' <<<"$status")
    groups=$(awk '/^Groups:/ {$1 = ""; print}' <<<"$status")
    user_uid=$(inside id -u motiond)
    video_gid=$(inside getent group video | cut -d: -f3)
    [[ $uid != 0 && $uid == "$user_uid" ]] ||
        fail "main process runs as uid $uid, want motiond ($user_uid)"
    [[ " $groups " == *" $video_gid "* ]] ||
        fail "main process groups ($groups) lack video ($video_gid)"
    owner=$(inside stat -c %U:%a "$state_dir")
    [[ $owner == motiond:750 ]] || fail "$state_dir is $owner, want motiond:750"
    log "ok: main process runs as motiond (uid $uid, groups$groups), $state_dir is $owner"
}

check_clips() {
    wait_for 45 "a kept clip under $state_dir/clips" has_kept_clip
    inside journalctl -u motiond -o cat --no-pager | grep -q 'clip kept' ||
        fail "the journal has no 'clip kept' line"
    log "ok: clip kept: $(kept_clips | head -n 1 | sed "s#^$ROOT##")"
}

check_reload() {
    local pid
    pid=$(prop MainPID)
    inside systemctl reload motiond || fail "systemctl reload motiond failed: $(journal_tail)"
    wait_for 10 "'reloaded' in the journal" journal_has 'reloaded /etc/motiond/motiond.yaml'
    [[ $(prop MainPID) == "$pid" && $(prop ActiveState) == active ]] ||
        fail "after reload: MainPID $(prop MainPID) (was $pid), $(prop ActiveState)"
    log "ok: systemctl reload kept MainPID $pid running"
}

check_template_instance() {
    write_config porch
    inside systemctl start motiond@porch || fail "systemctl start motiond@porch failed"
    inside /opt/motiond/venv/bin/python -c \
        'import socket; socket.create_connection(("127.0.0.1", 8101), timeout=2).close()' ||
        fail "motiond@porch does not listen on its own port 8101"
    inside journalctl -u motiond@porch -o cat --no-pager | grep -q 'storage /var/lib/motiond/porch ' ||
        fail "motiond@porch does not keep its clips in /var/lib/motiond/porch"
    [[ $(prop ActiveState) == active ]] || fail "motiond.service stopped when motiond@porch started"
    inside systemctl stop motiond@porch
    log "ok: motiond@porch ran beside motiond with its own port and /var/lib/motiond/porch"
}

journal_has() { inside journalctl -u motiond -o cat --no-pager | grep -qF -- "$1"; }

restarted_after_kill() { [[ $(prop NRestarts) == 1 && $(prop SubState) == running ]]; }

check_restart_after_sigkill() {
    local pid
    pid=$(prop MainPID)
    inside kill -KILL "$pid"
    wait_for 30 "a restart after SIGKILL (NRestarts=1, running)" restarted_after_kill
    [[ $(prop MainPID) != "$pid" ]] || fail "MainPID unchanged after SIGKILL"
    log "ok: SIGKILL of $pid -> restarted as $(prop MainPID), NRestarts=1"
}

check_clean_stop() {
    local mark=$WORK/mark partial clip started took
    touch "$mark"
    wait_for 40 "a clip in progress" has_partial_since "$mark"
    partial=$(partial_clips "$mark" | head -n 1)
    sleep 2 # past min_changed_frames: a clip stopped sooner is discarded, by design
    started=${EPOCHREALTIME/./}
    inside systemctl stop motiond
    took=$(((${EPOCHREALTIME/./} - started) / 1000))
    [[ $(prop Result) == success && $(prop ExecMainStatus) == 0 ]] ||
        fail "stop: Result=$(prop Result) ExecMainStatus=$(prop ExecMainStatus), want success/0"
    clip=${partial%.partial.mp4}.mp4
    [[ -f $clip && -f ${clip%.mp4}.json && ! -e $partial ]] ||
        fail "the clip in progress at stop was not finished: $(ls "$(dirname "$partial")")" \
            "$(journal_tail)"
    inside /opt/motiond/venv/bin/python - "${clip#"$ROOT"}" <<'PY' || fail "clip not playable"
import sys

import av

with av.open(sys.argv[1]) as container:
    stream = container.streams.video[0]
    frames = sum(1 for _ in container.decode(stream))
    assert stream.codec_context.name == "h264", stream.codec_context.name
    assert frames > 0
    print(f"{sys.argv[1]}: h264, {frames} frames")
PY
    log "ok: systemctl stop in ${took} ms, Result=success, clip in progress finished and playable"
}

saw_watchdog() { [[ $(prop Result) == watchdog ]] || journal_has "Failed with result 'watchdog'"; }

check_watchdog() {
    local dropin=$ROOT/etc/systemd/system/motiond.service.d
    mkdir -p "$dropin"
    # The real daemon, given sources that hang 5 s after opening (tests/fixtures/hanging_daemon.py:
    # motiond itself has no test switch).
    printf '[Service]\nExecStart=\nExecStart=%s %s 5 -c /etc/motiond/motiond.yaml\nWatchdogSec=6s\n' \
        /opt/motiond/venv/bin/python /opt/motiond/src/tests/fixtures/hanging_daemon.py \
        >"$dropin/test-hang.conf"
    inside systemctl daemon-reload
    inside systemctl start motiond
    # hang after 5 s, noticed by hung_loops() after read_timeout + 15 s, then WatchdogSec=6s
    wait_for 60 "Result=watchdog after a hung capture loop" saw_watchdog
    journal_has "not pinging the watchdog" || fail "the daemon did not log why it stopped pinging"
    rm -r "$dropin"
    inside systemctl daemon-reload
    inside systemctl stop motiond
    log "ok: a hung capture loop ended in Result=watchdog"
}

failed_for_good() { [[ $(prop ActiveState) == failed ]]; }

check_bad_config() {
    write_config bad
    inside systemctl reset-failed motiond 2>/dev/null || true
    if inside systemctl start motiond 2>/dev/null; then
        fail "systemctl start succeeded with a bad config"
    fi
    wait_for 10 "the unit to fail" failed_for_good
    sleep 7 # longer than RestartSec=5s: a restart would have happened by now
    [[ $(prop ExecMainStatus) == 78 && $(prop NRestarts) == 0 && $(prop ActiveState) == failed ]] ||
        fail "bad config: ExecMainStatus=$(prop ExecMainStatus) NRestarts=$(prop NRestarts)" \
            "ActiveState=$(prop ActiveState), want 78/0/failed"
    inside journalctl -u motiond -p err -o cat --no-pager | grep -q 'config error: ' ||
        fail "the config error is not in the journal with priority err: $(journal_tail)"
    write_config good
    log "ok: a bad config fails with exit 78 and no restart loop"
}

check_storage_on_another_disk() {
    local dropin=$ROOT/etc/systemd/system/motiond.service.d
    write_config disk2
    install -d -m 750 -o "$(stat -c %u "$ROOT$state_dir")" -g "$(stat -c %g "$ROOT$state_dir")" \
        "$ROOT/srv/disk2/motiond"
    inside systemctl reset-failed motiond
    # ProtectSystem=strict: without the drop-in the directory is read-only to the daemon.
    if inside systemctl start motiond 2>/dev/null; then
        fail "motiond started with storage outside its StateDirectory and no ReadWritePaths="
    fi
    [[ $(prop ExecMainStatus) == 78 ]] || fail "want exit 78 (storage.dir not writable)"
    mkdir -p "$dropin"
    printf '[Unit]\nRequiresMountsFor=/srv/disk2\n[Service]\nReadWritePaths=/srv/disk2/motiond\n' \
        >"$dropin/storage.conf"
    inside systemctl daemon-reload
    inside systemctl reset-failed motiond
    inside systemctl start motiond || fail "motiond did not start with the storage drop-in"
    [[ -d $ROOT/srv/disk2/motiond/clips ]] || fail "nothing written to /srv/disk2/motiond"
    inside systemctl stop motiond
    rm -r "$dropin"
    inside systemctl daemon-reload
    write_config good
    log "ok: storage on another disk works with docs/operations.md's drop-in (and only with it)"
}

check_journal() {
    local all
    all=$(inside journalctl -u motiond -o cat --no-pager)
    grep -q 'web: listening on http://127.0.0.1:8100/' <<<"$all" || fail "no 'web: listening' line"
    grep -q 'clip kept' <<<"$all" || fail "no 'clip kept' line"
    grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T]' <<<"$all" && fail "journal lines carry a timestamp"
    grep -q '^<[0-9]>' <<<"$all" && fail "a priority prefix reached the journal unparsed"
    inside journalctl -u motiond -p warning -o cat --no-pager | grep -q 'hanging (test only)' ||
        fail "a warning is not stored with warning priority"
    if inside journalctl -u motiond -p warning -o cat --no-pager | grep -q 'web: listening'; then
        fail "an info line is stored with warning priority or above"
    fi
    log "ok: the journal holds the daemon's lines with mapped priorities, no second timestamp"
}

main() {
    check_machine
    cached_tree
    WORK=$(mktemp -d /var/tmp/motiond-e2e.XXXXXX)
    ROOT=$WORK/root
    mkdir "$ROOT"
    tar -C "$ROOT" -xf "$TARBALL"
    install_motiond
    boot
    check_start
    check_unprivileged
    check_clips
    check_reload
    check_template_instance
    check_restart_after_sigkill
    check_clean_stop
    check_watchdog
    check_bad_config
    check_storage_on_another_disk
    check_journal
    log "all systemd checks passed"
}

main "$@"
