/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the daemons' busy-poll loops (--poll-us) share: a spin hint and a
 * monotonic clock in nanoseconds for their budgets.
 */
#ifndef _VH_TOOLS_BUSY_POLL_H_
#define _VH_TOOLS_BUSY_POLL_H_

#include <stdint.h>
#include <time.h>

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

#endif
