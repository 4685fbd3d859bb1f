/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libvhost's vDPA code (vdpa.c, vdpa-mgmt.c) and its unit test. */
#ifndef _VH_VDPA_INTERNAL_H_
#define _VH_VDPA_INTERNAL_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "libvhost-internal.h"
#include "libvhost-vdpa.h"

/*
 * The vdpa generic netlink ABI (<linux/vdpa.h>).  Spelled out here because
 * we may be built against older uapi headers (Debian 12: 6.1) than the
 * kernel we run on; the numbers are ABI.  One wrinkle: in 6.1 attribute 21
 * was VDPA_ATTR_VDPA_DEV_SUPPORTED_FEATURES (u64, DEV_GET replies only);
 * 6.2 folded it into VDPA_ATTR_DEV_FEATURES and 21 became
 * VDPA_ATTR_DEV_BLK_CFG_CAPACITY (u64, DEV_CONFIG_GET replies only).  But
 * 6.0 and 6.1 also put their 21 in a net device's DEV_CONFIG_GET reply.
 * We read 21 as device features in DEV_GET, and in CONFIG_GET as capacity
 * for a block device, device features for any other (DEV_ID comes first).
 */
#define VH_VDPA_GENL_NAME "vdpa"
#define VH_VDPA_GENL_VERSION 1

enum {
	VH_VDPA_CMD_UNSPEC = 0,
	VH_VDPA_CMD_MGMTDEV_NEW,
	VH_VDPA_CMD_MGMTDEV_GET,
	VH_VDPA_CMD_DEV_NEW,
	VH_VDPA_CMD_DEV_DEL,
	VH_VDPA_CMD_DEV_GET,
	VH_VDPA_CMD_DEV_CONFIG_GET,
	VH_VDPA_CMD_DEV_VSTATS_GET,
	VH_VDPA_CMD_DEV_ATTR_SET,
};

enum {
	VH_VDPA_ATTR_PAD = 0,
	VH_VDPA_ATTR_MGMTDEV_BUS_NAME = 1, /* string */
	VH_VDPA_ATTR_MGMTDEV_DEV_NAME = 2, /* string */
	VH_VDPA_ATTR_MGMTDEV_SUPPORTED_CLASSES = 3, /* u64 */
	VH_VDPA_ATTR_DEV_NAME = 4, /* string */
	VH_VDPA_ATTR_DEV_ID = 5, /* u32 */
	VH_VDPA_ATTR_DEV_VENDOR_ID = 6, /* u32 */
	VH_VDPA_ATTR_DEV_MAX_VQS = 7, /* u32 */
	VH_VDPA_ATTR_DEV_MAX_VQ_SIZE = 8, /* u16 */
	VH_VDPA_ATTR_DEV_MIN_VQ_SIZE = 9, /* u16 */
	VH_VDPA_ATTR_DEV_NET_CFG_MACADDR = 10, /* binary, 6 */
	VH_VDPA_ATTR_DEV_NET_STATUS = 11, /* u16 (uapi says u8) */
	VH_VDPA_ATTR_DEV_NET_CFG_MAX_VQP = 12, /* u16 */
	VH_VDPA_ATTR_DEV_NET_CFG_MTU = 13, /* u16 */
	VH_VDPA_ATTR_DEV_NEGOTIATED_FEATURES = 14, /* u64 */
	VH_VDPA_ATTR_DEV_MGMTDEV_MAX_VQS = 15, /* u32 */
	VH_VDPA_ATTR_DEV_SUPPORTED_FEATURES = 16, /* u64 */
	VH_VDPA_ATTR_DEV_QUEUE_INDEX = 17, /* u32 */
	VH_VDPA_ATTR_DEV_VENDOR_ATTR_NAME = 18, /* string */
	VH_VDPA_ATTR_DEV_VENDOR_ATTR_VALUE = 19, /* u64 */
	VH_VDPA_ATTR_DEV_FEATURES = 20, /* u64 */
	VH_VDPA_ATTR_DEV_BLK_CFG_CAPACITY = 21, /* u64 (6.1: see above) */
	VH_VDPA_ATTR_DEV_BLK_CFG_SIZE_MAX = 22, /* u32 */
	VH_VDPA_ATTR_DEV_BLK_CFG_BLK_SIZE = 23, /* u32 */
	VH_VDPA_ATTR_DEV_BLK_CFG_SEG_MAX = 24, /* u32 */
	VH_VDPA_ATTR_DEV_BLK_CFG_NUM_QUEUES = 25, /* u16 */
	VH_VDPA_ATTR_DEV_BLK_CFG_PHY_BLK_EXP = 26, /* u8 */
	VH_VDPA_ATTR_DEV_BLK_CFG_ALIGN_OFFSET = 27, /* u8 */
	VH_VDPA_ATTR_DEV_BLK_CFG_MIN_IO_SIZE = 28, /* u16 */
	VH_VDPA_ATTR_DEV_BLK_CFG_OPT_IO_SIZE = 29, /* u32 */
	VH_VDPA_ATTR_DEV_BLK_CFG_MAX_DISCARD_SEC = 30, /* u32 */
	VH_VDPA_ATTR_DEV_BLK_CFG_MAX_DISCARD_SEG = 31, /* u32 */
	VH_VDPA_ATTR_DEV_BLK_CFG_DISCARD_SEC_ALIGN = 32, /* u32 */
	VH_VDPA_ATTR_DEV_BLK_CFG_MAX_WRITE_ZEROES_SEC = 33, /* u32 */
	VH_VDPA_ATTR_DEV_BLK_CFG_MAX_WRITE_ZEROES_SEG = 34, /* u32 */
	VH_VDPA_ATTR_DEV_BLK_READ_ONLY = 35, /* u8 */
	VH_VDPA_ATTR_DEV_BLK_FLUSH = 36, /* u8 */
	VH_VDPA_ATTR_MAX_KNOWN = 36,
};

#ifdef HAVE_LIBMNL
struct nlmsghdr;

/*
 * Walk the netlink messages of one recv() buffer for request `seq` from
 * `portid` (0: the kernel).  Data messages of type `family` go to cb (a
 * negative return stops the walk and is returned).  Returns 0 once the
 * request is complete (ACK or NLMSG_DONE), 1 if more messages are to come,
 * or -errno: the kernel's error (its extended-ACK message copied to errmsg,
 * "" if none), -EBADMSG for a malformed or truncated message, -EINTR for
 * an interrupted dump; a message of another sequence or port is skipped.
 */
typedef int (*vh_vdpa_nl_cb)(const struct nlmsghdr *nlh, void *data);

/*
 * One datagram of the kernel (port 0; any other is dropped, logged) read
 * from the netlink socket fd into buf, within timeout_ms: its length,
 * -ETIMEDOUT, -EMSGSIZE if truncated, or -errno.
 */
ssize_t vh_vdpa_nl_recv(struct vh_ctx *ctx, int fd, void *buf, size_t size,
			int timeout_ms);
int vh_vdpa_nl_walk(struct vh_ctx *ctx, const void *buf, size_t len,
		    uint32_t seq, uint32_t portid, uint16_t family,
		    vh_vdpa_nl_cb cb, void *data, char *errmsg, size_t errlen);

/*
 * Parsers of one reply message (generic netlink header + attributes).
 * Unknown attributes are skipped; a known one of the wrong type or length,
 * or a truncated attribute stream, is -EBADMSG (logged).
 */
int vh_vdpa_parse_family(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			 uint16_t *family);
int vh_vdpa_parse_mgmtdev(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			  struct vh_vdpa_mgmtdev_info *out);
int vh_vdpa_parse_dev(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
		      struct vh_vdpa_dev_info *out);
int vh_vdpa_parse_config(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			 struct vh_vdpa_dev_config *out);
/* *out is allocated (vh_vdpa_vstats_free()). */
int vh_vdpa_parse_vstats(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			 struct vh_vdpa_vstats **out);
#endif

#endif
