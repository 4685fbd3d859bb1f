// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Virtqueue throughput, split and packed: a driver (vh_drvq) and a device
 * (vh_devq) over one ring in guest memory.
 *
 *   vring threads [SECONDS]   driver thread + device thread, 1- and
 *                             4-descriptor chains, event idx on, split
 *                             then packed; prints million descriptors
 *                             (and chains) per second
 *   vring single N [BATCH] [packed]
 *                             one thread: N single-descriptor requests,
 *                             BATCH at a time (default 16), for callgrind
 *                             (scripts/bench-vring counts instructions in
 *                             vh_devq_pop + vh_devq_push)
 *   vring burst N [BATCH] [packed]
 *                             the same through vh_devq_pop_batch +
 *                             vh_devq_push_batch, BATCH per call
 *
 * "packed" negotiates VIRTIO_F_RING_PACKED (the same calls, another layout).
 *
 * Figures, never pass/fail.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "libvhost.h"

#define MEM_GPA 0x100000ull
#define MEM_SIZE (8ull << 20)
#define DATA_GPA (MEM_GPA + (1ull << 20))
#define NUM 256
#define BUF 64 /* small buffers: the ring, not memcpy, is measured */

#define DIE(...)                                                              \
	do {                                                                  \
		fprintf(stderr, __VA_ARGS__);                                 \
		exit(1);                                                      \
	} while (0)

/* 0 or VIRTIO_F_RING_PACKED, OR-ed into every feature set */
static uint64_t layout;

static const char *layout_name(void)
{
	return layout ? "packed" : "split";
}

struct bench {
	struct vh_ctx *ctx;
	struct vh_mem *mem;
	struct vh_drvq *vq;
	struct vh_devq *vr;
	int kick, call;
	unsigned int ndesc;
	volatile int stop;
	unsigned long chains;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void setup(struct bench *b, uint64_t features)
{
	struct vh_devq_addr a = { 0 };

	memset(b, 0, sizeof(*b));
	features |= layout;
	if (vh_ctx_new(&b->ctx) || vh_mem_new(b->ctx, &b->mem) ||
	    vh_mem_add_memfd(b->mem, MEM_GPA, MEM_SIZE, NULL) ||
	    vh_drvq_new(b->ctx, b->mem, 0, NUM, MEM_GPA, &b->vq) ||
	    vh_drvq_set_features(b->vq, features) ||
	    vh_devq_new(b->ctx, b->mem, 0, &b->vr) ||
	    vh_devq_set_features(b->vr, features) ||
	    vh_devq_set_num(b->vr, NUM) ||
	    vh_drvq_get_addrs(b->vq, &a.desc, &a.avail, &a.used) ||
	    vh_devq_set_addr(b->vr, &a) ||
	    /* packed: positions 0, both wrap counters 1 */
	    vh_devq_set_base(b->vr, layout ? 0x80008000u : 0))
		DIE("setup failed\n");
	b->kick = eventfd(0, EFD_CLOEXEC);
	b->call = eventfd(0, EFD_CLOEXEC);
	if (b->kick < 0 || b->call < 0)
		DIE("eventfd: %s\n", strerror(errno));
	vh_drvq_set_kick_fd(b->vq, b->kick);
	vh_drvq_set_call_fd(b->vq, b->call);
	vh_devq_set_kick_fd(b->vr, dup(b->kick));
	vh_devq_set_call_fd(b->vr, dup(b->call));
}

static void teardown(struct bench *b)
{
	vh_devq_unref(b->vr);
	vh_drvq_unref(b->vq);
	vh_mem_unref(b->mem);
	vh_ctx_unref(b->ctx);
	close(b->kick);
	close(b->call);
}

static void *device_fn(void *arg)
{
	struct bench *b = arg;
	struct iovec iov[8];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 8 };
	unsigned long n = 0;

	vh_devq_disable_notification(b->vr);
	while (!b->stop) {
		int ret = vh_devq_pop(b->vr, &e);

		if (ret == 1) {
			vh_devq_push(b->vr, e.id, e.in_len);
			if (++n % 32 == 0)
				vh_devq_notify(b->vr);
			continue;
		}
		if (ret < 0)
			DIE("pop: %d\n", ret);
		vh_devq_notify(b->vr);
		if (vh_devq_enable_notification(b->vr) == 1) {
			vh_devq_disable_notification(b->vr);
			continue;
		}
		{
			struct pollfd pfd = { .fd = b->kick, .events = POLLIN };
			uint64_t v;

			if (poll(&pfd, 1, 100) == 1 &&
			    read(b->kick, &v, sizeof(v)) < 0)
				DIE("read kick\n");
		}
		vh_devq_disable_notification(b->vr);
	}
	b->chains = n;
	return NULL;
}

static void run_threads(unsigned int ndesc, double seconds)
{
	uint64_t features = 1ull << VIRTIO_F_VERSION_1 |
			    1ull << VIRTIO_RING_F_EVENT_IDX;
	struct vh_sg sg[4];
	unsigned long added = 0, done = 0;
	double t0, t;
	struct bench b;
	pthread_t th;
	unsigned int i;

	setup(&b, features);
	for (i = 0; i < ndesc; i++) {
		sg[i].addr = DATA_GPA + i * BUF;
		sg[i].len = BUF;
	}
	vh_drvq_disable_cb(b.vq);
	if (pthread_create(&th, NULL, device_fn, &b))
		DIE("pthread_create\n");
	t0 = now();
	do {
		void *tok;
		uint32_t len;
		int k;

		for (k = 0; k < 4096; k++) {
			unsigned int out = ndesc > 1 ? ndesc / 2 : 1;

			while (vh_drvq_add(b.vq, sg, out, ndesc - out, &b) == 0)
				added++;
			vh_drvq_kick(b.vq);
			while (vh_drvq_get_used(b.vq, &tok, &len) == 1)
				done++;
			if ((unsigned int)vh_drvq_num_free(b.vq) < ndesc) {
				struct pollfd pfd = { .fd = b.call,
						      .events = POLLIN };
				uint64_t v;

				if (vh_drvq_enable_cb(b.vq) == 0 &&
				    poll(&pfd, 1, 100) == 1 &&
				    read(b.call, &v, sizeof(v)) < 0)
					DIE("read call\n");
				vh_drvq_disable_cb(b.vq);
			}
		}
		t = now() - t0;
	} while (t < seconds);
	b.stop = 1;
	{
		uint64_t one = 1;

		if (write(b.kick, &one, sizeof(one)) < 0)
			DIE("write kick\n");
	}
	pthread_join(th, NULL);
	printf("threads, %s, %u-descriptor chains, event idx: %.2f M descriptors/s (%.2f M chains/s, %lu chains in %.1f s)\n",
	       layout_name(), ndesc, done * ndesc / t / 1e6, done / t / 1e6, done, t);
	teardown(&b);
}

/*
 * Single thread: the driver exposes BATCH one-descriptor requests, the
 * device pops and pushes them all, the driver reaps them.
 */
static void run_single(unsigned long n, unsigned int batch)
{
	struct iovec iov[4];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };
	struct vh_sg sg = { DATA_GPA, BUF };
	unsigned long i = 0;
	double t0, t;
	struct bench b;

	setup(&b, 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX);
	if (batch < 1 || batch > NUM)
		DIE("batch 1..%u\n", NUM);
	/* the requests only: not the context, memfd and rings of setup() */
	t0 = now();
	while (i < n) {
		unsigned int k;
		void *tok;
		uint32_t len;

		for (k = 0; k < batch; k++)
			vh_drvq_add(b.vq, &sg, 0, 1, &b);
		for (k = 0; k < batch; k++) {
			if (vh_devq_pop(b.vr, &e) != 1)
				DIE("pop\n");
			vh_devq_push(b.vr, e.id, BUF);
		}
		while (vh_drvq_get_used(b.vq, &tok, &len) == 1)
			;
		i += batch;
	}
	t = now() - t0;
	printf("single thread, %s: %lu pop+push (batch %u) in %.3f s: %.1f ns per request (driver side included)\n",
	       layout_name(), i, batch, t, t * 1e9 / i);
	teardown(&b);
}

/*
 * The same with the burst calls: BATCH requests popped by one
 * vh_devq_pop_batch() and returned by one vh_devq_push_batch().
 */
static void run_burst(unsigned long n, unsigned int batch)
{
	struct iovec iov[NUM];
	struct vh_devq_elem e[NUM];
	struct vh_devq_used_elem u[NUM];
	struct vh_sg sg = { DATA_GPA, BUF };
	unsigned long i = 0;
	double t0, t;
	struct bench b;
	unsigned int k;

	setup(&b, 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX);
	if (batch < 1 || batch > NUM)
		DIE("batch 1..%u\n", NUM);
	for (k = 0; k < batch; k++) {
		e[k].iov = &iov[k];
		e[k].iov_max = 1;
	}
	t0 = now();
	while (i < n) {
		void *tok;
		uint32_t len;

		for (k = 0; k < batch; k++)
			vh_drvq_add(b.vq, &sg, 0, 1, &b);
		if (vh_devq_pop_batch(b.vr, e, batch) != (int)batch)
			DIE("pop_batch\n");
		for (k = 0; k < batch; k++) {
			u[k].id = e[k].id;
			u[k].len = BUF;
		}
		if (vh_devq_push_batch(b.vr, u, batch))
			DIE("push_batch\n");
		while (vh_drvq_get_used(b.vq, &tok, &len) == 1)
			;
		i += batch;
	}
	t = now() - t0;
	printf("single thread, %s, burst calls: %lu pop+push (batch %u) in %.3f s: %.1f ns per request (driver side included)\n",
	       layout_name(), i, batch, t, t * 1e9 / i);
	teardown(&b);
}

int main(int argc, char **argv)
{
	/* a count of 0 would print a rate of nothing (a division by 0) */
	if (argc > 2 && strcmp(argv[1], "threads") &&
	    strtoul(argv[2], NULL, 0) == 0)
		DIE("N must be at least 1\n");
	if (argc > 2 && !strcmp(argv[1], "threads") &&
	    !(strtod(argv[2], NULL) > 0))
		DIE("SECONDS must be above 0\n");
	if (argc >= 5 && strcmp(argv[4], "packed") == 0)
		layout = 1ull << VIRTIO_F_RING_PACKED;
	if (argc >= 2 && strcmp(argv[1], "burst") == 0) {
		run_burst(argc > 2 ? strtoul(argv[2], NULL, 0) : 1000000,
			  argc > 3 ? (unsigned int)strtoul(argv[3], NULL, 0) :
				     16);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "single") == 0) {
		run_single(argc > 2 ? strtoul(argv[2], NULL, 0) : 1000000,
			   argc > 3 ? (unsigned int)strtoul(argv[3], NULL, 0) :
				      16);
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "threads") == 0) {
		double s = argc > 2 ? strtod(argv[2], NULL) : 2.0;

		run_threads(1, s);
		run_threads(4, s);
		layout = 1ull << VIRTIO_F_RING_PACKED;
		run_threads(1, s);
		run_threads(4, s);
		return 0;
	}
	fprintf(stderr,
		"usage: %s [threads [SECONDS] | single N [BATCH] [packed] | burst N [BATCH] [packed]]\n",
		argv[0]);
	return 2;
}
