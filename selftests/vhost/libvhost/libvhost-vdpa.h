/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvhost - vDPA: device management over the "vdpa" generic netlink family
 * (vh_vdpa_mgmt, what iproute2's `vdpa` tool does) and the vhost-vdpa
 * character device (/dev/vhost-vdpa-N, a vh_kdev of type VH_KDEV_VDPA plus
 * the VHOST_VDPA_* ioctls).
 *
 * Every call returns 0 (or a count) or a negative errno.  Without libmnl at
 * build time every vh_vdpa_mgmt_* call returns -EOPNOTSUPP.
 */
#ifndef _LIBVHOST_VDPA_H_
#define _LIBVHOST_VDPA_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_ctx;
struct vh_kdev;
struct vh_mem;

/* ------------------------------------------------------------------ */
/* vh_vdpa_mgmt: the vdpa generic netlink family                       */
/* ------------------------------------------------------------------ */
struct vh_vdpa_mgmt;

/* Longest name (bus, management device, device, vendor stat) kept, with NUL. */
#define VH_VDPA_NAME_MAX 128
/* Longest kernel error message (extended ACK) kept, with NUL. */
#define VH_VDPA_ERRMSG_MAX 256

/*
 * Which fields of a result the kernel sent: bit VH_VDPA_FIELD_x of the
 * result's `present` mask.  A field the kernel did not send is zero.
 */
enum vh_vdpa_field {
	VH_VDPA_FIELD_BUS_NAME = 0,
	VH_VDPA_FIELD_MGMTDEV_NAME,
	VH_VDPA_FIELD_CLASSES,
	VH_VDPA_FIELD_MAX_VQS,
	VH_VDPA_FIELD_SUPPORTED_FEATURES,
	VH_VDPA_FIELD_NAME,
	VH_VDPA_FIELD_DEVICE_ID,
	VH_VDPA_FIELD_VENDOR_ID,
	VH_VDPA_FIELD_MAX_VQ_SIZE,
	VH_VDPA_FIELD_MIN_VQ_SIZE,
	VH_VDPA_FIELD_MAC,
	VH_VDPA_FIELD_STATUS,
	VH_VDPA_FIELD_MAX_VQ_PAIRS,
	VH_VDPA_FIELD_MTU,
	VH_VDPA_FIELD_NEGOTIATED_FEATURES,
	VH_VDPA_FIELD_DEVICE_FEATURES,
	VH_VDPA_FIELD_QUEUE_INDEX,
	VH_VDPA_FIELD_BLK_CAPACITY,
	VH_VDPA_FIELD_BLK_SIZE_MAX,
	VH_VDPA_FIELD_BLK_BLK_SIZE,
	VH_VDPA_FIELD_BLK_SEG_MAX,
	VH_VDPA_FIELD_BLK_NUM_QUEUES,
	VH_VDPA_FIELD_BLK_PHYS_BLOCK_EXP,
	VH_VDPA_FIELD_BLK_ALIGNMENT_OFFSET,
	VH_VDPA_FIELD_BLK_MIN_IO_SIZE,
	VH_VDPA_FIELD_BLK_OPT_IO_SIZE,
	VH_VDPA_FIELD_BLK_MAX_DISCARD_SEC,
	VH_VDPA_FIELD_BLK_MAX_DISCARD_SEG,
	VH_VDPA_FIELD_BLK_DISCARD_SEC_ALIGN,
	VH_VDPA_FIELD_BLK_MAX_WRITE_ZEROES_SEC,
	VH_VDPA_FIELD_BLK_MAX_WRITE_ZEROES_SEG,
	VH_VDPA_FIELD_BLK_READ_ONLY,
	VH_VDPA_FIELD_BLK_FLUSH,
};

#define VH_VDPA_HAS(res, field) ((((res)->present) >> (field)) & 1u)

/* One management device (VDPA_CMD_MGMTDEV_GET), e.g. "vdpasim_net". */
struct vh_vdpa_mgmtdev_info {
	uint64_t present;
	char bus_name[VH_VDPA_NAME_MAX]; /* "" when not on a bus */
	char dev_name[VH_VDPA_NAME_MAX];
	uint64_t supported_classes; /* bit n: virtio device id n */
	uint32_t max_supported_vqs;
	uint64_t supported_features;
};

/* One vDPA device (VDPA_CMD_DEV_GET). */
struct vh_vdpa_dev_info {
	uint64_t present;
	char name[VH_VDPA_NAME_MAX];
	char mgmt_bus_name[VH_VDPA_NAME_MAX];
	char mgmt_dev_name[VH_VDPA_NAME_MAX];
	uint32_t device_id; /* virtio device id */
	uint32_t vendor_id;
	uint32_t max_vqs;
	uint16_t max_vq_size;
	uint16_t min_vq_size;
};

/* A device's configuration (VDPA_CMD_DEV_CONFIG_GET). */
struct vh_vdpa_dev_config {
	uint64_t present;
	char name[VH_VDPA_NAME_MAX];
	uint32_t device_id;
	uint64_t negotiated_features; /* only once FEATURES_OK is set */
	uint64_t device_features;
	/* net */
	uint8_t mac[6];
	uint16_t status;
	uint16_t max_vq_pairs;
	uint16_t mtu;
	/* block */
	uint64_t blk_capacity; /* 512-byte sectors */
	uint32_t blk_size_max;
	uint32_t blk_blk_size;
	uint32_t blk_seg_max;
	uint16_t blk_num_queues;
	uint8_t blk_physical_block_exp;
	uint8_t blk_alignment_offset;
	uint16_t blk_min_io_size;
	uint32_t blk_opt_io_size;
	uint32_t blk_max_discard_sec;
	uint32_t blk_max_discard_seg;
	uint32_t blk_discard_sector_alignment;
	uint32_t blk_max_write_zeroes_sec;
	uint32_t blk_max_write_zeroes_seg;
	uint8_t blk_read_only;
	uint8_t blk_flush;
};

/* One vendor statistic: a name/value pair. */
struct vh_vdpa_vstat {
	char name[VH_VDPA_NAME_MAX];
	uint64_t value;
};

/* Vendor statistics of one queue (VDPA_CMD_DEV_VSTATS_GET). */
struct vh_vdpa_vstats {
	uint64_t present;
	char name[VH_VDPA_NAME_MAX];
	uint32_t device_id;
	uint32_t queue_index;
	uint64_t negotiated_features;
	uint16_t max_vq_pairs;
	unsigned int nstats;
	struct vh_vdpa_vstat *stats; /* nstats entries */
};

/* Parameters of a new device (VDPA_CMD_DEV_NEW). */
#define VH_VDPA_NEW_MAC (1u << 0)
#define VH_VDPA_NEW_MTU (1u << 1)
#define VH_VDPA_NEW_MAX_VQ_PAIRS (1u << 2)
#define VH_VDPA_NEW_FEATURES (1u << 3)

struct vh_vdpa_dev_new {
	/* sizeof(this struct): see "Extensible structs" in libvhost.h */
	size_t size;
	const char *name; /* required */
	const char *mgmtdev_bus; /* NULL for a management device off any bus */
	const char *mgmtdev; /* required, e.g. "vdpasim_net" */
	unsigned int set; /* VH_VDPA_NEW_*: which of the below to send */
	uint8_t mac[6];
	uint16_t mtu;
	uint16_t max_vq_pairs;
	uint64_t device_features;
};

/*
 * Open a generic netlink socket (CLOEXEC, extended ACKs on) and resolve the
 * "vdpa" family.  Requests are synchronous (send, then read the reply to
 * its end); one vh_vdpa_mgmt is used by one thread at a time.  -ENODEV (logged) when the family does not exist, i.e. the
 * vdpa module is not loaded.
 */
int vh_vdpa_mgmt_new(struct vh_ctx *ctx, struct vh_vdpa_mgmt **mgmt);
struct vh_vdpa_mgmt *vh_vdpa_mgmt_ref(struct vh_vdpa_mgmt *mgmt);
struct vh_vdpa_mgmt *vh_vdpa_mgmt_unref(struct vh_vdpa_mgmt *mgmt);
/* The generic netlink family id of "vdpa". */
int vh_vdpa_mgmt_get_family(const struct vh_vdpa_mgmt *mgmt);
/*
 * The kernel's message (extended ACK) for the last failed request, "" when
 * it gave none.  Valid until the next request on this object.
 */
const char *vh_vdpa_mgmt_last_error(const struct vh_vdpa_mgmt *mgmt);

/*
 * Dumps.  *list is an array the caller owns (free() it), *n its length;
 * both are untouched on error.
 */
int vh_vdpa_mgmt_list_mgmtdevs(struct vh_vdpa_mgmt *mgmt,
			       struct vh_vdpa_mgmtdev_info **list, size_t *n);
int vh_vdpa_mgmt_list_devs(struct vh_vdpa_mgmt *mgmt,
			   struct vh_vdpa_dev_info **list, size_t *n);

int vh_vdpa_mgmt_dev_add(struct vh_vdpa_mgmt *mgmt,
			 const struct vh_vdpa_dev_new *params);
/*
 * The kernel deletes a vhost-vdpa device only once its /dev/vhost-vdpa-N
 * is closed everywhere, and waits for that uninterruptibly (holding every
 * other vdpa request on the host meanwhile): close it (vh_kdev_unref())
 * before, or this call never returns.
 */
int vh_vdpa_mgmt_dev_del(struct vh_vdpa_mgmt *mgmt, const char *name);
/*
 * Change a device's MAC address (VDPA_CMD_DEV_ATTR_SET, Linux 6.9+; older
 * kernels answer -EOPNOTSUPP, as do parents without the operation).
 */
int vh_vdpa_mgmt_dev_set_mac(struct vh_vdpa_mgmt *mgmt, const char *name,
			     const uint8_t mac[6]);
int vh_vdpa_mgmt_dev_get(struct vh_vdpa_mgmt *mgmt, const char *name,
			 struct vh_vdpa_dev_info *info);
int vh_vdpa_mgmt_dev_config_get(struct vh_vdpa_mgmt *mgmt, const char *name,
				struct vh_vdpa_dev_config *cfg);
/*
 * Vendor statistics of queue `queue`.  Devices without them fail with the
 * kernel's errno (-EOPNOTSUPP) and message; vdpa_sim_net has them once
 * the features are negotiated (-EAGAIN before FEATURES_OK).
 * Release *stats with vh_vdpa_vstats_free().
 */
int vh_vdpa_mgmt_dev_vstats_get(struct vh_vdpa_mgmt *mgmt, const char *name,
				uint32_t queue, struct vh_vdpa_vstats **stats);
void vh_vdpa_vstats_free(struct vh_vdpa_vstats *stats);

/*
 * Path of the vhost-vdpa character device bound to vDPA device `name`
 * ("/dev/vhost-vdpa-0"), found in sysfs.  -ENOENT if the device does not
 * exist or is not bound to vhost_vdpa, -ENAMETOOLONG if len is too small.
 */
int vh_vdpa_dev_chardev(struct vh_ctx *ctx, const char *name, char *path,
			size_t len);

/* ------------------------------------------------------------------ */
/* vhost-vdpa: the VHOST_VDPA_* ioctls on a VH_KDEV_VDPA vh_kdev        */
/* ------------------------------------------------------------------ */
/*
 * Open the device with vh_kdev_open(ctx, "/dev/vhost-vdpa-N", &dev) (see
 * vh_vdpa_dev_chardev()) and vh_kdev_set_owner().  Every call below
 * refuses another device type with -ENOTTY and returns the kernel's errno
 * otherwise; ioctls an older kernel lacks come back -ENOTTY, and device
 * operations a parent driver lacks -EOPNOTSUPP.
 *
 * Addresses: a vDPA device sees I/O virtual addresses (IOVAs), never our
 * process's addresses.  Map guest memory with vh_vdpa_dma_map() /
 * vh_vdpa_map_mem() (IOTLB messages) and put IOVAs in ring addresses and
 * descriptors; vh_vdpa_setup_vring() uses a vh_drvq's GPAs as IOVAs, which
 * matches vh_vdpa_map_mem() (IOVA = GPA).
 */
int vh_vdpa_get_device_id(struct vh_kdev *dev, uint32_t *device_id);
int vh_vdpa_get_status(struct vh_kdev *dev, uint8_t *status);
/* Raw VHOST_VDPA_SET_STATUS; the kernel refuses to clear bits but by 0. */
int vh_vdpa_set_status(struct vh_kdev *dev, uint8_t status);
int vh_vdpa_get_config_size(struct vh_kdev *dev, uint32_t *size);
/* Device config space [off, off + len); len 1..64 KiB. */
int vh_vdpa_get_config(struct vh_kdev *dev, uint32_t off, void *buf,
		       uint32_t len);
int vh_vdpa_set_config(struct vh_kdev *dev, uint32_t off, const void *buf,
		       uint32_t len);
int vh_vdpa_set_vring_enable(struct vh_kdev *dev, unsigned int index,
			     bool enable);
/* Largest queue size the device supports (VHOST_VDPA_GET_VRING_NUM). */
int vh_vdpa_get_vring_num(struct vh_kdev *dev, uint16_t *max);
/* Size of one queue (6.10+, and only where the parent implements it). */
int vh_vdpa_get_vring_size(struct vh_kdev *dev, unsigned int index,
			   uint32_t *size);
/* Config-change eventfd; -1 unbinds. */
int vh_vdpa_set_config_call(struct vh_kdev *dev, int fd);
int vh_vdpa_get_iova_range(struct vh_kdev *dev, uint64_t *first,
			   uint64_t *last);
int vh_vdpa_get_vqs_count(struct vh_kdev *dev, uint32_t *count);
int vh_vdpa_get_group_num(struct vh_kdev *dev, uint32_t *ngroups);
int vh_vdpa_get_as_num(struct vh_kdev *dev, uint32_t *nas);
int vh_vdpa_get_vring_group(struct vh_kdev *dev, unsigned int index,
			    uint32_t *group);
int vh_vdpa_get_vring_desc_group(struct vh_kdev *dev, unsigned int index,
				 uint32_t *group);
int vh_vdpa_set_group_asid(struct vh_kdev *dev, unsigned int group,
			   unsigned int asid);
/* Stop / restart ring processing (backend features SUSPEND / RESUME). */
int vh_vdpa_suspend(struct vh_kdev *dev);
int vh_vdpa_resume(struct vh_kdev *dev);

/*
 * Backend features: ack IOTLB_MSG_V2 | IOTLB_BATCH | IOTLB_ASID plus
 * `extra` (VHOST_BACKEND_F_* bits, e.g. SUSPEND and RESUME), each only if
 * the kernel offers it; IOTLB_MSG_V2 is required (-EOPNOTSUPP).  *acked
 * (may be NULL) gets what was set.
 */
int vh_vdpa_setup_backend(struct vh_kdev *dev, uint64_t extra, uint64_t *acked);

/*
 * IOTLB v2 mappings in address space asid (0 unless IOTLB_ASID).  perm is
 * VH_ACCESS_RO/WO/RW.  A batch (IOTLB_BATCH acked) makes the device
 * see all updates between begin and end at once; without IOTLB_BATCH
 * begin/end are no-ops.  The kernel reports every refused IOTLB message
 * (unknown ASID, another ASID inside a batch, a bad range) as -EFAULT.
 */
int vh_vdpa_dma_map(struct vh_kdev *dev, uint32_t asid, uint64_t iova,
		    uint64_t size, void *uaddr, uint8_t perm);
int vh_vdpa_dma_unmap(struct vh_kdev *dev, uint32_t asid, uint64_t iova,
		      uint64_t size);
int vh_vdpa_batch_begin(struct vh_kdev *dev, uint32_t asid);
int vh_vdpa_batch_end(struct vh_kdev *dev, uint32_t asid);
/*
 * Map every region of mem read-write at IOVA = GPA, in one batch; all or
 * nothing: on an error none of them stays mapped.
 */
int vh_vdpa_map_mem(struct vh_kdev *dev, uint32_t asid, struct vh_mem *mem);

/*
 * Map the doorbell page of vring index (write-only, uncached); a write of
 * the queue index there kicks it.  -EOPNOTSUPP where the parent has no
 * notification area (the simulators).  Unmap with munmap(addr, size).
 */
int vh_vdpa_map_notify(struct vh_kdev *dev, unsigned int index, void **addr,
		       size_t *size);

/*
 * The virtio status handshake (virtio 1.3, 3.1.1): reset (status 0, read
 * back), then ACKNOWLEDGE | DRIVER, features = offered & wanted,
 * FEATURES_OK and read it back (-EPROTO, FAILED set, if the device
 * cleared it).  *acked (may be NULL) gets the negotiated features.
 */
int vh_vdpa_reset(struct vh_kdev *dev);
int vh_vdpa_negotiate(struct vh_kdev *dev, uint64_t wanted, uint64_t *acked);
/* Set DRIVER_OK and check it reads back (-EPROTO otherwise). */
int vh_vdpa_driver_ok(struct vh_kdev *dev);

struct vh_drvq;
/*
 * NUM, ADDR (the vq's GPAs as IOVAs), BASE, KICK and CALL for a ring laid
 * out by vh_drvq (enable it with vh_vdpa_set_vring_enable()).  The ring
 * first takes the negotiated features (vh_drvq_set_features() with what
 * vh_vdpa_negotiate() acked): VIRTIO_F_RING_PACKED, if negotiated, makes
 * it a packed ring, and BASE is then position 0 with both wrap counters 1
 * (0x80008000: bits 0-15 the avail position | its wrap counter << 15,
 * bits 16-31 the used one the same way), else 0.
 * Offer VIRTIO_F_RING_PACKED in vh_vdpa_negotiate()'s wanted to allow it.
 */
int vh_vdpa_setup_vring(struct vh_kdev *dev, unsigned int index,
			struct vh_drvq *vq, int kick_fd, int call_fd);

#ifdef __cplusplus
}
#endif

#endif
