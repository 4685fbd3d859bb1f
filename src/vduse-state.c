// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The state file of a VDUSE device (vh_vduse_config.state_path): what a
 * new process needs to take over a device whose process died.
 *
 * Linux's VDUSE keeps a device whose process closed /dev/vduse/NAME, and
 * puts the requests that process had read but not answered back in the
 * queue for the next one (vduse_dev_release(), 6.12: "Make sure the
 * inflight messages can processed after reconnection").  What it cannot
 * keep is the device's own progress: which chains were popped and never
 * used, and the status the driver set (no ioctl reads it back).  This file
 * holds both: the status, and one inflight region per queue that the
 * device keeps as vhost-user's "Inflight I/O tracking" describes.
 *
 * The file is ours, but a crash can leave it half-written and anyone with
 * the permission can write it: the header is checked whole before a
 * reconnection, the regions by whoever reads them (devq-packed.c, the
 * device's own split tracking).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libvhost-internal.h"
#include "vduse-internal.h"
#include "vu-backend-internal.h"

_Static_assert(sizeof(struct vduse_state) == 64,
	       "the state file's header is 64 bytes");

/* Room for either layout: packed is negotiated after the file is made. */
static size_t queue_bytes(unsigned int max_queue_size)
{
	uint64_t s = vu_be_inflight_queue_bytes(max_queue_size, false);
	uint64_t p = vu_be_inflight_queue_bytes(max_queue_size, true);

	return (size_t)(s > p ? s : p);
}

static void fill_header(const struct vh_vduse_dev *dev, uint32_t device_id,
			struct vduse_state *h)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->magic, VDUSE_STATE_MAGIC, sizeof(h->magic));
	h->version = VDUSE_STATE_VERSION;
	h->num_queues = dev->num_queues;
	h->max_queue_size = dev->max_queue_size;
	h->qbytes = (uint32_t)dev->state_qbytes;
	h->features = dev->features;
	h->device_id = device_id;
}

/*
 * Open (create) path, locked for this process.  1 if it holds the state
 * of a device of this very config (a reconnection may use it), 0 if not,
 * -errno.
 */
int vduse_state_open(struct vh_vduse_dev *dev, const char *path,
		     uint32_t device_id)
{
	struct vduse_state want, have;
	struct stat st;
	int fd, r;

	dev->state_qbytes = queue_bytes(dev->max_queue_size);
	if (!dev->state_qbytes)
		return -EINVAL;
	dev->state_size = sizeof(struct vduse_state) +
			  dev->num_queues * dev->state_qbytes;
	dev->state_path = strdup(path);
	if (!dev->state_path)
		return -ENOMEM;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		/* before logging: the log callback may change errno */
		r = -errno;
		vh_err(dev->ctx, "vduse %s: state file %s: %d\n", dev->name,
		       path, r);
		return r;
	}
	dev->state_fd = fd;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode)) {
		vh_err(dev->ctx, "vduse %s: state file %s: not a file\n",
		       dev->name, path);
		return -EINVAL;
	}
	/*
	 * The file is mapped: whoever else can truncate it can SIGBUS us,
	 * and whoever can write it chooses what a reconnection resumes.
	 * Ours alone: our owner, no write for group or others, and no
	 * second name (a link another user made, or can still reach).
	 */
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) ||
	    st.st_nlink != 1) {
		vh_err(dev->ctx,
		       "vduse %s: state file %s: not ours alone (owner %u, mode %o, %u links)\n",
		       dev->name, path, (unsigned int)st.st_uid,
		       (unsigned int)(st.st_mode & 07777),
		       (unsigned int)st.st_nlink);
		return -EPERM;
	}
	/* a second process on the same file would corrupt the first's */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		r = errno == EWOULDBLOCK ? -EBUSY : -errno;
		vh_err(dev->ctx, "vduse %s: state file %s: %s\n", dev->name,
		       path, r == -EBUSY ? "in use" : "cannot lock");
		return r;
	}
	dev->state_empty = st.st_size == 0;
	if ((uint64_t)st.st_size != dev->state_size)
		return 0;
	if (pread(fd, &have, sizeof(have), 0) != (ssize_t)sizeof(have))
		return 0;
	fill_header(dev, device_id, &want);
	want.status = have.status;
	return memcmp(&want, &have, sizeof(want)) == 0;
}

/*
 * Map the file; a new device (not a reconnection) starts from a zeroed
 * file with a fresh header.
 */
int vduse_state_attach(struct vh_vduse_dev *dev, bool reconnect,
		       uint32_t device_id)
{
	void *p;

	if (!reconnect && (ftruncate(dev->state_fd, 0) < 0 ||
			   ftruncate(dev->state_fd, (off_t)dev->state_size) < 0))
		return -errno;
	p = mmap(NULL, dev->state_size, PROT_READ | PROT_WRITE, MAP_SHARED,
		 dev->state_fd, 0);
	if (p == MAP_FAILED)
		return -errno;
	dev->state = p;
	if (!reconnect)
		fill_header(dev, device_id, dev->state);
	return 0;
}

/* A status the driver set, handled: what a reconnection resumes from. */
void vduse_state_set_status(struct vh_vduse_dev *dev, uint8_t status)
{
	if (dev->state)
		__atomic_store_n(&dev->state->status, status,
				 __ATOMIC_RELEASE);
}

/* Reset: the next driver starts with nothing in flight. */
void vduse_state_clear_queues(struct vh_vduse_dev *dev)
{
	if (dev->state)
		memset(dev->state + 1, 0,
		       dev->state_size - sizeof(struct vduse_state));
}

/* A destroyed device leaves nothing to reconnect to: the file goes. */
void vduse_state_close(struct vh_vduse_dev *dev, bool destroyed)
{
	if (dev->state)
		munmap(dev->state, dev->state_size);
	dev->state = NULL;
	if (destroyed && dev->state_path && dev->state_fd >= 0 &&
	    unlink(dev->state_path) < 0)
		vh_warn(dev->ctx, "vduse %s: cannot remove %s: %d\n",
			dev->name, dev->state_path, -errno);
	if (dev->state_fd >= 0)
		close(dev->state_fd);
	dev->state_fd = -1;
	free(dev->state_path);
	dev->state_path = NULL;
}

VH_EXPORT int vh_vduse_dev_get_inflight(struct vh_vduse_dev *dev,
					unsigned int idx, void **region,
					size_t *len)
{
	if (!dev || !region || !len)
		return -EINVAL;
	if (!dev->state)
		return -ENOENT;
	if (idx >= dev->num_queues)
		return -ERANGE;
	*region = (uint8_t *)(dev->state + 1) + idx * dev->state_qbytes;
	*len = dev->state_qbytes;
	return 0;
}

VH_EXPORT int vh_vduse_dev_reconnected(const struct vh_vduse_dev *dev)
{
	return dev && dev->reconnected ? 1 : 0;
}
