// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vh_daemon with a toy device, driven by our own front-end (vh_vu_frontend
 * and vh_drvq over a memfd vh_mem): queue -> thread mapping, the three lock
 * policies (completions pushed from another thread under the policy lock),
 * event-idx notification suppression, stop from another thread,
 * reconnection (listening and client mode) with fd/mapping leak counts.
 *
 * The toy device answers a request {u32 seq, u32 value} with
 * {seq, value ^ 0x5a5a5a5a + queue index} in the chain's writable buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "daemon-args.h"
#include "libvhost.h"
#include "test-util.h"

#define NQ 4
#define QSIZE 64
#define MEM_SIZE (1u << 20)
#define RING_GPA(q) ((uint64_t)(q) * 0x10000)
#define BUF_GPA(q, s) (0x80000 + (uint64_t)(q) * 0x4000 + (uint64_t)(s) * 16)
#define VIRTIO_F_VERSION_1 32
#define RING_F_EVENT_IDX 29

static char dir[64], sock[128];

/* ------------------------------------------------------------------------ */
/* the toy device                                                           */
/* ------------------------------------------------------------------------ */
struct pending {
	uint16_t id[QSIZE];
	unsigned int n;
};

struct toy {
	struct vh_daemon *d;
	enum vh_daemon_lock lock;
	/* which worker handled each queue (thread index + 1) */
	int handled_by[NQ];
	int thread_inits, thread_finis;
	int disconnects;
	bool waited; /* vh_daemon_wait() returned: no callback any more */
	unsigned int requests;
	/* pushed and notified by the worker itself (not deferred) */
	unsigned int pushed;
	/* deferred completions (MUTEX / RWLOCK) */
	bool defer;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct pending pend[NQ];
	bool quit;
	pthread_t completer;
	/* each call first takes this long (ms), as a busy-poll does */
	unsigned int spin_ms;
};

static int toy_handle(struct vh_daemon *d, void *data, unsigned int idx,
		      struct vh_devq *vr, void *td)
{
	struct toy *toy = vh_daemon_get_userdata(d);
	struct iovec iov[4];
	struct vh_devq_elem e;
	int r;

	CHECK(idx < NQ);
	__atomic_store_n(&toy->handled_by[idx], (int)(uintptr_t)td,
			 __ATOMIC_RELAXED);
	if (__atomic_load_n(&toy->spin_ms, __ATOMIC_ACQUIRE))
		usleep(__atomic_load_n(&toy->spin_ms, __ATOMIC_ACQUIRE) *
		       1000u);
	for (;;) {
		uint32_t req[2], resp[2];

		e.iov = iov;
		e.iov_max = 4;
		r = vh_devq_pop(vr, &e);
		if (r < 0)
			return r;
		if (r == 0) {
			if (vh_devq_enable_notification(vr) == 1)
				continue;
			return 0;
		}
		/* hostile-input discipline even in a toy */
		if (e.out_num != 1 || e.in_num != 1 || iov[0].iov_len != 8 ||
		    iov[1].iov_len != 8)
			return -EINVAL;
		memcpy(req, iov[0].iov_base, 8);
		resp[0] = req[0];
		resp[1] = (req[1] ^ 0x5a5a5a5au) + idx;
		memcpy(iov[1].iov_base, resp, 8);
		__atomic_add_fetch(&toy->requests, 1, __ATOMIC_RELAXED);
		if (!toy->defer) {
			CHECK(vh_daemon_push_and_notify(d, vr, e.id, 8) >= 0);
			__atomic_add_fetch(&toy->pushed, 1, __ATOMIC_RELEASE);
			continue;
		}
		pthread_mutex_lock(&toy->mu);
		CHECK(toy->pend[idx].n < QSIZE);
		toy->pend[idx].id[toy->pend[idx].n++] = e.id;
		pthread_cond_signal(&toy->cv);
		pthread_mutex_unlock(&toy->mu);
	}
}

/* Completion thread: pushes under the policy lock, off the worker. */
static void *toy_completer(void *arg)
{
	struct toy *toy = arg;
	struct pending p[NQ];
	unsigned int q, i;

	pthread_mutex_lock(&toy->mu);
	while (!toy->quit) {
		bool any = false;

		for (q = 0; q < NQ; q++)
			any |= toy->pend[q].n > 0;
		if (!any) {
			pthread_cond_wait(&toy->cv, &toy->mu);
			continue;
		}
		memcpy(p, toy->pend, sizeof(p));
		memset(toy->pend, 0, sizeof(toy->pend));
		pthread_mutex_unlock(&toy->mu);
		for (q = 0; q < NQ; q++) {
			struct vh_devq *vr;

			if (!p[q].n)
				continue;
			if (toy->lock == VH_DAEMON_LOCK_RWLOCK) {
				/* a reader may look at the ring */
				CHECK_EQ(vh_daemon_vring_rdlock(toy->d, q), 0);
				vr = vh_daemon_vring_get(toy->d, q);
				if (vr)
					CHECK(vh_devq_inflight(vr) >= p[q].n);
				CHECK_EQ(vh_daemon_vring_unlock(toy->d, q), 0);
			}
			CHECK_EQ(vh_daemon_vring_lock(toy->d, q), 0);
			vr = vh_daemon_vring_get(toy->d, q);
			for (i = 0; vr && i < p[q].n; i++)
				CHECK(vh_daemon_push_and_notify(toy->d, vr,
								p[q].id[i],
								8) >= 0);
			CHECK_EQ(vh_daemon_vring_unlock(toy->d, q), 0);
		}
		pthread_mutex_lock(&toy->mu);
	}
	pthread_mutex_unlock(&toy->mu);
	return NULL;
}

static void *toy_thread_init(struct vh_daemon *d, void *data, unsigned int t)
{
	struct toy *toy = vh_daemon_get_userdata(d);

	__atomic_add_fetch(&toy->thread_inits, 1, __ATOMIC_RELAXED);
	return (void *)(uintptr_t)(t + 1);
}

static void toy_thread_fini(struct vh_daemon *d, void *data, unsigned int t,
			    void *td)
{
	struct toy *toy = vh_daemon_get_userdata(d);

	CHECK_EQ((uintptr_t)td, t + 1);
	__atomic_add_fetch(&toy->thread_finis, 1, __ATOMIC_RELAXED);
}

static void toy_reset(struct vh_daemon *d, void *data)
{
	struct toy *toy = vh_daemon_get_userdata(d);

	CHECK(!__atomic_load_n(&toy->waited, __ATOMIC_ACQUIRE));
	/* every ring is stopped: drop what was never completed */
	pthread_mutex_lock(&toy->mu);
	memset(toy->pend, 0, sizeof(toy->pend));
	pthread_mutex_unlock(&toy->mu);
}

static void toy_disconnected(struct vh_daemon *d, void *data)
{
	struct toy *toy = vh_daemon_get_userdata(d);

	CHECK(!__atomic_load_n(&toy->waited, __ATOMIC_ACQUIRE));
	__atomic_add_fetch(&toy->disconnects, 1, __ATOMIC_RELEASE);
}

/*
 * Device state: STATE_BYTES of pattern (more than a pipe holds, so the
 * transfer must not run on the control thread), then the request count.
 */
#define STATE_BYTES (256 * 1024)

static uint8_t state_byte(size_t i)
{
	return (uint8_t)(i * 7 + (i >> 12));
}

static int toy_save(struct vh_daemon *d, void *data, int fd)
{
	struct toy *toy = vh_daemon_get_userdata(d);
	uint8_t buf[4096];
	size_t off = 0, i;

	while (off < STATE_BYTES) {
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = state_byte(off + i);
		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			return -EIO;
		off += sizeof(buf);
	}
	if (write(fd, &toy->requests, 4) != 4)
		return -EIO;
	return 0;
}

static int toy_load(struct vh_daemon *d, void *data, int fd)
{
	struct toy *toy = vh_daemon_get_userdata(d);
	uint8_t buf[4096];
	size_t off = 0, i;
	ssize_t n;
	uint32_t req;

	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < (size_t)n; i++, off++) {
			if (off < STATE_BYTES && buf[i] != state_byte(off))
				return -EINVAL;
			if (off >= STATE_BYTES && off < STATE_BYTES + 4)
				((uint8_t *)&req)[off - STATE_BYTES] = buf[i];
		}
	}
	if (n < 0 || off != STATE_BYTES + 4)
		return -EINVAL;
	toy->requests = req;
	return 0;
}

static const struct vh_daemon_ops toy_ops = {
	.size = sizeof(toy_ops),
	.handle_event = toy_handle,
	.thread_init = toy_thread_init,
	.thread_fini = toy_thread_fini,
	.reset = toy_reset,
	.disconnected = toy_disconnected,
	.save_state = toy_save,
	.load_state = toy_load,
};

/* struct vh_daemon_device.state_timeout_ms of the next toy_new() */
static unsigned int toy_state_timeout_ms;

static struct vh_daemon *toy_new(struct vh_ctx *ctx, struct toy *toy,
				 enum vh_daemon_lock lock, unsigned int threads,
				 const uint8_t *queue_thread, unsigned int flags)
{
	struct vh_daemon_device dev = {
		.size = sizeof(dev),
		.type = "toy",
		.features = 1ull << VIRTIO_F_VERSION_1,
		.protocol_features =
			(1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |
			(1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
			(1ull << VH_VU_PROTOCOL_F_DEVICE_STATE),
		.num_queues = NQ,
		.max_queue_size = 256,
		.num_threads = threads,
		.queue_thread = queue_thread,
		.lock = lock,
		.flags = flags,
		.state_timeout_ms = toy_state_timeout_ms,
	};

	memset(toy, 0, sizeof(*toy));
	toy->lock = lock;
	toy->defer = lock != VH_DAEMON_LOCK_NONE;
	pthread_mutex_init(&toy->mu, NULL);
	pthread_cond_init(&toy->cv, NULL);
	CHECK_EQ(vh_daemon_new(ctx, &dev, &toy_ops, toy, &toy->d), 0);
	if (toy->defer)
		CHECK_EQ(pthread_create(&toy->completer, NULL, toy_completer,
					toy),
			 0);
	return toy->d;
}

static void toy_free(struct toy *toy)
{
	vh_daemon_unref(toy->d);
	if (toy->defer) {
		pthread_mutex_lock(&toy->mu);
		toy->quit = true;
		pthread_cond_signal(&toy->cv);
		pthread_mutex_unlock(&toy->mu);
		pthread_join(toy->completer, NULL);
	}
	pthread_mutex_destroy(&toy->mu);
	pthread_cond_destroy(&toy->cv);
}

/* ------------------------------------------------------------------------ */
/* the front-end side                                                       */
/* ------------------------------------------------------------------------ */
struct sess {
	struct vh_vu_frontend *fe;
	struct vh_mem *mem;
	uint8_t *guest;
	struct vh_drvq *vq[NQ];
	int kick[NQ], call[NQ];
	uint64_t features;
	unsigned int seq;
};

static void mem_setup(struct vh_ctx *ctx, struct sess *s)
{
	CHECK_EQ(vh_mem_new(ctx, &s->mem), 0);
	CHECK_EQ(vh_mem_add_memfd(s->mem, 0, MEM_SIZE, (void **)&s->guest), 0);
}

/* Set up every ring on an already connected front-end. */
static void sess_rings(struct vh_ctx *ctx, struct sess *s, bool event_idx)
{
	uint64_t want = (1ull << VIRTIO_F_VERSION_1) |
			(1ull << VH_VU_F_PROTOCOL_FEATURES);
	unsigned int q;

	if (event_idx)
		want |= 1ull << RING_F_EVENT_IDX;
	CHECK_EQ(vh_vu_frontend_negotiate(
			 s->fe, want,
			 (1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |
				 (1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
				 (1ull << VH_VU_PROTOCOL_F_DEVICE_STATE),
			 &s->features, NULL),
		 0);
	CHECK_EQ(!!(s->features & (1ull << RING_F_EVENT_IDX)), event_idx);
	CHECK_EQ(vh_vu_frontend_share_mem(s->fe, s->mem), 0);
	for (q = 0; q < NQ; q++) {
		CHECK_EQ(vh_drvq_new(ctx, s->mem, q, QSIZE, RING_GPA(q),
				   &s->vq[q]),
			 0);
		CHECK_EQ(vh_drvq_set_features(s->vq[q], s->features), 0);
		s->kick[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		s->call[q] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		CHECK(s->kick[q] >= 0 && s->call[q] >= 0);
		CHECK_EQ(vh_drvq_set_kick_fd(s->vq[q], s->kick[q]), 0);
		CHECK_EQ(vh_drvq_set_call_fd(s->vq[q], s->call[q]), 0);
		CHECK_EQ(vh_vu_frontend_setup_vq(s->fe, q, s->vq[q], s->kick[q],
						 s->call[q]),
			 0);
	}
}

static void sess_open(struct vh_ctx *ctx, struct sess *s, bool event_idx)
{
	CHECK_EQ(vh_vu_frontend_new(ctx, &s->fe), 0);
	CHECK_EQ(vh_vu_frontend_connect(s->fe, sock, 5000), 0);
	sess_rings(ctx, s, event_idx);
}

static void sess_close(struct sess *s)
{
	unsigned int q;

	s->fe = vh_vu_frontend_unref(s->fe);
	for (q = 0; q < NQ; q++) {
		s->vq[q] = vh_drvq_unref(s->vq[q]);
		close(s->kick[q]);
		close(s->call[q]);
	}
}

static uint64_t efd_take(int fd)
{
	uint64_t v = 0;

	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

static void wait_call(int fd, int ms)
{
	struct timespec ts = { 0, 1000 * 1000 };

	(void)fd;
	while (ms-- > 0)
		nanosleep(&ts, NULL);
}

/*
 * Post n requests on queue q, kick once, wait for all answers and check
 * them.  Returns the number of call signals seen (the eventfd counter).
 */
static uint64_t sess_traffic(struct sess *s, unsigned int q, unsigned int n)
{
	unsigned int i, done = 0, spins;
	void *desc, *avail, *used;
	uint16_t used0;
	uint64_t calls;

	CHECK(n <= QSIZE / 2);
	efd_take(s->call[q]);
	/* struct vring_used: flags, then idx (split rings) */
	CHECK_EQ(vh_drvq_get_host_addrs(s->vq[q], &desc, &avail, &used), 0);
	used0 = __atomic_load_n((uint16_t *)used + 1, __ATOMIC_ACQUIRE);
	for (i = 0; i < n; i++) {
		uint32_t req[2] = { s->seq + i, 0x1000 * q + i };
		struct vh_sg sg[2] = { { BUF_GPA(q, 2 * i), 8 },
				       { BUF_GPA(q, 2 * i + 1), 8 } };

		memcpy(s->guest + BUF_GPA(q, 2 * i), req, 8);
		memset(s->guest + BUF_GPA(q, 2 * i + 1), 0xee, 8);
		CHECK_EQ(vh_drvq_add(s->vq[q], sg, 1, 1,
				   (void *)(uintptr_t)(i + 1)),
			 0);
	}
	CHECK(vh_drvq_kick(s->vq[q]) >= 0);
	/*
	 * Every answer used before any is taken: taking them moves
	 * used_event on (event idx), and a push after that is signalled
	 * again, which would make the count depend on the timing.
	 */
	for (spins = 0; spins < 5000; spins++) {
		uint16_t u = __atomic_load_n((uint16_t *)used + 1,
					     __ATOMIC_ACQUIRE);

		if ((uint16_t)(u - used0) >= n)
			break;
		wait_call(s->call[q], 1);
	}
	for (spins = 0; done < n && spins < 5000; spins++) {
		void *tok;
		uint32_t len;
		int r;

		while ((r = vh_drvq_get_used(s->vq[q], &tok, &len)) == 1) {
			unsigned int k = (unsigned int)(uintptr_t)tok - 1;
			uint32_t resp[2];

			CHECK(k < n);
			CHECK_EQ(len, 8);
			memcpy(resp, s->guest + BUF_GPA(q, 2 * k + 1), 8);
			CHECK_EQ(resp[0], s->seq + k);
			CHECK_EQ(resp[1], ((0x1000 * q + k) ^ 0x5a5a5a5au) + q);
			done++;
		}
		CHECK_EQ(r, 0);
		if (done < n)
			wait_call(s->call[q], 1);
	}
	CHECK_EQ(done, n);
	s->seq += n;
	/* the last signal may trail the used index a little */
	wait_call(s->call[q], 5);
	calls = efd_take(s->call[q]);
	return calls;
}

/* ------------------------------------------------------------------------ */
/* tests                                                                    */
/* ------------------------------------------------------------------------ */
static void wait_disconnects(struct toy *toy, int n)
{
	int i;

	for (i = 0; i < 5000; i++) {
		if (__atomic_load_n(&toy->disconnects, __ATOMIC_ACQUIRE) >= n)
			return;
		wait_call(-1, 1);
	}
	CHECK(0);
}

/* queue -> thread mapping, all three lock policies */
static void test_mapping(struct vh_ctx *ctx, enum vh_daemon_lock lock)
{
	static const uint8_t map[NQ] = { 0, 1, 0, 1 }; /* 0,2 | 1,3 */
	struct toy toy;
	struct sess s = { 0 };
	unsigned int q, round;

	toy_new(ctx, &toy, lock, 2, map, 0);
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), -EBUSY);
	mem_setup(ctx, &s);
	sess_open(ctx, &s, true);
	for (round = 0; round < 20; round++)
		for (q = 0; q < NQ; q++)
			sess_traffic(&s, q, 16);
	for (q = 0; q < NQ; q++)
		CHECK_EQ(toy.handled_by[q], map[q] + 1);
	CHECK_EQ(toy.requests, 20 * NQ * 16);
	CHECK_EQ(toy.thread_inits, 2);
	CHECK(vh_daemon_get_features(toy.d) & (1ull << RING_F_EVENT_IDX));
	sess_close(&s);
	vh_mem_unref(s.mem);
	vh_daemon_stop(toy.d);
	CHECK_EQ(vh_daemon_wait(toy.d), 0);
	CHECK_EQ(toy.thread_finis, 2);
	toy_free(&toy);
	printf("mapping + lock policy %d: ok\n", lock);
}

/* a bad mapping is refused at creation */
static void test_bad_masks(struct vh_ctx *ctx)
{
	static const uint8_t beyond[NQ] = { 0, 1, 2, 1 };
	struct vh_daemon_device dev = { .size = sizeof(dev),
					.num_queues = NQ,
					.num_threads = 2 };
	struct vh_daemon *d;

	dev.queue_thread = beyond;
	CHECK_EQ(vh_daemon_new(ctx, &dev, &toy_ops, NULL, &d), -EINVAL);
	dev.queue_thread = NULL;
	dev.num_queues = VH_VU_MAX_QUEUES + 1;
	CHECK_EQ(vh_daemon_new(ctx, &dev, &toy_ops, NULL, &d), -EINVAL);
	/* the one maximum holds for vh_daemon as for vh_vu_backend */
	dev.num_queues = VH_VU_MAX_QUEUES;
	CHECK_EQ(vh_daemon_new(ctx, &dev, &toy_ops, NULL, &d), 0);
	CHECK_EQ(vh_daemon_poll_queue(d, VH_VU_MAX_QUEUES - 1), 0);
	CHECK_EQ(vh_daemon_poll_queue(d, VH_VU_MAX_QUEUES), -EINVAL);
	CHECK(vh_daemon_unref(d) == NULL);
	printf("bad mappings refused, %u queues: ok\n", VH_VU_MAX_QUEUES);
}

/*
 * sess_traffic() on queue 0 of a toy that pushes on its worker: the call
 * signals once the worker has notified all n (the last one may trail the
 * used index).
 */
static uint64_t event_traffic(struct toy *toy, struct sess *s, unsigned int n)
{
	unsigned int p0 = __atomic_load_n(&toy->pushed, __ATOMIC_ACQUIRE), i;
	uint64_t calls = sess_traffic(s, 0, n);

	for (i = 0; i < 5000; i++) {
		if (__atomic_load_n(&toy->pushed, __ATOMIC_ACQUIRE) - p0 >= n)
			break;
		wait_call(-1, 1);
	}
	return calls + efd_take(s->call[0]);
}

/* event idx: one signal for a burst; without it, one per push */
static void test_event_idx(struct vh_ctx *ctx)
{
	struct toy toy;
	struct sess s = { 0 };
	uint64_t calls;

	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	mem_setup(ctx, &s);

	sess_open(ctx, &s, true);
	CHECK_EQ(vh_drvq_enable_cb(s.vq[0]), 0);
	calls = event_traffic(&toy, &s, 16);
	printf("event idx, callbacks on: %llu signal(s) for 16 pushes\n",
	       (unsigned long long)calls);
	CHECK_EQ(calls, 1);
	CHECK_EQ(vh_drvq_disable_cb(s.vq[0]), 0);
	calls = event_traffic(&toy, &s, 16);
	printf("event idx, callbacks off: %llu signal(s)\n",
	       (unsigned long long)calls);
	CHECK_EQ(calls, 0);
	sess_close(&s);
	wait_disconnects(&toy, 1);

	sess_open(ctx, &s, false);
	calls = event_traffic(&toy, &s, 16);
	printf("no event idx: %llu signal(s) for 16 pushes\n",
	       (unsigned long long)calls);
	CHECK_EQ(calls, 16);
	CHECK_EQ(vh_drvq_disable_cb(s.vq[0]), 0);
	calls = event_traffic(&toy, &s, 16);
	CHECK_EQ(calls, 0);
	sess_close(&s);
	vh_mem_unref(s.mem);
	toy_free(&toy);
	printf("event idx: ok\n");
}

static void *stopper(void *arg)
{
	struct timespec ts = { 0, 100 * 1000 * 1000 };

	nanosleep(&ts, NULL);
	vh_daemon_stop(arg);
	return NULL;
}

/* stop from another thread, with a front-end connected */
static void test_stop(struct vh_ctx *ctx)
{
	struct toy toy;
	struct sess s = { 0 };
	pthread_t t;

	toy_new(ctx, &toy, VH_DAEMON_LOCK_MUTEX, 3, NULL, 0);
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	mem_setup(ctx, &s);
	sess_open(ctx, &s, true);
	sess_traffic(&s, 3, 8);
	CHECK_EQ(pthread_create(&t, NULL, stopper, toy.d), 0);
	CHECK_EQ(vh_daemon_wait(toy.d), 0);
	pthread_join(t, NULL);
	CHECK_EQ(toy.thread_finis, 3);
	/*
	 * the connection's end was told before wait returned: nothing runs
	 * after it (toy_reset and toy_disconnected check), not even at unref
	 */
	CHECK_EQ(__atomic_load_n(&toy.disconnects, __ATOMIC_ACQUIRE), 1);
	__atomic_store_n(&toy.waited, true, __ATOMIC_RELEASE);
	/* the done fd is readable once it ended */
	CHECK(efd_take(vh_daemon_get_done_fd(toy.d)) >= 1);
	sess_close(&s);
	vh_mem_unref(s.mem);
	toy_free(&toy);
	printf("stop from another thread: ok\n");
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A ring take-back waits for the handler that runs, not for the worker's
 * whole batch: queues 0 to 2 of one worker, kicked together while queue
 * 3's handler runs, come in one batch, and each handler takes SPIN_MS (as
 * a busy-poll that runs out does).  GET_VRING_BASE of queue 2 while the
 * batch's first handler runs is answered when that one returns (at most
 * SPIN_MS), not when all three have (about 2.75 SPIN_MS).
 */
#define SPIN_MS 400
static void test_takeback_in_batch(struct vh_ctx *ctx)
{
	struct toy toy;
	struct sess s = { 0 };
	uint64_t one = 1;
	unsigned int q;
	uint32_t base;
	int64_t t0, dt;

	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	mem_setup(ctx, &s);
	sess_open(ctx, &s, false);
	sess_traffic(&s, 2, 4);
	__atomic_store_n(&toy.spin_ms, SPIN_MS, __ATOMIC_RELEASE);
	CHECK_EQ(write(s.kick[3], &one, sizeof(one)), (ssize_t)sizeof(one));
	usleep(SPIN_MS * 1000 / 4);
	for (q = 0; q < 3; q++)
		CHECK_EQ(write(s.kick[q], &one, sizeof(one)),
			 (ssize_t)sizeof(one));
	/* queue 3's handler is done, the batch's first one runs */
	usleep(SPIN_MS * 1000);
	t0 = now_ms();
	CHECK_EQ(vh_vu_frontend_get_vring_base(s.fe, 2, &base), 0);
	dt = now_ms() - t0;
	printf("take-back during a batch of 3 handlers of %d ms: %lld ms\n",
	       SPIN_MS, (long long)dt);
	CHECK(dt < 2 * SPIN_MS);
	CHECK_EQ(base, 4);
	__atomic_store_n(&toy.spin_ms, 0, __ATOMIC_RELEASE);
	vh_daemon_stop(toy.d);
	CHECK_EQ(vh_daemon_wait(toy.d), 0);
	sess_close(&s);
	vh_mem_unref(s.mem);
	toy_free(&toy);
}

/*
 * A ring the driver breaks is reported on its SET_VRING_ERR eventfd (the
 * worker's handler got -EIO; the front-end learns it from us), once.
 */
static void test_broken_ring_reported(struct vh_ctx *ctx)
{
	struct toy toy;
	struct sess s = { 0 };
	void *desc, *avail, *used;
	struct pollfd pfd;
	uint16_t *a, idx;
	uint64_t one = 1;
	int efd;

	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	mem_setup(ctx, &s);
	sess_open(ctx, &s, false);
	efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(efd >= 0);
	CHECK_EQ(vh_vu_frontend_set_vring_err(s.fe, 1, efd), 0);
	sess_traffic(&s, 1, 4);
	CHECK_EQ(efd_take(efd), 0);
	/* 2.7.6: a head out of range in the avail ring */
	CHECK_EQ(vh_drvq_get_host_addrs(s.vq[1], &desc, &avail, &used), 0);
	a = avail; /* flags, idx, ring[] */
	idx = __atomic_load_n(&a[1], __ATOMIC_ACQUIRE);
	a[2 + idx % QSIZE] = QSIZE + 7;
	__atomic_store_n(&a[1], (uint16_t)(idx + 1), __ATOMIC_RELEASE);
	CHECK_EQ(write(s.kick[1], &one, sizeof(one)), (ssize_t)sizeof(one));
	pfd = (struct pollfd){ .fd = efd, .events = POLLIN };
	CHECK_EQ(poll(&pfd, 1, 5000), 1);
	CHECK_EQ(efd_take(efd), 1);
	/* once: another kick finds it reported */
	CHECK_EQ(write(s.kick[1], &one, sizeof(one)), (ssize_t)sizeof(one));
	CHECK_EQ(poll(&pfd, 1, 300), 0);
	printf("a ring broken by the driver: its error eventfd, once\n");
	vh_daemon_stop(toy.d);
	CHECK_EQ(vh_daemon_wait(toy.d), 0);
	sess_close(&s);
	close(efd);
	vh_mem_unref(s.mem);
	toy_free(&toy);
}

/*
 * A --fd daemon on one end of a socketpair, our front-end on the other,
 * its rings set up and traffic checked.
 */
static void fd_session(struct vh_ctx *ctx, struct toy *toy, struct sess *s)
{
	int sv[2];

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	toy_new(ctx, toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	CHECK_EQ(vh_daemon_start_fd(toy->d, sv[1]), 0);
	mem_setup(ctx, s);
	CHECK_EQ(vh_vu_frontend_new(ctx, &s->fe), 0);
	CHECK_EQ(vh_vu_frontend_set_fd(s->fe, sv[0]), 0);
	sess_rings(ctx, s, true);
	sess_traffic(s, 0, 8);
}

/*
 * vh_daemon_drop(): with no front-end nothing happens, not even to the
 * one that connects next; with one, it is dropped as if it had hung up
 * (disconnected called, its calls fail) and a listening daemon serves the
 * next one; a --fd daemon ends with -ECONNABORTED.
 */
static void test_drop(struct vh_ctx *ctx)
{
	struct toy toy;
	struct sess s = { 0 };
	uint32_t base;
	int i;

	CHECK_EQ(vh_daemon_drop(NULL), -EINVAL);
	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	mem_setup(ctx, &s);
	CHECK_EQ(vh_daemon_drop(toy.d), 0); /* nobody connected */
	sess_open(ctx, &s, true);
	sess_traffic(&s, 0, 8);
	CHECK_EQ(__atomic_load_n(&toy.disconnects, __ATOMIC_ACQUIRE), 0);
	CHECK_EQ(vh_daemon_drop(toy.d), 0);
	wait_disconnects(&toy, 1);
	for (i = 0; i < 250; i++) {
		if (vh_vu_frontend_get_vring_base(s.fe, 0, &base) < 0)
			break;
		usleep(20000);
	}
	CHECK(i < 250);
	sess_close(&s);
	/* the next one is served */
	sess_open(ctx, &s, true);
	sess_traffic(&s, 0, 8);
	sess_close(&s);
	wait_disconnects(&toy, 2);
	CHECK_EQ(vh_daemon_get_connections(toy.d), 2);
	vh_daemon_stop(toy.d);
	CHECK_EQ(vh_daemon_wait(toy.d), 0);
	vh_mem_unref(s.mem);
	toy_free(&toy);

	/* --fd: the one connection dropped ends the daemon */
	memset(&s, 0, sizeof(s));
	fd_session(ctx, &toy, &s);
	CHECK_EQ(vh_daemon_drop(toy.d), 0);
	CHECK_EQ(vh_daemon_wait(toy.d), -ECONNABORTED);
	sess_close(&s);
	vh_mem_unref(s.mem);
	toy_free(&toy);

	/*
	 * --fd, a front-end that has sent nothing yet (a silent one an
	 * application's watchdog drops): it is the connection of the
	 * moment from the start
	 */
	{
		int sv[2];
		char c;

		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				    sv), 0);
		toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
		CHECK_EQ(vh_daemon_start_fd(toy.d, sv[1]), 0);
		CHECK_EQ(vh_daemon_get_connections(toy.d), 1);
		CHECK_EQ(vh_daemon_drop(toy.d), 0);
		alarm(10);
		CHECK_EQ(vh_daemon_wait(toy.d), -ECONNABORTED);
		alarm(0);
		CHECK_EQ(read(sv[0], &c, 1), 0); /* closed */
		CHECK_EQ(__atomic_load_n(&toy.disconnects, __ATOMIC_ACQUIRE),
			 1);
		close(sv[0]);
		toy_free(&toy);
	}
	printf("drop: the front-end of the moment only; listening goes on, --fd ends, silent or not\n");
}

static void watch_cb(struct vh_daemon *d, void *opaque, int fd,
		     uint32_t revents, void *thread_data)
{
	(void)d;
	(void)opaque;
	(void)fd;
	(void)revents;
	(void)thread_data;
}

/*
 * One worker watches an fd per queue it may serve (vhost-user-net
 * --threads=1: a tap per queue pair): VH_VU_MAX_QUEUES of them, then
 * -ENOSPC; changing a watch takes no slot; all go again.
 */
static void test_watches(struct vh_ctx *ctx)
{
	static int fds[VH_VU_MAX_QUEUES + 1];
	struct toy toy;
	unsigned int i;

	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	for (i = 0; i <= VH_VU_MAX_QUEUES; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		CHECK(fds[i] >= 0);
	}
	for (i = 0; i < VH_VU_MAX_QUEUES; i++)
		CHECK_EQ(vh_daemon_watch_fd(toy.d, 0, fds[i], EPOLLIN,
					    watch_cb, NULL),
			 0);
	CHECK_EQ(vh_daemon_watch_fd(toy.d, 0, fds[i], EPOLLIN, watch_cb, NULL),
		 -ENOSPC);
	CHECK_EQ(vh_daemon_watch_fd(toy.d, 0, fds[0], 0, watch_cb, NULL), 0);
	for (i = 0; i < VH_VU_MAX_QUEUES; i++)
		CHECK_EQ(vh_daemon_unwatch_fd(toy.d, 0, fds[i]), 0);
	CHECK_EQ(vh_daemon_watch_fd(toy.d, 0, fds[i], EPOLLIN, watch_cb, NULL),
		 0);
	CHECK_EQ(vh_daemon_unwatch_fd(toy.d, 0, fds[i]), 0);
	for (i = 0; i <= VH_VU_MAX_QUEUES; i++)
		close(fds[i]);
	toy_free(&toy);
	printf("watches: %u fds on one worker, then -ENOSPC\n",
	       VH_VU_MAX_QUEUES);
}

/*
 * A worker that watches or unwatches an fd on another worker gets
 * -EDEADLK at once: the other one may be in a callback waiting for it.
 * Worker 0's callback tries worker 1; the control thread may.
 */
static struct {
	int fd0, fd1;
	int watch_r, unwatch_r;
	sem_t done;
} xw;

static void xw_cb(struct vh_daemon *d, void *opaque, int fd, uint32_t ev,
		  void *td)
{
	(void)opaque, (void)ev, (void)td;
	efd_take(fd);
	xw.watch_r = vh_daemon_watch_fd(d, 1, xw.fd1, EPOLLIN, watch_cb, NULL);
	xw.unwatch_r = vh_daemon_unwatch_fd(d, 1, xw.fd1);
	sem_post(&xw.done);
}

/* a thread made after the workers ended, which may get one's id */
static void *xw_late(void *arg)
{
	struct vh_daemon *d = arg;
	unsigned int t;

	/* on both: whichever worker's id this thread got, one is another */
	for (t = 0; t < 2; t++) {
		xw.watch_r |= vh_daemon_watch_fd(d, t, xw.fd1, EPOLLIN,
						 watch_cb, NULL);
		xw.unwatch_r |= vh_daemon_unwatch_fd(d, t, xw.fd1);
	}
	return NULL;
}

static void test_watch_other_worker(struct vh_ctx *ctx)
{
	pthread_t late;
	struct toy toy;
	uint64_t one = 1;

	memset(&xw, 0, sizeof(xw));
	xw.fd0 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	xw.fd1 = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(xw.fd0 >= 0 && xw.fd1 >= 0);
	CHECK_EQ(sem_init(&xw.done, 0, 0), 0);
	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 2, NULL, 0);
	CHECK_EQ(vh_daemon_watch_fd(toy.d, 0, xw.fd0, EPOLLIN, xw_cb, NULL), 0);
	CHECK_EQ(vh_daemon_watch_fd(toy.d, 1, xw.fd1, EPOLLIN, watch_cb, NULL),
		 0);
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	CHECK_EQ(write(xw.fd0, &one, 8), 8);
	CHECK_EQ(sem_wait(&xw.done), 0);
	CHECK_EQ(xw.watch_r, -EDEADLK);
	CHECK_EQ(xw.unwatch_r, -EDEADLK);
	/* from the control thread, with the workers running: allowed */
	CHECK_EQ(vh_daemon_unwatch_fd(toy.d, 1, xw.fd1), 0);
	CHECK_EQ(vh_daemon_unwatch_fd(toy.d, 0, xw.fd0), 0);
	vh_daemon_stop(toy.d);
	CHECK_EQ(vh_daemon_wait(toy.d), 0);
	/* once they are joined, no thread is a worker */
	xw.watch_r = xw.unwatch_r = 0;
	CHECK_EQ(pthread_create(&late, NULL, xw_late, toy.d), 0);
	CHECK_EQ(pthread_join(late, NULL), 0);
	CHECK_EQ(xw.watch_r, 0);
	CHECK_EQ(xw.unwatch_r, 0);
	toy_free(&toy);
	close(xw.fd0);
	close(xw.fd1);
	sem_destroy(&xw.done);
	printf("watches: another worker's watch from a worker: -EDEADLK\n");
}

/*
 * A slot freed by vh_daemon_unwatch_fd() is not reused while the worker
 * may still hold an event of the old fd: with events for X and A in one
 * batch, X's callback unwatches A and watches B (not readable); A's event
 * must not reach B's callback.  G's callback holds the worker while X and
 * A become ready, in that order, so that they come in one batch.
 */
static struct {
	int g, x, a, b;
	sem_t in_g, go;
	int b_calls, b_empty, a_calls;
} ws;

static void ws_g(struct vh_daemon *d, void *opaque, int fd, uint32_t ev,
		 void *td)
{
	(void)d, (void)opaque, (void)ev, (void)td;
	CHECK(efd_take(fd) >= 1);
	sem_post(&ws.in_g);
	sem_wait(&ws.go);
}

static void ws_b(struct vh_daemon *d, void *opaque, int fd, uint32_t ev,
		 void *td)
{
	(void)d, (void)opaque, (void)ev, (void)td;
	ws.b_calls++;
	if (efd_take(fd) <= 0)
		ws.b_empty++;
}

static void ws_a(struct vh_daemon *d, void *opaque, int fd, uint32_t ev,
		 void *td)
{
	(void)d, (void)opaque, (void)ev, (void)td;
	ws.a_calls++;
	efd_take(fd);
}

static void ws_x(struct vh_daemon *d, void *opaque, int fd, uint32_t ev,
		 void *td)
{
	(void)opaque, (void)ev, (void)td;
	CHECK(efd_take(fd) >= 1);
	CHECK_EQ(vh_daemon_unwatch_fd(d, 0, ws.a), 0);
	CHECK_EQ(vh_daemon_watch_fd(d, 0, ws.b, EPOLLIN, ws_b, NULL), 0);
}

static void test_watch_reuse(struct vh_ctx *ctx)
{
	struct toy toy;
	uint64_t one = 1;

	memset(&ws, 0, sizeof(ws));
	ws.g = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ws.a = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ws.x = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ws.b = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(ws.g >= 0 && ws.a >= 0 && ws.x >= 0 && ws.b >= 0);
	CHECK_EQ(sem_init(&ws.in_g, 0, 0), 0);
	CHECK_EQ(sem_init(&ws.go, 0, 0), 0);
	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	/* A first: the lowest free slot, the one B would take */
	CHECK_EQ(vh_daemon_watch_fd(toy.d, 0, ws.a, EPOLLIN, ws_a, NULL), 0);
	CHECK_EQ(vh_daemon_watch_fd(toy.d, 0, ws.x, EPOLLIN, ws_x, NULL), 0);
	CHECK_EQ(vh_daemon_watch_fd(toy.d, 0, ws.g, EPOLLIN, ws_g, NULL), 0);
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	CHECK_EQ(write(ws.g, &one, 8), 8);
	CHECK_EQ(sem_wait(&ws.in_g), 0);
	CHECK_EQ(write(ws.x, &one, 8), 8);
	CHECK_EQ(write(ws.a, &one, 8), 8);
	sem_post(&ws.go);
	/* the batch [X, A] is handled, B stays unreadable */
	usleep(200 * 1000);
	vh_daemon_stop(toy.d);
	CHECK_EQ(vh_daemon_wait(toy.d), 0);
	/* A's callback may have run first (the batch's order): not B's */
	CHECK_EQ(ws.b_empty, 0);
	CHECK(ws.a_calls + ws.b_calls <= 1);
	vh_daemon_unwatch_fd(toy.d, 0, ws.b);
	toy_free(&toy);
	close(ws.g);
	close(ws.a);
	close(ws.x);
	close(ws.b);
	sem_destroy(&ws.in_g);
	sem_destroy(&ws.go);
	printf("watches: a freed slot is not reused within the worker's batch\n");
}

/*
 * Reconnect: the same listening socket serves front-end after front-end;
 * traffic resumes each time; 100 reconnects leak no fd and no mapping.
 */
static void test_reconnect(struct vh_ctx *ctx)
{
	struct toy toy;
	struct sess s = { 0 };
	struct stat st1, st2;
	int fds0 = 0, maps0 = 0, i;

	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 2, NULL, 0);
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	CHECK_EQ(stat(sock, &st1), 0);
	mem_setup(ctx, &s);
	for (i = 0; i < 101; i++) {
		sess_open(ctx, &s, i & 1);
		sess_traffic(&s, (unsigned int)i % NQ, 4);
		sess_close(&s);
		wait_disconnects(&toy, i + 1);
		if (i == 0) {
			fds0 = test_count_fds();
			maps0 = test_count_maps();
		}
	}
	CHECK_EQ(vh_daemon_get_connections(toy.d), 101);
	CHECK_EQ(test_count_fds(), fds0);
	CHECK_EQ(test_count_maps(), maps0);
	/* never unlinked and re-created in between */
	CHECK_EQ(stat(sock, &st2), 0);
	CHECK_EQ(st1.st_ino, st2.st_ino);
	vh_mem_unref(s.mem);
	toy_free(&toy);
	/* the socket goes with the daemon */
	CHECK(access(sock, F_OK) < 0);
	printf("101 connections, fds %d, maps %d, no leak: ok\n", fds0, maps0);
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* client mode: we listen as QEMU's server=on does; it connects again */
static void test_client(struct vh_ctx *ctx)
{
	struct toy toy;
	struct sess s = { 0 };
	int round;

	toy_new(ctx, &toy, VH_DAEMON_LOCK_RWLOCK, 2, NULL, 0);
	CHECK_EQ(vh_daemon_start_client(toy.d, sock), 0);
	mem_setup(ctx, &s);
	for (round = 0; round < 3; round++) {
		CHECK_EQ(vh_vu_frontend_new(ctx, &s.fe), 0);
		/* the daemon retries every 100 ms until we listen */
		CHECK_EQ(vh_vu_frontend_accept(s.fe, sock, 5000), 0);
		unlink(sock);
		sess_rings(ctx, &s, true);
		sess_traffic(&s, 1, 8);
		sess_traffic(&s, 2, 8);
		sess_close(&s);
		wait_disconnects(&toy, round + 1);
	}
	vh_mem_unref(s.mem);
	/*
	 * A front-end whose backlog is full (one connection waits, never
	 * accepted): the daemon's connect must not block, and it stops in
	 * time.
	 */
	{
		struct sockaddr_un sa = { .sun_family = AF_UNIX };
		int lfd, cfd;
		int64_t t0;

		CHECK(strlen(sock) < sizeof(sa.sun_path));
		memcpy(sa.sun_path, sock, strlen(sock) + 1);
		lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			     0);
		CHECK(lfd >= 0 && cfd >= 0);
		CHECK_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		CHECK_EQ(listen(lfd, 0), 0);
		CHECK_EQ(connect(cfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
		usleep(300 * 1000); /* the daemon tries meanwhile */
		t0 = mono_ms();
		alarm(60); /* a daemon stuck in connect() fails, not hangs */
		vh_daemon_stop(toy.d);
		CHECK_EQ(vh_daemon_wait(toy.d), 0);
		alarm(0);
		CHECK(mono_ms() - t0 < 2000);
		close(cfd);
		close(lfd);
		unlink(sock);
	}
	CHECK_EQ(vh_daemon_get_connections(toy.d), 3);
	toy_free(&toy);
	printf("client mode, 3 connections, stopped against a full backlog: ok\n");
}

/* a connected --fd: the daemon ends when the front-end goes */
static void test_fd(struct vh_ctx *ctx)
{
	struct toy toy;
	struct sess s = { 0 };
	int sv[2];

	fd_session(ctx, &toy, &s);
	sess_close(&s);
	CHECK_EQ(vh_daemon_wait(toy.d), 0);
	vh_mem_unref(s.mem);
	toy_free(&toy);

	/* a connection closed on an error: the daemon's result says so */
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	CHECK_EQ(vh_daemon_start_fd(toy.d, sv[1]), 0);
	{
		/* a header whose size no message has */
		uint32_t hdr[3] = { VH_VU_GET_FEATURES, VH_VU_VERSION,
				    0x40000000 };

		CHECK_EQ(write(sv[0], hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	}
	CHECK(vh_daemon_wait(toy.d) < 0);
	close(sv[0]);
	toy_free(&toy);
	printf("--fd connection: ok, and its error is the result\n");

	/*
	 * vhost-user is a unix stream protocol: a listening TCP socket (it
	 * would serve the device to the network), a listening seqpacket one
	 * and a datagram one are refused, listening or connected, and stay
	 * the caller's
	 */
	{
		struct sockaddr_in sin = { .sin_family = AF_INET,
					   .sin_addr.s_addr =
						   htonl(INADDR_LOOPBACK) };
		struct {
			int domain, type, listens, err;
		} bad[] = {
			{ AF_INET, SOCK_STREAM, 1, -EAFNOSUPPORT },
			{ AF_UNIX, SOCK_SEQPACKET, 1, -EPROTOTYPE },
			{ AF_UNIX, SOCK_DGRAM, 0, -EPROTOTYPE },
			{ AF_INET, SOCK_DGRAM, 0, -EAFNOSUPPORT },
		};
		unsigned int i;

		for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			int fd = socket(bad[i].domain,
					bad[i].type | SOCK_CLOEXEC, 0);

			CHECK(fd >= 0);
			if (bad[i].domain == AF_INET)
				CHECK_EQ(bind(fd, (struct sockaddr *)&sin,
					      sizeof(sin)), 0);
			else
				CHECK_EQ(bind(fd, (struct sockaddr *)&(
						      struct sockaddr_un){
						      .sun_family = AF_UNIX },
					      sizeof(sa_family_t)), 0);
			if (bad[i].listens)
				CHECK_EQ(listen(fd, 1), 0);
			toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
			CHECK_EQ(vh_daemon_start_fd(toy.d, fd), bad[i].err);
			toy_free(&toy);
			/* still ours */
			CHECK(fcntl(fd, F_GETFD) >= 0);
			close(fd);
		}
	}
	printf("--fd of a TCP, seqpacket or datagram socket: refused\n");
}

static void *state_writer(void *arg)
{
	int *p = arg;
	uint8_t *buf = malloc(STATE_BYTES + 4);
	uint32_t req = 4242;
	size_t i;

	CHECK(buf);
	for (i = 0; i < STATE_BYTES; i++)
		buf[i] = state_byte(i);
	memcpy(buf + STATE_BYTES, &req, 4);
	CHECK_EQ(write(p[1], buf, STATE_BYTES + 4), STATE_BYTES + 4);
	close(p[1]);
	free(buf);
	return NULL;
}

/* SET_DEVICE_STATE_FD / CHECK_DEVICE_STATE through save_state/load_state */
/*
 * Read a saved state from fd to its end: the toy's STATE_BYTES pattern,
 * then its request count, which must be requests.
 */
static void check_saved_state(int fd, uint32_t requests)
{
	uint8_t *buf = malloc(STATE_BYTES + 8);
	size_t off = 0, i;
	uint32_t req;
	ssize_t n;

	CHECK(buf);
	while ((n = read(fd, buf + off, STATE_BYTES + 8 - off)) > 0)
		off += (size_t)n;
	CHECK_EQ(off, STATE_BYTES + 4);
	for (i = 0; i < STATE_BYTES; i++)
		CHECK_EQ(buf[i], state_byte(i));
	memcpy(&req, buf + STATE_BYTES, 4);
	CHECK_EQ(req, requests);
	free(buf);
}

static void test_device_state(struct vh_ctx *ctx)
{
	struct toy toy;
	struct vh_vu_frontend *fe;
	uint64_t pf;
	pthread_t t;
	int p[2], bfd;

	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	toy.requests = 77;
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	CHECK_EQ(vh_vu_frontend_new(ctx, &fe), 0);
	CHECK_EQ(vh_vu_frontend_connect(fe, sock, 5000), 0);
	CHECK_EQ(vh_vu_frontend_negotiate(
			 fe, (1ull << VIRTIO_F_VERSION_1) |
				     (1ull << VH_VU_F_PROTOCOL_FEATURES),
			 (1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |
				 (1ull << VH_VU_PROTOCOL_F_DEVICE_STATE),
			 NULL, &pf),
		 0);
	CHECK(pf & (1ull << VH_VU_PROTOCOL_F_DEVICE_STATE));

	/* save: we read while the device writes */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(vh_vu_frontend_set_device_state_fd(fe, VH_VU_TRANSFER_SAVE,
						    VH_VU_PHASE_STOPPED, p[1],
						    &bfd),
		 0);
	CHECK_EQ(bfd, -1);
	close(p[1]);
	check_saved_state(p[0], 77);
	close(p[0]);
	CHECK_EQ(vh_vu_frontend_check_device_state(fe), 0);

	/* load: the device reads while we write */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(vh_vu_frontend_set_device_state_fd(fe, VH_VU_TRANSFER_LOAD,
						    VH_VU_PHASE_STOPPED, p[0],
						    &bfd),
		 0);
	close(p[0]);
	CHECK_EQ(pthread_create(&t, NULL, state_writer, p), 0);
	pthread_join(t, NULL);
	CHECK_EQ(vh_vu_frontend_check_device_state(fe), 0);
	CHECK_EQ(toy.requests, 4242);

	/* a truncated load fails CHECK_DEVICE_STATE */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(vh_vu_frontend_set_device_state_fd(fe, VH_VU_TRANSFER_LOAD,
						    VH_VU_PHASE_STOPPED, p[0],
						    &bfd),
		 0);
	close(p[0]);
	CHECK_EQ(write(p[1], "xyz", 3), 3);
	close(p[1]);
	CHECK(vh_vu_frontend_check_device_state(fe) < 0);

	vh_vu_frontend_unref(fe);
	toy_free(&toy);
	printf("device state save/load (%d bytes): ok\n", STATE_BYTES + 4);
}

/* the program-convention helpers */
/* bytes left in the read end of a pipe, up to EOF */
static size_t drain_pipe(int fd)
{
	char buf[4096];
	size_t total = 0;
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += (size_t)n;
	CHECK_EQ(n, 0);
	return total;
}

/* A front-end that streams a good state's start into p[1] until EPIPE. */
static void *state_streamer(void *arg)
{
	int fd = *(int *)arg;
	uint8_t buf[4096];
	size_t off = 0, i;

	for (;;) {
		for (i = 0; i < sizeof(buf); i++)
			buf[i] = state_byte((off + i) % STATE_BYTES);
		if (write(fd, buf, sizeof(buf)) < 0)
			break;
		off += sizeof(buf);
	}
	CHECK_EQ(errno, EPIPE);
	return NULL;
}

/*
 * SET_DEVICE_STATE_FD (phase STOPPED) with one end of a new pipe, the
 * back-end's: the write end to save into, the read end to load from.
 * Returns the other end, the front-end's.
 */
static int transfer_start(struct vh_vu_frontend *fe, uint32_t direction)
{
	bool save = direction == VH_VU_TRANSFER_SAVE;
	int p[2], bfd;

	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(vh_vu_frontend_set_device_state_fd(fe, direction,
						    VH_VU_PHASE_STOPPED,
						    p[save], &bfd),
		 0);
	close(p[save]);
	return p[!save];
}

/*
 * A save into a pipe (as_sock: a socket) whose end the front-end sent and
 * kept a copy of.  It fills it first; once SET_DEVICE_STATE_FD is
 * answered, it makes its copy blocking (O_NONBLOCK belongs to the open
 * file description, which a back-end working on the one it was given
 * shares) and then takes back what it had filled, and never reads again.
 * So the relay's next write, however far it had got, finds room and then
 * none: on the shared description, made blocking, it would wait in the
 * kernel for ever, wherever it stood when the flag went.  foreign: the
 * pipe's mode is taken away first (fchmod 0), so that a back-end without
 * CAP_DAC_OVERRIDE cannot open it again.  Returns the front-end's read
 * end; *keep is its copy of the end it sent.
 */
static int shared_save_start(struct vh_vu_frontend *fe, bool as_sock,
			     bool foreign, int *keep)
{
	char buf[4096] = { 0 };
	size_t filled = 0;
	int p[2], bfd, fl, one = 1;
	ssize_t n;

	if (as_sock) {
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p),
			 0);
		/* the kernel's minimum: a few KB in flight at most */
		CHECK_EQ(setsockopt(p[1], SOL_SOCKET, SO_SNDBUF, &one,
				    sizeof(one)),
			 0);
	} else {
		CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	}
	fl = fcntl(p[1], F_GETFL);
	CHECK(fl >= 0 && fcntl(p[1], F_SETFL, fl | O_NONBLOCK) == 0);
	while ((n = write(p[1], buf, sizeof(buf))) > 0)
		filled += (size_t)n;
	CHECK(errno == EAGAIN);
	if (foreign)
		CHECK_EQ(fchmod(p[1], 0), 0);
	CHECK_EQ(vh_vu_frontend_set_device_state_fd(fe, VH_VU_TRANSFER_SAVE,
						    VH_VU_PHASE_STOPPED, p[1],
						    &bfd),
		 0);
	CHECK(fcntl(p[1], F_SETFL, fl & ~O_NONBLOCK) == 0);
	while (filled) {
		n = read(p[0], buf,
			 filled < sizeof(buf) ? filled : sizeof(buf));
		CHECK(n > 0);
		filled -= (size_t)n;
	}
	*keep = p[1];
	return p[0];
}

/*
 * A front-end that stops reading or writing its pipe: the transfer fails
 * at the deadline (state_timeout_ms), CHECK_DEVICE_STATE says so, and the
 * daemon serves the next transfer; with the default deadline,
 * vh_daemon_stop() ends the transfer at once; so too when the front-end
 * made the end it sent blocking (shared_save_start()).  A transfer with a
 * ring started is refused.
 */
/* the relay's deadline: long enough that the whole transfers never miss it */
#define STALL_MS 1000

static void test_device_state_stall(struct vh_ctx *ctx)
{
	struct toy toy;
	struct sess s = { 0 };
	int64_t t0, ms;
	size_t got;
	int p[2], bfd, as_sock;
	unsigned int q;
	uint32_t base;
	pthread_t t;

	toy_state_timeout_ms = STALL_MS;
	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	toy_state_timeout_ms = 0;
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	mem_setup(ctx, &s);
	sess_open(ctx, &s, false);

	/* "Migrating back-end state": the back-end is stopped first */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK(vh_vu_frontend_set_device_state_fd(s.fe, VH_VU_TRANSFER_SAVE,
						 VH_VU_PHASE_STOPPED, p[1],
						 &bfd) < 0);
	CHECK(vh_vu_frontend_check_device_state(s.fe) < 0);
	close(p[1]);
	CHECK_EQ(drain_pipe(p[0]), 0);
	close(p[0]);
	for (q = 0; q < NQ; q++)
		CHECK_EQ(vh_vu_frontend_get_vring_base(s.fe, q, &base), 0);

	/*
	 * save, never read: the pipe fills, the deadline passes; timed from
	 * before the start, so the relay's last progress is after t0
	 */
	t0 = mono_ms();
	p[0] = transfer_start(s.fe, VH_VU_TRANSFER_SAVE);
	/* the back-end's answer, not our 5 s timeout (-ETIMEDOUT) */
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -EIO);
	ms = mono_ms() - t0;
	got = drain_pipe(p[0]);
	close(p[0]);
	printf("device state: save stalled by the front-end: failed after %lld ms, %zu of %d bytes out\n",
	       (long long)ms, got, STATE_BYTES + 4);
	CHECK(ms >= STALL_MS - 50 && ms < STALL_MS + 2700);
	CHECK(got < STATE_BYTES);

	/*
	 * the same, the front-end's copy of the end made blocking: the
	 * relay's own description (a pipe) or MSG_DONTWAIT (a socket) keep
	 * the deadline; a hang here is the failure, SIGALRM ends the test
	 */
	for (as_sock = 0; as_sock < 2; as_sock++) {
		p[0] = shared_save_start(s.fe, as_sock, false, &p[1]);
		alarm(20);
		t0 = mono_ms();
		CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -EIO);
		ms = mono_ms() - t0;
		alarm(0);
		close(p[1]);
		got = drain_pipe(p[0]);
		close(p[0]);
		printf("device state: save stalled by the front-end, its %s made blocking: failed after %lld ms, %zu of %d bytes out\n",
		       as_sock ? "socket" : "pipe", (long long)ms, got,
		       STATE_BYTES + 4);
		CHECK(ms < STALL_MS + 2700);
		CHECK(got < STATE_BYTES);
	}

	/* load: three bytes, and the pipe left open (timed as the save) */
	t0 = mono_ms();
	p[1] = transfer_start(s.fe, VH_VU_TRANSFER_LOAD);
	/* the start of a good state: load_state waits for the rest */
	{
		uint8_t head[3] = { state_byte(0), state_byte(1),
				    state_byte(2) };

		CHECK_EQ(write(p[1], head, 3), 3);
	}
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -EIO);
	ms = mono_ms() - t0;
	close(p[1]);
	printf("device state: load stalled by the front-end: failed after %lld ms\n",
	       (long long)ms);
	CHECK(ms >= STALL_MS - 50 && ms < STALL_MS + 2700);

	/*
	 * load from a front-end that never stops writing: CHECK_DEVICE_STATE
	 * gives the relay state_timeout_ms more, then load_state sees EOF
	 */
	p[1] = transfer_start(s.fe, VH_VU_TRANSFER_LOAD);
	CHECK_EQ(pthread_create(&t, NULL, state_streamer, &p[1]), 0);
	usleep(100 * 1000);
	t0 = mono_ms();
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -EIO);
	ms = mono_ms() - t0;
	pthread_join(t, NULL);
	close(p[1]);
	printf("device state: load streamed for ever: failed %lld ms after CHECK_DEVICE_STATE\n",
	       (long long)ms);
	CHECK(ms >= STALL_MS - 50 && ms < STALL_MS + 2700);

	/*
	 * the same, ended by another message: it is handled once the
	 * transfer is over (state_timeout_ms in all), never beside it
	 */
	p[1] = transfer_start(s.fe, VH_VU_TRANSFER_LOAD);
	CHECK_EQ(pthread_create(&t, NULL, state_streamer, &p[1]), 0);
	usleep(100 * 1000);
	t0 = mono_ms();
	{
		uint64_t f;

		CHECK_EQ(vh_vu_frontend_get_features(s.fe, &f), 0);
	}
	ms = mono_ms() - t0;
	/* a hang here is the failure: SIGALRM ends the test */
	alarm(20);
	pthread_join(t, NULL);
	alarm(0);
	close(p[1]);
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -EIO);
	printf("device state: load streamed for ever, then GET_FEATURES: answered after %lld ms, the transfer ended\n",
	       (long long)ms);
	CHECK(ms >= STALL_MS - 50 && ms < STALL_MS + 2700);

	/* a regular file is not a pipe: refused */
	{
		char path[] = "/tmp/test-daemon-state.XXXXXX";
		int f = mkstemp(path);

		CHECK(f >= 0);
		unlink(path);
		CHECK(vh_vu_frontend_set_device_state_fd(
			      s.fe, VH_VU_TRANSFER_SAVE, VH_VU_PHASE_STOPPED,
			      f, &bfd) < 0);
		close(f);
		CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -EIO);
	}

	/* save to a pipe nobody reads any more: EPIPE, not SIGPIPE */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	CHECK_EQ(vh_vu_frontend_set_device_state_fd(s.fe, VH_VU_TRANSFER_SAVE,
						    VH_VU_PHASE_STOPPED, p[1],
						    &bfd),
		 0);
	close(p[1]);
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -EIO);

	/* the daemon is not wedged: a transfer that reads goes through */
	toy.requests = 5;
	p[0] = transfer_start(s.fe, VH_VU_TRANSFER_SAVE);
	CHECK_EQ(drain_pipe(p[0]), STATE_BYTES + 4);
	close(p[0]);
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), 0);
	/* a refused SET_DEVICE_STATE_FD is not the last one's success */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK(vh_vu_frontend_set_device_state_fd(s.fe, VH_VU_TRANSFER_SAVE, 1,
						 p[1], &bfd) < 0);
	close(p[0]);
	close(p[1]);
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -EIO);
	sess_close(&s);
	toy_free(&toy);

	/*
	 * The default deadline (30 s), a front-end that never reads and
	 * gave up on its CHECK_DEVICE_STATE (the control thread waits for
	 * the transfer): stopping the daemon ends the transfer.
	 */
	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	sess_open(ctx, &s, false);
	/* no transfer on this connection: nothing succeeded */
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -EIO);
	for (q = 0; q < NQ; q++)
		CHECK_EQ(vh_vu_frontend_get_vring_base(s.fe, q, &base), 0);
	p[0] = transfer_start(s.fe, VH_VU_TRANSFER_SAVE);
	vh_vu_frontend_set_timeout(s.fe, 300);
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -ETIMEDOUT);
	/* a hang here is the failure: SIGALRM ends the test */
	alarm(20);
	t0 = mono_ms();
	vh_daemon_stop(toy.d);
	CHECK_EQ(vh_daemon_wait(toy.d), 0);
	ms = mono_ms() - t0;
	alarm(0);
	printf("device state: stop during a stalled save: %lld ms\n",
	       (long long)ms);
	CHECK(ms < 3000);
	CHECK(drain_pipe(p[0]) < STATE_BYTES);
	close(p[0]);
	sess_close(&s);
	toy_free(&toy);

	/* the same, the front-end's copy of the end made blocking */
	for (as_sock = 0; as_sock < 2; as_sock++) {
		toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
		CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
		sess_open(ctx, &s, false);
		for (q = 0; q < NQ; q++)
			CHECK_EQ(vh_vu_frontend_get_vring_base(s.fe, q, &base),
				 0);
		p[0] = shared_save_start(s.fe, as_sock, false, &p[1]);
		vh_vu_frontend_set_timeout(s.fe, 300);
		CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -ETIMEDOUT);
		alarm(20);
		t0 = mono_ms();
		vh_daemon_stop(toy.d);
		CHECK_EQ(vh_daemon_wait(toy.d), 0);
		ms = mono_ms() - t0;
		alarm(0);
		printf("device state: stop during a stalled save, its %s made blocking: %lld ms\n",
		       as_sock ? "socket" : "pipe", (long long)ms);
		CHECK(ms < 3000);
		close(p[1]);
		CHECK(drain_pipe(p[0]) < STATE_BYTES);
		close(p[0]);
		sess_close(&s);
		toy_free(&toy);
	}
	vh_mem_unref(s.mem);
	printf("device state, a stalling front-end: ok\n");
}

/*
 * The effective DAC override capabilities of the calling thread, which the
 * threads it creates inherit (capset() is per thread): dropped, a mode 0
 * pipe cannot be opened again through /proc/self/fd, as a back-end that is
 * not root cannot open another user's.  Returns the ones it had.
 */
static uint32_t dac_set(uint32_t want)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct c[_LINUX_CAPABILITY_U32S_3];
	const uint32_t dac = (1u << CAP_DAC_OVERRIDE) |
			     (1u << CAP_DAC_READ_SEARCH);
	uint32_t had;

	CHECK_EQ(syscall(SYS_capget, &h, c), 0);
	had = c[0].effective & dac;
	c[0].effective = (c[0].effective & ~dac) | (want & dac);
	CHECK_EQ(syscall(SYS_capset, &h, c), 0);
	return had;
}

static struct test_log_count foreign_log = {
	"device state: pipe not opened again (Permission denied)"
};

/*
 * A device state pipe the daemon may not open again (EACCES: as a
 * front-end's of another user would be; here its mode is 0 and the
 * daemon's threads lack CAP_DAC_OVERRIDE): the relay takes the front-end's
 * description as it is, its flags left alone, through a pipe of its own
 * (splice()), with a note and no warning.  A whole save and a whole load
 * go through; then the front-end stalls them, its copy made blocking
 * (shared_save_start(); a load's read end, after a first few bytes): on
 * the shared description the relay would wait in the kernel for ever, and
 * CHECK_DEVICE_STATE or vh_daemon_stop() with it (a hang is the failure:
 * SIGALRM ends the test); they end by the deadline, or at once.
 */
/* A case could not run here: the program ends as a SKIP, not a pass. */
static bool part_skipped;

static void test_device_state_foreign(void)
{
	uint8_t head[3] = { state_byte(0), state_byte(1), state_byte(2) };
	struct vh_ctx *ctx;
	struct toy toy;
	struct sess s = { 0 };
	char path[32];
	size_t off;
	int64_t t0, ms;
	uint32_t dac, base;
	unsigned int q;
	int p[2], bfd, fd, fl;
	pthread_t t;

	/* can this thread, without the capabilities, still open it? */
	dac = dac_set(0);
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(fchmod(p[1], 0), 0);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", p[1]);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	fl = errno;
	close(p[0]);
	close(p[1]);
	if (fd >= 0) {
		/* another capability opens it: the program ends as a SKIP */
		close(fd);
		dac_set(dac);
		printf("device state, a pipe not ours to open again: skipped (it opens)\n");
		part_skipped = true;
		return;
	}
	CHECK_EQ(fl, EACCES);
	CHECK_EQ(vh_ctx_new(&ctx), 0);
	vh_ctx_set_log_fn(ctx, test_log_count_fn, &foreign_log);
	vh_ctx_set_log_priority(ctx, LOG_INFO);
	/* the whole transfers below must not fail on a thread slow to run */
	toy_state_timeout_ms = 1000;
	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	toy_state_timeout_ms = 0;
	/* its control thread, which starts the relays, as we are now */
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	dac_set(dac);
	mem_setup(ctx, &s);
	sess_open(ctx, &s, false);
	for (q = 0; q < NQ; q++)
		CHECK_EQ(vh_vu_frontend_get_vring_base(s.fe, q, &base), 0);

	/* a whole save */
	toy.requests = 77;
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(fchmod(p[1], 0), 0);
	CHECK_EQ(vh_vu_frontend_set_device_state_fd(s.fe, VH_VU_TRANSFER_SAVE,
						    VH_VU_PHASE_STOPPED, p[1],
						    &bfd),
		 0);
	CHECK_EQ(foreign_log.notes, 1);
	CHECK_EQ(foreign_log.warnings, 0);
	CHECK(!(fcntl(p[1], F_GETFL) & O_NONBLOCK));
	close(p[1]);
	check_saved_state(p[0], 77);
	close(p[0]);
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), 0);

	/* a whole load */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(fchmod(p[0], 0), 0);
	CHECK_EQ(vh_vu_frontend_set_device_state_fd(s.fe, VH_VU_TRANSFER_LOAD,
						    VH_VU_PHASE_STOPPED, p[0],
						    &bfd),
		 0);
	CHECK_EQ(foreign_log.notes, 2);
	CHECK(!(fcntl(p[0], F_GETFL) & O_NONBLOCK));
	close(p[0]);
	CHECK_EQ(pthread_create(&t, NULL, state_writer, p), 0);
	pthread_join(t, NULL);
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), 0);
	CHECK_EQ(toy.requests, 4242);

	/* a save stalled, the front-end's copy made blocking */
	p[0] = shared_save_start(s.fe, false, true, &p[1]);
	alarm(20);
	t0 = mono_ms();
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -EIO);
	ms = mono_ms() - t0;
	alarm(0);
	close(p[1]);
	off = drain_pipe(p[0]);
	close(p[0]);
	printf("device state: save stalled by the front-end, its pipe not ours and made blocking: failed after %lld ms, %zu of %d bytes out\n",
	       (long long)ms, off, STATE_BYTES + 4);
	CHECK(ms < 3000);
	CHECK(off < STATE_BYTES);

	/* a load stalled after three bytes, the same */
	CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
	CHECK_EQ(fchmod(p[0], 0), 0);
	CHECK_EQ(vh_vu_frontend_set_device_state_fd(s.fe, VH_VU_TRANSFER_LOAD,
						    VH_VU_PHASE_STOPPED, p[0],
						    &bfd),
		 0);
	fl = fcntl(p[0], F_GETFL);
	CHECK(fl >= 0 && fcntl(p[0], F_SETFL, fl & ~O_NONBLOCK) == 0);
	CHECK_EQ(write(p[1], head, 3), 3);
	alarm(20);
	t0 = mono_ms();
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -EIO);
	ms = mono_ms() - t0;
	alarm(0);
	close(p[0]);
	close(p[1]);
	printf("device state: load stalled by the front-end, its pipe not ours and made blocking: failed after %lld ms\n",
	       (long long)ms);
	CHECK(ms < 3000);
	CHECK_EQ(foreign_log.notes, 4);
	CHECK_EQ(foreign_log.warnings, 0);
	sess_close(&s);
	toy_free(&toy);

	/* the default deadline: stopping the daemon ends a stalled save */
	dac_set(0);
	toy_new(ctx, &toy, VH_DAEMON_LOCK_NONE, 1, NULL, 0);
	CHECK_EQ(vh_daemon_start_listen(toy.d, sock), 0);
	dac_set(dac);
	sess_open(ctx, &s, false);
	for (q = 0; q < NQ; q++)
		CHECK_EQ(vh_vu_frontend_get_vring_base(s.fe, q, &base), 0);
	p[0] = shared_save_start(s.fe, false, true, &p[1]);
	CHECK_EQ(foreign_log.notes, 5);
	vh_vu_frontend_set_timeout(s.fe, 300);
	CHECK_EQ(vh_vu_frontend_check_device_state(s.fe), -ETIMEDOUT);
	alarm(20);
	t0 = mono_ms();
	vh_daemon_stop(toy.d);
	CHECK_EQ(vh_daemon_wait(toy.d), 0);
	ms = mono_ms() - t0;
	alarm(0);
	printf("device state: stop during a stalled save, its pipe not ours and made blocking: %lld ms\n",
	       (long long)ms);
	CHECK(ms < 3000);
	close(p[1]);
	CHECK(drain_pipe(p[0]) < STATE_BYTES);
	close(p[0]);
	sess_close(&s);
	toy_free(&toy);
	vh_mem_unref(s.mem);
	vh_ctx_unref(ctx);
	printf("device state, a pipe not ours to open again: ok\n");
}

static void test_args(void)
{
	static const char *const feats[] = { "a\"b", "plain", NULL };
	struct daemon_args a;
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	daemon_args_init(&a);
	CHECK_EQ(a.fd, -1);
	CHECK_EQ(daemon_args_check(&a), -EINVAL);
	CHECK_EQ(daemon_args_parse(&a, 'x', NULL), 0);
	CHECK_EQ(daemon_args_parse(&a, DAEMON_OPT_SOCKET_PATH, "/tmp/s"),
		 1);
	CHECK_EQ(daemon_args_check(&a), 0);
	CHECK_EQ(daemon_args_parse(&a, DAEMON_OPT_FD, "0"), 1);
	CHECK_EQ(daemon_args_check(&a), -EINVAL); /* both */
	CHECK_EQ(daemon_args_parse(&a, DAEMON_OPT_FD, "-1"), -EINVAL);
	CHECK_EQ(daemon_args_parse(&a, DAEMON_OPT_FD, "99999"), -EINVAL);
	CHECK_EQ(daemon_args_parse(&a, DAEMON_OPT_THREADS, "0"),
		 -EINVAL);
	CHECK_EQ(daemon_args_parse(&a, DAEMON_OPT_THREADS, "65"),
		 -EINVAL);
	CHECK_EQ(daemon_args_parse(&a, DAEMON_OPT_THREADS, "4"), 1);
	CHECK_EQ(a.threads, 4);
	CHECK_EQ(daemon_args_parse(&a, DAEMON_OPT_SOCKET_PATH, ""),
		 -EINVAL);
	daemon_args_init(&a);
	CHECK_EQ(daemon_args_parse(&a, DAEMON_OPT_CLIENT, NULL), 1);
	CHECK_EQ(daemon_args_parse(&a, DAEMON_OPT_FD, "1"), 1);
	CHECK_EQ(daemon_args_check(&a), -EINVAL); /* --client needs a path */

	f = open_memstream(&buf, &len);
	CHECK(f);
	CHECK_EQ(daemon_print_capabilities(f, "net", feats), 0);
	fclose(f);
	CHECK(strcmp(buf, "{\n  \"type\": \"net\",\n  \"features\": [\n"
			  "    \"a\\\"b\",\n    \"plain\"\n  ]\n}\n") == 0);
	free(buf);
	printf("argument helpers: ok\n");
}

/* ------------------------------------------------------------------------ */
/* vh_daemon_run(): the process-wide state it touches                        */
/* ------------------------------------------------------------------------ */
static int run_handle(struct vh_daemon *d, void *data, unsigned int idx,
		      struct vh_devq *vring, void *thread_data)
{
	return 0;
}

/* A front-end's first message arrived: ask for the stop, twice. */
static void run_connected(struct vh_daemon *d, void *data)
{
	kill(getpid(), SIGINT);
	kill(getpid(), SIGTERM);
}

static const struct vh_daemon_ops run_ops = {
	.size = sizeof(run_ops),
	.handle_event = run_handle,
	.connected = run_connected,
};

/* A daemon on one end of a socketpair, GET_FEATURES waiting in it. */
static struct vh_daemon *run_daemon(struct vh_ctx *ctx, int sv[2])
{
	static const uint32_t get_features[3] = { 1, 1, 0 };
	struct vh_daemon_device dev = { .size = sizeof(dev),
					.type = "run",
					.num_queues = 1 };
	struct vh_daemon *d;

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	CHECK_EQ(write(sv[0], get_features, sizeof(get_features)),
		 (ssize_t)sizeof(get_features));
	CHECK_EQ(vh_daemon_new(ctx, &dev, &run_ops, NULL, &d), 0);
	return d;
}

/* Run fn in a child; a hang is a failure (SIGALRM), not a stuck test. */
static void in_child(void (*fn)(void), const char *what)
{
	int status;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		alarm(60);
		fn();
		_exit(0);
	}
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "%s: child status %#x\n", what, status);
		CHECK(0);
	}
	printf("%s: ok\n", what);
}

/*
 * Both signals stop the daemon; afterwards the caller's mask is back
 * (SIGTERM/SIGINT open, its own SIGUSR1 still blocked) and nothing of
 * ours is left pending to kill it.
 */
static void run_mask_child(void)
{
	sigset_t mine, before, after, pend;
	struct vh_daemon *d;
	struct vh_ctx *ctx;
	int sv[2], sig;

	sigemptyset(&mine);
	sigaddset(&mine, SIGUSR1);
	CHECK_EQ(pthread_sigmask(SIG_BLOCK, &mine, NULL), 0);
	CHECK_EQ(pthread_sigmask(SIG_SETMASK, NULL, &before), 0);
	CHECK_EQ(vh_ctx_new(&ctx), 0);
	d = run_daemon(ctx, sv);
	/* flags that cannot go together, refused before anything starts */
	CHECK_EQ(vh_daemon_run(d, "x", -1, VH_DAEMON_RUN_VDPA_ADD), -EINVAL);
	CHECK_EQ(vh_daemon_run(d, "x", -1, VH_DAEMON_RUN_CLIENT |
			       VH_DAEMON_RUN_VDPA_ADD), -EINVAL);
	CHECK_EQ(vh_daemon_run(d, NULL, sv[1], VH_DAEMON_RUN_VDUSE |
			       VH_DAEMON_RUN_VDPA_ADD), -EINVAL);
	CHECK_EQ(vh_daemon_run(d, "x", -1, 1u << 3), -EINVAL);
	CHECK_EQ(vh_daemon_run(d, NULL, sv[1], 0), 0);
	CHECK_EQ(pthread_sigmask(SIG_SETMASK, NULL, &after), 0);
	CHECK(sigismember(&after, SIGUSR1));
	CHECK(!sigismember(&after, SIGTERM));
	CHECK(!sigismember(&after, SIGINT));
	for (sig = 1; sig < SIGRTMAX; sig++)
		CHECK_EQ(sigismember(&after, sig), sigismember(&before, sig));
	CHECK_EQ(sigpending(&pend), 0);
	CHECK(!sigismember(&pend, SIGTERM));
	CHECK(!sigismember(&pend, SIGINT));
	CHECK_EQ(vh_daemon_get_connections(d), 1);
	CHECK(vh_daemon_unref(d) == NULL);
	close(sv[0]);
	vh_ctx_unref(ctx);
}

/*
 * poll() failing with anything but EINTR (here ENOMEM, forced by a seccomp
 * filter on poll/ppoll) stops the daemon and returns the error: before,
 * vh_daemon_run() waited for a daemon nobody stopped, for ever.
 */
static void run_poll_fail_child(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
#ifdef __NR_poll
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_poll, 2, 0),
#endif
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ppoll, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOMEM),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };
	struct vh_daemon *d;
	struct vh_ctx *ctx;
	sigset_t after;
	int sv[2], r;

	CHECK_EQ(vh_ctx_new(&ctx), 0);
	d = run_daemon(ctx, sv);
	CHECK_EQ(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
	CHECK_EQ(prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog), 0);
	r = vh_daemon_run(d, NULL, sv[1], 0);
	CHECK_EQ(r, -ENOMEM);
	CHECK_EQ(pthread_sigmask(SIG_SETMASK, NULL, &after), 0);
	CHECK(!sigismember(&after, SIGTERM));
	CHECK(vh_daemon_unref(d) == NULL);
	close(sv[0]);
	vh_ctx_unref(ctx);
}

static void test_run(void)
{
	struct vh_daemon *d = NULL;

	CHECK_EQ(vh_daemon_run(d, "/x", -1, 0), -EINVAL);
	in_child(run_mask_child, "vh_daemon_run restores the signal mask");
	in_child(run_poll_fail_child, "vh_daemon_run after a poll failure");
}

static void cleanup(void)
{
	unlink(sock);
	rmdir(dir);
}

int main(void)
{
	struct vh_ctx *ctx;

	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/test-daemon.XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/vhu.sock", dir);
	atexit(cleanup);
	CHECK_EQ(vh_ctx_new(&ctx), 0);

	test_args();
	test_bad_masks(ctx);
	test_mapping(ctx, VH_DAEMON_LOCK_NONE);
	test_mapping(ctx, VH_DAEMON_LOCK_MUTEX);
	test_mapping(ctx, VH_DAEMON_LOCK_RWLOCK);
	test_event_idx(ctx);
	test_device_state(ctx);
	test_device_state_stall(ctx);
	test_device_state_foreign();
	test_stop(ctx);
	test_takeback_in_batch(ctx);
	test_broken_ring_reported(ctx);
	test_drop(ctx);
	test_fd(ctx);
	test_watches(ctx);
	test_watch_reuse(ctx);
	test_watch_other_worker(ctx);
	test_client(ctx);
	test_reconnect(ctx);
	test_run();

	vh_ctx_unref(ctx);
	return part_skipped ? TEST_SKIP : 0;
}
