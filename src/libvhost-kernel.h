/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvhost - kernel vhost devices: the generic vhost control plane
 * (vh_kdev), vhost-net with a tap (vh_tap, vh_net_*), vhost-vsock
 * (vh_vsock_*) and the names of feature bits.
 *
 * Every call returns 0 (or a count) or a negative errno.  Arguments are
 * checked before the ioctl (the library's own refusals are documented per
 * call); whatever the kernel refuses comes back as the kernel's -errno.
 */
#ifndef _LIBVHOST_KERNEL_H_
#define _LIBVHOST_KERNEL_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_ctx;
struct vh_mem;
struct vh_vq;

/* ------------------------------------------------------------------ */
/* Feature names                                                       */
/* ------------------------------------------------------------------ */

/* virtio device ids (virtio 1.3, 5 "Device Types") */
#define VH_VIRTIO_ID_NET 1
#define VH_VIRTIO_ID_BLOCK 2
#define VH_VIRTIO_ID_SCSI 8
#define VH_VIRTIO_ID_VSOCK 19

/*
 * Name of a virtio feature bit as the spec spells it without the
 * VIRTIO_*_F_ prefix ("MRG_RXBUF", "VERSION_1"), or NULL when unknown.
 * Bits 24..49 are device independent; 26 is vhost's LOG_ALL and 30
 * vhost-user's PROTOCOL_FEATURES.  device_id is a VH_VIRTIO_ID_* value.
 */
const char *vh_feature_name(unsigned int device_id, unsigned int bit);
/* VHOST_BACKEND_F_* bit names ("IOTLB_MSG_V2"), or NULL. */
const char *vh_backend_feature_name(unsigned int bit);
/* vhost-user protocol feature bit names ("REPLY_ACK"), or NULL. */
const char *vh_vu_protocol_feature_name(unsigned int bit);

/*
 * Render the set bits of a 64-bit feature word as names separated by one
 * space, unknown bits as "bit%u".  Returns, like snprintf, the length the
 * whole list needs (without the NUL); when that is >= len the list was cut
 * at a word boundary.  buf may be NULL only with len 0.
 */
int vh_features_format(unsigned int device_id, uint64_t features, char *buf,
		       size_t len);
int vh_backend_features_format(uint64_t features, char *buf, size_t len);
int vh_vu_protocol_features_format(uint64_t features, char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* vh_kdev: one open kernel vhost device                               */
/* ------------------------------------------------------------------ */
struct vh_kdev;

enum vh_kdev_type {
	VH_KDEV_UNKNOWN = 0,
	VH_KDEV_NET,	/* /dev/vhost-net */
	VH_KDEV_VSOCK,	/* /dev/vhost-vsock */
	VH_KDEV_SCSI,	/* /dev/vhost-scsi */
	VH_KDEV_VDPA,	/* /dev/vhost-vdpa-N: open it by path */
};

/*
 * Open a vhost character device (O_RDWR|O_CLOEXEC|O_NONBLOCK; the fd is
 * readable when an IOTLB miss is pending).  The type is found from the
 * device node's name in sysfs (so a symlink works), else from the path;
 * an unrecognised node is refused with -ENODEV.
 */
int vh_kdev_open(struct vh_ctx *ctx, const char *path, struct vh_kdev **dev);
/* Open the well-known node of a type; VH_KDEV_VDPA needs a path: -EINVAL. */
int vh_kdev_open_type(struct vh_ctx *ctx, enum vh_kdev_type type,
		      struct vh_kdev **dev);
struct vh_kdev *vh_kdev_ref(struct vh_kdev *dev);
struct vh_kdev *vh_kdev_unref(struct vh_kdev *dev);
int vh_kdev_get_fd(const struct vh_kdev *dev);
enum vh_kdev_type vh_kdev_get_type(const struct vh_kdev *dev);
/* "vhost-net" ... for a type, NULL for an invalid one. */
const char *vh_kdev_type_name(enum vh_kdev_type type);
/* VH_VIRTIO_ID_* of the device (vDPA: asked from the kernel), 0 unknown. */
unsigned int vh_kdev_get_virtio_id(const struct vh_kdev *dev);
/*
 * Number of vrings the device type has (net 2, vsock 2 - the event queue
 * is not the kernel's -, scsi 128, vDPA as the kernel reports).  Vring
 * indexes at or above it are refused with -ENOBUFS, the kernel's errno.
 */
unsigned int vh_kdev_get_num_vrings(const struct vh_kdev *dev);

int vh_kdev_set_owner(struct vh_kdev *dev);
int vh_kdev_reset_owner(struct vh_kdev *dev);

int vh_kdev_get_features(struct vh_kdev *dev, uint64_t *features);
int vh_kdev_set_features(struct vh_kdev *dev, uint64_t features);
/*
 * Feature bits beyond 63 (VHOST_{GET,SET}_FEATURES_ARRAY, Linux 6.17).
 * Where the kernel lacks these ioctls the 64-bit calls are used instead:
 * get then zero-fills words 1.., set refuses a bit above 63 with
 * -EOPNOTSUPP.  nwords 1..16.
 */
int vh_kdev_get_features_array(struct vh_kdev *dev, uint64_t *words,
			       unsigned int nwords);
int vh_kdev_set_features_array(struct vh_kdev *dev, const uint64_t *words,
			       unsigned int nwords);
int vh_kdev_get_backend_features(struct vh_kdev *dev, uint64_t *features);
int vh_kdev_set_backend_features(struct vh_kdev *dev, uint64_t features);

/* One memory region: guest physical range -> address in this process. */
struct vh_kdev_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
};

/*
 * VHOST_SET_MEM_TABLE.  Regions must be non-empty, 4 KiB aligned
 * (<linux/vhost_types.h>), free of wrap-around and must not overlap in
 * guest physical space: -EINVAL otherwise.  The table is remembered to
 * check vring addresses against.
 */
int vh_kdev_set_mem_regions(struct vh_kdev *dev,
			    const struct vh_kdev_mem_region *regions,
			    unsigned int nregions);
/* The same from a vh_mem: one region per vh_mem region. */
int vh_kdev_set_mem_table(struct vh_kdev *dev, const struct vh_mem *mem);

/* Dirty log: the bitmap's address in this process, and the log eventfd. */
int vh_kdev_set_log_base(struct vh_kdev *dev, void *log);
int vh_kdev_set_log_fd(struct vh_kdev *dev, int fd);

#define VH_KDEV_VRING_F_LOG (1u << 0)

/* Vring addresses in this process (or IOVAs under ACCESS_PLATFORM). */
struct vh_kdev_vring_addr {
	uint64_t desc;
	uint64_t avail;
	uint64_t used;
	/* guest physical address of the used ring, for the dirty log */
	uint64_t log;
	unsigned int flags; /* VH_KDEV_VRING_F_LOG */
};

/* Ring size: a power of two, 1..32768 (virtio 1.3, 2.7): else -EINVAL. */
int vh_kdev_set_vring_num(struct vh_kdev *dev, unsigned int index,
			  unsigned int num);
/*
 * Alignment per virtio 1.3, 2.7 (desc 16, avail 2, used 4: -EINVAL).
 * Once both the ring size and a memory table are known (and
 * ACCESS_PLATFORM is not acked), every area must lie inside one memory
 * region: -EINVAL otherwise.
 */
int vh_kdev_set_vring_addr(struct vh_kdev *dev, unsigned int index,
			   const struct vh_kdev_vring_addr *addr);
int vh_kdev_set_vring_base(struct vh_kdev *dev, unsigned int index,
			   unsigned int base);
int vh_kdev_get_vring_base(struct vh_kdev *dev, unsigned int index,
			   unsigned int *base);
/* eventfds; -1 unbinds.  A closed fd is refused with -EBADF. */
int vh_kdev_set_vring_kick(struct vh_kdev *dev, unsigned int index, int fd);
int vh_kdev_set_vring_call(struct vh_kdev *dev, unsigned int index, int fd);
int vh_kdev_set_vring_err(struct vh_kdev *dev, unsigned int index, int fd);
/* Legacy cross-endian rings (kernels built with VHOST_CROSS_ENDIAN_LEGACY). */
int vh_kdev_set_vring_endian(struct vh_kdev *dev, unsigned int index,
			     bool big_endian);
int vh_kdev_get_vring_endian(struct vh_kdev *dev, unsigned int index,
			     bool *big_endian);
int vh_kdev_set_vring_busyloop_timeout(struct vh_kdev *dev,
				       unsigned int index, unsigned int usec);
int vh_kdev_get_vring_busyloop_timeout(struct vh_kdev *dev,
				       unsigned int index, unsigned int *usec);

/* Worker threads (Linux 6.5+; older kernels' -ENOTTY is returned as is). */
int vh_kdev_new_worker(struct vh_kdev *dev, unsigned int *worker_id);
int vh_kdev_free_worker(struct vh_kdev *dev, unsigned int worker_id);
int vh_kdev_attach_vring_worker(struct vh_kdev *dev, unsigned int index,
				unsigned int worker_id);
int vh_kdev_get_vring_worker(struct vh_kdev *dev, unsigned int index,
			     unsigned int *worker_id);

/*
 * NUM, BASE, ADDR (from the vq's host addresses), KICK and CALL for a ring
 * laid out by the userspace driver vh_vq.
 */
int vh_kdev_setup_vring(struct vh_kdev *dev, unsigned int index,
			struct vh_vq *vq, int kick_fd, int call_fd);

/* IOTLB messages (<linux/vhost_types.h> struct vhost_iotlb_msg) */
enum vh_kdev_iotlb_type {
	VH_KDEV_IOTLB_MISS = 1,
	VH_KDEV_IOTLB_UPDATE = 2,
	VH_KDEV_IOTLB_INVALIDATE = 3,
	VH_KDEV_IOTLB_ACCESS_FAIL = 4,
	VH_KDEV_IOTLB_BATCH_BEGIN = 5,
	VH_KDEV_IOTLB_BATCH_END = 6,
};

#define VH_KDEV_ACCESS_RO 0x1
#define VH_KDEV_ACCESS_WO 0x2
#define VH_KDEV_ACCESS_RW 0x3

struct vh_kdev_iotlb_msg {
	uint64_t iova;
	uint64_t size;
	uint64_t uaddr;
	uint32_t asid;	/* v2 messages only */
	uint8_t perm;	/* VH_KDEV_ACCESS_* */
	uint8_t type;	/* enum vh_kdev_iotlb_type */
};

/*
 * Write one IOTLB message to the device: the v2 layout once the
 * IOTLB_MSG_V2 backend feature was set through this vh_kdev, else v1 (then
 * asid must be 0).  BATCH_BEGIN/END need the IOTLB_BATCH backend feature.
 */
int vh_kdev_iotlb_send(struct vh_kdev *dev,
		       const struct vh_kdev_iotlb_msg *msg);
/* Read one pending message (a MISS) without blocking: -EAGAIN when none. */
int vh_kdev_iotlb_recv(struct vh_kdev *dev, struct vh_kdev_iotlb_msg *msg);

#ifdef __cplusplus
}
#endif

#endif
