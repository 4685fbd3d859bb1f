#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vm-vduse-reconnect.sh - tools/vhost-user-blk --vduse --vduse-state killed
# with requests in flight, started again, and taking its device over: run
# as root inside the test VM from the build directory:
#   scripts/vm-run --kernel 6.12 -- /path/to/tests/vm-vduse-reconnect.sh
#
# The daemon serves a dm-delay device (over a loop device on a backing
# file) with O_DIRECT, so that each request it pops stays in flight for
# the delay.  Bound to virtio_vdpa, the disk gets a pattern; then, with a
# one-second delay, eight O_DIRECT writers run on it and the daemon is
# killed (kill -9) while it holds their requests.  A new daemon on the
# same name and state file must reconnect to the device (the kernel kept
# it, and the requests the dead one never answered), resubmit what was in
# flight (its log counts them: more than none), and let every writer
# finish; the disk and the backing file must then hold exactly what was
# written, no task may hang, and at SIGTERM after `vdpa dev del` the
# daemon destroys the device and removes its state file.  First, a device
# left by a daemon that died before writing its state file is replaced.
# Then a daemon
# killed under an idle, bound device, and a restart after a reset of the
# device (vdpa dev del and add) with the same state file.  All of it with
# packed rings (the default over VDUSE), then split ones (--no-packed).
#
# Prints `ok N vduse-reconnect.<case>` lines; on a kernel without
# CONFIG_VDPA_USER (Debian's 6.1) one `ok 1 vduse-reconnect.blk # SKIP` line.
# Exits 1 if a case failed, 4 if not root.
set -u

DAEMON=${VDUSE_DAEMON:-./tools/vhost-user-blk}
[ "$(id -u)" -eq 0 ] || { echo "# vm-vduse-reconnect.sh needs root (the test VM)"; exit 4; }
[ -x "$DAEMON" ] || { echo "Bail out! $DAEMON not built"; exit 1; }
for t in vdpa dmsetup losetup; do
	command -v $t >/dev/null || { echo "Bail out! no $t"; exit 1; }
done

# shellcheck source=tests/vduse-tap.sh
. "$(dirname "$0")/vduse-tap.sh"
vduse_tap_init vduse-reconnect blk

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm-vduse-rc.XXXXXX")
dm=vurcdm$$
img=$tmp/disk.img
loop=
name=
DPID=
WPIDS=
autoprobe=
hung=/proc/sys/kernel/hung_task_timeout_secs
hung_was=
cleanup() {
	local p
	for p in $WPIDS; do kill -KILL "$p" 2>/dev/null; done
	[ -z "$name" ] || vdpa dev del "$name" >/dev/null 2>&1
	[ -z "$autoprobe" ] || echo "$autoprobe" >/sys/bus/vdpa/drivers_autoprobe 2>/dev/null
	if [ -n "$DPID" ]; then
		kill "$DPID" 2>/dev/null
		wait "$DPID" 2>/dev/null
	fi
	dmsetup remove "$dm" >/dev/null 2>&1
	[ -z "$loop" ] || losetup -d "$loop" 2>/dev/null
	[ -z "$hung_was" ] || echo "$hung_was" >$hung
	rm -rf "$tmp"
}
trap cleanup EXIT

MIB=$((1 << 20))
SIZE=$((4 * MIB))
SECTORS=$((SIZE / 512))
BS=4096

if modprobe vduse && modprobe virtio_vdpa && modprobe dm_delay &&
	modprobe loop 2>/dev/null; [ -c /dev/vduse/control ]; then
	ok modules
else
	notok modules "modprobe vduse virtio_vdpa dm_delay failed"
	finish
fi
if [ -w $hung ]; then
	hung_was=$(cat $hung)
	echo 60 >$hung
fi
dmesg_from=$(dmesg | wc -l)

# --- the slow disk: dm-delay over a loop device over $img --------------
head -c $SIZE /dev/urandom >"$img"
cp "$img" "$tmp/expect"
# delay MS: every request of the dm device waits MS milliseconds
delay() {
	dmsetup suspend "$dm" &&
		dmsetup load "$dm" --table "0 $SECTORS delay $loop 0 $1" &&
		dmsetup resume "$dm"
}
loop=$(losetup -f --show "$img") &&
	dmsetup create "$dm" --noudevsync --table "0 $SECTORS delay $loop 0 0" &&
	dmsetup mknodes "$dm"
disk=/dev/mapper/$dm
if [ -b "$disk" ]; then
	ok dm_delay
else
	notok dm_delay "no $disk"
	finish
fi

# --- the daemon and its device, bound to virtio_vdpa -----------------------
# start LOG: the daemon on the slow disk with the state file
start() {
	"$DAEMON" --blk-file="$disk" --direct --vduse="$name" \
		--vduse-state="$state" --num-queues=2 --verbose $opt >"$1" 2>&1 &
	DPID=$!
	for _ in $(seq 150); do
		[ -c "/dev/vduse/$name" ] && grep -q 'VDUSE device' "$1" && return 0
		kill -0 "$DPID" 2>/dev/null || return 1
		sleep 0.2
	done
	return 1
}
reads_back() {
	dd if="$dev" bs=64k iflag=direct status=none | cmp -s - "$tmp/expect"
}
# every scenario twice: packed rings (the default over VDUSE), then split
for layout in packed split; do
	pfx=$layout.
	name=vurc$$$layout
	state=$tmp/state-$layout
	opt=
	[ $layout = split ] && opt=--no-packed
	if [ $layout = packed ]; then want=1; else want=0; fi

	# --- a device left before any state was written ---------------------
	# A daemon without the state file (as one killed between
	# VDUSE_CREATE_DEV and writing the file's header would) leaves a
	# device that nothing serves and nothing is bound to: the daemon
	# with the state file, which it finds empty, replaces it.
	"$DAEMON" --blk-file="$disk" --direct --vduse="$name" --num-queues=2 \
		$opt >"$tmp/d0.log" 2>&1 &
	DPID=$!
	for _ in $(seq 150); do
		[ -c "/dev/vduse/$name" ] && grep -q 'VDUSE device' "$tmp/d0.log" &&
			break
		sleep 0.2
	done
	{ kill -KILL "$DPID"; wait "$DPID"; } 2>/dev/null
	DPID=
	if [ -c "/dev/vduse/$name" ] && [ ! -e "$state" ] &&
		start "$tmp/d1.log" && grep -q 'replaced a device' "$tmp/d1.log"; then
		ok stale_replaced
	else
		notok stale_replaced "no stale device, or it was not replaced"
		sed 's/^/# /' "$tmp/d0.log" "$tmp/d1.log"
	fi
	if [ -n "$DPID" ] && add_dev && reads_back; then
		ok setup
		echo "# $dev over $disk"
		# bit 34 of what the driver negotiated: VIRTIO_F_RING_PACKED
		if [ "$(virtio_feature 34)" = $want ]; then
			ok layout
		else
			notok layout "bit 34 is not $want: not $layout rings"
		fi
	else
		notok setup "no device, or it reads differently"
		sed 's/^/# /' "$tmp/d1.log"
		finish
	fi

	# --- kill -9 with requests in flight -----------------------------------
	delay 1000 || notok delay "dmsetup reload failed"
	WPIDS=
	for i in 0 1 2 3 4 5 6 7; do
		head -c $((16 * BS)) /dev/urandom >"$tmp/w$i"
		dd if="$tmp/w$i" of="$tmp/expect" bs=$BS seek=$((i * 32)) \
			conv=notrunc status=none
		dd if="$tmp/w$i" of="$dev" bs=$BS seek=$((i * 32)) oflag=direct \
			status=none &
		WPIDS="$WPIDS $!"
	done
	# each writer's first request reaches the daemon and waits in dm-delay
	sleep 2
	{ kill -KILL "$DPID"; wait "$DPID"; } 2>/dev/null
	rc=$?
	DPID=
	if [ $rc -eq 137 ] && [ -c "/dev/vduse/$name" ] && [ -s "$state" ]; then
		ok kill
	else
		notok kill "exit status $rc; device or state file gone"
	fi
	delay 0 || notok delay "dmsetup reload failed"
	if start "$tmp/d2.log" && grep -q 'reconnected' "$tmp/d2.log"; then
		ok reconnect
	else
		notok reconnect "the new daemon did not take the device over"
		sed 's/^/# /' "$tmp/d2.log"
	fi
	# bounded: writers that never complete fail here (120 s), not hang
	wrc=0
	for _ in $(seq 600); do
		left=0
		for p in $WPIDS; do kill -0 "$p" 2>/dev/null && left=1; done
		[ $left -eq 0 ] && break
		sleep 0.2
	done
	for p in $WPIDS; do
		if kill -0 "$p" 2>/dev/null; then
			# blocked in the kernel: no wait (it would block too)
			wrc=1
			echo "# writer $p still blocked; ${dev#/dev/} inflight: $(cat /sys/block/"${dev#/dev/}"/inflight)"
			kill -KILL "$p" 2>/dev/null
		else
			wait "$p" 2>/dev/null || wrc=1
		fi
	done
	WPIDS=
	if [ $wrc -eq 0 ]; then
		ok writers_complete
	else
		notok writers_complete "a writer failed or never completed"
		grep -v 'map_entry\|iotlb: miss' "$tmp/d2.log" | sed 's/^/# /'
		finish
	fi
	resub=$(grep -o 'resubmitting [0-9]* inflight' "$tmp/d2.log" |
		awk '{ s += $2 } END { print s + 0 }')
	echo "# resubmitted after the kill: $resub request(s)"
	if [ "$resub" -gt 0 ]; then
		ok resubmitted
	else
		notok resubmitted "nothing was in flight at the kill"
		sed 's/^/# /' "$tmp/d2.log"
	fi
	if reads_back; then
		ok read_back
	else
		notok read_back "the disk differs from what was written"
	fi
	if cmp -s "$img" "$tmp/expect"; then
		ok backing_file
	else
		notok backing_file "the backing file differs"
	fi

	# --- kill -9 under an idle device, then a reset with the same state ------
	{ kill -KILL "$DPID"; wait "$DPID"; } 2>/dev/null
	DPID=
	head -c $BS /dev/urandom >"$tmp/kb"
	dd if="$tmp/kb" of="$tmp/expect" bs=$BS seek=100 conv=notrunc status=none
	if start "$tmp/d3.log" && grep -q 'reconnected' "$tmp/d3.log" &&
		dd if="$tmp/kb" of="$dev" bs=$BS seek=100 oflag=direct status=none &&
		reads_back; then
		ok reconnect_idle
	else
		notok reconnect_idle "no takeover, or the disk reads differently"
		sed 's/^/# /' "$tmp/d3.log"
	fi
	# a reset (vdpa dev del, add): the device starts anew, its file zeroed
	if vdpa dev del "$name" && add_dev && reads_back; then
		ok reset_readd
	else
		notok reset_readd "the device did not come back, or reads differently"
		sed 's/^/# /' "$tmp/d3.log"
	fi

	# --- the end: vdpa dev del, SIGTERM: device and state file gone ---------
	vdpa dev del "$name" 2>/dev/null
	kill -TERM "$DPID"
	wait "$DPID"
	rc=$?
	DPID=
	if [ $rc -eq 0 ] && [ ! -e "/dev/vduse/$name" ] && [ ! -e "$state" ]; then
		ok exit
	else
		notok exit "exit status $rc; /dev/vduse/$name or $state left"
		sed 's/^/# /' "$tmp/d3.log"
	fi
done
pfx=
if dmesg | tail -n +$((dmesg_from + 1)) |
	grep -E 'hung task|blocked for more than' >"$tmp/hung"; then
	notok no_hung_task "$(head -n 1 "$tmp/hung")"
else
	ok no_hung_task
fi
dmesg | tail -n +$((dmesg_from + 1)) | grep -i vduse | sed 's/^/# /'
finish
