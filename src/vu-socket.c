// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user socket modes: listen on a path (server), connect to a path
 * with retries (client), or adopt an already connected fd ("--fd").
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "libvhost-internal.h"
#include "vu-msg.h"

static int fill_sun(struct sockaddr_un *sun, const char *path)
{
	size_t len = strlen(path);

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len + 1);
	return 0;
}

int vh_vu_socket_listen(struct vh_ctx *ctx, const char *path, int backlog,
			bool nonblock)
{
	struct sockaddr_un sun;
	char tmp[sizeof(sun.sun_path)];
	struct timespec ts;
	const char *slash;
	int fd, r, n;

	if (!path)
		return -EINVAL;
	r = fill_sun(&sun, path);
	if (r < 0)
		return r;

	/*
	 * A temporary name in the same directory (rename() cannot cross
	 * file systems): "<dir>/.vu-<pid>-<ns>.tmp".
	 */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	slash = strrchr(path, '/');
	n = snprintf(tmp, sizeof(tmp), "%.*s.vu-%d-%ld.tmp",
		     slash ? (int)(slash - path + 1) : 0, path, (int)getpid(),
		     (long)ts.tv_nsec);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return -ENAMETOOLONG;
	r = fill_sun(&sun, tmp);
	if (r < 0)
		return r;

	fd = socket(AF_UNIX,
		    SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0),
		    0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		r = -errno;
		vh_err(ctx, "bind %s: %s\n", tmp, strerror(-r));
		goto err;
	}
	if (listen(fd, backlog > 0 ? backlog : 16) < 0) {
		r = -errno;
		unlink(tmp);
		goto err;
	}
	if (rename(tmp, path) < 0) {
		r = -errno;
		vh_err(ctx, "rename %s -> %s: %s\n", tmp, path, strerror(-r));
		unlink(tmp);
		goto err;
	}
	vh_dbg(ctx, "listening on %s (fd %d)\n", path, fd);
	return fd;
err:
	close(fd);
	return r;
}

int vh_vu_socket_accept(struct vh_ctx *ctx, int listen_fd, bool nonblock)
{
	int fd;

	do {
		fd = accept4(listen_fd, NULL, NULL,
			     SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0));
	} while (fd < 0 && errno == EINTR);
	if (fd < 0)
		return -errno;
	vh_dbg(ctx, "accepted fd %d\n", fd);
	return fd;
}

/*
 * One non-blocking connect().  AF_UNIX completes or fails at once (EAGAIN
 * when the listener's backlog is full); EINPROGRESS is handled anyway, up
 * to the deadline.
 */
static int connect_once(int fd, const struct sockaddr_un *sun, int64_t deadline)
{
	socklen_t len = sizeof(int);
	int r, err;

	do {
		r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -errno;
	r = vh_vu_wait_fd(fd, POLLOUT, deadline);
	if (r < 0)
		return r == -ETIMEDOUT ? -EAGAIN : r;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

int vh_vu_socket_connect(struct vh_ctx *ctx, const char *path, int timeout_ms)
{
	struct sockaddr_un sun;
	int64_t deadline;
	int fd, r;

	if (!path)
		return -EINVAL;
	r = fill_sun(&sun, path);
	if (r < 0)
		return r;
	deadline = vh_vu_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);

	for (;;) {
		int64_t left;

		/*
		 * Non-blocking: a blocking connect() to a listener whose
		 * backlog is full sleeps in the kernel until it accepts,
		 * which a hostile back-end never does.
		 */
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    0);
		if (fd < 0)
			return -errno;
		r = connect_once(fd, &sun, deadline);
		if (r == 0) {
			int fl = fcntl(fd, F_GETFL);

			/* documented as blocking: callers set O_NONBLOCK */
			if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
				r = -errno;
				close(fd);
				return r;
			}
			vh_dbg(ctx, "connected to %s (fd %d)\n", path, fd);
			return fd;
		}
		close(fd);
		/* a server that is starting: not there yet, or backlog full */
		if (r != -ENOENT && r != -ECONNREFUSED && r != -EAGAIN) {
			vh_err(ctx, "connect %s: %s\n", path, strerror(-r));
			return r;
		}
		left = deadline - vh_vu_now_ms();
		if (left <= 0) {
			vh_err(ctx, "connect %s: %s, gave up after %d ms\n",
			       path, strerror(-r), timeout_ms);
			return timeout_ms > 0 ? -ETIMEDOUT : r;
		}
		if (left > 20)
			left = 20;
		nanosleep(&(struct timespec){ 0, left * 1000 * 1000 }, NULL);
	}
}

int vh_vu_socket_adopt(struct vh_ctx *ctx, int fd)
{
	struct sockaddr_un peer;
	socklen_t len = sizeof(int);
	int v, flags;

	if (fd < 0)
		return -EBADF;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0)
		return -errno; /* ENOTSOCK for a non-socket */
	if (v != AF_UNIX)
		return -EAFNOSUPPORT;
	len = sizeof(int);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0)
		return -errno;
	if (v != SOCK_STREAM)
		return -EPROTOTYPE;
	len = sizeof(peer);
	if (getpeername(fd, (struct sockaddr *)&peer, &len) < 0)
		return -errno; /* ENOTCONN */
	flags = fcntl(fd, F_GETFD);
	if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
		return -errno;
	vh_dbg(ctx, "adopted fd %d\n", fd);
	return 0;
}
