// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * tools/vhost-user-net --loopback --queue-pairs=2 behind a vIOMMU, against
 * our front-end:
 * VIRTIO_F_ACCESS_PLATFORM and MRG_RXBUF negotiated, rings and buffers at
 * IOVAs (guest physical + IOVA_OFF), nothing mapped up front: every
 * translation the daemon uses comes from its misses (BACKEND_IOTLB_MSG),
 * answered late.  A frame the daemon took from the transmit ring is
 * received back on the receive ring of the pair, across several receive
 * buffers (3012 bytes into 1024-byte buffers), so a receive buffer often
 * misses after the frame's first buffers were popped.  The daemon must
 * hold that frame until the update and deliver it intact: every frame
 * comes back, bytes and num_buffers checked, and its counters show no drop
 * (a NIC may drop, but this daemon holds: nothing is dropped silently).
 *
 *  1. cold: every page misses once;
 *  2. the receive pool and the rings' own pages invalidated mid-run: the
 *     misses come again and every frame still comes back;
 *  2a. the memory table sent again (SET_MEM_TABLE): the translations
 *     resolved through the old one are dropped, the rings' pages miss
 *     again, every frame still comes back;
 *  2b. a chain of more than the daemon's 64 iovecs on pair 1, once to
 *     transmit (not sent, counted as an error) and once to receive into
 *     (returned empty): neither ring stops, every other frame comes back;
 *  3. one receive buffer page of pair 0 never answered: that frame
 *     waits, nothing is returned short or empty, pair 0's transmit ring
 *     is taken no further than it, and pair 1 (another worker) goes on
 *     receiving; answered, everything arrives in order;
 *  3b. the same wait, then the receive ring taken back and started again
 *     without GET_VRING_BASE (a new call fd, as the start of a migration
 *     or a memory table does): the frame is lost, and the buffers it had
 *     popped come back empty, in order, not lost to the driver;
 *  4. the same with the page never answered and the front-end going away:
 *     the daemon lets go of the waiting ring and serves the next
 *     front-end within a measured deadline, exits at SIGTERM, and counts
 *     the one frame it held as its only drop.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvhost.h"
#include "test-vu-frontend-util.h"

#define VIRTIO_NET_F_MRG_RXBUF 15
#define NET_HDR_LEN 12 /* virtio_net_hdr_mrg_rxbuf: VERSION_1 */
#define MEM_SIZE (16u << 20)
#define QSIZE 256
#define RING_AREA 0x40000 /* 4 rings, 64 KiB each, from GPA 0 */
#define RX_BUF 1024
#define TX_BUF 4096
#define NTX 256 /* transmit buffer slots of a pair */
#define NRX 192 /* receive buffers of a pair */
#define NFRAMES 48
#define FRAME_LEN 3000
#define PG 4096ull
#define IOVA_OFF 0x5500000000ull
#define NPAIRS 2

/* Queue pair p: rings 2p (receive) and 2p + 1 (transmit). */
struct pair {
	unsigned int idx;
	struct vh_drvq *rxq, *txq;
	int fds[4]; /* rx kick, rx call, tx kick, tx call */
	uint64_t rx_gpa, tx_gpa; /* its buffers */
	/* receive buffers in the order posted (the avail ring's) */
	unsigned int fifo[NRX], fifo_head, fifo_n;
	/*
	 * The frame being put together from receive buffers: MRG_RXBUF
	 * gives num_buffers in the first one's header (5.1.6.4), the rest
	 * follow in used-ring order.
	 */
	uint8_t frame[NET_HDR_LEN + FRAME_LEN];
	unsigned int frame_len, frame_bufs, frame_want;
	/* frames sent, received (the next seq expected), transmitted */
	unsigned int sent, got, txdone;
};

static struct vh_ctx *ctx;
static struct vh_mem *mem;
static uint8_t *guest;
static struct vh_vu_frontend *fe;
static struct pair pairs[NPAIRS];

/* misses from the back-end, answered from the main loop */
static uint64_t pend[512];
static unsigned int n_pend, n_miss, n_bad;
static unsigned int n_ring_miss; /* of those, on the rings' own pages */
static uint64_t blackhole; /* an IOVA page never answered, or 0 */

/* case 2b: the long chains' pieces, and their tokens */
#define LONG_PIECES 70
#define LONG_GPA 0xc00000
#define LONG_RX_TOKEN ((void *)(uintptr_t)0x10000)
static bool hold_rx;      /* pair 1's used receive buffers not posted again */
static bool empty_ok;     /* case 3b: empty receive buffers expected */
static unsigned int n_empty;
static unsigned int held[NRX], n_held, long_rx_back;

static int on_iotlb(struct vh_vu_frontend *f, void *data,
		    const struct vh_vu_iotlb *m)
{
	(void)f;
	(void)data;
	if (m->type != VH_IOTLB_MISS || m->iova < IOVA_OFF ||
	    m->iova - IOVA_OFF >= MEM_SIZE) {
		n_bad++;
		return -EINVAL;
	}
	n_miss++;
	if (m->iova - IOVA_OFF < RING_AREA)
		n_ring_miss++;
	if (n_pend < sizeof(pend) / sizeof(pend[0]))
		pend[n_pend++] = m->iova & ~(PG - 1);
	return 0;
}

static const struct vh_vu_frontend_ops fe_ops = {
	.size = sizeof(fe_ops),
	.iotlb = on_iotlb,
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Serve the back-end channel for up to ms; answer the misses (a page each)
 * older than `late` ms, except the blackhole's.
 */
static void serve(int ms, int late)
{
	static int64_t first;
	struct pollfd pfd = { .fd = vh_vu_frontend_get_backend_fd(fe),
			      .events = POLLIN };
	unsigned int i, k = 0;

	if (poll(&pfd, 1, ms) > 0)
		while (vh_vu_frontend_dispatch_backend(fe) == 0)
			;
	if (n_pend && !first)
		first = now_ms();
	if (!n_pend || now_ms() - first < late)
		return;
	for (i = 0; i < n_pend; i++) {
		uint64_t gpa = pend[i] - IOVA_OFF;

		if (pend[i] == blackhole) {
			pend[k++] = pend[i];
			continue;
		}
		CHECK_EQ(vh_vu_frontend_iotlb_update(
				 fe, pend[i], PG,
				 (uint64_t)(uintptr_t)(guest + gpa),
				 VH_ACCESS_RW),
			 0);
	}
	n_pend = k;
	first = k ? now_ms() : 0;
}

static uint8_t pattern(unsigned int seq, unsigned int i)
{
	return (uint8_t)(seq * 13 + i * 7 + (i >> 8));
}

static void send_frame(struct pair *q, unsigned int slot, unsigned int seq)
{
	uint8_t *b = guest + q->tx_gpa + slot * TX_BUF;
	struct vh_sg sg = { IOVA_OFF + q->tx_gpa + slot * TX_BUF,
			    NET_HDR_LEN + FRAME_LEN };
	unsigned int i;

	memset(b, 0, NET_HDR_LEN);
	for (i = 0; i < FRAME_LEN; i++)
		b[NET_HDR_LEN + i] = pattern(seq, i);
	CHECK_EQ(vh_drvq_add(q->txq, &sg, 1, 0,
			     (void *)(uintptr_t)(slot + 1)), 0);
}

static void post_rx(struct pair *q, unsigned int b)
{
	struct vh_sg sg = { IOVA_OFF + q->rx_gpa + b * RX_BUF, RX_BUF };

	memset(guest + q->rx_gpa + b * RX_BUF, 0xcc, RX_BUF);
	CHECK_EQ(vh_drvq_add(q->rxq, &sg, 0, 1, (void *)(uintptr_t)(b + 1)),
		 0);
	CHECK(q->fifo_n < NRX);
	q->fifo[(q->fifo_head + q->fifo_n++) % NRX] = b;
}

/* One used receive buffer; true when it completed a frame (checked). */
static bool rx_buffer(struct pair *q, unsigned int b, uint32_t len)
{
	const uint8_t *p = guest + q->rx_gpa + b * RX_BUF;
	unsigned int i;

	CHECK(b < NRX);
	/* split ring: buffers are used in the order posted */
	CHECK(q->fifo_n > 0);
	CHECK_EQ(q->fifo[q->fifo_head], b);
	q->fifo_head = (q->fifo_head + 1) % NRX;
	q->fifo_n--;
	/* 3b: a lost frame's buffers, given back empty (before any other) */
	if (len == 0 && empty_ok && !q->frame_bufs) {
		n_empty++;
		return false;
	}
	/* never returned short or empty: the daemon holds, it does not drop */
	CHECK(len > 0 && len <= RX_BUF);
	CHECK(q->frame_len + len <= sizeof(q->frame));
	memcpy(q->frame + q->frame_len, p, len);
	q->frame_len += len;
	if (!q->frame_bufs++) {
		CHECK(len >= NET_HDR_LEN);
		q->frame_want = p[10] | (p[11] << 8);
		CHECK(q->frame_want >= 1 && q->frame_want <= NRX);
	}
	if (q->frame_bufs < q->frame_want)
		return false;
	CHECK_EQ(q->frame_len, NET_HDR_LEN + FRAME_LEN);
	for (i = 0; i < 10; i++)
		CHECK_EQ(q->frame[i], 0);
	/* in order, every byte */
	for (i = 0; i < FRAME_LEN; i++)
		if (q->frame[NET_HDR_LEN + i] != pattern(q->got, i)) {
			fprintf(stderr, "pair %u frame %u: byte %u differs\n",
				q->idx, q->got, i);
			CHECK(0);
		}
	q->frame_len = q->frame_bufs = 0;
	return true;
}

/* Collect completions for ms, answering misses `late` ms after they came. */
static void pump(int ms, int late)
{
	int64_t end = now_ms() + ms;
	void *token;
	uint32_t len;
	unsigned int i;
	int r;

	do {
		for (i = 0; i < NPAIRS; i++) {
			struct pair *q = &pairs[i];

			while ((r = vh_drvq_get_used(q->txq, &token,
						     &len)) == 1)
				q->txdone++;
			CHECK_EQ(r, 0);
			while ((r = vh_drvq_get_used(q->rxq, &token,
						     &len)) == 1) {
				unsigned int b =
					(unsigned int)(uintptr_t)token - 1;

				/* the long chain comes back empty, alone */
				if (token == LONG_RX_TOKEN) {
					CHECK_EQ(len, 0);
					CHECK_EQ(q->frame_bufs, 0);
					long_rx_back++;
					continue;
				}
				if (rx_buffer(q, b, len))
					q->got++;
				if (hold_rx && q->idx == 1) {
					held[n_held++] = b;
					continue;
				}
				post_rx(q, b);
				CHECK(vh_drvq_kick(q->rxq) >= 0);
			}
			CHECK_EQ(r, 0);
		}
		serve(5, late);
		for (i = 0; i < NPAIRS; i++) {
			efd_wait(pairs[i].fds[1], 0);
			efd_wait(pairs[i].fds[3], 0);
		}
		if (!peer_alive())
			CHECK(0);
	} while (now_ms() < end);
}

/* Send n frames on pair q, seq after the last sent. */
static void send_frames(struct pair *q, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++, q->sent++)
		send_frame(q, q->sent % NTX, q->sent);
	CHECK(vh_drvq_kick(q->txq) >= 0);
}

/* Until every frame sent on q came back and every transmission completed. */
static void drain(struct pair *q, int late)
{
	int64_t end = now_ms() + 30000;

	while (q->got < q->sent || q->txdone < q->sent) {
		if (now_ms() > end) {
			fprintf(stderr, "pair %u: sent %u, received %u, tx done %u\n",
				q->idx, q->sent, q->got, q->txdone);
			peer_dump_log();
			CHECK(0);
		}
		pump(0, late);
	}
}

/*
 * Blackhole the page of a receive buffer of q the next frame takes after
 * its first (a miss mid-frame), or of its first if they share a page.
 */
static void blackhole_next(const struct pair *q)
{
	uint64_t first, p;
	unsigned int i;

	CHECK(q->fifo_n >= 3);
	first = (q->rx_gpa + q->fifo[q->fifo_head] * RX_BUF) & ~(PG - 1);
	blackhole = IOVA_OFF + first;
	for (i = 1; i < 3; i++) {
		p = (q->rx_gpa + q->fifo[(q->fifo_head + i) % NRX] * RX_BUF) &
		    ~(PG - 1);
		if (p != first) {
			blackhole = IOVA_OFF + p;
			return;
		}
	}
}

/* Do the next frame's first receive buffers lie in two pages? */
static bool straddles(const struct pair *q)
{
	uint64_t first = (q->rx_gpa + q->fifo[q->fifo_head] * RX_BUF) / PG;
	unsigned int i;

	for (i = 1; i < 3; i++)
		if ((q->rx_gpa + q->fifo[(q->fifo_head + i) % NRX] * RX_BUF) /
			    PG !=
		    first)
			return true;
	return false;
}

/* Unmap every receive buffer of every pair. */
static void unmap_rx_pools(void)
{
	unsigned int i;

	for (i = 0; i < NPAIRS; i++)
		CHECK_EQ(vh_vu_frontend_iotlb_invalidate(
				 fe, IOVA_OFF + pairs[i].rx_gpa, NRX * RX_BUF),
			 0);
}

/*
 * One frame on q that waits: the receive pools unmapped, a page of its
 * buffers never answered; it does not come back.
 */
static bool blackhole_missed(void)
{
	unsigned int i;

	for (i = 0; i < n_pend; i++)
		if (pend[i] == blackhole)
			return true;
	return false;
}

/*
 * One frame of q waits on the blackhole: pumped until the daemon asked
 * for that page (a loaded machine is only slower), then 300 ms in which
 * nothing may come back.
 */
static void hold_frame(struct pair *q)
{
	unsigned int got = q->got;
	int64_t end;

	unmap_rx_pools();
	blackhole_next(q);
	send_frames(q, 1);
	end = now_ms() + 30000;
	while (!blackhole_missed() && now_ms() < end)
		pump(20, 0);
	CHECK(blackhole_missed());
	pump(300, 0);
	CHECK_EQ(q->got, got);
}

/* The daemon's counter NAME from its exit line for pair p. */
static unsigned long long counter(const char *log, unsigned int pair,
				  const char *name)
{
	char key[32];
	const char *p;

	snprintf(key, sizeof(key), "pair %u ", pair);
	p = strstr(log, key);
	CHECK(p != NULL);
	snprintf(key, sizeof(key), " %s=", name);
	p = strstr(p, key);
	CHECK(p != NULL);
	return strtoull(p + strlen(key), NULL, 10);
}

int main(void)
{
	const uint64_t f30 = 1ull << VH_VU_F_PROTOCOL_FEATURES;
	const char *daemon = getenv("VUNET_DAEMON");
	static char sock[128], log[16384];
	uint64_t features, pf, dg, ag, ug;
	unsigned int i, j, m1, m2, tx0, got0, got1;
	struct pair *q0 = &pairs[0], *q1 = &pairs[1];
	int64_t t0, t1;
	ssize_t n;
	int r, fd, status = 0;

	if (!daemon)
		daemon = "tools/vhost-user-net";
	(void)peer_find; /* the daemon is ours: found in the build tree */
	if (access(daemon, X_OK) != 0) {
		printf("SKIP: %s not built\n", daemon);
		return TEST_SKIP;
	}
	peer_mkdir("vunet-iotlb");
	snprintf(sock, sizeof(sock), "%s/net.sock", peer_dir);
	{
		char arg[160];
		const char *argv[] = { daemon, arg, "--loopback",
				       "--queue-pairs=2", NULL };

		snprintf(arg, sizeof(arg), "--socket-path=%s", sock);
		peer_start(argv);
	}
	r = peer_wait_socket(sock, 20000);
	if (r < 0)
		peer_dump_log();
	CHECK_EQ(r, 0);

	CHECK_EQ(vh_ctx_new(&ctx), 0);
	CHECK_EQ(vh_vu_frontend_new(ctx, &fe), 0);
	vh_vu_frontend_set_ops(fe, &fe_ops, NULL);
	CHECK_EQ(vh_vu_frontend_connect(fe, sock, 5000), 0);
	CHECK_EQ(vh_vu_frontend_negotiate(
			 fe,
			 (1ull << VH_VU_VIRTIO_F_VERSION_1) |
				 (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM) |
				 (1ull << VIRTIO_NET_F_MRG_RXBUF) | f30,
			 (1ull << VH_VU_PROTOCOL_F_MQ) |
				 (1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |
				 (1ull << VH_VU_PROTOCOL_F_BACKEND_REQ) |
				 (1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS),
			 &features, &pf),
		 0);
	CHECK(features & (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM));
	CHECK(features & (1ull << VIRTIO_NET_F_MRG_RXBUF));
	CHECK(pf & (1ull << VH_VU_PROTOCOL_F_BACKEND_REQ));
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(fe), 0);

	CHECK_EQ(vh_mem_new(ctx, &mem), 0);
	CHECK_EQ(vh_mem_add_memfd(mem, 0, MEM_SIZE, (void **)&guest), 0);
	CHECK_EQ(vh_vu_frontend_share_mem(fe, mem), 0);
	for (i = 0; i < NPAIRS; i++) {
		struct pair *q = &pairs[i];

		q->idx = i;
		q->rx_gpa = 0x100000 + i * 0x100000; /* NRX * RX_BUF fits */
		q->tx_gpa = 0x800000 + i * NTX * TX_BUF;
		CHECK_EQ(vh_drvq_new(ctx, mem, 2 * i, QSIZE,
				     2 * i * 0x10000, &q->rxq), 0);
		CHECK_EQ(vh_drvq_new(ctx, mem, 2 * i + 1, QSIZE,
				     (2 * i + 1) * 0x10000, &q->txq), 0);
		CHECK_EQ(vh_drvq_set_features(q->rxq, features), 0);
		CHECK_EQ(vh_drvq_set_features(q->txq, features), 0);
		for (j = 0; j < 4; j++) {
			q->fds[j] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
			CHECK(q->fds[j] >= 0);
		}
		CHECK_EQ(vh_drvq_set_kick_fd(q->rxq, q->fds[0]), 0);
		CHECK_EQ(vh_drvq_set_call_fd(q->rxq, q->fds[1]), 0);
		CHECK_EQ(vh_drvq_set_kick_fd(q->txq, q->fds[2]), 0);
		CHECK_EQ(vh_drvq_set_call_fd(q->txq, q->fds[3]), 0);
		for (j = 0; j < NRX; j++)
			post_rx(q, j);
		CHECK_EQ(vh_drvq_get_addrs(q->rxq, &dg, &ag, &ug), 0);
		CHECK_EQ(vh_vu_frontend_setup_vq_iova(
				 fe, 2 * i, q->rxq, q->fds[0], q->fds[1],
				 IOVA_OFF + dg, IOVA_OFF + ag, IOVA_OFF + ug),
			 0);
		CHECK_EQ(vh_drvq_get_addrs(q->txq, &dg, &ag, &ug), 0);
		CHECK_EQ(vh_vu_frontend_setup_vq_iova(
				 fe, 2 * i + 1, q->txq, q->fds[2], q->fds[3],
				 IOVA_OFF + dg, IOVA_OFF + ag, IOVA_OFF + ug),
			 0);
		CHECK(vh_drvq_kick(q->rxq) >= 0);
	}

	/* 1. cold: every page misses, answered 30 ms late */
	send_frames(q0, NFRAMES);
	send_frames(q1, NFRAMES);
	drain(q0, 30);
	drain(q1, 30);
	m1 = n_miss;
	CHECK(m1 > 0);
	printf("cold: %u + %u frames back intact, %u misses\n", q0->got,
	       q1->got, m1);

	/* 2. the receive pools and all four rings unmapped */
	unmap_rx_pools();
	CHECK_EQ(vh_vu_frontend_iotlb_invalidate(fe, IOVA_OFF, RING_AREA), 0);
	send_frames(q0, NFRAMES);
	send_frames(q1, NFRAMES);
	drain(q0, 30);
	drain(q1, 30);
	m2 = n_miss;
	CHECK(m2 > m1);
	printf("invalidated mid-run: %u + %u frames back intact, %u misses\n",
	       NFRAMES, NFRAMES, m2 - m1);

	/*
	 * 2a. The memory table sent again (SET_MEM_TABLE, as a front-end
	 * does when guest memory changes): what the daemon resolved through
	 * the old one is forgotten, the misses come again, and every frame
	 * still comes back.
	 */
	j = n_ring_miss;
	CHECK_EQ(vh_vu_frontend_set_mem_table(fe, mem), 0);
	send_frames(q0, NFRAMES);
	send_frames(q1, NFRAMES);
	drain(q0, 30);
	drain(q1, 30);
	/* the rings' pages, translated since case 2, miss again */
	CHECK(n_ring_miss > j);
	printf("memory table sent again: %u + %u frames back intact, %u misses (%u on the rings)\n",
	       NFRAMES, NFRAMES, n_miss - m2, n_ring_miss - j);

	/*
	 * 2b. A frame of LONG_PIECES pieces to transmit on pair 1: the
	 * daemon takes it out of the ring and gives it back unsent.  Then
	 * room is made on pair 1's receive ring (buffers kept back), a
	 * receive chain of LONG_PIECES pieces goes in before them, and
	 * enough frames follow to reach it and pass it: it comes back empty.
	 */
	{
		struct vh_sg sg[LONG_PIECES];
		unsigned int piece = (NET_HDR_LEN + FRAME_LEN) / LONG_PIECES;
		unsigned int tx1 = q1->txdone;

		for (j = 0; j < LONG_PIECES; j++) {
			sg[j].addr = IOVA_OFF + LONG_GPA + j * piece;
			sg[j].len = j + 1 < LONG_PIECES ?
					    piece :
					    NET_HDR_LEN + FRAME_LEN - j * piece;
		}
		memset(guest + LONG_GPA, 0, NET_HDR_LEN + FRAME_LEN);
		CHECK_EQ(vh_drvq_add(q1->txq, sg, LONG_PIECES, 0, q1), 0);
		CHECK(vh_drvq_kick(q1->txq) >= 0);
		send_frames(q1, 4);
		drain(q1, 0);
		/* the last frame's transmission may be pushed after its echo */
		for (j = 0; j < 1000 && q1->txdone - tx1 < 4 + 1; j++)
			pump(0, 0);
		CHECK_EQ(q1->txdone - tx1, 4 + 1);

		hold_rx = true;
		send_frames(q1, 24);
		drain(q1, 0);
		hold_rx = false;
		CHECK(n_held >= LONG_PIECES);
		for (j = 0; j < LONG_PIECES; j++) {
			sg[j].addr = IOVA_OFF + LONG_GPA + j * 16;
			sg[j].len = 16;
		}
		CHECK_EQ(vh_drvq_add(q1->rxq, sg, 0, LONG_PIECES,
				     LONG_RX_TOKEN), 0);
		/* what fits after it now, the rest at the end */
		for (j = 0; j < n_held && vh_drvq_num_free(q1->rxq) > 0; j++)
			post_rx(q1, held[j]);
		CHECK(vh_drvq_kick(q1->rxq) >= 0);
		send_frames(q1, NFRAMES + 24);
		drain(q1, 0);
		CHECK_EQ(long_rx_back, 1);
		for (; j < n_held; j++)
			post_rx(q1, held[j]);
		n_held = 0;
		CHECK(vh_drvq_kick(q1->rxq) >= 0);
		printf("chains of %u pieces on pair 1: the transmitted one given back unsent, the receive one empty; %u frames back around them\n",
		       LONG_PIECES, 4 + 24 + NFRAMES + 24);
	}

	/*
	 * 3. the receive pools unmapped, one page of pair 0's next frame
	 * never answered: that frame waits (nothing comes back, nothing
	 * short or empty), pair 0's transmit ring is taken no further than
	 * it, and pair 1 goes on; answered, pair 0's four arrive in order.
	 */
	unmap_rx_pools();
	blackhole_next(q0);
	tx0 = q0->txdone;
	got0 = q0->got;
	got1 = q1->got;
	send_frames(q0, 4);
	pump(300, 0);
	send_frames(q1, NFRAMES);
	drain(q1, 0);
	pump(200, 0);
	CHECK_EQ(q0->got, got0);
	CHECK(q0->txdone - tx0 <= 1);
	CHECK_EQ(q0->frame_bufs, 0);
	printf("blackhole on pair 0: nothing back, %u of 4 transmissions taken; pair 1 meanwhile: %u frames back\n",
	       q0->txdone - tx0, q1->got - got1);
	blackhole = 0;
	drain(q0, 0);
	printf("answered: pair 0's 4 frames back in order\n");

	/*
	 * 3b. Wait again; then SET_VRING_CALL on pair 0's receive ring (the
	 * same eventfd) takes the ring back and starts it again.  The
	 * waiting frame is lost; the buffers it had popped come back empty,
	 * in the order posted.  The next frames arrive as ever.
	 */
	/* a frame whose buffers span two pages: one is popped before the miss */
	for (j = 0; j < 4 && !straddles(q0); j++) {
		send_frames(q0, 1);
		drain(q0, 0);
	}
	CHECK(straddles(q0));
	hold_frame(q0);
	empty_ok = true;
	CHECK_EQ(vh_vu_frontend_set_vring_call(fe, 0, q0->fds[1]), 0);
	blackhole = 0;
	pump(300, 0);
	{
		int64_t end = now_ms() + 10000;

		while (!n_empty && now_ms() < end)
			pump(50, 0);
	}
	if (!n_empty)
		peer_dump_log();
	CHECK(n_empty >= 1);
	empty_ok = false;
	q0->got++; /* that frame's seq never comes */
	send_frames(q0, 4);
	drain(q0, 0);
	printf("ring taken back with a frame waiting: it is lost, its %u buffers came back empty; 4 frames after it\n",
	       n_empty);

	/*
	 * 4. never answered, and the front-end goes away: the daemon lets
	 * go of the waiting ring, counts the held frame, exits at SIGTERM.
	 */
	hold_frame(q0);
	CHECK_EQ(n_bad, 0);
	vh_vu_frontend_unref(fe);
	/*
	 * The daemon serves one front-end after the other on one control
	 * thread: a second one's reply means the first one's rings were
	 * taken back (and the held frame counted).  Measured from the
	 * disconnect: a ring waiting for a miss does not hold it up.
	 */
	t0 = now_ms();
	CHECK_EQ(vh_vu_frontend_new(ctx, &fe), 0);
	CHECK_EQ(vh_vu_frontend_connect(fe, sock, 5000), 0);
	CHECK_EQ(vh_vu_frontend_negotiate(fe, features, pf, &dg, &ag), 0);
	t1 = now_ms();
	printf("disconnected with a miss unanswered: the next front-end served after %lld ms\n",
	       (long long)(t1 - t0));
	CHECK(t1 - t0 < 5000);
	vh_vu_frontend_unref(fe);
	fe = NULL;
	t0 = now_ms();
	CHECK_EQ(kill(peer_pid, SIGTERM), 0);
	while ((r = waitpid(peer_pid, &status, WNOHANG)) == 0 &&
	       now_ms() - t0 < 10000)
		nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	t1 = now_ms();
	CHECK_EQ(r, peer_pid);
	peer_pid = -1;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	printf("daemon exited %lld ms after SIGTERM\n",
	       (long long)(t1 - t0));
	CHECK(t1 - t0 < 5000);

	fd = open(peer_log, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	n = read(fd, log, sizeof(log) - 1);
	CHECK(n > 0);
	log[n] = 0;
	close(fd);
	printf("daemon:\n%s", strstr(log, "vhost-user-net: pair 0 ") ?
				      strstr(log, "vhost-user-net: pair 0 ") :
				      log);
	/* every frame sent came back but pair 0's last, held at the end */
	CHECK_EQ(counter(log, 0, "tx_frames"), q0->sent);
	/* and the frame lost in 3b */
	CHECK_EQ(counter(log, 0, "rx_frames"), q0->sent - 2);
	CHECK_EQ(counter(log, 0, "drops"), 2);
	CHECK_EQ(counter(log, 0, "errors"), 0);
	CHECK(counter(log, 0, "rx_waits") >= 2);
	CHECK_EQ(counter(log, 1, "tx_frames"), q1->sent);
	CHECK_EQ(counter(log, 1, "rx_frames"), q1->sent);
	CHECK_EQ(counter(log, 1, "drops"), 0);
	/* the long chain to transmit (2b) */
	CHECK_EQ(counter(log, 1, "errors"), 1);
	CHECK(counter(log, 1, "rx_waits") >= 1);

	for (i = 0; i < NPAIRS; i++) {
		vh_drvq_unref(pairs[i].rxq);
		vh_drvq_unref(pairs[i].txq);
		for (j = 0; j < 4; j++)
			close(pairs[i].fds[j]);
	}
	vh_mem_unref(mem);
	vh_ctx_unref(ctx);
	printf("vhost-user-net behind an IOMMU: %u frames through misses on 2 pairs, none dropped while waiting; %u misses answered\n",
	       q0->sent - 2 + q1->sent, n_miss);
	return 0;
}
