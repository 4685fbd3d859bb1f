/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Packed virtqueue, device side: what devq-packed.c (pop, push) and
 * devq-packed-infl.c (the inflight region) share.
 */
#ifndef _VH_DEVQ_PACKED_INTERNAL_H_
#define _VH_DEVQ_PACKED_INTERNAL_H_

#include <endian.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "queue-internal.h"

static inline struct vh_pdesc *pk_ring(const struct vh_devq *vr)
{
	return (struct vh_pdesc *)(void *)vr->desc;
}

static inline uint16_t pd_load_flags(const struct vh_pdesc *d, int order)
{
	/* flags: the last 16 bits of the descriptor */
	return le16toh(__atomic_load_n((const uint16_t *)(const void *)d + 7,
				       order));
}

/*
 * The inflight region's padding byte we set at every commit: a region at
 * a fresh ring's position that has it is a ring that went round, not one
 * fresh from GET_INFLIGHT_FD (zeroed padding).  Other back-ends ignore
 * padding.
 */
#define INFL_PAD_USED 0

/* Advance (pos, wrap) by n <= size descriptors. */
static inline void pk_advance(const struct vh_devq *vr, uint16_t *pos,
			      bool *wrap, unsigned int n)
{
	unsigned int p = *pos + n;

	if (p >= vr->size) {
		p -= vr->size;
		*wrap = !*wrap;
	}
	*pos = (uint16_t)p;
}

/* The id's record is simple (no VH_PK_COMPLEX): a single direct buffer. */
static inline bool pk_id_simple(const struct vh_pk_id *pi)
{
	return !(pi->ndescs & VH_PK_COMPLEX);
}

/* ndescs of a record that is not simple: nring ring descriptors (1..size) */
static inline uint16_t pk_complex_ndescs(unsigned int nring)
{
	return (uint16_t)(VH_PK_COMPLEX | (nring - 1));
}

/* The ring descriptors of an id in flight, from its record. */
static inline uint16_t pk_ndescs(const struct vh_pk_id *pi)
{
	return pk_id_simple(pi) ? 1 :
				  (uint16_t)((pi->ndescs & ~VH_PK_COMPLEX) + 1);
}

/*
 * The head_table[] entry of an id popped with record pi: the current
 * snapshot, tagged VH_HT_COMPLEX unless the record is simple.  The fast pop
 * writes simple records only, untagged; everything else that writes a
 * record takes its entry from here.
 */
static inline struct vh_mem_table *pk_head_entry(const struct vh_devq *vr,
						 const struct vh_pk_id *pi)
{
	return vh_ht_tag(vr->table, !pk_id_simple(pi));
}

/* 2.8.7: walk an indirect table into w (devq-packed.c) */
int vh_devq_packed_walk_indirect(struct vh_devq *vr, struct vh_devq_walk *w,
				 uint64_t addr, uint32_t len);

#endif
