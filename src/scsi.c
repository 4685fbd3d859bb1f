// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The VHOST_SCSI_* ioctls of /dev/vhost-scsi (<linux/vhost.h>).  The rest
 * of the control plane (owner, features, memory table, rings) is the
 * generic vh_kdev one.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/vhost.h>

/* for dev->ctx: the public vh_kdev API has no ctx getter */
#include "kdev-internal.h"
#include "libvhost-scsi.h"

static int scsi_fd(struct vh_kdev *dev)
{
	if (!dev)
		return -EINVAL;
	if (vh_kdev_get_type(dev) != VH_KDEV_SCSI)
		return -ENOTTY;
	return vh_kdev_get_fd(dev);
}

static int scsi_ioctl(struct vh_kdev *dev, unsigned long req, void *arg)
{
	int fd = scsi_fd(dev);

	if (fd < 0)
		return fd;
	return ioctl(fd, req, arg) < 0 ? -errno : 0;
}

static int fill_target(struct vhost_scsi_target *t, const char *wwpn,
		       unsigned int tpgt)
{
	memset(t, 0, sizeof(*t));
	/* the kernel compares the whole NUL-terminated name (224 bytes) */
	if (!wwpn || !*wwpn || strlen(wwpn) >= sizeof(t->vhost_wwpn) ||
	    tpgt > 0xffff)
		return -EINVAL;
	memcpy(t->vhost_wwpn, wwpn, strlen(wwpn));
	t->vhost_tpgt = (unsigned short)tpgt;
	return 0;
}

VH_EXPORT int vh_scsi_set_endpoint(struct vh_kdev *dev, const char *wwpn,
				   unsigned int tpgt)
{
	struct vhost_scsi_target t;
	int ret;

	if (!dev)
		return -EINVAL;
	ret = fill_target(&t, wwpn, tpgt);
	if (ret < 0)
		return ret;
	ret = scsi_ioctl(dev, VHOST_SCSI_SET_ENDPOINT, &t);
	/*
	 * Kernel quirk: SET_ENDPOINT first runs vhost_vq_access_ok() on all
	 * 128 rings, which fails without a memory table (no umem), so the
	 * answer is EFAULT even for rings never configured.
	 */
	if (ret == -EFAULT)
		vh_err(dev->ctx,
		       "vhost-scsi: SET_ENDPOINT %s/%u: EFAULT (memory table not set, or a ring outside it)\n",
		       wwpn, tpgt);
	else if (ret < 0)
		vh_err(dev->ctx, "vhost-scsi: SET_ENDPOINT %s/%u: %s\n", wwpn,
		       tpgt, strerror(-ret));
	return ret;
}

VH_EXPORT int vh_scsi_clear_endpoint(struct vh_kdev *dev, const char *wwpn,
				     unsigned int tpgt)
{
	struct vhost_scsi_target t;
	int ret;

	ret = fill_target(&t, wwpn, tpgt);
	if (ret < 0)
		return ret;
	return scsi_ioctl(dev, VHOST_SCSI_CLEAR_ENDPOINT, &t);
}

VH_EXPORT int vh_scsi_get_abi_version(struct vh_kdev *dev, int *version)
{
	if (!version)
		return -EINVAL;
	return scsi_ioctl(dev, VHOST_SCSI_GET_ABI_VERSION, version);
}

VH_EXPORT int vh_scsi_set_events_missed(struct vh_kdev *dev, uint32_t missed)
{
	__u32 v = missed;

	return scsi_ioctl(dev, VHOST_SCSI_SET_EVENTS_MISSED, &v);
}

VH_EXPORT int vh_scsi_get_events_missed(struct vh_kdev *dev, uint32_t *missed)
{
	__u32 v = 0;
	int ret;

	if (!missed)
		return -EINVAL;
	ret = scsi_ioctl(dev, VHOST_SCSI_GET_EVENTS_MISSED, &v);
	if (ret == 0)
		*missed = v;
	return ret;
}
