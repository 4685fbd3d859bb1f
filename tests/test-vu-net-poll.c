// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * tools/vhost-user-net --sink --poll-us=1000000 against our front-end: a
 * guest that transmits a frame every 300 ms, always within the worker's
 * busy-poll budget, must not keep the transmit ring's handler running:
 * GET_VRING_BASE (the control thread taking the ring back) is answered
 * within the one spin it waits for, not when the frames stop (the handler
 * spun again after every frame, up to 4096 frames in one call).  Every
 * frame sent before the stop comes back used.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "libvhost.h"
#include "test-vu-frontend-util.h"

#define MEM_SIZE (4u << 20)
#define QSIZE 256
#define TX_GPA 0x100000ull
#define FRAME 72 /* a 12-byte virtio_net_hdr (VERSION_1) and 60 bytes */
#define NFRAMES 12
#define GAP_MS 300

static struct vh_mem *mem;
static uint8_t *guest;
static struct vh_drvq *rxq, *txq;
static int fds[4]; /* rx kick, rx call, tx kick, tx call */
static unsigned int sent, used;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reap(void)
{
	void *token;
	uint32_t len;
	int r;

	while ((r = vh_drvq_get_used(txq, &token, &len)) == 1)
		__atomic_add_fetch(&used, 1, __ATOMIC_RELEASE);
	CHECK_EQ(r, 0);
}

/* The guest: a frame every GAP_MS, reaped as it goes; txq is its own. */
static void *sender(void *arg)
{
	unsigned int i;

	(void)arg;
	for (i = 0; i < NFRAMES; i++) {
		struct vh_sg sg = { TX_GPA + i * 128ull, FRAME };

		memset(guest + sg.addr, 0, 12);
		memset(guest + sg.addr + 12, (int)i, FRAME - 12);
		CHECK_EQ(vh_drvq_add(txq, &sg, 1, 0,
				     (void *)(uintptr_t)(i + 1)),
			 0);
		CHECK(vh_drvq_kick(txq) >= 0);
		__atomic_add_fetch(&sent, 1, __ATOMIC_RELEASE);
		usleep(GAP_MS * 1000);
		reap();
	}
	return NULL;
}

int main(void)
{
	const uint64_t f30 = 1ull << VH_VU_F_PROTOCOL_FEATURES;
	const char *daemon = getenv("VUNET_DAEMON");
	static char sock[128];
	uint64_t features, pf;
	struct vh_vu_frontend *fe;
	unsigned int j, sent_then;
	struct vh_ctx *ctx;
	pthread_t t;
	uint32_t base;
	int64_t t0, t1;
	int r;

	if (!daemon)
		daemon = "tools/vhost-user-net";
	(void)peer_find; /* the daemon is ours: found in the build tree */
	if (access(daemon, X_OK) != 0) {
		printf("SKIP: %s not built\n", daemon);
		return TEST_SKIP;
	}
	peer_mkdir("vunet-poll");
	snprintf(sock, sizeof(sock), "%s/net.sock", peer_dir);
	{
		char arg[160];
		const char *argv[] = { daemon, arg, "--sink",
				       "--poll-us=1000000", NULL };

		snprintf(arg, sizeof(arg), "--socket-path=%s", sock);
		peer_start(argv);
	}
	r = peer_wait_socket(sock, 20000);
	if (r < 0)
		peer_dump_log();
	CHECK_EQ(r, 0);

	CHECK_EQ(vh_ctx_new(&ctx), 0);
	CHECK_EQ(vh_vu_frontend_new(ctx, &fe), 0);
	CHECK_EQ(vh_vu_frontend_connect(fe, sock, 5000), 0);
	CHECK_EQ(vh_vu_frontend_negotiate(
			 fe, (1ull << VH_VU_VIRTIO_F_VERSION_1) | f30,
			 (1ull << VH_VU_PROTOCOL_F_MQ) |
				 (1ull << VH_VU_PROTOCOL_F_REPLY_ACK),
			 &features, &pf),
		 0);
	CHECK_EQ(vh_mem_new(ctx, &mem), 0);
	CHECK_EQ(vh_mem_add_memfd(mem, 0, MEM_SIZE, (void **)&guest), 0);
	CHECK_EQ(vh_vu_frontend_share_mem(fe, mem), 0);
	CHECK_EQ(vh_drvq_new(ctx, mem, 0, QSIZE, 0, &rxq), 0);
	CHECK_EQ(vh_drvq_new(ctx, mem, 1, QSIZE, 0x10000, &txq), 0);
	CHECK_EQ(vh_drvq_set_features(rxq, features), 0);
	CHECK_EQ(vh_drvq_set_features(txq, features), 0);
	for (j = 0; j < 4; j++) {
		fds[j] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		CHECK(fds[j] >= 0);
	}
	CHECK_EQ(vh_drvq_set_kick_fd(rxq, fds[0]), 0);
	CHECK_EQ(vh_drvq_set_call_fd(rxq, fds[1]), 0);
	CHECK_EQ(vh_drvq_set_kick_fd(txq, fds[2]), 0);
	CHECK_EQ(vh_drvq_set_call_fd(txq, fds[3]), 0);
	CHECK_EQ(vh_vu_frontend_setup_vq(fe, 0, rxq, fds[0], fds[1]), 0);
	CHECK_EQ(vh_vu_frontend_setup_vq(fe, 1, txq, fds[2], fds[3]), 0);

	CHECK_EQ(pthread_create(&t, NULL, sender, NULL), 0);
	/* the handler is spinning between frames by now */
	usleep(2 * GAP_MS * 1000 + GAP_MS * 1000 / 3);
	t0 = now_ms();
	CHECK_EQ(vh_vu_frontend_get_vring_base(fe, 1, &base), 0);
	t1 = now_ms();
	sent_then = __atomic_load_n(&sent, __ATOMIC_ACQUIRE);
	printf("frames every %d ms into a 1 s busy-poll: GET_VRING_BASE answered after %lld ms, %u frames sent by then\n",
	       GAP_MS, (long long)(t1 - t0), sent_then);
	/* one spin is cut short by the next frame: at most GAP_MS */
	CHECK(t1 - t0 < 1500);
	CHECK(sent_then < NFRAMES);
	CHECK_EQ(pthread_join(t, NULL), 0);
	reap();
	/* the ring stopped where the device had used them all */
	CHECK(base >= 2);
	CHECK_EQ(__atomic_load_n(&used, __ATOMIC_ACQUIRE), base);
	CHECK(peer_alive());

	vh_vu_frontend_unref(fe);
	peer_kill();
	vh_drvq_unref(rxq);
	vh_drvq_unref(txq);
	for (j = 0; j < 4; j++)
		close(fds[j]);
	vh_mem_unref(mem);
	vh_ctx_unref(ctx);
	return 0;
}
