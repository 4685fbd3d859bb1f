/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libvhost - userspace library for the Linux vhost family
 *
 * Every function returns 0 (or a non-negative count) on success and a
 * negative errno on failure; objects come back through out-pointers.
 * Objects are reference counted: *_ref() takes a reference, *_unref()
 * drops one and returns NULL once the object is gone.
 */
#ifndef _LIBVHOST_H_
#define _LIBVHOST_H_

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * vh_ctx - library context
 *
 * Holds the log function and priority and the caller's data pointer.  There
 * is no global state: every other object is created from a context and keeps
 * a reference to it.  Nothing is printed unless the caller installs a log
 * function and raises the priority, or sets LIBVHOST_LOG in the environment
 * ("err", "info", "debug" or a syslog priority number), in which case
 * messages go to stderr.
 */
struct vh_ctx;

typedef void (*vh_log_fn)(void *data, int priority, const char *file,
			  int line, const char *fn, const char *format,
			  va_list args);

int vh_ctx_new(struct vh_ctx **ctx);
struct vh_ctx *vh_ctx_ref(struct vh_ctx *ctx);
struct vh_ctx *vh_ctx_unref(struct vh_ctx *ctx);
void vh_ctx_set_log_fn(struct vh_ctx *ctx, vh_log_fn log_fn, void *data);
int vh_ctx_get_log_priority(const struct vh_ctx *ctx);
void vh_ctx_set_log_priority(struct vh_ctx *ctx, int priority);
void *vh_ctx_get_userdata(const struct vh_ctx *ctx);
void vh_ctx_set_userdata(struct vh_ctx *ctx, void *userdata);

/* Library version string, e.g. "0.1". */
const char *vh_version(void);

#ifdef __cplusplus
}
#endif

/* The object families each have their own header; include them all here. */
#include "libvhost-mem.h"
#include "libvhost-vring.h"
#include "libvhost-kernel.h"
#include "libvhost-scsi.h"
#include "libvhost-vdpa.h"
#include "libvhost-vu.h"
#include "libvhost-vu-backend.h"
#include "libvhost-daemon.h"

#endif
