/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vh_vduse_dev - a virtio device in userspace through VDUSE (the kernel's
 * "vDPA Device in Userspace", /dev/vduse/control, linux/vduse.h).
 *
 * The object creates /dev/vduse/NAME (VDUSE_CREATE_DEV, VDUSE_VQ_SETUP per
 * queue) and answers the kernel's requests on it; the administrator then
 * binds it to a vDPA bus driver (`vdpa dev add name NAME mgmtdev vduse`):
 * virtio_vdpa makes it a device of the host kernel (/dev/vdX for a block
 * device), vhost_vdpa hands it to a VM.
 *
 * When the driver sets DRIVER_OK the object reads every ready queue
 * (VDUSE_VQ_GET_INFO) and gives the device a device-side ring (struct
 * vh_devq) whose addresses are IOVAs translated through the device's IOTLB;
 * the IOTLB is filled from VDUSE_IOTLB_GET_FD mappings, on demand (a ring
 * that misses a translation has it fetched and is kicked again).  Kicks
 * come on eventfds (the ring's kick fd); a ring's notification
 * (vh_devq_notify()) is turned into VDUSE_VQ_INJECT_IRQ by
 * vh_vduse_dev_process().  Split and packed rings: with
 * VIRTIO_F_RING_PACKED offered and negotiated the rings are packed, their
 * positions and wrap counters taken from the kernel (VDUSE_VQ_GET_INFO) and
 * given back in the packed layout (GET_VQ_STATE).
 *
 * Threads: vh_vduse_dev_process() and the callbacks run on the caller's
 * thread; a ring may be used by another thread between queue_started and
 * queue_stopped.
 */
#ifndef _LIBVHOST_VDUSE_H_
#define _LIBVHOST_VDUSE_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_ctx;
struct vh_devq;
struct vh_vduse_dev;

/* What VDUSE_CREATE_DEV gets.  Extensible: see libvhost.h. */
struct vh_vduse_config {
	/* sizeof(this struct): see "Extensible structs" in libvhost.h */
	size_t size;
	/* /dev/vduse/NAME and the vdpa device name; no '/' */
	const char *name;
	uint32_t device_id;   /* virtio device id (2: block, 1: net) */
	uint32_t vendor_id;
	/*
	 * virtio features offered; VIRTIO_F_VERSION_1 and
	 * VIRTIO_F_ACCESS_PLATFORM are added (VDUSE addresses are IOVAs)
	 */
	uint64_t features;
	unsigned int num_queues;     /* 1..VH_VU_MAX_QUEUES */
	unsigned int max_queue_size; /* power of 2, 0 for VH_DEVQ_MAX_SIZE */
	const void *config;          /* virtio config space */
	unsigned int config_size;    /* bytes, at most a page */
	/*
	 * Since LIBVHOST_1.3.  NULL, or a file for the device's state: the
	 * status the driver set and each queue's inflight region (vhost-
	 * user.rst "Inflight I/O tracking", split or packed layout; see
	 * vh_vduse_dev_get_inflight()).  Keep it where it survives the
	 * process but not a reboot (tmpfs: /run).  With it the device
	 * outlives a process that dies: the kernel keeps /dev/vduse/NAME and
	 * queues its requests, and the next vh_vduse_dev_new() of the same
	 * name and path reconnects to the device instead of creating it
	 * (the file must match the config), resumes its rings at DRIVER_OK
	 * and lets the device resubmit what was in flight.  A device of the
	 * name found with the file empty (its process died before writing
	 * it, or ran without one) is destroyed and created anew if nothing
	 * uses it: no process has it open and no vdpa device is bound.
	 * The file must be ours alone (-EPERM otherwise): owned by our
	 * effective user, not writable by group or others, one link.
	 */
	const char *state_path;
};

/* Callbacks, all optional; (dev, data, ...) as every callback. */
struct vh_vduse_ops {
	/* sizeof(this struct): see "Extensible structs" in libvhost.h */
	size_t size;
	/* DRIVER_OK: the negotiated features, before any queue starts */
	int (*set_features)(struct vh_vduse_dev *dev, void *data,
			    uint64_t features);
	/* every status the driver writes; < 0 fails the request */
	int (*set_status)(struct vh_vduse_dev *dev, void *data,
			  uint8_t status);
	/* a ring is ready (DRIVER_OK); < 0 leaves it stopped */
	int (*queue_started)(struct vh_vduse_dev *dev, void *data,
			     unsigned int idx, struct vh_devq *vring);
	/* reset: the ring goes away after this returns */
	void (*queue_stopped)(struct vh_vduse_dev *dev, void *data,
			      unsigned int idx, struct vh_devq *vring);
	/* the driver reset the device (every ring stopped) */
	void (*reset)(struct vh_vduse_dev *dev, void *data);
};

/*
 * Create the VDUSE device (needs the vduse module and CAP_SYS_ADMIN), or
 * reconnect to it (state_path).  -ENOENT: no /dev/vduse/control; -EEXIST:
 * the name is taken (and no state file of it matches); -EBUSY: another
 * process serves it; -EPERM: the state file is not ours alone; -EINVAL: a
 * bad config (or one the kernel refuses).
 */
int vh_vduse_dev_new(struct vh_ctx *ctx, const struct vh_vduse_config *cfg,
		     const struct vh_vduse_ops *ops, void *data,
		     struct vh_vduse_dev **out);
struct vh_vduse_dev *vh_vduse_dev_ref(struct vh_vduse_dev *dev);
/*
 * The last unref stops the rings, closes the device and destroys it
 * (VDUSE_DESTROY_DEV; the kernel refuses while a vdpa device is bound:
 * delete it first).
 */
struct vh_vduse_dev *vh_vduse_dev_unref(struct vh_vduse_dev *dev);

/* Readable (poll(2)) when vh_vduse_dev_process() has work. */
int vh_vduse_dev_get_fd(const struct vh_vduse_dev *dev);
/*
 * Inject the interrupts the rings asked for, then read and answer one
 * kernel request.  1: a request was answered (or withdrawn by the kernel
 * before the answer), 0: none was waiting, -errno: the device is unusable
 * (the caller should stop); -EIO once the kernel marked it broken (a
 * request not answered within its msg_timeout).
 */
int vh_vduse_dev_process(struct vh_vduse_dev *dev);

/*
 * The inflight region of queue idx in the state file (state_path), for
 * the device's inflight I/O tracking: valid from queue_started to
 * queue_stopped, zeroed at a device reset and at creation, kept across a
 * reconnection.  -ENOENT without a state file, -ERANGE for a bad idx.
 */
int vh_vduse_dev_get_inflight(struct vh_vduse_dev *dev, unsigned int idx,
			      void **region, size_t *len);
/* 1 if vh_vduse_dev_new() reconnected to an existing device, else 0. */
int vh_vduse_dev_reconnected(const struct vh_vduse_dev *dev);

/* Features the driver negotiated (0 before DRIVER_OK). */
uint64_t vh_vduse_dev_get_features(const struct vh_vduse_dev *dev);
const char *vh_vduse_dev_get_name(const struct vh_vduse_dev *dev);

#ifdef __cplusplus
}
#endif

#endif
