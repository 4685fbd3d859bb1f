#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vm-vduse-net.sh - tools/vhost-user-net --vduse against the real kernel:
# run as root inside the test VM from the build directory:
#   scripts/vm-run --kernel 6.12 -- /path/to/tests/vm-vduse-net.sh
#
# Loads vduse and virtio_vdpa, starts the daemon as the VDUSE device NAME
# bridged to a tap it creates (--tap, --mac, --mtu), adds the vdpa device
# (vdpa dev add ... mgmtdev vduse), binds it to virtio_vdpa, so the host
# kernel's virtio_net drives it: a netdev appears with the daemon's MAC,
# MTU and link status.  Then raw Ethernet frames (AF_PACKET, a local
# experimental EtherType, sizes from 60 bytes to MTU + 14, a sequence
# number and random bytes each) from the virtio netdev to the tap and from
# the tap to the virtio netdev: every frame must arrive once, byte for
# byte.  The vdpa device is deleted, the daemon stopped (exit 0, its frame
# counters at least the frames sent, /dev/vduse/NAME gone).  Then the
# daemon again with --vdpa-add: frames both ways again, and at SIGTERM it
# deletes the vdpa device and exits 0.
#
# Prints `ok N vduse-net.<case>` / `not ok N vduse-net.<case>` lines; on a
# kernel without CONFIG_VDPA_USER (Debian's 6.1) one `ok 1 vduse-net.net # SKIP`
# line.  Exits 1 if a case failed, 4 if not root.
set -u

DAEMON=${VDUSE_DAEMON:-./tools/vhost-user-net}
PY=/usr/bin/python3
[ "$(id -u)" -eq 0 ] || { echo "# vm-vduse-net.sh needs root (the test VM)"; exit 4; }
[ -x "$DAEMON" ] || { echo "Bail out! $DAEMON not built"; exit 1; }
command -v vdpa >/dev/null || { echo "Bail out! no vdpa tool (iproute2)"; exit 1; }
[ -x "$PY" ] || { echo "Bail out! no $PY"; exit 1; }

# shellcheck source=tests/vduse-tap.sh
. "$(dirname "$0")/vduse-tap.sh"
vduse_tap_init vduse-net net

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm-vduse-net.XXXXXX")
name=vunet$$
tap=vdtap$$
MAC=52:54:00:a7:5e:3c
MTU=1400
FRAMES=200
DPID=
autoprobe=
cleanup() {
	vdpa dev del "$name" >/dev/null 2>&1
	[ -z "$autoprobe" ] || echo "$autoprobe" >/sys/bus/vdpa/drivers_autoprobe 2>/dev/null
	if [ -n "$DPID" ]; then
		kill "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

# frames TX -> RX: python3 frames.py TX RX COUNT MAXLEN; prints a summary,
# exits 0 iff every frame arrived once and unchanged
cat >"$tmp/frames.py" <<'EOF'
import os, select, socket, struct, sys, time

tx, rx, count, maxlen = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
ETHERTYPE = 0x88b5  # IEEE 802 local experimental
WINDOW = 16         # frames in flight: below any ring or queue's size


def mac(dev):
    with open("/sys/class/net/%s/address" % dev) as f:
        return bytes.fromhex(f.read().strip().replace(":", ""))


dst, src = mac(rx), mac(tx)
r = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
r.bind((rx, 0))
r.setblocking(False)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((tx, 0))
frames = []
for i in range(count):
    # 60 (the Ethernet minimum) up to maxlen, both ends included
    size = 60 + (i * 97) % (maxlen - 59) if i < count - 2 else \
        (60 if i == count - 2 else maxlen)
    frames.append(dst + src + struct.pack("!HI", ETHERTYPE, i) +
                  os.urandom(size - 18))
got, bad, dup, sent = {}, 0, 0, 0
deadline = time.monotonic() + 60
while len(got) < count and time.monotonic() < deadline:
    while sent < count and sent - len(got) < WINDOW:
        s.send(frames[sent])
        sent += 1
    if not select.select([r], [], [], 1.0)[0]:
        continue
    while True:
        try:
            f, addr = r.recvfrom(65536)
        except BlockingIOError:
            break
        if addr[2] == socket.PACKET_OUTGOING or f[6:12] != src:
            continue
        seq = struct.unpack("!I", f[14:18])[0]
        if seq >= count or f != frames[seq]:
            bad += 1
        elif seq in got:
            dup += 1
        else:
            got[seq] = True
print("%s -> %s: sent %d, received %d, corrupt %d, duplicate %d, "
      "%d bytes" % (tx, rx, sent, len(got), bad, dup,
                    sum(len(frames[i]) for i in got)))
sys.exit(0 if len(got) == count and not bad and not dup else 1)
EOF

# --- modules and daemon ----------------------------------------------
if modprobe vduse && modprobe virtio_vdpa && modprobe virtio_net &&
	[ -c /dev/vduse/control ]; then
	ok modules
else
	notok modules "modprobe vduse virtio_vdpa virtio_net failed"
	finish
fi

# wait for /dev/vduse/$name (or the vdpa device with --vdpa-add)
start_daemon() {
	local log=$1 what=$2
	shift 2
	"$DAEMON" --vduse="$name" --tap="$tap" --mac=$MAC --mtu=$MTU "$@" \
		>"$log" 2>&1 &
	DPID=$!
	for _ in $(seq 300); do
		[ -e "$what" ] && break
		kill -0 "$DPID" 2>/dev/null || break
		sleep 0.1
	done
	[ -e "$what" ]
}
if start_daemon "$tmp/daemon.log" "/dev/vduse/$name" &&
	[ -c "/dev/vduse/$name" ] && [ -e "/sys/class/net/$tap" ]; then
	ok create
else
	notok create "no /dev/vduse/$name or tap $tap"
	sed 's/^/# /' "$tmp/daemon.log"
	finish
fi

# --- the vdpa device, bound to virtio_vdpa ------------------------------
# bind by hand so that virtio_vdpa gets it even if vhost_vdpa is loaded
# (autoprobe off while the device is added); add=1: vdpa dev add first,
# add=0: the daemon added it (autoprobe already off).  Sets ifc to the
# virtio netdev.
bind_dev() {
	ifc=
	if [ "$1" = 1 ]; then
		autoprobe=$(cat /sys/bus/vdpa/drivers_autoprobe)
		echo 0 >/sys/bus/vdpa/drivers_autoprobe
		# EINVAL until the daemon has set every queue up (VQ_SETUP)
		for _ in $(seq 150); do
			vdpa dev add name "$name" mgmtdev vduse \
				2>"$tmp/vdpa.err" && break
			sleep 0.2
		done
	fi
	if [ -e /sys/bus/vdpa/devices/"$name" ] &&
		echo "$name" >/sys/bus/vdpa/drivers/virtio_vdpa/bind; then
		for _ in $(seq 300); do
			for i in /sys/bus/vdpa/devices/"$name"/virtio*/net/*; do
				[ -e "$i" ] && ifc=${i##*/}
			done
			[ -n "$ifc" ] && break
			sleep 0.1
		done
	fi
	echo "$autoprobe" >/sys/bus/vdpa/drivers_autoprobe
	autoprobe=
	[ -n "$ifc" ] || return 1
	ip link set "$ifc" up && ip link set "$tap" up
}

# both directions, FRAMES each; $1: the case name prefix
frames_both() {
	# link up on both sides before the first frame
	for _ in $(seq 300); do
		[ "$(cat /sys/class/net/"$ifc"/carrier 2>/dev/null)" = 1 ] &&
			[ "$(cat /sys/class/net/"$tap"/carrier 2>/dev/null)" = 1 ] &&
			break
		sleep 0.1
	done
	if out=$("$PY" "$tmp/frames.py" "$ifc" "$tap" $FRAMES $((MTU + 14)) 2>&1); then
		ok "$1tx"
		echo "# $out"
	else
		notok "$1tx" "$out"
	fi
	if out=$("$PY" "$tmp/frames.py" "$tap" "$ifc" $FRAMES $((MTU + 14)) 2>&1); then
		ok "$1rx"
		echo "# $out"
	else
		notok "$1rx" "$out"
	fi
}

if bind_dev 1; then
	ok vdpa_add
	echo "# $ifc (virtio_vdpa) <-> $tap (the daemon's tap)"
else
	notok vdpa_add "no virtio_vdpa netdev"
	sed 's/^/# /' "$tmp/vdpa.err" "$tmp/daemon.log"
	dmesg | tail -n 20 | sed 's/^/# /'
	finish
fi
# the config space as the daemon builds it: mac, mtu, status (link up)
got_mac=$(cat /sys/class/net/"$ifc"/address)
got_mtu=$(cat /sys/class/net/"$ifc"/mtu)
if [ "$got_mac" = $MAC ] && [ "$got_mtu" = $MTU ] &&
	[ "$(cat /sys/class/net/"$tap"/mtu)" = $MTU ]; then
	ok config
else
	notok config "mac $got_mac mtu $got_mtu, tap mtu $(cat /sys/class/net/"$tap"/mtu)"
fi
frames_both ""

# --- teardown ------------------------------------------------------------
if vdpa dev del "$name" && [ ! -e /sys/bus/vdpa/devices/"$name" ]; then
	ok vdpa_del
else
	notok vdpa_del
fi
kill -TERM "$DPID"
wait "$DPID"
rc=$?
DPID=
# the daemon's counters: pair 0 tx_frames=N ... rx_frames=N
counters=$(grep 'pair 0 ' "$tmp/daemon.log")
txf=$(sed -n 's/.* tx_frames=\([0-9]*\).*/\1/p' <<<"$counters")
rxf=$(sed -n 's/.* rx_frames=\([0-9]*\).*/\1/p' <<<"$counters")
if [ $rc -eq 0 ] && [ ! -e "/dev/vduse/$name" ] &&
	[ "${txf:-0}" -ge $FRAMES ] && [ "${rxf:-0}" -ge $FRAMES ]; then
	ok daemon_exit
	echo "# ${counters#vhost-user-net: }"
else
	notok daemon_exit "exit status $rc, /dev/vduse/$name $( [ -e "/dev/vduse/$name" ] && echo left || echo gone), tx_frames ${txf:-?} rx_frames ${rxf:-?}"
	sed 's/^/# /' "$tmp/daemon.log"
fi

# --- --vdpa-add: the daemon adds the vdpa device, deletes it at SIGTERM
autoprobe=$(cat /sys/bus/vdpa/drivers_autoprobe)
echo 0 >/sys/bus/vdpa/drivers_autoprobe
if start_daemon "$tmp/daemon2.log" /sys/bus/vdpa/devices/"$name" \
	--vdpa-add && bind_dev 0; then
	ok vdpa_add_option
	frames_both vdpa_add_option_
else
	notok vdpa_add_option "no vdpa device or netdev"
	sed 's/^/# /' "$tmp/daemon2.log"
fi
kill -TERM "$DPID"
wait "$DPID"
rc=$?
DPID=
if [ $rc -eq 0 ] && [ ! -e /sys/bus/vdpa/devices/"$name" ] &&
	[ ! -e "/dev/vduse/$name" ]; then
	ok vdpa_add_option_exit
else
	notok vdpa_add_option_exit "exit status $rc, vdpa device or VDUSE node left"
	sed 's/^/# /' "$tmp/daemon2.log"
fi
finish
