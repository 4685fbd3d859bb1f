// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Virtqueues end to end, split and packed (each test that is not about one
 * layout runs for both): vh_drvq (driver) and vh_devq (device) over the
 * same guest memory, in one thread and in two, with payload bytes checked;
 * notification suppression; index and wrap-counter wrap; stop/restart;
 * memory table changes under in-flight elements; dirty logging.  The
 * malformed-ring cases live in test-vring-hostile.c.
 */
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <linux/vhost_types.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "test-vring.h"

/* 0 or VIRTIO_F_RING_PACKED: OR-ed into every feature set below */
static uint64_t g_layout;
#define rig_init(r, num, f) (rig_init)(r, num, (f) | g_layout)
#define PACKED (1ull << VIRTIO_F_RING_PACKED)

/* ---------------------------------------------------------------------- */
/* payload helpers                                                        */
/* ---------------------------------------------------------------------- */

static uint8_t pat(uint32_t k, size_t i)
{
	return (uint8_t)(k * 31 + i * 7 + (i >> 8));
}

/* Fill a request's out bytes and clear its in bytes. */
static void fill_req(uint8_t *out, size_t out_len, uint8_t *in, size_t in_len,
		     uint32_t k)
{
	size_t i;

	for (i = 0; i < out_len; i++)
		out[i] = pat(k, i);
	memset(in, 0, in_len);
}

/* The request number: the first four readable bytes, maybe split. */
static uint32_t elem_k(const struct vh_devq_elem *e)
{
	uint8_t head[4];
	size_t got = 0;
	unsigned int i;
	uint32_t k;

	for (i = 0; i < e->out_num && got < 4; i++) {
		size_t n = e->iov[i].iov_len < 4 - got ? e->iov[i].iov_len :
							  4 - got;

		memcpy(head + got, e->iov[i].iov_base, n);
		got += n;
	}
	CHECK_EQ(got, 4);
	memcpy(&k, head, 4);
	return k;
}

/* Device: check the readable bytes (gathered over iovecs), write ~pattern. */
static void serve(const struct vh_devq_elem *e, uint32_t expect_out,
		  uint32_t expect_in)
{
	unsigned int i;
	size_t off = 0;
	uint32_t k;

	CHECK_EQ(e->out_len, expect_out);
	CHECK_EQ(e->in_len, expect_in);
	k = elem_k(e);
	for (i = 0; i < e->out_num; i++) {
		const uint8_t *p = e->iov[i].iov_base;
		size_t j;

		for (j = 0; j < e->iov[i].iov_len; j++, off++)
			if (off >= 4)
				CHECK_EQ(p[j], pat(k, off));
	}
	CHECK_EQ(off, e->out_len);
	off = 0;
	for (i = e->out_num; i < e->out_num + e->in_num; i++) {
		uint8_t *p = e->iov[i].iov_base;
		size_t j;

		for (j = 0; j < e->iov[i].iov_len; j++, off++)
			p[j] = (uint8_t)~pat(k, off);
	}
	CHECK_EQ(off, e->in_len);
}

static void check_reply(const uint8_t *in, size_t in_len, uint32_t k)
{
	size_t i;

	for (i = 0; i < in_len; i++)
		CHECK_EQ(in[i], (uint8_t)~pat(k, i));
}

/*
 * One request: slot s of the data area; out bytes split in nout pieces and
 * in bytes in nin pieces.
 */
struct req {
	uint32_t k;
	unsigned int slot;
	uint32_t out_len, in_len;
	unsigned int nout, nin;
};

#define SLOT_SIZE 8192u

static unsigned int make_sg(struct rig *r, const struct req *q,
			    struct vh_sg *sg)
{
	uint64_t base = DATA_GPA + (uint64_t)q->slot * SLOT_SIZE;
	uint8_t *host = gpa_host(r, base);
	unsigned int n = 0, i;
	uint32_t off = 0;

	fill_req(host, q->out_len, host + 4096, q->in_len, q->k);
	memcpy(host, &q->k, q->out_len < 4 ? q->out_len : 4);
	for (i = 0; i < q->nout; i++) {
		uint32_t len = i + 1 < q->nout ? q->out_len / q->nout :
						 q->out_len - off;

		sg[n].addr = base + off;
		sg[n].len = len;
		off += len;
		n++;
	}
	off = 0;
	for (i = 0; i < q->nin; i++) {
		uint32_t len = i + 1 < q->nin ? q->in_len / q->nin :
						q->in_len - off;

		sg[n].addr = base + 4096 + off;
		sg[n].len = len;
		off += len;
		n++;
	}
	return n;
}

/* Request k: up to maxd descriptors; maxd 1 means one readable buffer. */
static void pick(struct req *q, uint32_t k, unsigned int slot,
		 unsigned int maxd)
{
	q->k = k;
	q->slot = slot;
	if (maxd == 1) {
		q->nout = 1;
		q->nin = 0;
	} else {
		unsigned int total = 2 + k % (maxd - 1);

		q->nout = 1 + (k / 3) % (total - 1);
		q->nin = total - q->nout;
	}
	q->out_len = 4 + (k * 13) % 3000 + q->nout;
	q->in_len = q->nin ? 1 + (k * 7) % 2000 + q->nin : 0;
}

/* ---------------------------------------------------------------------- */
/* single thread                                                          */
/* ---------------------------------------------------------------------- */

/* The device's side of one popped element: find its request and serve it. */
static void serve_popped(struct req *reqs, unsigned int num, bool indirect,
			 const struct vh_devq_elem *e)
{
	struct req *q = NULL;
	unsigned int s;

	for (s = 0; s < num; s++)
		if (reqs[s].k == elem_k(e) && reqs[s].out_len == e->out_len)
			q = &reqs[s];
	CHECK(q != NULL);
	CHECK_EQ(e->ndescs, indirect ? 1 : q->nout + q->nin);
	CHECK_EQ(e->out_num, q->nout);
	CHECK_EQ(e->in_num, q->nin);
	serve(e, q->out_len, q->in_len);
}

#define MAX_BATCH 64

/*
 * Driver bursts of requests, device serves everything available: one
 * vh_devq_pop() + vh_devq_push() at a time (batch 0), or up to batch
 * elements per vh_devq_pop_batch() + vh_devq_push_batch().
 */
static void run_single(unsigned int num, uint64_t features, bool indirect,
		       unsigned int maxd, uint32_t count, unsigned int batch)
{
	struct rig r;
	struct req *reqs;
	struct iovec iov[16];
	uint32_t k = 0, done = 0;
	unsigned int *free_slots, nfree;

	rig_init(&r, num, features);
	if (indirect)
		CHECK_EQ(vh_drvq_set_indirect_area(r.vq, IND_GPA, IND_SIZE), 0);
	reqs = calloc(num, sizeof(*reqs));
	free_slots = calloc(num, sizeof(*free_slots));
	CHECK(reqs && free_slots);
	for (nfree = 0; nfree < num; nfree++)
		free_slots[nfree] = nfree;

	while (done < count) {
		struct vh_devq_elem e = { .iov = iov, .iov_max = 16 };
		unsigned int burst = 1 + k % 5, i;
		void *tok;
		uint32_t len;
		int ret;

		/* driver: a burst of requests */
		for (i = 0; i < burst && k < count && nfree; i++) {
			struct vh_sg sg[16];
			struct req *q;
			unsigned int n;

			q = &reqs[free_slots[--nfree]];
			pick(q, k, free_slots[nfree], maxd);
			n = make_sg(&r, q, sg);
			ret = indirect ? vh_drvq_add_indirect(r.vq, sg, q->nout,
							    q->nin, q) :
					 vh_drvq_add(r.vq, sg, q->nout, q->nin,
						   q);
			if (ret == -ENOSPC) {
				nfree++;
				break;
			}
			CHECK_EQ(ret, 0);
			CHECK_EQ(n, q->nout + q->nin);
			k++;
		}
		vh_drvq_kick_prepare(r.vq);
		/* device: everything available */
		while (!batch && (ret = vh_devq_pop(r.vr, &e)) == 1) {
			serve_popped(reqs, num, indirect, &e);
			CHECK_EQ(vh_devq_push(r.vr, e.id, e.in_len), 0);
		}
		while (batch) {
			struct iovec biov[MAX_BATCH][16];
			struct vh_devq_elem es[MAX_BATCH];
			struct vh_devq_used_elem u[MAX_BATCH];
			int j;

			for (j = 0; j < MAX_BATCH; j++) {
				es[j].iov = biov[j];
				es[j].iov_max = 16;
			}
			ret = vh_devq_pop_batch(r.vr, es, batch);
			if (ret <= 0)
				break;
			CHECK(ret <= (int)batch);
			for (j = 0; j < ret; j++) {
				serve_popped(reqs, num, indirect, &es[j]);
				u[j].id = es[j].id;
				u[j].len = es[j].in_len;
			}
			CHECK_EQ(vh_devq_push_batch(r.vr, u, (unsigned int)ret),
				 0);
		}
		CHECK_EQ(ret, 0);
		/* driver: completions */
		while ((ret = vh_drvq_get_used(r.vq, &tok, &len)) == 1) {
			struct req *q = tok;

			CHECK_EQ(len, q->in_len);
			check_reply(gpa_host(&r, DATA_GPA + (uint64_t)q->slot *
							      SLOT_SIZE +
							      4096),
				    q->in_len, q->k);
			free_slots[nfree++] = q->slot;
			done++;
		}
		CHECK_EQ(ret, 0);
	}
	CHECK_EQ(vh_devq_inflight(r.vr), 0);
	CHECK_EQ(vh_drvq_num_free(r.vq), (int)num);
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	free(reqs);
	free(free_slots);
	rig_fini(&r);
}

static void test_single_thread(void)
{
	const uint64_t ev = 1ull << VIRTIO_RING_F_EVENT_IDX;
	const uint64_t ind = 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	const uint64_t v1 = 1ull << VIRTIO_F_VERSION_1;

	/* 0: single calls; 1, 3 and 8: the burst calls */
	static const unsigned int batches[] = { 0, 1, 3, 8, MAX_BATCH };
	unsigned int i;

	for (i = 0; i < sizeof(batches) / sizeof(batches[0]); i++) {
		unsigned int batch = batches[i];

		run_single(256, v1, false, 1, 5000, batch);
		run_single(256, v1 | ev, false, 4, 5000, batch);
		run_single(8, v1, false, 4, 3000, batch);
		run_single(64, v1 | ind, true, 4, 5000, batch);
		run_single(64, v1 | ind | ev, true, 8, 5000, batch);
		run_single(1, v1 | ev, false, 1, 300, batch);
		run_single(2, v1 | ind, true, 6, 300, batch);
	}
}

/* ---------------------------------------------------------------------- */
/* two threads                                                            */
/* ---------------------------------------------------------------------- */

struct dev_thread {
	struct vh_devq *vr;
	int kick_fd;
	unsigned long served, wakeups, notified;
};

#define HOLD 4

/*
 * The device holds up to HOLD popped elements before serving and pushing
 * them (newest first), so elements stay in flight across memory table
 * changes.
 */
static void *device_fn(void *arg)
{
	struct dev_thread *d = arg;
	struct iovec iov[HOLD][16];
	struct vh_devq_elem held[HOLD];
	unsigned int n = 0;
	bool stop = false;

	vh_devq_disable_notification(d->vr);
	for (;;) {
		struct vh_devq_elem *e = &held[n];
		struct pollfd pfd = { .fd = d->kick_fd, .events = POLLIN };
		uint64_t v;
		int ret;

		e->iov = iov[n];
		e->iov_max = 16;
		ret = stop ? 0 : vh_devq_pop(d->vr, e);
		CHECK(ret >= 0);
		if (ret == 1) {
			if (elem_k(e) == UINT32_MAX)
				stop = true; /* stop request: after the others */
			if (++n < HOLD)
				continue;
		}
		while (n) {
			e = &held[--n];
			if (elem_k(e) == UINT32_MAX) {
				CHECK_EQ(vh_devq_push(d->vr, e->id, 0), 0);
				continue;
			}
			serve(e, e->out_len, e->in_len);
			CHECK_EQ(vh_devq_push(d->vr, e->id, e->in_len), 0);
			d->served++;
			/* batch interrupts: notify every 8, and when empty */
			if (d->served % 8 == 0 && vh_devq_notify(d->vr) == 1)
				d->notified++;
		}
		if (stop) {
			if (vh_devq_notify(d->vr) == 1)
				d->notified++;
			CHECK_EQ(vh_devq_inflight(d->vr), 0);
			return NULL;
		}
		if (ret == 1)
			continue;
		if (vh_devq_notify(d->vr) == 1)
			d->notified++;
		/* about to sleep: ask for kicks, then re-check (2.7.10) */
		ret = vh_devq_enable_notification(d->vr);
		CHECK(ret >= 0);
		if (ret == 1) {
			vh_devq_disable_notification(d->vr);
			continue;
		}
		/* a lost kick shows up as this timeout */
		CHECK_EQ(poll(&pfd, 1, 10000), 1);
		CHECK_EQ(read(d->kick_fd, &v, 8), 8);
		d->wakeups++;
		vh_devq_disable_notification(d->vr);
	}
}

/*
 * swap_every: replace the memory table (same memfd, new mappings) every that
 * many completions while the device thread works: its pops move to each new
 * snapshot and the old mappings must stay alive exactly as long as elements
 * popped under them are in flight (ASan / SIGSEGV otherwise).
 */
static void run_threads(unsigned int num, uint64_t features, bool indirect,
			unsigned int maxd, uint32_t count, uint32_t swap_every)
{
	unsigned long swaps = 0;
	int memfd = -1;
	int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC);
	struct dev_thread d = { 0 };
	unsigned long kicks = 0, waits = 0;
	unsigned int *free_slots, nfree;
	uint32_t k = 0, done = 0;
	struct req *reqs;
	pthread_t th;
	struct rig r;

	CHECK(kick >= 0 && call >= 0);
	rig_init(&r, num, features);
	if (indirect)
		CHECK_EQ(vh_drvq_set_indirect_area(r.vq, IND_GPA, IND_SIZE), 0);
	CHECK_EQ(vh_drvq_set_kick_fd(r.vq, kick), 0);
	CHECK_EQ(vh_drvq_set_call_fd(r.vq, call), 0);
	CHECK_EQ(vh_devq_set_kick_fd(r.vr, fcntl(kick, F_DUPFD_CLOEXEC, 0)),
		 0);
	CHECK_EQ(vh_devq_set_call_fd(r.vr, fcntl(call, F_DUPFD_CLOEXEC, 0)),
		 0);
	d.vr = r.vr;
	d.kick_fd = vh_devq_get_kick_fd(r.vr);
	reqs = calloc(num + 1, sizeof(*reqs));
	free_slots = calloc(num, sizeof(*free_slots));
	CHECK(reqs && free_slots);
	for (nfree = 0; nfree < num; nfree++)
		free_slots[nfree] = nfree;
	vh_drvq_disable_cb(r.vq);
	if (swap_every) {
		struct vh_mem_region reg;

		CHECK_EQ(vh_mem_get_region(r.mem, 0, &reg), 0);
		memfd = fcntl(reg.fd, F_DUPFD_CLOEXEC, 0);
		CHECK(memfd >= 0);
	}
	CHECK_EQ(pthread_create(&th, NULL, device_fn, &d), 0);

	while (done < count) {
		void *tok;
		uint32_t len;
		int ret, got = 0;

		while (k < count && nfree) {
			struct vh_sg sg[16];
			struct req *q = &reqs[free_slots[nfree - 1]];

			pick(q, k, free_slots[nfree - 1], maxd);
			make_sg(&r, q, sg);
			ret = indirect ? vh_drvq_add_indirect(r.vq, sg, q->nout,
							    q->nin, q) :
					 vh_drvq_add(r.vq, sg, q->nout, q->nin,
						   q);
			if (ret == -ENOSPC)
				break;
			CHECK_EQ(ret, 0);
			nfree--;
			k++;
			if (k % 16 == 0 && vh_drvq_kick(r.vq) == 1)
				kicks++;
		}
		if (vh_drvq_kick(r.vq) == 1)
			kicks++;
		while ((ret = vh_drvq_get_used(r.vq, &tok, &len)) == 1) {
			struct req *q = tok;

			CHECK_EQ(len, q->in_len);
			check_reply(gpa_host(&r, DATA_GPA + (uint64_t)q->slot *
							       SLOT_SIZE +
							       4096),
				    q->in_len, q->k);
			free_slots[nfree++] = q->slot;
			done++;
			got++;
			if (swap_every && done % swap_every == 0) {
				struct vh_mem_region reg = {
					.gpa = MEM_GPA,
					.size = MEM_SIZE,
					.fd = fcntl(memfd, F_DUPFD_CLOEXEC, 0),
				};

				CHECK(reg.fd >= 0);
				CHECK_EQ(vh_mem_set_table(r.mem, &reg, 1), 0);
				swaps++;
			}
		}
		CHECK_EQ(ret, 0);
		if (!got && (nfree == 0 || k == count)) {
			struct pollfd pfd = { .fd = call, .events = POLLIN };
			uint64_t v;

			ret = vh_drvq_enable_cb(r.vq);
			if (ret == 0) {
				/* a lost interrupt shows up as this timeout */
				CHECK_EQ(poll(&pfd, 1, 10000), 1);
				CHECK_EQ(read(call, &v, 8), 8);
				waits++;
			}
			vh_drvq_disable_cb(r.vq);
		}
	}
	/* stop request */
	{
		struct req *q = &reqs[num];
		struct vh_sg sg[2];
		void *tok;
		uint32_t len;

		q->k = UINT32_MAX;
		q->slot = 0;
		q->out_len = 4;
		q->nout = 1;
		q->in_len = 1;
		q->nin = 1;
		make_sg(&r, q, sg);
		CHECK_EQ(vh_drvq_add(r.vq, sg, 1, 1, q), 0);
		vh_drvq_kick(r.vq);
		CHECK_EQ(pthread_join(th, NULL), 0);
		CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
		CHECK(tok == q);
		CHECK_EQ(len, 0);
	}
	printf("threads %s num=%u%s%s maxd=%u: %u requests, %lu kicks, %lu device wakeups, %lu interrupts, %lu driver waits, %lu table swaps\n",
	       g_layout ? "packed" : "split", num,
	       features & (1ull << VIRTIO_RING_F_EVENT_IDX) ? " event_idx" : "",
	       indirect ? " indirect" : "", maxd, count, kicks, d.wakeups,
	       d.notified, waits, swaps);
	if (swap_every)
		CHECK_EQ(swaps, count / swap_every);
	CHECK_EQ(d.served, count);
	/* suppression: never more than one notification per request */
	CHECK(kicks <= count + 1);
	CHECK(d.notified <= count + 1);
	CHECK_EQ(vh_devq_inflight(r.vr), 0);
	free(reqs);
	free(free_slots);
	rig_fini(&r);
	close(kick);
	close(call);
	if (memfd >= 0)
		close(memfd);
}

static void test_two_threads(void)
{
	const uint64_t ev = 1ull << VIRTIO_RING_F_EVENT_IDX;
	const uint64_t ind = 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	const uint64_t v1 = 1ull << VIRTIO_F_VERSION_1;

	int maps = count_memfd_maps();

	run_threads(256, v1, false, 1, 20000, 0);
	run_threads(256, v1 | ev, false, 1, 20000, 0);
	run_threads(64, v1 | ev, false, 4, 20000, 0);
	run_threads(16, v1, false, 4, 10000, 0);
	run_threads(128, v1 | ind | ev, true, 6, 20000, 0);
	run_threads(32, v1 | ind, true, 3, 10000, 0);
	/* memory tables replaced under the running device */
	run_threads(64, v1 | ev, false, 4, 20000, 50);
	run_threads(32, v1 | ind, true, 3, 10000, 7);
	CHECK_EQ(count_memfd_maps(), maps); /* every old mapping released */
}

/* ---------------------------------------------------------------------- */
/* notification suppression, exactly                                      */
/* ---------------------------------------------------------------------- */

static void add_one(struct rig *r, uint32_t k)
{
	struct vh_sg sg[2] = { { DATA_GPA + k % 64 * 64, 8 },
			       { DATA_GPA + 8192 + k % 64 * 64, 8 } };

	CHECK_EQ(vh_drvq_add(r->vq, sg, 1, 1, (void *)(uintptr_t)(k + 1)), 0);
}

static int pop_push(struct rig *r)
{
	struct iovec iov[4];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };
	int ret = vh_devq_pop(r->vr, &e);

	if (ret == 1)
		CHECK_EQ(vh_devq_push(r->vr, e.id, 8), 0);
	return ret;
}

static void drain_used(struct rig *r)
{
	void *tok;
	uint32_t len;

	while (vh_drvq_get_used(r->vq, &tok, &len) == 1)
		;
}

static void test_notify_no_event_idx(void)
{
	struct rig r;

	rig_init(&r, 16, 1ull << VIRTIO_F_VERSION_1);
	/* fresh: kicks wanted, interrupts wanted */
	add_one(&r, 0);
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 1);
	CHECK_EQ(vh_devq_disable_notification(r.vr), 0);
	add_one(&r, 1);
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 0); /* VRING_USED_F_NO_NOTIFY */
	/* enable reports the two pending buffers */
	CHECK_EQ(vh_devq_enable_notification(r.vr), 1);
	add_one(&r, 2);
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 1);
	CHECK_EQ(pop_push(&r), 1);
	CHECK_EQ(vh_devq_need_notify(r.vr), 1);
	CHECK_EQ(vh_drvq_disable_cb(r.vq), 0);
	CHECK_EQ(pop_push(&r), 1);
	CHECK_EQ(vh_devq_need_notify(r.vr), 0); /* NO_INTERRUPT */
	CHECK_EQ(vh_drvq_enable_cb(r.vq), 1);      /* entries pending */
	CHECK_EQ(pop_push(&r), 1);
	CHECK_EQ(vh_devq_need_notify(r.vr), 1);
	CHECK_EQ(pop_push(&r), 0);
	drain_used(&r);
	CHECK_EQ(vh_drvq_enable_cb(r.vq), 0);
	CHECK_EQ(vh_devq_enable_notification(r.vr), 0);
	rig_fini(&r);
}

/*
 * kick_prepare() after the positions went a whole number of laps since the
 * last one (split: the avail index 2^16 chains on; packed: 2 * num ring
 * positions, here 2 chains of 2): chains were added, so a device that
 * wants notifications (no event idx) gets a kick.
 */
static void test_kick_laps(void)
{
	unsigned int i, adds = g_layout ? 2 : 1u << 16;
	struct rig r;

	rig_init(&r, 2, 1ull << VIRTIO_F_VERSION_1);
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 0); /* nothing added */
	for (i = 0; i < adds; i++) {
		add_one(&r, i);
		CHECK_EQ(pop_push(&r), 1);
		drain_used(&r);
	}
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 1);
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 0);
	rig_fini(&r);

	/*
	 * With event idx: a packed ring's positions count descriptors, not
	 * buffers.  Two 2-descriptor chains go once round a ring of 2 with
	 * no kick_prepare between them (the device polled the first); the
	 * idle device asks for a kick at its next position, where the second
	 * chain starts: the positions alone look like nothing was added.
	 */
	rig_init(&r, 2,
		 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX);
	add_one(&r, 0);
	CHECK_EQ(pop_push(&r), 1);
	drain_used(&r);
	CHECK_EQ(pop_push(&r), 0); /* idle: re-arms at its next position */
	add_one(&r, 1);
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 1);
	CHECK_EQ(pop_push(&r), 1);
	rig_fini(&r);
}

static void test_notify_event_idx(void)
{
	struct rig r;
	int i;

	rig_init(&r, 16,
		 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_RING_F_EVENT_IDX);
	/* avail_event starts at 0: the first buffer kicks */
	add_one(&r, 0);
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 1);
	/* device busy (notifications off): no kicks for more buffers */
	CHECK_EQ(vh_devq_disable_notification(r.vr), 0);
	add_one(&r, 1);
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 0);
	add_one(&r, 2);
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 0);
	for (i = 0; i < 3; i++)
		CHECK_EQ(pop_push(&r), 1);
	/* device about to sleep: avail_event = 3 and nothing pending */
	CHECK_EQ(vh_devq_enable_notification(r.vr), 0);
	add_one(&r, 3);
	add_one(&r, 4);
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 1); /* crossed avail_event */
	add_one(&r, 5);
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 0); /* already kicked */
	/* an empty pop with notifications on re-arms avail_event */
	for (i = 0; i < 3; i++)
		CHECK_EQ(pop_push(&r), 1);
	CHECK_EQ(pop_push(&r), 0);
	add_one(&r, 6);
	CHECK_EQ(vh_drvq_kick_prepare(r.vq), 1);
	CHECK_EQ(pop_push(&r), 1);

	/* interrupts: used_event set by get_used; once per crossing */
	drain_used(&r);
	CHECK_EQ(vh_devq_need_notify(r.vr), 1); /* first check is always 1 */
	add_one(&r, 7);
	add_one(&r, 8);
	CHECK_EQ(pop_push(&r), 1);
	CHECK_EQ(vh_devq_need_notify(r.vr), 1); /* crossed used_event */
	CHECK_EQ(pop_push(&r), 1);
	CHECK_EQ(vh_devq_need_notify(r.vr), 0); /* driver has not caught up */
	drain_used(&r);
	add_one(&r, 9);
	CHECK_EQ(pop_push(&r), 1);
	CHECK_EQ(vh_devq_need_notify(r.vr), 1);
	/* callbacks off: no interrupt; back on with pending entries: 1 */
	drain_used(&r);
	CHECK_EQ(vh_drvq_disable_cb(r.vq), 0);
	add_one(&r, 10);
	CHECK_EQ(pop_push(&r), 1);
	CHECK_EQ(vh_devq_need_notify(r.vr), 0);
	CHECK_EQ(vh_drvq_enable_cb(r.vq), 1);
	drain_used(&r);
	CHECK_EQ(vh_drvq_enable_cb(r.vq), 0);
	add_one(&r, 11);
	CHECK_EQ(pop_push(&r), 1);
	CHECK_EQ(vh_devq_need_notify(r.vr), 1);
	/*
	 * Pairs of pushes round the ring three times, the driver catching up
	 * before each pair: the first crosses used_event, the second does
	 * not, also where the used position wraps between the two (12
	 * pushed so far, size 16: the pair at 14 and 15).  A device that
	 * cannot tell positions apart across a wrap notifies twice.
	 */
	for (i = 0; i < 24; i++) {
		drain_used(&r);
		add_one(&r, 12 + 2 * i);
		add_one(&r, 13 + 2 * i);
		CHECK_EQ(pop_push(&r), 1);
		CHECK_EQ(vh_devq_need_notify(r.vr), 1);
		CHECK_EQ(pop_push(&r), 1);
		CHECK_EQ(vh_devq_need_notify(r.vr), 0);
	}
	rig_fini(&r);
}

static void test_notify_on_empty(void)
{
	struct rig r;

	rig_init(&r, 16,
		 1ull << VIRTIO_F_VERSION_1 | 1ull << VIRTIO_F_NOTIFY_ON_EMPTY);
	CHECK_EQ(vh_drvq_disable_cb(r.vq), 0);
	add_one(&r, 0);
	add_one(&r, 1);
	CHECK_EQ(pop_push(&r), 1);
	CHECK_EQ(vh_devq_need_notify(r.vr), 0); /* suppressed, not empty */
	CHECK_EQ(pop_push(&r), 1);
	CHECK_EQ(vh_devq_need_notify(r.vr), 1); /* ran empty */
	rig_fini(&r);
}

/* ---------------------------------------------------------------------- */
/* index wrap and stop/restart                                            */
/* ---------------------------------------------------------------------- */

static void test_wrap_and_restart(void)
{
	struct rig r;
	uint32_t base, i;
	struct vh_devq *vr2;
	struct vh_devq_addr a;
	uint64_t d, av, u;

	rig_init(&r, 8, 1ull << VIRTIO_F_VERSION_1 |
				1ull << VIRTIO_RING_F_EVENT_IDX);
	/* run up to just before the 16-bit wrap */
	for (i = 0; i < 65530; i++) {
		add_one(&r, i);
		CHECK_EQ(pop_push(&r), 1);
		drain_used(&r);
	}
	/* two buffers in the ring when the device stops */
	add_one(&r, 0);
	add_one(&r, 1);
	CHECK_EQ(vh_devq_get_base(r.vr, &base), 0);
	CHECK_EQ(base, 65530);
	/* restart on a new vring at that base (GET/SET_VRING_BASE) */
	CHECK_EQ(vh_devq_new(r.ctx, r.mem, 0, &vr2), 0);
	CHECK_EQ(vh_devq_set_features(vr2, 1ull << VIRTIO_F_VERSION_1 |
						    1ull << VIRTIO_RING_F_EVENT_IDX),
		 0);
	CHECK_EQ(vh_devq_set_num(vr2, 8), 0);
	CHECK_EQ(vh_devq_set_base(vr2, base), 0);
	CHECK_EQ(vh_devq_set_base(vr2, 65536), -EINVAL);
	CHECK_EQ(vh_drvq_get_addrs(r.vq, &d, &av, &u), 0);
	a = (struct vh_devq_addr){ .desc = d, .avail = av, .used = u };
	CHECK_EQ(vh_devq_set_addr(vr2, &a), 0);
	vh_devq_unref(r.vr);
	r.vr = vr2;
	{
		uint16_t n;

		CHECK_EQ(vh_devq_avail_count(r.vr, &n), 0);
		CHECK_EQ(n, 2);
	}
	/* across 65535 -> 0 */
	for (i = 0; i < 20; i++) {
		void *tok;
		uint32_t len;

		CHECK_EQ(pop_push(&r), 1);
		CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
		CHECK_EQ(len, 8);
		add_one(&r, i + 2);
	}
	CHECK_EQ(vh_devq_get_base(r.vr, &base), 0);
	CHECK_EQ(base, (65530 + 20) & 0xffff);
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	rig_fini(&r);
}

/* ---------------------------------------------------------------------- */
/* memory table changes with elements in flight                           */
/* ---------------------------------------------------------------------- */

static void test_table_switch_inflight(void)
{
	struct iovec iov1[2], iov2[2], iov3[2];
	struct vh_devq_elem e1 = { .iov = iov1, .iov_max = 2 };
	struct vh_devq_elem e2 = { .iov = iov2, .iov_max = 2 };
	struct vh_devq_elem e3 = { .iov = iov3, .iov_max = 2 };
	int maps0;
	uint8_t *extra;
	struct rig r;
	void *tok;
	uint32_t len;

	rig_init(&r, 8, 1ull << VIRTIO_F_VERSION_1);
	/* a second region that buffers will live in */
	CHECK_EQ(vh_mem_add_memfd(r.mem, 0x10000000, 65536, (void **)&extra),
		 0);
	maps0 = count_memfd_maps();
	{
		/*
		 * e1 a chain: a packed ring's push then goes the general way
		 * (its head_table entry is tagged VH_HT_COMPLEX)
		 */
		struct vh_sg sg2[2] = { { 0x10000000, 50 },
					{ 0x10000000 + 50, 50 } };
		struct vh_sg sg = { 0x10000000 + 200, 100 };

		CHECK_EQ(vh_drvq_add(r.vq, sg2, 0, 2, &e1), 0);
		CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &e2), 0);
	}
	CHECK_EQ(vh_devq_pop(r.vr, &e1), 1);
	CHECK_EQ(e1.in_num, 2);
	/* the region goes away while e1 is in flight */
	CHECK_EQ(vh_mem_remove(r.mem, 0x10000000, 65536), 0);
	/* the next pop moves to the new table: e2's buffer is gone now */
	CHECK_EQ(vh_devq_pop(r.vr, &e2), -EIO);
	CHECK_EQ(vh_devq_is_broken(r.vr), 1);
	/* ... but e1's mapping is still there until it is pushed */
	memset(iov1[0].iov_base, 0xab, 50);
	memset(iov1[1].iov_base, 0xab, 50);
	CHECK_EQ(count_memfd_maps(), maps0);
	CHECK_EQ(vh_devq_inflight(r.vr), 1);
	CHECK_EQ(vh_devq_push(r.vr, e1.id, 100), -EIO); /* broken, released */
	CHECK_EQ(vh_devq_inflight(r.vr), 0);
	CHECK_EQ(count_memfd_maps(), maps0 - 1);
	rig_fini(&r);

	/* again with a table change that keeps the buffers: all complete */
	rig_init(&r, 8, 1ull << VIRTIO_F_VERSION_1);
	CHECK_EQ(vh_mem_add_memfd(r.mem, 0x10000000, 65536, (void **)&extra),
		 0);
	{
		struct vh_sg sg2[2] = { { 0x10000000, 50 },
					{ 0x10000000 + 50, 50 } };
		struct vh_sg sg = { 0x10000000 + 200, 100 };

		CHECK_EQ(vh_drvq_add(r.vq, sg2, 0, 2, &e1), 0);
		CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &e2), 0);
		sg.addr += 200;
		CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &e3), 0);
	}
	CHECK_EQ(vh_devq_pop(r.vr, &e1), 1);
	/* hot-add memory elsewhere, then the pop switches snapshots */
	CHECK_EQ(vh_mem_add_memfd(r.mem, 0x20000000, 65536, NULL), 0);
	CHECK_EQ(vh_devq_pop(r.vr, &e2), 1);
	CHECK_EQ(vh_mem_add_memfd(r.mem, 0x30000000, 65536, NULL), 0);
	CHECK_EQ(vh_devq_pop(r.vr, &e3), 1);
	CHECK_EQ(vh_devq_inflight(r.vr), 3);
	memset(iov1[0].iov_base, 1, 50);
	memset(iov1[1].iov_base, 1, 50);
	memset(iov2[0].iov_base, 2, 100);
	memset(iov3[0].iov_base, 3, 100);
	/* out of order, across three snapshots */
	CHECK_EQ(vh_devq_push(r.vr, e2.id, 100), 0);
	CHECK_EQ(vh_devq_push(r.vr, e1.id, 100), 0);
	CHECK_EQ(vh_devq_push(r.vr, e3.id, 100), 0);
	CHECK_EQ(vh_devq_push(r.vr, e3.id, 100), -EINVAL); /* twice */
	CHECK_EQ(vh_devq_push(r.vr, 8, 100), -EINVAL);     /* >= num */
	CHECK_EQ(vh_devq_inflight(r.vr), 0);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK(tok == &e2);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK(tok == &e1);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK(tok == &e3);
	CHECK_EQ(extra[0], 1);
	CHECK_EQ(extra[99], 1);
	CHECK_EQ(extra[200], 2);
	CHECK_EQ(extra[400], 3);
	rig_fini(&r);
}

/*
 * Snapshots published while elements are in flight, as fast as a writer
 * can: every pop may move to a new table, including one published between
 * its read of the generation and its read of the table (the newest table,
 * pinned under an older generation: a window of nanoseconds, which this
 * run is not sure to hit).  The count in flight stays exact and every old
 * snapshot is let go once its elements are pushed.
 */
struct publisher {
	struct vh_mem *mem;
	volatile bool stop;
	unsigned long n;
};

static void *publish_fn(void *arg)
{
	struct publisher *p = arg;

	while (!p->stop) {
		CHECK_EQ(vh_mem_add_memfd(p->mem, 0x40000000, 4096, NULL), 0);
		CHECK_EQ(vh_mem_remove(p->mem, 0x40000000, 4096), 0);
		p->n += 2;
	}
	return NULL;
}

static void test_table_switch_race(void)
{
	struct iovec iov[3][1];
	struct vh_devq_elem e[3];
	struct publisher pub = { 0 };
	unsigned long rounds = 0;
	unsigned int i;
	struct timespec t0, t;
	pthread_t th;
	int maps0;
	struct rig r;
	void *tok;
	uint32_t len;

	rig_init(&r, 16, 1ull << VIRTIO_F_VERSION_1);
	maps0 = count_memfd_maps();
	pub.mem = r.mem;
	CHECK_EQ(pthread_create(&th, NULL, publish_fn, &pub), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		for (i = 0; i < 3; i++) {
			struct vh_sg sg = { DATA_GPA + i * SLOT_SIZE, 64 };

			CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &e[i]), 0);
		}
		for (i = 0; i < 3; i++) {
			e[i] = (struct vh_devq_elem){ .iov = iov[i],
						      .iov_max = 1 };
			CHECK_EQ(vh_devq_pop(r.vr, &e[i]), 1);
		}
		CHECK_EQ(vh_devq_inflight(r.vr), 3);
		for (i = 0; i < 3; i++)
			CHECK_EQ(vh_devq_push(r.vr, e[i].id, 0), 0);
		CHECK_EQ(vh_devq_inflight(r.vr), 0);
		for (i = 0; i < 3; i++)
			CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
		rounds++;
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 1);
	pub.stop = true;
	CHECK_EQ(pthread_join(th, NULL), 0);
	/* one more round moves to the last table: nothing old stays mapped */
	{
		struct vh_sg sg = { DATA_GPA, 64 };

		CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &e[0]), 0);
		e[0] = (struct vh_devq_elem){ .iov = iov[0], .iov_max = 1 };
		CHECK_EQ(vh_devq_pop(r.vr, &e[0]), 1);
		CHECK_EQ(vh_devq_push(r.vr, e[0].id, 0), 0);
		CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	}
	printf("table switch race %s: %lu rounds of 3 in flight, %lu tables published\n",
	       g_layout ? "packed" : "split", rounds, pub.n);
	CHECK_EQ(vh_devq_inflight(r.vr), 0);
	CHECK_EQ(count_memfd_maps(), maps0);
	rig_fini(&r);
}

/* ---------------------------------------------------------------------- */
/* dirty log                                                              */
/* ---------------------------------------------------------------------- */

static bool log_bit(const uint8_t *log, uint64_t gpa)
{
	uint64_t page = gpa / 4096;

	return log[page / 8] & (1u << (page % 8));
}

static void test_dirty_log(void)
{
	uint64_t d, av, u;
	struct vh_devq_addr a;
	uint8_t *log;
	struct rig r;
	size_t size;

	rig_init(&r, 16, 1ull << VIRTIO_F_VERSION_1 | 1ull << VHOST_F_LOG_ALL);
	size = vh_mem_log_size_for(MEM_GPA + MEM_SIZE);
	CHECK_EQ(vh_mem_log_alloc(r.mem, size, NULL, (void **)&log), 0);
	CHECK_EQ(vh_drvq_get_addrs(r.vq, &d, &av, &u), 0);
	a = (struct vh_devq_addr){ .desc = d, .avail = av, .used = u,
				    .log = u, .flags = VH_DEVQ_ADDR_LOG };
	CHECK_EQ(vh_devq_set_addr(r.vr, &a), 0);
	{
		/* 10000 writable bytes from DATA_GPA + 3 pages - 10 */
		struct vh_sg sg[2] = { { DATA_GPA, 16 },
				       { DATA_GPA + 3 * 4096 - 10, 10000 } };

		CHECK_EQ(vh_drvq_add(r.vq, sg, 1, 1, &a), 0);
	}
	CHECK_EQ(pop_push(&r), 1); /* reports 8 bytes written */
	CHECK(log_bit(log, g_layout ? d : u));      /* used ring / slot */
	CHECK(log_bit(log, DATA_GPA + 3 * 4096 - 10)); /* written bytes */
	CHECK(!log_bit(log, DATA_GPA + 3 * 4096));  /* only 8 of them */
	CHECK(!log_bit(log, DATA_GPA));             /* readable buffer */
	CHECK(!log_bit(log, DATA_GPA + 5 * 4096)); /* untouched */
	/* explicit logging by the backend */
	CHECK_EQ(vh_devq_log_write(r.vr, DATA_GPA + 8 * 4096, 1), 0);
	CHECK(log_bit(log, DATA_GPA + 8 * 4096));
	rig_fini(&r);
}

/*
 * Migration starts while the device runs: the frontend re-sends the ring
 * addresses with VHOST_VRING_F_LOG and the features with VHOST_F_LOG_ALL.
 * Elements in flight must survive and their writes must be logged.
 */
static void test_log_toggle_inflight(void)
{
	struct iovec iov[2], iov_ro, iov_part;
	struct vh_devq_elem e = { .iov = iov, .iov_max = 2 };
	struct vh_devq_elem ro = { .iov = &iov_ro, .iov_max = 1 };
	struct vh_devq_elem part = { .iov = &iov_part, .iov_max = 1 };
	uint64_t d, av, u;
	struct vh_devq_addr a;
	uint8_t *log;
	struct rig r;
	void *tok;
	uint32_t len;

	rig_init(&r, 16, 1ull << VIRTIO_F_VERSION_1);
	{
		struct vh_sg sg = { DATA_GPA + 5 * 4096, 100 };
		/* a read-only buffer: nothing of it is logged */
		struct vh_sg sg_ro = { DATA_GPA + 7 * 4096, 100 };
		/* 100 writable bytes over a page boundary, 10 written */
		struct vh_sg sg_part = { DATA_GPA + 10 * 4096 - 20, 100 };

		CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &e), 0);
		CHECK_EQ(vh_drvq_add(r.vq, &sg_ro, 1, 0, &ro), 0);
		CHECK_EQ(vh_drvq_add(r.vq, &sg_part, 0, 1, &part), 0);
	}
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	CHECK_EQ(vh_devq_pop(r.vr, &ro), 1);
	CHECK_EQ(vh_devq_pop(r.vr, &part), 1);
	CHECK_EQ(vh_mem_log_alloc(r.mem, vh_mem_log_size_for(MEM_GPA + MEM_SIZE),
				  NULL, (void **)&log),
		 0);
	CHECK_EQ(vh_drvq_get_addrs(r.vq, &d, &av, &u), 0);
	a = (struct vh_devq_addr){ .desc = d, .avail = av, .used = u,
				    .log = u, .flags = VH_DEVQ_ADDR_LOG };
	CHECK_EQ(vh_devq_set_addr(r.vr, &a), 0);
	CHECK_EQ(vh_devq_set_features(r.vr, 1ull << VIRTIO_F_VERSION_1 |
						     1ull << VHOST_F_LOG_ALL |
						     g_layout),
		 0);
	CHECK_EQ(vh_devq_inflight(r.vr), 3);
	memset(iov[0].iov_base, 0x5a, 100);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 100), 0);
	CHECK(log_bit(log, DATA_GPA + 5 * 4096));
	CHECK(log_bit(log, g_layout ? d : u));
	CHECK_EQ(vh_devq_push(r.vr, ro.id, 0), 0);
	CHECK(!log_bit(log, DATA_GPA + 7 * 4096));
	CHECK_EQ(vh_devq_push(r.vr, part.id, 10), 0);
	CHECK(log_bit(log, DATA_GPA + 10 * 4096 - 20));
	CHECK(!log_bit(log, DATA_GPA + 10 * 4096));
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK(tok == &e);
	CHECK_EQ(len, 100);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK(tok == &ro);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK(tok == &part);
	CHECK_EQ(len, 10);
	/* turning event idx on while running resizes, keeps going */
	CHECK_EQ(vh_drvq_set_features(r.vq, 1ull << VIRTIO_F_VERSION_1 |
						  1ull << VIRTIO_RING_F_EVENT_IDX |
						  g_layout),
		 0);
	CHECK_EQ(vh_devq_set_features(r.vr,
				       1ull << VIRTIO_F_VERSION_1 |
					       1ull << VIRTIO_RING_F_EVENT_IDX |
					       g_layout),
		 0);
	add_one(&r, 1);
	CHECK_EQ(pop_push(&r), 1);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	/*
	 * Logging again, a read-only buffer pushed with a length (wrong:
	 * nothing in it is writable; the driver would refuse it): the log
	 * follows the buffer's flags, not the length
	 */
	CHECK_EQ(vh_devq_set_features(r.vr, 1ull << VIRTIO_F_VERSION_1 |
						     1ull << VHOST_F_LOG_ALL |
						     g_layout),
		 0);
	{
		struct vh_sg sg_ro = { DATA_GPA + 7 * 4096, 100 };

		CHECK_EQ(vh_drvq_add(r.vq, &sg_ro, 1, 0, &ro), 0);
	}
	CHECK_EQ(vh_devq_pop(r.vr, &ro), 1);
	CHECK_EQ(vh_devq_push(r.vr, ro.id, 50), 0);
	CHECK(!log_bit(log, DATA_GPA + 7 * 4096));
	rig_fini(&r);
}

/* ---------------------------------------------------------------------- */
/* API edges                                                              */
/* ---------------------------------------------------------------------- */

/* push_batch: all or nothing; an id twice, or not in flight, is refused */
static void test_push_batch(void)
{
	struct vh_devq_used_elem used[4];
	struct iovec iov[4];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };
	struct rig r;
	uint8_t *buf;
	void *token;
	uint32_t len;
	uint16_t ids[3];
	int i;

	rig_init(&r, 16, 1ull << VIRTIO_F_VERSION_1);
	buf = gpa_host(&r, DATA_GPA);
	for (i = 0; i < 3; i++) {
		struct vh_sg sg = { DATA_GPA + 64ull * i, 64 };

		CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, buf + i), 0);
	}
	CHECK(vh_drvq_kick_prepare(r.vq) >= 0);
	for (i = 0; i < 3; i++) {
		CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
		ids[i] = e.id;
	}
	used[0] = (struct vh_devq_used_elem){ ids[0], 1 };
	used[1] = (struct vh_devq_used_elem){ ids[1], 2 };
	used[2] = (struct vh_devq_used_elem){ ids[0], 3 };
	CHECK_EQ(vh_devq_push_batch(r.vr, used, 3), -EINVAL); /* twice */
	used[2] = (struct vh_devq_used_elem){ 15, 3 };
	CHECK_EQ(vh_devq_push_batch(r.vr, used, 3), -EINVAL); /* not ours */
	used[2] = (struct vh_devq_used_elem){ 16, 3 };
	CHECK_EQ(vh_devq_push_batch(r.vr, used, 3), -EINVAL); /* past num */
	CHECK_EQ(vh_drvq_get_used(r.vq, &token, &len), 0); /* nothing pushed */
	CHECK_EQ(vh_devq_inflight(r.vr), 3);
	/*
	 * A refused batch leaves nothing behind: after one shorter push the
	 * driver sees that one only (packed: no slot past it seen as used).
	 */
	CHECK_EQ(vh_devq_push(r.vr, ids[0], 1), 0);
	CHECK_EQ(vh_drvq_get_used(r.vq, &token, &len), 1);
	CHECK(token == buf);
	CHECK_EQ(len, 1);
	CHECK_EQ(vh_drvq_get_used(r.vq, &token, &len), 0);
	CHECK_EQ(vh_devq_inflight(r.vr), 2);
	used[0] = (struct vh_devq_used_elem){ ids[1], 2 };
	used[1] = (struct vh_devq_used_elem){ ids[2], 3 };
	CHECK_EQ(vh_devq_push_batch(r.vr, used, 2), 0);
	for (i = 1; i < 3; i++) {
		CHECK_EQ(vh_drvq_get_used(r.vq, &token, &len), 1);
		CHECK(token == buf + i);
		CHECK_EQ(len, (uint32_t)i + 1);
	}
	CHECK_EQ(vh_devq_inflight(r.vr), 0);
	/* the same ids again, now that they are back: not in flight */
	CHECK_EQ(vh_devq_push_batch(r.vr, used, 1), -EINVAL);
	CHECK_EQ(vh_devq_push_batch(r.vr, used, 0), 0);
	rig_fini(&r);
}

/*
 * pop_batch: readable and writable single buffers and a chain in one call,
 * an empty ring, an element without iovecs, and a ring that breaks in the
 * middle of a batch (what was popped before comes back, then -EIO).
 */
static void test_pop_batch(void)
{
	struct vh_devq_used_elem u[4];
	struct vh_devq_elem es[4];
	struct iovec iov[4][4];
	struct rig r;
	uint64_t desc, avail, used;
	uint16_t *ring, idx;
	void *token;
	uint32_t len;
	int i;

	rig_init(&r, 16, 1ull << VIRTIO_F_VERSION_1);
	for (i = 0; i < 4; i++) {
		es[i].iov = iov[i];
		es[i].iov_max = 4;
	}
	CHECK_EQ(vh_devq_pop_batch(r.vr, es, 4), 0); /* empty */
	CHECK_EQ(vh_devq_pop_batch(r.vr, es, 0), 0);
	{
		struct vh_sg rd = { DATA_GPA, 100 }, wr = { DATA_GPA + 4096, 200 };
		struct vh_sg ch[2] = { { DATA_GPA + 8192, 10 },
				       { DATA_GPA + 12288, 20 } };

		CHECK_EQ(vh_drvq_add(r.vq, &rd, 1, 0, (void *)1), 0);
		CHECK_EQ(vh_drvq_add(r.vq, &wr, 0, 1, (void *)2), 0);
		CHECK_EQ(vh_drvq_add(r.vq, ch, 1, 1, (void *)3), 0);
		CHECK_EQ(vh_drvq_add(r.vq, &wr, 0, 1, (void *)4), 0);
	}
	CHECK(vh_drvq_kick_prepare(r.vq) >= 0);
	CHECK_EQ(vh_devq_pop_batch(r.vr, es, 3), 3); /* at most n */
	CHECK_EQ(es[0].out_num, 1);
	CHECK_EQ(es[0].in_num, 0);
	CHECK_EQ(es[0].out_len, 100);
	CHECK_EQ(es[0].in_len, 0);
	CHECK(iov[0][0].iov_base == gpa_host(&r, DATA_GPA));
	CHECK_EQ(iov[0][0].iov_len, 100);
	CHECK_EQ(es[1].out_num, 0);
	CHECK_EQ(es[1].in_num, 1);
	CHECK_EQ(es[1].out_len, 0);
	CHECK_EQ(es[1].in_len, 200);
	CHECK(iov[1][0].iov_base == gpa_host(&r, DATA_GPA + 4096));
	CHECK_EQ(es[2].ndescs, 2);
	CHECK_EQ(es[2].out_num, 1);
	CHECK_EQ(es[2].in_num, 1);
	CHECK(iov[2][1].iov_base == gpa_host(&r, DATA_GPA + 12288));
	CHECK_EQ(es[2].in_len, 20);
	CHECK_EQ(vh_devq_inflight(r.vr), 3);
	/* no iovecs for the next one: -ENOBUFS, it stays in the ring */
	es[3].iov_max = 0;
	CHECK_EQ(vh_devq_pop_batch(r.vr, &es[3], 1), -ENOBUFS);
	es[3].iov_max = 4;
	CHECK_EQ(vh_devq_pop_batch(r.vr, &es[3], 1), 1);
	CHECK_EQ(es[3].in_len, 200);
	for (i = 0; i < 4; i++) {
		u[i].id = es[i].id;
		u[i].len = (uint32_t)i;
	}
	CHECK_EQ(vh_devq_push_batch(r.vr, u, 4), 0);
	for (i = 0; i < 4; i++) {
		CHECK_EQ(vh_drvq_get_used(r.vq, &token, &len), 1);
		CHECK(token == (void *)(uintptr_t)(i + 1));
		CHECK_EQ(len, (uint32_t)i);
	}

	if (g_layout) {
		rig_fini(&r);
		return; /* packed hostile rings: test-vring-hostile.c */
	}
	/* three more; the driver's third avail entry names head 99 */
	for (i = 0; i < 3; i++) {
		struct vh_sg rd = { DATA_GPA + 64ull * i, 64 };

		CHECK_EQ(vh_drvq_add(r.vq, &rd, 1, 0, (void *)1), 0);
	}
	CHECK(vh_drvq_kick_prepare(r.vq) >= 0);
	CHECK_EQ(vh_drvq_get_addrs(r.vq, &desc, &avail, &used), 0);
	ring = gpa_host(&r, avail + 4);
	memcpy(&idx, gpa_host(&r, avail + 2), 2);
	ring[(uint16_t)(idx - 1) % 16] = htole16(99);
	CHECK_EQ(vh_devq_pop_batch(r.vr, es, 4), 2);
	CHECK_EQ(vh_devq_pop_batch(r.vr, es, 4), -EIO);
	CHECK_EQ(vh_devq_is_broken(r.vr), 1);
	/* pushing them releases them and writes nothing */
	u[0].id = es[0].id;
	u[1].id = es[1].id;
	CHECK_EQ(vh_devq_push_batch(r.vr, u, 2), -EIO);
	CHECK_EQ(vh_devq_inflight(r.vr), 0);
	CHECK_EQ(vh_drvq_get_used(r.vq, &token, &len), 0);
	CHECK(strstr(r.last_err, "head 99") != NULL);
	rig_fini(&r);
}

static void test_api_edges(void)
{
	struct iovec iov[1];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 1 };
	struct vh_devq_addr a = { 0 };
	struct vh_devq *vr;
	struct rig r;

	rig_init(&r, 16, 1ull << VIRTIO_F_VERSION_1);
	CHECK_EQ(vh_devq_new(r.ctx, r.mem, 3, &vr), 0);
	CHECK_EQ(vh_devq_get_index(vr), 3);
	CHECK_EQ(vh_devq_pop(vr, &e), -EINVAL); /* no size, no addresses */
	CHECK_EQ(vh_devq_set_num(vr, 0), -EINVAL);
	CHECK_EQ(vh_devq_set_num(vr, 3), -EINVAL);
	CHECK_EQ(vh_devq_set_num(vr, 65536), -EINVAL);
	CHECK_EQ(vh_devq_set_num(vr, 32768), 0);
	CHECK_EQ(vh_devq_get_num(vr), 32768);
	CHECK_EQ(vh_devq_set_num(vr, 16), 0);
	/* packed: any size up to 32768; back to split: sizes are pow2 */
	CHECK_EQ(vh_devq_set_features(vr, 1ull << VIRTIO_F_RING_PACKED), 0);
	CHECK_EQ(vh_devq_set_num(vr, 3), 0);
	CHECK_EQ(vh_devq_set_num(vr, 65536), -EINVAL);
	CHECK_EQ(vh_devq_set_features(vr, 0), 0);
	CHECK_EQ(vh_devq_get_num(vr), 0);
	CHECK_EQ(vh_devq_set_num(vr, 16), 0);
	/* misaligned, and outside memory */
	a.desc = RING_GPA + 8;
	a.avail = RING_GPA + 4096;
	a.used = RING_GPA + 8192;
	CHECK_EQ(vh_devq_set_addr(vr, &a), -EINVAL);
	a.desc = RING_GPA;
	a.used = RING_GPA + 8194;
	CHECK_EQ(vh_devq_set_addr(vr, &a), -EINVAL);
	a.used = MEM_GPA + MEM_SIZE - 8;
	CHECK_EQ(vh_devq_set_addr(vr, &a), -EFAULT);
	a.used = RING_GPA + 8192;
	a.desc = MEM_GPA - 16;
	CHECK_EQ(vh_devq_set_addr(vr, &a), -EFAULT);
	a.desc = RING_GPA;
	CHECK_EQ(vh_devq_set_addr(vr, &a), 0);
	CHECK_EQ(vh_devq_pop(vr, &e), 0);
	/* by peer virtual address: our mapping stands in for it here */
	a.flags = VH_DEVQ_ADDR_UVA;
	a.desc = (uintptr_t)gpa_host(&r, RING_GPA);
	a.avail = (uintptr_t)gpa_host(&r, RING_GPA + 4096);
	a.used = (uintptr_t)gpa_host(&r, RING_GPA + 8192);
	CHECK_EQ(vh_devq_set_addr(vr, &a), 0);
	a.used = 0x1000;
	CHECK_EQ(vh_devq_set_addr(vr, &a), -EFAULT);
	CHECK_EQ(vh_devq_pop(vr, &e), 0); /* the previous rings stay */
	/* eventfds are owned */
	{
		int efd = eventfd(0, EFD_CLOEXEC);

		CHECK_EQ(vh_devq_set_kick_fd(vr, efd), 0);
		CHECK_EQ(vh_devq_get_kick_fd(vr), efd);
		CHECK_EQ(vh_devq_read_kick(vr), 0);
		{
			uint64_t one = 1;

			CHECK_EQ(write(efd, &one, 8), 8);
		}
		CHECK_EQ(vh_devq_read_kick(vr), 1);
		CHECK_EQ(vh_devq_read_kick(vr), 0);
		CHECK_EQ(vh_devq_set_kick_fd(vr, -1), 0);
		CHECK(fcntl(efd, F_GETFD) < 0); /* closed */
	}
	CHECK_EQ(vh_devq_reset(vr), 0);
	CHECK_EQ(vh_devq_get_num(vr), 0);
	CHECK_EQ(vh_devq_pop(vr, &e), -EINVAL);
	CHECK(vh_devq_ref(vr) == vr);
	CHECK(vh_devq_unref(vr) == vr);
	CHECK(vh_devq_unref(vr) == NULL);

	/* driver side */
	CHECK_EQ(vh_drvq_ring_bytes(0), 0);
	CHECK_EQ(vh_drvq_ring_bytes(3), 0);
	/* 4096 + 518, rounded to 4616, + 2054 */
	CHECK_EQ(vh_drvq_ring_bytes(256), 6670);
	{
		struct vh_drvq *vq;
		struct vh_sg sg = { DATA_GPA, 1 };

		CHECK_EQ(vh_drvq_new(r.ctx, r.mem, 0, 256, RING_GPA + 8, &vq),
			 -EINVAL);
		CHECK_EQ(vh_drvq_new(r.ctx, r.mem, 0, 256,
				   MEM_GPA + MEM_SIZE - 4096, &vq),
			 -EFAULT);
		CHECK_EQ(vh_drvq_add(r.vq, &sg, 1, 0, NULL), -EINVAL);
		sg.len = 0;
		CHECK_EQ(vh_drvq_add(r.vq, &sg, 1, 0, &sg), -EINVAL);
		sg.len = 1;
		CHECK_EQ(vh_drvq_add_indirect(r.vq, &sg, 1, 0, &sg), -EINVAL);
		CHECK_EQ(vh_drvq_set_indirect_area(r.vq, IND_GPA, 16 * 16), 0);
		/* 2.7.5.3.1: not without VIRTIO_F_INDIRECT_DESC negotiated */
		CHECK_EQ(vh_drvq_add_indirect(r.vq, &sg, 1, 0, &sg), -EINVAL);
		CHECK_EQ(vh_drvq_set_features(r.vq,
					      1ull << VIRTIO_F_VERSION_1 |
						      1ull << VIRTIO_RING_F_INDIRECT_DESC),
			 0);
		CHECK_EQ(vh_drvq_add_indirect(r.vq, (struct vh_sg[2]){ sg, sg },
					    2, 0, &sg),
			 -E2BIG);
		CHECK_EQ(vh_drvq_add_indirect(r.vq, &sg, 1, 0, &sg), 0);
	}
	rig_fini(&r);
}

/* ---------------------------------------------------------------------- */
/* packed: wrap counters, GET/SET_VRING_BASE, out-of-order chains          */
/* ---------------------------------------------------------------------- */

/*
 * Chains of 1..3 descriptors in a ring of 8 wrap the counters many times;
 * the device stops with buffers pending and one in flight, and a new vring
 * goes on from the base (vhost-user.rst: avail position | wrap << 15 in the
 * low half, used position | wrap << 15 in the high half).
 */
static void test_packed_wrap_and_restart(void)
{
	const uint64_t f = 1ull << VIRTIO_F_VERSION_1 |
			   1ull << VIRTIO_RING_F_EVENT_IDX | PACKED;
	struct iovec iov[4];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };
	struct vh_devq_addr a;
	struct vh_devq *vr2;
	uint64_t d, av, u;
	uint32_t base, pos = 0, i, len;
	struct rig r;
	void *tok;

	(rig_init)(&r, 8, f);
	for (i = 0; i < 1000; i++) {
		struct vh_sg sg[3] = { { DATA_GPA, 8 }, { DATA_GPA + 64, 8 },
				       { DATA_GPA + 128, 8 } };
		unsigned int n = 1 + i % 3;

		CHECK_EQ(vh_drvq_add(r.vq, sg, 1, n - 1, (void *)(uintptr_t)(i + 1)),
			 0);
		CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
		CHECK_EQ(e.ndescs, n);
		CHECK_EQ(vh_devq_push(r.vr, e.id, n > 1 ? 8 : 0), 0);
		CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
		CHECK(tok == (void *)(uintptr_t)(i + 1));
		pos += n;
	}
	/* one in flight, two pending */
	add_one(&r, 1);
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	add_one(&r, 2);
	add_one(&r, 3);
	CHECK_EQ(vh_devq_get_base(r.vr, &base), 0);
	/* 2000 descriptors so far, 2 of them just popped; 8 per lap */
	CHECK_EQ(base & 0x7fff, (pos + 2) % 8);
	CHECK_EQ(!!(base & 0x8000), (pos + 2) / 8 % 2 == 0);
	CHECK_EQ((base >> 16) & 0x7fff, pos % 8);
	CHECK_EQ(!!(base & 0x80000000u), pos / 8 % 2 == 0);
	{
		uint16_t n;

		CHECK_EQ(vh_devq_avail_count(r.vr, &n), 0);
		CHECK_EQ(n, 2);
		CHECK_EQ(vh_devq_get_used_idx(r.vr, &n), 0);
		CHECK_EQ(n, base >> 16);
	}
	/* the in-flight one completes; restart from the base after it */
	CHECK_EQ(vh_devq_push(r.vr, e.id, 8), 0);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK_EQ(vh_devq_get_base(r.vr, &base), 0);
	CHECK_EQ(vh_devq_new(r.ctx, r.mem, 0, &vr2), 0);
	CHECK_EQ(vh_devq_set_features(vr2, f), 0);
	CHECK_EQ(vh_devq_set_num(vr2, 8), 0);
	CHECK_EQ(vh_devq_set_base(vr2, 8), -EINVAL); /* position >= size */
	CHECK_EQ(vh_devq_set_base(vr2, base), 0);
	CHECK_EQ(vh_drvq_get_addrs(r.vq, &d, &av, &u), 0);
	a = (struct vh_devq_addr){ .desc = d, .avail = av, .used = u };
	CHECK_EQ(vh_devq_set_addr(vr2, &a), 0);
	vh_devq_unref(r.vr);
	r.vr = vr2;
	for (i = 0; i < 50; i++) {
		CHECK_EQ(pop_push(&r), 1);
		CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
		CHECK_EQ(len, 8);
		add_one(&r, i + 4);
	}
	/* only the low half (DPDK virtio-user): used follows avail */
	CHECK_EQ(vh_devq_get_base(r.vr, &base), 0);
	CHECK_EQ(vh_devq_set_base(r.vr, base & 0xffff), 0);
	CHECK_EQ(vh_devq_get_base(r.vr, &base), 0);
	CHECK_EQ(base >> 16, base & 0xffff);
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	CHECK_EQ(vh_drvq_is_broken(r.vq), 0);
	rig_fini(&r);
}

/*
 * Out of order: the used descriptor of a later one-descriptor buffer lands
 * on the first slot of an earlier three-descriptor chain still in flight;
 * the device skips by chain length, the driver frees by id, and the dirty
 * log still finds the chain's writable buffers (recorded at pop).
 */
static void test_packed_chain_skip(void)
{
	struct iovec iov1[4], iov2[4];
	struct vh_devq_elem e1 = { .iov = iov1, .iov_max = 4 };
	struct vh_devq_elem e2 = { .iov = iov2, .iov_max = 4 };
	struct vh_sg ch[3] = { { DATA_GPA, 16 }, { DATA_GPA + 4 * 4096, 100 },
			       { DATA_GPA + 6 * 4096, 100 } };
	struct vh_sg one = { DATA_GPA + 9 * 4096, 50 };
	struct vh_devq_addr a;
	uint64_t d, av, u;
	uint8_t *log;
	struct rig r;
	uint32_t len;
	void *tok;

	(rig_init)(&r, 4, 1ull << VIRTIO_F_VERSION_1 | 1ull << VHOST_F_LOG_ALL |
				  PACKED);
	CHECK_EQ(vh_mem_log_alloc(r.mem, vh_mem_log_size_for(MEM_GPA + MEM_SIZE),
				  NULL, (void **)&log),
		 0);
	CHECK_EQ(vh_drvq_get_addrs(r.vq, &d, &av, &u), 0);
	a = (struct vh_devq_addr){ .desc = d, .avail = av, .used = u,
				    .log = u, .flags = VH_DEVQ_ADDR_LOG };
	CHECK_EQ(vh_devq_set_addr(r.vr, &a), 0);
	CHECK_EQ(vh_drvq_add(r.vq, ch, 1, 2, &e1), 0);
	CHECK_EQ(vh_drvq_add(r.vq, &one, 0, 1, &e2), 0);
	CHECK_EQ(vh_drvq_num_free(r.vq), 0);
	CHECK_EQ(vh_devq_pop(r.vr, &e1), 1);
	CHECK_EQ(vh_devq_pop(r.vr, &e2), 1);
	CHECK_EQ(e1.ndescs, 3);
	CHECK_EQ(e1.in_len, 200);
	CHECK_EQ(vh_devq_push(r.vr, e2.id, 50), 0); /* lands on slot 0 */
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK(tok == &e2);
	CHECK_EQ(vh_drvq_num_free(r.vq), 1);
	/* the driver reuses the freed slot (position 3) meanwhile */
	CHECK_EQ(vh_drvq_add(r.vq, &one, 0, 1, &e2), 0);
	CHECK_EQ(vh_devq_push(r.vr, e1.id, 150), 0);
	CHECK(log_bit(log, DATA_GPA + 4 * 4096));
	CHECK(log_bit(log, DATA_GPA + 6 * 4096)); /* 150 > 100: both */
	CHECK(!log_bit(log, DATA_GPA));           /* readable */
	CHECK(log_bit(log, d));                   /* the used slot */
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK(tok == &e1);
	CHECK_EQ(len, 150);
	CHECK_EQ(vh_devq_pop(r.vr, &e2), 1);
	CHECK_EQ(vh_devq_push(r.vr, e2.id, 1), 0);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK_EQ(vh_drvq_num_free(r.vq), 4);
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	rig_fini(&r);
}

/*
 * The push fast paths skip the per-id records while no chain is in
 * flight: one-descriptor buffers pushed around a chain in flight (one by
 * one and in batches, the chain's id inside a batch of simple ones too)
 * each come back once with their length, the chain's used descriptor
 * skips its three slots, and the ring stays whole through a wrap.
 */
static void test_packed_mixed_push(void)
{
	struct vh_sg ch[3] = { { DATA_GPA, 16 }, { DATA_GPA + 4096, 100 },
			       { DATA_GPA + 8192, 100 } };
	struct vh_sg one = { DATA_GPA + 16384, 64 };
	struct vh_devq_used_elem u[8];
	struct vh_devq_elem es[8];
	struct iovec iov[8][4];
	unsigned int round, i;
	struct rig r;
	uint32_t len;
	void *tok;

	(rig_init)(&r, 8, 1ull << VIRTIO_F_VERSION_1 | PACKED);
	for (i = 0; i < 8; i++) {
		es[i].iov = iov[i];
		es[i].iov_max = 4;
	}
	for (round = 0; round < 6; round++) {
		uintptr_t base = 100 * (round + 1);

		/* a chain first, then four single ones: 7 of 8 slots */
		CHECK_EQ(vh_drvq_add(r.vq, ch, 1, 2, (void *)base), 0);
		for (i = 1; i <= 4; i++)
			CHECK_EQ(vh_drvq_add(r.vq, &one, 0, 1,
					     (void *)(base + i)),
				 0);
		CHECK_EQ(vh_devq_pop_batch(r.vr, es, 8), 5);
		CHECK_EQ(es[0].ndescs, 3);
		for (i = 1; i <= 4; i++)
			CHECK_EQ(es[i].ndescs, 1);
		if (round % 3 == 0) {
			/* singles while the chain is out, then the chain */
			u[0] = (struct vh_devq_used_elem){ es[2].id, 2 };
			u[1] = (struct vh_devq_used_elem){ es[1].id, 1 };
			CHECK_EQ(vh_devq_push_batch(r.vr, u, 2), 0);
			CHECK_EQ(vh_devq_push(r.vr, es[3].id, 3), 0);
			CHECK_EQ(vh_devq_push(r.vr, es[0].id, 50), 0);
			CHECK_EQ(vh_devq_push(r.vr, es[4].id, 4), 0);
		} else if (round % 3 == 1) {
			/* the chain inside a batch of single ones */
			u[0] = (struct vh_devq_used_elem){ es[4].id, 4 };
			u[1] = (struct vh_devq_used_elem){ es[0].id, 50 };
			u[2] = (struct vh_devq_used_elem){ es[1].id, 1 };
			u[3] = (struct vh_devq_used_elem){ es[3].id, 3 };
			u[4] = (struct vh_devq_used_elem){ es[2].id, 2 };
			CHECK_EQ(vh_devq_push_batch(r.vr, u, 5), 0);
		} else {
			/* the chain first: the rest with none in flight */
			CHECK_EQ(vh_devq_push(r.vr, es[0].id, 50), 0);
			for (i = 0; i < 4; i++)
				u[i] = (struct vh_devq_used_elem){
					es[4 - i].id, 4 - i };
			CHECK_EQ(vh_devq_push_batch(r.vr, u, 4), 0);
		}
		CHECK_EQ(vh_devq_inflight(r.vr), 0);
		{
			unsigned int seen = 0;

			while (vh_drvq_get_used(r.vq, &tok, &len) == 1) {
				uintptr_t k = (uintptr_t)tok - base;

				CHECK(k <= 4);
				CHECK(!(seen & 1u << k));
				seen |= 1u << k;
				CHECK_EQ(len, k ? (uint32_t)k : 50);
			}
			CHECK_EQ(seen, 0x1fu);
		}
		CHECK_EQ(vh_drvq_num_free(r.vq), 8);
	}
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	rig_fini(&r);
}

/*
 * The fds behind a working pair of rings are close-on-exec while they are
 * in use: the memfd of guest memory, the dirty log, the kick and call
 * eventfds each side owns.
 */
static void test_fds_cloexec(void)
{
	struct test_fdset before;
	struct vh_mem_region reg;
	int log_fd = -1, kick, call;
	struct rig r;

	test_fdset_snapshot(&before);
	kick = eventfd(0, EFD_CLOEXEC);
	call = eventfd(0, EFD_CLOEXEC);
	CHECK(kick >= 0 && call >= 0);
	rig_init(&r, 16, 1ull << VIRTIO_F_VERSION_1);
	CHECK_EQ(vh_mem_log_alloc(r.mem, 64, &log_fd, NULL), 0);
	CHECK_EQ(vh_devq_set_kick_fd(r.vr, fcntl(kick, F_DUPFD_CLOEXEC, 0)),
		 0);
	CHECK_EQ(vh_devq_set_call_fd(r.vr, fcntl(call, F_DUPFD_CLOEXEC, 0)),
		 0);
	CHECK_EQ(vh_drvq_set_kick_fd(r.vq, kick), 0);
	CHECK_EQ(vh_drvq_set_call_fd(r.vq, call), 0);
	{
		struct vh_sg sg = { DATA_GPA, 64 };

		CHECK_EQ(vh_drvq_add(r.vq, &sg, 1, 0, &sg), 0);
		CHECK_EQ(pop_push(&r), 1);
	}
	CHECK_EQ(vh_mem_get_region(r.mem, 0, &reg), 0);
	CHECK_CLOEXEC(reg.fd);
	CHECK_CLOEXEC(log_fd);
	CHECK_CLOEXEC(vh_devq_get_kick_fd(r.vr));
	/* memfd, log, and the four eventfds (two of them duplicates) */
	CHECK_NEW_FDS_CLOEXEC(&before, 6);
	rig_fini(&r);
	close(kick); /* the driver side does not own its fds */
	close(call);
}

int main(void)
{
	int fds;

	fds = test_count_fds();

	test_api_edges();
	test_wrap_and_restart();
	test_packed_wrap_and_restart();
	test_packed_chain_skip();
	test_packed_mixed_push();
	for (g_layout = 0;; g_layout = PACKED) {
		test_push_batch();
		test_pop_batch();
		test_single_thread();
		test_notify_no_event_idx();
		test_kick_laps();
		test_notify_event_idx();
		test_notify_on_empty();
		test_table_switch_inflight();
		test_table_switch_race();
		test_dirty_log();
		test_log_toggle_inflight();
		test_two_threads();
		if (g_layout)
			break;
	}
	test_fds_cloexec();

	CHECK_EQ(test_count_fds(), fds);
	return 0;
}
