# SPDX-License-Identifier: LGPL-2.1-or-later
# tmp and name are the caller's:
# shellcheck shell=bash disable=SC2154
#
# vduse-tap.sh - what the VDUSE VM tests share (vm-vduse-blk.sh,
# vm-vduse-net.sh, vm-vduse-reconnect.sh); sourced, not run.
#
# vduse_tap_init SUITE SKIPCASE: TAP lines `ok N SUITE.<pfx><case>`; on a
# kernel without the vduse module (Debian's 6.1: no CONFIG_VDPA_USER) one
# `ok 1 SUITE.SKIPCASE # SKIP` line and exit 0.  The caller may set pfx
# (a prefix of every case name) at any time.

n=0
failed=0
pfx=
ok() { n=$((n + 1)); echo "ok $n $suite.$pfx$1"; }
notok() {
	n=$((n + 1))
	echo "not ok $n $suite.$pfx$1${2:+ # $2}"
	failed=1
}
finish() {
	echo "1..$n"
	exit $failed
}

vduse_tap_init() {
	suite=$1
	kernel=$(uname -r)
	echo "# $suite on $kernel"
	# only a kernel built without VDUSE may skip
	if ! modinfo vduse >/dev/null 2>&1; then
		echo "ok 1 $suite.$2 # SKIP $kernel has no vduse module (CONFIG_VDPA_USER)"
		echo "1..1"
		exit 0
	fi
}

# vdpa_add NAME: vdpa dev add NAME mgmtdev vduse, retried for up to 30 s:
# /dev/vduse/NAME exists from VDUSE_CREATE_DEV on, but the kernel refuses
# the vdpa device (EINVAL) until the daemon has set up every queue
# (VDUSE_VQ_SETUP).  The last error is in $tmp/vdpa.err.
vdpa_add() {
	local i
	for i in $(seq 150); do
		vdpa dev add name "$1" mgmtdev vduse 2>"$tmp/vdpa.err" && return 0
		[ "$i" -lt 150 ] && sleep 0.2
	done
	return 1
}

# bind_virtio_vdpa NAME: vdpa_add, then bound to virtio_vdpa by hand
# (vhost_vdpa may be loaded too), drivers_autoprobe restored after
# (cleanup restores $autoprobe if the test dies in between).
bind_virtio_vdpa() {
	local rc=1
	autoprobe=$(cat /sys/bus/vdpa/drivers_autoprobe)
	echo 0 >/sys/bus/vdpa/drivers_autoprobe
	vdpa_add "$1" && echo "$1" >/sys/bus/vdpa/drivers/virtio_vdpa/bind &&
		rc=0
	echo "$autoprobe" >/sys/bus/vdpa/drivers_autoprobe
	autoprobe=
	return $rc
}

# find_vd NAME: the block device of virtio_vdpa's NAME, within 30 s (sets
# dev to its /dev/vdX)
find_vd() {
	local b
	dev=
	for _ in $(seq 300); do
		for b in /sys/bus/vdpa/devices/"$1"/virtio*/block/vd*; do
			[ -e "$b" ] && dev=/dev/${b##*/}
		done
		[ -n "$dev" ] && [ -b "$dev" ] && return 0
		sleep 0.1
	done
	return 1
}

# add_dev: the vdpa device $name bound to virtio_vdpa, and its /dev/vdX
# in dev
add_dev() {
	dev=
	bind_virtio_vdpa "$name" && find_vd "$name"
}

# virtio_feature N: bit N of the negotiated features of the vdpa device
# $name's virtio device ('0' or '1'; the sysfs file is one character per
# bit, bit 0 first)
virtio_feature() {
	local f
	for f in /sys/bus/vdpa/devices/"$name"/virtio*/features; do
		[ -r "$f" ] && cut -c$(($1 + 1)) "$f"
	done
}
