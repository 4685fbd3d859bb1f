/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vhostctl check: shared pieces of the dataplane self-checks - a guest
 * memory arena, eventfd waits, byte patterns and the result record.
 */
#ifndef _VHOSTCTL_CHECK_H_
#define _VHOSTCTL_CHECK_H_

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vhostctl.h"

/* TCG guests are 10-50x slower than hardware: generous waits. */
#define CHK_TIMEOUT_MS 15000

enum chk_outcome { CHK_PASS, CHK_FAIL, CHK_SKIP };

struct chk_result {
	enum chk_outcome outcome;
	char detail[256];
};

/* Record the outcome with a detail line; return the outcome. */
__attribute__((format(printf, 3, 4))) enum chk_outcome
chk_set(struct chk_result *r, enum chk_outcome outcome, const char *fmt, ...);
/* FAIL with "<step>: <strerror(-err)>". */
enum chk_outcome chk_fail_err(struct chk_result *r, const char *step, int err);

/* Guest memory: one memfd region at GPA 0 and a bump allocator. */
struct chk_guest {
	struct vh_mem *mem;
	uint8_t *host;
	uint64_t size;
	uint64_t next;
};

int chk_guest_init(struct chk_guest *g, struct vh_ctx *ctx, uint64_t size);
void chk_guest_fini(struct chk_guest *g);
/* len bytes at an align-aligned GPA (align a power of two); 0 when full. */
uint64_t chk_guest_alloc(struct chk_guest *g, uint64_t len, uint64_t align);
void *chk_gpa(struct chk_guest *g, uint64_t gpa);

/* A signal asked vhostctl check to stop (the waits return -EINTR). */
bool chk_interrupted(void);
/* Non-blocking CLOEXEC eventfd, or -errno. */
int chk_eventfd(void);
void chk_close(int *fd);
/* Wait up to ms for events on fd: 1, 0 timeout, -EINTR, -errno. */
int chk_poll(int fd, short events, int ms);
/* Consume an eventfd's count. */
void chk_drain(int fd);
uint64_t chk_now_ms(void);
/* Reproducible byte pattern, so the receiving side can compare bytes. */
void chk_fill(void *buf, size_t len, uint32_t seed);
/*
 * Next used buffer of vq, waiting on its call eventfd: 1 with *token and
 * *len, -ETIMEDOUT, or the vq's -errno.
 */
int chk_wait_used(struct vh_drvq *vq, int call_fd, void **token, uint32_t *len,
		  int ms);

/*
 * Open the kernel vhost device of type (an enum vh_kdev_type), take
 * ownership and negotiate VERSION_1 (all the checks need).  *dev is set as
 * far as it got, for the caller's teardown.  CHK_PASS, or the failure
 * recorded in r.
 */
struct vh_kdev;
enum chk_outcome chk_kdev_open(struct chk_result *r, struct vh_ctx *ctx,
			       int type, struct vh_kdev **dev);

/*
 * Lay ring idx (num entries, VERSION_1) out in g's memory and hand it to the
 * kernel device with fresh kick and call eventfds.  *vq, *kick and *call
 * are set as far as it got, for the caller's teardown.  CHK_PASS, or the
 * failure recorded in r.
 */
enum chk_outcome chk_kdev_ring(struct chk_result *r, struct vh_ctx *ctx,
			       struct vh_kdev *dev, struct chk_guest *g,
			       unsigned int idx, unsigned int num,
			       struct vh_drvq **vq, int *kick, int *call);

/* The checks.  Each creates what it needs and removes it again. */
void check_net(struct vhc *v, struct chk_result *r);
void check_vsock(struct vhc *v, struct chk_result *r);
void check_scsi(struct vhc *v, struct chk_result *r);
void check_vdpa(struct vhc *v, struct chk_result *r);
void check_vduse(struct vhc *v, struct chk_result *r);

#endif
