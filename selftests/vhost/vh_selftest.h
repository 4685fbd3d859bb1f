/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers shared by the vhost selftests: a guest memory arena backed by a
 * vh_mem memfd region, eventfds and polling.  Include after
 * kselftest_harness.h.
 */
#ifndef _VH_SELFTEST_H_
#define _VH_SELFTEST_H_

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvhost.h"

/* Write s to a sysfs or configfs file: 0 or -errno (-EIO: cut short). */
static inline int st_write_file(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, s, strlen(s));
	n = n < 0 ? -errno : n == (ssize_t)strlen(s) ? 0 : -EIO;
	close(fd);
	return (int)n;
}

/* Read a small file into buf, NUL-terminated, trailing newlines cut. */
static inline int st_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	return 0;
}

/*
 * Load a module the program needs, as a lab's bare image boots without
 * them: `modprobe -q module`, quietly, at most 20 s.  Failure is ignored
 * (built in, absent, no modprobe, not root): the caller then looks for
 * its device and skips without it.
 */
static inline void st_need_module(const char *module)
{
	char path[128];
	pid_t pid;
	int st, i;

	snprintf(path, sizeof(path), "/sys/module/%s", module);
	if (access(path, F_OK) == 0)
		return;
	pid = fork();
	if (pid == 0) {
		int fd = open("/dev/null", O_RDWR);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("modprobe", "modprobe", "-q", module, (char *)NULL);
		_exit(127);
	}
	if (pid < 0)
		return;
	for (i = 0; i < 2000; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		/* -1: reaped elsewhere (SIGCHLD ignored): it is gone */
		if (r == pid || (r < 0 && errno != EINTR))
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
}

/* Guest memory: one region at gpa 0, handed out by a bump allocator. */
struct st_guest {
	struct vh_mem *mem;
	uint8_t *host;
	uint64_t size;
	uint64_t next;
};

static inline int st_guest_init(struct st_guest *g, struct vh_ctx *ctx,
				uint64_t size)
{
	void *host = NULL;
	int err;

	memset(g, 0, sizeof(*g));
	/* vhost wants page-aligned regions (<linux/vhost_types.h>) */
	size = (size + 4095) & ~4095ULL;
	err = vh_mem_new(ctx, &g->mem);
	if (err)
		return err;
	err = vh_mem_add_memfd(g->mem, 0, size, &host);
	if (err) {
		g->mem = vh_mem_unref(g->mem);
		return err;
	}
	g->host = host;
	g->size = size;
	g->next = 0x1000; /* keep gpa 0 unused: it looks like NULL */
	return 0;
}

static inline void st_guest_fini(struct st_guest *g)
{
	vh_mem_unref(g->mem);
	memset(g, 0, sizeof(*g));
}

/* Allocate len bytes of guest memory at an align-aligned gpa; 0 if full. */
static inline uint64_t st_guest_alloc(struct st_guest *g, uint64_t len,
				      uint64_t align)
{
	uint64_t gpa = (g->next + align - 1) & ~(align - 1);

	if (gpa + len > g->size)
		return 0;
	g->next = gpa + len;
	return gpa;
}

static inline void *st_gpa(struct st_guest *g, uint64_t gpa)
{
	return g->host + gpa;
}

static inline int st_eventfd(void)
{
	return eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

/* Wait up to ms for fd to be readable: 1 ready, 0 timeout, -errno. */
static inline int st_wait_fd(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r;

	do {
		r = poll(&p, 1, ms);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* Consume an eventfd's count (non-blocking); 1 if it was signalled. */
static inline int st_eventfd_drain(int fd)
{
	uint64_t v;

	return read(fd, &v, sizeof(v)) == sizeof(v);
}

static inline uint64_t st_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* A reproducible byte pattern (xorshift), so receivers can check bytes. */
static inline void st_fill(void *buf, size_t len, uint32_t seed)
{
	uint8_t *p = buf;
	uint32_t x = seed * 2654435761u + 1;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

#endif
