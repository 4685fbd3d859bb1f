/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the daemons' busy-poll loops (--poll-us) share: a spin hint, a
 * monotonic clock in nanoseconds for their budgets, and the spin on a
 * ring's avail index.
 */
#ifndef _VH_TOOLS_BUSY_POLL_H_
#define _VH_TOOLS_BUSY_POLL_H_

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "libvhost-vring.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/*
 * Spin until vr has buffers available or the budget is spent: 1 if there
 * is work, 0 if not (or the ring failed), < 0 what idle returned.  The
 * budget starts at the first call after the ring ran empty (*deadline, 0
 * until then, back to 0 when work came).  idle, if not NULL, runs between
 * checks (the blk daemon's completions).
 */
static inline int busy_poll_avail(struct vh_devq *vr, uint64_t budget,
				  uint64_t *deadline, int (*idle)(void *),
				  void *arg)
{
	uint64_t t = now_ns();
	uint16_t avail;
	unsigned int i;
	int r;

	if (!*deadline)
		*deadline = t + budget;
	while (t < *deadline) {
		for (i = 0; i < 64; i++) {
			if (vh_devq_avail_count(vr, &avail) < 0)
				return 0;
			if (avail) {
				*deadline = 0;
				return 1;
			}
			if (idle) {
				r = idle(arg);
				if (r < 0)
					return r;
			}
			cpu_relax();
		}
		t = now_ns();
	}
	return 0;
}

#endif
