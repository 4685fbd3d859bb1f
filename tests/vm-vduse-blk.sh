#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vm-vduse-blk.sh - tools/vhost-user-blk --vduse against the real kernel:
# run as root inside the test VM from the build directory:
#   scripts/vm-run --kernel 6.12 -- /path/to/tests/vm-vduse-blk.sh
#
# Loads vduse and virtio_vdpa, starts the daemon on a backing file as the
# VDUSE device NAME, adds the vdpa device (vdpa dev add ... mgmtdev vduse;
# bound to virtio_vdpa, so the host kernel itself is the driver), and on
# the /dev/vdX that appears (two queues): an O_DIRECT write of a pattern
# across the whole disk (four writers at once) and another at its last
# block, read back and compared, a flush (fsync and BLKFLSBUF), then the
# daemon's backing file compared with what was written; the vdpa device is
# deleted, added again (the device is reset and set up anew) and read back,
# deleted again, and the daemon stopped (it must exit 0 and
# /dev/vduse/NAME must be gone).  Then the daemon again with --vdpa-add:
# the device it adds reads back the same bytes, and at SIGTERM it deletes
# it and exits 0.
#
# Prints `ok N vduse.<case>` / `not ok N vduse.<case>` lines; on a kernel
# without CONFIG_VDUSE (Debian's 6.1) one `ok 1 vduse.blk # SKIP` line.
# Exits 1 if a case failed, 4 if not root.
set -u

DAEMON=${VDUSE_DAEMON:-./tools/vhost-user-blk}
[ "$(id -u)" -eq 0 ] || { echo "# vm-vduse-blk.sh needs root (the test VM)"; exit 4; }
[ -x "$DAEMON" ] || { echo "Bail out! $DAEMON not built"; exit 1; }
command -v vdpa >/dev/null || { echo "Bail out! no vdpa tool (iproute2)"; exit 1; }

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n vduse.$1"; }
notok() {
	n=$((n + 1))
	echo "not ok $n vduse.$1${2:+ # $2}"
	failed=1
}
finish() {
	echo "1..$n"
	exit $failed
}

kernel=$(uname -r)
echo "# vduse-blk on $kernel"
# only a kernel built without VDUSE may skip (Debian's 6.1: no CONFIG_VDUSE)
if ! modinfo vduse >/dev/null 2>&1; then
	echo "ok 1 vduse.blk # SKIP $kernel has no vduse module (CONFIG_VDUSE)"
	echo "1..1"
	exit 0
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm-vduse.XXXXXX")
name=vublk$$
img=$tmp/disk.img
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

MIB=$((1 << 20))
SIZE=$((16 * MIB))
BS=4096

# --- modules and daemon ----------------------------------------------
if modprobe vduse && modprobe virtio_vdpa && [ -c /dev/vduse/control ]; then
	ok modules
else
	notok modules "modprobe vduse virtio_vdpa failed"
	finish
fi
# the object alone: refusals (ours and the kernel's), create, destroy
VDUSE_API=${VDUSE_API:-./tests/vduse-api}
if [ -x "$VDUSE_API" ]; then
	"$VDUSE_API" "api$$" >"$tmp/api.out" 2>&1
	api_rc=$?
	while read -r res case why; do
		case $res in
		PASS) ok "api.$case" ;;
		FAIL) notok "api.${case%:}" "$why" ;;
		esac
	done <"$tmp/api.out"
	# a sanitizer's report (leak, UB) shows in the exit status only
	if grep -q '^FAIL ' "$tmp/api.out" || [ $api_rc -eq 0 ]; then
		grep -q '^PASS ' "$tmp/api.out" || notok api "no result"
	else
		notok api.exit "exit status $api_rc"
		grep -v '^PASS ' "$tmp/api.out" | sed 's/^/# /'
	fi
else
	notok api "$VDUSE_API not built"
fi
truncate -s $SIZE "$img"
"$DAEMON" --blk-file="$img" --vduse="$name" --serial=vduse-test \
	--num-queues=2 \
	>"$tmp/daemon.log" 2>&1 &
DPID=$!
for _ in $(seq 300); do
	[ -c "/dev/vduse/$name" ] && break
	kill -0 "$DPID" 2>/dev/null || break
	sleep 0.1
done
if [ -c "/dev/vduse/$name" ] && vdpa mgmtdev show vduse >/dev/null 2>&1; then
	ok create
else
	notok create "no /dev/vduse/$name"
	sed 's/^/# /' "$tmp/daemon.log"
	finish
fi

# --- the vdpa device, bound to virtio_vdpa ------------------------------
# vhost_vdpa is loaded too: bind by hand so that virtio_vdpa gets it.
# Sets dev to its /dev/vdX.
add_dev() {
	dev=
	autoprobe=$(cat /sys/bus/vdpa/drivers_autoprobe)
	echo 0 >/sys/bus/vdpa/drivers_autoprobe
	if vdpa dev add name "$name" mgmtdev vduse 2>"$tmp/vdpa.err" &&
		echo "$name" >/sys/bus/vdpa/drivers/virtio_vdpa/bind; then
		for _ in $(seq 300); do
			for b in /sys/bus/vdpa/devices/"$name"/virtio*/block/vd*; do
				[ -e "$b" ] && dev=/dev/${b##*/}
			done
			[ -n "$dev" ] && [ -b "$dev" ] && break
			sleep 0.1
		done
	fi
	echo "$autoprobe" >/sys/bus/vdpa/drivers_autoprobe
	autoprobe=
	[ -n "$dev" ] && [ -b "$dev" ]
}
add_dev
if [ -n "$dev" ] && [ -b "$dev" ]; then
	ok vdpa_add
	echo "# $dev, $(blockdev --getsize64 "$dev") bytes, serial $(cat /sys/block/"${dev#/dev/}"/serial 2>/dev/null), $(find /sys/block/"${dev#/dev/}"/mq -mindepth 1 -maxdepth 1 | wc -l) queue(s)"
else
	notok vdpa_add "no virtio_vdpa block device"
	sed 's/^/# /' "$tmp/vdpa.err" "$tmp/daemon.log"
	dmesg | tail -n 20 | sed 's/^/# /'
	finish
fi
if [ "$(blockdev --getsize64 "$dev")" = $SIZE ] &&
	[ "$(cat /sys/block/"${dev#/dev/}"/serial)" = vduse-test ]; then
	ok config
else
	notok config "size or serial differs"
fi

# --- I/O ----------------------------------------------------------------
head -c $SIZE /dev/urandom >"$tmp/expect"
head -c $BS /dev/urandom >"$tmp/last"
# four writers at once (both queues), then the last block alone
pids=
for i in 0 1 2 3; do
	dd if="$tmp/expect" of="$dev" bs=1M skip=$((i * 4)) seek=$((i * 4)) \
		count=4 oflag=direct status=none &
	pids="$pids $!"
done
wrc=0
for p in $pids; do wait "$p" || wrc=1; done
if [ $wrc -eq 0 ] &&
	dd if="$tmp/last" of="$dev" bs=$BS seek=$((SIZE / BS - 1)) \
		oflag=direct conv=fsync status=none; then
	dd if="$tmp/last" of="$tmp/expect" bs=$BS seek=$((SIZE / BS - 1)) \
		conv=notrunc status=none
	ok write
else
	notok write "O_DIRECT write to $dev failed"
fi
if dd if="$dev" bs=1M iflag=direct status=none | cmp -s - "$tmp/expect"; then
	ok read
else
	notok read "read back differs"
fi
# flush: fsync (VIRTIO_BLK_T_FLUSH) and BLKFLSBUF
if sync "$dev" && blockdev --flushbufs "$dev"; then
	ok flush
else
	notok flush
fi
if cmp -s "$img" "$tmp/expect"; then
	ok backing_file
else
	notok backing_file "the daemon's backing file differs"
fi

# --- teardown, and a second life (reset, DRIVER_OK again) --------------
if vdpa dev del "$name" && [ ! -e /sys/bus/vdpa/devices/"$name" ]; then
	ok vdpa_del
else
	notok vdpa_del
fi
if add_dev && dd if="$dev" bs=1M iflag=direct status=none | cmp -s - "$tmp/expect"; then
	ok readd
else
	notok readd "added again: missing, or the disk reads differently"
fi
if vdpa dev del "$name" && [ ! -e /sys/bus/vdpa/devices/"$name" ]; then
	ok vdpa_del_again
else
	notok vdpa_del_again
fi
kill -TERM "$DPID"
wait "$DPID"
rc=$?
DPID=
if [ $rc -eq 0 ] && [ ! -e "/dev/vduse/$name" ]; then
	ok daemon_exit
else
	notok daemon_exit "exit status $rc, /dev/vduse/$name $( [ -e "/dev/vduse/$name" ] && echo left || echo gone)"
	sed 's/^/# /' "$tmp/daemon.log"
fi
grep -q 'VDUSE device' "$tmp/daemon.log" || sed 's/^/# /' "$tmp/daemon.log"

# --- --vdpa-add: the daemon adds the vdpa device and deletes it at SIGTERM;
# the disk it serves is the one written above
autoprobe=$(cat /sys/bus/vdpa/drivers_autoprobe)
echo 0 >/sys/bus/vdpa/drivers_autoprobe
"$DAEMON" --blk-file="$img" --vduse="$name" --vdpa-add \
	>"$tmp/daemon2.log" 2>&1 &
DPID=$!
for _ in $(seq 300); do
	[ -e /sys/bus/vdpa/devices/"$name" ] && break
	kill -0 "$DPID" 2>/dev/null || break
	sleep 0.1
done
dev=
if [ -e /sys/bus/vdpa/devices/"$name" ] &&
	echo "$name" >/sys/bus/vdpa/drivers/virtio_vdpa/bind; then
	for _ in $(seq 300); do
		for b in /sys/bus/vdpa/devices/"$name"/virtio*/block/vd*; do
			[ -e "$b" ] && dev=/dev/${b##*/}
		done
		[ -n "$dev" ] && [ -b "$dev" ] && break
		sleep 0.1
	done
fi
echo "$autoprobe" >/sys/bus/vdpa/drivers_autoprobe
autoprobe=
if [ -n "$dev" ] && [ -b "$dev" ] &&
	dd if="$dev" bs=1M iflag=direct status=none | cmp -s - "$tmp/expect"; then
	ok vdpa_add_option
else
	notok vdpa_add_option "no device, or it reads differently"
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
