#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# vm-systemd-units.sh - the daemons' systemd units as shipped, run by a real
# systemd as PID 1, as root inside the test VM from the build directory:
#   scripts/vm-run --kernel 6.12 -- /path/to/tests/vm-systemd-units.sh
#
# systemd (Debian's, /lib/systemd/systemd) boots in a new PID and mount
# namespace, as in a container, on an overlay of the VM's read-only root
# (a tmpfs upper layer: /etc, /var and /usr/local writable).  make installs
# the build's daemons, libvhost and configured units (systemd/*.in, every
# hardening line as shipped) into that overlay, where the build's prefix
# says.  Then, under systemd:
#  - vhost-user-blk@t1.socket with t1.conf naming an image in its
#    StateDirectory; tests/vu-blk-io connects (socket activation), writes,
#    reads back and finds 64 KiB on disk; vhostctl user check passes
#  - the service is active and its hardening applied: no capabilities,
#    NoNewPrivs, a seccomp filter, its own mount and network namespaces, and
#    as it sees its files /, /usr and /etc read-only, the state directory
#    and its private /tmp writable
#  - systemctl stop: the daemon exits with status 0; the socket then starts
#    a new instance on the next connection; stopping the socket removes it
#  - vhost-user-net@t1.socket with --tap: the daemon creates and brings up
#    the tap (CAP_NET_ADMIN, DeviceAllow=/dev/net/tun) in the host's network
#    namespace; vhostctl user check passes; only CAP_NET_ADMIN is left;
#    systemctl stop ends it with status 0 and removes the tap
#  - RestrictAddressFamilies= of each service as shipped: an instance "af"
#    whose drop-in replaces only ExecStart= with a probe (bash's /dev/tcp)
#    that tries an AF_INET and an AF_INET6 socket; the probe's exit status
#    says which socket() calls were refused, and must match the families
#    the unit lists (the same probe unconfined must get both)
#  - DevicePolicy=closed of vhost-user-net: an instance "dev" whose drop-in
#    also empties DeviceAllow= must still be refused /dev/net/tun (EPERM):
#    the policy stays closed where the default, auto, would open every
#    device
# In an ASan build a drop-in sets ASAN_OPTIONS=detect_leaks=0 (see below).
#
# Prints `ok N systemd-units.<case>` / `not ok ...` TAP lines; exits 1 if a
# case failed (systemd not coming up is a failure: scripts/install-deps
# installs it), 4 if not root or not in the test VM.
set -u

[ "$(id -u)" -eq 0 ] || { echo "# vm-systemd-units.sh needs root (the test VM)"; exit 4; }
[ -n "${LIBVHOST_IN_VM:-}" ] ||
	{ echo "# vm-systemd-units.sh runs in the test VM (scripts/vm-run)"; exit 4; }

build=$(pwd -P)
SYSTEMD=/lib/systemd/systemd
BLK_IO=$build/tests/vu-blk-io
for p in "$SYSTEMD" "$BLK_IO"; do
	[ -x "$p" ] || { echo "Bail out! $p missing"; exit 1; }
done
for u in vhost-user-blk@.service vhost-user-blk@.socket \
	vhost-user-net@.service vhost-user-net@.socket; do
	[ -f "$build/systemd/$u" ] || { echo "Bail out! $build/systemd/$u not built"; exit 1; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vm-systemd-units.XXXXXX")
root=$tmp/root
upid=
spid=
n=0
failed=0
out=$tmp/out
err=$tmp/err
: >"$out"
: >"$err"

ok() {
	n=$((n + 1))
	echo "ok $n systemd-units.$1"
	: >"$out"
	: >"$err"
}
not_ok() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n systemd-units.$1"
	shift
	[ $# -gt 0 ] && printf '%s\n' "$@" | sed 's/^/# /'
	sed 's/^/#   stdout: /' "$out" | head -30
	sed 's/^/#   stderr: /' "$err" | head -30
	: >"$out"
	: >"$err"
}
# bail CASE MESSAGE: CASE failed and nothing after it can run
bail() {
	not_ok "$1" "$2"
	[ -s "$tmp/unshare.log" ] && sed 's/^/# unshare: /' "$tmp/unshare.log"
	[ -s "$tmp/systemd.log" ] && tail -n 60 "$tmp/systemd.log" | sed 's/^/# systemd: /'
	echo "Bail out! $2"
	exit 1
}

# ins CMD...: CMD inside systemd's namespaces and root (as its services see
# the host: systemctl talks to it through /run/systemd/private there)
# (in the build directory: nsenter --wd would open it outside that root)
ins() {
	nsenter --target "$spid" --mount --pid --root -- \
		env -i -C "$build" \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root SYSTEMD_PAGER= SYSTEMD_COLORS=0 "$@"
}

# run NAME CMD...: CMD (inside) must exit 0 within 120 s
run() {
	local name=$1 rc
	shift
	ins timeout 120 "$@" >"$out" 2>"$err" </dev/null
	rc=$?
	if [ $rc -eq 0 ]; then ok "$name"; else not_ok "$name" "$*: exit $rc"; fi
	return $rc
}

# prop UNIT PROPERTY: the value systemctl show gives
prop() { ins systemctl show -P "$2" "$1" 2>/dev/null; }

# expect NAME UNIT PROPERTY=VALUE...: each property has that value
expect() {
	local name=$1 unit=$2 kv v bad=
	shift 2
	local props=()
	for kv in "$@"; do props+=(-p "${kv%%=*}"); done
	ins systemctl show "${props[@]}" "$unit" >"$tmp/show" 2>&1
	for kv in "$@"; do
		v=$(sed -n "s/^${kv%%=*}=//p" "$tmp/show")
		[ "$v" = "${kv#*=}" ] || bad+="${kv%%=*}=$v (want ${kv#*=}); "
	done
	if [ -z "$bad" ]; then
		ok "$name"
	else
		ins journalctl --no-pager -n 30 -u "$unit" >"$out" 2>&1
		not_ok "$name" "$unit: $bad"
	fi
}

# shellcheck disable=SC2317 # called through the trap
cleanup() {
	if [ -n "$upid" ]; then
		kill -KILL "$upid" 2>/dev/null
		[ -n "$spid" ] && kill -KILL "$spid" 2>/dev/null
		wait "$upid" 2>/dev/null
	fi
	# never descend into the overlay of /
	umount -l "$root" 2>/dev/null
	rm -rf --one-file-system "$tmp"
}
trap cleanup EXIT

# ------------------------------------------------------------------
# systemd as PID 1 of a new PID and mount namespace
# ------------------------------------------------------------------
mkdir -p "$tmp/upper" "$tmp/work" "$root"
: >"$tmp/systemd.log"
# the overlay is mounted before the new namespace so that this script can
# put the build's files into it; systemd's own mounts stay in its namespace
mount -t overlay overlay \
	-o "lowerdir=/,upperdir=$tmp/upper,workdir=$tmp/work" "$root" ||
	bail overlay "cannot mount an overlay on /"

# make install, of the build, into the overlay (at the build's prefix):
# the daemons, libvhost and the units (the rest of `make install` only
# costs time under TCG)
if ! chroot "$root" /bin/sh -c "cd '$build' && make -s install-libLTLIBRARIES \
	install-sbinPROGRAMS install-systemdsystemunitDATA" \
	>"$out" 2>"$err" </dev/null; then
	bail install "make install in the overlay failed"
fi
chroot "$root" ldconfig
ok install
echo "# make install: ${SECONDS} s"

# the installed units must be the build's (the configured systemd/*.in)
unitdir=$(sed -n 's/^systemdsystemunitdir = //p' "$build/Makefile")
for u in vhost-user-blk@.service vhost-user-blk@.socket \
	vhost-user-net@.service vhost-user-net@.socket; do
	cmp -s "$build/systemd/$u" "$root$unitdir/$u" ||
		bail units "$root$unitdir/$u is not $build/systemd/$u"
done
blk_conf=$(sed -n 's/^EnvironmentFile=//p' "$build/systemd/vhost-user-blk@.service")
net_conf=$(sed -n 's/^EnvironmentFile=//p' "$build/systemd/vhost-user-net@.service")
blk_exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$build/systemd/vhost-user-blk@.service")
net_exe=$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$build/systemd/vhost-user-net@.service")
# the installed vhostctl (the build's is a libtool wrapper: a shell script,
# slow under TCG)
VHOSTCTL=${blk_exe%/*}/vhostctl
blk_conf=${blk_conf//%i/t1}
net_conf=${net_conf//%i/t1}
mkdir -p "$root${blk_conf%/*}" "$root${net_conf%/*}"
img=/var/lib/libvhost/vhost-user-blk/t1.img
echo "VHOST_USER_BLK_OPTS=\"--blk-file=$img\"" >"$root$blk_conf"
# the image, root's and 0600 as the unit's comment asks, in the unit's
# StateDirectory= (systemd would create it on the first start, but the
# image must be there before; 0700 as StateDirectoryMode=)
install -d -m 0700 "$root/var/lib/libvhost" "$root${img%/*}"
truncate -s 16M "$root$img"
chmod 0600 "$root$img"
tap=vhusd$$
echo "VHOST_USER_NET_OPTS=\"--tap=$tap --mac=52:54:00:5d:01:01\"" >"$root$net_conf"

# the address family probe: exit status bit 0 if socket(AF_INET) was
# refused, bit 1 if socket(AF_INET6) was (bash says "socket: ..." when
# socket() fails, "connect: ..." when only the connection does)
probe=/usr/local/lib/libvhost-test/af-probe
mkdir -p "$root${probe%/*}"
cat >"$root$probe" <<'PROBE'
#!/bin/bash
rc=0 bit=1
for a in 127.0.0.1 ::1; do
	e=$( { exec 3<>"/dev/tcp/$a/9"; } 2>&1 )
	case $e in *"socket: "*) rc=$((rc | bit)) ;; esac
	bit=2
done
exit $rc
PROBE
chmod 0755 "$root$probe"
# the device probe: exit 0 if /dev/net/tun opens, 1 if that is refused
# with EPERM (the device cgroup program), 2 on anything else
devprobe=${probe%/*}/dev-probe
cat >"$root$devprobe" <<'PROBE'
#!/bin/bash
e=$( { exec 3<>/dev/net/tun; } 2>&1 ) && exit 0
case $e in *"Operation not permitted"*) exit 1 ;; esac
exit 2
PROBE
chmod 0755 "$root$devprobe"
# probe_instance DAEMON INSTANCE PROBE [LINE]: INSTANCE of DAEMON's service
# runs PROBE in the daemon's place (a drop-in: LINE, if any, then
# ExecStart= replaced; every other line of the unit as shipped), with the
# empty options file the unit requires
probe_instance() {
	local c d=$root/etc/systemd/system/$1@$2.service.d
	c=$(sed -n 's/^EnvironmentFile=//p' "$build/systemd/$1@.service")
	c=$root${c//%i/$2}
	mkdir -p "${c%/*}" "$d"
	: >"$c"
	printf '[Service]\n%sExecStart=\nExecStart=%s\n' "${4:+$4
}" "$3" >"$d/probe.conf"
}
probe_instance vhost-user-net dev "$devprobe" DeviceAllow=
probe_instance vhost-user-blk af "$probe"
probe_instance vhost-user-net af "$probe"

# LeakSanitizer stops the world with ptrace(2), which SystemCallFilter=
# @system-service refuses (the daemon then exits 1): an ASan build runs the
# daemons without leak detection here (test-systemd-activate.sh checks the
# same daemons for leaks); every line of the units stays as shipped
if sed -n 's/^SANITIZER_LDFLAGS = //p' "$build/Makefile" | grep -q 'sanitize=address'; then
	for d in vhost-user-blk vhost-user-net; do
		mkdir -p "$root/etc/systemd/system/$d@.service.d"
		printf '[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n' \
			>"$root/etc/systemd/system/$d@.service.d/asan.conf"
	done
fi

# boot no further than sysinit.target (the sockets pull it in anyway): no
# timers, no services of the host's own
# shellcheck disable=SC2016 # expanded by that sh
unshare --pid --fork --mount --propagation private /bin/sh -ec '
r=$1
mount -t proc proc "$r/proc"
mount -t sysfs -o ro sysfs "$r/sys"
mount -t cgroup2 -o nsdelegate cgroup2 "$r/sys/fs/cgroup"
mount --rbind /dev "$r/dev"
# PID 1 logs to /dev/console: into the log file instead of the VM console
mount --bind "$2" "$r/dev/console"
mount -t tmpfs -o mode=755 tmpfs "$r/run"
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
# a build directory under one of those tmpfs (a clone in /tmp): bound back,
# the commands run in it
case $3 in
/tmp/?*|/run/?*) mkdir -p "$r$3" && mount --bind "$3" "$r$3" ;;
esac
# the overlay becomes the root (pivot_root, as a container manager does
# it, rather than a chroot): systemd, systemctl and the mount namespaces
# of the services all start from it
mkdir "$r/tmp/.oldroot"
cd "$r"
pivot_root . tmp/.oldroot
umount -l /tmp/.oldroot
rmdir /tmp/.oldroot
exec /usr/bin/env -i container=libvhost-vm TERM=dumb \
	/lib/systemd/systemd --unit=sysinit.target --log-target=console \
	--log-level=info --show-status=no
' sh "$root" "$tmp/systemd.log" "$build" >"$tmp/unshare.log" 2>&1 </dev/null &
upid=$!

for _ in $(seq 300); do
	spid=$(cat "/proc/$upid/task/$upid/children" 2>/dev/null)
	spid=${spid%% *}
	[ -n "$spid" ] && [ "$(cat "/proc/$spid/comm" 2>/dev/null)" = systemd ] && break
	spid=
	kill -0 "$upid" 2>/dev/null || break
	sleep 0.1
done
[ -n "$spid" ] || bail boot "systemd did not start"
# its private bus socket appears once the manager is ready for systemctl
for _ in $(seq 600); do
	ins test -S /run/systemd/private 2>/dev/null && break
	kill -0 "$spid" 2>/dev/null || bail boot "systemd exited"
	sleep 0.1
done
state=$(ins timeout 120 systemctl is-system-running --wait 2>&1)
echo "# systemd up: ${SECONDS} s"
case $state in
running) ok boot ;;
degraded)
	ins systemctl --failed --no-legend >"$out" 2>&1
	ok "boot # degraded: $(tr '\n' ' ' <"$out")"
	: >"$out" ;;
*) bail boot "systemd did not come up: is-system-running: $state" ;;
esac

# ------------------------------------------------------------------
# checks on a service's main process, from /proc inside systemd's namespace
# ------------------------------------------------------------------
# status_is NAME PID FIELD VALUE: /proc/PID/status has "FIELD:	VALUE"
# (read once per PID: each command inside costs time under TCG)
status_is() {
	local v
	[ -s "$tmp/status.$2" ] || ins cat "/proc/$2/status" >"$tmp/status.$2" 2>&1
	v=$(sed -n "s/^$3:[[:space:]]*//p" "$tmp/status.$2")
	if [ "$v" = "$4" ]; then
		ok "$1"
	else
		not_ok "$1" "$3 is \"$v\", want \"$4\"" \
			"$(grep -E '^(Cap|NoNew|Secc)' "$tmp/status.$2")"
	fi
}

# own_ns NAME PID NS: PID has an NS namespace of its own, not PID 1's
own_ns() {
	local a b
	a=$(ins readlink "/proc/$2/ns/$3")
	b=$(ins readlink "/proc/1/ns/$3")
	if [ -n "$a" ] && [ "$a" != "$b" ]; then
		ok "$1"
	else
		not_ok "$1" "$3 namespace \"$a\", systemd's \"$b\""
	fi
}

# writes PID FILE...: try to create (and remove) each FILE in PID's mount
# namespace and root, as the service sees its files; $tmp/writes.PID gets
# "FILE yes" or "FILE no: error" lines
writes() {
	local pid=$1
	shift
	# shellcheck disable=SC2016 # expanded by that sh
	ins nsenter --target "$pid" --mount --root -- env -C / /bin/sh -c '
	for f; do
		if e=$( (: >"$f") 2>&1); then
			rm -f "$f"
			echo "$f yes"
		else
			echo "$f no: $e"
		fi
	done' sh "$@" >"$tmp/writes.$pid" 2>&1
}

# opens NAME UNIT PID: DevicePolicy=closed + DeviceAllow=/dev/net/tun (a BPF
# program on the service's cgroup): a shell moved into that cgroup, in the
# service's mount namespace, opens /dev/net/tun but not /dev/loop-control
opens() {
	local cg
	cg=$(prop "$2" ControlGroup)
	# shellcheck disable=SC2016 # expanded by that sh
	ins /bin/sh -c 'echo $$ >"/sys/fs/cgroup$1/cgroup.procs" &&
		exec nsenter --target "$2" --mount --root -- env -C / /bin/sh -c "
			(exec 3<>/dev/net/tun) && echo tun yes
			(exec 3</dev/loop-control) || echo loop-control no"' \
		sh "$cg" "$3" >"$out" 2>"$err"
	if [ "$(cat "$out")" = "tun yes
loop-control no" ] && grep -q 'Operation not permitted' "$err"; then
		ok "$1"
	else
		not_ok "$1" "want /dev/net/tun opened, /dev/loop-control EPERM"
	fi
}

# writable NAME PID FILE yes|no: FILE could be created (writes above) or
# not; "no" must be EROFS
writable() {
	local got
	got=$(grep "^$3 " "$tmp/writes.$2")
	case "$4:$got" in
	"yes:$3 yes" | "no:$3 no: "*"Read-only file system"*) ok "$1" ;;
	*) not_ok "$1" "creating $3 in the service's namespace: \"${got#"$3" }\", want $4 (EROFS)" ;;
	esac
}

# exe_is NAME PID PATH: PID runs the file PATH (the same inode: the link
# itself names it from the service's mount namespace)
exe_is() {
	if ins test "/proc/$2/exe" -ef "$3"; then
		ok "$1"
	else
		not_ok "$1" "runs \"$(ins readlink "/proc/$2/exe")\", not $3"
	fi
}

# confined DAEMON PID EXE CAPS: what both services share: PID runs EXE with
# CAPS as its effective and bounding capabilities, no new privileges, a
# seccomp filter and a mount namespace of its own (DAEMON.exe, .capeff,
# .capbnd, .nonewprivs, .seccomp, .mntns)
confined() {
	exe_is "$1.exe" "$2" "$3"
	status_is "$1.capeff" "$2" CapEff "$4"
	status_is "$1.capbnd" "$2" CapBnd "$4"
	status_is "$1.nonewprivs" "$2" NoNewPrivs 1
	status_is "$1.seccomp" "$2" Seccomp 2
	own_ns "$1.mntns" "$2" mnt
}

# stopped NAME UNIT: systemctl stop; the main process exited with status 0
stopped() {
	if ! run "$1.stop" systemctl stop "$2"; then
		return 1
	fi
	expect "$1.exit" "$2" ActiveState=inactive Result=success \
		ExecMainCode=1 ExecMainStatus=0
}

# ------------------------------------------------------------------
# vhost-user-blk@t1
# ------------------------------------------------------------------
bsock=/run/libvhost/vhost-user-blk/t1.sock
bsvc=vhost-user-blk@t1.service
run blk.enable systemctl enable --now vhost-user-blk@t1.socket
expect blk.socket vhost-user-blk@t1.socket ActiveState=active SubState=listening
expect blk.socket.perm vhost-user-blk@t1.socket SocketMode=0660 SocketGroup=kvm
if [ "$(ins stat -c %A:%U:%G "$bsock")" = srw-rw----:root:kvm ]; then
	ok blk.socket.file
else
	not_ok blk.socket.file "$(ins ls -l "$bsock" 2>&1)"
fi
expect blk.idle "$bsvc" ActiveState=inactive
# the first connection starts the service: I/O through it, bytes checked
run blk.io "$BLK_IO" "$bsock" "$img" && sed 's/^/# /' "$out"
expect blk.active "$bsvc" ActiveState=active SubState=running
bpid=$(prop "$bsvc" MainPID)
if [ "${bpid:-0}" -gt 0 ]; then
	confined blk "$bpid" "$blk_exe" 0000000000000000
	own_ns blk.netns "$bpid" net
	# ProtectSystem=strict as the service sees its files: /, /usr and /etc
	# refuse a write, the state directory and its private /tmp take one
	writes "$bpid" /.vm-systemd-units /usr/.vm-systemd-units \
		/etc/.vm-systemd-units /var/lib/libvhost/vhost-user-blk/.probe \
		/tmp/.vm-systemd-units
	writable blk.root.ro "$bpid" /.vm-systemd-units no
	writable blk.usr.ro "$bpid" /usr/.vm-systemd-units no
	writable blk.etc.ro "$bpid" /etc/.vm-systemd-units no
	writable blk.state.rw "$bpid" /var/lib/libvhost/vhost-user-blk/.probe yes
	writable blk.tmp.rw "$bpid" /tmp/.vm-systemd-units yes
else
	not_ok blk.pid "$bsvc has no main process: no hardening to check"
fi
run blk.check "$VHOSTCTL" user check "$bsock"
run blk.io.again "$BLK_IO" "$bsock" "$img"
stopped blk "$bsvc"
# still listening: the next connection starts a new instance
expect blk.socket.after vhost-user-blk@t1.socket ActiveState=active
run blk.reactivate "$VHOSTCTL" user probe --type blk "$bsock"
expect blk.active.again "$bsvc" ActiveState=active
stopped blk.again "$bsvc"
run blk.socket.stop systemctl stop vhost-user-blk@t1.socket
if ins test -e "$bsock"; then
	not_ok blk.socket.removed "$bsock still there (RemoveOnStop=yes)"
else
	ok blk.socket.removed
fi

# ------------------------------------------------------------------
# vhost-user-net@t1 (--tap: CAP_NET_ADMIN and /dev/net/tun)
# ------------------------------------------------------------------
nsock=/run/libvhost/vhost-user-net/t1.sock
nsvc=vhost-user-net@t1.service
run net.start systemctl start vhost-user-net@t1.socket
expect net.socket vhost-user-net@t1.socket ActiveState=active SubState=listening
run net.probe "$VHOSTCTL" user probe --type net "$nsock"
expect net.active "$nsvc" ActiveState=active SubState=running
if ins ip -o link show "$tap" >"$out" 2>"$err" && grep -q ',UP' "$out"; then
	ok net.tap
else
	not_ok net.tap "no tap $tap up in the host's namespace"
fi
npid=$(prop "$nsvc" MainPID)
if [ "${npid:-0}" -gt 0 ]; then
	confined net "$npid" "$net_exe" 0000000000001000
	writes "$npid" /.vm-systemd-units /etc/.vm-systemd-units
	opens net.devices "$nsvc" "$npid"
	writable net.root.ro "$npid" /.vm-systemd-units no
	writable net.etc.ro "$npid" /etc/.vm-systemd-units no
else
	not_ok net.pid "$nsvc has no main process: no hardening to check"
fi
run net.check "$VHOSTCTL" user check "$nsock"
stopped net "$nsvc"
if ins ip link show "$tap" >/dev/null 2>&1; then
	not_ok net.tap.gone "$tap still there after the daemon stopped"
else
	ok net.tap.gone
fi
run net.socket.stop systemctl stop vhost-user-net@t1.socket

# ------------------------------------------------------------------
# RestrictAddressFamilies= and DevicePolicy= as shipped, through probe
# instances (a drop-in runs a probe in the service's place)
# ------------------------------------------------------------------
# families UNIT: the exit status the probe must give under UNIT
families() {
	local f want=0
	f=" $(sed -n 's/^RestrictAddressFamilies=//p' "$build/systemd/$1") "
	case $f in *" AF_INET "*) ;; *) want=$((want | 1)) ;; esac
	case $f in *" AF_INET6 "*) ;; *) want=$((want | 2)) ;; esac
	echo $want
}
# the probe itself tells an allowed family from a refused one
if ins "$probe" >"$out" 2>"$err"; then
	ok af.unconfined
else
	not_ok af.unconfined "the probe, unconfined: exit $?, want 0 (both allowed)"
fi
# probed DAEMON INSTANCE: start that instance, whose drop-in runs a probe
# instead of the daemon, and wait for the probe to exit
probed() {
	local u=$1@$2.service
	ins systemctl start "$u" >"$out" 2>"$err"
	for _ in $(seq 300); do
		case $(prop "$u" ActiveState) in
		active | activating | deactivating) sleep 0.1 ;;
		*) return ;;
		esac
	done
}
# unprobed DAEMON INSTANCE: its socket stopped, the failed state cleared
unprobed() {
	ins systemctl stop "$1@$2.socket" >/dev/null 2>&1
	ins systemctl reset-failed "$1@$2.service" >/dev/null 2>&1
}
for d in blk net; do
	probed "vhost-user-$d" af
	expect "$d.families" "vhost-user-$d@af.service" ExecMainCode=1 \
		ExecMainStatus="$(families "vhost-user-$d@.service")"
	unprobed "vhost-user-$d" af
done

# DevicePolicy=closed, with DeviceAllow= emptied by a drop-in: still no
# /dev/net/tun (the probe unconfined opens it)
if ins "$devprobe" >"$out" 2>"$err"; then
	ok dev.unconfined
else
	not_ok dev.unconfined "the device probe, unconfined: exit $?, want 0"
fi
probed vhost-user-net dev
expect net.devicepolicy vhost-user-net@dev.service ExecMainCode=1 \
	ExecMainStatus=1
unprobed vhost-user-net dev

# ------------------------------------------------------------------
# systemd itself shuts down
# ------------------------------------------------------------------
ins systemctl --no-block poweroff >/dev/null 2>&1
if timeout 60 tail --pid="$upid" -f /dev/null; then
	ok poweroff
	upid=
else
	not_ok poweroff "systemd still running 60 s after poweroff"
fi

echo "# total: ${SECONDS} s"
echo "1..$n"
[ $failed -eq 0 ] || { echo "# $failed of $n failed"; exit 1; }
exit 0
