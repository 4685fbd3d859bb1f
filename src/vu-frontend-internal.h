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
	int timeout_ms;
	bool reply_ack; /* ask for REPLY_ACK when negotiated */
	bool broken; /* a wrong reply or I/O error: no more requests */
	bool dispatching; /* inside dispatch_backend (no recursion) */
	uint64_t offered; /* GET_FEATURES */
	uint64_t features; /* SET_FEATURES */
	uint64_t protocol_offered; /* GET_PROTOCOL_FEATURES */
	uint64_t protocol_features; /* SET_PROTOCOL_FEATURES */
	uint64_t max_mem_slots; /* GET_MAX_MEM_SLOTS, 0 if unknown */
	const struct vh_vu_frontend_ops *ops; /* &ops_copy once set, or NULL */
	struct vh_vu_frontend_ops ops_copy;
	void *ops_data;
};

static inline bool vu_fe_has_protocol(const struct vh_vu_frontend *fe,
				      unsigned int bit)
{
	return fe->protocol_features & (1ull << bit);
}

/*
 * Send msg (its fds are not consumed) and, if the rule calls for one, wait
 * for and check the reply.  rep receives a REPLY_ALWAYS reply (the caller
 * closes its fds); it may be NULL for other rules.
 */
int vu_fe_call(struct vh_vu_frontend *fe, struct vh_vu_msg *msg,
	       struct vh_vu_msg *rep);
/* A request with a u64 payload (or none if with_u64 is false). */
int vu_fe_call_u64(struct vh_vu_frontend *fe, uint32_t request, bool with_u64,
		   uint64_t value);
/* A request without payload whose reply is a u64. */
int vu_fe_get_u64(struct vh_vu_frontend *fe, uint32_t request, uint64_t *value);
/* A request with one fd and no payload. */
int vu_fe_call_fd(struct vh_vu_frontend *fe, uint32_t request, int fd);

#endif
