/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Split virtqueue layout (virtio 1.x 2.7) shared by the device side
 * (devq.c) and the driver side (drvq.c).  All fields are little-endian
 * (VERSION_1; legacy rings on the little-endian hosts we run on are the
 * same).  Shared-memory fields are only accessed with __atomic builtins so
 * every value is fetched exactly once.
 */
#ifndef _VH_QUEUE_INTERNAL_H_
#define _VH_QUEUE_INTERNAL_H_

#include <endian.h>
#include <stdint.h>

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

static inline int vh_is_pow2_size(unsigned int num)
{
	return num && num <= VH_DEVQ_MAX_SIZE && (num & (num - 1)) == 0;
}

#endif
