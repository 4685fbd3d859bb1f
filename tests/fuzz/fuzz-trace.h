/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The protocol trace (vu-trace.c) on in the vhost-user fuzz targets: every
 * message is decoded at LOG_DEBUG, as with LIBVHOST_LOG=debug; each line
 * is formatted, as a real log function would, and dropped.
 */
#ifndef _FUZZ_TRACE_H_
#define _FUZZ_TRACE_H_

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "libvhost.h"

__attribute__((format(printf, 7, 0))) static void
fuzz_log(struct vh_ctx *c, void *data, int priority, const char *file, int line,
	 const char *fn, const char *format, va_list args)
{
	char buf[2048];

	vsnprintf(buf, sizeof(buf), format, args);
}

static inline void fuzz_trace_on(struct vh_ctx *c)
{
	vh_ctx_set_log_fn(c, fuzz_log, NULL);
	vh_ctx_set_log_priority(c, LOG_DEBUG);
}

#endif
