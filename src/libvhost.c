// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvhost context: reference counting, logging and caller data.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "libvhost-internal.h"

struct vh_ctx {
	int refcount;
	vh_log_fn log_fn;
	void *log_data;
	int log_priority;
	void *userdata;
};

/* No priority at all: below LOG_EMERG, so nothing passes the check. */
#define VH_LOG_OFF (-1)

void vh_close_keep_errno(int fd)
{
	int saved = errno;

	if (fd >= 0)
		close(fd);
	errno = saved;
}

void vh_close_peer_fd(int fd)
{
	static const struct linger off = { .l_onoff = 0 };

	if (fd < 0)
		return;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &off, sizeof(off));
	close(fd);
}

int vh_fd_check_anon(int fd, const char *name)
{
	char path[40], link[64], want[64];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return -errno;
	/* an anonymous inode has no file type */
	if ((st.st_mode & S_IFMT) != 0)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return 0; /* no /proc: the file type has to do */
	link[n] = '\0';
	snprintf(want, sizeof(want), "anon_inode:[%s]", name);
	return strcmp(link, want) == 0 ? 0 : -EBADF;
}

/*
 * SIGPIPE blocked in this thread around one write-like call, and the one
 * that call raised taken back: the caller sees EPIPE (the process's
 * disposition and a SIGPIPE already pending are left alone).
 */
struct sigpipe_guard {
	sigset_t set, old;
	bool was_pending;
};

static void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t pending;

	sigemptyset(&g->set);
	sigaddset(&g->set, SIGPIPE);
	g->was_pending = sigpending(&pending) == 0 &&
			 sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &g->set, &g->old);
}

/* n, errno: what the call returned; both are kept */
static void sigpipe_unblock(struct sigpipe_guard *g, ssize_t n)
{
	const struct timespec zero = { 0, 0 };
	int e = errno;

	if (n < 0 && e == EPIPE && !g->was_pending)
		while (sigtimedwait(&g->set, NULL, &zero) < 0 && errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	errno = e;
}

int vh_eventfd_signal(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	uint64_t one = 1;
	int r;

	do
		r = poll(&p, 1, 0);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	if (p.revents & POLLNVAL)
		return -EBADF;
	/* POLLERR: the counter overflowed (eventfd(2)); full: pending */
	if (!(p.revents & POLLOUT))
		return 0;
	if (write(fd, &one, sizeof(one)) == sizeof(one))
		return 1;
	return errno == EAGAIN ? 0 : -errno;
}

int vh_eventfd_take(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	uint64_t v;
	struct iovec iov = { &v, sizeof(v) };
	ssize_t n;

	do
		n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(v))
		return 1;
	if (n < 0 && errno == EAGAIN)
		return 0;
	if (n >= 0 || errno != EOPNOTSUPP)
		return n < 0 ? -errno : -EIO;
	if (poll(&p, 1, 0) <= 0 || !(p.revents & POLLIN))
		return 0;
	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return errno == EAGAIN ? 0 : -errno;
	return 1;
}

ssize_t vh_write_nosigpipe(int fd, const void *buf, size_t len)
{
	struct sigpipe_guard g;
	ssize_t n;

	sigpipe_block(&g);
	n = write(fd, buf, len);
	sigpipe_unblock(&g, n);
	return n;
}

/*
 * Pipe to pipe, never waiting: fs/splice.c (6.12) do_splice() hands two
 * pipes to splice_pipe_to_pipe(), whose ipipe_prep(), opipe_prep() and
 * copy loop return -EAGAIN on an empty input or a full output when
 * SPLICE_F_NONBLOCK is set, whatever O_NONBLOCK says on either file (the
 * flag only adds SPLICE_F_NONBLOCK, it never takes it away).  A reader-less
 * output raises SIGPIPE there (EPIPE): taken back as for a write.
 */
static ssize_t splice_nowait(int in, int out, size_t len)
{
	struct sigpipe_guard g;
	ssize_t n;

	do {
		sigpipe_block(&g);
		n = splice(in, NULL, out, NULL, len, SPLICE_F_NONBLOCK);
		sigpipe_unblock(&g, n);
	} while (n < 0 && errno == EINTR);
	return n;
}

int vh_peer_io_open(struct vh_ctx *ctx, struct vh_peer_io *io, int fd,
		    const char *what)
{
	struct stat st;
	char path[32];
	int fl, nfd, e;

	*io = (struct vh_peer_io){ .kind = VH_PEER_IO_PLAIN,
				   .pipe = { -1, -1 } };
	if (fstat(fd, &st) < 0)
		return -errno;
	/* every send and receive is MSG_DONTWAIT: the flags are left alone */
	if (S_ISSOCK(st.st_mode)) {
		io->kind = VH_PEER_IO_SOCK;
		return fd;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (!S_ISFIFO(st.st_mode)) {
		/*
		 * A character device or a file: made non-blocking as it is,
		 * which the peer's copy can undo.  Nothing better exists for
		 * them: opening one again makes another instance (a new
		 * terminal of a ptmx, another stream), splice() to or from
		 * one waits as that file's own read or write does
		 * (SPLICE_F_NONBLOCK is about the pipe side only), and
		 * RWF_NOWAIT needs FMODE_NOWAIT, which few of them have.
		 */
		if (!(fl & O_NONBLOCK) &&
		    fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
			vh_warn(ctx, "%s: O_NONBLOCK: %s\n", what,
				strerror(errno));
		return fd;
	}
	/*
	 * A path handle is no pipe end: opening it would make one, with our
	 * rights, of a FIFO the peer could only name.
	 */
	if (fl & O_PATH)
		return -EBADF;
	/*
	 * O_NONBLOCK is a flag of the open file description, which the peer
	 * shares through its own copy of the end and can clear again.  So
	 * the pipe is opened again through /proc/self/fd, with the access
	 * mode the peer gave (a write end stays one, so its reader's close
	 * is still EPIPE): a description of our own.
	 */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, (fl & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
	if (nfd >= 0) {
		close(fd);
		return nfd;
	}
	/*
	 * Not ours to open (EACCES, EPERM: another user's pipe, or its owner
	 * took its mode away), no /proc (ENOENT), or a FIFO's write end
	 * without a reader now (ENXIO; a reader may still open it, until
	 * then a write fails with EPIPE as after a reader's close).  None
	 * makes fd unusable, and the peer may send any fd.  fd is used as it
	 * is, its flags left alone, through a pipe of our own and splice():
	 * pipe to pipe, SPLICE_F_NONBLOCK never waits (splice_nowait()).
	 * Not vmsplice() (the pages would stay ours, seen by the peer), not
	 * RWF_NOWAIT (a FIFO has no FMODE_NOWAIT, and any splice() on the
	 * pipe, the peer's included, clears it: pipe_clear_nowait()).
	 */
	e = errno;
	if (pipe2(io->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
		io->pipe[0] = io->pipe[1] = -1;
		return -errno;
	}
	io->kind = VH_PEER_IO_SPLICE;
	vh_info(ctx,
		"%s: pipe not opened again (%s): relayed through a pipe of our own\n",
		what, strerror(e));
	return fd;
}

void vh_peer_io_close(struct vh_peer_io *io, int fd)
{
	vh_close_peer_fd(fd);
	if (io->kind == VH_PEER_IO_SPLICE) {
		close(io->pipe[0]);
		close(io->pipe[1]);
	}
	*io = (struct vh_peer_io){ .kind = VH_PEER_IO_PLAIN,
				   .pipe = { -1, -1 } };
}

/*
 * The first io->pending bytes of buf are in our pipe already (an earlier
 * call's, which returned before they all went out); with none there, as
 * much of buf as fits goes in (an empty pipe takes at least PIPE_BUF at
 * once).  Then on to fd.
 */
static ssize_t splice_write(struct vh_peer_io *io, int fd, const void *buf,
			    size_t len)
{
	ssize_t n;

	if (io->pending > len)
		return -EINVAL;
	if (!io->pending) {
		do
			n = write(io->pipe[1], buf, len);
		while (n < 0 && errno == EINTR);
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		io->pending = (size_t)n;
	}
	n = splice_nowait(io->pipe[0], fd, io->pending);
	if (n < 0)
		return -errno;
	/* 0 is an input without data or writer: not our pipe */
	if (n == 0)
		return -EIO;
	io->pending -= (size_t)n;
	return n;
}

/*
 * Up to len bytes from fd into our pipe, and all of them out again: the
 * pipe is empty after each call, as splice_write() wants it.  (A read
 * ends at a packet of a packet-mode pipe, whose buffers keep their flag.)
 */
static ssize_t splice_read(struct vh_peer_io *io, int fd, void *buf, size_t len)
{
	size_t got = 0;
	ssize_t n;

	n = splice_nowait(fd, io->pipe[1], len);
	if (n <= 0)
		return n < 0 ? -errno : 0;
	while (got < (size_t)n) {
		ssize_t r = read(io->pipe[0], (char *)buf + got,
				 (size_t)n - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		got += (size_t)r;
	}
	return n;
}

ssize_t vh_peer_io_write(struct vh_peer_io *io, int fd, const void *buf,
			 size_t len)
{
	ssize_t n;

	if (!len)
		return 0;
	if (io->kind == VH_PEER_IO_SPLICE)
		return splice_write(io, fd, buf, len);
	do
		n = io->kind == VH_PEER_IO_SOCK ?
			    send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) :
			    vh_write_nosigpipe(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

ssize_t vh_peer_io_read(struct vh_peer_io *io, int fd, void *buf, size_t len)
{
	ssize_t n;

	if (!len)
		return 0;
	if (io->kind == VH_PEER_IO_SPLICE)
		return splice_read(io, fd, buf, len);
	do
		n = io->kind == VH_PEER_IO_SOCK ?
			    recv(fd, buf, len, MSG_DONTWAIT) :
			    read(fd, buf, len);
	while (n < 0 && errno == EINTR);
	return n < 0 ? -errno : n;
}

void vh_log(const struct vh_ctx *ctx, int priority, const char *file,
	    int line, const char *fn, const char *format, ...)
{
	int saved = errno;
	va_list args;

	if (!ctx->log_fn)
		return;
	va_start(args, format);
	/* the log function gets the context as every callback its caller */
	ctx->log_fn((struct vh_ctx *)ctx, ctx->log_data, priority, file, line,
		    fn, format, args);
	va_end(args);
	/* stdio or the application's function may have changed it */
	errno = saved;
}

__attribute__((format(printf, 7, 0))) static void
log_stderr(struct vh_ctx *ctx, void *data, int priority, const char *file,
	   int line, const char *fn, const char *format, va_list args)
{
	fprintf(stderr, "libvhost: %s: ", fn);
	vfprintf(stderr, format, args);
}

static int log_priority_from_string(const char *s)
{
	char *end;
	long prio;

	prio = strtol(s, &end, 10);
	if (end != s && (*end == '\0' || isspace((unsigned char)*end)))
		return prio < VH_LOG_OFF ? VH_LOG_OFF :
		       prio > LOG_DEBUG	 ? LOG_DEBUG :
					   (int)prio;
	if (strncmp(s, "err", 3) == 0)
		return LOG_ERR;
	if (strncmp(s, "warn", 4) == 0)
		return LOG_WARNING;
	if (strncmp(s, "info", 4) == 0)
		return LOG_INFO;
	if (strncmp(s, "debug", 5) == 0)
		return LOG_DEBUG;
	return VH_LOG_OFF;
}

VH_EXPORT int vh_ctx_new(struct vh_ctx **ctx)
{
	struct vh_ctx *c;
	const char *env;

	if (!ctx)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->refcount = 1;
	c->log_fn = log_stderr;
	c->log_priority = VH_LOG_OFF;

	/* secure_getenv: a setuid caller must not be made to log by its user. */
	env = secure_getenv("LIBVHOST_LOG");
	if (env)
		c->log_priority = log_priority_from_string(env);

	vh_info(c, "ctx %p created\n", (void *)c);
	*ctx = c;
	return 0;
}

VH_EXPORT struct vh_ctx *vh_ctx_ref(struct vh_ctx *ctx)
{
	if (!ctx)
		return NULL;
	__atomic_add_fetch(&ctx->refcount, 1, __ATOMIC_RELAXED);
	return ctx;
}

VH_EXPORT struct vh_ctx *vh_ctx_unref(struct vh_ctx *ctx)
{
	if (!ctx)
		return NULL;
	if (__atomic_sub_fetch(&ctx->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return ctx;
	vh_info(ctx, "ctx %p released\n", (void *)ctx);
	free(ctx);
	return NULL;
}

VH_EXPORT void vh_ctx_set_log_fn(struct vh_ctx *ctx, vh_log_fn log_fn,
				 void *data)
{
	if (!ctx)
		return;
	ctx->log_fn = log_fn;
	ctx->log_data = data;
}

VH_EXPORT int vh_ctx_get_log_priority(const struct vh_ctx *ctx)
{
	return ctx ? ctx->log_priority : VH_LOG_OFF;
}

VH_EXPORT void vh_ctx_set_log_priority(struct vh_ctx *ctx, int priority)
{
	if (ctx)
		ctx->log_priority = priority;
}

VH_EXPORT void *vh_ctx_get_userdata(const struct vh_ctx *ctx)
{
	return ctx ? ctx->userdata : NULL;
}

VH_EXPORT void vh_ctx_set_userdata(struct vh_ctx *ctx, void *userdata)
{
	if (ctx)
		ctx->userdata = userdata;
}

VH_EXPORT const char *vh_version(void)
{
	return PACKAGE_VERSION;
}
