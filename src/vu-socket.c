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
#include <sys/stat.h>
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

/*
 * rename() that fails with EEXIST rather than replace newpath; a plain
 * rename() on a file system without RENAME_NOREPLACE (EINVAL).
 */
static int rename_noreplace(const char *oldpath, const char *newpath)
{
	int r = renameat2(AT_FDCWD, oldpath, AT_FDCWD, newpath,
			  RENAME_NOREPLACE);

	if (r < 0 && (errno == EINVAL || errno == ENOSYS))
		r = rename(oldpath, newpath);
	return r;
}

/*
 * What is at sun's path before we listen there: 0 nothing (*stale false)
 * or a stale socket nobody listens on (connect() refused: *stale true);
 * -EADDRINUSE a live socket (connect() succeeds, or its backlog is full,
 * or it is a bound socket of another type); -EEXIST not a socket; or the
 * -errno that keeps us from telling (EACCES: another user's socket).  The
 * probe connection a live listener may see is closed at once.
 */
static int path_check(struct vh_ctx *ctx, const struct sockaddr_un *sun,
		      bool *stale)
{
	struct stat st;
	int fd, r;

	*stale = false;
	if (lstat(sun->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		vh_err(ctx, "%s: exists and is not a socket\n", sun->sun_path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	do {
		r = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	} while (r < 0 && errno == EINTR);
	r = r < 0 ? -errno : 0;
	close(fd);
	switch (r) {
	case -ECONNREFUSED:
		*stale = true;
		return 0;
	case -ENOENT: /* gone meanwhile */
		return 0;
	case 0:
	case -EAGAIN:
	case -EINPROGRESS:
	case -EPROTOTYPE:
		vh_err(ctx, "%s: in use (a live socket)\n", sun->sun_path);
		return -EADDRINUSE;
	default:
		vh_err(ctx, "%s: cannot tell whether it is in use: %s\n",
		       sun->sun_path, strerror(-r));
		return r;
	}
}

int vh_vu_socket_listen_id(struct vh_ctx *ctx, const char *path, int backlog,
			   bool nonblock, struct vh_vu_sock_id *id)
{
	struct sockaddr_un sun, bsun;
	char tmp[sizeof(sun.sun_path)];
	struct timespec ts;
	const char *slash;
	struct stat st;
	bool stale, direct;
	int fd, r, n;

	if (!path)
		return -EINVAL;
	r = fill_sun(&sun, path);
	if (r < 0)
		return r;
	r = path_check(ctx, &sun, &stale);
	if (r < 0)
		return r;

	/*
	 * A temporary name in the same directory (rename() cannot cross
	 * file systems): "<dir>/.vu-<pid>-<ns>.tmp".  Where it does not fit
	 * sun_path (a path within ~25 bytes of its end), path itself is
	 * bound, after the stale socket is removed.
	 */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	slash = strrchr(path, '/');
	n = snprintf(tmp, sizeof(tmp), "%.*s.vu-%d-%ld.tmp",
		     slash ? (int)(slash - path + 1) : 0, path, (int)getpid(),
		     (long)ts.tv_nsec);
	direct = n < 0 || (size_t)n >= sizeof(tmp);
	if (direct) {
		if (stale && unlink(path) < 0 && errno != ENOENT)
			return -errno;
		bsun = sun;
	} else {
		r = fill_sun(&bsun, tmp);
		if (r < 0)
			return r;
	}

	fd = socket(AF_UNIX,
		    SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0),
		    0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&bsun, sizeof(bsun)) < 0) {
		r = -errno;
		vh_err(ctx, "bind %s: %s\n", bsun.sun_path, strerror(-r));
		goto err;
	}
	/* the file we bound: rename() keeps it, the owner compares it */
	if (lstat(bsun.sun_path, &st) < 0 ||
	    listen(fd, backlog > 0 ? backlog : 16) < 0) {
		r = -errno;
		unlink(bsun.sun_path);
		goto err;
	}
	if (!direct) {
		/* nothing was there: what appeared since is not replaced */
		r = stale ? rename(tmp, path) : rename_noreplace(tmp, path);
		if (r < 0) {
			r = errno == EEXIST ? -EADDRINUSE : -errno;
			vh_err(ctx, "rename %s -> %s: %s\n", tmp, path,
			       strerror(-r));
			unlink(tmp);
			goto err;
		}
	}
	if (id) {
		id->dev = st.st_dev;
		id->ino = st.st_ino;
	}
	vh_dbg(ctx, "listening on %s (fd %d)%s\n", path, fd,
	       stale ? ", a stale socket replaced" : "");
	return fd;
err:
	close(fd);
	return r;
}

int vh_vu_socket_listen(struct vh_ctx *ctx, const char *path, int backlog,
			bool nonblock)
{
	return vh_vu_socket_listen_id(ctx, path, backlog, nonblock, NULL);
}

int vh_vu_socket_unlink_id(struct vh_ctx *ctx, const char *path,
			   const struct vh_vu_sock_id *id)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return -errno;
	if (!S_ISSOCK(st.st_mode) || st.st_dev != id->dev ||
	    st.st_ino != id->ino) {
		vh_info(ctx, "%s: not ours any more, left alone\n", path);
		return -ESTALE;
	}
	return unlink(path) < 0 ? -errno : 0;
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

/*
 * vhost-user runs over a unix stream socket (vhost-user.rst,
 * "Communication"): anything else handed to us, a TCP socket above all,
 * would serve guest memory and the device to whoever reaches it.
 */
static int socket_is_unix_stream(int fd)
{
	socklen_t len = sizeof(int);
	int v;

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
	return 0;
}

int vh_vu_socket_adopt_listen(struct vh_ctx *ctx, int fd)
{
	socklen_t len = sizeof(int);
	int r, v;

	r = socket_is_unix_stream(fd);
	if (r < 0)
		return r;
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &len) < 0)
		return -errno;
	if (!v)
		return -EINVAL;
	vh_dbg(ctx, "adopted listening fd %d\n", fd);
	return 0;
}

int vh_vu_socket_adopt(struct vh_ctx *ctx, int fd)
{
	struct sockaddr_un peer;
	socklen_t len;
	int r, flags;

	r = socket_is_unix_stream(fd);
	if (r < 0)
		return r;
	len = sizeof(peer);
	if (getpeername(fd, (struct sockaddr *)&peer, &len) < 0)
		return -errno; /* ENOTCONN */
	flags = fcntl(fd, F_GETFD);
	if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
		return -errno;
	vh_dbg(ctx, "adopted fd %d\n", fd);
	return 0;
}
