// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Inflight I/O tracking of packed rings (vhost-user.rst, "Inflight I/O
 * tracking", QueueRegionPacked), device side: a driver (vh_drvq) and a
 * device (vh_devq) share guest memory; the device records into a region,
 * "dies" (a new vh_devq takes the same rings with a fresh ring's base) and
 * recovers from the region alone:
 *  - chains popped and not pushed come back in pop order, with their
 *    buffers, and the ring goes on at the right positions;
 *  - a batch whose used descriptors reached the driver is committed, one
 *    whose did not is rolled back (its chains resubmitted);
 *  - a hostile region (each field out of range, loops, entries or ids
 *    taken twice, random bytes) is refused with -EINVAL, never a crash.
 */
#include <stdlib.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "test-vring.h"

#define PACKED (1ull << VIRTIO_F_RING_PACKED)
#define FEAT (1ull << VIRTIO_F_VERSION_1 | PACKED)
#define NUM 8u

/* QueueRegionPacked / DescStatePacked, as the spec lays them out */
struct pdesc {
	uint8_t inflight;
	uint8_t padding;
	uint16_t next;
	uint16_t last;
	uint16_t num;
	uint64_t counter;
	uint16_t id;
	uint16_t flags;
	uint32_t len;
	uint64_t addr;
};

struct pregion {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t free_head;
	uint16_t old_free_head;
	uint16_t used_idx;
	uint16_t old_used_idx;
	uint8_t used_wrap_counter;
	uint8_t old_used_wrap_counter;
	uint8_t padding[7];
	struct pdesc desc[NUM];
};

_Static_assert(sizeof(struct pregion) == 32 + 32 * NUM, "layout");

static struct pregion region, saved;

/* A new device on the same rings: what a restarted daemon gets. */
static void restart_at(struct rig *r, uint32_t base)
{
	struct vh_devq_addr a = { 0 };
	struct vh_devq *vr;

	CHECK_EQ(vh_devq_new(r->ctx, r->mem, 0, &vr), 0);
	CHECK_EQ(vh_devq_set_features(vr, FEAT), 0);
	CHECK_EQ(vh_devq_set_num(vr, r->num), 0);
	CHECK_EQ(vh_devq_set_base(vr, base), 0);
	CHECK_EQ(vh_drvq_get_addrs(r->vq, &a.desc, &a.avail, &a.used), 0);
	CHECK_EQ(vh_devq_set_addr(vr, &a), 0);
	vh_devq_unref(r->vr);
	r->vr = vr;
}

/* Request n (1..3 descriptors, the last one writable), token n + 1. */
/* the front-end's stale base: a fresh ring */
static void restart(struct rig *r)
{
	restart_at(r, 0x80008000u);
}

static void add(struct rig *r, unsigned int n, unsigned int ndesc)
{
	struct vh_sg sg[3] = { { DATA_GPA + n * 4096, 16 },
			       { DATA_GPA + n * 4096 + 512, 64 },
			       { DATA_GPA + n * 4096 + 1024, 100 } };

	sg[ndesc - 1] = sg[2];
	CHECK_EQ(vh_drvq_add(r->vq, sg, ndesc - 1, 1,
			     (void *)(uintptr_t)(n + 1)),
		 0);
}

static uint16_t pop(struct rig *r, unsigned int ndesc)
{
	struct iovec iov[4];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };

	CHECK_EQ(vh_devq_pop(r->vr, &e), 1);
	CHECK_EQ(e.ndescs, ndesc);
	return e.id;
}

/* Resubmitted: the chain of request n, as popped the first time. */
static uint16_t pop_inflight(struct rig *r, unsigned int n,
			     unsigned int ndesc)
{
	struct iovec iov[4];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };

	CHECK_EQ(vh_devq_pop_inflight(r->vr, &e), 1);
	CHECK_EQ(e.ndescs, ndesc);
	CHECK_EQ(e.in_num, 1);
	CHECK_EQ(e.in_len, 100);
	CHECK(iov[e.out_num].iov_base ==
	      gpa_host(r, DATA_GPA + n * 4096 + 1024));
	return e.id;
}

static void used(struct rig *r, unsigned int n, uint32_t len)
{
	uint32_t l;
	void *tok;

	CHECK_EQ(vh_drvq_get_used(r->vq, &tok, &l), 1);
	CHECK_EQ((uintptr_t)tok, n + 1);
	CHECK_EQ(l, len);
}

static void no_used(struct rig *r)
{
	uint32_t l;
	void *tok;

	CHECK_EQ(vh_drvq_get_used(r->vq, &tok, &l), 0);
}

/* The ring still works at the recovered positions, laps included. */
static void traffic(struct rig *r)
{
	unsigned int i;

	for (i = 0; i < 3 * NUM; i++) {
		uint16_t id;

		add(r, 100 + i % 50, 1 + i % 3);
		id = pop(r, 1 + i % 3);
		CHECK_EQ(vh_devq_push(r->vr, id, 7), 0);
		used(r, 100 + i % 50, 7);
	}
	CHECK_EQ(vh_devq_is_broken(r->vr), 0);
	CHECK_EQ(vh_drvq_is_broken(r->vq), 0);
}

static unsigned int region_inflight(void)
{
	unsigned int i, n = 0;

	for (i = 0; i < NUM; i++)
		n += region.desc[i].inflight;
	return n;
}

/*
 * The ring wraps a few times, then chains of 1, 2 and 3 descriptors are
 * popped, the middle one pushed; the device dies.  The new one gets the
 * other two back, in order, and goes on.
 */
static void test_resubmit(void)
{
	uint16_t a, b, c;
	struct rig r;
	unsigned int i;

	(rig_init)(&r, NUM, FEAT);
	memset(&region, 0, sizeof(region));
	/* an uninitialized region (version 0) is set up, nothing to redo */
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 0);
	CHECK_EQ(region.version, 1);
	CHECK_EQ(region.desc_num, NUM);
	CHECK_EQ(vh_devq_pop_inflight(r.vr, &(struct vh_devq_elem){ 0 }), 0);
	for (i = 0; i < 13; i++) {
		add(&r, i, 1 + i % 3);
		CHECK_EQ(vh_devq_push(r.vr, pop(&r, 1 + i % 3), 1), 0);
		used(&r, i, 1);
	}
	CHECK_EQ(region_inflight(), 0);
	add(&r, 20, 1);
	add(&r, 21, 2);
	add(&r, 22, 3);
	a = pop(&r, 1);
	b = pop(&r, 2);
	c = pop(&r, 3);
	CHECK_EQ(region_inflight(), 2 + 1);
	CHECK_EQ(vh_devq_push(r.vr, b, 5), 0);
	used(&r, 21, 5);
	CHECK_EQ(region_inflight(), 2);

	restart(&r);
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 2);
	CHECK_EQ(pop_inflight(&r, 20, 1), a);
	CHECK_EQ(pop_inflight(&r, 22, 3), c);
	CHECK_EQ(vh_devq_pop_inflight(r.vr, &(struct vh_devq_elem){ 0 }), 0);
	/* nothing new was available: the avail position is right */
	{
		struct iovec iov[4];
		struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };

		CHECK_EQ(vh_devq_pop(r.vr, &e), 0);
	}
	CHECK_EQ(vh_devq_push_batch(r.vr,
				    (struct vh_devq_used_elem[]){ { c, 9 },
								  { a, 8 } },
				    2),
		 0);
	used(&r, 22, 9);
	used(&r, 20, 8);
	CHECK_EQ(region_inflight(), 0);
	traffic(&r);

	/*
	 * Killed again with nothing in flight: nothing to redo, and the
	 * positions still come from the region (the base is a stale one).
	 */
	restart(&r);
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 0);
	traffic(&r);
	vh_devq_set_inflight(r.vr, NULL, 0);
	rig_fini(&r);
}

/*
 * A ring with a region, lapped once so the wrap counters matter (two
 * chains of 3 used), then two chains popped at positions 6 and 7 and 0 of
 * the next lap: u, to be pushed as one batch across the end of the ring.
 */
static void batch_across_end(struct rig *r, struct vh_devq_used_elem u[2])
{
	(rig_init)(r, NUM, FEAT);
	memset(&region, 0, sizeof(region));
	CHECK_EQ(vh_devq_set_inflight(r->vr, &region, sizeof(region)), 0);
	add(r, 0, 3);
	add(r, 1, 3);
	CHECK_EQ(vh_devq_push(r->vr, pop(r, 3), 1), 0);
	CHECK_EQ(vh_devq_push(r->vr, pop(r, 3), 1), 0);
	used(r, 0, 1);
	used(r, 1, 1);
	add(r, 2, 2);
	add(r, 3, 1);
	u[0] = (struct vh_devq_used_elem){ pop(r, 2), 3 };
	u[1] = (struct vh_devq_used_elem){ pop(r, 1), 4 };
}

/*
 * A batch of two: the device dies after the used descriptors reached the
 * driver but before the region was committed (commit), or after the
 * region's new positions were written but before any used descriptor
 * (roll back: both chains come again), or between the new wrap counter
 * and the new index (torn; roll back too).
 */
static void test_half_batch(bool reached, bool torn)
{
	struct vh_devq_used_elem u[2];
	uint8_t ring_copy[NUM * 16];
	void *desc, *avail, *usedp;
	struct pregion before;
	struct rig r;

	batch_across_end(&r, u);
	CHECK_EQ(vh_drvq_get_host_addrs(r.vq, &desc, &avail, &usedp), 0);
	before = region;
	memcpy(ring_copy, desc, sizeof(ring_copy));
	CHECK_EQ(vh_devq_push_batch(r.vr, u, 2), 0);
	if (reached) {
		unsigned int i;

		/* committed but for the flags and the old_* values */
		for (i = 0; i < NUM; i++)
			region.desc[i].inflight = before.desc[i].inflight;
		region.old_free_head = before.old_free_head;
		region.old_used_idx = before.old_used_idx;
		region.old_used_wrap_counter = before.old_used_wrap_counter;
	} else {
		/* new positions written, no used descriptor yet */
		struct pregion after = region;

		region = before;
		region.free_head = after.free_head;
		region.used_idx = after.used_idx;
		region.used_wrap_counter = after.used_wrap_counter;
		/*
		 * torn: the new wrap counter, written first, beside the old
		 * index (the batch crossed the end: the counter changed)
		 */
		if (torn) {
			CHECK(after.used_wrap_counter !=
			      before.used_wrap_counter);
			region.used_idx = before.used_idx;
		}
		memcpy(desc, ring_copy, sizeof(ring_copy));
	}
	restart(&r);
	if (reached) {
		CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)),
			 0);
		used(&r, 2, 3);
		used(&r, 3, 4);
	} else {
		no_used(&r);
		CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)),
			 2);
		CHECK_EQ(pop_inflight(&r, 2, 2), u[0].id);
		CHECK_EQ(pop_inflight(&r, 3, 1), u[1].id);
		CHECK_EQ(vh_devq_push_batch(r.vr, u, 2), 0);
		used(&r, 2, 3);
		used(&r, 3, 4);
	}
	CHECK_EQ(region_inflight(), 0);
	CHECK_EQ(region.used_idx, region.old_used_idx);
	traffic(&r);
	rig_fini(&r);
}

/*
 * A pop the device died in: a chain in flight (a), then one of 3 (b)
 * being recorded.  Marked: its head entry's flag set, free_head not yet
 * past it.  Unfinished: every entry written and free_head moved, but not
 * old_free_head.  Either way b's entries are still the free list's (from
 * old_free_head): a alone is resubmitted, and b comes again from the ring.
 */
static void test_half_pop(bool marked)
{
	struct pregion before;
	struct rig r;
	uint16_t a, b;

	(rig_init)(&r, NUM, FEAT);
	memset(&region, 0, sizeof(region));
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 0);
	add(&r, 0, 2);
	CHECK_EQ(vh_devq_push(r.vr, pop(&r, 2), 1), 0);
	used(&r, 0, 1);
	add(&r, 1, 1);
	add(&r, 2, 3);
	a = pop(&r, 1);
	before = region;
	b = pop(&r, 3);
	CHECK_EQ(region_inflight(), 2);
	if (marked) {
		uint64_t ctr = region.desc[before.free_head].counter;

		region = before;
		region.desc[before.free_head].counter = ctr;
		region.desc[before.free_head].inflight = 1;
		CHECK_EQ(region.free_head, region.old_free_head);
	} else {
		CHECK(region.free_head != before.free_head);
		region.old_free_head = before.old_free_head;
	}
	restart(&r);
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 1);
	CHECK_EQ(pop_inflight(&r, 1, 1), a);
	CHECK_EQ(vh_devq_pop_inflight(r.vr, &(struct vh_devq_elem){ 0 }), 0);
	CHECK_EQ(pop(&r, 3), b);
	CHECK_EQ(region_inflight(), 2);
	CHECK_EQ(vh_devq_push(r.vr, b, 6), 0);
	CHECK_EQ(vh_devq_push(r.vr, a, 5), 0);
	used(&r, 2, 6);
	used(&r, 1, 5);
	CHECK_EQ(region_inflight(), 0);
	traffic(&r);
	rig_fini(&r);
}

/*
 * A commit torn between old_used_wrap_counter and old_used_idx (the new
 * wrap counter beside the old index: the first is written first), for a
 * batch that crossed the end of the ring; the driver went on and made the
 * old slot available again in the new lap.  The batch reached the driver:
 * recovery commits it, and the new buffers are served from the new
 * position, in order.
 */
static void test_torn_commit(void)
{
	struct vh_devq_used_elem u[2];
	struct pregion before;
	struct rig r;
	unsigned int i;

	batch_across_end(&r, u);
	before = region;
	CHECK_EQ(vh_devq_push_batch(r.vr, u, 2), 0);
	CHECK_EQ(region.used_idx, 1);
	CHECK(region.old_used_wrap_counter != before.old_used_wrap_counter);
	region.old_used_idx = before.old_used_idx;
	used(&r, 2, 3);
	used(&r, 3, 4);
	/* positions 1 to 6 of the new lap: slot 6 is available again */
	for (i = 0; i < 6; i++)
		add(&r, 10 + i, 1);
	restart(&r);
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 0);
	for (i = 0; i < 6; i++) {
		CHECK_EQ(vh_devq_push(r.vr, pop(&r, 1), 5), 0);
		used(&r, 10 + i, 5);
	}
	CHECK_EQ(region_inflight(), 0);
	traffic(&r);
	rig_fini(&r);
}

/*
 * A ring that went round to a fresh ring's position (0, wrap counter 1:
 * 2 * Queue Size descriptors used) with nothing in flight, and a stale
 * base from the front-end (position 3): the region's position stands, it
 * is not taken for a region fresh from GET_INFLIGHT_FD.
 */
static void test_round_trip(void)
{
	struct rig r;
	unsigned int i;

	(rig_init)(&r, NUM, FEAT);
	memset(&region, 0, sizeof(region));
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 0);
	for (i = 0; i < 2 * NUM; i++) {
		add(&r, i, 1);
		CHECK_EQ(vh_devq_push(r.vr, pop(&r, 1), 2), 0);
		used(&r, i, 2);
	}
	CHECK_EQ(region.used_idx, 0);
	CHECK_EQ(region.used_wrap_counter, 1);
	add(&r, 40, 1);
	add(&r, 41, 2);
	restart_at(&r, (3u | 1u << 15) * 0x10001u);
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 0);
	CHECK_EQ(vh_devq_push(r.vr, pop(&r, 1), 2), 0);
	used(&r, 40, 2);
	CHECK_EQ(vh_devq_push(r.vr, pop(&r, 2), 2), 0);
	used(&r, 41, 2);
	traffic(&r);
	rig_fini(&r);
}

/* One corruption of a region with chains in flight. */
enum bad {
	B_VERSION, B_DESC_NUM, B_SHORT, B_FREE_HEAD, B_OLD_FREE_HEAD,
	B_USED_IDX, B_WRAP, B_FREE_LOOP, B_FLAG, B_NUM_0, B_NUM_BIG,
	B_CHAIN_FREE, B_LAST, B_ID_BIG, B_ID_TWICE, B_NEXT_ON_LAST,
	B_INDIRECT_CHAIN, B_LEAK, B_COUNTER_MAX, B_MAX
};

static void corrupt(enum bad k, uint16_t h1, uint16_t h2, size_t *len)
{
	struct pdesc *d1 = &region.desc[h1];

	switch (k) {
	case B_VERSION: region.version = 2; break;
	case B_DESC_NUM: region.desc_num = NUM * 2; break;
	case B_SHORT: *len -= 32; break;
	case B_FREE_HEAD:
		region.free_head = region.old_free_head = NUM + 1;
		break;
	case B_OLD_FREE_HEAD: region.old_free_head = 0xffff; break;
	case B_USED_IDX: region.old_used_idx = region.used_idx = NUM; break;
	case B_WRAP: region.old_used_wrap_counter = 2; break;
	case B_FREE_LOOP:
		region.desc[region.free_head].next = region.free_head;
		break;
	case B_FLAG: d1->inflight = 2; break;
	case B_NUM_0: d1->num = 0; break;
	case B_NUM_BIG: d1->num = NUM + 1; break;
	case B_CHAIN_FREE: d1->next = region.free_head; break;
	case B_LAST: d1->last = h1; break;
	case B_ID_BIG: region.desc[d1->last].id = NUM; break;
	case B_ID_TWICE:
		region.desc[region.desc[h2].last].id =
			region.desc[d1->last].id;
		break;
	case B_NEXT_ON_LAST: region.desc[d1->last].flags |= VRING_DESC_F_NEXT;
		break;
	case B_INDIRECT_CHAIN: d1->flags |= VRING_DESC_F_INDIRECT; break;
	case B_LEAK:
		/* a chain forgotten: its entries neither free nor taken */
		region.desc[h2].inflight = 0;
		break;
	case B_COUNTER_MAX:
		/* the next pop's counter would wrap to 0 */
		d1->counter = UINT64_MAX;
		break;
	case B_MAX: break;
	}
}

static void test_hostile(void)
{
	uint16_t h1, h2;
	unsigned int k, i;
	struct rig r;

	(rig_init)(&r, NUM, FEAT);
	memset(&region, 0, sizeof(region));
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 0);
	add(&r, 0, 2);
	add(&r, 1, 3);
	pop(&r, 2);
	pop(&r, 3);
	h1 = 0;
	h2 = 2;
	CHECK_EQ(region.desc[h1].num, 2);
	CHECK_EQ(region.desc[h2].num, 3);
	saved = region;

	for (k = 0; k < B_MAX; k++) {
		size_t len = sizeof(region);

		region = saved;
		corrupt((enum bad)k, h1, h2, &len);
		restart(&r);
		r.errors = 0;
		if (vh_devq_set_inflight(r.vr, &region, len) != -EINVAL) {
			fprintf(stderr, "corruption %u accepted\n", k);
			CHECK(0);
		}
		CHECK(r.errors > 0);
		/* refused: nothing attached, nothing to resubmit */
		CHECK_EQ(vh_devq_pop_inflight(r.vr,
					      &(struct vh_devq_elem){ 0 }),
			 0);
		CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	}
	/* the intact one still recovers */
	region = saved;
	restart(&r);
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 2);
	pop_inflight(&r, 0, 2);

	/* random bytes: an answer, never a crash (ASan watches) */
	srand(1);
	for (i = 0; i < 2000; i++) {
		struct iovec iov[4];
		struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };
		uint8_t *p = (uint8_t *)&region;
		unsigned int j, n = 1 + (unsigned int)rand() % 8;
		int ret;

		region = saved;
		for (j = 0; j < n; j++)
			p[(unsigned int)rand() % sizeof(region)] =
				(uint8_t)rand();
		if (i % 4 == 0)
			for (j = 32; j < sizeof(region); j++)
				p[j] = (uint8_t)rand();
		restart(&r);
		ret = vh_devq_set_inflight(r.vr, &region, sizeof(region));
		CHECK(ret == -EINVAL || (ret >= 0 && ret <= (int)NUM));
		while (ret > 0 && vh_devq_pop_inflight(r.vr, &e) == 1)
			;
	}
	rig_fini(&r);
}

/*
 * The front-end writes its region while we recover from it: the header
 * checked is the header used.  Here it moves used_idx and free_head far
 * past the ring once recovery has checked them (at the first message
 * logged after the check); the ring must stay inside itself.
 */
static bool hdr_armed;

static void hdr_hook(struct vh_ctx *ctx, void *data, int priority,
		     const char *file, int line, const char *fn,
		     const char *format, va_list args)
{
	if (hdr_armed && strstr(format, "used position")) {
		region.used_idx = 0xfff0;
		region.free_head = 0xfff0;
		hdr_armed = false;
	}
}

static void test_header_changes(void)
{
	struct iovec iov[4];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };
	unsigned int i;
	struct rig r;
	uint16_t u;

	(rig_init)(&r, NUM, FEAT);
	memset(&region, 0, sizeof(region));
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 0);
	for (i = 0; i < 3; i++) {
		add(&r, i, 1);
		CHECK_EQ(vh_devq_push(r.vr, pop(&r, 1), 1), 0);
		used(&r, i, 1);
	}
	add(&r, 9, 1);
	pop(&r, 1);
	restart(&r);
	vh_ctx_set_log_fn(r.ctx, hdr_hook, NULL);
	vh_ctx_set_log_priority(r.ctx, LOG_INFO);
	hdr_armed = true;
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 1);
	CHECK(!hdr_armed); /* the region did change under the recovery */
	CHECK_EQ(vh_devq_get_used_idx(r.vr, &u), 0);
	CHECK_EQ(u & 0x7fff, 3);
	vh_ctx_set_log_fn(r.ctx, rig_log, &r);
	vh_ctx_set_log_priority(r.ctx, LOG_ERR);
	CHECK_EQ(vh_devq_pop_inflight(r.vr, &e), 1);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 5), 0);
	used(&r, 9, 5);
	traffic(&r);
	rig_fini(&r);
}

/*
 * A recovered chain still to resubmit keeps its descriptors counted in
 * flight: with chain B (2 descriptors) waiting, the driver has room for 6
 * more, which pop and complete; B comes back after them.  A driver that
 * makes a 7th available breaks the ring, where pops used to take region
 * entries B holds (and the resubmission then read past its arrays).
 */
static void test_resub_room(bool overfill)
{
	struct iovec iov[4];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };
	struct { uint64_t addr; uint32_t len; uint16_t id, flags; } *ring;
	struct vh_devq_addr a = { 0 };
	uint16_t idb, ids[NUM];
	unsigned int i, id;
	struct rig r;

	(rig_init)(&r, NUM, FEAT);
	memset(&region, 0, sizeof(region));
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 0);
	add(&r, 0, 2);
	idb = pop(&r, 2);
	restart(&r);
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), 1);
	if (!overfill) {
		for (i = 0; i < NUM - 2; i++)
			add(&r, 10 + i, 1);
		for (i = 0; i < NUM - 2; i++)
			ids[i] = pop(&r, 1);
		for (i = 0; i < NUM - 2; i++) {
			CHECK_EQ(vh_devq_push(r.vr, ids[i], 1), 0);
			used(&r, 10 + i, 1);
		}
		CHECK_EQ(pop_inflight(&r, 0, 2), idb);
		CHECK_EQ(vh_devq_push(r.vr, idb, 100), 0);
		used(&r, 0, 100);
		traffic(&r);
		rig_fini(&r);
		return;
	}
	/* 7 single buffers at positions 2..7 and 0 (wrap flipped) */
	CHECK_EQ(vh_drvq_get_addrs(r.vq, &a.desc, &a.avail, &a.used), 0);
	ring = gpa_host(&r, a.desc);
	for (id = 0, i = 0; i < NUM - 1; i++, id++) {
		unsigned int pos = (2 + i) % NUM;
		bool wrap = 2 + i < NUM;

		if (id == idb)
			id++;
		ring[pos].addr = DATA_GPA + 8192 + id * 256;
		ring[pos].len = 64;
		ring[pos].id = (uint16_t)id;
		__atomic_store_n(&ring[pos].flags,
				 (uint16_t)(VRING_DESC_F_WRITE |
					    (wrap ? 1u << 7 : 1u << 15)),
				 __ATOMIC_RELEASE);
	}
	for (i = 0; i < NUM - 2; i++)
		CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	r.errors = 0;
	CHECK_EQ(vh_devq_pop(r.vr, &e), -EIO);
	CHECK_EQ(vh_devq_is_broken(r.vr), 1);
	CHECK(r.errors > 0);
	rig_fini(&r);
}

/* Split rings keep their own region (QueueRegionSplit): not ours. */
static void test_api(void)
{
	struct rig r;

	(rig_init)(&r, NUM, 1ull << VIRTIO_F_VERSION_1);
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)),
		 -EOPNOTSUPP);
	CHECK_EQ(vh_devq_set_inflight(r.vr, NULL, 0), 0);
	CHECK_EQ(vh_devq_pop_inflight(r.vr, &(struct vh_devq_elem){ 0 }),
		 -EOPNOTSUPP);
	CHECK_EQ(vh_devq_set_inflight(NULL, &region, sizeof(region)),
		 -EINVAL);
	rig_fini(&r);

	(rig_init)(&r, NUM, FEAT);
	add(&r, 0, 1);
	pop(&r, 1);
	/* after a pop the region cannot describe the ring */
	CHECK_EQ(vh_devq_set_inflight(r.vr, &region, sizeof(region)), -EBUSY);
	/* a region is 8-byte aligned (a mapping is) */
	CHECK_EQ(vh_devq_set_inflight(r.vr, (uint8_t *)&region + 1,
				      sizeof(region) - 1),
		 -EINVAL);
	rig_fini(&r);
}

int main(void)
{
	test_api();
	test_resubmit();
	test_half_batch(true, false);
	test_half_batch(false, false);
	test_half_batch(false, true);
	test_half_pop(true);
	test_half_pop(false);
	test_torn_commit();
	test_round_trip();
	test_hostile();
	test_header_changes();
	test_resub_room(false);
	test_resub_room(true);
	return 0;
}
