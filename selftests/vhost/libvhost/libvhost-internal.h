/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Private to libvhost: never installed. */
#ifndef _LIBVHOST_INTERNAL_H_
#define _LIBVHOST_INTERNAL_H_

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

#include "libvhost.h"

/* Only symbols marked VH_EXPORT (and listed in libvhost.sym) are public. */
#define VH_EXPORT __attribute__((visibility("default")))

#define vh_likely(x) __builtin_expect(!!(x), 1)
#define vh_unlikely(x) __builtin_expect(!!(x), 0)
#define VH_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define vh_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Close an fd, keeping errno intact; used on error paths. */
void vh_close_keep_errno(int fd);

__attribute__((format(printf, 6, 7))) void
vh_log(const struct vh_ctx *ctx, int priority, const char *file, int line,
       const char *fn, const char *format, ...);

/* The priority check is inline so a disabled message costs one compare. */
#define vh_log_cond(ctx, prio, ...)                                           \
	do {                                                                  \
		if (vh_unlikely(vh_ctx_get_log_priority(ctx) >= (prio)))      \
			vh_log(ctx, prio, __FILE__, __LINE__, __func__,       \
			       __VA_ARGS__);                                  \
	} while (0)

#ifdef ENABLE_DEBUG
#define vh_dbg(ctx, ...) vh_log_cond(ctx, LOG_DEBUG, __VA_ARGS__)
#else
#define vh_dbg(ctx, ...)                                                      \
	do {                                                                  \
		if (0)                                                        \
			vh_log(ctx, LOG_DEBUG, __FILE__, __LINE__, __func__,  \
			       __VA_ARGS__);                                  \
	} while (0)
#endif
#define vh_info(ctx, ...) vh_log_cond(ctx, LOG_INFO, __VA_ARGS__)
#define vh_notice(ctx, ...) vh_log_cond(ctx, LOG_NOTICE, __VA_ARGS__)
#define vh_warn(ctx, ...) vh_log_cond(ctx, LOG_WARNING, __VA_ARGS__)
#define vh_err(ctx, ...) vh_log_cond(ctx, LOG_ERR, __VA_ARGS__)

#endif
