// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Packed virtqueue, device side (virtio 1.3, 2.8), behind the vh_devq_*
 * calls of devq-split.c: they dispatch here once VIRTIO_F_RING_PACKED is
 * negotiated, so callers never branch on the layout.
 *
 * The driver is hostile, as for split rings: each descriptor is fetched once
 * into locals and checked (availability against the wrap counter, flags,
 * length, region bounds, buffer id range and reuse, chain length, the
 * number of descriptors in flight); a violation marks the ring broken.
 *
 * Positions: pk_avail / pk_used with their wrap counters (2.8.1).  For
 * notifications a position is also read as r = pos + (wrap ? 0 : size), a
 * number in [0, 2 * size) that grows by one per descriptor, modulo 2 * size.
 *
 * Dirty log: a used descriptor overwrites a ring slot, possibly one of a
 * chain still in flight (completions out of order), so a chain cannot be
 * walked again at push as split does.  Its device-writable direct buffers
 * are recorded at pop in pk_wr[] (at most size of them: the descriptors in
 * flight never exceed the ring); an indirect table is walked again, before
 * the used descriptor is written (the driver may reuse the table once it
 * sees it).
 *
 * Inflight region (vhost-user.rst, "Inflight I/O tracking", packed): for
 * the same reason the chains in flight are recorded descriptor by
 * descriptor in the front-end's region (vh_devq_set_inflight()), and a
 * restarted device resubmits them from there.  The region is the
 * front-end's memory: at run time it is only written (free list and ids
 * in shadows), and at recovery every value is checked before it is used
 * (devq-packed-infl.c).
 */
#include <stdlib.h>
#include <string.h>

#include <linux/vhost_types.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "iotlb-internal.h"
#include "libvhost-internal.h"
#include "mem-internal.h"
#include "devq-packed-internal.h"
#include "queue-internal.h"

/* driver area: the driver's event suppression (used buffer notifications) */
static inline struct vh_pevent *pk_drv_event(const struct vh_devq *vr)
{
	return (struct vh_pevent *)(void *)vr->avail;
}

/* device area: ours (available buffer notifications) */
static inline struct vh_pevent *pk_dev_event(const struct vh_devq *vr)
{
	return (struct vh_pevent *)(void *)vr->used;
}

static inline uint32_t pd_len(uint64_t lif)
{
	return (uint32_t)lif;
}

static inline uint16_t pd_id(uint64_t lif)
{
	return (uint16_t)(lif >> 32);
}

static inline uint16_t pd_flags(uint64_t lif)
{
	return (uint16_t)(lif >> 48);
}

/* 2.8.1: available: AVAIL equals the wrap counter and USED does not */
static inline bool pd_avail(uint16_t flags, bool wrap)
{
	return !!(flags & VH_PDESC_F_AVAIL) == wrap &&
	       !!(flags & VH_PDESC_F_USED) != wrap;
}

static inline uint32_t pk_r(const struct vh_devq *vr, uint16_t pos,
			    bool wrap)
{
	return pos + (wrap ? 0 : vr->size);
}

/* ---------------------------------------------------------------------- */
/* setup                                                                  */
/* ---------------------------------------------------------------------- */

void vh_devq_packed_forget(struct vh_devq *vr)
{
	unsigned int i;

	/* the rings go away: what was tracked stays in the region */
	vh_devq_packed_infl_detach(vr);
	vr->pk_inflight_descs = 0;
	vr->pk_wr_free = VH_PK_NONE;
	if (!vr->pk_wr || !vr->pk_ids)
		return;
	for (i = 0; i < vr->size; i++) {
		vr->pk_wr[i].next = i + 1 < vr->size ? (uint16_t)(i + 1) :
						       VH_PK_NONE;
		vr->pk_ids[i].wr = VH_PK_NONE;
		vr->pk_ids[i].ndescs = pk_complex_ndescs(1);
	}
	vr->pk_wr_free = vr->size ? 0 : VH_PK_NONE;
}

int vh_devq_packed_prepare(struct vh_devq *vr)
{
	struct vh_pk_id *ids = calloc(vr->size, sizeof(*ids));
	struct vh_pk_iid *iids = calloc(vr->size, sizeof(*iids));
	struct vh_pk_wr *wr = calloc(vr->size, sizeof(*wr));

	if (!ids || !iids || !wr) {
		free(ids);
		free(iids);
		free(wr);
		return -ENOMEM;
	}
	free(vr->pk_ids);
	free(vr->pk_iids);
	free(vr->pk_wr);
	vr->pk_ids = ids;
	vr->pk_iids = iids;
	vr->pk_wr = wr;
	vh_devq_packed_forget(vr);
	return 0;
}

void vh_devq_packed_free(struct vh_devq *vr)
{
	vh_devq_packed_infl_detach(vr);
	free(vr->pk_ids);
	free(vr->pk_iids);
	free(vr->pk_wr);
	vr->pk_ids = NULL;
	vr->pk_iids = NULL;
	vr->pk_wr = NULL;
	vr->pk_push_limit = 0;
	vr->pk_pop_limit = 0;
	vr->pk_inflight_descs = 0;
}

/* The rings were (re)mapped: map_rings() set ready. */
void vh_devq_packed_mapped(struct vh_devq *vr)
{
	vr->last_avail = vr->shadow_avail = 0;
	vr->signalled_valid = false;
	vr->avail_event_valid = false;
	if (!vr->pk_ids || !vr->pk_wr)
		vh_devq_break(vr, "no per-buffer state");
	else if (vr->pk_avail >= vr->size || vr->pk_used >= vr->size)
		vh_devq_break(vr, "base %u/%u beyond the ring size %u",
			      vr->pk_avail, vr->pk_used, vr->size);
}

/*
 * vhost-user.rst, "vring descriptor indices for packed virtqueues": bits
 * 0-14 the next available position, 15 its wrap counter, 16-30 the next
 * used position, 31 its wrap counter.  A front-end that sends only the
 * lower half (DPDK virtio-user) means used = avail: nothing in flight.
 */
int vh_devq_packed_set_base(struct vh_devq *vr, uint32_t base)
{
	uint16_t avail = base & 0x7fff, used = (base >> 16) & 0x7fff;
	bool aw = base & 0x8000, uw = base & 0x80000000u;

	if (!(base >> 16)) {
		used = avail;
		uw = aw;
	}
	if (vr->size && (avail >= vr->size || used >= vr->size))
		return -EINVAL;
	vr->pk_avail = avail;
	vr->pk_avail_wrap = aw;
	vr->pk_used = used;
	vr->pk_used_wrap = uw;
	vh_devq_pk_wraps(vr);
	vr->used_ctr = 0;
	vr->signalled_valid = false;
	vr->avail_event_valid = false;
	return 0;
}

uint32_t vh_devq_packed_get_base(const struct vh_devq *vr)
{
	return (uint32_t)vr->pk_avail | (uint32_t)vr->pk_avail_wrap << 15 |
	       (uint32_t)vr->pk_used << 16 | (uint32_t)vr->pk_used_wrap << 31;
}

/* ---------------------------------------------------------------------- */
/* event suppression                                                      */
/* ---------------------------------------------------------------------- */

/* Write our event suppression structure as one 32-bit store. */
static void pk_write_dev_event(struct vh_devq *vr, uint16_t off_wrap,
			       uint16_t flags)
{
	struct vh_pevent ev = { htole16(off_wrap), htole16(flags) };
	uint32_t v;

	memcpy(&v, &ev, sizeof(v));
	__atomic_store_n((uint32_t *)(void *)pk_dev_event(vr), v,
			 __ATOMIC_RELAXED);
	vh_devq_log_used_area(vr, 0, sizeof(ev));
}

static inline uint16_t pk_avail_off_wrap(const struct vh_devq *vr)
{
	return (uint16_t)(vr->pk_avail | vr->pk_avail_wrap << 15);
}

/* 1 if the descriptor at the next available position is available. */
static inline bool pk_peek(const struct vh_devq *vr)
{
	return pd_avail(pd_load_flags(&pk_ring(vr)[vr->pk_avail],
				      __ATOMIC_ACQUIRE),
			vr->pk_avail_wrap);
}

/*
 * The ring looked empty: with event idx and notifications on, ask for a
 * kick at the next available position (2.8.10 DESC) and re-check after a
 * full fence, so a buffer made available meanwhile is seen or kicked.
 */
static int pk_rearm(struct vh_devq *vr)
{
	uint16_t ow = pk_avail_off_wrap(vr);

	if (!vr->event_idx || !vr->notify_enabled ||
	    (vr->avail_event_valid && vr->pk_ev_written == ow))
		return 0;
	pk_write_dev_event(vr, ow, VH_PEVENT_DESC);
	vr->pk_ev_written = ow;
	vr->avail_event_valid = true;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return pk_peek(vr);
}

int vh_devq_packed_enable_notification(struct vh_devq *vr)
{
	if (vr->event_idx) {
		uint16_t ow = pk_avail_off_wrap(vr);

		pk_write_dev_event(vr, ow, VH_PEVENT_DESC);
		vr->pk_ev_written = ow;
		vr->avail_event_valid = true;
	} else {
		pk_write_dev_event(vr, 0, VH_PEVENT_ENABLE);
	}
	/* 2.8.10: re-check after the event store is visible */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return pk_peek(vr);
}

int vh_devq_packed_disable_notification(struct vh_devq *vr)
{
	pk_write_dev_event(vr, pk_avail_off_wrap(vr), VH_PEVENT_DISABLE);
	vr->avail_event_valid = false;
	return 0;
}

/*
 * 2.8.10: the driver's event suppression structure says whether it wants
 * a used buffer notification for what was pushed since the last one.
 */
int vh_devq_packed_need_notify(struct vh_devq *vr)
{
	uint32_t m = 2 * vr->size, new_r, old_r, ev_r, v;
	struct vh_pevent ev;
	uint16_t off_wrap, flags, off;
	bool valid;

	/* order the used descriptor stores before reading the event */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* 6.3 VIRTIO_F_NOTIFY_ON_EMPTY: notify when the ring runs empty */
	if (vh_devq_has_feature(vr, VIRTIO_F_NOTIFY_ON_EMPTY) &&
	    vh_devq_inflight(vr) == 0 && !pk_peek(vr))
		return 1;
	v = __atomic_load_n((const uint32_t *)(const void *)pk_drv_event(vr),
			    __ATOMIC_RELAXED);
	memcpy(&ev, &v, sizeof(ev));
	off_wrap = le16toh(ev.off_wrap);
	flags = le16toh(ev.flags);
	new_r = pk_r(vr, vr->pk_used, vr->pk_used_wrap);
	old_r = vr->pk_signalled_r;
	/*
	 * 2 * size positions apart could not be told from 0: the positions
	 * used since, from used_ctr + pk_used (see struct vh_devq)
	 */
	valid = vr->signalled_valid &&
		vr->used_ctr + vr->pk_used - vr->signalled_ctr < vr->size;
	vr->pk_signalled_r = new_r;
	vr->signalled_ctr = vr->used_ctr + vr->pk_used;
	vr->signalled_valid = true;
	if (flags == VH_PEVENT_DISABLE)
		return 0;
	/* ENABLE, or a value we do not know: notify */
	if (flags != VH_PEVENT_DESC || !vr->event_idx || !valid)
		return 1;
	off = off_wrap & 0x7fff;
	if (off >= vr->size)
		return 1;
	ev_r = pk_r(vr, off, off_wrap >> 15);
	/* the event position among those written since the last notify */
	return (new_r + m - ev_r - 1) % m < (new_r + m - old_r) % m;
}

int vh_devq_packed_avail_count(struct vh_devq *vr, uint16_t *n)
{
	uint16_t pos = vr->pk_avail;
	bool wrap = vr->pk_avail_wrap;
	unsigned int i, max = vr->size - vr->pk_inflight_descs, cnt = 0;

	for (i = 0; i < max; i++) {
		uint16_t f = pd_load_flags(&pk_ring(vr)[pos],
					   __ATOMIC_ACQUIRE);

		if (!pd_avail(f, wrap))
			break;
		if (!(f & VH_DESC_F_NEXT))
			cnt++;
		pk_advance(vr, &pos, &wrap, 1);
	}
	*n = (uint16_t)cnt;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* pop                                                                    */
/* ---------------------------------------------------------------------- */

static void load_pdesc(const struct vh_pdesc *d, bool aligned,
		       uint64_t *addr, uint64_t *lif)
{
	if (vh_likely(aligned)) {
		*addr = le64toh(__atomic_load_n(&d->addr, __ATOMIC_RELAXED));
		*lif = le64toh(__atomic_load_n(&d->lif, __ATOMIC_RELAXED));
	} else {
		struct vh_pdesc copy;

		memcpy(&copy, d, sizeof(copy)); /* one fetch into a local */
		*addr = le64toh(copy.addr);
		*lif = le64toh(copy.lif);
	}
}

/* 2.8.7: an indirect table: len / 16 descriptors, only WRITE counts. */
int vh_devq_packed_walk_indirect(struct vh_devq *vr, struct vh_devq_walk *w,
				  uint64_t addr, uint32_t len)
{
	unsigned int hint = vr->hint, i;
	const struct vh_pdesc *tbl;
	bool aligned;
	int err;

	if (!vh_devq_has_feature(vr, VIRTIO_RING_F_INDIRECT_DESC))
		return vh_devq_break(vr, "indirect descriptor not negotiated");
	if (!len || len % 16 ||
	    len / 16 > (unsigned int)vh_devq_max_indirect(vr))
		return vh_devq_break(vr, "bad indirect table length %u", len);
	if (addr > UINT64_MAX - len)
		return vh_devq_break(vr, "indirect table wraps");
	if (vh_unlikely(vr->iotlb_on)) {
		uint64_t miss = addr;

		/* an IOVA: a miss leaves the buffer available (-EAGAIN) */
		tbl = vh_iotlb_table_translate(vr->itab, addr, len,
					       VH_IOTLB_RO, &miss, &err);
		if (tbl)
			vh_devq_irange_add(vr, addr, len);
		if (!tbl && err == -EAGAIN) {
			vh_iotlb_miss(vr->iotlb, miss, VH_IOTLB_RO);
			return err;
		}
	} else {
		tbl = vh_mem_table_translate(vr->table, addr, len, &hint);
	}
	if (!tbl)
		return vh_devq_break(vr, "indirect table 0x%llx+%u not inside one region",
				     (unsigned long long)addr, len);
	aligned = ((uintptr_t)tbl & 7) == 0;
	for (i = 0; i < len / 16; i++) {
		uint64_t a, lif;

		load_pdesc(&tbl[i], aligned, &a, &lif);
		err = vh_devq_add_buf(vr, w, a, pd_len(lif),
				      pd_flags(lif) & VH_DESC_F_WRITE);
		if (err < 0)
			return err;
	}
	return 0;
}

struct pk_chain {
	uint16_t id, nring;
	uint32_t ind_len;
	uint64_t ind_gpa;
};

/*
 * Walk the buffer at the next available position (its head's flags were
 * seen available with acquire).  2.8.6: the descriptors of a chain follow
 * each other in the ring, every one available, the buffer id in the last.
 */
static int pk_walk(struct vh_devq *vr, struct vh_devq_walk *w,
		   struct pk_chain *c)
{
	const struct vh_pdesc *ring = pk_ring(vr);
	uint16_t pos = vr->pk_avail;
	bool wrap = vr->pk_avail_wrap;
	unsigned int nring = 0;
	uint64_t addr, lif;
	int err;

	vh_devq_irange_reset(vr);
	for (;;) {
		uint16_t flags;

		load_pdesc(&ring[pos], true, &addr, &lif);
		flags = pd_flags(lif);
		if (!pd_avail(flags, wrap))
			return vh_devq_break(vr, "descriptor %u of a chain not available",
					     pos);
		nring++;
		if (flags & VH_DESC_F_INDIRECT) {
			/* 2.8.7: not with NEXT, and the only descriptor */
			if ((flags & VH_DESC_F_NEXT) || nring != 1)
				return vh_devq_break(vr, "indirect descriptor %u in a chain",
						     pos);
			err = vh_devq_packed_walk_indirect(vr, w, addr, pd_len(lif));
			if (err < 0)
				return err;
			c->ind_gpa = addr;
			c->ind_len = pd_len(lif);
			break;
		}
		err = vh_devq_add_buf(vr, w, addr, pd_len(lif),
				      flags & VH_DESC_F_WRITE);
		if (err < 0)
			return err;
		if (!(flags & VH_DESC_F_NEXT))
			break;
		/* a chain holds at most Queue Size descriptors: cut loops */
		if (nring >= vr->size)
			return vh_devq_break(vr, "chain at %u longer than the ring",
					     vr->pk_avail);
		pk_advance(vr, &pos, &wrap, 1);
	}
	c->id = pd_id(lif);
	c->nring = (uint16_t)nring;
	return w->nobufs ? -ENOBUFS : 0;
}

/* Record the writable direct buffers of buffer id for the dirty log. */
static void pk_record(struct vh_devq *vr, const struct pk_chain *c)
{
	struct vh_pk_id *pi = &vr->pk_ids[c->id];
	const struct vh_pdesc *ring = pk_ring(vr);
	uint16_t pos = vr->pk_avail, *link = &pi->wr;
	bool wrap = vr->pk_avail_wrap;
	unsigned int i;

	pi->ndescs = pk_complex_ndescs(c->nring);
	pi->ind_gpa = c->ind_gpa;
	pi->ind_len = c->ind_len;
	pi->wr = VH_PK_NONE;
	if (c->ind_len)
		return;
	if (c->nring == 1) {
		uint64_t addr, lif;

		/* simple, as the fast path keeps it: no pk_wr record */
		load_pdesc(&ring[pos], true, &addr, &lif);
		pi->ndescs = c->id;
		pi->wr = pd_flags(lif) & VH_DESC_F_WRITE;
		pi->ind_gpa = addr;
		pi->ind_len = pd_len(lif);
		return;
	}
	for (i = 0; i < c->nring; i++) {
		uint64_t addr, lif;
		uint16_t r;

		load_pdesc(&ring[pos], true, &addr, &lif);
		pk_advance(vr, &pos, &wrap, 1);
		if (!(pd_flags(lif) & VH_DESC_F_WRITE))
			continue;
		r = vr->pk_wr_free;
		if (r == VH_PK_NONE)
			break; /* cannot happen: checked in flight */
		vr->pk_wr_free = vr->pk_wr[r].next;
		vr->pk_wr[r].gpa = addr;
		vr->pk_wr[r].len = pd_len(lif);
		vr->pk_wr[r].next = VH_PK_NONE;
		*link = r;
		link = &vr->pk_wr[r].next;
	}
}

/* ---------------------------------------------------------------------- */
/* inflight region: recording (vhost-user.rst, "Inflight I/O tracking")    */
/* ---------------------------------------------------------------------- */

/*
 * The region outlives a killed process, whose stores all land: only the
 * compiler may reorder them, so a compiler barrier orders each step.
 */
#define infl_barrier() __atomic_signal_fence(__ATOMIC_SEQ_CST)

/*
 * "When receiving available buffers from the driver": the nring
 * descriptors at the available position go into entries taken from the
 * free list, before the buffer is consumed (the position moves on after).
 */
static void pk_infl_pop(struct vh_devq *vr, struct vh_pk_iid *pi,
			uint16_t nring)
{
	struct vh_infl_pregion *ir = vr->pk_infl;
	const struct vh_pdesc *ring = pk_ring(vr);
	uint16_t head = vr->pk_infl_free, e = head, pos = vr->pk_avail, i;
	bool wrap = vr->pk_avail_wrap;

	/* the free list holds size - pk_inflight_descs >= nring entries */
	if (vh_unlikely(head >= vr->size))
		return;
	ir->desc[head].num = 0;
	ir->desc[head].counter = vr->pk_infl_ctr++;
	infl_barrier();
	ir->desc[head].inflight = 1;
	infl_barrier();
	for (i = 0; i < nring; i++) {
		struct vh_infl_pdesc *d;
		uint64_t addr, lif;

		if (vh_unlikely(e >= vr->size))
			break;
		d = &ir->desc[e];
		load_pdesc(&ring[pos], true, &addr, &lif);
		pk_advance(vr, &pos, &wrap, 1);
		if (i + 1 == nring) {
			ir->desc[head].last = e;
			pi->ilast = e;
		}
		ir->desc[head].num = (uint16_t)(i + 1);
		d->addr = addr;
		d->len = pd_len(lif);
		d->flags = pd_flags(lif);
		d->id = pd_id(lif);
		infl_barrier();
		e = vr->pk_infl_next[e];
		ir->free_head = e;
		infl_barrier();
	}
	ir->old_free_head = e;
	infl_barrier();
	vr->pk_infl_free = e;
	pi->ient = head;
}

/*
 * pk_infl_pop() for the one descriptor the fast path checked: the values
 * it loaded go into the region, in the same order of stores.
 */
static void pk_infl_pop_one(struct vh_devq *vr, struct vh_pk_iid *pi,
			    uint64_t addr, uint64_t lif)
{
	struct vh_infl_pregion *ir = vr->pk_infl;
	uint16_t head = vr->pk_infl_free, e;
	struct vh_infl_pdesc *d;

	/* the free list holds size - pk_inflight_descs >= 1 entries */
	if (vh_unlikely(head >= vr->size))
		return;
	d = &ir->desc[head];
	d->num = 0;
	d->counter = vr->pk_infl_ctr++;
	infl_barrier();
	d->inflight = 1;
	infl_barrier();
	d->last = head;
	pi->ilast = head;
	d->num = 1;
	d->addr = addr;
	d->len = pd_len(lif);
	d->flags = pd_flags(lif);
	d->id = pd_id(lif);
	infl_barrier();
	e = vr->pk_infl_next[head];
	ir->free_head = e;
	infl_barrier();
	ir->old_free_head = e;
	infl_barrier();
	vr->pk_infl_free = e;
	pi->ient = head;
}

/* the flags a fast-path descriptor has under the AVAIL, USED, NEXT, INDIRECT mask */
#define PK_FAST_MASK \
	(VH_PDESC_F_AVAIL | VH_PDESC_F_USED | VH_DESC_F_NEXT | VH_DESC_F_INDIRECT)

/* WRITE, in lif */
#define PK_LIF_WRITE ((uint64_t)VH_DESC_F_WRITE << 48)

/* VH_DESC_F_WRITE (bit 49 of lif) as a shift of 0 or 32 */
static inline unsigned int pd_wr_shift(uint64_t lif)
{
	return (unsigned int)(lif >> 44) & 32;
}

/* the upper half of lif: the id, and above it the flags under PK_FAST_MASK */
#define PK_FAST_HI ((uint32_t)PK_FAST_MASK << 16 | 0xffff)

/*
 * One descriptor of the common case (see pk_pop_run()): d at the next
 * available position, want the AVAIL/USED flags of its wrap counter as
 * pk_avail_want holds them.  True if it was popped into e; the caller
 * moves the position on.  The checks come one after the other, each on
 * values loaded once, so few values are live at a time.
 */
static inline __attribute__((always_inline)) bool
pk_pop_elem(struct vh_devq *vr, const struct vh_pdesc *d, uint32_t want,
	    struct vh_devq_elem *e, bool infl)
{
	uint64_t addr, lif, off, end;
	uint32_t len;
	size_t id;

	/*
	 * Flags, id and len in one read, whose acquire orders the read of
	 * addr after it: the record below copies this very lif, so it holds
	 * the id checked here.
	 */
	lif = le64toh(__atomic_load_n(&d->lif, __ATOMIC_ACQUIRE));
	/*
	 * One compare for two checks.  2.8.1: available: AVAIL equals the
	 * wrap counter, USED does not; and neither NEXT nor INDIRECT: the
	 * flags under the mask equal want, and the difference is the id.
	 * Any other flags leave a difference of 2^16 or more.  Buffer ids
	 * index our per-buffer state: below the queue size (at most 2^15).
	 */
	id = (uint32_t)(lif >> 32 & PK_FAST_HI) - want;
	/* 2.8.6: not reused in flight */
	if (vh_unlikely(id >= vr->size || vr->head_table[id] || !e->iov_max))
		return false;
	addr = le64toh(__atomic_load_n(&d->addr, __ATOMIC_RELAXED));
	len = pd_len(lif);
	off = addr - vr->c_gpa;
	/*
	 * end > off: no wrap and len > 0 (zero length breaks the ring in
	 * vh_devq_add_buf()); end <= c_size: inside the region.
	 */
	end = off + len;
	if (vh_unlikely(end > vr->c_size || end <= off))
		return false;
	vr->head_table[id] = vr->table;
	{
		struct vh_pk_id *pi = &vr->pk_ids[id];
		/*
		 * Simple: the descriptor as it is (see VH_PK_COMPLEX); on
		 * little endian its lif is ind_len, ndescs (the id checked
		 * above, below VH_DEVQ_MAX_SIZE) and wr
		 */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		_Static_assert(offsetof(struct vh_pk_id, ndescs) == 4 &&
				       offsetof(struct vh_pk_id, wr) == 6,
			       "vh_pk_id's first half is a lif");
		memcpy(pi, &lif, sizeof(lif));
#else
		pi->ind_len = len;
		pi->ndescs = (uint16_t)id;
		pi->wr = pd_flags(lif);
#endif
		pi->ind_gpa = addr;
	}
	if (infl)
		pk_infl_pop_one(vr, &vr->pk_iids[id], addr, lif);
	e->iov->iov_base = vr->c_host + off;
	e->iov->iov_len = len;
	elem_set_single(e, (uint32_t)id, len, pd_wr_shift(lif));
	return true;
}

/*
 * The common case, up to max of them: single direct descriptors inside the
 * region of the last hit, ids not in flight, on a ready ring whose snapshot
 * is current.  The ring state lives in locals, the ring is walked by
 * pointer up to its end (a run stops there; the caller comes back with the
 * wrap counter flipped), the descriptors in flight are bounded once for
 * the run.  Stops at the first descriptor that is not available or is
 * anything unusual: pk_pop_slow() decides on that one, reading everything
 * again.  infl and gen_seen are constants in each caller's copy: the
 * region's bookkeeping costs nothing without one, the snapshot is not
 * checked again where the caller saw it current.  Returns how many it
 * popped.
 */
static inline __attribute__((always_inline)) unsigned int
pk_pop_run(struct vh_devq *vr, struct vh_devq_elem *e, unsigned int max,
	   bool infl, bool gen_seen)
{
	const size_t pos = vr->pk_avail;
	/*
	 * available: AVAIL equals the wrap counter, USED does not (2.8.1);
	 * a single direct buffer: neither NEXT nor INDIRECT
	 */
	const uint32_t want = vr->pk_avail_want;
	const struct vh_pdesc *d = pk_ring(vr) + pos, *d_end;
	size_t cnt = max, room = vr->size - vr->pk_inflight_descs;
	bool to_end = false;
	unsigned int k;

	if (!gen_seen &&
	    vh_unlikely(__atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE) !=
			vr->table_gen))
		return 0;
	/* the driver cannot have more descriptors out than the ring holds */
	if (cnt > room)
		cnt = room;
	/* a run ends at the end of the ring */
	if (cnt >= vr->size - pos) {
		cnt = vr->size - pos;
		/* d_end is the end of the ring: a full run wraps */
		to_end = true;
	}
	d_end = d + cnt;
	for (; d != d_end; d++, e++)
		if (!pk_pop_elem(vr, d, want, e, infl))
			break;
	/* from vr again: fewer values stay live through the loop */
	k = (unsigned int)(d - (pk_ring(vr) + vr->pk_avail));
	vr->cur_inflight += k;
	vr->pk_inflight_descs += k;
	if (to_end && d == d_end) {
		vr->pk_avail = 0;
		vr->pk_avail_wrap = !vr->pk_avail_wrap;
		vh_devq_pk_wraps(vr);
	} else {
		vr->pk_avail = (uint16_t)(vr->pk_avail + k);
	}
	return k;
}

static __attribute__((noinline)) unsigned int
pk_pop_run_plain(struct vh_devq *vr, struct vh_devq_elem *e, unsigned int max)
{
	return pk_pop_run(vr, e, max, false, false);
}

static __attribute__((noinline)) unsigned int
pk_pop_run_infl(struct vh_devq *vr, struct vh_devq_elem *e, unsigned int max)
{
	return pk_pop_run(vr, e, max, true, false);
}

/* Anything but the fast path: a chain, an indirect table, a bad value. */
static __attribute__((noinline)) int pk_pop_slow(struct vh_devq *vr,
						 struct vh_devq_elem *elem)
{
	struct vh_devq_walk w = { .iov = elem->iov, .iov_max = elem->iov_max };
	struct pk_chain c = { 0 };
	int err;

	err = pk_walk(vr, &w, &c);
	if (err < 0)
		return err;
	/* buffer ids index our per-buffer state: below Queue Size */
	if (c.id >= vr->size)
		return vh_devq_break(vr, "buffer id %u out of range", c.id);
	/* 2.8.6: an id is not made available again before it is used */
	if (vr->head_table[c.id])
		return vh_devq_break(vr, "buffer id %u reused while in flight",
				     c.id);
	/* the driver cannot have more descriptors out than the ring holds */
	if (vr->pk_inflight_descs + c.nring > vr->size)
		return vh_devq_break(vr, "more than %u descriptors in flight",
				     vr->size);
	/* the buffers' IOTLB translations stay until the push (put_itab) */
	if (vh_unlikely(vr->iotlb_on))
		vh_devq_pin_itab(vr, c.id);
	pk_record(vr, &c);
	if (vr->pk_infl)
		pk_infl_pop(vr, &vr->pk_iids[c.id], c.nring);
	vr->head_table[c.id] = pk_head_entry(vr, &vr->pk_ids[c.id]);
	vr->cur_inflight++;
	vr->pk_inflight_descs += c.nring;
	pk_advance(vr, &vr->pk_avail, &vr->pk_avail_wrap, c.nring);
	vh_devq_pk_wraps(vr);
	/* the region of the last hit serves the fast path next time */
	if (vr->hint < vr->table->n && !vr->iotlb_on) {
		vr->c_gpa = vr->table->r[vr->hint].gpa;
		vr->c_size = vr->table->r[vr->hint].size;
		vr->c_host = vr->table->r[vr->hint].host;
	}
	elem->id = c.id;
	elem->ndescs = c.nring;
	vh_devq_elem_set_walk(elem, &w);
	return 1;
}

/*
 * vh_devq_pop() of a packed ring, which checked the snapshot (table_gen is
 * VR_GEN_OFF unless ready): the common case (pk_pop_run() for one
 * element, without its run set-up), else the general way.
 */
int vh_devq_packed_pop_entry(struct vh_devq *vr, struct vh_devq_elem *elem)
{
	unsigned int pos = vr->pk_avail;

	/*
	 * pk_pop_limit is 0 with an inflight region: every pop is recorded
	 * there, the general way
	 */
	if (vh_unlikely(vr->pk_inflight_descs >= vr->pk_pop_limit ||
			!pk_pop_elem(vr, &pk_ring(vr)[pos], vr->pk_avail_want,
				     elem, false)))
		return vh_devq_pop_general(vr, elem);
	vr->cur_inflight++;
	vr->pk_inflight_descs++;
	/* from vr again: fewer values stay live through the pop */
	pos = vr->pk_avail + 1u;
	if (pos == vr->size) {
		pos = 0;
		vr->pk_avail_wrap = !vr->pk_avail_wrap;
		vh_devq_pk_wraps(vr);
	}
	vr->pk_avail = (uint16_t)pos;
	return 1;
}

/* One element, on a ready ring with a current snapshot. */
static int pk_pop_one(struct vh_devq *vr, struct vh_devq_elem *elem)
{
	int err;

	if (!pk_peek(vr)) {
		err = pk_rearm(vr);
		if (err <= 0)
			return err;
	}
	return pk_pop_slow(vr, elem);
}

/* Called by pop_general() on a ready ring with a current snapshot. */
int vh_devq_packed_pop(struct vh_devq *vr, struct vh_devq_elem *elem)
{
	if (vh_likely(vr->pk_infl ? pk_pop_run_infl(vr, elem, 1) :
				    pk_pop_run_plain(vr, elem, 1)))
		return 1;
	return pk_pop_one(vr, elem);
}

/*
 * vh_devq_packed_pop_batch() from elems[i] on (the i before were popped):
 * runs of the common case, anything else one by one.
 */
static __attribute__((noinline)) int
pk_pop_batch_from(struct vh_devq *vr, struct vh_devq_elem *elems,
		  unsigned int n, unsigned int i)
{
	int ret;

	if (!vr->ready)
		return i ? (int)i : vr->broken ? -EIO : -EINVAL;
	while (i < n) {
		/* the region does not come or go inside a call */
		unsigned int k = vr->pk_infl ?
				 pk_pop_run_infl(vr, elems + i, n - i) :
				 pk_pop_run_plain(vr, elems + i, n - i);

		i += k;
		if (i == n)
			break;
		/* the run ended at the end of the ring: go on from slot 0 */
		if (k && vr->pk_avail == 0)
			continue;
		/*
		 * The run stopped: the end of the ring (pk_pop_slow() takes
		 * the next one whatever it is), an empty ring, a new
		 * snapshot, anything unusual.
		 */
		if (__atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE) !=
		    vr->table_gen) {
			ret = vh_devq_switch_table(vr);
			if (ret < 0)
				return i ? (int)i : ret;
		}
		ret = pk_pop_one(vr, &elems[i]);
		if (ret <= 0)
			return i ? (int)i : ret;
		i++;
	}
	return (int)i;
}

int vh_devq_packed_pop_batch(struct vh_devq *vr, struct vh_devq_elem *elems,
			     unsigned int n)
{
	return pk_pop_batch_from(vr, elems, n, 0);
}

/*
 * vh_devq_pop_batch() of a packed ring without an IOTLB, which saw the
 * snapshot current (packed_gen, so the ring is ready): the first run
 * here, without checking the snapshot again; the rest, if any, the
 * general way.
 */
int vh_devq_packed_pop_batch_entry(struct vh_devq *vr,
				   struct vh_devq_elem *elems, unsigned int n)
{
	unsigned int k = 0;

	if (vh_likely(!vr->pk_infl)) {
		k = pk_pop_run(vr, elems, n, false, true);
		if (vh_likely(k == n))
			return (int)n;
	}
	return pk_pop_batch_from(vr, elems, n, k);
}

/* ---------------------------------------------------------------------- */
/* push                                                                   */
/* ---------------------------------------------------------------------- */

/* Give back the log records of buffer id; the count of its descriptors. */
static uint16_t pk_release(struct vh_devq *vr, uint16_t id)
{
	struct vh_pk_id *pi = &vr->pk_ids[id];
	/* a simple record's wr is the descriptor's flags, not a record */
	uint16_t r = pk_id_simple(pi) ? VH_PK_NONE : pi->wr;
	uint16_t nd = pk_ndescs(pi);

	/* VH_PK_NONE is beyond any record index */
	while (r < vr->size) {
		uint16_t next = vr->pk_wr[r].next;

		vr->pk_wr[r].next = vr->pk_wr_free;
		vr->pk_wr_free = r;
		r = next;
	}
	pi->wr = VH_PK_NONE;
	pi->ndescs = pk_complex_ndescs(1);
	vr->pk_inflight_descs -= nd;
	return nd;
}

/* Host address of a ring slot back to its GPA, for the log; 0 if none. */
static bool pk_slot_gpa(const struct vh_devq *vr, uint16_t pos, uint64_t *gpa)
{
	const uint8_t *p = (const uint8_t *)&pk_ring(vr)[pos];
	const struct vh_mem_reg *r;

	r = vr->table ? vh_mem_table_host_search(vr->table, p) : NULL;
	if (!r)
		return false;
	*gpa = r->gpa + (uint64_t)(p - r->host);
	return true;
}

/*
 * Dirty-log the len bytes written into the buffers of a record that is not
 * simple: its pk_wr records, else its indirect table walked again.
 */
static void pk_mark_complex(struct vh_devq *vr,
			    const struct vh_iotlb_table *it,
			    const struct vh_mem_log *l,
			    const struct vh_pk_id *pi, uint32_t len)
{
	unsigned int hint = 0, i;
	const struct vh_pdesc *tbl;
	bool aligned;
	uint16_t r;

	for (r = pi->wr; r < vr->size && len; r = vr->pk_wr[r].next) {
		uint32_t n = vr->pk_wr[r].len < len ? vr->pk_wr[r].len : len;

		vh_devq_mark_log(vr, it, l, vr->pk_wr[r].gpa, n);
		len -= n;
	}
	if (pi->wr != VH_PK_NONE || !pi->ind_len || !len)
		return;
	if (vh_unlikely(vr->iotlb_on)) {
		int err;

		/* an IOVA, as the walk at pop translated it */
		tbl = vh_iotlb_table_translate(it, pi->ind_gpa,
					       pi->ind_len, VH_IOTLB_RO, NULL,
					       &err);
	} else {
		tbl = vh_mem_table_translate(vr->table, pi->ind_gpa,
					     pi->ind_len, &hint);
	}
	aligned = ((uintptr_t)tbl & 7) == 0;
	/* walked again: anything odd only ends the walk */
	for (i = 0; tbl && i < pi->ind_len / 16 && len; i++) {
		uint64_t a, lif;
		uint32_t n;

		load_pdesc(&tbl[i], aligned, &a, &lif);
		if (!(pd_flags(lif) & VH_DESC_F_WRITE))
			continue;
		n = pd_len(lif) < len ? pd_len(lif) : len;
		vh_devq_mark_log(vr, it, l, a, n);
		len -= n;
	}
}

/*
 * Dirty-log the len bytes pushing id wrote into its buffers.  Called
 * before its used descriptor is written: from then on the driver may
 * reuse the id's indirect table, and a walk after it logged the next
 * request's buffers, not these.
 */
static void pk_mark_bufs(struct vh_devq *vr, const struct vh_mem_log *l,
			 uint16_t id, uint32_t len)
{
	const struct vh_pk_id *pi = &vr->pk_ids[id];
	const struct vh_iotlb_table *it = vh_devq_elem_itab(vr, id);

	if (vr->log_all && !pk_id_simple(pi)) {
		pk_mark_complex(vr, it, l, pi, len);
	} else if (vr->log_all && (pi->wr & VH_DESC_F_WRITE) && len) {
		/* simple: wr is the descriptor's flags */
		vh_devq_mark_log(vr, it, l, pi->ind_gpa,
				 pi->ind_len < len ? pi->ind_len : len);
	}
}

/* Dirty-log the used descriptor written at slot pos (after the fact). */
static void pk_mark_slot(struct vh_devq *vr, const struct vh_mem_log *l,
			 uint16_t pos)
{
	uint64_t gpa;

	/*
	 * a slot of the descriptor ring, under the IOTLB by the GPAs of the
	 * entries the ring was mapped through (as mark_used() logs the
	 * device area)
	 */
	if (!vr->log_used)
		return;
	if (vr->iotlb_on) {
		if (vr->itab)
			vh_devq_mark_log(vr, vr->itab, l,
					 vr->addr.desc +
						 pos * sizeof(struct vh_pdesc),
					 sizeof(struct vh_pdesc));
	} else if (pk_slot_gpa(vr, pos, &gpa)) {
		vh_mem_log_mark(l, gpa, sizeof(struct vh_pdesc));
	}
}

/*
 * 2.8.9 / 2.8.21: write one used descriptor at pos: id, len and flags
 * (AVAIL and USED both equal to the wrap counter) as one 64-bit release
 * store, so the flags are never seen before the rest.  Under a dirty log,
 * the buffers are logged before it (see pk_mark_bufs()), the slot after.
 */
static void pk_store_used(struct vh_devq *vr, uint16_t pos, bool wrap,
			  uint16_t id, uint32_t len)
{
	const struct vh_mem_log *l = NULL;
	unsigned int e = 0;
	uint16_t flags;
	uint64_t lif;

	if (vh_unlikely(vr->log_any)) {
		l = vh_mem_log_enter(vr->mem, &e);
		pk_mark_bufs(vr, l, id, len);
	}
	flags = (wrap ? VH_PDESC_F_AVAIL | VH_PDESC_F_USED : 0) |
		(len ? VH_DESC_F_WRITE : 0);
	lif = (uint64_t)len | (uint64_t)id << 32 | (uint64_t)flags << 48;
	__atomic_store_n(&pk_ring(vr)[pos].lif, htole64(lif),
			 __ATOMIC_RELEASE);
	if (vh_unlikely(l)) {
		pk_mark_slot(vr, l, pos);
		vh_mem_log_exit(vr->mem, e);
	}
}

/*
 * Write the used descriptors of n checked ids.  2.8.21: the first one is
 * written last, so the driver (which reads in order) sees all or none,
 * and an inflight region can tell a batch done from one not begun by
 * that one descriptor ("When reconnecting").  With a region, the batch
 * goes through "When supplying used buffers to the driver": entries back
 * on the free list and the new used position first, then the used
 * descriptors, then the flags cleared and the old_* values committed.
 */
static void pk_commit(struct vh_devq *vr, const struct vh_devq_used_elem *used,
		      unsigned int n)
{
	struct vh_infl_pregion *ir = vr->pk_infl;
	uint16_t pos = vr->pk_used;
	bool wrap = vr->pk_used_wrap;
	unsigned int i, total = 0;

	if (ir) {
		for (i = 0; i < n; i++) {
			const struct vh_pk_iid *pi = &vr->pk_iids[used[i].id];

			ir->desc[pi->ilast].next = vr->pk_infl_free;
			vr->pk_infl_next[pi->ilast] = vr->pk_infl_free;
			vr->pk_infl_free = pi->ient;
		}
		ir->free_head = vr->pk_infl_free;
		for (i = 0; i < n; i++)
			pk_advance(vr, &pos, &wrap,
				   pk_ndescs(&vr->pk_ids[used[i].id]));
		/*
		 * The wrap counter before the index: a death between the two
		 * leaves the new counter beside the old index, which recovery
		 * reads as the batch not begun (infl_settle()).  The other
		 * way round, a batch that crossed the end of the ring left
		 * the new index beside the old counter, read as committed:
		 * its chains were lost.
		 */
		ir->used_wrap_counter = wrap;
		infl_barrier();
		ir->used_idx = pos;
		infl_barrier();
		pos = vr->pk_used;
		wrap = vr->pk_used_wrap;
	}
	pk_advance(vr, &pos, &wrap, pk_ndescs(&vr->pk_ids[used[0].id]));
	for (i = 1; i < n; i++) {
		uint16_t id = (uint16_t)used[i].id;

		pk_store_used(vr, pos, wrap, id, used[i].len);
		pk_advance(vr, &pos, &wrap, pk_ndescs(&vr->pk_ids[id]));
	}
	pk_store_used(vr, vr->pk_used, vr->pk_used_wrap, (uint16_t)used[0].id,
		      used[0].len);
	if (ir) {
		infl_barrier();
		for (i = 0; i < n; i++)
			ir->desc[vr->pk_iids[used[i].id].ient].inflight = 0;
		infl_barrier();
		ir->old_free_head = vr->pk_infl_free;
		ir->old_used_wrap_counter = wrap;
		ir->padding[INFL_PAD_USED] = 1;
		infl_barrier();
		ir->old_used_idx = pos;
		infl_barrier();
	}
	/*
	 * the device skips the descriptors of the whole chain (2.8.6);
	 * used_ctr + pk_used moves on by all of them
	 */
	for (i = 0; i < n; i++)
		total += pk_release(vr, (uint16_t)used[i].id);
	vr->used_ctr += vr->pk_used + total - pos;
	vr->pk_used = pos;
	vr->pk_used_wrap = wrap;
	vh_devq_pk_wraps(vr);
}


/*
 * The used descriptor of u, as lif: len, id, and the flags (2.8.9: AVAIL
 * and USED equal to the wrap counter, in wf; WRITE if len is not 0).  The
 * element is loaded as one u64: {id, len} in memory, lif holds them the
 * other way round.
 */
static inline uint64_t pk_used_lif(const struct vh_devq_used_elem *u,
				   uint64_t wf, uint32_t *id)
{
	uint64_t v;

	memcpy(&v, u, sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	v = v >> 32 | v << 32;
#endif
	*id = (uint32_t)(v >> 32);
	/* one of two constants (a conditional move), then one or */
	return v | ((uint32_t)v ? wf | PK_LIF_WRITE : wf);
}


/*
 * The common case of a push: n ids of single-descriptor buffers with
 * nothing to release (no pk_wr records: a writable buffer is kept in the
 * id's own record; any other id's head_table entry is tagged
 * VH_HT_COMPLEX and does not match), all popped under the current
 * snapshot of a ready ring, no dirty log, no inflight region.  Clearing each id's head as it
 * is checked also catches an id named twice.  The used descriptors after
 * the first are written while checking, one 64-bit store each, the ring
 * walked by pointer in (at most) two segments; the first one is written
 * last, with release (2.8.21): the driver, which reads in order, sees the
 * batch all or nothing.  On any surprise the heads cleared so far are put
 * back, the slots written are marked not used again (a later, shorter
 * push would otherwise leave one seen as used after its own), and the
 * general path decides.  The id records are not cleared: every pop
 * rewrites them.
 */
static inline __attribute__((always_inline)) bool
pk_push_fast(struct vh_devq *vr, const struct vh_devq_used_elem *used,
	     unsigned int n)
{
	struct vh_mem_table **const ht = vr->head_table;
	struct vh_mem_table *const t = vr->table;
	const unsigned int qsize = vr->size, p0 = vr->pk_used;
	struct vh_pdesc *const ring = pk_ring(vr);
	const struct vh_devq_used_elem *u = used + 1, *const u_end = used + n;
	const struct vh_devq_used_elem *seg_end;
	struct vh_pdesc *d;
	uint64_t wf, first;
	uint32_t id;

	/* table_gen is VR_GEN_OFF unless ready: ready implies pk_ids */
	if (vh_unlikely(__atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE) !=
				vr->table_gen ||
			vr->log_any || vr->pk_infl || vr->iotlb_on))
		return false;
	wf = vr->pk_used_wf;
	first = pk_used_lif(used, wf, &id);
	if (vh_unlikely(id >= qsize || ht[id] != t))
		return false;
	ht[id] = NULL;
	/* n <= qsize: the ids are distinct and below it */
	seg_end = n - 1 <= qsize - 1 - p0 ? u_end : u + (qsize - 1 - p0);
	d = &ring[p0 + 1];
	for (;;) {
		for (; u != seg_end; u++, d++) {
			uint64_t lif = pk_used_lif(u, wf, &id);

			if (vh_unlikely(id >= qsize || ht[id] != t))
				break;
			ht[id] = NULL;
			/* ordered by the release store of the first one */
			__atomic_store_n(&d->lif, htole64(lif),
					 __ATOMIC_RELAXED);
		}
		if (u != seg_end || u == u_end)
			break;
		/* the ring wraps: the other wrap counter from slot 0 */
		d = ring;
		wf ^= VH_PK_LIF_AU;
		seg_end = u_end;
	}
	if (vh_unlikely(u != u_end)) {
		unsigned int i, k = (unsigned int)(u - used);
		uint16_t pos = (uint16_t)p0;
		bool wrap = vr->pk_used_wrap;

		for (i = 0; i < k; i++) {
			ht[used[i].id] = t;
			if (!i)
				continue;
			pk_advance(vr, &pos, &wrap, 1);
			/* flags of the other wrap counter: not used */
			__atomic_store_n(&ring[pos].lif,
					 htole64(wrap ? 0 : VH_PK_LIF_AU),
					 __ATOMIC_RELAXED);
		}
		return false;
	}
	__atomic_store_n(&ring[p0].lif, htole64(first), __ATOMIC_RELEASE);
	vr->cur_inflight -= n;
	vr->pk_inflight_descs -= n;
	/* used_ctr + pk_used moves on by n (see struct vh_devq) */
	vr->used_ctr += p0 + n;
	pk_advance(vr, &vr->pk_used, &vr->pk_used_wrap, n);
	vr->used_ctr -= vr->pk_used;
	vh_devq_pk_wraps(vr);
	return true;
}

/*
 * vh_devq_push() of a packed ring, which checked the snapshot (table_gen
 * is VR_GEN_OFF unless ready): the common case of pk_push_fast() for one
 * id (pk_push_limit says the ring qualifies), else the general way.  One used
 * descriptor: its id, len and flags go out in one 64-bit release store.
 */
int vh_devq_packed_push_entry(struct vh_devq *vr, uint32_t id, uint32_t len)
{
	unsigned int pos;
	uint64_t lif;

	/* an id whose record is not simple has a tagged entry: no match */
	if (vh_unlikely(id >= vr->pk_push_limit ||
			vr->head_table[id] != vr->table))
		return vh_devq_push_general(vr, (uint16_t)id, len);
	vr->head_table[id] = NULL;
	/* 2.8.9: AVAIL and USED equal to the wrap counter; WRITE if len */
	lif = (uint64_t)len | (uint64_t)id << 32 |
	      (len ? vr->pk_used_wfw : vr->pk_used_wf);
	pos = vr->pk_used;
	__atomic_store_n(&pk_ring(vr)[pos].lif, htole64(lif),
			 __ATOMIC_RELEASE);
	vr->cur_inflight--;
	vr->pk_inflight_descs--;
	if (++pos == vr->size) {
		pos = 0;
		vr->pk_used_wrap = !vr->pk_used_wrap;
		vh_devq_pk_wraps(vr);
		/* used_ctr + pk_used moves on by one (see struct vh_devq) */
		vr->used_ctr += vr->size;
	}
	vr->pk_used = (uint16_t)pos;
	return 0;
}

int vh_devq_packed_push(struct vh_devq *vr, uint16_t id, uint32_t len)
{
	if (vh_likely(pk_push_fast(vr, &(struct vh_devq_used_elem){ id, len },
				   1)))
		return 0;
	/* a new snapshot may carry a new dirty log: move to it first */
	if (vr->ready &&
	    __atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE) != vr->table_gen)
		vh_devq_switch_table(vr);
	/* IOTLB: vh_devq_put_itab() lets the element's snapshot go, logged */
	if (vh_likely(id < vr->size && vr->head_table && !vr->iotlb_on &&
		      vr->head_table[id] == vr->table && vr->pk_ids)) {
		vr->head_table[id] = NULL;
		vr->cur_inflight--;
	} else if (!vr->pk_ids || !vh_devq_put_head(vr, id)) {
		return -EINVAL;
	}
	if (!vr->ready) {
		/* an element popped before the ring broke just goes away */
		pk_release(vr, id);
		vh_devq_put_itab(vr, id);
		return -EIO;
	}
	pk_commit(vr, &(struct vh_devq_used_elem){ id, len }, 1);
	vh_devq_put_itab(vr, id);
	return 0;
}

/*
 * pk_push_fast() for a batch that does not wrap the ring (n <= size -
 * pk_used, checked by the caller).  The snapshot, the log and the inflight
 * region are checked by the caller too.  One pass, unrolled (the loop's
 * compare and branch paid once per 8): each id is checked, its head
 * cleared and its used descriptor written, the first one last, with
 * release (2.8.21), so the driver sees the batch all or nothing.  On a
 * surprise the heads are put back and the slots written are marked not
 * used again (the flags of the other wrap counter), as in pk_push_fast().
 * (One pass, not a check pass then a write pass: 3 instructions an
 * element fewer, callgrind, scripts/bench-vring.)
 */
static inline __attribute__((always_inline)) bool
pk_push_run(struct vh_devq *vr, const struct vh_devq_used_elem *used,
	    unsigned int n)
{
	struct vh_pdesc *const ring = pk_ring(vr) + vr->pk_used;
	const uint64_t wf = vr->pk_used_wf, wfw = vr->pk_used_wfw;
	struct vh_mem_table **const ht = vr->head_table;
	struct vh_mem_table *const t = vr->table;
	const size_t qsize = vr->size;
	size_t k;

	/*
	 * The element is loaded as one u64: {id, len} in memory, lif holds
	 * them the other way round (see pk_used_lif()).  Few values stay
	 * live: the first descriptor is built again at the end.
	 */
	if (vh_unlikely(used->id >= qsize || ht[used->id] != t))
		return false;
	ht[used->id] = NULL;
#pragma GCC unroll 8
	for (k = 1; k < n; k++) {
		uint64_t v, lif;
		size_t id;

		memcpy(&v, &used[k], sizeof(v));
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		id = (uint32_t)v;
		lif = v >> 32 | v << 32;
#else
		id = v >> 32;
		lif = v;
#endif
		if (vh_unlikely(id >= qsize || ht[id] != t))
			break;
		ht[id] = NULL;
		/* 2.8.9: AVAIL and USED equal to the wrap counter; WRITE if len */
		lif |= (uint32_t)lif ? wfw : wf;
		/* ordered by the release store of the first one */
		__atomic_store_n(&ring[k].lif, htole64(lif), __ATOMIC_RELAXED);
	}
	if (vh_unlikely(k != n)) {
		while (k--) {
			ht[used[k].id] = t;
			if (k)
				__atomic_store_n(&ring[k].lif,
						 htole64(wf ^ VH_PK_LIF_AU),
						 __ATOMIC_RELAXED);
		}
		return false;
	}
	{
		uint32_t id;

		__atomic_store_n(&ring[0].lif,
				 htole64(pk_used_lif(used, wf, &id)),
				 __ATOMIC_RELEASE);
	}
	vr->cur_inflight -= n;
	vr->pk_inflight_descs -= n;
	if (vr->pk_used + n == qsize) {
		vr->pk_used = 0;
		vr->pk_used_wrap = !vr->pk_used_wrap;
		vh_devq_pk_wraps(vr);
		/* used_ctr + pk_used moves on by n (see struct vh_devq) */
		vr->used_ctr += qsize;
	} else {
		vr->pk_used = (uint16_t)(vr->pk_used + n);
	}
	return true;
}

/* vh_devq_packed_push_batch() but its most common case: every check. */
static __attribute__((noinline)) int
pk_push_batch_slow(struct vh_devq *vr, const struct vh_devq_used_elem *used,
		   unsigned int n)
{
	unsigned int i;
	int r;

	if (vh_likely(pk_push_fast(vr, used, n)))
		return 0;
	if (!vr->pk_ids)
		return -EINVAL;
	r = vh_devq_take_batch(vr, used, n);
	if (r < 0)
		return r;
	if (!vr->ready) {
		for (i = 0; i < n; i++)
			pk_release(vr, (uint16_t)used[i].id);
		vh_devq_put_itabs(vr, used, n);
		return -EIO;
	}
	pk_commit(vr, used, n);
	vh_devq_put_itabs(vr, used, n);
	return 0;
}

/*
 * vh_devq_push_batch() of a packed ring, which saw the snapshot current
 * (packed_gen, so the ring is ready) and n not 0.
 */
int vh_devq_packed_push_batch_entry(struct vh_devq *vr,
				    const struct vh_devq_used_elem *used,
				    unsigned int n)
{
	/*
	 * A batch of one is one push: vh_devq_push()'s path (which takes
	 * ids below 2^16; pk_push_limit is at most that)
	 */
	if (n == 1 && used->id < vr->pk_push_limit)
		return vh_devq_packed_push_entry(vr, used->id, used->len);
	/* pk_push_limit is not 0: ready, no IOTLB, no log, no region */
	if (vh_likely(vr->pk_push_limit && n <= vr->size - vr->pk_used &&
		      pk_push_run(vr, used, n)))
		return 0;
	return pk_push_batch_slow(vr, used, n);
}

int vh_devq_packed_push_batch(struct vh_devq *vr,
			      const struct vh_devq_used_elem *used,
			      unsigned int n)
{
	if (!n)
		return 0;
	/* table_gen is VR_GEN_OFF unless ready: ready implies pk_ids */
	if (__atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE) != vr->table_gen)
		return pk_push_batch_slow(vr, used, n);
	return vh_devq_packed_push_batch_entry(vr, used, n);
}

/*
 * The packed push fast paths (pk_push_limit): a ready packed ring with
 * neither an IOTLB nor a dirty log nor an inflight region.  Called by
 * update_log_flags() (readiness, IOTLB, log) and when a region comes or
 * goes.
 */
void vh_devq_packed_limits(struct vh_devq *vr)
{
	vr->pk_push_limit = vr->ready && vr->packed && vr->pk_ids &&
					    !vr->iotlb_on && !vr->log_any &&
					    !vr->pk_infl ?
				    vr->size :
				    0;
	vr->pk_pop_limit = vr->ready && vr->packed && vr->pk_ids &&
					   !vr->pk_infl ?
				   vr->size :
				   0;
}
