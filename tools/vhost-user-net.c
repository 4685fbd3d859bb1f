// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhost-user-net - a vhost-user virtio-net back-end on libvhost's vh_daemon.
 *
 * Queue pair p is rings 2p (receive, device -> driver) and 2p + 1
 * (transmit); each pair belongs to one worker thread.  Modes:
 *   --tap NAME / --tap-fd FD[,FD...]
 *                             bridge to a tap with one queue per pair
 *                             (IFF_MULTI_QUEUE when more than one):
 *                             frames pair p transmits are written to
 *                             queue p (vnet header included, so no copy),
 *                             frames read from queue p are received on
 *                             pair p.  Queue p > 0 is attached to the tap
 *                             only while ring 2p is enabled, so the kernel
 *                             steers nothing to a pair the guest does not
 *                             use.  A single --tap-fd with several pairs:
 *                             every pair transmits into it, pair 0
 *                             receives;
 *   --loopback                every transmitted frame is received back on
 *                             the same pair;
 *   --sink                    transmitted frames are read, counted and
 *                             returned.
 * Counters go to stderr at exit.  With --vduse=NAME the same device is
 * the VDUSE device NAME instead of a vhost-user back-end (one pair, split
 * rings; bound to virtio_vdpa it is a netdev of this host).
 */
#include <ctype.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/uio.h>
#include <time.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "busy-poll.h"
#include "daemon-args.h"
#include "libvhost.h"
#include "parse-num.h"

/* virtio 1.x, 5.1.3 "Feature bits" */
#define NET_F_MTU 3
#define NET_F_MAC 5
#define NET_F_MRG_RXBUF 15
#define NET_F_STATUS 16
#define NET_F_MQ 22
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_RING_PACKED 34
#define VHOST_F_LOG_ALL 26
/* 5.1.4: status bit, and the queue pair bounds of max_virtqueue_pairs */
#define NET_S_LINK_UP 1
#define NET_MQ_PAIRS_MAX 0x8000
/* our rings: 2 per pair, VH_VU_MAX_QUEUES in all */
#define PAIRS_MAX (VH_VU_MAX_QUEUES / 2)

/* 5.1.4 "Device configuration layout", up to mtu */
#define NET_CONFIG_SIZE 12

#define BATCH 64
#define ELEM_IOV 64   /* iovecs of one popped chain */
#define RX_ELEMS 32   /* buffers one received frame may merge */
#define TX_BURST 32   /* transmitted frames popped at once */
/* largest frame a tap returns: an MTU of 65535, Ethernet header, VLAN tag */
#define FRAME_MAX (65535 + 14 + 4)
#define CALL_FRAMES_MAX 4096 /* frames one handle_event call may take */
#define POLL_US_MAX 1000000

enum net_mode { MODE_TAP, MODE_LOOPBACK, MODE_SINK };

/* One cache line per pair: each is written by its worker only. */
struct pair_stats {
	uint64_t tx_frames, tx_bytes;
	uint64_t rx_frames, rx_bytes;
	uint64_t drops, errors;
	/* frames that waited for a translation or buffers (none dropped) */
	uint64_t rx_waits;
	/* frames still waiting when the ring stopped (control thread) */
	uint64_t rx_lost;
	/* the frame being received: the pair's worker only */
	struct rx_state *rs;
	/* tap mode: queue fds (rx -1: the pair receives nothing) */
	int tap_tx_fd, tap_rx_fd;
	/* the rx fd's watch is paused (no ring or no room) */
	bool tap_rx_paused;
	/* the rx fd failed for good and is no longer watched */
	bool tap_rx_dead;
} __attribute__((aligned(64)));

struct net_dev {
	struct vh_ctx *ctx;
	struct vh_daemon *d;
	enum net_mode mode;
	struct vh_tap *tap;
	unsigned int pairs, threads;
	uint8_t mac[6];
	uint16_t mtu;
	/* negotiated: written by the control thread with every ring stopped */
	uint64_t features;
	unsigned int hdr_len;
	bool mrg;
	bool vduse; /* --vduse */
	uint64_t poll_ns; /* --poll-us */
	struct pair_stats *stats;
};

/* Per worker thread scratch (thread_init). */
struct net_thread {
	/* a burst of transmitted frames (tx_process()) */
	struct iovec tx_iov[TX_BURST][ELEM_IOV];
	struct vh_devq_elem tx_elem[TX_BURST];
	struct vh_devq_used_elem tx_used[TX_BURST];
	unsigned int rx_pending; /* frames pushed since the last notify */
	/* VH_DEVQ_MAX_SIZE iovecs, for chains beyond ELEM_IOV (drop_chain) */
	struct iovec *big_iov;
};

/*
 * The frame a pair is receiving, kept across calls: under
 * VIRTIO_F_ACCESS_PLATFORM a pop may miss (-EAGAIN: a ring page or a
 * buffer has no translation yet, the miss is reported) after the frame
 * was read from the tap, or after some of its MRG_RXBUF buffers were
 * popped; or the ring may run out of buffers before the frame is in.  The
 * frame and those buffers wait here until the IOTLB update or the driver's
 * refill kicks the ring; nothing is dropped or returned short meanwhile.
 */
struct rx_state {
	struct iovec iov[RX_ELEMS][ELEM_IOV];
	struct vh_devq_used_elem used[RX_ELEMS];
	unsigned int k;  /* buffers popped for the frame */
	unsigned int ndescs; /* the ring descriptors they occupy */
	size_t off;      /* frame bytes copied into them */
	size_t len;      /* frame length (after soff) */
	size_t soff;     /* where the frame starts in buf (the vnet header) */
	bool held;       /* a frame waits for a translation or buffers */
	/* a vnet header, a frame, and one byte that shows a longer one */
	uint8_t buf[12 + FRAME_MAX + 1];
};

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */
/* ------------------------------------------------------------------------ */
/* Copy len bytes from src (starting skip bytes in) to dst; bytes copied. */
static size_t iov_copy(const struct iovec *dst, unsigned int dcnt,
		       size_t doff, const struct iovec *src, unsigned int scnt,
		       size_t soff, size_t len)
{
	unsigned int di = 0, si = 0;
	size_t done = 0;

	while (di < dcnt && doff >= dst[di].iov_len)
		doff -= dst[di++].iov_len;
	while (si < scnt && soff >= src[si].iov_len)
		soff -= src[si++].iov_len;
	while (done < len && di < dcnt && si < scnt) {
		size_t n = dst[di].iov_len - doff;

		if (n > src[si].iov_len - soff)
			n = src[si].iov_len - soff;
		if (n > len - done)
			n = len - done;
		memcpy((char *)dst[di].iov_base + doff,
		       (const char *)src[si].iov_base + soff, n);
		done += n;
		doff += n;
		soff += n;
		if (doff == dst[di].iov_len) {
			di++;
			doff = 0;
		}
		if (soff == src[si].iov_len) {
			si++;
			soff = 0;
		}
	}
	return done;
}

/*
 * The next chain of vq has more than ELEM_IOV buffers (vh_devq_pop() said
 * -ENOBUFS and left it in the ring, where it would stop the queue for
 * good): pop it with room for any chain the library takes (an indirect
 * table holds at most VH_DEVQ_MAX_SIZE) and give it back unused (length
 * 0).  A Linux driver never makes one: a frame is at most MAX_SKB_FRAGS + 2
 * pieces.  1 dropped, else what the pop says.
 */
static int drop_chain(struct net_thread *th, struct vh_devq *vq)
{
	struct vh_devq_elem e;
	int r;

	if (!th->big_iov) {
		th->big_iov = calloc(VH_DEVQ_MAX_SIZE, sizeof(*th->big_iov));
		if (!th->big_iov)
			return -ENOMEM;
	}
	e.iov = th->big_iov;
	e.iov_max = VH_DEVQ_MAX_SIZE;
	r = vh_devq_pop(vq, &e);
	if (r <= 0)
		return r;
	r = vh_devq_push(vq, e.id, 0);
	return r < 0 ? r : 1;
}

static void rx_flush(struct net_dev *nd, struct net_thread *th,
		     struct vh_devq *rx, struct pair_stats *st)
{
	if (!th->rx_pending)
		return;
	/* one signal per batch, and only if the driver wants it */
	if (vh_daemon_notify(nd->d, rx) < 0)
		st->errors++;
	th->rx_pending = 0;
}

/*
 * Receive a frame (len bytes from soff in src, no virtio-net header) into
 * the receive ring, continuing from rs->k buffers and rs->off bytes: as
 * many buffers as it needs when MRG_RXBUF is negotiated (5.1.6.4
 * "Processing of Incoming Packets"), else one.  Returns 1 if delivered,
 * -EAGAIN on an IOTLB miss or when the ring ran out of buffers (the
 * buffers popped so far stay in rs, the caller keeps the frame and calls
 * again: the update or the driver's refill kicks the ring), 0 if the ring
 * can never have room (nothing popped), other -errno otherwise (popped
 * buffers returned empty, the frame dropped).
 */
/* Return the buffers popped for a frame that does not go in, empty. */
/* The k buffers popped for the frame go back empty: 1, 0 (none) or -errno. */
static int rx_give_back(struct rx_state *rs, struct vh_devq *rx)
{
	unsigned int i, k = rs->k;
	int r;

	if (!k)
		return 0;
	for (i = 0; i < k; i++)
		rs->used[i].len = 0;
	rs->k = 0;
	rs->ndescs = 0;
	r = vh_devq_push_batch(rx, rs->used, k);
	return r < 0 ? r : 1;
}

static void rx_abort(struct net_thread *th, struct rx_state *rs,
		     struct vh_devq *rx)
{
	if (rx_give_back(rs, rx) > 0)
		th->rx_pending++;
}

static int rx_resume(struct net_dev *nd, struct net_thread *th,
		     struct rx_state *rs, struct vh_devq *rx,
		     const struct iovec *src, unsigned int scnt, size_t soff,
		     size_t len)
{
	uint8_t hdr[12] = { 0 }; /* no offloads: flags 0, GSO_NONE */
	const struct iovec hdr_iov = { .iov_base = hdr,
				       .iov_len = nd->hdr_len };
	struct vh_devq_elem e;
	uint16_t nbuf;
	int r = 0;

	while (rs->k < RX_ELEMS) {
		size_t room, w = 0, n;

		e.iov = rs->iov[rs->k];
		e.iov_max = ELEM_IOV;
		r = vh_devq_pop(rx, &e);
		if (r == -ENOBUFS) {
			/* returned empty, the frame goes on in the next one */
			r = drop_chain(th, rx);
			if (r > 0) {
				th->rx_pending++;
				continue;
			}
		}
		if (r == -EAGAIN)
			return r;
		/*
		 * the buffers held occupy every descriptor of the ring: the
		 * driver cannot add another
		 */
		if (r == 0 && rs->k < RX_ELEMS &&
		    rs->ndescs < vh_devq_get_num(rx)) {
			/*
			 * Out of buffers (mid-frame with MRG_RXBUF): hold
			 * the frame and the buffers it has until the driver
			 * adds more, as vhost-net leaves a packet in its
			 * socket; dropped only when no buffer can come any
			 * more (the ring's are all ours) or it would need
			 * more than RX_ELEMS.  The refill's kick brings it
			 * back (armed, then looked at again: no lost kick).
			 */
			if (vh_devq_enable_notification(rx) == 1)
				continue;
			return -EAGAIN;
		}
		if (r <= 0)
			break;
		rs->used[rs->k].id = e.id;
		rs->used[rs->k].len = 0;
		rs->k++;
		rs->ndescs += e.ndescs;
		/* 2.7.4: receive buffers are device-writable only */
		if (e.out_num || (rs->k == 1 && e.in_len < nd->hdr_len)) {
			r = -EINVAL;
			break;
		}
		if (rs->k == 1) {
			iov_copy(e.iov, e.in_num, 0, &hdr_iov, 1, 0,
				 nd->hdr_len);
			w = nd->hdr_len;
		}
		room = e.in_len - w;
		n = iov_copy(e.iov, e.in_num, w, src, scnt, soff + rs->off,
			     len - rs->off < room ? len - rs->off : room);
		rs->off += n;
		rs->used[rs->k - 1].len = (uint32_t)(w + n);
		if (rs->off == len)
			break;
		if (!nd->mrg) {
			r = -EMSGSIZE;
			break;
		}
	}
	if (rs->k && rs->off == len) {
		/* num_buffers (5.1.6.1), little endian, in the first buffer */
		const struct iovec nb = { .iov_base = &nbuf, .iov_len = 2 };

		nbuf = htole16((uint16_t)rs->k);
		if (nd->hdr_len == 12)
			iov_copy(rs->iov[0], ELEM_IOV, 10, &nb, 1, 0, 2);
		/* the buffers of one frame are published together */
		r = vh_devq_push_batch(rx, rs->used, rs->k);
		rs->k = 0;
		rs->ndescs = 0;
		if (r < 0)
			return r;
		th->rx_pending++;
		return 1;
	}
	if (!rs->k)
		return r < 0 ? r : 0;
	/* out of buffers mid-frame, or a bad buffer: return them empty */
	rx_abort(th, rs, rx);
	return r < 0 ? r : -ENOBUFS;
}

static int rx_deliver(struct net_dev *nd, struct net_thread *th,
		      struct rx_state *rs, struct vh_devq *rx,
		      const struct iovec *src, unsigned int scnt, size_t soff,
		      size_t len)
{
	rs->k = 0;
	rs->ndescs = 0;
	rs->off = 0;
	return rx_resume(nd, th, rs, rx, src, scnt, soff, len);
}

/* Count a frame rx_deliver()/rx_resume() is done with (r != -EAGAIN). */
static void rx_count(struct pair_stats *st, int r, size_t len)
{
	if (r == 1) {
		st->rx_frames++;
		st->rx_bytes += len;
	} else {
		st->drops++;
	}
}

/*
 * Hold the frame rx_deliver() could not finish for a missing translation
 * or buffers:
 * its bytes (src, unless they are rs->buf already) go into rs->buf.
 */
static void rx_hold(struct net_thread *th, struct pair_stats *st,
		    struct vh_devq *rx, const struct iovec *src,
		    unsigned int scnt, size_t soff, size_t len)
{
	struct rx_state *rs = st->rs;
	const struct iovec dst = { .iov_base = rs->buf,
				   .iov_len = sizeof(rs->buf) };

	if (!(scnt == 1 && src->iov_base == rs->buf)) {
		/* a transmitted frame (loopback) larger than any tap's */
		if (len > sizeof(rs->buf) ||
		    iov_copy(&dst, 1, 0, src, scnt, soff, len) != len) {
			rx_abort(th, rs, rx);
			st->drops++;
			return;
		}
		soff = 0;
	}
	rs->soff = soff;
	rs->len = len;
	rs->held = true;
	st->rx_waits++;
}

/*
 * Deliver the held frame, if any: true when none is held (any more),
 * false while it still waits for a translation or buffers.
 */
static bool rx_retry(struct net_dev *nd, struct net_thread *th,
		     struct pair_stats *st, struct vh_devq *rx)
{
	struct rx_state *rs = st->rs;
	struct iovec src;
	int r;

	if (!rs->held)
		return true;
	src.iov_base = rs->buf;
	src.iov_len = rs->soff + rs->len;
	r = rx_resume(nd, th, rs, rx, &src, 1, rs->soff, rs->len);
	if (r == -EAGAIN)
		return false;
	rs->held = false;
	rx_count(st, r, rs->len);
	return true;
}

/* ------------------------------------------------------------------------ */
/* transmit                                                                 */
/* ------------------------------------------------------------------------ */
/* Signal the transmit ring once for the buffers pushed since the last time. */
static void tx_flush(struct net_dev *nd, struct vh_devq *tx,
		     struct pair_stats *st, unsigned int *n)
{
	if (!*n)
		return;
	if (vh_daemon_notify(nd->d, tx) < 0)
		st->errors++;
	*n = 0;
}

/* Is there room on rx for a frame?  Arms the rx kick when there is not. */
/*
 * Buffers available on rx (0 if rx is not there); arms the rx kick when
 * there are none, so the driver's refill brings us back.
 */
static unsigned int rx_room(struct vh_devq *rx)
{
	uint16_t n = 0;

	if (!rx)
		return 0;
	if (vh_devq_avail_count(rx, &n) < 0)
		return 0;
	if (n)
		return n;
	if (vh_devq_enable_notification(rx) == 1 &&
	    vh_devq_avail_count(rx, &n) == 0)
		return n;
	return 0;
}

static bool rx_has_room(struct vh_devq *rx)
{
	return rx_room(rx) > 0;
}

/*
 * Pass on one transmitted frame (e, popped from tx) as the mode says; sets
 * *rx_wait when loopback holds it for rx.  Its buffers are the caller's to
 * return.
 */
static void tx_frame(struct net_dev *nd, struct net_thread *th,
		     struct pair_stats *st, struct vh_devq *rx,
		     const struct vh_devq_elem *e, bool *rx_wait)
{
	size_t flen;
	int r;

	/* 5.1.6.2: a header, then the frame, all device-readable */
	if (e->in_num || e->out_len < nd->hdr_len) {
		st->errors++;
		return;
	}
	flen = e->out_len - nd->hdr_len;
	switch (nd->mode) {
	case MODE_SINK: {
		/*
		 * Read out of guest memory, as a back-end that passes frames
		 * on must (DPDK's rxonly copies each into an mbuf):
		 * bench/vu_net compares the same work.  Longer than any link
		 * carries: dropped, as in loopback mode.
		 */
		const struct iovec sink = {
			.iov_base = st->rs->buf,
			.iov_len = sizeof(st->rs->buf)
		};

		if (flen > FRAME_MAX ||
		    iov_copy(&sink, 1, 0, e->iov, e->out_num, nd->hdr_len,
			     flen) != flen) {
			st->drops++;
			break;
		}
		st->tx_frames++;
		st->tx_bytes += flen;
		break;
	}
	case MODE_TAP:
		/* the tap takes the same vnet header */
		if (writev(st->tap_tx_fd, e->iov, (int)e->out_num) < 0) {
			st->drops++;
		} else {
			st->tx_frames++;
			st->tx_bytes += flen;
		}
		break;
	case MODE_LOOPBACK:
		/*
		 * no link carries more (a tap refuses it): copying gigabytes
		 * of one chain held the worker, and the ring's take-back with
		 * it
		 */
		if (flen > FRAME_MAX) {
			st->drops++;
			break;
		}
		st->tx_frames++;
		st->tx_bytes += flen;
		r = rx ? rx_deliver(nd, th, st->rs, rx, e->iov, e->out_num,
				    nd->hdr_len, flen) :
			 0;
		if (r == -EAGAIN) {
			rx_hold(th, st, rx, e->iov, e->out_num, nd->hdr_len,
				flen);
			*rx_wait = true;
		} else {
			rx_count(st, r, flen);
		}
		break;
	}
}

/*
 * Start loading the first bytes of each frame of a burst: the driver wrote
 * them on another CPU, and one frame's misses then overlap the frames
 * before it being passed on, where popping one at a time waited for each.
 */
static void tx_prefetch(const struct net_dev *nd,
			const struct vh_devq_elem *e, unsigned int k)
{
	unsigned int i;

	for (i = 0; i < k; i++) {
		const struct iovec *v = e[i].iov;

		if (!e[i].out_num)
			continue;
		/* the frame after its header (5.1.6.2: maybe a buffer of its own) */
		if (v[0].iov_len > nd->hdr_len)
			__builtin_prefetch((const char *)v[0].iov_base +
					   nd->hdr_len);
		else if (e[i].out_num > 1)
			__builtin_prefetch(v[1].iov_base);
	}
}

static int tx_process(struct net_dev *nd, struct net_thread *th,
		      unsigned int pair, struct vh_devq *tx)
{
	struct pair_stats *st = &nd->stats[pair];
	struct vh_devq *rx = NULL;
	unsigned int n = 0, total = 0, room = 0;
	uint64_t deadline = 0;
	bool rx_wait = false;
	int r = 0;

	if (nd->mode == MODE_LOOPBACK) {
		rx = vh_daemon_vring_get(nd->d, 2 * pair);
		/*
		 * a frame waits for a translation or buffers on rx:
		 * transmit nothing more until it is in (the IOTLB update
		 * kicks both rings, the refill rx)
		 */
		if (rx && !rx_retry(nd, th, st, rx)) {
			rx_flush(nd, th, rx, st);
			return 0;
		}
	}
	vh_devq_disable_notification(tx);
	for (;;) {
		unsigned int want = TX_BURST, k, i;

		/*
		 * Bound the time in one call (the control thread may be
		 * waiting to take the ring back): come back through the
		 * worker's loop instead.
		 */
		if (total >= CALL_FRAMES_MAX) {
			vh_daemon_poll_queue(nd->d, 2 * pair + 1);
			break;
		}
		/*
		 * loopback: leave frames in the ring until rx is there and
		 * has room (its kick brings us back); one at a time, as a
		 * frame that waits for rx stops the ring, and frames popped
		 * after it could be neither kept nor put back
		 */
		if (nd->mode == MODE_LOOPBACK) {
			/* read the avail index only when our count runs out */
			if (!room && !(room = rx_room(rx)))
				break;
			room--;
			want = 1;
		}
		for (i = 0; i < want; i++) {
			th->tx_elem[i].iov = th->tx_iov[i];
			th->tx_elem[i].iov_max = ELEM_IOV;
		}
		r = vh_devq_pop_batch(tx, th->tx_elem, want);
		if (r == 0) {
			tx_flush(nd, tx, st, &n);
			/*
			 * Busy-poll a while before sleeping (--poll-us).  What
			 * came while spinning is a new call's, through the
			 * worker's loop: one spin per call, or a frame every
			 * poll-us would keep the call going for 4096 spins
			 * (the control thread may be waiting for the ring,
			 * the tap and the other rings for the worker).
			 */
			if (nd->poll_ns &&
			    busy_poll_avail(tx, nd->poll_ns, &deadline, NULL,
					    NULL)) {
				vh_daemon_poll_queue(nd->d, 2 * pair + 1);
				break;
			}
			/* 2.7.10: re-arm, then look again (no lost kick) */
			if (vh_devq_enable_notification(tx) == 1) {
				vh_devq_disable_notification(tx);
				continue;
			}
			break;
		}
		if (r == -EAGAIN) {
			/* IOTLB miss: the update re-kicks the ring */
			vh_devq_enable_notification(tx);
			break;
		}
		if (r == -ENOBUFS) {
			/* not sent: counted as an error, the ring goes on */
			r = drop_chain(th, tx);
			if (r == -EAGAIN) {
				vh_devq_enable_notification(tx);
				break;
			}
			st->errors++;
			if (r < 0) {
				/* the chain stays: the next kick tries again */
				vh_devq_enable_notification(tx);
				break;
			}
			n++;
			total++;
			continue;
		}
		if (r < 0) {
			st->errors++;
			break;
		}
		k = (unsigned int)r;
		r = 0;
		tx_prefetch(nd, th->tx_elem, k);
		for (i = 0; i < k; i++) {
			tx_frame(nd, th, st, rx, &th->tx_elem[i], &rx_wait);
			/* done with the buffers: all returned at once below */
			th->tx_used[i].id = th->tx_elem[i].id;
			th->tx_used[i].len = 0;
		}
		if (vh_devq_push_batch(tx, th->tx_used, k) < 0)
			st->errors += k;
		n += k;
		total += k;
		/* signal per BATCH frames */
		if (n >= BATCH)
			tx_flush(nd, tx, st, &n);
		if (rx_wait)
			break;
	}
	tx_flush(nd, tx, st, &n);
	if (rx)
		rx_flush(nd, th, rx, st);
	return r < 0 ? r : 0;
}

/* ------------------------------------------------------------------------ */
/* receive from the tap: queue p on pair p's worker                        */
/* ------------------------------------------------------------------------ */
static void tap_readable(struct vh_daemon *d, void *opaque, int fd,
			 uint32_t revents, void *thread_data);

static void tap_rx_pause(struct net_dev *nd, unsigned int pair, bool pause)
{
	struct pair_stats *st = &nd->stats[pair];

	if (st->tap_rx_paused == pause || st->tap_rx_fd < 0 ||
	    st->tap_rx_dead)
		return;
	st->tap_rx_paused = pause;
	/* level-triggered: pausing keeps a full tap from spinning us */
	if (vh_daemon_watch_fd(nd->d, pair % nd->threads, st->tap_rx_fd,
			       pause ? 0 : EPOLLIN, tap_readable, st) < 0)
		vh_daemon_stop(nd->d);
}

/*
 * The tap's queue failed for good (the tap deleted, its namespace gone:
 * EPOLLERR at every wait, EBADFD at every read): stop watching it, where
 * the level-triggered watch would run us again at once, for ever.  The
 * pair's transmit goes on (its writes fail, counted as drops).
 */
static void tap_rx_gone(struct net_dev *nd, struct pair_stats *st,
			unsigned int pair, int fd, int err)
{
	st->tap_rx_dead = true;
	st->errors++;
	vh_daemon_unwatch_fd(nd->d, pair % nd->threads, fd);
	fprintf(stderr, "vhost-user-net: tap queue %u: %s: no longer read\n",
		pair, err ? strerror(err) : "error or hang-up");
}

static void tap_readable(struct vh_daemon *d, void *opaque, int fd,
			 uint32_t revents, void *thread_data)
{
	struct net_dev *nd = vh_daemon_get_userdata(d);
	struct net_thread *th = thread_data;
	/* opaque: the pair's own entry */
	struct pair_stats *st = opaque;
	unsigned int pair = (unsigned int)(st - nd->stats);
	struct vh_devq *rx;
	unsigned int i;

	/*
	 * A packet socket reports its link going down once (ENETDOWN in
	 * SO_ERROR, which reading clears) and works again when it is up:
	 * only a tap's queue is gone for good
	 */
	if (vh_tap_is_packet_socket(nd->tap)) {
		int err = 0;
		socklen_t l = sizeof(err);

		if ((revents & EPOLLERR) &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) == 0 &&
		    err)
			st->errors++;
	} else if (revents & (EPOLLERR | EPOLLHUP)) {
		tap_rx_gone(nd, st, pair, fd, 0);
		return;
	}
	/* no thread state (its allocation failed): nothing to receive with */
	if (!th) {
		tap_rx_pause(nd, pair, true);
		return;
	}
	rx = vh_daemon_vring_get(d, 2 * pair);
	if (!rx) {
		/* no ring: frames wait in the tap until one is handed over */
		tap_rx_pause(nd, pair, true);
		return;
	}
	for (i = 0; i < BATCH; i++) {
		struct iovec src;
		ssize_t n;
		int r;

		/* a frame waits on rx: read no more meanwhile */
		if (!rx_retry(nd, th, st, rx) || !rx_has_room(rx)) {
			tap_rx_pause(nd, pair, true);
			break;
		}
		n = read(fd, st->rs->buf, sizeof(st->rs->buf));
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR &&
			    !vh_tap_is_packet_socket(nd->tap))
				tap_rx_gone(nd, st, pair, fd, errno);
			break;
		}
		/* the tap prepends hdr_len bytes of vnet header */
		if ((size_t)n <= nd->hdr_len) {
			st->errors++;
			continue;
		}
		/* one that filled the buffer was cut short (tun truncates) */
		if ((size_t)n > nd->hdr_len + FRAME_MAX) {
			st->drops++;
			continue;
		}
		src.iov_base = st->rs->buf;
		src.iov_len = (size_t)n;
		r = rx_deliver(nd, th, st->rs, rx, &src, 1, nd->hdr_len,
			       (size_t)n - nd->hdr_len);
		if (r == -EAGAIN)
			rx_hold(th, st, rx, &src, 1, nd->hdr_len,
				(size_t)n - nd->hdr_len);
		else
			rx_count(st, r, (size_t)n - nd->hdr_len);
	}
	rx_flush(nd, th, rx, st);
}

/* ------------------------------------------------------------------------ */
/* vh_daemon ops                                                            */
/* ------------------------------------------------------------------------ */
static int net_handle_event(struct vh_daemon *d, void *data, unsigned int idx,
			    struct vh_devq *vring, void *thread_data)
{
	struct net_dev *nd = vh_daemon_get_userdata(d);
	struct net_thread *th = thread_data;
	unsigned int pair = idx / 2;
	struct vh_devq *tx;

	if (!th)
		return -ENOMEM;
	if (idx & 1)
		return tx_process(nd, th, pair, vring);
	/*
	 * receive ring kicked: the driver added buffers, or an IOTLB update
	 * came (it kicks every ring) and a held frame may go in now
	 */
	switch (nd->mode) {
	case MODE_TAP:
		if (rx_retry(nd, th, &nd->stats[pair], vring))
			tap_rx_pause(nd, pair, false);
		rx_flush(nd, th, vring, &nd->stats[pair]);
		return 0;
	case MODE_LOOPBACK:
		/* transmit may be waiting for these buffers */
		tx = vh_daemon_vring_get(d, idx + 1);
		return tx ? tx_process(nd, th, pair, tx) : 0;
	case MODE_SINK:
		return 0;
	}
	return 0;
}

static void *net_thread_init(struct vh_daemon *d, void *data, unsigned int t)
{
	(void)d;
	(void)t;
	return calloc(1, sizeof(struct net_thread));
}

static void net_thread_fini(struct vh_daemon *d, void *data, unsigned int t,
			    void *thread_data)
{
	struct net_thread *th = thread_data;

	(void)d;
	(void)t;
	if (th)
		free(th->big_iov);
	free(th);
}

/*
 * Queue p of a multi-queue tap is attached while the guest has ring 2p
 * enabled (QEMU disables the pairs beyond those the driver uses, 5.1.6.5.5
 * "Automatic receive steering in multiqueue mode"); queue 0 stays attached
 * so the tap is never without one.
 */
static void tap_queue_enable(struct net_dev *nd, unsigned int idx, bool on)
{
	unsigned int pair = idx / 2;
	int r;

	if (!nd->tap || (idx & 1) || pair == 0 ||
	    pair >= vh_tap_get_queue_count(nd->tap))
		return;
	r = vh_tap_set_queue_enabled(nd->tap, pair, on);
	if (r < 0 && r != -EOPNOTSUPP)
		fprintf(stderr, "vhost-user-net: tap queue %u: %s: %s\n", pair,
			on ? "attach" : "detach", strerror(-r));
}

static int net_queue_started(struct vh_daemon *d, void *data, unsigned int idx,
			     struct vh_devq *vring)
{
	(void)vring;
	tap_queue_enable(vh_daemon_get_userdata(d), idx, true);
	return 0;
}

static void net_queue_stopped(struct vh_daemon *d, void *data, unsigned int idx,
			      struct vh_devq *vring)
{
	struct net_dev *nd = vh_daemon_get_userdata(d);
	struct pair_stats *st = &nd->stats[idx / 2];

	/*
	 * The worker let go of the ring (it sees no ring until the next
	 * start): a frame still waiting for a translation or buffers cannot
	 * go in.  The buffers it popped go back empty (rx_give_back()): the
	 * ring may start again from here (a new call fd, SET_FEATURES at the
	 * start of a migration, a memory table), and buffers never pushed
	 * would be lost to the driver for the ring's life.  The ring is ours
	 * until this returns.
	 */
	if (!(idx & 1) && st->rs->held) {
		if (rx_give_back(st->rs, vring) < 0)
			st->errors++;
		st->rs->held = false;
		st->rx_lost++;
	}
	tap_queue_enable(nd, idx, false);
}

static int net_set_features(struct vh_daemon *d, void *data, uint64_t features)
{
	struct net_dev *nd = vh_daemon_get_userdata(d);
	unsigned int hdr_len = vh_net_hdr_len(features);
	int r = 0;

	/*
	 * VDUSE: virtnet_probe() sets DRIVER_OK under rtnl_lock and waits
	 * for our answer, and every tap ioctl takes rtnl_lock (a deadlock
	 * until VDUSE's message timeout breaks the device).  No tap call
	 * here: no offload is offered (the tap keeps none) and a vDPA
	 * driver is a modern one (VERSION_1: the 12-byte header the tap
	 * was given at start).
	 */
	if (nd->tap && nd->vduse)
		r = hdr_len == 12 ? 0 : -EINVAL;
	else if (nd->tap)
		r = vh_tap_set_features(nd->tap, features);
	/* refused: the library keeps the features from before, and so do we */
	if (r < 0)
		return r;
	nd->features = features;
	nd->hdr_len = hdr_len;
	nd->mrg = features & (1ull << NET_F_MRG_RXBUF);
	return 0;
}

static int net_get_config(struct vh_daemon *d, void *data, uint32_t offset,
			  void *buf, uint32_t size)
{
	struct net_dev *nd = vh_daemon_get_userdata(d);
	uint8_t cfg[NET_CONFIG_SIZE];
	uint16_t v;

	/* the library bounds offset + size by config_size */
	if (offset > sizeof(cfg) || size > sizeof(cfg) - offset)
		return -EINVAL;
	memcpy(cfg, nd->mac, 6);
	v = htole16(NET_S_LINK_UP);
	memcpy(cfg + 6, &v, 2);
	v = htole16((uint16_t)nd->pairs);
	memcpy(cfg + 8, &v, 2);
	v = htole16(nd->mtu);
	memcpy(cfg + 10, &v, 2);
	memcpy(buf, cfg + offset, size);
	return 0;
}

static int net_set_config(struct vh_daemon *d, void *data, uint32_t offset,
			  const void *buf, uint32_t size, uint32_t flags)
{
	struct net_dev *nd = vh_daemon_get_userdata(d);

	(void)flags;
	/* 5.1.4: only mac is driver-writable (legacy, no CTRL_MAC_ADDR) */
	if (offset + size > 6 || offset > 6)
		return -EPERM;
	memcpy(nd->mac + offset, buf, size);
	return 0;
}

static int net_set_mtu(struct vh_daemon *d, void *data, uint16_t mtu)
{
	struct net_dev *nd = vh_daemon_get_userdata(d);

	/* 5.1.4.1: 68 .. 65535 */
	if (mtu < 68)
		return -EINVAL;
	if (nd->tap)
		return vh_tap_set_mtu(nd->tap, mtu);
	return 0;
}

static const struct vh_daemon_ops net_ops = {
	.size = sizeof(net_ops),
	.handle_event = net_handle_event,
	.thread_init = net_thread_init,
	.thread_fini = net_thread_fini,
	.set_features = net_set_features,
	.queue_started = net_queue_started,
	.queue_stopped = net_queue_stopped,
	.get_config = net_get_config,
	.set_config = net_set_config,
	.net_set_mtu = net_set_mtu,
};

/* ------------------------------------------------------------------------ */
/* main                                                                     */
/* ------------------------------------------------------------------------ */
static void usage(FILE *f)
{
	fputs("Usage: vhost-user-net (--socket-path=PATH | --fd=FD | "
	      "--vduse=NAME) MODE\n"
	      "       [OPTIONS]\n"
	      "\n"
	      "A vhost-user (or VDUSE) virtio-net back-end.\n"
	      "\n"
	      "Modes:\n"
	      "  --tap=NAME              bridge to a new tap NAME (%d: a number),\n"
	      "                          one tap queue per queue pair\n"
	      "  --tap-fd=FD[,FD...]     bridge to open tap fds: one per queue\n"
	      "                          pair, or one that only pair 0\n"
	      "                          receives from\n"
	      "  --loopback              receive every transmitted frame back\n"
	      "  --sink                  read, count and return transmitted frames\n"
	      "\n"
	      "Options:\n" DAEMON_OPTIONS_HELP DAEMON_VDUSE_HELP
	      "  --queue-pairs=N         queue pairs, 1..128 (1 with --vduse;\n"
	      "                          default 1)\n"
	      "  --mac=XX:XX:XX:XX:XX:XX config space MAC, unicast (default\n"
	      "                          52:54:00:12:34:56)\n"
	      "  --mtu=N                 config space MTU (VIRTIO_NET_F_MTU),\n"
	      "                          68..65535\n"
	      "  --poll-us=N             busy-poll transmit rings N us before\n"
	      "                          sleeping, 0..1000000 (default 0)\n"
	      "  -h, --help              this text\n",
	      f);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned long b;
	char *end;
	int i;

	for (i = 0; i < 6; i++) {
		/* exactly two hex digits, ':' between them */
		if (!isxdigit((unsigned char)s[0]) ||
		    !isxdigit((unsigned char)s[1]))
			return -EINVAL;
		b = strtoul(s, &end, 16);
		if (end != s + 2 || *end != (i == 5 ? '\0' : ':'))
			return -EINVAL;
		mac[i] = (uint8_t)b;
		s = end + 1;
	}
	return 0;
}

static int parse_num(const char *s, unsigned long lo, unsigned long hi,
		     unsigned long *v)
{
	unsigned long long x;
	int r = parse_dec(s, lo, hi, &x);

	if (r == 0)
		*v = (unsigned long)x;
	return r;
}

/*
 * A worker reads a tap queue until EAGAIN: a blocking fd (one handed down
 * by --tap-fd) would stall the worker and its rings.
 */
static int tap_nonblock(struct vh_tap *tap)
{
	unsigned int q;

	for (q = 0; q < vh_tap_get_queue_count(tap); q++) {
		int fd = vh_tap_get_queue_fd(tap, q);
		int fl = fcntl(fd, F_GETFL);

		if (fl < 0 || (!(fl & O_NONBLOCK) &&
			       fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0))
			return -errno;
	}
	return 0;
}

/* FD[,FD...]: at most max fds, each >= 0; the count, or -EINVAL. */
static int parse_fd_list(const char *s, int *fds, unsigned int max)
{
	unsigned int n = 0;
	unsigned long v;
	char buf[16];

	for (;;) {
		size_t len = strcspn(s, ",");

		if (n == max || len == 0 || len >= sizeof(buf))
			return -EINVAL;
		memcpy(buf, s, len);
		buf[len] = '\0';
		if (parse_num(buf, 0, INT_MAX, &v) < 0)
			return -EINVAL;
		fds[n++] = (int)v;
		if (!s[len])
			return (int)n;
		s += len + 1;
	}
}

enum {
	OPT_TAP = 0x100,
	OPT_TAP_FD,
	OPT_LOOPBACK,
	OPT_SINK,
	OPT_PAIRS,
	OPT_MAC,
	OPT_MTU,
	OPT_HELP,
	OPT_POLL_US,
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		DAEMON_LONG_OPTIONS,
		DAEMON_VDUSE_OPTION,
		{ "tap", 1, NULL, OPT_TAP },
		{ "tap-fd", 1, NULL, OPT_TAP_FD },
		{ "loopback", 0, NULL, OPT_LOOPBACK },
		{ "sink", 0, NULL, OPT_SINK },
		{ "queue-pairs", 1, NULL, OPT_PAIRS },
		{ "mac", 1, NULL, OPT_MAC },
		{ "mtu", 1, NULL, OPT_MTU },
		{ "help", 0, NULL, OPT_HELP },
		{ "poll-us", 1, NULL, OPT_POLL_US },
		{ 0 },
	};
	struct net_dev nd = {
		.pairs = 1,
		/* locally administered, unicast */
		.mac = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 },
		.hdr_len = 12,
	};
	struct vh_daemon_device dev = { .size = sizeof(dev), .type = "net" };
	struct daemon_args args;
	uint8_t queue_thread[VH_VU_MAX_QUEUES];
	const char *tap_name = NULL;
	int tap_fds[PAIRS_MAX], ntap_fds = 0, modes = 0, c, r;
	unsigned long v;
	unsigned int p;

	daemon_args_init(&args);
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		r = daemon_args_parse(&args, c, optarg);
		if (r > 0)
			continue;
		if (r < 0)
			return 1;
		switch (c) {
		case OPT_TAP:
			if (!*optarg || strlen(optarg) >= 16) {
				fprintf(stderr, "--tap: bad name\n");
				return 1;
			}
			tap_name = optarg;
			nd.mode = MODE_TAP;
			modes++;
			break;
		case OPT_TAP_FD:
			ntap_fds = parse_fd_list(optarg, tap_fds, PAIRS_MAX);
			if (ntap_fds < 0) {
				fprintf(stderr,
					"--tap-fd: FD[,FD...] (decimal), at most %u\n",
					PAIRS_MAX);
				return 1;
			}
			/* kept from children, as --fd is (daemon_args) */
			for (int k = 0; k < ntap_fds; k++)
				fcntl(tap_fds[k], F_SETFD, FD_CLOEXEC);
			nd.mode = MODE_TAP;
			modes++;
			break;
		case OPT_LOOPBACK:
			nd.mode = MODE_LOOPBACK;
			modes++;
			break;
		case OPT_SINK:
			nd.mode = MODE_SINK;
			modes++;
			break;
		case OPT_PAIRS:
			if (parse_num(optarg, 1, PAIRS_MAX, &v) < 0) {
				fprintf(stderr, "--queue-pairs: 1..%u (decimal)\n",
					PAIRS_MAX);
				return 1;
			}
			nd.pairs = (unsigned int)v;
			break;
		case OPT_MAC:
			if (parse_mac(optarg, nd.mac) < 0 || (nd.mac[0] & 1)) {
				fprintf(stderr, "--mac: bad unicast MAC\n");
				return 1;
			}
			break;
		case OPT_MTU:
			if (parse_num(optarg, 68, 65535, &v) < 0) {
				fprintf(stderr, "--mtu: 68..65535 (decimal)\n");
				return 1;
			}
			nd.mtu = (uint16_t)v;
			break;
		case OPT_POLL_US:
			if (parse_num(optarg, 0, POLL_US_MAX, &v) < 0) {
				fprintf(stderr, "--poll-us: 0..%d (decimal)\n",
					POLL_US_MAX);
				return 1;
			}
			nd.poll_ns = v * 1000;
			break;
		case 'h':
		case OPT_HELP:
			usage(stdout);
			return daemon_stdout_status("vhost-user-net");
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 1;
	}
	if (args.print_capabilities) {
		daemon_print_capabilities(stdout, "net", NULL);
		return daemon_stdout_status("vhost-user-net");
	}
	if (daemon_args_check(&args) < 0)
		return 1;
	if (modes != 1) {
		fprintf(stderr, "exactly one of --tap, --tap-fd, --loopback, "
				"--sink\n");
		return 1;
	}
	/*
	 * VDUSE refuses VIRTIO_NET_F_CTRL_VQ (6.12: vduse_dev.c), and
	 * VIRTIO_NET_F_MQ requires it (virtio 1.2, 5.1.3.1): one pair.
	 */
	nd.vduse = args.vduse != NULL;
	/*
	 * A takeover needs the device to track its chains in flight
	 * (vh_daemon_get_inflight()), which this one does not: a frame
	 * popped by a daemon that died would be lost to the driver.
	 */
	if (args.vduse_state) {
		fprintf(stderr, "--vduse-state: not for vhost-user-net (no inflight tracking)\n");
		return 1;
	}
	if (args.vduse && nd.pairs > 1) {
		fprintf(stderr, "--vduse: one queue pair (no control queue)\n");
		return 1;
	}
	if (ntap_fds > 1 && (unsigned int)ntap_fds != nd.pairs) {
		fprintf(stderr,
			"--tap-fd: one fd, or one per queue pair (%u)\n",
			nd.pairs);
		return 1;
	}

	r = vh_ctx_new(&nd.ctx);
	if (r < 0) {
		fprintf(stderr, "vh_ctx_new: %s\n", strerror(-r));
		return 1;
	}
	vh_ctx_set_log_priority(nd.ctx, args.verbose ? LOG_DEBUG : LOG_WARNING);
	if (nd.mode == MODE_TAP) {
		if (ntap_fds)
			r = vh_tap_new_from_fds(nd.ctx, tap_fds,
						(unsigned int)ntap_fds,
						&nd.tap);
		else if (nd.pairs > 1)
			r = vh_tap_new_mq(nd.ctx, tap_name, nd.pairs, &nd.tap);
		else
			r = vh_tap_new(nd.ctx, tap_name, &nd.tap);
		if (r < 0) {
			fprintf(stderr, "tap: %s\n", strerror(-r));
			goto out;
		}
		r = tap_nonblock(nd.tap);
		if (r == 0)
			r = vh_tap_set_vnet_hdr_len(nd.tap, 12);
		/*
		 * none of the offloads a --tap-fd tap's creator may have set:
		 * under VDUSE no later call clears them (net_set_features())
		 */
		if (r == 0)
			r = vh_tap_set_offload(nd.tap, 0);
		/* no VHOST_USER_NET_SET_MTU over VDUSE: the config's MTU */
		if (r == 0 && args.vduse && nd.mtu)
			r = vh_tap_set_mtu(nd.tap, nd.mtu);
		if (r == 0 && !ntap_fds)
			r = vh_tap_set_up(nd.tap, true);
		if (r < 0) {
			fprintf(stderr, "tap %s: %s\n", vh_tap_get_name(nd.tap),
				strerror(-r));
			goto out;
		}
	}
	/* one per pair by default, as many as the daemon framework runs */
	nd.threads = args.threads ? args.threads : nd.pairs;
	if (!args.threads && nd.threads > VH_DAEMON_MAX_THREADS)
		nd.threads = VH_DAEMON_MAX_THREADS;
	if (nd.threads > nd.pairs)
		nd.threads = nd.pairs;
	/* pair p -> thread p % threads: both rings of a pair on one thread */
	for (p = 0; p < nd.pairs; p++)
		queue_thread[2 * p] = queue_thread[2 * p + 1] =
			(uint8_t)(p % nd.threads);
	if (posix_memalign((void **)&nd.stats, 64,
			   nd.pairs * sizeof(*nd.stats))) {
		r = -ENOMEM;
		goto out;
	}
	memset(nd.stats, 0, nd.pairs * sizeof(*nd.stats));
	for (p = 0; p < nd.pairs; p++) {
		struct pair_stats *st = &nd.stats[p];
		unsigned int nq = vh_tap_get_queue_count(nd.tap);

		st->rs = calloc(1, sizeof(*st->rs));
		if (!st->rs) {
			r = -ENOMEM;
			goto out;
		}

		/* pairs beyond the tap's queues transmit into queue 0 */
		st->tap_tx_fd =
			nd.tap ? vh_tap_get_queue_fd(nd.tap, p < nq ? p : 0) :
				 -1;
		st->tap_rx_fd = p < nq ? vh_tap_get_queue_fd(nd.tap, p) : -1;
		/* no ring enabled yet: queue 0 attached, the others not */
		if (p < nq && nq > 1 &&
		    vh_tap_set_queue_enabled(nd.tap, p, p == 0) < 0) {
			r = -EIO;
			goto out;
		}
	}

	dev.features = (1ull << VIRTIO_F_VERSION_1) |
		       (1ull << NET_F_MRG_RXBUF) | (1ull << NET_F_MAC) |
		       (1ull << NET_F_STATUS) |
		       (1ull << VIRTIO_F_INDIRECT_DESC) |
		       (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM) |
		       (1ull << VIRTIO_F_RING_PACKED) |
		       (1ull << VHOST_F_LOG_ALL);
	/* VDUSE: no vhost dirty log (the kernel's driver has none) */
	if (args.vduse)
		dev.features &= ~(1ull << VHOST_F_LOG_ALL);
	if (args.no_packed)
		dev.features &= ~(1ull << VIRTIO_F_RING_PACKED);
	if (nd.pairs > 1)
		dev.features |= 1ull << NET_F_MQ;
	if (nd.mtu)
		dev.features |= 1ull << NET_F_MTU;
	dev.protocol_features = (1ull << VH_VU_PROTOCOL_F_MQ) |
				(1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |
				(1ull << VH_VU_PROTOCOL_F_BACKEND_REQ) |
				(1ull << VH_VU_PROTOCOL_F_CONFIG) |
				(1ull << VH_VU_PROTOCOL_F_NET_MTU) |
				(1ull << VH_VU_PROTOCOL_F_LOG_SHMFD) |
				(1ull << VH_VU_PROTOCOL_F_RESET_DEVICE) |
				(1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
	/*
	 * VDUSE: every buffer the driver posts is mapped in the device's
	 * bounce area (64 MiB by default); 32768 receive buffers of a page
	 * or more fill it and transmit then fails to map (-ENOMEM).  256 is
	 * QEMU's virtio-net default.
	 */
	if (args.vduse)
		dev.max_queue_size = 256;
	dev.num_queues = 2 * nd.pairs;
	dev.queue_num = nd.pairs;
	dev.config_size = NET_CONFIG_SIZE;
	dev.num_threads = nd.threads;
	dev.queue_thread = queue_thread;
	dev.lock = VH_DAEMON_LOCK_NONE;
	r = vh_daemon_new(nd.ctx, &dev, &net_ops, &nd, &nd.d);
	if (r < 0) {
		fprintf(stderr, "vh_daemon_new: %s\n", strerror(-r));
		goto out;
	}
	for (p = 0; p < nd.pairs; p++) {
		if (nd.stats[p].tap_rx_fd < 0)
			continue;
		r = vh_daemon_watch_fd(nd.d, p % nd.threads,
				       nd.stats[p].tap_rx_fd, EPOLLIN,
				       tap_readable, &nd.stats[p]);
		if (r < 0) {
			fprintf(stderr, "watch tap: %s\n", strerror(-r));
			goto out;
		}
	}
	r = daemon_args_run(nd.d, &args);
	if (r < 0)
		fprintf(stderr, "vhost-user-net: %s\n", strerror(-r));
	for (p = 0; p < nd.pairs; p++) {
		struct pair_stats *st = &nd.stats[p];

		fprintf(stderr,
			"vhost-user-net: pair %u tx_frames=%" PRIu64
			" tx_bytes=%" PRIu64 " rx_frames=%" PRIu64
			" rx_bytes=%" PRIu64 " rx_waits=%" PRIu64
			" drops=%" PRIu64 " errors=%" PRIu64 "\n",
			p, st->tx_frames, st->tx_bytes, st->rx_frames,
			st->rx_bytes, st->rx_waits, st->drops + st->rx_lost,
			st->errors);
	}
out:
	for (p = 0; nd.d && nd.stats && p < nd.pairs; p++)
		if (nd.stats[p].tap_rx_fd >= 0 && !nd.stats[p].tap_rx_dead)
			vh_daemon_unwatch_fd(nd.d, p % nd.threads,
					     nd.stats[p].tap_rx_fd);
	vh_daemon_unref(nd.d);
	vh_tap_unref(nd.tap);
	for (p = 0; nd.stats && p < nd.pairs; p++)
		free(nd.stats[p].rs);
	free(nd.stats);
	vh_ctx_unref(nd.ctx);
	return r < 0 ? 1 : 0;
}
