// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target for the device-side descriptor-chain walker: the input
 * becomes the guest memory holding the rings and buffers (and a few
 * parameters), then the vring pops and pushes whatever is there.  Whatever
 * the bytes, pop must return 1/0/-EIO/-ENOBUFS, every iovec must lie inside
 * guest memory, the lengths must add up, and a broken ring stays broken.
 *
 * Input layout:
 *   byte 0      queue size exponent (num = 1 << (b % 9), 1..256); with
 *               the packed layout and bit 7 set, any size: num = 1 +
 *               (b & 0x7f), 1..128 (2.8: packed rings need not be a
 *               power of two)
 *   byte 1      bit 0 INDIRECT_DESC, bit 1 EVENT_IDX, bit 2 iov_max 3,
 *               bit 3 region B present (adjacent to A), bit 4 pop and
 *               push BATCH elements at a time (vh_devq_pop_batch),
 *               bit 5 packed layout (VIRTIO_F_RING_PACKED), bit 6 with
 *               it an inflight region (QueueRegionPacked, 32 + 32 * num
 *               bytes: the input's last ones, taken out of it) attached
 *               and recovered before the pops, its chains resubmitted
 *   bytes 2-3   base (split: last_avail_idx; packed: position modulo
 *               num and avail wrap counter in bit 15)
 *   the rest    copied to region A from its start (rings at offset 0,
 *               the same bytes serve as descriptors, tables and buffers)
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "libvhost.h"

#define A_GPA 0x10000ull
#define A_SIZE 0x10000ull
#define B_GPA (A_GPA + A_SIZE)
#define B_SIZE 0x1000ull
#define BATCH 4

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct vh_ctx *ctx;
static struct vh_mem *mem_a, *mem_ab;
static uint8_t *host_a, *host_b_a, *host_b;

static void setup(void)
{
	void *p;

	if (ctx)
		return;
	if (vh_ctx_new(&ctx) || vh_mem_new(ctx, &mem_a) ||
	    vh_mem_new(ctx, &mem_ab) ||
	    vh_mem_add_memfd(mem_a, A_GPA, A_SIZE, &p))
		abort();
	host_a = p;
	/* mem_ab: the same kind of region A, plus B right after it */
	if (vh_mem_add_memfd(mem_ab, A_GPA, A_SIZE, &p))
		abort();
	host_b_a = p;
	if (vh_mem_add_memfd(mem_ab, B_GPA, B_SIZE, &p))
		abort();
	host_b = p;
}

static int inside(const void *p, size_t len, const uint8_t *base,
		  uint64_t size)
{
	const uint8_t *c = p;

	return c >= base && len <= size && (uint64_t)(c - base) <= size - len;
}

/* An element pop returned: ids, counts and every iovec inside guest memory. */
static void check_elem(const struct vh_devq_elem *e, unsigned int num,
		       uint8_t *a, bool two)
{
	uint64_t out = 0, in = 0;
	unsigned int i;

	if (e->id >= num || e->out_num + e->in_num > e->iov_max ||
	    e->ndescs == 0 || e->ndescs > num)
		abort();
	for (i = 0; i < e->out_num + e->in_num; i++) {
		const struct iovec *v = &e->iov[i];

		if (!v->iov_len ||
		    !(inside(v->iov_base, v->iov_len, a, A_SIZE) ||
		      (two && inside(v->iov_base, v->iov_len, host_b, B_SIZE))))
			abort();
		/* touch every byte: ASan would see a stray pointer */
		memset(v->iov_base, 0xee, v->iov_len);
		if (i < e->out_num)
			out += v->iov_len;
		else
			in += v->iov_len;
	}
	if (out != e->out_len || in != e->in_len)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iovec iov[1024];
	struct vh_devq_addr addr;
	struct vh_devq *vr;
	struct vh_mem *mem;
	unsigned int num, pops;
	uint64_t features = 1ull << VIRTIO_F_VERSION_1;
	uint8_t *a;
	unsigned int iov_max;
	uint16_t base;
	bool two, batch, packed, infl;
	uint8_t *region = NULL;
	size_t rlen = 0;

	setup();
	if (size < 4)
		return 0;
	num = 1u << (data[0] % 9);
	if (data[1] & 1)
		features |= 1ull << VIRTIO_RING_F_INDIRECT_DESC;
	if (data[1] & 2)
		features |= 1ull << VIRTIO_RING_F_EVENT_IDX;
	two = data[1] & 8;
	batch = data[1] & 16; /* vh_devq_pop_batch / push_batch */
	iov_max = (data[1] & 4) ? 3 : 1024 / BATCH;
	memcpy(&base, data + 2, 2);
	packed = data[1] & 32;
	if (packed && (data[0] & 0x80))
		num = 1u + (data[0] & 0x7f);
	if (packed) {
		features |= 1ull << VIRTIO_F_RING_PACKED;
		base = (uint16_t)((base & 0x8000) | (base & 0x7fff) % num);
	}
	infl = packed && (data[1] & 64);
	data += 4;
	size -= 4;
	if (infl) {
		/* 8-byte aligned, as a mapping is; zeros past the input */
		rlen = 32 + 32 * (size_t)num;
		region = aligned_alloc(8, rlen);
		if (!region)
			abort();
		memset(region, 0, rlen);
		if (size >= rlen) {
			memcpy(region, data + size - rlen, rlen);
			size -= rlen;
		} else {
			memcpy(region, data, size);
			size = 0;
		}
	}

	mem = two ? mem_ab : mem_a;
	a = two ? host_b_a : host_a;
	memset(a, 0, A_SIZE);
	memcpy(a, data, size < A_SIZE ? size : A_SIZE);
	if (two) {
		memset(host_b, 0, B_SIZE);
		if (size > A_SIZE)
			memcpy(host_b, data + A_SIZE,
			       size - A_SIZE < B_SIZE ? size - A_SIZE : B_SIZE);
	}

	if (vh_devq_new(ctx, mem, 0, &vr))
		abort();
	/*
	 * rings at the start of A: desc, avail right after, used at 4 KiB
	 * (packed: descriptor ring, then the two event suppression areas)
	 */
	memset(&addr, 0, sizeof(addr));
	addr.desc = A_GPA;
	addr.avail = A_GPA + 16ull * num;
	addr.used = A_GPA + 0x1000 + 8ull * num;
	if (vh_devq_set_features(vr, features) || vh_devq_set_num(vr, num) ||
	    vh_devq_set_addr(vr, &addr) || vh_devq_set_base(vr, base))
		abort();
	if (infl) {
		struct vh_devq_elem e = { .iov = iov, .iov_max = iov_max };
		int n = vh_devq_set_inflight(vr, region, rlen), ret;

		/* a region is refused, or recovered with <= num chains */
		if (n != -EINVAL && (n < 0 || (unsigned int)n > num))
			abort();
		while (n > 0 && (ret = vh_devq_pop_inflight(vr, &e)) == 1) {
			check_elem(&e, num, a, two);
			if (vh_devq_push(vr, e.id, e.in_len))
				abort();
		}
	}

	for (pops = 0; pops < num + 2; pops++) {
		struct vh_devq_elem es[BATCH];
		struct vh_devq_used_elem used[BATCH];
		unsigned int n = batch ? BATCH : 1, k;
		int ret;

		for (k = 0; k < n; k++) {
			es[k].iov = iov + k * (1024 / BATCH);
			es[k].iov_max = iov_max;
		}
		ret = batch ? vh_devq_pop_batch(vr, es, n) :
			      vh_devq_pop(vr, &es[0]);
		if (ret == 0 || ret == -ENOBUFS)
			break;
		if (ret == -EIO) {
			if (vh_devq_is_broken(vr) != 1 ||
			    vh_devq_pop(vr, &es[0]) != -EIO)
				abort();
			break;
		}
		if (ret < 1 || (unsigned int)ret > n)
			abort();
		for (k = 0; k < (unsigned int)ret; k++) {
			check_elem(&es[k], num, a, two);
			used[k].id = es[k].id;
			used[k].len = es[k].in_len;
		}
		ret = batch ? vh_devq_push_batch(vr, used, (unsigned int)ret) :
			      vh_devq_push(vr, es[0].id, es[0].in_len);
		/*
		 * A batch pop returns what it popped before the ring broke;
		 * pushing them then releases them and writes nothing.
		 */
		if (ret == -EIO && batch && vh_devq_is_broken(vr) == 1)
			break;
		if (ret)
			abort();
		vh_devq_need_notify(vr);
	}
	if (vh_devq_inflight(vr) != 0)
		abort();
	vh_devq_unref(vr);
	free(region);
	return 0;
}
