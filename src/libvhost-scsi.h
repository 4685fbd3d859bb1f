/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvhost - vhost-scsi: LIO targets built through configfs (vh_lio_target,
 * no targetcli needed) and the VHOST_SCSI_* ioctls of /dev/vhost-scsi (a
 * vh_kdev of type VH_KDEV_SCSI).
 *
 * Every call returns 0 (or a count) or a negative errno.
 */
#ifndef _LIBVHOST_SCSI_H_
#define _LIBVHOST_SCSI_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct vh_ctx;
struct vh_kdev;

/* ------------------------------------------------------------------ */
/* vh_lio_target: a vhost fabric target in LIO (configfs)              */
/* ------------------------------------------------------------------ */
struct vh_lio_target;

enum vh_lio_backstore {
	VH_LIO_FILEIO = 1, /* a file (or block device) the caller names */
	VH_LIO_RAMDISK, /* rd_mcp: memory, for tests */
};

/* One LUN and the backstore behind it. */
struct vh_lio_lun {
	enum vh_lio_backstore type;
	uint64_t lun; /* LUN number: configfs lun_<lun> */
	/*
	 * FILEIO: absolute path of the backing file (the kernel creates it
	 * if missing); no ',' or newline (configfs option syntax).
	 */
	const char *path;
	/*
	 * Bytes.  FILEIO: 0 means the file's current size; at least 512
	 * either way.  RAMDISK: required, rounded down to whole pages, at
	 * most INT_MAX pages.  Otherwise -EINVAL.
	 */
	uint64_t size;
	bool buffered; /* FILEIO: fd_buffered_io=1 (write-back cache) */
};

struct vh_lio_config {
	/* sizeof(this struct): see "Extensible structs" in libvhost.h */
	size_t size;
	/* target port: "naa." + 16 hex digits; NULL: a random naa.5001405... */
	const char *wwpn;
	/* I_T nexus initiator port, same form; NULL: random */
	const char *initiator;
	/* target portal group tag, 0..255 (the virtio-scsi target number) */
	unsigned int tpgt;
	const struct vh_lio_lun *luns;
	unsigned int nluns;
};

/*
 * Build the target: for each LUN a backstore (its own HBA, e.g.
 * core/fileio_N/lunL, enabled), then vhost/<wwpn>/tpgt_<tpgt>, its
 * nexus and its lun/lun_<L> links.  Everything created is recorded and
 * removed again, in reverse order, by the last unref (or on failure here),
 * so configfs is left as it was found; a "vhost" fabric directory that
 * existed before is kept.
 * -ENODEV, logged with the module to load, when configfs is not mounted
 * or target_core_mod / vhost_scsi / the backstore module is missing;
 * -EEXIST if the WWPN is taken; -EINVAL for a bad config.
 */
int vh_lio_target_new(struct vh_ctx *ctx, const struct vh_lio_config *cfg,
		      struct vh_lio_target **target);
struct vh_lio_target *vh_lio_target_ref(struct vh_lio_target *t);
struct vh_lio_target *vh_lio_target_unref(struct vh_lio_target *t);

/*
 * Add a LUN to a live target (with an endpoint set and VIRTIO_SCSI_F_HOTPLUG
 * negotiated, vhost-scsi queues a TRANSPORT_RESET/RESCAN event), or remove
 * one (-ENOENT if this target did not create it; else the first failure,
 * with what failed kept for another try).  Clear the endpoint
 * (vh_scsi_clear_endpoint()) before the last unref: a target in use cannot
 * be removed, and stays in configfs (logged).
 */
int vh_lio_target_add_lun(struct vh_lio_target *t, const struct vh_lio_lun *l);
int vh_lio_target_remove_lun(struct vh_lio_target *t, uint64_t lun);

const char *vh_lio_target_get_wwpn(const struct vh_lio_target *t);
unsigned int vh_lio_target_get_tpgt(const struct vh_lio_target *t);

/* 0 if s is "naa." followed by exactly 16 hex digits, else -EINVAL. */
int vh_lio_wwpn_check(const char *s);

/* ------------------------------------------------------------------ */
/* VHOST_SCSI_* ioctls on a VH_KDEV_SCSI vh_kdev                       */
/* ------------------------------------------------------------------ */

/*
 * Bind the device to target port wwpn, portal group tpgt.  The kernel
 * checks every ring first and answers -EFAULT unless a memory table was
 * set (VHOST_SET_MEM_TABLE), even with no ring configured: set the memory
 * table before calling this.  -ENODEV if no TPG with that WWPN and tag
 * has a nexus, -EEXIST if an endpoint is already set; -EINVAL (ours) for
 * an empty or over-long WWPN or a tag above 65535.
 */
int vh_scsi_set_endpoint(struct vh_kdev *dev, const char *wwpn,
			 unsigned int tpgt);
int vh_scsi_clear_endpoint(struct vh_kdev *dev, const char *wwpn,
			   unsigned int tpgt);
/* VHOST_SCSI_GET_ABI_VERSION (1 on the kernels we know). */
int vh_scsi_get_abi_version(struct vh_kdev *dev, int *version);
int vh_scsi_set_events_missed(struct vh_kdev *dev, uint32_t missed);
int vh_scsi_get_events_missed(struct vh_kdev *dev, uint32_t *missed);

#ifdef __cplusplus
}
#endif

#endif
