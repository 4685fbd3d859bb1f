/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Tiny helpers for the unit tests (make check).  A failed CHECK prints the
 * location and makes the test exit 1; exit 77 means SKIP to automake.
 */
#ifndef _VH_TEST_UTIL_H_
#define _VH_TEST_UTIL_H_

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_SKIP 77

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: %s: CHECK(%s) failed\n",      \
				__FILE__, __LINE__, __func__, #cond);         \
			exit(1);                                              \
		}                                                             \
	} while (0)

#define CHECK_EQ(a, b)                                                        \
	do {                                                                  \
		long long _a = (long long)(a), _b = (long long)(b);           \
		if (_a != _b) {                                               \
			fprintf(stderr,                                       \
				"%s:%d: %s: %s == %s failed: %lld != %lld\n", \
				__FILE__, __LINE__, __func__, #a, #b, _a,     \
				_b);                                          \
			exit(1);                                              \
		}                                                             \
	} while (0)

/* Count this process's open fds (for leak checks). */
static inline int test_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

/* Count this process's mappings (for leak checks). */
static inline int test_count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0, c;

	if (!f)
		return -errno;
	while ((c = fgetc(f)) != EOF)
		if (c == '\n')
			n++;
	fclose(f);
	return n;
}

/*
 * fds the test inherited (make's jobserver, for one) are not ours: take a
 * snapshot first, then check only the fds opened since.
 */
#define TEST_MAX_FD 4096
struct test_fdset {
	unsigned char open[TEST_MAX_FD];
};

static inline void test_fdset_snapshot(struct test_fdset *set)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;

	memset(set, 0, sizeof(*set));
	if (!d)
		return;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);

		if (de->d_name[0] != '.' && fd < TEST_MAX_FD)
			set->open[fd] = 1;
	}
	closedir(d);
}

/* Every fd opened since the snapshot must be close-on-exec; returns how many are not. */
static inline int test_new_fds_without_cloexec(const struct test_fdset *before)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int bad = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		int fl;

		if (de->d_name[0] == '.' || fd == dirfd(d) ||
		    (fd < TEST_MAX_FD && before->open[fd]))
			continue;
		fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && !(fl & FD_CLOEXEC)) {
			fprintf(stderr, "fd %d is not O_CLOEXEC\n", fd);
			bad++;
		}
	}
	closedir(d);
	return bad;
}

#endif
