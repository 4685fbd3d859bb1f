// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Packed virtqueue, device side: the inflight region (vhost-user.rst,
 * "Inflight I/O tracking", packed layout): attaching the front-end's
 * region, recovering what it says was in flight after a restart, and
 * resubmitting those chains in order.  The region is the front-end's
 * memory: every value read from it is checked before it is used.  What
 * pop records in it as it goes is devq-packed.c's.
 */
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_config.h>

#include "libvhost-internal.h"
#include "mem-internal.h"
#include "devq-packed-internal.h"
#include "iotlb-internal.h"

_Static_assert(sizeof(struct vh_infl_pdesc) == 32, "DescStatePacked");
_Static_assert(sizeof(struct vh_infl_pregion) == 32, "QueueRegionPacked");

#define INFL_VERSION 1

void vh_devq_packed_infl_detach(struct vh_devq *vr)
{
	free(vr->pk_infl_next);
	free(vr->pk_infl_saved);
	free(vr->pk_resub);
	vr->pk_infl = NULL;
	vh_devq_packed_limits(vr);
	vr->pk_infl_next = NULL;
	vr->pk_infl_saved = NULL;
	vr->pk_resub = NULL;
	vr->pk_resub_n = vr->pk_resub_next = 0;
	/* the chains never resubmitted give their room back */
	vr->pk_inflight_descs -= vr->pk_resub_descs < vr->pk_inflight_descs ?
					 vr->pk_resub_descs :
					 vr->pk_inflight_descs;
	vr->pk_resub_descs = 0;
	vr->pk_infl_free = 0;
	vr->pk_infl_ctr = 0;
}

/* Nothing to recover: a fresh free list at the front-end's positions. */
static void infl_init(struct vh_devq *vr, struct vh_infl_pregion *ir)
{
	unsigned int i, n = vr->size;

	memset(ir, 0, sizeof(*ir) + (size_t)n * sizeof(ir->desc[0]));
	for (i = 0; i < n; i++) {
		ir->desc[i].next = (uint16_t)(i + 1);
		vr->pk_infl_next[i] = (uint16_t)(i + 1);
	}
	ir->version = INFL_VERSION;
	ir->desc_num = (uint16_t)n;
	ir->used_idx = ir->old_used_idx = vr->pk_used;
	ir->used_wrap_counter = ir->old_used_wrap_counter = vr->pk_used_wrap;
	vr->pk_infl_free = 0;
	vr->pk_infl_ctr = 1;
}

struct infl_head {
	uint64_t counter;
	uint16_t entry;
};

static int infl_head_cmp(const void *a, const void *b)
{
	const struct infl_head *x = a, *y = b;

	if (x->counter != y->counter)
		return x->counter < y->counter ? -1 : 1;
	return (int)x->entry - (int)y->entry;
}

/*
 * The region's header, read once: the front-end can write the region at
 * any time, so what was checked is what is used (never read again).
 */
struct infl_hdr {
	uint16_t free_head, old_free_head;
	uint16_t used_idx, old_used_idx;
	uint8_t used_wrap_counter, old_used_wrap_counter;
};

/* one read of a field of the region (no load the compiler repeats) */
#define INFL_RD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

static void infl_hdr_read(const struct vh_infl_pregion *ir,
			  struct infl_hdr *h)
{
	h->free_head = INFL_RD(ir->free_head);
	h->old_free_head = INFL_RD(ir->old_free_head);
	h->used_idx = INFL_RD(ir->used_idx);
	h->old_used_idx = INFL_RD(ir->old_used_idx);
	h->used_wrap_counter = INFL_RD(ir->used_wrap_counter);
	h->old_used_wrap_counter = INFL_RD(ir->old_used_wrap_counter);
}

/*
 * "When reconnecting", step 1: commit or roll back a half-done batch,
 * decided on the checked header h (updated), written to the region.
 */
static bool infl_settle(struct vh_devq *vr, struct vh_infl_pregion *ir,
			struct infl_hdr *h)
{
	uint16_t want, flags;
	bool ow;

	if (h->used_idx == h->old_used_idx &&
	    h->used_wrap_counter == h->old_used_wrap_counter)
		return false;
	/*
	 * The old wrap counter from the positions, not from the region: a
	 * commit writes old_used_wrap_counter before old_used_idx, so a death
	 * between the two leaves the new counter beside the old index.  A
	 * batch is at most Queue Size descriptors: it crossed the end of the
	 * ring iff the new position is not past the old one.
	 */
	ow = h->used_idx <= h->old_used_idx ? !h->used_wrap_counter :
					      !!h->used_wrap_counter;
	/*
	 * The first used descriptor of a batch is written last: if the one
	 * at old_used_idx no longer has the available flags of its lap, the
	 * whole batch reached the driver.
	 */
	flags = pd_load_flags(&pk_ring(vr)[h->old_used_idx], __ATOMIC_ACQUIRE);
	want = ow ? VH_PDESC_F_AVAIL : VH_PDESC_F_USED;
	if ((flags & (VH_PDESC_F_AVAIL | VH_PDESC_F_USED)) != want) {
		h->old_free_head = h->free_head;
		h->old_used_wrap_counter = h->used_wrap_counter;
		h->old_used_idx = h->used_idx;
	} else {
		h->old_used_wrap_counter = ow;
	}
	ir->old_free_head = h->old_free_head;
	ir->old_used_wrap_counter = h->old_used_wrap_counter;
	ir->old_used_idx = h->old_used_idx;
	return true;
}

/*
 * Check the chain of head entry h (num entries linked by next, the last
 * one named by last, flags as a ring chain has them), copy it out and
 * mark its entries taken.  -EINVAL on anything a device never writes.
 */
static int infl_take_chain(struct vh_devq *vr,
			   const struct vh_infl_pregion *ir, uint16_t h,
			   uint8_t *seen, uint16_t *id_out, uint16_t *num_out)
{
	uint16_t num = INFL_RD(ir->desc[h].num);
	uint16_t last = INFL_RD(ir->desc[h].last), e = h, k;
	unsigned int n = vr->size;

	if (num == 0 || num > n) {
		vh_err(vr->ctx, "inflight: entry %u: %u descriptors\n", h, num);
		return -EINVAL;
	}
	for (k = 0; k < num; k++) {
		const struct vh_infl_pdesc *d;
		struct vh_infl_saved *sv;
		bool is_last = k + 1 == num;
		uint16_t next;

		if (e >= n || seen[e]) {
			vh_err(vr->ctx, "inflight: entry %u: chain through entry %u\n",
			       h, e);
			return -EINVAL;
		}
		d = &ir->desc[e];
		sv = &vr->pk_infl_saved[e];
		next = INFL_RD(d->next);
		seen[e] = 1;
		sv->addr = INFL_RD(d->addr);
		sv->len = INFL_RD(d->len);
		sv->flags = INFL_RD(d->flags);
		sv->id = INFL_RD(d->id);
		/* 2.8.6 / 2.8.7: NEXT on all but the last; INDIRECT alone */
		if (!!(sv->flags & VH_DESC_F_NEXT) == is_last ||
		    ((sv->flags & VH_DESC_F_INDIRECT) && num != 1)) {
			vh_err(vr->ctx, "inflight: entry %u: flags %#x\n", e,
			       sv->flags);
			return -EINVAL;
		}
		if (is_last) {
			if (e != last || sv->id >= n) {
				vh_err(vr->ctx, "inflight: entry %u: last %u, id %u\n",
				       h, last, sv->id);
				return -EINVAL;
			}
			*id_out = sv->id;
			break;
		}
		/* the chain's own links stay valid until it is pushed */
		vr->pk_infl_next[e] = next;
		e = next;
	}
	*num_out = num;
	return 0;
}

/*
 * "When reconnecting": settle the last batch, roll back to the old_*
 * values, clear the flags of the free list, collect the heads still in
 * flight.  Every value is the front-end's: the free list must not loop,
 * entries and ids stay below the ring size, each entry is free or in
 * exactly one chain, each id in one chain.
 */
static int infl_recover(struct vh_devq *vr, struct vh_infl_pregion *ir)
{
	unsigned int n = vr->size, i, nfree = 0, ndescs = 0, nheads = 0;
	struct infl_head *heads = NULL;
	uint8_t *seen = NULL, *ids = NULL;
	struct infl_hdr h;
	uint64_t ctr = 0;
	bool batch;
	uint16_t e;
	int r = -EINVAL;

	infl_hdr_read(ir, &h);
	if (h.free_head > n || h.old_free_head > n || h.used_idx >= n ||
	    h.old_used_idx >= n || h.used_wrap_counter > 1 ||
	    h.old_used_wrap_counter > 1) {
		vh_err(vr->ctx, "inflight: header out of range\n");
		return -EINVAL;
	}
	seen = calloc(n, 1);
	ids = calloc(n, 1);
	heads = calloc(n, sizeof(*heads));
	if (!seen || !ids || !heads) {
		r = -ENOMEM;
		goto out;
	}
	batch = infl_settle(vr, ir, &h);
	h.free_head = h.old_free_head;
	h.used_idx = h.old_used_idx;
	h.used_wrap_counter = h.old_used_wrap_counter;
	ir->free_head = h.free_head;
	ir->used_idx = h.used_idx;
	ir->used_wrap_counter = h.used_wrap_counter;
	/* the free list: n ends it; at most n entries, none twice */
	for (e = h.free_head; e != n; e = vr->pk_infl_next[e]) {
		if (e > n || seen[e]) {
			vh_err(vr->ctx, "inflight: free list through entry %u\n",
			       e);
			goto out;
		}
		seen[e] = 1;
		vr->pk_infl_next[e] = INFL_RD(ir->desc[e].next);
		ir->desc[e].inflight = 0;
		nfree++;
	}
	for (i = 0; i < n; i++) {
		uint8_t f = seen[i] ? 0 : INFL_RD(ir->desc[i].inflight);

		if (f == 0)
			continue;
		if (f != 1) {
			vh_err(vr->ctx, "inflight: entry %u: flag %u\n", i, f);
			goto out;
		}
		heads[nheads].counter = INFL_RD(ir->desc[i].counter);
		heads[nheads].entry = (uint16_t)i;
		nheads++;
	}
	for (i = 0; i < nheads; i++) {
		uint16_t id = 0, num = 0;

		if (seen[heads[i].entry]) {
			vh_err(vr->ctx, "inflight: entry %u in two chains\n",
			       heads[i].entry);
			goto out;
		}
		r = infl_take_chain(vr, ir, heads[i].entry, seen, &id, &num);
		if (r < 0)
			goto out;
		r = -EINVAL;
		if (ids[id]) {
			vh_err(vr->ctx, "inflight: buffer id %u twice\n", id);
			goto out;
		}
		ids[id] = 1;
		ndescs += num;
		/* no device pops 2^64 - 1 chains: the next would wrap */
		if (heads[i].counter == UINT64_MAX) {
			vh_err(vr->ctx, "inflight: entry %u: counter 2^64 - 1\n",
			       heads[i].entry);
			goto out;
		}
		if (heads[i].counter >= ctr)
			ctr = heads[i].counter + 1;
	}
	/* every entry is free or part of a chain in flight */
	if (nfree + ndescs != n) {
		vh_err(vr->ctx, "inflight: %u free and %u taken of %u entries\n",
		       nfree, ndescs, n);
		goto out;
	}
	/*
	 * The front-end cannot know the positions of a packed ring whose
	 * device died (GET_VRING_BASE had no answer; QEMU then sends what it
	 * had at the last stop), and it drops the region when the device is
	 * reset: the region's used position stands, and everything up to the
	 * chains in flight was consumed (a half-recorded chain is popped
	 * again).  Only a region at a fresh ring's position with nothing to
	 * redo, as GET_INFLIGHT_FD makes it (a migration target gets one),
	 * leaves the front-end's base standing; a ring that went round to
	 * that position again (every 2 * Queue Size descriptors) has the
	 * mark of a commit (INFL_PAD_USED), and its region stands too.
	 */
	if (!nheads && !batch && h.used_idx == 0 && h.used_wrap_counter &&
	    !ir->padding[INFL_PAD_USED]) {
		infl_init(vr, ir);
		r = 0;
		goto out;
	}
	if (vr->pk_used != h.used_idx ||
	    vr->pk_used_wrap != !!h.used_wrap_counter)
		vh_info(vr->ctx, "inflight: used position %u/%u from the region, not %u/%u\n",
			h.used_idx, h.used_wrap_counter, vr->pk_used,
			vr->pk_used_wrap);
	qsort(heads, nheads, sizeof(*heads), infl_head_cmp);
	for (i = 0; i < nheads; i++)
		vr->pk_resub[i] = heads[i].entry;
	vr->pk_resub_n = nheads;
	vr->pk_resub_next = 0;
	vr->pk_used = h.used_idx;
	vr->pk_used_wrap = h.used_wrap_counter;
	vr->pk_avail = vr->pk_used;
	vr->pk_avail_wrap = vr->pk_used_wrap;
	pk_advance(vr, &vr->pk_avail, &vr->pk_avail_wrap, ndescs);
	vh_devq_pk_wraps(vr);
	vr->used_ctr = 0;
	vr->signalled_valid = false;
	vr->avail_event_valid = false;
	vr->pk_infl_free = h.free_head;
	vr->pk_infl_ctr = ctr ? ctr : 1;
	/* nothing was popped (vh_devq_set_inflight() checked) */
	vr->pk_resub_descs = (uint16_t)ndescs;
	vr->pk_inflight_descs = ndescs;
	r = (int)nheads;
out:
	free(seen);
	free(ids);
	free(heads);
	return r;
}

VH_EXPORT int vh_devq_set_inflight(struct vh_devq *vr, void *region,
				   size_t len)
{
	struct vh_infl_pregion *ir = region;
	unsigned int n;
	int r;

	if (!vr)
		return -EINVAL;
	if (!vr->packed)
		return region ? -EOPNOTSUPP : 0;
	vh_devq_packed_infl_detach(vr);
	if (!region)
		return 0;
	if (!vr->ready)
		return vr->broken ? -EIO : -EINVAL;
	if ((uintptr_t)region & 7)
		return -EINVAL;
	/* before any pop: the region's state and the ring's must agree */
	if (vh_devq_inflight(vr))
		return -EBUSY;
	n = vr->size;
	if (len < sizeof(*ir) + (size_t)n * sizeof(ir->desc[0])) {
		vh_err(vr->ctx, "inflight: %zu bytes for %u descriptors\n", len,
		       n);
		return -EINVAL;
	}
	vr->pk_infl_next = calloc(n, sizeof(*vr->pk_infl_next));
	vr->pk_infl_saved = calloc(n, sizeof(*vr->pk_infl_saved));
	vr->pk_resub = calloc(n, sizeof(*vr->pk_resub));
	if (!vr->pk_infl_next || !vr->pk_infl_saved || !vr->pk_resub) {
		vh_devq_packed_infl_detach(vr);
		return -ENOMEM;
	}
	/* a region nobody wrote yet (version 0, "uninitialized buffer") */
	if (ir->version == 0 && ir->desc_num == 0) {
		infl_init(vr, ir);
		r = 0;
	} else if (ir->version != INFL_VERSION || ir->desc_num != n) {
		vh_err(vr->ctx, "inflight: version %u for %u descriptors, ring has %u\n",
		       ir->version, ir->desc_num, n);
		r = -EINVAL;
	} else {
		r = infl_recover(vr, ir);
	}
	if (r < 0) {
		vh_devq_packed_infl_detach(vr);
		return r;
	}
	vr->pk_infl = ir;
	vh_devq_packed_limits(vr);
	return r;
}

/* Record the writable direct buffers of a resubmitted chain for the log. */
static void infl_record(struct vh_devq *vr, uint16_t id, uint16_t h,
			uint16_t num)
{
	struct vh_pk_id *pi = &vr->pk_ids[id];
	uint16_t *link = &pi->wr, e = h, k;

	pi->ndescs = pk_complex_ndescs(num);
	pi->ind_gpa = 0;
	pi->ind_len = 0;
	pi->wr = VH_PK_NONE;
	for (k = 0; k < num; k++, e = vr->pk_infl_next[e]) {
		const struct vh_infl_saved *sv = &vr->pk_infl_saved[e];
		uint16_t r;

		if (sv->flags & VH_DESC_F_INDIRECT) {
			pi->ind_gpa = sv->addr;
			pi->ind_len = sv->len;
			continue;
		}
		if (!(sv->flags & VH_DESC_F_WRITE))
			continue;
		r = vr->pk_wr_free;
		if (r == VH_PK_NONE)
			break; /* cannot happen: checked in flight */
		vr->pk_wr_free = vr->pk_wr[r].next;
		vr->pk_wr[r].gpa = sv->addr;
		vr->pk_wr[r].len = sv->len;
		vr->pk_wr[r].next = VH_PK_NONE;
		*link = r;
		link = &vr->pk_wr[r].next;
	}
}

VH_EXPORT int vh_devq_pop_inflight(struct vh_devq *vr,
				   struct vh_devq_elem *elem)
{
	struct vh_devq_walk w;
	uint16_t h, e, num, id = 0;
	unsigned int k;
	int err;

	if (!vr || !elem)
		return -EINVAL;
	if (!vr->packed)
		return -EOPNOTSUPP;
	/* a chain that missed a translation comes again after the update */
	err = vh_devq_iotlb_prepare(vr);
	if (err < 0)
		return err;
	if (vh_unlikely(!vr->ready))
		return vr->broken ? -EIO : -EINVAL;
	if (!vr->pk_infl || vr->pk_resub_next >= vr->pk_resub_n)
		return 0;
	if (__atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE) != vr->table_gen) {
		err = vh_devq_switch_table(vr);
		if (err < 0)
			return err;
	}
	h = vr->pk_resub[vr->pk_resub_next];
	w = (struct vh_devq_walk){ .iov = elem->iov, .iov_max = elem->iov_max };
	/* the chain as checked and copied at recovery (shadow links) */
	vh_devq_irange_reset(vr);
	num = 0;
	for (e = h, k = 0; k < vr->size; k++) {
		const struct vh_infl_saved *sv = &vr->pk_infl_saved[e];

		if (sv->flags & VH_DESC_F_INDIRECT)
			err = vh_devq_packed_walk_indirect(vr, &w, sv->addr, sv->len);
		else
			err = vh_devq_add_buf(vr, &w, sv->addr, sv->len,
					      sv->flags & VH_DESC_F_WRITE);
		if (err < 0)
			return err;
		num++;
		if (!(sv->flags & VH_DESC_F_NEXT)) {
			id = sv->id;
			break;
		}
		e = vr->pk_infl_next[e];
	}
	if (w.nobufs)
		return -ENOBUFS;
	if (vr->head_table[id])
		return vh_devq_break(vr, "buffer id %u reused while in flight",
				     id);
	/* counted in flight since the recovery (pk_resub_descs) */
	if (num > vr->pk_resub_descs)
		return vh_devq_break(vr, "resubmitted chain of %u descriptors",
				     num);
	/* its buffers' translations stay until the push logged them */
	if (vh_unlikely(vr->iotlb_on))
		vh_devq_pin_itab(vr, id);
	infl_record(vr, id, h, num);
	vr->pk_iids[id].ient = h;
	vr->pk_iids[id].ilast = e;
	vr->head_table[id] = pk_head_entry(vr, &vr->pk_ids[id]);
	vr->cur_inflight++;
	vr->pk_resub_descs -= num;
	vr->pk_resub_next++;
	elem->id = id;
	elem->ndescs = num;
	vh_devq_elem_set_walk(elem, &w);
	return 1;
}
