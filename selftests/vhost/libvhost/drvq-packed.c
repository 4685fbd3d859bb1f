// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Packed virtqueue, driver side (virtio 1.3, 2.8), behind the vh_drvq_*
 * calls of drvq.c once VIRTIO_F_RING_PACKED is set.  The device is not
 * trusted: a used descriptor must name a buffer id in flight and report no
 * more than its writable bytes.
 *
 * The ring lives in the memory vh_drvq_new() laid out for a split ring of
 * the same size (larger): descriptor ring at the start (16 * num), then our
 * event suppression structure (driver area), then the device's.
 */
#include <string.h>

#include <linux/virtio_ring.h>

#include "libvhost-internal.h"
#include "mem-internal.h"
#include "queue-internal.h"

static inline struct vh_pdesc *ring(const struct vh_drvq *vq)
{
	return (struct vh_pdesc *)(void *)vq->desc;
}

static inline struct vh_pevent *drv_event(const struct vh_drvq *vq)
{
	return (struct vh_pevent *)(void *)vq->avail;
}

static inline struct vh_pevent *dev_event(const struct vh_drvq *vq)
{
	return (struct vh_pevent *)(void *)vq->used;
}

static inline uint32_t r_of(const struct vh_drvq *vq, uint16_t pos, bool wrap)
{
	return pos + (wrap ? 0 : vq->num);
}

static inline void advance(const struct vh_drvq *vq, uint16_t *pos,
			   bool *wrap, unsigned int n)
{
	unsigned int p = *pos + n;

	if (p >= vq->num) {
		p -= vq->num;
		*wrap = !*wrap;
	}
	*pos = (uint16_t)p;
}

int vh_drvq_packed_layout(struct vh_drvq *vq)
{
	uint8_t *host = (uint8_t *)vq->desc;
	unsigned int i;

	vq->avail_gpa = vq->desc_gpa + vh_desc_bytes(vq->num);
	vq->used_gpa = vq->avail_gpa + sizeof(struct vh_pevent);
	vq->avail = (struct vh_avail *)(void *)(host + vh_desc_bytes(vq->num));
	vq->used = (struct vh_used *)(void *)(host + vh_desc_bytes(vq->num) +
					       sizeof(struct vh_pevent));
	memset(host, 0, vh_drvq_ring_bytes(vq->num));
	for (i = 0; i + 1 < vq->num; i++)
		vq->next[i] = (uint16_t)(i + 1);
	vq->free_head = 0;
	/* 2.8.1: both wrap counters start at 1 */
	vq->pk_avail = vq->pk_used = 0;
	vq->pk_avail_wrap = vq->pk_used_wrap = true;
	vq->pk_kicked_r = 0;
	vq->added = 0;
	vq->pk_ev_flags = VH_PEVENT_ENABLE;
	vq->cb_enabled = true;
	return 0;
}

static void write_event(struct vh_pevent *e, uint16_t off_wrap,
			uint16_t flags)
{
	struct vh_pevent ev = { htole16(off_wrap), htole16(flags) };
	uint32_t v;

	memcpy(&v, &ev, sizeof(v));
	__atomic_store_n((uint32_t *)(void *)e, v, __ATOMIC_RELAXED);
}

static void read_event(const struct vh_pevent *e, uint16_t *off_wrap,
		       uint16_t *flags)
{
	uint32_t v = __atomic_load_n((const uint32_t *)(const void *)e,
				     __ATOMIC_RELAXED);
	struct vh_pevent ev;

	memcpy(&ev, &v, sizeof(ev));
	*off_wrap = le16toh(ev.off_wrap);
	*flags = le16toh(ev.flags);
}

static uint64_t pack_lif(uint32_t len, uint16_t id, uint16_t flags)
{
	return htole64((uint64_t)len | (uint64_t)id << 32 |
		       (uint64_t)flags << 48);
}

/*
 * 2.8.21: write the descriptors of one buffer at pk_avail, the head's
 * flags last (release), so the device sees the whole chain or nothing.
 */
int vh_drvq_packed_add(struct vh_drvq *vq, const struct vh_sg *sg,
		       unsigned int out, unsigned int in, void *token,
		       uint32_t in_len, bool indirect)
{
	unsigned int n = out + in, nring = indirect ? 1 : n, i;
	uint16_t id = vq->free_head, pos = vq->pk_avail;
	bool wrap = vq->pk_avail_wrap;
	uint64_t head_lif = 0;

	if (indirect) {
		struct vh_pdesc *tbl = (struct vh_pdesc *)(void *)(
			vq->ind_host + (size_t)id * vq->ind_slot);

		/* 2.8.7: only WRITE means something in the table */
		for (i = 0; i < n; i++) {
			__atomic_store_n(&tbl[i].addr, htole64(sg[i].addr),
					 __ATOMIC_RELAXED);
			__atomic_store_n(&tbl[i].lif,
					 pack_lif(sg[i].len, 0,
						  i >= out ? VH_DESC_F_WRITE :
							     0),
					 __ATOMIC_RELAXED);
		}
	}
	for (i = 0; i < nring; i++) {
		struct vh_pdesc *d = &ring(vq)[pos];
		uint16_t flags = wrap ? VH_PDESC_F_AVAIL : VH_PDESC_F_USED;
		uint64_t addr;
		uint32_t len;

		if (indirect) {
			flags |= VH_DESC_F_INDIRECT;
			addr = vq->ind_gpa + (uint64_t)id * vq->ind_slot;
			len = n * 16;
		} else {
			if (i >= out)
				flags |= VH_DESC_F_WRITE;
			if (i + 1 < nring)
				flags |= VH_DESC_F_NEXT;
			addr = sg[i].addr;
			len = sg[i].len;
		}
		__atomic_store_n(&d->addr, htole64(addr), __ATOMIC_RELAXED);
		/* the buffer id goes in every descriptor; 2.8.6 reads the last */
		if (i == 0) {
			head_lif = pack_lif(len, id, flags);
		} else {
			__atomic_store_n(&d->lif, pack_lif(len, id, flags),
					 __ATOMIC_RELAXED);
		}
		advance(vq, &pos, &wrap, 1);
	}
	__atomic_store_n(&ring(vq)[vq->pk_avail].lif, head_lif,
			 __ATOMIC_RELEASE);
	vq->free_head = vq->next[id];
	vq->num_free -= nring;
	vq->heads[id].token = token;
	vq->heads[id].in_len = in_len;
	vq->heads[id].ndescs = (uint16_t)nring;
	vq->pk_avail = pos;
	vq->pk_avail_wrap = wrap;
	/* 2.8.10 compares positions: they move by descriptors */
	vq->added += nring;
	return 0;
}

/* 2.8.10: does the device want a notification for what was added? */
int vh_drvq_packed_kick_prepare(struct vh_drvq *vq)
{
	uint32_t m = 2 * vq->num, old = vq->pk_kicked_r, new_r, ev_r;
	uint16_t off_wrap, flags, off;
	bool laps;

	/* the descriptor stores before reading the device's event */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	new_r = r_of(vq, vq->pk_avail, vq->pk_avail_wrap);
	vq->pk_kicked_r = new_r;
	/* positions go round 2 * num: whole laps look like nothing added */
	if (!vq->added)
		return 0;
	laps = vq->added >= m;
	vq->added = 0;
	read_event(dev_event(vq), &off_wrap, &flags);
	if (flags == VH_PEVENT_DISABLE)
		return 0;
	if (flags != VH_PEVENT_DESC || !vq->event_idx || laps)
		return 1;
	off = off_wrap & 0x7fff;
	if (off >= vq->num)
		return 1;
	ev_r = r_of(vq, off, off_wrap >> 15);
	return (new_r + m - ev_r - 1) % m < (new_r + m - old) % m;
}

/* 2.8.1: used: AVAIL and USED both equal to the used wrap counter */
static bool used_at(const struct vh_drvq *vq, uint16_t flags)
{
	return !!(flags & VH_PDESC_F_AVAIL) == vq->pk_used_wrap &&
	       !!(flags & VH_PDESC_F_USED) == vq->pk_used_wrap;
}

static uint16_t load_flags(const struct vh_drvq *vq, uint16_t pos)
{
	return le16toh(__atomic_load_n(
		(const uint16_t *)(const void *)&ring(vq)[pos] + 7,
		__ATOMIC_ACQUIRE));
}

int vh_drvq_packed_get_used(struct vh_drvq *vq, void **token, uint32_t *len)
{
	struct head_state *h;
	uint64_t lif;
	uint16_t id;
	uint32_t l;

	if (!used_at(vq, load_flags(vq, vq->pk_used)))
		return 0;
	/* ordered after the acquire load of the flags */
	lif = le64toh(__atomic_load_n(&ring(vq)[vq->pk_used].lif,
				      __ATOMIC_RELAXED));
	id = (uint16_t)(lif >> 32);
	/*
	 * 2.8.4: the length is reserved in a used descriptor without
	 * VIRTQ_DESC_F_WRITE and ignored by drivers (DPDK leaves the
	 * driver's length there for buffers it only read)
	 */
	l = (uint16_t)(lif >> 48) & VH_DESC_F_WRITE ? (uint32_t)lif : 0;
	if (id >= vq->num || !vq->heads[id].token)
		return vh_drvq_break(vq, "id", id);
	h = &vq->heads[id];
	if (l > h->in_len)
		return vh_drvq_break(vq, "length", l);
	*token = h->token;
	*len = l;
	advance(vq, &vq->pk_used, &vq->pk_used_wrap, h->ndescs);
	vq->num_free += h->ndescs;
	h->token = NULL;
	vq->next[id] = vq->free_head;
	vq->free_head = id;
	/*
	 * Keep asking for a notification at the next used position, seen
	 * before our next look at the ring (see vh_drvq_get_used())
	 */
	if (vq->event_idx && vq->cb_enabled) {
		write_event(drv_event(vq),
			    (uint16_t)(vq->pk_used | vq->pk_used_wrap << 15),
			    VH_PEVENT_DESC);
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
	}
	return 1;
}

int vh_drvq_packed_enable_cb(struct vh_drvq *vq)
{
	if (vq->event_idx)
		write_event(drv_event(vq),
			    (uint16_t)(vq->pk_used | vq->pk_used_wrap << 15),
			    VH_PEVENT_DESC);
	else
		write_event(drv_event(vq), 0, VH_PEVENT_ENABLE);
	/* re-check after the store is visible: a buffer used meanwhile */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return used_at(vq, load_flags(vq, vq->pk_used));
}

int vh_drvq_packed_disable_cb(struct vh_drvq *vq)
{
	write_event(drv_event(vq), 0, VH_PEVENT_DISABLE);
	return 0;
}
