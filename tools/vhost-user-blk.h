/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-blk: the block device (virtio 1.3, 5.2 "Block Device") behind
 * the vhost-user back-end.  vhost-user-blk-io.c parses and runs requests
 * and keeps the inflight region; vhost-user-blk.c is the program.
 */
#ifndef _VHOST_USER_BLK_H_
#define _VHOST_USER_BLK_H_

#include <linux/virtio_blk.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

struct vh_ctx;
struct vh_devq;

#define BLK_SECTOR 512u
#define BLK_MAX_QUEUES 64u
/* iovecs per request: a chain may hold max(num, 1024) indirect descs */
#define BLK_IOV_MAX 4096u
/* DISCARD / WRITE_ZEROES segments per request */
#define BLK_DWZ_SEG_MAX 1u
/* O_DIRECT bounce buffer */
#define BLK_BOUNCE_SIZE (1u << 20)

struct blk_dev {
	struct vh_ctx *ctx;
	int fd;
	bool read_only;
	bool direct;
	bool is_bdev;
	uint64_t capacity; /* sectors */
	uint32_t blk_size; /* logical block size */
	uint8_t phys_exp; /* log2(physical / logical) */
	uint32_t opt_io; /* optimal I/O size, blocks */
	uint32_t seg_max;
	uint32_t max_dwz_sectors; /* discard / write-zeroes limit */
	unsigned int num_queues;
	char serial[VIRTIO_BLK_ID_BYTES];
	uint64_t features; /* negotiated */
	/*
	 * 5.2.4 writeback = 0 (VIRTIO_BLK_F_CONFIG_WCE): writes are on stable
	 * storage before they complete.  Set by the control thread, read by
	 * the queue workers (__atomic).
	 */
	int writethrough;
};

/* Per-queue state: used by one thread at a time. */
struct blk_queue {
	struct blk_dev *dev;
	unsigned int idx;
	struct vh_devq *vring;
	uint8_t *inflight; /* QueueRegionSplit of this queue, or NULL */
	uint64_t counter; /* last DescStateSplit.counter handed out */
	struct iovec *iov; /* BLK_IOV_MAX: the popped element */
	struct iovec *slice; /* BLK_IOV_MAX: its data part */
	void *bounce; /* O_DIRECT, BLK_BOUNCE_SIZE aligned */
	uint64_t served; /* requests completed (statistics) */
	unsigned int warned; /* hostile-request messages logged */
};

/* Messages go to stderr (the journal, or the test's log). */
#define blk_log(dev, level, ...)                                            \
	do {                                                                \
		(void)(dev);                                                \
		fprintf(stderr, "vhost-user-blk: " level ": " __VA_ARGS__); \
	} while (0)

/* Open the backing file (or block device); fills size and topology. */
int blk_dev_open(struct blk_dev *dev, const char *path);
void blk_dev_close(struct blk_dev *dev);
/* Virtio features the device offers (5.2.3). */
uint64_t blk_dev_features(const struct blk_dev *dev);
/* Config space (5.2.4), little-endian as on the wire. */
void blk_dev_config(const struct blk_dev *dev, struct virtio_blk_config *cfg);

int blk_queue_init(struct blk_queue *q, struct blk_dev *dev, unsigned int idx);
void blk_queue_fini(struct blk_queue *q);
/*
 * The ring is handed over.  region/len: the queue's inflight area (NULL
 * without one).  Requests a previous instance left in flight are run
 * again, oldest first, before new ones.  Returns 0 or -errno.
 */
int blk_queue_start(struct blk_queue *q, struct vh_devq *vr, void *region,
		    size_t len);
/*
 * Serve every available request.  Returns the number completed (the
 * caller notifies the driver when > 0) or -errno when the ring broke.
 */
int blk_queue_process(struct blk_queue *q);
void blk_queue_stop(struct blk_queue *q);

#endif
