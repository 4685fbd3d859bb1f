/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vh_vduse_dev: private state.  Never installed. */
#ifndef _VH_VDUSE_INTERNAL_H_
#define _VH_VDUSE_INTERNAL_H_

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <linux/vduse.h>

#include "libvhost-internal.h"
#include "libvhost-vduse.h"

struct vh_iotlb;
struct vh_mem;
struct vh_mem_map;

/*
 * Largest IOTLB mapping of a VDUSE domain's own file we mmap (its bounce
 * area is at most 1 GiB)
 */
#define VDUSE_MAX_MAP (4ull << 30)

/*
 * Regular files (the front-end's guest memory under vhost_vdpa) mapped
 * whole, each shared by every IOTLB entry that falls in it
 */
#define VDUSE_FILE_MAPS 16

struct vduse_file_map {
	struct vh_mem_map *m; /* our reference, or NULL: a free slot */
	uint64_t dev, ino;    /* the file */
	uint64_t size;        /* mapped: [0, size) of it */
	int prot;
};

struct vduse_q {
	/* the ring between DRIVER_OK and reset, else NULL (control thread) */
	struct vh_devq *vring;
	/* the kernel signals kicks here (VDUSE_VQ_SETUP_KICKFD); ours */
	int kick_fd;
	/* the ring signals here (a dup is its call fd); process() injects */
	int call_fd;
	/*
	 * VDUSE_VQ_GET_INFO's state, for GET_VQ_STATE, as vh_devq_get_base()
	 * puts it: split, the avail index; packed, last_avail_idx |
	 * avail counter << 15 | (last_used_idx | used counter << 15) << 16
	 */
	uint32_t base;
};

struct vh_vduse_dev {
	int refcount;
	struct vh_ctx *ctx;
	struct vh_vduse_ops ops;
	void *data;
	char name[VDUSE_NAME_MAX];
	int ctl_fd;  /* /dev/vduse/control, for VDUSE_DESTROY_DEV */
	int fd;      /* /dev/vduse/NAME */
	int epfd;    /* fd + every call_fd: what the caller polls */
	bool created;
	uint64_t features;        /* offered */
	uint64_t driver_features; /* at DRIVER_OK; read by any thread */
	unsigned int num_queues;
	unsigned int max_queue_size;
	uint8_t status;
	struct vh_mem *mem;       /* empty: every address is an IOVA */
	struct vh_iotlb *iotlb;
	/* serializes VDUSE_IOTLB_GET_FD fills (misses come from any thread) */
	pthread_mutex_t fill_lock;
	/* under fill_lock */
	struct vduse_file_map fmap[VDUSE_FILE_MAPS];
	struct vduse_q *q;
	/* the state file (vduse-state.c), or state_fd -1 */
	char *state_path;
	int state_fd;
	struct vduse_state *state; /* its mapping, state_size bytes */
	size_t state_size;
	size_t state_qbytes;       /* one queue's inflight region */
	bool state_empty;          /* found empty: no header ever written */
	bool reconnected;
	/*
	 * reconnected at DRIVER_OK: the rings start at the first process(),
	 * from where the device got to (true until they have)
	 */
	bool resume;
};

/*
 * The state file: this header, then num_queues inflight regions of
 * qbytes each (room for the split and the packed layout of a ring of
 * max_queue_size).  Written by us only, read back after a crash: still
 * checked whole before use.
 */
#define VDUSE_STATE_MAGIC "LIBVHOST-VDUSE\0"
#define VDUSE_STATE_VERSION 1
struct vduse_state {
	char magic[16];
	uint32_t version;
	uint32_t num_queues;
	uint32_t max_queue_size;
	uint32_t qbytes;
	uint64_t features; /* offered */
	uint32_t device_id;
	uint8_t status;    /* what the driver last set, once handled */
	uint8_t pad[19];
};

int vduse_state_open(struct vh_vduse_dev *dev, const char *path,
		     uint32_t device_id);
int vduse_state_attach(struct vh_vduse_dev *dev, bool reconnect,
		       uint32_t device_id);
void vduse_state_set_status(struct vh_vduse_dev *dev, uint8_t status);
void vduse_state_clear_queues(struct vh_vduse_dev *dev);
void vduse_state_close(struct vh_vduse_dev *dev, bool destroyed);

#endif
