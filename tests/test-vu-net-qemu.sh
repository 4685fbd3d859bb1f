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
# SKIP (77) without root, QEMU or scripts/vm-run.
set -u

HOST_IP=10.213.7.1
GUEST_IP=10.213.7.2
PORT=5001
# a file both sides have (the guest's / is the host's, over 9p)
PAYLOAD=/usr/bin/busybox
PY=/usr/bin/python3

# ---- guest side: configure the NIC, ping, send the payload --------------
if [ "${1:-}" = --guest ] || [ "${1:-}" = --guest-ping ]; then
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

[ "$(id -u)" = 0 ] || { echo "SKIP: needs root (tap, netns)"; exit 77; }
command -v qemu-system-x86_64 >/dev/null || { echo "SKIP: no QEMU"; exit 77; }
[ -x "$VMRUN" ] || { echo "SKIP: no scripts/vm-run"; exit 77; }
[ -x "$PY" ] || { echo "SKIP: no $PY"; exit 77; }
[ -c /dev/net/tun ] || { echo "SKIP: no /dev/net/tun"; exit 77; }
[ -x "$DAEMON" ] || { echo "FAIL: $DAEMON not built"; exit 99; }
DAEMON=$(cd "$(dirname "$DAEMON")" && pwd)/$(basename "$DAEMON")

DIR=$(mktemp -d /tmp/test-vu-net-qemu.XXXXXX) || exit 99
NS=vhunet$$
DPID=
LPID=

cleanup() {
	[ -n "$LPID" ] && kill -KILL "$LPID" 2>/dev/null
	[ -n "$DPID" ] && kill -KILL "$DPID" 2>/dev/null
	wait 2>/dev/null
	ip netns del "$NS" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
	echo "FAIL: $*"
	echo "---- daemon log"; cat "$DIR/daemon.log"
	exit 1
}

ip netns add "$NS" || { echo "SKIP: cannot create a network namespace"; exit 77; }
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" "$DAEMON" --socket-path="$DIR/vhu.sock" --tap=vhut0 \
	2>"$DIR/daemon.log" &
DPID=$!
for i in $(seq 100); do
	[ -S "$DIR/vhu.sock" ] && break
	sleep 0.05
done
[ -S "$DIR/vhu.sock" ] || fail "daemon did not listen"
ip netns exec "$NS" ip addr add "$HOST_IP/24" dev vhut0 || fail "tap address"
ip netns exec "$NS" "$PY" - "$HOST_IP" "$PORT" "$DIR/recv" <<'EOF' &
import socket, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(1)
l.settimeout(120)
c, _ = l.accept()
with open(sys.argv[3], 'wb') as f:
    while True:
        b = c.recv(65536)
        if not b:
            break
        f.write(b)
c.send(b'k')
c.close()
EOF
LPID=$!

# vectors=0: QEMU 7.2 under TCG segfaults in msix_set_vector_notifiers
# (vhost_net_start) with an MSI-X vhost-user NIC; INTx works
"$VMRUN" --timeout 120 --memfd --mem 512M \
	--qemu-arg=-chardev --qemu-arg="socket,id=c1,path=$DIR/vhu.sock" \
	--qemu-arg=-netdev --qemu-arg=vhost-user,chardev=c1,id=n0 \
	--qemu-arg=-device --qemu-arg=virtio-net-pci,netdev=n0,mac=52:54:00:12:34:57,vectors=0 \
	-- "$SELF" --guest
rc=$?
case $rc in
0) ;;
125) echo "SKIP: the VM could not run (vm-run 125)"; exit 77 ;;
*) fail "guest exit status $rc" ;;
esac
wait "$LPID" || fail "listener"
LPID=
kill -TERM "$DPID"
wait "$DPID" || fail "daemon exit status"
DPID=
cat "$DIR/daemon.log"
cmp "$PAYLOAD" "$DIR/recv" || fail "received bytes differ"
tx=$(grep -o 'tx_frames=[0-9]*' "$DIR/daemon.log" | cut -d= -f2)
rx=$(grep -o 'rx_frames=[0-9]*' "$DIR/daemon.log" | cut -d= -f2)
[ "${tx:-0}" -gt 100 ] && [ "${rx:-0}" -gt 10 ] || fail "daemon counters"
echo "$(stat -c %s "$PAYLOAD") bytes through vhost-user-net"

# ---- again with the roles of the socket swapped: QEMU listens
# (server=on), the daemon connects to it (--client)
rm -f "$DIR/vhu.sock"
ip netns exec "$NS" "$DAEMON" --socket-path="$DIR/vhu.sock" --client \
	--tap=vhut1 2>"$DIR/daemon.log" &
DPID=$!
for i in $(seq 100); do
	ip netns exec "$NS" ip link show vhut1 >/dev/null 2>&1 && break
	sleep 0.05
done
ip netns exec "$NS" ip addr add "$HOST_IP/24" dev vhut1 || fail "tap address"
"$VMRUN" --timeout 120 --memfd --mem 512M \
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
cat "$DIR/daemon.log"
tx=$(grep -o 'tx_frames=[0-9]*' "$DIR/daemon.log" | cut -d= -f2)
[ "${tx:-0}" -ge 5 ] || fail "client mode: daemon counters"
echo "PASS"
exit 0
