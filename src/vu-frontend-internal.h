/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* vhost-user front-end: private state shared by vu-frontend*.c */
#ifndef _VH_VU_FRONTEND_INTERNAL_H_
#define _VH_VU_FRONTEND_INTERNAL_H_

#include <stdbool.h>
#include <stdint.h>

#include "libvhost-internal.h"
#include "vu-msg.h"

struct vh_vu_frontend {
	int refcount;
	struct vh_ctx *ctx;
	int sock; /* the connection, -1 if none */
	int backend_fd; /* our end of the back-end request channel, or -1 */
	/* channels closed or replaced: a reply goes to the request's own */
	uint64_t backend_gen;
	int timeout_ms; /* one deadline per call: send, reply, channel replies */
	bool reply_ack; /* ask for REPLY_ACK when negotiated */
	bool broken; /* a wrong reply or I/O error: no more requests */
	bool dispatching; /* inside dispatch_backend (no recursion) */
	int64_t call_deadline; /* of the call in progress, 0 if none */
	uint64_t offered; /* GET_FEATURES */
	uint64_t features; /* SET_FEATURES */
	uint64_t protocol_offered; /* GET_PROTOCOL_FEATURES */
	uint64_t protocol_features; /* SET_PROTOCOL_FEATURES */
	uint64_t max_mem_slots; /* GET_MAX_MEM_SLOTS, 0 if unknown */
	/*
	 * Rings set up: 1 + the highest index of a SET_VRING_NUM that went
	 * through.  A back-end request about a ring is checked against it.
	 */
	unsigned int nrings;
	/*
	 * Each ring's size as SET_VRING_NUM last set it (0: not set), which
	 * a packed ring's GET_VRING_BASE positions must be below
	 */
	uint32_t ring_num[VH_VU_VRING_IDX_MASK + 1];
	/* a back-end request that has partly arrived (never waited for) */
	struct vh_vu_rx backend_rx;
	/*
	 * Replies on the connection.  A back-end request's callback may make
	 * a call while another call waits for its reply (an IOTLB miss
	 * answered with an update), and the back-end may answer either one
	 * first: it may handle the update while still inside the outer
	 * request (vhost-user.rst "IOMMU support").  Replies are matched by
	 * request: the inner call takes its own and keeps the outer one's in
	 * early until that call looks; when both asked the same request,
	 * the first reply is the outer one's (the order they were asked
	 * in).  One slot: a callback cannot nest deeper (no dispatch inside
	 * a callback).  waiting: a call waits for its reply on connection
	 * waiting_gen (request waiting_request); conn_gen counts the
	 * connections, so that a call whose connection a callback dropped
	 * or replaced ends at once and breaks nothing.
	 */
	struct vh_vu_rx reply_rx; /* a reply that has partly arrived */
	uint64_t conn_gen;
	bool waiting;
	uint32_t waiting_request;
	uint64_t waiting_gen;
	bool early_valid;
	struct vh_vu_msg early;
	const struct vh_vu_frontend_ops *ops; /* &ops_copy once set, or NULL */
	struct vh_vu_frontend_ops ops_copy;
	void *ops_data;
};

/*
 * Bounds of the back-end's answers.  GET_QUEUE_NUM: a ring index is 8 bits
 * in SET_VRING_KICK/CALL/ERR ("Bits (0-7) of the payload contain the vring
 * index"), so no more rings can be used.  GET_MAX_MEM_SLOTS: QEMU's
 * VHOST_USER_MAX_RAM_SLOTS, the most any front-end uses.
 */
#define VU_FE_MAX_QUEUES (VH_VU_VRING_IDX_MASK + 1u)
#define VU_FE_MAX_MEM_SLOTS 512u

static inline bool vu_fe_has_protocol(const struct vh_vu_frontend *fe,
				      unsigned int bit)
{
	return fe->protocol_features & (1ull << bit);
}

/*
 * SET_VRING_BASE of a fresh ring.  "vring descriptor indices for packed
 * virtqueues": a fresh packed ring is at position 0 with both wrap
 * counters 1 (virtio 2.8.1); a split one at index 0.
 */
static inline uint32_t vu_fe_fresh_base(const struct vh_vu_frontend *fe)
{
	return fe->features & (1ull << VH_VU_VIRTIO_F_RING_PACKED) ?
		       0x80008000u :
		       0;
}

/*
 * Send msg (its fds are not consumed) and, if the rule calls for one, wait
 * for and check the reply.  rep receives a REPLY_ALWAYS reply (the caller
 * closes its fds); it may be NULL for other rules.
 */
int vu_fe_call(struct vh_vu_frontend *fe, struct vh_vu_msg *msg,
	       struct vh_vu_msg *rep);
/*
 * The reply tmp to a request of rule, as received: checked, then moved to
 * rep (REPLY_ALWAYS; tmp's fds closed if rep is NULL) or decoded
 * (REPLY_ACK: 0 or -errno).  -EPROTO and the front-end broken for a wrong
 * reply.  vu_fe_call() uses it; fuzz-vu-frontend-msg feeds it directly.
 */
int vu_fe_reply(struct vh_vu_frontend *fe, const struct vh_vu_msg_rule *rule,
		struct vh_vu_msg *tmp, struct vh_vu_msg *rep);
/*
 * A request received on the back-end channel: checked and handled, its
 * fds taken or closed.  1: msg is now the reply to send (its fds are ours
 * to close once sent), 0: no reply is due, < 0: close the channel.
 * vu_fe_dispatch_backend() uses it; so does fuzz-vu-frontend-msg.
 */
int vu_fe_backend_msg(struct vh_vu_frontend *fe, struct vh_vu_msg *msg);
/* The deadline of a call starting now. */
static inline int64_t vu_fe_deadline(const struct vh_vu_frontend *fe)
{
	return vh_vu_now_ms() + fe->timeout_ms;
}

/*
 * A call of the API that sends several requests (negotiate, share_mem,
 * setup_vq) ends by one deadline, as the header promises, not one per
 * request: vu_fe_call() takes the earlier of its own and this one.
 * Returns the deadline to put back with vu_fe_calls_end().
 */
static inline int64_t vu_fe_calls_begin(struct vh_vu_frontend *fe)
{
	int64_t outer = fe->call_deadline, d = vu_fe_deadline(fe);

	if (!outer || d < outer)
		fe->call_deadline = d;
	return outer;
}

static inline void vu_fe_calls_end(struct vh_vu_frontend *fe, int64_t outer)
{
	fe->call_deadline = outer;
}

/*
 * SET_VRING_ADDR under LOG_ALL ("Migration"): the used ring's writes are
 * logged by its guest physical address (setup_vq_iova() then puts the
 * used ring's IOVA in its place, as QEMU does).
 */
int vu_fe_vring_log(struct vh_vu_frontend *fe, struct vh_drvq *vq,
		    struct vh_vu_vring_addr *a);

/*
 * Serve one back-end request (vh_vu_frontend_dispatch_backend()), its
 * reply sent by deadline.
 */
int vu_fe_dispatch_backend(struct vh_vu_frontend *fe, int64_t deadline);
/* Close the back-end channel, dropping a partial request. */
void vu_fe_close_backend(struct vh_vu_frontend *fe);
/*
 * A back-end request that started arriving more than the timeout ago and
 * is still not whole: close the channel.  -ETIMEDOUT then, else 0.
 */
int vu_fe_backend_stalled(struct vh_vu_frontend *fe);

/*
 * A reply that is well formed but says something impossible (a count out
 * of range, an fd of the wrong type): log "<request>: <why>" and break the
 * connection as for any wrong reply.  Returns -EPROTO.
 */
int vu_fe_bad_reply(struct vh_vu_frontend *fe, const char *request,
		    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* A request with a u64 payload (or none if with_u64 is false). */
int vu_fe_call_u64(struct vh_vu_frontend *fe, uint32_t request, bool with_u64,
		   uint64_t value);
/* A request without payload whose reply is a u64. */
int vu_fe_get_u64(struct vh_vu_frontend *fe, uint32_t request, uint64_t *value);
/* A request with one fd and no payload. */
int vu_fe_call_fd(struct vh_vu_frontend *fe, uint32_t request, int fd);

#endif
