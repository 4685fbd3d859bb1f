// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Split virtqueue, driver side (virtio 1.2, 2.7): what a guest driver does,
 * in userspace.  The device is not trusted either: the free list and the
 * per-head bookkeeping live in private memory, never in the shared ring, and
 * every used entry is checked against what we handed out.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "libvhost-internal.h"
#include "mem-internal.h"
#include "queue-internal.h"

VH_EXPORT size_t vh_drvq_ring_bytes(unsigned int num)
{
	size_t used_off;

	if (!vh_is_pow2_size(num))
		return 0;
	used_off = (vh_desc_bytes(num) + vh_avail_bytes(num) + 3) & ~(size_t)3;
	return used_off + vh_used_bytes(num);
}

int vh_drvq_break(struct vh_drvq *vq, const char *what, unsigned int v)
{
	if (!vq->broken)
		vh_err(vq->ctx, "vq %u: device returned %s %u: vq broken\n",
		       vq->index, what, v);
	vq->broken = true;
	return -EIO;
}

VH_EXPORT int vh_drvq_new(struct vh_ctx *ctx, struct vh_mem *mem,
			unsigned int index, unsigned int num,
			uint64_t ring_gpa, struct vh_drvq **out)
{
	size_t bytes = vh_drvq_ring_bytes(num);
	unsigned int hint = 0, i;
	struct vh_drvq *vq;
	uint8_t *host;

	if (!ctx || !mem || !out || !bytes || (ring_gpa & 15))
		return -EINVAL;
	vq = calloc(1, sizeof(*vq));
	if (!vq)
		return -ENOMEM;
	vq->next = calloc(num, sizeof(*vq->next));
	vq->heads = calloc(num, sizeof(*vq->heads));
	vq->table = vh_mem_table_get(mem);
	if (!vq->next || !vq->heads) {
		free(vq->next);
		free(vq->heads);
		vh_mem_table_put(vq->table);
		free(vq);
		return -ENOMEM;
	}
	host = ring_gpa <= UINT64_MAX - bytes ?
		       vh_mem_table_translate(vq->table, ring_gpa, bytes,
					      &hint) :
		       NULL;
	if (!host) {
		vh_err(ctx, "vq %u: ring at 0x%llx (%zu bytes) not in guest memory\n",
		       index, (unsigned long long)ring_gpa, bytes);
		free(vq->next);
		free(vq->heads);
		vh_mem_table_put(vq->table);
		free(vq);
		return -EFAULT;
	}
	memset(host, 0, bytes);
	vq->refcount = 1;
	vq->ctx = vh_ctx_ref(ctx);
	vq->mem = vh_mem_ref(mem);
	vq->index = index;
	vq->num = num;
	vq->mask = (uint16_t)(num - 1);
	vq->desc_gpa = ring_gpa;
	vq->avail_gpa = ring_gpa + vh_desc_bytes(num);
	vq->used_gpa = ring_gpa + (bytes - vh_used_bytes(num));
	vq->desc = (struct vh_desc *)(void *)host;
	vq->avail = (struct vh_avail *)(void *)(host + vh_desc_bytes(num));
	vq->used = (struct vh_used *)(void *)(host +
					       (bytes - vh_used_bytes(num)));
	for (i = 0; i + 1 < num; i++)
		vq->next[i] = (uint16_t)(i + 1);
	vq->free_head = 0;
	vq->num_free = num;
	vq->cb_enabled = true;
	vq->kick_fd = vq->call_fd = -1;
	*out = vq;
	return 0;
}

VH_EXPORT struct vh_drvq *vh_drvq_ref(struct vh_drvq *vq)
{
	if (vq)
		__atomic_add_fetch(&vq->refcount, 1, __ATOMIC_RELAXED);
	return vq;
}

VH_EXPORT struct vh_drvq *vh_drvq_unref(struct vh_drvq *vq)
{
	if (!vq)
		return NULL;
	if (__atomic_sub_fetch(&vq->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return vq;
	free(vq->next);
	free(vq->heads);
	vh_mem_table_put(vq->table);
	vh_mem_unref(vq->mem);
	vh_ctx_unref(vq->ctx);
	free(vq);
	return NULL;
}

VH_EXPORT int vh_drvq_set_features(struct vh_drvq *vq, uint64_t features)
{
	bool packed = features & (1ull << VIRTIO_F_RING_PACKED);

	if (!vq)
		return -EINVAL;
	if (packed != vq->packed) {
		/* another layout in the same memory: only while idle */
		if (vq->num_free != vq->num)
			return -EBUSY;
		vq->packed = packed;
		vq->event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
		vq->indirect = features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
		if (packed)
			return vh_drvq_packed_layout(vq);
		/* back to split: vh_drvq_new()'s layout */
		vq->avail_gpa = vq->desc_gpa + vh_desc_bytes(vq->num);
		vq->used_gpa = vq->desc_gpa + vh_drvq_ring_bytes(vq->num) -
			       vh_used_bytes(vq->num);
		vq->avail = (struct vh_avail *)(void *)((uint8_t *)vq->desc +
							vh_desc_bytes(vq->num));
		vq->used = (struct vh_used *)(void *)((uint8_t *)vq->desc +
						      (vq->used_gpa -
						       vq->desc_gpa));
		memset(vq->desc, 0, vh_drvq_ring_bytes(vq->num));
		vq->avail_idx = vq->kicked_avail = vq->last_used = 0;
		vq->added = 0;
		vq->avail_flags = 0;
	}
	vq->event_idx = features & (1ull << VIRTIO_RING_F_EVENT_IDX);
	vq->indirect = features & (1ull << VIRTIO_RING_F_INDIRECT_DESC);
	return 0;
}

VH_EXPORT unsigned int vh_drvq_get_num(const struct vh_drvq *vq)
{
	return vq ? vq->num : 0;
}

VH_EXPORT int vh_drvq_get_addrs(struct vh_drvq *vq, uint64_t *desc_gpa,
			      uint64_t *avail_gpa, uint64_t *used_gpa)
{
	if (!vq)
		return -EINVAL;
	if (desc_gpa)
		*desc_gpa = vq->desc_gpa;
	if (avail_gpa)
		*avail_gpa = vq->avail_gpa;
	if (used_gpa)
		*used_gpa = vq->used_gpa;
	return 0;
}

VH_EXPORT int vh_drvq_get_host_addrs(struct vh_drvq *vq, void **desc,
				   void **avail, void **used)
{
	if (!vq)
		return -EINVAL;
	if (desc)
		*desc = vq->desc;
	if (avail)
		*avail = vq->avail;
	if (used)
		*used = vq->used;
	return 0;
}

VH_EXPORT int vh_drvq_set_kick_fd(struct vh_drvq *vq, int fd)
{
	if (!vq)
		return -EINVAL;
	vq->kick_fd = fd < 0 ? -1 : fd;
	return 0;
}

VH_EXPORT int vh_drvq_set_call_fd(struct vh_drvq *vq, int fd)
{
	if (!vq)
		return -EINVAL;
	vq->call_fd = fd < 0 ? -1 : fd;
	return 0;
}

VH_EXPORT int vh_drvq_num_free(const struct vh_drvq *vq)
{
	return vq ? (int)vq->num_free : -EINVAL;
}

VH_EXPORT int vh_drvq_is_broken(const struct vh_drvq *vq)
{
	return vq ? vq->broken : -EINVAL;
}

static int check_sg(const struct vh_sg *sg, unsigned int out, unsigned int in,
		    void *token, uint32_t *in_len)
{
	uint64_t total = 0, w = 0;
	unsigned int i;

	if (!sg || !token || out + in == 0 || out + in < out)
		return -EINVAL;
	for (i = 0; i < out + in; i++) {
		if (!sg[i].len)
			return -EINVAL;
		total += sg[i].len;
		if (i >= out)
			w += sg[i].len;
	}
	if (total > UINT32_MAX)
		return -EINVAL;
	*in_len = (uint32_t)w;
	return 0;
}

/* Make head available and publish the index (2.7.13). */
static void expose(struct vh_drvq *vq, uint16_t head)
{
	__atomic_store_n(&vq->avail->ring[vq->avail_idx & vq->mask],
			 htole16(head), __ATOMIC_RELAXED);
	vq->avail_idx++;
	vq->added++;
	/* 2.7.13.3.1: descriptors and ring entry before the index */
	vh_store16(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
}

static void write_desc(struct vh_desc *d, uint64_t addr, uint32_t len,
		       uint16_t flags, uint16_t next)
{
	__atomic_store_n(&d->addr, htole64(addr), __ATOMIC_RELAXED);
	__atomic_store_n(&d->lfn, vh_desc_pack(len, flags, next),
			 __ATOMIC_RELAXED);
}

VH_EXPORT int vh_drvq_add(struct vh_drvq *vq, const struct vh_sg *sg,
			unsigned int out, unsigned int in, void *token)
{
	unsigned int n = out + in, i;
	uint16_t head, cur, last = 0;
	uint32_t in_len;
	int err;

	if (!vq)
		return -EINVAL;
	err = check_sg(sg, out, in, token, &in_len);
	if (err < 0)
		return err;
	if (vq->broken)
		return -EIO;
	if (n > vq->num_free)
		return -ENOSPC;
	if (vq->packed)
		return vh_drvq_packed_add(vq, sg, out, in, token, in_len,
					  false);
	head = cur = vq->free_head;
	for (i = 0; i < n; i++) {
		uint16_t flags = i >= out ? VH_DESC_F_WRITE : 0;

		if (i + 1 < n)
			flags |= VH_DESC_F_NEXT;
		write_desc(&vq->desc[cur], sg[i].addr, sg[i].len, flags,
			   vq->next[cur]);
		last = cur;
		cur = vq->next[cur];
	}
	vq->free_head = vq->next[last];
	vq->num_free -= n;
	vq->heads[head].token = token;
	vq->heads[head].in_len = in_len;
	vq->heads[head].ndescs = (uint16_t)n;
	expose(vq, head);
	return 0;
}

VH_EXPORT int vh_drvq_set_indirect_area(struct vh_drvq *vq, uint64_t gpa,
				      size_t size)
{
	unsigned int hint = 0;
	uint8_t *host;
	size_t slot;

	if (!vq || !size || gpa > UINT64_MAX - size)
		return -EINVAL;
	slot = (size / vq->num) & ~(size_t)15;
	if (!slot || (gpa & 15))
		return -EINVAL;
	host = vh_mem_table_translate(vq->table, gpa, size, &hint);
	if (!host)
		return -EFAULT;
	vq->ind_gpa = gpa;
	vq->ind_host = host;
	vq->ind_slot = slot;
	return 0;
}

VH_EXPORT int vh_drvq_add_indirect(struct vh_drvq *vq, const struct vh_sg *sg,
				 unsigned int out, unsigned int in,
				 void *token)
{
	unsigned int n = out + in, i;
	struct vh_desc *tbl;
	uint32_t in_len;
	uint16_t head;
	int err;

	if (!vq)
		return -EINVAL;
	err = check_sg(sg, out, in, token, &in_len);
	if (err < 0)
		return err;
	/* 2.7.5.3.1 / 2.8.7: not without VIRTIO_F_INDIRECT_DESC */
	if (!vq->ind_slot || !vq->indirect)
		return -EINVAL;
	if ((size_t)n * 16 > vq->ind_slot || n > UINT16_MAX)
		return -E2BIG;
	if (vq->broken)
		return -EIO;
	if (vq->num_free < 1)
		return -ENOSPC;
	if (vq->packed)
		return vh_drvq_packed_add(vq, sg, out, in, token, in_len,
					  true);
	head = vq->free_head;
	tbl = (struct vh_desc *)(void *)(vq->ind_host + head * vq->ind_slot);
	for (i = 0; i < n; i++) {
		uint16_t flags = i >= out ? VH_DESC_F_WRITE : 0;

		if (i + 1 < n)
			flags |= VH_DESC_F_NEXT;
		write_desc(&tbl[i], sg[i].addr, sg[i].len, flags,
			   (uint16_t)(i + 1));
	}
	write_desc(&vq->desc[head], vq->ind_gpa + head * vq->ind_slot,
		   n * 16, VH_DESC_F_INDIRECT, 0);
	vq->free_head = vq->next[head];
	vq->num_free--;
	vq->heads[head].token = token;
	vq->heads[head].in_len = in_len;
	vq->heads[head].ndescs = 1;
	expose(vq, head);
	return 0;
}

VH_EXPORT int vh_drvq_kick_prepare(struct vh_drvq *vq)
{
	uint16_t old, new_idx;

	if (!vq)
		return -EINVAL;
	if (vq->packed)
		return vh_drvq_packed_kick_prepare(vq);
	vh_store16(&vq->avail->idx, vq->avail_idx, __ATOMIC_RELEASE);
	/* the index store before reading the device's suppression state */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	old = vq->kicked_avail;
	new_idx = vq->avail_idx;
	vq->kicked_avail = new_idx;
	if (!vq->added)
		return 0; /* nothing new to tell */
	if (vq->event_idx) {
		/* 2.7.10: avail_event follows used->ring[num] */
		uint16_t ev = vh_load16((uint16_t *)&vq->used->ring[vq->num],
					__ATOMIC_RELAXED);
		/* 2^16 or more: the indexes cannot say, so tell */
		bool laps = vq->added > UINT16_MAX;

		vq->added = 0;
		return laps || vh_need_event(ev, new_idx, old);
	}
	vq->added = 0;
	return !(vh_load16(&vq->used->flags, __ATOMIC_RELAXED) &
		 VH_USED_F_NO_NOTIFY);
}

VH_EXPORT int vh_drvq_kick(struct vh_drvq *vq)
{
	int ret;

	ret = vh_drvq_kick_prepare(vq);
	if (ret <= 0)
		return ret;
	if (vq->kick_fd < 0)
		return 0;
	/* the back-end has the kick fd too: a full counter is a kick made */
	ret = vh_eventfd_signal(vq->kick_fd);
	return ret < 0 ? ret : 1;
}

static uint16_t *used_event(const struct vh_drvq *vq)
{
	return &vq->avail->ring[vq->num];
}

VH_EXPORT int vh_drvq_get_used(struct vh_drvq *vq, void **token, uint32_t *len)
{
	struct vh_used_elem *e;
	struct head_state *h;
	uint16_t idx, cur;
	uint32_t id, l;
	unsigned int i;

	if (!vq || !token || !len)
		return -EINVAL;
	if (vq->broken)
		return -EIO;
	if (vq->packed)
		return vh_drvq_packed_get_used(vq, token, len);
	idx = vh_load16(&vq->used->idx, __ATOMIC_ACQUIRE);
	if (idx == vq->last_used)
		return 0;
	/*
	 * 2.7.8: the device uses at most the chains in flight: those made
	 * available (avail_idx) and not yet taken back (last_used), not the
	 * descriptors they hold
	 */
	if ((uint16_t)(idx - vq->last_used) >
	    (uint16_t)(vq->avail_idx - vq->last_used))
		return vh_drvq_break(vq, "used idx advance",
				(uint16_t)(idx - vq->last_used));
	e = &vq->used->ring[vq->last_used & vq->mask];
	id = le32toh(__atomic_load_n(&e->id, __ATOMIC_RELAXED));
	l = le32toh(__atomic_load_n(&e->len, __ATOMIC_RELAXED));
	if (id >= vq->num || !vq->heads[id].token)
		return vh_drvq_break(vq, "id", id);
	h = &vq->heads[id];
	if (l > h->in_len)
		return vh_drvq_break(vq, "length", l);
	*token = h->token;
	*len = l;
	/* give the chain back: its links are our private copy */
	cur = (uint16_t)id;
	for (i = 1; i < h->ndescs; i++)
		cur = vq->next[cur];
	vq->next[cur] = vq->free_head;
	vq->free_head = (uint16_t)id;
	vq->num_free += h->ndescs;
	h->token = NULL;
	vq->last_used++;
	/*
	 * Keep asking for interrupts at the next entry (2.7.10), visible
	 * before the caller's next look at used->idx: else the device may
	 * read the old used_event after we read the old index, and neither
	 * side wakes the other (Linux: virtio_store_mb())
	 */
	if (vq->event_idx && vq->cb_enabled) {
		vh_store16(used_event(vq), vq->last_used, __ATOMIC_RELAXED);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	return 1;
}

VH_EXPORT int vh_drvq_enable_cb(struct vh_drvq *vq)
{
	if (!vq)
		return -EINVAL;
	/*
	 * A broken ring has nothing pending: what the device wrote there
	 * stays, and "entries pending" would send a caller's drain loop
	 * round for ever (get_used returns -EIO)
	 */
	if (vq->broken)
		return -EIO;
	vq->cb_enabled = true;
	if (vq->packed)
		return vh_drvq_packed_enable_cb(vq);
	if (vq->event_idx) {
		vh_store16(used_event(vq), vq->last_used, __ATOMIC_RELAXED);
	} else {
		vq->avail_flags &= (uint16_t)~VH_AVAIL_F_NO_INTERRUPT;
		vh_store16(&vq->avail->flags, vq->avail_flags,
			   __ATOMIC_RELAXED);
	}
	/* re-check after the store is visible: an entry used meanwhile */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return vh_load16(&vq->used->idx, __ATOMIC_ACQUIRE) != vq->last_used;
}

VH_EXPORT int vh_drvq_disable_cb(struct vh_drvq *vq)
{
	if (!vq)
		return -EINVAL;
	vq->cb_enabled = false;
	if (vq->packed)
		return vh_drvq_packed_disable_cb(vq);
	if (vq->event_idx) {
		/*
		 * Park used_event half a ring-index space ahead: the device
		 * will not reach it while callbacks are off.
		 */
		vh_store16(used_event(vq), (uint16_t)(vq->last_used + 0x8000),
			   __ATOMIC_RELAXED);
	} else {
		vq->avail_flags |= VH_AVAIL_F_NO_INTERRUPT;
		vh_store16(&vq->avail->flags, vq->avail_flags,
			   __ATOMIC_RELAXED);
	}
	return 0;
}
