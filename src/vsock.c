// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-vsock control (VHOST_VSOCK_*) and the guest side of the
 * virtio-vsock protocol (virtio 1.3, 5.10 "Socket Device"): packet headers
 * and a per-connection state machine with credit accounting, so that a
 * test or vhostctl can act as the guest of a vhost-vsock device.
 */
#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <linux/virtio_vsock.h>

#include "kdev-internal.h"

VH_EXPORT int vh_vsock_set_guest_cid(struct vh_kdev *dev, uint64_t cid)
{
	__u64 c = cid;

	if (!dev)
		return -EINVAL;
	if (dev->type != VH_KDEV_VSOCK)
		return -ENOTTY;
	/*
	 * 0, 1 (local) and 2 (host) are reserved, U32_MAX is VMADDR_CID_ANY
	 * and the upper 32 bits are reserved (virtio 1.3, 5.10.4).
	 */
	if (cid <= VH_VSOCK_CID_HOST || cid >= 0xffffffffULL)
		return -EINVAL;
	return vh_kdev_ioctl(dev, VHOST_VSOCK_SET_GUEST_CID, &c);
}

VH_EXPORT int vh_vsock_set_running(struct vh_kdev *dev, bool running)
{
	int r = running ? 1 : 0;

	if (!dev)
		return -EINVAL;
	if (dev->type != VH_KDEV_VSOCK)
		return -ENOTTY;
	return vh_kdev_ioctl(dev, VHOST_VSOCK_SET_RUNNING, &r);
}

/* ------------------------------------------------------------------ */
/* packet headers                                                      */
/* ------------------------------------------------------------------ */

_Static_assert(sizeof(struct virtio_vsock_hdr) == VH_VSOCK_HDR_LEN,
	       "virtio_vsock_hdr is 44 bytes");

VH_EXPORT int vh_vsock_hdr_pack(const struct vh_vsock_hdr *h, void *buf,
				size_t len)
{
	struct virtio_vsock_hdr w;

	if (!h || !buf || len < VH_VSOCK_HDR_LEN)
		return -EINVAL;
	w.src_cid = htole64(h->src_cid);
	w.dst_cid = htole64(h->dst_cid);
	w.src_port = htole32(h->src_port);
	w.dst_port = htole32(h->dst_port);
	w.len = htole32(h->len);
	w.type = htole16(h->type);
	w.op = htole16(h->op);
	w.flags = htole32(h->flags);
	w.buf_alloc = htole32(h->buf_alloc);
	w.fwd_cnt = htole32(h->fwd_cnt);
	memcpy(buf, &w, VH_VSOCK_HDR_LEN);
	return VH_VSOCK_HDR_LEN;
}

VH_EXPORT int vh_vsock_hdr_parse(struct vh_vsock_hdr *h, const void *pkt,
				 size_t pkt_len)
{
	struct virtio_vsock_hdr w;

	if (!h || !pkt)
		return -EINVAL;
	if (pkt_len < VH_VSOCK_HDR_LEN)
		return -EPROTO;
	memcpy(&w, pkt, VH_VSOCK_HDR_LEN);
	h->src_cid = le64toh(w.src_cid);
	h->dst_cid = le64toh(w.dst_cid);
	h->src_port = le32toh(w.src_port);
	h->dst_port = le32toh(w.dst_port);
	h->len = le32toh(w.len);
	h->type = le16toh(w.type);
	h->op = le16toh(w.op);
	h->flags = le32toh(w.flags);
	h->buf_alloc = le32toh(w.buf_alloc);
	h->fwd_cnt = le32toh(w.fwd_cnt);

	/* 5.10.6: the upper 32 bits of the CIDs are reserved and zeroed */
	if ((h->src_cid >> 32) || (h->dst_cid >> 32))
		return -EPROTO;
	if (h->type != VH_VSOCK_TYPE_STREAM &&
	    h->type != VH_VSOCK_TYPE_SEQPACKET)
		return -EPROTO;
	if (h->op < VH_VSOCK_OP_REQUEST || h->op > VH_VSOCK_OP_CREDIT_REQUEST)
		return -EPROTO;
	/* only RW carries a payload */
	if (h->op != VH_VSOCK_OP_RW && h->len)
		return -EPROTO;
	if (h->len > pkt_len - VH_VSOCK_HDR_LEN)
		return -EMSGSIZE;
	return VH_VSOCK_HDR_LEN;
}

/* ------------------------------------------------------------------ */
/* connections                                                         */
/* ------------------------------------------------------------------ */

struct vh_vsock_conn {
	int refcount;
	struct vh_ctx *ctx;
	enum vh_vsock_state state;
	uint16_t type;
	uint64_t local_cid, peer_cid;
	uint32_t local_port, peer_port;
	/* our receive side */
	uint32_t buf_alloc;	/* what we advertise */
	uint32_t rx_cnt;	/* bytes received (wraps, 5.10.6.3) */
	uint32_t fwd_cnt;	/* bytes consumed */
	uint32_t last_fwd_cnt;	/* fwd_cnt the peer last heard from us */
	/* the peer's receive side */
	uint32_t peer_buf_alloc;
	uint32_t peer_fwd_cnt;
	uint32_t tx_cnt;	/* bytes we sent */
	unsigned int shutdown;	    /* VH_VSOCK_SHUTDOWN_* we sent */
	unsigned int peer_shutdown; /* ... the peer sent */
};

VH_EXPORT int vh_vsock_conn_new(struct vh_ctx *ctx, enum vh_vsock_type type,
				uint64_t local_cid, uint32_t local_port,
				uint64_t peer_cid, uint32_t peer_port,
				uint32_t buf_alloc, struct vh_vsock_conn **out)
{
	struct vh_vsock_conn *c;

	if (!ctx || !out || buf_alloc == 0)
		return -EINVAL;
	if (type != VH_VSOCK_TYPE_STREAM && type != VH_VSOCK_TYPE_SEQPACKET)
		return -EINVAL;
	if ((local_cid >> 32) || (peer_cid >> 32))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->refcount = 1;
	c->ctx = vh_ctx_ref(ctx);
	c->state = VH_VSOCK_CLOSED;
	c->type = type;
	c->local_cid = local_cid;
	c->local_port = local_port;
	c->peer_cid = peer_cid;
	c->peer_port = peer_port;
	c->buf_alloc = buf_alloc;
	*out = c;
	return 0;
}

VH_EXPORT struct vh_vsock_conn *vh_vsock_conn_ref(struct vh_vsock_conn *c)
{
	if (!c)
		return NULL;
	__atomic_add_fetch(&c->refcount, 1, __ATOMIC_RELAXED);
	return c;
}

VH_EXPORT struct vh_vsock_conn *vh_vsock_conn_unref(struct vh_vsock_conn *c)
{
	if (!c)
		return NULL;
	if (__atomic_sub_fetch(&c->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return c;
	vh_ctx_unref(c->ctx);
	free(c);
	return NULL;
}

VH_EXPORT enum vh_vsock_state
vh_vsock_conn_get_state(const struct vh_vsock_conn *c)
{
	return c ? c->state : VH_VSOCK_CLOSED;
}

VH_EXPORT bool vh_vsock_conn_matches(const struct vh_vsock_conn *c,
				     const struct vh_vsock_hdr *in)
{
	return c && in && in->type == c->type && in->src_cid == c->peer_cid &&
	       in->src_port == c->peer_port && in->dst_cid == c->local_cid &&
	       in->dst_port == c->local_port;
}

/* Every packet we send carries our addresses and receive credit. */
static void fill(struct vh_vsock_conn *c, struct vh_vsock_hdr *out,
		 uint16_t op, uint32_t len, uint32_t flags)
{
	memset(out, 0, sizeof(*out));
	out->src_cid = c->local_cid;
	out->dst_cid = c->peer_cid;
	out->src_port = c->local_port;
	out->dst_port = c->peer_port;
	out->len = len;
	out->type = c->type;
	out->op = op;
	out->flags = flags;
	out->buf_alloc = c->buf_alloc;
	out->fwd_cnt = c->fwd_cnt;
	c->last_fwd_cnt = c->fwd_cnt;
}

/*
 * A connection starts from zero (5.10.6.3: the counters count its bytes):
 * one closed before and opened again keeps nothing of the last one, whose
 * counts would skew both sides' credit and whose shutdown bits would
 * refuse the new one's sends.
 */
static void conn_fresh(struct vh_vsock_conn *c)
{
	c->rx_cnt = c->fwd_cnt = c->last_fwd_cnt = 0;
	c->peer_buf_alloc = c->peer_fwd_cnt = 0;
	c->tx_cnt = 0;
	c->shutdown = c->peer_shutdown = 0;
}

VH_EXPORT int vh_vsock_conn_connect(struct vh_vsock_conn *c,
				    struct vh_vsock_hdr *out)
{
	if (!c || !out)
		return -EINVAL;
	if (c->state != VH_VSOCK_CLOSED)
		return -EISCONN;
	conn_fresh(c);
	c->state = VH_VSOCK_CONNECTING;
	fill(c, out, VH_VSOCK_OP_REQUEST, 0, 0);
	return 0;
}

VH_EXPORT uint32_t vh_vsock_conn_tx_credit(const struct vh_vsock_conn *c)
{
	uint32_t in_flight;

	if (!c)
		return 0;
	/* 5.10.6.3: unsigned arithmetic, counters wrap */
	in_flight = c->tx_cnt - c->peer_fwd_cnt;
	if (in_flight >= c->peer_buf_alloc)
		return 0;
	return c->peer_buf_alloc - in_flight;
}

VH_EXPORT int vh_vsock_conn_send(struct vh_vsock_conn *c, uint32_t len,
				 uint32_t flags, struct vh_vsock_hdr *out)
{
	uint32_t credit;

	if (!c || !out || (flags & ~(VH_VSOCK_SEQ_EOM | VH_VSOCK_SEQ_EOR)))
		return -EINVAL;
	if (c->type != VH_VSOCK_TYPE_SEQPACKET && flags)
		return -EINVAL;
	if (c->state != VH_VSOCK_CONNECTED)
		return -ENOTCONN;
	if ((c->shutdown & VH_VSOCK_SHUTDOWN_SEND) ||
	    (c->peer_shutdown & VH_VSOCK_SHUTDOWN_RCV))
		return -EPIPE;
	credit = vh_vsock_conn_tx_credit(c);
	/* at most what the credit and the int return value allow */
	if (credit > 0x7fffffff)
		credit = 0x7fffffff;
	if (len > credit) {
		/* a SEQPACKET message is never cut short of its EOM */
		if (c->type == VH_VSOCK_TYPE_SEQPACKET && flags)
			return 0;
		len = credit;
	}
	if (len == 0 && !(flags & VH_VSOCK_SEQ_EOM))
		return 0;
	c->tx_cnt += len;
	fill(c, out, VH_VSOCK_OP_RW, len, flags);
	return (int)len;
}

VH_EXPORT int vh_vsock_conn_shutdown(struct vh_vsock_conn *c,
				     unsigned int how,
				     struct vh_vsock_hdr *out)
{
	const unsigned int both = VH_VSOCK_SHUTDOWN_RCV |
				  VH_VSOCK_SHUTDOWN_SEND;

	if (!c || !out || how == 0 || (how & ~both))
		return -EINVAL;
	if (c->state != VH_VSOCK_CONNECTED)
		return -ENOTCONN;
	c->shutdown |= how;
	if (c->shutdown == both)
		c->state = VH_VSOCK_CLOSING;
	fill(c, out, VH_VSOCK_OP_SHUTDOWN, 0, how);
	return 0;
}

VH_EXPORT int vh_vsock_conn_reset(struct vh_vsock_conn *c,
				  struct vh_vsock_hdr *out)
{
	if (!c || !out)
		return -EINVAL;
	c->state = VH_VSOCK_CLOSED;
	fill(c, out, VH_VSOCK_OP_RST, 0, 0);
	return 0;
}

VH_EXPORT int vh_vsock_conn_credit_update(struct vh_vsock_conn *c,
					  struct vh_vsock_hdr *out)
{
	if (!c || !out)
		return -EINVAL;
	if (c->state != VH_VSOCK_CONNECTED && c->state != VH_VSOCK_CLOSING)
		return -ENOTCONN;
	fill(c, out, VH_VSOCK_OP_CREDIT_UPDATE, 0, 0);
	return 0;
}

VH_EXPORT int vh_vsock_conn_credit_request(struct vh_vsock_conn *c,
					   struct vh_vsock_hdr *out)
{
	if (!c || !out)
		return -EINVAL;
	if (c->state != VH_VSOCK_CONNECTED)
		return -ENOTCONN;
	fill(c, out, VH_VSOCK_OP_CREDIT_REQUEST, 0, 0);
	return 0;
}

VH_EXPORT int vh_vsock_conn_consumed(struct vh_vsock_conn *c, uint32_t n)
{
	if (!c)
		return -EINVAL;
	if (n > c->rx_cnt - c->fwd_cnt)
		return -EINVAL;
	c->fwd_cnt += n;
	/* tell the peer once half of what it filled is free again */
	return c->fwd_cnt - c->last_fwd_cnt >= c->buf_alloc / 2 ? 1 : 0;
}

VH_EXPORT uint32_t vh_vsock_conn_rx_pending(const struct vh_vsock_conn *c)
{
	return c ? c->rx_cnt - c->fwd_cnt : 0;
}

VH_EXPORT unsigned int
vh_vsock_conn_peer_shutdown(const struct vh_vsock_conn *c)
{
	return c ? c->peer_shutdown : 0;
}

/* vh_vsock_conn_input() but the credit information. */
static int conn_input(struct vh_vsock_conn *c, const struct vh_vsock_hdr *in,
		      struct vh_vsock_hdr *reply)
{
	const unsigned int both = VH_VSOCK_SHUTDOWN_RCV |
				  VH_VSOCK_SHUTDOWN_SEND;

	switch (in->op) {
	case VH_VSOCK_OP_REQUEST:
		/* a listener accepts: 5.10.6.5 */
		if (c->state != VH_VSOCK_CLOSED)
			return -EPROTO;
		conn_fresh(c);
		c->state = VH_VSOCK_CONNECTED;
		fill(c, reply, VH_VSOCK_OP_RESPONSE, 0, 0);
		return 1;
	case VH_VSOCK_OP_RESPONSE:
		if (c->state != VH_VSOCK_CONNECTING)
			return -EPROTO;
		c->state = VH_VSOCK_CONNECTED;
		return 0;
	case VH_VSOCK_OP_RW:
		if (c->state != VH_VSOCK_CONNECTED &&
		    c->state != VH_VSOCK_CLOSING)
			return -EPROTO;
		/* the peer may not send more than the credit we gave */
		if (in->len > c->buf_alloc - (c->rx_cnt - c->fwd_cnt)) {
			vh_err(c->ctx, "vsock port %u: peer overran credit\n",
			       c->local_port);
			return -EPROTO;
		}
		c->rx_cnt += in->len;
		return 0;
	case VH_VSOCK_OP_CREDIT_UPDATE:
		return 0;
	case VH_VSOCK_OP_CREDIT_REQUEST:
		if (c->state != VH_VSOCK_CONNECTED &&
		    c->state != VH_VSOCK_CLOSING)
			return -EPROTO;
		fill(c, reply, VH_VSOCK_OP_CREDIT_UPDATE, 0, 0);
		return 1;
	case VH_VSOCK_OP_SHUTDOWN:
		if (c->state != VH_VSOCK_CONNECTED &&
		    c->state != VH_VSOCK_CLOSING)
			return -EPROTO;
		c->peer_shutdown |= in->flags & both;
		/* 5.10.6.6: the side that sees both directions shut resets */
		if (c->peer_shutdown == both) {
			c->state = VH_VSOCK_CLOSED;
			fill(c, reply, VH_VSOCK_OP_RST, 0, 0);
			return 1;
		}
		return 0;
	case VH_VSOCK_OP_RST:
		/* the expected end of a clean disconnect (5.10.6.6) */
		if (c->state == VH_VSOCK_CLOSING || c->state == VH_VSOCK_CLOSED) {
			c->state = VH_VSOCK_CLOSED;
			return 0;
		}
		c->state = VH_VSOCK_CLOSED;
		return -ECONNRESET;
	default:
		return -EPROTO;
	}
}

VH_EXPORT int vh_vsock_conn_input(struct vh_vsock_conn *c,
				  const struct vh_vsock_hdr *in,
				  struct vh_vsock_hdr *reply)
{
	int r;

	if (!c || !in || !reply)
		return -EINVAL;
	if (!vh_vsock_conn_matches(c, in))
		return -EINVAL;
	r = conn_input(c, in, reply);
	/*
	 * 5.10.6.3: every packet updates the peer's credit information; one
	 * we refused says nothing (an RW that overran our credit raised the
	 * peer's to whatever it claimed)
	 */
	if (r >= 0 && in->op != VH_VSOCK_OP_RST) {
		c->peer_buf_alloc = in->buf_alloc;
		c->peer_fwd_cnt = in->fwd_cnt;
	}
	return r;
}
