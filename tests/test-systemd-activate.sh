#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-systemd-activate.sh - both daemons started the way their systemd
# units start them: systemd-socket-activate (Debian's systemd package)
# listens on the socket and, on the first connection, execs the daemon
# with it as fd 3 and LISTEN_FDS=1, LISTEN_PID set, and no --socket-path
# or --fd.  Through each: vhostctl user probe and user check, and for
# vhost-user-blk a front-end writing, reading back and finding on disk
# 64 KiB (tests/vu-blk-io), each on a new connection to the same socket;
# SIGTERM ends each with status 0.  Then what a daemon must refuse: a
# LISTEN_PID of another process, two fds, and as fd 3 a socket that is
# not listening, not SOCK_STREAM or not AF_UNIX.
#
# Prints TAP; exits 1 if a case failed, 77 without systemd-socket-activate
# or python3.  Run from the build directory (make check does), or set
# VHOSTCTL, BLK_DAEMON, NET_DAEMON and BLK_IO (scripts/test points them at
# the unpacked Debian packages).
set -u

top_builddir=${top_builddir:-.}
VHOSTCTL=${VHOSTCTL:-$top_builddir/tools/vhostctl}
BLK_DAEMON=${BLK_DAEMON:-$top_builddir/tools/vhost-user-blk}
NET_DAEMON=${NET_DAEMON:-$top_builddir/tools/vhost-user-net}
BLK_IO=${BLK_IO:-$top_builddir/tests/vu-blk-io}

activate=$(command -v systemd-socket-activate) ||
	{ echo "1..0 # SKIP systemd-socket-activate missing (systemd)"; exit 77; }
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 missing"; exit 77; }
for p in "$VHOSTCTL" "$BLK_DAEMON" "$NET_DAEMON" "$BLK_IO"; do
	[ -x "$p" ] || { echo "Bail out! $p not built"; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-systemd-activate.XXXXXX")
pids=()
# shellcheck disable=SC2317 # called through the trap
cleanup() {
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

n=0
failed=0
out=$tmp/out
err=$tmp/err
ok() { n=$((n + 1)); echo "ok $n activate.$1"; }
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n activate.$1"
	shift
	[ $# -gt 0 ] && printf '%s\n' "$*" | sed 's/^/# /'
	sed 's/^/#   stdout: /' "$out" | head -20
	sed 's/^/#   stderr: /' "$err" | head -20
}

# run NAME CMD...: the command must exit 0 within 120 s.
run() {
	local name=$1 rc
	shift
	timeout 120 "$@" >"$out" 2>"$err" </dev/null
	rc=$?
	if [ $rc -eq 0 ]; then ok "$name"; else not_ok "$name" "$*: exit $rc"; fi
	return $rc
}

# json NAME PYTHON: PYTHON with `j` the parsed $out must not raise.
json() {
	if python3 -c 'import json, sys
j = json.load(open(sys.argv[1]))
exec(sys.argv[2])' "$out" "$2" 2>"$err"; then
		ok "$1"
	else
		not_ok "$1" "JSON check failed: $2"
	fi
}

# activated NAME SOCKET DAEMON ARGS...: systemd-socket-activate listening
# on SOCKET; sets $pid.  The daemon replaces it (same pid) on the first
# connection.
activated() {
	local name=$1 sock=$2 i v env=()
	shift 2
	# the daemon gets a clean environment but for these
	for v in LD_LIBRARY_PATH LIBVHOST_LOG ASAN_OPTIONS UBSAN_OPTIONS \
		LSAN_OPTIONS; do
		[ -n "${!v+set}" ] && env+=(-E "$v")
	done
	"$activate" -l "$sock" "${env[@]}" -- "$@" >"$tmp/$name.log" 2>&1 \
		</dev/null &
	pid=$!
	pids+=("$pid")
	for i in $(seq 500); do
		[ -S "$sock" ] && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.02
	done
	cp "$tmp/$name.log" "$err"
	not_ok "$name.listen" "no socket at $sock"
	return 1
}

# stopped NAME: SIGTERM, then the daemon must end with status 0.
stopped() {
	local rc
	kill -TERM "$pid"
	timeout 30 tail --pid="$pid" -f /dev/null
	wait "$pid"
	rc=$?
	if [ $rc -eq 0 ]; then
		ok "$1.sigterm"
	else
		cp "$tmp/$1.log" "$err"
		not_ok "$1.sigterm" "exit status $rc after SIGTERM"
	fi
}

# the process at $pid is the daemon itself (in the build tree: the program
# its libtool wrapper runs), not systemd-socket-activate
is_daemon() {
	local exe
	exe=$(readlink "/proc/$pid/exe")
	if [ "${exe##*/}" = "${2##*/}" ]; then
		ok "$1.exec"
	else
		not_ok "$1.exec" "pid $pid runs $exe, not $2"
	fi
}

# ------------------------------------------------------------------
# vhost-user-blk
# ------------------------------------------------------------------
img=$tmp/disk.img
truncate -s 16M "$img"
if activated blk "$tmp/blk.sock" "$BLK_DAEMON" --blk-file="$img"; then
	run blk.probe "$VHOSTCTL" -j user probe --type blk "$tmp/blk.sock" &&
		json blk.probe.capacity 'assert j["config"]["capacity"] == 32768, j'
	is_daemon blk "$BLK_DAEMON"
	run blk.io "$BLK_IO" "$tmp/blk.sock" "$img" && sed 's/^/# /' "$out"
	run blk.check "$VHOSTCTL" user check "$tmp/blk.sock"
	run blk.io.again "$BLK_IO" "$tmp/blk.sock" "$img"
	stopped blk
fi

# ------------------------------------------------------------------
# vhost-user-net (--loopback: no tap, no privilege)
# ------------------------------------------------------------------
if activated net "$tmp/net.sock" "$NET_DAEMON" --loopback \
	--mac=52:54:00:ac:71:0a; then
	run net.probe "$VHOSTCTL" -j user probe --type net "$tmp/net.sock" &&
		json net.probe.mac 'assert j["config"]["mac"] == "52:54:00:ac:71:0a", j'
	is_daemon net "$NET_DAEMON"
	run net.check "$VHOSTCTL" -j user check "$tmp/net.sock" &&
		json net.check.ring-size 'assert [c["result"] for c in j["checks"] if c["name"] == "SET_VRING_NUM num 100"] == ["pass"], j'
	stopped net
fi

# ------------------------------------------------------------------
# what LISTEN_FDS must not make a daemon serve
# ------------------------------------------------------------------
# passfd NAME FAMILY TYPE LISTEN PIDOK NFDS: exec vhost-user-blk with a
# socket of that kind as fd 3 and the LISTEN_ variables.  NAME "control"
# probes the daemon and prints "served"; any other waits for the daemon to
# end and prints its exit status.
passfd() {
	local name=$1
	shift
	LIBVHOST_LOG=err timeout 60 python3 - "$name" "$tmp/$name.sock" "$@" \
		"$VHOSTCTL" "$BLK_DAEMON" --blk-file="$img" >"$out" 2>"$err" <<'PY'
import os, socket, subprocess, sys
name, path, fam, typ, listen, pid_ok, nfds, vhostctl = sys.argv[1:9]
argv = sys.argv[9:]
if fam != "none":
    fam = {"unix": socket.AF_UNIX, "inet": socket.AF_INET}[fam]
    typ = {"stream": socket.SOCK_STREAM,
           "seqpacket": socket.SOCK_SEQPACKET}[typ]
    s = socket.socket(fam, typ)
    s.bind(path if fam == socket.AF_UNIX else ("127.0.0.1", 0))
    if listen == "1":
        s.listen(4)
pid = os.fork()
if pid == 0:
    if fam == "none":
        try:
            os.close(3)
        except OSError:
            pass
    else:
        os.dup2(s.fileno(), 3)
        os.set_inheritable(3, True)  # dup2 onto itself keeps CLOEXEC
    env = dict(os.environ, LISTEN_FDS=nfds,
               LISTEN_PID=str(os.getpid()) if pid_ok == "1" else "1")
    os.execve(argv[0], argv, env)
if name == "control":
    rc = subprocess.call([vhostctl, "user", "probe", "--type", "blk", path],
                         stdout=subprocess.DEVNULL)
    os.kill(pid, 15)
    os.waitpid(pid, 0)
    print("served" if rc == 0 else "probe exit %d" % rc)
else:
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
PY
}

# refused NAME MESSAGE ARGS...: exit status 1 and MESSAGE on stderr
refused() {
	local name=$1 msg=$2
	shift 2
	passfd "$name" "$@"
	if [ "$(cat "$out")" = 1 ] && grep -q -- "$msg" "$err"; then
		ok "refuse.$name"
	else
		not_ok "refuse.$name" "want exit status 1 and \"$msg\""
	fi
}

passfd control unix stream 1 1 1
if [ "$(cat "$out")" = served ]; then
	ok refuse.control
else
	not_ok refuse.control "a correct LISTEN_FDS socket was not served"
fi
refused other-pid "exactly one of" unix stream 1 0 1
refused two-fds "LISTEN_FDS=2: one socket expected" unix stream 1 1 2
refused not-listening "not a listening socket" unix stream 0 1 1
# (the daemon opens its image before: fd 3 is that file, not a socket)
refused no-fd "fd 3: Socket operation on non-socket" none stream 1 1 1
refused seqpacket "not a SOCK_STREAM socket" unix seqpacket 1 1 1
refused inet "not an AF_UNIX socket" inet stream 1 1 1

echo "1..$n"
[ $failed -eq 0 ] || { echo "# $failed of $n failed"; exit 1; }
exit 0
