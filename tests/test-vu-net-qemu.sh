#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vhost-user-net with a real guest: scripts/vm-run boots the test kernel
# under QEMU with a virtio-net-pci NIC whose vhost-user back-end is our
# daemon, bridged to a tap inside a network namespace of our own
# (10.213.7.1/24 on the tap, 10.213.7.2/24 in the guest; nothing is routed
# anywhere else).  The guest pings the tap address and sends a file over TCP
# to a listener in the namespace; the received bytes must match.  Then
# again with QEMU listening (server=on) and the daemon in --client mode.
# Then multiqueue: 2 queue pairs on a 2-queue tap, each of the guest's 2
# vCPUs sending the file over a TCP connection of its own; both pairs must
# carry frames both ways (the daemon's per-pair counters), both copies must
# match, and the tap's second queue must be attached only while the guest
# has the pair enabled.  Once with the tap created by the daemon (--tap),
# once with its queue fds handed down by the parent (--tap-fd=FD,FD).
# Last, case 1 again on packed virtqueues (virtio-net-pci packed=on: the
# daemon offers VIRTIO_F_RING_PACKED, QEMU and the guest driver take it).
# Then behind a virtual IOMMU (q35, intel-iommu with device-iotlb, the NIC
# with iommu_platform=on,ats=on behind a PCIe root port, the guest with
# intel_iommu=on): the guest checks that VIRTIO_F_ACCESS_PLATFORM is
# negotiated, that the NIC is in an IOMMU group and that it enabled ATS
# (QEMU 7.2 passes a vhost back-end only device-IOTLB invalidations), pings
# and sends the file; then the daemon is killed with SIGKILL and started
# again, QEMU reconnects (reconnect=1), and the guest, having seen its link
# go down and up, pings and sends the file again through the new daemon,
# whose IOTLB starts empty.  One guest boot for all of it.
# Prints TAP, one line per case (make check runs it through automake's TAP
# driver).  Skips all only without root or without the QEMU binary
# (scripts/install-deps installs it); no network namespace, no tun, the VM
# not booting (after one retry) are failures.
set -u

HOST_IP=10.213.7.1
GUEST_IP=10.213.7.2
PORT=5001
# a file both sides have (the guest's / is the host's, over 9p)
PAYLOAD=/usr/bin/busybox
PY=/usr/bin/python3

# ---- guest side: configure the NIC, ping, send the payload --------------
if [ "${1:-}" = --guest ] || [ "${1:-}" = --guest-ping ] ||
	[ "${1:-}" = --guest-mq ] || [ "${1:-}" = --guest-iommu ]; then
	modprobe virtio_net 2>/dev/null
	IF=
	for i in $(seq 100); do
		for n in /sys/class/net/*; do
			drv=$(readlink "$n/device/driver" 2>/dev/null) || continue
			[ "${drv##*/}" = virtio_net ] && IF=${n##*/}
		done
		[ -n "$IF" ] && break
		sleep 0.1
	done
	[ -n "$IF" ] || { echo "guest: no virtio-net interface"; exit 1; }
	ip link set lo up
	ip link set "$IF" up
	ip addr add "$GUEST_IP/24" dev "$IF"
	busybox ping -c 3 -w 20 "$HOST_IP" || { echo "guest: ping failed"; exit 1; }
	busybox ping -c 2 -s 1400 -w 20 "$HOST_IP" ||
		{ echo "guest: 1400-byte ping failed"; exit 1; }
	[ "$1" = --guest-ping ] && { echo "guest: done"; exit 0; }
	if [ "$1" = --guest-iommu ]; then
		dev=/sys/class/net/$IF/device
		# bit 33 of the negotiated features: VIRTIO_F_ACCESS_PLATFORM
		echo "guest: PLATFORM $(cut -c34 "$dev/features")"
		[ -e "$dev/../iommu_group" ] && echo "guest: IOMMU-GROUP yes"
		# the ATS extended capability (PCIe, ID 0x000f), Enable: bit 15
		# of its Control register
		$PY - "$dev/../config" <<'EOF'
import struct, sys
cfg = open(sys.argv[1], 'rb').read()
off, ats = 0x100, 'none'
while off and len(cfg) >= off + 8:
    hdr = struct.unpack_from('<I', cfg, off)[0]
    if hdr & 0xffff == 0xf:
        ctl = struct.unpack_from('<H', cfg, off + 6)[0]
        ats = 'on' if ctl & 0x8000 else 'off'
        break
    off = hdr >> 20
print('guest: ATS ' + ats)
EOF
		# twice: before the host kills the daemon and after; the new
		# daemon's tap and listener may come after the link
		send() {
			$PY - "$HOST_IP" "$PORT" "$PAYLOAD" <<'EOF'
import socket, sys, time
end = time.time() + 60
while True:
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])),
                                     timeout=60)
        break
    except OSError:
        if time.time() > end:
            raise
        time.sleep(0.5)
with open(sys.argv[3], 'rb') as f:
    s.sendall(f.read())
s.shutdown(socket.SHUT_WR)
s.recv(1)
s.close()
EOF
		}
		send || { echo "guest: first payload failed"; exit 1; }
		echo "guest: KILLME"
		# QEMU takes the link down when the daemon dies and up again
		# once it has reconnected to the new one
		carrier() {
			for _ in $(seq 1200); do
				[ "$(cat "/sys/class/net/$IF/carrier" 2>/dev/null)" = "$1" ] &&
					return 0
				sleep 0.1
			done
			return 1
		}
		carrier 0 || { echo "guest: the link never went down"; exit 1; }
		echo "guest: link down"
		carrier 1 || { echo "guest: the link never came back"; exit 1; }
		echo "guest: link up"
		busybox ping -c 3 -w 60 "$HOST_IP" ||
			{ echo "guest: ping after the reconnection failed"; exit 1; }
		send || { echo "guest: second payload failed"; exit 1; }
		ip -s link show "$IF"
		echo "guest: done"
		exit 0
	fi
	if [ "$1" = --guest-mq ]; then
		# virtio-net uses min(max pairs, online CPUs) pairs
		echo "guest: $(nproc) CPUs, queues:" $(ls "/sys/class/net/$IF/queues")
		[ -d "/sys/class/net/$IF/queues/rx-1" ] ||
			{ echo "guest: one queue pair only"; exit 1; }
		# one connection per CPU: XPS maps CPU n to transmit queue n
		$PY - "$HOST_IP" "$PORT" "$PAYLOAD" <<'EOF' || exit 1
import os, socket, sys
data = open(sys.argv[3], 'rb').read()
pids = []
for cpu in (0, 1):
    pid = os.fork()
    if pid == 0:
        try:
            os.sched_setaffinity(0, {cpu})
            s = socket.create_connection((sys.argv[1], int(sys.argv[2])),
                                         timeout=60)
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            s.recv(1)
            s.close()
            os._exit(0)
        except Exception as e:
            print('guest: cpu %d: %s' % (cpu, e))
            os._exit(1)
    pids.append(pid)
bad = 0
for pid in pids:
    bad |= os.waitpid(pid, 0)[1]
sys.exit(1 if bad else 0)
EOF
		ip -s link show "$IF"
		echo "guest: done"
		exit 0
	fi
	$PY - "$HOST_IP" "$PORT" "$PAYLOAD" <<'EOF' || exit 1
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
with open(sys.argv[3], 'rb') as f:
    s.sendall(f.read())
s.shutdown(socket.SHUT_WR)
s.recv(1)
s.close()
EOF
	ip -s link show "$IF"
	echo "guest: done"
	exit 0
fi

# ---- host side -----------------------------------------------------------
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
VMRUN=$SRCDIR/scripts/vm-run
DAEMON=${VHOST_USER_NET:-./tools/vhost-user-net}
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

[ "$(id -u)" = 0 ] || { echo "1..0 # SKIP needs root (tap, netns)"; exit 0; }
command -v qemu-system-x86_64 >/dev/null ||
	{ echo "1..0 # SKIP no qemu-system-x86_64 (qemu-system-x86)"; exit 0; }
[ -x "$VMRUN" ] || { echo "Bail out! no $VMRUN"; exit 1; }
[ -x "$PY" ] || { echo "Bail out! no $PY (scripts/install-deps installs it)"; exit 1; }
[ -c /dev/net/tun ] || { echo "Bail out! no /dev/net/tun"; exit 1; }
[ -x "$DAEMON" ] || { echo "Bail out! $DAEMON not built"; exit 1; }
DAEMON=$(cd "$(dirname "$DAEMON")" && pwd)/$(basename "$DAEMON")
echo "1..6"
CASE=0
NAME=
case_() { CASE=$1 NAME=$2; }
ok() { echo "ok $CASE - $NAME"; }

DIR=$(mktemp -d /tmp/test-vu-net-qemu.XXXXXX) || exit 99
NS=vhunet$$
DPID=
LPID=
QPID=
VPID=

cleanup() {
	[ -n "$VPID" ] && kill -KILL "$VPID" 2>/dev/null
	[ -n "$QPID" ] && kill -KILL "$QPID" 2>/dev/null
	[ -n "$LPID" ] && kill -KILL "$LPID" 2>/dev/null
	[ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null
	wait 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "not ok $CASE - $NAME: $*"
	{ echo "---- daemon log"; cat "$DIR/daemon.log"; } 2>&1 | sed 's/^/# /'
	exit 1
}

# vm ARGS...: scripts/vm-run, its output as TAP comments; 126 (the guest
# died before running the command: a TCG boot flake) boots once more; a
# guest that died while the command ran (125) is the test's failure
vm() {
	local rc attempt
	for attempt in 1 2; do
		"$VMRUN" "$@" 2>&1 | sed -u 's/^/# /'
		rc=${PIPESTATUS[0]}
		[ "$rc" = 126 ] || break
		echo "# vm-run: the guest died before the command ran (attempt $attempt)"
	done
	return "$rc"
}

# wait_listen WHAT: the daemon's socket appears within 30 s, or FAIL
wait_listen() {
	for _ in $(seq 600); do
		[ -S "$DIR/vhu.sock" ] && return 0
		sleep 0.05
	done
	fail "$1daemon did not listen"
}

# listen OUT [N]: accept one connection on the tap address, write what it
# sends to OUT and answer one byte; with N, N connections at once, each
# written to OUT.n (n from 0).  In the background: LPID.
listen() {
	ip netns exec "$NS" "$PY" - "$HOST_IP" "$PORT" "$1" "${2:-}" <<'EOF' &
import socket, sys, threading
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
n = int(sys.argv[4]) if sys.argv[4] else 1
l.listen(n)
l.settimeout(240)
def serve(c, out):
    with open(out, 'wb') as f:
        while True:
            b = c.recv(65536)
            if not b:
                break
            f.write(b)
    c.send(b'k')
    c.close()
ts = []
for i in range(n):
    c, _ = l.accept()
    out = sys.argv[3] if not sys.argv[4] else '%s.%d' % (sys.argv[3], i)
    ts.append(threading.Thread(target=serve, args=(c, out)))
    ts[-1].start()
for t in ts:
    t.join()
EOF
	LPID=$!
}

case_ 1 "server: a guest on the daemon, ping and a TCP payload"
ip netns add "$NS" || fail "cannot create a network namespace"
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" "$DAEMON" --socket-path="$DIR/vhu.sock" --tap=vhut0 \
	2>"$DIR/daemon.log" &
DPID=$!
wait_listen ""
ip netns exec "$NS" ip addr add "$HOST_IP/24" dev vhut0 || fail "tap address"
listen "$DIR/recv"

# vectors=0: QEMU 7.2 under TCG segfaults in msix_set_vector_notifiers
# (vhost_net_start) with an MSI-X vhost-user NIC; INTx works
vm --timeout 600 --memfd --mem 512M \
	--qemu-arg=-chardev --qemu-arg="socket,id=c1,path=$DIR/vhu.sock" \
	--qemu-arg=-netdev --qemu-arg=vhost-user,chardev=c1,id=n0 \
	--qemu-arg=-device --qemu-arg=virtio-net-pci,netdev=n0,mac=52:54:00:12:34:57,vectors=0 \
	-- "$SELF" --guest
rc=$?
[ $rc = 0 ] || fail "guest exit status $rc"
wait "$LPID" || fail "listener"
LPID=
kill -TERM "$DPID"
wait "$DPID" || fail "daemon exit status"
DPID=
sed 's/^/# /' "$DIR/daemon.log"
cmp "$PAYLOAD" "$DIR/recv" || fail "received bytes differ"
tx=$(grep -o 'tx_frames=[0-9]*' "$DIR/daemon.log" | cut -d= -f2)
rx=$(grep -o 'rx_frames=[0-9]*' "$DIR/daemon.log" | cut -d= -f2)
[ "${tx:-0}" -gt 100 ] && [ "${rx:-0}" -gt 10 ] || fail "daemon counters"
echo "# $(stat -c %s "$PAYLOAD") bytes through vhost-user-net"
ok

# ---- again with the roles of the socket swapped: QEMU listens
# (server=on), the daemon connects to it (--client)
case_ 2 "client: QEMU listens, the daemon connects"
rm -f "$DIR/vhu.sock"
ip netns exec "$NS" "$DAEMON" --socket-path="$DIR/vhu.sock" --client \
	--tap=vhut1 2>"$DIR/daemon.log" &
DPID=$!
for i in $(seq 100); do
	ip netns exec "$NS" ip link show vhut1 >/dev/null 2>&1 && break
	sleep 0.05
done
ip netns exec "$NS" ip addr add "$HOST_IP/24" dev vhut1 || fail "tap address"
vm --timeout 600 --memfd --mem 512M \
	--qemu-arg=-chardev \
	--qemu-arg="socket,id=c1,path=$DIR/vhu.sock,server=on,wait=on" \
	--qemu-arg=-netdev --qemu-arg=vhost-user,chardev=c1,id=n0 \
	--qemu-arg=-device --qemu-arg=virtio-net-pci,netdev=n0,mac=52:54:00:12:34:58,vectors=0 \
	-- "$SELF" --guest-ping
rc=$?
[ $rc = 0 ] || fail "client mode: guest exit status $rc"
kill -TERM "$DPID"
wait "$DPID" || fail "daemon exit status (client mode)"
DPID=
sed 's/^/# /' "$DIR/daemon.log"
tx=$(grep -o 'tx_frames=[0-9]*' "$DIR/daemon.log" | cut -d= -f2)
[ "${tx:-0}" -ge 5 ] || fail "client mode: daemon counters"
ok

# ---- multiqueue: --queue-pairs 2 on a 2-queue tap, QEMU queues=2 / mq=on;
# the tap either created by the daemon (--tap) or, as QEMU's fds= does,
# by its parent, which hands the queue fds down (--tap-fd=FD,FD)
mq_case() {
	local how=$1 tap=$2 mac=$3 p line tx rx flags
	rm -f "$DIR/vhu.sock" "$DIR"/recv.*
	if [ "$how" = tap ]; then
		ip netns exec "$NS" "$DAEMON" --socket-path="$DIR/vhu.sock" \
			--tap="$tap" --queue-pairs=2 2>"$DIR/daemon.log" &
	else
		ip netns exec "$NS" "$PY" - "$DAEMON" "$DIR/vhu.sock" "$tap" \
			2>"$DIR/daemon.log" <<'EOF' &
import fcntl, os, struct, sys
TUNSETIFF = 0x400454ca
# IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE
FLAGS = 0x0002 | 0x1000 | 0x4000 | 0x0100
fds = []
for q in range(2):
    fd = os.open('/dev/net/tun', os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack('16sH22x', sys.argv[3].encode(),
                                           FLAGS))
    os.set_inheritable(fd, True)
    fds.append(str(fd))
os.execv(sys.argv[1], [sys.argv[1], '--socket-path=' + sys.argv[2],
                       '--tap-fd=' + ','.join(fds), '--queue-pairs=2'])
EOF
	fi
	DPID=$!
	wait_listen "mq $how: "
	# --tap-fd: the daemon leaves the link state to the tap's owner
	ip netns exec "$NS" ip link set "$tap" up || fail "tap up"
	ip netns exec "$NS" ip addr add "$HOST_IP/24" dev "$tap" ||
		fail "tap address"
	flags=$(ip netns exec "$NS" cat "/sys/class/net/$tap/tun_flags")
	[ $((flags & 0x100)) != 0 ] ||
		fail "mq $how: tap not IFF_MULTI_QUEUE ($flags)"
	# tun shows a queue's sysfs directory only while it is attached
	tapq() {
		ip netns exec "$NS" sh -c "ls -d /sys/class/net/$tap/queues/rx-*" |
			wc -l
	}
	[ "$(tapq)" = 1 ] ||
		fail "mq $how: queue 1 attached before the guest enabled it"
	(while :; do tapq; sleep 0.5; done) >"$DIR/tapq" 2>/dev/null &
	QPID=$!
	listen "$DIR/recv" 2
	vm --timeout 600 --memfd --mem 512M --smp 2 \
		--qemu-arg=-chardev --qemu-arg="socket,id=c1,path=$DIR/vhu.sock" \
		--qemu-arg=-netdev --qemu-arg=vhost-user,chardev=c1,id=n0,queues=2 \
		--qemu-arg=-device \
		--qemu-arg="virtio-net-pci,netdev=n0,mac=$mac,mq=on,vectors=0" \
		-- "$SELF" --guest-mq
	rc=$?
	kill "$QPID" 2>/dev/null
	wait "$QPID" 2>/dev/null
	QPID=
	[ $rc = 0 ] || fail "mq $how: guest exit status $rc"
	wait "$LPID" || fail "mq $how: listener"
	LPID=
	# the front-end is gone: the daemon detaches queue 1 again
	for i in $(seq 1200); do # 60 s
		[ "$(tapq)" = 1 ] && break
		sleep 0.05
	done
	[ "$(tapq)" = 1 ] ||
		fail "mq $how: queue 1 still attached after the guest left"
	grep -qx 2 "$DIR/tapq" || fail "mq $how: queue 1 never attached"
	echo "# tap queues attached while the guest ran: $(sort -u "$DIR/tapq" | xargs)"
	kill -TERM "$DPID"
	wait "$DPID" || fail "mq $how: daemon exit status"
	DPID=
	sed 's/^/# /' "$DIR/daemon.log"
	for i in 0 1; do
		cmp "$PAYLOAD" "$DIR/recv.$i" ||
			fail "mq $how: received bytes differ (connection $i)"
	done
	for p in 0 1; do
		line=$(grep "pair $p " "$DIR/daemon.log")
		tx=$(echo "$line" | grep -o 'tx_frames=[0-9]*' | cut -d= -f2)
		rx=$(echo "$line" | grep -o 'rx_frames=[0-9]*' | cut -d= -f2)
		# ~1400 data frames a connection one way, ACKs the other; the
		# guest sends much of it from the CPU taking the (INTx)
		# interrupt, so pair 1 gets only part of its connection
		[ "${tx:-0}" -ge 20 ] && [ "${rx:-0}" -ge 5 ] ||
			fail "mq $how: pair $p carried tx=${tx:-0} rx=${rx:-0} frames"
	done
	echo "# mq $how: $((2 * $(stat -c %s "$PAYLOAD"))) bytes through 2 queue pairs"
	ok
}
case_ 3 "mq-tap: two queue pairs, tap created by the daemon (--tap)"
mq_case tap vhut2 52:54:00:12:34:59
case_ 4 "mq-fds: two queue pairs, tap queue fds handed down (--tap-fd)"
mq_case fds vhut3 52:54:00:12:34:5a

# ---- packed virtqueues: QEMU packed=on, ping and the TCP payload
case_ 5 "packed: a guest with packed=on, ping and a TCP payload"
rm -f "$DIR/vhu.sock" "$DIR/recv"
ip netns exec "$NS" "$DAEMON" --socket-path="$DIR/vhu.sock" --tap=vhut4 \
	--verbose 2>"$DIR/daemon.log" &
DPID=$!
wait_listen "packed: "
ip netns exec "$NS" ip addr add "$HOST_IP/24" dev vhut4 || fail "tap address"
listen "$DIR/recv"
vm --timeout 600 --memfd --mem 512M \
	--qemu-arg=-chardev --qemu-arg="socket,id=c1,path=$DIR/vhu.sock" \
	--qemu-arg=-netdev --qemu-arg=vhost-user,chardev=c1,id=n0 \
	--qemu-arg=-device \
	--qemu-arg=virtio-net-pci,netdev=n0,mac=52:54:00:12:34:5b,vectors=0,packed=on \
	-- "$SELF" --guest
rc=$?
[ $rc = 0 ] || fail "packed: guest exit status $rc"
wait "$LPID" || fail "packed: listener"
LPID=
kill -TERM "$DPID"
wait "$DPID" || fail "packed: daemon exit status"
DPID=
grep -v "vhost-user: " "$DIR/daemon.log" | sed 's/^/# /'
# the protocol trace shows what QEMU acked: bit 34, VIRTIO_F_RING_PACKED
feat=$(grep -ao "<- SET_FEATURES: 0x[0-9a-f]*" "$DIR/daemon.log" | tail -n1 |
	sed 's/.*0x//')
[ -n "$feat" ] && [ $(((0x$feat >> 34) & 1)) = 1 ] ||
	fail "packed: packed rings not negotiated (features 0x$feat)"
cmp "$PAYLOAD" "$DIR/recv" || fail "packed: received bytes differ"
tx=$(grep -o 'tx_frames=[0-9]*' "$DIR/daemon.log" | cut -d= -f2)
rx=$(grep -o 'rx_frames=[0-9]*' "$DIR/daemon.log" | cut -d= -f2)
[ "${tx:-0}" -gt 100 ] && [ "${rx:-0}" -gt 10 ] ||
	fail "packed: daemon counters"
echo "# $(stat -c %s "$PAYLOAD") bytes through vhost-user-net on packed rings (features 0x$feat)"
ok
# ---- behind a vIOMMU, then kill -9 and reconnect
# iommu_daemon LOG: the daemon on a tap vhut5 (which goes with it when it
# is killed), the tap's MAC fixed so that the guest's ARP entry stays right
iommu_daemon() {
	rm -f "$DIR/vhu.sock"
	ip netns exec "$NS" "$DAEMON" --socket-path="$DIR/vhu.sock" \
		--tap=vhut5 --verbose 2>"$1" &
	DPID=$!
	wait_listen "iommu: "
	ip netns exec "$NS" ip link set vhut5 address 02:00:0a:d5:07:01 ||
		fail "tap MAC"
	ip netns exec "$NS" ip addr add "$HOST_IP/24" dev vhut5 ||
		fail "tap address"
}
# the features QEMU acked, from a daemon's protocol trace
acked() {
	grep -ao "<- SET_FEATURES: 0x[0-9a-f]*" "$1" | tail -n1 | sed 's/.*0x//'
}
# IOTLB messages of one type (update, invalidate) the daemon got
iotlb_count() {
	grep -ac "IOTLB $2 iova" "$1"
}

case_ 6 "iommu: behind a vIOMMU (ACCESS_PLATFORM, ATS), ping, a TCP payload, kill -9 and reconnect"
rm -f "$DIR/recv" "$DIR/recv2"
iommu_daemon "$DIR/daemon.log"
listen "$DIR/recv"
# one boot: q35 with intel-iommu, the NIC behind a root port so that it
# has ATS (see tests/vm-vu-blk-guest.sh); the chardev reconnects
vm --timeout 600 --memfd --mem 512M --append intel_iommu=on \
	--qemu-arg=-machine --qemu-arg=q35,kernel-irqchip=split \
	--qemu-arg=-device --qemu-arg=intel-iommu,intremap=on,device-iotlb=on \
	--qemu-arg=-device --qemu-arg=pcie-root-port,id=rp0,chassis=1 \
	--qemu-arg=-chardev \
	--qemu-arg="socket,id=c1,path=$DIR/vhu.sock,reconnect=1" \
	--qemu-arg=-netdev --qemu-arg=vhost-user,chardev=c1,id=n0 \
	--qemu-arg=-device \
	--qemu-arg=virtio-net-pci,netdev=n0,mac=52:54:00:12:34:5c,vectors=0,bus=rp0,disable-legacy=on,iommu_platform=on,ats=on \
	-- "$SELF" --guest-iommu >"$DIR/guest.out" 2>&1 &
VPID=$!
# the guest sent the file once: check it, kill the daemon, start another
while ! grep -q "^# guest: KILLME" "$DIR/guest.out"; do
	kill -0 "$VPID" 2>/dev/null || {
		cat "$DIR/guest.out"
		fail "the guest ended before the kill"
	}
	sleep 0.2
done
wait "$LPID" || fail "listener"
LPID=
cmp "$PAYLOAD" "$DIR/recv" || fail "received bytes differ (before the kill)"
kill -KILL "$DPID"
wait "$DPID" 2>/dev/null
DPID=
mv "$DIR/daemon.log" "$DIR/daemon1.log"
# the new daemon once the guest saw its link down: QEMU's reconnection
# would bring it up again within a second, which a slow TCG guest can miss
for _ in $(seq 1500); do
	grep -q "^# guest: link down" "$DIR/guest.out" && break
	kill -0 "$VPID" 2>/dev/null || break
	sleep 0.2
done
iommu_daemon "$DIR/daemon.log"
listen "$DIR/recv2"
wait "$VPID"
rc=$?
VPID=
cat "$DIR/guest.out"
[ $rc = 0 ] || fail "guest exit status $rc"
wait "$LPID" || fail "listener (after the reconnection)"
LPID=
kill -TERM "$DPID"
wait "$DPID" || fail "daemon exit status (after the reconnection)"
DPID=
grep -q "^# guest: PLATFORM 1$" "$DIR/guest.out" ||
	fail "VIRTIO_F_ACCESS_PLATFORM not negotiated behind the vIOMMU (guest)"
grep -q "^# guest: IOMMU-GROUP yes$" "$DIR/guest.out" ||
	fail "the NIC is not behind the guest's IOMMU"
grep -q "^# guest: ATS on$" "$DIR/guest.out" ||
	fail "the guest did not enable ATS: no invalidation would reach the daemon"
grep -q "^# guest: link down$" "$DIR/guest.out" ||
	fail "the guest did not see the link go down"
for log in "$DIR/daemon1.log" "$DIR/daemon.log"; do
	feat=$(acked "$log")
	[ -n "$feat" ] && [ $(((0x$feat >> 33) & 1)) = 1 ] ||
		fail "ACCESS_PLATFORM not acked by QEMU (${log##*/}: 0x$feat)"
	[ "$(iotlb_count "$log" update)" -gt 0 ] ||
		fail "no IOTLB update reached the daemon (${log##*/})"
	echo "# ${log##*/}: features 0x$feat, misses $(grep -ac 'iotlb: miss at' "$log"), IOTLB updates $(iotlb_count "$log" update), invalidations $(iotlb_count "$log" invalidate)"
done
grep -a "vhost-user-net: pair" "$DIR/daemon.log" | sed 's/^/# /'
cmp "$PAYLOAD" "$DIR/recv2" ||
	fail "received bytes differ (after the reconnection)"
# the second copy went through the restarted daemon
tx=$(grep -o 'tx_frames=[0-9]*' "$DIR/daemon.log" | cut -d= -f2)
rx=$(grep -o 'rx_frames=[0-9]*' "$DIR/daemon.log" | cut -d= -f2)
[ "${tx:-0}" -gt 100 ] && [ "${rx:-0}" -gt 10 ] ||
	fail "iommu: the restarted daemon's counters tx=${tx:-0} rx=${rx:-0}"
# its IOTLB started empty: frames from the tap waited for the translation
# of their receive buffers (held, not dropped; the bytes compared above)
waits=$(grep -o 'rx_waits=[0-9]*' "$DIR/daemon.log" | cut -d= -f2)
[ "${waits:-0}" -gt 0 ] ||
	fail "iommu: no received frame waited for a translation"
echo "# $((2 * $(stat -c %s "$PAYLOAD"))) bytes through vhost-user-net behind the vIOMMU, the daemon killed and restarted between the copies"
ok
exit 0
