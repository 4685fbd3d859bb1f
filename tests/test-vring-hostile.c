// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Malformed rings, crafted by hand in guest memory: each must be refused
 * with -EIO, the ring marked broken (sticky) and an error logged, never a
 * crash.  Also the driver side against a hostile device, and the legal
 * corner cases that must keep working.
 */
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "test-vring.h"

#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

static const uint64_t V1 = 1ull << VIRTIO_F_VERSION_1;
static const uint64_t IND = 1ull << VIRTIO_RING_F_INDIRECT_DESC;

static void put_desc(uint8_t *tbl, unsigned int i, uint64_t addr,
		     uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = tbl + 16 * i;

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

static void desc(struct rig *r, unsigned int i, uint64_t addr, uint32_t len,
		 uint16_t flags, uint16_t next)
{
	put_desc(gpa_host(r, RING_GPA), i, addr, len, flags, next);
}

static uint8_t *ind_table(struct rig *r)
{
	return gpa_host(r, IND_GPA);
}

/* Make head available (as a driver would, index published last). */
static void avail(struct rig *r, uint16_t head)
{
	uint8_t *av = gpa_host(r, RING_GPA + 16ull * r->num);
	uint16_t idx;

	memcpy(&idx, av + 2, 2);
	memcpy(av + 4 + 2 * (idx & (r->num - 1)), &head, 2);
	idx++;
	/* the avail ring is 2-byte aligned guest memory: through void * */
	__atomic_store_n((uint16_t *)(void *)(av + 2), idx, __ATOMIC_RELEASE);
}

static int refused;
/* every case runs through vh_devq_pop() and vh_devq_pop_batch() */
static bool pop_batched;

static int pop(struct rig *r, struct vh_devq_elem *e)
{
	if (pop_batched)
		return vh_devq_pop_batch(r->vr, e, 1);
	return vh_devq_pop(r->vr, e);
}

#define EXPECT_BROKEN(r, what)                                                \
	do {                                                                  \
		struct iovec _iov[16];                                        \
		struct vh_devq_elem _e = { .iov = _iov, .iov_max = 16 };     \
		uint16_t _n;                                                  \
		CHECK_EQ(pop(r, &_e), -EIO);                                  \
		CHECK_EQ(vh_devq_is_broken((r)->vr), 1);                     \
		CHECK((r)->errors > 0);                                       \
		if (!strstr((r)->last_err, what)) {                           \
			fprintf(stderr, "expected \"%s\" in: %s", what,       \
				(r)->last_err);                               \
			CHECK(0);                                             \
		}                                                             \
		CHECK(strstr((r)->last_err, "broken") != NULL);               \
		/* sticky */                                                  \
		CHECK_EQ(pop(r, &_e), -EIO);                                  \
		CHECK_EQ(vh_devq_avail_count((r)->vr, &_n), -EIO);           \
		CHECK_EQ(vh_devq_enable_notification((r)->vr), -EIO);       \
		CHECK_EQ(vh_devq_need_notify((r)->vr), -EIO);                \
		/* logged once, not per call */                               \
		CHECK_EQ((r)->errors, 1);                                     \
		refused++;                                                    \
	} while (0)

static void test_bad_indexes(void)
{
	struct rig r;

	/* 2.7.6: head past the ring */
	rig_init(&r, 8, V1);
	avail(&r, 8);
	EXPECT_BROKEN(&r, "avail head 8 out of range");
	rig_fini(&r);

	/* next past the ring */
	rig_init(&r, 8, V1);
	desc(&r, 0, DATA_GPA, 16, F_NEXT, 9);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "next 9 out of range");
	rig_fini(&r);

	/* a loop: 0 -> 1 -> 0 */
	rig_init(&r, 8, V1);
	desc(&r, 0, DATA_GPA, 16, F_NEXT, 1);
	desc(&r, 1, DATA_GPA, 16, F_NEXT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "loops");
	rig_fini(&r);

	/*
	 * a loop in a ring larger than the caller's iovec array: still a
	 * broken ring, not -ENOBUFS forever
	 */
	rig_init(&r, 64, V1);
	desc(&r, 0, DATA_GPA, 16, F_NEXT, 1);
	desc(&r, 1, DATA_GPA, 16, F_NEXT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "loops");
	rig_fini(&r);

	/* a valid chain longer than the caller's array: -ENOBUFS, not broken */
	rig_init(&r, 64, V1);
	for (unsigned int i = 0; i < 20; i++)
		desc(&r, i, DATA_GPA, 16, i < 19 ? F_NEXT : 0, (uint16_t)(i + 1));
	avail(&r, 0);
	{
		struct iovec iov[16];
		struct vh_devq_elem e = { .iov = iov, .iov_max = 16 };

		CHECK_EQ(pop(&r, &e), -ENOBUFS);
		CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	}
	rig_fini(&r);

	/* a self loop on the last descriptor of a full-size chain */
	rig_init(&r, 4, V1);
	desc(&r, 0, DATA_GPA, 16, F_NEXT, 1);
	desc(&r, 1, DATA_GPA, 16, F_NEXT, 2);
	desc(&r, 2, DATA_GPA, 16, F_NEXT, 3);
	desc(&r, 3, DATA_GPA, 16, F_NEXT, 3);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "loops");
	rig_fini(&r);

	/* avail->idx more than a ring ahead */
	rig_init(&r, 8, V1);
	{
		uint16_t idx = 9;

		memcpy(gpa_host(&r, RING_GPA + 16 * 8 + 2), &idx, 2);
	}
	EXPECT_BROKEN(&r, "avail idx 9");
	rig_fini(&r);

	/* the same head twice before it was used */
	rig_init(&r, 8, V1);
	desc(&r, 0, DATA_GPA, 16, 0, 0);
	avail(&r, 0);
	avail(&r, 0);
	{
		struct iovec iov[2];
		struct vh_devq_elem e = { .iov = iov, .iov_max = 2 };

		CHECK_EQ(pop(&r, &e), 1);
	}
	EXPECT_BROKEN(&r, "made available twice");
	rig_fini(&r);
}

static void test_bad_buffers(void)
{
	struct rig r;

	/* zero length */
	rig_init(&r, 8, V1);
	desc(&r, 0, DATA_GPA, 0, 0, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "zero-length");
	rig_fini(&r);

	/* addr + len wraps */
	rig_init(&r, 8, V1);
	desc(&r, 0, UINT64_MAX - 10, 100, 0, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "wraps");
	rig_fini(&r);

	/* outside guest memory, wholly and partly */
	rig_init(&r, 8, V1);
	desc(&r, 0, 0x1000, 16, 0, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "outside guest memory");
	rig_fini(&r);
	rig_init(&r, 8, V1);
	desc(&r, 0, MEM_GPA + MEM_SIZE - 8, 9, F_WRITE, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "outside guest memory");
	rig_fini(&r);
	rig_init(&r, 8, V1);
	desc(&r, 0, MEM_GPA - 1, 2, 0, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "outside guest memory");
	rig_fini(&r);

	/* 2.7.4.2: readable after writable */
	rig_init(&r, 8, V1);
	desc(&r, 0, DATA_GPA, 16, F_WRITE | F_NEXT, 1);
	desc(&r, 1, DATA_GPA, 16, 0, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "readable descriptor after a writable");
	rig_fini(&r);

	/* ... also when the readable one is in an indirect table */
	rig_init(&r, 8, V1 | IND);
	put_desc(ind_table(&r), 0, DATA_GPA, 16, 0, 0);
	desc(&r, 0, DATA_GPA, 16, F_WRITE | F_NEXT, 1);
	desc(&r, 1, IND_GPA, 16, F_INDIRECT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "readable descriptor after a writable");
	rig_fini(&r);

	/* a chain of more than 4 GiB */
	rig_init(&r, 8, V1);
	CHECK_EQ(vh_mem_add_memfd(r.mem, 1ull << 32, 3ull << 30, NULL), 0);
	desc(&r, 0, 1ull << 32, 3u << 30, F_NEXT, 1);
	desc(&r, 1, 1ull << 32, 3u << 30, 0, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "longer than 4 GiB");
	rig_fini(&r);
}

static void test_bad_indirect(void)
{
	struct rig r;

	/* 2.7.5.3.1: not negotiated */
	rig_init(&r, 8, V1);
	put_desc(ind_table(&r), 0, DATA_GPA, 16, 0, 0);
	desc(&r, 0, IND_GPA, 16, F_INDIRECT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "not negotiated");
	rig_fini(&r);

	/* length not a multiple of 16, zero, too long */
	rig_init(&r, 8, V1 | IND);
	desc(&r, 0, IND_GPA, 24, F_INDIRECT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "bad indirect table length 24");
	rig_fini(&r);
	rig_init(&r, 8, V1 | IND);
	desc(&r, 0, IND_GPA, 0, F_INDIRECT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "bad indirect table length 0");
	rig_fini(&r);
	rig_init(&r, 8, V1 | IND);
	desc(&r, 0, IND_GPA, (VH_DEVQ_INDIRECT_MIN_CAP + 1) * 16, F_INDIRECT,
	     0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "bad indirect table length");
	rig_fini(&r);

	/* INDIRECT together with NEXT */
	rig_init(&r, 8, V1 | IND);
	put_desc(ind_table(&r), 0, DATA_GPA, 16, 0, 0);
	desc(&r, 0, IND_GPA, 16, F_INDIRECT | F_NEXT, 1);
	desc(&r, 1, DATA_GPA, 16, 0, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "indirect descriptor with NEXT");
	rig_fini(&r);

	/* nested */
	rig_init(&r, 8, V1 | IND);
	put_desc(ind_table(&r), 0, DATA_GPA, 16, F_NEXT, 1);
	put_desc(ind_table(&r), 1, IND_GPA + 64, 16, F_INDIRECT, 0);
	desc(&r, 0, IND_GPA, 32, F_INDIRECT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "nested indirect");
	rig_fini(&r);

	/* a loop inside the table */
	rig_init(&r, 8, V1 | IND);
	put_desc(ind_table(&r), 0, DATA_GPA, 16, F_NEXT, 1);
	put_desc(ind_table(&r), 1, DATA_GPA, 16, F_NEXT, 0);
	desc(&r, 0, IND_GPA, 32, F_INDIRECT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "loops");
	rig_fini(&r);

	/* next past the end of the table */
	rig_init(&r, 8, V1 | IND);
	put_desc(ind_table(&r), 0, DATA_GPA, 16, F_NEXT, 2);
	desc(&r, 0, IND_GPA, 32, F_INDIRECT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "next 2 out of range (2)");
	rig_fini(&r);

	/* the table outside guest memory, and straddling its end */
	rig_init(&r, 8, V1 | IND);
	desc(&r, 0, 0x2000, 32, F_INDIRECT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "not inside one region");
	rig_fini(&r);
	rig_init(&r, 8, V1 | IND);
	desc(&r, 0, MEM_GPA + MEM_SIZE - 16, 32, F_INDIRECT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "not inside one region");
	rig_fini(&r);
	rig_init(&r, 8, V1 | IND);
	desc(&r, 0, UINT64_MAX - 15, 32, F_INDIRECT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "indirect table wraps");
	rig_fini(&r);

	/* a bad buffer inside a good table */
	rig_init(&r, 8, V1 | IND);
	put_desc(ind_table(&r), 0, DATA_GPA, 16, F_NEXT, 1);
	put_desc(ind_table(&r), 1, DATA_GPA, 0, F_WRITE, 0);
	desc(&r, 0, IND_GPA, 32, F_INDIRECT, 0);
	avail(&r, 0);
	EXPECT_BROKEN(&r, "zero-length");
	rig_fini(&r);
}

/* Legal but unusual chains that must keep working. */
static void test_legal_corners(void)
{
	struct iovec iov[8];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 8 };
	struct test_fdset fdset;
	struct vh_mem_region reg;
	uint8_t *second;
	struct rig r;

	/* a buffer across two adjacent regions: two iovecs */
	test_fdset_snapshot(&fdset);
	rig_init(&r, 8, V1 | IND);
	CHECK_EQ(vh_mem_add_memfd(r.mem, MEM_GPA + MEM_SIZE, 65536,
				  (void **)&second),
		 0);
	/* the two memfds the rings live in, while they are in use */
	CHECK_EQ(vh_mem_get_region(r.mem, 0, &reg), 0);
	CHECK_CLOEXEC(reg.fd);
	CHECK_EQ(vh_mem_get_region(r.mem, 1, &reg), 0);
	CHECK_CLOEXEC(reg.fd);
	CHECK_NEW_FDS_CLOEXEC(&fdset, 2);
	memset(gpa_host(&r, MEM_GPA + MEM_SIZE - 8), 0x11, 8);
	memset(second, 0x22, 8);
	desc(&r, 0, MEM_GPA + MEM_SIZE - 8, 16, 0, 0);
	avail(&r, 0);
	CHECK_EQ(pop(&r, &e), 1);
	CHECK_EQ(e.out_num, 2);
	CHECK_EQ(e.out_len, 16);
	CHECK_EQ(iov[0].iov_len, 8);
	CHECK_EQ(((uint8_t *)iov[0].iov_base)[7], 0x11);
	CHECK(iov[1].iov_base == second);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 0), 0);

	/* iov too small: -ENOBUFS, nothing consumed, then it pops */
	desc(&r, 1, DATA_GPA, 16, F_NEXT, 2);
	desc(&r, 2, DATA_GPA + 16, 16, F_NEXT, 3);
	desc(&r, 3, DATA_GPA + 32, 16, F_WRITE, 0);
	avail(&r, 1);
	e.iov_max = 2;
	CHECK_EQ(pop(&r, &e), -ENOBUFS);
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	e.iov_max = 0;
	CHECK_EQ(pop(&r, &e), -ENOBUFS);
	e.iov_max = 3;
	CHECK_EQ(pop(&r, &e), 1);
	CHECK_EQ(e.id, 1);
	CHECK_EQ(e.ndescs, 3);
	CHECK_EQ(e.out_num, 2);
	CHECK_EQ(e.in_num, 1);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 16), 0);

	/* direct descriptors followed by one indirect (2.7.5.3.2) */
	put_desc(ind_table(&r), 0, DATA_GPA + 100, 10, F_WRITE | F_NEXT, 1);
	put_desc(ind_table(&r), 1, DATA_GPA + 200, 20, F_WRITE, 0);
	desc(&r, 4, DATA_GPA, 5, F_NEXT, 5);
	desc(&r, 5, IND_GPA, 32, F_INDIRECT, 0);
	avail(&r, 4);
	e.iov_max = 8;
	CHECK_EQ(pop(&r, &e), 1);
	CHECK_EQ(e.ndescs, 2);
	CHECK_EQ(e.out_num, 1);
	CHECK_EQ(e.in_num, 2);
	CHECK_EQ(e.out_len, 5);
	CHECK_EQ(e.in_len, 30);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 30), 0);

	/* an indirect table at an address that is only 4-byte aligned */
	put_desc(ind_table(&r) + 4, 0, DATA_GPA + 300, 7, 0, 0);
	desc(&r, 6, IND_GPA + 4, 16, F_INDIRECT, 0);
	avail(&r, 6);
	CHECK_EQ(pop(&r, &e), 1);
	CHECK_EQ(e.out_len, 7);
	CHECK(iov[0].iov_base == gpa_host(&r, DATA_GPA + 300));
	CHECK_EQ(vh_devq_push(r.vr, e.id, 0), 0);

	/* a chain of exactly num descriptors */
	{
		unsigned int i;

		for (i = 0; i < 8; i++)
			desc(&r, i, DATA_GPA + i * 64, 64, i < 7 ? F_NEXT : 0,
			     (uint16_t)((i + 1) % 8));
		avail(&r, 0);
		CHECK_EQ(pop(&r, &e), 1);
		CHECK_EQ(e.ndescs, 8);
		CHECK_EQ(e.out_len, 8 * 64);
		CHECK_EQ(vh_devq_push(r.vr, e.id, 0), 0);
	}
	CHECK_EQ(pop(&r, &e), 0);
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	CHECK_EQ(r.errors, 0);

	/* broken is cleared only by a reset / new setup */
	avail(&r, 9);
	CHECK_EQ(pop(&r, &e), -EIO);
	CHECK_EQ(vh_devq_reset(r.vr), 0);
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	rig_fini(&r);
}

/* The driver side against a device that writes nonsense in the used ring. */
static void test_hostile_device(void)
{
	struct vh_sg sg = { DATA_GPA, 100 };
	uint8_t *used;
	struct rig r;
	void *tok;
	uint32_t len, v;
	uint16_t idx;
	int tag;

	/* used ring at RING_GPA + 16 * 8 + 22, rounded up to 4: +152 */
	rig_init(&r, 8, V1);
	used = gpa_host(&r, RING_GPA + 152);
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &tag), 0);
	v = 5; /* never handed out */
	memcpy(used + 4, &v, 4);
	idx = 1;
	memcpy(used + 2, &idx, 2);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), -EIO);
	CHECK_EQ(vh_drvq_is_broken(r.vq), 1);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), -EIO);
	CHECK(strstr(r.last_err, "id 5") != NULL);
	/* nothing pending on a broken ring: a drain loop would not end */
	CHECK_EQ(vh_drvq_enable_cb(r.vq), -EIO);
	rig_fini(&r);

	rig_init(&r, 8, V1);
	used = gpa_host(&r, RING_GPA + 152);
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &tag), 0);
	v = 8; /* >= num */
	memcpy(used + 4, &v, 4);
	idx = 1;
	memcpy(used + 2, &idx, 2);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), -EIO);
	rig_fini(&r);

	rig_init(&r, 8, V1);
	used = gpa_host(&r, RING_GPA + 152);
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &tag), 0);
	v = 0;
	memcpy(used + 4, &v, 4);
	v = 101; /* more than the chain can hold */
	memcpy(used + 8, &v, 4);
	idx = 1;
	memcpy(used + 2, &idx, 2);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), -EIO);
	CHECK(strstr(r.last_err, "length 101") != NULL);
	rig_fini(&r);

	rig_init(&r, 8, V1);
	used = gpa_host(&r, RING_GPA + 152);
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &tag), 0);
	idx = 2; /* two used, one in flight */
	memcpy(used + 2, &idx, 2);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), -EIO);
	rig_fini(&r);

	/* a chain of two descriptors is one chain in flight, not two */
	rig_init(&r, 8, V1);
	used = gpa_host(&r, RING_GPA + 152);
	{
		struct vh_sg two[2] = { { DATA_GPA, 50 }, { DATA_GPA + 50, 50 } };

		CHECK_EQ(vh_drvq_add(r.vq, two, 1, 1, &tag), 0);
	}
	v = 0;
	memcpy(used + 4, &v, 4);
	memcpy(used + 12, &v, 4);
	idx = 2;
	memcpy(used + 2, &idx, 2);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), -EIO);
	CHECK(strstr(r.last_err, "used idx advance 2") != NULL);
	rig_fini(&r);

	/* and a used id returned twice */
	rig_init(&r, 8, V1);
	used = gpa_host(&r, RING_GPA + 152);
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &tag), 0);
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &tag), 0);
	v = 0;
	memcpy(used + 4, &v, 4);
	memcpy(used + 12, &v, 4);
	idx = 2;
	memcpy(used + 2, &idx, 2);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK(tok == &tag);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), -EIO);
	rig_fini(&r);
}

/* ---------------------------------------------------------------------- */
/* packed rings (2.8)                                                     */
/* ---------------------------------------------------------------------- */

static const uint64_t PK = 1ull << VIRTIO_F_RING_PACKED;
#define PF_AVAIL (1u << 7)
#define PF_USED (1u << 15)

/* A descriptor at ring position pos, made available for wrap counter w. */
static void pdesc(struct rig *r, unsigned int pos, uint64_t addr,
		  uint32_t len, uint16_t id, uint16_t flags, bool w)
{
	uint8_t *d = gpa_host(r, RING_GPA + 16ull * pos);

	flags |= w ? PF_AVAIL : PF_USED;
	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &id, 2);
	__atomic_store_n((uint16_t *)(d + 14), flags, __ATOMIC_RELEASE);
}

static void prig(struct rig *r, unsigned int num, uint64_t f)
{
	rig_init(r, num, V1 | PK | f);
}

static void test_packed_bad_rings(void)
{
	struct iovec iov[16];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 16 };
	struct rig r;
	unsigned int i;

	/* buffer ids index the in-flight state: below Queue Size */
	prig(&r, 8, 0);
	pdesc(&r, 0, DATA_GPA, 16, 8, 0, true);
	EXPECT_BROKEN(&r, "buffer id 8 out of range");
	rig_fini(&r);

	/* 2.8.6: an id made available again while in flight */
	prig(&r, 8, 0);
	pdesc(&r, 0, DATA_GPA, 16, 3, 0, true);
	pdesc(&r, 1, DATA_GPA, 16, 3, 0, true);
	CHECK_EQ(pop(&r, &e), 1);
	EXPECT_BROKEN(&r, "buffer id 3 reused while in flight");
	rig_fini(&r);

	/* a chain running into a descriptor that is not available */
	prig(&r, 8, 0);
	pdesc(&r, 1, DATA_GPA, 16, 0, 0, false);
	pdesc(&r, 0, DATA_GPA, 16, 0, F_NEXT, true);
	EXPECT_BROKEN(&r, "descriptor 1 of a chain not available");
	rig_fini(&r);

	/* a chain through the whole ring and beyond */
	prig(&r, 8, 0);
	for (i = 0; i < 8; i++)
		pdesc(&r, i, DATA_GPA, 16, 0, F_NEXT, true);
	EXPECT_BROKEN(&r, "longer than the ring");
	rig_fini(&r);

	/* the same chain when the caller's iovecs are too few: still broken */
	prig(&r, 64, 0);
	for (i = 0; i < 64; i++)
		pdesc(&r, i, DATA_GPA, 16, 0, F_NEXT, true);
	EXPECT_BROKEN(&r, "longer than the ring");
	rig_fini(&r);

	prig(&r, 8, 0);
	pdesc(&r, 0, DATA_GPA, 0, 0, 0, true);
	EXPECT_BROKEN(&r, "zero-length descriptor");
	rig_fini(&r);

	prig(&r, 8, 0);
	pdesc(&r, 0, MEM_GPA + MEM_SIZE - 8, 16, 0, 0, true);
	EXPECT_BROKEN(&r, "outside guest memory");
	rig_fini(&r);

	prig(&r, 8, 0);
	pdesc(&r, 1, DATA_GPA, 16, 0, 0, true);
	pdesc(&r, 0, DATA_GPA, 16, 0, F_NEXT | F_WRITE, true);
	EXPECT_BROKEN(&r, "readable descriptor after a writable one");
	rig_fini(&r);

	prig(&r, 8, 0);
	pdesc(&r, 0, UINT64_MAX - 4, 16, 0, 0, true);
	EXPECT_BROKEN(&r, "wraps");
	rig_fini(&r);

	/* more descriptors in flight than the ring holds (8 + 1) */
	prig(&r, 8, 0);
	pdesc(&r, 1, DATA_GPA, 16, 0, F_NEXT, true);
	pdesc(&r, 2, DATA_GPA, 16, 0, 0, true);
	pdesc(&r, 0, DATA_GPA, 16, 0, F_NEXT, true);
	pdesc(&r, 4, DATA_GPA, 16, 1, F_NEXT, true);
	pdesc(&r, 5, DATA_GPA, 16, 1, 0, true);
	pdesc(&r, 3, DATA_GPA, 16, 1, F_NEXT, true);
	pdesc(&r, 7, DATA_GPA, 16, 2, 0, true);
	pdesc(&r, 6, DATA_GPA, 16, 2, F_NEXT, true);
	for (i = 0; i < 3; i++)
		CHECK_EQ(pop(&r, &e), 1);
	pdesc(&r, 0, DATA_GPA, 16, 3, 0, false); /* next lap */
	EXPECT_BROKEN(&r, "more than 8 descriptors in flight");
	rig_fini(&r);

	/* 2.8.7 indirect: negotiated, alone, a sane table */
	prig(&r, 8, 0);
	pdesc(&r, 0, IND_GPA, 16, 0, F_INDIRECT, true);
	EXPECT_BROKEN(&r, "indirect descriptor not negotiated");
	rig_fini(&r);

	prig(&r, 8, IND);
	put_desc(ind_table(&r), 0, DATA_GPA, 16, 0, 0);
	pdesc(&r, 1, DATA_GPA, 16, 0, 0, true);
	pdesc(&r, 0, IND_GPA, 16, 0, F_INDIRECT | F_NEXT, true);
	EXPECT_BROKEN(&r, "indirect descriptor 0 in a chain");
	rig_fini(&r);

	prig(&r, 8, IND);
	put_desc(ind_table(&r), 0, DATA_GPA, 16, 0, 0);
	pdesc(&r, 1, IND_GPA, 16, 0, F_INDIRECT, true);
	pdesc(&r, 0, DATA_GPA, 16, 0, F_NEXT, true);
	EXPECT_BROKEN(&r, "indirect descriptor 1 in a chain");
	rig_fini(&r);

	prig(&r, 8, IND);
	pdesc(&r, 0, IND_GPA, 17, 0, F_INDIRECT, true);
	EXPECT_BROKEN(&r, "bad indirect table length 17");
	rig_fini(&r);

	prig(&r, 8, IND);
	pdesc(&r, 0, IND_GPA, 16 * 1025, 0, F_INDIRECT, true);
	EXPECT_BROKEN(&r, "bad indirect table length");
	rig_fini(&r);

	prig(&r, 8, IND);
	pdesc(&r, 0, MEM_GPA + MEM_SIZE - 16, 32, 0, F_INDIRECT, true);
	EXPECT_BROKEN(&r, "not inside one region");
	rig_fini(&r);

	prig(&r, 8, IND);
	put_desc(ind_table(&r), 0, DATA_GPA, 16, 0, 0);
	put_desc(ind_table(&r), 1, DATA_GPA, 0, 0, 0);
	pdesc(&r, 0, IND_GPA, 32, 0, F_INDIRECT, true);
	EXPECT_BROKEN(&r, "zero-length descriptor");
	rig_fini(&r);

	/* a base beyond the ring, found when the rings are mapped */
	prig(&r, 8, 0);
	CHECK_EQ(vh_devq_reset(r.vr), 0);
	CHECK_EQ(vh_devq_set_base(r.vr, 0x8000 | 9), 0); /* size not known */
	CHECK_EQ(vh_devq_set_num(r.vr, 8), 0);
	CHECK_EQ(vh_devq_is_broken(r.vr), 0); /* no addresses yet */
	{
		struct vh_devq_addr a = { .desc = RING_GPA,
					  .avail = RING_GPA + 128,
					  .used = RING_GPA + 132 };

		CHECK_EQ(vh_devq_set_addr(r.vr, &a), 0);
	}
	EXPECT_BROKEN(&r, "beyond the ring size");
	rig_fini(&r);
}

/* Legal packed corners that must keep working. */
static void test_packed_legal(void)
{
	struct iovec iov[16];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 16 };
	struct rig r;
	uint16_t n;

	/* a descriptor of the last lap (wrong wrap) is simply not there */
	prig(&r, 8, 0);
	pdesc(&r, 0, DATA_GPA, 16, 0, 0, false);
	CHECK_EQ(pop(&r, &e), 0);
	CHECK_EQ(vh_devq_avail_count(r.vr, &n), 0);
	CHECK_EQ(n, 0);
	/* nor is a used one */
	pdesc(&r, 0, DATA_GPA, 16, 0, PF_USED, true);
	CHECK_EQ(pop(&r, &e), 0);
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	/* a chain across the end of the ring flips the wrap counter inside */
	CHECK_EQ(vh_devq_reset(r.vr), 0);
	CHECK_EQ(vh_devq_set_num(r.vr, 8), 0);
	CHECK_EQ(vh_devq_set_base(r.vr, 0x80008000u | 6 | 6 << 16), 0);
	{
		struct vh_devq_addr a = { .desc = RING_GPA,
					  .avail = RING_GPA + 128,
					  .used = RING_GPA + 132 };

		CHECK_EQ(vh_devq_set_addr(r.vr, &a), 0);
	}
	pdesc(&r, 7, DATA_GPA + 16, 16, 0, F_NEXT, true);
	pdesc(&r, 0, DATA_GPA + 32, 16, 5, F_WRITE, false);
	pdesc(&r, 6, DATA_GPA, 16, 0, F_NEXT, true);
	CHECK_EQ(pop(&r, &e), 1);
	CHECK_EQ(e.id, 5); /* the id of the last descriptor */
	CHECK_EQ(r.errors, 0);
	CHECK_EQ(e.ndescs, 3);
	CHECK_EQ(e.out_num, 2);
	CHECK_EQ(e.in_num, 1);
	CHECK_EQ(vh_devq_push(r.vr, 5, 16), 0);
	{
		uint32_t base;

		CHECK_EQ(vh_devq_get_base(r.vr, &base), 0);
		CHECK_EQ(base, 1u | 1u << 16); /* both wrap counters 0 now */
	}
	/* the used descriptor: at position 6, id 5, len 16, flags of wrap 1 */
	{
		uint8_t *d = gpa_host(&r, RING_GPA + 16 * 6);
		uint16_t id, fl;
		uint32_t len;

		memcpy(&len, d + 8, 4);
		memcpy(&id, d + 12, 2);
		memcpy(&fl, d + 14, 2);
		CHECK_EQ(len, 16);
		CHECK_EQ(id, 5);
		CHECK_EQ(fl & (PF_AVAIL | PF_USED), PF_AVAIL | PF_USED);
	}
	/* indirect flags inside the table other than WRITE are ignored */
	CHECK_EQ(vh_devq_is_broken(r.vr), 0);
	rig_fini(&r);

	prig(&r, 8, IND);
	/* packed table entries: id at +12 (ignored), flags at +14 */
	put_desc(ind_table(&r), 0, DATA_GPA, 16, 7, F_NEXT | F_INDIRECT);
	put_desc(ind_table(&r), 1, DATA_GPA + 64, 32, 0, F_WRITE);
	pdesc(&r, 0, IND_GPA, 32, 4, F_INDIRECT, true);
	CHECK_EQ(pop(&r, &e), 1);
	CHECK_EQ(e.id, 4);
	CHECK_EQ(e.ndescs, 1);
	CHECK_EQ(e.out_len, 16);
	CHECK_EQ(e.in_len, 32);
	CHECK_EQ(vh_devq_push(r.vr, 4, 32), 0);
	CHECK_EQ(vh_devq_push(r.vr, 4, 32), -EINVAL); /* not in flight */
	rig_fini(&r);
}

/*
 * The fast pop checks the flags and the id range in one compare (flags
 * under a mask minus the wanted ones, id in the low half): every
 * AVAIL/USED combination under either wrap counter, with ids around the
 * queue size, through the one-element call and a batch run.
 */
static void test_packed_flags_ids(void)
{
	static const uint16_t ids[] = { 0, 7, 8, 0x7fff, 0x8000, 0xffff };
	static const uint16_t fls[] = { 0, PF_AVAIL, PF_USED,
					PF_AVAIL | PF_USED };
	struct iovec iov[4][4];
	struct vh_devq_elem e[4];
	struct rig r;

	for (unsigned int i = 0; i < 4; i++)
		e[i] = (struct vh_devq_elem){ .iov = iov[i], .iov_max = 4 };
	for (int w = 0; w < 2; w++)
		for (unsigned int f = 0; f < 4; f++)
			for (unsigned int k = 0; k < 6; k++) {
				bool av = !!(fls[f] & PF_AVAIL) == w &&
					  !!(fls[f] & PF_USED) != w;
				uint8_t *d;
				uint64_t a = DATA_GPA;
				uint32_t len = 16;
				struct vh_devq_addr ad = { 0 };
				int ret;

				prig(&r, 8, 0);
				/* positions 0, wrap counters w */
				CHECK_EQ(vh_drvq_get_addrs(r.vq, &ad.desc,
							   &ad.avail,
							   &ad.used), 0);
				CHECK_EQ(vh_devq_reset(r.vr), 0);
				CHECK_EQ(vh_devq_set_num(r.vr, 8), 0);
				CHECK_EQ(vh_devq_set_base(r.vr,
					 w ? 0x80008000u : 0), 0);
				CHECK_EQ(vh_devq_set_addr(r.vr, &ad), 0);
				/*
				 * one buffer through first: the fast pop then
				 * knows the region
				 */
				pdesc(&r, 0, DATA_GPA, 16, 1, 0, w);
				CHECK_EQ(vh_devq_pop(r.vr, e), 1);
				CHECK_EQ(vh_devq_push(r.vr, 1, 0), 0);
				d = gpa_host(&r, RING_GPA + 16);
				memcpy(d, &a, 8);
				memcpy(d + 8, &len, 4);
				memcpy(d + 12, &ids[k], 2);
				__atomic_store_n((uint16_t *)(void *)(d + 14),
						 fls[f], __ATOMIC_RELEASE);
				ret = pop_batched ?
					      vh_devq_pop_batch(r.vr, e, 4) :
					      vh_devq_pop(r.vr, e);
				if (!av) {
					CHECK_EQ(ret, 0);
					CHECK_EQ(vh_devq_is_broken(r.vr), 0);
				} else if (ids[k] < 8) {
					CHECK_EQ(ret, 1);
					CHECK_EQ(e[0].id, ids[k]);
					CHECK_EQ(e[0].in_len, 0);
					CHECK_EQ(e[0].out_len, 16);
					CHECK_EQ(vh_devq_push(r.vr, ids[k], 0), 0);
					CHECK_EQ(vh_devq_is_broken(r.vr), 0);
				} else {
					CHECK_EQ(ret, -EIO);
					CHECK_EQ(vh_devq_is_broken(r.vr), 1);
					refused++;
				}
				rig_fini(&r);
			}
}

/* The packed driver side against a device writing nonsense. */
static void test_packed_hostile_device(void)
{
	struct vh_sg sg = { DATA_GPA, 100 };
	struct rig r;
	void *tok;
	uint32_t len;
	int tag;

	prig(&r, 8, 0);
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &tag), 0);
	pdesc(&r, 0, 0, 0, 5, PF_USED, true); /* used, id never handed out */
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), -EIO);
	CHECK_EQ(vh_drvq_is_broken(r.vq), 1);
	CHECK(strstr(r.last_err, "id 5") != NULL);
	CHECK_EQ(vh_drvq_enable_cb(r.vq), -EIO); /* the descriptor stays */
	rig_fini(&r);

	prig(&r, 8, 0);
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &tag), 0);
	pdesc(&r, 0, 0, 101, 0, PF_USED | F_WRITE, true); /* more than it holds */
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), -EIO);
	CHECK(strstr(r.last_err, "length 101") != NULL);
	rig_fini(&r);

	/* 2.8.4: without WRITE the length is reserved: ignored, 0 */
	prig(&r, 8, 0);
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 1, 0, &tag), 0);
	pdesc(&r, 0, 0, 101, 0, PF_USED, true);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK_EQ(len, 0);
	rig_fini(&r);

	prig(&r, 8, 0);
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &tag), 0);
	pdesc(&r, 0, 0, 100, 9, PF_USED, true); /* id >= num */
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), -EIO);
	rig_fini(&r);

	/* the same id returned twice */
	prig(&r, 8, 0);
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &tag), 0);
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &tag), 0);
	pdesc(&r, 0, 0, 0, 0, PF_USED, true);
	pdesc(&r, 1, 0, 0, 0, PF_USED, true);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), -EIO);
	rig_fini(&r);
}

int main(void)
{
	int fds;

	fds = test_count_fds();
	for (int batched = 0; batched < 2; batched++) {
		pop_batched = batched;
		test_bad_indexes();
		test_bad_buffers();
		test_bad_indirect();
		test_legal_corners();
		test_packed_bad_rings();
		test_packed_legal();
		test_packed_flags_ids();
	}
	test_packed_hostile_device();
	test_hostile_device();
	printf("%d malformed rings refused (each through both pop calls)\n",
	       refused);
	CHECK_EQ(test_count_fds(), fds);
	return 0;
}
