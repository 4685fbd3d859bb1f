/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vh_mem - guest memory: a table of mapped regions and the dirty log
 *
 * A vh_mem holds up to VH_MEM_MAX_REGIONS regions, each a range of guest
 * physical addresses (GPA) backed by an fd and mapped MAP_SHARED into this
 * process.  It translates GPAs (and, for vhost-user, the frontend's virtual
 * addresses) to pointers, refusing any range that is not wholly inside one
 * region.
 *
 * Snapshots and concurrency
 * -------------------------
 * The table is an immutable, reference-counted snapshot published through an
 * atomic pointer.  Every change builds a new snapshot (sharing the mappings
 * of the regions it keeps: adding or removing one region never remaps the
 * others) and publishes it with one atomic store.
 *
 *  - "Writers": vh_mem_add_memfd(), vh_mem_add_fd(), vh_mem_remove(),
 *    vh_mem_set_table(), vh_mem_clear(), vh_mem_log_alloc(),
 *    vh_mem_log_set(), vh_mem_log_clear() and vh_mem_unref() of the last
 *    reference.  The caller serializes writers (one control thread, or its
 *    own lock).
 *  - "Readers": every other vh_mem_* call, and vh_devq_pop()/push() on
 *    vrings built on this vh_mem.  Readers take no lock, may run in any
 *    number of threads concurrently with one writer, and each call sees
 *    either the old or the new table as a whole, never a mixture.
 *
 * Lifetime of mappings: a region's mapping (and its fd) is released when the
 * last snapshot holding it is released.  The vh_mem drops its reference to
 * the replaced snapshot during the writer call, or at a later writer call or
 * vh_mem_unref() if a reader was still inside a lookup on it.  Hence:
 *  - a pointer returned by vh_mem_gpa_to_host(), vh_mem_uva_to_host() or
 *    vh_mem_gpa_to_iov() stays valid until a writer call removes or replaces
 *    the region it points into; a thread that dereferences such pointers
 *    while another thread may change the table must get them from a vring
 *    (below) instead;
 *  - a vh_devq pins the snapshot it pops under.  At each vh_devq_pop()
 *    and vh_devq_push() it moves to the newest snapshot (so a dirty log
 *    set meanwhile is used at once); an older snapshot stays mapped until
 *    every element popped under it has been pushed back.  Element iovecs
 *    are therefore valid from pop until push, whatever writers do.
 *
 * Dirty log
 * ---------
 * The log uses the vhost layout: one bit per VH_MEM_LOG_PAGE (4 KiB) page of
 * GPA, bit (gpa / 4096) % 8 of byte gpa / 4096 / 8, set with an atomic OR, so
 * one bitmap serves kernel VHOST_SET_LOG_BASE and vhost-user SET_LOG_BASE.
 * The log belongs to the snapshot, so it is switched atomically too.
 */
#ifndef _LIBVHOST_MEM_H_
#define _LIBVHOST_MEM_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_ctx;
struct vh_mem;

/* The vhost-user maximum (VHOST_USER_MAX_RAM_SLOTS); the kernel's default is lower. */
#define VH_MEM_MAX_REGIONS 509
/* Dirty-log granularity: one bit per page of GPA. */
#define VH_MEM_LOG_PAGE 4096

/* Description of one region. */
struct vh_mem_region {
	uint64_t gpa;       /* guest physical address */
	uint64_t size;      /* bytes */
	uint64_t user_addr; /* the peer's virtual address (vhost-user
			     * frontend's); for regions we allocated: our own
			     * mapping address */
	uint64_t fd_offset; /* offset of the region in fd (vhost-user
			     * mmap_offset) */
	int fd;             /* backing fd (owned by the vh_mem; callers must
			     * not close it) */
	void *host;         /* our mapping of [gpa, gpa + size) */
};

int vh_mem_new(struct vh_ctx *ctx, struct vh_mem **mem);
struct vh_mem *vh_mem_ref(struct vh_mem *mem);
struct vh_mem *vh_mem_unref(struct vh_mem *mem);

/*
 * Allocate a region: a memfd (MFD_CLOEXEC | MFD_ALLOW_SEALING, sealed
 * F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) of size bytes mapped MAP_SHARED,
 * zero-filled.  user_addr of the region is our mapping address.  *host (may
 * be NULL) receives the mapping.
 */
int vh_mem_add_memfd(struct vh_mem *mem, uint64_t gpa, uint64_t size,
		     void **host);

/*
 * Map size bytes of fd from fd_offset as the region at gpa.  On success the
 * vh_mem owns fd; on failure the caller still owns it.
 * Errors: -EINVAL (size 0, gpa/user_addr/fd_offset + size overflows, a
 * regular file shorter than fd_offset + size), -EBADF (fd < 0), -EEXIST
 * (overlaps a region), -ENOSPC (VH_MEM_MAX_REGIONS reached), -errno of
 * fstat()/mmap().  fd_offset needs no alignment.
 */
int vh_mem_add_fd(struct vh_mem *mem, uint64_t gpa, uint64_t size,
		  uint64_t user_addr, int fd, uint64_t fd_offset);

/* Remove the region that is exactly [gpa, gpa + size) (REM_MEM_REG); -ENOENT otherwise. */
int vh_mem_remove(struct vh_mem *mem, uint64_t gpa, uint64_t size);

/*
 * Replace the whole table (SET_MEM_TABLE).  Maps all n regions first (the
 * host field of the input is ignored); if any fails, nothing changes and the
 * caller still owns every fd.  On success the vh_mem owns all n fds (one fd
 * given for several regions is duplicated, F_DUPFD_CLOEXEC, so each region
 * owns one) and the new table replaces the old one atomically with respect
 * to readers.  The regions must not overlap each other (-EEXIST).
 */
int vh_mem_set_table(struct vh_mem *mem, const struct vh_mem_region *regions,
		     unsigned int n);

/* Drop every region (the log stays). */
int vh_mem_clear(struct vh_mem *mem);

int vh_mem_num_regions(const struct vh_mem *mem);
/* Region idx of the current table, sorted by gpa; -ENOENT past the end. */
int vh_mem_get_region(const struct vh_mem *mem, unsigned int idx,
		      struct vh_mem_region *out);

/*
 * Translate [gpa, gpa + len) to our mapping.  -EINVAL for len 0 or an
 * overflowing range, -EFAULT unless the range lies wholly inside one region.
 */
int vh_mem_gpa_to_host(struct vh_mem *mem, uint64_t gpa, uint64_t len,
		       void **host);
/* The same, by the peer's virtual address (vhost-user ring addresses). */
int vh_mem_uva_to_host(struct vh_mem *mem, uint64_t uva, uint64_t len,
		       void **host);
/* Reverse: our pointer to GPA; -EFAULT unless wholly inside one region. */
int vh_mem_host_to_gpa(struct vh_mem *mem, const void *host, uint64_t len,
		       uint64_t *gpa);
/*
 * Translate a range piece by piece across adjacent regions.  Returns the
 * number of iovecs filled, -ENOBUFS if iov_max is too small, -EFAULT on a
 * hole, -EINVAL for len 0 or overflow.
 */
int vh_mem_gpa_to_iov(struct vh_mem *mem, uint64_t gpa, uint64_t len,
		      struct iovec *iov, unsigned int iov_max);

/*
 * Dirty log.
 * vh_mem_log_alloc: a memfd-backed, zeroed bitmap of log_size bytes (for a
 * vhost-user frontend or a kernel vhost user); *fd (may be NULL) stays owned
 * by the vh_mem, *base (may be NULL) is our mapping.
 * vh_mem_log_set: map a log received from a peer (vhost-user SET_LOG_BASE);
 * the vh_mem owns fd on success, the caller on failure.
 * vh_mem_log_clear: drop the log.
 * vh_mem_log_size_for: bytes of bitmap covering every GPA below guest_end.
 * vh_mem_log_write: mark [gpa, gpa + len) dirty; no-op returning 0 when there
 * is no log or len is 0; -EFAULT if the range runs past the end of the log.
 */
int vh_mem_log_alloc(struct vh_mem *mem, uint64_t log_size, int *fd,
		     void **base);
int vh_mem_log_set(struct vh_mem *mem, int fd, uint64_t log_size,
		   uint64_t offset);
int vh_mem_log_clear(struct vh_mem *mem);
size_t vh_mem_log_size_for(uint64_t guest_end);
int vh_mem_log_write(struct vh_mem *mem, uint64_t gpa, uint64_t len);

#ifdef __cplusplus
}
#endif

#endif
