/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers for the vhost-user-blk tests: our front-end (vh_vu_frontend and
 * vh_drvq rings over memfd guest memory) driving tools/vhost-user-blk, run
 * as a child in a private directory (test-vu-frontend-util.h).
 */
#ifndef _VH_TEST_VU_BLK_UTIL_H_
#define _VH_TEST_VU_BLK_UTIL_H_

#include <linux/io_uring.h>
#include <linux/virtio_blk.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include "libvhost.h"
#include "test-vu-frontend-util.h"

#define DRV_MAX_QUEUES 16
#define DRV_QSIZE 128
#define DRV_MEM_SIZE (64u << 20)
/* ring q at q * 64 KiB (16 below 1 MiB); request buffers from 1 MiB up */
#define DRV_RING_GPA(q) ((uint64_t)(q) << 16)
#define DRV_BUF_GPA 0x100000ull

#define F_BIT(b) (1ull << (b))

struct drv {
	struct vh_ctx *ctx;
	struct vh_vu_frontend *fe;
	struct vh_mem *mem;
	uint8_t *guest;
	unsigned int nq;
	struct vh_drvq *vq[DRV_MAX_QUEUES];
	int kick[DRV_MAX_QUEUES], call[DRV_MAX_QUEUES];
	uint64_t features, pf;
	uint64_t extra_features; /* offered on top of DRV_BLK_FEATURES */
	uint64_t drop_features;  /* taken out of DRV_BLK_FEATURES */
};

/* The daemon under test: $VUBLK_DAEMON or tools/vhost-user-blk (SKIP). */
static const char *blk_daemon_path(void)
{
	const char *p = getenv("VUBLK_DAEMON");

	(void)peer_find; /* the daemon is ours: found in the build tree */
	if (!p)
		p = "tools/vhost-user-blk";
	if (access(p, X_OK) != 0) {
		printf("SKIP: %s not built\n", p);
		exit(TEST_SKIP);
	}
	return p;
}

/* The engines the daemon has (--io=): every test runs with each. */
static const char *const blk_engines[] = { "uring", "sync" };

/*
 * The daemon's log says which engine serves: io_uring wherever this
 * process can set one up (then the daemon must use it), else the one line
 * saying why not.
 */
/* A uring run fell back to sync: the program ends as a SKIP (blk_exit()). */
static bool blk_uring_fell_back;

static void blk_check_engine(const char *engine)
{
	struct io_uring_params p;
	char buf[8192];
	ssize_t n;
	int fd, rfd;
	bool want_uring = !strcmp(engine, "uring");

	memset(&p, 0, sizeof(p));
	if (want_uring) {
		rfd = (int)syscall(__NR_io_uring_setup, 4, &p);
		if (rfd >= 0)
			close(rfd);
		else
			want_uring = false;
	}
	fd = open(peer_log, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	CHECK(n > 0);
	buf[n] = 0;
	if (want_uring) {
		CHECK(strstr(buf, "io_uring I/O") != NULL);
	} else {
		CHECK(strstr(buf, "synchronous I/O") != NULL);
		if (!strcmp(engine, "uring")) {
			/* say it: the uring engine was not what ran */
			CHECK(strstr(buf, "io_uring unavailable") != NULL);
			printf("NOTE: io_uring cannot be set up here: the uring runs fell back to sync\n");
			blk_uring_fell_back = true;
		}
	}
}

/*
 * The program's exit status: 0, or a SKIP when io_uring could not be set
 * up and the uring runs served synchronously (they checked the sync
 * engine, not the one they name: a claim for tests/expected-skips, not a
 * pass).
 */
static inline int blk_exit(void)
{
	if (!blk_uring_fell_back)
		return 0;
	printf("SKIP: io_uring cannot be set up here: the uring runs served synchronously\n");
	return TEST_SKIP;
}

/*
 * A directory for O_DIRECT images on a disk file system (not tmpfs, which
 * has no O_DIRECT before Linux 6.6): /var/tmp, as the benchmark uses.
 */
static char blk_direct_dir[64];
static char blk_direct_img[96];

static void blk_direct_cleanup(void)
{
	if (blk_direct_img[0])
		unlink(blk_direct_img);
	if (blk_direct_dir[0])
		rmdir(blk_direct_dir);
}

static const char *blk_direct_image(uint64_t size)
{
	int fd;

	if (!blk_direct_dir[0]) {
		snprintf(blk_direct_dir, sizeof(blk_direct_dir),
			 "/var/tmp/vublk-direct.XXXXXX");
		CHECK(mkdtemp(blk_direct_dir));
		snprintf(blk_direct_img, sizeof(blk_direct_img), "%s/disk.img",
			 blk_direct_dir);
		atexit(blk_direct_cleanup);
	}
	fd = open(blk_direct_img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
		  0600);
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, (off_t)size), 0);
	close(fd);
	return blk_direct_img;
}

/* Virtio features a Linux virtio-blk driver would take. */
#define DRV_BLK_FEATURES                                                      \
	(F_BIT(VH_VU_VIRTIO_F_VERSION_1) | F_BIT(VH_VU_F_PROTOCOL_FEATURES) | \
	 F_BIT(VH_VU_VIRTIO_F_RING_EVENT_IDX) |                               \
	 F_BIT(VH_VU_VIRTIO_F_RING_INDIRECT_DESC) |                           \
	 F_BIT(VIRTIO_BLK_F_SEG_MAX) | F_BIT(VIRTIO_BLK_F_BLK_SIZE) |         \
	 F_BIT(VIRTIO_BLK_F_TOPOLOGY) | F_BIT(VIRTIO_BLK_F_FLUSH) |           \
	 F_BIT(VIRTIO_BLK_F_MQ) | F_BIT(VIRTIO_BLK_F_DISCARD) |               \
	 F_BIT(VIRTIO_BLK_F_WRITE_ZEROES) | F_BIT(VIRTIO_BLK_F_RO) |          \
	 F_BIT(VIRTIO_BLK_F_CONFIG_WCE))

#define DRV_BLK_PROTOCOL                                                  \
	(F_BIT(VH_VU_PROTOCOL_F_MQ) | F_BIT(VH_VU_PROTOCOL_F_REPLY_ACK) | \
	 F_BIT(VH_VU_PROTOCOL_F_CONFIG) |                                 \
	 F_BIT(VH_VU_PROTOCOL_F_INFLIGHT_SHMFD) |                         \
	 F_BIT(VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS))

/* Guest memory and eventfds: once per test, kept across reconnections. */
static void drv_init(struct drv *d, unsigned int nq)
{
	unsigned int q;

	memset(d, 0, sizeof(*d));
	CHECK(nq >= 1 && nq <= DRV_MAX_QUEUES);
	d->nq = nq;
	CHECK_EQ(vh_ctx_new(&d->ctx), 0);
	CHECK_EQ(vh_mem_new(d->ctx, &d->mem), 0);
	CHECK_EQ(vh_mem_add_memfd(d->mem, 0, DRV_MEM_SIZE, (void **)&d->guest),
		 0);
	for (q = 0; q < nq; q++) {
		d->kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		d->call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		CHECK(d->kick[q] >= 0 && d->call[q] >= 0);
	}
}

/* Connect and negotiate (no rings yet). */
static void drv_connect(struct drv *d, const char *sock)
{
	CHECK_EQ(vh_vu_frontend_new(d->ctx, &d->fe), 0);
	CHECK_EQ(vh_vu_frontend_connect(d->fe, sock, 5000), 0);
	CHECK_EQ(vh_vu_frontend_negotiate(d->fe,
					  (DRV_BLK_FEATURES & ~d->drop_features) |
						  d->extra_features,
					  DRV_BLK_PROTOCOL, &d->features,
					  &d->pf),
		 0);
	CHECK_EQ(d->features & d->drop_features, 0);
	CHECK(d->features & F_BIT(VH_VU_VIRTIO_F_VERSION_1));
	CHECK_EQ(d->features & d->extra_features, d->extra_features);
	CHECK(d->pf & F_BIT(VH_VU_PROTOCOL_F_CONFIG));
	CHECK_EQ(vh_vu_frontend_share_mem(d->fe, d->mem), 0);
}

/* Fresh rings for every queue. */
static void drv_setup_rings(struct drv *d)
{
	unsigned int q;

	for (q = 0; q < d->nq; q++) {
		CHECK_EQ(vh_drvq_new(d->ctx, d->mem, q, DRV_QSIZE,
				   DRV_RING_GPA(q), &d->vq[q]),
			 0);
		CHECK_EQ(vh_drvq_set_features(d->vq[q], d->features), 0);
		CHECK_EQ(vh_drvq_set_kick_fd(d->vq[q], d->kick[q]), 0);
		CHECK_EQ(vh_drvq_set_call_fd(d->vq[q], d->call[q]), 0);
		CHECK_EQ(vh_vu_frontend_setup_vq(d->fe, q, d->vq[q], d->kick[q],
						 d->call[q]),
			 0);
	}
}

static void drv_fini(struct drv *d)
{
	unsigned int q;

	vh_vu_frontend_unref(d->fe);
	for (q = 0; q < d->nq; q++) {
		vh_drvq_unref(d->vq[q]);
		close(d->kick[q]);
		close(d->call[q]);
	}
	vh_mem_unref(d->mem);
	vh_ctx_unref(d->ctx);
}

/* Wait for one used buffer on queue q: 1 with token/len, 0 after ms. */
static inline int drv_wait_used(struct drv *d, unsigned int q, void **token,
				uint32_t *len, int ms)
{
	int i, r;

	for (i = 0; i <= ms / 20; i++) {
		r = vh_drvq_get_used(d->vq[q], token, len);
		CHECK(r >= 0);
		if (r == 1)
			return 1;
		if (!peer_alive())
			return 0;
		efd_wait(d->call[q], 20);
	}
	return 0;
}

#endif
