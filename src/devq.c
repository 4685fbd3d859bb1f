// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The device side of a virtqueue (struct vh_devq): its configuration, the
 * mapping of its rings, its memory and IOTLB snapshots.  Pop, push and
 * notifications are devq-split.c's (split layout, and the API entry
 * points) and devq-packed.c's.
 *
 * Memory snapshots: the vring pins the vh_mem snapshot it pops under
 * (vr->table) and moves to a newer one at the next pop after a change (or
 * when its addresses are set again); an element popped under an older
 * snapshot keeps that snapshot (and so its mappings) alive until it is
 * pushed, unless the newer one holds its mappings too: see head_table[],
 * struct old_pin and vh_devq_switch_table().
 *
 * VIRTIO_F_ACCESS_PLATFORM with an IOTLB attached (vh_devq_set_iotlb()):
 * ring and buffer addresses are IOVAs, translated through the IOTLB
 * snapshot the ring pins (vr->itab); each popped element pins the snapshot
 * it was translated under (head_itab[]) until it is pushed, so an
 * invalidation never unmaps its buffers.  A missing translation makes pop
 * return -EAGAIN without consuming anything (the ring is not broken) and is
 * reported once per page (vh_iotlb_miss()); the caller pops again after
 * the update.  Those rings never take the single-region fast paths
 * (c_size stays 0, push_limit 0), so the cost with the feature off is
 * unchanged.
 */
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/vhost_types.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>

#include "iotlb-internal.h"
#include "libvhost-internal.h"
#include "mem-internal.h"
#include "queue-internal.h"

int vh_devq_break(struct vh_devq *vr, const char *fmt, ...)
{
	char msg[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!vr->broken)
		vh_err(vr->ctx, "vring %u: %s: ring marked broken\n",
		       vr->index, msg);
	vr->broken = true;
	vr->ready = false;
	vh_devq_set_gen(vr, VR_GEN_OFF);
	vr->push_limit = 0;
	vr->pk_push_limit = 0;
	vr->pk_pop_limit = 0;
	return -EIO;
}

/* ---------------------------------------------------------------------- */
/* setup                                                                  */
/* ---------------------------------------------------------------------- */

VH_EXPORT int vh_devq_new(struct vh_ctx *ctx, struct vh_mem *mem,
			   unsigned int index, struct vh_devq **out)
{
	struct vh_devq *vr;

	if (!ctx || !mem || !out)
		return -EINVAL;
	vr = calloc(1, sizeof(*vr));
	if (!vr)
		return -ENOMEM;
	vr->refcount = 1;
	vr->ctx = vh_ctx_ref(ctx);
	vr->mem = vh_mem_ref(mem);
	vr->gen_ptr = vh_mem_generation_ptr(mem);
	vr->index = index;
	vr->notify_enabled = true;
	/* 2.8.1: both wrap counters start at 1 */
	vr->pk_avail_wrap = vr->pk_used_wrap = true;
	vh_devq_pk_wraps(vr);
	vh_devq_set_gen(vr, VR_GEN_OFF);
	vr->kick_fd = vr->call_fd = vr->err_fd = -1;
	*out = vr;
	return 0;
}

VH_EXPORT struct vh_devq *vh_devq_ref(struct vh_devq *vr)
{
	if (vr)
		__atomic_add_fetch(&vr->refcount, 1, __ATOMIC_RELAXED);
	return vr;
}

static void drop_pins(struct vh_devq *vr)
{
	struct old_pin *p, *next;
	unsigned int i;

	for (p = vr->old_pins; p; p = next) {
		next = p->next;
		vh_mem_table_put(p->t);
		free(p);
	}
	vr->old_pins = NULL;
	if (vr->head_table && vr->size)
		memset(vr->head_table, 0, vr->size * sizeof(vr->head_table[0]));
	if (vr->head_itab) {
		for (i = 0; i < vr->size; i++) {
			vh_iotlb_table_put(vr->head_itab[i]);
			vr->head_itab[i] = NULL;
		}
	}
	for (i = 0; i < vr->ipin_n; i++)
		vh_iotlb_table_put(vr->ipin[i].t);
	vr->ipin_cur = vr->ipin_n = 0;
	vr->ipin_entries = 0;
	vr->cur_inflight = 0;
	if (vr->packed)
		vh_devq_packed_forget(vr);
}

static void unmap_rings(struct vh_devq *vr)
{
	drop_pins(vr);
	vh_mem_table_put(vr->table);
	vr->table = NULL;
	vh_iotlb_table_put(vr->itab);
	vr->itab = NULL;
	vr->rings_pending = false;
	vr->desc = NULL;
	vr->avail = NULL;
	vr->used = NULL;
	vr->ready = false;
	vh_devq_set_gen(vr, VR_GEN_OFF);
	vr->push_limit = 0;
	vr->pk_push_limit = 0;
	vr->pk_pop_limit = 0;
	vr->c_size = 0;
}

VH_EXPORT struct vh_devq *vh_devq_unref(struct vh_devq *vr)
{
	if (!vr)
		return NULL;
	if (__atomic_sub_fetch(&vr->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return vr;
	unmap_rings(vr);
	vh_devq_packed_free(vr);
	free(vr->head_table);
	free(vr->head_itab);
	free(vr->ipin);
	free(vr->irange);
	free(vr->batch_seen);
	vh_iotlb_unref(vr->iotlb);
	vh_close_keep_errno(vr->kick_fd);
	vh_close_keep_errno(vr->call_fd);
	vh_close_keep_errno(vr->err_fd);
	vh_mem_unref(vr->mem);
	vh_ctx_unref(vr->ctx);
	free(vr);
	return NULL;
}

VH_EXPORT unsigned int vh_devq_get_index(const struct vh_devq *vr)
{
	return vr ? vr->index : 0;
}

/* Translate one ring area in snapshot t. */
static void *area(const struct vh_devq *vr, const struct vh_mem_table *t,
		  uint64_t addr, uint64_t len)
{
	unsigned int hint = 0;

	if (vr->addr.flags & VH_DEVQ_ADDR_UVA)
		return vh_mem_table_uva_translate(t, addr, len);
	if (vh_devq_overflows(addr, len))
		return NULL;
	return vh_mem_table_translate(t, addr, len, &hint);
}

/* Event fields exist only with VIRTIO_RING_F_EVENT_IDX (2.7.6, 2.7.8). */
static uint64_t avail_size(const struct vh_devq *vr)
{
	return 4 + 2ull * vr->size + (vr->event_idx ? 2 : 0);
}

static uint64_t used_size(const struct vh_devq *vr)
{
	return 4 + 8ull * vr->size + (vr->event_idx ? 2 : 0);
}

/*
 * The ring areas through IOTLB snapshot it: 0, -EAGAIN (a miss, reported),
 * or -EACCES / -EFAULT (mapped without the access the device needs, or
 * not contiguous in host memory).  The device reads the descriptor table
 * and the avail ring and writes the used ring (2.7).
 */
/*
 * The ring areas' host addresses keep the alignment vh_devq_set_addr()
 * checked on their guest addresses (2.7, 2.8.10): a region's mmap_offset
 * or an IOTLB entry's uaddr that is not congruent would make every ring
 * access misaligned (atomics across cache lines included).
 */
static int check_host_align(struct vh_devq *vr, const void *d, const void *a,
			    const void *u)
{
	if (((uintptr_t)d & 15) || ((uintptr_t)a & (vr->packed ? 3 : 1)) ||
	    ((uintptr_t)u & 3)) {
		vh_err(vr->ctx,
		       "vring %u: ring area misaligned in host memory (region offset or IOTLB address)\n",
		       vr->index);
		return -EINVAL;
	}
	return 0;
}

static int iotlb_areas(struct vh_devq *vr, const struct vh_iotlb_table *it,
		       void **d, void **a, void **u)
{
	const uint64_t addr[3] = { vr->addr.desc, vr->addr.avail,
				   vr->addr.used };
	/*
	 * 2.8: a packed ring's descriptors are written back as used, and
	 * its driver and device areas are one event suppression structure
	 */
	const uint64_t len[3] = {
		16ull * vr->size,
		vr->packed ? sizeof(struct vh_pevent) : avail_size(vr),
		vr->packed ? sizeof(struct vh_pevent) : used_size(vr)
	};
	const unsigned int perm[3] = { vr->packed ? VH_IOTLB_RW : VH_IOTLB_RO,
				       VH_IOTLB_RO, VH_IOTLB_WO };
	void **out[3] = { d, a, u };
	unsigned int i;

	for (i = 0; i < 3; i++) {
		uint64_t miss = addr[i];
		int err = -EAGAIN;

		*out[i] = it ? vh_iotlb_table_translate(it, addr[i], len[i],
							perm[i], &miss, &err) :
			       NULL;
		if (*out[i])
			continue;
		if (err == -EAGAIN) {
			vh_iotlb_miss(vr->iotlb, miss, perm[i]);
			return -EAGAIN;
		}
		vh_err(vr->ctx, "vring %u: ring area at IOVA 0x%llx: %d\n",
		       vr->index, (unsigned long long)addr[i], err);
		/* no translation is never success, whatever err says */
		return err < 0 ? err : -EFAULT;
	}
	return check_host_align(vr, *d, *a, *u);
}

static int map_areas(struct vh_devq *vr, const struct vh_mem_table *t,
		     void **d, void **a, void **u)
{
	/* IOVAs: translated in the pinned IOTLB snapshot, not in t */
	if (vh_unlikely(vr->iotlb_on))
		return iotlb_areas(vr, vr->itab, d, a, u);
	*d = area(vr, t, vr->addr.desc, 16ull * vr->size);
	/* 2.8.10: packed: driver and device event suppression areas */
	*a = area(vr, t, vr->addr.avail,
		  vr->packed ? sizeof(struct vh_pevent) : avail_size(vr));
	*u = area(vr, t, vr->addr.used,
		  vr->packed ? sizeof(struct vh_pevent) : used_size(vr));
	if (!*d || !*a || !*u) {
		vh_err(vr->ctx,
		       "vring %u: %s area not inside one guest memory region\n",
		       vr->index, !*d ? "descriptor" : !*a ? "avail" : "used");
		return -EFAULT;
	}
	return check_host_align(vr, *d, *a, *u);
}

static void update_log_flags(struct vh_devq *vr)
{
	bool log = vr->table && vr->table->log;

	vr->log_used = log && (vr->addr.flags & VH_DEVQ_ADDR_LOG);
	vr->log_all = log && vh_devq_has_feature(vr, VHOST_F_LOG_ALL);
	vr->log_any = vr->log_used || vr->log_all;
	/*
	 * The split push fast paths take a ready split ring with neither an
	 * IOTLB nor a dirty log (every place that changes one of those
	 * comes here, but vh_devq_break() and unmap_rings(), which zero it).
	 */
	vr->push_limit = vr->ready && !vr->packed && !vr->iotlb_on &&
					 !vr->log_any ?
				 vr->size :
				 0;
	vh_devq_packed_limits(vr);
}

/* Remember region r for the pop fast path (the table pins its mapping). */
void vh_devq_cache_region(struct vh_devq *vr)
{
	const struct vh_mem_table *t = vr->table;

	if (t && vr->hint < t->n && !vr->iotlb_on) {
		vr->c_gpa = t->r[vr->hint].gpa;
		vr->c_size = t->r[vr->hint].size;
		vr->c_host = t->r[vr->hint].host;
	} else {
		vr->c_size = 0;
	}
}

/* (Re)map the rings in the current snapshot once size and addresses are known. */
static int map_rings(struct vh_devq *vr)
{
	struct vh_iotlb_table *it = NULL;
	struct vh_mem_table *t;
	uint64_t gen, igen = 0;
	void *d = NULL, *a = NULL, *u = NULL;
	int err;

	if (!vr->size || !vr->addr_set)
		return 0;
	gen = __atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE);
	t = vh_mem_table_get(vr->mem);
	if (vr->iotlb_on) {
		igen = __atomic_load_n(vr->igen_ptr, __ATOMIC_ACQUIRE);
		it = vh_iotlb_table_get(vr->iotlb);
		err = iotlb_areas(vr, it, &d, &a, &u);
	} else {
		err = map_areas(vr, t, &d, &a, &u);
	}
	if (err < 0) {
		vh_mem_table_put(t);
		vh_iotlb_table_put(it);
		if (err != -EAGAIN)
			return err;
		/* not translated yet: pop retries (and says -EAGAIN) */
		unmap_rings(vr);
		vr->rings_pending = true;
		return 0;
	}
	unmap_rings(vr);
	vr->table = t;
	vh_devq_set_gen(vr, gen);
	vr->itab = it;
	vr->itab_gen = igen;
	vr->hint = 0;
	vr->c_size = 0;
	vr->desc = d;
	vr->avail = a;
	vr->used = u;
	vr->used_ctr = vh_load16(&vr->used->idx, __ATOMIC_ACQUIRE);
	vr->shadow_avail = vr->last_avail;
	vr->signalled_valid = false;
	vr->avail_event_valid = false;
	vr->broken = false;
	vr->ready = true;
	if (vr->packed) {
		vr->used_ctr = 0;
		vh_devq_packed_mapped(vr);
	}
	/*
	 * and push_limit: IOTLB rings push through vh_devq_push_general(),
	 * which unpins head_itab; packed rings keep the split push fast path
	 * out (see struct vh_devq)
	 */
	update_log_flags(vr);
	return 0;
}

VH_EXPORT int vh_devq_set_num(struct vh_devq *vr, unsigned int num)
{
	struct vh_mem_table **ht;
	struct vh_iotlb_table **hi;
	uint32_t *seen;

	if (!vr)
		return -EINVAL;
	/*
	 * 2.7: Queue Size is a power of 2, at most 32768; 2.8: packed, any
	 * size up to 32768
	 */
	if (vr->packed ? !num || num > VH_DEVQ_MAX_SIZE :
			 !vh_is_pow2_size(num)) {
		vh_err(vr->ctx, "vring %u: bad size %u\n", vr->index, num);
		return -EINVAL;
	}
	unmap_rings(vr);
	ht = calloc(num, sizeof(*ht));
	hi = calloc(num, sizeof(*hi));
	seen = calloc(num, sizeof(*seen));
	if (!ht || !hi || !seen) {
		free(ht);
		free(hi);
		free(seen);
		return -ENOMEM;
	}
	free(vr->head_table);
	free(vr->head_itab);
	free(vr->batch_seen);
	vr->head_table = ht;
	vr->head_itab = hi;
	vr->batch_seen = seen;
	vr->batch_epoch = 0;
	vr->size = num;
	vr->mask = (uint16_t)(num - 1);
	if (vr->packed) {
		int err = vh_devq_packed_prepare(vr);

		if (err < 0)
			return err;
	}
	return map_rings(vr);
}

VH_EXPORT unsigned int vh_devq_get_num(const struct vh_devq *vr)
{
	return vr ? vr->size : 0;
}

/*
 * Nothing in flight and no inflight region attached (whose records and
 * resubmissions a ring mapped anew would drop): the ring's mappings can
 * go, or be made anew, without loss.
 */
static bool ring_idle(const struct vh_devq *vr)
{
	return !vh_devq_inflight(vr) && !vr->pk_infl;
}

VH_EXPORT int vh_devq_set_addr(struct vh_devq *vr,
				const struct vh_devq_addr *a)
{
	struct vh_devq_addr old;
	bool old_set;
	int err;

	if (!vr || !a)
		return -EINVAL;
	/*
	 * 2.7: alignment of the descriptor table, avail and used rings; 2.8.10:
	 * packed: descriptor ring 16, event suppression areas 4
	 */
	if ((a->desc & 15) || (a->avail & (vr->packed ? 3 : 1)) ||
	    (a->used & 3)) {
		vh_err(vr->ctx, "vring %u: misaligned ring address\n",
		       vr->index);
		return -EINVAL;
	}
	/*
	 * Same rings, only the log settings change: a vhost-user frontend
	 * does this (VHOST_VRING_F_LOG) when migration starts, with elements
	 * in flight that must survive.
	 */
	if (vr->table && vr->addr_set && a->desc == vr->addr.desc &&
	    a->avail == vr->addr.avail && a->used == vr->addr.used &&
	    (a->flags & VH_DEVQ_ADDR_UVA) ==
		    (vr->addr.flags & VH_DEVQ_ADDR_UVA)) {
		/*
		 * The same after a memory change (vu-backend sets every
		 * ring's addresses again): the rings must be in the newest
		 * table, or the next pop breaks the ring on a table that lost
		 * them (REM_MEM_REG, then ADD_MEM_REG when QEMU resizes a
		 * section).  Refused here, the ring waits for the memory that
		 * brings them back, its elements kept.
		 */
		if (!vr->iotlb_on) {
			struct vh_mem_table *t = vh_mem_table_get(vr->mem);
			bool moved = t != vr->table;
			void *d, *av, *u;

			err = moved ? map_areas(vr, t, &d, &av, &u) : 0;
			vh_mem_table_put(t);
			/*
			 * A ring that is not popped (not kicked, disabled, its
			 * memory gone) would keep the superseded table, and
			 * every mapping in it, until its next pop: a front-end
			 * changing the memory ring after ring could make each
			 * hold one.  So it moves to the newest table now, or,
			 * with nothing in flight to keep, lets its mappings go
			 * (set_addr maps it anew).
			 */
			if (err < 0) {
				if (ring_idle(vr))
					unmap_rings(vr);
				return err;
			}
			if (moved && vr->ready) {
				err = vh_devq_switch_table(vr);
				if (err < 0)
					return err;
			}
		} else if (vr->ready && ring_idle(vr) &&
			   __atomic_load_n(vr->igen_ptr, __ATOMIC_ACQUIRE) !=
				   vr->itab_gen) {
			/*
			 * The same for the IOTLB snapshot the rings were
			 * translated in (flushed with the memory): with
			 * nothing in flight, translated again now, or pending
			 * until an update answers the miss; mapped without
			 * the access the rings need, the ring breaks, as at
			 * a pop
			 */
			if (map_rings(vr) < 0)
				vh_devq_break(vr, "rings not accessible through the IOTLB");
		}
		vr->addr.log = a->log;
		vr->addr.flags = a->flags;
		update_log_flags(vr);
		return 0;
	}
	old = vr->addr;
	old_set = vr->addr_set;
	vr->addr = *a;
	vr->addr_set = true;
	err = map_rings(vr);
	if (err < 0) {
		/* the previous rings (if any) stay as they were */
		vr->addr = old;
		vr->addr_set = old_set;
	}
	return err;
}

VH_EXPORT int vh_devq_set_features(struct vh_devq *vr, uint64_t features)
{
	uint64_t old = vr ? vr->features : 0;

	if (!vr)
		return -EINVAL;
	if ((old ^ features) & (1ull << VIRTIO_F_RING_PACKED)) {
		bool packed = features & (1ull << VIRTIO_F_RING_PACKED);
		int err = 0;

		/* another layout: the ring is set up anew */
		if (vr->packed && !packed)
			vh_devq_packed_forget(vr);
		vr->packed = packed;
		vh_devq_set_gen(vr, vr->table_gen);
		vr->features = features;
		vr->event_idx = vh_devq_has_feature(vr, VIRTIO_RING_F_EVENT_IDX);
		vr->iotlb_on = vr->iotlb &&
			       vh_devq_has_feature(vr, VIRTIO_F_ACCESS_PLATFORM);
		vr->last_avail = vr->shadow_avail = 0;
		if (vr->size && !packed && !vh_is_pow2_size(vr->size)) {
			unmap_rings(vr);
			vr->size = 0;
		}
		if (vr->size && packed)
			err = vh_devq_packed_prepare(vr);
		if (!err)
			err = map_rings(vr);
		if (err < 0)
			unmap_rings(vr);
		update_log_flags(vr);
		return err;
	}
	vr->features = features;
	vr->event_idx = vh_devq_has_feature(vr, VIRTIO_RING_F_EVENT_IDX);
	/* ring addresses change meaning: translate them again */
	if (vr->iotlb_on != (vr->iotlb && vh_devq_has_feature(vr,
						       VIRTIO_F_ACCESS_PLATFORM))) {
		int err;

		vr->iotlb_on = !vr->iotlb_on;
		err = map_rings(vr);
		if (err < 0)
			unmap_rings(vr);
		update_log_flags(vr);
		return err;
	}
	/*
	 * Running rings keep their state (VHOST_F_LOG_ALL comes and goes
	 * during migration); only a change of event idx resizes the areas.
	 */
	if (vr->table && !vr->packed &&
	    ((old ^ features) & (1ull << VIRTIO_RING_F_EVENT_IDX))) {
		void *d, *a, *u;

		/* the new areas do not fit: unmapped until new addresses */
		if (map_areas(vr, vr->table, &d, &a, &u) < 0) {
			unmap_rings(vr);
			update_log_flags(vr);
			return -EFAULT;
		}
		vr->desc = d;
		vr->avail = a;
		vr->used = u;
		vr->signalled_valid = false;
		vr->avail_event_valid = false;
	}
	update_log_flags(vr);
	return 0;
}

VH_EXPORT int vh_devq_set_base(struct vh_devq *vr, uint32_t base)
{
	if (!vr)
		return -EINVAL;
	if (vr->packed)
		return vh_devq_packed_set_base(vr, base);
	/* split: a 16-bit index; bits 16-31 reserved (vhost-user.rst) */
	if (base > UINT16_MAX)
		return -EINVAL;
	vr->last_avail = (uint16_t)base;
	vr->shadow_avail = (uint16_t)base;
	vr->signalled_valid = false;
	vr->avail_event_valid = false;
	if (vr->used)
		vr->used_ctr = vh_load16(&vr->used->idx, __ATOMIC_ACQUIRE);
	return 0;
}

VH_EXPORT int vh_devq_get_base(struct vh_devq *vr, uint32_t *base)
{
	if (!vr || !base)
		return -EINVAL;
	*base = vr->packed ? vh_devq_packed_get_base(vr) : vr->last_avail;
	return 0;
}

static int set_fd(int *slot, int fd)
{
	if (*slot >= 0 && *slot != fd)
		vh_close_peer_fd(*slot);
	*slot = fd < 0 ? -1 : fd;
	return 0;
}

VH_EXPORT int vh_devq_set_kick_fd(struct vh_devq *vr, int fd)
{
	return vr ? set_fd(&vr->kick_fd, fd) : -EINVAL;
}

VH_EXPORT int vh_devq_set_call_fd(struct vh_devq *vr, int fd)
{
	return vr ? set_fd(&vr->call_fd, fd) : -EINVAL;
}

VH_EXPORT int vh_devq_set_err_fd(struct vh_devq *vr, int fd)
{
	return vr ? set_fd(&vr->err_fd, fd) : -EINVAL;
}

VH_EXPORT int vh_devq_get_kick_fd(const struct vh_devq *vr)
{
	return vr ? vr->kick_fd : -EINVAL;
}

VH_EXPORT int vh_devq_get_call_fd(const struct vh_devq *vr)
{
	return vr ? vr->call_fd : -EINVAL;
}

VH_EXPORT int vh_devq_read_kick(struct vh_devq *vr)
{
	if (!vr)
		return -EINVAL;
	if (vr->kick_fd < 0)
		return -EBADF;
	/* the front-end has the kick fd too, and its O_NONBLOCK */
	return vh_eventfd_take(vr->kick_fd);
}

VH_EXPORT int vh_devq_reset(struct vh_devq *vr)
{
	if (!vr)
		return -EINVAL;
	unmap_rings(vr);
	vh_devq_packed_free(vr);
	free(vr->head_table);
	vr->head_table = NULL;
	free(vr->head_itab);
	vr->head_itab = NULL;
	free(vr->batch_seen);
	vr->batch_seen = NULL;
	vr->size = 0;
	vr->mask = 0;
	vr->addr_set = false;
	memset(&vr->addr, 0, sizeof(vr->addr));
	vr->last_avail = vr->shadow_avail = 0;
	vr->used_ctr = 0;
	vr->pk_avail = vr->pk_used = 0;
	vr->pk_avail_wrap = vr->pk_used_wrap = true;
	vh_devq_pk_wraps(vr);
	vr->broken = false;
	vr->notify_enabled = true;
	vr->signalled_valid = false;
	vr->avail_event_valid = false;
	return 0;
}

VH_EXPORT int vh_devq_is_broken(const struct vh_devq *vr)
{
	return vr ? vr->broken : -EINVAL;
}

VH_EXPORT unsigned int vh_devq_inflight(const struct vh_devq *vr)
{
	const struct old_pin *p;
	unsigned int n;

	if (!vr)
		return 0;
	n = vr->cur_inflight;
	for (p = vr->old_pins; p; p = p->next)
		n += p->inflight;
	return n;
}

/* ---------------------------------------------------------------------- */
/* memory and IOTLB snapshots                                             */
/* ---------------------------------------------------------------------- */

/*
 * Every mapping of old is in t, for the same guest addresses (a new dirty
 * log, a region added): both are sorted by guest address.
 */
static bool maps_kept(const struct vh_mem_table *old,
		      const struct vh_mem_table *t)
{
	unsigned int i, j = 0;

	for (i = 0; i < old->n; i++) {
		while (j < t->n && t->r[j].gpa < old->r[i].gpa)
			j++;
		if (j == t->n || t->r[j].gpa != old->r[i].gpa ||
		    t->r[j].map != old->r[i].map ||
		    t->r[j].host != old->r[i].host ||
		    t->r[j].size < old->r[i].size)
			return false;
	}
	return true;
}

/* The elements popped under old count as popped under t. */
static void retag_heads(struct vh_devq *vr, struct vh_mem_table *old,
			struct vh_mem_table *t)
{
	unsigned int i;

	for (i = 0; i < vr->size; i++) {
		struct vh_mem_table *p = vr->head_table[i];

		/* a packed ring's entry may carry VH_HT_COMPLEX */
		if (p && vh_ht_table(p) == old)
			vr->head_table[i] = vh_ht_tag(t, p != old);
	}
}

/*
 * Move to the newest memory table (pop, when it changed; set_addr of the
 * same rings).  Elements in flight keep the mappings
 * their buffers are in: when the new table has them all, they just count
 * as popped under it (a SET_LOG_BASE or an ADD_MEM_REG between pops pins
 * nothing); else the old table stays pinned until they are pushed.
 */
int vh_devq_switch_table(struct vh_devq *vr)
{
	uint64_t gen = __atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE);
	struct vh_mem_table *t = vh_mem_table_get(vr->mem), *old = vr->table;
	void *d = NULL, *a = NULL, *u = NULL;

	/*
	 * The generation is read before the table, so a table published
	 * in between is the newest one already pinned under an older
	 * generation: nothing to move to.  Moving would pin it as an old
	 * snapshot beside itself and count its elements twice.
	 */
	if (t == old) {
		vh_mem_table_put(t);
		vh_devq_set_gen(vr, gen);
		return 0;
	}
	if (map_areas(vr, t, &d, &a, &u) < 0) {
		vh_mem_table_put(t);
		return vh_devq_break(vr, "rings not in the new memory table");
	}
	if (vr->cur_inflight && maps_kept(old, t)) {
		/* the elements' memory is t's too: they go on under t */
		retag_heads(vr, old, t);
		vh_mem_table_put(old);
	} else if (vr->cur_inflight) {
		struct old_pin *p = malloc(sizeof(*p));

		if (!p) {
			/* try again at the next pop; the old table stays */
			vh_mem_table_put(t);
			return 0;
		}
		p->t = old;
		p->inflight = vr->cur_inflight;
		p->next = vr->old_pins;
		vr->old_pins = p;
		vr->cur_inflight = 0;
	} else {
		vh_mem_table_put(old);
	}
	vr->table = t;
	vh_devq_set_gen(vr, gen);
	vr->hint = 0;
	vr->c_size = 0;
	vr->desc = d;
	vr->avail = a;
	vr->used = u;
	update_log_flags(vr);
	return 0;
}

/*
 * The ring leaves itab, which ipin_cur elements pin: they count as pinning
 * a superseded snapshot from now on, the list's reference keeping its
 * address from being taken by another.  Within the bounds unless a pop
 * found no memory for an element's own snapshot (vh_devq_pin_itab()); the
 * list grows for that.  Not listed (no memory either), they pin it
 * uncounted, as if each had its own.
 */
static void ipin_supersede(struct vh_devq *vr)
{
	if (vr->ipin_n == vr->ipin_cap) {
		unsigned int cap = vr->ipin_cap ? vr->ipin_cap * 2 :
						  VH_DEVQ_IPIN_MAX;
		void *p = realloc(vr->ipin, cap * sizeof(*vr->ipin));

		if (!p) {
			vr->ipin_cur = 0;
			return;
		}
		vr->ipin = p;
		vr->ipin_cap = cap;
	}
	vr->ipin[vr->ipin_n].t = vh_iotlb_table_ref(vr->itab);
	vr->ipin[vr->ipin_n++].inflight = vr->ipin_cur;
	vr->ipin_entries += vr->itab->n;
	vr->ipin_cur = 0;
}

/*
 * Move to the newest IOTLB snapshot (pop, when it changed): the rings are
 * translated again.  On a miss the ring keeps the snapshot it has (its
 * rings stay mapped for push) and pop says -EAGAIN until the update.
 */
static int iotlb_switch(struct vh_devq *vr)
{
	uint64_t igen = __atomic_load_n(vr->igen_ptr, __ATOMIC_ACQUIRE);
	struct vh_iotlb_table *it = vh_iotlb_table_get(vr->iotlb);
	void *d = NULL, *a = NULL, *u = NULL;
	int err;

	/*
	 * A writer publishes the snapshot, then bumps the generation: a ring
	 * that read the generation between the two already has this one.
	 */
	if (it == vr->itab) {
		vh_iotlb_table_put(it);
		vr->itab_gen = igen;
		return 0;
	}
	err = iotlb_areas(vr, it, &d, &a, &u);
	if (err < 0) {
		vh_iotlb_table_put(it);
		if (err == -EAGAIN)
			return err;
		return vh_devq_break(vr, "rings not accessible through the IOTLB");
	}
	/* popped elements hold their own references (head_itab) */
	if (vr->ipin_cur)
		ipin_supersede(vr);
	vh_iotlb_table_put(vr->itab);
	vr->itab = it;
	vr->itab_gen = igen;
	vr->desc = d;
	vr->avail = a;
	vr->used = u;
	/* avail->idx is read again through the new translation */
	vr->shadow_avail = vr->last_avail;
	return 0;
}

/* Pop under the IOTLB: translate pending rings, follow new snapshots. */
static __attribute__((noinline)) int iotlb_pop_prepare(struct vh_devq *vr)
{
	if (!vr->ready) {
		int err;

		if (!vr->rings_pending)
			return vr->broken ? -EIO : -EINVAL;
		err = map_rings(vr);
		if (err < 0)
			return err;
		return vr->ready ? 0 : -EAGAIN;
	}
	if (__atomic_load_n(vr->igen_ptr, __ATOMIC_ACQUIRE) != vr->itab_gen)
		return iotlb_switch(vr);
	return 0;
}

/* Pop under the IOTLB, for devq-split.c and devq-packed.c (pop_inflight). */
int vh_devq_iotlb_prepare(struct vh_devq *vr)
{
	return vr->iotlb_on ? iotlb_pop_prepare(vr) : 0;
}

/* An element popped under an older snapshot came back. */
static void unpin_old(struct vh_devq *vr, struct vh_mem_table *t)
{
	struct old_pin **pp, *p;

	for (pp = &vr->old_pins; (p = *pp); pp = &p->next) {
		if (p->t != t)
			continue;
		if (--p->inflight == 0) {
			*pp = p->next;
			vh_mem_table_put(p->t);
			free(p);
		}
		return;
	}
}

/* Release the in-flight bookkeeping of head id; false if it was not popped. */
bool vh_devq_put_head(struct vh_devq *vr, uint32_t id)
{
	struct vh_mem_table *t;

	if (id >= vr->size || !vr->head_table)
		return false;
	/* a packed ring's entry may carry VH_HT_COMPLEX */
	t = vh_ht_table(vr->head_table[id]);
	if (!t)
		return false;
	vr->head_table[id] = NULL;
	if (t == vr->table)
		vr->cur_inflight--;
	else
		unpin_old(vr, t);
	return true;
}

/*
 * A front-end can change the IOTLB between any two pops, and each change
 * is a new snapshot of up to VH_IOTLB_MAX_ENTRIES entries: were every
 * element to pin the ring's snapshot of the moment, queue size elements
 * could hold as many copies of a full table.  So the superseded snapshots
 * a ring's elements pin are bounded, and an element popped past the bound
 * pins only the translations it went through.  A live snapshot's address
 * is not reused, so the pointer tells which kind an element holds.
 */
void vh_devq_pin_itab(struct vh_devq *vr, uint32_t id)
{
	struct vh_iotlb_table *t = NULL;

	/* without memory for its own, the ring's (past the bound) */
	if ((vr->ipin_n >= VH_DEVQ_IPIN_MAX ||
	     vr->ipin_entries + vr->itab->n > VH_DEVQ_IPIN_ENTRIES) &&
	    !vr->irange_lost &&
	    vh_iotlb_table_extract(vr->itab, vr->irange, vr->irange_n, &t) ==
		    0) {
		vr->head_itab[id] = t;
	} else {
		vr->head_itab[id] = vh_iotlb_table_ref(vr->itab);
		vr->ipin_cur++;
	}
	vh_devq_irange_reset(vr);
}

void vh_devq_irange_add(struct vh_devq *vr, uint64_t iova, uint64_t len)
{
	if (vr->irange_n == vr->irange_cap) {
		/* a walk's own bounds bound its ranges */
		unsigned int cap = vr->irange_cap ? vr->irange_cap * 2 : 64;
		void *p = realloc(vr->irange, cap * sizeof(*vr->irange));

		if (!p) {
			vr->irange_lost = true;
			return;
		}
		vr->irange = p;
		vr->irange_cap = cap;
	}
	vr->irange[vr->irange_n].iova = iova;
	vr->irange[vr->irange_n++].len = len;
}

void vh_devq_put_itab(struct vh_devq *vr, uint32_t id)
{
	struct vh_iotlb_table *t;
	unsigned int i;

	if (vh_likely(!vr->head_itab || id >= vr->size || !vr->head_itab[id]))
		return;
	t = vr->head_itab[id];
	vr->head_itab[id] = NULL;
	if (t == vr->itab) {
		vr->ipin_cur--;
	} else {
		/* superseded, else the element's own (not counted) */
		for (i = 0; i < vr->ipin_n; i++) {
			if (vr->ipin[i].t != t)
				continue;
			if (--vr->ipin[i].inflight == 0) {
				vr->ipin_entries -= t->n;
				vh_iotlb_table_put(t);
				vr->ipin[i] = vr->ipin[--vr->ipin_n];
			}
			break;
		}
	}
	vh_iotlb_table_put(t);
}

void vh_devq_put_itabs(struct vh_devq *vr,
		       const struct vh_devq_used_elem *used, unsigned int n)
{
	unsigned int i;

	if (vh_unlikely(vr->head_itab))
		for (i = 0; i < n; i++)
			vh_devq_put_itab(vr, used[i].id);
}

/*
 * The general way of a batch push, before anything is written: every id
 * in flight and named once, all or nothing (-EINVAL; duplicates found in
 * one pass by stamping each head with this call's epoch, the stamps
 * restarted when the epoch wraps), then the newest snapshot, then the
 * heads given back (their IOTLB snapshots stay: vh_devq_put_itabs()).  0,
 * after which the caller writes the used entries if the ring is still
 * ready.
 */
int vh_devq_take_batch(struct vh_devq *vr,
		       const struct vh_devq_used_elem *used, unsigned int n)
{
	unsigned int i;

	if (n && (!vr->head_table || !vr->batch_seen))
		return -EINVAL;
	if (n && ++vr->batch_epoch == 0) {
		memset(vr->batch_seen, 0, vr->size * sizeof(vr->batch_seen[0]));
		vr->batch_epoch = 1;
	}
	for (i = 0; i < n; i++) {
		uint32_t id = used[i].id;

		if (id >= vr->size || !vr->head_table[id] ||
		    vr->batch_seen[id] == vr->batch_epoch)
			return -EINVAL;
		vr->batch_seen[id] = vr->batch_epoch;
	}
	if (vr->ready &&
	    __atomic_load_n(vr->gen_ptr, __ATOMIC_ACQUIRE) != vr->table_gen)
		vh_devq_switch_table(vr);
	for (i = 0; i < n; i++)
		vh_devq_put_head(vr, used[i].id);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* IOTLB attachment (library-internal: vhost-user back-end, VDUSE)        */
/* ---------------------------------------------------------------------- */

int vh_devq_iotlb_ready(struct vh_devq *vr)
{
	int err;

	if (!vr || !vr->iotlb_on || vr->ready || !vr->rings_pending)
		return 1;
	err = map_rings(vr);
	if (err < 0)
		return err;
	return vr->ready;
}

int vh_devq_set_iotlb(struct vh_devq *vr, struct vh_iotlb *tlb)
{
	bool on;
	int err = 0;

	if (!vr)
		return -EINVAL;
	if (tlb != vr->iotlb) {
		/* the rings were translated through the old one */
		if (vr->iotlb_on)
			unmap_rings(vr);
		vh_iotlb_unref(vr->iotlb);
		vr->iotlb = vh_iotlb_ref(tlb);
		vr->igen_ptr = tlb ? vh_iotlb_generation_ptr(tlb) : NULL;
		vr->iotlb_on = false;
	}
	on = tlb && vh_devq_has_feature(vr, VIRTIO_F_ACCESS_PLATFORM);
	if (on != vr->iotlb_on) {
		vr->iotlb_on = on;
		err = map_rings(vr);
		update_log_flags(vr);
	}
	return err;
}
