// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The memory table a device-side ring pins, across memory changes that a
 * vhost-user back-end follows by setting the same ring addresses again
 * (vh_devq_set_addr()): a ring nobody pops moves to the newest table at
 * once, so the superseded one and its mappings go; a ring whose memory is
 * gone, with nothing in flight, lets its mappings go and is mapped anew
 * when the memory comes back; with an element in flight it keeps them
 * until the element is pushed.  A new dirty log between pops pins no
 * table for the elements in flight.
 */
#include <fcntl.h>
#include <unistd.h>

#include "test-vring.h"

/* The memfd the rig's memory is in, as a new region at gpa. */
static void set_memory(struct rig *r, int memfd, uint64_t gpa)
{
	struct vh_mem_region reg = {
		.gpa = gpa,
		.size = MEM_SIZE,
		.fd = fcntl(memfd, F_DUPFD_CLOEXEC, 0),
	};

	CHECK(reg.fd >= 0);
	CHECK_EQ(vh_mem_set_table(r->mem, &reg, 1), 0);
}

static void round_trip(struct rig *r, uint32_t k)
{
	struct vh_sg sg = { DATA_GPA + k * 64, 64 };
	struct iovec iov[2];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 2 };
	void *tok;
	uint32_t len;

	CHECK_EQ(vh_drvq_add(r->vq, &sg, 0, 1, r), 0);
	CHECK_EQ(vh_devq_pop(r->vr, &e), 1);
	memset(iov[0].iov_base, (int)k, 64);
	CHECK_EQ(vh_devq_push(r->vr, e.id, 64), 0);
	CHECK_EQ(vh_drvq_get_used(r->vq, &tok, &len), 1);
	CHECK_EQ(len, 64);
	CHECK_EQ(((uint8_t *)gpa_host(r, DATA_GPA + k * 64))[63], k);
}

static void test_same_addr(uint64_t features)
{
	struct vh_mem_region reg;
	struct vh_devq_addr a = { 0 };
	struct iovec iov[2];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 2 };
	struct vh_sg sg = { DATA_GPA, 64 };
	struct rig r;
	int memfd, maps0;
	void *tok;
	uint32_t len;

	/* the driver keeps the first mapping (its own table) throughout */
	rig_init(&r, 8, features);
	CHECK_EQ(vh_drvq_get_addrs(r.vq, &a.desc, &a.avail, &a.used), 0);
	CHECK_EQ(vh_mem_get_region(r.mem, 0, &reg), 0);
	memfd = reg.fd;
	round_trip(&r, 1);
	maps0 = count_memfd_maps();

	/* the same memory in a new mapping, twice: the ring follows */
	set_memory(&r, memfd, MEM_GPA);
	CHECK_EQ(vh_devq_set_addr(r.vr, &a), 0);
	CHECK_EQ(count_memfd_maps(), maps0 + 1);
	set_memory(&r, memfd, MEM_GPA);
	CHECK_EQ(vh_devq_set_addr(r.vr, &a), 0);
	/* (the ring's superseded table let its mapping go) */
	CHECK_EQ(count_memfd_maps(), maps0 + 1);
	round_trip(&r, 2);

	/* memory without the rings, nothing in flight: the mappings go */
	set_memory(&r, memfd, 1ull << 40);
	CHECK(vh_devq_set_addr(r.vr, &a) < 0);
	CHECK_EQ(count_memfd_maps(), maps0 + 1); /* the new one only */
	/* the memory back: mapped anew, the ring goes on where it was */
	set_memory(&r, memfd, MEM_GPA);
	CHECK_EQ(vh_devq_set_addr(r.vr, &a), 0);
	CHECK_EQ(count_memfd_maps(), maps0 + 1);
	round_trip(&r, 3);

	/*
	 * With an element in flight its mapping stays until it comes back
	 * (the push breaks the ring, whose rings are no longer in memory)
	 */
	CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &r), 0);
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	set_memory(&r, memfd, 1ull << 40);
	CHECK(vh_devq_set_addr(r.vr, &a) < 0);
	CHECK_EQ(count_memfd_maps(), maps0 + 2);
	memset(iov[0].iov_base, 0x5a, 64);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 64), -EIO);
	CHECK_EQ(vh_devq_inflight(r.vr), 0);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 0);
	/* broken, with nothing in flight: the mapping goes at the next one */
	set_memory(&r, memfd, 1ull << 41);
	CHECK(vh_devq_set_addr(r.vr, &a) < 0);
	CHECK_EQ(count_memfd_maps(), maps0 + 1);
	rig_fini(&r);
	printf("same ring addresses after memory changes, %s: ok\n",
	       features & (1ull << 34) ? "packed" : "split");
}

/*
 * A new dirty log between pops (vhost-user SET_LOG_BASE, which leaves the
 * rings running) publishes a table with the same mappings: the elements
 * in flight go on under it, and the tables of the logs before, with their
 * logs, go at once instead of staying pinned, one per pop, until the
 * elements are pushed.
 */
static void test_log_changes_inflight(uint64_t features)
{
	struct iovec iov[6][2];
	struct vh_devq_elem e[6];
	unsigned int i;
	struct rig r;
	void *tok;
	uint32_t len;
	int maps0;

	rig_init(&r, 8, features);
	maps0 = count_memfd_maps();
	for (i = 0; i < 6; i++) {
		struct vh_sg sg = { DATA_GPA + i * 64, 64 };
		void *log = NULL;

		e[i].iov = iov[i];
		e[i].iov_max = 2;
		CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &r), 0);
		CHECK_EQ(vh_devq_pop(r.vr, &e[i]), 1);
		if (i < 5)
			CHECK_EQ(vh_mem_log_alloc(r.mem,
						  vh_mem_log_size_for(MEM_GPA +
								      MEM_SIZE),
						  NULL, &log),
				 0);
	}
	CHECK_EQ(vh_devq_inflight(r.vr), 6);
	/* the rig's memory, and the last log only */
	CHECK_EQ(count_memfd_maps(), maps0 + 1);
	for (i = 0; i < 6; i++) {
		memset(iov[i][0].iov_base, (int)i, 64);
		CHECK_EQ(vh_devq_push(r.vr, e[i].id, 64), 0);
		CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
		CHECK_EQ(len, 64);
	}
	CHECK_EQ(vh_devq_inflight(r.vr), 0);
	rig_fini(&r);
	printf("new dirty logs between pops, %s: ok\n",
	       features & (1ull << 34) ? "packed" : "split");
}

int main(void)
{
	test_same_addr(1ull << 32);
	test_same_addr(1ull << 32 | 1ull << 34);
	test_log_changes_inflight(1ull << 32);
	test_log_changes_inflight(1ull << 32 | 1ull << 34);
	printf("test-devq-table: ok\n");
	return 0;
}
