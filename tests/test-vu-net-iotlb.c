// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * tools/vhost-user-net --loopback behind a vIOMMU, against our front-end:
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
 *  3. one receive buffer page never answered: that frame waits, nothing
 *     is returned short or empty, and the transmit ring is not consumed
 *     past it; answered, everything arrives in order;
 *  4. the same with the page never answered and the front-end going away:
 *     the daemon notices within a measured deadline and exits at SIGTERM
 *     (it does not hang on the ring that waits), counting the one frame it
 *     held as a drop.
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
#define MEM_SIZE (8u << 20)
#define QSIZE 256
#define RX_RING_GPA 0x0
#define TX_RING_GPA 0x10000
#define RX_BUF_GPA 0x100000
#define TX_BUF_GPA 0x400000
#define RX_BUF 1024
#define TX_BUF 4096
#define NTX 256 /* transmit buffer slots */
#define NRX 192
#define NFRAMES 48
#define FRAME_LEN 3000
#define PG 4096ull
#define IOVA_OFF 0x5500000000ull

static struct vh_ctx *ctx;
static struct vh_mem *mem;
static struct vh_drvq *rxq, *txq;
static uint8_t *guest;
static int fds[4]; /* rx kick, rx call, tx kick, tx call */
static struct vh_vu_frontend *fe;

/* misses from the back-end, answered from the main loop */
static uint64_t pend[512];
static unsigned int n_pend, n_miss, n_bad;
static uint64_t blackhole; /* an IOVA page never answered, or 0 */

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

static void send_frame(unsigned int slot, unsigned int seq)
{
	uint8_t *b = guest + TX_BUF_GPA + slot * TX_BUF;
	struct vh_sg sg = { IOVA_OFF + TX_BUF_GPA + slot * TX_BUF,
			    NET_HDR_LEN + FRAME_LEN };
	unsigned int i;

	memset(b, 0, NET_HDR_LEN);
	for (i = 0; i < FRAME_LEN; i++)
		b[NET_HDR_LEN + i] = pattern(seq, i);
	CHECK_EQ(vh_drvq_add(txq, &sg, 1, 0, (void *)(uintptr_t)(slot + 1)),
		 0);
}

/*
 * The frame being put together from receive buffers: MRG_RXBUF gives
 * num_buffers in the first one's header (5.1.6.4), the rest follow in
 * used-ring order.
 */
static uint8_t frame[NET_HDR_LEN + FRAME_LEN];
static unsigned int frame_len, frame_bufs, frame_want;
/* receive buffers in the order the driver posted them (avail order) */
static unsigned int fifo[NRX], fifo_head, fifo_n;
/* frames received (the next seq expected) and transmit completions */
static unsigned int got, txdone;

static void post_rx(unsigned int b)
{
	struct vh_sg sg = { IOVA_OFF + RX_BUF_GPA + b * RX_BUF, RX_BUF };

	memset(guest + RX_BUF_GPA + b * RX_BUF, 0xcc, RX_BUF);
	CHECK_EQ(vh_drvq_add(rxq, &sg, 0, 1, (void *)(uintptr_t)(b + 1)), 0);
	CHECK(fifo_n < NRX);
	fifo[(fifo_head + fifo_n++) % NRX] = b;
}

/* One used receive buffer; true when it completed a frame (checked). */
static bool rx_buffer(unsigned int b, uint32_t len)
{
	const uint8_t *p = guest + RX_BUF_GPA + b * RX_BUF;
	unsigned int i;

	CHECK(b < NRX);
	/* split ring, one pair: buffers are used in the order posted */
	CHECK(fifo_n > 0);
	CHECK_EQ(fifo[fifo_head], b);
	fifo_head = (fifo_head + 1) % NRX;
	fifo_n--;
	/* never returned short or empty: the daemon holds, it does not drop */
	CHECK(len > 0 && len <= RX_BUF);
	CHECK(frame_len + len <= sizeof(frame));
	memcpy(frame + frame_len, p, len);
	frame_len += len;
	if (!frame_bufs++) {
		CHECK(len >= NET_HDR_LEN);
		frame_want = p[10] | (p[11] << 8);
		CHECK(frame_want >= 1 && frame_want <= NRX);
	}
	if (frame_bufs < frame_want)
		return false;
	CHECK_EQ(frame_len, NET_HDR_LEN + FRAME_LEN);
	for (i = 0; i < 10; i++)
		CHECK_EQ(frame[i], 0);
	/* in order, every byte */
	for (i = 0; i < FRAME_LEN; i++)
		if (frame[NET_HDR_LEN + i] != pattern(got, i)) {
			fprintf(stderr, "frame %u: byte %u differs\n", got, i);
			CHECK(0);
		}
	frame_len = frame_bufs = 0;
	return true;
}

/* Collect completions for ms, answering misses `late` ms after they came. */
static void pump(int ms, int late)
{
	int64_t end = now_ms() + ms;
	void *token;
	uint32_t len;
	int r;

	do {
		while ((r = vh_drvq_get_used(txq, &token, &len)) == 1)
			txdone++;
		CHECK_EQ(r, 0);
		while ((r = vh_drvq_get_used(rxq, &token, &len)) == 1) {
			unsigned int b = (unsigned int)(uintptr_t)token - 1;

			if (rx_buffer(b, len))
				got++;
			post_rx(b);
			CHECK(vh_drvq_kick(rxq) >= 0);
		}
		CHECK_EQ(r, 0);
		serve(5, late);
		efd_wait(fds[1], 1);
		efd_wait(fds[3], 1);
		if (!peer_alive())
			CHECK(0);
	} while (now_ms() < end);
}

/* Send n frames, seq after the last sent. */
static unsigned int sent;
static void send_frames(unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++, sent++)
		send_frame(sent % NTX, sent);
	CHECK(vh_drvq_kick(txq) >= 0);
}

/* Until every frame sent came back and every transmission completed. */
static void drain(int late)
{
	int64_t end = now_ms() + 30000;

	while (got < sent || txdone < sent) {
		if (now_ms() > end) {
			fprintf(stderr, "sent %u, received %u, tx done %u\n",
				sent, got, txdone);
			peer_dump_log();
			CHECK(0);
		}
		pump(0, late);
	}
}

/*
 * Blackhole the page of a receive buffer the next frame takes after its
 * first (a miss mid-frame), or of its first if they share a page.
 */
static void blackhole_next(void)
{
	uint64_t first, p;
	unsigned int i;

	CHECK(fifo_n >= 3);
	first = (RX_BUF_GPA + fifo[fifo_head] * RX_BUF) & ~(PG - 1);
	blackhole = IOVA_OFF + first;
	for (i = 1; i < 3; i++) {
		p = (RX_BUF_GPA + fifo[(fifo_head + i) % NRX] * RX_BUF) &
		    ~(PG - 1);
		if (p != first) {
			blackhole = IOVA_OFF + p;
			return;
		}
	}
}

/* The daemon's counter NAME from its exit line ("pair 0 ..."). */
static unsigned long long counter(const char *log, const char *name)
{
	const char *p = strstr(log, "pair 0 ");
	char key[32];

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
	unsigned int i, m1, m2, tx0;
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
		const char *argv[] = { daemon, arg, "--loopback", NULL };

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
	CHECK_EQ(vh_drvq_new(ctx, mem, 0, QSIZE, RX_RING_GPA, &rxq), 0);
	CHECK_EQ(vh_drvq_new(ctx, mem, 1, QSIZE, TX_RING_GPA, &txq), 0);
	CHECK_EQ(vh_drvq_set_features(rxq, features), 0);
	CHECK_EQ(vh_drvq_set_features(txq, features), 0);
	for (i = 0; i < 4; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		CHECK(fds[i] >= 0);
	}
	CHECK_EQ(vh_drvq_set_kick_fd(rxq, fds[0]), 0);
	CHECK_EQ(vh_drvq_set_call_fd(rxq, fds[1]), 0);
	CHECK_EQ(vh_drvq_set_kick_fd(txq, fds[2]), 0);
	CHECK_EQ(vh_drvq_set_call_fd(txq, fds[3]), 0);
	CHECK_EQ(vh_vu_frontend_share_mem(fe, mem), 0);
	for (i = 0; i < NRX; i++)
		post_rx(i);
	CHECK_EQ(vh_drvq_get_addrs(rxq, &dg, &ag, &ug), 0);
	CHECK_EQ(vh_vu_frontend_setup_vq_iova(fe, 0, rxq, fds[0], fds[1],
					      IOVA_OFF + dg, IOVA_OFF + ag,
					      IOVA_OFF + ug), 0);
	CHECK_EQ(vh_drvq_get_addrs(txq, &dg, &ag, &ug), 0);
	CHECK_EQ(vh_vu_frontend_setup_vq_iova(fe, 1, txq, fds[2], fds[3],
					      IOVA_OFF + dg, IOVA_OFF + ag,
					      IOVA_OFF + ug), 0);
	CHECK(vh_drvq_kick(rxq) >= 0);

	/* 1. cold: every page misses, answered 30 ms late */
	send_frames(NFRAMES);
	drain(30);
	m1 = n_miss;
	CHECK(m1 > 0);
	printf("cold: %u frames back intact, %u misses\n", got, m1);

	/* 2. the receive pool and both rings unmapped */
	CHECK_EQ(vh_vu_frontend_iotlb_invalidate(fe, IOVA_OFF + RX_BUF_GPA,
						 NRX * RX_BUF), 0);
	CHECK_EQ(vh_vu_frontend_iotlb_invalidate(fe, IOVA_OFF + RX_RING_GPA,
						 0x20000), 0);
	send_frames(NFRAMES);
	drain(30);
	m2 = n_miss;
	CHECK(m2 > m1);
	printf("invalidated mid-run: %u frames back intact, %u misses\n",
	       NFRAMES, m2 - m1);

	/*
	 * 3. the receive pool unmapped, one page of the next frame's
	 * buffers never answered: that frame waits (nothing comes back,
	 * nothing short or empty), the transmit ring is taken no further
	 * than it; answered, all four arrive in order.
	 */
	CHECK_EQ(vh_vu_frontend_iotlb_invalidate(fe, IOVA_OFF + RX_BUF_GPA,
						 NRX * RX_BUF), 0);
	blackhole_next();
	tx0 = txdone;
	r = (int)got;
	send_frames(4);
	pump(500, 0);
	CHECK_EQ(got, (unsigned int)r);
	CHECK(txdone - tx0 <= 1);
	CHECK_EQ(frame_bufs, 0);
	printf("blackhole: nothing back in 500 ms, %u of 4 transmissions taken\n",
	       txdone - tx0);
	blackhole = 0;
	drain(0);
	printf("answered: the 4 frames back in order\n");

	/*
	 * 4. never answered, and the front-end goes away: the daemon lets
	 * go of the waiting ring, counts the held frame, exits at SIGTERM.
	 */
	CHECK_EQ(vh_vu_frontend_iotlb_invalidate(fe, IOVA_OFF + RX_BUF_GPA,
						 NRX * RX_BUF), 0);
	blackhole_next();
	r = (int)got;
	send_frames(1);
	pump(300, 0);
	CHECK_EQ(got, (unsigned int)r);
	CHECK_EQ(n_bad, 0);
	vh_vu_frontend_unref(fe);
	fe = NULL;
	/* the disconnect is handled before the signal (one control thread) */
	nanosleep(&(struct timespec){ 0, 200 * 1000 * 1000 }, NULL);
	t0 = now_ms();
	CHECK_EQ(kill(peer_pid, SIGTERM), 0);
	while ((r = waitpid(peer_pid, &status, WNOHANG)) == 0 &&
	       now_ms() - t0 < 10000)
		nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL);
	t1 = now_ms();
	CHECK_EQ(r, peer_pid);
	peer_pid = -1;
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	printf("daemon exited %lld ms after SIGTERM with a miss unanswered\n",
	       (long long)(t1 - t0));
	CHECK(t1 - t0 < 5000);

	fd = open(peer_log, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	n = read(fd, log, sizeof(log) - 1);
	CHECK(n > 0);
	log[n] = 0;
	close(fd);
	printf("daemon: %s", strstr(log, "pair 0 ") ? strstr(log, "pair 0 ") :
						      log);
	/* every frame sent came back but the last, held at the disconnect */
	CHECK_EQ(counter(log, "tx_frames"), sent);
	CHECK_EQ(counter(log, "rx_frames"), sent - 1);
	CHECK_EQ(counter(log, "drops"), 1);
	CHECK_EQ(counter(log, "errors"), 0);
	CHECK(counter(log, "rx_waits") >= 2);

	vh_drvq_unref(rxq);
	vh_drvq_unref(txq);
	vh_mem_unref(mem);
	for (i = 0; i < 4; i++)
		close(fds[i]);
	vh_ctx_unref(ctx);
	printf("vhost-user-net behind an IOMMU: %u frames through misses, none dropped while waiting; %u misses answered\n",
	       sent - 1, n_miss);
	return 0;
}
