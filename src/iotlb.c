// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * IOTLB: IOVA -> host translations with permissions, published as
 * immutable snapshots.  See iotlb-internal.h.
 *
 * Reclaim is mem.c's scheme: a reader announces itself in tlb->readers
 * (seq_cst) before it loads tlb->cur (seq_cst); a writer swaps tlb->cur
 * (seq_cst) and then loads tlb->readers.  If it sees no reader, no reader
 * can still be taking a reference on a retired snapshot, so the writer
 * drops the object's references on them; otherwise they wait for the next
 * writer or the final unref.  A snapshot a reader pinned (vh_iotlb_table_get)
 * lives until that reader puts it, and with it the mappings it names.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "iotlb-internal.h"
#include "libvhost-internal.h"

struct pending {
	uint64_t page;
	unsigned int perm;
};

struct vh_iotlb {
	int refcount;
	struct vh_ctx *ctx;
	pthread_mutex_t lock;            /* writers, and the fields below */
	struct vh_iotlb_table *cur;      /* atomic */
	unsigned long readers;           /* atomic */
	uint64_t gen;                    /* atomic */
	uint64_t seq;                    /* entry insertion counter */
	struct vh_iotlb_table **retired;
	unsigned int n_retired, retired_cap;
	/* misses reported and not answered; miss_lock guards them */
	pthread_mutex_t miss_lock;
	struct pending pend[VH_IOTLB_MAX_PENDING];
	unsigned int n_pend, pend_next;
	vh_iotlb_miss_fn miss_fn;
	void *miss_data;
};

static bool overflows(uint64_t base, uint64_t size)
{
	return size - 1 > UINT64_MAX - base;
}

static bool perm_ok(unsigned int perm)
{
	return perm >= VH_IOTLB_RO && perm <= VH_IOTLB_RW;
}

/* ---------------------------------------------------------------------- */
/* snapshots                                                              */
/* ---------------------------------------------------------------------- */

static struct vh_iotlb_table *table_alloc(unsigned int n)
{
	struct vh_iotlb_table *t;

	t = calloc(1, sizeof(*t) + (size_t)n * sizeof(t->e[0]));
	if (t)
		t->refcount = 1;
	return t;
}

struct vh_iotlb_table *vh_iotlb_table_ref(struct vh_iotlb_table *t)
{
	if (t)
		__atomic_add_fetch(&t->refcount, 1, __ATOMIC_RELAXED);
	return t;
}

void vh_iotlb_table_put(struct vh_iotlb_table *t)
{
	unsigned int i;

	if (!t || __atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (i = 0; i < t->n; i++)
		vh_mem_map_put(t->e[i].map);
	free(t);
}

struct vh_iotlb_table *vh_iotlb_table_get(struct vh_iotlb *tlb)
{
	struct vh_iotlb_table *t;

	__atomic_add_fetch(&tlb->readers, 1, __ATOMIC_SEQ_CST);
	t = vh_iotlb_table_ref(__atomic_load_n(&tlb->cur, __ATOMIC_SEQ_CST));
	__atomic_sub_fetch(&tlb->readers, 1, __ATOMIC_RELEASE);
	return t;
}

const uint64_t *vh_iotlb_generation_ptr(const struct vh_iotlb *tlb)
{
	return &tlb->gen;
}

static void reclaim(struct vh_iotlb *tlb)
{
	unsigned int i;

	if (__atomic_load_n(&tlb->readers, __ATOMIC_SEQ_CST) != 0)
		return;
	for (i = 0; i < tlb->n_retired; i++)
		vh_iotlb_table_put(tlb->retired[i]);
	tlb->n_retired = 0;
}

/* Make t current (lock held).  Only fails (-ENOMEM) before any change. */
static int publish(struct vh_iotlb *tlb, struct vh_iotlb_table *t)
{
	struct vh_iotlb_table *old;

	if (tlb->n_retired == tlb->retired_cap) {
		unsigned int cap = tlb->retired_cap ? tlb->retired_cap * 2 : 4;
		void *p = realloc(tlb->retired, cap * sizeof(*tlb->retired));

		if (!p) {
			vh_iotlb_table_put(t);
			return -ENOMEM;
		}
		tlb->retired = p;
		tlb->retired_cap = cap;
	}
	old = __atomic_exchange_n(&tlb->cur, t, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&tlb->gen, 1, __ATOMIC_RELEASE);
	tlb->retired[tlb->n_retired++] = old;
	reclaim(tlb);
	return 0;
}

/* ---------------------------------------------------------------------- */
/* object                                                                 */
/* ---------------------------------------------------------------------- */

int vh_iotlb_new(struct vh_ctx *ctx, struct vh_iotlb **out)
{
	struct vh_iotlb *tlb;

	if (!ctx || !out)
		return -EINVAL;
	tlb = calloc(1, sizeof(*tlb));
	if (!tlb)
		return -ENOMEM;
	tlb->cur = table_alloc(0);
	if (!tlb->cur) {
		free(tlb);
		return -ENOMEM;
	}
	tlb->refcount = 1;
	tlb->ctx = vh_ctx_ref(ctx);
	pthread_mutex_init(&tlb->lock, NULL);
	pthread_mutex_init(&tlb->miss_lock, NULL);
	*out = tlb;
	return 0;
}

struct vh_iotlb *vh_iotlb_ref(struct vh_iotlb *tlb)
{
	if (tlb)
		__atomic_add_fetch(&tlb->refcount, 1, __ATOMIC_RELAXED);
	return tlb;
}

struct vh_iotlb *vh_iotlb_unref(struct vh_iotlb *tlb)
{
	unsigned int i;

	if (!tlb)
		return NULL;
	if (__atomic_sub_fetch(&tlb->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return tlb;
	/* last reference: no reader is inside; pinned snapshots live on */
	for (i = 0; i < tlb->n_retired; i++)
		vh_iotlb_table_put(tlb->retired[i]);
	free(tlb->retired);
	vh_iotlb_table_put(tlb->cur);
	pthread_mutex_destroy(&tlb->lock);
	pthread_mutex_destroy(&tlb->miss_lock);
	vh_ctx_unref(tlb->ctx);
	free(tlb);
	return NULL;
}

void vh_iotlb_set_miss_fn(struct vh_iotlb *tlb, vh_iotlb_miss_fn fn,
			  void *data)
{
	if (!tlb)
		return;
	pthread_mutex_lock(&tlb->miss_lock);
	tlb->miss_fn = fn;
	tlb->miss_data = data;
	pthread_mutex_unlock(&tlb->miss_lock);
}

unsigned int vh_iotlb_num_entries(struct vh_iotlb *tlb)
{
	struct vh_iotlb_table *t;
	unsigned int n;

	if (!tlb)
		return 0;
	t = vh_iotlb_table_get(tlb);
	n = t->n;
	vh_iotlb_table_put(t);
	return n;
}

/* ---------------------------------------------------------------------- */
/* pending misses                                                         */
/* ---------------------------------------------------------------------- */

/* Forget the pending misses of pages in [iova, iova + size). */
static void pending_clear(struct vh_iotlb *tlb, uint64_t iova, uint64_t size)
{
	uint64_t first = iova / VH_IOTLB_PAGE;
	uint64_t last = (iova + (size - 1)) / VH_IOTLB_PAGE;
	unsigned int i = 0;

	pthread_mutex_lock(&tlb->miss_lock);
	while (i < tlb->n_pend) {
		if (tlb->pend[i].page >= first && tlb->pend[i].page <= last) {
			tlb->pend[i] = tlb->pend[--tlb->n_pend];
			continue;
		}
		i++;
	}
	tlb->pend_next = tlb->n_pend;
	pthread_mutex_unlock(&tlb->miss_lock);
}

void vh_iotlb_miss_forget(struct vh_iotlb *tlb, uint64_t iova)
{
	if (tlb)
		pending_clear(tlb, iova, 1);
}

void vh_iotlb_miss_forget_all(struct vh_iotlb *tlb)
{
	if (!tlb)
		return;
	pthread_mutex_lock(&tlb->miss_lock);
	tlb->n_pend = tlb->pend_next = 0;
	pthread_mutex_unlock(&tlb->miss_lock);
}

int vh_iotlb_miss(struct vh_iotlb *tlb, uint64_t iova, unsigned int perm)
{
	uint64_t page = iova / VH_IOTLB_PAGE;
	vh_iotlb_miss_fn fn;
	unsigned int i;
	void *data;

	if (!tlb || !perm_ok(perm))
		return -EINVAL;
	pthread_mutex_lock(&tlb->miss_lock);
	for (i = 0; i < tlb->n_pend; i++)
		if (tlb->pend[i].page == page &&
		    (tlb->pend[i].perm & perm) == perm) {
			pthread_mutex_unlock(&tlb->miss_lock);
			return 0;
		}
	/* full: the oldest slot goes (its page may be reported again) */
	if (tlb->n_pend < VH_IOTLB_MAX_PENDING) {
		i = tlb->n_pend++;
	} else {
		i = tlb->pend_next % VH_IOTLB_MAX_PENDING;
		tlb->pend_next = i + 1;
	}
	tlb->pend[i].page = page;
	tlb->pend[i].perm = perm;
	fn = tlb->miss_fn;
	data = tlb->miss_data;
	pthread_mutex_unlock(&tlb->miss_lock);
	vh_dbg(tlb->ctx, "iotlb: miss at 0x%llx perm %u\n",
	       (unsigned long long)iova, perm);
	if (fn)
		fn(tlb, data, iova, perm);
	return 1;
}

/* ---------------------------------------------------------------------- */
/* writers                                                                */
/* ---------------------------------------------------------------------- */

/* The entry that starts at or below iova, as an index + 1 (0: none). */
static unsigned int upper_pos(const struct vh_iotlb_table *t, uint64_t iova)
{
	unsigned int lo = 0, hi = t->n;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo) / 2;

		if (t->e[mid].iova <= iova)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool overlaps(const struct vh_iotlb_ent *e, uint64_t iova,
		     uint64_t size)
{
	return e->iova <= iova + (size - 1) && iova <= e->iova + (e->size - 1);
}

static void ent_copy(struct vh_iotlb_ent *dst, const struct vh_iotlb_ent *src)
{
	*dst = *src;
	vh_mem_map_ref(dst->map);
}

/*
 * A copy of old without [iova, iova + size) (entries cut at its edges,
 * each piece with its own map reference), with room for extra more.
 */
static struct vh_iotlb_table *table_punch(const struct vh_iotlb_table *old,
					  uint64_t iova, uint64_t size,
					  unsigned int extra)
{
	struct vh_iotlb_table *t = table_alloc(old->n + 1 + extra);
	uint64_t end = iova + (size - 1); /* inclusive */
	unsigned int i;

	if (!t)
		return NULL;
	for (i = 0; i < old->n; i++) {
		const struct vh_iotlb_ent *e = &old->e[i];
		uint64_t e_end = e->iova + (e->size - 1);

		if (!overlaps(e, iova, size)) {
			ent_copy(&t->e[t->n++], e);
			continue;
		}
		if (e->iova < iova) { /* the part below */
			ent_copy(&t->e[t->n], e);
			t->e[t->n++].size = iova - e->iova;
		}
		if (e_end > end) { /* the part above */
			struct vh_iotlb_ent *p = &t->e[t->n++];

			ent_copy(p, e);
			p->iova = end + 1;
			p->size = e_end - end;
			p->host = e->host + (end + 1 - e->iova);
			if (e->gpa != VH_IOTLB_NO_GPA)
				p->gpa = e->gpa + (end + 1 - e->iova);
		}
	}
	return t;
}

static int cmp_ent(const void *a, const void *b)
{
	const struct vh_iotlb_ent *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * Drop entry e for eviction.  A miss still pending in its range is
 * forgotten: one can stay pending while the page is mapped (a fill that
 * found another thread's translation already there inserts nothing, and
 * only an insert clears it), and once the page is gone every miss there
 * would be taken for that one and never reported.
 */
static void evict_one(struct vh_iotlb *tlb, const struct vh_iotlb_ent *e)
{
	pending_clear(tlb, e->iova, e->size);
	vh_mem_map_put(e->map);
}

/*
 * Evict the oldest entries of t until it has room for need more: the
 * entries inserted at or before the one that many back, in one pass (the
 * pieces of an entry cut by an invalidation share its age, and go
 * together).  Without memory for the ages, one by one.
 */
static void evict(struct vh_iotlb *tlb, struct vh_iotlb_table *t,
		  unsigned int need)
{
	unsigned int i, k, kept = 0;
	uint64_t *seq, oldest;

	if (t->n + need <= VH_IOTLB_MAX_ENTRIES)
		return;
	k = t->n + need - VH_IOTLB_MAX_ENTRIES;
	seq = k < t->n ? malloc(t->n * sizeof(*seq)) : NULL;
	if (seq) {
		for (i = 0; i < t->n; i++)
			seq[i] = t->e[i].seq;
		qsort(seq, t->n, sizeof(*seq), cmp_u64);
		oldest = seq[k - 1];
		free(seq);
		for (i = 0; i < t->n; i++) {
			if (t->e[i].seq <= oldest) {
				evict_one(tlb, &t->e[i]);
				continue;
			}
			t->e[kept++] = t->e[i];
		}
		vh_dbg(tlb->ctx, "iotlb: full, %u oldest entries evicted\n",
		       t->n - kept);
		t->n = kept;
		return;
	}
	while (t->n && t->n + need > VH_IOTLB_MAX_ENTRIES) {
		unsigned int old = 0;

		for (i = 1; i < t->n; i++)
			if (t->e[i].seq < t->e[old].seq)
				old = i;
		evict_one(tlb, &t->e[old]);
		memmove(&t->e[old], &t->e[old + 1],
			(t->n - old - 1) * sizeof(t->e[0]));
		t->n--;
		vh_dbg(tlb->ctx, "iotlb: full, oldest entry evicted\n");
	}
}

/*
 * Every existing entry that overlaps piece p must translate the overlap as
 * p does: same host address for the same iova, same permissions.
 */
static int check_agrees(struct vh_iotlb *tlb, const struct vh_iotlb_table *t,
			const struct vh_iotlb_ent *p)
{
	unsigned int i = upper_pos(t, p->iova);

	/* the entry at or below p->iova, then those starting inside p */
	for (i = i ? i - 1 : 0; i < t->n; i++) {
		const struct vh_iotlb_ent *e = &t->e[i];

		if (e->iova > p->iova + (p->size - 1))
			break;
		if (!overlaps(e, p->iova, p->size))
			continue;
		if ((uintptr_t)e->host - e->iova !=
			    (uintptr_t)p->host - p->iova ||
		    e->perm != p->perm) {
			vh_err(tlb->ctx,
			       "iotlb: update 0x%llx+0x%llx conflicts with the mapping at 0x%llx+0x%llx (invalidate first)\n",
			       (unsigned long long)p->iova,
			       (unsigned long long)p->size,
			       (unsigned long long)e->iova,
			       (unsigned long long)e->size);
			return -EEXIST;
		}
	}
	return 0;
}

/*
 * Insert pieces p[0..n), which follow each other in IOVA (lock held);
 * their maps are referenced here.
 */
static int insert(struct vh_iotlb *tlb, const struct vh_iotlb_ent *p,
		  unsigned int n)
{
	struct vh_iotlb_table *cur = tlb->cur, *t;
	uint64_t end = p[n - 1].iova + (p[n - 1].size - 1); /* inclusive */
	unsigned int i;
	int err;

	for (i = 0; i < n; i++) {
		err = check_agrees(tlb, cur, &p[i]);
		if (err < 0)
			return err;
	}
	/*
	 * Punch the pieces' range once (not once per piece: a copy of the
	 * table each), then add the pieces.  end - iova + 1 does not wrap:
	 * an update's size is a u64.
	 */
	t = table_punch(cur, p[0].iova, end - p[0].iova + 1, n);
	if (!t)
		return -ENOMEM;
	evict(tlb, t, n);
	for (i = 0; i < n; i++) {
		ent_copy(&t->e[t->n], &p[i]);
		t->e[t->n++].seq = ++tlb->seq;
	}
	qsort(t->e, t->n, sizeof(t->e[0]), cmp_ent);
	err = publish(tlb, t);
	if (err < 0)
		return err;
	for (i = 0; i < n; i++)
		pending_clear(tlb, p[i].iova, p[i].size);
	return 0;
}

static int check_range(struct vh_iotlb *tlb, uint64_t iova, uint64_t size,
		       unsigned int perm)
{
	/* "An IOTLB message": perm is RO, WO or RW; a range never wraps */
	if (size == 0 || overflows(iova, size) || !perm_ok(perm)) {
		vh_err(tlb->ctx, "iotlb: bad update 0x%llx+0x%llx perm %u\n",
		       (unsigned long long)iova, (unsigned long long)size,
		       perm);
		return -EINVAL;
	}
	return 0;
}

int vh_iotlb_update(struct vh_iotlb *tlb, uint64_t iova, uint64_t size,
		    void *host, struct vh_mem_map *map, unsigned int perm)
{
	struct vh_iotlb_ent p = {
		.iova = iova,
		.size = size,
		.host = host,
		.gpa = VH_IOTLB_NO_GPA, /* the caller's host memory */
		.map = map,
		.perm = perm,
	};
	int err;

	if (!tlb || !host)
		return -EINVAL;
	err = check_range(tlb, iova, size, perm);
	if (err < 0)
		return err;
	if (overflows((uintptr_t)host, size))
		return -EINVAL;
	pthread_mutex_lock(&tlb->lock);
	err = insert(tlb, &p, 1);
	pthread_mutex_unlock(&tlb->lock);
	return err;
}

/* The region of t holding front-end address uva, or NULL. */
static const struct vh_mem_reg *uva_region(const struct vh_mem_table *t,
					   uint64_t uva)
{
	unsigned int i;

	for (i = 0; i < t->n; i++)
		if (uva >= t->r[i].uva && uva - t->r[i].uva < t->r[i].size)
			return &t->r[i];
	return NULL;
}

int vh_iotlb_update_uva(struct vh_iotlb *tlb, const struct vh_mem_table *t,
			uint64_t iova, uint64_t size, uint64_t uaddr,
			unsigned int perm)
{
	struct vh_iotlb_ent p[VH_MEM_MAX_REGIONS];
	unsigned int n = 0;
	uint64_t done = 0;
	int err;

	if (!tlb || !t)
		return -EINVAL;
	err = check_range(tlb, iova, size, perm);
	if (err < 0)
		return err;
	if (overflows(uaddr, size)) {
		vh_err(tlb->ctx, "iotlb: uaddr 0x%llx+0x%llx wraps\n",
		       (unsigned long long)uaddr, (unsigned long long)size);
		return -EINVAL;
	}
	while (done < size) {
		const struct vh_mem_reg *r = uva_region(t, uaddr + done);
		uint64_t off, piece;

		if (!r || n == VH_ARRAY_SIZE(p)) {
			vh_err(tlb->ctx,
			       "iotlb: uaddr 0x%llx+0x%llx not in guest memory\n",
			       (unsigned long long)uaddr,
			       (unsigned long long)size);
			return -EFAULT;
		}
		off = uaddr + done - r->uva;
		piece = r->size - off;
		if (piece > size - done)
			piece = size - done;
		p[n].iova = iova + done;
		p[n].size = piece;
		p[n].host = r->host + off;
		p[n].gpa = r->gpa + off;
		p[n].map = r->map;
		p[n].perm = perm;
		p[n].seq = 0;
		n++;
		done += piece;
	}
	pthread_mutex_lock(&tlb->lock);
	err = insert(tlb, p, n);
	pthread_mutex_unlock(&tlb->lock);
	return err;
}

int vh_iotlb_invalidate(struct vh_iotlb *tlb, uint64_t iova, uint64_t size)
{
	struct vh_iotlb_table *t;
	unsigned int i;
	int err = 0;

	if (!tlb)
		return -EINVAL;
	/*
	 * Size 0 is the range up to the end of the address space, 2^64
	 * bytes from 0 (QEMU's unmap of a whole IOMMU notifier range sends
	 * addr_mask + 1 = 0; the kernel's vhost_iotlb_del_range(iova,
	 * iova + size - 1) reads it so): a flush from 0.
	 */
	if (size == 0) {
		if (iova == 0)
			return vh_iotlb_flush(tlb);
		size = 0 - iova;
	}
	if (overflows(iova, size)) {
		vh_err(tlb->ctx, "iotlb: bad invalidation 0x%llx+0x%llx\n",
		       (unsigned long long)iova, (unsigned long long)size);
		return -EINVAL;
	}
	pthread_mutex_lock(&tlb->lock);
	for (i = 0; i < tlb->cur->n; i++)
		if (overlaps(&tlb->cur->e[i], iova, size))
			break;
	if (i < tlb->cur->n) { /* else nothing mapped there: no new snapshot */
		t = table_punch(tlb->cur, iova, size, 0);
		/*
		 * a cut inside an entry makes two of it: invalidations
		 * alone must not grow the table past its bound either
		 */
		if (t)
			evict(tlb, t, 0);
		err = t ? publish(tlb, t) : -ENOMEM;
	}
	pthread_mutex_unlock(&tlb->lock);
	if (err == 0)
		pending_clear(tlb, iova, size);
	return err;
}

int vh_iotlb_flush(struct vh_iotlb *tlb)
{
	struct vh_iotlb_table *t;
	int err;

	if (!tlb)
		return -EINVAL;
	t = table_alloc(0);
	if (!t)
		return -ENOMEM;
	pthread_mutex_lock(&tlb->lock);
	err = publish(tlb, t);
	pthread_mutex_unlock(&tlb->lock);
	pthread_mutex_lock(&tlb->miss_lock);
	tlb->n_pend = tlb->pend_next = 0;
	pthread_mutex_unlock(&tlb->miss_lock);
	return err;
}

/* ---------------------------------------------------------------------- */
/* readers                                                                */
/* ---------------------------------------------------------------------- */

static const struct vh_iotlb_ent *find(const struct vh_iotlb_table *t,
				       uint64_t iova)
{
	unsigned int pos = upper_pos(t, iova);
	const struct vh_iotlb_ent *e;

	if (pos == 0)
		return NULL;
	e = &t->e[pos - 1];
	return iova - e->iova < e->size ? e : NULL;
}

int vh_iotlb_table_to_iov(const struct vh_iotlb_table *t, uint64_t iova,
			  uint64_t len, unsigned int perm, struct iovec *iov,
			  unsigned int iov_max, uint64_t *miss)
{
	unsigned int n = 0;

	if (len == 0 || overflows(iova, len) || !perm_ok(perm))
		return -EINVAL;
	while (len) {
		const struct vh_iotlb_ent *e = find(t, iova);
		uint64_t off, piece;
		uint8_t *host;

		if (!e) {
			if (miss)
				*miss = iova;
			return -EAGAIN;
		}
		if ((e->perm & perm) != perm)
			return -EACCES;
		off = iova - e->iova;
		piece = e->size - off;
		if (piece > len)
			piece = len;
		host = e->host + off;
		if (n && (uint8_t *)iov[n - 1].iov_base + iov[n - 1].iov_len ==
				 host &&
		    iov[n - 1].iov_len + piece >= piece) {
			iov[n - 1].iov_len += piece;
		} else {
			if (n == iov_max)
				return -ENOBUFS;
			iov[n].iov_base = host;
			iov[n].iov_len = piece;
			n++;
		}
		iova += piece;
		len -= piece;
	}
	return (int)n;
}

int vh_iotlb_table_gpa(const struct vh_iotlb_table *t, uint64_t iova,
		       unsigned int perm, uint64_t *gpa, uint8_t **host,
		       uint64_t *len)
{
	const struct vh_iotlb_ent *e = find(t, iova);
	uint64_t off;

	if (!e)
		return -EAGAIN;
	if ((e->perm & perm) != perm)
		return -EACCES;
	off = iova - e->iova;
	*gpa = e->gpa == VH_IOTLB_NO_GPA ? VH_IOTLB_NO_GPA : e->gpa + off;
	*host = e->host + off;
	*len = e->size - off;
	return 0;
}

void *vh_iotlb_table_translate(const struct vh_iotlb_table *t, uint64_t iova,
			       uint64_t len, unsigned int perm, uint64_t *miss,
			       int *err)
{
	struct iovec iov;
	int n = vh_iotlb_table_to_iov(t, iova, len, perm, &iov, 1, miss);

	if (n == 1) {
		*err = 0;
		return iov.iov_base;
	}
	*err = n == -ENOBUFS ? -EFAULT : n;
	return NULL;
}

/* ---------------------------------------------------------------------- */
/* an element's own snapshot                                              */
/* ---------------------------------------------------------------------- */

static int cmp_range(const void *a, const void *b)
{
	const struct vh_iotlb_range *x = a, *y = b;

	return x->iova < y->iova ? -1 : x->iova > y->iova;
}

/* p goes on where last ends: in IOVA, host and guest addresses, one map */
static bool piece_follows(const struct vh_iotlb_ent *last,
			  const struct vh_iotlb_ent *p)
{
	if (p->iova - last->iova != last->size || p->map != last->map ||
	    (uintptr_t)p->host - (uintptr_t)last->host != last->size)
		return false;
	if (last->gpa == VH_IOTLB_NO_GPA || p->gpa == VH_IOTLB_NO_GPA)
		return last->gpa == p->gpa;
	return p->gpa - last->gpa == last->size;
}

/*
 * The pieces of t under the ranges r[0 .. n), sorted by start, merged, in
 * IOVA order; stored in out (with a map reference each) unless out is
 * NULL.  Their count.  A range starts at or after the one before: what
 * it has below the end of the last piece was taken with an earlier range.
 */
static unsigned int extract(const struct vh_iotlb_table *t,
			    const struct vh_iotlb_range *r, unsigned int n,
			    struct vh_iotlb_table *out)
{
	struct vh_iotlb_ent last = { 0 };
	unsigned int cnt = 0, i, pos;
	bool have = false;

	for (i = 0; i < n; i++) {
		uint64_t end = r[i].iova + (r[i].len - 1); /* inclusive */

		pos = upper_pos(t, r[i].iova);
		for (pos = pos ? pos - 1 : 0;
		     pos < t->n && t->e[pos].iova <= end; pos++) {
			const struct vh_iotlb_ent *e = &t->e[pos];
			uint64_t e_end = e->iova + (e->size - 1);
			uint64_t lo = e->iova > r[i].iova ? e->iova : r[i].iova;
			uint64_t hi = e_end < end ? e_end : end;
			struct vh_iotlb_ent p = *e;

			if (!overlaps(e, r[i].iova, r[i].len))
				continue;
			if (have) {
				uint64_t l_end = last.iova + (last.size - 1);

				if (hi <= l_end)
					continue;
				if (lo <= l_end)
					lo = l_end + 1;
			}
			p.iova = lo;
			p.size = hi - lo + 1;
			p.host = e->host + (lo - e->iova);
			if (e->gpa != VH_IOTLB_NO_GPA)
				p.gpa = e->gpa + (lo - e->iova);
			/* only what was checked at the pop is looked up */
			p.perm = VH_IOTLB_RW;
			p.seq = 0;
			if (have && piece_follows(&last, &p)) {
				last.size += p.size;
				continue;
			}
			if (have && out)
				ent_copy(&out->e[cnt], &last);
			cnt += have;
			last = p;
			have = true;
		}
	}
	if (have && out)
		ent_copy(&out->e[cnt], &last);
	return cnt + have;
}

int vh_iotlb_table_extract(const struct vh_iotlb_table *t,
			   struct vh_iotlb_range *r, unsigned int n,
			   struct vh_iotlb_table **out)
{
	struct vh_iotlb_table *mine;
	unsigned int cnt;

	qsort(r, n, sizeof(*r), cmp_range);
	cnt = extract(t, r, n, NULL);
	mine = table_alloc(cnt);
	if (!mine)
		return -ENOMEM;
	mine->n = extract(t, r, n, mine);
	*out = mine;
	return 0;
}
