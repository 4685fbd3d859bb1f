// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vIOMMU over vhost-user, our front-end against our back-end on a real
 * unix socket: VIRTIO_F_ACCESS_PLATFORM negotiated, rings and buffers at
 * IOVAs.  The front-end plays the IOMMU: a page table from IOVA pages to
 * guest pages (identity, then scrambled), IOTLB updates sent only when the
 * back-end reports a miss (BACKEND_IOTLB_MSG), and answered late.  The
 * back-end (vh_vu_backend, in a thread) runs an "xor" device on two rings.
 *
 *  - every request served with the right bytes, misses reported once per
 *    page until answered;
 *  - updates that wrap, have no size, bad permissions, a uaddr outside
 *    guest memory, a conflicting overlap, or a MISS type are refused and
 *    the connection stays;
 *  - the rings' own pages invalidated mid-use: the next request misses
 *    again and is served after the update;
 *  - a miss never answered: that ring waits (nothing consumed, nothing
 *    broken), the other ring goes on, and the disconnect does not hang;
 *  - an IOVA the stopped ring used, mapped to another page without an
 *    invalidation (QEMU sends none while the device is stopped): after
 *    the restart the back-end reads the new page, not the one it cached.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "libvhost.h"
#include "libvhost-vu-backend.h"
#include "test-util.h"

#define PG 4096ull
#define MEM_SIZE (2u << 20)
#define NPAGES (MEM_SIZE / PG)
#define QSIZE 64
#define NQ 2
#define LEN 3000
#define IOVA_BASE 0x7e0000000000ull

/* ------------------------------------------------------------------ */
/* the back-end: an xor device                                        */
/* ------------------------------------------------------------------ */

struct dev {
	struct vh_vu_backend *be;
	int stop_fd;
	int served[NQ];  /* atomic */
	int eagain[NQ];  /* atomic */
	int broken[NQ];  /* atomic */
};

static void dev_kicked(struct vh_vu_backend *be, void *data, unsigned int idx,
		       struct vh_devq *vr)
{
	struct dev *d = data;
	struct iovec iov[8];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 8 };
	uint8_t tmp[LEN];
	int r;

	while ((r = vh_devq_pop(vr, &e)) == 1) {
		size_t n = 0, k;
		unsigned int i;

		for (i = 0; i < e.out_num; i++) {
			k = iov[i].iov_len;
			if (k > sizeof(tmp) - n)
				k = sizeof(tmp) - n;
			memcpy(tmp + n, iov[i].iov_base, k);
			n += k;
		}
		for (k = 0; k < n; k++)
			tmp[k] ^= 0x5a;
		k = 0;
		for (i = e.out_num; i < e.out_num + e.in_num && k < n; i++) {
			size_t c = iov[i].iov_len < n - k ? iov[i].iov_len :
							      n - k;

			memcpy(iov[i].iov_base, tmp + k, c);
			k += c;
		}
		vh_devq_push(vr, e.id, (uint32_t)k);
		__atomic_add_fetch(&d->served[idx], 1, __ATOMIC_RELAXED);
	}
	if (r == -EAGAIN)
		__atomic_add_fetch(&d->eagain[idx], 1, __ATOMIC_RELAXED);
	else if (r < 0)
		__atomic_store_n(&d->broken[idx], 1, __ATOMIC_RELAXED);
	vh_devq_notify(vr);
}

static const struct vh_vu_device_ops dev_ops = {
	.size = sizeof(dev_ops),
	.queue_kicked = dev_kicked,
};

static void *backend_thread(void *arg)
{
	struct dev *d = arg;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = vh_vu_backend_get_fd(d->be), .events = POLLIN },
			{ .fd = d->stop_fd, .events = POLLIN },
		};

		if (poll(pfd, 2, 30000) <= 0 || pfd[1].revents)
			break;
		vh_vu_backend_dispatch(d->be);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* the front-end: a driver behind an IOMMU                            */
/* ------------------------------------------------------------------ */

struct miss {
	uint64_t iova;
	uint8_t perm;
};

struct fe {
	struct vh_vu_frontend *fe;
	uint8_t *guest;
	bool identity;
	/* IOMMU page table: IOVA page index -> guest page, and back */
	unsigned int to_gpa[NPAGES], to_iova[NPAGES];
	/* misses reported and not answered yet */
	struct miss pend[64];
	unsigned int n_pend, n_miss, dups;
	uint64_t blackhole; /* IOVA page never answered (or 0) */
};

static uint64_t iova_of(const struct fe *f, uint64_t gpa)
{
	if (f->identity)
		return gpa;
	return IOVA_BASE + f->to_iova[gpa / PG] * PG + gpa % PG;
}

static int fe_iotlb(struct vh_vu_frontend *fe, void *data,
		    const struct vh_vu_iotlb *m)
{
	struct fe *f = data;
	unsigned int i;

	CHECK_EQ(m->type, VH_IOTLB_MISS);
	CHECK(m->perm >= VH_ACCESS_RO && m->perm <= VH_ACCESS_RW);
	f->n_miss++;
	/* "once per page": not again while the first is unanswered */
	for (i = 0; i < f->n_pend; i++)
		if (f->pend[i].iova / PG == m->iova / PG &&
		    (f->pend[i].perm & m->perm) == m->perm)
			f->dups++;
	if (f->n_pend < 64) {
		f->pend[f->n_pend].iova = m->iova;
		f->pend[f->n_pend].perm = m->perm;
		f->n_pend++;
	}
	return 0;
}

static const struct vh_vu_frontend_ops fe_ops = {
	.size = sizeof(fe_ops),
	.iotlb = fe_iotlb,
};

/* The IOMMU answers every pending miss (a page each) but the blackhole. */
static void answer(struct fe *f)
{
	unsigned int i, k = 0;

	for (i = 0; i < f->n_pend; i++) {
		uint64_t page = f->pend[i].iova & ~(PG - 1), gpa;

		if (f->blackhole && page == f->blackhole) {
			f->pend[k++] = f->pend[i];
			continue;
		}
		if (f->identity) {
			gpa = page;
		} else {
			CHECK(page >= IOVA_BASE &&
			      page < IOVA_BASE + NPAGES * PG);
			gpa = f->to_gpa[(page - IOVA_BASE) / PG] * PG;
		}
		CHECK(gpa < MEM_SIZE);
		CHECK_EQ(vh_vu_frontend_iotlb_update(
				 f->fe, page, PG,
				 (uint64_t)(uintptr_t)(f->guest + gpa),
				 VH_ACCESS_RW),
			 0);
	}
	f->n_pend = k;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Wait (20 s at most: ASan on a loaded machine) until used has an entry,
 * serving the back-end channel; misses are answered when `late` ms have
 * passed since they came, so the ring really waits first.
 */
static int wait_used(struct fe *f, struct vh_drvq *vq, int call, int late,
		     int64_t budget_ms, void **tok, uint32_t *len)
{
	int64_t end = now_ms() + budget_ms, first_miss = 0;
	uint64_t v;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = vh_vu_frontend_get_backend_fd(f->fe),
			  .events = POLLIN },
			{ .fd = call, .events = POLLIN },
		};
		int r = vh_drvq_get_used(vq, tok, len);

		if (r != 0)
			return r;
		if (now_ms() > end)
			return 0;
		poll(pfd, 2, 20);
		if (pfd[0].revents)
			vh_vu_frontend_dispatch_backend(f->fe);
		if (pfd[1].revents && read(call, &v, sizeof(v)) < 0)
			v = 0;
		if (f->n_pend && !first_miss)
			first_miss = now_ms();
		if (late >= 0 && f->n_pend && now_ms() - first_miss >= late) {
			answer(f);
			first_miss = 0;
		}
	}
}

static void fill(uint8_t *p, unsigned int seed)
{
	unsigned int k;

	for (k = 0; k < LEN; k++)
		p[k] = (uint8_t)(k * 7 + seed);
}

static void check_xor(const uint8_t *p, unsigned int seed)
{
	unsigned int k;

	for (k = 0; k < LEN; k++)
		CHECK_EQ(p[k], (uint8_t)((k * 7 + seed) ^ 0x5a));
}

/* One request on vq: out at guest page out_pg, in at in_pg (by IOVA). */
static void submit(struct fe *f, struct vh_drvq *vq, unsigned int out_pg,
		   unsigned int in_pg, unsigned int seed)
{
	struct vh_sg sg[2] = {
		{ iova_of(f, out_pg * PG), LEN },
		{ iova_of(f, in_pg * PG), LEN },
	};

	fill(f->guest + out_pg * PG, seed);
	memset(f->guest + in_pg * PG, 0, LEN);
	CHECK_EQ(vh_drvq_add(vq, sg, 1, 1, f), 0);
	CHECK(vh_drvq_kick(vq) >= 0);
}

static void bad_update(struct fe *f, uint64_t iova, uint64_t size,
		       uint64_t uaddr, uint8_t perm, uint8_t type)
{
	struct vh_vu_iotlb m = {
		.iova = iova,
		.size = size,
		.uaddr = uaddr,
		.perm = perm,
		.type = type,
	};

	CHECK_EQ(vh_vu_frontend_iotlb_msg(f->fe, &m), -EIO);
}

/*
 * late_channel: the rings are set up before SET_BACKEND_REQ_FD, so the
 * back-end's first misses cannot be reported; they must be reported once
 * the channel is there, not wait for ever as if the front-end knew.
 */
static void run(bool identity, bool packed, bool late_channel)
{
	const struct vh_vu_device desc = {
		.size = sizeof(desc),
		.features = (1ull << VH_VU_VIRTIO_F_VERSION_1) |
			    (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM) |
			    (packed ? 1ull << VH_VU_VIRTIO_F_RING_PACKED : 0),
		.protocol_features = (1ull << VH_VU_PROTOCOL_F_MQ) |
				     (1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |
				     (1ull << VH_VU_PROTOCOL_F_BACKEND_REQ) |
				     (1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS),
		.num_queues = NQ,
	};
	char dir[] = "/tmp/vu-iotlb.XXXXXX", sock[64];
	struct vh_ctx *ctx;
	struct vh_mem *mem;
	struct vh_drvq *vq[NQ];
	struct dev d = { 0 };
	struct fe *f = calloc(1, sizeof(*f));
	int kick[NQ], call[NQ], r;
	uint64_t feat, pf, one = 1;
	unsigned int i, seed = 0;
	pthread_t th;
	uint32_t len, base;
	void *tok;

	CHECK(f != NULL);
	f->identity = identity;
	for (i = 0; i < NPAGES; i++) {
		/* a permutation of the pages (5 is odd, NPAGES a power of 2) */
		unsigned int io = identity ? i : (i * 5 + 3) % NPAGES;

		f->to_iova[i] = io;
		f->to_gpa[io] = i;
	}
	CHECK(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/vu.sock", dir);
	CHECK_EQ(vh_ctx_new(&ctx), 0);
	vh_ctx_set_log_priority(ctx, 2); /* LOG_CRIT: refusals are expected */
	CHECK_EQ(vh_vu_backend_new(ctx, &desc, &dev_ops, &d, &d.be), 0);
	CHECK_EQ(vh_vu_backend_listen(d.be, sock), 0);
	d.stop_fd = eventfd(0, EFD_CLOEXEC);
	CHECK(d.stop_fd >= 0);
	CHECK(pthread_create(&th, NULL, backend_thread, &d) == 0);

	CHECK_EQ(vh_vu_frontend_new(ctx, &f->fe), 0);
	vh_vu_frontend_set_ops(f->fe, &fe_ops, f);
	CHECK_EQ(vh_vu_frontend_connect(f->fe, sock, 2000), 0);
	CHECK_EQ(vh_vu_frontend_negotiate(f->fe, ~0ull, ~0ull, &feat, &pf), 0);
	CHECK(feat & (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM));
	CHECK_EQ(!!(feat & (1ull << VH_VU_VIRTIO_F_RING_PACKED)), packed);
	CHECK(pf & (1ull << VH_VU_PROTOCOL_F_BACKEND_REQ));
	CHECK(pf & (1ull << VH_VU_PROTOCOL_F_REPLY_ACK));
	if (!late_channel)
		CHECK_EQ(vh_vu_frontend_set_backend_req_fd(f->fe), 0);

	CHECK_EQ(vh_mem_new(ctx, &mem), 0);
	CHECK_EQ(vh_mem_add_memfd(mem, 0, MEM_SIZE, (void **)&f->guest), 0);
	CHECK_EQ(vh_vu_frontend_share_mem(f->fe, mem), 0);
	for (i = 0; i < NQ; i++) {
		uint64_t dg, ag, ug;

		/* each ring inside one page: its IOVAs stay contiguous */
		CHECK_EQ(vh_drvq_new(ctx, mem, i, QSIZE, PG + i * 4 * PG,
				     &vq[i]), 0);
		CHECK_EQ(vh_drvq_set_features(vq[i], feat), 0);
		CHECK_EQ(vh_drvq_get_addrs(vq[i], &dg, &ag, &ug), 0);
		CHECK(ug + 6 + 8 * QSIZE <= PG + i * 4 * PG + PG);
		kick[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		call[i] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		CHECK(kick[i] >= 0 && call[i] >= 0);
		CHECK_EQ(vh_drvq_set_kick_fd(vq[i], kick[i]), 0);
		CHECK_EQ(vh_drvq_set_call_fd(vq[i], call[i]), 0);
		/* nothing mapped yet: the back-end asks when it needs it */
		CHECK_EQ(vh_vu_frontend_setup_vq_iova(f->fe, i, vq[i], kick[i],
						      call[i], iova_of(f, dg),
						      iova_of(f, ag),
						      iova_of(f, ug)), 0);
	}
	if (late_channel) {
		/* the rings already missed, with nobody to tell */
		CHECK_EQ(f->n_miss, 0);
		CHECK_EQ(vh_vu_frontend_set_backend_req_fd(f->fe), 0);
	}

	/* 1. requests served through misses answered late (100 ms) */
	for (i = 0; i < 3; i++, seed++) {
		submit(f, vq[0], 16 + i, 32 + i, seed);
		r = wait_used(f, vq[0], call[0], 100, 20000, &tok, &len);
		CHECK_EQ(r, 1);
		CHECK(tok == f);
		CHECK_EQ(len, LEN);
		check_xor(f->guest + (32 + i) * PG, seed);
	}
	/* ring page (RO then WO), 2 buffer pages per request at least */
	CHECK(f->n_miss >= 3 + 2);
	/*
	 * 1b. the channel replaced while a miss sent on it was unread: the
	 * miss went with it, and is reported again on the new one (it was
	 * kept pending, and the ring waited for ever)
	 */
	if (!late_channel) {
		unsigned int m = f->n_miss;

		struct pollfd p = {
			.fd = vh_vu_frontend_get_backend_fd(f->fe),
			.events = POLLIN,
		};

		char junk[256];

		submit(f, vq[0], 19, 35, seed);
		/*
		 * the back-end misses on the old one, and the miss is lost
		 * with it (read off here, as a front-end that never
		 * answered loses it)
		 */
		CHECK_EQ(poll(&p, 1, 5000), 1);
		usleep(50 * 1000);
		while (recv(p.fd, junk, sizeof(junk), MSG_DONTWAIT) > 0)
			;
		CHECK_EQ(f->n_miss, m);
		CHECK_EQ(vh_vu_frontend_set_backend_req_fd(f->fe), 0);
		CHECK_EQ(wait_used(f, vq[0], call[0], 0, 5000, &tok, &len), 1);
		CHECK(f->n_miss > m);
		check_xor(f->guest + 35 * PG, seed++);
	}
	CHECK(__atomic_load_n(&d.eagain[0], __ATOMIC_RELAXED) > 0);
	CHECK_EQ(f->dups, 0);
	CHECK_EQ(__atomic_load_n(&d.served[0], __ATOMIC_RELAXED),
		 late_channel ? 3 : 4);

	/* 2. hostile updates: refused, the connection stays */
	bad_update(f, UINT64_MAX - PG + 2, PG, (uintptr_t)f->guest,
		   VH_ACCESS_RW, VH_IOTLB_UPDATE); /* iova wraps */
	bad_update(f, 0x1000, 0, (uintptr_t)f->guest, VH_ACCESS_RW,
		   VH_IOTLB_UPDATE); /* no size */
	bad_update(f, 0x1000, PG, UINT64_MAX - 10, VH_ACCESS_RW,
		   VH_IOTLB_UPDATE); /* uaddr wraps */
	bad_update(f, 0x1000, PG, (uintptr_t)f->guest, 0,
		   VH_IOTLB_UPDATE); /* no permission */
	bad_update(f, 0x1000, PG, (uintptr_t)f->guest, 4,
		   VH_IOTLB_UPDATE); /* unknown permission */
	bad_update(f, 0x1000, PG, (uintptr_t)f->guest + MEM_SIZE,
		   VH_ACCESS_RW, VH_IOTLB_UPDATE); /* not guest memory */
	bad_update(f, 0x1000, 2 * PG, (uintptr_t)f->guest + MEM_SIZE - PG,
		   VH_ACCESS_RW, VH_IOTLB_UPDATE); /* runs past it */
	bad_update(f, 0x1000, PG, (uintptr_t)f->guest, VH_ACCESS_RW,
		   VH_IOTLB_MISS); /* a type the front-end never sends */
	bad_update(f, 0x1000, PG, (uintptr_t)f->guest, VH_ACCESS_RW,
		   9); /* unknown type */
	/* a page the device uses, remapped without an invalidation */
	bad_update(f, iova_of(f, 16 * PG), PG,
		   (uintptr_t)(f->guest + 100 * PG), VH_ACCESS_RW,
		   VH_IOTLB_UPDATE);
	/* ... and with other permissions */
	bad_update(f, iova_of(f, 16 * PG), PG,
		   (uintptr_t)(f->guest + 16 * PG), VH_ACCESS_RO,
		   VH_IOTLB_UPDATE);
	/* the same mapping again is fine (two misses, two answers) */
	CHECK_EQ(vh_vu_frontend_iotlb_update(f->fe, iova_of(f, 16 * PG), PG,
					     (uintptr_t)(f->guest + 16 * PG),
					     VH_ACCESS_RW), 0);
	/* the front-end's helpers refuse what cannot be valid */
	CHECK_EQ(vh_vu_frontend_iotlb_update(f->fe, 1, 0, 0, 1), -EINVAL);
	CHECK_EQ(vh_vu_frontend_iotlb_update(f->fe, 1, PG, 0, 0), -EINVAL);
	CHECK_EQ(vh_vu_frontend_iotlb_invalidate(f->fe, UINT64_MAX, 2),
		 -EINVAL);
	/* still served: the same pages, already mapped, no new miss */
	r = (int)f->n_miss;
	submit(f, vq[0], 16, 32, seed);
	CHECK_EQ(wait_used(f, vq[0], call[0], 0, 20000, &tok, &len), 1);
	check_xor(f->guest + 32 * PG, seed++);
	CHECK_EQ(f->n_miss, (unsigned int)r);

	/*
	 * 3. the rings' own pages (and all else) invalidated mid-use, as
	 * QEMU unmaps a whole IOMMU range: iova 0, size addr_mask + 1 = 0
	 */
	CHECK_EQ(vh_vu_frontend_iotlb_invalidate(f->fe, 0, 0), 0);
	submit(f, vq[0], 17, 33, seed);
	CHECK_EQ(wait_used(f, vq[0], call[0], 50, 20000, &tok, &len), 1);
	check_xor(f->guest + 33 * PG, seed++);
	CHECK(f->n_miss > (unsigned int)r);
	CHECK_EQ(f->dups, 0);

	/* 4. ring 1's buffer is never mapped: it waits, ring 0 goes on */
	f->blackhole = iova_of(f, 200 * PG) & ~(PG - 1);
	submit(f, vq[1], 200, 48, seed + 100);
	CHECK_EQ(wait_used(f, vq[1], call[1], 0, 500, &tok, &len), 0);
	for (i = 0; i < 5; i++, seed++) {
		submit(f, vq[0], 18 + i, 40 + i, seed);
		CHECK_EQ(wait_used(f, vq[0], call[0], 0, 20000, &tok, &len),
			 1);
		check_xor(f->guest + (40 + i) * PG, seed);
	}
	CHECK_EQ(wait_used(f, vq[1], call[1], 0, 200, &tok, &len), 0);
	CHECK_EQ(__atomic_load_n(&d.served[1], __ATOMIC_RELAXED), 0);
	CHECK(__atomic_load_n(&d.eagain[1], __ATOMIC_RELAXED) > 0);
	CHECK_EQ(__atomic_load_n(&d.broken[0], __ATOMIC_RELAXED), 0);
	CHECK_EQ(__atomic_load_n(&d.broken[1], __ATOMIC_RELAXED), 0);
	CHECK_EQ(f->n_pend, 1); /* reported once, still unanswered */
	CHECK_EQ(f->dups, 0);
	/*
	 * The waiting ring stops where it is: nothing was consumed.  Ring 0
	 * made 10 requests (11 with 1b): split, its avail index; packed, 2
	 * descriptors each, both positions with their wrap counter (still
	 * 1) in bit 15.
	 */
	CHECK_EQ(vh_vu_frontend_get_vring_base(f->fe, 1, &base), 0);
	CHECK_EQ(base, packed ? 0x80008000u : 0);
	CHECK_EQ(vh_vu_frontend_get_vring_base(f->fe, 0, &base), 0);
	r = late_channel ? 10 : 11;
	CHECK_EQ(base, packed ? (2u * (unsigned int)r | 0x8000u) * 0x10001u :
				(unsigned int)r);

	/*
	 * 5. ring 0 is stopped.  The IOVA of page 22 (the last request's
	 * out buffer, cached) now maps page 61, and 61's IOVA page 22, with
	 * no invalidation; ring 0 starts again where it stopped.  A stale
	 * translation would read page 22's old bytes.
	 */
	if (!identity) {
		struct vh_vu_vring_addr a = { .index = 0 };
		unsigned int io22 = f->to_iova[22], io61 = f->to_iova[61];
		uint64_t dg, ag, ug;

		f->to_iova[22] = io61;
		f->to_gpa[io61] = 22;
		f->to_iova[61] = io22;
		f->to_gpa[io22] = 61;
		CHECK_EQ(vh_drvq_get_addrs(vq[0], &dg, &ag, &ug), 0);
		a.desc = iova_of(f, dg);
		a.avail = iova_of(f, ag);
		a.used = iova_of(f, ug);
		CHECK_EQ(vh_vu_frontend_set_vring_num(f->fe, 0, QSIZE), 0);
		CHECK_EQ(vh_vu_frontend_set_vring_base(f->fe, 0, base), 0);
		CHECK_EQ(vh_vu_frontend_set_vring_addr(f->fe, &a), 0);
		CHECK_EQ(vh_vu_frontend_set_vring_kick(f->fe, 0, kick[0]), 0);
		CHECK_EQ(vh_vu_frontend_set_vring_enable(f->fe, 0, true), 0);
		r = (int)f->n_miss;
		submit(f, vq[0], 61, 45, seed);
		CHECK_EQ(iova_of(f, 61 * PG), IOVA_BASE + io22 * PG);
		CHECK_EQ(wait_used(f, vq[0], call[0], 0, 20000, &tok, &len),
			 1);
		CHECK_EQ(len, LEN);
		check_xor(f->guest + 45 * PG, seed++);
		CHECK(f->n_miss > (unsigned int)r);
	}

	/* disconnect with the miss pending: the back-end does not hang */
	vh_vu_frontend_unref(f->fe);
	{
		int64_t t0 = now_ms();

		while (vh_vu_backend_connected(d.be) && now_ms() - t0 < 10000)
			usleep(10000);
		CHECK(!vh_vu_backend_connected(d.be));
	}
	CHECK(write(d.stop_fd, &one, sizeof(one)) == sizeof(one));
	CHECK(pthread_join(th, NULL) == 0);
	vh_vu_backend_unref(d.be);
	for (i = 0; i < NQ; i++) {
		vh_drvq_unref(vq[i]);
		close(kick[i]);
		close(call[i]);
	}
	vh_mem_unref(mem);
	close(d.stop_fd);
	vh_ctx_unref(ctx);
	rmdir(dir);
	printf("vu-iotlb (%s IOVAs, %s rings%s): %u misses, ring 0 served %d, ring 1 waited (%d passes)\n",
	       identity ? "identity" : "scrambled",
	       packed ? "packed" : "split",
	       late_channel ? ", back-end channel after the rings" : "",
	       f->n_miss,
	       d.served[0], d.eagain[1]);
	free(f);
}

int main(void)
{
	run(true, false, false);
	run(false, false, false);
	/* setup_vq_iova() gives a packed ring its wrap counters too */
	run(false, true, false);
	run(false, false, true);
	return 0;
}
