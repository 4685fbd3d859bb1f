#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# vm-vu-blk-guest.sh - tools/vhost-user-blk with QEMU and a real guest.
#
# Boots the test VM (scripts/vm-run) with a vhost-user-blk-pci device whose
# back-end is our daemon.  The guest checks its serial and size, writes
# patterns at several offsets with O_DIRECT, reads them back, zeroes a range
# (BLKZEROOUT -> WRITE_ZEROES) and discards one (DISCARD), turns the write
# cache off and on through sysfs (CONFIG_WCE -> SET_CONFIG), printing a
# checksum of everything it wrote; the host compares each with the backing
# file.  Then, while the guest streams a large O_DIRECT write (eight
# writers at once), the daemon is stopped, and killed with SIGKILL only when its
# inflight region shows a request it took and has not completed (else it
# runs on and is probed again); started again on the same socket, it must
# resubmit that request (QEMU reconnects with chardev reconnect=1 and hands
# the inflight region back), and the write must complete with the right
# bytes on disk.
#
# Run from the build directory (the daemon is ./tools/vhost-user-blk, or
# $VUBLK_DAEMON; $VUBLK_QUEUES sets the queue count, default 1).
# VUBLK_IOMMU=1 puts the device behind a virtual IOMMU: q35 with
# intel-iommu (device-iotlb=on), the device with iommu_platform=on,ats=on
# behind a PCIe root port, the guest with intel_iommu=on:
# VIRTIO_F_ACCESS_PLATFORM is negotiated and every ring and buffer address
# the daemon sees is an IOVA it translates through QEMU's IOTLB updates and
# forgets on its invalidations (the guest checks the feature bit, the IOMMU
# group and that it enabled ATS on the device).
# VUBLK_PACKED=1 gives the device packed=on: VIRTIO_F_RING_PACKED is
# negotiated (the guest checks it) and the region has the packed layout;
# with VUBLK_IOMMU=1 too the packed ring goes through the IOTLB.
# Exit 0 pass, 1 fail, 77 skip (no QEMU).

set -u

HERE=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
VMRUN=${VMRUN:-$HERE/../scripts/vm-run}
DAEMON=${VUBLK_DAEMON:-./tools/vhost-user-blk}
MIB=$((1 << 20))
QUEUES=${VUBLK_QUEUES:-1} # virtqueues of the device (daemon and QEMU)
IOMMU=${VUBLK_IOMMU:-0}
PACKED=${VUBLK_PACKED:-0}
VMARGS=()
DEVOPTS=
if [ "$IOMMU" = 1 ]; then
	# The root port: QEMU before 8.1 passes a vhost back-end only the
	# device-IOTLB invalidations, which the guest sends only to a device
	# whose ATS it enabled, and virtio-pci on q35's root bus has no PCIe
	# capabilities, so no ATS.  There the back-end never hears of an
	# unmap, the guest hands the IOVA out again for another page and the
	# back-end reads the old one (seen: a descriptor of length 0, misses
	# at IOVAs that were guest kernel pointers).
	VMARGS=(--append intel_iommu=on
		--qemu-arg=-machine --qemu-arg=q35,kernel-irqchip=split
		--qemu-arg=-device
		--qemu-arg=intel-iommu,intremap=on,device-iotlb=on
		--qemu-arg=-device --qemu-arg=pcie-root-port,id=rp0,chassis=1)
	# modern-only: ACCESS_PLATFORM is a VERSION_1 feature
	DEVOPTS=,bus=rp0,disable-legacy=on,iommu_platform=on,ats=on
fi

[ "$PACKED" = 1 ] && DEVOPTS=$DEVOPTS,packed=on

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*"
	[ ! -f "${DIR:-/nonexistent}/daemon.log" ] || tail -n 20 "$DIR/daemon.log"
	exit 1
}

# only the QEMU binary may be missing (scripts/install-deps installs it)
[ -x "$VMRUN" ] || fail "no $VMRUN"
[ -x "$DAEMON" ] || fail "no $DAEMON (run from the build directory)"
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64"
command -v python3 >/dev/null || fail "no python3"
DAEMON=$(readlink -f "$DAEMON")

DIR=$(mktemp -d /tmp/vublk-vm.XXXXXX) || fail "mktemp"
IMG=$DIR/disk.img
SOCK=$DIR/blk.sock
OUT=$DIR/guest.out
DPID=
VPID=

cleanup() {
	[ -n "$VPID" ] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
	[ -n "$DPID" ] && kill -9 "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$DIR"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

start_daemon() {
	"$DAEMON" --blk-file "$IMG" --socket-path "$SOCK" \
		--serial vublk-vm-test --num-queues "$QUEUES" \
		>>"$DIR/daemon.log" 2>&1 &
	DPID=$!
	for _ in $(seq 100); do
		[ -S "$SOCK" ] && return 0
		sleep 0.05
	done
	cat "$DIR/daemon.log"
	fail "daemon did not listen"
}

host_sum() { # offset_mib len_mib
	dd if="$IMG" bs=1M skip="$1" count="$2" status=none | sha256sum | cut -d' ' -f1
}

# 96 MiB of random bytes: the guest must read exactly these
dd if=/dev/urandom of="$IMG" bs=1M count=96 status=none || fail "image"
SUM0=$(host_sum 0 8)
first_block() { # the first 64 KiB of the guest's big write, at 64 MiB
	dd if="$IMG" bs=64K skip=1024 count=1 status=none | sha256sum | cut -d' ' -f1
}
BLOCK0=$(first_block)
ZERO1=$(head -c $MIB /dev/zero | sha256sum | cut -d' ' -f1)

# The guest's half.  Lines starting with a keyword are read by the host.
read -r -d '' GUEST <<'EOF'
set -e
dev=/dev/vda
[ -b $dev ] || { echo "NODEV"; exit 3; }
echo "SERIAL $(cat /sys/block/vda/serial)"
# bit 33 of the negotiated features: VIRTIO_F_ACCESS_PLATFORM
echo "PLATFORM $(cut -c34 /sys/block/vda/device/features)"
echo "PACKED $(cut -c35 /sys/block/vda/device/features)"
[ -e /sys/block/vda/device/../iommu_group ] && echo "IOMMU-GROUP yes"
# the ATS extended capability (PCIe, ID 0x000f), Enable: bit 15 of Control
python3 - <<'PY'
import struct
cfg = open('/sys/block/vda/device/../config', 'rb').read()
off, ats = 0x100, 'none'
while off and len(cfg) >= off + 8:
    hdr = struct.unpack_from('<I', cfg, off)[0]
    if hdr & 0xffff == 0xf:
        ctl = struct.unpack_from('<H', cfg, off + 6)[0]
        ats = 'on' if ctl & 0x8000 else 'off'
        break
    off = hdr >> 20
print('ATS ' + ats)
PY
echo "SIZE $(blockdev --getsize64 $dev)"
echo "SUM0 $(dd if=$dev bs=1M count=8 iflag=direct status=none | sha256sum | cut -d' ' -f1)"
for off in 1 7 20 41; do
	head -c 3M /dev/urandom >/tmp/p$off
	dd if=/tmp/p$off of=$dev bs=1M seek=$off oflag=direct conv=fsync status=none
	dd if=$dev bs=1M skip=$off count=3 iflag=direct status=none | cmp - /tmp/p$off
	echo "SUM $off 3 $(sha256sum </tmp/p$off | cut -d' ' -f1)"
done
# 512-byte writes at an odd sector, through the page cache
head -c 3584 /dev/urandom >/tmp/small
dd if=/tmp/small of=$dev bs=512 seek=$((30 * 2048 + 3)) conv=fsync status=none
blkdiscard -z -o $((50 << 20)) -l $((1 << 20)) $dev && echo "ZERO 50 1"
blkdiscard -o $((52 << 20)) -l $((1 << 20)) $dev && echo "DISCARD 52 1"
dd if=$dev bs=512 skip=$((30 * 2048 + 3)) count=7 iflag=direct status=none | cmp - /tmp/small
echo "SMALL $((30 * 2048 + 3)) $(sha256sum </tmp/small | cut -d' ' -f1)"
# the write cache (CONFIG_WCE): off, a synced write, on again
echo "CACHE0 $(cat /sys/block/vda/cache_type)"
echo "write through" >/sys/block/vda/cache_type
echo "CACHE1 $(cat /sys/block/vda/cache_type)"
head -c 1M /dev/urandom >/tmp/wt
dd if=/tmp/wt of=$dev bs=1M seek=60 oflag=direct status=none
echo "SUM 60 1 $(sha256sum </tmp/wt | cut -d' ' -f1)"
echo "write back" >/sys/block/vda/cache_type
echo "CACHE2 $(cat /sys/block/vda/cache_type)"
# the crash phase: the host kills the daemon during this write, eight
# writers of 3 MiB each so that requests queue up in the daemon
head -c 24M /dev/urandom >/tmp/big
echo "KILLME"
t0=$(date +%s%N)
pids=
for i in 0 1 2 3 4 5 6 7; do
	dd if=/tmp/big of=$dev bs=4K skip=$((i * 768)) count=768 \
		seek=$((64 * 256 + i * 768)) oflag=direct conv=fsync,notrunc \
		status=none &
	pids="$pids $!"
done
for p in $pids; do wait $p; done
echo "BIGWRITE $((($(date +%s%N) - t0) / 1000000)) ms"
dd if=$dev bs=1M skip=64 count=24 iflag=direct status=none | cmp - /tmp/big
echo "SUM 64 24 $(sha256sum </tmp/big | cut -d' ' -f1)"
echo "GUEST-DONE"
EOF

# catch_inflight DPID VPID: stop the daemon at varying moments until its
# inflight region shows a request it took from the ring and has not
# completed, then SIGKILL it there and print how many (none: the guest,
# VPID, finished first; exit 1).  Only what a restart must resubmit counts.
# The region (vhost-user.rst, "Inflight I/O tracking"), per queue:
# features u64, version u16, desc_num u16, last_batch_head u16, used_idx
# u16, then 16-byte descriptor states, "inflight" first, next at 6.  The
# last batch may still be marked after its used entries were published (a
# restart settles it): the marked run linked from last_batch_head does not
# count (it may hold a head taken again: counting fewer is safe).  Packed
# rings (QueueRegionPacked): a 32-byte header (free_head, old_free_head,
# used_idx, old_used_idx at 12..19, the wrap counters at 20 and 21) and
# 32-byte states, "inflight" first; counted only between batches (no old_*
# value behind), and not the entry at free_head: a pop marks it before it
# moves free_head past it, and a restart walks it as free (the buffer is
# popped from the ring again).
catch_inflight() {
	python3 - "$1" "$2" "$QUEUES" "$PACKED" <<'PY'
import os, random, signal, sys, time
pid, vpid, queues = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
packed = sys.argv[4] == '1'

def state():
    with open('/proc/%d/stat' % pid) as f:
        return f.read().rsplit(')', 1)[1].split()[0]

def region():
    with open('/proc/%d/maps' % pid) as maps:
        for line in maps:
            if 'vhost-user-inflight' in line:
                return [int(x, 16) for x in line.split()[0].split('-')]
    return None

def taken(mem, a, b):
    mem.seek(a)
    buf = mem.read(b - a)
    stride, n = len(buf) // queues, 0
    for q in range(queues):
        r = buf[q * stride:(q + 1) * stride]
        num = int.from_bytes(r[10:12], 'little')
        if packed:
            if r[12:14] != r[14:16] or r[16:18] != r[18:20] or r[20] != r[21]:
                continue
            fh = int.from_bytes(r[12:14], 'little')
            n += sum(r[32 + 32 * i] == 1 and i != fh
                     for i in range(min(num, (len(r) - 32) // 32)))
            continue
        num = min(num, (len(r) - 16) // 16)
        h, batch = int.from_bytes(r[12:14], 'little'), set()
        while h < num and h not in batch and r[16 + 16 * h] == 1:
            batch.add(h)
            h = int.from_bytes(r[22 + 16 * h:24 + 16 * h], 'little')
        n += sum(r[16 + 16 * i] == 1 and i not in batch for i in range(num))
    return n

area = region()
if not area:
    print('no inflight region in the daemon', file=sys.stderr)
    sys.exit(1)
probes = 0
with open('/proc/%d/mem' % pid, 'rb', buffering=0) as mem:
    while True:
        try:
            os.kill(vpid, 0)
        except ProcessLookupError:
            print('0 %d' % probes)
            sys.exit(1)
        os.kill(pid, signal.SIGSTOP)
        while state() != 'T':
            time.sleep(0.0001)
        probes += 1
        n = taken(mem, *area)
        if n:
            os.kill(pid, signal.SIGKILL)
            print('%d %d' % (n, probes))
            sys.exit(0)
        os.kill(pid, signal.SIGCONT)
        time.sleep(random.random() * 0.002)
PY
}

start_daemon
"$VMRUN" --timeout 600 --memfd --mem 512M "${VMARGS[@]}" \
	--qemu-arg=-chardev --qemu-arg="socket,id=c0,path=$SOCK,reconnect=1" \
	--qemu-arg=-device --qemu-arg=vhost-user-blk-pci,chardev=c0,num-queues="$QUEUES$DEVOPTS" \
	-- sh -c "$GUEST" >"$OUT" 2>&1 &
VPID=$!

# the crash: once the guest's write reached the disk, stop the daemon until
# it is caught with requests in flight; kill it there, restart it
killed=0
while kill -0 "$VPID" 2>/dev/null; do
	if [ $killed = 0 ] && grep -q '^KILLME' "$OUT" &&
		[ "$(first_block)" != "$BLOCK0" ]; then
		read -r taken probes < <(catch_inflight "$DPID" "$VPID")
		[ "${taken:-0}" -gt 0 ] || break
		wait "$DPID" 2>/dev/null
		# what the disk held at the kill: the write is under way
		dd if="$IMG" of="$DIR/snap" bs=1M skip=64 count=24 status=none
		echo "daemon killed with $taken requests in flight (probe $probes); restarting"
		cp "$DIR/daemon.log" "$DIR/daemon.log.killed"
		sleep 0.5
		start_daemon
		killed=1
	fi
	sleep 0.05
done
wait "$VPID"
rc=$?
VPID=
cat "$OUT"
[ $rc = 0 ] || { cat "$DIR/daemon.log"; fail "guest exited $rc"; }
grep -q '^GUEST-DONE' "$OUT" || fail "guest did not finish"
[ $killed = 1 ] ||
	fail "the daemon was never caught with requests in flight (${probes:-0} probes)"

grep -q '^SERIAL vublk-vm-test$' "$OUT" || fail "serial"
if [ "$IOMMU" = 1 ]; then
	grep -q '^PLATFORM 1$' "$OUT" ||
		fail "VIRTIO_F_ACCESS_PLATFORM not negotiated behind the vIOMMU"
	grep -q '^IOMMU-GROUP yes$' "$OUT" ||
		fail "the device is not behind the guest's IOMMU"
	grep -q '^ATS on$' "$OUT" ||
		fail "the guest did not enable ATS: no IOTLB invalidation would reach the daemon"
else
	grep -q '^PLATFORM 0$' "$OUT" || fail "ACCESS_PLATFORM without a vIOMMU"
fi
grep -q "^PACKED $PACKED\$" "$OUT" || fail "VIRTIO_F_RING_PACKED is not $PACKED"
grep -q "^SIZE $((96 * MIB))\$" "$OUT" || fail "size"
grep -q "^SUM0 $SUM0\$" "$OUT" || fail "the guest read other bytes than the image's"
n=0
while read -r _ off len sum; do
	[ "$(host_sum "$off" "$len")" = "$sum" ] ||
		fail "$len MiB at $off MiB: the image differs from what the guest wrote"
	n=$((n + 1))
done < <(grep '^SUM ' "$OUT")
[ $n = 6 ] || fail "$n checksums, 6 expected"
# the guest's lines in the message: the log's tail may not reach them
cache=$(grep '^CACHE' "$OUT" | tr '\n' ';')
grep -q '^CACHE0 write back$' "$OUT" ||
	fail "the write cache did not start on (guest: $cache)"
grep -q '^CACHE1 write through$' "$OUT" ||
	fail "the guest could not turn the write cache off (guest: $cache)"
grep -q '^CACHE2 write back$' "$OUT" ||
	fail "the guest could not turn the write cache on (guest: $cache)"
grep -q 'write cache off: every write is synced$' "$DIR/daemon.log" &&
	grep -q 'write cache on' "$DIR/daemon.log" ||
	fail "the daemon did not see the cache mode changes (SET_CONFIG)"
read -r _ sec sum < <(grep '^SMALL ' "$OUT")
[ "$(dd if="$IMG" bs=512 skip="$sec" count=7 status=none | sha256sum | cut -d' ' -f1)" = "$sum" ] ||
	fail "512-byte writes at sector $sec"
grep -q '^ZERO 50 1' "$OUT" || fail "write zeroes"
[ "$(host_sum 50 1)" = "$ZERO1" ] || fail "write zeroes: range not zero"
grep -q '^DISCARD 52 1' "$OUT" || fail "discard"
# 64 KiB blocks the guest had written when the daemon died
dd if="$IMG" of="$DIR/final" bs=1M skip=64 count=24 status=none
same=0
for i in $(seq 0 383); do
	cmp -s -n 65536 -i $((i * 65536)) "$DIR/snap" "$DIR/final" && same=$((same + 1))
done
echo "at the kill $same of 384 64-KiB blocks of the guest's write were fully on disk"
# it had started (we waited for its first bytes) and was not over
cmp -s "$DIR/snap" "$DIR/final" &&
	fail "the kill did not land during the guest's write (it was over)"
# the restarted instance ran again what the killed one had taken
resub=$(tail -n +$(($(wc -l <"$DIR/daemon.log.killed") + 1)) "$DIR/daemon.log" |
	grep -o 'resubmitting [0-9]* inflight' | head -n 1 | grep -o '[0-9]*')
[ "${resub:-0}" -ge 1 ] ||
	fail "the restarted daemon resubmitted nothing ($taken requests were in flight at the kill)"
echo "the restarted daemon resubmitted $resub in-flight requests ($taken seen at the kill)"
echo "PASS: guest I/O (6 regions, 512-byte writes, write zeroes, discard, write cache off/on) and a daemon kill -9 with requests in flight, resubmitted"
exit 0
