#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Write the seed corpora of the fuzz targets: tests/fuzz/corpus/<target>/.

Every seed is a valid input a real peer could produce, so that fuzzing
starts past the first check of every path:

  fuzz-vring            a ring of each kind: direct, chained, indirect,
                        event idx, batch pops, wrapped indexes, two regions
  fuzz-vu-backend-msg   one session transcript per front-end request id
  fuzz-vu-backend       the same transcripts, in the socket target's format
  fuzz-vu-frontend-msg  a valid reply per request, a valid request per
                        back-end request id
  fuzz-vu-frontend      a back-end's whole side of a session, and each
                        back-end request

Run it from anywhere: ./tests/fuzz/gen-corpus.py [outdir].  The output only
depends on this file (no randomness), so the committed corpus can be
checked with a rerun and `git diff`.  A regression input found by a
campaign goes in by hand as corpus/<target>/regress-<what>.
"""
import os
import shutil
import struct
import sys

# ---------------------------------------------------------------------------
# vhost-user constants (vhost-user.rst; src/libvhost-vu.h)
# ---------------------------------------------------------------------------
REQ = dict(
    GET_FEATURES=1, SET_FEATURES=2, SET_OWNER=3, RESET_OWNER=4,
    SET_MEM_TABLE=5, SET_LOG_BASE=6, SET_LOG_FD=7, SET_VRING_NUM=8,
    SET_VRING_ADDR=9, SET_VRING_BASE=10, GET_VRING_BASE=11,
    SET_VRING_KICK=12, SET_VRING_CALL=13, SET_VRING_ERR=14,
    GET_PROTOCOL_FEATURES=15, SET_PROTOCOL_FEATURES=16, GET_QUEUE_NUM=17,
    SET_VRING_ENABLE=18, SEND_RARP=19, NET_SET_MTU=20,
    SET_BACKEND_REQ_FD=21, IOTLB_MSG=22, SET_VRING_ENDIAN=23,
    GET_CONFIG=24, SET_CONFIG=25, CREATE_CRYPTO_SESSION=26,
    CLOSE_CRYPTO_SESSION=27, POSTCOPY_ADVISE=28, POSTCOPY_LISTEN=29,
    POSTCOPY_END=30, GET_INFLIGHT_FD=31, SET_INFLIGHT_FD=32,
    GPU_SET_SOCKET=33, RESET_DEVICE=34, VRING_KICK=35,
    GET_MAX_MEM_SLOTS=36, ADD_MEM_REG=37, REM_MEM_REG=38, SET_STATUS=39,
    GET_STATUS=40, GET_SHARED_OBJECT=41, SET_DEVICE_STATE_FD=42,
    CHECK_DEVICE_STATE=43)
BREQ = dict(
    IOTLB_MSG=1, CONFIG_CHANGE_MSG=2, VRING_HOST_NOTIFIER_MSG=3,
    VRING_CALL=4, VRING_ERR=5, SHARED_OBJECT_ADD=6, SHARED_OBJECT_REMOVE=7,
    SHARED_OBJECT_LOOKUP=8)
PF = dict(
    MQ=0, LOG_SHMFD=1, RARP=2, REPLY_ACK=3, NET_MTU=4, BACKEND_REQ=5,
    CROSS_ENDIAN=6, CRYPTO_SESSION=7, PAGEFAULT=8, CONFIG=9,
    BACKEND_SEND_FD=10, HOST_NOTIFIER=11, INFLIGHT_SHMFD=12,
    RESET_DEVICE=13, INBAND_NOTIFICATIONS=14, CONFIGURE_MEM_SLOTS=15,
    STATUS=16, XEN_MMAP=17, SHARED_OBJECT=18, DEVICE_STATE=19)

VERSION = 0x1
F_REPLY = 0x4
F_NEED_REPLY = 0x8
NOFD = 0x100

F_PROTOCOL = 1 << 30
F_VERSION_1 = 1 << 32
F_EVENT_IDX = 1 << 29
F_INDIRECT = 1 << 28
F_LOG_ALL = 1 << 26
F_ACCESS_PLATFORM = 1 << 33

VRING_DESC_F_NEXT = 1
VRING_DESC_F_WRITE = 2
VRING_DESC_F_INDIRECT = 4


def pf(*names):
    v = 0
    for n in names:
        v |= 1 << PF[n]
    return v


def u16(v):
    return struct.pack('<H', v)


def u32(v):
    return struct.pack('<I', v)


def u64(v):
    return struct.pack('<Q', v)


def state(index, num):
    return u32(index) + u32(num)


def hdr(request, flags, size):
    return struct.pack('<III', request, flags, size)


# ---------------------------------------------------------------------------
# split rings (virtio 1.x, 2.7), little endian
# ---------------------------------------------------------------------------
def desc(addr, length, flags=0, nxt=0):
    return struct.pack('<QIHH', addr, length, flags, nxt)


def avail(ring, idx=None, used_event=0, flags=0):
    idx = len(ring) if idx is None else idx
    return u16(flags) + u16(idx & 0xffff) + b''.join(u16(r) for r in ring) \
        + u16(used_event)


class Guest:
    """Bytes of guest memory, written sparsely, with addresses from base."""

    def __init__(self, base=0):
        self.base = base
        self.writes = []  # (offset, bytes)

    def put(self, addr, data):
        self.writes.append((addr - self.base, bytes(data)))

    def image(self, size=None):
        end = max((o + len(d) for o, d in self.writes), default=0)
        buf = bytearray(max(end, size or 0))
        for o, d in self.writes:
            buf[o:o + len(d)] = d
        return bytes(buf)


def ring_kinds(base, num, desc_at, avail_at, bufs_at, indirect_at):
    """Guest images of one ring: (name, Guest) for each kind of chain."""
    out = []
    # direct: one device-readable and one device-writable buffer
    g = Guest(base)
    g.put(desc_at, desc(bufs_at, 64) +
          desc(bufs_at + 0x100, 64, VRING_DESC_F_WRITE))
    g.put(bufs_at, b'\x11' * 64)
    g.put(avail_at, avail([0, 1]))
    out.append(('direct', g))
    # chained: out, out, in (a block request's shape)
    g = Guest(base)
    g.put(desc_at, desc(bufs_at, 16, VRING_DESC_F_NEXT, 1) +
          desc(bufs_at + 0x40, 512, VRING_DESC_F_NEXT, 2) +
          desc(bufs_at + 0x300, 1, VRING_DESC_F_WRITE))
    g.put(avail_at, avail([0]))
    out.append(('chained', g))
    # indirect: one descriptor pointing at a table of three
    g = Guest(base)
    g.put(desc_at, desc(indirect_at, 48, VRING_DESC_F_INDIRECT))
    g.put(indirect_at, desc(bufs_at, 16, VRING_DESC_F_NEXT, 1) +
          desc(bufs_at + 0x40, 64, VRING_DESC_F_NEXT, 2) +
          desc(bufs_at + 0x100, 8, VRING_DESC_F_WRITE))
    g.put(avail_at, avail([0]))
    out.append(('indirect', g))
    # event idx: used_event asks for a notification after the second
    g = Guest(base)
    g.put(desc_at, desc(bufs_at, 32) + desc(bufs_at + 0x40, 32) +
          desc(bufs_at + 0x80, 32, VRING_DESC_F_WRITE))
    g.put(avail_at, avail([0, 1, 2], used_event=1))
    out.append(('event-idx', g))
    return out


# ---------------------------------------------------------------------------
# fuzz-vring
# ---------------------------------------------------------------------------
def vring_seeds():
    A = 0x10000  # A_GPA in fuzz-vring.c
    B = 0x20000
    seeds = {}
    num_exp = 3  # 8 entries
    num = 1 << num_exp
    desc_at, avail_at = A, A + 16 * num
    bufs_at, indirect_at = A + 0x2000, A + 0x1800
    for name, g in ring_kinds(A, num, desc_at, avail_at, bufs_at,
                              indirect_at):
        flags = 0
        if name == 'indirect':
            flags |= 1
        if name == 'event-idx':
            flags |= 2
        img = g.image()
        seeds['ring-' + name] = bytes([num_exp, flags]) + u16(0) + img
        # the same popped and pushed in batches (vh_devq_pop_batch)
        seeds['ring-' + name + '-batch'] = \
            bytes([num_exp, flags | 16]) + u16(0) + img
    # indexes about to wrap: base 0xfffe, avail idx 0x0001 (3 entries)
    g = Guest(A)
    g.put(desc_at, desc(bufs_at, 8) + desc(bufs_at + 8, 8) +
          desc(bufs_at + 16, 8, VRING_DESC_F_WRITE))
    g.put(avail_at, avail([0, 1, 2, 0, 0, 0, 0, 0], idx=0x0001))
    seeds['ring-wrap'] = bytes([num_exp, 0]) + u16(0xfffe) + g.image()
    # a buffer in region B, right after A, and one spanning both
    g = Guest(A)
    g.put(desc_at, desc(B + 0x10, 64) +
          desc(B - 32, 64, VRING_DESC_F_WRITE))
    g.put(avail_at, avail([0, 1]))
    seeds['ring-two-regions'] = bytes([num_exp, 8]) + u16(0) + g.image()
    # a long chain with a 3-entry iovec limit (-ENOBUFS handling)
    g = Guest(A)
    g.put(desc_at, b''.join(desc(bufs_at + 0x20 * i, 16,
                                 VRING_DESC_F_NEXT, i + 1)
                            for i in range(5)) + desc(bufs_at + 0xa0, 16))
    g.put(avail_at, avail([0]))
    seeds['ring-iov-limit'] = bytes([num_exp, 4]) + u16(0) + g.image()
    # packed, with an inflight region (QueueRegionPacked, the input's last
    # 32 + 32 * num bytes): a one-descriptor chain (entry 0) and a
    # two-descriptor one (entries 1, 2) in flight, entries 3.. free
    def pstate(inflight, nxt, last, num_, counter, bid, flags, ln, addr):
        return struct.pack('<BBHHHQHHIQ', inflight, 0, nxt, last, num_,
                           counter, bid, flags, ln, addr)
    hdr = struct.pack('<QHHHHHHBB10x', 0, 1, num, 3, 3, 2, 2, 1, 1)
    states = [pstate(1, 1, 0, 1, 1, 0, VRING_DESC_F_WRITE, 16, bufs_at),
              pstate(1, 2, 2, 2, 2, 0, VRING_DESC_F_NEXT, 16,
                     bufs_at + 0x100),
              pstate(0, 3, 0, 0, 0, 1, VRING_DESC_F_WRITE, 32,
                     bufs_at + 0x200)]
    states += [pstate(0, i + 1, 0, 0, 0, 0, 0, 0, 0)
               for i in range(3, num)]
    seeds['ring-packed-inflight'] = bytes([num_exp, 32 | 64]) + \
        u16(0x8000) + hdr + b''.join(states)
    # packed, 5 entries (bit 7 of byte 0: any size), every descriptor
    # available (AVAIL set, USED clear: wrap counter 1), the last two a
    # chain: the pops wrap the ring
    g = Guest(A)
    avail_f = 1 << 7
    g.put(desc_at, b''.join(
        struct.pack('<QIHH', bufs_at + 0x40 * i, 32, i,
                    avail_f | (VRING_DESC_F_WRITE if i % 2 else 0) |
                    (VRING_DESC_F_NEXT if i == 3 else 0))
        for i in range(5)))
    seeds['ring-packed-5'] = bytes([0x80 | 4, 32]) + u16(0x8000) + \
        g.image()
    return seeds


# ---------------------------------------------------------------------------
# back-end transcripts (what a front-end sends)
# ---------------------------------------------------------------------------
# fd kinds of fuzz-vu-backend-msg
EVENTFD, GUEST_FD, AUX_FD, CHAN_FD = 0, 1, 2, 3
GUEST_SIZE = 0x10000
AUX_SIZE = 0x4000
UVA = 0x7f0000000000  # the front-end's address of guest memory
IOVA = 0x100000  # its I/O virtual address, with ACCESS_PLATFORM

# the device of fuzz-vu-backend*.c
DEV_FEATURES = F_VERSION_1 | F_EVENT_IDX | F_INDIRECT | F_LOG_ALL
IMPLEMENTED = pf('MQ', 'LOG_SHMFD', 'REPLY_ACK', 'BACKEND_REQ',
                 'BACKEND_SEND_FD', 'HOST_NOTIFIER', 'INFLIGHT_SHMFD',
                 'RESET_DEVICE', 'INBAND_NOTIFICATIONS',
                 'CONFIGURE_MEM_SLOTS', 'STATUS', 'SHARED_OBJECT', 'RARP',
                 'NET_MTU', 'CONFIG', 'DEVICE_STATE')
PROTO = IMPLEMENTED & ~pf('INBAND_NOTIFICATIONS')
NQ = 4


class Msg:
    def __init__(self, req, payload=b'', fds=(), flags=VERSION):
        self.req = req
        self.payload = payload
        self.fds = list(fds)
        self.flags = flags


class GuestWrite:
    def __init__(self, off, data):
        self.off = off
        self.data = data


class Kick:
    def __init__(self, i):
        self.i = i


class BackendReq:
    """Queue a front-end reply, then make the back-end ask (op & 1: lookup,
    else config change)."""

    def __init__(self, lookup, reply_req, reply_flags, reply_payload,
                 with_fd=False):
        self.lookup = lookup
        self.reply_req = reply_req
        self.reply_flags = reply_flags
        self.reply_payload = reply_payload
        self.with_fd = with_fd


def negotiate(proto=PROTO, features=DEV_FEATURES | F_PROTOCOL):
    return [Msg(REQ['GET_FEATURES']),
            Msg(REQ['GET_PROTOCOL_FEATURES']),
            Msg(REQ['SET_PROTOCOL_FEATURES'], u64(proto)),
            Msg(REQ['SET_OWNER']),
            Msg(REQ['SET_FEATURES'], u64(features))]


def region(gpa, size, uva, off):
    return u64(gpa) + u64(size) + u64(uva) + u64(off)


def mem_table():
    return [Msg(REQ['SET_MEM_TABLE'],
                u32(1) + u32(0) + region(0, GUEST_SIZE, UVA, 0),
                [GUEST_FD])]


# ring layout in guest memory (all in the first 4 KiB, so that the socket
# target's memfd content covers it): desc, indirect, avail, used, buffers
RING_NUM = 8
DESC_AT, INDIRECT_AT, AVAIL_AT, USED_AT, BUFS_AT = \
    0x000, 0x100, 0x200, 0x300, 0x400


def ring_setup(idx=0, guest=None, base=UVA):
    """base: the front-end's address of guest memory, an IOVA with
    ACCESS_PLATFORM."""
    ops = []
    if guest is not None:
        for off, data in guest.writes:
            ops.append(GuestWrite(off, data))
    addr = u32(idx) + u32(0) + u64(base + DESC_AT) + u64(base + USED_AT) + \
        u64(base + AVAIL_AT) + u64(0)
    ops += [Msg(REQ['SET_VRING_NUM'], state(idx, RING_NUM)),
            Msg(REQ['SET_VRING_ADDR'], addr),
            Msg(REQ['SET_VRING_BASE'], state(idx, 0)),
            Msg(REQ['SET_VRING_CALL'], u64(idx), [EVENTFD]),
            Msg(REQ['SET_VRING_KICK'], u64(idx), [EVENTFD]),
            Msg(REQ['SET_VRING_ENABLE'], state(idx, 1))]
    return ops


def asked(m):
    """The same message with NEED_REPLY (REPLY_ACK is negotiated)."""
    m.flags |= F_NEED_REPLY
    return m


def inflight_size(queue_size, nq):
    q = (16 + 16 * queue_size + 63) & ~63
    return q * nq


def backend_transcripts():
    R = REQ
    t = {}
    t['GET_FEATURES'] = [Msg(R['GET_FEATURES'])]
    t['SET_FEATURES'] = [Msg(R['GET_FEATURES']),
                         Msg(R['SET_FEATURES'], u64(DEV_FEATURES))]
    t['GET_PROTOCOL_FEATURES'] = [Msg(R['GET_FEATURES']),
                                  Msg(R['GET_PROTOCOL_FEATURES'])]
    t['SET_PROTOCOL_FEATURES'] = negotiate()[:3]
    t['SET_OWNER'] = negotiate()[:3] + [asked(Msg(R['SET_OWNER']))]
    t['RESET_OWNER'] = negotiate() + ring_setup() + \
        [asked(Msg(R['RESET_OWNER']))]
    t['SET_MEM_TABLE'] = negotiate() + [asked(mem_table()[0])]
    t['SET_LOG_BASE'] = negotiate() + mem_table() + \
        [Msg(R['SET_LOG_BASE'], u64(0x1000) + u64(0), [AUX_FD])]
    t['SET_LOG_FD'] = negotiate() + \
        [asked(Msg(R['SET_LOG_FD'], b'', [EVENTFD]))]
    t['SET_VRING_NUM'] = negotiate() + \
        [asked(Msg(R['SET_VRING_NUM'], state(1, 256)))]
    t['SET_VRING_ADDR'] = negotiate() + mem_table() + ring_setup()[:1] + \
        [asked(ring_setup()[1])]
    t['SET_VRING_BASE'] = negotiate() + \
        [asked(Msg(R['SET_VRING_BASE'], state(2, 0x1234)))]
    t['SET_VRING_KICK'] = negotiate() + \
        [asked(Msg(R['SET_VRING_KICK'], u64(1), [EVENTFD]))]
    t['SET_VRING_KICK-nofd'] = negotiate() + \
        [asked(Msg(R['SET_VRING_KICK'], u64(1 | NOFD)))]
    t['SET_VRING_CALL'] = negotiate() + \
        [asked(Msg(R['SET_VRING_CALL'], u64(3), [EVENTFD]))]
    t['SET_VRING_ERR'] = negotiate() + \
        [asked(Msg(R['SET_VRING_ERR'], u64(0), [EVENTFD]))]
    t['GET_QUEUE_NUM'] = negotiate() + [Msg(R['GET_QUEUE_NUM'])]
    t['SET_VRING_ENABLE'] = negotiate() + \
        [asked(Msg(R['SET_VRING_ENABLE'], state(3, 1)))]
    t['SEND_RARP'] = negotiate() + \
        [asked(Msg(R['SEND_RARP'], bytes([0x52, 0x54, 0, 0x12, 0x34, 0x56,
                                          0, 0])))]
    t['NET_SET_MTU'] = negotiate() + \
        [asked(Msg(R['NET_SET_MTU'], u64(1500)))]
    # the channel, then a back-end request answered with an ack
    t['SET_BACKEND_REQ_FD'] = negotiate() + \
        [asked(Msg(R['SET_BACKEND_REQ_FD'], b'', [CHAN_FD])),
         BackendReq(False, BREQ['CONFIG_CHANGE_MSG'], VERSION | F_REPLY,
                    u64(0))]
    t['SET_BACKEND_REQ_FD-lookup'] = negotiate() + \
        [Msg(R['SET_BACKEND_REQ_FD'], b'', [CHAN_FD]),
         BackendReq(True, BREQ['SHARED_OBJECT_LOOKUP'], VERSION | F_REPLY,
                    u64(0), with_fd=True)]
    # never offered: refused with an error ack, the connection stays
    # ACCESS_PLATFORM: rings and buffers at IOVAs, translated through
    # IOTLB updates ("IOMMU support"); misses go on the channel
    iommu = negotiate(features=DEV_FEATURES | F_PROTOCOL |
                      F_ACCESS_PLATFORM) + \
        [Msg(R['SET_BACKEND_REQ_FD'], b'', [CHAN_FD])] + mem_table()

    def iotlb(iova, size, uaddr, perm, typ):
        return Msg(R['IOTLB_MSG'], u64(iova) + u64(size) + u64(uaddr) +
                   bytes([perm, typ]) + bytes(6))
    update = iotlb(IOVA, GUEST_SIZE, UVA, 3, 2)
    t['IOTLB_MSG'] = iommu + [update]
    t['IOTLB_MSG-invalidate'] = iommu + [update,
                                         iotlb(IOVA, GUEST_SIZE, 0, 0, 3)]
    g0 = ring_kinds(0, RING_NUM, DESC_AT, AVAIL_AT, BUFS_AT,
                    INDIRECT_AT)[2][1]
    ring_iova = Guest(0)
    for off, data in g0.writes:
        # the indirect table and the buffers at IOVAs too
        if off == DESC_AT:
            data = desc(IOVA + INDIRECT_AT, 48, VRING_DESC_F_INDIRECT)
        if off == INDIRECT_AT:
            data = desc(IOVA + BUFS_AT, 16, VRING_DESC_F_NEXT, 1) + \
                desc(IOVA + BUFS_AT + 0x40, 64, VRING_DESC_F_NEXT, 2) + \
                desc(IOVA + BUFS_AT + 0x100, 8, VRING_DESC_F_WRITE)
        ring_iova.put(off, data)
    t['ring-iova'] = iommu + [update] + \
        ring_setup(0, ring_iova, IOVA) + [Kick(1)]
    # the ring before the update: a miss, then the update, then a kick
    t['ring-iova-miss'] = iommu + ring_setup(0, ring_iova, IOVA) + \
        [Kick(1), update, Kick(1)]
    t['SET_VRING_ENDIAN'] = negotiate() + \
        [asked(Msg(R['SET_VRING_ENDIAN'], state(0, 0)))]
    t['GET_CONFIG'] = negotiate() + \
        [Msg(R['GET_CONFIG'], u32(0) + u32(64) + u32(0) + bytes(64))]
    t['SET_CONFIG'] = negotiate() + \
        [asked(Msg(R['SET_CONFIG'], u32(4) + u32(4) + u32(1) + b'abcd'))]
    t['CREATE_CRYPTO_SESSION'] = negotiate() + \
        [asked(Msg(R['CREATE_CRYPTO_SESSION'], u64(0) + bytes(56)))]
    t['CLOSE_CRYPTO_SESSION'] = negotiate() + \
        [asked(Msg(R['CLOSE_CRYPTO_SESSION'], u64(1)))]
    t['POSTCOPY_ADVISE'] = negotiate() + \
        [asked(Msg(R['POSTCOPY_ADVISE']))]
    t['POSTCOPY_LISTEN'] = negotiate() + [asked(Msg(R['POSTCOPY_LISTEN']))]
    t['POSTCOPY_END'] = negotiate() + [asked(Msg(R['POSTCOPY_END']))]
    t['GET_INFLIGHT_FD'] = negotiate() + \
        [Msg(R['GET_INFLIGHT_FD'], u64(0) + u64(0) + u16(NQ) +
             u16(RING_NUM) + u32(0))]
    t['SET_INFLIGHT_FD'] = negotiate() + \
        [asked(Msg(R['SET_INFLIGHT_FD'],
                   u64(inflight_size(RING_NUM, NQ)) + u64(0) + u16(NQ) +
                   u16(RING_NUM) + u32(0), [AUX_FD]))] + \
        mem_table() + ring_setup()
    t['GPU_SET_SOCKET'] = negotiate() + \
        [asked(Msg(R['GPU_SET_SOCKET'], b'', [CHAN_FD]))]
    t['RESET_DEVICE'] = negotiate() + mem_table() + ring_setup() + \
        [asked(Msg(R['RESET_DEVICE']))]
    t['GET_MAX_MEM_SLOTS'] = negotiate() + [Msg(R['GET_MAX_MEM_SLOTS'])]
    single = u64(0) + region(0, GUEST_SIZE, UVA, 0)
    t['ADD_MEM_REG'] = negotiate() + \
        [asked(Msg(R['ADD_MEM_REG'], single, [GUEST_FD]))]
    t['REM_MEM_REG'] = negotiate() + \
        [Msg(R['ADD_MEM_REG'], single, [GUEST_FD]),
         asked(Msg(R['REM_MEM_REG'], single))]
    t['SET_STATUS'] = negotiate() + [asked(Msg(R['SET_STATUS'], u64(0xf)))]
    t['GET_STATUS'] = negotiate() + [Msg(R['SET_STATUS'], u64(0xb)),
                                     Msg(R['GET_STATUS'])]
    t['GET_SHARED_OBJECT'] = negotiate() + \
        [Msg(R['GET_SHARED_OBJECT'], bytes(range(2, 18)))]
    t['SET_DEVICE_STATE_FD'] = negotiate() + \
        [Msg(R['SET_DEVICE_STATE_FD'], u32(0) + u32(0), [EVENTFD])]
    t['CHECK_DEVICE_STATE'] = negotiate() + [Msg(R['CHECK_DEVICE_STATE'])]

    # rings that carry buffers, each kind, kicked through the eventfd
    # (the kick fd is this input's second eventfd) and stopped
    for name, g in ring_kinds(0, RING_NUM, DESC_AT, AVAIL_AT, BUFS_AT,
                              INDIRECT_AT):
        t['ring-' + name] = negotiate() + mem_table() + \
            ring_setup(0, g) + [Kick(1), Msg(R['GET_VRING_BASE'],
                                             state(0, 0))]
    g = ring_kinds(0, RING_NUM, DESC_AT, AVAIL_AT, BUFS_AT, INDIRECT_AT)[1][1]
    # in-band notifications: VRING_KICK instead of the eventfd
    inband = PROTO | pf('INBAND_NOTIFICATIONS')
    t['VRING_KICK'] = negotiate(inband) + mem_table() + \
        [Msg(R['SET_BACKEND_REQ_FD'], b'', [CHAN_FD])] + ring_setup(0, g) + \
        [asked(Msg(R['VRING_KICK'], state(0, 0)))]
    t['GET_VRING_BASE'] = negotiate() + mem_table() + ring_setup(0, g) + \
        [Kick(1), Msg(R['GET_VRING_BASE'], state(0, 0))]
    # a ring whose used ring is logged (LOG_ALL + SET_LOG_BASE)
    t['ring-logged'] = negotiate(features=DEV_FEATURES | F_PROTOCOL) + \
        mem_table() + \
        [Msg(R['SET_LOG_BASE'], u64(0x1000) + u64(0), [AUX_FD])] + \
        ring_setup(0, g) + [Kick(1)]
    # no protocol features at all: rings start enabled
    t['legacy'] = [Msg(R['GET_FEATURES']),
                   Msg(R['SET_FEATURES'], u64(DEV_FEATURES))] + \
        mem_table() + ring_setup(0, g)[:-1] + [Kick(1)]
    return t


def breq_reply_id(req):
    """A byte with bit 4 set that the targets map to back-end request req
    (rreq & 0x10 ? rreq % 9 : default)."""
    for b in range(0x10, 0x100):
        if b & 0x10 and b % 9 == req:
            return b
    raise ValueError(req)


def enc_backend_msg(ops):
    """fuzz-vu-backend-msg"""
    out = bytearray()
    for o in ops:
        if isinstance(o, Msg):
            assert len(o.fds) <= 7
            out += bytes([len(o.fds), o.req, o.flags]) + u16(len(o.payload))
            out += bytes(o.fds) + o.payload
        elif isinstance(o, GuestWrite):
            for i in range(0, len(o.data), 256):
                chunk = o.data[i:i + 256]
                out += bytes([0x80]) + u16(o.off + i) + \
                    bytes([len(chunk) - 1]) + chunk
        elif isinstance(o, Kick):
            out += bytes([0xc0 | o.i])
        else:
            op = 0xe0 | (1 if o.lookup else 0) | (2 if o.with_fd else 0)
            out += bytes([op, breq_reply_id(o.reply_req), o.reply_flags,
                          len(o.reply_payload)]) + o.reply_payload
    return bytes(out)


def enc_backend_sock(ops):
    """fuzz-vu-backend: fds come from a stash of memfds (op 0x40) or are
    eventfds; guest memory is the memfd's initial content (4 KiB)."""
    out = bytearray()
    guest = Guest(0)
    for o in ops:
        if isinstance(o, GuestWrite):
            guest.put(o.off, o.data)
    img = guest.image()[:4096]
    for o in ops:
        if isinstance(o, Msg):
            # push memfds in reverse: the stash is popped from its top
            for k in reversed(o.fds):
                if k == GUEST_FD:
                    out += bytes([0x40]) + u16(GUEST_SIZE // 256) + \
                        u16(len(img)) + img
                elif k == AUX_FD:
                    out += bytes([0x40]) + u16(AUX_SIZE // 256) + u16(0)
            flags = o.flags & (0x3 | F_NEED_REPLY)
            out += bytes([len(o.fds), o.req % 48, flags]) + \
                u16(len(o.payload)) + o.payload
        elif isinstance(o, BackendReq):
            op = 0x80 | (1 if o.lookup else 0) | (2 if o.with_fd else 0)
            out += bytes([op, breq_reply_id(o.reply_req), o.reply_flags,
                          len(o.reply_payload)]) + o.reply_payload
        # kicks: the socket target has no eventfd to write
    return bytes(out)


# ---------------------------------------------------------------------------
# front-end side (what a back-end sends)
# ---------------------------------------------------------------------------
def reply(req, payload=b'', flags=VERSION | F_REPLY):
    return (req, flags, payload)


def frontend_msg_seeds():
    """fuzz-vu-frontend-msg: features, protocol features, cfg, rings,
    records."""
    R = REQ
    feats = DEV_FEATURES | F_PROTOCOL
    proto = IMPLEMENTED | pf('CRYPTO_SESSION', 'PAGEFAULT')
    # callbacks set, two rings set up
    head = u64(feats) + u64(proto) + bytes([1, 2])
    seeds = {}

    def rec_reply(asked_req, req, payload, flags=VERSION | F_REPLY, fds=()):
        return bytes([len(fds), asked_req, req, flags]) + \
            u16(len(payload)) + bytes(fds) + payload

    def rec_breq(req, payload, flags=VERSION, fds=()):
        return bytes([0x80 | len(fds), req, flags]) + \
            u16(len(payload)) + bytes(fds) + payload

    replies = {
        'GET_FEATURES': u64(feats),
        'GET_PROTOCOL_FEATURES': u64(proto),
        'GET_QUEUE_NUM': u64(2),
        'GET_MAX_MEM_SLOTS': u64(32),
        'GET_VRING_BASE': state(0, 7),
        'GET_CONFIG': u32(0) + u32(16) + u32(0) + bytes(range(16)),
        'GET_STATUS': u64(0xf),
        'CHECK_DEVICE_STATE': u64(0),
        'POSTCOPY_END': u64(0),
        'SET_LOG_BASE': u64(0),
        'IOTLB_MSG': u64(0),
        'CREATE_CRYPTO_SESSION': u64(1) + bytes(8),
    }
    for name, payload in replies.items():
        seeds['reply-' + name] = head + rec_reply(R[name], R[name], payload)
    # replies that carry an fd (kind 0 eventfd, 1 memfd, 3 pipe)
    seeds['reply-GET_INFLIGHT_FD'] = head + rec_reply(
        R['GET_INFLIGHT_FD'], R['GET_INFLIGHT_FD'],
        u64(0x1000) + u64(0) + u16(2) + u16(256) + u32(0), fds=[1])
    seeds['reply-SET_DEVICE_STATE_FD'] = head + rec_reply(
        R['SET_DEVICE_STATE_FD'], R['SET_DEVICE_STATE_FD'], u64(0),
        fds=[3])
    seeds['reply-GET_SHARED_OBJECT'] = head + rec_reply(
        R['GET_SHARED_OBJECT'], R['GET_SHARED_OBJECT'], u64(0), fds=[1])
    seeds['reply-POSTCOPY_ADVISE'] = head + rec_reply(
        R['POSTCOPY_ADVISE'], R['POSTCOPY_ADVISE'], b'', fds=[0])
    # a reply-ack for every request answered only when asked
    acks = bytearray(head)
    for name in ('SET_FEATURES', 'SET_OWNER', 'SET_MEM_TABLE',
                 'SET_VRING_NUM', 'SET_VRING_ADDR', 'SET_VRING_KICK',
                 'SET_PROTOCOL_FEATURES', 'SET_VRING_ENABLE',
                 'SET_BACKEND_REQ_FD', 'SET_CONFIG', 'SET_INFLIGHT_FD',
                 'RESET_DEVICE', 'ADD_MEM_REG', 'REM_MEM_REG',
                 'SET_STATUS'):
        acks += rec_reply(R[name], R[name], u64(0))
    acks += rec_reply(R['SET_VRING_CALL'], R['SET_VRING_CALL'], u64(22))
    seeds['reply-acks'] = bytes(acks)
    # back-end requests, each valid, asking for an ack
    B = BREQ
    nr = VERSION | F_NEED_REPLY
    breqs = {
        'IOTLB_MSG': (u64(0x1000) + u64(0x1000) + u64(UVA) +
                      bytes([3, 1]) + bytes(6), ()),
        'CONFIG_CHANGE_MSG': (b'', ()),
        'VRING_HOST_NOTIFIER_MSG': (u64(1) + u64(0x1000) + u64(0), (1,)),
        'VRING_CALL': (state(1, 0), ()),
        'VRING_ERR': (state(0, 0), ()),
        'SHARED_OBJECT_ADD': (bytes(range(16)), ()),
        'SHARED_OBJECT_REMOVE': (bytes(range(16)), ()),
        'SHARED_OBJECT_LOOKUP': (bytes(range(16)), ()),
    }
    bfeats = feats | F_ACCESS_PLATFORM
    bhead = u64(bfeats) + u64(proto) + bytes([1, 2])
    for name, (payload, fds) in breqs.items():
        seeds['backend-' + name] = bhead + \
            rec_breq(B[name], payload, nr, fds)
    # host notifier removal (NOFD), and the callbacks failing
    seeds['backend-VRING_HOST_NOTIFIER_MSG-nofd'] = bhead + \
        rec_breq(B['VRING_HOST_NOTIFIER_MSG'], u64(1 | NOFD) + u64(0) +
                 u64(0), nr)
    seeds['backend-failing'] = u64(bfeats) + u64(proto) + bytes([3, 2]) + \
        b''.join(rec_breq(B[n], p, nr, f) for n, (p, f) in breqs.items())
    return seeds


def frontend_sock_seeds():
    """fuzz-vu-frontend: byte 0 fds (low: reply stream, high: back-end
    stream), length of the reply stream, replies, back-end requests.  The
    target's calls in order (tests/fuzz/fuzz-vu-frontend.c); REPLY_ACK is
    not offered, so only requests that always have a reply read one."""
    R = REQ
    feats = DEV_FEATURES | F_PROTOCOL | F_ACCESS_PLATFORM
    proto = (IMPLEMENTED | pf('PAGEFAULT', 'CRYPTO_SESSION')) & \
        ~pf('REPLY_ACK', 'INBAND_NOTIFICATIONS')
    stream = [
        reply(R['GET_FEATURES'], u64(feats)),
        reply(R['GET_PROTOCOL_FEATURES'], u64(proto)),
        reply(R['GET_QUEUE_NUM'], u64(2)),
        reply(R['GET_MAX_MEM_SLOTS'], u64(32)),
        reply(R['GET_CONFIG'], u32(0) + u32(64) + u32(0) + bytes(64)),
        reply(R['GET_VRING_BASE'], state(0, 5)),
        reply(R['GET_INFLIGHT_FD'], u64(0) + u64(0) + u16(1) + u16(256) +
              u32(0)),
        reply(R['SET_DEVICE_STATE_FD'], u64(NOFD)),
        reply(R['CHECK_DEVICE_STATE'], u64(0)),
        reply(R['GET_SHARED_OBJECT'], u64(1)),
        reply(R['POSTCOPY_ADVISE'], b''),
        reply(R['POSTCOPY_END'], u64(0)),
        reply(R['CREATE_CRYPTO_SESSION'], u64(7) + bytes(56)),
        reply(R['GET_STATUS'], u64(0xf)),
        reply(R['SET_LOG_BASE'], u64(0)),
        reply(R['IOTLB_MSG'], u64(0)),
    ]
    rs = b''.join(hdr(r, f, len(p)) + p for r, f, p in stream)
    seeds = {'session': bytes([0]) + u16(len(rs)) + rs}
    B = BREQ
    breqs = [
        (B['CONFIG_CHANGE_MSG'], b''),
        (B['VRING_HOST_NOTIFIER_MSG'], u64(0 | NOFD) + u64(0) + u64(0)),
        (B['VRING_CALL'], state(0, 0)),
        (B['VRING_ERR'], state(0, 0)),
        (B['SHARED_OBJECT_ADD'], bytes(range(16))),
        (B['SHARED_OBJECT_REMOVE'], bytes(range(16))),
        (B['SHARED_OBJECT_LOOKUP'], bytes(range(16))),
        (B['IOTLB_MSG'], u64(0x1000) + u64(0x1000) + u64(UVA) +
         bytes([3, 1]) + bytes(6)),
    ]
    allb = b''.join(hdr(r, VERSION, len(p)) + p for r, p in breqs)
    seeds['session-backend-requests'] = bytes([0]) + u16(len(rs)) + rs + \
        allb
    return seeds


def write(outdir, target, seeds):
    d = os.path.join(outdir, target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for name, data in sorted(seeds.items()):
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    outdir = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.join(here, 'corpus')
    # keep hand-added regression inputs
    keep = {}
    for target in ('fuzz-vring', 'fuzz-vu-backend-msg', 'fuzz-vu-backend',
                   'fuzz-vu-frontend-msg', 'fuzz-vu-frontend'):
        d = os.path.join(outdir, target)
        if os.path.isdir(d):
            for n in os.listdir(d):
                if n.startswith('regress-'):
                    with open(os.path.join(d, n), 'rb') as f:
                        keep[(target, n)] = f.read()
    t = backend_transcripts()
    corpora = {
        'fuzz-vring': vring_seeds(),
        'fuzz-vu-backend-msg': {k: enc_backend_msg(v) for k, v in t.items()},
        'fuzz-vu-backend': {k: enc_backend_sock(v) for k, v in t.items()},
        'fuzz-vu-frontend-msg': frontend_msg_seeds(),
        'fuzz-vu-frontend': frontend_sock_seeds(),
    }
    for (target, n), data in keep.items():
        corpora[target][n] = data
    for target, seeds in corpora.items():
        write(outdir, target, seeds)


if __name__ == '__main__':
    main()
