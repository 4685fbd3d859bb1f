// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * VDUSE device (linux/vduse.h; Documentation/userspace-api/vduse.rst).
 *
 * The kernel is a peer like any other: every request read from the
 * device fd, every VDUSE_VQ_GET_INFO and VDUSE_IOTLB_GET_FD answer is
 * checked before use (queue index, ring size, IOVA ranges, permissions,
 * the fd it passes).
 *
 * Memory: the driver's rings and buffers live at IOVAs of the device's
 * VDUSE domain (the bounce area and coherent allocations).  They enter the
 * one IOTLB of the library (iotlb.c) as mmap()s of the fd VDUSE_IOTLB_GET_FD
 * returns (a regular file mapped whole once, for all its entries), each
 * held by a struct vh_mem_map reference per IOTLB entry, so
 * that an invalidation (UPDATE_IOTLB, reset) never unmaps memory a ring
 * still pins.  Rings are fetched at DRIVER_OK; buffers when a ring misses
 * them (the IOTLB's miss callback fetches and kicks the ring again).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/virtio_config.h>

#include "iotlb-internal.h"
#include "libvhost-internal.h"
#include "mem-internal.h"
#include "queue-internal.h"
#include "vduse-internal.h"

#define VDUSE_CONTROL "/dev/vduse/control"
#define VDUSE_DIR "/dev/vduse/"
/* virtio 1.2, 2.1: device status */
#define VDUSE_S_DRIVER_OK 4

static long page_size(void)
{
	long ps = sysconf(_SC_PAGESIZE);

	return ps > 0 ? ps : 4096;
}

/* ------------------------------------------------------------------------ */
/* IOTLB: VDUSE_IOTLB_GET_FD mappings                                       */
/* ------------------------------------------------------------------------ */

/*
 * The fd VDUSE_IOTLB_GET_FD passes for the answer e is the domain's
 * anonymous file ("[vduse-domain]") under virtio_vdpa, and under
 * vhost_vdpa (VDUSE maps by VA) the file behind the front-end's shared
 * memory: a regular file (memfd, hugetlbfs, shm).  Refuse anything else (a
 * device node, a pipe...).  The front-end's file holds its guest memory,
 * one entry per memory region of any size, and must hold all of the entry:
 * a mapping past its end would SIGBUS us on first touch.  The domain's
 * file has no size to check against: its entries (the bounce area, at
 * most 1 GiB, and coherent allocations) are bounded by VDUSE_MAX_MAP.
 */
static int check_domain_fd(struct vh_vduse_dev *dev, int fd,
			   const struct vduse_iotlb_entry *e, struct stat *st)
{
	uint64_t size = e->last - e->start + 1;

	if (fstat(fd, st) < 0)
		return -errno;
	if (S_ISREG(st->st_mode)) {
		/* e->last - e->start < 2^64 - 1: checked by the caller */
		if (st->st_size < 0 || e->offset > (uint64_t)st->st_size ||
		    size > (uint64_t)st->st_size - e->offset) {
			vh_err(dev->ctx,
			       "vduse %s: IOTLB entry 0x%llx-0x%llx beyond its file (offset 0x%llx, size %lld)\n",
			       dev->name, (unsigned long long)e->start,
			       (unsigned long long)e->last,
			       (unsigned long long)e->offset,
			       (long long)st->st_size);
			return -EPROTO;
		}
		return 0;
	}
	if (size > VDUSE_MAX_MAP) {
		vh_err(dev->ctx,
		       "vduse %s: IOTLB entry 0x%llx-0x%llx larger than a VDUSE domain maps\n",
		       dev->name, (unsigned long long)e->start,
		       (unsigned long long)e->last);
		return -EPROTO;
	}
	if (vh_fd_check_anon(fd, "vduse-domain") == 0)
		return 0;
	vh_err(dev->ctx, "vduse %s: IOTLB fd is not a VDUSE domain\n",
	       dev->name);
	return -EBADF;
}

static unsigned int perm_of(uint8_t vperm)
{
	switch (vperm) {
	case VDUSE_ACCESS_RO:
		return VH_IOTLB_RO;
	case VDUSE_ACCESS_WO:
		return VH_IOTLB_WO;
	case VDUSE_ACCESS_RW:
		return VH_IOTLB_RW;
	default:
		return 0;
	}
}

/*
 * Drop the cached file mappings no IOTLB entry holds any more (only our
 * reference left), so that a region the front-end removed is not kept
 * mapped.  Under fill_lock: only a fill takes a new reference from the
 * cache, and a snapshot or an element's extract copies one from an entry
 * that holds its own, so a count of 1 stays 1.
 */
static void file_maps_sweep(struct vh_vduse_dev *dev, bool all)
{
	unsigned int i;

	for (i = 0; i < VDUSE_FILE_MAPS; i++) {
		struct vduse_file_map *f = &dev->fmap[i];

		if (!f->m || (!all && __atomic_load_n(&f->m->refcount,
						      __ATOMIC_ACQUIRE) > 1))
			continue;
		vh_mem_map_put(f->m);
		f->m = NULL;
	}
}

/*
 * The mapping of the whole regular file st (fd) with prot that holds
 * [offset, offset + size), made if there is none: under vhost_vdpa the
 * front-end's guest memory comes as one entry per IOTLB mapping (a
 * vIOMMU's are per page), each of which would otherwise be an mmap of its
 * own.  Mapping the whole file gives us nothing the fd did not: the IOTLB
 * still decides what is reached.  NULL if it cannot be mapped whole (the
 * caller maps the entry alone).  Under fill_lock.
 */
static struct vh_mem_map *file_map(struct vh_vduse_dev *dev, int fd,
				   const struct stat *st, uint64_t offset,
				   uint64_t size, int prot)
{
	struct vduse_file_map *f;
	struct vh_mem_map *m;
	unsigned int i;
	void *addr;

	file_maps_sweep(dev, false);
	for (i = 0; i < VDUSE_FILE_MAPS; i++) {
		f = &dev->fmap[i];
		if (f->m && f->dev == (uint64_t)st->st_dev &&
		    f->ino == (uint64_t)st->st_ino && f->prot == prot &&
		    offset <= f->size && size <= f->size - offset)
			return f->m;
	}
	/*
	 * st_size >= offset + size > 0: checked by check_domain_fd().  No
	 * free slot: the entry is mapped alone, where evicting a file its
	 * entries still hold would map it whole again at its next miss.
	 */
	for (i = 0; i < VDUSE_FILE_MAPS && dev->fmap[i].m; i++)
		;
	if (i == VDUSE_FILE_MAPS || (uint64_t)st->st_size > SIZE_MAX)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	addr = mmap(NULL, (size_t)st->st_size, prot, MAP_SHARED, fd, 0);
	if (addr == MAP_FAILED) {
		vh_dbg(dev->ctx, "vduse %s: mmap of a whole file: %d\n",
		       dev->name, -errno);
		free(m);
		return NULL;
	}
	m->refcount = 1;
	m->fd = -1; /* the mapping holds the file */
	m->addr = addr;
	m->len = (size_t)st->st_size;
	f = &dev->fmap[i];
	f->m = m;
	f->dev = (uint64_t)st->st_dev;
	f->ino = (uint64_t)st->st_ino;
	f->size = (uint64_t)st->st_size;
	f->prot = prot;
	return m;
}

/* mmap one GET_FD answer e (checked) and enter it into the IOTLB. */
static int map_entry(struct vh_vduse_dev *dev, int fd, const struct stat *st,
		     const struct vduse_iotlb_entry *e, unsigned int perm)
{
	uint64_t size = e->last - e->start + 1;
	struct vh_iotlb_table *t;
	struct vh_mem_map *m = NULL;
	void *addr;
	int prot = 0, r, miss_err;
	uint64_t miss;

	/* already there, the same way: nothing to do */
	t = vh_iotlb_table_get(dev->iotlb);
	addr = t ? vh_iotlb_table_translate(t, e->start, size, perm, &miss,
					    &miss_err) :
		   NULL;
	vh_iotlb_table_put(t);
	if (addr)
		return 0;
	/* MAP_SHARED needs a readable fd whatever the protection */
	if (perm & VH_IOTLB_RO)
		prot |= PROT_READ;
	if (perm & VH_IOTLB_WO)
		prot |= PROT_WRITE;
	if (S_ISREG(st->st_mode))
		m = file_map(dev, fd, st, e->offset, size, prot);
	if (m) {
		/* the cache's reference: the IOTLB entries take their own */
		addr = (uint8_t *)m->addr + e->offset;
		m = vh_mem_map_ref(m);
	} else {
		/*
		 * The entry alone, in whole units of the file: a hugetlbfs
		 * file maps (and munmap()s) only whole huge pages, and its
		 * size is a multiple of them, so the rounding stays inside
		 * the file (offset + size <= st_size: check_domain_fd())
		 */
		uint64_t g = S_ISREG(st->st_mode) ?
				     vh_mem_map_granule(fd, st) :
				     (uint64_t)page_size();
		uint64_t delta = e->offset & (g - 1), maplen;
		void *base;

		if (size > SIZE_MAX - delta - (g - 1))
			return -EINVAL;
		maplen = (size + delta + g - 1) & ~(g - 1);
		m = calloc(1, sizeof(*m));
		if (!m)
			return -ENOMEM;
		base = mmap(NULL, maplen, prot, MAP_SHARED, fd,
			    (off_t)(e->offset - delta));
		if (base == MAP_FAILED) {
			r = -errno;
			free(m);
			vh_err(dev->ctx,
			       "vduse %s: mmap IOVA 0x%llx+0x%llx: %d\n",
			       dev->name, (unsigned long long)e->start,
			       (unsigned long long)size, r);
			return r;
		}
		addr = (uint8_t *)base + delta;
		m->refcount = 1;
		m->fd = -1; /* the mapping holds the file */
		m->addr = base;
		m->len = maplen;
	}
	r = vh_iotlb_update(dev->iotlb, e->start, size, addr, m, perm);
	if (r == -EEXIST) {
		/* a part is mapped another way (a cut entry): replace it */
		vh_iotlb_invalidate(dev->iotlb, e->start, size);
		r = vh_iotlb_update(dev->iotlb, e->start, size, addr, m, perm);
	}
	vh_mem_map_put(m); /* the IOTLB entries hold their own references */
	if (r < 0)
		vh_err(dev->ctx, "vduse %s: IOTLB update 0x%llx+0x%llx: %d\n",
		       dev->name, (unsigned long long)e->start,
		       (unsigned long long)size, r);
	else
		vh_dbg(dev->ctx, "vduse %s: IOVA 0x%llx-0x%llx perm %u\n",
		       dev->name, (unsigned long long)e->start,
		       (unsigned long long)e->last, perm);
	return r;
}

/*
 * Fetch every VDUSE mapping overlapping [start, last].  0, or -ENOENT when
 * the kernel has none at start, or -errno.
 */
static int fill_range(struct vh_vduse_dev *dev, uint64_t start, uint64_t last)
{
	uint64_t cur = start;
	int r = 0;

	pthread_mutex_lock(&dev->fill_lock);
	while (cur <= last) {
		struct vduse_iotlb_entry e = { .start = cur, .last = last };
		struct stat st;
		unsigned int perm;
		int fd;

		fd = ioctl(dev->fd, VDUSE_IOTLB_GET_FD, &e);
		if (fd < 0) {
			/* EINVAL: nothing mapped in [cur, last] */
			r = errno == EINVAL ? -ENOENT : -errno;
			if (r == -ENOENT && cur != start)
				r = 0;
			break;
		}
		/*
		 * The kernel installs it without O_CLOEXEC: narrow the window
		 * in which a fork() + exec() elsewhere in the process would
		 * inherit a file of guest memory (it is closed just below).
		 */
		fcntl(fd, F_SETFD, FD_CLOEXEC);
		perm = perm_of(e.perm);
		/*
		 * The answer must overlap what we asked, be page-aligned in
		 * the file (mmap), of a sane size, with a known permission.
		 */
		if (e.start > e.last || e.last < cur || e.start > last ||
		    !perm || e.last - e.start >= (uint64_t)SIZE_MAX ||
		    (e.offset & (uint64_t)(page_size() - 1))) {
			vh_err(dev->ctx,
			       "vduse %s: bad IOTLB entry 0x%llx-0x%llx perm %u\n",
			       dev->name, (unsigned long long)e.start,
			       (unsigned long long)e.last, e.perm);
			close(fd);
			r = -EPROTO;
			break;
		}
		r = check_domain_fd(dev, fd, &e, &st);
		if (r == 0)
			r = map_entry(dev, fd, &st, &e, perm);
		close(fd);
		if (r < 0 || e.last >= last)
			break;
		cur = e.last + 1;
	}
	pthread_mutex_unlock(&dev->fill_lock);
	return r;
}

/* Have every ring popped again (a translation came). */
static void kick_all(struct vh_vduse_dev *dev)
{
	unsigned int i;
	uint64_t one = 1;

	for (i = 0; i < dev->num_queues; i++)
		if (write(dev->q[i].kick_fd, &one, sizeof(one)) < 0 &&
		    errno != EAGAIN)
			vh_warn(dev->ctx, "vduse %s: kick %u: %d\n", dev->name,
				i, -errno);
}

/* A ring missed iova (any thread): fetch the mapping, pop again. */
static void on_miss(struct vh_iotlb *tlb, void *data, uint64_t iova,
		    unsigned int perm)
{
	struct vh_vduse_dev *dev = data;
	int r = fill_range(dev, iova, iova);

	/*
	 * Forget the pending miss either way: a fill that found the
	 * translation already there (another thread's) inserts nothing, and
	 * only an insert would clear it; after a failure a later access may
	 * ask again.  (An invalidation of the page, as before, also cut
	 * entries other threads had just filled there.)
	 */
	vh_iotlb_miss_forget(tlb, iova);
	if (r < 0) {
		vh_warn(dev->ctx, "vduse %s: IOVA 0x%llx (perm %u) not mapped: %d\n",
			dev->name, (unsigned long long)iova, perm, r);
		return;
	}
	kick_all(dev);
}

/* ------------------------------------------------------------------------ */
/* queues                                                                   */
/* ------------------------------------------------------------------------ */
static void drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) == sizeof(v))
		;
}

static void stop_queues(struct vh_vduse_dev *dev)
{
	unsigned int i;

	for (i = 0; i < dev->num_queues; i++) {
		struct vduse_q *q = &dev->q[i];

		/* as the kernel's state after its reset (vduse_dev_reset()) */
		q->base = 0;
		if (!q->vring)
			continue;
		if (dev->ops.queue_stopped)
			dev->ops.queue_stopped(dev, dev->data, i, q->vring);
		q->vring = vh_devq_unref(q->vring);
		drain(q->kick_fd);
		drain(q->call_fd);
	}
	/* the domain is reset with the device: drop every translation */
	pthread_mutex_lock(&dev->fill_lock);
	vh_iotlb_flush(dev->iotlb);
	file_maps_sweep(dev, true);
	pthread_mutex_unlock(&dev->fill_lock);
	__atomic_store_n(&dev->driver_features, 0, __ATOMIC_RELEASE);
}

static int dup_fd(int fd)
{
	int d = fcntl(fd, F_DUPFD_CLOEXEC, 0);

	return d < 0 ? -errno : d;
}

/*
 * Bytes of the driver (avail) and device (used) areas: 2.7 split, with the
 * event idx fields; 2.8.10 packed, one event suppression structure each.
 */
static size_t driver_area_bytes(bool packed, unsigned int num)
{
	return packed ? sizeof(struct vh_pevent) : vh_avail_bytes(num);
}

static size_t device_area_bytes(bool packed, unsigned int num)
{
	return packed ? sizeof(struct vh_pevent) : vh_used_bytes(num);
}

/* Fetch the three ring areas of a queue of num entries. */
static int fill_rings(struct vh_vduse_dev *dev, bool packed,
		      unsigned int num, uint64_t desc, uint64_t driver,
		      uint64_t device)
{
	int r;

	r = fill_range(dev, desc, desc + vh_desc_bytes(num) - 1);
	if (r == 0)
		r = fill_range(dev, driver,
			       driver + driver_area_bytes(packed, num) - 1);
	if (r == 0)
		r = fill_range(dev, device,
			       device + device_area_bytes(packed, num) - 1);
	return r;
}

/*
 * VDUSE_VQ_GET_INFO's ring state as a vh_devq base (vduse_q.base).  The
 * kernel copies a packed state from whoever set it (virtio_vdpa: position
 * 0, both wrap counters 1, 2.8.1; vhost-vdpa: the front-end's
 * SET_VRING_BASE, masked): positions are 15 bits and below the queue
 * size, counters 0 or 1 (2.8.1); anything else is refused.
 */
static int info_base(struct vh_vduse_dev *dev, const struct vduse_vq_info *info,
		     bool packed, uint32_t *base)
{
	const struct vduse_vq_state_packed *p = &info->packed;

	if (!packed) {
		*base = info->split.avail_index;
		return 0;
	}
	if (p->last_avail_idx >= info->num || p->last_used_idx >= info->num ||
	    p->last_avail_counter > 1 || p->last_used_counter > 1) {
		vh_err(dev->ctx,
		       "vduse %s: queue %u: bad packed state avail %u/%u used %u/%u\n",
		       dev->name, info->index, p->last_avail_idx,
		       p->last_avail_counter, p->last_used_idx,
		       p->last_used_counter);
		return -EPROTO;
	}
	*base = (uint32_t)p->last_avail_idx |
		(uint32_t)p->last_avail_counter << 15 |
		(uint32_t)p->last_used_idx << 16 |
		(uint32_t)p->last_used_counter << 31;
	return 0;
}

/* DRIVER_OK: queue i as the kernel describes it (VDUSE_VQ_GET_INFO). */
static int start_queue(struct vh_vduse_dev *dev, unsigned int i,
		       uint64_t features)
{
	bool packed = features & (1ull << VIRTIO_F_RING_PACKED);
	struct vduse_vq_info info = { .index = i };
	struct vduse_vq_eventfd kick = { .index = i };
	struct vduse_q *q = &dev->q[i];
	struct vh_devq_addr addr = { 0 };
	struct vh_devq *vr = NULL;
	uint32_t base = 0;
	int r, fd;

	/* running already: its owner has it (set_status() keeps this) */
	if (q->vring)
		return -EBUSY;
	if (ioctl(dev->fd, VDUSE_VQ_GET_INFO, &info) < 0)
		return -errno;
	if (info.index != i)
		return -EPROTO;
	if (!info.ready)
		return 0;
	/*
	 * 2.7: a power of 2; 2.8: packed, any size; at most what
	 * VDUSE_VQ_SETUP allowed
	 */
	if (!info.num || info.num > dev->max_queue_size ||
	    (!packed && (info.num & (info.num - 1)))) {
		vh_err(dev->ctx, "vduse %s: queue %u: bad size %u\n",
		       dev->name, i, info.num);
		return -EPROTO;
	}
	/* 2.7, 2.8: ring areas that do not wrap the IOVA space */
	if (info.desc_addr > UINT64_MAX - vh_desc_bytes(info.num) ||
	    info.driver_addr >
		    UINT64_MAX - driver_area_bytes(packed, info.num) ||
	    info.device_addr >
		    UINT64_MAX - device_area_bytes(packed, info.num)) {
		vh_err(dev->ctx, "vduse %s: queue %u: ring address wraps\n",
		       dev->name, i);
		return -EPROTO;
	}
	r = info_base(dev, &info, packed, &base);
	if (r < 0)
		return r;
	/* the rings first: the device reads them from the start */
	r = fill_rings(dev, packed, info.num, info.desc_addr, info.driver_addr,
		       info.device_addr);
	if (r < 0) {
		vh_err(dev->ctx, "vduse %s: queue %u: rings not mapped: %d\n",
		       dev->name, i, r);
		return r;
	}
	r = vh_devq_new(dev->ctx, dev->mem, i, &vr);
	if (r < 0)
		return r;
	/* VDUSE addresses are always IOVAs of the domain */
	r = vh_devq_set_iotlb(vr, dev->iotlb);
	if (!r)
		r = vh_devq_set_features(
			vr, features | 1ull << VIRTIO_F_ACCESS_PLATFORM);
	if (!r)
		r = vh_devq_set_num(vr, info.num);
	addr.desc = info.desc_addr;
	addr.avail = info.driver_addr;
	addr.used = info.device_addr;
	if (!r)
		r = vh_devq_set_addr(vr, &addr);
	if (!r)
		r = vh_devq_set_base(vr, base);
	/*
	 * Taking over from a process that died: VDUSE only knows the base
	 * the driver set up, the ring knows how far the device got.  Start
	 * at the used index; a device with inflight tracking moves on past
	 * the chains it resubmits (as after a vhost-user reconnection).  A
	 * packed ring takes its positions from its inflight region.
	 */
	if (!r && dev->resume && !packed) {
		uint16_t used;

		r = vh_devq_get_used_idx(vr, &used);
		if (!r)
			r = vh_devq_set_base(vr, used);
	}
	if (!r && vh_devq_iotlb_ready(vr) != 1)
		r = -EFAULT;
	if (r < 0)
		goto fail;
	fd = dup_fd(q->kick_fd);
	if (fd < 0) {
		r = fd;
		goto fail;
	}
	vh_devq_set_kick_fd(vr, fd);
	fd = dup_fd(q->call_fd);
	if (fd < 0) {
		r = fd;
		goto fail;
	}
	vh_devq_set_call_fd(vr, fd);
	kick.fd = q->kick_fd;
	if (ioctl(dev->fd, VDUSE_VQ_SETUP_KICKFD, &kick) < 0) {
		r = -errno;
		goto fail;
	}
	q->base = base;
	if (dev->ops.queue_started) {
		r = dev->ops.queue_started(dev, dev->data, i, vr);
		if (r < 0)
			goto fail;
	}
	q->vring = vr;
	vh_dbg(dev->ctx, "vduse %s: queue %u started, %s, size %u, base %#x\n",
	       dev->name, i, packed ? "packed" : "split", info.num, base);
	return 0;
fail:
	vh_err(dev->ctx, "vduse %s: queue %u: cannot start: %d\n", dev->name,
	       i, r);
	vh_devq_unref(vr);
	return r;
}

static int driver_ok(struct vh_vduse_dev *dev)
{
	uint64_t f;
	unsigned int i;
	int r;

	if (ioctl(dev->fd, VDUSE_DEV_GET_FEATURES, &f) < 0)
		return -errno;
	/* 2.2: the driver accepts a subset of what the device offers */
	if (f & ~dev->features) {
		vh_err(dev->ctx, "vduse %s: driver features 0x%llx not offered\n",
		       dev->name, (unsigned long long)(f & ~dev->features));
		return -EPROTO;
	}
	__atomic_store_n(&dev->driver_features, f, __ATOMIC_RELEASE);
	if (dev->ops.set_features) {
		r = dev->ops.set_features(dev, dev->data, f);
		if (r < 0)
			goto refused;
	}
	for (i = 0; i < dev->num_queues; i++) {
		r = start_queue(dev, i, f);
		if (r < 0) {
			stop_queues(dev);
			goto refused;
		}
	}
	return 0;
refused:
	/* no DRIVER_OK: 0 again, as the header says of the time before */
	__atomic_store_n(&dev->driver_features, 0, __ATOMIC_RELEASE);
	return r;
}

/* ------------------------------------------------------------------------ */
/* requests                                                                 */
/* ------------------------------------------------------------------------ */
static int set_status(struct vh_vduse_dev *dev, uint8_t status)
{
	int r;

	vh_dbg(dev->ctx, "vduse %s: status 0x%x\n", dev->name, status);
	if (status == 0) {
		/* 2.1.1: reset; the kernel resets the domain after us */
		stop_queues(dev);
		dev->status = 0;
		vduse_state_clear_queues(dev);
		vduse_state_set_status(dev, 0);
		if (dev->ops.reset)
			dev->ops.reset(dev, dev->data);
		return 0;
	}
	/*
	 * 2.1.1: the driver clears no bit but by a reset.  One that did
	 * (DRIVER_OK off, then on again) would start running rings again.
	 */
	if (dev->status & ~status) {
		vh_err(dev->ctx, "vduse %s: status 0x%x clears bits of 0x%x\n",
		       dev->name, status, dev->status);
		return -EINVAL;
	}
	if (dev->ops.set_status) {
		r = dev->ops.set_status(dev, dev->data, status);
		if (r < 0)
			return r;
	}
	if ((status & VDUSE_S_DRIVER_OK) &&
	    !(dev->status & VDUSE_S_DRIVER_OK)) {
		r = driver_ok(dev);
		if (r < 0)
			return r;
	}
	dev->status = status;
	vduse_state_set_status(dev, status);
	return 0;
}

/* UPDATE_IOTLB: [start, last] changed; fetch the rings again. */
static int update_iotlb(struct vh_vduse_dev *dev, uint64_t start,
			uint64_t last)
{
	unsigned int i;
	int r;

	if (start > last)
		return -EINVAL;
	vh_dbg(dev->ctx, "vduse %s: IOTLB update 0x%llx-0x%llx\n", dev->name,
	       (unsigned long long)start, (unsigned long long)last);
	/*
	 * Rings pinning older snapshots move on at their next pop.  Under
	 * fill_lock: a miss being filled (on a worker) may hold a mapping
	 * of the kernel's old map; it goes in before this invalidation and
	 * is erased, or after it and fetches the new one.
	 */
	pthread_mutex_lock(&dev->fill_lock);
	if (start == 0 && last == UINT64_MAX)
		r = vh_iotlb_flush(dev->iotlb);
	else
		r = vh_iotlb_invalidate(dev->iotlb, start, last - start + 1);
	file_maps_sweep(dev, false);
	pthread_mutex_unlock(&dev->fill_lock);
	if (r < 0)
		return r;
	for (i = 0; i < dev->num_queues; i++) {
		struct vh_devq *vr = dev->q[i].vring;
		struct vh_devq_addr *a;
		unsigned int n;

		if (!vr)
			continue;
		/* the ring's own addresses (control thread: set at start) */
		a = &vr->addr;
		n = vr->size;
		fill_rings(dev, vr->packed, n, a->desc, a->avail, a->used);
	}
	kick_all(dev);
	return 0;
}

/*
 * VDUSE_GET_VQ_STATE (vhost-vdpa's GET_VRING_BASE) comes for a running
 * ring: its last_avail belongs to the thread the ring was handed to.  Take
 * the ring back as vhost-user's GET_VRING_BASE does (queue_stopped: the
 * owner lets go of it under its own locks), read it, and hand it over
 * again; the owner polls it once when it gets it back, so no kick is lost.
 */
static int get_vq_state(struct vh_vduse_dev *dev, unsigned int idx,
			uint32_t *base)
{
	struct vduse_q *q = &dev->q[idx];
	int r;

	*base = q->base;
	if (!q->vring)
		return 0;
	if (dev->ops.queue_stopped)
		dev->ops.queue_stopped(dev, dev->data, idx, q->vring);
	r = vh_devq_get_base(q->vring, base);
	if (dev->ops.queue_started) {
		int s = dev->ops.queue_started(dev, dev->data, idx, q->vring);

		if (s < 0) {
			/* stopped for good: the owner has let go of it */
			vh_err(dev->ctx,
			       "vduse %s: queue %u: cannot restart: %d\n",
			       dev->name, idx, s);
			/* the next GET_VQ_STATE answers where it stopped */
			if (r == 0)
				q->base = *base;
			q->vring = vh_devq_unref(q->vring);
		}
	}
	return r;
}

/*
 * The layout GET_VQ_STATE answers in: the kernel reads the packed or the
 * split member of the answer after its own driver features
 * (vduse_vdpa_get_vq_state()), which it sets at FEATURES_OK, before our
 * DRIVER_OK; ask it.
 */
static bool state_packed(struct vh_vduse_dev *dev)
{
	uint64_t f;

	if (ioctl(dev->fd, VDUSE_DEV_GET_FEATURES, &f) < 0)
		f = __atomic_load_n(&dev->driver_features, __ATOMIC_ACQUIRE);
	return f & (1ull << VIRTIO_F_RING_PACKED);
}

static void handle_request(struct vh_vduse_dev *dev,
			   const struct vduse_dev_request *req,
			   struct vduse_dev_response *resp)
{
	unsigned int idx;
	uint32_t base;
	int r = 0;

	switch (req->type) {
	case VDUSE_GET_VQ_STATE:
		idx = req->vq_state.index;
		if (idx >= dev->num_queues) {
			r = -EINVAL;
			break;
		}
		r = get_vq_state(dev, idx, &base);
		if (r < 0)
			break;
		resp->vq_state.index = idx;
		if (!state_packed(dev)) {
			resp->vq_state.split.avail_index = (uint16_t)base;
			break;
		}
		/* 2.8.1: 15-bit positions, 1-bit wrap counters */
		resp->vq_state.packed.last_avail_idx = base & 0x7fff;
		resp->vq_state.packed.last_avail_counter = (base >> 15) & 1;
		resp->vq_state.packed.last_used_idx = (base >> 16) & 0x7fff;
		resp->vq_state.packed.last_used_counter = base >> 31;
		break;
	case VDUSE_SET_STATUS:
		r = set_status(dev, req->s.status);
		break;
	case VDUSE_UPDATE_IOTLB:
		r = update_iotlb(dev, req->iova.start, req->iova.last);
		break;
	default:
		vh_warn(dev->ctx, "vduse %s: unknown request type %u\n",
			dev->name, req->type);
		r = -EOPNOTSUPP;
		break;
	}
	if (r < 0)
		vh_warn(dev->ctx, "vduse %s: request %u failed: %d\n",
			dev->name, req->type, r);
	resp->result = r < 0 ? VDUSE_REQ_RESULT_FAILED : VDUSE_REQ_RESULT_OK;
}

/* Rings that signalled: inject their interrupts. */
static int inject_irqs(struct vh_vduse_dev *dev)
{
	unsigned int i;
	uint64_t v;

	for (i = 0; i < dev->num_queues; i++) {
		uint32_t idx = i;

		if (read(dev->q[i].call_fd, &v, sizeof(v)) != sizeof(v))
			continue;
		if (!dev->q[i].vring)
			continue;
		if (ioctl(dev->fd, VDUSE_VQ_INJECT_IRQ, &idx) < 0)
			vh_warn(dev->ctx, "vduse %s: inject irq %u: %d\n",
				dev->name, i, -errno);
	}
	return 0;
}

/*
 * The kernel marked the device broken (vduse_dev_broken(): a request not
 * answered in time): its fd polls POLLERR for good.
 */
static bool dev_broken(const struct vh_vduse_dev *dev)
{
	struct pollfd p = { .fd = dev->fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLNVAL));
}

VH_EXPORT int vh_vduse_dev_process(struct vh_vduse_dev *dev)
{
	struct vduse_dev_request req;
	struct vduse_dev_response resp;
	ssize_t n;

	if (!dev)
		return -EINVAL;
	if (dev->resume) {
		int r;

		/*
		 * The driver set DRIVER_OK before the reconnection.  Every
		 * mapping first: chains resubmitted from the inflight regions
		 * are mapped at once (vh_devq_pop_head()), no miss can wait.
		 */
		r = fill_range(dev, 0, UINT64_MAX);
		if (r < 0 && r != -ENOENT)
			vh_warn(dev->ctx, "vduse %s: IOTLB: %d\n", dev->name, r);
		r = driver_ok(dev);
		dev->resume = false;
		if (r < 0) {
			vh_err(dev->ctx, "vduse %s: cannot resume: %d\n",
			       dev->name, r);
			return r;
		}
		vh_info(dev->ctx, "vduse %s: rings resumed\n", dev->name);
		/* kicks of the time between went to the old process */
		kick_all(dev);
	}
	/*
	 * A file whose entries an update removed is still held by the rings'
	 * old snapshots when the update is handled; they let go at their
	 * next pop, and the next event here lets the file go (never waiting
	 * for a fill in progress)
	 */
	if (pthread_mutex_trylock(&dev->fill_lock) == 0) {
		file_maps_sweep(dev, false);
		pthread_mutex_unlock(&dev->fill_lock);
	}
	inject_irqs(dev);
	n = read(dev->fd, &req, sizeof(req));
	if (n < 0) {
		if (errno == EINTR)
			return 0;
		/*
		 * A device the kernel marked broken (a request not answered
		 * within its msg_timeout) has nothing to read ever again and
		 * polls POLLERR: unusable, not idle
		 */
		if (errno == EAGAIN)
			return dev_broken(dev) ? -EIO : 0;
		return -errno;
	}
	if ((size_t)n != sizeof(req)) {
		vh_err(dev->ctx, "vduse %s: short request (%zd bytes)\n",
		       dev->name, n);
		return -EPROTO;
	}
	memset(&resp, 0, sizeof(resp));
	resp.request_id = req.request_id;
	handle_request(dev, &req, &resp);
	n = write(dev->fd, &resp, sizeof(resp));
	if (n < 0 && errno == ENOENT) {
		/*
		 * The kernel gave up waiting (the requesting task got a fatal
		 * signal, or the message timed out): the request is gone,
		 * the device may be well
		 */
		vh_dbg(dev->ctx, "vduse %s: request %u withdrawn by the kernel\n",
		       dev->name, req.request_id);
		return dev_broken(dev) ? -EIO : 1;
	}
	if (n < 0)
		return -errno;
	if ((size_t)n != sizeof(resp))
		return -EIO;
	return 1;
}

/* ------------------------------------------------------------------------ */
/* object                                                                   */
/* ------------------------------------------------------------------------ */
#define VDUSE_CONFIG_SIZE_1 VH_SIZEOF_UNTIL(struct vh_vduse_config, config_size)
#define VDUSE_OPS_SIZE_1 VH_SIZEOF_UNTIL(struct vh_vduse_ops, reset)

/* A name for /dev/vduse/NAME: one path component, not the control node. */
static bool name_ok(const char *name)
{
	size_t len = name ? strlen(name) : 0;

	return len && len < VDUSE_NAME_MAX && !strchr(name, '/') &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
	       strcmp(name, "control") != 0;
}

static void dev_free(struct vh_vduse_dev *dev)
{
	bool destroyed = dev->created;
	unsigned int i;

	/* a ring the application still holds keeps the IOTLB: not dev */
	vh_iotlb_set_miss_fn(dev->iotlb, NULL, NULL);
	if (dev->q) {
		stop_queues(dev);
		for (i = 0; i < dev->num_queues; i++) {
			if (dev->q[i].kick_fd >= 0)
				close(dev->q[i].kick_fd);
			if (dev->q[i].call_fd >= 0)
				close(dev->q[i].call_fd);
		}
	}
	if (dev->epfd >= 0)
		close(dev->epfd);
	/* the kernel destroys a device only when nobody has it open */
	if (dev->fd >= 0)
		close(dev->fd);
	if (dev->created &&
	    ioctl(dev->ctl_fd, VDUSE_DESTROY_DEV, dev->name) < 0) {
		/* still bound (EBUSY): a new process can take it over */
		vh_warn(dev->ctx, "vduse %s: cannot destroy: %d\n", dev->name,
			-errno);
		destroyed = false;
	}
	vduse_state_close(dev, destroyed);
	if (dev->ctl_fd >= 0)
		close(dev->ctl_fd);
	free(dev->q);
	file_maps_sweep(dev, true);
	vh_iotlb_unref(dev->iotlb);
	vh_mem_unref(dev->mem);
	pthread_mutex_destroy(&dev->fill_lock);
	vh_ctx_unref(dev->ctx);
	free(dev);
}

static int create(struct vh_vduse_dev *dev, const struct vh_vduse_config *c)
{
	struct vduse_dev_config *k;
	uint64_t version = VDUSE_API_VERSION;
	struct stat st;
	int r = 0;

	if (dev->ctl_fd < 0) {
		dev->ctl_fd = open(VDUSE_CONTROL, O_RDWR | O_CLOEXEC);
		if (dev->ctl_fd < 0)
			return -errno;
		if (fstat(dev->ctl_fd, &st) < 0)
			return -errno;
		if (!S_ISCHR(st.st_mode))
			return -ENODEV;
		if (ioctl(dev->ctl_fd, VDUSE_SET_API_VERSION, &version) < 0)
			return -errno;
	}
	k = calloc(1, sizeof(*k) + c->config_size);
	if (!k)
		return -ENOMEM;
	memcpy(k->name, dev->name, sizeof(k->name));
	k->vendor_id = c->vendor_id;
	k->device_id = c->device_id;
	k->features = dev->features;
	k->vq_num = c->num_queues;
	k->vq_align = (uint32_t)page_size();
	k->config_size = c->config_size;
	if (c->config_size)
		memcpy(k->config, c->config, c->config_size);
	if (ioctl(dev->ctl_fd, VDUSE_CREATE_DEV, k) < 0)
		r = -errno;
	free(k);
	if (r < 0) {
		if (r != -EEXIST)
			vh_err(dev->ctx, "vduse %s: VDUSE_CREATE_DEV: %d\n",
			       dev->name, r);
		return r;
	}
	dev->created = true;
	return 0;
}

/*
 * The name is taken and the state file was found empty: a process of
 * ours died between VDUSE_CREATE_DEV and writing the file's header, or
 * one ran without a state file and died.  Either left a device nobody
 * serves; the kernel destroys it only if no process has it open and no
 * vdpa device is bound to it (EBUSY otherwise), so one in use is never
 * lost.  Destroyed, it is created again for this process: 0, or -EEXIST
 * as if it had not been tried.
 */
static int replace_stale(struct vh_vduse_dev *dev,
			 const struct vh_vduse_config *c)
{
	if (ioctl(dev->ctl_fd, VDUSE_DESTROY_DEV, dev->name) < 0) {
		vh_dbg(dev->ctx, "vduse %s: exists, in use: %d\n", dev->name,
		       -errno);
		return -EEXIST;
	}
	vh_warn(dev->ctx,
		"vduse %s: replaced a device left unserved, with no state to take over\n",
		dev->name);
	return create(dev, c);
}

static int open_dev(struct vh_vduse_dev *dev)
{
	char path[sizeof(VDUSE_DIR) + VDUSE_NAME_MAX];
	struct epoll_event ev = { .events = EPOLLIN };
	struct stat st;
	unsigned int i;

	snprintf(path, sizeof(path), VDUSE_DIR "%s", dev->name);
	dev->fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (dev->fd < 0)
		return -errno;
	if (fstat(dev->fd, &st) < 0)
		return -errno;
	if (!S_ISCHR(st.st_mode))
		return -ENODEV;
	for (i = 0; i < dev->num_queues; i++) {
		struct vduse_vq_config vq = {
			.index = i,
			.max_size = (uint16_t)dev->max_queue_size,
		};

		if (ioctl(dev->fd, VDUSE_VQ_SETUP, &vq) < 0)
			return -errno;
	}
	dev->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (dev->epfd < 0)
		return -errno;
	if (epoll_ctl(dev->epfd, EPOLL_CTL_ADD, dev->fd, &ev) < 0)
		return -errno;
	for (i = 0; i < dev->num_queues; i++)
		if (epoll_ctl(dev->epfd, EPOLL_CTL_ADD, dev->q[i].call_fd,
			      &ev) < 0)
			return -errno;
	return 0;
}

VH_EXPORT int vh_vduse_dev_new(struct vh_ctx *ctx,
			       const struct vh_vduse_config *cfg,
			       const struct vh_vduse_ops *ops, void *data,
			       struct vh_vduse_dev **out)
{
	static const struct vh_vduse_ops no_ops = { .size = sizeof(no_ops) };
	bool state_ok = false, reconnect = false;
	struct vh_vduse_config c;
	struct vh_vduse_dev *dev;
	unsigned int i;
	int r;

	if (!ctx || !cfg || !out)
		return -EINVAL;
	r = vh_copy_struct(&c, sizeof(c), VDUSE_CONFIG_SIZE_1, cfg);
	if (r < 0)
		return r;
	if (!name_ok(c.name) || !c.device_id || !c.num_queues ||
	    c.num_queues > VH_VU_MAX_QUEUES ||
	    c.max_queue_size > VH_DEVQ_MAX_SIZE ||
	    (c.max_queue_size & (c.max_queue_size - 1)) ||
	    c.config_size > (unsigned long)page_size() ||
	    (c.config_size && !c.config))
		return -EINVAL;
	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return -ENOMEM;
	dev->refcount = 1;
	dev->ctx = vh_ctx_ref(ctx);
	dev->ctl_fd = dev->fd = dev->epfd = dev->state_fd = -1;
	pthread_mutex_init(&dev->fill_lock, NULL);
	r = vh_copy_struct(&dev->ops, sizeof(dev->ops), VDUSE_OPS_SIZE_1,
			   ops ? ops : &no_ops);
	if (r < 0)
		goto fail;
	dev->data = data;
	snprintf(dev->name, sizeof(dev->name), "%s", c.name);
	/* VDUSE requires ACCESS_PLATFORM (its addresses are IOVAs) */
	dev->features = c.features | 1ull << VIRTIO_F_VERSION_1 |
			1ull << VIRTIO_F_ACCESS_PLATFORM;
	dev->num_queues = c.num_queues;
	dev->max_queue_size = c.max_queue_size ? c.max_queue_size :
						 VH_DEVQ_MAX_SIZE;
	dev->q = calloc(c.num_queues, sizeof(*dev->q));
	if (!dev->q) {
		r = -ENOMEM;
		goto fail;
	}
	for (i = 0; i < c.num_queues; i++)
		dev->q[i].kick_fd = dev->q[i].call_fd = -1;
	for (i = 0; i < c.num_queues; i++) {
		dev->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		dev->q[i].call_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (dev->q[i].kick_fd < 0 || dev->q[i].call_fd < 0) {
			r = -errno;
			goto fail;
		}
	}
	r = vh_mem_new(ctx, &dev->mem);
	if (r < 0)
		goto fail;
	r = vh_iotlb_new(ctx, &dev->iotlb);
	if (r < 0)
		goto fail;
	vh_iotlb_set_miss_fn(dev->iotlb, on_miss, dev);
	if (c.state_path) {
		r = vduse_state_open(dev, c.state_path, c.device_id);
		if (r < 0)
			goto fail;
		state_ok = r == 1;
	}
	r = create(dev, &c);
	if (r == -EEXIST && !state_ok && dev->state_empty)
		r = replace_stale(dev, &c);
	if (r == -EEXIST && state_ok) {
		/* its process died: take the device over (vduse-state.c) */
		reconnect = true;
		r = 0;
	} else if (r == -EEXIST) {
		vh_err(ctx, "vduse %s: the device exists%s\n", dev->name,
		       c.state_path ? " and the state file does not match it" :
				      "");
	}
	if (r < 0)
		goto fail;
	if (c.state_path) {
		r = vduse_state_attach(dev, reconnect, c.device_id);
		if (r < 0)
			goto fail;
	}
	r = open_dev(dev);
	if (r < 0) {
		vh_err(ctx, "vduse %s: cannot set up the device: %d\n",
		       dev->name, r);
		goto fail;
	}
	if (reconnect) {
		uint64_t one = 1;

		/* ours now: a clean end destroys it as if we had made it */
		dev->created = true;
		dev->reconnected = true;
		dev->status = __atomic_load_n(&dev->state->status,
					      __ATOMIC_ACQUIRE);
		/*
		 * The rings restart from the first vh_vduse_dev_process(),
		 * once the caller is ready for queue_started: wake it.
		 */
		if (dev->status & VDUSE_S_DRIVER_OK) {
			dev->resume = true;
			if (write(dev->q[0].call_fd, &one, sizeof(one)) < 0)
				vh_warn(ctx, "vduse %s: wake: %d\n", dev->name,
					-errno);
		}
		vh_info(ctx, "vduse %s: reconnected (status 0x%x), %u queues of up to %u\n",
			dev->name, dev->status, dev->num_queues,
			dev->max_queue_size);
	} else {
		vh_info(ctx, "vduse %s: created, %u queues of up to %u\n",
			dev->name, dev->num_queues, dev->max_queue_size);
	}
	*out = dev;
	return 0;
fail:
	dev_free(dev);
	return r;
}

VH_EXPORT struct vh_vduse_dev *vh_vduse_dev_ref(struct vh_vduse_dev *dev)
{
	if (dev)
		__atomic_add_fetch(&dev->refcount, 1, __ATOMIC_RELAXED);
	return dev;
}

VH_EXPORT struct vh_vduse_dev *vh_vduse_dev_unref(struct vh_vduse_dev *dev)
{
	if (!dev)
		return NULL;
	if (__atomic_sub_fetch(&dev->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return dev;
	dev_free(dev);
	return NULL;
}

VH_EXPORT int vh_vduse_dev_get_fd(const struct vh_vduse_dev *dev)
{
	return dev ? dev->epfd : -EINVAL;
}

VH_EXPORT uint64_t vh_vduse_dev_get_features(const struct vh_vduse_dev *dev)
{
	return dev ? __atomic_load_n(&dev->driver_features, __ATOMIC_ACQUIRE) :
		     0;
}

VH_EXPORT const char *vh_vduse_dev_get_name(const struct vh_vduse_dev *dev)
{
	return dev ? dev->name : NULL;
}
