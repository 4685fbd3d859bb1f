// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-vdpa: the VHOST_VDPA_* ioctls, IOTLB v2 mappings with address
 * spaces and batching, the doorbell mmap and the virtio status handshake,
 * on top of the generic vh_kdev control plane.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>

/* for dev->ctx: the public vh_kdev API has no ctx getter */
#include "kdev-internal.h"
#include "mem-internal.h"
#include "vdpa-internal.h"

/* ioctls newer than the 6.1 uapi headers; the numbers are ABI */
#ifndef VHOST_VDPA_RESUME
#define VHOST_VDPA_RESUME _IO(VHOST_VIRTIO, 0x7E)
#endif
#ifndef VHOST_VDPA_GET_VRING_DESC_GROUP
#define VHOST_VDPA_GET_VRING_DESC_GROUP \
	_IOWR(VHOST_VIRTIO, 0x7F, struct vhost_vring_state)
#endif
#ifndef VHOST_VDPA_GET_VRING_SIZE
#define VHOST_VDPA_GET_VRING_SIZE \
	_IOWR(VHOST_VIRTIO, 0x82, struct vhost_vring_state)
#endif
#ifndef VHOST_BACKEND_F_RESUME
#define VHOST_BACKEND_F_RESUME 0x5
#endif

/* the kernel's internal ENOTSUPP leaks out of vhost_vdpa_mmap() */
#define KERNEL_ENOTSUPP 524
/* we never move more config space than this at once */
#define VDPA_CONFIG_MAX 65536

static int vdpa_fd(struct vh_kdev *dev)
{
	if (!dev)
		return -EINVAL;
	if (vh_kdev_get_type(dev) != VH_KDEV_VDPA)
		return -ENOTTY;
	return vh_kdev_get_fd(dev);
}

static int vdpa_ioctl(struct vh_kdev *dev, unsigned long req, void *arg)
{
	int fd = vdpa_fd(dev);

	if (fd < 0)
		return fd;
	if (ioctl(fd, req, arg) < 0)
		return errno == KERNEL_ENOTSUPP ? -EOPNOTSUPP : -errno;
	return 0;
}

VH_EXPORT int vh_vdpa_get_device_id(struct vh_kdev *dev, uint32_t *device_id)
{
	__u32 v;
	int ret;

	if (!device_id)
		return -EINVAL;
	ret = vdpa_ioctl(dev, VHOST_VDPA_GET_DEVICE_ID, &v);
	if (ret == 0)
		*device_id = v;
	return ret;
}

VH_EXPORT int vh_vdpa_get_status(struct vh_kdev *dev, uint8_t *status)
{
	__u8 v;
	int ret;

	if (!status)
		return -EINVAL;
	ret = vdpa_ioctl(dev, VHOST_VDPA_GET_STATUS, &v);
	if (ret == 0)
		*status = v;
	return ret;
}

VH_EXPORT int vh_vdpa_set_status(struct vh_kdev *dev, uint8_t status)
{
	__u8 v = status;

	return vdpa_ioctl(dev, VHOST_VDPA_SET_STATUS, &v);
}

VH_EXPORT int vh_vdpa_get_config_size(struct vh_kdev *dev, uint32_t *size)
{
	__u32 v;
	int ret;

	if (!size)
		return -EINVAL;
	ret = vdpa_ioctl(dev, VHOST_VDPA_GET_CONFIG_SIZE, &v);
	if (ret == 0)
		*size = v;
	return ret;
}

static int config_io(struct vh_kdev *dev, unsigned long req, uint32_t off,
		     void *buf, uint32_t len, bool write)
{
	struct vhost_vdpa_config *c;
	int ret;

	if (!buf || len == 0 || len > VDPA_CONFIG_MAX)
		return -EINVAL;
	c = calloc(1, sizeof(*c) + len);
	if (!c)
		return -ENOMEM;
	c->off = off;
	c->len = len;
	if (write)
		memcpy(c->buf, buf, len);
	ret = vdpa_ioctl(dev, req, c);
	if (ret == 0 && !write)
		memcpy(buf, c->buf, len);
	free(c);
	return ret;
}

VH_EXPORT int vh_vdpa_get_config(struct vh_kdev *dev, uint32_t off, void *buf,
				 uint32_t len)
{
	return config_io(dev, VHOST_VDPA_GET_CONFIG, off, buf, len, false);
}

VH_EXPORT int vh_vdpa_set_config(struct vh_kdev *dev, uint32_t off,
				 const void *buf, uint32_t len)
{
	return config_io(dev, VHOST_VDPA_SET_CONFIG, off, (void *)buf, len,
			 true);
}

static int vring_state(struct vh_kdev *dev, unsigned long req,
		       unsigned int index, unsigned int num, uint32_t *out)
{
	struct vhost_vring_state s = { .index = index, .num = num };
	int ret;

	ret = vdpa_ioctl(dev, req, &s);
	if (ret == 0 && out)
		*out = s.num;
	return ret;
}

VH_EXPORT int vh_vdpa_set_vring_enable(struct vh_kdev *dev, unsigned int index,
				       bool enable)
{
	return vring_state(dev, VHOST_VDPA_SET_VRING_ENABLE, index, enable,
			   NULL);
}

VH_EXPORT int vh_vdpa_get_vring_num(struct vh_kdev *dev, uint16_t *max)
{
	__u16 v;
	int ret;

	if (!max)
		return -EINVAL;
	ret = vdpa_ioctl(dev, VHOST_VDPA_GET_VRING_NUM, &v);
	if (ret == 0)
		*max = v;
	return ret;
}

VH_EXPORT int vh_vdpa_get_vring_size(struct vh_kdev *dev, unsigned int index,
				     uint32_t *size)
{
	if (!size)
		return -EINVAL;
	return vring_state(dev, VHOST_VDPA_GET_VRING_SIZE, index, 0, size);
}

VH_EXPORT int vh_vdpa_set_config_call(struct vh_kdev *dev, int fd)
{
	int v = fd;

	if (fd < -1)
		return -EBADF;
	return vdpa_ioctl(dev, VHOST_VDPA_SET_CONFIG_CALL, &v);
}

VH_EXPORT int vh_vdpa_get_iova_range(struct vh_kdev *dev, uint64_t *first,
				     uint64_t *last)
{
	struct vhost_vdpa_iova_range r;
	int ret;

	if (!first || !last)
		return -EINVAL;
	ret = vdpa_ioctl(dev, VHOST_VDPA_GET_IOVA_RANGE, &r);
	if (ret == 0) {
		*first = r.first;
		*last = r.last;
	}
	return ret;
}

static int get_u32(struct vh_kdev *dev, unsigned long req, uint32_t *out)
{
	__u32 v;
	int ret;

	if (!out)
		return -EINVAL;
	ret = vdpa_ioctl(dev, req, &v);
	if (ret == 0)
		*out = v;
	return ret;
}

VH_EXPORT int vh_vdpa_get_vqs_count(struct vh_kdev *dev, uint32_t *count)
{
	return get_u32(dev, VHOST_VDPA_GET_VQS_COUNT, count);
}

VH_EXPORT int vh_vdpa_get_group_num(struct vh_kdev *dev, uint32_t *ngroups)
{
	return get_u32(dev, VHOST_VDPA_GET_GROUP_NUM, ngroups);
}

VH_EXPORT int vh_vdpa_get_as_num(struct vh_kdev *dev, uint32_t *nas)
{
	unsigned int v;
	int ret;

	if (!nas)
		return -EINVAL;
	ret = vdpa_ioctl(dev, VHOST_VDPA_GET_AS_NUM, &v);
	if (ret == 0)
		*nas = v;
	return ret;
}

VH_EXPORT int vh_vdpa_get_vring_group(struct vh_kdev *dev, unsigned int index,
				      uint32_t *group)
{
	if (!group)
		return -EINVAL;
	return vring_state(dev, VHOST_VDPA_GET_VRING_GROUP, index, 0, group);
}

VH_EXPORT int vh_vdpa_get_vring_desc_group(struct vh_kdev *dev,
					   unsigned int index, uint32_t *group)
{
	if (!group)
		return -EINVAL;
	return vring_state(dev, VHOST_VDPA_GET_VRING_DESC_GROUP, index, 0,
			   group);
}

VH_EXPORT int vh_vdpa_set_group_asid(struct vh_kdev *dev, unsigned int group,
				     unsigned int asid)
{
	/* .index is the group here, not a vring */
	return vring_state(dev, VHOST_VDPA_SET_GROUP_ASID, group, asid, NULL);
}

VH_EXPORT int vh_vdpa_suspend(struct vh_kdev *dev)
{
	return vdpa_ioctl(dev, VHOST_VDPA_SUSPEND, NULL);
}

VH_EXPORT int vh_vdpa_resume(struct vh_kdev *dev)
{
	return vdpa_ioctl(dev, VHOST_VDPA_RESUME, NULL);
}

VH_EXPORT int vh_vdpa_setup_backend(struct vh_kdev *dev, uint64_t extra,
				    uint64_t *acked)
{
	const uint64_t base = (1ull << VHOST_BACKEND_F_IOTLB_MSG_V2) |
			      (1ull << VHOST_BACKEND_F_IOTLB_BATCH) |
			      (1ull << VHOST_BACKEND_F_IOTLB_ASID);
	uint64_t offered = 0, want;
	int ret = vdpa_fd(dev);

	if (ret < 0)
		return ret;
	ret = vh_kdev_get_backend_features(dev, &offered);
	if (ret < 0)
		return ret;
	if (!(offered & (1ull << VHOST_BACKEND_F_IOTLB_MSG_V2))) {
		vh_err(dev->ctx,
		       "vdpa: no IOTLB_MSG_V2 backend feature (offered %#llx)\n",
		       (unsigned long long)offered);
		return -EOPNOTSUPP;
	}
	want = (base | extra) & offered;
	ret = vh_kdev_set_backend_features(dev, want);
	if (ret < 0)
		return ret;
	vh_dbg(dev->ctx, "vdpa: backend features %#llx of %#llx\n",
	       (unsigned long long)want, (unsigned long long)offered);
	if (acked)
		*acked = want;
	return 0;
}

static int iotlb(struct vh_kdev *dev, uint8_t type, uint32_t asid,
		 uint64_t iova, uint64_t size, uint64_t uaddr, uint8_t perm)
{
	struct vh_kdev_iotlb_msg m = {
		.iova = iova,
		.size = size,
		.uaddr = uaddr,
		.asid = asid,
		.perm = perm,
		.type = type,
	};
	int ret = vdpa_fd(dev);

	if (ret < 0)
		return ret;
	return vh_kdev_iotlb_send(dev, &m);
}

VH_EXPORT int vh_vdpa_dma_map(struct vh_kdev *dev, uint32_t asid, uint64_t iova,
			      uint64_t size, void *uaddr, uint8_t perm)
{
	if (!size || !uaddr || iova + size - 1 < iova ||
	    (perm & ~VH_ACCESS_RW) || !perm)
		return -EINVAL;
	return iotlb(dev, VH_IOTLB_UPDATE, asid, iova, size,
		     (uint64_t)(uintptr_t)uaddr, perm);
}

VH_EXPORT int vh_vdpa_dma_unmap(struct vh_kdev *dev, uint32_t asid,
				uint64_t iova, uint64_t size)
{
	if (!size || iova + size - 1 < iova)
		return -EINVAL;
	return iotlb(dev, VH_IOTLB_INVALIDATE, asid, iova, size, 0, 0);
}

/* what was acked through this vh_kdev (vh_kdev_set_backend_features()) */
static bool has_batch(const struct vh_kdev *dev)
{
	return dev->acked_backend_features &
	       (1ull << VHOST_BACKEND_F_IOTLB_BATCH);
}

VH_EXPORT int vh_vdpa_batch_begin(struct vh_kdev *dev, uint32_t asid)
{
	int ret = vdpa_fd(dev);

	if (ret < 0)
		return ret;
	if (!has_batch(dev))
		return 0;
	return iotlb(dev, VH_IOTLB_BATCH_BEGIN, asid, 0, 0, 0, 0);
}

VH_EXPORT int vh_vdpa_batch_end(struct vh_kdev *dev, uint32_t asid)
{
	int ret = vdpa_fd(dev);

	if (ret < 0)
		return ret;
	if (!has_batch(dev))
		return 0;
	return iotlb(dev, VH_IOTLB_BATCH_END, asid, 0, 0, 0, 0);
}

VH_EXPORT int vh_vdpa_map_mem(struct vh_kdev *dev, uint32_t asid,
			      struct vh_mem *mem)
{
	struct vh_mem_table *t;
	unsigned int i;
	int ret, ret2;

	if (!mem)
		return -EINVAL;
	ret = vh_vdpa_batch_begin(dev, asid);
	if (ret < 0)
		return ret;
	/*
	 * One snapshot for the maps and their rollback: read region by
	 * region, a concurrent writer could make the rollback unmap other
	 * ranges than the ones mapped
	 */
	t = vh_mem_table_get(mem);
	for (i = 0; i < t->n; i++) {
		ret = vh_vdpa_dma_map(dev, asid, t->r[i].gpa, t->r[i].size,
				      t->r[i].host, VH_ACCESS_RW);
		if (ret)
			break;
	}
	/*
	 * All or nothing: the regions mapped before a refused one go again
	 * (in the same batch, so the device never sees them): the device
	 * reached part of guest memory, and a retry met them (EEXIST)
	 */
	while (ret && i-- > 0)
		vh_vdpa_dma_unmap(dev, asid, t->r[i].gpa, t->r[i].size);
	vh_mem_table_put(t);
	/* close the batch even on error, so later messages are not held */
	ret2 = vh_vdpa_batch_end(dev, asid);
	return ret ? ret : ret2;
}

VH_EXPORT int vh_vdpa_map_notify(struct vh_kdev *dev, unsigned int index,
				 void **addr, size_t *size)
{
	long page = sysconf(_SC_PAGESIZE);
	int fd = vdpa_fd(dev);
	void *p;

	if (fd < 0)
		return fd;
	if (!addr || !size || page <= 0 || index > 65535)
		return -EINVAL;
	/* vhost_vdpa_mmap(): one page, shared, write-only, pgoff = queue */
	p = mmap(NULL, (size_t)page, PROT_WRITE, MAP_SHARED, fd,
		 (off_t)index * page);
	if (p == MAP_FAILED)
		return errno == KERNEL_ENOTSUPP ? -EOPNOTSUPP : -errno;
	*addr = p;
	*size = (size_t)page;
	return 0;
}

VH_EXPORT int vh_vdpa_reset(struct vh_kdev *dev)
{
	uint8_t st = 0xff;
	int ret;

	ret = vh_vdpa_set_status(dev, 0);
	if (ret < 0)
		return ret;
	ret = vh_vdpa_get_status(dev, &st);
	if (ret < 0)
		return ret;
	/* virtio 1.3, 2.1.2: reset is complete when status reads 0 */
	return st == 0 ? 0 : -EPROTO;
}

static int add_status(struct vh_kdev *dev, uint8_t bits)
{
	uint8_t st = 0;
	int ret;

	ret = vh_vdpa_get_status(dev, &st);
	if (ret)
		return ret;
	return vh_vdpa_set_status(dev, st | bits);
}

VH_EXPORT int vh_vdpa_negotiate(struct vh_kdev *dev, uint64_t wanted,
				uint64_t *acked)
{
	uint64_t offered = 0, features;
	uint8_t st = 0;
	int ret;

	ret = vh_vdpa_reset(dev);
	if (ret < 0)
		return ret;
	/* virtio 1.3, 3.1.1 steps 2-6 */
	ret = add_status(dev, VIRTIO_CONFIG_S_ACKNOWLEDGE);
	if (ret == 0)
		ret = add_status(dev, VIRTIO_CONFIG_S_DRIVER);
	if (ret == 0)
		ret = vh_kdev_get_features(dev, &offered);
	if (ret < 0)
		return ret;
	features = offered & wanted;
	ret = vh_kdev_set_features(dev, features);
	if (ret == 0)
		ret = add_status(dev, VIRTIO_CONFIG_S_FEATURES_OK);
	if (ret == 0)
		ret = vh_vdpa_get_status(dev, &st);
	if (ret < 0)
		return ret;
	if (!(st & VIRTIO_CONFIG_S_FEATURES_OK)) {
		vh_err(dev->ctx, "vdpa: device refused features %#llx\n",
		       (unsigned long long)features);
		add_status(dev, VIRTIO_CONFIG_S_FAILED);
		return -EPROTO;
	}
	if (acked)
		*acked = features;
	return 0;
}

VH_EXPORT int vh_vdpa_driver_ok(struct vh_kdev *dev)
{
	uint8_t st = 0;
	int ret;

	ret = add_status(dev, VIRTIO_CONFIG_S_DRIVER_OK);
	if (ret == 0)
		ret = vh_vdpa_get_status(dev, &st);
	if (ret < 0)
		return ret;
	if (!(st & VIRTIO_CONFIG_S_DRIVER_OK) ||
	    (st & (VIRTIO_CONFIG_S_FAILED | VIRTIO_CONFIG_S_NEEDS_RESET)))
		return -EPROTO;
	return 0;
}

VH_EXPORT int vh_vdpa_setup_vring(struct vh_kdev *dev, unsigned int index,
				  struct vh_drvq *vq, int kick_fd, int call_fd)
{
	struct vh_kdev_vring_addr a = { 0 };
	int ret = vdpa_fd(dev);
	bool packed;

	if (ret < 0)
		return ret;
	if (!vq)
		return -EINVAL;
	packed = dev->acked_features & (1ull << VIRTIO_F_RING_PACKED);
	/*
	 * The ring takes the layout (and EVENT_IDX, INDIRECT_DESC) that was
	 * negotiated (vh_vdpa_negotiate()), so that callers need not choose.
	 */
	ret = vh_drvq_set_features(vq, dev->acked_features);
	if (ret == 0)
		ret = vh_drvq_get_addrs(vq, &a.desc, &a.avail, &a.used);
	if (ret == 0)
		ret = vh_kdev_set_vring_num(dev, index, vh_drvq_get_num(vq));
	if (ret == 0)
		ret = vh_kdev_set_vring_addr(dev, index, &a);
	/*
	 * A fresh ring: split, avail index 0; packed, position 0 with both
	 * wrap counters 1 (virtio 1.3, 2.8.1), which vhost-vdpa takes as
	 * last_avail_idx | wrap << 15 in bits 0-15 and the used position the
	 * same way in bits 16-31 (drivers/vhost/vhost.c, vdpa.c)
	 */
	if (ret == 0)
		ret = vh_kdev_set_vring_base(dev, index,
					     packed ? 0x80008000u : 0);
	if (ret == 0)
		ret = vh_kdev_set_vring_kick(dev, index, kick_fd);
	if (ret == 0)
		ret = vh_kdev_set_vring_call(dev, index, call_fd);
	return ret;
}
