#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vhost-user-net against DPDK testpmd's virtio-user front-end:
#  1. --loopback, testpmd in io mode, start tx_first: a burst goes out, our
#     daemon returns every frame on RX, testpmd forwards it again (ping-pong);
#     testpmd's RX counters must show the looped frames and our counters
#     must agree with them; then the same over packed virtqueues
#     (packed_vq=1, VIRTIO_F_RING_PACKED checked in the protocol trace);
#  2. --sink, testpmd txonly: every 64-byte frame testpmd sent is consumed
#     and counted;
#  3. --loopback with two queue pairs, and the config space;
#  4. one --tap-fd of a single-queue tap with two queue pairs (testpmd
#     flowgen on both): both pairs write into the tap, and frames sent into
#     the tap from the kernel side reach pair 0 only.
# Prints TAP, one line per case (make check runs it through automake's TAP
# driver).  Skips all only without dpdk-testpmd (scripts/install-deps
# installs it), case 4 only when not root; testpmd or the daemon failing to
# start is a failure.  Run from the build directory (make check) or with
# VHOST_USER_NET pointing at the daemon.
set -u

DAEMON=${VHOST_USER_NET:-./tools/vhost-user-net}
TESTPMD=$(command -v dpdk-testpmd) ||
	{ echo "1..0 # SKIP dpdk-testpmd not found (dpdk-dev)"; exit 0; }
[ -x "$DAEMON" ] || { echo "Bail out! $DAEMON not built"; exit 1; }
# Frames are counted, not timed: testpmd runs interactively and the test
# waits until its per-queue counters reach FRAMES (a loaded machine is only
# slower), failing when a counter it waits for does not move for STALL
# seconds (a lost frame or kick stops a ping-pong for good).
FRAMES=${TEST_FRAMES:-20000}
STALL=${TEST_STALL_SECS:-30}
# testpmd's EAL start (512 MiB without hugepages) is slow on a busy machine
START_SECS=${TEST_START_SECS:-240}
echo "1..5"
CASE=0
NAME=
# case N NAME: what fail() and ok() report; NAME's first word names the
# case (tests/expected-skips, scripts/test)
case_() { CASE=$1 NAME=$2; }
ok() { echo "ok $CASE - $NAME"; }

DIR=$(mktemp -d /tmp/test-vu-net-dpdk.XXXXXX) || exit 99
PREFIX=vunet$$
NS=vunetdpdk$$
DPID=
TPID=

cleanup() {
	exec 3>&-
	[ -n "$TPID" ] && kill -KILL "$TPID" 2>/dev/null
	[ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null
	wait 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$DIR" "/var/run/dpdk/$PREFIX"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
# a testpmd that died is reported by the waits, not by a SIGPIPE
trap '' PIPE

fail() {
	echo "not ok $CASE - $NAME: $*"
	{
		echo "---- daemon log"; cat "$DIR/daemon.log"
		echo "---- testpmd log (tail)"; tail -n 30 "$DIR/testpmd.log"
	} 2>&1 | sed 's/^/# /'
	exit 1
}

# wait_listen PREFIX: up to 180 s for the daemon's socket (an ASan
# build starting on a loaded 2-core host)
wait_listen() {
	for _ in $(seq 3600); do
		[ -S "$DIR/vhu.sock" ] && return 0
		sleep 0.05
	done
	fail "${1}daemon did not listen"
}

# pmd_start QUEUES [testpmd options...]: testpmd on the daemon's socket,
# interactive, commands through fd 3; returns at its prompt
pmd_start() {
	local queues=$1
	shift
	rm -f "$DIR/cmd"
	mkfifo "$DIR/cmd" || fail "mkfifo"
	# line-buffered: each answer is in the log when the prompt returns
	stdbuf -oL "$TESTPMD" --no-huge -m 512 --no-pci --file-prefix "$PREFIX" \
		--lcores '0@0,1@1' \
		--vdev "net_virtio_user0,path=$DIR/vhu.sock,queues=$queues${VDEV_EXTRA:-}" \
		-- -i --nb-cores=1 --total-num-mbufs=16384 "$@" \
		<"$DIR/cmd" >"$DIR/testpmd.log" 2>&1 &
	TPID=$!
	exec 3>"$DIR/cmd"
	for _ in $(seq $((START_SECS * 10))); do
		grep -aq "^testpmd> " "$DIR/testpmd.log" && return 0
		kill -0 "$TPID" 2>/dev/null || fail "testpmd exited at start"
		sleep 0.1
	done
	fail "testpmd did not start in $START_SECS s"
}

# xstat NAME: its value in testpmd's last "show port xstats"
xstat() {
	grep -ao "^$1: *[0-9]*" "$DIR/testpmd.log" | tail -n1 |
		grep -o '[0-9]*$'
}

# pmd_wait N XSTAT...: until every XSTAT of port 0 is at least N; FAIL
# when one that is short did not move for STALL s
pmd_wait() {
	local want=$1 name v n short moved t0=$SECONDS last=$SECONDS pause=0
	local -A prev=()
	shift
	for (( ; ; )); do
		n=$(grep -ac "^$1: " "$DIR/testpmd.log")
		echo "show port xstats 0" >&3
		# testpmd answers within STALL s, or it is stuck itself
		for _ in $(seq $((STALL * 10))); do
			[ "$(grep -ac "^${!#}: " "$DIR/testpmd.log")" -gt "$n" ] &&
				break
			kill -0 "$TPID" 2>/dev/null || fail "testpmd exited"
			sleep 0.1
		done
		[ "$(grep -ac "^${!#}: " "$DIR/testpmd.log")" -gt "$n" ] ||
			fail "testpmd did not answer in $STALL s"
		short=0 moved=0
		for name in "$@"; do
			v=$(xstat "$name")
			[ "${v:-0}" -ge "$want" ] && continue
			short=1
			[ "${v:-0}" != "${prev[$name]:-0}" ] && moved=1
			prev[$name]=${v:-0}
		done
		if [ "$short" = 0 ]; then
			# how long it took, and its longest pause: load, not loss
			echo "# $* >= $want in $((SECONDS - t0)) s, longest pause $pause s"
			return 0
		fi
		[ "$moved" = 1 ] && last=$SECONDS
		[ $((SECONDS - last)) -gt "$pause" ] && pause=$((SECONDS - last))
		[ $((SECONDS - last)) -lt "$STALL" ] ||
			fail "stalled: $(for name in "$@"; do
				printf '%s %s ' "$name" "$(xstat "$name")"; done)for $STALL s"
		sleep 0.5
	done
}

# pmd_stop: forwarding stops (testpmd prints the accumulated totals), the
# front-end quits
pmd_stop() {
	echo "stop" >&3
	echo "quit" >&3
	exec 3>&-
	for _ in $(seq $((STALL * 10))); do
		kill -0 "$TPID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$TPID" 2>/dev/null && fail "testpmd did not quit in $STALL s"
	wait "$TPID"
	TPID=
	rm -rf "/var/run/dpdk/$PREFIX"
	cat "$DIR/testpmd.log" >>"$DIR/testpmd-all.log"
}

# run "DAEMON OPTIONS" FWD QUEUES "XSTATS" [testpmd options...]: forward
# (io mode: start tx_first) until every XSTATS counter reaches FRAMES
run() {
	local opts=$1 fwd=$2 queues=$3 stats=$4 start=start
	shift 4
	[ "$fwd" = io ] && start="start tx_first"
	rm -f "$DIR/vhu.sock"
	# shellcheck disable=SC2086
	"$DAEMON" --socket-path="$DIR/vhu.sock" $opts 2>"$DIR/daemon.log" &
	DPID=$!
	wait_listen ""
	[ -n "${PROBE:-}" ] && { $PROBE "$DIR/vhu.sock" >"$DIR/probe.log" 2>&1 ||
		fail "probe: $(cat "$DIR/probe.log")"; }
	: >"$DIR/testpmd-all.log"
	# SESSIONS front-ends one after the other on the same daemon
	for _ in $(seq "${SESSIONS:-1}"); do
		pmd_start "$queues" --forward-mode="$fwd" "$@"
		echo "$start" >&3
		# shellcheck disable=SC2086
		pmd_wait "$FRAMES" $stats
		pmd_stop
	done
	# give the daemon a moment to see the disconnect, then SIGTERM
	sleep 0.2
	kill -TERM "$DPID" 2>/dev/null || fail "daemon died"
	wait "$DPID" || fail "daemon exit status $?"
	DPID=
}

# the accumulated totals testpmd prints when it stops, summed over sessions
pmd_total() {
	sed -n '/Accumulated forward statistics/,/+++++++++++++++++++++/p' \
		"$DIR/testpmd-all.log" | grep -ao "$1: *[0-9]*" |
		awk '{ s += $2 } END { print s + 0 }'
}

ours() {
	grep -o "$1=[0-9]*" "$DIR/daemon.log" | head -n1 | cut -d= -f2
}

# 1. loopback ping-pong
case_ 1 "loopback: ping-pong through testpmd io"
run --loopback io 1 rx_q0_good_packets
rx=$(pmd_total RX-packets); tx=$(pmd_total TX-packets)
d_tx=$(ours tx_frames); d_rx=$(ours rx_frames); d_drop=$(ours drops)
echo "# loopback: testpmd TX $tx RX $rx; daemon tx $d_tx rx $d_rx drops $d_drop"
[ -n "$rx" ] && [ -n "$tx" ] && [ -n "$d_tx" ] || fail "no counters"
[ "$rx" -ge "$FRAMES" ] || fail "testpmd received too few looped frames"
[ "$d_drop" -eq 0 ] || fail "daemon dropped frames"
[ "$d_rx" -eq "$d_tx" ] || fail "daemon tx != rx"
# testpmd received only what we returned, and we returned what it sent
[ "$rx" -le "$d_rx" ] || fail "testpmd got more than we returned"
[ "$d_tx" -le "$tx" ] || fail "we consumed more than testpmd sent"
[ $((tx - rx)) -le 1024 ] || fail "frames lost in the loop"
ok

# 1b. the same loop over packed virtqueues (virtio-user packed_vq=1): the
# daemon offers VIRTIO_F_RING_PACKED, testpmd takes it
case_ 2 "loopback-packed: ping-pong over packed virtqueues"
VDEV_EXTRA=,packed_vq=1 run "--loopback --verbose" io 1 rx_q0_good_packets
rx=$(pmd_total RX-packets); tx=$(pmd_total TX-packets)
d_tx=$(ours tx_frames); d_rx=$(ours rx_frames); d_drop=$(ours drops)
echo "# loopback packed: testpmd TX $tx RX $rx; daemon tx $d_tx rx $d_rx drops $d_drop"
# the protocol trace (--verbose) shows what testpmd acked: bit 34
feat=$(grep -ao "<- SET_FEATURES: 0x[0-9a-f]*" "$DIR/daemon.log" | tail -n1 |
	sed 's/.*0x//')
[ -n "$feat" ] && [ $(((0x$feat >> 34) & 1)) = 1 ] ||
	fail "packed rings not negotiated (features 0x$feat)"
[ -n "$rx" ] && [ -n "$tx" ] && [ -n "$d_tx" ] || fail "no counters"
[ "$rx" -ge "$FRAMES" ] || fail "testpmd received too few looped frames"
[ "$d_drop" -eq 0 ] || fail "daemon dropped frames"
[ "$d_rx" -eq "$d_tx" ] || fail "daemon tx != rx"
[ "$rx" -le "$d_rx" ] || fail "testpmd got more than we returned"
[ "$d_tx" -le "$tx" ] || fail "we consumed more than testpmd sent"
[ $((tx - rx)) -le 1024 ] || fail "frames lost in the loop"
ok

# 2. sink, txonly 64-byte frames; two testpmd sessions one after the other
# on the same listening daemon (reconnection)
case_ 3 "sink: txonly, two sessions one after the other"
SESSIONS=2 run --sink txonly 1 tx_q0_good_packets
tx=$(pmd_total TX-packets)
d_tx=$(ours tx_frames); d_bytes=$(ours tx_bytes)
echo "# sink, 2 sessions: testpmd TX $tx; daemon tx $d_tx bytes $d_bytes"
[ "$(grep -ac 'Accumulated forward statistics' "$DIR/testpmd-all.log")" = 2 ] ||
	fail "the second session did not run"
[ -n "$tx" ] && [ -n "$d_tx" ] || fail "no counters"
[ "$d_tx" -ge "$FRAMES" ] || fail "too few frames consumed"
[ "$d_tx" -le "$tx" ] && [ $((tx - d_tx)) -le 1024 ] ||
	fail "daemon consumed $d_tx of $tx frames"
# each session sent (so we consumed, the ring holds 256) FRAMES
for n in $(sed -n '/Accumulated forward statistics/,/++++++++++++++++++++/p' \
	"$DIR/testpmd-all.log" | grep -ao "TX-packets: *[0-9]*" | grep -o '[0-9]*$'); do
	[ "$n" -ge "$FRAMES" ] || fail "a session moved only $n frames"
done
[ "$d_bytes" -eq $((d_tx * 64)) ] || fail "frames are not 64 bytes"
ok
# 3. two queue pairs (MQ, one worker thread each), config space
case_ 4 "mq: two queue pairs, config space"
VHOSTCTL=$(dirname "$DAEMON")/vhostctl
[ -x "$VHOSTCTL" ] && PROBE="$VHOSTCTL user probe"
run "--loopback --queue-pairs=2 --mac=52:54:00:ab:cd:ef --mtu=1400" io 2 \
	"rx_q0_good_packets rx_q1_good_packets" --rxq=2 --txq=2
PROBE=
if [ -x "$VHOSTCTL" ]; then
	grep -q "mac *52:54:00:ab:cd:ef" "$DIR/probe.log" &&
		grep -q "max_vq_pairs *2" "$DIR/probe.log" &&
		grep -q "mtu *1400" "$DIR/probe.log" ||
		fail "config space: $(cat "$DIR/probe.log")"
	echo "# config space (GET_CONFIG): mac, max_vq_pairs 2, mtu 1400"
fi
for p in 0 1; do
	line=$(grep "pair $p " "$DIR/daemon.log")
	d_tx=$(echo "$line" | grep -o 'tx_frames=[0-9]*' | cut -d= -f2)
	d_rx=$(echo "$line" | grep -o 'rx_frames=[0-9]*' | cut -d= -f2)
	echo "# MQ pair $p: daemon tx $d_tx rx $d_rx"
	[ "${d_tx:-0}" -ge "$FRAMES" ] && [ "$d_tx" -eq "$d_rx" ] ||
		fail "pair $p did not loop frames"
done
rx=$(pmd_total RX-packets)
echo "# MQ: testpmd RX $rx"
[ "${rx:-0}" -ge $((2 * FRAMES)) ] || fail "testpmd received too few frames"
ok

# 4. one --tap-fd (a single-queue tap) with two queue pairs: both pairs
# transmit into it, only pair 0 receives from it.  The tap lives in a
# private network namespace; its parent opens it, as a management stack
# would, and hands the fd down.
case_ 5 "single-tap-fd: one single-queue tap fd, two queue pairs"
if [ "$(id -u)" != 0 ]; then
	echo "ok $CASE - $NAME # SKIP needs root (a tap in a network namespace)"
	exit 0
fi
PY=$(command -v python3) || fail "no python3 (scripts/install-deps installs it)"
[ -c /dev/net/tun ] || fail "no /dev/net/tun"
ip netns add "$NS" || fail "cannot create a network namespace"
rm -f "$DIR/vhu.sock"
ip netns exec "$NS" "$PY" - "$DAEMON" "$DIR/vhu.sock" vhutap0 \
	2>"$DIR/daemon.log" <<'PYEOF' &
import fcntl, os, struct, sys
TUNSETIFF = 0x400454ca
FLAGS = 0x0002 | 0x1000 | 0x4000  # IFF_TAP | IFF_NO_PI | IFF_VNET_HDR
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH22x', sys.argv[3].encode(), FLAGS))
os.set_inheritable(fd, True)
os.execv(sys.argv[1], [sys.argv[1], '--socket-path=' + sys.argv[2],
                       '--tap-fd=%d' % fd, '--queue-pairs=2'])
PYEOF
DPID=$!
wait_listen "single tap fd: "
ip netns exec "$NS" ip link set vhutap0 up || fail "tap up"
# flowgen: both queues transmit, and received frames are counted
pmd_start 2 --forward-mode=flowgen --rxq=2 --txq=2
echo "start" >&3
pmd_wait "$FRAMES" tx_q0_good_packets tx_q1_good_packets
# frames from the kernel side of the tap, now that testpmd forwards: they
# can only reach the guest through pair 0
ip netns exec "$NS" "$PY" - vhutap0 <<'PYEOF' || fail "inject into the tap"
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((sys.argv[1], 0))
for i in range(100):
    s.send(b'\xff' * 6 + b'\x02\x00\x00\x00\x00\x01' + b'\x88\xb5' +
           i.to_bytes(2, 'big') + bytes(44))
PYEOF
pmd_wait 100 rx_q0_good_packets
[ "$(xstat rx_q1_good_packets)" = 0 ] ||
	fail "testpmd received on pair 1 from a tap it has no queue of"
pmd_stop
sleep 0.2
tap_rx=$(ip netns exec "$NS" cat /sys/class/net/vhutap0/statistics/rx_packets)
kill -TERM "$DPID" 2>/dev/null || fail "single tap fd: daemon died"
wait "$DPID" || fail "single tap fd: daemon exit status $?"
DPID=
ip netns del "$NS"
sum_tx=0
for p in 0 1; do
	line=$(grep "pair $p " "$DIR/daemon.log")
	d_tx=$(echo "$line" | grep -o 'tx_frames=[0-9]*' | cut -d= -f2)
	d_rx=$(echo "$line" | grep -o 'rx_frames=[0-9]*' | cut -d= -f2)
	echo "# single tap fd, pair $p: daemon tx $d_tx rx $d_rx"
	[ "${d_tx:-0}" -ge "$FRAMES" ] ||
		fail "pair $p did not transmit into the tap"
	sum_tx=$((sum_tx + d_tx))
	if [ "$p" = 0 ]; then
		[ "${d_rx:-0}" -ge 100 ] || fail "pair 0 received $d_rx of 100"
	else
		[ "${d_rx:-1}" -eq 0 ] || fail "pair 1 received from a tap it has no queue of"
	fi
done
# what the daemon wrote, the tap's kernel side received
echo "# single tap fd: tap rx_packets $tap_rx, daemon tx $sum_tx"
[ "$tap_rx" -eq "$sum_tx" ] || fail "tap received $tap_rx of $sum_tx frames"
ok
exit 0
