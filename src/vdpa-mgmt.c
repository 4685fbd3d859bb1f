// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vDPA device management over the "vdpa" generic netlink family, with
 * libmnl: what iproute2's `vdpa mgmtdev show`, `vdpa dev add/del/show`,
 * `vdpa dev config show` and `vdpa dev vstats show` do.
 *
 * Replies are hostile input like any other: every message length is
 * checked against the buffer, every attribute we know is validated by type
 * and length before it is read (a bad one fails the request with
 * -EBADMSG), attributes we do not know are skipped, and a truncated
 * attribute stream is an error rather than the end of the list.
 */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vdpa-internal.h"

/* Found in sysfs; independent of netlink. */
VH_EXPORT int vh_vdpa_dev_chardev(struct vh_ctx *ctx, const char *name,
				  char *path, size_t len)
{
	char dir[512];
	struct dirent *de;
	DIR *d;
	int ret = -ENOENT;

	if (!name || !path || !*name || strchr(name, '/') ||
	    !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	if ((size_t)snprintf(dir, sizeof(dir), "/sys/bus/vdpa/devices/%s",
			     name) >= sizeof(dir))
		return -ENAMETOOLONG;
	d = opendir(dir);
	if (!d) {
		ret = -errno;
		vh_dbg(ctx, "%s: %s\n", dir, strerror(errno));
		return ret == -ENOTDIR ? -ENOENT : ret;
	}
	while ((de = readdir(d))) {
		const char *p;
		unsigned long minor;
		char *end;

		/* the vhost-vdpa class device is a child: vhost-vdpa-<N> */
		if (strncmp(de->d_name, "vhost-vdpa-", 11) != 0)
			continue;
		p = de->d_name + 11;
		if (*p < '0' || *p > '9')
			continue;
		errno = 0;
		minor = strtoul(p, &end, 10);
		if (errno || *end || minor > 0xfffff)
			continue;
		if ((size_t)snprintf(path, len, "/dev/vhost-vdpa-%lu", minor) >=
		    len)
			ret = -ENAMETOOLONG;
		else
			ret = 0;
		break;
	}
	closedir(d);
	if (ret == -ENOENT)
		vh_dbg(ctx, "vdpa device %s is not bound to vhost_vdpa\n",
		       name);
	return ret;
}

VH_EXPORT void vh_vdpa_vstats_free(struct vh_vdpa_vstats *stats)
{
	if (!stats)
		return;
	free(stats->stats);
	free(stats);
}

#ifndef HAVE_LIBMNL

VH_EXPORT int vh_vdpa_mgmt_new(struct vh_ctx *ctx, struct vh_vdpa_mgmt **mgmt)
{
	vh_err(ctx, "built without libmnl: no vDPA management\n");
	return -EOPNOTSUPP;
}

VH_EXPORT struct vh_vdpa_mgmt *vh_vdpa_mgmt_ref(struct vh_vdpa_mgmt *mgmt)
{
	return NULL;
}

VH_EXPORT struct vh_vdpa_mgmt *vh_vdpa_mgmt_unref(struct vh_vdpa_mgmt *mgmt)
{
	return NULL;
}

VH_EXPORT int vh_vdpa_mgmt_get_family(const struct vh_vdpa_mgmt *mgmt)
{
	return -EOPNOTSUPP;
}

VH_EXPORT const char *vh_vdpa_mgmt_last_error(const struct vh_vdpa_mgmt *mgmt)
{
	return "";
}

VH_EXPORT int vh_vdpa_mgmt_list_mgmtdevs(struct vh_vdpa_mgmt *mgmt,
					 struct vh_vdpa_mgmtdev_info **list,
					 size_t *n)
{
	return -EOPNOTSUPP;
}

VH_EXPORT int vh_vdpa_mgmt_list_devs(struct vh_vdpa_mgmt *mgmt,
				     struct vh_vdpa_dev_info **list, size_t *n)
{
	return -EOPNOTSUPP;
}

VH_EXPORT int vh_vdpa_mgmt_dev_add(struct vh_vdpa_mgmt *mgmt,
				   const struct vh_vdpa_dev_new *params)
{
	return -EOPNOTSUPP;
}

VH_EXPORT int vh_vdpa_mgmt_dev_del(struct vh_vdpa_mgmt *mgmt, const char *name)
{
	return -EOPNOTSUPP;
}

VH_EXPORT int vh_vdpa_mgmt_dev_get(struct vh_vdpa_mgmt *mgmt, const char *name,
				   struct vh_vdpa_dev_info *info)
{
	return -EOPNOTSUPP;
}

VH_EXPORT int vh_vdpa_mgmt_dev_set_mac(struct vh_vdpa_mgmt *mgmt,
				       const char *name, const uint8_t mac[6])
{
	return -EOPNOTSUPP;
}

VH_EXPORT int vh_vdpa_mgmt_dev_config_get(struct vh_vdpa_mgmt *mgmt,
					  const char *name,
					  struct vh_vdpa_dev_config *cfg)
{
	return -EOPNOTSUPP;
}

VH_EXPORT int vh_vdpa_mgmt_dev_vstats_get(struct vh_vdpa_mgmt *mgmt,
					  const char *name, uint32_t queue,
					  struct vh_vdpa_vstats **stats)
{
	return -EOPNOTSUPP;
}

#else /* HAVE_LIBMNL */

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

/* Dumps come in skbs sized by our receive buffer; 32 KiB is ample. */
#define VDPA_NL_RECV_SIZE 32768
/* Our requests carry a handful of small attributes. */
#define VDPA_NL_SEND_SIZE 1024
/* How long a reply may keep us waiting (vh_vdpa_nl_recv()). */
#define VDPA_NL_TIMEOUT_MS 10000
/* Refuse absurd vendor-stat lists from a buggy driver. */
#define VDPA_MAX_VSTATS 4096

struct vh_vdpa_mgmt {
	int refcount;
	struct vh_ctx *ctx;
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	uint16_t family;
	char errmsg[VH_VDPA_ERRMSG_MAX];
	char *buf;
};

/* ------------------------------------------------------------------ */
/* Message walking                                                     */
/* ------------------------------------------------------------------ */

/* Copy the string of extended-ACK TLVs at [p, p + len) into errmsg. */
static int parse_ext_ack(struct vh_ctx *ctx, const char *p, size_t len,
			 char *errmsg, size_t errlen)
{
	/* netlink attributes are 4-byte aligned (NLA_ALIGNTO) */
	const struct nlattr *a = (const struct nlattr *)(const void *)p;
	int rem = (int)len;

	while (rem > 0) {
		if (!mnl_attr_ok(a, rem))
			return -EBADMSG;
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG) {
			if (mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
				return -EBADMSG;
			if (errmsg && errlen)
				snprintf(errmsg, errlen, "%s",
					 mnl_attr_get_str(a));
		}
		rem -= MNL_ALIGN(a->nla_len);
		a = mnl_attr_next(a);
	}
	return 0;
}

/*
 * NLMSG_ERROR: struct nlmsgerr (error + the request's header, or the whole
 * request unless NETLINK_CAP_ACK capped it), then extended-ACK TLVs when
 * NLM_F_ACK_TLVS is set (netlink(7)).  Returns the (non-positive) error.
 */
static int parse_nlmsgerr(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			  char *errmsg, size_t errlen)
{
	size_t plen = mnl_nlmsg_get_payload_len(nlh);
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(nlh);
	size_t off;

	if (plen < sizeof(*e))
		return -EBADMSG;
	if (e->error > 0 || e->error < -4095)
		return -EBADMSG;
	if (nlh->nlmsg_flags & NLM_F_ACK_TLVS) {
		if (nlh->nlmsg_flags & NLM_F_CAPPED) {
			off = sizeof(*e);
		} else {
			if (e->msg.nlmsg_len < sizeof(struct nlmsghdr) ||
			    e->msg.nlmsg_len > plen - sizeof(e->error))
				return -EBADMSG;
			off = sizeof(e->error) + e->msg.nlmsg_len;
		}
		off = MNL_ALIGN(off);
		if (off < plen && parse_ext_ack(ctx, (const char *)e + off,
						plen - off, errmsg, errlen))
			return -EBADMSG;
	}
	if (e->error == 0 && errmsg && errmsg[0])
		vh_info(ctx, "vdpa: kernel warning: %s\n", errmsg);
	return e->error;
}

/* NLMSG_DONE: an optional int error, then optional TLVs. */
static int parse_done(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
		      char *errmsg, size_t errlen)
{
	size_t plen = mnl_nlmsg_get_payload_len(nlh);
	const char *p = mnl_nlmsg_get_payload(nlh);
	int err;

	if (plen < sizeof(int))
		return 0;
	memcpy(&err, p, sizeof(err));
	if (err > 0 || err < -4095)
		return -EBADMSG;
	if ((nlh->nlmsg_flags & NLM_F_ACK_TLVS) &&
	    plen > MNL_ALIGN(sizeof(int)) &&
	    parse_ext_ack(ctx, p + MNL_ALIGN(sizeof(int)),
			  plen - MNL_ALIGN(sizeof(int)), errmsg, errlen))
		return -EBADMSG;
	return err;
}

struct nl_req {
	uint32_t seq;
	uint32_t portid;
	uint16_t family;
	vh_vdpa_nl_cb cb;
	void *data;
	int cb_err; /* first error of cb: the walk goes on to drain the reply */
};

static int nl_walk(struct vh_ctx *ctx, struct nl_req *req, const void *buf,
		   size_t len, char *errmsg, size_t errlen)
{
	const struct nlmsghdr *nlh = buf;
	int rem = (int)len;
	int ret;

	if (len > VDPA_NL_RECV_SIZE)
		return -EMSGSIZE;
	while (rem > 0) {
		/*
		 * mnl_nlmsg_ok() compares nlmsg_len as an int, so a length
		 * of 2^31 or more would pass it: check the u32 ourselves.
		 */
		if (!mnl_nlmsg_ok(nlh, rem) || nlh->nlmsg_len > (uint32_t)rem) {
			vh_err(ctx,
			       "vdpa: truncated netlink message (%d bytes left)\n",
			       rem);
			return -EBADMSG;
		}
		/*
		 * A reply to an earlier request we gave up on: skip it.  A
		 * reply carries our port id (netlink(7)).
		 */
		if (nlh->nlmsg_seq != req->seq ||
		    (req->portid && nlh->nlmsg_pid != req->portid)) {
			vh_dbg(ctx, "vdpa: skipping message seq %u pid %u\n",
			       nlh->nlmsg_seq, nlh->nlmsg_pid);
			goto next;
		}
		if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
			return -EINTR;

		switch (nlh->nlmsg_type) {
		case NLMSG_NOOP:
			break;
		case NLMSG_ERROR:
			ret = parse_nlmsgerr(ctx, nlh, errmsg, errlen);
			if (ret < 0)
				return ret;
			return req->cb_err;
		case NLMSG_DONE:
			ret = parse_done(ctx, nlh, errmsg, errlen);
			if (ret < 0)
				return ret;
			return req->cb_err;
		case NLMSG_OVERRUN:
			return -ENOBUFS;
		default:
			if (nlh->nlmsg_type != req->family || !req->cb)
				break;
			ret = req->cb(nlh, req->data);
			if (ret < 0 && !req->cb_err)
				req->cb_err = ret;
			break;
		}
next:
		rem -= (int)MNL_ALIGN(nlh->nlmsg_len);
		nlh = (const struct nlmsghdr *)(const void *)((const char *)nlh +
							     MNL_ALIGN(nlh->nlmsg_len));
	}
	return 1;
}

int vh_vdpa_nl_walk(struct vh_ctx *ctx, const void *buf, size_t len,
		    uint32_t seq, uint32_t portid, uint16_t family,
		    vh_vdpa_nl_cb cb, void *data, char *errmsg, size_t errlen)
{
	struct nl_req req = {
		.seq = seq,
		.portid = portid,
		.family = family,
		.cb = cb,
		.data = data,
	};

	if (errmsg && errlen)
		errmsg[0] = '\0';
	return nl_walk(ctx, &req, buf, len, errmsg, errlen);
}

/* ------------------------------------------------------------------ */
/* Attribute parsing                                                   */
/* ------------------------------------------------------------------ */

struct attr_rule {
	uint8_t type; /* enum mnl_attr_data_type; MNL_TYPE_UNSPEC: unknown */
	uint8_t len; /* exact payload length for MNL_TYPE_BINARY */
};

static const struct attr_rule vdpa_rules[VH_VDPA_ATTR_MAX_KNOWN + 1] = {
	[VH_VDPA_ATTR_MGMTDEV_BUS_NAME] = { MNL_TYPE_NUL_STRING, 0 },
	[VH_VDPA_ATTR_MGMTDEV_DEV_NAME] = { MNL_TYPE_NUL_STRING, 0 },
	[VH_VDPA_ATTR_MGMTDEV_SUPPORTED_CLASSES] = { MNL_TYPE_U64, 0 },
	[VH_VDPA_ATTR_DEV_NAME] = { MNL_TYPE_NUL_STRING, 0 },
	[VH_VDPA_ATTR_DEV_ID] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_VENDOR_ID] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_MAX_VQS] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_MAX_VQ_SIZE] = { MNL_TYPE_U16, 0 },
	[VH_VDPA_ATTR_DEV_MIN_VQ_SIZE] = { MNL_TYPE_U16, 0 },
	[VH_VDPA_ATTR_DEV_NET_CFG_MACADDR] = { MNL_TYPE_BINARY, 6 },
	/* <linux/vdpa.h> says u8, but the kernel puts a u16 */
	[VH_VDPA_ATTR_DEV_NET_STATUS] = { MNL_TYPE_U16, 0 },
	[VH_VDPA_ATTR_DEV_NET_CFG_MAX_VQP] = { MNL_TYPE_U16, 0 },
	[VH_VDPA_ATTR_DEV_NET_CFG_MTU] = { MNL_TYPE_U16, 0 },
	[VH_VDPA_ATTR_DEV_NEGOTIATED_FEATURES] = { MNL_TYPE_U64, 0 },
	[VH_VDPA_ATTR_DEV_MGMTDEV_MAX_VQS] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_SUPPORTED_FEATURES] = { MNL_TYPE_U64, 0 },
	[VH_VDPA_ATTR_DEV_QUEUE_INDEX] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_VENDOR_ATTR_NAME] = { MNL_TYPE_NUL_STRING, 0 },
	[VH_VDPA_ATTR_DEV_VENDOR_ATTR_VALUE] = { MNL_TYPE_U64, 0 },
	[VH_VDPA_ATTR_DEV_FEATURES] = { MNL_TYPE_U64, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_CAPACITY] = { MNL_TYPE_U64, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_SIZE_MAX] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_BLK_SIZE] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_SEG_MAX] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_NUM_QUEUES] = { MNL_TYPE_U16, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_PHY_BLK_EXP] = { MNL_TYPE_U8, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_ALIGN_OFFSET] = { MNL_TYPE_U8, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_MIN_IO_SIZE] = { MNL_TYPE_U16, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_OPT_IO_SIZE] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_MAX_DISCARD_SEC] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_MAX_DISCARD_SEG] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_DISCARD_SEC_ALIGN] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_MAX_WRITE_ZEROES_SEC] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_BLK_CFG_MAX_WRITE_ZEROES_SEG] = { MNL_TYPE_U32, 0 },
	[VH_VDPA_ATTR_DEV_BLK_READ_ONLY] = { MNL_TYPE_U8, 0 },
	[VH_VDPA_ATTR_DEV_BLK_FLUSH] = { MNL_TYPE_U8, 0 },
};

/* One validated attribute: its type and value (str for strings, raw for binary). */
struct attr_val {
	uint16_t type;
	uint64_t u;
	const char *str;
	const void *raw;
};

typedef int (*attr_fn)(struct vh_ctx *ctx, const struct attr_val *v,
		       void *data);

/*
 * Walk the attributes after the generic netlink header, validating the
 * known ones against rules (MAX_KNOWN + 1 entries) and calling fn for
 * them; unknown ones (and the pad attribute 0) are skipped.
 */
static int walk_attrs(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
		      const struct attr_rule *rules, unsigned int nrules,
		      attr_fn fn, void *data)
{
	const struct nlattr *a;
	int rem, ret;

	if (nlh->nlmsg_len < MNL_NLMSG_HDRLEN + MNL_ALIGN(GENL_HDRLEN)) {
		vh_err(ctx, "vdpa: reply without a generic netlink header\n");
		return -EBADMSG;
	}
	a = mnl_nlmsg_get_payload_offset(nlh, GENL_HDRLEN);
	rem = (int)((const char *)nlh + nlh->nlmsg_len - (const char *)a);
	while (rem > 0) {
		struct attr_val v = { 0 };
		const struct attr_rule *r;

		if (!mnl_attr_ok(a, rem)) {
			vh_err(ctx, "vdpa: truncated attribute in reply\n");
			return -EBADMSG;
		}
		v.type = mnl_attr_get_type(a);
		r = v.type < nrules ? &rules[v.type] : NULL;
		if (!r || r->type == MNL_TYPE_UNSPEC) {
			vh_dbg(ctx, "vdpa: ignoring attribute %u\n", v.type);
			goto next;
		}
		if ((r->type == MNL_TYPE_BINARY ?
			     mnl_attr_validate2(a, MNL_TYPE_BINARY, r->len) :
			     mnl_attr_validate(a, r->type)) < 0) {
			vh_err(ctx, "vdpa: malformed attribute %u (%u bytes)\n",
			       v.type, mnl_attr_get_payload_len(a));
			return -EBADMSG;
		}
		switch (r->type) {
		case MNL_TYPE_U8:
			v.u = mnl_attr_get_u8(a);
			break;
		case MNL_TYPE_U16:
			v.u = mnl_attr_get_u16(a);
			break;
		case MNL_TYPE_U32:
			v.u = mnl_attr_get_u32(a);
			break;
		case MNL_TYPE_U64:
			v.u = mnl_attr_get_u64(a);
			break;
		case MNL_TYPE_NUL_STRING:
			v.str = mnl_attr_get_str(a);
			break;
		default:
			v.raw = mnl_attr_get_payload(a);
			break;
		}
		ret = fn(ctx, &v, data);
		if (ret < 0)
			return ret;
next:
		rem -= (int)MNL_ALIGN(a->nla_len);
		a = mnl_attr_next(a);
	}
	return 0;
}

static int copy_name(struct vh_ctx *ctx, char *dst, const char *src,
		     uint16_t type)
{
	size_t n = strlen(src);

	if (n >= VH_VDPA_NAME_MAX) {
		vh_err(ctx, "vdpa: name in attribute %u is %zu bytes long\n",
		       type, n);
		return -EBADMSG;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

#define SET(obj, field, member, val)               \
	do {                                       \
		(obj)->member = (val);             \
		(obj)->present |= 1ull << (field); \
	} while (0)

static int mgmtdev_attr(struct vh_ctx *ctx, const struct attr_val *v,
			void *data)
{
	struct vh_vdpa_mgmtdev_info *o = data;

	switch (v->type) {
	case VH_VDPA_ATTR_MGMTDEV_BUS_NAME:
		o->present |= 1ull << VH_VDPA_FIELD_BUS_NAME;
		return copy_name(ctx, o->bus_name, v->str, v->type);
	case VH_VDPA_ATTR_MGMTDEV_DEV_NAME:
		o->present |= 1ull << VH_VDPA_FIELD_MGMTDEV_NAME;
		return copy_name(ctx, o->dev_name, v->str, v->type);
	case VH_VDPA_ATTR_MGMTDEV_SUPPORTED_CLASSES:
		SET(o, VH_VDPA_FIELD_CLASSES, supported_classes, v->u);
		break;
	case VH_VDPA_ATTR_DEV_MGMTDEV_MAX_VQS:
		SET(o, VH_VDPA_FIELD_MAX_VQS, max_supported_vqs,
		    (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_SUPPORTED_FEATURES:
		SET(o, VH_VDPA_FIELD_SUPPORTED_FEATURES, supported_features,
		    v->u);
		break;
	}
	return 0;
}

int vh_vdpa_parse_mgmtdev(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			  struct vh_vdpa_mgmtdev_info *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	ret = walk_attrs(ctx, nlh, vdpa_rules, VH_ARRAY_SIZE(vdpa_rules),
			 mgmtdev_attr, out);
	if (ret < 0)
		return ret;
	/* the handle is mandatory: without it the entry names nothing */
	if (!VH_VDPA_HAS(out, VH_VDPA_FIELD_MGMTDEV_NAME)) {
		vh_err(ctx, "vdpa: management device without a name\n");
		return -EBADMSG;
	}
	return 0;
}

static int dev_attr(struct vh_ctx *ctx, const struct attr_val *v, void *data)
{
	struct vh_vdpa_dev_info *o = data;

	switch (v->type) {
	case VH_VDPA_ATTR_MGMTDEV_BUS_NAME:
		o->present |= 1ull << VH_VDPA_FIELD_BUS_NAME;
		return copy_name(ctx, o->mgmt_bus_name, v->str, v->type);
	case VH_VDPA_ATTR_MGMTDEV_DEV_NAME:
		o->present |= 1ull << VH_VDPA_FIELD_MGMTDEV_NAME;
		return copy_name(ctx, o->mgmt_dev_name, v->str, v->type);
	case VH_VDPA_ATTR_DEV_NAME:
		o->present |= 1ull << VH_VDPA_FIELD_NAME;
		return copy_name(ctx, o->name, v->str, v->type);
	case VH_VDPA_ATTR_DEV_ID:
		SET(o, VH_VDPA_FIELD_DEVICE_ID, device_id, (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_VENDOR_ID:
		SET(o, VH_VDPA_FIELD_VENDOR_ID, vendor_id, (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_MAX_VQS:
		SET(o, VH_VDPA_FIELD_MAX_VQS, max_vqs, (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_MAX_VQ_SIZE:
		SET(o, VH_VDPA_FIELD_MAX_VQ_SIZE, max_vq_size, (uint16_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_MIN_VQ_SIZE:
		SET(o, VH_VDPA_FIELD_MIN_VQ_SIZE, min_vq_size, (uint16_t)v->u);
		break;
	}
	return 0;
}

int vh_vdpa_parse_dev(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
		      struct vh_vdpa_dev_info *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	ret = walk_attrs(ctx, nlh, vdpa_rules, VH_ARRAY_SIZE(vdpa_rules),
			 dev_attr, out);
	if (ret < 0)
		return ret;
	if (!VH_VDPA_HAS(out, VH_VDPA_FIELD_NAME)) {
		vh_err(ctx, "vdpa: device without a name\n");
		return -EBADMSG;
	}
	return 0;
}

static int config_attr(struct vh_ctx *ctx, const struct attr_val *v, void *data)
{
	struct vh_vdpa_dev_config *o = data;

	switch (v->type) {
	case VH_VDPA_ATTR_DEV_NAME:
		o->present |= 1ull << VH_VDPA_FIELD_NAME;
		return copy_name(ctx, o->name, v->str, v->type);
	case VH_VDPA_ATTR_DEV_ID:
		SET(o, VH_VDPA_FIELD_DEVICE_ID, device_id, (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_NEGOTIATED_FEATURES:
		SET(o, VH_VDPA_FIELD_NEGOTIATED_FEATURES, negotiated_features,
		    v->u);
		break;
	case VH_VDPA_ATTR_DEV_FEATURES:
		SET(o, VH_VDPA_FIELD_DEVICE_FEATURES, device_features, v->u);
		break;
	case VH_VDPA_ATTR_DEV_NET_CFG_MACADDR:
		memcpy(o->mac, v->raw, sizeof(o->mac));
		o->present |= 1ull << VH_VDPA_FIELD_MAC;
		break;
	case VH_VDPA_ATTR_DEV_NET_STATUS:
		SET(o, VH_VDPA_FIELD_STATUS, status, (uint16_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_NET_CFG_MAX_VQP:
		SET(o, VH_VDPA_FIELD_MAX_VQ_PAIRS, max_vq_pairs,
		    (uint16_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_NET_CFG_MTU:
		SET(o, VH_VDPA_FIELD_MTU, mtu, (uint16_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_CAPACITY:
		/*
		 * 6.0 and 6.1 send a net device's features as attribute 21
		 * too (VDPA_ATTR_VDPA_DEV_SUPPORTED_FEATURES, in
		 * vdpa_dev_net_config_fill()); DEV_ID comes first
		 */
		if (VH_VDPA_HAS(o, VH_VDPA_FIELD_DEVICE_ID) &&
		    o->device_id != 2 /* VIRTIO_ID_BLOCK */)
			SET(o, VH_VDPA_FIELD_DEVICE_FEATURES, device_features,
			    v->u);
		else
			SET(o, VH_VDPA_FIELD_BLK_CAPACITY, blk_capacity, v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_SIZE_MAX:
		SET(o, VH_VDPA_FIELD_BLK_SIZE_MAX, blk_size_max,
		    (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_BLK_SIZE:
		SET(o, VH_VDPA_FIELD_BLK_BLK_SIZE, blk_blk_size,
		    (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_SEG_MAX:
		SET(o, VH_VDPA_FIELD_BLK_SEG_MAX, blk_seg_max, (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_NUM_QUEUES:
		SET(o, VH_VDPA_FIELD_BLK_NUM_QUEUES, blk_num_queues,
		    (uint16_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_PHY_BLK_EXP:
		SET(o, VH_VDPA_FIELD_BLK_PHYS_BLOCK_EXP, blk_physical_block_exp,
		    (uint8_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_ALIGN_OFFSET:
		SET(o, VH_VDPA_FIELD_BLK_ALIGNMENT_OFFSET, blk_alignment_offset,
		    (uint8_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_MIN_IO_SIZE:
		SET(o, VH_VDPA_FIELD_BLK_MIN_IO_SIZE, blk_min_io_size,
		    (uint16_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_OPT_IO_SIZE:
		SET(o, VH_VDPA_FIELD_BLK_OPT_IO_SIZE, blk_opt_io_size,
		    (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_MAX_DISCARD_SEC:
		SET(o, VH_VDPA_FIELD_BLK_MAX_DISCARD_SEC, blk_max_discard_sec,
		    (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_MAX_DISCARD_SEG:
		SET(o, VH_VDPA_FIELD_BLK_MAX_DISCARD_SEG, blk_max_discard_seg,
		    (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_DISCARD_SEC_ALIGN:
		SET(o, VH_VDPA_FIELD_BLK_DISCARD_SEC_ALIGN,
		    blk_discard_sector_alignment, (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_MAX_WRITE_ZEROES_SEC:
		SET(o, VH_VDPA_FIELD_BLK_MAX_WRITE_ZEROES_SEC,
		    blk_max_write_zeroes_sec, (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_CFG_MAX_WRITE_ZEROES_SEG:
		SET(o, VH_VDPA_FIELD_BLK_MAX_WRITE_ZEROES_SEG,
		    blk_max_write_zeroes_seg, (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_READ_ONLY:
		SET(o, VH_VDPA_FIELD_BLK_READ_ONLY, blk_read_only,
		    (uint8_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_BLK_FLUSH:
		SET(o, VH_VDPA_FIELD_BLK_FLUSH, blk_flush, (uint8_t)v->u);
		break;
	}
	return 0;
}

int vh_vdpa_parse_config(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			 struct vh_vdpa_dev_config *out)
{
	int ret;

	memset(out, 0, sizeof(*out));
	ret = walk_attrs(ctx, nlh, vdpa_rules, VH_ARRAY_SIZE(vdpa_rules),
			 config_attr, out);
	if (ret < 0)
		return ret;
	if (!VH_VDPA_HAS(out, VH_VDPA_FIELD_NAME)) {
		vh_err(ctx, "vdpa: config without a device name\n");
		return -EBADMSG;
	}
	return 0;
}

struct vstats_state {
	struct vh_vdpa_vstats *s;
	unsigned int cap;
	bool have_name; /* a NAME waits for its VALUE */
};

static int vstats_attr(struct vh_ctx *ctx, const struct attr_val *v, void *data)
{
	struct vstats_state *st = data;
	struct vh_vdpa_vstats *o = st->s;
	struct vh_vdpa_vstat *n;
	int ret;

	switch (v->type) {
	case VH_VDPA_ATTR_DEV_NAME:
		o->present |= 1ull << VH_VDPA_FIELD_NAME;
		return copy_name(ctx, o->name, v->str, v->type);
	case VH_VDPA_ATTR_DEV_ID:
		SET(o, VH_VDPA_FIELD_DEVICE_ID, device_id, (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_NEGOTIATED_FEATURES:
		SET(o, VH_VDPA_FIELD_NEGOTIATED_FEATURES, negotiated_features,
		    v->u);
		break;
	case VH_VDPA_ATTR_DEV_NET_CFG_MAX_VQP:
		SET(o, VH_VDPA_FIELD_MAX_VQ_PAIRS, max_vq_pairs,
		    (uint16_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_QUEUE_INDEX:
		SET(o, VH_VDPA_FIELD_QUEUE_INDEX, queue_index, (uint32_t)v->u);
		break;
	case VH_VDPA_ATTR_DEV_VENDOR_ATTR_NAME:
		/* pairs: NAME then VALUE, repeated */
		if (st->have_name) {
			vh_err(ctx, "vdpa: vendor stat name without a value\n");
			return -EBADMSG;
		}
		if (o->nstats >= VDPA_MAX_VSTATS)
			return -E2BIG;
		if (o->nstats == st->cap) {
			st->cap = st->cap ? 2 * st->cap : 16;
			n = realloc(o->stats, st->cap * sizeof(*n));
			if (!n)
				return -ENOMEM;
			o->stats = n;
		}
		ret = copy_name(ctx, o->stats[o->nstats].name, v->str, v->type);
		if (ret < 0)
			return ret;
		o->stats[o->nstats].value = 0;
		st->have_name = true;
		break;
	case VH_VDPA_ATTR_DEV_VENDOR_ATTR_VALUE:
		if (!st->have_name) {
			vh_err(ctx, "vdpa: vendor stat value without a name\n");
			return -EBADMSG;
		}
		o->stats[o->nstats++].value = v->u;
		st->have_name = false;
		break;
	}
	return 0;
}

int vh_vdpa_parse_vstats(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			 struct vh_vdpa_vstats **out)
{
	struct vstats_state st = { 0 };
	int ret;

	st.s = calloc(1, sizeof(*st.s));
	if (!st.s)
		return -ENOMEM;
	ret = walk_attrs(ctx, nlh, vdpa_rules, VH_ARRAY_SIZE(vdpa_rules),
			 vstats_attr, &st);
	if (ret == 0 && st.have_name) {
		vh_err(ctx, "vdpa: vendor stat name without a value\n");
		ret = -EBADMSG;
	}
	if (ret < 0) {
		vh_vdpa_vstats_free(st.s);
		return ret;
	}
	*out = st.s;
	return 0;
}

static const struct attr_rule ctrl_rules[CTRL_ATTR_FAMILY_NAME + 1] = {
	[CTRL_ATTR_FAMILY_ID] = { MNL_TYPE_U16, 0 },
	[CTRL_ATTR_FAMILY_NAME] = { MNL_TYPE_NUL_STRING, 0 },
};

struct family_state {
	int id;
	bool name_ok;
};

static int family_attr(struct vh_ctx *ctx, const struct attr_val *v, void *data)
{
	struct family_state *f = data;

	if (v->type == CTRL_ATTR_FAMILY_ID)
		f->id = (int)v->u;
	else if (v->type == CTRL_ATTR_FAMILY_NAME)
		f->name_ok = !strcmp(v->str, VH_VDPA_GENL_NAME);
	return 0;
}

int vh_vdpa_parse_family(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			 uint16_t *family)
{
	struct family_state f = { .id = -1 };
	int ret;

	ret = walk_attrs(ctx, nlh, ctrl_rules, VH_ARRAY_SIZE(ctrl_rules),
			 family_attr, &f);
	if (ret < 0)
		return ret;
	/* ids below NLMSG_MIN_TYPE are netlink control messages */
	if (f.id < NLMSG_MIN_TYPE || !f.name_ok) {
		vh_err(ctx, "vdpa: bad CTRL_CMD_NEWFAMILY reply\n");
		return -EBADMSG;
	}
	*family = (uint16_t)f.id;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Requests                                                            */
/* ------------------------------------------------------------------ */

static struct nlmsghdr *put_request(struct vh_vdpa_mgmt *m, void *buf,
				    uint16_t type, uint8_t cmd, uint8_t version,
				    uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	nlh->nlmsg_seq = ++m->seq;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = version;
	return nlh;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * recv() one datagram from the kernel (port 0) only, into buf (size bytes,
 * VDPA_NL_RECV_SIZE at most), waiting at most timeout_ms for it: the length,
 * -ETIMEDOUT, -EMSGSIZE (truncated) or -errno.  The kernel answers a request
 * within its sendmsg() and makes a dump's next part as we read, so nothing
 * to read for long is a kernel (or a sender on our port) we do not wait for.
 */
ssize_t vh_vdpa_nl_recv(struct vh_ctx *ctx, int fd, void *buf, size_t size,
			int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	struct sockaddr_nl addr;
	struct iovec iov = { buf, size };
	struct msghdr msg = {
		.msg_name = &addr,
		.msg_namelen = sizeof(addr),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int64_t left;
	ssize_t n;

	for (;;) {
		n = recvmsg(fd, &msg, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			left = deadline - now_ms();
			if (left <= 0)
				return -ETIMEDOUT;
			if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
				return -errno;
			continue;
		}
		if (n < 0)
			return -errno;
		/* another sender first: its size is no error of the kernel's */
		if (msg.msg_namelen != sizeof(addr) || addr.nl_pid != 0) {
			vh_warn(ctx, "vdpa: dropping a datagram from port %u\n",
				addr.nl_pid);
			msg.msg_namelen = sizeof(addr);
			msg.msg_flags = 0;
			/* a flood of them ends by the deadline too */
			if (now_ms() >= deadline)
				return -ETIMEDOUT;
			continue;
		}
		if (msg.msg_flags & MSG_TRUNC)
			return -EMSGSIZE;
		return n;
	}
}

static int nl_request(struct vh_vdpa_mgmt *m, const struct nlmsghdr *nlh,
		      uint16_t family, vh_vdpa_nl_cb cb, void *data,
		      const char *what)
{
	struct nl_req req = {
		.seq = nlh->nlmsg_seq,
		.portid = m->portid,
		.family = family,
		.cb = cb,
		.data = data,
	};
	ssize_t n;
	int ret;

	m->errmsg[0] = '\0';
	if (mnl_socket_sendto(m->nl, nlh, nlh->nlmsg_len) < 0) {
		ret = -errno;
		vh_err(m->ctx, "vdpa: %s: send: %s\n", what, strerror(-ret));
		return ret;
	}
	do {
		n = vh_vdpa_nl_recv(m->ctx, mnl_socket_get_fd(m->nl), m->buf,
				    VDPA_NL_RECV_SIZE, VDPA_NL_TIMEOUT_MS);
		if (n < 0) {
			vh_err(m->ctx, "vdpa: %s: recv: %s\n", what,
			       strerror((int)-n));
			return (int)n;
		}
		ret = nl_walk(m->ctx, &req, m->buf, (size_t)n, m->errmsg,
			      sizeof(m->errmsg));
	} while (ret > 0);
	if (ret < 0) {
		if (m->errmsg[0])
			vh_err(m->ctx, "vdpa: %s: %s (kernel: %s)\n", what,
			       strerror(-ret), m->errmsg);
		else
			vh_err(m->ctx, "vdpa: %s: %s\n", what, strerror(-ret));
	}
	return ret;
}

static int family_cb(const struct nlmsghdr *nlh, void *data)
{
	struct vh_vdpa_mgmt *m = data;

	return vh_vdpa_parse_family(m->ctx, nlh, &m->family);
}

static int resolve_family(struct vh_vdpa_mgmt *m)
{
	char buf[VDPA_NL_SEND_SIZE] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	int ret;

	nlh = put_request(m, buf, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 1, 0);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, VH_VDPA_GENL_NAME);
	ret = nl_request(m, nlh, GENL_ID_CTRL, family_cb, m, "family lookup");
	if (ret == -ENOENT) {
		vh_err(m->ctx,
		       "no \"vdpa\" generic netlink family: is the vdpa module loaded?\n");
		return -ENODEV;
	}
	if (ret == 0 && m->family == 0)
		ret = -EBADMSG; /* ACK without the family */
	return ret;
}

VH_EXPORT int vh_vdpa_mgmt_new(struct vh_ctx *ctx, struct vh_vdpa_mgmt **mgmt)
{
	struct vh_vdpa_mgmt *m;
	int one = 1;
	int ret;

	if (!ctx || !mgmt)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->refcount = 1;
	m->ctx = vh_ctx_ref(ctx);
	m->buf = malloc(VDPA_NL_RECV_SIZE);
	if (!m->buf) {
		ret = -ENOMEM;
		goto fail;
	}
	m->nl = mnl_socket_open2(NETLINK_GENERIC, SOCK_CLOEXEC);
	if (!m->nl) {
		ret = -errno;
		vh_err(ctx, "vdpa: netlink socket: %s\n", strerror(errno));
		goto fail;
	}
	/* the kernel's reason comes back with the error (netlink(7)) */
	if (mnl_socket_setsockopt(m->nl, NETLINK_EXT_ACK, &one, sizeof(one)))
		vh_dbg(ctx, "vdpa: no NETLINK_EXT_ACK: %s\n", strerror(errno));
	/* we do not need our request echoed in errors */
	if (mnl_socket_setsockopt(m->nl, NETLINK_CAP_ACK, &one, sizeof(one)))
		vh_dbg(ctx, "vdpa: no NETLINK_CAP_ACK: %s\n", strerror(errno));
	if (mnl_socket_bind(m->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		ret = -errno;
		vh_err(ctx, "vdpa: netlink bind: %s\n", strerror(errno));
		goto fail;
	}
	m->portid = mnl_socket_get_portid(m->nl);
	m->seq = (uint32_t)getpid() << 8;
	ret = resolve_family(m);
	if (ret < 0)
		goto fail;
	vh_dbg(ctx, "vdpa: generic netlink family %u\n", m->family);
	*mgmt = m;
	return 0;
fail:
	vh_vdpa_mgmt_unref(m);
	return ret;
}

VH_EXPORT struct vh_vdpa_mgmt *vh_vdpa_mgmt_ref(struct vh_vdpa_mgmt *mgmt)
{
	if (mgmt)
		mgmt->refcount++;
	return mgmt;
}

VH_EXPORT struct vh_vdpa_mgmt *vh_vdpa_mgmt_unref(struct vh_vdpa_mgmt *mgmt)
{
	if (!mgmt)
		return NULL;
	if (--mgmt->refcount > 0)
		return mgmt;
	if (mgmt->nl)
		mnl_socket_close(mgmt->nl);
	free(mgmt->buf);
	vh_ctx_unref(mgmt->ctx);
	free(mgmt);
	return NULL;
}

VH_EXPORT int vh_vdpa_mgmt_get_family(const struct vh_vdpa_mgmt *mgmt)
{
	return mgmt ? mgmt->family : -EINVAL;
}

VH_EXPORT const char *vh_vdpa_mgmt_last_error(const struct vh_vdpa_mgmt *mgmt)
{
	return mgmt ? mgmt->errmsg : "";
}

static int check_name(struct vh_ctx *ctx, const char *name, const char *what)
{
	size_t n;

	if (!name || !*name) {
		vh_err(ctx, "vdpa: %s name missing\n", what);
		return -EINVAL;
	}
	n = strlen(name);
	if (n >= VH_VDPA_NAME_MAX) {
		vh_err(ctx, "vdpa: %s name too long (%zu)\n", what, n);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* A growable array for dumps. */
struct dump_state {
	struct vh_ctx *ctx;
	void *items;
	size_t n, cap, size;
	int (*parse)(struct vh_ctx *ctx, const struct nlmsghdr *nlh, void *out);
};

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_state *d = data;
	int ret;

	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 8;
		void *p = reallocarray(d->items, cap, d->size);

		if (!p)
			return -ENOMEM;
		d->items = p;
		d->cap = cap;
	}
	ret = d->parse(d->ctx, nlh, (char *)d->items + d->n * d->size);
	if (ret < 0)
		return ret;
	d->n++;
	return 0;
}

static int parse_mgmtdev_any(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			     void *out)
{
	return vh_vdpa_parse_mgmtdev(ctx, nlh, out);
}

static int parse_dev_any(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			 void *out)
{
	return vh_vdpa_parse_dev(ctx, nlh, out);
}

static int dump(struct vh_vdpa_mgmt *m, uint8_t cmd, struct dump_state *d,
		const char *what)
{
	char buf[VDPA_NL_SEND_SIZE] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	int ret;

	nlh = put_request(m, buf, m->family, cmd, VH_VDPA_GENL_VERSION,
			  NLM_F_DUMP);
	ret = nl_request(m, nlh, m->family, dump_cb, d, what);
	if (ret < 0) {
		free(d->items);
		d->items = NULL;
	}
	return ret;
}

VH_EXPORT int vh_vdpa_mgmt_list_mgmtdevs(struct vh_vdpa_mgmt *mgmt,
					 struct vh_vdpa_mgmtdev_info **list,
					 size_t *n)
{
	struct dump_state d = { 0 };
	int ret;

	if (!mgmt || !list || !n)
		return -EINVAL;
	d.ctx = mgmt->ctx;
	d.size = sizeof(struct vh_vdpa_mgmtdev_info);
	d.parse = parse_mgmtdev_any;
	ret = dump(mgmt, VH_VDPA_CMD_MGMTDEV_GET, &d, "mgmtdev dump");
	if (ret < 0)
		return ret;
	*list = d.items;
	*n = d.n;
	return 0;
}

VH_EXPORT int vh_vdpa_mgmt_list_devs(struct vh_vdpa_mgmt *mgmt,
				     struct vh_vdpa_dev_info **list, size_t *n)
{
	struct dump_state d = { 0 };
	int ret;

	if (!mgmt || !list || !n)
		return -EINVAL;
	d.ctx = mgmt->ctx;
	d.size = sizeof(struct vh_vdpa_dev_info);
	d.parse = parse_dev_any;
	ret = dump(mgmt, VH_VDPA_CMD_DEV_GET, &d, "dev dump");
	if (ret < 0)
		return ret;
	*list = d.items;
	*n = d.n;
	return 0;
}

/* The layout of the first release (HACKING, "Extensible structs"). */
#define DEV_NEW_SIZE_1 VH_SIZEOF_UNTIL(struct vh_vdpa_dev_new, device_features)

VH_EXPORT int vh_vdpa_mgmt_dev_add(struct vh_vdpa_mgmt *mgmt,
				   const struct vh_vdpa_dev_new *params)
{
	char buf[VDPA_NL_SEND_SIZE] __attribute__((aligned(8)));
	const struct vh_vdpa_dev_new *p;
	struct vh_vdpa_dev_new c;
	struct nlmsghdr *nlh;
	int ret;

	if (!mgmt || !params)
		return -EINVAL;
	/* the application's layout may be older or newer than ours */
	ret = vh_copy_struct(&c, sizeof(c), DEV_NEW_SIZE_1, params);
	if (ret < 0)
		return ret;
	p = &c;
	if ((ret = check_name(mgmt->ctx, p->name, "device")) < 0 ||
	    (ret = check_name(mgmt->ctx, p->mgmtdev, "management device")) < 0)
		return ret;
	if (p->mgmtdev_bus &&
	    (ret = check_name(mgmt->ctx, p->mgmtdev_bus, "bus")) < 0)
		return ret;
	if (p->set & ~(VH_VDPA_NEW_MAC | VH_VDPA_NEW_MTU |
		       VH_VDPA_NEW_MAX_VQ_PAIRS | VH_VDPA_NEW_FEATURES))
		return -EINVAL;
	nlh = put_request(mgmt, buf, mgmt->family, VH_VDPA_CMD_DEV_NEW,
			  VH_VDPA_GENL_VERSION, 0);
	if (p->mgmtdev_bus)
		mnl_attr_put_strz(nlh, VH_VDPA_ATTR_MGMTDEV_BUS_NAME,
				  p->mgmtdev_bus);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_MGMTDEV_DEV_NAME, p->mgmtdev);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, p->name);
	if (p->set & VH_VDPA_NEW_MAC)
		mnl_attr_put(nlh, VH_VDPA_ATTR_DEV_NET_CFG_MACADDR,
			     sizeof(p->mac), p->mac);
	if (p->set & VH_VDPA_NEW_MTU)
		mnl_attr_put_u16(nlh, VH_VDPA_ATTR_DEV_NET_CFG_MTU, p->mtu);
	if (p->set & VH_VDPA_NEW_MAX_VQ_PAIRS)
		mnl_attr_put_u16(nlh, VH_VDPA_ATTR_DEV_NET_CFG_MAX_VQP,
				 p->max_vq_pairs);
	if (p->set & VH_VDPA_NEW_FEATURES)
		mnl_attr_put_u64(nlh, VH_VDPA_ATTR_DEV_FEATURES,
				 p->device_features);
	ret = nl_request(mgmt, nlh, mgmt->family, NULL, NULL, "dev add");
	if (ret == 0)
		vh_info(mgmt->ctx, "vdpa: added %s on %s\n", p->name,
			p->mgmtdev);
	return ret;
}

VH_EXPORT int vh_vdpa_mgmt_dev_del(struct vh_vdpa_mgmt *mgmt, const char *name)
{
	char buf[VDPA_NL_SEND_SIZE] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	int ret;

	if (!mgmt)
		return -EINVAL;
	ret = check_name(mgmt->ctx, name, "device");
	if (ret < 0)
		return ret;
	nlh = put_request(mgmt, buf, mgmt->family, VH_VDPA_CMD_DEV_DEL,
			  VH_VDPA_GENL_VERSION, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, name);
	ret = nl_request(mgmt, nlh, mgmt->family, NULL, NULL, "dev del");
	if (ret == 0)
		vh_info(mgmt->ctx, "vdpa: deleted %s\n", name);
	return ret;
}

VH_EXPORT int vh_vdpa_mgmt_dev_set_mac(struct vh_vdpa_mgmt *mgmt,
				       const char *name, const uint8_t mac[6])
{
	char buf[VDPA_NL_SEND_SIZE] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	int ret;

	if (!mgmt || !mac)
		return -EINVAL;
	ret = check_name(mgmt->ctx, name, "device");
	if (ret < 0)
		return ret;
	nlh = put_request(mgmt, buf, mgmt->family, VH_VDPA_CMD_DEV_ATTR_SET,
			  VH_VDPA_GENL_VERSION, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, name);
	mnl_attr_put(nlh, VH_VDPA_ATTR_DEV_NET_CFG_MACADDR, 6, mac);
	return nl_request(mgmt, nlh, mgmt->family, NULL, NULL, "dev set");
}

/* A doit request answered by exactly one message. */
struct one_state {
	struct vh_ctx *ctx;
	void *out;
	int got;
	int (*parse)(struct vh_ctx *ctx, const struct nlmsghdr *nlh, void *out);
};

static int one_cb(const struct nlmsghdr *nlh, void *data)
{
	struct one_state *o = data;

	if (o->got++) {
		vh_err(o->ctx, "vdpa: more than one reply\n");
		return -EBADMSG;
	}
	return o->parse(o->ctx, nlh, o->out);
}

static int get_one(struct vh_vdpa_mgmt *m, uint8_t cmd, const char *name,
		   const uint32_t *queue, struct one_state *o, const char *what)
{
	char buf[VDPA_NL_SEND_SIZE] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	int ret;

	ret = check_name(m->ctx, name, "device");
	if (ret < 0)
		return ret;
	nlh = put_request(m, buf, m->family, cmd, VH_VDPA_GENL_VERSION, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, name);
	if (queue)
		mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_QUEUE_INDEX, *queue);
	o->ctx = m->ctx;
	ret = nl_request(m, nlh, m->family, one_cb, o, what);
	if (ret == 0 && !o->got) {
		vh_err(m->ctx, "vdpa: %s: ACK without a reply\n", what);
		ret = -EBADMSG;
	}
	return ret;
}

static int parse_config_any(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			    void *out)
{
	return vh_vdpa_parse_config(ctx, nlh, out);
}

static int parse_vstats_any(struct vh_ctx *ctx, const struct nlmsghdr *nlh,
			    void *out)
{
	return vh_vdpa_parse_vstats(ctx, nlh, out);
}

VH_EXPORT int vh_vdpa_mgmt_dev_get(struct vh_vdpa_mgmt *mgmt, const char *name,
				   struct vh_vdpa_dev_info *info)
{
	struct vh_vdpa_dev_info tmp = { 0 };
	struct one_state o = { .out = &tmp, .parse = parse_dev_any };
	int ret;

	if (!mgmt || !info)
		return -EINVAL;
	ret = get_one(mgmt, VH_VDPA_CMD_DEV_GET, name, NULL, &o, "dev get");
	if (ret == 0)
		*info = tmp;
	return ret;
}

VH_EXPORT int vh_vdpa_mgmt_dev_config_get(struct vh_vdpa_mgmt *mgmt,
					  const char *name,
					  struct vh_vdpa_dev_config *cfg)
{
	struct vh_vdpa_dev_config tmp = { 0 };
	struct one_state o = { .out = &tmp, .parse = parse_config_any };
	int ret;

	if (!mgmt || !cfg)
		return -EINVAL;
	ret = get_one(mgmt, VH_VDPA_CMD_DEV_CONFIG_GET, name, NULL, &o,
		      "dev config get");
	if (ret == 0)
		*cfg = tmp;
	return ret;
}

VH_EXPORT int vh_vdpa_mgmt_dev_vstats_get(struct vh_vdpa_mgmt *mgmt,
					  const char *name, uint32_t queue,
					  struct vh_vdpa_vstats **stats)
{
	struct vh_vdpa_vstats *s = NULL;
	struct one_state o = { .out = &s, .parse = parse_vstats_any };
	int ret;

	if (!mgmt || !stats)
		return -EINVAL;
	ret = get_one(mgmt, VH_VDPA_CMD_DEV_VSTATS_GET, name, &queue, &o,
		      "dev vstats get");
	if (ret < 0) {
		vh_vdpa_vstats_free(s);
		return ret;
	}
	*stats = s;
	return 0;
}

#endif /* HAVE_LIBMNL */
