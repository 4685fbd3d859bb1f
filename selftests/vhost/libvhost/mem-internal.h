/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Guest memory internals shared with the virtqueue code: the snapshot
 * (struct vh_mem_table) and inline translation helpers for the datapath.
 */
#ifndef _VH_MEM_INTERNAL_H_
#define _VH_MEM_INTERNAL_H_

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "libvhost-internal.h"

/* One mmap() of an fd; shared by every snapshot that holds the region. */
struct vh_mem_map {
	int refcount;
	int fd;        /* owned; -1 while the caller still owns it */
	void *addr;    /* what mmap() returned */
	size_t len;
};

/* A reference on a mapping (for IOTLB entries), and its release. */
struct vh_mem_map *vh_mem_map_ref(struct vh_mem_map *m);
void vh_mem_map_put(struct vh_mem_map *m);

/* The dirty log bitmap, shared like a mapping. */
struct vh_mem_log {
	int refcount;
	int fd;
	void *addr;
	size_t len;
	uint8_t *base; /* addr + the page offset of the log */
	uint64_t size; /* bytes of bitmap */
#ifdef ENABLE_DEBUG
	bool test_drop; /* fault injection: marks are dropped */
#endif
};

struct vh_mem_reg {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
	uint64_t uva;
	uint64_t fd_offset;
	struct vh_mem_map *map;
};

/* An immutable snapshot: regions sorted by gpa, plus the log. */
struct vh_mem_table {
	int refcount;
	unsigned int n;
	unsigned int hint;     /* last hit; a racy hint read/written relaxed */
	struct vh_mem_log *log;
	struct vh_mem_reg r[];
};

/*
 * The unit fd maps in: a huge page on hugetlbfs (memfd MFD_HUGETLB too),
 * else the page.  st is fd's fstat().
 */
uint64_t vh_mem_map_granule(int fd, const struct stat *st);

/*
 * mmap size bytes of fd (a regular file or a character device; a file
 * shorter than offset + size is refused) from offset, at any alignment:
 * the mapping covers whole pages, whole huge pages on hugetlbfs, and *len
 * is its length for munmap().  *host receives the address of offset.
 */
int vh_mem_map_fd(struct vh_ctx *ctx, int fd, uint64_t offset, uint64_t size,
		  void **addr, size_t *len, uint8_t **host);

/* Pin the current snapshot (lock-free, safe against concurrent writers). */
struct vh_mem_table *vh_mem_table_get(struct vh_mem *mem);
struct vh_mem_table *vh_mem_table_ref(struct vh_mem_table *t);
void vh_mem_table_put(struct vh_mem_table *t);
/* Bumped (release) every time a new snapshot is published. */
uint64_t vh_mem_generation(const struct vh_mem *mem);
/* Where that counter lives, for a datapath check without a call. */
const uint64_t *vh_mem_generation_ptr(const struct vh_mem *mem);
struct vh_ctx *vh_mem_get_ctx(const struct vh_mem *mem);

/* The region whose mapping holds host, or NULL (a linear search). */
const struct vh_mem_reg *vh_mem_table_host_search(const struct vh_mem_table *t,
						  const void *host);

/* Slow path of vh_mem_table_find(): binary search. */
const struct vh_mem_reg *vh_mem_table_search(const struct vh_mem_table *t,
					     uint64_t gpa, unsigned int *hint);

/* Region containing gpa, trying *hint first; NULL in a hole. */
static inline const struct vh_mem_reg *
vh_mem_table_find(const struct vh_mem_table *t, uint64_t gpa,
		  unsigned int *hint)
{
	unsigned int h = *hint;

	if (vh_likely(h < t->n)) {
		const struct vh_mem_reg *r = &t->r[h];

		if (vh_likely(gpa - r->gpa < r->size))
			return r;
	}
	return vh_mem_table_search(t, gpa, hint);
}

/* [gpa, gpa + len) wholly inside one region (len > 0): pointer, else NULL. */
static inline void *vh_mem_table_translate(const struct vh_mem_table *t,
					   uint64_t gpa, uint64_t len,
					   unsigned int *hint)
{
	const struct vh_mem_reg *r = vh_mem_table_find(t, gpa, hint);
	uint64_t off;

	if (vh_unlikely(!r))
		return NULL;
	off = gpa - r->gpa;
	if (vh_unlikely(len > r->size - off))
		return NULL;
	return r->host + off;
}

void *vh_mem_table_uva_translate(const struct vh_mem_table *t, uint64_t uva,
				 uint64_t len);

/*
 * Piece-wise translation into iov[0 .. iov_max); returns the number of
 * entries, -ENOBUFS, -EFAULT (hole) or -EINVAL (len 0 / overflow).
 */
int vh_mem_table_to_iov(const struct vh_mem_table *t, uint64_t gpa,
			uint64_t len, struct iovec *iov, unsigned int iov_max,
			unsigned int *hint);

/*
 * Dirty log writes.  Between vh_mem_log_enter() and vh_mem_log_exit() (a
 * short "log section", any thread, no lock) the log returned stays mapped
 * and is the one the front-end reads: a log change (vh_mem_log_set() and
 * friends) waits for open sections before it returns.  NULL: no log.
 */
struct vh_mem_log *vh_mem_log_enter(struct vh_mem *mem, unsigned int *epoch);
void vh_mem_log_exit(struct vh_mem *mem, unsigned int epoch);
/* Mark [gpa, gpa + len) dirty in l (0 if l is NULL or len 0). */
int vh_mem_log_mark(const struct vh_mem_log *l, uint64_t gpa, uint64_t len);

#endif
