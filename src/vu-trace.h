/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * vhost-user protocol trace (vu-trace.c): each control message and reply,
 * decoded, at LOG_DEBUG in every build.  Private to libvhost.
 */
#ifndef _VH_VU_TRACE_H_
#define _VH_VU_TRACE_H_

#include <stdbool.h>
#include <syslog.h>

#include "libvhost-internal.h"
#include "libvhost-vu.h"

void vh_vu_trace_msg(struct vh_ctx *ctx, const char *dir, bool backend_channel,
		     const struct vh_vu_msg *msg);

/*
 * dir: "<-" received, "->" sent.  backend_channel: the back-end request
 * channel (SET_BACKEND_REQ_FD), whose request numbers differ.
 */
static inline void vh_vu_trace(struct vh_ctx *ctx, const char *dir,
			       bool backend_channel,
			       const struct vh_vu_msg *msg)
{
	if (vh_unlikely(vh_ctx_get_log_priority(ctx) >= LOG_DEBUG))
		vh_vu_trace_msg(ctx, dir, backend_channel, msg);
}

#endif
