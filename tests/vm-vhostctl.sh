#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vm-vhostctl.sh - vhostctl against the real kernel devices, run as root
# inside the test VM from the build directory:
#   scripts/vm-run --kernel 6.12 -- /path/to/tests/vm-vhostctl.sh
# status (also listing a VDUSE device), features of each device, check all
# (and each check alone; check vduse also failing when its device name is
# taken), the vdpa management commands through a device's whole life (its
# deletion refused while its vhost-vdpa node is open), and the refusal
# without root; text and JSON (parsed with python3); and, not vhostctl,
# the vhost-user front-end taking a real dma-buf (tests/test-vu-frontend).
#
# Prints `ok N vhostctl.<case>` / `not ok N vhostctl.<case>` lines; exits 1
# if a case failed, 4 if not root.
set -u

VHOSTCTL=${VHOSTCTL:-./tools/vhostctl}
[ "$(id -u)" -eq 0 ] || { echo "# vm-vhostctl.sh needs root (the test VM)"; exit 4; }
[ -x "$VHOSTCTL" ] || { echo "Bail out! $VHOSTCTL not built"; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm-vhostctl.XXXXXX")
dev=vhctl$$
trap '"$VHOSTCTL" vdpa dev del "$dev" >/dev/null 2>&1; rm -rf "$tmp"' EXIT
out=$tmp/out
err=$tmp/err
kernel=$(uname -r)
has_vdpa=false
[ -d /sys/bus/vdpa/devices ] && has_vdpa=true
# check vduse passes where the kernel has VDUSE (6.12), skips elsewhere
has_vduse=false
modinfo vduse >/dev/null 2>&1 && modinfo virtio_vdpa >/dev/null 2>&1 && has_vduse=true

VHOSTCTL_TIMEOUT=600
# shellcheck source=tests/vhostctl-tap.sh
. "$(dirname "$0")/vhostctl-tap.sh"

echo "# vhostctl on $kernel (vdpa: $has_vdpa, vduse: $has_vduse)"
# which of them this kernel must have: Debian's 6.1 neither, 6.12 both (a
# module that failed to load must not turn the vDPA cases into SKIP passes)
case $kernel in
6.1.*) want=false ;;
*) want=true ;;
esac
if [ "$has_vdpa" = "$want" ] && [ "$has_vduse" = "$want" ]; then
	ok kernel.vdpa-vduse-as-expected
else
	not_ok kernel.vdpa-vduse-as-expected "vdpa $has_vdpa, vduse $has_vduse; $kernel should have $want"
fi

# --- status ---------------------------------------------------------
expect status 0 status && grep_out status.text '^  /dev/vhost-net \(vhost-net\)'
expect status.json 0 -j status &&
	json status.json.devices '
assert j["kernel"] == os.uname().release
mods = {m["name"]: m for m in j["modules"]}
for m in ("vhost", "vhost_net", "vhost_vsock", "vhost_scsi", "tun"):
    assert mods[m]["state"] in ("live", "builtin"), mods[m]
devs = {d["path"]: d for d in j["devices"]}
want = {"/dev/vhost-net": "vhost-net", "/dev/vhost-vsock": "vhost-vsock",
        "/dev/vhost-scsi": "vhost-scsi"}
for p, t in want.items():
    assert devs[p]["type"] == t, devs[p]
    assert "VERSION_1" in devs[p]["features"]["names"], devs[p]
    assert devs[p]["vrings"] >= 2
assert devs["/dev/vhost-net"]["vrings"] == 2
assert "IOTLB_MSG_V2" in devs["/dev/vhost-net"]["backend_features"]["names"]
'
expect status.load 0 status --load

# --- features -------------------------------------------------------
expect features.net 0 features /dev/vhost-net &&
	grep_out features.net.text 'features +0x[0-9a-f]+ \(.*VERSION_1'
expect features.net.json 0 -j features /dev/vhost-net &&
	json features.net.json.keys '
assert j["path"] == "/dev/vhost-net" and j["type"] == "vhost-net"
f = j["features"]
assert "MRG_RXBUF" in f["names"] and "VERSION_1" in f["names"], f
assert bin(int(f["bits"], 16)).count("1") == len(f["names"]), f
'
expect features.vsock.json 0 -j features /dev/vhost-vsock &&
	json features.vsock.json.type 'assert j["type"] == "vhost-vsock"'
expect features.scsi.json 0 -j features /dev/vhost-scsi &&
	json features.scsi.json.type 'assert j["type"] == "vhost-scsi" and j["backend_features"] is None'

# --- check ----------------------------------------------------------
ls /sys/kernel/config/target >"$tmp/lio.before" || echo "missing" >"$tmp/lio.before"
expect check.all 0 check all &&
	grep_out check.all.net '^net +PASS' && grep_out check.all.vsock '^vsock +PASS' &&
	grep_out check.all.scsi '^scsi +PASS' &&
	if $has_vdpa; then grep_out check.all.vdpa '^vdpa +PASS'; else grep_out check.all.vdpa '^vdpa +SKIP'; fi &&
	if $has_vduse; then grep_out check.all.vduse '^vduse +PASS'; else grep_out check.all.vduse '^vduse +SKIP'; fi
expect check.all.json 0 -j check all &&
	json check.all.json.results "
r = {c['name']: c for c in j['checks']}
assert [c['name'] for c in j['checks']] == ['net', 'vsock', 'scsi', 'vdpa', 'vduse']
for c in ('net', 'vsock', 'scsi'):
    assert r[c]['result'] == 'pass', r[c]
assert r['vdpa']['result'] == ('pass' if '$has_vdpa' == 'true' else 'skip'), r['vdpa']
assert r['vduse']['result'] == ('pass' if '$has_vduse' == 'true' else 'skip'), r['vduse']
assert j['failed'] == 0 and j['passed'] + j['skipped'] == 5
for c in j['checks']:
    assert set(c) == {'name', 'result', 'detail'} and c['detail']
"
ls /sys/kernel/config/target >"$tmp/lio.after" || echo "missing" >"$tmp/lio.after"
# (configfs must be there to compare: two empty listings prove nothing)
if [ -d /sys/kernel/config/target ] && cmp -s "$tmp/lio.before" "$tmp/lio.after"; then
	ok check.configfs-restored
else
	not_ok check.configfs-restored
fi
if links=$(ip -o link show) && ! grep -q vhchk <<<"$links"; then ok check.no-tap-left; else not_ok check.no-tap-left; fi
expect check.net 0 check net
expect check.two 0 -j check vsock scsi &&
	json check.two.json 'assert [c["name"] for c in j["checks"]] == ["vsock", "scsi"] and j["passed"] == 2'
if $has_vdpa; then
	expect check.vdpa 0 check vdpa
	if [ -z "$(ls /sys/bus/vdpa/devices)" ]; then ok check.vdpa.removed; else not_ok check.vdpa.removed; fi
else
	expect check.vdpa.skip 4 check vdpa && grep_out check.vdpa.skip.text '^vdpa +SKIP +.*vdpa'
fi
# check vduse: PASS where the kernel has VDUSE, and nothing left behind
# (VDUSE device, vdpa device, drivers_autoprobe); else its own SKIP
vduse_left() {
	ls -d /dev/vduse/vhostctl-check-* /sys/bus/vdpa/devices/vhostctl-check-* 2>/dev/null
}
if $has_vduse; then
	autoprobe_before=$(cat /sys/bus/vdpa/drivers_autoprobe)
	expect check.vduse 0 check vduse &&
		grep_out check.vduse.text '^vduse +PASS +vhostctl-check-[0-9]+ \(/dev/vd[a-z]+\): .*RAM disk compared'
	autoprobe=$(cat /sys/bus/vdpa/drivers_autoprobe)
	if [ -z "$(vduse_left)" ] && [ "$autoprobe" = "$autoprobe_before" ]; then
		ok check.vduse.removed
	else
		not_ok check.vduse.removed "left: $(vduse_left); autoprobe $autoprobe"
	fi
	# the check's device name is taken (vhostctl's pid is known before
	# it runs: exec keeps it): FAIL, and the other device is not touched
	vd=$tmp/taken.img
	truncate -s 1M "$vd"
	mkfifo "$tmp/go"
	bash -c 'echo $$ >"$1"; read -r _ <"$2"; exec "$3" check vduse' _ \
		"$tmp/pid" "$tmp/go" "$VHOSTCTL" >"$out" 2>"$err" </dev/null &
	chkpid=$!
	exec 9>"$tmp/go"
	for _ in $(seq 100); do [ -s "$tmp/pid" ] && break; sleep 0.05; done
	taken=vhostctl-check-$(cat "$tmp/pid")
	"${VDUSE_DAEMON:-./tools/vhost-user-blk}" --blk-file="$vd" \
		--vduse="$taken" >"$tmp/taken.log" 2>&1 &
	tpid=$!
	for _ in $(seq 300); do
		[ -c "/dev/vduse/$taken" ] && break
		kill -0 $tpid 2>/dev/null || break
		sleep 0.1
	done
	echo go >&9
	exec 9>&-
	wait $chkpid
	rc=$?
	if [ $rc -eq 1 ] && grep -Eq "^vduse +FAIL +create VDUSE device $taken: File exists" "$out"; then
		ok check.vduse.name-taken
	else
		not_ok check.vduse.name-taken "exit $rc"
	fi
	if [ -c "/dev/vduse/$taken" ] && [ ! -e "/sys/bus/vdpa/devices/$taken" ] &&
		[ "$(cat /sys/bus/vdpa/drivers_autoprobe)" = "$autoprobe_before" ]; then
		ok check.vduse.name-taken.untouched
	else
		not_ok check.vduse.name-taken.untouched
	fi
	kill -TERM $tpid
	wait $tpid
	rc=$?
	if [ $rc -eq 0 ] && [ ! -e "/dev/vduse/$taken" ]; then
		ok check.vduse.name-taken.daemon-exit
	else
		not_ok check.vduse.name-taken.daemon-exit "exit status $rc"
		sed 's/^/# /' "$tmp/taken.log"
	fi
else
	# the check's own SKIP, with its reason, is the expected skip
	timeout "$VHOSTCTL_TIMEOUT" "$VHOSTCTL" check vduse >"$out" 2>"$err" </dev/null
	rc=$?
	if [ $rc -eq 4 ] && grep -Eq '^vduse +SKIP +.*vduse' "$out"; then
		skip check.vduse "$(sed -n 's/^vduse *SKIP *//p' "$out")"
	else
		not_ok check.vduse "exit $rc, expected 4 (SKIP: no vduse module)"
	fi
fi
setpriv --reuid=65534 --regid=65534 --clear-groups "$VHOSTCTL" check all >"$out" 2>"$err" </dev/null
rc=$?
if [ $rc -eq 3 ] && [ ! -s "$out" ]; then ok check.noroot; else not_ok check.noroot "exit $rc"; fi
setpriv --reuid=65534 --regid=65534 --clear-groups "$VHOSTCTL" status --load >"$out" 2>"$err" </dev/null
rc=$?
if [ $rc -eq 3 ]; then ok status.load.noroot; else not_ok status.load.noroot "exit $rc"; fi

# --- vdpa -----------------------------------------------------------
if ! $has_vdpa; then
	expect vdpa.mgmtdev.absent 4 vdpa mgmtdev show
	expect vdpa.dev.absent 4 -j vdpa dev show
else
	expect vdpa.mgmtdev 0 vdpa mgmtdev show && grep_out vdpa.mgmtdev.text '^vdpasim_net:'
	expect vdpa.mgmtdev.json 0 -j vdpa mgmtdev show &&
		json vdpa.mgmtdev.json.keys '
m = j["mgmtdev"]["vdpasim_net"]
assert m["supported_classes"] == ["net"], m
assert m["max_supported_vqs"] >= 2
assert "MAC" in m["dev_features"] and "VERSION_1" in m["dev_features"]
'
	expect vdpa.mgmtdev.one 0 -j vdpa mgmtdev show vdpasim_net &&
		json vdpa.mgmtdev.one.json 'assert list(j["mgmtdev"]) == ["vdpasim_net"]'
	expect vdpa.mgmtdev.unknown 4 vdpa mgmtdev show nosuchmgmtdev
	expect vdpa.dev.add 0 vdpa dev add name "$dev" mgmtdev vdpasim_net \
		mac 52:54:00:aa:bb:cc mtu 1400
	expect vdpa.dev.add.again 1 vdpa dev add name "$dev" mgmtdev vdpasim_net &&
		grep_out vdpa.dev.add.again.msg 'File exists' "$err"
	expect vdpa.dev.show 0 vdpa dev show "$dev" &&
		grep_out vdpa.dev.show.text "^$dev: type network mgmtdev vdpasim_net"
	expect vdpa.dev.show.json 0 -j vdpa dev show "$dev" &&
		json vdpa.dev.show.json.keys "
d = j['dev']['$dev']
assert d['type'] == 'network' and d['mgmtdev'] == 'vdpasim_net', d
assert d['max_vqs'] >= 2 and d['max_vq_size'] >= d['min_vq_size'] >= 1
assert os.path.exists(d['chardev']) and d['chardev'].startswith('/dev/vhost-vdpa-')
"
	expect vdpa.dev.list.json 0 -j vdpa dev show &&
		json vdpa.dev.list.json "assert '$dev' in j['dev']"
	expect vdpa.dev.config 0 vdpa dev config show "$dev" &&
		grep_out vdpa.dev.config.text "^$dev: mac 52:54:00:aa:bb:cc link up mtu 1400"
	expect vdpa.dev.config.json 0 -j vdpa dev config show "$dev" &&
		json vdpa.dev.config.json.keys "
c = j['config']['$dev']
assert c['mac'] == '52:54:00:aa:bb:cc' and c['mtu'] == 1400 and c['link'] == 'up', c
assert 'MAC' in c['dev_features']
"
	# vendor statistics exist once features are negotiated: before, the
	# kernel refuses (EAGAIN, "feature negotiation not complete") and
	# vhostctl fails with the kernel's reason
	expect vdpa.dev.vstats.unnegotiated 1 vdpa dev vstats show "$dev" qidx 0 &&
		grep_out vdpa.dev.vstats.unnegotiated.msg 'feature negotiation not complete' "$err"
	# negotiate on the device's vhost-vdpa node (ACKNOWLEDGE, DRIVER,
	# its features, FEATURES_OK) and hold it open meanwhile
	chardev=$(ls -d "/sys/bus/vdpa/devices/$dev"/vhost-vdpa-* 2>/dev/null | head -n 1)
	chardev=/dev/${chardev##*/}
	python3 - "$chardev" "$tmp/negotiated" <<'PY' &
import fcntl, os, struct, sys, time
VHOST_SET_OWNER, VHOST_GET_FEATURES, VHOST_SET_FEATURES = 0xaf01, 0x8008af00, 0x4008af00
VHOST_VDPA_SET_STATUS = 0x4001af72
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.ioctl(fd, VHOST_SET_OWNER)
b = bytearray(8)
fcntl.ioctl(fd, VHOST_GET_FEATURES, b)
fcntl.ioctl(fd, VHOST_VDPA_SET_STATUS, struct.pack('B', 1 | 2))
fcntl.ioctl(fd, VHOST_SET_FEATURES, bytes(b))
fcntl.ioctl(fd, VHOST_VDPA_SET_STATUS, struct.pack('B', 1 | 2 | 8))
open(sys.argv[2], 'w').close()
time.sleep(600)
PY
	neg=$!
	for _ in $(seq 200); do
		[ -e "$tmp/negotiated" ] || ! kill -0 $neg 2>/dev/null && break
		sleep 0.05
	done
	if [ -e "$tmp/negotiated" ]; then ok vdpa.dev.vstats.negotiate; else not_ok vdpa.dev.vstats.negotiate "$chardev"; fi
	expect vdpa.dev.vstats.rx 0 vdpa dev vstats show "$dev" qidx 0 &&
		grep_out vdpa.dev.vstats.rx.text "^$dev: queue_index 0 rx packets [0-9]+ rx bytes [0-9]+"
	expect vdpa.dev.vstats.tx 0 vdpa dev vstats show "$dev" qidx 1 &&
		grep_out vdpa.dev.vstats.tx.text "^$dev: queue_index 1 tx packets [0-9]+ tx bytes [0-9]+"
	expect vdpa.dev.vstats.cvq 0 vdpa dev vstats show "$dev" qidx 2 &&
		grep_out vdpa.dev.vstats.cvq.text "^$dev: queue_index 2 cvq requests [0-9]+"
	expect vdpa.dev.vstats.json 0 -j vdpa dev vstats show "$dev" qidx 0 &&
		json vdpa.dev.vstats.json.keys "
v = j['vstats']['$dev']
assert v['queue_index'] == 0, v
names = [x['name'] for x in v['name_value']]
assert names[:2] == ['rx packets', 'rx bytes'], names
assert all(isinstance(x['value'], int) for x in v['name_value']), v
"
	# the simulator has 3 queues: a fourth is the kernel's EINVAL
	expect vdpa.dev.vstats.badq 1 vdpa dev vstats show "$dev" qidx 3 &&
		grep_out vdpa.dev.vstats.badq.msg 'Invalid argument' "$err"
	kill $neg 2>/dev/null
	wait $neg 2>/dev/null
	expect status.vdpa.json 0 -j status &&
		json status.vdpa.json.node '
v = [d for d in j["devices"] if d["type"] == "vhost-vdpa"]
assert v and v[0]["path"].startswith("/dev/vhost-vdpa-"), j["devices"]
assert "IOTLB_MSG_V2" in v[0]["backend_features"]["names"]
'
	# a device whose node is open is refused: the kernel would wait for
	# the close uninterruptibly.  The holder leaves after 25 s, so that
	# a vhostctl that waits comes back (timeout's 124) and the run goes on
	(exec 9<>"$chardev" && exec sleep 25) 2>/dev/null &
	holder=$!
	for _ in $(seq 200); do
		[ "$(readlink "/proc/$holder/fd/9" 2>/dev/null)" = "$chardev" ] && break
		sleep 0.05
	done
	timeout 20 "$VHOSTCTL" vdpa dev del "$dev" >"$out" 2>"$err" </dev/null
	rc=$?
	if [ $rc -eq 1 ] && grep -q "$dev is in use ($chardev is open)" "$err"; then
		ok vdpa.dev.del.in-use
	else
		not_ok vdpa.dev.del.in-use "exit $rc, expected 1 at once"
	fi
	kill $holder 2>/dev/null
	wait $holder 2>/dev/null
	expect vdpa.dev.del 0 vdpa dev del "$dev"
	expect vdpa.dev.show.gone 4 vdpa dev show "$dev"
	expect vdpa.dev.del.gone 4 vdpa dev del "$dev"
	expect vdpa.dev.add.badmgmt 4 vdpa dev add name "$dev" mgmtdev nosuchmgmtdev
fi

# --- status lists VDUSE devices (tools/vhost-user-blk --vduse), without
# and with their vdpa device
VDUSE_DAEMON=${VDUSE_DAEMON:-./tools/vhost-user-blk}
if ! modinfo vduse >/dev/null 2>&1; then
	skip status.vduse "$kernel has no vduse module (CONFIG_VDPA_USER)"
elif ! modprobe vduse || [ ! -c /dev/vduse/control ]; then
	not_ok status.vduse "modprobe vduse failed"
else
	vd=vhvd$$
	truncate -s 1M "$tmp/vd.img"
	"$VDUSE_DAEMON" --blk-file="$tmp/vd.img" --vduse="$vd" \
		>"$tmp/vd.log" 2>&1 &
	vdpid=$!
	for _ in $(seq 300); do
		[ -c "/dev/vduse/$vd" ] && break
		kill -0 $vdpid 2>/dev/null || break
		sleep 0.1
	done
	expect status.vduse 0 status &&
		grep_out status.vduse.text "^  $vd vdpa: no\$"
	expect vduse.vdpa.add 0 vdpa dev add name "$vd" mgmtdev vduse
	for _ in $(seq 100); do
		[ -e "/sys/bus/vdpa/devices/$vd/driver" ] && break
		sleep 0.1
	done
	expect status.vduse.bound 0 -j status &&
		json status.vduse.bound.json "
v = {d['name']: d for d in j['vduse']}
assert v['$vd']['vdpa'] is True, v
assert v['$vd']['driver'] in ('vhost_vdpa', 'virtio_vdpa'), v
"
	expect vduse.vdpa.del 0 vdpa dev del "$vd"
	expect status.vduse.unbound 0 -j status &&
		json status.vduse.unbound.json "
v = {d['name']: d for d in j['vduse']}
assert v['$vd']['vdpa'] is False and v['$vd']['driver'] is None, v
"
	kill -TERM $vdpid
	wait $vdpid
	rc=$?
	if [ $rc -eq 0 ] && [ ! -e "/dev/vduse/$vd" ]; then
		ok vduse.daemon_exit
	else
		not_ok vduse.daemon_exit "exit status $rc"
		sed 's/^/# /' "$tmp/vd.log"
	fi
fi

# --- check vduse when its device stops answering -------------------
# Last: what it leaves (a vdpa device with requests nobody answers, a
# process waiting on them) stays until the VM is gone.  The check's
# serving thread is frozen (cgroup v2 freezer, in a threaded cgroup of its
# own) once the disk is bound and idle, before the check opens it: the
# check must fail within its deadline, not hang, and say what it left.
# The pause is made by the device node: a placeholder file where
# devtmpfs would create /dev/vdX keeps the check looking for it until the
# thread is frozen, then the real node is made.
# check_vduse_stall CG: CG is a threaded domain cgroup (the check runs
# there), CG/serve a frozen threaded cgroup in it (the thread goes there).
check_vduse_stall() {
	local cg=$1 name="" blk maj_min tid="" other="" pid c x v gaveup="" rc hung
	for x in a b c d e f g h; do
		[ -e "/sys/block/vd$x" ] || { name=vd$x; break; }
	done
	if [ -z "$name" ] || [ -e "/dev/$name" ]; then
		not_ok check.vduse.stall "cannot tell the next virtio disk's name"
		return
	fi
	: >"/dev/$name"
	rm -f "$tmp/pid"
	bash -c 'echo $$ >"$1/cgroup.procs" && echo $$ >"$2" &&
		exec "$3" check vduse' _ "$cg" "$tmp/pid" "$VHOSTCTL" \
		>"$out" 2>"$err" </dev/null &
	pid=$!
	# the disk bound (probe and partition scan done): the thread is idle
	for _ in $(seq 1200); do
		blk=$(ls "/sys/bus/vdpa/devices/vhostctl-check-$pid"/virtio*/block 2>/dev/null)
		[ -n "$blk" ] && [ -e "/sys/bus/vdpa/devices/vhostctl-check-$pid/driver" ] && break
		kill -0 $pid 2>/dev/null || break
		sleep 0.05
	done
	# the serving thread: by its name, else the only other thread
	for c in "/proc/$pid/task/"*; do
		[ "${c##*/}" = "$pid" ] && continue
		[ "$(cat "$c/comm" 2>/dev/null)" = vhostctl-vduse ] && { tid=${c##*/}; break; }
		[ -z "$other" ] && other=${c##*/} || other=many
	done
	[ -z "$tid" ] && [ "$other" != many ] && tid=$other
	if [ "$blk" != "$name" ] || [ -z "$tid" ] ||
		! echo "$tid" >"$cg/serve/cgroup.threads"; then
		not_ok check.vduse.stall "disk \"$blk\" (expected $name), serving thread \"$tid\""
		rm -f "/dev/$name"
		echo 0 >"$cg/serve/cgroup.freeze"
		wait $pid
		return
	fi
	for _ in $(seq 200); do
		grep -q '^frozen 1' "$cg/serve/cgroup.events" && break
		sleep 0.05
	done
	maj_min=$(cat "/sys/block/$name/dev")
	rm -f "/dev/$name"
	mknod "/dev/$name" b "${maj_min%:*}" "${maj_min#*:}"
	# it gives up: its waiting child is killed (SIGKILL stays pending,
	# the child sleeps uninterruptibly); then the thread may go
	for _ in $(seq 240); do
		kill -0 $pid 2>/dev/null || break
		for c in $(pgrep -P $pid); do
			# (no <(...): the VM's /dev has no /dev/fd)
			while read -r x v; do
				case $x in
				SigPnd: | ShdPnd:)
					[ $((16#$v & 0x100)) -ne 0 ] && gaveup=$c ;;
				esac
			done 2>/dev/null <"/proc/$c/status"
		done
		[ -n "$gaveup" ] && break
		sleep 0.5
	done
	hung=false
	[ -z "$gaveup" ] && kill -0 $pid 2>/dev/null && hung=true
	echo 0 >"$cg/serve/cgroup.freeze"
	for _ in $(seq 240); do
		kill -0 $pid 2>/dev/null || break
		sleep 0.5
	done
	if kill -0 $pid 2>/dev/null; then
		not_ok check.vduse.stall "still running 2 minutes after its thread was thawed"
		return
	fi
	wait $pid
	rc=$?
	if [ -n "$gaveup" ] && [ $rc -eq 1 ] &&
		grep -Eq "^vduse +FAIL +the device stopped answering: nothing served for [0-9]+ s; left: vdpa device vhostctl-check-$pid \(/dev/$name\), requests unanswered\$" "$out"; then
		ok check.vduse.stall
	else
		if $hung; then
			not_ok check.vduse.stall "hung: waited 2 minutes with its thread frozen, then exit $rc once thawed"
		else
			not_ok check.vduse.stall "exit $rc"
		fi
	fi
	if [ "$(cat /sys/bus/vdpa/drivers_autoprobe)" = "$autoprobe_before" ]; then
		ok check.vduse.stall.autoprobe
	else
		not_ok check.vduse.stall.autoprobe
	fi
}
if $has_vduse; then
	# its own cgroup2 mount, unmounted after (the EXIT trap's rm -rf must
	# not walk it); the cgroups stay: the stuck process is in one
	cg=$tmp/cgroup2/vhctl$$
	mkdir "$tmp/cgroup2"
	if mount -t cgroup2 none "$tmp/cgroup2" && mkdir "$cg" "$cg/serve" &&
		echo threaded >"$cg/serve/cgroup.type" &&
		echo 1 >"$cg/serve/cgroup.freeze"; then
		check_vduse_stall "$cg"
	else
		not_ok check.vduse.stall "cgroup v2 freezer unusable"
	fi
	umount "$tmp/cgroup2" 2>/dev/null
else
	skip check.vduse.stall "$kernel has no vduse module (CONFIG_VDPA_USER)"
fi

# --- not vhostctl: the front-end's GET_SHARED_OBJECT takes a real dma-buf
# (a udmabuf; test-vu-frontend answers -ENOENT where there is none, as on
# most hosts that run make check)
if [ -c /dev/udmabuf ]; then
	if ./tests/test-vu-frontend >"$out" 2>"$err"; then
		ok frontend.dmabuf
	else
		not_ok frontend.dmabuf "test-vu-frontend: $(tail -n 1 "$err")"
	fi
else
	skip frontend.dmabuf "$kernel has no /dev/udmabuf (CONFIG_UDMABUF)"
fi

echo "1..$n"
[ $failed -eq 0 ] || { echo "# $failed of $n failed"; exit 1; }
exit 0
