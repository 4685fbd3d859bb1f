/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Virtqueue layouts (virtio 1.x 2.7 split, 2.8 packed) shared by the
 * device side (devq.c, devq-split.c, devq-packed.c) and the driver side
 * (drvq.c, drvq-packed.c), and the device side's state.  All fields are
 * little-endian (VERSION_1; legacy rings on the little-endian hosts we run
 * on are the same).  Shared-memory fields are only accessed with __atomic
 * builtins so every value is fetched exactly once.
 */
#ifndef _VH_QUEUE_INTERNAL_H_
#define _VH_QUEUE_INTERNAL_H_

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>

#include "libvhost-vring.h"

/* 2.7.5: struct virtq_desc, as two 64-bit words for single-copy loads. */
struct vh_desc {
	uint64_t addr;
	uint64_t lfn; /* le32 len | le16 flags << 32 | le16 next << 48 */
};

#define VH_DESC_F_NEXT 1
#define VH_DESC_F_WRITE 2
#define VH_DESC_F_INDIRECT 4

static inline uint32_t vh_desc_len(uint64_t lfn)
{
	return (uint32_t)lfn;
}

static inline uint16_t vh_desc_flags(uint64_t lfn)
{
	return (uint16_t)(lfn >> 32);
}

static inline uint16_t vh_desc_next(uint64_t lfn)
{
	return (uint16_t)(lfn >> 48);
}

static inline uint64_t vh_desc_pack(uint32_t len, uint16_t flags,
				    uint16_t next)
{
	return htole64((uint64_t)len | (uint64_t)flags << 32 |
		       (uint64_t)next << 48);
}

/* 2.7.6: avail ring; used_event follows ring[num]. */
struct vh_avail {
	uint16_t flags;
	uint16_t idx;
	uint16_t ring[];
};

/* 2.7.8: used ring; avail_event follows ring[num]. */
struct vh_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vh_used {
	uint16_t flags;
	uint16_t idx;
	struct vh_used_elem ring[];
};

#define VH_AVAIL_F_NO_INTERRUPT 1
#define VH_USED_F_NO_NOTIFY 1

static inline size_t vh_desc_bytes(unsigned int num)
{
	return (size_t)16 * num;
}

static inline size_t vh_avail_bytes(unsigned int num)
{
	return 6 + (size_t)2 * num; /* flags, idx, ring, used_event */
}

static inline size_t vh_used_bytes(unsigned int num)
{
	return 6 + (size_t)8 * num; /* flags, idx, ring, avail_event */
}

/*
 * 2.7.7.2: true if an event index of `event` asks for a notification when
 * the index moves from old to new.
 */
static inline int vh_need_event(uint16_t event, uint16_t new_idx,
				uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

static inline uint16_t vh_load16(const uint16_t *p, int order)
{
	return le16toh(__atomic_load_n(p, order));
}

static inline void vh_store16(uint16_t *p, uint16_t v, int order)
{
	__atomic_store_n(p, htole16(v), order);
}

/* ---------------------------------------------------------------------- */
/* device side state: devq.c, devq-split.c (split) and devq-packed.c     */
/* ---------------------------------------------------------------------- */
struct vh_mem_table;
struct vh_mem_log;
struct vh_iotlb;
struct vh_iotlb_table;

struct vh_iotlb_range;

/*
 * A superseded IOTLB snapshot that elements in flight still pin, and how
 * many.  A ring lets its elements pin at most VH_DEVQ_IPIN_MAX of them,
 * of at most VH_DEVQ_IPIN_ENTRIES entries together; an element popped
 * past that pins a snapshot of its own (vh_devq_pin_itab()).
 */
struct vh_devq_ipin {
	struct vh_iotlb_table *t;
	unsigned int inflight;
};

#define VH_DEVQ_IPIN_MAX 64u
#define VH_DEVQ_IPIN_ENTRIES 16384u /* 2 * VH_IOTLB_MAX_ENTRIES */

/* An older snapshot that still has elements in flight. */
struct old_pin {
	struct vh_mem_table *t;
	unsigned int inflight;
	struct old_pin *next;
};

struct vh_devq {
	/* hot: pop and push */
	struct vh_desc *desc;
	struct vh_avail *avail;
	struct vh_used *used;
	struct vh_mem_table *table;   /* pinned snapshot (rings, new pops) */
	/* per head: snapshot popped under (packed: maybe VH_HT_COMPLEX) */
	struct vh_mem_table **head_table;
	/* per head: the push_batch call that last saw it (duplicate check) */
	uint32_t *batch_seen;
	uint32_t batch_epoch;
	const uint64_t *gen_ptr;
	uint64_t table_gen;           /* VR_GEN_OFF unless ready: pop goes slow */
	/*
	 * table_gen for one layout, VR_GEN_OFF for the other: the exported
	 * calls' first check both sends a split ring down its fast path and
	 * a packed one to its own, with no test of the layout on either
	 * (vh_devq_set_gen() keeps the three together).
	 */
	uint64_t split_gen, packed_gen;
	uint64_t c_gpa, c_size;       /* the region of the last hit, copied */
	uint8_t *c_host;
	uint32_t push_limit;          /* size: ready, split, no IOTLB, no log */
	/*
	 * Split: the used index, 32 bits (see need_notify).  Packed: Queue
	 * Size times the used position's wraps, so used_ctr + pk_used counts
	 * the positions used (the fast paths add to it only when they wrap)
	 */
	uint32_t used_ctr;
	uint16_t mask;
	uint16_t last_avail;
	uint16_t shadow_avail;        /* avail->idx as last read */
	bool log_any;                 /* log_used || log_all */
	bool iotlb_on;                /* ACCESS_PLATFORM with an IOTLB */
	unsigned int cur_inflight;    /* popped under table, not pushed */
	unsigned int hint;            /* last region hit in table */

	/* cold */
	bool ready;                   /* rings mapped and not broken */
	bool log_used;                /* dirty-log used ring writes */
	bool log_all;                 /* dirty-log written buffers */
	bool event_idx;
	int refcount;
	struct vh_ctx *ctx;
	struct vh_mem *mem;
	unsigned int index;
	unsigned int size;            /* queue size, 0 = not set */
	bool broken;
	bool addr_set;
	bool notify_enabled;
	bool signalled_valid;
	uint32_t signalled_ctr;
	uint16_t avail_event_written;
	bool avail_event_valid;
	uint64_t features;
	struct vh_devq_addr addr;
	struct old_pin *old_pins;
	int kick_fd, call_fd, err_fd;
	/* IOTLB (see the top of devq.c) */
	struct vh_iotlb *iotlb;
	struct vh_iotlb_table *itab;      /* pinned: rings translated in it */
	const uint64_t *igen_ptr;
	uint64_t itab_gen;
	struct vh_iotlb_table **head_itab; /* per head: pinned at pop */
	bool rings_pending;               /* rings wait for a translation */

	/*
	 * Packed layout (devq-packed.c).  desc is then the descriptor ring,
	 * avail the driver event suppression area, used the device one;
	 * last_avail == shadow_avail and push_limit == 0 keep the split fast
	 * paths out, so they fall to the general paths, which dispatch.
	 */
	bool packed;
	bool pk_avail_wrap, pk_used_wrap;
	uint16_t pk_avail, pk_used;   /* next ring positions */
	/*
	 * From the wrap counters, by vh_devq_pk_wraps(): the AVAIL and USED
	 * flags of an available descriptor (2.8.1) where the upper half of
	 * lif holds them (above the id), and those of a used one where lif
	 * holds them (2.8.9), without and with WRITE; the fast paths need no
	 * table
	 */
	uint32_t pk_avail_want;
	uint64_t pk_used_wf, pk_used_wfw;
	/* size: ready, packed, no IOTLB, no log, no inflight region */
	uint32_t pk_push_limit;
	/* size: ready, packed, no inflight region (the one-element pop) */
	uint32_t pk_pop_limit;
	uint16_t pk_wr_free;          /* free list of pk_wr */
	uint16_t pk_ev_written;       /* off_wrap last written, if valid */
	unsigned int pk_inflight_descs; /* ring descriptors popped, not used */
	uint32_t pk_signalled_r;      /* used position at the last notify */
	struct vh_pk_id *pk_ids;      /* per buffer id */
	struct vh_pk_iid *pk_iids;    /* per buffer id, inflight region */
	struct vh_pk_wr *pk_wr;       /* writable buffers, for the dirty log */

	/*
	 * Inflight region (vhost-user.rst, "Inflight I/O tracking", packed
	 * layout), attached by vh_devq_set_inflight().  It is shared with the
	 * front-end, so at run time it is only written: the free list and
	 * the descriptors to resubmit live in the shadows below.
	 */
	struct vh_infl_pregion *pk_infl;
	uint16_t *pk_infl_next;       /* shadow of desc[].next */
	struct vh_infl_saved *pk_infl_saved; /* descriptors to resubmit */
	uint16_t *pk_resub;           /* head entries to resubmit, in order */
	unsigned int pk_resub_n, pk_resub_next;
	uint16_t pk_infl_free;        /* free_head */
	/*
	 * descriptors of the chains still to resubmit: counted in
	 * pk_inflight_descs from the recovery on (their region entries are
	 * taken), so that pops leave them room
	 */
	uint16_t pk_resub_descs;
	uint64_t pk_infl_ctr;         /* the next head's counter */

	/*
	 * IOTLB snapshots the elements in flight pin, bounded
	 * (vh_devq_pin_itab()): how many pin itab (ipin_cur), and the
	 * superseded ones still pinned (ipin[], each listed with a reference
	 * of its own); and irange[], the IOVA ranges the chain being popped
	 * went through
	 */
	uint64_t ipin_entries;            /* the superseded ones' entries */
	struct vh_devq_ipin *ipin;
	struct vh_iotlb_range *irange;
	unsigned int ipin_cur, ipin_n, ipin_cap;
	unsigned int irange_n, irange_cap;
	bool irange_lost;                 /* one did not fit (ENOMEM) */
};

/* vhost-user.rst, "Inflight I/O tracking": DescStatePacked */
struct vh_infl_pdesc {
	uint8_t inflight;
	uint8_t padding;
	uint16_t next;
	uint16_t last;
	uint16_t num;
	uint64_t counter;
	uint16_t id;
	uint16_t flags;
	uint32_t len;
	uint64_t addr;
};

/* QueueRegionPacked */
struct vh_infl_pregion {
	uint64_t features;
	uint16_t version;
	uint16_t desc_num;
	uint16_t free_head;
	uint16_t old_free_head;
	uint16_t used_idx;
	uint16_t old_used_idx;
	uint8_t used_wrap_counter;
	uint8_t old_used_wrap_counter;
	uint8_t padding[7];
	struct vh_infl_pdesc desc[];
};

/* A descriptor of a chain to resubmit, copied out of the region. */
struct vh_infl_saved {
	uint64_t addr;
	uint32_t len;
	uint16_t id, flags;
};

/* No snapshot generation ever gets this high. */
#define VR_GEN_OFF UINT64_MAX

static inline void vh_devq_set_gen(struct vh_devq *vr, uint64_t gen)
{
	vr->table_gen = gen;
	vr->split_gen = vr->packed ? VR_GEN_OFF : gen;
	vr->packed_gen = vr->packed ? gen : VR_GEN_OFF;
}

/* 2.8.1: struct pvirtq_desc, as two 64-bit words for single-copy loads. */
struct vh_pdesc {
	uint64_t addr;
	uint64_t lif; /* le32 len | le16 id << 32 | le16 flags << 48 */
};

#define VH_PDESC_F_AVAIL (1u << 7)
#define VH_PDESC_F_USED (1u << 15)
/* AVAIL and USED in a descriptor's lif */
#define VH_PK_LIF_AU ((uint64_t)(VH_PDESC_F_AVAIL | VH_PDESC_F_USED) << 48)

/* After a wrap counter changed: the fields that follow them. */
static inline void vh_devq_pk_wraps(struct vh_devq *vr)
{
	vr->pk_avail_want = (vr->pk_avail_wrap ? VH_PDESC_F_AVAIL :
						 VH_PDESC_F_USED) << 16;
	vr->pk_used_wf = vr->pk_used_wrap ? VH_PK_LIF_AU : 0;
	vr->pk_used_wfw = vr->pk_used_wf | (uint64_t)VH_DESC_F_WRITE << 48;
}

/* 2.8.10: struct pvirtq_event_suppress */
struct vh_pevent {
	uint16_t off_wrap;
	uint16_t flags;
};

#define VH_PEVENT_ENABLE 0
#define VH_PEVENT_DISABLE 1
#define VH_PEVENT_DESC 2

/*
 * A packed ring's head_table[] entry tags the snapshot of an id whose
 * record is not simple (a chain, an indirect table: see struct vh_pk_id)
 * with bit 0, free in a pointer to a malloc'ed table.  The push fast paths
 * compare the entry with the current snapshot, so such an id goes the
 * general way without the record being read.  vh_ht_table() is the
 * snapshot itself.
 */
#define VH_HT_COMPLEX ((uintptr_t)1)

static inline struct vh_mem_table *vh_ht_tag(struct vh_mem_table *t,
					     bool complex)
{
	/* pointer arithmetic, not an integer cast: the compiler sees t */
	return (struct vh_mem_table *)(void *)((char *)t + complex);
}

static inline struct vh_mem_table *vh_ht_table(struct vh_mem_table *p)
{
	return (struct vh_mem_table *)(void *)((char *)p -
					       ((uintptr_t)p & VH_HT_COMPLEX));
}

/*
 * Per buffer id of a packed ring, while in flight: 16 bytes, so the id
 * indexes it with a shift.
 */
struct vh_pk_id {
	uint32_t ind_len;  /* indirect table, re-walked for the log */
	/* VH_PK_COMPLEX | ring descriptors - 1, for the used position */
	uint16_t ndescs;
	uint16_t wr;       /* first pk_wr record, or VH_PK_NONE */
	uint64_t ind_gpa;
};
_Static_assert(sizeof(struct vh_pk_id) == 16, "vh_pk_id is 16 bytes");

/* Per buffer id, with an inflight region: its head and last entries. */
struct vh_pk_iid {
	uint16_t ient, ilast;
};

/* A device-writable direct buffer of an in-flight packed chain. */
struct vh_pk_wr {
	uint64_t gpa;
	uint32_t len;
	uint16_t next;
};

#define VH_PK_NONE 0xffff
_Static_assert(VH_DEVQ_MAX_SIZE < VH_PK_NONE, "VH_PK_NONE beyond any index");
/*
 * A simple vh_pk_id is one ring descriptor, a single direct buffer: the
 * descriptor itself, as the fast pop copies it.  ind_len is its length,
 * ndescs its id (below VH_DEVQ_MAX_SIZE: VH_PK_COMPLEX clear), wr its flags
 * (VH_DESC_F_WRITE: writable, to be logged), ind_gpa its address.  Any
 * other record has VH_PK_COMPLEX in ndescs.
 */
#define VH_PK_COMPLEX 0x8000
_Static_assert(VH_DEVQ_MAX_SIZE <= VH_PK_COMPLEX,
	       "a buffer id has VH_PK_COMPLEX clear");

/* Chain walk (devq-split.c): buffers into the caller's iovecs. */
struct vh_devq_walk {
	struct iovec *iov;
	unsigned int iov_max;
	unsigned int out_num, in_num;
	uint64_t out_len, in_len;
	/*
	 * The caller's iovecs ran out: the rest of the chain is still walked
	 * and checked (a loop or a bad buffer breaks the ring, whatever the
	 * caller's array size), only not recorded; pop then says -ENOBUFS.
	 */
	bool nobufs;
};

/* A popped element's counts, from the walk of its chain. */
static inline void vh_devq_elem_set_walk(struct vh_devq_elem *e,
					 const struct vh_devq_walk *w)
{
	e->out_num = w->out_num;
	e->in_num = w->in_num;
	e->out_len = (uint32_t)w->out_len;
	e->in_len = (uint32_t)w->in_len;
}

/* devq.c and devq-split.c, for each other and devq-packed.c */
/*
 * Fill in a single-descriptor element.  out_num/in_num and out_len/in_len
 * are adjacent u32 pairs, and id/ndescs a u16 pair: each pair is one
 * store, of 1 or len shifted into the half that VH_DESC_F_WRITE picks
 * (wr_shift 32 for a device-writable buffer, else 0).  No branch on the
 * direction, which mixed traffic could not predict.
 */
_Static_assert(offsetof(struct vh_devq_elem, ndescs) ==
			       offsetof(struct vh_devq_elem, id) + 2 &&
		       offsetof(struct vh_devq_elem, in_num) ==
			       offsetof(struct vh_devq_elem, out_num) + 4 &&
		       offsetof(struct vh_devq_elem, out_len) ==
			       offsetof(struct vh_devq_elem, in_num) + 4 &&
		       offsetof(struct vh_devq_elem, in_len) ==
			       offsetof(struct vh_devq_elem, out_len) + 4,
	       "vh_devq_elem pairs are adjacent");

static inline __attribute__((always_inline)) void
elem_set_single(struct vh_devq_elem *e, uint32_t head, uint32_t len,
		unsigned int wr_shift)
{
	char *p = (char *)e;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	uint32_t idn = head | 1u << 16;
	uint64_t num = 1ull << wr_shift, lens = (uint64_t)len << wr_shift;
#else
	uint32_t idn = (uint32_t)head << 16 | 1u;
	uint64_t num = (1ull << 32) >> wr_shift;
	uint64_t lens = ((uint64_t)len << 32) >> wr_shift;
#endif

	memcpy(p + offsetof(struct vh_devq_elem, id), &idn, 4);
	memcpy(p + offsetof(struct vh_devq_elem, out_num), &num, 8);
	memcpy(p + offsetof(struct vh_devq_elem, out_len), &lens, 8);
}

__attribute__((format(printf, 2, 3))) int
vh_devq_break(struct vh_devq *vr, const char *fmt, ...);
int vh_devq_add_buf(struct vh_devq *vr, struct vh_devq_walk *w,
		    uint64_t addr, uint32_t len, bool write);
int vh_devq_switch_table(struct vh_devq *vr);
/*
 * Give head id back (false if it was not popped).  Under the IOTLB the
 * element keeps its snapshot (head_itab) until vh_devq_put_itab(), after
 * the push has logged its buffers through it: the ring's own snapshot may
 * have lost their translations since (an eviction, a flush).
 */
bool vh_devq_put_head(struct vh_devq *vr, uint32_t id);
/*
 * Under the IOTLB, at a pop: element id pins the translations it was
 * popped under (head_itab), the ring's snapshot or, past the ring's
 * bound on superseded snapshots, one of its own made of the ranges its
 * walk went through (vh_devq_irange_add()).
 */
void vh_devq_pin_itab(struct vh_devq *vr, uint32_t id);
/* The chain walk starts (IOTLB): no range yet. */
static inline void vh_devq_irange_reset(struct vh_devq *vr)
{
	vr->irange_n = 0;
	vr->irange_lost = false;
}
/* The walk translated [iova, iova + len) through itab (len > 0). */
void vh_devq_irange_add(struct vh_devq *vr, uint64_t iova, uint64_t len);
void vh_devq_put_itab(struct vh_devq *vr, uint32_t id);
void vh_devq_put_itabs(struct vh_devq *vr,
		       const struct vh_devq_used_elem *used, unsigned int n);
/* The IOTLB snapshot head id's buffers were translated under. */
static inline const struct vh_iotlb_table *
vh_devq_elem_itab(const struct vh_devq *vr, uint32_t id)
{
	if (vr->head_itab && id < vr->size && vr->head_itab[id])
		return vr->head_itab[id];
	return vr->itab;
}
int vh_devq_take_batch(struct vh_devq *vr,
		       const struct vh_devq_used_elem *used, unsigned int n);
/*
 * Dirty-log a written buffer at a descriptor address: a GPA, or an IOVA
 * translated through it (the element's snapshot, vh_devq_elem_itab()).
 */
void vh_devq_mark_log(const struct vh_devq *vr,
		      const struct vh_iotlb_table *it,
		      const struct vh_mem_log *l, uint64_t addr, uint64_t len);
void vh_devq_log_used_area(struct vh_devq *vr, uint64_t off, uint64_t len);
static inline bool vh_devq_has_feature(const struct vh_devq *vr,
				       unsigned int bit)
{
	return vr->features & (1ull << bit);
}

/* [base, base + size) wraps around the 64-bit space (size > 0) */
static inline bool vh_devq_overflows(uint64_t base, uint64_t size)
{
	return size - 1 > UINT64_MAX - base;
}

/* devq.c, for devq-split.c: the region of the last hit for the fast paths */
void vh_devq_cache_region(struct vh_devq *vr);
int vh_devq_max_indirect(const struct vh_devq *vr);
/* devq-split.c's general paths, for the packed entries' fallbacks */
int vh_devq_pop_general(struct vh_devq *vr, struct vh_devq_elem *elem);
int vh_devq_push_general(struct vh_devq *vr, uint16_t id, uint32_t len);

/* devq-packed.c */
int vh_devq_packed_prepare(struct vh_devq *vr);
void vh_devq_packed_free(struct vh_devq *vr);
void vh_devq_packed_forget(struct vh_devq *vr);
void vh_devq_packed_mapped(struct vh_devq *vr);
int vh_devq_packed_pop(struct vh_devq *vr, struct vh_devq_elem *elem);
int vh_devq_packed_pop_entry(struct vh_devq *vr, struct vh_devq_elem *elem);
/* An IOTLB ring moves to the IOTLB's current snapshot; 0 or -errno. */
int vh_devq_iotlb_prepare(struct vh_devq *vr);
/* the snapshot seen current (packed_gen), no IOTLB */
int vh_devq_packed_pop_batch_entry(struct vh_devq *vr,
				   struct vh_devq_elem *elems, unsigned int n);
int vh_devq_packed_pop_batch(struct vh_devq *vr, struct vh_devq_elem *elems,
			     unsigned int n);
int vh_devq_packed_push(struct vh_devq *vr, uint16_t id, uint32_t len);
/* id below 2^16 (vh_devq_push() widened it once) */
int vh_devq_packed_push_entry(struct vh_devq *vr, uint32_t id, uint32_t len);
int vh_devq_packed_push_batch(struct vh_devq *vr,
			      const struct vh_devq_used_elem *used,
			      unsigned int n);
/* the snapshot seen current (packed_gen), n not 0 */
int vh_devq_packed_push_batch_entry(struct vh_devq *vr,
				    const struct vh_devq_used_elem *used,
				    unsigned int n);
int vh_devq_packed_need_notify(struct vh_devq *vr);
int vh_devq_packed_enable_notification(struct vh_devq *vr);
int vh_devq_packed_disable_notification(struct vh_devq *vr);
int vh_devq_packed_avail_count(struct vh_devq *vr, uint16_t *n);
int vh_devq_packed_set_base(struct vh_devq *vr, uint32_t base);
uint32_t vh_devq_packed_get_base(const struct vh_devq *vr);
void vh_devq_packed_infl_detach(struct vh_devq *vr);
void vh_devq_packed_limits(struct vh_devq *vr);

/* ---------------------------------------------------------------------- */
/* driver side state, shared by drvq.c (split) and drvq-packed.c          */
/* ---------------------------------------------------------------------- */
struct head_state {
	void *token;      /* NULL: not in flight */
	uint32_t in_len;  /* writable bytes: the most the device may report */
	uint16_t ndescs;  /* ring descriptors of the chain */
};

struct vh_drvq {
	int refcount;
	struct vh_ctx *ctx;
	struct vh_mem *mem;
	struct vh_mem_table *table; /* pins our ring mappings */
	unsigned int index;
	unsigned int num;
	uint16_t mask;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	struct vh_desc *desc;
	struct vh_avail *avail;
	struct vh_used *used;
	bool event_idx, indirect, broken, cb_enabled;
	uint16_t free_head;
	unsigned int num_free;
	uint16_t *next;              /* private free list / chain links */
	struct head_state *heads;
	uint16_t avail_idx;          /* next avail index to fill */
	uint16_t kicked_avail;       /* avail idx at the last kick_prepare */
	/*
	 * Made available since the last kick_prepare, in the units of the
	 * positions (split: chains, packed: descriptors), which alone cannot
	 * tell none from a whole number of laps
	 */
	uint32_t added;
	uint16_t last_used;
	uint16_t avail_flags;        /* shadow of avail->flags */
	uint64_t ind_gpa;
	uint8_t *ind_host;
	size_t ind_slot;             /* bytes per descriptor slot, 0 = none */
	int kick_fd, call_fd;

	/*
	 * Packed layout (drvq-packed.c): desc is the descriptor ring, avail
	 * our event suppression area, used the device's; next[] is the free
	 * list of buffer ids (free_head its first), heads[] per buffer id.
	 */
	bool packed;
	bool pk_avail_wrap, pk_used_wrap;
	uint16_t pk_avail, pk_used;  /* next positions to fill / to read */
	uint32_t pk_kicked_r;        /* position (r) at the last kick_prepare */
	uint16_t pk_ev_flags;        /* shadow of our event flags */
};

/* drvq-packed.c */
int vh_drvq_packed_layout(struct vh_drvq *vq);
int vh_drvq_packed_add(struct vh_drvq *vq, const struct vh_sg *sg,
		       unsigned int out, unsigned int in, void *token,
		       uint32_t in_len, bool indirect);
int vh_drvq_packed_kick_prepare(struct vh_drvq *vq);
int vh_drvq_packed_get_used(struct vh_drvq *vq, void **token, uint32_t *len);
int vh_drvq_packed_enable_cb(struct vh_drvq *vq);
int vh_drvq_packed_disable_cb(struct vh_drvq *vq);
int vh_drvq_break(struct vh_drvq *vq, const char *what, unsigned int v);

static inline int vh_is_pow2_size(unsigned int num)
{
	return num && num <= VH_DEVQ_MAX_SIZE && (num & (num - 1)) == 0;
}

#endif
