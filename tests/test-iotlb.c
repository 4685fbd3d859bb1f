// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The IOTLB (src/iotlb.c, white-box): updates, permissions, overflow,
 * overlapping updates, invalidation cutting entries, lookups split at entry
 * boundaries, a snapshot held across invalidation and region removal (no
 * use-after-unmap: the test writes through it, under ASan), many entries
 * and eviction, per-page miss de-duplication, readers on another thread
 * while a writer updates and invalidates, and an element's own snapshot.
 */
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>

#include "iotlb-internal.h"
#include "libvhost.h"
#include "mem-internal.h"
#include "test-util.h"

#define PG 4096ull

static struct vh_ctx *ctx;

static struct vh_iotlb *tlb_new(void)
{
	struct vh_iotlb *tlb = NULL;

	CHECK_EQ(vh_iotlb_new(ctx, &tlb), 0);
	return tlb;
}

/* Translate through the current snapshot: host pointer or NULL (*err). */
static void *xlate(struct vh_iotlb *tlb, uint64_t iova, uint64_t len,
		   unsigned int perm, int *err, uint64_t *miss)
{
	struct vh_iotlb_table *t = vh_iotlb_table_get(tlb);
	uint64_t m = 0;
	void *p = vh_iotlb_table_translate(t, iova, len, perm, &m, err);

	vh_iotlb_table_put(t);
	if (miss)
		*miss = m;
	return p;
}

static void test_basic_and_perm(void)
{
	struct vh_iotlb *tlb = tlb_new();
	static uint8_t buf[4 * PG];
	uint64_t miss = 0;
	int err = 0;

	CHECK_EQ(vh_iotlb_update(tlb, 0x10000, 2 * PG, buf, NULL,
				 VH_IOTLB_RW), 0);
	CHECK_EQ(vh_iotlb_update(tlb, 0x20000, PG, buf + 2 * PG, NULL,
				 VH_IOTLB_RO), 0);
	CHECK_EQ(vh_iotlb_update(tlb, 0x30000, PG, buf + 3 * PG, NULL,
				 VH_IOTLB_WO), 0);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 3);
	CHECK(xlate(tlb, 0x10000, 1, VH_IOTLB_RW, &err, NULL) == buf);
	CHECK(xlate(tlb, 0x10000 + PG + 5, PG - 5, VH_IOTLB_RO, &err,
		    NULL) == buf + PG + 5);
	/* one byte past the end: a miss at the first unmapped address */
	CHECK(!xlate(tlb, 0x10000 + PG, PG + 1, VH_IOTLB_RO, &err, &miss));
	CHECK_EQ(err, -EAGAIN);
	CHECK_EQ(miss, 0x10000 + 2 * PG);
	CHECK(!xlate(tlb, 0xfff, 1, VH_IOTLB_RO, &err, &miss));
	CHECK_EQ(err, -EAGAIN);
	CHECK_EQ(miss, 0xfff);
	/* permissions */
	CHECK(xlate(tlb, 0x20000, 8, VH_IOTLB_RO, &err, NULL) == buf + 2 * PG);
	CHECK(!xlate(tlb, 0x20000, 8, VH_IOTLB_WO, &err, NULL));
	CHECK_EQ(err, -EACCES);
	CHECK(!xlate(tlb, 0x20000, 8, VH_IOTLB_RW, &err, NULL));
	CHECK_EQ(err, -EACCES);
	CHECK(xlate(tlb, 0x30000, 8, VH_IOTLB_WO, &err, NULL) == buf + 3 * PG);
	CHECK(!xlate(tlb, 0x30000, 8, VH_IOTLB_RO, &err, NULL));
	CHECK_EQ(err, -EACCES);
	/* bad lookups */
	CHECK(!xlate(tlb, 0x10000, 0, VH_IOTLB_RO, &err, NULL));
	CHECK_EQ(err, -EINVAL);
	CHECK(!xlate(tlb, UINT64_MAX, 2, VH_IOTLB_RO, &err, NULL));
	CHECK_EQ(err, -EINVAL);
	CHECK(!xlate(tlb, 0x10000, 1, 0, &err, NULL));
	CHECK_EQ(err, -EINVAL);
	CHECK(vh_iotlb_unref(tlb) == NULL);
}

static void test_bad_updates(void)
{
	struct vh_iotlb *tlb = tlb_new();
	static uint8_t buf[PG];

	/* "An IOTLB message": size 0, wrapping ranges, perm 0 or > RW */
	CHECK_EQ(vh_iotlb_update(tlb, 0, 0, buf, NULL, VH_IOTLB_RW), -EINVAL);
	CHECK_EQ(vh_iotlb_update(tlb, UINT64_MAX - 10, 12, buf, NULL,
				 VH_IOTLB_RW), -EINVAL);
	CHECK_EQ(vh_iotlb_update(tlb, 0, PG, buf, NULL, 0), -EINVAL);
	CHECK_EQ(vh_iotlb_update(tlb, 0, PG, buf, NULL, 4), -EINVAL);
	CHECK_EQ(vh_iotlb_update(tlb, 0, PG, NULL, NULL, 1), -EINVAL);
	CHECK_EQ(vh_iotlb_update(tlb, 0, UINT64_MAX, buf, NULL, 1), -EINVAL);
	CHECK_EQ(vh_iotlb_invalidate(tlb, UINT64_MAX, 2), -EINVAL);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 0);
	/* the last page of the IOVA space is fine */
	CHECK_EQ(vh_iotlb_update(tlb, UINT64_MAX - PG + 1, PG, buf, NULL,
				 VH_IOTLB_RW), 0);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 1);
	CHECK_EQ(vh_iotlb_invalidate(tlb, UINT64_MAX, 1), 0);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 1); /* cut, not dropped */
	vh_iotlb_unref(tlb);
}

/*
 * Size 0 is the range to the end of the address space: QEMU unmaps a
 * whole IOMMU notifier range as iova 0, size addr_mask + 1 = 0, which the
 * kernel's vhost reads as everything.  It was refused, and every revoked
 * translation stayed.
 */
static void test_invalidate_to_end(void)
{
	struct vh_iotlb *tlb = tlb_new();
	static uint8_t buf[4 * PG];
	int err = 0;

	CHECK_EQ(vh_iotlb_update(tlb, 0, PG, buf, NULL, VH_IOTLB_RW), 0);
	CHECK_EQ(vh_iotlb_update(tlb, 0x10000, 2 * PG, buf + PG, NULL,
				 VH_IOTLB_RW), 0);
	CHECK_EQ(vh_iotlb_update(tlb, UINT64_MAX - PG + 1, PG, buf + 3 * PG,
				 NULL, VH_IOTLB_RW), 0);
	/* from the middle of an entry up: its lower part stays */
	CHECK_EQ(vh_iotlb_invalidate(tlb, 0x10000 + PG, 0), 0);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 2);
	CHECK(xlate(tlb, 0x10000, PG, VH_IOTLB_RW, &err, NULL) == buf + PG);
	CHECK(!xlate(tlb, 0x10000 + PG, 1, VH_IOTLB_RO, &err, NULL));
	CHECK(!xlate(tlb, UINT64_MAX, 1, VH_IOTLB_RO, &err, NULL));
	/* from 0: everything */
	CHECK_EQ(vh_iotlb_invalidate(tlb, 0, 0), 0);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 0);
	CHECK(!xlate(tlb, 0, 1, VH_IOTLB_RO, &err, NULL));
	CHECK_EQ(err, -EAGAIN);
	vh_iotlb_unref(tlb);
}

/*
 * A cut inside an entry makes two of it: invalidations alone stay within
 * VH_IOTLB_MAX_ENTRIES (one-byte holes in one large mapping grew the table
 * without bound, each message copying all of it).
 */
static void test_invalidate_bound(void)
{
	enum { N = VH_IOTLB_MAX_ENTRIES + 100 };
	struct vh_iotlb *tlb = tlb_new();
	static uint8_t buf[2 * N + 2];
	unsigned int i;

	CHECK_EQ(vh_iotlb_update(tlb, 0, sizeof(buf), buf, NULL, VH_IOTLB_RW),
		 0);
	for (i = 0; i < N; i++) {
		CHECK_EQ(vh_iotlb_invalidate(tlb, 2 * i + 1, 1), 0);
		CHECK(vh_iotlb_num_entries(tlb) <= VH_IOTLB_MAX_ENTRIES);
	}
	/*
	 * the pieces of one entry share its age and were evicted together
	 * (a cache: they miss, and the front-end maps them again)
	 */
	CHECK(vh_iotlb_num_entries(tlb) < N / 2);
	vh_iotlb_unref(tlb);
}

static void test_overlap(void)
{
	struct vh_iotlb *tlb = tlb_new();
	static uint8_t buf[16 * PG], other[4 * PG];
	int err = 0;

	CHECK_EQ(vh_iotlb_update(tlb, 0x100000, 4 * PG, buf, NULL,
				 VH_IOTLB_RW), 0);
	/* the same translation again (two misses answered): accepted */
	CHECK_EQ(vh_iotlb_update(tlb, 0x100000, 4 * PG, buf, NULL,
				 VH_IOTLB_RW), 0);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 1);
	/* a larger mapping agreeing with it (a huge page): replaces it */
	CHECK_EQ(vh_iotlb_update(tlb, 0x100000 - 2 * PG, 8 * PG,
				 buf, NULL, VH_IOTLB_RW),
		 -EEXIST); /* host of 0x100000 would be buf + 2 pages */
	CHECK_EQ(vh_iotlb_invalidate(tlb, 0x100000, 4 * PG), 0);
	CHECK_EQ(vh_iotlb_update(tlb, 0x100000, 4 * PG, buf + 2 * PG, NULL,
				 VH_IOTLB_RW), 0);
	CHECK_EQ(vh_iotlb_update(tlb, 0x100000 - 2 * PG, 8 * PG, buf, NULL,
				 VH_IOTLB_RW), 0);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 1);
	CHECK(xlate(tlb, 0x100000 - 2 * PG, 8 * PG, VH_IOTLB_RW, &err,
		    NULL) == buf);
	/* conflicting host address or permissions: refused, nothing changes */
	CHECK_EQ(vh_iotlb_update(tlb, 0x100000, PG, other, NULL, VH_IOTLB_RW),
		 -EEXIST);
	CHECK_EQ(vh_iotlb_update(tlb, 0x100000, PG, buf + 2 * PG, NULL,
				 VH_IOTLB_RO), -EEXIST);
	CHECK_EQ(vh_iotlb_update(tlb, 0x100000 + 5 * PG, 4 * PG, other, NULL,
				 VH_IOTLB_RW), -EEXIST);
	CHECK(xlate(tlb, 0x100000, PG, VH_IOTLB_RW, &err, NULL) ==
	      buf + 2 * PG);
	/* a sub-range agreeing: accepted, entries cut around it */
	CHECK_EQ(vh_iotlb_update(tlb, 0x100000, PG, buf + 2 * PG, NULL,
				 VH_IOTLB_RW), 0);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 3);
	CHECK(xlate(tlb, 0x100000 - 2 * PG, 8 * PG, VH_IOTLB_RW, &err,
		    NULL) == buf); /* still one host-contiguous range */
	vh_iotlb_unref(tlb);
}

static void test_split_and_invalidate(void)
{
	struct vh_iotlb *tlb = tlb_new();
	static uint8_t a[4 * PG], b[4 * PG];
	struct vh_iotlb_table *t;
	struct iovec iov[4];
	uint64_t miss = 0;
	int err = 0;

	/* iova 0x1000.. -> a, then b right after: two host pieces */
	CHECK_EQ(vh_iotlb_update(tlb, 0x1000, 4 * PG, a, NULL, VH_IOTLB_RW),
		 0);
	CHECK_EQ(vh_iotlb_update(tlb, 0x1000 + 4 * PG, 4 * PG, b, NULL,
				 VH_IOTLB_RW), 0);
	t = vh_iotlb_table_get(tlb);
	CHECK_EQ(vh_iotlb_table_to_iov(t, 0x1000 + 3 * PG, 2 * PG,
				       VH_IOTLB_RO, iov, 4, &miss), 2);
	CHECK(iov[0].iov_base == a + 3 * PG && iov[0].iov_len == PG);
	CHECK(iov[1].iov_base == b && iov[1].iov_len == PG);
	CHECK_EQ(vh_iotlb_table_to_iov(t, 0x1000 + 3 * PG, 2 * PG,
				       VH_IOTLB_RO, iov, 1, &miss), -ENOBUFS);
	CHECK(!vh_iotlb_table_translate(t, 0x1000 + 3 * PG, 2 * PG,
					VH_IOTLB_RO, &miss, &err));
	CHECK_EQ(err, -EFAULT);
	vh_iotlb_table_put(t);

	/* cut a hole in the middle of the first entry */
	CHECK_EQ(vh_iotlb_invalidate(tlb, 0x1000 + PG, 2 * PG), 0);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 3);
	CHECK(xlate(tlb, 0x1000, PG, VH_IOTLB_RW, &err, NULL) == a);
	CHECK(xlate(tlb, 0x1000 + 3 * PG, PG, VH_IOTLB_RW, &err, NULL) ==
	      a + 3 * PG);
	CHECK(!xlate(tlb, 0x1000, PG + 1, VH_IOTLB_RW, &err, &miss));
	CHECK_EQ(err, -EAGAIN);
	CHECK_EQ(miss, 0x1000 + PG);
	/* invalidating nothing mapped changes nothing */
	CHECK_EQ(vh_iotlb_invalidate(tlb, 0x900000, PG), 0);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 3);
	/* one invalidation across all of them */
	CHECK_EQ(vh_iotlb_invalidate(tlb, 0, 0x100000), 0);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 0);
	vh_iotlb_unref(tlb);
}

/*
 * Entries built from a memory table (vhost-user uaddr), a snapshot held by
 * a "reader" while the IOTLB is invalidated, the region removed from the
 * memory table and that table dropped: the reader's memory stays mapped
 * until it lets go of the snapshot.
 */
static void test_uva_and_hold(void)
{
	struct vh_iotlb *tlb = tlb_new();
	struct vh_mem *mem = NULL;
	struct vh_mem_table *mt;
	struct vh_iotlb_table *held;
	struct vh_mem_region r;
	uint8_t *p;
	void *host = NULL;
	int maps0, err = 0;
	uint64_t miss;

	maps0 = count_memfd_maps();
	CHECK_EQ(vh_mem_new(ctx, &mem), 0);
	CHECK_EQ(vh_mem_add_memfd(mem, 0x40000000, 64 * PG, &host), 0);
	CHECK_EQ(vh_mem_add_memfd(mem, 0x80000000, 16 * PG, NULL), 0);
	CHECK_EQ(vh_mem_get_region(mem, 0, &r), 0);
	mt = vh_mem_table_get(mem);
	/* uaddr outside guest memory, wrapping uaddr */
	/* (page 1 of the address space: never one of our mappings) */
	CHECK_EQ(vh_iotlb_update_uva(tlb, mt, 0, PG, PG, VH_IOTLB_RW),
		 -EFAULT);
	CHECK_EQ(vh_iotlb_update_uva(tlb, mt, 0, PG, r.user_addr + 63 * PG,
				     VH_IOTLB_RW), 0);
	{
		/* from the last page of the highest region into a hole */
		struct vh_mem_region r1;
		uint64_t end;

		CHECK_EQ(vh_mem_get_region(mem, 1, &r1), 0);
		end = r.user_addr + r.size > r1.user_addr + r1.size ?
			      r.user_addr + r.size :
			      r1.user_addr + r1.size;
		CHECK_EQ(vh_iotlb_update_uva(tlb, mt, PG, 2 * PG, end - PG,
					     VH_IOTLB_RW),
			 -EFAULT);
	}
	CHECK_EQ(vh_iotlb_update_uva(tlb, mt, 0, PG, UINT64_MAX, VH_IOTLB_RW),
		 -EINVAL);
	CHECK_EQ(vh_iotlb_update_uva(tlb, mt, 0x7000000, 8 * PG,
				     r.user_addr + 8 * PG, VH_IOTLB_RW), 0);
	vh_mem_table_put(mt);

	held = vh_iotlb_table_get(tlb);
	p = vh_iotlb_table_translate(held, 0x7000000, 8 * PG, VH_IOTLB_WO,
				     &miss, &err);
	CHECK(p == (uint8_t *)host + 8 * PG);
	CHECK(count_memfd_maps() == maps0 + 2);
	/* the front-end unmaps the IOVA, then the memory goes away */
	CHECK_EQ(vh_iotlb_invalidate(tlb, 0, UINT64_MAX), 0);
	CHECK_EQ(vh_mem_remove(mem, 0x40000000, 64 * PG), 0);
	CHECK_EQ(vh_mem_clear(mem), 0);
	CHECK(vh_mem_unref(mem) == NULL);
	/* a later lookup misses ... */
	CHECK(!xlate(tlb, 0x7000000, 1, VH_IOTLB_RO, &err, NULL));
	CHECK_EQ(err, -EAGAIN);
	/* ... but the held snapshot's memory is still mapped: use it */
	memset(p, 0xa5, 8 * PG);
	CHECK(p[8 * PG - 1] == 0xa5);
	CHECK(count_memfd_maps() == maps0 + 1);
	vh_iotlb_table_put(held);
	CHECK(count_memfd_maps() == maps0);
	vh_iotlb_unref(tlb);
}

/*
 * 4 pages at iova from the last 2 of the first region to the first 2 of
 * the second (see test_uva_two_regions()): 2 entries.
 */
static void update_two_regions(struct vh_iotlb *tlb, struct vh_mem *mem,
			       uint64_t iova)
{
	struct vh_mem_table *mt = vh_mem_table_get(mem);

	CHECK_EQ(vh_iotlb_update_uva(tlb, mt, iova, 4 * PG,
				     0x7f0000000000ull + 2 * PG, VH_IOTLB_RO),
		 0);
	vh_mem_table_put(mt);
}

/* A uaddr range crossing two regions adjacent in the front-end's space. */
static void test_uva_two_regions(void)
{
	struct vh_iotlb *tlb = tlb_new();
	struct vh_mem *mem = NULL;
	struct iovec iov[4];
	struct vh_iotlb_table *t;
	void *h0 = NULL, *h1 = NULL;
	int fd0 = memfd_create("t0", MFD_CLOEXEC);
	int fd1 = memfd_create("t1", MFD_CLOEXEC);
	uint64_t miss;

	CHECK(fd0 >= 0 && fd1 >= 0);
	CHECK_EQ(ftruncate(fd0, 4 * PG), 0);
	CHECK_EQ(ftruncate(fd1, 4 * PG), 0);
	CHECK_EQ(vh_mem_new(ctx, &mem), 0);
	CHECK_EQ(vh_mem_add_fd(mem, 0, 4 * PG, 0x7f0000000000ull, fd0, 0), 0);
	CHECK_EQ(vh_mem_add_fd(mem, 1ull << 32, 4 * PG,
			       0x7f0000000000ull + 4 * PG, fd1, 0), 0);
	CHECK_EQ(vh_mem_gpa_to_host(mem, 0, 1, &h0), 0);
	CHECK_EQ(vh_mem_gpa_to_host(mem, 1ull << 32, 1, &h1), 0);
	update_two_regions(tlb, mem, 0x10000);
	CHECK_EQ(vh_iotlb_num_entries(tlb), 2);
	t = vh_iotlb_table_get(tlb);
	CHECK_EQ(vh_iotlb_table_to_iov(t, 0x10000, 4 * PG, VH_IOTLB_RO, iov, 4,
				       &miss), 2);
	CHECK(iov[0].iov_base == (uint8_t *)h0 + 2 * PG);
	CHECK(iov[1].iov_base == h1 && iov[1].iov_len == 2 * PG);
	vh_iotlb_table_put(t);
	{
		/*
		 * A full table: an update of two pieces over what it maps
		 * evicts the two oldest entries, in one pass, and replaces
		 * the overlap once
		 */
		static uint8_t buf[PG];
		unsigned int i;
		int err = 0;

		for (i = 2; i < VH_IOTLB_MAX_ENTRIES; i++)
			CHECK_EQ(vh_iotlb_update(tlb, 1ull << 40 | i * 2 * PG,
						 PG, buf, NULL, VH_IOTLB_RO),
				 0);
		CHECK_EQ(vh_iotlb_num_entries(tlb), VH_IOTLB_MAX_ENTRIES);
		update_two_regions(tlb, mem, 0x20000);
		CHECK_EQ(vh_iotlb_num_entries(tlb), VH_IOTLB_MAX_ENTRIES);
		/* the two oldest were the first update's pieces */
		CHECK(!xlate(tlb, 0x10000, 1, VH_IOTLB_RO, &err, NULL));
		CHECK(!xlate(tlb, 0x10000 + 3 * PG, 1, VH_IOTLB_RO, &err,
			     NULL));
		CHECK(xlate(tlb, 1ull << 40 | 4 * PG, 1, VH_IOTLB_RO, &err,
			    NULL) == buf);
		CHECK(xlate(tlb, 0x20000 + 3 * PG, 1, VH_IOTLB_RO, &err,
			    NULL) == (uint8_t *)h1 + PG);
		/* the same range again: its two pieces replaced, no eviction */
		update_two_regions(tlb, mem, 0x20000);
		CHECK_EQ(vh_iotlb_num_entries(tlb), VH_IOTLB_MAX_ENTRIES);
		CHECK(xlate(tlb, 1ull << 40 | 4 * PG, 1, VH_IOTLB_RO, &err,
			    NULL) == buf);
	}
	vh_mem_unref(mem);
	vh_iotlb_unref(tlb);
}

static void test_many(void)
{
	struct vh_iotlb *tlb = tlb_new();
	static uint8_t buf[64];
	unsigned int i, n = VH_IOTLB_MAX_ENTRIES + 100;
	int err = 0;

	/* pages in a scrambled order; each to its own host byte range */
	for (i = 0; i < n; i++) {
		uint64_t k = (i * 7919u) % n;

		CHECK_EQ(vh_iotlb_update(tlb, k * 2 * PG, PG,
					 buf + (k % 64), NULL, VH_IOTLB_RW),
			 0);
	}
	/* a cache: the oldest entries were evicted */
	CHECK_EQ(vh_iotlb_num_entries(tlb), VH_IOTLB_MAX_ENTRIES);
	for (i = 0; i < n; i++) {
		uint64_t k = (i * 7919u) % n;
		uint8_t *p = xlate(tlb, k * 2 * PG + 7, 1, VH_IOTLB_RO, &err,
				   NULL);

		if (i < 100) {
			CHECK(!p);
			CHECK_EQ(err, -EAGAIN);
		} else {
			CHECK(p == buf + (k % 64) + 7);
		}
		/* the gaps between the pages miss */
		CHECK(!xlate(tlb, k * 2 * PG + PG, 1, VH_IOTLB_RO, &err,
			     NULL));
	}
	vh_iotlb_unref(tlb);
}

struct misses {
	unsigned int n;
	uint64_t iova[16];
	unsigned int perm[16];
};

static void on_miss(struct vh_iotlb *tlb, void *data, uint64_t iova,
		    unsigned int perm)
{
	struct misses *m = data;

	(void)tlb;
	if (m->n < 16) {
		m->iova[m->n] = iova;
		m->perm[m->n] = perm;
	}
	m->n++;
}

static void test_miss_dedup(void)
{
	struct vh_iotlb *tlb = tlb_new();
	static uint8_t buf[2 * PG];
	struct misses m = { 0 };
	unsigned int i;

	vh_iotlb_set_miss_fn(tlb, on_miss, &m);
	CHECK_EQ(vh_iotlb_miss(tlb, 0x5000, VH_IOTLB_RO), 1);
	CHECK_EQ(vh_iotlb_miss(tlb, 0x5000, VH_IOTLB_RO), 0);
	CHECK_EQ(vh_iotlb_miss(tlb, 0x5ff0, VH_IOTLB_RO), 0); /* same page */
	CHECK_EQ(m.n, 1);
	CHECK_EQ(m.iova[0], 0x5000);
	/* a write needs its own report; a read is covered by a write miss */
	CHECK_EQ(vh_iotlb_miss(tlb, 0x5008, VH_IOTLB_WO), 1);
	CHECK_EQ(vh_iotlb_miss(tlb, 0x7000, VH_IOTLB_RW), 1);
	CHECK_EQ(vh_iotlb_miss(tlb, 0x7010, VH_IOTLB_RO), 0);
	CHECK_EQ(m.n, 3);
	CHECK_EQ(m.perm[1], VH_IOTLB_WO);
	CHECK_EQ(vh_iotlb_miss(tlb, 0x5000, 0), -EINVAL);
	/* the update answers page 0x5000: a new miss there is reported */
	CHECK_EQ(vh_iotlb_update(tlb, 0x5000, PG, buf, NULL, VH_IOTLB_RW), 0);
	CHECK_EQ(vh_iotlb_miss(tlb, 0x5000, VH_IOTLB_RO), 1);
	CHECK_EQ(vh_iotlb_miss(tlb, 0x7000, VH_IOTLB_RO), 0); /* still */
	/* so does an invalidation of the page */
	CHECK_EQ(vh_iotlb_invalidate(tlb, 0x7000, 1), 0);
	CHECK_EQ(vh_iotlb_miss(tlb, 0x7000, VH_IOTLB_RO), 1);
	CHECK_EQ(m.n, 5);
	/* the pending set is bounded: the oldest are forgotten */
	for (i = 0; i < 2 * VH_IOTLB_MAX_PENDING; i++)
		CHECK_EQ(vh_iotlb_miss(tlb, 0x100000 + i * PG, VH_IOTLB_RO),
			 1);
	CHECK_EQ(vh_iotlb_flush(tlb), 0);
	CHECK_EQ(vh_iotlb_miss(tlb, 0x100000, VH_IOTLB_RO), 1);
	vh_iotlb_unref(tlb);
}

/*
 * A miss can stay pending while its page is mapped (a fill that found
 * another thread's translation there inserts nothing): once that entry is
 * evicted, a new miss there is reported, not taken for the old one.
 */
static void test_miss_evicted(void)
{
	struct vh_iotlb *tlb = tlb_new();
	static uint8_t buf[PG];
	struct misses m = { 0 };
	unsigned int i;
	int err = 0;

	vh_iotlb_set_miss_fn(tlb, on_miss, &m);
	CHECK_EQ(vh_iotlb_update(tlb, 0x5000, PG, buf, NULL, VH_IOTLB_RW), 0);
	/* a ring on an older snapshot missed the page */
	CHECK_EQ(vh_iotlb_miss(tlb, 0x5000, VH_IOTLB_RO), 1);
	/* the oldest entry, 0x5000, goes */
	for (i = 0; i < VH_IOTLB_MAX_ENTRIES; i++)
		CHECK_EQ(vh_iotlb_update(tlb, 0x100000 + 2 * i * PG, PG, buf,
					 NULL, VH_IOTLB_RW),
			 0);
	CHECK(!xlate(tlb, 0x5000, 1, VH_IOTLB_RO, &err, NULL));
	CHECK_EQ(err, -EAGAIN);
	CHECK_EQ(vh_iotlb_miss(tlb, 0x5000, VH_IOTLB_RO), 1);
	CHECK_EQ(m.n, 2);
	vh_iotlb_unref(tlb);
}

/* ------------------------------------------------------------------ */
/* readers on a thread, against a writer                              */
/* ------------------------------------------------------------------ */

struct race {
	struct vh_iotlb *tlb;
	uint8_t *base; /* an mmap the writer maps pages of */
	int stop;
	unsigned long hits, misses;
};

static void *reader(void *arg)
{
	struct race *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
		struct vh_iotlb_table *t = vh_iotlb_table_get(r->tlb);
		struct iovec iov[8];
		uint64_t miss;
		int n, i;

		n = vh_iotlb_table_to_iov(t, 0, 16 * PG, VH_IOTLB_RW, iov, 8,
					  &miss);
		if (n > 0) {
			for (i = 0; i < n; i++) /* touch every byte */
				memset(iov[i].iov_base, 0x5a, iov[i].iov_len);
			r->hits++;
		} else {
			CHECK(n == -EAGAIN);
			r->misses++;
		}
		vh_iotlb_table_put(t);
	}
	return NULL;
}

static void test_race(void)
{
	struct race r = { 0 };
	struct vh_mem *mem = NULL;
	pthread_t th;
	unsigned int i;
	void *host = NULL;

	r.tlb = tlb_new();
	CHECK_EQ(vh_mem_new(ctx, &mem), 0);
	CHECK(pthread_create(&th, NULL, reader, &r) == 0);
	for (i = 0; i < 3000; i++) {
		struct vh_mem_table *mt;
		struct vh_mem_region reg;
		unsigned int pg;

		/* fresh memory every 100 rounds: old mappings must live on */
		if (i % 100 == 0) {
			CHECK_EQ(vh_iotlb_invalidate(r.tlb, 0, UINT64_MAX), 0);
			CHECK_EQ(vh_mem_clear(mem), 0);
			CHECK_EQ(vh_mem_add_memfd(mem, 0, 16 * PG, &host), 0);
		}
		CHECK_EQ(vh_mem_get_region(mem, 0, &reg), 0);
		mt = vh_mem_table_get(mem);
		for (pg = 0; pg < 16; pg++)
			CHECK_EQ(vh_iotlb_update_uva(r.tlb, mt, pg * PG, PG,
						     reg.user_addr + pg * PG,
						     VH_IOTLB_RW), 0);
		vh_mem_table_put(mt);
		CHECK_EQ(vh_iotlb_invalidate(r.tlb, (i % 16) * PG, PG), 0);
		if (i % 7 == 0)
			CHECK_EQ(vh_iotlb_invalidate(r.tlb, 0, UINT64_MAX), 0);
	}
	__atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
	CHECK(pthread_join(th, NULL) == 0);
	printf("race: %lu hits, %lu misses\n", r.hits, r.misses);
	CHECK(r.hits + r.misses > 0);
	vh_iotlb_unref(r.tlb);
	vh_mem_unref(mem);
}

/*
 * An element's own snapshot (vh_iotlb_table_extract()): only what its
 * ranges went through, clipped to them, overlapping ranges taken once,
 * pieces contiguous in IOVA, host and guest addresses merged whatever
 * the entries' permissions, unmapped parts left out, and the memory kept
 * mapped for as long as it lives.
 */
static void test_extract(void)
{
	struct vh_iotlb *tlb = tlb_new();
	static uint8_t buf[16 * PG], other[PG];
	struct vh_iotlb_range r[5] = {
		{ 9 * PG, 4 * PG },       /* overlaps the next, goes further */
		{ 0x100, 10 * PG - 0x100 },
		{ 5 * PG, 2 * PG },       /* inside the one above */
		{ 0x100000 + 8, 16 },
		{ 0x200000, PG },         /* not mapped */
	};
	struct vh_iotlb_table *t, *mine = NULL;
	struct vh_mem *mem = NULL;
	struct vh_mem_table *mt;
	struct vh_mem_region reg;
	uint64_t gpa, len;
	uint8_t *host;
	unsigned int i;
	void *mh = NULL;
	int maps0;

	/* 16 pages one by one, RO and RW in turn: 16 entries, one run */
	for (i = 0; i < 16; i++)
		CHECK_EQ(vh_iotlb_update(tlb, i * PG, PG, buf + i * PG, NULL,
					 i % 2 ? VH_IOTLB_RW : VH_IOTLB_RO),
			 0);
	CHECK_EQ(vh_iotlb_update(tlb, 0x100000, PG, other, NULL, VH_IOTLB_RO),
		 0);
	t = vh_iotlb_table_get(tlb);
	CHECK_EQ(t->n, 17);
	CHECK_EQ(vh_iotlb_table_extract(t, r, 5, &mine), 0);
	vh_iotlb_table_put(t);
	CHECK_EQ(mine->n, 2);
	CHECK_EQ(mine->e[0].iova, 0x100);
	CHECK_EQ(mine->e[0].size, 13 * PG - 0x100);
	CHECK(mine->e[0].host == buf + 0x100);
	CHECK_EQ(mine->e[1].iova, 0x100000 + 8);
	CHECK_EQ(mine->e[1].size, 16);
	CHECK(mine->e[1].host == other + 8);
	/* the writes a push logs: any page of the run, RO before or not */
	CHECK_EQ(vh_iotlb_table_gpa(mine, 12 * PG, VH_IOTLB_WO, &gpa, &host,
				    &len), 0);
	CHECK(host == buf + 12 * PG);
	CHECK_EQ(gpa, VH_IOTLB_NO_GPA);
	CHECK_EQ(len, PG);
	CHECK_EQ(vh_iotlb_table_gpa(mine, 0xff, VH_IOTLB_RO, &gpa, &host,
				    &len), -EAGAIN);
	CHECK_EQ(vh_iotlb_table_gpa(mine, 13 * PG, VH_IOTLB_RO, &gpa, &host,
				    &len), -EAGAIN);
	CHECK_EQ(vh_iotlb_table_gpa(mine, 0x200000, VH_IOTLB_RO, &gpa, &host,
				    &len), -EAGAIN);
	vh_iotlb_table_put(mine);

	/* guest memory by user address: guest addresses, and the mapping */
	maps0 = count_memfd_maps();
	CHECK_EQ(vh_iotlb_invalidate(tlb, 0, UINT64_MAX), 0);
	CHECK_EQ(vh_mem_new(ctx, &mem), 0);
	CHECK_EQ(vh_mem_add_memfd(mem, 0x40000000, 8 * PG, &mh), 0);
	CHECK_EQ(vh_mem_get_region(mem, 0, &reg), 0);
	mt = vh_mem_table_get(mem);
	for (i = 0; i < 8; i++)
		CHECK_EQ(vh_iotlb_update_uva(tlb, mt, 0x9000 + i * PG, PG,
					     reg.user_addr + i * PG,
					     VH_IOTLB_RW), 0);
	vh_mem_table_put(mt);
	r[0] = (struct vh_iotlb_range){ 0x9000 + PG + 1, 5 * PG };
	t = vh_iotlb_table_get(tlb);
	CHECK_EQ(vh_iotlb_table_extract(t, r, 1, &mine), 0);
	vh_iotlb_table_put(t);
	CHECK_EQ(mine->n, 1);
	CHECK_EQ(vh_iotlb_table_gpa(mine, 0x9000 + 6 * PG, VH_IOTLB_WO, &gpa,
				    &host, &len), 0);
	CHECK_EQ(gpa, 0x40000000 + 6 * PG);
	CHECK_EQ(len, 1);
	CHECK(host == (uint8_t *)mh + 6 * PG);
	CHECK_EQ(vh_iotlb_invalidate(tlb, 0, UINT64_MAX), 0);
	CHECK(vh_mem_unref(mem) == NULL);
	/* the element's snapshot alone keeps the memory mapped */
	CHECK(count_memfd_maps() == maps0 + 1);
	memset(host, 0x5a, PG);
	vh_iotlb_table_put(mine);
	CHECK(count_memfd_maps() == maps0);
	vh_iotlb_unref(tlb);
}

int main(void)
{
	CHECK_EQ(vh_ctx_new(&ctx), 0);
	vh_ctx_set_log_priority(ctx, 0);
	test_basic_and_perm();
	test_bad_updates();
	test_invalidate_to_end();
	test_invalidate_bound();
	test_overlap();
	test_split_and_invalidate();
	test_uva_and_hold();
	test_uva_two_regions();
	test_many();
	test_miss_dedup();
	test_miss_evicted();
	test_race();
	test_extract();
	vh_ctx_unref(ctx);
	printf("test-iotlb: ok\n");
	return 0;
}
