// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vh_kdev: the generic control plane of a kernel vhost device
 * (<linux/vhost.h>, drivers/vhost/vhost.c).
 */
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "kdev-internal.h"
#include "mem-internal.h"

static const struct {
	const char *name; /* DEVNAME in sysfs, node under /dev */
	unsigned int virtio_id;
	unsigned int nvrings;
} kdev_types[] = {
	[VH_KDEV_NET] = { "vhost-net", VH_VIRTIO_ID_NET, 2 },
	[VH_KDEV_VSOCK] = { "vhost-vsock", VH_VIRTIO_ID_VSOCK, 2 },
	/* a guess until SET_OWNER lets us ask (probe_num_vrings) */
	[VH_KDEV_SCSI] = { "vhost-scsi", VH_VIRTIO_ID_SCSI, 128 },
	[VH_KDEV_VDPA] = { "vhost-vdpa-", 0, 0 },
};

VH_EXPORT const char *vh_kdev_type_name(enum vh_kdev_type type)
{
	if (type <= VH_KDEV_UNKNOWN || type > VH_KDEV_VDPA)
		return NULL;
	if (type == VH_KDEV_VDPA)
		return "vhost-vdpa";
	return kdev_types[type].name;
}

static enum vh_kdev_type type_from_name(const char *name)
{
	const char *base = strrchr(name, '/');
	size_t vdpa_len = strlen(kdev_types[VH_KDEV_VDPA].name);

	base = base ? base + 1 : name;
	if (strcmp(base, kdev_types[VH_KDEV_NET].name) == 0)
		return VH_KDEV_NET;
	if (strcmp(base, kdev_types[VH_KDEV_VSOCK].name) == 0)
		return VH_KDEV_VSOCK;
	if (strcmp(base, kdev_types[VH_KDEV_SCSI].name) == 0)
		return VH_KDEV_SCSI;
	if (strncmp(base, kdev_types[VH_KDEV_VDPA].name, vdpa_len) == 0 &&
	    base[vdpa_len] >= '0' && base[vdpa_len] <= '9')
		return VH_KDEV_VDPA;
	return VH_KDEV_UNKNOWN;
}

/*
 * The kernel's name for the character device behind fd: DEVNAME in its
 * uevent file; *known false when sysfs does not say (no /sys in a
 * container): only then does the path's own name count.
 */
static enum vh_kdev_type type_from_sysfs(int fd, bool *known)
{
	enum vh_kdev_type type = VH_KDEV_UNKNOWN;
	char path[64], line[256];
	struct stat st;
	FILE *f;

	*known = false;
	if (fstat(fd, &st) < 0 || !S_ISCHR(st.st_mode)) {
		*known = true; /* not a device node at all */
		return VH_KDEV_UNKNOWN;
	}
	snprintf(path, sizeof(path), "/sys/dev/char/%u:%u/uevent",
		 major(st.st_rdev), minor(st.st_rdev));
	f = fopen(path, "re");
	if (!f)
		return VH_KDEV_UNKNOWN;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "DEVNAME=", 8) == 0) {
			line[strcspn(line, "\n")] = '\0';
			type = type_from_name(line + 8);
			*known = true;
			break;
		}
	}
	fclose(f);
	return type;
}

VH_EXPORT int vh_kdev_open(struct vh_ctx *ctx, const char *path,
			   struct vh_kdev **out)
{
	struct vh_kdev *dev;
	bool known;
	int fd, err;

	if (!ctx || !path || !out)
		return -EINVAL;
	/*
	 * What the node is, before opening it: an open may have effects of
	 * its own (a watchdog's arms it).  O_PATH reaches no driver.
	 */
	fd = open(path, O_PATH | O_CLOEXEC);
	if (fd >= 0) {
		enum vh_kdev_type t = type_from_sysfs(fd, &known);

		close(fd);
		/* sysfs does not say (no /sys): the path's name, as below */
		if (!known) {
			t = type_from_name(path);
			known = true;
		}
		if (known && t == VH_KDEV_UNKNOWN) {
			vh_err(ctx, "%s is not a vhost device node\n", path);
			return -ENODEV;
		}
	}
	/* O_NOCTTY: a tty given here must not become our terminal */
	fd = open(path, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		err = -errno;
		vh_dbg(ctx, "open %s: %d\n", path, err);
		return err;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		close(fd);
		return -ENOMEM;
	}
	dev->refcount = 1;
	dev->fd = fd;
	dev->features_array = -1;
	/*
	 * what the kernel says the node is; a link or a node named
	 * vhost-net that is another device is not taken for one
	 */
	dev->type = type_from_sysfs(fd, &known);
	if (!known)
		dev->type = type_from_name(path);
	if (dev->type == VH_KDEV_UNKNOWN) {
		vh_err(ctx, "%s is not a vhost device node\n", path);
		err = -ENODEV;
		goto fail;
	}
	dev->virtio_id = kdev_types[dev->type].virtio_id;
	dev->nvrings = kdev_types[dev->type].nvrings;
	if (dev->type == VH_KDEV_VDPA) {
		__u32 id = 0, nvqs = 0;

		if (ioctl(fd, VHOST_VDPA_GET_DEVICE_ID, &id) == 0)
			dev->virtio_id = id;
		/* VHOST_VDPA_GET_VQS_COUNT: Linux 5.16; else the u16 limit */
		if (ioctl(fd, VHOST_VDPA_GET_VQS_COUNT, &nvqs) == 0 &&
		    nvqs > 0 && nvqs <= 0xffff)
			dev->nvrings = nvqs;
		else
			dev->nvrings = 0xffff;
	}
	dev->vring_num = calloc(dev->nvrings, sizeof(*dev->vring_num));
	if (!dev->vring_num) {
		err = -ENOMEM;
		goto fail;
	}
	dev->ctx = vh_ctx_ref(ctx);
	vh_info(ctx, "opened %s (%s, %u vrings) fd %d\n", path,
		vh_kdev_type_name(dev->type), dev->nvrings, fd);
	*out = dev;
	return 0;
fail:
	close(fd);
	free(dev);
	return err;
}

VH_EXPORT int vh_kdev_open_type(struct vh_ctx *ctx, enum vh_kdev_type type,
				struct vh_kdev **out)
{
	char path[64];

	if (type <= VH_KDEV_UNKNOWN || type >= VH_KDEV_VDPA)
		return -EINVAL;
	snprintf(path, sizeof(path), "/dev/%s", kdev_types[type].name);
	return vh_kdev_open(ctx, path, out);
}

VH_EXPORT struct vh_kdev *vh_kdev_ref(struct vh_kdev *dev)
{
	if (!dev)
		return NULL;
	__atomic_add_fetch(&dev->refcount, 1, __ATOMIC_RELAXED);
	return dev;
}

VH_EXPORT struct vh_kdev *vh_kdev_unref(struct vh_kdev *dev)
{
	if (!dev)
		return NULL;
	if (__atomic_sub_fetch(&dev->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return dev;
	vh_info(dev->ctx, "closing %s fd %d\n", vh_kdev_type_name(dev->type),
		dev->fd);
	close(dev->fd);
	free(dev->regions);
	free(dev->vring_num);
	vh_ctx_unref(dev->ctx);
	free(dev);
	return NULL;
}

VH_EXPORT int vh_kdev_get_fd(const struct vh_kdev *dev)
{
	return dev ? dev->fd : -EINVAL;
}

VH_EXPORT enum vh_kdev_type vh_kdev_get_type(const struct vh_kdev *dev)
{
	return dev ? dev->type : VH_KDEV_UNKNOWN;
}

VH_EXPORT unsigned int vh_kdev_get_virtio_id(const struct vh_kdev *dev)
{
	return dev ? dev->virtio_id : 0;
}

VH_EXPORT unsigned int vh_kdev_get_num_vrings(const struct vh_kdev *dev)
{
	return dev ? dev->nvrings : 0;
}

int vh_kdev_ioctl(struct vh_kdev *dev, unsigned long req, void *arg)
{
	int err;

	if (ioctl(dev->fd, req, arg) == 0)
		return 0;
	err = -errno;
	vh_dbg(dev->ctx, "ioctl 0x%lx on fd %d: %d\n", req, dev->fd, err);
	return err;
}

int vh_kdev_check_index(const struct vh_kdev *dev, unsigned int index)
{
	if (index < dev->nvrings)
		return 0;
	vh_err(dev->ctx, "vring %u: %s has %u vrings\n", index,
	       vh_kdev_type_name(dev->type), dev->nvrings);
	return -ENOBUFS;
}

int vh_kdev_check_fd(int fd)
{
	if (fd == -1)
		return 0;
	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
		return -EBADF;
	return 0;
}

/*
 * vhost-scsi's vring count depends on the kernel (and on its max_io_vqs
 * parameter): find it once we own the device, as the largest index
 * VHOST_GET_VRING_BUSYLOOP_TIMEOUT (read-only) does not answer ENOBUFS.
 */
static void probe_num_vrings(struct vh_kdev *dev)
{
	unsigned int lo = 1, hi = 0xffff, *num;

	while (lo < hi) {
		unsigned int mid = lo + (hi - lo + 1) / 2;
		struct vhost_vring_state s = { .index = mid - 1 };

		if (ioctl(dev->fd, VHOST_GET_VRING_BUSYLOOP_TIMEOUT, &s) == 0)
			lo = mid;
		else if (errno == ENOBUFS)
			hi = mid - 1;
		else
			return; /* keep the static guess */
	}
	if (lo == dev->nvrings)
		return;
	num = calloc(lo, sizeof(*num));
	if (!num)
		return;
	free(dev->vring_num);
	dev->vring_num = num;
	dev->nvrings = lo;
	vh_dbg(dev->ctx, "%s has %u vrings\n", vh_kdev_type_name(dev->type),
	       lo);
}

VH_EXPORT int vh_kdev_set_owner(struct vh_kdev *dev)
{
	int err;

	if (!dev)
		return -EINVAL;
	err = vh_kdev_ioctl(dev, VHOST_SET_OWNER, NULL);
	if (err == 0 && dev->type == VH_KDEV_SCSI)
		probe_num_vrings(dev);
	return err;
}

VH_EXPORT int vh_kdev_reset_owner(struct vh_kdev *dev)
{
	__u64 zero = 0;
	int err;

	if (!dev)
		return -EINVAL;
	/*
	 * VHOST_RESET_OWNER takes no argument, but a driver without it hands
	 * the ioctl to vhost_vring_ioctl(), which reads a vring index from
	 * the argument: give it a zero so that the answer is ENOTTY.
	 */
	err = vh_kdev_ioctl(dev, VHOST_RESET_OWNER, &zero);
	if (err == 0) {
		/* the kernel forgot the memory table, features and rings */
		dev->acked_features = 0;
		free(dev->regions);
		dev->regions = NULL;
		dev->nregions = 0;
		memset(dev->vring_num, 0,
		       dev->nvrings * sizeof(*dev->vring_num));
	}
	return err;
}

/* ------------------------------------------------------------------ */
/* features                                                            */
/* ------------------------------------------------------------------ */

/* A GET ioctl of a 64-bit feature word: *out is written only on success. */
static int get_u64(struct vh_kdev *dev, unsigned long req, uint64_t *out)
{
	/*
	 * Zeroed: a kernel routing an unknown ioctl to vhost_vring_ioctl()
	 * reads the first 32 bits as a vring index.
	 */
	__u64 f = 0;
	int err;

	if (!dev || !out)
		return -EINVAL;
	err = vh_kdev_ioctl(dev, req, &f);
	if (err == 0)
		*out = f;
	return err;
}

VH_EXPORT int vh_kdev_get_features(struct vh_kdev *dev, uint64_t *features)
{
	return get_u64(dev, VHOST_GET_FEATURES, features);
}

VH_EXPORT int vh_kdev_set_features(struct vh_kdev *dev, uint64_t features)
{
	__u64 f = features;
	int err;

	if (!dev)
		return -EINVAL;
	err = vh_kdev_ioctl(dev, VHOST_SET_FEATURES, &f);
	if (err == 0)
		dev->acked_features = features;
	else
		vh_err(dev->ctx, "SET_FEATURES 0x%llx: %d\n",
		       (unsigned long long)features, err);
	return err;
}

/*
 * Probe the array ioctls with count 0: a kernel that has them copies
 * nothing and succeeds.  One that lacks them answers ENOTTY, or EPERM
 * before SET_OWNER (vhost_dev_ioctl checks the owner first); count 0 reads
 * as vring index 0 in vhost_vring_ioctl so it cannot answer ENOBUFS.
 */
static bool has_features_array(struct vh_kdev *dev)
{
	__u64 count = 0;
	int err;

	if (dev->features_array >= 0)
		return dev->features_array;
	err = vh_kdev_ioctl(dev, VHOST_GET_FEATURES_ARRAY, &count);
	if (err == 0)
		dev->features_array = 1;
	else if (err == -ENOTTY)
		dev->features_array = 0;
	/* EPERM: not owner yet, ask again later */
	return err == 0;
}

VH_EXPORT int vh_kdev_get_features_array(struct vh_kdev *dev,
					 uint64_t *words, unsigned int nwords)
{
	__u64 buf[1 + VH_KDEV_MAX_FEATURE_WORDS];
	unsigned int i;
	int err;

	if (!dev || !words || nwords == 0 ||
	    nwords > VH_KDEV_MAX_FEATURE_WORDS)
		return -EINVAL;
	if (!has_features_array(dev)) {
		err = vh_kdev_get_features(dev, &words[0]);
		if (err)
			return err;
		for (i = 1; i < nwords; i++)
			words[i] = 0;
		return 0;
	}
	/*
	 * Word i asked for with count i + 1: vhost-net (since Linux 6.17)
	 * copies the words it has, then zeroes the count beyond them from
	 * the start of the array instead of after them, so one call for
	 * more words than it has gets its first words back as 0.  Asked
	 * this way, the word wanted is never one the bug clears.
	 */
	for (i = 0; i < nwords; i++) {
		memset(buf, 0, sizeof(buf));
		buf[0] = i + 1;
		err = vh_kdev_ioctl(dev, VHOST_GET_FEATURES_ARRAY, buf);
		if (err)
			return err;
		words[i] = buf[1 + i];
	}
	return 0;
}

VH_EXPORT int vh_kdev_set_features_array(struct vh_kdev *dev,
					 const uint64_t *words,
					 unsigned int nwords)
{
	__u64 buf[1 + VH_KDEV_MAX_FEATURE_WORDS];
	unsigned int i;
	int err;

	if (!dev || !words || nwords == 0 ||
	    nwords > VH_KDEV_MAX_FEATURE_WORDS)
		return -EINVAL;
	if (!has_features_array(dev)) {
		for (i = 1; i < nwords; i++)
			if (words[i])
				return -EOPNOTSUPP;
		return vh_kdev_set_features(dev, words[0]);
	}
	buf[0] = nwords;
	for (i = 0; i < nwords; i++)
		buf[1 + i] = words[i];
	err = vh_kdev_ioctl(dev, VHOST_SET_FEATURES_ARRAY, buf);
	if (err == 0)
		dev->acked_features = words[0];
	return err;
}

VH_EXPORT int vh_kdev_get_backend_features(struct vh_kdev *dev,
					   uint64_t *features)
{
	return get_u64(dev, VHOST_GET_BACKEND_FEATURES, features);
}

VH_EXPORT int vh_kdev_set_backend_features(struct vh_kdev *dev,
					   uint64_t features)
{
	__u64 f = features;
	int err;

	if (!dev)
		return -EINVAL;
	err = vh_kdev_ioctl(dev, VHOST_SET_BACKEND_FEATURES, &f);
	if (err == 0)
		dev->acked_backend_features = features;
	return err;
}

/* ------------------------------------------------------------------ */
/* memory table and dirty log                                          */
/* ------------------------------------------------------------------ */

#define VH_PAGE_MASK (VHOST_PAGE_SIZE - 1)

static int check_regions(struct vh_kdev *dev,
			 const struct vh_kdev_mem_region *r, unsigned int n)
{
	unsigned int i, j;

	for (i = 0; i < n; i++) {
		if (r[i].size == 0 || ((r[i].gpa | r[i].size | r[i].uaddr) &
				       VH_PAGE_MASK)) {
			vh_err(dev->ctx, "region %u: empty or not 4K aligned\n",
			       i);
			return -EINVAL;
		}
		if (r[i].gpa + r[i].size < r[i].gpa ||
		    r[i].uaddr + r[i].size < r[i].uaddr) {
			vh_err(dev->ctx, "region %u wraps around\n", i);
			return -EINVAL;
		}
		for (j = 0; j < i; j++) {
			if (r[i].gpa < r[j].gpa + r[j].size &&
			    r[j].gpa < r[i].gpa + r[i].size) {
				vh_err(dev->ctx, "regions %u and %u overlap\n",
				       j, i);
				return -EINVAL;
			}
		}
	}
	return 0;
}

VH_EXPORT int vh_kdev_set_mem_regions(struct vh_kdev *dev,
				      const struct vh_kdev_mem_region *regions,
				      unsigned int nregions)
{
	struct vhost_memory *m;
	struct vh_kdev_mem_region *copy = NULL;
	unsigned int i;
	int err;

	if (!dev || (!regions && nregions))
		return -EINVAL;
	/* far above vhost's max_mem_regions (64 by default); it says E2BIG */
	if (nregions > 65536)
		return -E2BIG;
	err = check_regions(dev, regions, nregions);
	if (err)
		return err;
	m = calloc(1, sizeof(*m) + nregions * sizeof(m->regions[0]));
	if (!m)
		return -ENOMEM;
	if (nregions) {
		copy = malloc(nregions * sizeof(*copy));
		if (!copy) {
			free(m);
			return -ENOMEM;
		}
		memcpy(copy, regions, nregions * sizeof(*copy));
	}
	m->nregions = nregions;
	for (i = 0; i < nregions; i++) {
		m->regions[i].guest_phys_addr = regions[i].gpa;
		m->regions[i].memory_size = regions[i].size;
		m->regions[i].userspace_addr = regions[i].uaddr;
	}
	err = vh_kdev_ioctl(dev, VHOST_SET_MEM_TABLE, m);
	free(m);
	if (err) {
		vh_err(dev->ctx, "SET_MEM_TABLE (%u regions): %d\n", nregions,
		       err);
		free(copy);
		return err;
	}
	free(dev->regions);
	dev->regions = copy;
	dev->nregions = nregions;
	return 0;
}

VH_EXPORT int vh_kdev_set_mem_table(struct vh_kdev *dev,
				    const struct vh_mem *mem)
{
	struct vh_kdev_mem_region *r;
	struct vh_mem_table *t;
	unsigned int i, n;
	int err;

	if (!dev || !mem)
		return -EINVAL;
	/*
	 * One snapshot: a writer changing the memory meanwhile must not
	 * make the kernel's table a mix of two (with a region it already
	 * unmapped)
	 */
	t = vh_mem_table_get((struct vh_mem *)mem);
	n = t->n;
	r = calloc(n ? n : 1, sizeof(*r));
	if (!r) {
		vh_mem_table_put(t);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		r[i].gpa = t->r[i].gpa;
		r[i].size = t->r[i].size;
		/* vhost reads guest memory through our own mapping */
		r[i].uaddr = (uintptr_t)t->r[i].host;
	}
	vh_mem_table_put(t);
	err = vh_kdev_set_mem_regions(dev, r, n);
	free(r);
	return err;
}

VH_EXPORT int vh_kdev_set_log_base(struct vh_kdev *dev, void *log)
{
	__u64 base = (uintptr_t)log;

	if (!dev)
		return -EINVAL;
	/* vhost sets dirty bits with 64-bit atomics: keep the base aligned */
	if (base & 7)
		return -EINVAL;
	return vh_kdev_ioctl(dev, VHOST_SET_LOG_BASE, &base);
}

VH_EXPORT int vh_kdev_set_log_fd(struct vh_kdev *dev, int fd)
{
	int err;

	if (!dev)
		return -EINVAL;
	err = vh_kdev_check_fd(fd);
	if (err)
		return err;
	return vh_kdev_ioctl(dev, VHOST_SET_LOG_FD, &fd);
}

/* ------------------------------------------------------------------ */
/* vrings                                                              */
/* ------------------------------------------------------------------ */

static int vring_state(struct vh_kdev *dev, unsigned long req,
		       unsigned int index, unsigned int *num)
{
	struct vhost_vring_state s = { .index = index, .num = *num };
	int err;

	if (!dev)
		return -EINVAL;
	err = vh_kdev_check_index(dev, index);
	if (err)
		return err;
	err = vh_kdev_ioctl(dev, req, &s);
	if (err == 0)
		*num = s.num;
	return err;
}

/* A GET_VRING_* ioctl: *out is written only on success. */
static int vring_get(struct vh_kdev *dev, unsigned long req,
		     unsigned int index, unsigned int *out)
{
	unsigned int v = 0;
	int err;

	if (!out)
		return -EINVAL;
	err = vring_state(dev, req, index, &v);
	if (err == 0)
		*out = v;
	return err;
}

VH_EXPORT int vh_kdev_set_vring_num(struct vh_kdev *dev, unsigned int index,
				    unsigned int num)
{
	int err;

	/* virtio 1.3, 2.7: Queue Size is a power of 2, at most 32768 */
	if (num == 0 || num > VH_DEVQ_MAX_SIZE || (num & (num - 1))) {
		if (dev)
			vh_err(dev->ctx, "vring %u: bad size %u\n", index, num);
		return -EINVAL;
	}
	err = vring_state(dev, VHOST_SET_VRING_NUM, index, &num);
	if (err == 0)
		dev->vring_num[index] = num;
	return err;
}

/* Is [addr, addr + len) inside one region, in process or guest space? */
static bool in_regions(const struct vh_kdev *dev, uint64_t addr,
		       uint64_t len, bool guest)
{
	unsigned int i;

	for (i = 0; i < dev->nregions; i++) {
		const struct vh_kdev_mem_region *r = &dev->regions[i];
		uint64_t start = guest ? r->gpa : r->uaddr;

		if (addr >= start && addr - start <= r->size &&
		    len <= r->size - (addr - start))
			return true;
	}
	return false;
}

VH_EXPORT int vh_kdev_set_vring_addr(struct vh_kdev *dev, unsigned int index,
				     const struct vh_kdev_vring_addr *a)
{
	struct vhost_vring_addr va;
	uint64_t num;
	int err;

	if (!dev || !a)
		return -EINVAL;
	err = vh_kdev_check_index(dev, index);
	if (err)
		return err;
	/* virtio 1.3, 2.7: Virtqueue Part Alignment 16 / 2 / 4 */
	if ((a->desc & 15) || (a->avail & 1) || (a->used & 3) ||
	    ((a->flags & VH_VRING_F_LOG) && (a->log & 3)) ||
	    (a->flags & ~VH_VRING_F_LOG)) {
		vh_err(dev->ctx, "vring %u: misaligned ring address\n", index);
		return -EINVAL;
	}
	num = dev->vring_num[index];
	if (num && dev->nregions &&
	    !(dev->acked_features & (1ULL << VIRTIO_F_ACCESS_PLATFORM))) {
		/* virtio 1.3, 2.7 sizes, with the event idx fields */
		if (!in_regions(dev, a->desc, 16 * num, false) ||
		    !in_regions(dev, a->avail, 6 + 2 * num, false) ||
		    !in_regions(dev, a->used, 6 + 8 * num, false) ||
		    ((a->flags & VH_VRING_F_LOG) &&
		     !in_regions(dev, a->log, 6 + 8 * num, true))) {
			vh_err(dev->ctx,
			       "vring %u: ring outside guest memory\n", index);
			return -EINVAL;
		}
	}
	memset(&va, 0, sizeof(va));
	va.index = index;
	va.flags = (a->flags & VH_VRING_F_LOG) ? 1u << VHOST_VRING_F_LOG :
						      0;
	va.desc_user_addr = a->desc;
	va.avail_user_addr = a->avail;
	va.used_user_addr = a->used;
	va.log_guest_addr = a->log;
	return vh_kdev_ioctl(dev, VHOST_SET_VRING_ADDR, &va);
}

VH_EXPORT int vh_kdev_set_vring_base(struct vh_kdev *dev, unsigned int index,
				     unsigned int base)
{
	return vring_state(dev, VHOST_SET_VRING_BASE, index, &base);
}

VH_EXPORT int vh_kdev_get_vring_base(struct vh_kdev *dev, unsigned int index,
				     unsigned int *base)
{
	return vring_get(dev, VHOST_GET_VRING_BASE, index, base);
}

static int vring_file(struct vh_kdev *dev, unsigned long req,
		      unsigned int index, int fd)
{
	struct vhost_vring_file f = { .index = index, .fd = fd };
	int err;

	if (!dev)
		return -EINVAL;
	err = vh_kdev_check_index(dev, index);
	if (err)
		return err;
	err = vh_kdev_check_fd(fd);
	if (err)
		return err;
	return vh_kdev_ioctl(dev, req, &f);
}

VH_EXPORT int vh_kdev_set_vring_kick(struct vh_kdev *dev, unsigned int index,
				     int fd)
{
	return vring_file(dev, VHOST_SET_VRING_KICK, index, fd);
}

VH_EXPORT int vh_kdev_set_vring_call(struct vh_kdev *dev, unsigned int index,
				     int fd)
{
	return vring_file(dev, VHOST_SET_VRING_CALL, index, fd);
}

VH_EXPORT int vh_kdev_set_vring_err(struct vh_kdev *dev, unsigned int index,
				    int fd)
{
	return vring_file(dev, VHOST_SET_VRING_ERR, index, fd);
}

VH_EXPORT int vh_kdev_set_vring_endian(struct vh_kdev *dev,
				       unsigned int index, bool big_endian)
{
	unsigned int v = big_endian ? VHOST_VRING_BIG_ENDIAN :
				      VHOST_VRING_LITTLE_ENDIAN;

	return vring_state(dev, VHOST_SET_VRING_ENDIAN, index, &v);
}

VH_EXPORT int vh_kdev_get_vring_endian(struct vh_kdev *dev,
				       unsigned int index, bool *big_endian)
{
	unsigned int v = 0;
	int err;

	if (!big_endian)
		return -EINVAL;
	err = vring_get(dev, VHOST_GET_VRING_ENDIAN, index, &v);
	if (err == 0)
		*big_endian = v == VHOST_VRING_BIG_ENDIAN;
	return err;
}

VH_EXPORT int vh_kdev_set_vring_busyloop_timeout(struct vh_kdev *dev,
						 unsigned int index,
						 unsigned int usec)
{
	return vring_state(dev, VHOST_SET_VRING_BUSYLOOP_TIMEOUT, index,
			   &usec);
}

VH_EXPORT int vh_kdev_get_vring_busyloop_timeout(struct vh_kdev *dev,
						 unsigned int index,
						 unsigned int *usec)
{
	return vring_get(dev, VHOST_GET_VRING_BUSYLOOP_TIMEOUT, index, usec);
}

VH_EXPORT int vh_kdev_setup_vring(struct vh_kdev *dev, unsigned int index,
				  struct vh_drvq *vq, int kick_fd, int call_fd)
{
	struct vh_kdev_vring_addr a = { 0 };
	void *desc, *avail, *used;
	int err;

	if (!dev || !vq)
		return -EINVAL;
	err = vh_drvq_get_host_addrs(vq, &desc, &avail, &used);
	if (err)
		return err;
	a.desc = (uintptr_t)desc;
	a.avail = (uintptr_t)avail;
	a.used = (uintptr_t)used;
	err = vh_kdev_set_vring_num(dev, index, vh_drvq_get_num(vq));
	if (!err)
		err = vh_kdev_set_vring_base(dev, index, 0);
	if (!err)
		err = vh_kdev_set_vring_addr(dev, index, &a);
	if (!err)
		err = vh_kdev_set_vring_kick(dev, index, kick_fd);
	if (!err)
		err = vh_kdev_set_vring_call(dev, index, call_fd);
	if (err)
		vh_err(dev->ctx, "vring %u setup: %d\n", index, err);
	return err;
}

/* ------------------------------------------------------------------ */
/* workers                                                             */
/* ------------------------------------------------------------------ */

VH_EXPORT int vh_kdev_new_worker(struct vh_kdev *dev, unsigned int *worker_id)
{
	struct vhost_worker_state w = { 0 };
	int err;

	if (!dev || !worker_id)
		return -EINVAL;
	err = vh_kdev_ioctl(dev, VHOST_NEW_WORKER, &w);
	if (err == 0)
		*worker_id = w.worker_id;
	return err;
}

VH_EXPORT int vh_kdev_free_worker(struct vh_kdev *dev, unsigned int worker_id)
{
	struct vhost_worker_state w = { .worker_id = worker_id };

	if (!dev)
		return -EINVAL;
	return vh_kdev_ioctl(dev, VHOST_FREE_WORKER, &w);
}

VH_EXPORT int vh_kdev_attach_vring_worker(struct vh_kdev *dev,
					  unsigned int index,
					  unsigned int worker_id)
{
	struct vhost_vring_worker w = { .index = index,
					.worker_id = worker_id };
	int err;

	if (!dev)
		return -EINVAL;
	err = vh_kdev_check_index(dev, index);
	if (err)
		return err;
	return vh_kdev_ioctl(dev, VHOST_ATTACH_VRING_WORKER, &w);
}

VH_EXPORT int vh_kdev_get_vring_worker(struct vh_kdev *dev,
				       unsigned int index,
				       unsigned int *worker_id)
{
	struct vhost_vring_worker w = { .index = index };
	int err;

	if (!dev || !worker_id)
		return -EINVAL;
	err = vh_kdev_check_index(dev, index);
	if (err)
		return err;
	err = vh_kdev_ioctl(dev, VHOST_GET_VRING_WORKER, &w);
	if (err == 0)
		*worker_id = w.worker_id;
	return err;
}

/* ------------------------------------------------------------------ */
/* IOTLB messages                                                      */
/* ------------------------------------------------------------------ */

VH_EXPORT int vh_kdev_iotlb_send(struct vh_kdev *dev,
				 const struct vh_kdev_iotlb_msg *msg)
{
	bool v2, batch;
	ssize_t n;
	size_t len;
	void *buf;
	struct vhost_msg m1;
	struct vhost_msg_v2 m2;
	struct vhost_iotlb_msg *io;

	if (!dev || !msg)
		return -EINVAL;
	v2 = dev->acked_backend_features &
	     (1ULL << VHOST_BACKEND_F_IOTLB_MSG_V2);
	batch = msg->type == VH_IOTLB_BATCH_BEGIN ||
		msg->type == VH_IOTLB_BATCH_END;
	if (msg->type < VH_IOTLB_UPDATE ||
	    msg->type > VH_IOTLB_BATCH_END ||
	    msg->type == VH_IOTLB_ACCESS_FAIL)
		return -EINVAL;
	if (batch && !(dev->acked_backend_features &
		       (1ULL << VHOST_BACKEND_F_IOTLB_BATCH)))
		return -EOPNOTSUPP;
	/* vhost_chr_write_iter() ignores asid unless IOTLB_ASID is acked */
	if (msg->asid && !(dev->acked_backend_features &
			   (1ULL << VHOST_BACKEND_F_IOTLB_ASID)))
		return -EINVAL;
	if (msg->type == VH_IOTLB_UPDATE &&
	    (msg->size == 0 || msg->iova + msg->size - 1 < msg->iova ||
	     msg->uaddr + msg->size - 1 < msg->uaddr ||
	     (msg->perm & ~VH_ACCESS_RW) || !msg->perm))
		return -EINVAL;

	if (v2) {
		memset(&m2, 0, sizeof(m2));
		m2.type = VHOST_IOTLB_MSG_V2;
		m2.asid = msg->asid;
		io = &m2.iotlb;
		buf = &m2;
		len = sizeof(m2);
	} else {
		memset(&m1, 0, sizeof(m1));
		m1.type = VHOST_IOTLB_MSG;
		io = &m1.iotlb;
		buf = &m1;
		len = sizeof(m1);
	}
	io->iova = msg->iova;
	io->size = msg->size;
	io->uaddr = msg->uaddr;
	io->perm = msg->perm;
	io->type = msg->type;
	n = write(dev->fd, buf, len);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

VH_EXPORT int vh_kdev_iotlb_recv(struct vh_kdev *dev,
				 struct vh_kdev_iotlb_msg *msg)
{
	union {
		struct vhost_msg v1;
		struct vhost_msg_v2 v2;
	} u;
	const struct vhost_iotlb_msg *io;
	ssize_t n;

	if (!dev || !msg)
		return -EINVAL;
	memset(&u, 0, sizeof(u));
	/* the fd is O_NONBLOCK: EAGAIN when nothing is queued */
	n = read(dev->fd, &u, sizeof(u));
	if (n < 0)
		return -errno;
	/* both layouts start with a 32-bit type */
	if (u.v1.type == VHOST_IOTLB_MSG &&
	    (size_t)n >= sizeof(struct vhost_msg)) {
		io = &u.v1.iotlb;
		msg->asid = 0;
	} else if (u.v2.type == VHOST_IOTLB_MSG_V2 &&
		   (size_t)n >= sizeof(struct vhost_msg_v2)) {
		io = &u.v2.iotlb;
		msg->asid = u.v2.asid;
	} else {
		vh_err(dev->ctx, "short or unknown IOTLB message (%zd bytes)\n",
		       n);
		return -EPROTO;
	}
	msg->iova = io->iova;
	msg->size = io->size;
	msg->uaddr = io->uaddr;
	msg->perm = io->perm;
	msg->type = io->type;
	return 0;
}
