/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A driver (vh_drvq) and a device (vh_devq) over one memfd of guest memory,
 * for the virtqueue tests.
 */
#ifndef _VH_TEST_VRING_H_
#define _VH_TEST_VRING_H_

#include <stdarg.h>
#include <stdint.h>
#include <syslog.h>

#include "libvhost.h"
#include "test-util.h"

#define MEM_GPA 0x100000ull
#define MEM_SIZE (4ull << 20)
#define RING_GPA MEM_GPA                   /* rings: first MiB */
#define DATA_GPA (MEM_GPA + (1ull << 20))  /* buffers: 2 MiB */
#define IND_GPA (MEM_GPA + (3ull << 20))   /* indirect tables: 1 MiB */
#define IND_SIZE (1ull << 20)

struct rig {
	struct vh_ctx *ctx;
	struct vh_mem *mem;
	uint8_t *host; /* MEM_GPA */
	struct vh_drvq *vq;
	struct vh_devq *vr;
	unsigned int num;
	char last_err[256];
	int errors;
};

__attribute__((format(printf, 7, 0))) static inline void
rig_log(struct vh_ctx *ctx, void *data, int priority, const char *file,
	int line, const char *fn, const char *format, va_list args)
{
	struct rig *r = data;

	r->errors++;
	vsnprintf(r->last_err, sizeof(r->last_err), format, args);
}

static inline void *gpa_host(struct rig *r, uint64_t gpa)
{
	CHECK(gpa >= MEM_GPA && gpa < MEM_GPA + MEM_SIZE);
	return r->host + (gpa - MEM_GPA);
}

static inline void rig_init(struct rig *r, unsigned int num,
			    uint64_t features)
{
	struct vh_devq_addr a = { 0 };

	memset(r, 0, sizeof(*r));
	r->num = num;
	CHECK_EQ(vh_ctx_new(&r->ctx), 0);
	vh_ctx_set_log_fn(r->ctx, rig_log, r);
	vh_ctx_set_log_priority(r->ctx, LOG_ERR);
	CHECK_EQ(vh_mem_new(r->ctx, &r->mem), 0);
	CHECK_EQ(vh_mem_add_memfd(r->mem, MEM_GPA, MEM_SIZE,
				  (void **)&r->host),
		 0);
	CHECK_EQ(vh_drvq_new(r->ctx, r->mem, 0, num, RING_GPA, &r->vq), 0);
	CHECK_EQ(vh_drvq_set_features(r->vq, features), 0);
	CHECK_EQ(vh_devq_new(r->ctx, r->mem, 0, &r->vr), 0);
	CHECK_EQ(vh_devq_set_features(r->vr, features), 0);
	CHECK_EQ(vh_devq_set_num(r->vr, num), 0);
	CHECK_EQ(vh_drvq_get_addrs(r->vq, &a.desc, &a.avail, &a.used), 0);
	CHECK_EQ(vh_devq_set_addr(r->vr, &a), 0);
	/* packed: both positions 0, both wrap counters 1 (2.8.1) */
	CHECK_EQ(vh_devq_set_base(r->vr, features & (1ull << 34) ?
						 0x80008000u :
						 0),
		 0);
}

static inline void rig_fini(struct rig *r)
{
	CHECK(vh_devq_unref(r->vr) == NULL);
	CHECK(vh_drvq_unref(r->vq) == NULL);
	CHECK(vh_mem_unref(r->mem) == NULL);
	CHECK(vh_ctx_unref(r->ctx) == NULL);
}

#endif
