// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Guest memory: region table snapshots published RCU-style, translation and
 * the dirty log.  See libvhost-mem.h for the concurrency rules.
 *
 * Reclaim: a reader announces itself in mem->readers (seq_cst) before it
 * loads mem->cur (seq_cst); a writer swaps mem->cur (seq_cst) and then loads
 * mem->readers.  If that load sees no reader, every reader that could still
 * hold a replaced snapshot has left (a later one loads the new pointer), so
 * the writer may drop the vh_mem's reference to the retired snapshots;
 * otherwise they wait for the next writer call or the final unref.
 *
 * Dirty log writes do not go through the snapshot a ring is pinned to but
 * through mem->log, the newest log, inside a log section (log_enter/exit):
 * a front-end that replaces its log (vhost-user SET_LOG_BASE, to grow or
 * shrink it) reads the old one once we have answered and never looks at it
 * again, so a write landing there after the answer would be lost to the
 * migration.  A log change publishes the new log and then waits until
 * every section that may have loaded the old one has left (grace_period()):
 * the two counters are flipped like SRCU's so that new sections, which see
 * the new log, cannot keep the wait going.
 */
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "libvhost-internal.h"
#include "mem-internal.h"

struct vh_mem {
	int refcount;
	struct vh_ctx *ctx;
	struct vh_mem_table *cur; /* atomic */
	unsigned long readers;    /* atomic: readers inside a lookup */
	uint64_t gen;             /* atomic: publications so far */
	struct vh_mem_table **retired;
	unsigned int n_retired, retired_cap;
	/* dirty log: the newest (atomic), sections open per epoch (atomic) */
	struct vh_mem_log *log;
	unsigned long log_sections[2];
	unsigned int log_epoch;
#ifdef ENABLE_DEBUG
	bool test_drop_log; /* LIBVHOST_TEST_NO_DIRTY_LOG: fault injection */
#endif
};

static long page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);

	return ps > 0 ? ps : 4096;
}

/* ---------------------------------------------------------------------- */
/* mappings and logs                                                      */
/* ---------------------------------------------------------------------- */

static void map_unref(struct vh_mem_map *m)
{
	if (!m || __atomic_sub_fetch(&m->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	munmap(m->addr, m->len);
	if (m->fd >= 0)
		close(m->fd);
	free(m);
}

struct vh_mem_map *vh_mem_map_ref(struct vh_mem_map *m)
{
	if (m)
		__atomic_add_fetch(&m->refcount, 1, __ATOMIC_RELAXED);
	return m;
}

void vh_mem_map_put(struct vh_mem_map *m)
{
	map_unref(m);
}

static void log_unref(struct vh_mem_log *l)
{
	if (!l || __atomic_sub_fetch(&l->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	munmap(l->addr, l->len);
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}

/*
 * The unit fd maps in: a huge page on hugetlbfs (memfd MFD_HUGETLB too),
 * whose mappings munmap() only takes whole (a length cut short fails with
 * EINVAL and the mapping stays for ever), else the page.
 */
uint64_t vh_mem_map_granule(int fd, const struct stat *st)
{
	struct statfs sfs;

	if (S_ISREG(st->st_mode) && fstatfs(fd, &sfs) == 0 &&
	    sfs.f_type == HUGETLBFS_MAGIC && st->st_blksize > 0 &&
	    !((uint64_t)st->st_blksize & ((uint64_t)st->st_blksize - 1)))
		return (uint64_t)st->st_blksize;
	return (uint64_t)page_size();
}

int vh_mem_map_fd(struct vh_ctx *ctx, int fd, uint64_t offset, uint64_t size,
		  void **addr, size_t *len, uint8_t **host)
{
	uint64_t gmask, aligned, delta, maplen;
	struct stat st;
	void *p;

	if (fd < 0)
		return -EBADF;
	if (fstat(fd, &st) < 0)
		return -errno;
	gmask = vh_mem_map_granule(fd, &st) - 1;
	aligned = offset & ~gmask;
	delta = offset - aligned;
	/* offset + size as an off_t, without wrapping first */
	if (size > SIZE_MAX - delta - gmask || offset > INT64_MAX ||
	    size > INT64_MAX - offset)
		return -EINVAL;
	maplen = (size + delta + gmask) & ~gmask;
	/*
	 * Memory is a regular file (memfd, hugetlbfs, tmpfs), whose size is
	 * checked below, or a character device (device memory such as DAX).
	 * Anything else that mmap() takes faults past an end it does not
	 * tell: a block device (st_size 0), an anonymous inode such as a KVM
	 * vcpu fd.  A peer's fd of that kind would SIGBUS us.
	 */
	if (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode)) {
		vh_err(ctx, "fd %d is not a file or a character device\n", fd);
		return -EINVAL;
	}
	/*
	 * A file shorter than the region would SIGBUS us on first touch: refuse
	 * it now (a peer can still truncate an unsealed fd later).
	 */
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size < offset + size) {
		vh_err(ctx, "fd %d has %lld bytes, region needs %llu\n", fd,
		       (long long)st.st_size,
		       (unsigned long long)(offset + size));
		return -EINVAL;
	}
	/*
	 * Whole units: what the kernel maps anyway, and the length munmap()
	 * needs (a hugetlbfs file's size is a multiple of its huge page, so
	 * the rounding stays inside the file checked above)
	 */
	p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		 (off_t)aligned);
	if (p == MAP_FAILED) {
		int err = -errno;

		vh_err(ctx, "mmap of fd %d (%llu bytes at %llu) failed: %d\n",
		       fd, (unsigned long long)size,
		       (unsigned long long)offset, err);
		return err;
	}
	*addr = p;
	*len = maplen;
	*host = (uint8_t *)p + delta;
	return 0;
}

static bool overflows(uint64_t base, uint64_t size)
{
	return size - 1 > UINT64_MAX - base;
}

/* Map one region described by d; the fd stays the caller's until commit. */
static int reg_map(struct vh_ctx *ctx, const struct vh_mem_region *d,
		   struct vh_mem_reg *r)
{
	struct vh_mem_map *m;
	uint8_t *host = NULL;
	int err;

	if (d->size == 0 || overflows(d->gpa, d->size) ||
	    overflows(d->user_addr, d->size) ||
	    overflows(d->fd_offset, d->size)) {
		vh_err(ctx, "bad region gpa 0x%llx size 0x%llx uva 0x%llx off 0x%llx\n",
		       (unsigned long long)d->gpa, (unsigned long long)d->size,
		       (unsigned long long)d->user_addr,
		       (unsigned long long)d->fd_offset);
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	err = vh_mem_map_fd(ctx, d->fd, d->fd_offset, d->size, &m->addr, &m->len,
		     &host);
	if (err < 0) {
		free(m);
		return err;
	}
	m->refcount = 1;
	m->fd = -1;
	r->gpa = d->gpa;
	r->size = d->size;
	r->uva = d->user_addr;
	r->fd_offset = d->fd_offset;
	r->host = host;
	r->map = m;
	return 0;
}

/* ---------------------------------------------------------------------- */
/* snapshots                                                              */
/* ---------------------------------------------------------------------- */

static struct vh_mem_table *table_alloc(unsigned int n)
{
	struct vh_mem_table *t;

	t = calloc(1, sizeof(*t) + (size_t)n * sizeof(t->r[0]));
	if (t)
		t->refcount = 1;
	return t;
}

struct vh_mem_table *vh_mem_table_ref(struct vh_mem_table *t)
{
	if (t)
		__atomic_add_fetch(&t->refcount, 1, __ATOMIC_RELAXED);
	return t;
}

void vh_mem_table_put(struct vh_mem_table *t)
{
	unsigned int i;

	if (!t || __atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (i = 0; i < t->n; i++)
		map_unref(t->r[i].map);
	log_unref(t->log);
	free(t);
}

/* A new snapshot with the regions of old (shared) and its log. */
static struct vh_mem_table *table_copy(const struct vh_mem_table *old,
				       unsigned int extra)
{
	struct vh_mem_table *t = table_alloc(old->n + extra);
	unsigned int i;

	if (!t)
		return NULL;
	for (i = 0; i < old->n; i++) {
		t->r[i] = old->r[i];
		__atomic_add_fetch(&t->r[i].map->refcount, 1,
				   __ATOMIC_RELAXED);
	}
	t->n = old->n;
	t->log = old->log;
	if (t->log)
		__atomic_add_fetch(&t->log->refcount, 1, __ATOMIC_RELAXED);
	return t;
}

static struct vh_mem_table *reader_enter(const struct vh_mem *mem)
{
	struct vh_mem *m = (struct vh_mem *)mem;

	__atomic_add_fetch(&m->readers, 1, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&m->cur, __ATOMIC_SEQ_CST);
}

static void reader_exit(const struct vh_mem *mem)
{
	struct vh_mem *m = (struct vh_mem *)mem;

	__atomic_sub_fetch(&m->readers, 1, __ATOMIC_RELEASE);
}

struct vh_mem_table *vh_mem_table_get(struct vh_mem *mem)
{
	struct vh_mem_table *t = reader_enter(mem);

	vh_mem_table_ref(t);
	reader_exit(mem);
	return t;
}

uint64_t vh_mem_generation(const struct vh_mem *mem)
{
	return __atomic_load_n(&mem->gen, __ATOMIC_ACQUIRE);
}

const uint64_t *vh_mem_generation_ptr(const struct vh_mem *mem)
{
	return &mem->gen;
}

struct vh_ctx *vh_mem_get_ctx(const struct vh_mem *mem)
{
	return mem->ctx;
}

static void reclaim(struct vh_mem *mem)
{
	unsigned int i;

	if (__atomic_load_n(&mem->readers, __ATOMIC_SEQ_CST) != 0)
		return;
	for (i = 0; i < mem->n_retired; i++)
		vh_mem_table_put(mem->retired[i]);
	mem->n_retired = 0;
}

/* Room to retire the current table: publish_commit() cannot fail then. */
static int publish_reserve(struct vh_mem *mem)
{
	if (mem->n_retired == mem->retired_cap) {
		unsigned int cap = mem->retired_cap ? mem->retired_cap * 2 : 4;
		void *p = realloc(mem->retired, cap * sizeof(*mem->retired));

		if (!p)
			return -ENOMEM;
		mem->retired = p;
		mem->retired_cap = cap;
	}
	return 0;
}

/*
 * Make t current, after publish_reserve().  Readers see t from the
 * exchange on: t must be whole by then (its mappings' fds set).
 */
static void publish_commit(struct vh_mem *mem, struct vh_mem_table *t)
{
	struct vh_mem_table *old;

	old = __atomic_exchange_n(&mem->cur, t, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&mem->gen, 1, __ATOMIC_RELEASE);
	mem->retired[mem->n_retired++] = old;
	reclaim(mem);
}

/* Make t current.  Only fails (-ENOMEM, t released) before anything changed. */
static int publish(struct vh_mem *mem, struct vh_mem_table *t)
{
	if (publish_reserve(mem) < 0) {
		vh_mem_table_put(t);
		return -ENOMEM;
	}
	publish_commit(mem, t);
	return 0;
}

VH_EXPORT int vh_mem_new(struct vh_ctx *ctx, struct vh_mem **mem)
{
	struct vh_mem *m;

	if (!ctx || !mem)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->cur = table_alloc(0);
	if (!m->cur) {
		free(m);
		return -ENOMEM;
	}
	m->refcount = 1;
	m->ctx = vh_ctx_ref(ctx);
#ifdef ENABLE_DEBUG
	/*
	 * Test builds only: drop every dirty-log write, so that a migration
	 * test can show it fails without them (tests/vm-migrate.sh).
	 */
	if (secure_getenv("LIBVHOST_TEST_NO_DIRTY_LOG")) {
		m->test_drop_log = true;
		vh_warn(ctx, "LIBVHOST_TEST_NO_DIRTY_LOG: dirty log writes are dropped (test fault injection)\n");
	}
#endif
	*mem = m;
	return 0;
}

VH_EXPORT struct vh_mem *vh_mem_ref(struct vh_mem *mem)
{
	if (mem)
		__atomic_add_fetch(&mem->refcount, 1, __ATOMIC_RELAXED);
	return mem;
}

VH_EXPORT struct vh_mem *vh_mem_unref(struct vh_mem *mem)
{
	unsigned int i;

	if (!mem)
		return NULL;
	if (__atomic_sub_fetch(&mem->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return mem;
	/* Last reference: no reader can be inside any more. */
	for (i = 0; i < mem->n_retired; i++)
		vh_mem_table_put(mem->retired[i]);
	free(mem->retired);
	log_unref(mem->log);
	vh_mem_table_put(mem->cur);
	vh_ctx_unref(mem->ctx);
	free(mem);
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* table changes (writers)                                                */
/* ---------------------------------------------------------------------- */

/* Index where a region starting at gpa goes in t (first r with r.gpa > gpa). */
static unsigned int insert_pos(const struct vh_mem_table *t, uint64_t gpa)
{
	unsigned int lo = 0, hi = t->n;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (t->r[mid].gpa <= gpa)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool ranges_overlap(uint64_t a, uint64_t asz, uint64_t b, uint64_t bsz)
{
	/* sizes are non-zero and the ranges do not wrap */
	return a <= b + (bsz - 1) && b <= a + (asz - 1);
}

/* self_uva: the region is ours, its "peer" address is our mapping. */
static int add_region(struct vh_mem *mem, const struct vh_mem_region *d,
		      void **host, bool self_uva)
{
	struct vh_mem_table *cur = mem->cur, *t;
	struct vh_mem_reg r;
	unsigned int pos;
	int err;

	if (cur->n >= VH_MEM_MAX_REGIONS) {
		vh_err(mem->ctx, "too many regions (%u)\n", cur->n);
		return -ENOSPC;
	}
	if (d->size == 0 || overflows(d->gpa, d->size))
		return -EINVAL;
	pos = insert_pos(cur, d->gpa);
	if ((pos > 0 && ranges_overlap(cur->r[pos - 1].gpa,
				       cur->r[pos - 1].size, d->gpa,
				       d->size)) ||
	    (pos < cur->n &&
	     ranges_overlap(cur->r[pos].gpa, cur->r[pos].size, d->gpa,
			    d->size))) {
		vh_err(mem->ctx, "region 0x%llx+0x%llx overlaps another\n",
		       (unsigned long long)d->gpa,
		       (unsigned long long)d->size);
		return -EEXIST;
	}
	err = reg_map(mem->ctx, d, &r);
	if (err < 0)
		return err;
	if (self_uva)
		r.uva = (uint64_t)(uintptr_t)r.host;
	t = table_copy(cur, 1);
	if (!t) {
		map_unref(r.map); /* fd still the caller's: map->fd is -1 */
		return -ENOMEM;
	}
	memmove(&t->r[pos + 1], &t->r[pos], (t->n - pos) * sizeof(t->r[0]));
	t->r[pos] = r;
	t->n++;
	if (publish_reserve(mem) < 0) {
		vh_mem_table_put(t); /* and r's map: its fd is still -1 */
		return -ENOMEM;
	}
	/*
	 * The mapping owns the fd from now on, set before readers can see
	 * the table (vh_mem_get_region() reads it)
	 */
	r.map->fd = d->fd;
	publish_commit(mem, t);
	if (host)
		*host = r.host;
	return 0;
}

VH_EXPORT int vh_mem_add_fd(struct vh_mem *mem, uint64_t gpa, uint64_t size,
			    uint64_t user_addr, int fd, uint64_t fd_offset)
{
	struct vh_mem_region d = {
		.gpa = gpa,
		.size = size,
		.user_addr = user_addr,
		.fd_offset = fd_offset,
		.fd = fd,
	};

	if (!mem)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	return add_region(mem, &d, NULL, false);
}

static int memfd_new(struct vh_ctx *ctx, const char *name, uint64_t size)
{
	int fd, err;

	fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0) {
		err = -errno;
		vh_err(ctx, "memfd_create: %d\n", err);
		return err;
	}
	if (size > INT64_MAX || ftruncate(fd, (off_t)size) < 0) {
		err = size > INT64_MAX ? -EINVAL : -errno;
		close(fd);
		return err;
	}
	/* The size can never change under a mapping: no SIGBUS surprises. */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) <
	    0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

VH_EXPORT int vh_mem_add_memfd(struct vh_mem *mem, uint64_t gpa,
			       uint64_t size, void **host)
{
	struct vh_mem_region d = { .gpa = gpa, .size = size };
	int fd, err;

	if (!mem || size == 0 || overflows(gpa, size))
		return -EINVAL;
	if (mem->cur->n >= VH_MEM_MAX_REGIONS)
		return -ENOSPC;
	fd = memfd_new(mem->ctx, "libvhost-guest", size);
	if (fd < 0)
		return fd;
	d.fd = fd;
	err = add_region(mem, &d, host, true);
	if (err < 0)
		close(fd);
	return err;
}

VH_EXPORT int vh_mem_remove(struct vh_mem *mem, uint64_t gpa, uint64_t size)
{
	struct vh_mem_table *cur, *t;
	unsigned int i, j;

	if (!mem)
		return -EINVAL;
	cur = mem->cur;
	for (i = 0; i < cur->n; i++)
		if (cur->r[i].gpa == gpa && cur->r[i].size == size)
			break;
	if (i == cur->n)
		return -ENOENT;
	t = table_alloc(cur->n - 1);
	if (!t)
		return -ENOMEM;
	for (j = 0; j < cur->n; j++) {
		if (j == i)
			continue;
		t->r[t->n] = cur->r[j];
		__atomic_add_fetch(&cur->r[j].map->refcount, 1,
				   __ATOMIC_RELAXED);
		t->n++;
	}
	t->log = cur->log;
	if (t->log)
		__atomic_add_fetch(&t->log->refcount, 1, __ATOMIC_RELAXED);
	return publish(mem, t);
}

static int cmp_reg(const void *a, const void *b)
{
	const struct vh_mem_reg *x = a, *y = b;

	return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/* Close the duplicates vh_mem_set_table() made among fds[0..n). */
static void close_dups(const struct vh_mem_region *regions, const int *fds,
		       unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (fds[i] >= 0 && fds[i] != regions[i].fd)
			close(fds[i]);
}

VH_EXPORT int vh_mem_set_table(struct vh_mem *mem,
			       const struct vh_mem_region *regions,
			       unsigned int n)
{
	int fds[VH_MEM_MAX_REGIONS];
	struct vh_mem_table *t;
	unsigned int i;
	int err = 0;

	if (!mem || (n && !regions))
		return -EINVAL;
	if (n > VH_MEM_MAX_REGIONS)
		return -ENOSPC;
	t = table_alloc(n);
	if (!t)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		err = reg_map(mem->ctx, &regions[i], &t->r[i]);
		if (err < 0)
			break;
		t->n++;
	}
	if (err == 0) {
		qsort(t->r, t->n, sizeof(t->r[0]), cmp_reg);
		for (i = 1; i < t->n; i++)
			if (ranges_overlap(t->r[i - 1].gpa, t->r[i - 1].size,
					   t->r[i].gpa, t->r[i].size)) {
				vh_err(mem->ctx,
				       "regions at 0x%llx and 0x%llx overlap\n",
				       (unsigned long long)t->r[i - 1].gpa,
				       (unsigned long long)t->r[i].gpa);
				err = -EEXIST;
				break;
			}
	}
	if (err < 0) {
		vh_mem_table_put(t); /* fds stay the caller's: map->fd == -1 */
		return err;
	}
	/*
	 * An fd passed for several regions is duplicated so that each
	 * mapping owns one: before the commit, where a failure (EMFILE) can
	 * still leave everything as it was.
	 */
	for (i = 0; i < n; i++)
		fds[i] = -1;
	for (i = 0; err == 0 && i < n; i++) {
		unsigned int k;

		fds[i] = regions[i].fd;
		for (k = 0; k < i; k++)
			if (regions[k].fd == fds[i])
				break;
		if (k < i) {
			fds[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 0);
			if (fds[i] < 0)
				err = -errno;
		}
	}
	if (err < 0) {
		close_dups(regions, fds, n);
		vh_mem_table_put(t);
		return err;
	}
	t->log = mem->cur->log;
	if (t->log)
		__atomic_add_fetch(&t->log->refcount, 1, __ATOMIC_RELAXED);
	if (publish_reserve(mem) < 0) {
		vh_mem_table_put(t); /* its mappings' fds are still -1 */
		close_dups(regions, fds, n);
		return -ENOMEM;
	}
	/*
	 * Hand the fds over, each by its entry's (unique) gpa, before
	 * readers can see the table
	 */
	for (i = 0; i < n; i++) {
		unsigned int j;

		for (j = 0; j < t->n; j++)
			if (t->r[j].gpa == regions[i].gpa) {
				t->r[j].map->fd = fds[i];
				break;
			}
	}
	publish_commit(mem, t);
	return 0;
}

VH_EXPORT int vh_mem_clear(struct vh_mem *mem)
{
	struct vh_mem_table *t;

	if (!mem)
		return -EINVAL;
	t = table_alloc(0);
	if (!t)
		return -ENOMEM;
	t->log = mem->cur->log;
	if (t->log)
		__atomic_add_fetch(&t->log->refcount, 1, __ATOMIC_RELAXED);
	return publish(mem, t);
}

/* ---------------------------------------------------------------------- */
/* lookups (readers)                                                      */
/* ---------------------------------------------------------------------- */

VH_EXPORT int vh_mem_num_regions(const struct vh_mem *mem)
{
	int n;

	if (!mem)
		return -EINVAL;
	n = (int)reader_enter(mem)->n;
	reader_exit(mem);
	return n;
}

VH_EXPORT int vh_mem_get_region(const struct vh_mem *mem, unsigned int idx,
				struct vh_mem_region *out)
{
	const struct vh_mem_table *t;
	int err = 0;

	if (!mem || !out)
		return -EINVAL;
	t = reader_enter(mem);
	if (idx < t->n) {
		const struct vh_mem_reg *r = &t->r[idx];

		out->gpa = r->gpa;
		out->size = r->size;
		out->user_addr = r->uva;
		out->fd_offset = r->fd_offset;
		out->fd = r->map->fd;
		out->host = r->host;
	} else {
		err = -ENOENT;
	}
	reader_exit(mem);
	return err;
}

const struct vh_mem_reg *vh_mem_table_host_search(const struct vh_mem_table *t,
						  const void *host)
{
	uintptr_t h = (uintptr_t)host;
	unsigned int i;

	for (i = 0; i < t->n; i++) {
		uintptr_t base = (uintptr_t)t->r[i].host;

		if (h >= base && h - base < t->r[i].size)
			return &t->r[i];
	}
	return NULL;
}

const struct vh_mem_reg *vh_mem_table_search(const struct vh_mem_table *t,
					     uint64_t gpa, unsigned int *hint)
{
	unsigned int pos = insert_pos(t, gpa);
	const struct vh_mem_reg *r;

	if (pos == 0)
		return NULL;
	r = &t->r[pos - 1];
	if (gpa - r->gpa >= r->size)
		return NULL;
	*hint = pos - 1;
	return r;
}

void *vh_mem_table_uva_translate(const struct vh_mem_table *t, uint64_t uva,
				 uint64_t len)
{
	unsigned int i;

	if (len == 0 || overflows(uva, len))
		return NULL;
	for (i = 0; i < t->n; i++) {
		const struct vh_mem_reg *r = &t->r[i];
		uint64_t base = r->uva;
		uint64_t off = uva - base;

		if (uva >= base && off < r->size && len <= r->size - off)
			return r->host + off;
	}
	return NULL;
}

int vh_mem_table_to_iov(const struct vh_mem_table *t, uint64_t gpa,
			uint64_t len, struct iovec *iov, unsigned int iov_max,
			unsigned int *hint)
{
	unsigned int n = 0;

	if (len == 0 || overflows(gpa, len))
		return -EINVAL;
	while (len) {
		const struct vh_mem_reg *r = vh_mem_table_find(t, gpa, hint);
		uint64_t off, piece;

		if (!r)
			return -EFAULT;
		if (n == iov_max)
			return -ENOBUFS;
		off = gpa - r->gpa;
		piece = r->size - off;
		if (piece > len)
			piece = len;
		iov[n].iov_base = r->host + off;
		iov[n].iov_len = piece;
		n++;
		gpa += piece;
		len -= piece;
	}
	return (int)n;
}

static unsigned int table_hint(const struct vh_mem_table *t)
{
	return __atomic_load_n(&t->hint, __ATOMIC_RELAXED);
}

static void table_set_hint(const struct vh_mem_table *t, unsigned int h,
			   unsigned int old)
{
	if (h != old)
		__atomic_store_n(&((struct vh_mem_table *)t)->hint, h,
				 __ATOMIC_RELAXED);
}

VH_EXPORT int vh_mem_gpa_to_host(struct vh_mem *mem, uint64_t gpa,
				 uint64_t len, void **host)
{
	const struct vh_mem_table *t;
	unsigned int h, h0;
	void *p;

	if (!mem || !host || len == 0 || overflows(gpa, len))
		return -EINVAL;
	t = reader_enter(mem);
	h = h0 = table_hint(t);
	p = vh_mem_table_translate(t, gpa, len, &h);
	table_set_hint(t, h, h0);
	reader_exit(mem);
	if (!p)
		return -EFAULT;
	*host = p;
	return 0;
}

VH_EXPORT int vh_mem_uva_to_host(struct vh_mem *mem, uint64_t uva,
				 uint64_t len, void **host)
{
	void *p;

	if (!mem || !host || len == 0 || overflows(uva, len))
		return -EINVAL;
	p = vh_mem_table_uva_translate(reader_enter(mem), uva, len);
	reader_exit(mem);
	if (!p)
		return -EFAULT;
	*host = p;
	return 0;
}

VH_EXPORT int vh_mem_host_to_gpa(struct vh_mem *mem, const void *host,
				 uint64_t len, uint64_t *gpa)
{
	const struct vh_mem_reg *r;
	uintptr_t h = (uintptr_t)host;
	int err = -EFAULT;

	if (!mem || !gpa || len == 0 || overflows(h, len))
		return -EINVAL;
	r = vh_mem_table_host_search(reader_enter(mem), host);
	/* regions do not overlap: the one holding host, or none */
	if (r && len <= r->size - (h - (uintptr_t)r->host)) {
		*gpa = r->gpa + (h - (uintptr_t)r->host);
		err = 0;
	}
	reader_exit(mem);
	return err;
}

VH_EXPORT int vh_mem_gpa_to_iov(struct vh_mem *mem, uint64_t gpa,
				uint64_t len, struct iovec *iov,
				unsigned int iov_max)
{
	const struct vh_mem_table *t;
	unsigned int h, h0;
	int n;

	if (!mem || (!iov && iov_max))
		return -EINVAL;
	t = reader_enter(mem);
	h = h0 = table_hint(t);
	n = vh_mem_table_to_iov(t, gpa, len, iov, iov_max, &h);
	table_set_hint(t, h, h0);
	reader_exit(mem);
	return n;
}

/* ---------------------------------------------------------------------- */
/* dirty log                                                              */
/* ---------------------------------------------------------------------- */

VH_EXPORT size_t vh_mem_log_size_for(uint64_t guest_end)
{
	uint64_t pages = guest_end / VH_MEM_LOG_PAGE +
			 (guest_end % VH_MEM_LOG_PAGE != 0);

	return (size_t)(pages / 8 + (pages % 8 != 0));
}

int vh_mem_log_mark(const struct vh_mem_log *l, uint64_t gpa, uint64_t len)
{
	uint64_t page, last;
	int err = 0;

	if (!l || len == 0)
		return 0;
#ifdef ENABLE_DEBUG
	if (l->test_drop)
		return 0;
#endif
	if (overflows(gpa, len))
		return -EINVAL;
	page = gpa / VH_MEM_LOG_PAGE;
	last = (gpa + (len - 1)) / VH_MEM_LOG_PAGE;
	if (last / 8 >= l->size) {
		err = -EFAULT; /* log what fits, refuse the rest */
		if (page / 8 >= l->size)
			return err;
		last = l->size * 8 - 1;
	}
	for (; page <= last; page++)
		__atomic_fetch_or(&l->base[page / 8], (uint8_t)(1u << (page % 8)),
				  __ATOMIC_RELAXED);
	return err;
}

struct vh_mem_log *vh_mem_log_enter(struct vh_mem *mem, unsigned int *epoch)
{
	unsigned int e = __atomic_load_n(&mem->log_epoch, __ATOMIC_SEQ_CST);

	*epoch = e;
	__atomic_add_fetch(&mem->log_sections[e], 1, __ATOMIC_SEQ_CST);
	return __atomic_load_n(&mem->log, __ATOMIC_SEQ_CST);
}

void vh_mem_log_exit(struct vh_mem *mem, unsigned int epoch)
{
	/* release: our bitmap writes are seen by grace_period()'s reader */
	__atomic_sub_fetch(&mem->log_sections[epoch], 1, __ATOMIC_RELEASE);
}

VH_EXPORT int vh_mem_log_write(struct vh_mem *mem, uint64_t gpa,
			       uint64_t len)
{
	unsigned int e;
	int err;

	if (!mem)
		return -EINVAL;
	err = vh_mem_log_mark(vh_mem_log_enter(mem, &e), gpa, len);
	vh_mem_log_exit(mem, e);
	return err;
}

/*
 * Called after mem->log changed: return once every log section that may
 * hold an older log has left.  A section that loaded the old log counted
 * itself in before the change, so seeing its counter at zero afterwards
 * means it is out; flipping the epoch first sends new sections to the
 * other counter.  Both counters, since a section may have read the epoch
 * before an earlier flip.  Sections are a few bit operations: no sleep.
 */
static void grace_period(struct vh_mem *mem)
{
	unsigned int i, e;

	for (i = 0; i < 2; i++) {
		e = __atomic_load_n(&mem->log_epoch, __ATOMIC_SEQ_CST);
		__atomic_store_n(&mem->log_epoch, e ^ 1, __ATOMIC_SEQ_CST);
		while (__atomic_load_n(&mem->log_sections[e],
				       __ATOMIC_SEQ_CST) != 0)
			sched_yield();
	}
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
}

/*
 * Publish a copy of the current table with log l (may be NULL), make l
 * the log every write goes to, and wait until no write can reach the old
 * one any more.
 */
static int set_log(struct vh_mem *mem, struct vh_mem_log *l)
{
	struct vh_mem_table *t = table_copy(mem->cur, 0);
	struct vh_mem_log *old;
	int err;

	if (!t)
		return -ENOMEM;
	log_unref(t->log);
	if (l)
		__atomic_add_fetch(&l->refcount, 2, __ATOMIC_RELAXED);
	t->log = l;
	err = publish(mem, t);
	if (err < 0) {
		if (l)
			__atomic_sub_fetch(&l->refcount, 1, __ATOMIC_RELAXED);
		return err; /* publish dropped t and its reference */
	}
	old = __atomic_exchange_n(&mem->log, l, __ATOMIC_SEQ_CST);
	grace_period(mem);
	log_unref(old);
	return 0;
}

static int log_map(struct vh_mem *mem, int fd, uint64_t size, uint64_t offset,
		   struct vh_mem_log **out)
{
	struct vh_mem_log *l;
	int err;

	if (size == 0 || overflows(offset, size))
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	err = vh_mem_map_fd(mem->ctx, fd, offset, size, &l->addr, &l->len,
			    &l->base);
	if (err < 0) {
		free(l);
		return err;
	}
	l->refcount = 1;
	l->fd = -1;
	l->size = size;
#ifdef ENABLE_DEBUG
	l->test_drop = mem->test_drop_log;
#endif
	*out = l;
	return 0;
}

VH_EXPORT int vh_mem_log_alloc(struct vh_mem *mem, uint64_t log_size,
			       int *fd, void **base)
{
	struct vh_mem_log *l;
	int lfd, err;

	if (!mem || log_size == 0)
		return -EINVAL;
	lfd = memfd_new(mem->ctx, "libvhost-log", log_size);
	if (lfd < 0)
		return lfd;
	err = log_map(mem, lfd, log_size, 0, &l);
	if (err < 0) {
		close(lfd);
		return err;
	}
	err = set_log(mem, l);
	if (err < 0) {
		log_unref(l);
		close(lfd);
		return err;
	}
	l->fd = lfd;
	if (fd)
		*fd = lfd;
	if (base)
		*base = l->base;
	log_unref(l); /* the snapshot holds it now */
	return 0;
}

VH_EXPORT int vh_mem_log_set(struct vh_mem *mem, int fd, uint64_t log_size,
			     uint64_t offset)
{
	struct vh_mem_log *l;
	int err;

	if (!mem)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	err = log_map(mem, fd, log_size, offset, &l);
	if (err < 0)
		return err;
	err = set_log(mem, l);
	if (err < 0) {
		log_unref(l); /* l->fd is -1: the caller keeps fd */
		return err;
	}
	l->fd = fd;
	log_unref(l); /* the snapshot holds it now */
	return 0;
}

VH_EXPORT int vh_mem_log_clear(struct vh_mem *mem)
{
	if (!mem)
		return -EINVAL;
	if (!mem->cur->log)
		return 0;
	return set_log(mem, NULL);
}
