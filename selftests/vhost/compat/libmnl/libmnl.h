/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The part of libmnl's API that libvhost's vDPA netlink code
 * (libvhost/vdpa-mgmt.c) uses, written for the selftests' build so that the
 * installed programs need no libmnl on the device under test (Debian ships
 * no static libmnl).  Same names, types and semantics as libmnl 1.0.4: the
 * helpers do no more and no less checking than libmnl's, and the library
 * code above them checks everything that comes from the kernel.  Only
 * libvhost's own build links the real libmnl.
 */
#ifndef _VH_COMPAT_LIBMNL_H_
#define _VH_COMPAT_LIBMNL_H_

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define MNL_ALIGNTO 4
#define MNL_ALIGN(len) (((len) + MNL_ALIGNTO - 1) & ~(MNL_ALIGNTO - 1))
#define MNL_NLMSG_HDRLEN MNL_ALIGN(sizeof(struct nlmsghdr))
#define MNL_ATTR_HDRLEN MNL_ALIGN(sizeof(struct nlattr))
#define MNL_SOCKET_AUTOPID 0

enum mnl_attr_data_type {
	MNL_TYPE_UNSPEC,
	MNL_TYPE_U8,
	MNL_TYPE_U16,
	MNL_TYPE_U32,
	MNL_TYPE_U64,
	MNL_TYPE_STRING,
	MNL_TYPE_FLAG,
	MNL_TYPE_MSECS,
	MNL_TYPE_NESTED,
	MNL_TYPE_NESTED_COMPAT,
	MNL_TYPE_NUL_STRING,
	MNL_TYPE_BINARY,
	MNL_TYPE_MAX,
};

struct mnl_socket {
	int fd;
	struct sockaddr_nl addr;
};

/* ------------------------------------------------------------ messages */

static inline struct nlmsghdr *mnl_nlmsg_put_header(void *buf)
{
	struct nlmsghdr *nlh = buf;

	memset(buf, 0, MNL_NLMSG_HDRLEN);
	nlh->nlmsg_len = MNL_NLMSG_HDRLEN;
	return nlh;
}

static inline void *mnl_nlmsg_put_extra_header(struct nlmsghdr *nlh,
					       size_t size)
{
	char *p = (char *)nlh + nlh->nlmsg_len;

	nlh->nlmsg_len += MNL_ALIGN(size);
	memset(p, 0, MNL_ALIGN(size));
	return p;
}

static inline void *mnl_nlmsg_get_payload(const struct nlmsghdr *nlh)
{
	return (char *)nlh + MNL_NLMSG_HDRLEN;
}

static inline size_t mnl_nlmsg_get_payload_len(const struct nlmsghdr *nlh)
{
	return nlh->nlmsg_len - MNL_NLMSG_HDRLEN;
}

static inline void *mnl_nlmsg_get_payload_offset(const struct nlmsghdr *nlh,
						 size_t offset)
{
	return (char *)nlh + MNL_NLMSG_HDRLEN + MNL_ALIGN(offset);
}

/* A whole header in len bytes, and a length that fits in them. */
static inline bool mnl_nlmsg_ok(const struct nlmsghdr *nlh, int len)
{
	return len >= (int)sizeof(struct nlmsghdr) &&
	       nlh->nlmsg_len >= sizeof(struct nlmsghdr) &&
	       (int)nlh->nlmsg_len <= len;
}

/* ---------------------------------------------------------- attributes */

static inline uint16_t mnl_attr_get_type(const struct nlattr *attr)
{
	return attr->nla_type & NLA_TYPE_MASK;
}

static inline uint16_t mnl_attr_get_payload_len(const struct nlattr *attr)
{
	return attr->nla_len - MNL_ATTR_HDRLEN;
}

static inline void *mnl_attr_get_payload(const struct nlattr *attr)
{
	return (char *)attr + MNL_ATTR_HDRLEN;
}

static inline bool mnl_attr_ok(const struct nlattr *attr, int len)
{
	return len >= (int)sizeof(struct nlattr) &&
	       attr->nla_len >= sizeof(struct nlattr) &&
	       (int)attr->nla_len <= len;
}

static inline struct nlattr *mnl_attr_next(const struct nlattr *attr)
{
	return (struct nlattr *)((char *)attr + MNL_ALIGN(attr->nla_len));
}

/* Payload checks by type; exp_len 0: no fixed size.  -1 with errno set. */
static inline int mnl__attr_validate(const struct nlattr *attr,
				     enum mnl_attr_data_type type,
				     size_t exp_len)
{
	uint16_t len = mnl_attr_get_payload_len(attr);
	const char *p = mnl_attr_get_payload(attr);

	if (len < exp_len) {
		errno = ERANGE;
		return -1;
	}
	switch (type) {
	case MNL_TYPE_FLAG:
		if (len > 0) {
			errno = ERANGE;
			return -1;
		}
		break;
	case MNL_TYPE_NUL_STRING:
		if (len == 0) {
			errno = ERANGE;
			return -1;
		}
		if (p[len - 1] != '\0') {
			errno = EINVAL;
			return -1;
		}
		break;
	case MNL_TYPE_STRING:
		if (len == 0) {
			errno = ERANGE;
			return -1;
		}
		break;
	case MNL_TYPE_NESTED:
		if (len != 0 && len < MNL_ATTR_HDRLEN) {
			errno = ERANGE;
			return -1;
		}
		break;
	default:
		break;
	}
	if (exp_len && len > exp_len) {
		errno = ERANGE;
		return -1;
	}
	return 0;
}

static inline int mnl_attr_validate(const struct nlattr *attr,
				    enum mnl_attr_data_type type)
{
	size_t exp_len;

	switch (type) {
	case MNL_TYPE_U8:
		exp_len = sizeof(uint8_t);
		break;
	case MNL_TYPE_U16:
		exp_len = sizeof(uint16_t);
		break;
	case MNL_TYPE_U32:
		exp_len = sizeof(uint32_t);
		break;
	case MNL_TYPE_U64:
	case MNL_TYPE_MSECS:
		exp_len = sizeof(uint64_t);
		break;
	default:
		if (type >= MNL_TYPE_MAX) {
			errno = EINVAL;
			return -1;
		}
		exp_len = 0;
		break;
	}
	return mnl__attr_validate(attr, type, exp_len);
}

static inline int mnl_attr_validate2(const struct nlattr *attr,
				     enum mnl_attr_data_type type,
				     size_t exp_len)
{
	if (type >= MNL_TYPE_MAX) {
		errno = EINVAL;
		return -1;
	}
	return mnl__attr_validate(attr, type, exp_len);
}

static inline uint8_t mnl_attr_get_u8(const struct nlattr *attr)
{
	return *(const uint8_t *)mnl_attr_get_payload(attr);
}

static inline uint16_t mnl_attr_get_u16(const struct nlattr *attr)
{
	uint16_t v;

	memcpy(&v, mnl_attr_get_payload(attr), sizeof(v));
	return v;
}

static inline uint32_t mnl_attr_get_u32(const struct nlattr *attr)
{
	uint32_t v;

	memcpy(&v, mnl_attr_get_payload(attr), sizeof(v));
	return v;
}

/* 64-bit payloads are only 4-byte aligned in a netlink message. */
static inline uint64_t mnl_attr_get_u64(const struct nlattr *attr)
{
	uint64_t v;

	memcpy(&v, mnl_attr_get_payload(attr), sizeof(v));
	return v;
}

static inline const char *mnl_attr_get_str(const struct nlattr *attr)
{
	return mnl_attr_get_payload(attr);
}

/* Append an attribute at the message's (aligned) tail; like libmnl, the
 * caller sized the buffer for what it puts. */
static inline void mnl_attr_put(struct nlmsghdr *nlh, uint16_t type,
				size_t len, const void *data)
{
	struct nlattr *attr =
		(struct nlattr *)((char *)nlh + MNL_ALIGN(nlh->nlmsg_len));
	uint16_t payload_len = MNL_ATTR_HDRLEN + len;
	size_t pad = MNL_ALIGN(len) - len;

	attr->nla_type = type;
	attr->nla_len = payload_len;
	memcpy(mnl_attr_get_payload(attr), data, len);
	if (pad)
		memset((char *)mnl_attr_get_payload(attr) + len, 0, pad);
	nlh->nlmsg_len += MNL_ALIGN(payload_len);
}

static inline void mnl_attr_put_u16(struct nlmsghdr *nlh, uint16_t type,
				    uint16_t data)
{
	mnl_attr_put(nlh, type, sizeof(data), &data);
}

static inline void mnl_attr_put_u32(struct nlmsghdr *nlh, uint16_t type,
				    uint32_t data)
{
	mnl_attr_put(nlh, type, sizeof(data), &data);
}

static inline void mnl_attr_put_u64(struct nlmsghdr *nlh, uint16_t type,
				    uint64_t data)
{
	mnl_attr_put(nlh, type, sizeof(data), &data);
}

static inline void mnl_attr_put_strz(struct nlmsghdr *nlh, uint16_t type,
				     const char *data)
{
	mnl_attr_put(nlh, type, strlen(data) + 1, data);
}

/* -------------------------------------------------------------- sockets */

static inline struct mnl_socket *mnl_socket_open2(int bus, int flags)
{
	struct mnl_socket *nl = calloc(1, sizeof(*nl));

	if (!nl)
		return NULL;
	nl->fd = socket(AF_NETLINK, SOCK_RAW | flags, bus);
	if (nl->fd < 0) {
		free(nl);
		return NULL;
	}
	return nl;
}

static inline int mnl_socket_get_fd(const struct mnl_socket *nl)
{
	return nl->fd;
}

static inline unsigned int mnl_socket_get_portid(const struct mnl_socket *nl)
{
	return nl->addr.nl_pid;
}

/* Bind, then learn the port id the kernel gave us (pid 0: autobind). */
static inline int mnl_socket_bind(struct mnl_socket *nl, unsigned int groups,
				  pid_t pid)
{
	socklen_t alen = sizeof(nl->addr);

	memset(&nl->addr, 0, sizeof(nl->addr));
	nl->addr.nl_family = AF_NETLINK;
	nl->addr.nl_groups = groups;
	nl->addr.nl_pid = pid;
	if (bind(nl->fd, (struct sockaddr *)&nl->addr, sizeof(nl->addr)) < 0)
		return -1;
	if (getsockname(nl->fd, (struct sockaddr *)&nl->addr, &alen) < 0)
		return -1;
	if (alen != sizeof(nl->addr) || nl->addr.nl_family != AF_NETLINK) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

static inline ssize_t mnl_socket_sendto(const struct mnl_socket *nl,
					const void *buf, size_t len)
{
	static const struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };

	return sendto(nl->fd, buf, len, 0, (const struct sockaddr *)&kernel,
		      sizeof(kernel));
}

static inline int mnl_socket_setsockopt(const struct mnl_socket *nl, int type,
					void *buf, socklen_t len)
{
	return setsockopt(nl->fd, SOL_NETLINK, type, buf, len);
}

static inline int mnl_socket_close(struct mnl_socket *nl)
{
	int ret = close(nl->fd);

	free(nl);
	return ret;
}

#endif
