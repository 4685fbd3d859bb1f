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

/*
 * Extensible structs.  Every struct an application fills and passes in
 * (struct vh_vu_device, vh_vu_device_ops, vh_vu_frontend_ops,
 * vh_daemon_device, vh_daemon_ops, vh_lio_config, vh_vdpa_dev_new) starts
 * with a size_t size the application sets to sizeof(struct ...) as its
 * header says.  The library copies the struct: a size below the first
 * released layout is -EINVAL; a size above the layout the library knows
 * (an application built against newer headers) is accepted only if the
 * members the library does not know are all zero, else -E2BIG; members
 * the application does not know are zero.  So members are only ever added
 * at the end, and zero always means "absent / default".
 *
 * Records that mirror a kernel or protocol layout (vh_kdev_*, vh_devq_*,
 * vh_vu_msg and its payloads, vh_vsock_hdr), array elements (vh_lio_lun,
 * vh_mem_region) and structs the library fills (vh_vdpa_*_info) have a
 * fixed layout: extending one means a new struct and function.
 *
 * Callbacks take the object that calls them first and the pointer the
 * application registered second.
 */

/*
 * Values kernel vhost and vhost-user share (<linux/vhost_types.h>,
 * vhost-user.rst "An IOTLB message", "Vring address description").
 */
/* vring address flags: log used-ring writes (VHOST_VRING_F_LOG) */
#define VH_VRING_F_LOG (1u << 0)
/* IOTLB permissions (VHOST_ACCESS_*) */
#define VH_ACCESS_RO 0x1
#define VH_ACCESS_WO 0x2
#define VH_ACCESS_RW 0x3
/* IOTLB message types (VHOST_IOTLB_*) */
enum vh_iotlb_type {
	VH_IOTLB_MISS = 1,
	VH_IOTLB_UPDATE = 2,
	VH_IOTLB_INVALIDATE = 3,
	VH_IOTLB_ACCESS_FAIL = 4,
	VH_IOTLB_BATCH_BEGIN = 5,
	VH_IOTLB_BATCH_END = 6,
};

/* ctx first, the data of vh_ctx_set_log_fn() second (as every callback) */
typedef void (*vh_log_fn)(struct vh_ctx *ctx, void *data, int priority,
			  const char *file, int line, const char *fn,
			  const char *format, va_list args);

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
#include "libvhost-vduse.h"

#endif
