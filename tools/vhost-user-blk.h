/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhost-user-blk: the block device (virtio 1.3, 5.2 "Block Device") behind
 * the vhost-user back-end.  vhost-user-blk-io.c parses requests, runs them
 * synchronously (the sync engine) and keeps the inflight region;
 * vhost-user-blk-uring.c runs them asynchronously on io_uring (the uring
 * engine); vhost-user-blk.c is the program.
 */
#ifndef _VHOST_USER_BLK_H_
#define _VHOST_USER_BLK_H_

#include <linux/virtio_blk.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/uio.h>

struct vh_ctx;
struct vh_daemon;
struct vh_devq;
struct blk_uring;

#define BLK_SECTOR 512u
#define BLK_MAX_QUEUES 64u
/*
 * iovecs per request: a chain may hold max(num, 1024) indirect descs, so
 * --queue-size is at most this (a longer chain would stop the queue)
 */
#define BLK_IOV_MAX 4096u
/* DISCARD / WRITE_ZEROES segments per request */
#define BLK_DWZ_SEG_MAX 1u
/* O_DIRECT bounce buffer: unaligned guest buffers go through it in chunks */
#define BLK_BOUNCE_SIZE (1u << 20)
/*
 * uring engine: bounce buffers of one queue's requests in flight, at most
 * (past one): each request has its own, so a guest with queue size
 * unaligned requests in flight would otherwise hold that many MiB of ours
 */
#define BLK_BOUNCE_BUDGET (16u << 20)
/* data iovecs kept inside a request; longer lists are allocated */
#define BLK_REQ_IOV 8u
/* requests popped before the sync engine runs them (and pushes them) */
#define BLK_SYNC_BATCH 64u

enum blk_engine {
	BLK_IO_URING = 0,
	BLK_IO_SYNC = 1,
};

struct blk_dev {
	struct vh_ctx *ctx;
	struct vh_daemon *daemon;
	int fd;
	bool read_only;
	bool direct;
	bool is_bdev;
	enum blk_engine engine;
	uint64_t capacity; /* sectors */
	uint32_t blk_size; /* logical block size */
	uint32_t mem_align; /* O_DIRECT buffer address alignment */
	/*
	 * O_DIRECT cannot pin the driver's memory (EFAULT): VDUSE's domain
	 * pages under virtio_vdpa are VM_IO.  Set once, by any worker: every
	 * read and write goes through the bounce buffer from then on.
	 */
	bool direct_bounce;
	uint8_t phys_exp; /* log2(physical / logical) */
	uint32_t opt_io; /* optimal I/O size, blocks */
	uint32_t seg_max;
	uint32_t max_dwz_sectors; /* discard / write-zeroes limit */
	unsigned int num_queues;
	unsigned int num_threads;
	char serial[VIRTIO_BLK_ID_BYTES];
	uint64_t features; /* negotiated */
	/*
	 * 5.2.4 writeback = 0 (VIRTIO_BLK_F_CONFIG_WCE): writes are on stable
	 * storage before they complete.  Set by the control thread, read by
	 * the queue workers (__atomic).
	 */
	int writethrough;
	/*
	 * --poll-us: how long a queue's worker spins on an empty ring (and
	 * on the io_uring completion queue) before it sleeps (uring engine)
	 */
	uint64_t poll_ns;
	/*
	 * --inline-reads: buffered reads try preadv2(RWF_NOWAIT) on the
	 * worker before io_uring (uring engine, not with O_DIRECT)
	 */
	bool inline_reads;
};

enum blk_op {
	BLK_OP_NONE = 0, /* answered when parsed: nothing to run */
	BLK_OP_READ,
	BLK_OP_WRITE,
	BLK_OP_FLUSH,
	BLK_OP_DISCARD,
	BLK_OP_ZEROES,
};

/*
 * Requests one handle_event call takes, either engine, before it lets the
 * worker loop run again: a guest that keeps the ring full would otherwise
 * hold the worker, the other queues on it, and the control thread that
 * waits to take a ring back (SET_MEM_TABLE, migration's SET_FEATURES).
 */
#define BLK_CALL_MAX 4096

/*
 * One request between pop and push.  The iovecs are copies of the popped
 * element's (guest memory stays mapped until the push); the element itself
 * is only named by head, so the push (and its dirty logging) sees the chain
 * as the driver made it.
 */
struct blk_req {
	uint16_t head;
	uint8_t op;     /* enum blk_op */
	uint8_t status; /* VIRTIO_BLK_S_* once known */
	bool unmap;     /* WRITE_ZEROES with VIRTIO_BLK_WRITE_ZEROES_FLAG_UNMAP */
	bool active;    /* popped, not yet pushed */
	uint8_t stage;  /* uring engine: what the outstanding SQE does */
	bool reissued;  /* uring engine: issued again after -ECANCELED */
	uint8_t *status_ptr; /* the last device-writable byte, or NULL */
	uint32_t in_len; /* the chain's device-writable bytes: the used length */
	uint64_t offset;  /* bytes */
	uint64_t len;     /* data bytes, or the DISCARD/WRITE_ZEROES range */
	uint64_t done;    /* bytes transferred so far */
	unsigned int niov, cur; /* data iovecs, and the first unfinished one */
	struct iovec *iov; /* inl or allocated */
	void *bounce;      /* O_DIRECT with unaligned buffers (uring) */
	size_t bounce_len; /* bytes of the chunk in flight through it */
	size_t bounce_size; /* bytes of it (the queue's bounce budget) */
	struct blk_req *next; /* offload list, or waiting for a bounce */
	struct iovec inl[BLK_REQ_IOV];
};

/* Per-queue state: used by one thread at a time. */
struct blk_queue {
	struct blk_dev *dev;
	unsigned int idx;
	unsigned int thread; /* the daemon worker serving it */
	enum blk_engine engine;
	struct vh_devq *vring;
	uint8_t *inflight; /* QueueRegionSplit of this queue, or NULL */
	uint64_t counter; /* last DescStateSplit.counter handed out */
	struct iovec *iov; /* BLK_IOV_MAX: the popped element */
	struct blk_req *reqs; /* one per descriptor head of the ring */
	unsigned int nreqs;
	struct vh_devq_used_elem *used; /* nreqs: completed, to push */
	unsigned int ndone;
	void *bounce; /* O_DIRECT, BLK_BOUNCE_SIZE aligned (sync engine) */
	struct blk_uring *uring; /* uring engine */
	uint64_t served; /* requests completed (statistics) */
	unsigned int warned; /* hostile-request messages logged */
	/*
	 * Requests of a previous instance still to run again: the rest of a
	 * split ring's heads (oldest first), or the packed ring's own queue.
	 * Left when one missed an IOTLB translation: the update kicks the
	 * ring, and they go on before any new request.
	 */
	uint16_t *resub_heads;
	unsigned int resub_n, resub_next;
	bool resub_packed;
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
 * Serve every available request.  Returns the number popped or -errno
 * when the ring broke.
 */
int blk_queue_process(struct blk_queue *q);
/*
 * Run again what a previous instance left in flight and is still waiting
 * (see resub_heads): 1 if some is still waiting, 0 if none, -errno.
 */
int blk_queue_resubmit(struct blk_queue *q);
/* The ring is taken back: every request in flight completes first. */
void blk_queue_stop(struct blk_queue *q);

/* ---- shared by the engines (vhost-user-blk-io.c) ---- */

/* Pop the next request into q->reqs and mark it in flight: 1, 0, -errno. */
int blk_queue_pop(struct blk_queue *q, struct blk_req **out);
/* Run a parsed request synchronously; sets r->status. */
void blk_req_run_sync(struct blk_queue *q, struct blk_req *r);
/* Status byte written, buffers released, queued for the next push. */
void blk_queue_complete(struct blk_queue *q, struct blk_req *r);
/*
 * Push what blk_queue_complete() queued as one batch keeping the inflight
 * region exact, then notify the driver once if it wants it (event idx).
 */
int blk_queue_flush_done(struct blk_queue *q);
/* The buffers suit O_DIRECT as they are (no bounce buffer needed). */
bool blk_req_direct_ok(const struct blk_dev *dev, const struct blk_req *r);
/* O_DIRECT failed with EFAULT: bounce from now on (logged once); true */
bool blk_direct_bounce(struct blk_dev *dev);
size_t blk_iov_to_buf(const struct iovec *iov, unsigned int n, size_t off,
		      void *buf, size_t len);
size_t blk_buf_to_iov(const struct iovec *iov, unsigned int n, size_t off,
		      const void *buf, size_t len);

/* ---- the uring engine (vhost-user-blk-uring.c) ---- */

/*
 * Set the queue's io_uring up: 0, or -errno with why in one log line
 * (the caller then uses the sync engine).  entries: the largest ring.
 */
int blk_uring_init(struct blk_queue *q, unsigned int entries);
void blk_uring_fini(struct blk_queue *q);
/* The ring is handed over / taken back (drains what is in flight). */
int blk_uring_start(struct blk_queue *q);
void blk_uring_stop(struct blk_queue *q);
int blk_uring_process(struct blk_queue *q);

#endif
