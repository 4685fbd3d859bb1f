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
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
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
/* CLOCK_MONOTONIC in milliseconds */
static inline int64_t test_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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

/* Mappings of memfds: thread stacks and sanitizer arenas do not count. */
static inline int count_memfd_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[512];
	int n = 0;

	CHECK(f != NULL);
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "/memfd:"))
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

		/* not the DIR's own fd: the next fd opened reuses its number */
		if (de->d_name[0] != '.' && fd != dirfd(d) && fd < TEST_MAX_FD)
			set->open[fd] = 1;
	}
	closedir(d);
}

/*
 * Every fd opened since the snapshot and open now must be close-on-exec.
 * Returns how many are not; *nnew (if set) gets how many new fds were
 * looked at, so that a caller can tell a check of its objects' fds from a
 * scan that found nothing to check.
 */
static inline int test_new_fds_without_cloexec_n(const struct test_fdset *before,
						 int *nnew)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int bad = 0, n = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		int fd = atoi(de->d_name);
		int fl;

		if (de->d_name[0] == '.' || fd == dirfd(d) ||
		    (fd < TEST_MAX_FD && before->open[fd]))
			continue;
		fl = fcntl(fd, F_GETFD);
		if (fl < 0)
			continue; /* closed meanwhile (another thread) */
		n++;
		if (!(fl & FD_CLOEXEC)) {
			char link[64], target[256];
			ssize_t len;

			snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
			len = readlink(link, target, sizeof(target) - 1);
			target[len > 0 ? len : 0] = '\0';
			fprintf(stderr, "fd %d (%s) is not O_CLOEXEC\n", fd,
				target);
			bad++;
		}
	}
	closedir(d);
	if (nnew)
		*nnew = n;
	return bad;
}

static inline int test_new_fds_without_cloexec(const struct test_fdset *before)
{
	return test_new_fds_without_cloexec_n(before, NULL);
}

/*
 * While the objects under test are alive: every fd opened since the
 * snapshot is close-on-exec, and there are at least min_new of them (the
 * objects' own fds, so the scan cannot pass by finding nothing).
 */
#define CHECK_NEW_FDS_CLOEXEC(before, min_new)                                \
	do {                                                                  \
		int _n = 0;                                                   \
		int _bad = test_new_fds_without_cloexec_n((before), &_n);     \
		if (_bad != 0 || _n < (int)(min_new)) {                       \
			fprintf(stderr,                                       \
				"%s:%d: %s: %d of %d new fds without "        \
				"O_CLOEXEC (at least %d expected open)\n",    \
				__FILE__, __LINE__, __func__, _bad, _n,       \
				(int)(min_new));                              \
			exit(1);                                              \
		}                                                             \
	} while (0)

/* fd (one the library returned or created) is open and close-on-exec. */
#define CHECK_CLOEXEC(fd)                                                     \
	do {                                                                  \
		int _fd = (fd);                                               \
		int _fl = fcntl(_fd, F_GETFD);                                \
		if (_fl < 0 || !(_fl & FD_CLOEXEC)) {                         \
			fprintf(stderr, "%s:%d: %s: fd %s = %d %s\n",         \
				__FILE__, __LINE__, __func__, #fd, _fd,       \
				_fl < 0 ? "is not open" :                     \
					  "is not O_CLOEXEC");                \
			exit(1);                                              \
		}                                                             \
	} while (0)

struct vh_ctx;

/*
 * A log function (vh_ctx_set_log_fn(ctx, test_log_count_fn, &count)) that
 * counts the lines containing needle: warnings (LOG_WARNING or more
 * urgent) and notes (the rest).
 */
struct test_log_count {
	const char *needle;
	int warnings, notes;
};

__attribute__((format(printf, 7, 0))) static inline void
test_log_count_fn(struct vh_ctx *ctx, void *data, int priority,
		  const char *file, int line, const char *fn,
		  const char *format, va_list args)
{
	struct test_log_count *c = data;
	char msg[256];

	vsnprintf(msg, sizeof(msg), format, args);
	if (!strstr(msg, c->needle))
		return;
	if (priority <= LOG_WARNING)
		c->warnings++;
	else
		c->notes++;
}

#define TEST_HUGE_DIR "/sys/kernel/mm/hugepages/hugepages-2048kB/"
/* the pool's size before test_huge_page_ready() grew it; -1: untouched */
static inline long *test_huge_pool_before(void)
{
	static long v = -1;

	return &v;
}

static inline long test_huge_read(const char *name)
{
	char path[128], buf[32];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), TEST_HUGE_DIR "%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	return strtol(buf, NULL, 10);
}

static inline bool test_huge_write_nr(long nr)
{
	char buf[32];
	int len = snprintf(buf, sizeof(buf), "%ld\n", nr);
	int fd = open(TEST_HUGE_DIR "nr_hugepages", O_WRONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = write(fd, buf, (size_t)len) == len;
	close(fd);
	return ok;
}

static inline void test_huge_pool_restore(void)
{
	if (*test_huge_pool_before() >= 0)
		test_huge_write_nr(*test_huge_pool_before());
}

/*
 * One free 2 MiB huge page: as root the pool grows by one when none is
 * free (and shrinks back at exit); else false.
 */
static inline bool test_huge_page_ready(void)
{
	long nr, free = test_huge_read("free_hugepages");

	if (free >= 1)
		return true;
	nr = test_huge_read("nr_hugepages");
	if (geteuid() != 0 || nr < 0)
		return false;
	if (*test_huge_pool_before() < 0) {
		*test_huge_pool_before() = nr;
		atexit(test_huge_pool_restore);
	}
	CHECK(test_huge_write_nr(nr + 1));
	return test_huge_read("free_hugepages") >= 1;
}


#endif
