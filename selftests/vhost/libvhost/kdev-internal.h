/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libvhost's kernel vhost code (kdev.c, net.c, vsock.c). */
#ifndef _VH_KDEV_INTERNAL_H_
#define _VH_KDEV_INTERNAL_H_

#include <stdint.h>
#include <sys/ioctl.h>
#include <linux/vhost.h>

#include "libvhost-internal.h"
#include "libvhost-kernel.h"

/*
 * ioctls newer than the uapi headers we may be built against (Debian 12
 * ships 6.1's); the numbers are ABI and never change.
 */
#ifndef VHOST_NEW_WORKER
struct vhost_worker_state {
	unsigned int worker_id;
};

struct vhost_vring_worker {
	unsigned int index;
	unsigned int worker_id;
};

#define VHOST_NEW_WORKER _IOR(VHOST_VIRTIO, 0x8, struct vhost_worker_state)
#define VHOST_FREE_WORKER _IOW(VHOST_VIRTIO, 0x9, struct vhost_worker_state)
#define VHOST_ATTACH_VRING_WORKER \
	_IOW(VHOST_VIRTIO, 0x15, struct vhost_vring_worker)
#define VHOST_GET_VRING_WORKER \
	_IOWR(VHOST_VIRTIO, 0x16, struct vhost_vring_worker)
#endif

#ifndef VHOST_GET_FEATURES_ARRAY
/* struct vhost_features_array { __u64 count; __u64 features[]; } */
#define VHOST_GET_FEATURES_ARRAY _IOR(VHOST_VIRTIO, 0x83, __u64)
#define VHOST_SET_FEATURES_ARRAY _IOW(VHOST_VIRTIO, 0x83, __u64)
#endif

#ifndef VHOST_BACKEND_F_IOTLB_MSG_V2
#define VHOST_BACKEND_F_IOTLB_MSG_V2 0x1
#endif
#ifndef VHOST_BACKEND_F_IOTLB_BATCH
#define VHOST_BACKEND_F_IOTLB_BATCH 0x2
#endif
#ifndef VHOST_BACKEND_F_IOTLB_ASID
#define VHOST_BACKEND_F_IOTLB_ASID 0x3
#endif

#define VH_KDEV_MAX_FEATURE_WORDS 16

struct vh_kdev {
	int refcount;
	struct vh_ctx *ctx;
	int fd;
	enum vh_kdev_type type;
	unsigned int virtio_id;
	unsigned int nvrings;
	/* what was set through this object, for later checks */
	uint64_t acked_features;
	uint64_t acked_backend_features;
	/* VHOST_*_FEATURES_ARRAY: -1 not probed, 0 absent, 1 present */
	int features_array;
	struct vh_kdev_mem_region *regions;
	unsigned int nregions;
	unsigned int *vring_num; /* [nvrings]; 0 = not set */
};

/* -ENOBUFS (the kernel's answer) for an index the device does not have. */
int vh_kdev_check_index(const struct vh_kdev *dev, unsigned int index);
/* -EBADF unless fd is -1 or open. */
int vh_kdev_check_fd(int fd);
/* ioctl returning 0 or -errno. */
int vh_kdev_ioctl(struct vh_kdev *dev, unsigned long req, void *arg);

#endif
