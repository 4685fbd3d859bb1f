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
# the /dev/vdX that appears (two queues, packed rings: the virtio device's
# feature bit 34 must read 1): an O_DIRECT write of a pattern across the
# whole disk (four writers at once) and another at its last block, read
# back and compared, a flush (fsync and BLKFLSBUF), then the daemon's
# backing file compared with what was written; discard (blkdiscard) and
# write zeroes (blkdiscard -z) of ranges, which must read back as zeroes
# through the device and in the backing file, the rest unchanged; the vdpa
# device is deleted, added again (the device is reset and set up anew) and
# read back, deleted again, and the daemon stopped (it must exit 0 and
# /dev/vduse/NAME must be gone).  Then the daemon again with --vdpa-add
# --no-packed: the device it adds has split rings (bit 34 reads 0), reads
# back the same bytes, passes the same I/O checks, and at SIGTERM the
# daemon deletes it and exits 0.  qemu-storage-daemon's vduse-blk export
# passes the same checks; last, the daemon bound to vhost_vdpa serves
# tests/vdpa-blk-io (libvhost's vhost-vdpa front-end) with a packed ring,
# then with a split one, then a packed one in 5 GiB of guest memory (one
# IOTLB entry larger than 4 GiB), then a split one whose memory comes as
# one IOTLB entry per page: the daemon must map the front-end's memfd
# once for them all, and no more after the device's reset.
#
# Prints `ok N vduse.<case>` / `not ok N vduse.<case>` lines; on a kernel
# without CONFIG_VDPA_USER (Debian's 6.1) one `ok 1 vduse.blk # SKIP` line.
# Exits 1 if a case failed, 4 if not root.
set -u

DAEMON=${VDUSE_DAEMON:-./tools/vhost-user-blk}
[ "$(id -u)" -eq 0 ] || { echo "# vm-vduse-blk.sh needs root (the test VM)"; exit 4; }
[ -x "$DAEMON" ] || { echo "Bail out! $DAEMON not built"; exit 1; }
command -v vdpa >/dev/null || { echo "Bail out! no vdpa tool (iproute2)"; exit 1; }

# shellcheck source=tests/vduse-tap.sh
. "$(dirname "$0")/vduse-tap.sh"
vduse_tap_init vduse blk

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
if modprobe vduse && modprobe virtio_vdpa && modprobe virtio_blk && modprobe virtio_net && [ -c /dev/vduse/control ]; then
	ok modules
else
	notok modules "modprobe vduse virtio_vdpa virtio_blk virtio_net failed"
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
# vhost_vdpa is loaded too: add_dev binds by hand so that virtio_vdpa
# gets it (vduse-tap.sh)
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
# the daemon offers packed rings over VDUSE and virtio_vdpa takes them
if [ "$(virtio_feature 34)" = 1 ]; then
	ok packed_negotiated
else
	notok packed_negotiated "VIRTIO_F_RING_PACKED (bit 34) not negotiated: $(virtio_feature 34)"
fi

# --- I/O ----------------------------------------------------------------
# The checks on the block device $dev served from $img, for our daemon and
# for qemu-storage-daemon alike; case names get the prefix $1.  Leaves the
# bytes written in $tmp/expect.
io_check() {
	local p=$1 pids='' wrc=0 i
	head -c $SIZE /dev/urandom >"$tmp/expect"
	head -c $BS /dev/urandom >"$tmp/last"
	# four writers at once (all queues), then the last block alone
	for i in 0 1 2 3; do
		dd if="$tmp/expect" of="$dev" bs=1M skip=$((i * 4)) \
			seek=$((i * 4)) count=4 oflag=direct status=none &
		pids="$pids $!"
	done
	for i in $pids; do wait "$i" || wrc=1; done
	if [ $wrc -eq 0 ] &&
		dd if="$tmp/last" of="$dev" bs=$BS seek=$((SIZE / BS - 1)) \
			oflag=direct conv=fsync status=none; then
		dd if="$tmp/last" of="$tmp/expect" bs=$BS \
			seek=$((SIZE / BS - 1)) conv=notrunc status=none
		ok "${p}write"
	else
		notok "${p}write" "O_DIRECT write to $dev failed"
	fi
	if dd if="$dev" bs=1M iflag=direct status=none |
		cmp -s - "$tmp/expect"; then
		ok "${p}read"
	else
		notok "${p}read" "read back differs"
	fi
	# flush: fsync (VIRTIO_BLK_T_FLUSH) and BLKFLSBUF
	if sync "$dev" && blockdev --flushbufs "$dev"; then
		ok "${p}flush"
	else
		notok "${p}flush"
	fi
	if cmp -s "$img" "$tmp/expect"; then
		ok "${p}backing_file"
	else
		notok "${p}backing_file" "the backing file differs"
	fi
}
# Discard and write zeroes on $dev (served from $img), after io_check:
# ranges of random bytes must read back as zeroes through the device and
# in the backing file, the rest unchanged (the daemon punches holes, or
# zeroes ranges, of the file: vhost-user-blk(8)).  Updates $tmp/expect;
# case names get the prefix $1.  A device that does not offer one of them
# fails, but for a peer ($2 = peer): then a comment says it is not tested.
dwz_check() {
	local p=$1 peer=${2:-} q dmax zmax
	q=/sys/block/${dev#/dev/}/queue
	dmax=$(cat $q/discard_max_bytes 2>/dev/null || echo 0)
	zmax=$(cat $q/write_zeroes_max_bytes 2>/dev/null || echo 0)
	if [ "$dmax" -gt 0 ]; then
		[ -n "$peer" ] || ok "${p}discard_offered"
		# 3 MiB at 1 MiB: aligned to any discard granularity up to it
		if blkdiscard -o $((MIB)) -l $((3 * MIB)) "$dev"; then
			dd if=/dev/zero of="$tmp/expect" bs=1M seek=1 count=3 \
				conv=notrunc status=none
			if dd if="$dev" bs=1M iflag=direct status=none |
				cmp -s - "$tmp/expect"; then
				ok "${p}discard"
			else
				notok "${p}discard" "not zeroes, or the rest changed"
			fi
			if cmp -s "$img" "$tmp/expect"; then
				ok "${p}discard_backing_file"
			else
				notok "${p}discard_backing_file" "the backing file differs"
			fi
		else
			notok "${p}discard" "blkdiscard failed"
		fi
	elif [ -n "$peer" ]; then
		# the peer install-deps installs offers it: a claim, not a note
		notok "${p}discard_offered" "$peer offers no discard (discard_max_bytes 0)"
	else
		notok "${p}discard_offered" "discard_max_bytes 0: no VIRTIO_BLK_F_DISCARD"
	fi
	if [ "$zmax" -gt 0 ]; then
		[ -n "$peer" ] || ok "${p}write_zeroes_offered"
		# 1 MiB + 4 KiB at 9 MiB - 4 KiB (REQ_OP_WRITE_ZEROES)
		if blkdiscard -z -o $((9 * MIB - BS)) -l $((MIB + BS)) "$dev"; then
			dd if=/dev/zero of="$tmp/expect" bs=$BS \
				seek=$(((9 * MIB - BS) / BS)) \
				count=$(((MIB + BS) / BS)) conv=notrunc status=none
			if dd if="$dev" bs=1M iflag=direct status=none |
				cmp -s - "$tmp/expect"; then
				ok "${p}write_zeroes"
			else
				notok "${p}write_zeroes" "not zeroes, or the rest changed"
			fi
			if cmp -s "$img" "$tmp/expect"; then
				ok "${p}write_zeroes_backing_file"
			else
				notok "${p}write_zeroes_backing_file" "the backing file differs"
			fi
		else
			notok "${p}write_zeroes" "blkdiscard -z failed"
		fi
	elif [ -n "$peer" ]; then
		notok "${p}write_zeroes_offered" "$peer offers no write zeroes (write_zeroes_max_bytes 0)"
	else
		notok "${p}write_zeroes_offered" "write_zeroes_max_bytes 0: no VIRTIO_BLK_F_WRITE_ZEROES"
	fi
}
io_check ""
dwz_check ""

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

# --- kill -9: the daemon dies under a bound, idle device -------------------
# 6.12: closing /dev/vduse/NAME leaves the device (no --vduse-state here:
# tests/vm-vduse-reconnect.sh has the takeover, with I/O in flight);
# vdpa dev del resets it, and the reset (SET_STATUS 0) nobody answers
# blocks for VDUSE's message timeout (msg_timeout, 30 s) and breaks the
# device; then VDUSE_DESTROY_DEV removes it and the name is free.  The hung
# task detector runs with a timeout above VDUSE's, so that nothing may stay
# blocked past it.  (With I/O in flight the requests stay in the ring and
# del_gendisk() waits for them: not done here, see vhost-user-blk(8).)
hung=/proc/sys/kernel/hung_task_timeout_secs
hung_was=
if [ -w $hung ]; then
	hung_was=$(cat $hung)
	echo 60 >$hung
fi
dmesg_from=$(dmesg | wc -l)
# VDUSE_DESTROY_DEV = _IOW(0x81, 0x03, char[256]) on the control node
vduse_destroy() {
	/usr/bin/python3 -c 'import fcntl, os, sys
fd = os.open("/dev/vduse/control", os.O_RDWR)
fcntl.ioctl(fd, 0x41008103, sys.argv[1].encode().ljust(256, b"\0"))' "$1"
}
# start the daemon on $img and bind its device (EINVAL from vdpa dev add
# until the daemon has set its queues up)
start_bound() {
	"$DAEMON" --blk-file="$img" --vduse="$name" >"$1" 2>&1 &
	DPID=$!
	for _ in $(seq 150); do
		[ -c "/dev/vduse/$name" ] && break
		kill -0 "$DPID" 2>/dev/null || return 1
		sleep 0.2
	done
	add_dev
}
if start_bound "$tmp/daemon-k.log" &&
	dd if="$dev" bs=1M iflag=direct status=none | cmp -s - "$tmp/expect"; then
	ok kill_setup
else
	notok kill_setup "no device, or it reads differently"
	sed 's/^/# /' "$tmp/daemon-k.log"
fi
# (the shell's "Killed" notice is not a result)
{ kill -KILL "$DPID"; wait "$DPID"; } 2>/dev/null
rc=$?
DPID=
t0=$(date +%s)
if [ $rc -eq 137 ] && [ -c "/dev/vduse/$name" ] &&
	timeout -s KILL 150 vdpa dev del "$name" &&
	[ ! -e /sys/bus/vdpa/devices/"$name" ]; then
	ok kill_vdpa_del
	echo "# killed: vdpa dev del took $(($(date +%s) - t0)) s (msg_timeout $(cat /sys/class/vduse/"$name"/msg_timeout 2>/dev/null) s)"
else
	notok kill_vdpa_del "exit status $rc, vdpa dev del failed or device left"
fi
if vduse_destroy "$name" && [ ! -e "/dev/vduse/$name" ]; then
	ok kill_destroy
else
	notok kill_destroy "VDUSE_DESTROY_DEV $name failed or node left"
fi
# the same NAME again, serving I/O: the disk reads back, a write lands
head -c $BS /dev/urandom >"$tmp/kblock"
if start_bound "$tmp/daemon-k2.log" &&
	dd if="$dev" bs=1M iflag=direct status=none | cmp -s - "$tmp/expect" &&
	dd if="$tmp/kblock" of="$dev" bs=$BS seek=7 oflag=direct conv=fsync \
		status=none; then
	dd if="$tmp/kblock" of="$tmp/expect" bs=$BS seek=7 conv=notrunc \
		status=none
	if dd if="$dev" bs=1M iflag=direct status=none | cmp -s - "$tmp/expect" &&
		cmp -s "$img" "$tmp/expect"; then
		ok kill_recreate
	else
		notok kill_recreate "read back or backing file differs"
	fi
else
	notok kill_recreate "no device, it reads differently or a write failed"
	sed 's/^/# /' "$tmp/daemon-k2.log"
fi
vdpa dev del "$name" 2>/dev/null
kill -TERM "$DPID"
wait "$DPID"
rc=$?
DPID=
if [ $rc -eq 0 ] && [ ! -e "/dev/vduse/$name" ]; then
	ok kill_recreate_exit
else
	notok kill_recreate_exit "exit status $rc"
	sed 's/^/# /' "$tmp/daemon-k2.log"
fi
if dmesg | tail -n +$((dmesg_from + 1)) |
	grep -E 'hung task|blocked for more than' >"$tmp/hung"; then
	notok kill_no_hung_task "$(head -n 1 "$tmp/hung")"
else
	ok kill_no_hung_task
fi
dmesg | tail -n +$((dmesg_from + 1)) | grep -i vduse | sed 's/^/# /'
[ -z "$hung_was" ] || echo "$hung_was" >$hung

# --- --vdpa-add: the daemon adds the vdpa device and deletes it at SIGTERM;
# the disk it serves is the one written above.  --no-packed: split rings
# (the runs above had packed ones), the same I/O checks.
autoprobe=$(cat /sys/bus/vdpa/drivers_autoprobe)
echo 0 >/sys/bus/vdpa/drivers_autoprobe
"$DAEMON" --blk-file="$img" --vduse="$name" --vdpa-add --no-packed \
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
	if [ "$(virtio_feature 34)" = 0 ]; then
		ok split.negotiated
	else
		notok split.negotiated "--no-packed: bit 34 reads '$(virtio_feature 34)'"
	fi
	io_check split.
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

# --- the peer: qemu-storage-daemon's vduse-blk export on the same file,
# bound to virtio_vdpa: it must read what our daemon wrote, then the same
# checks as ours (io_check).  scripts/install-deps installs it
# (qemu-system-common): failing to start is a failure, not a skip.
# discard=unmap: QEMU ignores discards by default (the block layer's
# discard=ignore), which would leave the discarded range as it was.
QSD=${VDUSE_QSD:-qemu-storage-daemon}
name=qsdblk$$
"$QSD" --blockdev driver=file,node-name=f0,filename="$img",discard=unmap \
	--export type=vduse-blk,id=e0,node-name=f0,name="$name",writable=on,num-queues=2,serial=qsd-test \
	>"$tmp/qsd.log" 2>&1 &
DPID=$!
for _ in $(seq 300); do
	[ -c "/dev/vduse/$name" ] && break
	kill -0 "$DPID" 2>/dev/null || break
	sleep 0.1
done
if [ -c "/dev/vduse/$name" ] && add_dev; then
	ok qsd.vdpa_add
	if [ "$(blockdev --getsize64 "$dev")" = $SIZE ] &&
		[ "$(cat /sys/block/"${dev#/dev/}"/serial)" = qsd-test ]; then
		ok qsd.config
	else
		notok qsd.config "size or serial differs"
	fi
	if dd if="$dev" bs=1M iflag=direct status=none |
		cmp -s - "$tmp/expect"; then
		ok qsd.read_ours
	else
		notok qsd.read_ours "does not read what our daemon wrote"
	fi
	io_check qsd.
	dwz_check qsd. qemu-storage-daemon
	if vdpa dev del "$name" && [ ! -e /sys/bus/vdpa/devices/"$name" ]; then
		ok qsd.vdpa_del
	else
		notok qsd.vdpa_del
	fi
else
	notok qsd.vdpa_add "$QSD: no /dev/vduse/$name or no virtio_vdpa disk"
	sed 's/^/# /' "$tmp/qsd.log" "$tmp/vdpa.err"
fi
kill -TERM "$DPID"
wait "$DPID"
rc=$?
DPID=
if [ $rc -eq 0 ] && [ ! -e "/dev/vduse/$name" ]; then
	ok qsd.exit
else
	notok qsd.exit "exit status $rc"
	sed 's/^/# /' "$tmp/qsd.log"
fi

# --- our daemon bound to vhost_vdpa: libvhost's own vhost-vdpa front-end
# (tests/vdpa-blk-io) reads a sector, writes one, flushes and reads it
# back through /dev/vhost-vdpa-N; the bytes must be in the backing file.
# Twice: with a packed ring (--packed: it must be negotiated), then with
# a split one (--split), which must read what the first wrote.
VDPA_BLK_IO=${VDPA_BLK_IO:-./tests/vdpa-blk-io}
name=vuvdpa$$
"$DAEMON" --blk-file="$img" --vduse="$name" >"$tmp/daemon3.log" 2>&1 &
DPID=$!
for _ in $(seq 300); do
	[ -c "/dev/vduse/$name" ] && break
	kill -0 "$DPID" 2>/dev/null || break
	sleep 0.1
done
node=
autoprobe=$(cat /sys/bus/vdpa/drivers_autoprobe)
echo 0 >/sys/bus/vdpa/drivers_autoprobe
if [ -c "/dev/vduse/$name" ] &&
	vdpa_add "$name" &&
	echo "$name" >/sys/bus/vdpa/drivers/vhost_vdpa/bind; then
	for _ in $(seq 300); do
		for c in /sys/bus/vdpa/devices/"$name"/vhost-vdpa-*; do
			[ -e "$c" ] && node=/dev/${c##*/}
		done
		[ -n "$node" ] && [ -c "$node" ] && break
		sleep 0.1
	done
fi
echo "$autoprobe" >/sys/bus/vdpa/drivers_autoprobe
autoprobe=
sector=$((SIZE / 512 - 24))
if [ -z "$node" ] || [ ! -c "$node" ]; then
	notok vhost_vdpa.bind "no /dev/vhost-vdpa-N for $name"
	sed 's/^/# /' "$tmp/vdpa.err" "$tmp/daemon3.log"
elif [ ! -x "$VDPA_BLK_IO" ]; then
	notok vhost_vdpa.io "$VDPA_BLK_IO not built"
else
	ok vhost_vdpa.bind
	# LAYOUT CASE BEFORE [OPTION...]: run the front-end with a ring of
	# LAYOUT on $sector (writing $tmp/vdpa.in.CASE); the sector must have
	# read BEFORE's bytes first, and hold the new ones in the backing file
	vdpa_io() {
		local l=$1 c=$2 before=$3
		shift 3
		head -c 8192 /dev/urandom >"$tmp/vdpa.in.$c"
		if "$VDPA_BLK_IO" --"$l" "$@" "$node" $sector \
			"$tmp/vdpa.in.$c" "$tmp/vdpa.before.$c" \
			"$tmp/vdpa.after.$c" >"$tmp/vdpa.out.$c" 2>&1 &&
			grep -qx "capacity $((SIZE / 512)) .*" "$tmp/vdpa.out.$c" &&
			grep -qx "layout $l" "$tmp/vdpa.out.$c"; then
			ok "vhost_vdpa.$c"
			echo "# $l: $(grep -E '^(layout|vring base)' "$tmp/vdpa.out.$c" | tr '\n' ' ')"
		else
			notok "vhost_vdpa.$c" "front-end failed ($l ring)"
			sed 's/^/# /' "$tmp/vdpa.out.$c" "$tmp/daemon3.log"
		fi
		if cmp -s "$before" "$tmp/vdpa.before.$c"; then
			ok "vhost_vdpa.${c}_read"
		else
			notok "vhost_vdpa.${c}_read" "differs from the disk's bytes"
		fi
		if dd if="$img" bs=512 skip=$sector count=16 status=none |
			cmp -s - "$tmp/vdpa.in.$c"; then
			ok "vhost_vdpa.${c}_backing_file"
		else
			notok "vhost_vdpa.${c}_backing_file" "the backing file differs"
		fi
	}
	# what qemu-storage-daemon wrote there, then what we wrote
	dd if="$tmp/expect" bs=512 skip=$sector count=16 status=none \
		>"$tmp/vdpa.expect"
	vdpa_io packed io "$tmp/vdpa.expect"
	vdpa_io split split_io "$tmp/vdpa.in.io"
	# guest memory of 5 GiB, one region, the ring and the buffers in its
	# last MiB: VDUSE hands the daemon the whole region (the front-end's
	# memfd) as one IOTLB entry beyond 4 GiB, which it must map
	vdpa_io packed high_io "$tmp/vdpa.in.split_io" --mem 5120
	# the used MiB as one IOTLB entry per page (a vIOMMU's way): the
	# daemon maps the front-end's memfd once for all of them
	# (vdpa-blk-io checks), and lets it go with the device's reset
	vdpa_io split page_maps "$tmp/vdpa.in.high_io" --page-maps "$DPID"
	ino=$(sed -n 's/^memfd inode \([0-9]*\) maps 1$/\1/p' \
		"$tmp/vdpa.out.page_maps")
	if [ -n "$ino" ] && ! awk -v i="$ino" '$5 == i && $6 ~ /^\/memfd:/' \
		"/proc/$DPID/maps" | grep -q .; then
		ok vhost_vdpa.page_maps_released
	else
		notok vhost_vdpa.page_maps_released \
			"the daemon still maps memfd inode '$ino'"
		grep memfd "/proc/$DPID/maps" | sed 's/^/# /'
	fi
fi
vdpa dev del "$name" 2>/dev/null
kill -TERM "$DPID"
wait "$DPID"
rc=$?
DPID=
if [ $rc -eq 0 ] && [ ! -e "/dev/vduse/$name" ]; then
	ok vhost_vdpa.daemon_exit
else
	notok vhost_vdpa.daemon_exit "exit status $rc"
	sed 's/^/# /' "$tmp/daemon3.log"
fi
finish
