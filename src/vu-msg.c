// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user wire layer: the message rule table, message I/O over an
 * AF_UNIX stream socket with SCM_RIGHTS, shared by both sides.
 *
 * Every peer is hostile: a header is checked before its payload is read,
 * fds beyond what fits are never installed in us (MSG_CTRUNC) and every fd
 * that did arrive is closed on every error path.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "libvhost-internal.h"
#include "vu-msg.h"

/* The payload structs are the wire format: their sizes are the spec's. */
_Static_assert(sizeof(struct vh_vu_hdr) == VH_VU_HDR_SIZE, "hdr");
_Static_assert(sizeof(struct vh_vu_vring_state) == 8, "vring state");
_Static_assert(sizeof(struct vh_vu_vring_addr) == 40, "vring addr");
_Static_assert(sizeof(struct vh_vu_mem_region) == 32, "mem region");
_Static_assert(sizeof(struct vh_vu_mem_table) == 8 + 8 * 32, "mem table");
_Static_assert(sizeof(struct vh_vu_mem_single) == 40, "mem single");
_Static_assert(sizeof(struct vh_vu_log) == 16, "log");
_Static_assert(sizeof(struct vh_vu_iotlb) == 32, "iotlb");
_Static_assert(sizeof(struct vh_vu_config) == 12 + 256, "config");
_Static_assert(sizeof(struct vh_vu_vring_area) == 24, "vring area");
_Static_assert(sizeof(struct vh_vu_inflight) == 24, "inflight");
_Static_assert(sizeof(struct vh_vu_shared) == 16, "shared");
_Static_assert(sizeof(struct vh_vu_device_state) == 8, "device state");
_Static_assert(sizeof(union vh_vu_payload) == VH_VU_PAYLOAD_MAX, "payload");
_Static_assert(VH_VU_PAYLOAD_MAX <= UINT16_MAX, "size_rule fits u16");

/* ------------------------------------------------------------------------ */
/* payload checkers (VH_VU_SIZE_CHECK)                                      */
/* ------------------------------------------------------------------------ */

/* "Multiple Memory regions description": size follows the region count. */
static int check_mem_table(const struct vh_vu_msg *msg)
{
	uint32_t n = msg->payload.mem.nregions;

	if (n > VH_VU_MAX_MEM_REGIONS)
		return -EBADMSG;
	if (msg->hdr.size != 8 + n * sizeof(struct vh_vu_mem_region))
		return -EBADMSG;
	return 0;
}

/* "Virtio device config space": at most 256 bytes, all of them present. */
static int check_config(const struct vh_vu_msg *msg)
{
	const struct vh_vu_config *c = &msg->payload.config;

	if (c->size > VH_VU_MAX_CONFIG_SIZE ||
	    msg->hdr.size != VH_VU_CONFIG_HDR_SIZE + c->size)
		return -EBADMSG;
	if (c->offset > VH_VU_MAX_CONFIG_SIZE ||
	    c->size > VH_VU_MAX_CONFIG_SIZE - c->offset)
		return -EBADMSG;
	return 0;
}

/* GET_CONFIG reply: "zero length of payload to indicate an error". */
static int check_config_reply(const struct vh_vu_msg *msg)
{
	return msg->hdr.size == 0 ? 0 : check_config(msg);
}

/* KICK/CALL/ERR: bits 0-7 index, bit 8 NOFD, nothing else defined. */
static int check_vring_file(const struct vh_vu_msg *msg)
{
	return (msg->payload.u64 & ~(uint64_t)(VH_VU_VRING_IDX_MASK |
					       VH_VU_VRING_NOFD)) ?
		       -EBADMSG :
		       0;
}

/* VRING_HOST_NOTIFIER_MSG: the same index/NOFD layout in area.u64. */
static int check_vring_area(const struct vh_vu_msg *msg)
{
	return (msg->payload.area.u64 & ~(uint64_t)(VH_VU_VRING_IDX_MASK |
						    VH_VU_VRING_NOFD)) ?
		       -EBADMSG :
		       0;
}

/* VRING_KICK / backend VRING_CALL / VRING_ERR: "state.num ... must be 0". */
static int check_state_num_zero(const struct vh_vu_msg *msg)
{
	return msg->payload.state.num ? -EBADMSG : 0;
}

/* SET_VRING_ENDIAN: 0 little, 1 big, "other values are invalid". */
static int check_endian(const struct vh_vu_msg *msg)
{
	return msg->payload.state.num > 1 ? -EBADMSG : 0;
}

/* GET_INFLIGHT_FD reply: an fd must come with a non-empty area. */
static int check_inflight_reply(const struct vh_vu_msg *msg)
{
	bool has_area = msg->payload.inflight.mmap_size != 0;

	return has_area == (msg->nfds == 1) ? 0 : -EBADMSG;
}

/* SET_DEVICE_STATE_FD reply: "must not both indicate an error and return an fd". */
static int check_device_state_reply(const struct vh_vu_msg *msg)
{
	uint64_t v = msg->payload.u64;

	if (v & ~(uint64_t)(VH_VU_DEVICE_STATE_ERR_MASK |
			    VH_VU_DEVICE_STATE_NOFD))
		return -EBADMSG;
	if ((v & VH_VU_DEVICE_STATE_ERR_MASK) && !(v & VH_VU_DEVICE_STATE_NOFD))
		return -EBADMSG;
	return 0;
}

/* SET_LOG_BASE, POSTCOPY_ADVISE replies: empty (QEMU) or a u64 (DPDK). */
static int check_empty_or_u64(const struct vh_vu_msg *msg)
{
	return msg->hdr.size == 0 || msg->hdr.size == 8 ? 0 : -EBADMSG;
}

/* SHARED_OBJECT_LOOKUP reply: fd and 0 on success, no fd on failure. */
static int check_lookup_reply(const struct vh_vu_msg *msg)
{
	return (msg->payload.u64 == 0) == (msg->nfds == 1) ? 0 : -EBADMSG;
}

/* ------------------------------------------------------------------------ */
/* the tables                                                               */
/* ------------------------------------------------------------------------ */
#define SZ(n, f) { VH_VU_SIZE_EXACT, f, n, n, NULL }
#define RANGE(a, b, f) { VH_VU_SIZE_RANGE, f, a, b, NULL }
#define CHK(a, b, f, fn) { VH_VU_SIZE_CHECK, f, a, b, fn }
#define NONE() SZ(0, VH_VU_FDS_NONE)
#define U64() SZ(8, VH_VU_FDS_NONE)
#define STATE() SZ(8, VH_VU_FDS_NONE)
#define NOREP { 0 }

#define BE(id, gate, reply, req, rep)                                         \
	[VH_VU_BACKEND_##id] = { VH_VU_BACKEND_##id, #id, gate,               \
				 VH_VU_REPLY_##reply, req, rep }

#define P(f) VH_VU_PROTOCOL_F_##f
#define G_NONE VH_VU_GATE_NONE
#define G_F30 VH_VU_GATE_F_PROTOCOL
#define G_IOTLB VH_VU_GATE_F_ACCESS_PLATFORM

const struct vh_vu_msg_rule vh_vu_fe_rules[VH_VU_REQUEST_MAX] = {
/* not through FE(): req and rep are expanded (into braces) by now */
#define X(id, gate, reply, req, rep, handler)                                 \
	[VH_VU_##id] = { VH_VU_##id, #id, gate, VH_VU_REPLY_##reply, req, rep },
	VH_VU_REQUESTS(X)
#undef X
};

static const struct vh_vu_msg_rule be_rules[VH_VU_BACKEND_REQUEST_MAX] = {
	BE(IOTLB_MSG, VH_VU_GATE_F_ACCESS_PLATFORM, ACK,
	   SZ(sizeof(struct vh_vu_iotlb), VH_VU_FDS_NONE), NOREP),
	BE(CONFIG_CHANGE_MSG, P(CONFIG), ACK, NONE(), NOREP),
	BE(VRING_HOST_NOTIFIER_MSG, P(HOST_NOTIFIER), ACK,
	   CHK(24, 24, VH_VU_FDS_NOFD, check_vring_area), NOREP),
	BE(VRING_CALL, P(INBAND_NOTIFICATIONS), ACK,
	   CHK(8, 8, VH_VU_FDS_NONE, check_state_num_zero), NOREP),
	BE(VRING_ERR, P(INBAND_NOTIFICATIONS), ACK,
	   CHK(8, 8, VH_VU_FDS_NONE, check_state_num_zero), NOREP),
	BE(SHARED_OBJECT_ADD, P(SHARED_OBJECT), ACK,
	   SZ(sizeof(struct vh_vu_shared), VH_VU_FDS_NONE), NOREP),
	BE(SHARED_OBJECT_REMOVE, P(SHARED_OBJECT), ACK,
	   SZ(sizeof(struct vh_vu_shared), VH_VU_FDS_NONE), NOREP),
	BE(SHARED_OBJECT_LOOKUP, P(SHARED_OBJECT), ALWAYS,
	   SZ(sizeof(struct vh_vu_shared), VH_VU_FDS_NONE),
	   CHK(8, 8, VH_VU_FDS_OPTIONAL, check_lookup_reply)),
};

/* The reply to a REPLY_ACK (NEED_REPLY) request: a u64, 0 for success. */
static const struct vh_vu_size_rule ack_rule = U64();

const struct vh_vu_msg_rule *vh_vu_msg_rule(bool backend_to_frontend,
					    uint32_t request)
{
	const struct vh_vu_msg_rule *r;

	if (backend_to_frontend) {
		if (request >= VH_ARRAY_SIZE(be_rules))
			return NULL;
		r = &be_rules[request];
	} else {
		if (request >= VH_ARRAY_SIZE(vh_vu_fe_rules))
			return NULL;
		r = &vh_vu_fe_rules[request];
	}
	return r->name ? r : NULL;
}

const char *vh_vu_msg_name(bool backend_to_frontend, uint32_t request)
{
	const struct vh_vu_msg_rule *r =
		vh_vu_msg_rule(backend_to_frontend, request);

	return r ? r->name : "UNKNOWN";
}

VH_EXPORT const char *vh_vu_request_name(uint32_t request)
{
	const struct vh_vu_msg_rule *r = vh_vu_msg_rule(false, request);

	return r ? r->name : NULL;
}

VH_EXPORT const char *vh_vu_backend_request_name(uint32_t request)
{
	const struct vh_vu_msg_rule *r = vh_vu_msg_rule(true, request);

	return r ? r->name : NULL;
}

bool vh_vu_msg_gate_open(const struct vh_vu_msg_rule *rule, uint64_t features,
			 uint64_t protocol_features)
{
	switch (rule->gate) {
	case VH_VU_GATE_NONE:
		return true;
	case VH_VU_GATE_F_PROTOCOL:
		return features & (1ull << VH_VU_F_PROTOCOL_FEATURES);
	case VH_VU_GATE_F_ACCESS_PLATFORM:
		return features & (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM);
	default:
		if (rule->gate < 0 || rule->gate >= 64)
			return false;
		return protocol_features & (1ull << rule->gate);
	}
}

int vh_vu_msg_check(struct vh_ctx *ctx, const struct vh_vu_msg_rule *rule,
		    const struct vh_vu_msg *msg, bool reply)
{
	const struct vh_vu_size_rule *s = &rule->req;
	const char *what = reply ? "reply" : "request";
	uint32_t size = msg->hdr.size;
	unsigned int want_fds;

	if (reply)
		s = rule->reply == VH_VU_REPLY_ALWAYS ? &rule->rep : &ack_rule;

	if (size < s->size_min || size > s->size_max) {
		vh_err(ctx, "%s %s: payload of %u bytes, expected %u..%u\n",
		       rule->name, what, size, s->size_min, s->size_max);
		return -EBADMSG;
	}
	if (s->kind == VH_VU_SIZE_CHECK && s->check(msg) < 0) {
		vh_err(ctx, "%s %s: malformed payload\n", rule->name, what);
		return -EBADMSG;
	}

	switch (s->fds) {
	case VH_VU_FDS_NONE:
		want_fds = 0;
		break;
	case VH_VU_FDS_ONE:
		want_fds = 1;
		break;
	case VH_VU_FDS_NOFD:
		/* the leading u64 carries the NOFD bit (size checked >= 8) */
		want_fds = (msg->payload.u64 & VH_VU_VRING_NOFD) ? 0 : 1;
		break;
	case VH_VU_FDS_REGIONS:
		want_fds = msg->payload.mem.nregions;
		break;
	case VH_VU_FDS_OPTIONAL:
	default:
		if (msg->nfds > 1) {
			vh_err(ctx, "%s %s: %u fds, expected at most 1\n",
			       rule->name, what, msg->nfds);
			return -EBADMSG;
		}
		return 0;
	}
	if (msg->nfds != want_fds) {
		vh_err(ctx, "%s %s: %u fds, expected %u\n", rule->name, what,
		       msg->nfds, want_fds);
		return -EBADMSG;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* message I/O                                                              */
/* ------------------------------------------------------------------------ */
void vh_vu_msg_close_fds(struct vh_vu_msg *msg)
{
	unsigned int i;

	for (i = 0; i < msg->nfds && i < VH_VU_MAX_FDS; i++)
		if (msg->fds[i] >= 0)
			vh_close_peer_fd(msg->fds[i]);
	for (i = 0; i < VH_VU_MAX_FDS; i++)
		msg->fds[i] = -1;
	msg->nfds = 0;
}

void vh_vu_msg_init(struct vh_vu_msg *msg, uint32_t request, uint32_t size)
{
	unsigned int i;

	memset(&msg->hdr, 0, sizeof(msg->hdr));
	memset(&msg->payload, 0, size < sizeof(msg->payload) ?
					 size : sizeof(msg->payload));
	msg->hdr.request = request;
	msg->hdr.flags = VH_VU_VERSION;
	msg->hdr.size = size;
	msg->nfds = 0;
	for (i = 0; i < VH_VU_MAX_FDS; i++)
		msg->fds[i] = -1;
}

void vh_vu_msg_set_reply_u64(struct vh_vu_msg *msg, uint64_t value)
{
	msg->hdr.flags = VH_VU_VERSION | VH_VU_FLAG_REPLY;
	msg->hdr.size = sizeof(uint64_t);
	msg->payload.u64 = value;
	msg->nfds = 0;
}

int64_t vh_vu_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int vh_vu_wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int64_t left;
	int r;

	for (;;) {
		left = deadline - vh_vu_now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (r > 0)
			return (pfd.revents & (events | POLLHUP | POLLERR)) ?
				       0 :
				       -EIO;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/*
 * Take the fds out of a received control buffer into msg.  Anything but
 * SCM_RIGHTS, or more fds than fit, is a protocol error; every fd that
 * arrived is either kept in msg or closed.
 */
static int take_fds(struct vh_ctx *ctx, struct msghdr *mh,
		    struct vh_vu_msg *msg)
{
	struct cmsghdr *cm;
	int r = 0;

	if (mh->msg_flags & MSG_CTRUNC) {
		vh_err(ctx, "vhost-user: control data truncated (more than %u fds?)\n",
		       VH_VU_MAX_FDS);
		r = -EPROTO;
	}
	for (cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		size_t n, i;
		int fd;

		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_RIGHTS) {
			/* SCM_CREDENTIALS etc. carry no fds */
			vh_err(ctx, "vhost-user: unexpected control message %d/%d\n",
			       cm->cmsg_level, cm->cmsg_type);
			r = -EPROTO;
			continue;
		}
		if (cm->cmsg_len < CMSG_LEN(0))
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
			       sizeof(int));
			if (fd < 0)
				continue;
			if (msg->nfds >= VH_VU_MAX_FDS) {
				vh_close_peer_fd(fd);
				r = -EPROTO;
				continue;
			}
			msg->fds[msg->nfds++] = fd;
		}
	}
	return r;
}

void vh_vu_rx_init(struct vh_vu_rx *rx)
{
	unsigned int i;

	rx->msg.nfds = 0;
	for (i = 0; i < VH_VU_MAX_FDS; i++)
		rx->msg.fds[i] = -1;
	rx->got = 0;
	rx->started = 0;
}

void vh_vu_rx_reset(struct vh_vu_rx *rx)
{
	vh_vu_msg_close_fds(&rx->msg);
	vh_vu_rx_init(rx);
}

/* The header is all in: is it one we can read the payload of? */
static int check_hdr(struct vh_ctx *ctx, const struct vh_vu_hdr *hdr)
{
	/* "Lower 2 bits are the version (currently 0x01)" */
	if ((hdr->flags & VH_VU_FLAG_VERSION_MASK) != VH_VU_VERSION) {
		vh_err(ctx, "vhost-user: request %u: bad version %u\n",
		       hdr->request, hdr->flags & VH_VU_FLAG_VERSION_MASK);
		return -EPROTO;
	}
	if (hdr->size > VH_VU_PAYLOAD_MAX) {
		vh_err(ctx, "vhost-user: request %u: payload of %u bytes\n",
		       hdr->request, hdr->size);
		return -EPROTO;
	}
	return 0;
}

/*
 * The core of every receive: read the rest of the current message into rx,
 * never past its end (the next message's fds must stay in the socket).
 * block_first: the very first read may block (vh_vu_msg_recv() on a
 * blocking socket); every other read is MSG_DONTWAIT.
 */
static int rx_step(struct vh_ctx *ctx, int sock, struct vh_vu_rx *rx,
		   struct vh_vu_msg *out, bool block_first)
{
	union {
		char buf[CMSG_SPACE(VH_VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	uint32_t size = 0;
	int r;

	for (;;) {
		struct iovec iov;
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctl.buf,
			.msg_controllen = sizeof(ctl.buf),
		};
		ssize_t n;

		if (rx->got < VH_VU_HDR_SIZE) {
			iov.iov_base = (char *)&rx->msg.hdr + rx->got;
			iov.iov_len = VH_VU_HDR_SIZE - rx->got;
		} else {
			size = rx->msg.hdr.size; /* checked by check_hdr() */
			if (rx->got >= VH_VU_HDR_SIZE + size)
				break;
			iov.iov_base = rx->msg.payload.raw +
				       (rx->got - VH_VU_HDR_SIZE);
			iov.iov_len = VH_VU_HDR_SIZE + size - rx->got;
		}
		n = recvmsg(sock, &mh,
			    MSG_CMSG_CLOEXEC |
				    (block_first && !rx->got ? 0 :
							       MSG_DONTWAIT));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return -EAGAIN;
			r = -errno;
			goto err;
		}
		/* fds are taken even when the read also reports EOF */
		r = take_fds(ctx, &mh, &rx->msg);
		if (r < 0)
			goto err;
		if (n == 0) {
			if (!rx->got) {
				r = -ECONNRESET;
				goto err;
			}
			vh_err(ctx, "vhost-user: EOF in the middle of a message (%u bytes in)\n",
			       rx->got);
			r = -EPROTO;
			goto err;
		}
		if (!rx->got)
			rx->started = vh_vu_now_ms();
		rx->got += (uint32_t)n;
		if (rx->got == VH_VU_HDR_SIZE) {
			r = check_hdr(ctx, &rx->msg.hdr);
			if (r < 0)
				goto err;
		}
	}

	out->hdr = rx->msg.hdr;
	memcpy(out->payload.raw, rx->msg.payload.raw, size);
	/* what was not sent reads as zero: checkers may look at fixed fields */
	memset(out->payload.raw + size, 0, sizeof(out->payload) - size);
	memcpy(out->fds, rx->msg.fds, sizeof(out->fds));
	out->nfds = rx->msg.nfds;
	vh_vu_rx_init(rx); /* the fds moved to out */
	return 0;
err:
	vh_vu_rx_reset(rx);
	return r;
}

int vh_vu_rx_step(struct vh_ctx *ctx, int sock, struct vh_vu_rx *rx,
		  struct vh_vu_msg *out)
{
	return rx_step(ctx, sock, rx, out, false);
}

static void msg_no_fds(struct vh_vu_msg *msg)
{
	unsigned int i;

	msg->nfds = 0;
	for (i = 0; i < VH_VU_MAX_FDS; i++)
		msg->fds[i] = -1;
}

int vh_vu_msg_recv(struct vh_ctx *ctx, int sock, struct vh_vu_msg *msg)
{
	struct vh_vu_rx rx;
	int r;

	msg_no_fds(msg);
	vh_vu_rx_init(&rx);
	r = rx_step(ctx, sock, &rx, msg, true);
	while (r == -EAGAIN && rx.got) {
		/* started: the rest must follow in VH_VU_MSG_TIMEOUT_MS */
		r = vh_vu_wait_fd(sock, POLLIN,
				  rx.started + VH_VU_MSG_TIMEOUT_MS);
		if (r < 0) {
			vh_err(ctx, "vhost-user: message stalled after %u bytes: %s\n",
			       rx.got, strerror(-r));
			vh_vu_rx_reset(&rx);
			return r;
		}
		r = rx_step(ctx, sock, &rx, msg, false);
	}
	return r;
}

int vh_vu_msg_recv_until(struct vh_ctx *ctx, int sock, struct vh_vu_msg *msg,
			 int64_t deadline)
{
	struct vh_vu_rx rx;
	int r;

	msg_no_fds(msg);
	vh_vu_rx_init(&rx);
	for (;;) {
		r = rx_step(ctx, sock, &rx, msg, false);
		if (r != -EAGAIN)
			return r;
		r = vh_vu_wait_fd(sock, POLLIN, deadline);
		if (r < 0) {
			if (rx.got)
				vh_err(ctx, "vhost-user: message stalled after %u bytes: %s\n",
				       rx.got, strerror(-r));
			vh_vu_rx_reset(&rx);
			return r;
		}
	}
}

int vh_vu_msg_send(struct vh_ctx *ctx, int sock, const struct vh_vu_msg *msg)
{
	return vh_vu_msg_send_until(ctx, sock, msg,
				    vh_vu_now_ms() + VH_VU_MSG_TIMEOUT_MS);
}

int vh_vu_msg_send_until(struct vh_ctx *ctx, int sock,
			 const struct vh_vu_msg *msg, int64_t deadline)
{
	union {
		char buf[CMSG_SPACE(VH_VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov[2] = {
		{ (void *)&msg->hdr, sizeof(msg->hdr) },
		{ (void *)&msg->payload, msg->hdr.size },
	};
	struct iovec *cur = iov;
	int iovcnt = msg->hdr.size ? 2 : 1;
	bool fds_sent = msg->nfds == 0;

	if (msg->nfds > VH_VU_MAX_FDS || msg->hdr.size > VH_VU_PAYLOAD_MAX)
		return -EINVAL;

	memset(&ctl, 0, sizeof(ctl));
	while (iovcnt > 0) {
		struct msghdr mh = { .msg_iov = cur, .msg_iovlen = iovcnt };
		ssize_t n;

		if (!fds_sent) {
			struct cmsghdr *cm;

			mh.msg_control = ctl.buf;
			mh.msg_controllen = CMSG_SPACE(msg->nfds * sizeof(int));
			cm = CMSG_FIRSTHDR(&mh);
			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(msg->nfds * sizeof(int));
			memcpy(CMSG_DATA(cm), msg->fds,
			       msg->nfds * sizeof(int));
		}
		/* never block in the kernel: the deadline is ours */
		n = sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			int r;

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			r = vh_vu_wait_fd(sock, POLLOUT, deadline);
			if (r < 0) {
				vh_err(ctx, "vhost-user: request %u: the peer does not read: %s\n",
				       msg->hdr.request, strerror(-r));
				return r;
			}
			continue;
		}
		/* the fds went with the first byte */
		fds_sent = true;
		while (iovcnt > 0 && (size_t)n >= cur->iov_len) {
			n -= (ssize_t)cur->iov_len;
			cur++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			cur->iov_base = (char *)cur->iov_base + n;
			cur->iov_len -= (size_t)n;
		}
	}
	return 0;
}
