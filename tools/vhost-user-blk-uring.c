// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhost-user-blk: the asynchronous engine, on io_uring (one ring per
 * virtqueue).
 *
 * The queue's worker pops the available requests, marks each in flight in
 * the inflight region, prepares its SQE and goes on: one io_uring_enter
 * submits every BLK_PIPE_BATCH of them, and what completed meanwhile is
 * pushed right then, so the driver refills the ring while the worker pops
 * the rest.  Completions are reaped from the worker's own epoll loop too:
 * the ring's eventfd (io_uring_register_eventfd) is watched through
 * vh_daemon_watch_fd(), so a CQE wakes the worker like a kick does.
 * Completed requests are pushed in one batch per sub-batch or wake-up,
 * with one notification (event idx decides whether it is sent).
 *
 * Reads and writes go straight between the file and guest memory (vectored
 * I/O on the request's own iovecs); with O_DIRECT, buffers the block layer
 * would refuse go through an aligned bounce buffer, 1 MiB at a time.  With
 * --inline-reads a buffered read is first tried on the worker with
 * preadv2(RWF_NOWAIT) (read_inline()); io_uring gets what the page cache
 * did not hold.  (Measured in bench/vu_blk: no gain over io_uring, which
 * tries a page-cache read inline in io_uring_enter itself, for a whole
 * batch at once; hence off by default.)
 * Writethrough writes carry RWF_DSYNC, so they are on stable storage when
 * their CQE comes.  FLUSH is an IORING_OP_FSYNC (datasync) submitted after
 * the request was popped: every write the driver saw complete before it
 * sent the flush had its CQE before that, so the sync covers it (5.2.6).
 * DISCARD / WRITE_ZEROES of a file are IORING_OP_FALLOCATE where the kernel
 * has it; a block device (ioctls), a kernel without it, or a fallocate that
 * fails for a write-zeroes runs on a helper thread with the synchronous
 * code and its fallbacks, never on the worker.
 *
 * Taking the ring back (memory change, GET_VRING_BASE, disconnection) waits
 * for every request in flight and pushes it: the guest memory its buffers
 * point to is only unmapped afterwards.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>
#include <linux/falloc.h>

#include "libvhost.h"
#include "busy-poll.h"
#include "vhost-user-blk.h"

#ifndef RWF_DSYNC
#define RWF_DSYNC 0x00000002
#endif
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif

/*
 * The inline read path backs off after this many page-cache misses in a
 * row (each cost a syscall for nothing), for BLK_NOWAIT_SKIP reads.
 */
#define BLK_NOWAIT_MISSES 16u
#define BLK_NOWAIT_SKIP 1024u

/* What a request's outstanding SQE does. */
enum {
	STAGE_RW = 1,
	STAGE_FSYNC, /* FLUSH */
	STAGE_FALLOC,
	STAGE_SYNC, /* writethrough: after a write-zeroes */
};

struct blk_uring {
	unsigned int submit_warned; /* io_uring_submit errors logged */
	struct io_uring ring;
	int efd;
	bool ring_ok;
	bool watched;
	bool has_fallocate;
	unsigned int outstanding; /* requests handed to the kernel or helper */
	/* buffered reads tried inline (preadv2 RWF_NOWAIT) first */
	bool nowait;
	unsigned int misses; /* in a row */
	unsigned int skip;   /* reads left before the next try */
	/* helper thread: DISCARD / WRITE_ZEROES the ring cannot run */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	bool thread_running;
	bool quit;
	struct blk_req *todo, *fin;
	/* bounce buffers allocated (BLK_BOUNCE_BUDGET), requests waiting */
	size_t bounce_bytes;
	struct blk_req *bwait, *bwait_tail;
	unsigned long bounce_waited; /* requests that waited */
	bool bounce_draining; /* done() is starting waiting requests */
};

static void efd_wake(int fd)
{
	uint64_t one = 1;

	if (write(fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return;
}

/* ---------------------------------------------------------------------- */
/* helper thread                                                          */
/* ---------------------------------------------------------------------- */

static void *helper_main(void *arg)
{
	struct blk_queue *q = arg;
	struct blk_uring *u = q->uring;
	struct blk_req *r;

	pthread_mutex_lock(&u->lock);
	for (;;) {
		while (!u->todo && !u->quit)
			pthread_cond_wait(&u->cond, &u->lock);
		if (!u->todo)
			break;
		r = u->todo;
		u->todo = r->next;
		pthread_mutex_unlock(&u->lock);
		/* DISCARD / WRITE_ZEROES only: touches the device, not q */
		blk_req_run_sync(q, r);
		pthread_mutex_lock(&u->lock);
		r->next = u->fin;
		u->fin = r;
		efd_wake(u->efd);
	}
	pthread_mutex_unlock(&u->lock);
	return NULL;
}

static int offload(struct blk_queue *q, struct blk_req *r)
{
	struct blk_uring *u = q->uring;
	struct blk_req **p;
	int e = 0;

	pthread_mutex_lock(&u->lock);
	if (!u->thread_running) {
		e = pthread_create(&u->thread, NULL, helper_main, q);
		u->thread_running = e == 0;
	}
	if (!e) {
		/* in order: a later write-zeroes never overtakes an earlier */
		r->next = NULL;
		for (p = &u->todo; *p; p = &(*p)->next)
			;
		*p = r;
		pthread_cond_signal(&u->cond);
	}
	pthread_mutex_unlock(&u->lock);
	return -e;
}

/* ---------------------------------------------------------------------- */
/* submission                                                             */
/* ---------------------------------------------------------------------- */

static struct io_uring_sqe *get_sqe(struct blk_uring *u)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);

	if (!sqe) {
		/* the SQ is as large as the ring: only after many retries */
		io_uring_submit(&u->ring);
		sqe = io_uring_get_sqe(&u->ring);
	}
	return sqe;
}

/* r's next chunk through a bounce buffer: what is left, 1 MiB at most */
static size_t bounce_chunk(const struct blk_req *r)
{
	return r->len - r->done < BLK_BOUNCE_SIZE ? (size_t)(r->len - r->done) :
						     BLK_BOUNCE_SIZE;
}

/* A bounce buffer's alignment: the file's direct I/O one, a page at least. */
static size_t bounce_align(const struct blk_dev *dev)
{
	return dev->mem_align > 4096 ? dev->mem_align : 4096;
}

/* Bytes of the bounce buffer r takes: its first chunk, the largest. */
static size_t bounce_size(const struct blk_dev *dev, const struct blk_req *r)
{
	size_t align = bounce_align(dev);

	return (bounce_chunk(r) + align - 1) / align * align;
}

/* Room for size more bytes of bounce buffers (always for a first one). */
static bool bounce_room(const struct blk_uring *u, size_t size)
{
	return !u->bounce_bytes || u->bounce_bytes + size <= BLK_BOUNCE_BUDGET;
}

/*
 * r's bounce buffer, as large as its first chunk (a guest's small
 * unaligned requests do not each take BLK_BOUNCE_SIZE of ours), charged
 * to the queue's budget.
 */
static int bounce_alloc(struct blk_queue *q, struct blk_req *r)
{
	size_t bsize = bounce_size(q->dev, r);

	if (posix_memalign(&r->bounce, bounce_align(q->dev), bsize) != 0) {
		r->bounce = NULL;
		return -ENOMEM;
	}
	r->bounce_size = bsize;
	q->uring->bounce_bytes += bsize;
	return 0;
}

/* The next piece of a read or write (all of it unless bounced or huge). */
static int prep_rw(struct blk_queue *q, struct blk_req *r)
{
	struct blk_dev *dev = q->dev;
	struct blk_uring *u = q->uring;
	bool write = r->op == BLK_OP_WRITE;
	int flags = write && __atomic_load_n(&dev->writethrough,
					     __ATOMIC_RELAXED) ?
			    RWF_DSYNC :
			    0;
	struct io_uring_sqe *sqe;

	/*
	 * Bounced from the start or not at all: a request part done without
	 * it has its iovecs advanced, which the bounce copies would count
	 * again (another queue may turn bouncing on meanwhile).
	 */
	if (dev->direct &&
	    (r->bounce || (r->done == 0 && !blk_req_direct_ok(dev, r)))) {
		size_t c = bounce_chunk(r);

		if (!r->bounce) {
			/*
			 * Past the queue's budget, or behind requests waiting
			 * already (first come, first served: a large one is
			 * not passed for ever by smaller ones), it waits for
			 * bounced requests to end (done())
			 */
			if (u->bwait || !bounce_room(u, bounce_size(dev, r))) {
				if (!u->bounce_waited++)
					blk_log(q->dev, "info",
						"queue %u: bounce buffers at their budget (%u MiB): requests wait\n",
						q->idx, BLK_BOUNCE_BUDGET >> 20);
				r->next = NULL;
				if (u->bwait_tail)
					u->bwait_tail->next = r;
				else
					u->bwait = r;
				u->bwait_tail = r;
				return 0;
			}
			if (bounce_alloc(q, r) < 0)
				return -ENOMEM;
		}
		sqe = get_sqe(u);
		if (!sqe)
			return -EBUSY;
		if (write) {
			blk_iov_to_buf(r->iov, r->niov, r->done, r->bounce, c);
			io_uring_prep_write(sqe, dev->fd, r->bounce,
					    (unsigned int)c,
					    r->offset + r->done);
		} else {
			io_uring_prep_read(sqe, dev->fd, r->bounce,
					   (unsigned int)c,
					   r->offset + r->done);
		}
		sqe->rw_flags = flags;
		r->bounce_len = c;
	} else {
		unsigned int n = r->niov - r->cur;

		sqe = get_sqe(u);
		if (!sqe)
			return -EBUSY;
		if (n > IOV_MAX)
			n = IOV_MAX;
		if (write)
			io_uring_prep_writev2(sqe, dev->fd, r->iov + r->cur, n,
					      r->offset + r->done, flags);
		else
			io_uring_prep_readv(sqe, dev->fd, r->iov + r->cur, n,
					    r->offset + r->done);
	}
	r->stage = STAGE_RW;
	io_uring_sqe_set_data(sqe, r);
	return 0;
}

static int prep_fsync(struct blk_queue *q, struct blk_req *r, uint8_t stage)
{
	struct io_uring_sqe *sqe = get_sqe(q->uring);

	if (!sqe)
		return -EBUSY;
	io_uring_prep_fsync(sqe, q->dev->fd, IORING_FSYNC_DATASYNC);
	r->stage = stage;
	io_uring_sqe_set_data(sqe, r);
	return 0;
}

static int prep_dwz(struct blk_queue *q, struct blk_req *r)
{
	struct blk_dev *dev = q->dev;
	struct io_uring_sqe *sqe;
	int mode;

	if (dev->is_bdev || !q->uring->has_fallocate)
		return offload(q, r);
	/* a hole reads back as zeroes: good for both (as the sync code) */
	mode = r->op == BLK_OP_DISCARD || r->unmap ?
		       FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE :
		       FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
	sqe = get_sqe(q->uring);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_fallocate(sqe, dev->fd, mode, r->offset, r->len);
	r->stage = STAGE_FALLOC;
	io_uring_sqe_set_data(sqe, r);
	return 0;
}

static void done(struct blk_queue *q, struct blk_req *r, uint8_t status);
static void advance(struct blk_req *r, size_t res);

/*
 * A buffered read whose data is in the page cache: copied into guest
 * memory right here with one preadv2(RWF_NOWAIT), no SQE, no CQE.  The
 * kernel answers EAGAIN instead of waiting for the disk (or for a lock),
 * and returns what is cached when only the start of the range is: the
 * rest, or all of it on EAGAIN, goes to io_uring as usual.  Returns true
 * when the request is done (its status set and queued for the push that
 * every request goes through: dirty log, inflight region, used ring).
 */
static bool read_inline(struct blk_queue *q, struct blk_req *r)
{
	struct blk_uring *u = q->uring;
	unsigned int n = r->niov < IOV_MAX ? r->niov : IOV_MAX;
	ssize_t res;

	if (u->skip) {
		u->skip--;
		return false;
	}
	res = preadv2(q->dev->fd, r->iov, (int)n, (off_t)r->offset,
		      RWF_NOWAIT);
	if (res < 0) {
		/* a file (system) without FMODE_NOWAIT: never again */
		if (errno == EOPNOTSUPP || errno == EINVAL)
			u->nowait = false;
		else if (errno == EAGAIN && ++u->misses >= BLK_NOWAIT_MISSES) {
			/* a cold cache: stop paying a syscall per read */
			u->misses = 0;
			u->skip = BLK_NOWAIT_SKIP;
		}
		return false;
	}
	u->misses = 0;
	if (res == 0) {
		/* end of file inside the disk: the file shrank under us */
		done(q, r, VIRTIO_BLK_S_IOERR);
		return true;
	}
	if ((uint64_t)res > r->len) {
		done(q, r, VIRTIO_BLK_S_IOERR);
		return true;
	}
	advance(r, (size_t)res);
	if (r->done < r->len)
		return false; /* partly cached: the rest through the ring */
	done(q, r, VIRTIO_BLK_S_OK);
	return true;
}

/* Start a parsed request: 0 when handed over, -errno to answer IOERR. */
static int start(struct blk_queue *q, struct blk_req *r)
{
	switch (r->op) {
	case BLK_OP_READ:
		if (q->uring->nowait && read_inline(q, r))
			return 0;
		return prep_rw(q, r);
	case BLK_OP_WRITE:
		return prep_rw(q, r);
	case BLK_OP_FLUSH:
		return prep_fsync(q, r, STAGE_FSYNC);
	case BLK_OP_DISCARD:
	case BLK_OP_ZEROES:
		return prep_dwz(q, r);
	default:
		return -EINVAL;
	}
}

/*
 * Every SQE prepared (the SQ's own count: one a failed submission left is
 * still there).  -EAGAIN / -EBUSY: the kernel is short of memory or the
 * CQ is full; the worker comes back for the rest even if no completion
 * would wake it.
 */
static void submit(struct blk_queue *q)
{
	struct blk_uring *u = q->uring;
	int r;

	while (io_uring_sq_ready(&u->ring)) {
		r = io_uring_submit(&u->ring);
		if (r == -EINTR)
			continue;
		/* short of memory, or the CQ full: come back for the rest */
		if (r == -EAGAIN || r == -EBUSY) {
			vh_daemon_poll_queue(q->dev->daemon, q->idx);
			return;
		}
		if (r <= 0) {
			/* anything else says so (and is not spun on) */
			if (!u->submit_warned++)
				blk_log(q->dev, "error",
					"queue %u: io_uring_submit: %s\n",
					q->idx, strerror(r < 0 ? -r : EIO));
			return;
		}
	}
}

/* ---------------------------------------------------------------------- */
/* completion                                                             */
/* ---------------------------------------------------------------------- */

static void done(struct blk_queue *q, struct blk_req *r, uint8_t status)
{
	struct blk_uring *u = q->uring;
	size_t freed = r->bounce ? r->bounce_size : 0;

	r->status = status;
	blk_queue_complete(q, r); /* frees the bounce buffer */
	u->outstanding--;
	u->bounce_bytes -= freed;
	/*
	 * A bounce buffer is back: the requests waiting for room start, in
	 * order (submitted by whoever reaped this one), each with its buffer
	 * taken here so that prep_rw() does not queue it again.  One that
	 * fails ends through here, which then leaves the loop to this one.
	 */
	if (!freed || u->bounce_draining)
		return;
	u->bounce_draining = true;
	while (u->bwait && bounce_room(u, bounce_size(q->dev, u->bwait))) {
		struct blk_req *w = u->bwait;

		u->bwait = w->next;
		if (!u->bwait)
			u->bwait_tail = NULL;
		w->next = NULL;
		if (bounce_alloc(q, w) < 0 || prep_rw(q, w) < 0)
			done(q, w, VIRTIO_BLK_S_IOERR);
	}
	u->bounce_draining = false;
}

/* Bytes res of the data moved: advance the request's iovecs. */
static void advance(struct blk_req *r, size_t res)
{
	r->done += res;
	if (r->bounce) {
		if (r->op == BLK_OP_READ)
			blk_buf_to_iov(r->iov, r->niov, r->done - res,
				       r->bounce, res);
		return;
	}
	while (r->cur < r->niov && res >= r->iov[r->cur].iov_len) {
		res -= r->iov[r->cur].iov_len;
		r->cur++;
	}
	if (r->cur < r->niov && res) {
		r->iov[r->cur].iov_base = (uint8_t *)r->iov[r->cur].iov_base +
					  res;
		r->iov[r->cur].iov_len -= res;
	}
}

static void cqe_rw(struct blk_queue *q, struct blk_req *r, int res)
{
	/*
	 * Nothing moved: the same piece again; after EFAULT (memory that
	 * O_DIRECT cannot pin) through the bounce buffer.
	 */
	bool again = res == -EAGAIN || res == -EINTR ||
		     (res == -EFAULT && q->dev->direct && !r->bounce &&
		      r->done == 0 && blk_direct_bounce(q->dev));

	if (again) {
		/* prep_rw() below */
	} else if (res <= 0 || (r->bounce && (size_t)res > r->bounce_len) ||
		   (uint64_t)res > r->len - r->done) {
		/* 0: the file shrank under us */
		done(q, r, VIRTIO_BLK_S_IOERR);
		return;
	} else {
		advance(r, (size_t)res);
		if (r->done == r->len) {
			done(q, r, VIRTIO_BLK_S_OK);
			return;
		}
	}
	/* a short transfer, or the next bounce chunk / IOV_MAX slice */
	if (prep_rw(q, r) < 0)
		done(q, r, VIRTIO_BLK_S_IOERR);
}

static void cqe_falloc(struct blk_queue *q, struct blk_req *r, int res)
{
	if (res == 0) {
		/* writethrough: the zeroes are on stable storage first */
		if (r->op == BLK_OP_ZEROES &&
		    __atomic_load_n(&q->dev->writethrough, __ATOMIC_RELAXED)) {
			if (prep_fsync(q, r, STAGE_SYNC) < 0)
				done(q, r, VIRTIO_BLK_S_IOERR);
			return;
		}
		done(q, r, VIRTIO_BLK_S_OK);
		return;
	}
	if (r->op == BLK_OP_DISCARD) {
		/* discarding is a hint: a file system without it loses nothing */
		done(q, r, res == -EOPNOTSUPP ? VIRTIO_BLK_S_OK :
						VIRTIO_BLK_S_IOERR);
		return;
	}
	/* zeroes the hard way (ZERO_RANGE, then writing them), off-thread */
	if (offload(q, r) < 0)
		done(q, r, VIRTIO_BLK_S_IOERR);
}

static void cqe(struct blk_queue *q, struct blk_req *r, int res)
{
	/*
	 * Cancelled is not failed: the kernel cancels what a thread that
	 * exits had waiting on it (task work of a buffered read retried,
	 * io-wq work), and at a stop the workers exit before the rings are
	 * taken back, whose drain runs here on another thread.  Issued again
	 * from here, once, rather than failed to the guest.
	 */
	if (res == -ECANCELED && !r->reissued) {
		int e = -EINVAL;

		r->reissued = true;
		if (r->stage == STAGE_RW)
			e = prep_rw(q, r);
		else if (r->stage == STAGE_FALLOC)
			e = prep_dwz(q, r);
		else if (r->stage == STAGE_FSYNC || r->stage == STAGE_SYNC)
			e = prep_fsync(q, r, r->stage);
		if (e < 0)
			done(q, r, VIRTIO_BLK_S_IOERR);
		return;
	}
	switch (r->stage) {
	case STAGE_RW:
		cqe_rw(q, r, res);
		break;
	case STAGE_FALLOC:
		cqe_falloc(q, r, res);
		break;
	case STAGE_FSYNC:
	case STAGE_SYNC:
		done(q, r, res < 0 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
		break;
	default:
		break;
	}
}

/*
 * COOP_TASKRUN: completions wait for the worker to enter the kernel; a
 * spinning worker never would by itself (liburing's peek enters when the
 * CQ is empty and this is set).
 */
static bool taskrun_pending(struct blk_uring *u)
{
	return IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_TASKRUN;
}

/* Every CQE there is, and what the helper finished. */
static void reap(struct blk_queue *q)
{
	struct blk_uring *u = q->uring;
	struct io_uring_cqe *cqes[64];
	struct blk_req *fin, *next;
	unsigned int n, i;

	do {
		n = io_uring_peek_batch_cqe(&u->ring, cqes, 64);
		for (i = 0; i < n; i++) {
			struct blk_req *r = io_uring_cqe_get_data(cqes[i]);

			/* our own user_data only: never NULL */
			if (r)
				cqe(q, r, cqes[i]->res);
		}
		io_uring_cq_advance(&u->ring, n);
		/* COOP_TASKRUN: completions the worker has yet to run */
		if (!n && taskrun_pending(u) && io_uring_get_events(&u->ring) >= 0)
			n = io_uring_cq_ready(&u->ring);
	} while (n);
	if (u->thread_running) {
		pthread_mutex_lock(&u->lock);
		fin = u->fin;
		u->fin = NULL;
		pthread_mutex_unlock(&u->lock);
		for (; fin; fin = next) {
			next = fin->next;
			blk_queue_complete(q, fin);
			u->outstanding--;
		}
	}
}

static void efd_drain(int fd)
{
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0)
		return;
}

/* The worker: the ring's eventfd fired. */
static void on_completion(struct vh_daemon *d, void *opaque, int fd,
			  uint32_t revents, void *thread_data)
{
	struct blk_queue *q = opaque;

	(void)d;
	(void)revents;
	(void)thread_data;
	efd_drain(fd);
	if (!q->vring)
		return;
	reap(q);
	submit(q);
	blk_queue_flush_done(q);
	/*
	 * --poll-us: the driver usually answers a completion with a new
	 * request at once; spin for it (blk_uring_process() on this worker)
	 * now that nothing waits on the disk
	 */
	if (q->dev->poll_ns && !q->uring->outstanding)
		vh_daemon_poll_queue(q->dev->daemon, q->idx);
}

/* ---------------------------------------------------------------------- */
/* engine                                                                 */
/* ---------------------------------------------------------------------- */

/* One io_uring_enter for what is queued; inline completions pushed now. */
static int submit_and_reap(struct blk_queue *q)
{
	struct blk_uring *u = q->uring;

	/*
	 * Page-cache hits complete inside io_uring_enter: they are reaped
	 * and pushed right here, so their CQEs need not wake the worker
	 * again through the eventfd (off meanwhile; a CQE posted after it
	 * is back on signals it as usual).
	 */
	io_uring_cq_eventfd_toggle(&u->ring, false);
	submit(q);
	io_uring_cq_eventfd_toggle(&u->ring, true);
	reap(q);
	submit(q);
	return blk_queue_flush_done(q);
}

/*
 * --poll-us: the ring ran empty with nothing in flight; spin until the
 * driver adds a request (true) or the budget, which starts when the ring
 * first ran empty, is spent (false).  Completions that arrive meanwhile
 * (the helper's) are pushed at once.  This is QEMU's AioContext polling
 * (poll-max-ns), what keeps its QD 1 latency low: a request found while
 * spinning costs no wakeup on either side.
 *
 * The worker does not spin while requests wait on the disk: a disk
 * slower than the budget (55 us here against 32) made each request burn
 * the whole budget for nothing and sleep anyway; on a busy machine that
 * CPU time then delayed the worker's wakeups (bench/vu_blk, O_DIRECT
 * QD 1: back-end CPU per request 55 against 30 us, p99 up 2x).  It
 * spins again once they completed (on_completion()), for the driver's
 * next request.
 */
static int poll_reap(void *arg)
{
	struct blk_queue *q = arg;

	if (io_uring_cq_ready(&q->uring->ring) || taskrun_pending(q->uring))
		return submit_and_reap(q);
	return 0;
}

static bool poll_ring(struct blk_queue *q, uint64_t *deadline, int *err)
{
	int r = busy_poll_avail(q->vring, q->dev->poll_ns, deadline,
				poll_reap, q);

	if (r < 0)
		*err = r;
	return r > 0;
}

/*
 * Requests popped before they are submitted and what completed is pushed.
 * Popping the whole ring first made the driver and the worker take turns:
 * each slept (a wakeup, ~25 us on a VM) while the other worked through a
 * whole batch.  Every BLK_PIPE_BATCH requests the worker submits, pushes
 * what completed and notifies (event idx decides), so the driver refills
 * the ring while the worker goes on, and the worker finds those requests
 * before it would sleep.  bench/vu_blk, QD 32, 1 queue, A/B in the same
 * rounds: with O_DIRECT 8 against 16 was 1.06-1.11x and 4 against 8
 * 0.91x (more disk kicks); through the page cache 8 against 16 was 1.08
 * and 1.41x with CPU to spare, 0.82-0.88x on a saturated host (more
 * wakeups of the driver), where pipelining itself loses (0.75-0.89x
 * against one push per call) having no idle CPU to overlap with.
 */
#define BLK_PIPE_BATCH 8u

int blk_uring_process(struct blk_queue *q)
{
	struct blk_uring *u = q->uring;
	struct blk_req *r;
	uint64_t deadline = 0;
	unsigned int batch = 0;
	int popped = 0, err = 0, e;

	vh_devq_disable_notification(q->vring);
	for (;;) {
		if (popped >= BLK_CALL_MAX) {
			/* come back through the worker's loop: the control
			 * thread may be waiting to take the ring back */
			vh_devq_enable_notification(q->vring);
			vh_daemon_poll_queue(q->dev->daemon, q->idx);
			break;
		}
		e = blk_queue_pop(q, &r);
		if (e == 0) {
			if (q->dev->poll_ns) {
				e = submit_and_reap(q);
				if (e < 0)
					return e;
				/*
				 * what came while spinning is a new call's
				 * (see vhost-user-net's tx): one spin per call
				 */
				if (!u->outstanding &&
				    poll_ring(q, &deadline, &e)) {
					vh_devq_enable_notification(q->vring);
					vh_daemon_poll_queue(q->dev->daemon,
							     q->idx);
					break;
				}
				if (e < 0)
					return e;
			}
			if (vh_devq_enable_notification(q->vring) == 1) {
				vh_devq_disable_notification(q->vring);
				continue;
			}
			break;
		}
		if (e < 0) {
			vh_devq_enable_notification(q->vring);
			/* IOTLB miss: the update re-kicks the ring */
			if (e != -EAGAIN)
				err = e;
			break;
		}
		popped++;
		if (r->op == BLK_OP_NONE) {
			blk_queue_complete(q, r);
			continue;
		}
		u->outstanding++;
		if (start(q, r) < 0)
			done(q, r, VIRTIO_BLK_S_IOERR);
		if (++batch >= BLK_PIPE_BATCH) {
			batch = 0;
			e = submit_and_reap(q);
			if (e < 0)
				return e;
		}
	}
	/* one io_uring_enter for the batch */
	e = submit_and_reap(q);
	if (e < 0)
		return e;
	return err ? err : popped;
}

int blk_uring_start(struct blk_queue *q)
{
	struct blk_uring *u = q->uring;
	int r;

	r = vh_daemon_watch_fd(q->dev->daemon, q->thread, u->efd, EPOLLIN,
			       on_completion, q);
	if (r < 0) {
		blk_log(q->dev, "error",
			"queue %u: cannot watch the io_uring eventfd: %s\n",
			q->idx, strerror(-r));
		return r;
	}
	u->watched = true;
	return 0;
}

void blk_uring_stop(struct blk_queue *q)
{
	struct blk_uring *u = q->uring;
	struct pollfd p = { .fd = u->efd, .events = POLLIN };

	/* the worker is out of on_completion and will not enter it again */
	if (u->watched)
		vh_daemon_unwatch_fd(q->dev->daemon, q->thread, u->efd);
	u->watched = false;
	/* then every request in flight completes and is pushed, here */
	while (u->outstanding) {
		reap(q);
		submit(q);
		blk_queue_flush_done(q);
		if (!u->outstanding)
			break;
		if (poll(&p, 1, 1000) > 0)
			efd_drain(u->efd);
	}
	blk_queue_flush_done(q);
}

int blk_uring_init(struct blk_queue *q, unsigned int entries)
{
	struct io_uring_params p = { 0 };
	struct io_uring_probe *probe;
	struct blk_uring *u;
	const char *what;
	int r;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->efd = -1;
	pthread_mutex_init(&u->lock, NULL);
	pthread_cond_init(&u->cond, NULL);
	q->uring = u;
	/*
	 * requests in flight <= ring size, one SQE each: no CQ overflow.
	 * COOP_TASKRUN (5.19): a completion that needs the worker's context
	 * (O_DIRECT, from the disk's interrupt) no longer interrupts the
	 * worker with an IPI while it runs; it is run at its next system
	 * call, or wakes it when it sleeps.  TASKRUN_FLAG says so in the SQ
	 * flags, which liburing checks before it peeks (and --poll-us's
	 * spin checks too).  Older kernels refuse the flags: without them.
	 */
	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_COOP_TASKRUN |
		  IORING_SETUP_TASKRUN_FLAG;
	p.cq_entries = 2 * entries;
	r = io_uring_queue_init_params(entries, &u->ring, &p);
	if (r == -EINVAL) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = 2 * entries;
		r = io_uring_queue_init_params(entries, &u->ring, &p);
	}
	if (r < 0) {
		what = r == -ENOMEM ? "io_uring_setup (RLIMIT_MEMLOCK?)" :
				      "io_uring_setup";
		goto fail;
	}
	u->ring_ok = true;
	probe = io_uring_get_probe_ring(&u->ring);
	if (!probe) {
		r = -EOPNOTSUPP;
		what = "io_uring probe (kernel older than 5.6)";
		goto fail;
	}
	if (!io_uring_opcode_supported(probe, IORING_OP_READV) ||
	    !io_uring_opcode_supported(probe, IORING_OP_WRITEV) ||
	    !io_uring_opcode_supported(probe, IORING_OP_READ) ||
	    !io_uring_opcode_supported(probe, IORING_OP_WRITE) ||
	    !io_uring_opcode_supported(probe, IORING_OP_FSYNC)) {
		io_uring_free_probe(probe);
		r = -EOPNOTSUPP;
		what = "io_uring without read/write/fsync";
		goto fail;
	}
	u->has_fallocate =
		io_uring_opcode_supported(probe, IORING_OP_FALLOCATE);
	u->nowait = q->dev->inline_reads && !q->dev->direct;
	io_uring_free_probe(probe);
	u->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (u->efd < 0) {
		r = -errno;
		what = "eventfd";
		goto fail;
	}
	r = io_uring_register_eventfd(&u->ring, u->efd);
	if (r < 0) {
		what = "io_uring_register_eventfd";
		goto fail;
	}
	return 0;
fail:
	blk_log(q->dev, "warning",
		"io_uring unavailable (%s: %s): synchronous I/O\n", what,
		strerror(-r));
	blk_uring_fini(q);
	return r;
}

void blk_uring_fini(struct blk_queue *q)
{
	struct blk_uring *u = q->uring;

	if (!u)
		return;
	if (u->thread_running) {
		pthread_mutex_lock(&u->lock);
		u->quit = true;
		pthread_cond_signal(&u->cond);
		pthread_mutex_unlock(&u->lock);
		pthread_join(u->thread, NULL);
	}
	if (u->ring_ok)
		io_uring_queue_exit(&u->ring);
	if (u->efd >= 0)
		close(u->efd);
	pthread_mutex_destroy(&u->lock);
	pthread_cond_destroy(&u->cond);
	free(u);
	q->uring = NULL;
}
