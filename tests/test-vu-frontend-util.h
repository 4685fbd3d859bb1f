/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Helpers for the front-end tests against real back-ends: find the peer
 * binary (SKIP without it), run it in a private directory, kill it on every
 * exit path (atexit, and PDEATHSIG should we die without running atexit).
 */
#ifndef _VH_TEST_VU_FRONTEND_UTIL_H_
#define _VH_TEST_VU_FRONTEND_UTIL_H_

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test-util.h"

static pid_t peer_pid = -1;
static char peer_dir[64];
static char peer_log[128];
static const char *peer_cleanup_extra; /* a directory to rm -rf, e.g. DPDK's */

static inline void peer_kill(void)
{
	int status, i;

	if (peer_pid <= 0)
		return;
	kill(peer_pid, SIGTERM);
	for (i = 0; i < 300; i++) {
		if (waitpid(peer_pid, &status, WNOHANG) == peer_pid) {
			peer_pid = -1;
			return;
		}
		nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
	}
	kill(peer_pid, SIGKILL);
	waitpid(peer_pid, &status, 0);
	peer_pid = -1;
}

static inline void rm_rf(const char *dir)
{
	char cmd[256];

	if (!dir || !dir[0] || strncmp(dir, "/tmp/", 5) != 0 || strstr(dir, ".."))
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}

static inline void peer_atexit(void)
{
	peer_kill();
	if (getenv("VUFE_KEEP") == NULL) {
		rm_rf(peer_dir);
		if (peer_cleanup_extra) {
			char cmd[256];

			snprintf(cmd, sizeof(cmd), "rm -rf '%s'",
				 peer_cleanup_extra);
			if (system(cmd) != 0)
				fprintf(stderr, "could not remove %s\n",
					peer_cleanup_extra);
		}
	}
}

/* Exit 77 (SKIP) unless prog is in PATH; returns its full path. */
static inline const char *peer_find(const char *prog)
{
	static char buf[512];
	const char *path = getenv("PATH");
	char *dup, *p, *save = NULL;

	if (!path)
		path = "/usr/bin:/bin";
	dup = strdup(path);
	CHECK(dup);
	for (p = strtok_r(dup, ":", &save); p; p = strtok_r(NULL, ":", &save)) {
		snprintf(buf, sizeof(buf), "%s/%s", p, prog);
		if (access(buf, X_OK) == 0) {
			free(dup);
			return buf;
		}
	}
	free(dup);
	printf("SKIP: %s not found\n", prog);
	exit(TEST_SKIP);
}

/* The private directory for sockets and images: /tmp/<tag>.XXXXXX */
static inline const char *peer_mkdir(const char *tag)
{
	snprintf(peer_dir, sizeof(peer_dir), "/tmp/%s.XXXXXX", tag);
	CHECK(mkdtemp(peer_dir));
	snprintf(peer_log, sizeof(peer_log), "%s/peer.log", peer_dir);
	atexit(peer_atexit);
	return peer_dir;
}

static inline void peer_start(const char *const argv[])
{
	int fd;

	peer_pid = fork();
	CHECK(peer_pid >= 0);
	if (peer_pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		fd = open(peer_log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			  0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd >= 0)
			dup2(fd, 0);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
}

/* Dump the peer's log (on failure, for the test log). */
static inline void peer_dump_log(void)
{
	char buf[4096];
	ssize_t n;
	int fd = open(peer_log, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return;
	fprintf(stderr, "---- %s ----\n", peer_log);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stderr);
	close(fd);
	fprintf(stderr, "----\n");
}

/* Is the peer still running? */
static inline int peer_alive(void)
{
	int status;

	if (peer_pid <= 0)
		return 0;
	if (waitpid(peer_pid, &status, WNOHANG) == peer_pid) {
		fprintf(stderr, "peer exited with status %#x\n", status);
		peer_pid = -1;
		peer_dump_log();
		return 0;
	}
	return 1;
}

/* Wait until path is a socket (the peer is listening), up to ms. */
static inline int peer_wait_socket(const char *path, int ms)
{
	struct stat st;
	int i;

	for (i = 0; i < ms / 20; i++) {
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			return 0;
		if (!peer_alive())
			return -ECHILD;
		nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
	}
	return -ETIMEDOUT;
}

/* Wait for an eventfd to be signalled, up to ms: 1 signalled, 0 timeout. */
static inline int efd_wait(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t v;
	int r;

	do {
		r = poll(&pfd, 1, ms);
	} while (r < 0 && errno == EINTR);
	if (r <= 0)
		return 0;
	if (read(fd, &v, sizeof(v)) != sizeof(v))
		return 0;
	return 1;
}

#endif
