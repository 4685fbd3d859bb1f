/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * IOTLB: IOVA ranges mapped to host memory with access permissions, for
 * devices behind a (virtual) IOMMU (VIRTIO_F_ACCESS_PLATFORM).  Private.
 *
 * Transport-neutral: an entry maps [iova, iova + size) to a host address
 * range, optionally holding a reference on the mmap() it lies in (struct
 * vh_mem_map), so that the memory stays mapped for as long as a snapshot
 * names it.  vhost-user feeds it with IOTLB_MSG updates (the front-end's
 * user address resolved through the memory table, vh_iotlb_update_uva());
 * a VDUSE transport feeds it with VDUSE_IOTLB_GET_FD mappings.
 *
 * Readers (the device-side rings, on worker threads) pin immutable
 * snapshots (struct vh_iotlb_table) exactly as they pin memory tables:
 * writers publish a new snapshot and retire the old one RCU-style (see
 * mem.c), so an invalidation never unmaps memory a reader still uses.
 * Writers (updates, invalidations) are serialized by the object's lock.
 */
#ifndef _VH_IOTLB_INTERNAL_H_
#define _VH_IOTLB_INTERNAL_H_

#include <stdint.h>
#include <sys/uio.h>

#include "libvhost-internal.h"
#include "mem-internal.h"

/* Access permissions ("An IOTLB message": perm), as a bit mask. */
#define VH_IOTLB_RO 1u
#define VH_IOTLB_WO 2u
#define VH_IOTLB_RW 3u

/* Misses are de-duplicated per page of this size. */
#define VH_IOTLB_PAGE 4096ull
/* Entries one IOTLB holds; the oldest are evicted past this (a cache). */
#define VH_IOTLB_MAX_ENTRIES 8192u
/* Pages with a miss reported and not answered yet. */
#define VH_IOTLB_MAX_PENDING 256u

struct vh_iotlb;

/* An entry whose guest physical address is not known (VDUSE's). */
#define VH_IOTLB_NO_GPA UINT64_MAX

struct vh_iotlb_ent {
	uint64_t iova;
	uint64_t size;            /* > 0, iova + size - 1 does not wrap */
	uint8_t *host;            /* host address of iova */
	/*
	 * Guest physical address of iova as the memory table resolved it
	 * when the entry was made (the dirty log's address: host may lie in
	 * a mapping a newer table no longer has), or VH_IOTLB_NO_GPA
	 */
	uint64_t gpa;
	struct vh_mem_map *map;   /* referenced, or NULL (caller's memory) */
	uint64_t seq;             /* insertion order, for eviction */
	unsigned int perm;        /* VH_IOTLB_RO/WO/RW */
};

/* An immutable snapshot: entries sorted by iova, never overlapping. */
struct vh_iotlb_table {
	int refcount;
	unsigned int n;
	struct vh_iotlb_ent e[];
};

/* Reports a miss: iova is the first address without a translation. */
typedef void (*vh_iotlb_miss_fn)(struct vh_iotlb *tlb, void *data,
				 uint64_t iova, unsigned int perm);

int vh_iotlb_new(struct vh_ctx *ctx, struct vh_iotlb **out);
struct vh_iotlb *vh_iotlb_ref(struct vh_iotlb *tlb);
struct vh_iotlb *vh_iotlb_unref(struct vh_iotlb *tlb);
/* fn(tlb, data, ...) for every miss not pending already; NULL: none. */
void vh_iotlb_set_miss_fn(struct vh_iotlb *tlb, vh_iotlb_miss_fn fn,
			  void *data);

/*
 * Map [iova, iova + size) to host with perm.  map (may be NULL) gets a
 * reference per entry.  An update overlapping entries that translate the
 * overlap the same way (same host address, same permissions) replaces
 * them; one that disagrees is refused (-EEXIST): an IOMMU mapping changes
 * only through an invalidation.  -EINVAL: size 0, wrap, bad perm.
 */
int vh_iotlb_update(struct vh_iotlb *tlb, uint64_t iova, uint64_t size,
		    void *host, struct vh_mem_map *map, unsigned int perm);
/*
 * The same with a front-end user address (vhost-user IOTLB_MSG uaddr)
 * resolved through memory table t: [uaddr, uaddr + size) must lie in
 * mapped regions (-EFAULT), and becomes one entry per region it crosses.
 */
int vh_iotlb_update_uva(struct vh_iotlb *tlb, const struct vh_mem_table *t,
			uint64_t iova, uint64_t size, uint64_t uaddr,
			unsigned int perm);
/*
 * Unmap [iova, iova + size): entries are cut at its edges.  Size 0 is
 * the range to the end of the address space (from 0: a flush).
 */
int vh_iotlb_invalidate(struct vh_iotlb *tlb, uint64_t iova, uint64_t size);
/* Drop every entry and pending miss. */
int vh_iotlb_flush(struct vh_iotlb *tlb);
unsigned int vh_iotlb_num_entries(struct vh_iotlb *tlb);

/* Pin the current snapshot (lock-free). */
struct vh_iotlb_table *vh_iotlb_table_get(struct vh_iotlb *tlb);
struct vh_iotlb_table *vh_iotlb_table_ref(struct vh_iotlb_table *t);
void vh_iotlb_table_put(struct vh_iotlb_table *t);
/* Bumped (release) at every publication. */
const uint64_t *vh_iotlb_generation_ptr(const struct vh_iotlb *tlb);

/*
 * Translate [iova, iova + len) for an access needing perm into iov[0 ..
 * iov_max), host-contiguous pieces merged.  Returns the number of entries,
 * -EAGAIN on a miss (*miss: the first untranslated address), -EACCES
 * (mapped without perm), -ENOBUFS (iov[] then holds the first iov_max
 * pieces: a caller may go on after them), -EINVAL (len 0 / wrap).
 */
int vh_iotlb_table_to_iov(const struct vh_iotlb_table *t, uint64_t iova,
			  uint64_t len, unsigned int perm, struct iovec *iov,
			  unsigned int iov_max, uint64_t *miss);
/*
 * For the dirty log: the entry translating iova, for an access needing
 * perm.  *gpa is iova's guest physical address (VH_IOTLB_NO_GPA if the
 * entry has none: *host is then iova's host address), *len the bytes from
 * iova on that the entry covers.  -EAGAIN (not mapped), -EACCES (mapped
 * without perm).
 */
int vh_iotlb_table_gpa(const struct vh_iotlb_table *t, uint64_t iova,
		       unsigned int perm, uint64_t *gpa, uint8_t **host,
		       uint64_t *len);
/* An IOVA range a reader translated. */
struct vh_iotlb_range {
	uint64_t iova;
	uint64_t len;             /* > 0, iova + len - 1 does not wrap */
};

/*
 * A snapshot of its own for one reader (an element in flight, for its
 * dirty log): what t translates of the ranges r[0 .. n) (sorted here),
 * clipped to them.  Pieces that follow each other in IOVA, host and guest
 * addresses within one mapping are merged, so it holds about as many
 * entries as the ranges have host pieces (one per range more, at most,
 * and one per mapping boundary), not the size of t.  Its
 * entries are RW: the reader's accesses were checked against t.  Parts t
 * does not translate are left out.  0 or -ENOMEM.
 */
int vh_iotlb_table_extract(const struct vh_iotlb_table *t,
			   struct vh_iotlb_range *r, unsigned int n,
			   struct vh_iotlb_table **out);

/*
 * One host-contiguous range (ring areas, indirect tables): the pointer,
 * else NULL with *err -EAGAIN (*miss set), -EACCES, -EFAULT (not
 * contiguous in host memory) or -EINVAL.
 */
void *vh_iotlb_table_translate(const struct vh_iotlb_table *t, uint64_t iova,
			       uint64_t len, unsigned int perm, uint64_t *miss,
			       int *err);

/*
 * A reader missed at iova: report it through the miss callback unless
 * that page (with that perm) is pending already.  1 reported, 0 pending.
 * Any thread.
 */
int vh_iotlb_miss(struct vh_iotlb *tlb, uint64_t iova, unsigned int perm);
/*
 * The miss of iova's page could not be reported (no back-end channel yet,
 * a send that failed): forget it, so that the next access reports again
 * rather than wait for ever for an answer to a miss nobody saw.
 */
void vh_iotlb_miss_forget(struct vh_iotlb *tlb, uint64_t iova);
/*
 * Forget every pending miss: the channel they went out on is gone (a new
 * one replaced it), and with it any answer; the next accesses report
 * again.
 */
void vh_iotlb_miss_forget_all(struct vh_iotlb *tlb);

/* ---- users of the IOTLB elsewhere in the library ---- */

/*
 * devq.c: translate the ring's addresses through tlb (a reference is
 * taken; NULL detaches) while VIRTIO_F_ACCESS_PLATFORM is negotiated.
 */
struct vh_devq;
int vh_devq_set_iotlb(struct vh_devq *vr, struct vh_iotlb *tlb);
/*
 * 1 if the rings are translated (or need no IOTLB), 0 while a translation
 * is missing (tried again now; the miss is reported), or -errno.
 */
int vh_devq_iotlb_ready(struct vh_devq *vr);

#endif
