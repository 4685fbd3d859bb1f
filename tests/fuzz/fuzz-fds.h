/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Fd leak check for the in-memory fuzz targets: which fds of a window above
 * the process's own are open, in one poll() (POLLNVAL marks a closed one),
 * so that it can run after every input.
 */
#ifndef _FUZZ_FDS_H_
#define _FUZZ_FDS_H_

#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* an input never holds this many fds at once */
#define FUZZ_FD_WINDOW 256

struct fuzz_fds {
	int base; /* first fd of the window */
	bool open[FUZZ_FD_WINDOW];
};

static inline void fuzz_fds_scan(struct fuzz_fds *s, int base)
{
	struct pollfd p[FUZZ_FD_WINDOW];
	int i;

	s->base = base;
	for (i = 0; i < FUZZ_FD_WINDOW; i++)
		p[i] = (struct pollfd){ .fd = base + i };
	if (poll(p, FUZZ_FD_WINDOW, 0) < 0)
		abort();
	for (i = 0; i < FUZZ_FD_WINDOW; i++)
		s->open[i] = !(p[i].revents & POLLNVAL);
}

/* Abort if an fd is open that was not open at *before. */
static inline void fuzz_fds_check(const struct fuzz_fds *before)
{
	struct fuzz_fds now;
	int i;

	fuzz_fds_scan(&now, before->base);
	for (i = 0; i < FUZZ_FD_WINDOW; i++) {
		char path[64], what[256] = "?";

		if (!now.open[i] || before->open[i])
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d",
			 before->base + i);
		if (readlink(path, what, sizeof(what) - 1) < 0)
			what[0] = '?';
		fprintf(stderr, "fd %d leaked (%s)\n", before->base + i, what);
		abort();
	}
}

#endif
