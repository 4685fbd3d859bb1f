// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Split virtqueue, device side (virtio 1.2, 2.7): pop, push, the dirty log
 * of what they write, notifications.  The API entry points live here:
 * their fast paths are the split layout's, and they hand packed rings to
 * devq-packed.c.  The object itself, its rings' mapping and its memory and
 * IOTLB snapshots are devq.c's.
 *
 * The driver is hostile: every index, flag, length and address read from the
 * ring is checked before use, each descriptor is fetched once into locals,
 * and a violation marks the ring broken for good (the device then needs a
 * reset, 2.1.2 DEVICE_NEEDS_RESET).
 */
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include <linux/vhost_types.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "iotlb-internal.h"
#include "libvhost-internal.h"
#include "mem-internal.h"
#include "queue-internal.h"

#if defined(__GNUC__) && !defined(__clang__)
/* (SLP-vectorizing the element stores costs more than it saves) */
#define VR_NO_SLP __attribute__((optimize("no-tree-slp-vectorize")))
#else
#define VR_NO_SLP
#endif

/* ---------------------------------------------------------------------- */
/* dirty log                                                              */
/* ---------------------------------------------------------------------- */

/*
 * Every mark goes to the vh_mem's newest log, inside a log section: a log
 * the front-end replaces (SET_LOG_BASE) is never written once the call
 * that replaced it has returned (mem.c), whatever snapshot the ring is
 * pinned to.  The pinned snapshot only says whether to log at all.
 */

/*
 * Log a host range by the guest addresses of the regions it lies in (a
 * range from the IOTLB may run on into an adjacent mapping).
 */
static void log_host(const struct vh_mem_table *t, const struct vh_mem_log *l,
		     const uint8_t *h, uint64_t len)
{
	while (len) {
		const struct vh_mem_reg *r = vh_mem_table_host_search(t, h);
		uint64_t off, sz;

		/* not guest memory of this snapshot: nothing to log */
		if (!r)
			return;
		off = (uint64_t)(h - r->host);
		sz = r->size - off;
		if (sz > len)
			sz = len;
		vh_mem_log_mark(l, r->gpa + off, sz);
		h += sz;
		len -= sz;
	}
}

/*
 * Used ring bytes [off, off + len) were written (the device area of a
 * packed ring): mark them in l.  By log_guest_addr (vhost-user.rst,
 * "Vring address description": the used ring's GPA), except under the
 * IOTLB: there QEMU sends the address the driver wrote, an IOVA (the
 * kernel's vhost ignores it and logs the ring through its translation),
 * so the ring is logged by the GPAs of the IOTLB entries it was mapped
 * through.
 */
static void mark_used(const struct vh_devq *vr, const struct vh_mem_log *l,
		      uint64_t off, uint64_t len)
{
	if (!vr->log_used)
		return;
	if (vh_likely(!vr->iotlb_on))
		vh_mem_log_mark(l, vr->addr.log + off, len);
	else if (vr->itab)
		vh_devq_mark_log(vr, vr->itab, l, vr->addr.used + off, len);
}

/* The same in a section of its own. */
static void log_used(struct vh_devq *vr, uint64_t off, uint64_t len)
{
	unsigned int e;

	if (!vr->log_used)
		return;
	mark_used(vr, vh_mem_log_enter(vr->mem, &e), off, len);
	vh_mem_log_exit(vr->mem, e);
}

void vh_devq_mark_log(const struct vh_devq *vr,
		      const struct vh_iotlb_table *it,
		      const struct vh_mem_log *l, uint64_t addr, uint64_t len)
{
	if (vh_likely(!vr->iotlb_on)) {
		vh_mem_log_mark(l, addr, len);
		return;
	}
	/*
	 * IOVAs are logged by the GPAs their entries were resolved to, not
	 * by the host addresses behind them: a memory table that replaced
	 * the one an entry was resolved through no longer has its mapping
	 * (the buffer's writes would go unlogged).
	 */
	while (len) {
		uint64_t gpa, piece;
		uint8_t *host;

		if (vh_iotlb_table_gpa(it, addr, VH_IOTLB_WO, &gpa, &host,
				       &piece) < 0)
			return; /* unmapped since: the driver's own loss */
		if (piece > len)
			piece = len;
		if (gpa != VH_IOTLB_NO_GPA)
			vh_mem_log_mark(l, gpa, piece);
		else
			log_host(vr->table, l, host, piece);
		addr += piece;
		len -= piece;
	}
}

void vh_devq_log_used_area(struct vh_devq *vr, uint64_t off, uint64_t len)
{
	log_used(vr, off, len);
}

int vh_devq_max_indirect(const struct vh_devq *vr)
{
	return vr->size > VH_DEVQ_INDIRECT_MIN_CAP ? (int)vr->size :
						     VH_DEVQ_INDIRECT_MIN_CAP;
}

VH_EXPORT int vh_devq_log_write(struct vh_devq *vr, uint64_t gpa,
				 uint64_t len)
{
	if (!vr)
		return -EINVAL;
	if (!vh_devq_has_feature(vr, VHOST_F_LOG_ALL))
		return 0;
	/* the newest log, whatever snapshot the ring is pinned to */
	return vh_mem_log_write(vr->mem, gpa, len);
}

static void load_desc(const struct vh_desc *d, bool aligned, uint64_t *addr,
		      uint64_t *lfn)
{
	if (vh_likely(aligned)) {
		*addr = le64toh(__atomic_load_n(&d->addr, __ATOMIC_RELAXED));
		*lfn = le64toh(__atomic_load_n(&d->lfn, __ATOMIC_RELAXED));
	} else {
		struct vh_desc copy;

		memcpy(&copy, d, sizeof(copy)); /* one fetch into a local */
		*addr = le64toh(copy.addr);
		*lfn = le64toh(copy.lfn);
	}
}

/* ---------------------------------------------------------------------- */
/* translation of descriptor addresses (GPA, or IOVA with the IOTLB)      */
/* ---------------------------------------------------------------------- */

/*
 * An indirect table (2.7.5.3): one host-contiguous range the device reads.
 * NULL with *err: -EAGAIN (IOTLB miss, reported) or -EFAULT / -EACCES.
 */
static const struct vh_desc *indirect_table(struct vh_devq *vr, uint64_t addr,
					    uint32_t len, int *err)
{
	const struct vh_desc *p;
	unsigned int hint = vr->hint;
	uint64_t miss = addr;

	if (vh_likely(!vr->iotlb_on)) {
		p = vh_mem_table_translate(vr->table, addr, len, &hint);
		*err = p ? 0 : -EFAULT;
		return p;
	}
	p = vh_iotlb_table_translate(vr->itab, addr, len, VH_IOTLB_RO, &miss,
				     err);
	if (p)
		vh_devq_irange_add(vr, addr, len);
	else if (*err == -EAGAIN)
		vh_iotlb_miss(vr->iotlb, miss, VH_IOTLB_RO);
	return p;
}

/*
 * A buffer into iov[0 .. max): the count, -ENOBUFS, -EAGAIN (IOTLB miss,
 * reported), -EACCES (IOTLB: mapped without the access), -EFAULT.
 */
static int buf_to_iov(struct vh_devq *vr, uint64_t addr, uint32_t len,
		      bool write, struct iovec *iov, unsigned int max)
{
	unsigned int perm = write ? VH_IOTLB_WO : VH_IOTLB_RO;
	uint64_t miss = addr;
	int n;

	if (vh_likely(!vr->iotlb_on))
		return vh_mem_table_to_iov(vr->table, addr, len, iov, max,
					   &vr->hint);
	n = vh_iotlb_table_to_iov(vr->itab, addr, len, perm, iov, max, &miss);
	if (n > 0)
		vh_devq_irange_add(vr, addr, len);
	else if (n == -EAGAIN)
		vh_iotlb_miss(vr->iotlb, miss, perm);
	return n;
}

/*
 * VHOST_F_LOG_ALL: mark the writable buffers of chain head dirty, up to len
 * bytes.  The chain was validated at pop; it is walked again with the same
 * bounds, and anything odd just ends the walk (the driver only hurts its
 * own migration).
 */
static void log_chain(struct vh_devq *vr, const struct vh_mem_log *l,
		      uint16_t head, uint32_t len)
{
	const struct vh_iotlb_table *it = vh_devq_elem_itab(vr, head);
	const struct vh_desc *tbl = vr->desc;
	unsigned int max = vr->size, count = 0, i = head;
	bool aligned = true, indirect = false;

	while (len && i < max && count++ < max) {
		uint64_t addr, lfn;
		uint32_t dlen;
		uint16_t flags;

		load_desc(&tbl[i], aligned, &addr, &lfn);
		dlen = vh_desc_len(lfn);
		flags = vh_desc_flags(lfn);
		if (flags & VH_DESC_F_INDIRECT) {
			int err;

			if (indirect || dlen % 16 || !dlen)
				return;
			/* the element's own translation, no miss reported */
			if (vr->iotlb_on)
				tbl = vh_iotlb_table_translate(it, addr, dlen,
							       VH_IOTLB_RO,
							       NULL, &err);
			else
				tbl = indirect_table(vr, addr, dlen, &err);
			if (!tbl)
				return;
			aligned = ((uintptr_t)tbl & 7) == 0;
			max = dlen / 16;
			count = 0;
			i = 0;
			indirect = true;
			continue;
		}
		if (flags & VH_DESC_F_WRITE) {
			uint32_t n = dlen < len ? dlen : len;

			vh_devq_mark_log(vr, it, l, addr, n);
			len -= n;
		}
		if (!(flags & VH_DESC_F_NEXT))
			return;
		i = vh_desc_next(lfn);
	}
}

/* ---------------------------------------------------------------------- */
/* pop                                                                    */
/* ---------------------------------------------------------------------- */

static uint16_t *avail_event(const struct vh_devq *vr)
{
	return (uint16_t *)&vr->used->ring[vr->size];
}

static uint16_t *used_event(const struct vh_devq *vr)
{
	return &vr->avail->ring[vr->size];
}

/* Read avail->idx (acquire); -EIO if it ran more than a ring ahead. */
static int read_avail_idx(struct vh_devq *vr, uint16_t *idx)
{
	uint16_t v = vh_load16(&vr->avail->idx, __ATOMIC_ACQUIRE);

	/* 2.7.6: the driver makes at most Queue Size heads available */
	if (vh_unlikely((uint16_t)(v - vr->last_avail) > vr->size))
		return vh_devq_break(vr, "avail idx %u is %u past last_avail %u",
				   v, (uint16_t)(v - vr->last_avail),
				   vr->last_avail);
	*idx = v;
	return 0;
}

/*
 * The ring looked empty: re-read avail->idx.  With event idx and
 * notifications on, publish avail_event = last_avail first and re-check
 * after a full fence, so a buffer added meanwhile is either seen here or
 * kicked (2.7.10).
 */
static inline __attribute__((always_inline)) int
refresh_avail(struct vh_devq *vr)
{
	uint16_t idx = 0;
	int err;

	err = read_avail_idx(vr, &idx);
	if (err < 0)
		return err;
	if (idx == vr->last_avail && vr->event_idx && vr->notify_enabled &&
	    (!vr->avail_event_valid ||
	     vr->avail_event_written != vr->last_avail)) {
		vh_store16(avail_event(vr), vr->last_avail, __ATOMIC_RELAXED);
		log_used(vr, 4 + 8ull * vr->size, 2);
		vr->avail_event_written = vr->last_avail;
		vr->avail_event_valid = true;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		err = read_avail_idx(vr, &idx);
		if (err < 0)
			return err;
	}
	vr->shadow_avail = idx;
	return idx != vr->last_avail;
}


/* One buffer of a chain into the walk's iovecs. */
int vh_devq_add_buf(struct vh_devq *vr, struct vh_devq_walk *w, uint64_t addr,
		   uint32_t len, bool write)
{
	unsigned int used = w->out_num + w->in_num;
	struct iovec scratch[4];
	int n;

	if (!len)
		return vh_devq_break(vr, "zero-length descriptor");
	if (vh_devq_overflows(addr, len))
		return vh_devq_break(vr, "descriptor 0x%llx+%u wraps",
				   (unsigned long long)addr, len);
	/* 2.7.4.2: device-writable descriptors after device-readable ones */
	if (!write && w->in_num)
		return vh_devq_break(vr, "readable descriptor after a writable one");
	n = -ENOBUFS;
	if (!w->nobufs && used < w->iov_max)
		n = buf_to_iov(vr, addr, len, write, w->iov + used,
			       w->iov_max - used);
	if (n == -ENOBUFS) {
		/* check the buffer only: more than 4 pieces means mapped */
		w->nobufs = true;
		n = buf_to_iov(vr, addr, len, write, scratch, 4);
		if (n == -ENOBUFS)
			n = 1;
		if (n > 0)
			n = 1; /* counted, for the order check above */
	}
	/* IOTLB miss: the element stays available, the ring is fine */
	if (n == -EAGAIN)
		return n;
	if (n == -EACCES)
		return vh_devq_break(vr, "buffer 0x%llx+%u not %s in the IOTLB",
				   (unsigned long long)addr, len,
				   write ? "writable" : "readable");
	if (n < 0)
		return vh_devq_break(vr, "buffer 0x%llx+%u outside guest memory",
				   (unsigned long long)addr, len);
	if (write) {
		w->in_num += (unsigned int)n;
		w->in_len += len;
	} else {
		w->out_num += (unsigned int)n;
		w->out_len += len;
	}
	/* our limit: element totals are u32 */
	if (w->out_len + w->in_len > UINT32_MAX)
		return vh_devq_break(vr, "chain longer than 4 GiB");
	return 0;
}

/* Walk the chain at head (2.7.5); *ndescs receives the ring descriptors used. */
static int walk_chain(struct vh_devq *vr, uint16_t head, struct vh_devq_walk *w,
		      uint16_t *ndescs)
{
	const struct vh_desc *tbl = vr->desc;
	unsigned int max = vr->size, count = 0, i = head, nring = 0;
	bool aligned = true, indirect = false;
	int err;

	vh_devq_irange_reset(vr);
	for (;;) {
		uint64_t addr, lfn;
		uint32_t len;
		uint16_t flags;

		/* a chain visits each descriptor at most once: cut loops */
		if (++count > max)
			return vh_devq_break(vr, "descriptor chain at %u loops or exceeds %u",
					   head, max);
		load_desc(&tbl[i], aligned, &addr, &lfn);
		len = vh_desc_len(lfn);
		flags = vh_desc_flags(lfn);
		if (!indirect)
			nring++;
		if (flags & VH_DESC_F_INDIRECT) {
			const struct vh_desc *ind;
			unsigned int cap;

			/* 2.7.5.3.1 */
			if (!vh_devq_has_feature(vr, VIRTIO_RING_F_INDIRECT_DESC))
				return vh_devq_break(vr, "indirect descriptor not negotiated");
			if (indirect)
				return vh_devq_break(vr, "nested indirect descriptor");
			if (flags & VH_DESC_F_NEXT)
				return vh_devq_break(vr, "indirect descriptor with NEXT");
			cap = vr->size > VH_DEVQ_INDIRECT_MIN_CAP ?
				      vr->size :
				      VH_DEVQ_INDIRECT_MIN_CAP;
			if (!len || len % 16 || len / 16 > cap)
				return vh_devq_break(vr, "bad indirect table length %u",
						   len);
			if (vh_devq_overflows(addr, len))
				return vh_devq_break(vr, "indirect table wraps");
			ind = indirect_table(vr, addr, len, &err);
			if (!ind && err == -EAGAIN)
				return err;
			if (!ind)
				return vh_devq_break(vr, "indirect table 0x%llx+%u not inside one region",
						   (unsigned long long)addr,
						   len);
			tbl = ind;
			aligned = ((uintptr_t)ind & 7) == 0;
			max = len / 16;
			count = 0;
			i = 0;
			indirect = true;
			continue;
		}
		err = vh_devq_add_buf(vr, w, addr, len, flags & VH_DESC_F_WRITE);
		if (err < 0)
			return err;
		if (!(flags & VH_DESC_F_NEXT))
			break;
		i = vh_desc_next(lfn);
		if (i >= max)
			return vh_devq_break(vr, "next %u out of range (%u)", i,
					   max);
	}
	if (w->nobufs)
		return -ENOBUFS;
	*ndescs = (uint16_t)nring;
	return 0;
}

static int pop_slow(struct vh_devq *vr, struct vh_devq_elem *elem,
		    uint16_t head)
{
	struct vh_devq_walk w = { .iov = elem->iov, .iov_max = elem->iov_max };
	uint16_t ndescs = 0;
	int err;

	err = walk_chain(vr, head, &w, &ndescs);
	if (err < 0)
		return err;
	elem->ndescs = ndescs;
	vh_devq_elem_set_walk(elem, &w);
	return 1;
}

/* VH_DESC_F_WRITE (bit 33 of lfn) as a shift of 0 or 32 */
static inline unsigned int desc_wr_shift(uint64_t lfn)
{
	return (unsigned int)(lfn >> 28) & 32;
}

/*
 * The fast path: one direct descriptor inside the region of the last hit,
 * at avail slot last, which the caller has seen made available (an acquire
 * load of avail->idx returned idx, last != idx) on a ready ring whose
 * snapshot is current (table_gen is VR_GEN_OFF unless ready).  1 if it
 * popped (the caller then keeps idx as shadow_avail), 0 if the general path
 * must decide.  Each shared value is loaded once; on 0 nothing that was
 * loaded is kept.  An IOTLB ring never pops here (c_size is 0).
 */
static inline __attribute__((always_inline)) int
pop_fast(struct vh_devq *vr, struct vh_devq_elem *elem, uint16_t last)
{
	const struct vh_desc *d;
	uint64_t lfn, off, end;
	unsigned int head;
	struct iovec *iov;
	uint32_t len;

	/* ordered after the acquire load of avail->idx */
	head = le16toh(__atomic_load_n(vr->avail->ring +
					       (size_t)(last & vr->mask),
				       __ATOMIC_RELAXED));
	if (vh_unlikely(head >= vr->size || vr->head_table[head]))
		return 0;
	d = &vr->desc[head];
	lfn = le64toh(__atomic_load_n(&d->lfn, __ATOMIC_RELAXED));
	len = vh_desc_len(lfn);
	if (vh_unlikely((lfn & ((uint64_t)(VH_DESC_F_NEXT |
					   VH_DESC_F_INDIRECT)
				<< 32)) ||
			!elem->iov_max))
		return 0;
	off = le64toh(__atomic_load_n(&d->addr, __ATOMIC_RELAXED)) - vr->c_gpa;
	/*
	 * Inside the region: end <= c_size.  end > off says both that off +
	 * len did not wrap and that len is not 0 (a zero-length descriptor
	 * breaks the ring, in walk_chain()); so off < end <= c_size too.
	 */
	end = off + len;
	if (vh_unlikely(end > vr->c_size || end <= off))
		return 0;
	/* commit first: fewer values stay live while elem is written */
	vr->head_table[head] = vr->table;
	vr->cur_inflight++;
	vr->last_avail = last + 1;
	iov = elem->iov;
	iov->iov_base = vr->c_host + off;
	iov->iov_len = len;
	elem_set_single(elem, (uint16_t)head, len, desc_wr_shift(lfn));
	return 1;
}

/*
 * Everything pop does, with every check spelled out: called when the fast
 * path sees anything unusual (not ready, broken, new snapshot, ring looks
 * empty, a chain, an indirect table, a region miss, a bad value).  It
 * re-reads what it uses, so nothing fetched by the fast path is trusted.
 */
__attribute__((noinline)) int vh_devq_pop_general(struct vh_devq *vr,
						  struct vh_devq_elem *elem)
{
	uint16_t last, head;
	int ret;

	if (!vr || !elem)
		return -EINVAL;
	if (vh_unlikely(vr->iotlb_on)) {
		ret = vh_devq_iotlb_prepare(vr);
		if (ret < 0)
			return ret;
	}
	if (!vr->ready)
		return vr->broken ? -EIO : -EINVAL;
	if (__atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE) != vr->table_gen) {
		ret = vh_devq_switch_table(vr);
		if (ret < 0)
			return ret;
	}
	if (vr->packed)
		return vh_devq_packed_pop(vr, elem);
	last = vr->last_avail;
	if (last == vr->shadow_avail) {
		ret = refresh_avail(vr);
		if (ret <= 0)
			return ret;
	}
	if (pop_fast(vr, elem, last))
		return 1;
	/* ordered after the acquire load of avail->idx */
	head = le16toh(__atomic_load_n(&vr->avail->ring[last & vr->mask],
				       __ATOMIC_RELAXED));
	/* 2.7.6: ring entries are heads of descriptor chains */
	if (head >= vr->size)
		return vh_devq_break(vr, "avail head %u out of range", head);
	/* 2.7.13.1: a head is not made available again before it is used */
	if (vr->head_table[head] != NULL)
		return vh_devq_break(vr, "head %u made available twice", head);
	ret = pop_slow(vr, elem, head);
	if (ret < 0)
		return ret;
	elem->id = head;
	if (vh_unlikely(vr->iotlb_on))
		vh_devq_pin_itab(vr, head);
	vr->head_table[head] = vr->table;
	vr->cur_inflight++;
	vr->last_avail = last + 1;
	vh_devq_cache_region(vr);
	return 1;
}

VH_EXPORT VR_NO_SLP int vh_devq_pop(struct vh_devq *vr,
				     struct vh_devq_elem *elem)
{
	uint64_t gen = __atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE);
	uint16_t last = vr->last_avail;

	/*
	 * split_gen is table_gen on a ready split ring, packed_gen on a
	 * ready packed one, VR_GEN_OFF otherwise (vh_devq_set_gen())
	 */
	if (vh_unlikely(gen != vr->split_gen)) {
		if (gen == vr->packed_gen)
			return vh_devq_packed_pop_entry(vr, elem);
		return vh_devq_pop_general(vr, elem);
	}
	if (last == vr->shadow_avail) {
		uint16_t idx;

		/*
		 * The avail entries seen are used up: read avail->idx here
		 * (acquire), as refresh_avail() does when it shows 1 to
		 * Queue Size new entries (2.7.6).  An empty ring
		 * (avail_event to publish) and an index out of range (the
		 * ring breaks) go the general way, which reads it again.
		 * (An IOTLB ring that moves to a new IOTLB snapshot forgets
		 * what it saw: see iotlb_switch().)
		 */
		idx = vh_load16(&vr->avail->idx, __ATOMIC_ACQUIRE);
		if (vh_unlikely((uint16_t)(idx - last - 1) >= vr->size))
			return vh_devq_pop_general(vr, elem);
		vr->shadow_avail = idx;
	}
	if (vh_likely(pop_fast(vr, elem, last)))
		return 1;
	return vh_devq_pop_general(vr, elem);
}

/*
 * Pop a run of up to max single direct descriptors into e[], the way
 * pop_fast() does one, with the ring's state in locals: the snapshot and
 * ready checks and the bookkeeping are paid once per run, not per element.
 * A run ends at the end of the avail ring too, so the ring is walked by
 * pointer.  Stops at the first element that is anything but the common
 * case (the caller hands that one to vh_devq_pop_general(), which re-reads
 * everything).  Returns how many it popped.
 */
static inline __attribute__((always_inline)) unsigned int
pop_run(struct vh_devq *vr, struct vh_devq_elem *const e0, unsigned int max)
{
	struct vh_devq_elem *e = e0;
	const struct vh_desc *desc = vr->desc;
	struct vh_mem_table **ht = vr->head_table;
	const size_t start = vr->last_avail & vr->mask;
	const uint16_t *a = vr->avail->ring + start, *a_end;
	size_t cnt = max, room = vr->size - start;
	unsigned int popped;

	if (cnt > room)
		cnt = room;
	a_end = a + cnt;
	/*
	 * The queue size, table, region base and size and host pointer are
	 * read from vr where they are used: one memory operand each, where a
	 * local would take a register.  Few values stay live, for the same
	 * reason.
	 */
	for (; a != a_end; a++, e++) {
		const struct vh_desc *d;
		uint16_t head;
		uint64_t lfn, off, end;
		uint32_t len;

		/* ordered after the acquire load of avail->idx (shadow_avail) */
		head = le16toh(__atomic_load_n(a, __ATOMIC_RELAXED));
		if (vh_unlikely(head >= vr->size || ht[head]))
			break;
		d = &desc[head];
		lfn = le64toh(__atomic_load_n(&d->lfn, __ATOMIC_RELAXED));
		len = vh_desc_len(lfn);
		if (vh_unlikely((lfn & ((uint64_t)(VH_DESC_F_NEXT |
						   VH_DESC_F_INDIRECT)
					<< 32)) ||
				!e->iov_max))
			break;
		off = le64toh(__atomic_load_n(&d->addr, __ATOMIC_RELAXED)) -
		      vr->c_gpa;
		/*
		 * Inside the region: end <= c_size.  end > off says both that
		 * off + len did not wrap and that len is not 0 (a zero-length
		 * descriptor breaks the ring, in walk_chain()); so off <
		 * end <= c_size too.
		 */
		end = off + len;
		if (vh_unlikely(end > vr->c_size || end <= off))
			break;
		ht[head] = vr->table;
		e->iov->iov_base = vr->c_host + off;
		e->iov->iov_len = len;
		elem_set_single(e, head, len, desc_wr_shift(lfn));
	}
	/* from e: the caller keeps e0 anyway, so nothing more stays live */
	popped = (unsigned int)(e - e0);
	vr->last_avail = (uint16_t)(vr->last_avail + popped);
	vr->cur_inflight += popped;
	return popped;
}

/*
 * vh_devq_pop_batch() the general way, from elems[i] on (the i before were
 * popped by the caller): runs of the common case, anything else one by
 * one through vh_devq_pop_general().
 */
static __attribute__((noinline)) VR_NO_SLP int
pop_batch_general(struct vh_devq *vr, struct vh_devq_elem *elems,
		  unsigned int n, unsigned int i)
{
	int ret;

	if (!vr || (n && !elems))
		return -EINVAL;
	/*
	 * Packed rings have their own runs; under an IOTLB one element at a
	 * time the general way, which follows the IOTLB snapshots.
	 */
	if (vr->packed && n && vr->iotlb_on) {
		for (; i < n; i++) {
			ret = vh_devq_pop_general(vr, &elems[i]);
			if (ret <= 0)
				return i ? (int)i : ret;
		}
		return (int)i;
	}
	if (vr->packed && n && !i)
		return vh_devq_packed_pop_batch(vr, elems, n);
	while (i < n) {
		if (vh_likely(__atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE) ==
			      vr->table_gen)) {
			/* what the last avail->idx read showed */
			unsigned int seen = (uint16_t)(vr->shadow_avail -
						       vr->last_avail);

			if (!seen) {
				/* packed rings always come here (seen is 0) */
				if (vh_unlikely(vr->packed)) {
					ret = vh_devq_packed_pop_batch(
						vr, elems + i, n - i);
					return ret < 0 && i ? (int)i :
					       ret < 0	    ? ret :
							      (int)i + ret;
				}
				ret = refresh_avail(vr);
				if (ret <= 0)
					return i ? (int)i : ret;
				seen = (uint16_t)(vr->shadow_avail -
						  vr->last_avail);
			}
			i += pop_run(vr, elems + i, n - i < seen ? n - i : seen);
			if (i == n)
				break;
		}
		/* a chain, an indirect table, a new snapshot, a bad value */
		ret = vh_devq_pop_general(vr, &elems[i]);
		if (ret <= 0)
			return i ? (int)i : ret;
		i++;
	}
	return (int)i;
}

VH_EXPORT VR_NO_SLP int vh_devq_pop_batch(struct vh_devq *vr,
					   struct vh_devq_elem *elems,
					   unsigned int n)
{
	unsigned int seen, k;
	uint64_t gen;
	uint16_t last;

	/*
	 * The common case: a ready split ring (table_gen is VR_GEN_OFF
	 * unless ready) with a current snapshot; avail->idx is read (with
	 * acquire) only when the entries seen are used up, as in
	 * vh_devq_pop().  The rest, and whatever the run stops at, goes the
	 * general way.
	 */
	if (vh_unlikely(!vr))
		return -EINVAL;
	if (vh_unlikely(!n))
		return pop_batch_general(vr, elems, n, 0);
	if (vh_unlikely(!elems))
		return -EINVAL;
	gen = __atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE);
	/* as in vh_devq_pop(): split_gen sends a packed ring elsewhere */
	if (vh_unlikely(gen != vr->split_gen)) {
		/* a batch of one is one pop: no run to set up */
		if (gen == vr->packed_gen && n == 1)
			return vh_devq_packed_pop_entry(vr, elems);
		if (gen == vr->packed_gen && !vr->iotlb_on)
			return vh_devq_packed_pop_batch_entry(vr, elems, n);
		return pop_batch_general(vr, elems, n, 0);
	}
	last = vr->last_avail;
	seen = (uint16_t)(vr->shadow_avail - last);
	if (!seen) {
		uint16_t idx;

		/* 2.7.6: 1 to Queue Size new entries, else the general way */
		idx = vh_load16(&vr->avail->idx, __ATOMIC_ACQUIRE);
		seen = (uint16_t)(idx - last);
		if (vh_unlikely(seen - 1 >= vr->size))
			return pop_batch_general(vr, elems, n, 0);
		vr->shadow_avail = idx;
	}
	k = pop_run(vr, elems, n < seen ? n : seen);
	if (vh_likely(k == n))
		return (int)n;
	return pop_batch_general(vr, elems, n, k);
}

VH_EXPORT int vh_devq_pop_head(struct vh_devq *vr, uint16_t head,
				struct vh_devq_elem *elem)
{
	int ret;

	if (!vr || !elem)
		return -EINVAL;
	if (vh_unlikely(vr->iotlb_on)) {
		ret = vh_devq_iotlb_prepare(vr);
		if (ret < 0)
			return ret;
	}
	if (vh_unlikely(!vr->ready))
		return vr->broken ? -EIO : -EINVAL;
	/* packed: chains to resubmit come from vh_devq_pop_inflight() */
	if (vr->packed)
		return -EOPNOTSUPP;
	if (__atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE) != vr->table_gen) {
		ret = vh_devq_switch_table(vr);
		if (ret < 0)
			return ret;
	}
	/* the head comes from a region the driver can write: check it too */
	if (head >= vr->size || vr->head_table[head] != NULL)
		return -EINVAL;
	ret = pop_slow(vr, elem, head);
	if (ret < 0)
		return ret;
	if (vr->iotlb_on)
		vh_devq_pin_itab(vr, head);
	elem->id = head;
	vr->head_table[head] = vr->table;
	vr->cur_inflight++;
	return 1;
}

VH_EXPORT int vh_devq_get_used_idx(const struct vh_devq *vr, uint16_t *idx)
{
	if (!vr || !idx)
		return -EINVAL;
	if (!vr->used)
		return -EINVAL;
	/* packed: position | used wrap counter << 15 */
	*idx = vr->packed ? (uint16_t)(vr->pk_used | vr->pk_used_wrap << 15) :
			    (uint16_t)vr->used_ctr;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* push and notifications                                                 */
/* ---------------------------------------------------------------------- */

static void write_used(struct vh_devq *vr, uint16_t slot, uint32_t id,
		       uint32_t len)
{
	struct vh_used_elem *e = &vr->used->ring[slot];

	__atomic_store_n(&e->id, htole32(id), __ATOMIC_RELAXED);
	__atomic_store_n(&e->len, htole32(len), __ATOMIC_RELAXED);
}

/*
 * Dirty-log the first len device-writable bytes of chain head (VHOST_F_LOG_ALL),
 * walked again from the head, as vhost and libvhost-user do.  Called
 * before the used index moves: from then on the driver may reuse the
 * descriptors (a freed head is the next one a Linux driver takes), and a
 * walk after it logged the next request's buffers, not these.
 */
static void log_bufs(struct vh_devq *vr, const struct vh_mem_log *l,
		     uint16_t id, uint32_t len)
{
	if (vr->log_all)
		log_chain(vr, l, id, len);
}

/*
 * push_one() under a dirty log: the buffers are logged before the used
 * element is published (see log_bufs()), the used element and used->idx
 * after they are written.
 */
static __attribute__((noinline)) void log_push(struct vh_devq *vr,
					       uint16_t slot, uint32_t ctr,
					       uint16_t id, uint32_t len)
{
	const struct vh_mem_log *l;
	unsigned int e;

	l = vh_mem_log_enter(vr->mem, &e);
	log_bufs(vr, l, id, len);
	write_used(vr, slot, id, len);
	/* 2.7.8.2: the used element is visible before the index moves */
	vh_store16(&vr->used->idx, (uint16_t)ctr, __ATOMIC_RELEASE);
	mark_used(vr, l, 4 + 8ull * slot, 8);
	mark_used(vr, l, 2, 2);
	vh_mem_log_exit(vr->mem, e);
}

/*
 * Write one used element and publish it; may_log false when the caller
 * knows there is no dirty log (push_limit is not 0).
 */
static inline __attribute__((always_inline)) void
push_one(struct vh_devq *vr, uint16_t id, uint32_t len, bool may_log)
{
	struct vh_used *used = vr->used;
	uint32_t ctr = vr->used_ctr;
	size_t slot = ctr & vr->mask;
	struct vh_used_elem *ue = &used->ring[slot];

	ctr++;
	vr->used_ctr = ctr;
	if (may_log && vh_unlikely(vr->log_any)) {
		log_push(vr, (uint16_t)slot, ctr, id, len);
		return;
	}
	__atomic_store_n(&ue->id, htole32(id), __ATOMIC_RELAXED);
	__atomic_store_n(&ue->len, htole32(len), __ATOMIC_RELAXED);
	/* 2.7.8.2: the used element is visible before the index moves */
	vh_store16(&used->idx, (uint16_t)ctr, __ATOMIC_RELEASE);
}

__attribute__((noinline)) int vh_devq_push_general(struct vh_devq *vr,
						   uint16_t id, uint32_t len)
{
	if (!vr)
		return -EINVAL;
	if (vr->packed)
		return vh_devq_packed_push(vr, id, len);
	/*
	 * A new snapshot may carry a new dirty log (SET_LOG_BASE while
	 * elements are in flight): move to it before writing.
	 */
	if (vr->ready &&
	    __atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE) != vr->table_gen)
		vh_devq_switch_table(vr); /* on failure the ring is broken: -EIO below */
	if (!vh_devq_put_head(vr, id))
		return -EINVAL;
	/* an element popped before the ring broke just goes away */
	if (vr->ready)
		push_one(vr, id, len, true);
	vh_devq_put_itab(vr, id);
	return vr->ready ? 0 : -EIO;
}

VH_EXPORT int vh_devq_push(struct vh_devq *vr, uint16_t id16, uint32_t len)
{
	uint64_t gen = __atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE);
	size_t id = id16;

	/*
	 * Fast path: a head popped under the current snapshot, which is still
	 * the newest, of a ready split ring with no dirty log (push_limit is
	 * 0 otherwise); a packed ring's snapshot check is packed_gen's, as
	 * in vh_devq_pop(); the rest goes to vh_devq_push_general().
	 */
	if (vh_unlikely(gen != vr->split_gen)) {
		if (gen == vr->packed_gen)
			return vh_devq_packed_push_entry(vr, id, len);
		return vh_devq_push_general(vr, id, len);
	}
	if (vh_unlikely(id >= vr->push_limit ||
			vr->head_table[id] != vr->table))
		return vh_devq_push_general(vr, id, len);
	vr->head_table[id] = NULL;
	vr->cur_inflight--;
	push_one(vr, (uint16_t)id, len, false);
	return 0;
}

_Static_assert(sizeof(struct vh_devq_used_elem) == 8 &&
		       sizeof(struct vh_used_elem) == 8 &&
		       offsetof(struct vh_devq_used_elem, len) ==
			       offsetof(struct vh_used_elem, len),
	       "vh_devq_used_elem is laid out as the used ring's element");

/* vh_devq_push_batch() the general way: every case, every check. */
static __attribute__((noinline)) int
push_batch_general(struct vh_devq *vr, const struct vh_devq_used_elem *used,
		   unsigned int n)
{
	const struct vh_mem_log *l = NULL;
	unsigned int i, e = 0;
	int ret;

	if (!vr || (n && !used))
		return -EINVAL;
	if (vr->packed)
		return vh_devq_packed_push_batch(vr, used, n);
	ret = vh_devq_take_batch(vr, used, n);
	if (ret < 0)
		return ret;
	if (!vr->ready) {
		vh_devq_put_itabs(vr, used, n);
		return -EIO;
	}
	if (vr->log_any) {
		/* one log section for the batch; buffers before the index */
		l = vh_mem_log_enter(vr->mem, &e);
		for (i = 0; i < n; i++)
			log_bufs(vr, l, (uint16_t)used[i].id, used[i].len);
	}
	for (i = 0; i < n; i++)
		write_used(vr, (uint16_t)(vr->used_ctr + i) & vr->mask,
			   used[i].id, used[i].len);
	vr->used_ctr += n;
	vh_store16(&vr->used->idx, (uint16_t)vr->used_ctr, __ATOMIC_RELEASE);
	if (l) {
		for (i = 0; i < n; i++)
			mark_used(vr, l,
				  4 + 8ull * ((vr->used_ctr - n + i) &
					      vr->mask),
				  8);
		mark_used(vr, l, 2, 2);
		vh_mem_log_exit(vr->mem, e);
	}
	vh_devq_put_itabs(vr, used, n);
	return 0;
}

/*
 * The end of both fast paths of vh_devq_push_batch(): the first i of n
 * used elements were checked (their heads, in ht, cleared from table t)
 * and written from used counter ctr on.  All of them: publish; else put the heads back and let
 * push_batch_general() decide (the index did not move: nothing written
 * counts).
 */
static inline __attribute__((always_inline)) int
push_batch_end(struct vh_devq *vr, const struct vh_devq_used_elem *used,
	       unsigned int n, size_t i, uint32_t ctr,
	       struct vh_mem_table **ht, struct vh_mem_table *t)
{
	if (vh_likely(i == n)) {
		vr->cur_inflight -= n;
		vr->used_ctr = ctr + n;
		/* 2.7.8.2: elements visible before the index moves */
		vh_store16(&vr->used->idx, (uint16_t)(ctr + n),
			   __ATOMIC_RELEASE);
		return 0;
	}
	while (i--)
		ht[used[i].id] = t;
	return push_batch_general(vr, used, n);
}

/*
 * The fast path of vh_devq_push_batch() (see there) for a batch that
 * wraps the used ring: two segments, so both sides advance by pointer.
 */
static __attribute__((noinline)) int
push_batch_wrap(struct vh_devq *vr, const struct vh_devq_used_elem *used,
		unsigned int n)
{
	struct vh_mem_table **ht = vr->head_table, *t = vr->table;
	struct vh_used_elem *ring = vr->used->ring;
	const uint32_t limit = vr->push_limit, ctr = vr->used_ctr;
	const unsigned int slot = ctr & vr->mask, room = vr->size - slot;
	const struct vh_devq_used_elem *u = used, *u_end = used + n;
	const struct vh_devq_used_elem *seg_end =
		n <= room ? u_end : used + room;
	struct vh_used_elem *dst = &ring[slot];

	for (;;) {
		for (; u != seg_end; u++, dst++) {
			uint32_t id = u->id;

			if (vh_unlikely(id >= limit || ht[id] != t))
				break;
			ht[id] = NULL;
			dst->id = htole32(id);
			dst->len = htole32(u->len);
		}
		if (u != seg_end || u == u_end)
			break;
		dst = ring;
		seg_end = u_end;
	}
	return push_batch_end(vr, used, n, (size_t)(u - used), ctr, ht, t);
}

VH_EXPORT int vh_devq_push_batch(struct vh_devq *vr,
				  const struct vh_devq_used_elem *used,
				  unsigned int n)
{
	struct vh_mem_table **ht, *t;
	struct vh_used_elem *dst;
	uint32_t ctr, limit;
	uint64_t gen;
	size_t i;

	/*
	 * Fast path: a ready split ring with no dirty log (push_limit is 0
	 * otherwise: packed, IOTLB, dirty log, not ready), every id popped
	 * under the current, newest snapshot.  Clearing each head as it is
	 * checked also catches an id named twice; on any surprise the heads
	 * cleared so far are put back and push_batch_general() decides.
	 */
	if (vh_unlikely(!vr))
		return -EINVAL;
	if (vh_unlikely(!n))
		return push_batch_general(vr, used, n);
	if (vh_unlikely(!used))
		return -EINVAL;
	gen = __atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE);
	/* as in vh_devq_push() */
	if (vh_unlikely(gen != vr->split_gen)) {
		if (gen == vr->packed_gen)
			return vh_devq_packed_push_batch_entry(vr, used, n);
		return push_batch_general(vr, used, n);
	}
	if (vh_unlikely(!vr->push_limit))
		return push_batch_general(vr, used, n);
	ctr = vr->used_ctr;
	if (vh_unlikely(n > vr->size - (ctr & vr->mask)))
		return push_batch_wrap(vr, used, n);
	ht = vr->head_table;
	t = vr->table;
	limit = vr->push_limit;
	dst = &vr->used->ring[ctr & vr->mask];
	/*
	 * Used elements past used->idx are the device's until the index
	 * moves (2.7.8), so they are written while checking; if a check
	 * fails the index stays and they mean nothing.  That also makes
	 * plain stores enough: the release store of the index orders them.
	 */
	/*
	 * One index for both arrays: one increment per element.  Unrolled:
	 * the loop's compare and branch are paid once per 8 (callgrind,
	 * scripts/bench-vring: 12 instructions an element down to 10).
	 */
#pragma GCC unroll 8
	for (i = 0; i < n; i++) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		/* same layout as struct vh_used_elem: one load, one store */
		uint64_t v;
		uint32_t id;

		memcpy(&v, &used[i], sizeof(v));
		id = (uint32_t)v;
		if (vh_unlikely(id >= limit || ht[id] != t))
			break;
		ht[id] = NULL;
		memcpy(&dst[i], &v, sizeof(v));
#else
		uint32_t id = used[i].id;

		if (vh_unlikely(id >= limit || ht[id] != t))
			break;
		ht[id] = NULL;
		dst[i].id = htole32(id);
		dst[i].len = htole32(used[i].len);
#endif
	}
	return push_batch_end(vr, used, n, i, ctr, ht, t);
}

VH_EXPORT int vh_devq_need_notify(struct vh_devq *vr)
{
	uint32_t old, new_ctr;
	bool valid;

	if (!vr)
		return -EINVAL;
	if (!vr->ready)
		return vr->broken ? -EIO : -EINVAL;
	if (vr->packed)
		return vh_devq_packed_need_notify(vr);
	/* order the used->idx store before reading flags / used_event */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* 6.3 VIRTIO_F_NOTIFY_ON_EMPTY: notify when the ring runs empty */
	if (vh_devq_has_feature(vr, VIRTIO_F_NOTIFY_ON_EMPTY) &&
	    vh_devq_inflight(vr) == 0 &&
	    vh_load16(&vr->avail->idx, __ATOMIC_ACQUIRE) == vr->last_avail)
		return 1;
	if (!vr->event_idx)
		return !(vh_load16(&vr->avail->flags, __ATOMIC_RELAXED) &
			 VH_AVAIL_F_NO_INTERRUPT);
	new_ctr = vr->used_ctr;
	/*
	 * 2.7.10 used_event: the caller notifies when this returns 1.  The
	 * counters are 32-bit so that 65536 or more pushes since the last
	 * notification (the 16-bit comparison would be meaningless) are seen.
	 */
	old = vr->signalled_ctr;
	valid = vr->signalled_valid && new_ctr - old < 0x10000;
	vr->signalled_ctr = new_ctr;
	vr->signalled_valid = true;
	if (!valid)
		return 1;
	return vh_need_event(vh_load16(used_event(vr), __ATOMIC_RELAXED),
			     (uint16_t)new_ctr, (uint16_t)old);
}

VH_EXPORT int vh_devq_notify(struct vh_devq *vr)
{
	int ret;

	ret = vh_devq_need_notify(vr);
	if (ret <= 0)
		return ret;
	if (vr->call_fd < 0)
		return 0;
	/* a full counter: the signal is pending, the notification made */
	ret = vh_eventfd_signal(vr->call_fd);
	return ret < 0 ? ret : 1;
}

VH_EXPORT int vh_devq_enable_notification(struct vh_devq *vr)
{
	uint16_t idx = 0;
	int err;

	if (!vr)
		return -EINVAL;
	if (!vr->ready)
		return vr->broken ? -EIO : -EINVAL;
	vr->notify_enabled = true;
	if (vr->packed)
		return vh_devq_packed_enable_notification(vr);
	if (vr->event_idx) {
		vh_store16(avail_event(vr), vr->last_avail, __ATOMIC_RELAXED);
		vr->avail_event_written = vr->last_avail;
		vr->avail_event_valid = true;
		log_used(vr, 4 + 8ull * vr->size, 2);
	} else {
		vh_store16(&vr->used->flags, 0, __ATOMIC_RELAXED);
		log_used(vr, 0, 2);
	}
	/* 2.7.10: re-check after the flag / event store is visible */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	err = read_avail_idx(vr, &idx);
	if (err < 0)
		return err;
	vr->shadow_avail = idx;
	return idx != vr->last_avail;
}

VH_EXPORT int vh_devq_disable_notification(struct vh_devq *vr)
{
	if (!vr)
		return -EINVAL;
	if (!vr->ready)
		return vr->broken ? -EIO : -EINVAL;
	vr->notify_enabled = false;
	if (vr->packed)
		return vh_devq_packed_disable_notification(vr);
	/* with event idx, avail_event simply stops following last_avail */
	if (!vr->event_idx) {
		vh_store16(&vr->used->flags, VH_USED_F_NO_NOTIFY,
			   __ATOMIC_RELAXED);
		log_used(vr, 0, 2);
	}
	return 0;
}

VH_EXPORT int vh_devq_avail_count(struct vh_devq *vr, uint16_t *n)
{
	uint16_t idx = 0;
	int err;

	if (!vr || !n)
		return -EINVAL;
	if (!vr->ready)
		return vr->broken ? -EIO : -EINVAL;
	if (vr->packed)
		return vh_devq_packed_avail_count(vr, n);
	err = read_avail_idx(vr, &idx);
	if (err < 0)
		return err;
	*n = (uint16_t)(idx - vr->last_avail);
	return 0;
}

