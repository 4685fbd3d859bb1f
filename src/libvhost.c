// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libvhost context: reference counting, logging and caller data.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

ssize_t vh_write_nosigpipe(int fd, const void *buf, size_t len)
{
	const struct timespec zero = { 0, 0 };
	sigset_t pipe_set, old, pending;
	bool was_pending;
	ssize_t n;
	int e;

	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	was_pending = sigpending(&pending) == 0 &&
		      sigismember(&pending, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = write(fd, buf, len);
	e = errno;
	if (n < 0 && e == EPIPE && !was_pending)
		while (sigtimedwait(&pipe_set, NULL, &zero) < 0 &&
		       errno == EINTR)
			;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return n;
}

int vh_pipe_own_nonblock(struct vh_ctx *ctx, int fd, const char *what)
{
	char path[32];
	int fl, nfd;

	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	/*
	 * A path handle is no pipe end: opening it would make one, with our
	 * rights, of a FIFO the peer could only name.
	 */
	if (fl & O_PATH)
		return -EBADF;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	nfd = open(path, (fl & O_ACCMODE) | O_NONBLOCK | O_CLOEXEC);
	if (nfd >= 0) {
		close(fd);
		return nfd;
	}
	/*
	 * No description of our own: the pipe is not ours to open (EACCES,
	 * EPERM: another user's, or its owner took its mode away), there is
	 * no /proc (ENOENT), or a FIFO's write end has no reader now (ENXIO).
	 * None makes fd unusable, and the peer may send any fd: a reader may
	 * still open the FIFO (until then a write fails with EPIPE, as after
	 * a reader's close).  So fd is kept, made non-blocking as it is,
	 * where the peer's copy can undo it.
	 */
	vh_warn(ctx,
		"%s: pipe not opened again (%s): O_NONBLOCK is set on the description the front-end shares, which it can make blocking\n",
		what, strerror(errno));
	if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return fd;
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
