// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Our vhost-user front-end against DPDK's vhost back-end: testpmd with a
 * net_vhost port (server mode) in macswap forwarding.  We share memfd
 * guest memory, set up the RX (0) and TX (1) rings with vh_drvq, put frames
 * on TX with a virtio-net header, and check that each comes back on RX
 * with the MAC addresses swapped and every other byte intact.
 * Built twice: with TEST_PACKED the front-end asks for VIRTIO_F_RING_PACKED,
 * DPDK's vhost library serves it, and the rings are packed.
 * SKIPs only without dpdk-testpmd (package dpdk-dev, which
 * scripts/install-deps installs); testpmd failing to start (a crash, an
 * option it rejects, its EAL) is a failure.  testpmd and its runtime
 * directory are removed on every path.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
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
#define BUF_SIZE 2048
#define NRX 128
#define NFRAMES 64
#define FRAME_LEN 60

#ifdef TEST_PACKED
#define LAYOUT (1ull << VH_VU_VIRTIO_F_RING_PACKED)
#else
#define LAYOUT 0ull
#endif

/*
 * GET_VRING_BASE after n one-descriptor buffers: split, the index; packed,
 * position and wrap counter (DPDK sends the avail half only).
 */
static uint32_t base_after(unsigned int n)
{
	if (!LAYOUT)
		return n;
	return (n % QSIZE) | (n / QSIZE % 2 == 0 ? 0x8000u : 0);
}

static struct vh_ctx *ctx;
static struct vh_mem *mem;
static struct vh_drvq *rxq, *txq;
static uint8_t *guest;
static int fds[4]; /* rx kick, rx call, tx kick, tx call */

static const uint8_t mac_a[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a };
static const uint8_t mac_b[6] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x0b };

static void make_frame(uint8_t *f, unsigned int seq)
{
	unsigned int i;

	memcpy(f, mac_b, 6);     /* destination */
	memcpy(f + 6, mac_a, 6); /* source */
	f[12] = 0x88;            /* local experimental ethertype */
	f[13] = 0xb5;
	for (i = 14; i < FRAME_LEN; i++)
		f[i] = (uint8_t)(seq * 3 + i);
	f[14] = (uint8_t)seq;
	f[15] = (uint8_t)(seq >> 8);
}

int main(void)
{
	const uint64_t f30 = 1ull << VH_VU_F_PROTOCOL_FEATURES;
	const char *pmd = peer_find("dpdk-testpmd");
	static char sock[128], vdev[192], prefix[64], rundir[128];
	struct vh_vu_frontend *fe;
	uint64_t features, pf;
	unsigned int i, got = 0, txdone = 0, seen[NFRAMES] = { 0 };
	uint32_t base;
	int r, spins;

	peer_mkdir("vufe-dpdk");
	snprintf(sock, sizeof(sock), "%s/vhost.sock", peer_dir);
	snprintf(vdev, sizeof(vdev), "net_vhost0,iface=%s,queues=1", sock);
	snprintf(prefix, sizeof(prefix), "vufe%d", (int)getpid());
	snprintf(rundir, sizeof(rundir), "/var/run/dpdk/%s", prefix);
	peer_cleanup_extra = rundir;
	{
		/*
		 * When testpmd starts forwarding it first drains and frees
		 * whatever its RX queues hold.  If we connect while it is
		 * still waiting for the link, our TX frames are in the ring
		 * by then and were thrown away (RX 64, TX 0: a CI failure).
		 * --no-lsc-interrupt makes that the order on every run (it
		 * waits for link up, which our DRIVER_OK brings), and
		 * --no-flush-rx keeps the frames for the forwarding core.
		 */
		const char *argv[] = {
			pmd, "--no-huge", "-m", "512", "--no-pci",
			"--file-prefix", prefix, "--lcores", "0@0,1@1",
			"--vdev", vdev, "--", "--forward-mode=macswap",
			"--auto-start", "--no-lsc-interrupt", "--no-flush-rx",
			"--total-num-mbufs=16384", "--stats-period", "1", NULL
		};

		peer_start(argv);
	}
	/* its EAL start without hugepages is slow on a loaded machine */
	r = peer_wait_socket(sock, 180000);
	if (r < 0) {
		/* -ECHILD: it exited (peer_alive() printed its log) */
		fprintf(stderr, "dpdk-testpmd did not %s\n",
			r == -ECHILD ? "start" : "listen within 180 s");
		if (r != -ECHILD)
			peer_dump_log();
		CHECK_EQ(r, 0);
	}

	CHECK_EQ(vh_ctx_new(&ctx), 0);
	CHECK_EQ(vh_vu_frontend_new(ctx, &fe), 0);
	CHECK_EQ(vh_vu_frontend_connect(fe, sock, 5000), 0);
	CHECK_EQ(vh_vu_frontend_negotiate(
			 fe,
			 (1ull << VH_VU_VIRTIO_F_VERSION_1) |
				 (1ull << VIRTIO_NET_F_MRG_RXBUF) | f30 | LAYOUT,
			 (1ull << VH_VU_PROTOCOL_F_MQ) |
				 (1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |
				 (1ull << VH_VU_PROTOCOL_F_RARP) |
				 (1ull << VH_VU_PROTOCOL_F_NET_MTU) |
				 (1ull << VH_VU_PROTOCOL_F_STATUS) |
				 (1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS),
			 &features, &pf),
		 0);
	printf("offered features %#llx protocol %#llx; negotiated %#llx / %#llx\n",
	       (unsigned long long)vh_vu_frontend_offered_features(fe),
	       (unsigned long long)vh_vu_frontend_offered_protocol_features(fe),
	       (unsigned long long)features, (unsigned long long)pf);
	CHECK(features & (1ull << VH_VU_VIRTIO_F_VERSION_1));
	CHECK_EQ(features & LAYOUT, LAYOUT);
	if (pf & (1ull << VH_VU_PROTOCOL_F_MQ)) {
		uint64_t n;

		CHECK_EQ(vh_vu_frontend_get_queue_num(fe, &n), 0);
		printf("GET_QUEUE_NUM: %llu\n", (unsigned long long)n);
		CHECK(n >= 1);
	}

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

	/* RX buffers first, so nothing testpmd sends back is dropped */
	memset(guest + RX_BUF_GPA, 0xcc, NRX * BUF_SIZE);
	for (i = 0; i < NRX; i++) {
		struct vh_sg sg = { RX_BUF_GPA + i * BUF_SIZE, BUF_SIZE };

		CHECK_EQ(vh_drvq_add(rxq, &sg, 0, 1,
				   (void *)(uintptr_t)(i + 1)),
			 0);
	}
	CHECK(vh_drvq_kick_prepare(rxq) >= 0);

	CHECK_EQ(vh_vu_frontend_share_mem(fe, mem), 0);
	CHECK_EQ(vh_vu_frontend_setup_vq(fe, 0, rxq, fds[0], fds[1]), 0);
	CHECK_EQ(vh_vu_frontend_setup_vq(fe, 1, txq, fds[2], fds[3]), 0);
	/*
	 * With STATUS negotiated the back-end waits for DRIVER_OK (ACKNOWLEDGE
	 * | DRIVER | FEATURES_OK | DRIVER_OK), as a virtio device does.
	 */
	if (pf & (1ull << VH_VU_PROTOCOL_F_STATUS)) {
		uint8_t st = 0;

		CHECK_EQ(vh_vu_frontend_set_status(fe, 0x0f), 0);
		CHECK_EQ(vh_vu_frontend_get_status(fe, &st), 0);
		printf("GET_STATUS: %#x\n", st);
		CHECK_EQ(st, 0x0f);
	}

	/* frames on TX: a zeroed virtio-net header, then the frame */
	for (i = 0; i < NFRAMES; i++) {
		uint8_t *b = guest + TX_BUF_GPA + i * BUF_SIZE;
		struct vh_sg sg = { TX_BUF_GPA + i * BUF_SIZE,
				    NET_HDR_LEN + FRAME_LEN };

		memset(b, 0, NET_HDR_LEN);
		make_frame(b + NET_HDR_LEN, i);
		CHECK_EQ(vh_drvq_add(txq, &sg, 1, 0,
				   (void *)(uintptr_t)(i + 1)),
			 0);
	}
	CHECK(vh_drvq_kick(rxq) >= 0);
	CHECK(vh_drvq_kick(txq) >= 0);

	for (spins = 0; spins < 200 && (got < NFRAMES || txdone < NFRAMES);
	     spins++) {
		void *token;
		uint32_t len;

		while ((r = vh_drvq_get_used(txq, &token, &len)) == 1)
			txdone++;
		CHECK(r == 0);
		while ((r = vh_drvq_get_used(rxq, &token, &len)) == 1) {
			unsigned int b = (unsigned int)(uintptr_t)token - 1;
			uint8_t *p = guest + RX_BUF_GPA + b * BUF_SIZE;
			uint8_t want[FRAME_LEN];
			unsigned int seq;
			uint16_t nbuf;

			CHECK(b < NRX);
			CHECK_EQ(len, NET_HDR_LEN + FRAME_LEN);
			/* header: num_buffers 1 with MRG_RXBUF */
			memcpy(&nbuf, p + 10, 2);
			if (features & (1ull << VIRTIO_NET_F_MRG_RXBUF))
				CHECK_EQ(nbuf, 1);
			seq = p[NET_HDR_LEN + 14] |
			      (p[NET_HDR_LEN + 15] << 8);
			CHECK(seq < NFRAMES);
			make_frame(want, seq);
			/* macswap: destination and source exchanged */
			CHECK(memcmp(p + NET_HDR_LEN, mac_a, 6) == 0);
			CHECK(memcmp(p + NET_HDR_LEN + 6, mac_b, 6) == 0);
			CHECK(memcmp(p + NET_HDR_LEN + 12, want + 12,
				     FRAME_LEN - 12) == 0);
			seen[seq]++;
			got++;
		}
		CHECK(r == 0);
		if (got < NFRAMES || txdone < NFRAMES) {
			efd_wait(fds[1], 50);
			efd_wait(fds[3], 1);
			if (!peer_alive())
				CHECK(0);
		}
	}
	printf("TX completed %u, RX received %u of %u frames\n", txdone, got,
	       NFRAMES);
	if (got != NFRAMES)
		peer_dump_log();
	CHECK_EQ(txdone, NFRAMES);
	CHECK_EQ(got, NFRAMES);
	for (i = 0; i < NFRAMES; i++)
		CHECK_EQ(seen[i], 1);

	/* NET_SET_MTU: a sane MTU is acked, a tiny one refused (REPLY_ACK) */
	if ((pf & (1ull << VH_VU_PROTOCOL_F_NET_MTU)) &&
	    (pf & (1ull << VH_VU_PROTOCOL_F_REPLY_ACK))) {
		CHECK_EQ(vh_vu_frontend_net_set_mtu(fe, 1500), 0);
		r = vh_vu_frontend_net_set_mtu(fe, 10);
		printf("NET_SET_MTU 1500: ok, 10: %s\n", strerror(-r));
		CHECK(r < 0);
	}
	/*
	 * SEND_RARP: the back-end injects a RARP "from the guest" on its
	 * receive side, which macswap sends back to us: destination our
	 * MAC, source the broadcast address, ethertype 0x8035.
	 */
	if (pf & (1ull << VH_VU_PROTOCOL_F_RARP)) {
		static const uint8_t rarp_mac[6] = { 0x02, 0, 0, 0, 0, 0x5e };
		static const uint8_t bcast[6] = { 0xff, 0xff, 0xff,
						  0xff, 0xff, 0xff };
		bool seen_rarp = false;

		CHECK_EQ(vh_vu_frontend_send_rarp(fe, rarp_mac), 0);
		/* the injection happens on the next dequeue: give it a frame */
		{
			uint8_t *b = guest + TX_BUF_GPA;
			struct vh_sg sg = { TX_BUF_GPA,
					    NET_HDR_LEN + FRAME_LEN };

			memset(b, 0, NET_HDR_LEN);
			make_frame(b + NET_HDR_LEN, NFRAMES);
			CHECK_EQ(vh_drvq_add(txq, &sg, 1, 0, (void *)1), 0);
			CHECK(vh_drvq_kick(txq) >= 0);
		}
		for (spins = 0; spins < 100 && !seen_rarp; spins++) {
			void *token;
			uint32_t len;

			while (vh_drvq_get_used(txq, &token, &len) == 1)
				txdone++;
			while ((r = vh_drvq_get_used(rxq, &token, &len)) == 1) {
				unsigned int b =
					(unsigned int)(uintptr_t)token - 1;
				uint8_t *p = guest + RX_BUF_GPA +
					     b * BUF_SIZE + NET_HDR_LEN;

				CHECK(b < NRX);
				got++;
				if (p[12] == 0x80 && p[13] == 0x35) {
					CHECK(memcmp(p, rarp_mac, 6) == 0);
					CHECK(memcmp(p + 6, bcast, 6) == 0);
					seen_rarp = true;
				}
			}
			CHECK(r == 0);
			if (!seen_rarp)
				efd_wait(fds[1], 50);
		}
		printf("SEND_RARP: RARP frame %sseen\n", seen_rarp ? "" : "not ");
		CHECK(seen_rarp);
	}

	/*
	 * Stop the rings: TX consumed all our frames.  The back-end may still
	 * have been completing the RARP trigger frame (and echoing it) when we
	 * left the loop above; once GET_VRING_BASE has answered the ring is
	 * stopped and every used element it wrote is visible, so drain both
	 * used rings before comparing.
	 */
	CHECK_EQ(vh_vu_frontend_get_vring_base(fe, 1, &base), 0);
	{
		void *token;
		uint32_t len;

		while (vh_drvq_get_used(txq, &token, &len) == 1)
			txdone++;
	}
	CHECK_EQ(base & 0xffff, base_after(txdone));
	CHECK_EQ(vh_vu_frontend_get_vring_base(fe, 0, &base), 0);
	{
		void *token;
		uint32_t len;

		while ((r = vh_drvq_get_used(rxq, &token, &len)) == 1)
			got++;
		CHECK(r == 0);
	}
	CHECK_EQ(base & 0xffff, base_after(got));

	vh_vu_frontend_unref(fe);
	vh_drvq_unref(rxq);
	vh_drvq_unref(txq);
	vh_mem_unref(mem);
	for (i = 0; i < 4; i++)
		close(fds[i]);
	vh_ctx_unref(ctx);
	printf("dpdk-testpmd macswap (%s rings): %u frames round-tripped\n",
	       LAYOUT ? "packed" : "split", NFRAMES);
	return 0;
}
