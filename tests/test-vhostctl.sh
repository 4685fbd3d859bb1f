#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# test-vhostctl.sh - every vhostctl command, in text and JSON, on a host
# without kernel vhost devices: exit codes (0 ok, 1 failure, 2 usage,
# 3 permission, 4 absent), --help at every level, JSON keys and values
# (parsed with python3), and the vhost-user commands against real
# back-ends: qemu-storage-daemon, and our own vhost-user-blk and
# vhost-user-net (built with vhostctl: missing is a failure).
#
# Prints TAP (make check runs it through automake's TAP driver); exits 1 if
# a case failed.  Skips all without python3, the qemu-storage-daemon cases
# without that binary (both installed by scripts/install-deps).
# Run from the build directory (make check does), or set VHOSTCTL.
set -u

top_builddir=${top_builddir:-.}
VHOSTCTL=${VHOSTCTL:-$top_builddir/tools/vhostctl}
BLK_DAEMON=${BLK_DAEMON:-$top_builddir/tools/vhost-user-blk}
NET_DAEMON=${NET_DAEMON:-$top_builddir/tools/vhost-user-net}

command -v python3 >/dev/null || { echo "1..0 # SKIP python3 missing"; exit 0; }
[ -x "$VHOSTCTL" ] || { echo "Bail out! $VHOSTCTL not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/test-vhostctl.XXXXXX")
pids=()
# shellcheck disable=SC2317 # called through the trap
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

out=$tmp/out
err=$tmp/err
# shellcheck source=tests/vhostctl-tap.sh
. "$(dirname "$0")/vhostctl-tap.sh"

# empty NAME FILE: nothing was printed there.
empty() {
	if [ -s "$2" ]; then
		not_ok "$1" "unexpected output in $2"
	else
		ok "$1"
	fi
}

# ------------------------------------------------------------------
# global options
# ------------------------------------------------------------------
expect version 0 --version && grep_out version.text '^vhostctl \(libvhost\) [0-9]'
expect version.short 0 -V && grep_out version.short.text '^vhostctl \(libvhost\) '
expect help 0 --help && grep_out help.text '^Usage: vhostctl' &&
	grep_out help.exit-codes '3 permission' &&
	grep_out help.check 'check net\|vsock\|scsi\|vdpa\|vduse\|all'
expect help.short 0 -h
expect help.word 0 help
expect no-args 2 && grep_out no-args.usage '^Usage:' "$err"
expect bad-option 2 -Z status
expect unknown-command 2 frobnicate && grep_out unknown-command.msg 'unknown command "frobnicate"' "$err"
expect json-no-command 2 -j

# --help at every level: exit 0, usage on stdout, nothing on stderr
for args in "status --help" "features --help" "features -h" \
	"check --help" "check -h" "check help" "vdpa --help" "vdpa help" \
	"vdpa mgmtdev --help" "vdpa mgmtdev show --help" "vdpa dev --help" \
	"vdpa dev add --help" "vdpa dev del --help" "vdpa dev show --help" \
	"vdpa dev config show --help" "vdpa dev vstats show --help" \
	"user --help" "user help" "user probe --help" "user check --help" \
	"user probe /nonexistent --help" "user check /nonexistent --help" \
	"features /nonexistent --help" "check net --help"; do
	# shellcheck disable=SC2086
	name="help.${args// /.}"
	name=${name//--/}
	name=${name//\/nonexistent/after-arg}
	# shellcheck disable=SC2086
	if expect "$name" 0 $args; then
		if ! grep -q '^Usage: vhostctl' "$out" || [ -s "$err" ]; then
			not_ok "$name.usage" "no usage on stdout or noise on stderr"
		fi
	fi
done

# ------------------------------------------------------------------
# status (this host has no vhost devices)
# ------------------------------------------------------------------
expect status 0 status && grep_out status.text '^kernel ' &&
	grep_out status.modules '^modules' && grep_out status.devices '^devices:'
expect status.json 0 -j status &&
	json status.json.keys '
import os
assert set(j) == {"kernel", "modules", "devices", "vduse"}, j.keys()
assert j["kernel"] == os.uname().release
# no VDUSE on this host: an empty list
assert j["vduse"] == [], j["vduse"]
names = [m["name"] for m in j["modules"]]
assert "vhost_net" in names and "vhost_vdpa" in names, names
for m in j["modules"]:
    assert set(m) == {"name", "state", "loadable"}, m
    assert isinstance(m["loadable"], bool)
    assert m["state"] in ("absent", "not loaded", "live", "builtin", "coming", "going"), m
assert isinstance(j["devices"], list)
nodes = [p for p in ("/dev/vhost-net", "/dev/vhost-vsock", "/dev/vhost-scsi") if os.path.exists(p)]
assert [d["path"] for d in j["devices"]][:len(nodes)] == nodes
for d in j["devices"]:
    assert "path" in d and "type" in d
'
expect status.pretty 0 -j -p status && json status.pretty.parse 'assert "modules" in j'
grep_out status.pretty.indented '^  "kernel": '
expect status.extra-arg 2 status bogus
expect status.bad-option 2 status --frob

# ------------------------------------------------------------------
# missing root: check and status --load refuse before touching anything
# ------------------------------------------------------------------
as_nobody() {
	if [ "$(id -u)" -ne 0 ]; then
		"$@"
	elif command -v setpriv >/dev/null; then
		setpriv --reuid=65534 --regid=65534 --clear-groups "$@"
	else
		su nobody -s /bin/sh -c "$(printf '%q ' "$@")"
	fi
}
for c in "check all" "check net" "check vdpa" "check vduse" "status --load"; do
	name="noroot.${c// /.}"
	name=${name//--/}
	# shellcheck disable=SC2086
	as_nobody "$VHOSTCTL" $c >"$out" 2>"$err" </dev/null
	rc=$?
	if [ $rc -eq 3 ] && grep -q root "$err"; then
		ok "$name"
	else
		not_ok "$name" "exit $rc, expected 3 with a message naming root"
	fi
done
as_nobody "$VHOSTCTL" -j check all >"$out" 2>"$err" </dev/null
rc=$?
if [ $rc -eq 3 ] && [ ! -s "$out" ]; then ok noroot.json; else not_ok noroot.json "exit $rc"; fi

# as root on a host without any vhost device every check skips, naming
# what is missing, and nothing is created
if [ "$(id -u)" -eq 0 ] && [ ! -e /dev/vhost-net ] && [ ! -e /dev/vhost-vsock ] &&
	[ ! -e /dev/vhost-scsi ] && [ ! -d /sys/bus/vdpa ]; then
	expect check.all.absent 4 check all &&
		grep_out check.all.absent.net '^net +SKIP +/dev/vhost-net absent \(module vhost_net\)' &&
		grep_out check.all.absent.vdpa '^vdpa +SKIP .*vdpa' &&
		grep_out check.all.absent.vduse "^vduse +SKIP .*vduse.*module|^vduse +SKIP .*module vduse" &&
		grep_out check.all.absent.summary '^0 passed, 0 failed, 5 skipped'
	expect check.all.absent.json 4 -j check all &&
		json check.all.absent.json.keys '
assert set(j) == {"checks", "passed", "failed", "skipped"}, j.keys()
assert [c["name"] for c in j["checks"]] == ["net", "vsock", "scsi", "vdpa", "vduse"]
assert all(c["result"] == "skip" and "module" in c["detail"] for c in j["checks"]), j
assert (j["passed"], j["failed"], j["skipped"]) == (0, 0, 5)
'
	expect check.one.absent 4 check scsi
elif [ "$(id -u)" -eq 0 ]; then
	# a host with vhost devices (a stock Debian 12 has /dev/vhost-net and
	# /dev/vhost-vsock as static nodes): what is there is never "absent"
	"$VHOSTCTL" check all >"$out" 2>"$err" </dev/null
	for d in net:/dev/vhost-net vsock:/dev/vhost-vsock scsi:/dev/vhost-scsi; do
		[ -e "${d#*:}" ] || continue
		if grep -qE "^${d%%:*} +SKIP .*absent" "$out"; then
			not_ok "check.present.${d%%:*}" "${d#*:} exists, reported absent"
		else
			ok "check.present.${d%%:*}"
		fi
	done
else
	skip check.absent "not root"
fi

# usage errors of check come before the root test
expect check.no-arg 2 check
expect check.unknown 2 check bogus && grep_out check.unknown.msg 'unknown check "bogus"' "$err"
expect check.bad-option 2 check --frob all

# ------------------------------------------------------------------
# features
# ------------------------------------------------------------------
expect features.no-arg 2 features
expect features.two-args 2 features /dev/null /dev/null
expect features.absent 4 features "$tmp/nonexistent" &&
	grep_out features.absent.msg 'No such file' "$err"
# the exit status says absent even when stderr is closed (the message
# cannot be written)
for c in features "user check"; do
	# shellcheck disable=SC2086 # c is two words for "user check"
	timeout 60 "$VHOSTCTL" $c "$tmp/nonexistent" >/dev/null 2>&- </dev/null
	rc=$?
	if [ $rc -eq 4 ]; then
		ok "${c// /.}.absent.no-stderr"
	else
		not_ok "${c// /.}.absent.no-stderr" "exit $rc, expected 4"
	fi
done
echo data >"$tmp/regular"
expect features.regular-file 2 features "$tmp/regular"
if [ ! -e /dev/vhost-net ]; then
	# a character device that is not a vhost node
	expect features.not-vhost 4 features /dev/null
fi

# ------------------------------------------------------------------
# vdpa (this host has no vdpa netlink family)
# ------------------------------------------------------------------
if [ -d /sys/bus/vdpa ]; then
	skip vdpa.absent "the host has vDPA"
else
	expect vdpa.mgmtdev.absent 4 vdpa mgmtdev show &&
		grep_out vdpa.mgmtdev.absent.msg 'vdpa' "$err"
	expect vdpa.mgmtdev.absent.json 4 -j vdpa mgmtdev show
	expect vdpa.dev.show.absent 4 vdpa dev show
	expect vdpa.dev.absent 4 vdpa dev
	expect vdpa.dev.config.absent 4 vdpa dev config show
	expect vdpa.dev.del.absent 4 vdpa dev del nosuchdev
	expect vdpa.dev.add.absent 4 vdpa dev add name x mgmtdev vdpasim_net
	# device_features is still read in C notation
	expect vdpa.dev.add.hex-features.absent 4 vdpa dev add name x \
		mgmtdev vdpasim_net device_features 0x10
fi
expect vdpa.no-arg 2 vdpa
expect vdpa.unknown 2 vdpa frob
expect vdpa.dev.unknown 2 vdpa dev frob
expect vdpa.mgmtdev.unknown 2 vdpa mgmtdev frob
expect vdpa.dev.add.missing 2 vdpa dev add name x
expect vdpa.dev.add.bad-mac 2 vdpa dev add name x mgmtdev y mac zz
expect vdpa.dev.add.bad-mtu 2 vdpa dev add name x mgmtdev y mtu 99999999
# what the kernel would refuse is a usage error before it is asked
long=$(printf '%0128d' 0)
expect vdpa.dev.add.small-mtu 2 vdpa dev add name x mgmtdev y mtu 67
expect vdpa.dev.add.empty-name 2 vdpa dev add name "" mgmtdev y
expect vdpa.dev.add.long-name 2 vdpa dev add name "$long" mgmtdev y
expect vdpa.dev.add.empty-mgmtdev 2 vdpa dev add name x mgmtdev ""
expect vdpa.dev.add.empty-bus 2 vdpa dev add name x mgmtdev /y
expect vdpa.dev.add.empty-device 2 vdpa dev add name x mgmtdev pci/
expect vdpa.dev.add.long-device 2 vdpa dev add name x mgmtdev "pci/$long"
expect vdpa.dev.del.empty-name 2 vdpa dev del ""
expect vdpa.dev.del.long-name 2 vdpa dev del "$long"
expect vdpa.dev.show.empty-name 2 vdpa dev show ""
expect vdpa.dev.show.long-name 2 vdpa dev show "$long"
expect vdpa.dev.config.long-name 2 vdpa dev config show "$long"
expect vdpa.dev.vstats.long-name 2 vdpa dev vstats show "$long" qidx 0
# strtoull() takes white space and a sign: " -1" is not 2^64 - 1, nor is
# " -18446744073709550116" 1500
expect vdpa.dev.add.negative 2 vdpa dev add name x mgmtdev y \
	device_features " -1"
expect vdpa.dev.add.negative-mtu 2 vdpa dev add name x mgmtdev y \
	mtu " -18446744073709550116"
expect vdpa.dev.add.odd 2 vdpa dev add name
# decimal numbers: a leading zero is refused (strtoull base 0 read 01500
# as 832); device_features keeps C notation
expect vdpa.dev.add.octal-mtu 2 vdpa dev add name x mgmtdev y mtu 01500
expect vdpa.dev.add.octal-max_vqp 2 vdpa dev add name x mgmtdev y max_vqp 010
expect vdpa.dev.vstats.octal-qidx 2 vdpa dev vstats show x qidx 010
expect vdpa.dev.del.no-arg 2 vdpa dev del
expect vdpa.dev.vstats.bad 2 vdpa dev vstats show x
expect vdpa.dev.config.bad 2 vdpa dev config frob

# ------------------------------------------------------------------
# user: argument errors, absent and non-vhost-user sockets
# ------------------------------------------------------------------
expect user.no-arg 2 user
expect user.unknown 2 user frob
expect user.probe.no-arg 2 user probe
expect user.probe.bad-type 2 user probe --type frob "$tmp/x"
expect user.check.no-arg 2 user check
expect user.check.two-args 2 user check a b
expect user.probe.absent 4 user probe "$tmp/nonexistent.sock"
expect user.check.absent 4 user check "$tmp/nonexistent.sock"
expect features.socket.absent 4 features "$tmp/nonexistent.sock"
# a path of the wrong kind is a bad argument, as in features
expect user.probe.regular-file 2 user probe "$tmp/regular" &&
	grep_out user.probe.regular-file.msg 'not a Unix socket' "$err"
expect user.check.regular-file 2 user check "$tmp/regular"

# a socket its back-end left behind: nobody listens, said at once (it took
# the whole connect timeout, and exit 1 for "timed out")
stale=$tmp/stale.sock
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' \
	"$stale"
for c in "user probe" "user check" features; do
	stale_name=${c// /.}.stale
	t0=$(date +%s%N)
	# shellcheck disable=SC2086 # c is two words for "user probe"
	expect "$stale_name" 4 $c "$stale" &&
		grep_out "$stale_name.msg" 'no back-end listens on this socket' "$err" &&
		if [ $((($(date +%s%N) - t0) / 1000000)) -lt 2500 ]; then
			ok "$stale_name.at-once"
		else
			not_ok "$stale_name.at-once" "took $((($(date +%s%N) - t0) / 1000000)) ms"
		fi
done

# a Unix socket that accepts and never answers
mute=$tmp/mute.sock
python3 - "$mute" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(16)
conns = []
while True:
    c, _ = s.accept()
    conns.append(c)
EOF
pids+=("$!")
for _ in $(seq 100); do [ -S "$mute" ] && break; sleep 0.05; done
start=$(date +%s)
expect user.probe.mute 1 user probe "$mute" &&
	grep_out user.probe.mute.msg 'GET_FEATURES.*vhost-user back-end' "$err"
expect user.probe.mute.json 1 -j user probe "$mute" && empty user.probe.mute.json.stdout "$out"
expect features.mute 1 features "$mute"
expect user.check.mute 1 -j user check "$mute" &&
	json user.check.mute.json '
c = {x["name"]: x for x in j["checks"]}
assert c["connect"]["result"] == "pass", c
assert c["GET_FEATURES"]["result"] == "fail", c
assert j["failed"] >= 1 and j["socket"].endswith("mute.sock")
'
elapsed=$(($(date +%s) - start))
if [ $elapsed -lt 60 ]; then ok user.mute.timely; else not_ok user.mute.timely "${elapsed}s"; fi

# A scripted back-end, one MODE per socket: "zero" offers no feature at all
# (GET_FEATURES answers 0: every malformed message is still sent);
# "once" accepts the handshake on the first connection only (REPLY_ACK
# errors after it: a failure, not a skip); "trickle" answers the header
# that claims 1 GiB one byte a second (the 2 s deadline is for the
# whole reply, not each byte).  Everything else is acked or answered.
fake_backend() {
	python3 - "$1" "$2" <<'EOF' &
import array, os, socket, struct, sys, threading, time
path, mode = sys.argv[1], sys.argv[2]
sessions = [0]
lock = threading.Lock()

def recvall(c, n):
    b = b''
    while len(b) < n:
        d, anc, _, _ = c.recvmsg(n - len(b), socket.CMSG_SPACE(8 * 4))
        for lvl, typ, data in anc:
            if lvl == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds = array.array('i')
                fds.frombytes(data[:len(data) - len(data) % 4])
                for f in fds:
                    os.close(f)
        if not d:
            raise EOFError
        b += d
    return b

def send(c, req, payload):
    c.sendall(struct.pack('<III', req, 0x5, len(payload)) + payload)

def serve(c):
    session = 0
    try:
        while True:
            req, flags, size = struct.unpack('<III', recvall(c, 12))
            if size > 4096:
                if mode == 'trickle':
                    m = struct.pack('<IIIQ', req, 0x5, 8, 1)
                    for i in range(len(m)):
                        c.send(m[i:i + 1])
                        time.sleep(1)
                return
            p = recvall(c, size) if size else b''
            if req == 1:       # GET_FEATURES: VERSION_1, PROTOCOL_FEATURES
                send(c, req, struct.pack('<Q', 0 if mode == 'zero' else
                                         1 << 32 | 1 << 30))
            elif req == 15:    # GET_PROTOCOL_FEATURES: REPLY_ACK
                send(c, req, struct.pack('<Q', 1 << 3))
            elif req == 11:    # GET_VRING_BASE
                send(c, req, p[:4] + struct.pack('<I', 0))
            else:
                if req == 16:  # SET_PROTOCOL_FEATURES: a handshake
                    with lock:
                        sessions[0] += 1
                        session = sessions[0]
                if flags & 0x8:
                    bad = req == 999 or (mode == 'once' and session > 1)
                    send(c, req, struct.pack('<Q', 1 if bad else 0))
    except (EOFError, OSError, struct.error):
        pass
    finally:
        c.close()

s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
	pids+=("$!")
	for _ in $(seq 100); do [ -S "$1" ] && break; sleep 0.05; done
}
fake_backend "$tmp/zero.sock" zero
expect user.check.zero-features 0 -j user check "$tmp/zero.sock" &&
	json user.check.zero-features.json '
c = {x["name"]: x for x in j["checks"]}
assert c["GET_FEATURES"]["result"] == "pass", c
# 0 is an answer: the malformed messages are sent all the same
assert c["unknown request 999"]["result"] == "pass", c
assert c["SET_VRING_NUM num 100"]["result"] != "skip", c
'
fake_backend "$tmp/once.sock" once
expect user.check.refused-later 1 -j user check "$tmp/once.sock" &&
	json user.check.refused-later.json '
c = {x["name"]: x for x in j["checks"]}
assert c["negotiate"]["result"] == "pass", c
b = c["SET_FEATURES size 4"]
assert b["result"] == "fail" and "fresh connection" in b["detail"], b
'
fake_backend "$tmp/trickle.sock" trickle
start=$(date +%s)
expect user.check.trickle 1 -j user check "$tmp/trickle.sock" &&
	json user.check.trickle.json '
c = {x["name"]: x for x in j["checks"]}
assert c["size field 1 GiB"]["result"] == "fail", c["size field 1 GiB"]
'
elapsed=$(($(date +%s) - start))
# a deadline per byte would read all 20 bytes of it: 20 s (15 s leaves
# the rest of the run room on a loaded host)
if [ $elapsed -lt 15 ]; then ok user.trickle.timely; else not_ok user.trickle.timely "${elapsed}s"; fi

# full_stdout NAME CMD...: a write error on standard output is a failure
# (exit 1, said on standard error)
full_stdout() {
	local name=$1 rc
	shift
	timeout 60 "$@" >/dev/full 2>"$err" </dev/null
	rc=$?
	if [ $rc -eq 1 ] && grep -q 'cannot write to standard output' "$err"; then
		ok "$name"
	else
		not_ok "$name" "${1##*/} ${*:2} >/dev/full: exit $rc"
	fi
}
for args in "-j status" "--help"; do
	# shellcheck disable=SC2086 # two words
	full_stdout "full-stdout.${args// /}" "$VHOSTCTL" $args
done
# and for the daemons' --help
for d in "$BLK_DAEMON" "$NET_DAEMON"; do
	full_stdout "full-stdout.${d##*/}.help" "$d" --help
	full_stdout "full-stdout.${d##*/}.capabilities" "$d" \
		--print-capabilities
done

# ------------------------------------------------------------------
# user: real back-ends
# ------------------------------------------------------------------
# wait_sock PATH PID: until PATH is a socket (or PID died)
wait_sock() {
	for _ in $(seq 3600); do # 180 s: a peer starting on a loaded host
		[ -S "$1" ] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# refused NAME PATTERN DAEMON ARGS...: the daemon refuses its command line:
# it exits at once, not 0, saying PATTERN (an accepted one runs until
# timeout ends it)
refused() {
	local name=$1 pattern=$2 log="$tmp/refused.log"

	shift 2
	if timeout 10 "$@" >"$log" 2>&1 </dev/null; then
		not_ok "$name" "accepted"
	elif grep -q -- "$pattern" "$log"; then
		ok "$name"
	else
		not_ok "$name" "$(head -2 "$log")"
	fi
}

# user_suite PREFIX TYPE SOCKET: probe, features, check against one back-end
user_suite() {
	local p=$1 type=$2 sock=$3
	expect "$p.probe" 0 user probe "$sock" &&
		grep_out "$p.probe.text" "^$sock \\(vhost-user $type\\)"
	expect "$p.probe.json" 0 -j user probe "$sock" &&
		json "$p.probe.json.keys" "
assert j['socket'] == '$sock' and j['type'] == '$type', j
f = j['features']
assert int(f['bits'], 16) & (1 << 32), f  # VERSION_1
assert 'VERSION_1' in f['names'] and 'PROTOCOL_FEATURES' in f['names'], f
assert bin(int(f['bits'], 16)).count('1') == len(f['names'])
pf = j['protocol_features']
assert bin(int(pf['bits'], 16)).count('1') == len(pf['names'])
assert isinstance(j['queues'], int) and j['queues'] >= 1, j
assert 'config' in j
"
	expect "$p.features.json" 0 -j features "$sock" &&
		json "$p.features.json.keys" "
assert set(j) == {'socket', 'type', 'features', 'protocol_features'}, j.keys()
assert j['type'] == '$type'
"
	expect "$p.features" 0 features "$sock"
}

# user_check PREFIX SOCKET WANT_CLEAN
user_check() {
	local p=$1 sock=$2 clean=$3 rc
	timeout 300 "$VHOSTCTL" -j user check "$sock" >"$out" 2>"$err" </dev/null
	rc=$?
	json "$p.check.json" "
names = [c['name'] for c in j['checks']]
for must in ('connect', 'GET_FEATURES', 'negotiate', 'vring setup'):
    assert must in names, (must, names)
for c in j['checks']:
    assert set(c) == {'name', 'result', 'detail'}, c
    assert c['result'] in ('pass', 'warn', 'fail', 'skip'), c
    if c['name'] in ('connect', 'GET_FEATURES', 'negotiate'):
        assert c['result'] == 'pass', c
count = {r: sum(c['result'] == r for c in j['checks']) for r in ('pass', 'warn', 'fail', 'skip')}
assert (j['passed'], j['warnings'], j['failed'], j['skipped']) == (count['pass'], count['warn'], count['fail'], count['skip']), j
assert ($rc == 1) == (j['failed'] > 0), ('exit', $rc)
assert $rc in (0, 1)
if $clean:
    bad = [c for c in j['checks'] if c['result'] == 'fail']
    assert not bad, bad
    # with a memory table and a ring size, a bad ring address is refused
    c = {x['name']: x for x in j['checks']}
    assert c['SET_VRING_ADDR outside memory']['result'] == 'pass', c
"
}

if command -v qemu-storage-daemon >/dev/null; then
	truncate -s 4M "$tmp/qsd.img"
	start_qsd() {
		rm -f "$tmp/qsd.sock"
		qemu-storage-daemon \
			--blockdev "driver=file,node-name=f0,filename=$tmp/qsd.img" \
			--export "type=vhost-user-blk,id=e0,addr.type=unix,addr.path=$tmp/qsd.sock,node-name=f0,writable=on" \
			>"$tmp/qsd.log" 2>&1 </dev/null &
		qsd=$!
		pids+=("$qsd")
		# it may crash in the conformance run: no job notice for that
		disown "$qsd"
		wait_sock "$tmp/qsd.sock" $qsd
	}
	if start_qsd; then
		user_suite qsd blk "$tmp/qsd.sock"
		expect qsd.probe.capacity 0 -j user probe --type blk "$tmp/qsd.sock" &&
			json qsd.probe.capacity.value '
assert j["config"]["capacity"] == 4 * 1024 * 1024 // 512, j["config"]
assert j["config"]["blk_size"] == 512
'
		# the conformance run may crash qemu-storage-daemon: it is the
		# last thing asked of this instance
		user_check qsd "$tmp/qsd.sock" False
		kill $qsd 2>/dev/null
	else
		not_ok qsd.start "qemu-storage-daemon did not come up"
	fi
else
	skip qsd "qemu-storage-daemon not installed (qemu-system-common)"
fi

if [ -x "$BLK_DAEMON" ]; then
	truncate -s 8M "$tmp/blk.img"
	# a ring larger than a request's iovecs is refused at the start
	refused vublk.queue-size.max 'bad --queue-size' "$BLK_DAEMON" \
		--blk-file="$tmp/blk.img" --queue-size=8192 \
		--socket-path="$tmp/blk8k.sock"
	# a FIFO is no disk: refused at once (a read-only open of it waited
	# for a writer)
	mkfifo "$tmp/blk.fifo"
	refused vublk.fifo 'Invalid argument' "$BLK_DAEMON" --read-only \
		--blk-file="$tmp/blk.fifo" --socket-path="$tmp/blkfifo.sock"
	# decimal numbers: a leading zero is refused (it was octal)
	for o in num-queues=010 queue-size=0100 poll-us=010 threads=010; do
		refused "vublk.leading-zero.${o%%=*}" 'decimal' "$BLK_DAEMON" \
			--blk-file="$tmp/blk.img" "--$o" \
			--socket-path="$tmp/blk0.sock"
	done
	"$BLK_DAEMON" --blk-file="$tmp/blk.img" --socket-path="$tmp/blk.sock" \
		--serial=vhostctl-test >"$tmp/blk.log" 2>&1 </dev/null &
	blk=$!
	pids+=("$blk")
	if wait_sock "$tmp/blk.sock" $blk; then
		user_suite vublk blk "$tmp/blk.sock"
		expect vublk.probe.capacity 0 -j user probe "$tmp/blk.sock" &&
			json vublk.probe.capacity.value '
assert j["config"]["capacity"] == 8 * 1024 * 1024 // 512, j["config"]
'
		# our own back-end must refuse every malformed message and
		# keep serving
		user_check vublk "$tmp/blk.sock" True
		if kill -0 $blk 2>/dev/null; then ok vublk.alive; else not_ok vublk.alive "vhost-user-blk died"; fi
	else
		not_ok vublk.start "vhost-user-blk did not come up: $(head -3 "$tmp/blk.log")"
	fi
else
	not_ok vublk.built "$BLK_DAEMON not built"
fi

if [ -x "$NET_DAEMON" ]; then
	"$NET_DAEMON" --socket-path="$tmp/net.sock" --loopback \
		--mac=52:54:00:12:34:56 >"$tmp/net.log" 2>&1 </dev/null &
	net=$!
	pids+=("$net")
	if wait_sock "$tmp/net.sock" $net; then
		user_suite vunet net "$tmp/net.sock"
		expect vunet.probe.type 0 -j user probe --type net "$tmp/net.sock" &&
			json vunet.probe.mac '
assert j["type"] == "net"
assert j["config"]["mac"] == "52:54:00:12:34:56", j["config"]
'
		user_check vunet "$tmp/net.sock" True
		if kill -0 $net 2>/dev/null; then ok vunet.alive; else not_ok vunet.alive "vhost-user-net died"; fi
	else
		not_ok vunet.start "vhost-user-net did not come up: $(head -3 "$tmp/net.log")"
	fi
	# " -18446744073709551615" is not 1 (strtoul takes the sign)
	refused vunet.queue-pairs.negative 'queue-pairs' "$NET_DAEMON" \
		--socket-path="$tmp/netneg.sock" --loopback \
		--queue-pairs=" -18446744073709551615"
	# decimal numbers: a leading zero is refused (--mtu=01500 was 832)
	for o in mtu=01500 queue-pairs=010 poll-us=010 threads=010; do
		refused "vunet.leading-zero.${o%%=*}" 'decimal' "$NET_DAEMON" \
			--socket-path="$tmp/net0.sock" --loopback "--$o"
	done
	refused vunet.leading-zero.tap-fd 'decimal' "$NET_DAEMON" \
		--socket-path="$tmp/net0.sock" --tap-fd=00
	# the most queue pairs, without --threads: one thread per pair up
	# to the framework's 64
	"$NET_DAEMON" --socket-path="$tmp/net128.sock" --loopback \
		--queue-pairs=128 >"$tmp/net128.log" 2>&1 </dev/null &
	net128=$!
	pids+=("$net128")
	if wait_sock "$tmp/net128.sock" $net128; then
		expect vunet.pairs128 0 -j user probe --type net "$tmp/net128.sock"
	else
		not_ok vunet.pairs128 "--queue-pairs=128 did not come up: $(head -3 "$tmp/net128.log")"
	fi
else
	not_ok vunet.built "$NET_DAEMON not built"
fi

echo "1..$n"
[ $failed -eq 0 ] || { echo "# $failed of $n failed"; exit 1; }
exit 0
