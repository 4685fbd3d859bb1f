// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vh_devq under VIRTIO_F_ACCESS_PLATFORM with an IOTLB (white-box: the
 * attachment is library-internal).  A vh_drvq driver puts IOVAs in the
 * ring; the IOTLB maps them to its guest memory non-identically (pages
 * scrambled, so a buffer crossing pages splits).  Rings waiting for a
 * translation, buffer misses (-EAGAIN, nothing consumed, the ring not
 * broken, one report per page), permissions, indirect tables, the rings'
 * own pages invalidated mid-use, and an element's memory invalidated and
 * removed while it is in flight (written afterwards: no use-after-unmap).
 */
#include <fcntl.h>
#include <linux/vhost_types.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <stdint.h>
#include <sys/mman.h>
#include <syslog.h>

#include "iotlb-internal.h"
#include "libvhost.h"
#include "mem-internal.h"
#include "queue-internal.h"
#include "test-util.h"

#define PG 4096ull
#define RING_GPA 0x100000ull
#define RING_SIZE (64 * PG)
#define DATA_GPA 0x40000000ull
#define DATA_PAGES 64
#define IND_GPA 0x80000000ull /* indirect tables: IOVA == GPA */
#define IND_SIZE (16 * PG)
#define RING_IOVA 0xfee000000000ull
#define DATA_IOVA 0x7000000000ull
#define NUM 64

struct misses {
	unsigned int n;
	uint64_t iova;
	unsigned int perm;
};

struct rig {
	struct vh_ctx *ctx;
	struct vh_mem *mem;
	struct vh_iotlb *tlb;
	struct vh_drvq *vq;
	struct vh_devq *vr;
	uint8_t *ring, *data, *ind;
	uint64_t ring_gpa_desc, ring_gpa_avail, ring_gpa_used;
	struct misses m;
};

static void on_miss(struct vh_iotlb *tlb, void *data, uint64_t iova,
		    unsigned int perm)
{
	struct misses *m = data;

	(void)tlb;
	m->n++;
	m->iova = iova;
	m->perm = perm;
}

/* IOVA page i of the data area -> GPA page perm(i) */
static unsigned int scramble(unsigned int i)
{
	return (i * 37u + 11u) % DATA_PAGES;
}

static uint8_t *data_host(struct rig *r, uint64_t iova)
{
	uint64_t off = iova - DATA_IOVA;

	return r->data + scramble((unsigned int)(off / PG)) * PG + off % PG;
}

static void map_rings(struct rig *r)
{
	CHECK_EQ(vh_iotlb_update(r->tlb, RING_IOVA, RING_SIZE, r->ring, NULL,
				 VH_IOTLB_RW), 0);
}

static void map_data(struct rig *r, unsigned int first, unsigned int n,
		     unsigned int perm)
{
	unsigned int i;

	for (i = first; i < first + n; i++)
		CHECK_EQ(vh_iotlb_update(r->tlb, DATA_IOVA + i * PG, PG,
					 r->data + scramble(i) * PG, NULL,
					 perm), 0);
}

/* features rig_init() adds to its own (dirty log, packed layout) */
static uint64_t g_extra;

static void rig_init(struct rig *r, bool access_platform)
{
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) |
		     (1ull << VIRTIO_RING_F_INDIRECT_DESC) | g_extra;
	struct vh_devq_addr a = { 0 };

	memset(r, 0, sizeof(*r));
	if (access_platform)
		f |= 1ull << VIRTIO_F_ACCESS_PLATFORM;
	CHECK_EQ(vh_ctx_new(&r->ctx), 0);
	vh_ctx_set_log_priority(r->ctx, LOG_CRIT);
	CHECK_EQ(vh_mem_new(r->ctx, &r->mem), 0);
	CHECK_EQ(vh_mem_add_memfd(r->mem, RING_GPA, RING_SIZE,
				  (void **)&r->ring), 0);
	CHECK_EQ(vh_mem_add_memfd(r->mem, DATA_GPA, DATA_PAGES * PG,
				  (void **)&r->data), 0);
	CHECK_EQ(vh_mem_add_memfd(r->mem, IND_GPA, IND_SIZE,
				  (void **)&r->ind), 0);
	CHECK_EQ(vh_iotlb_new(r->ctx, &r->tlb), 0);
	vh_iotlb_set_miss_fn(r->tlb, on_miss, &r->m);
	CHECK_EQ(vh_drvq_new(r->ctx, r->mem, 0, NUM, RING_GPA, &r->vq), 0);
	CHECK_EQ(vh_drvq_set_features(r->vq, f), 0);
	CHECK_EQ(vh_drvq_set_indirect_area(r->vq, IND_GPA, IND_SIZE), 0);
	CHECK_EQ(vh_devq_new(r->ctx, r->mem, 0, &r->vr), 0);
	CHECK_EQ(vh_devq_set_iotlb(r->vr, r->tlb), 0);
	CHECK_EQ(vh_devq_set_features(r->vr, f), 0);
	CHECK_EQ(vh_devq_set_num(r->vr, NUM), 0);
	CHECK_EQ(vh_drvq_get_addrs(r->vq, &a.desc, &a.avail, &a.used), 0);
	if (access_platform) {
		/* the device sees the rings at IOVAs */
		a.desc = a.desc - RING_GPA + RING_IOVA;
		a.avail = a.avail - RING_GPA + RING_IOVA;
		a.used = a.used - RING_GPA + RING_IOVA;
	}
	CHECK_EQ(vh_devq_set_addr(r->vr, &a), 0);
	CHECK_EQ(vh_devq_set_base(r->vr, 0), 0);
}

static void rig_fini(struct rig *r)
{
	CHECK(vh_devq_unref(r->vr) == NULL);
	CHECK(vh_drvq_unref(r->vq) == NULL);
	CHECK(vh_iotlb_unref(r->tlb) == NULL);
	CHECK(vh_mem_unref(r->mem) == NULL);
	CHECK(vh_ctx_unref(r->ctx) == NULL);
}

static void add(struct rig *r, uint64_t out_iova, uint32_t out_len,
		uint64_t in_iova, uint32_t in_len, bool indirect, void *token)
{
	struct vh_sg sg[2] = { { out_iova, out_len }, { in_iova, in_len } };

	if (indirect)
		CHECK_EQ(vh_drvq_add_indirect(r->vq, sg, 1, 1, token), 0);
	else
		CHECK_EQ(vh_drvq_add(r->vq, sg, 1, 1, token), 0);
	vh_drvq_kick_prepare(r->vq);
}

static void test_pending_rings(void)
{
	struct rig r;
	struct iovec iov[8];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 8 };
	uint16_t n = 0;

	rig_init(&r, true);
	/* SET_VRING_ADDR before any translation: accepted, pop waits */
	CHECK_EQ(vh_devq_pop(r.vr, &e), -EAGAIN);
	CHECK_EQ(r.m.n, 1);
	CHECK_EQ(r.m.iova, RING_IOVA);
	CHECK_EQ(r.m.perm, VH_IOTLB_RO);
	CHECK_EQ(vh_devq_pop(r.vr, &e), -EAGAIN);
	CHECK_EQ(r.m.n, 1); /* once per page */
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	map_rings(&r);
	CHECK_EQ(vh_devq_pop(r.vr, &e), 0); /* empty */
	/* a buffer not mapped yet: a miss, nothing consumed */
	add(&r, DATA_IOVA + 100, 200, DATA_IOVA + 5 * PG, 64, false, &r);
	CHECK_EQ(vh_devq_pop(r.vr, &e), -EAGAIN);
	CHECK_EQ(r.m.n, 2);
	CHECK_EQ(r.m.iova, DATA_IOVA + 100);
	CHECK_EQ(r.m.perm, VH_IOTLB_RO);
	CHECK_EQ(vh_devq_pop(r.vr, &e), -EAGAIN);
	CHECK_EQ(r.m.n, 2);
	CHECK_EQ(vh_devq_avail_count(r.vr, &n), 0);
	CHECK_EQ(n, 1);
	map_data(&r, 0, 1, VH_IOTLB_RO);
	/* now the writable buffer misses */
	CHECK_EQ(vh_devq_pop(r.vr, &e), -EAGAIN);
	CHECK_EQ(r.m.n, 3);
	CHECK_EQ(r.m.iova, DATA_IOVA + 5 * PG);
	CHECK_EQ(r.m.perm, VH_IOTLB_WO);
	map_data(&r, 5, 1, VH_IOTLB_WO);
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	CHECK_EQ(e.out_num, 1);
	CHECK_EQ(e.in_num, 1);
	CHECK(iov[0].iov_base == data_host(&r, DATA_IOVA + 100));
	CHECK(iov[1].iov_base == data_host(&r, DATA_IOVA + 5 * PG));
	memset(iov[1].iov_base, 0x77, 64);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 64), 0);
	{
		void *tok = NULL;
		uint32_t len = 0;

		CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
		CHECK(tok == &r && len == 64);
	}
	CHECK_EQ(r.data[scramble(5) * PG], 0x77);
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	rig_fini(&r);
}

static void test_split_perm_indirect(void)
{
	struct rig r;
	struct iovec iov[8];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 8 };

	rig_init(&r, true);
	map_rings(&r);
	map_data(&r, 0, DATA_PAGES, VH_IOTLB_RW);
	/* 2 pages + a bit from the middle of page 3: three host pieces */
	add(&r, DATA_IOVA + 3 * PG + 100, 2 * PG, DATA_IOVA + 20 * PG, 16,
	    false, &r);
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	CHECK_EQ(e.out_num, 3);
	CHECK(iov[0].iov_base == data_host(&r, DATA_IOVA + 3 * PG + 100));
	CHECK_EQ(iov[0].iov_len, PG - 100);
	CHECK(iov[1].iov_base == data_host(&r, DATA_IOVA + 4 * PG));
	CHECK(iov[2].iov_base == data_host(&r, DATA_IOVA + 5 * PG));
	CHECK_EQ(iov[2].iov_len, 100);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 0), 0);
	/* an indirect table (its IOVA is its GPA) */
	CHECK_EQ(vh_iotlb_update(r.tlb, IND_GPA, IND_SIZE, r.ind, NULL,
				 VH_IOTLB_RO), 0);
	add(&r, DATA_IOVA + 7 * PG, 8, DATA_IOVA + 9 * PG, 8, true, &r);
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	CHECK(iov[0].iov_base == data_host(&r, DATA_IOVA + 7 * PG));
	CHECK(iov[1].iov_base == data_host(&r, DATA_IOVA + 9 * PG));
	CHECK_EQ(vh_devq_push(r.vr, e.id, 8), 0);
	/* the device may not write a read-only page: the ring breaks */
	CHECK_EQ(vh_iotlb_invalidate(r.tlb, DATA_IOVA + 30 * PG, PG), 0);
	map_data(&r, 30, 1, VH_IOTLB_RO);
	add(&r, DATA_IOVA, 8, DATA_IOVA + 30 * PG, 8, false, &r);
	CHECK_EQ(vh_devq_pop(r.vr, &e), -EIO);
	CHECK_EQ(vh_devq_is_broken(r.vr), 1);
	rig_fini(&r);
}

/*
 * The element's pages are invalidated and the guest memory behind them
 * removed while the device holds the element: it still writes its reply
 * (its snapshot keeps the mapping), and the mapping goes once it is pushed
 * and the ring moves on.  Then the rings' own pages are invalidated: pop
 * waits for them, push of what was popped still works.
 */
static void test_invalidate_in_flight(void)
{
	struct rig r;
	struct iovec iov[8];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 8 };
	struct vh_devq_elem e2 = { .iov = iov + 4, .iov_max = 4 };
	struct vh_mem *dmem = NULL;
	uint8_t *old = NULL;
	void *tok;
	uint32_t len;

	rig_init(&r, true);
	map_rings(&r);
	/*
	 * Data pages in a memory table of their own (the driver's vh_drvq
	 * pins r.mem's), entered as vhost-user does: by user address.
	 */
	CHECK_EQ(vh_mem_new(r.ctx, &dmem), 0);
	CHECK_EQ(vh_mem_add_memfd(dmem, 0, DATA_PAGES * PG, (void **)&old),
		 0);
	{
		struct vh_mem_table *mt = vh_mem_table_get(dmem);
		struct vh_mem_region reg;

		CHECK_EQ(vh_mem_get_region(dmem, 0, &reg), 0);
		CHECK_EQ(vh_iotlb_update_uva(r.tlb, mt, DATA_IOVA,
					     DATA_PAGES * PG, reg.user_addr,
					     VH_IOTLB_RW), 0);
		vh_mem_table_put(mt);
	}
	add(&r, DATA_IOVA, 16, DATA_IOVA + PG, 4 * PG, false, &r);
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	CHECK(iov[1].iov_base == old + PG);
	/* the front-end unmaps the IOVAs and the memory goes away */
	CHECK_EQ(vh_iotlb_invalidate(r.tlb, DATA_IOVA, DATA_PAGES * PG), 0);
	CHECK(vh_mem_unref(dmem) == NULL);
	CHECK_EQ(vh_iotlb_update(r.tlb, 0x1000, PG, r.ind, NULL, VH_IOTLB_RO),
		 0);
	CHECK_EQ(msync(old, PG, MS_ASYNC), 0);
	/* the device completes the request into memory now gone for others */
	memset(iov[1].iov_base, 0x3c, iov[1].iov_len);
	CHECK_EQ(vh_devq_push(r.vr, e.id, (uint32_t)iov[1].iov_len), 0);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK_EQ(len, 4 * PG);
	/* once the ring moved on and a writer reclaimed, it is unmapped */
	CHECK_EQ(vh_devq_pop(r.vr, &e), 0);
	CHECK_EQ(vh_iotlb_invalidate(r.tlb, 0x1000, PG), 0);
	CHECK_EQ(msync(old, PG, MS_ASYNC), -1);
	CHECK_EQ(errno, ENOMEM);

	/* new data memory; a request in flight, then the rings vanish */
	map_data(&r, 0, DATA_PAGES, VH_IOTLB_RW);
	add(&r, DATA_IOVA, 16, DATA_IOVA + PG, 16, false, &r);
	add(&r, DATA_IOVA, 16, DATA_IOVA + 2 * PG, 16, false, &r);
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	r.m.n = 0;
	CHECK_EQ(vh_iotlb_invalidate(r.tlb, RING_IOVA, RING_SIZE), 0);
	CHECK_EQ(vh_devq_pop(r.vr, &e2), -EAGAIN);
	CHECK_EQ(r.m.n, 1);
	CHECK_EQ(r.m.iova, RING_IOVA);
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 16), 0);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	map_rings(&r);
	CHECK_EQ(vh_devq_pop(r.vr, &e2), 1);
	CHECK(iov[5].iov_base == data_host(&r, DATA_IOVA + 2 * PG));
	CHECK_EQ(vh_devq_push(r.vr, e2.id, 16), 0);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK_EQ(vh_devq_inflight(r.vr), 0);
	rig_fini(&r);
}

/* With the IOTLB attached but ACCESS_PLATFORM off: plain GPAs. */
static void test_off(void)
{
	struct rig r;
	struct iovec iov[8];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 8 };
	unsigned int i;

	rig_init(&r, false);
	for (i = 0; i < 3 * NUM; i++) {
		void *tok;
		uint32_t len;

		add(&r, DATA_GPA + 8, 8, DATA_GPA + PG, 8, false, &r);
		CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
		CHECK(iov[0].iov_base == r.data + 8);
		CHECK_EQ(vh_devq_push(r.vr, e.id, 8), 0);
		CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	}
	CHECK_EQ(r.m.n, 0);
	rig_fini(&r);
}

/*
 * An IOTLB entry whose host address is not congruent with its IOVA: the
 * rings (aligned IOVAs) would sit at misaligned host addresses.  Refused,
 * never used (UBSan, and split-lock atomics, otherwise; found by
 * fuzz-vu-backend-msg).
 */
static void test_misaligned_uaddr(void)
{
	struct rig r;
	struct iovec iov[8];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 8 };
	int ret;

	rig_init(&r, true);
	add(&r, DATA_IOVA, 8, DATA_IOVA + PG, 8, false, &r);
	CHECK_EQ(vh_iotlb_update(r.tlb, RING_IOVA, RING_SIZE - PG, r.ring + 2,
				 NULL, VH_IOTLB_RW), 0);
	map_data(&r, 0, 2, VH_IOTLB_RW);
	ret = vh_devq_pop(r.vr, &e);
	CHECK(ret < 0 && ret != -EAGAIN);
	rig_fini(&r);
}

/* Many requests through the IOTLB with updates and batches in between. */
static void test_stream(void)
{
	struct rig r;
	struct iovec iov[NUM * 2];
	struct vh_devq_elem e[NUM];
	unsigned int i, k, done = 0;

	rig_init(&r, true);
	map_rings(&r);
	map_data(&r, 0, DATA_PAGES, VH_IOTLB_RW);
	for (i = 0; i < NUM; i++) {
		e[i].iov = iov + 2 * i;
		e[i].iov_max = 2;
	}
	for (k = 0; k < 50; k++) {
		int n;

		for (i = 0; i < NUM / 2; i++)
			add(&r, DATA_IOVA + (i % DATA_PAGES) * PG, 64,
			    DATA_IOVA + ((i + 1) % DATA_PAGES) * PG, 64, false,
			    &r);
		/* an unrelated update publishes a new snapshot mid-stream */
		CHECK_EQ(vh_iotlb_update(r.tlb, 0x1000, PG, r.ind, NULL,
					 VH_IOTLB_RO), 0);
		n = vh_devq_pop_batch(r.vr, e, NUM);
		CHECK_EQ(n, NUM / 2);
		for (i = 0; i < (unsigned int)n; i++) {
			CHECK(e[i].iov[0].iov_base ==
			      data_host(&r, DATA_IOVA + (i % DATA_PAGES) * PG));
			CHECK_EQ(vh_devq_push(r.vr, e[i].id, 64), 0);
		}
		for (i = 0; i < (unsigned int)n; i++) {
			void *tok;
			uint32_t len;

			CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
			done++;
		}
		CHECK_EQ(vh_iotlb_invalidate(r.tlb, 0x1000, PG), 0);
	}
	CHECK_EQ(done, 50 * NUM / 2);
	rig_fini(&r);
}

/* the GPAs of the rings rig_init_log() set up */
static uint64_t g_desc_gpa, g_used_gpa;

/* what a push wrote to the rings: the used ring (split), a slot (packed) */
static bool log_bit(const uint8_t *log, uint64_t gpa);
static bool ring_logged(const uint8_t *log, bool packed)
{
	return log_bit(log, packed ? g_desc_gpa : g_used_gpa);
}

static bool log_bit(const uint8_t *log, uint64_t gpa)
{
	uint64_t page = gpa / PG;

	return log[page / 8] & (1u << (page % 8));
}

/*
 * A rig with VHOST_F_LOG_ALL (and the packed layout if asked), the rings
 * at IOVAs and mapped, a dirty log allocated: the log's bitmap.
 */
static uint8_t *rig_init_log(struct rig *r, bool packed)
{
	struct vh_devq_addr a = { 0 };
	uint8_t *log;

	g_extra = (1ull << VHOST_F_LOG_ALL) |
		  (packed ? 1ull << VIRTIO_F_RING_PACKED : 0);
	rig_init(r, true);
	g_extra = 0;
	CHECK_EQ(vh_mem_log_alloc(r->mem,
				  vh_mem_log_size_for(IND_GPA + IND_SIZE), NULL,
				  (void **)&log),
		 0);
	CHECK_EQ(vh_drvq_get_addrs(r->vq, &a.desc, &a.avail, &a.used), 0);
	g_desc_gpa = a.desc;
	g_used_gpa = a.used;
	a.flags = VH_DEVQ_ADDR_LOG;
	a.desc = a.desc - RING_GPA + RING_IOVA;
	a.avail = a.avail - RING_GPA + RING_IOVA;
	a.used = a.used - RING_GPA + RING_IOVA;
	/*
	 * the used ring's log address as QEMU sends it under a vIOMMU: the
	 * IOVA the driver wrote (the rings are logged through the IOTLB)
	 */
	a.log = a.used;
	CHECK_EQ(vh_devq_set_addr(r->vr, &a), 0);
	/* 2.8.1: a fresh packed ring starts with both wrap counters at 1 */
	CHECK_EQ(vh_devq_set_base(r->vr, packed ? 0x80008000u : 0), 0);
	map_rings(r);
	return log;
}

/*
 * VHOST_F_LOG_ALL under the IOTLB: a written buffer is logged by the GPAs
 * behind its IOVAs, however many host pieces it has (here 12 scrambled
 * pages), on both layouts (a packed ring records the IOVAs it popped),
 * through the translations it was popped under: its pages invalidated
 * and the ring on a newer snapshot by the time it is pushed.
 */
static void test_dirty_log(bool packed)
{
	struct iovec iov[16];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 16 };
	unsigned int i;
	uint8_t *log;
	struct rig r;

	log = rig_init_log(&r, packed);
	map_data(&r, 0, DATA_PAGES, VH_IOTLB_RW);
	add(&r, DATA_IOVA, 16, DATA_IOVA + 10 * PG, 12 * PG, false, &r);
	add(&r, DATA_IOVA + 40 * PG, 16, DATA_IOVA + 41 * PG, 16, false, &r);
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	CHECK_EQ(e.in_num, 12);
	/* the guest unmaps the pages; the next pop moves to the snapshot */
	CHECK_EQ(vh_iotlb_invalidate(r.tlb, DATA_IOVA + 10 * PG, 12 * PG), 0);
	{
		struct iovec iov2[2];
		struct vh_devq_elem e2 = { .iov = iov2, .iov_max = 2 };

		CHECK_EQ(vh_devq_pop(r.vr, &e2), 1);
		CHECK_EQ(vh_devq_push(r.vr, e2.id, 16), 0);
	}
	CHECK_EQ(vh_devq_push(r.vr, e.id, 12 * PG), 0);
	for (i = 10; i < 22; i++)
		CHECK(log_bit(log, DATA_GPA + scramble(i) * PG));
	CHECK(ring_logged(log, packed));
	/* neither the readable buffer nor a page nobody wrote */
	CHECK(!log_bit(log, DATA_GPA + scramble(0) * PG));
	CHECK(!log_bit(log, DATA_GPA + scramble(30) * PG));
	rig_fini(&r);
	printf("dirty log through the IOTLB, %s: 12 scattered pages logged\n",
	       packed ? "packed" : "split");
}

/*
 * The same when the memory table is replaced (SET_MEM_TABLE: the same
 * memory, new mappings) after the IOTLB entries were made through the old
 * one: a buffer popped before the change and one popped after, both
 * through entries whose host addresses lie in the old mappings, are
 * logged by their guest addresses (the new table knows nothing of those
 * host addresses).
 */
static void test_dirty_log_new_table(bool packed)
{
	struct iovec iov[4], iov2[4];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };
	struct vh_devq_elem e2 = { .iov = iov2, .iov_max = 4 };
	struct vh_mem_region regs[3], data;
	struct vh_mem_table *mt;
	unsigned int i;
	uint8_t *log;
	struct rig r;

	log = rig_init_log(&r, packed);
	/* the data pages entered as vhost-user does: by user address */
	CHECK_EQ(vh_mem_get_region(r.mem, 1, &data), 0);
	CHECK_EQ(data.gpa, DATA_GPA);
	mt = vh_mem_table_get(r.mem);
	CHECK_EQ(vh_iotlb_update_uva(r.tlb, mt, DATA_IOVA, DATA_PAGES * PG,
				     data.user_addr, VH_IOTLB_RW),
		 0);
	/* and the rings, so that their entries know their GPAs too */
	{
		struct vh_mem_region ring;

		CHECK_EQ(vh_mem_get_region(r.mem, 0, &ring), 0);
		CHECK_EQ(ring.gpa, RING_GPA);
		CHECK_EQ(vh_iotlb_invalidate(r.tlb, RING_IOVA, RING_SIZE), 0);
		CHECK_EQ(vh_iotlb_update_uva(r.tlb, mt, RING_IOVA, RING_SIZE,
					     ring.user_addr, VH_IOTLB_RW),
			 0);
	}
	vh_mem_table_put(mt);
	add(&r, DATA_IOVA, 16, DATA_IOVA + 4 * PG, 2 * PG, false, &r);
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	CHECK_EQ(e.in_num, 1);
	/* the same three regions again, each in a mapping of its own */
	for (i = 0; i < 3; i++) {
		CHECK_EQ(vh_mem_get_region(r.mem, i, &regs[i]), 0);
		regs[i].fd = fcntl(regs[i].fd, F_DUPFD_CLOEXEC, 0);
		CHECK(regs[i].fd >= 0);
	}
	CHECK_EQ(vh_mem_set_table(r.mem, regs, 3), 0);
	add(&r, DATA_IOVA, 16, DATA_IOVA + 20 * PG, 3 * PG, false, &r);
	CHECK_EQ(vh_devq_pop(r.vr, &e2), 1);
	CHECK_EQ(e2.in_num, 1);
	/* written through the old mapping, the same memory */
	memset(iov2[1].iov_base, 0x5a, iov2[1].iov_len);
	{
		uint8_t *h;

		/* the new table maps it elsewhere: its host search misses */
		CHECK_EQ(vh_mem_gpa_to_host(r.mem, DATA_GPA + 20 * PG, PG,
					    (void **)&h),
			 0);
		CHECK(h != (uint8_t *)iov2[1].iov_base);
		CHECK_EQ(h[0], 0x5a);
	}
	CHECK_EQ(vh_devq_push(r.vr, e2.id, 3 * PG), 0);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 2 * PG), 0);
	for (i = 4; i < 6; i++)
		CHECK(log_bit(log, DATA_GPA + i * PG));
	for (i = 20; i < 23; i++)
		CHECK(log_bit(log, DATA_GPA + i * PG));
	CHECK(!log_bit(log, DATA_GPA + 6 * PG));
	CHECK(!log_bit(log, DATA_GPA + 23 * PG));
	CHECK(!log_bit(log, DATA_GPA)); /* the readable buffer */
	CHECK(ring_logged(log, packed));
	rig_fini(&r);
	printf("dirty log through the IOTLB after a new memory table, %s: 5 pages logged\n",
	       packed ? "packed" : "split");
}

/*
 * A front-end that changes the IOTLB between every two pops (a filler
 * entry each time, in a table of some 3000 entries) cannot make each
 * element in flight hold a copy of the table: past VH_DEVQ_IPIN_ENTRIES
 * entries of superseded snapshots, an element pins one of its own with
 * just the translations its buffers and indirect table went through.
 * Those still log its writes once every entry is gone (a flush), and the
 * ring's count of what its elements pin comes back to 0.
 */
#define FILL 3000u
#define FILL_IOVA 0x5000000000ull

static void test_pin_bound(bool packed)
{
	struct iovec iov[NUM / 2][2];
	struct vh_devq_elem e[NUM / 2];
	const unsigned int n = NUM / 2;
	unsigned int i, k, own = 0;
	uint64_t pinned = 0;
	uint8_t *log;
	struct rig r;

	log = rig_init_log(&r, packed);
	map_data(&r, 0, DATA_PAGES, VH_IOTLB_RW);
	CHECK_EQ(vh_iotlb_update(r.tlb, IND_GPA, IND_SIZE, r.ind, NULL,
				 VH_IOTLB_RO), 0);
	for (i = 0; i < FILL; i++)
		CHECK_EQ(vh_iotlb_update(r.tlb, FILL_IOVA + 2 * i * PG, PG,
					 r.ind, NULL, VH_IOTLB_RO), 0);
	for (i = 0; i < n; i++) {
		e[i].iov = iov[i];
		e[i].iov_max = 2;
		/* every fourth through an indirect table */
		add(&r, DATA_IOVA + i * PG, 16, DATA_IOVA + (n + i) * PG, 64,
		    i % 4 == 3, &r);
		CHECK_EQ(vh_devq_pop(r.vr, &e[i]), 1);
		CHECK(iov[i][1].iov_base ==
		      data_host(&r, DATA_IOVA + (n + i) * PG));
		/* a new snapshot before the next pop */
		CHECK_EQ(vh_iotlb_update(r.tlb,
					 FILL_IOVA + 2 * (FILL + i) * PG, PG,
					 r.ind, NULL, VH_IOTLB_RO), 0);
	}
	/* what the elements pin, each snapshot counted once */
	for (i = 0; i < n; i++) {
		const struct vh_iotlb_table *t = r.vr->head_itab[e[i].id];
		bool again = false;

		CHECK(t != NULL);
		for (k = 0; k < i; k++)
			again |= r.vr->head_itab[e[k].id] == t;
		if (t->n <= 3) /* out, in, the indirect table */
			own++;
		if (!again)
			pinned += t->n;
	}
	/* (every element would have its own full table otherwise) */
	CHECK(pinned <= VH_DEVQ_IPIN_ENTRIES + FILL + 200 + 3 * n);
	CHECK(own >= n - 6 && own < n);
	/* every entry goes: the elements' own translations are all there is */
	CHECK_EQ(vh_iotlb_flush(r.tlb), 0);
	for (i = 0; i < n; i++) {
		memset(iov[i][1].iov_base, (int)i, 64);
		CHECK_EQ(vh_devq_push(r.vr, e[i].id, 64), 0);
	}
	for (i = 0; i < n; i++) {
		void *tok;
		uint32_t len;

		CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
		CHECK_EQ(len, 64);
		CHECK(log_bit(log, DATA_GPA + scramble(n + i) * PG));
		/* the readable buffers are not logged */
		CHECK(!log_bit(log, DATA_GPA + scramble(i) * PG));
	}
	CHECK_EQ(vh_devq_inflight(r.vr), 0);
	CHECK_EQ(r.vr->ipin_cur, 0);
	CHECK_EQ(r.vr->ipin_n, 0);
	CHECK_EQ(r.vr->ipin_entries, 0);
	rig_fini(&r);
	printf("IOTLB snapshots pinned with a change between pops, %s: %llu entries for %u elements (%u with their own)\n",
	       packed ? "packed" : "split", (unsigned long long)pinned, n,
	       own);
}

/*
 * A writer publishes a snapshot before it bumps the generation, so a ring
 * can hold the newest snapshot under the generation before it.  Its next
 * pop sees the generation move and finds the snapshot it has: that is no
 * supersession, and what the ring counts of its elements' pins comes back
 * to 0 once they are pushed (white-box: the generation put back by one).
 */
static void test_switch_same_table(bool packed)
{
	struct iovec iov[2][2];
	struct vh_devq_elem e[2] = { { .iov = iov[0], .iov_max = 2 },
				     { .iov = iov[1], .iov_max = 2 } };
	unsigned int i;
	uint8_t *log;
	struct rig r;

	log = rig_init_log(&r, packed);
	(void)log;
	map_data(&r, 0, DATA_PAGES, VH_IOTLB_RW);
	add(&r, DATA_IOVA, 16, DATA_IOVA + PG, 16, false, &r);
	add(&r, DATA_IOVA, 16, DATA_IOVA + 2 * PG, 16, false, &r);
	CHECK_EQ(vh_devq_pop(r.vr, &e[0]), 1);
	CHECK_EQ(r.vr->ipin_cur, 1);
	r.vr->itab_gen--;
	CHECK_EQ(vh_devq_pop(r.vr, &e[1]), 1);
	CHECK_EQ(r.vr->itab_gen, *vh_iotlb_generation_ptr(r.tlb));
	CHECK_EQ(r.vr->ipin_n, 0);
	CHECK_EQ(r.vr->ipin_cur, 2);
	for (i = 0; i < 2; i++)
		CHECK_EQ(vh_devq_push(r.vr, e[i].id, 16), 0);
	CHECK_EQ(r.vr->ipin_cur, 0);
	CHECK_EQ(r.vr->ipin_n, 0);
	CHECK_EQ(r.vr->ipin_entries, 0);
	rig_fini(&r);
}

/*
 * The rings' own IOTLB snapshot, on a ring nobody pops: the IOTLB is
 * flushed (a memory change) and the memory its entries named goes away;
 * when the ring's addresses are set again with nothing in flight, the
 * ring lets that snapshot (and the mapping) go and waits for a
 * translation, instead of keeping them until its next pop; rings mapped
 * without the access they need break it.
 */
static void test_rings_let_go(void)
{
	struct vh_mem *dmem = NULL;
	struct vh_mem_region reg, mine;
	struct vh_devq_addr a = { 0 };
	struct vh_mem_table *mt;
	struct iovec iov[4];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };
	int maps0;
	struct rig r;

	rig_init(&r, true);
	/* the rings' pages through a memory of the device's own (by uaddr) */
	CHECK_EQ(vh_mem_get_region(r.mem, 0, &reg), 0);
	CHECK_EQ(reg.gpa, RING_GPA);
	CHECK_EQ(vh_mem_new(r.ctx, &dmem), 0);
	CHECK_EQ(vh_mem_add_fd(dmem, RING_GPA, RING_SIZE, 0x7e0000000000ull,
			       fcntl(reg.fd, F_DUPFD_CLOEXEC, 0), 0), 0);
	CHECK_EQ(vh_mem_get_region(dmem, 0, &mine), 0);
	mt = vh_mem_table_get(dmem);
	CHECK_EQ(vh_iotlb_update_uva(r.tlb, mt, RING_IOVA, RING_SIZE,
				     mine.user_addr, VH_IOTLB_RW),
		 0);
	vh_mem_table_put(mt);
	CHECK_EQ(vh_devq_pop(r.vr, &e), 0); /* translated, empty */
	maps0 = count_memfd_maps();
	/* the memory changes: the IOTLB is flushed, the old memory goes */
	CHECK_EQ(vh_iotlb_flush(r.tlb), 0);
	CHECK(vh_mem_unref(dmem) == NULL);
	CHECK_EQ(count_memfd_maps(), maps0); /* the ring's snapshot has it */
	CHECK_EQ(vh_drvq_get_addrs(r.vq, &a.desc, &a.avail, &a.used), 0);
	a.desc = a.desc - RING_GPA + RING_IOVA;
	a.avail = a.avail - RING_GPA + RING_IOVA;
	a.used = a.used - RING_GPA + RING_IOVA;
	r.m.n = 0;
	CHECK_EQ(vh_devq_set_addr(r.vr, &a), 0);
	CHECK_EQ(count_memfd_maps(), maps0 - 1);
	/* waiting for the rings' translation (one miss), then on as before */
	CHECK_EQ(vh_devq_pop(r.vr, &e), -EAGAIN);
	CHECK_EQ(r.m.n, 1);
	CHECK_EQ(r.m.iova, RING_IOVA);
	map_rings(&r);
	map_data(&r, 0, DATA_PAGES, VH_IOTLB_RW);
	add(&r, DATA_IOVA, 16, DATA_IOVA + PG, 16, false, &r);
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 16), 0);
	/*
	 * The rings mapped again without write access: the same addresses
	 * are accepted (a front-end's SET_VRING_ADDR with the log flag must
	 * not fail) and the ring breaks, as a pop would have found
	 */
	CHECK_EQ(vh_iotlb_flush(r.tlb), 0);
	CHECK_EQ(vh_iotlb_update(r.tlb, RING_IOVA, RING_SIZE, r.ring, NULL,
				 VH_IOTLB_RO), 0);
	CHECK_EQ(vh_devq_set_addr(r.vr, &a), 0);
	CHECK_EQ(vh_devq_is_broken(r.vr), 1);
	rig_fini(&r);
}

int main(void)
{
	test_pending_rings();
	test_split_perm_indirect();
	test_invalidate_in_flight();
	test_off();
	test_stream();
	test_misaligned_uaddr();
	test_dirty_log(false);
	test_dirty_log(true);
	test_dirty_log_new_table(false);
	test_dirty_log_new_table(true);
	test_pin_bound(false);
	test_pin_bound(true);
	test_switch_same_table(false);
	test_switch_same_table(true);
	test_rings_let_go();
	printf("test-devq-iotlb: ok\n");
	return 0;
}
