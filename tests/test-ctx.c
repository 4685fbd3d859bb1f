// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vh_ctx: reference counting, per-context logging, LIBVHOST_LOG, silence by
 * default, -errno returns.
 */
#include <stdarg.h>
#include <syslog.h>

#include "libvhost.h"
#include "test-util.h"

struct log_capture {
	int calls;
	int last_priority;
	char last[256];
};

__attribute__((format(printf, 7, 0))) static void
capture_log(struct vh_ctx *ctx, void *data, int priority, const char *file,
	    int line, const char *fn, const char *format, va_list args)
{
	struct log_capture *cap = data;

	cap->calls++;
	cap->last_priority = priority;
	vsnprintf(cap->last, sizeof(cap->last), format, args);
}

/* Run fn with stderr redirected to a pipe; return how many bytes it wrote. */
static ssize_t stderr_bytes_during(void (*fn)(void))
{
	int pipefd[2], saved;
	char buf[4096];
	ssize_t n;

	CHECK(pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) == 0);
	saved = dup(STDERR_FILENO);
	CHECK(saved >= 0);
	CHECK(dup2(pipefd[1], STDERR_FILENO) == STDERR_FILENO);
	fn();
	fflush(stderr);
	CHECK(dup2(saved, STDERR_FILENO) == STDERR_FILENO);
	close(saved);
	close(pipefd[1]);
	n = read(pipefd[0], buf, sizeof(buf));
	close(pipefd[0]);
	return n < 0 ? 0 : n;
}

static struct vh_ctx *quiet_ctx;

static void ctx_release_quietly(void)
{
	/* even at debug priority nothing reaches stderr without a log fn */
	vh_ctx_set_log_fn(quiet_ctx, NULL, NULL);
	vh_ctx_set_log_priority(quiet_ctx, LOG_DEBUG);
	CHECK(vh_ctx_unref(quiet_ctx) == NULL);
}

static void ctx_lifecycle_default(void)
{
	struct vh_ctx *ctx = NULL;

	CHECK(vh_ctx_new(&ctx) == 0);
	CHECK(vh_ctx_unref(ctx) == NULL);
}

static void test_refcount(void)
{
	struct vh_ctx *ctx = NULL;
	int x;

	CHECK_EQ(vh_ctx_new(NULL), -EINVAL);
	CHECK(vh_ctx_new(&ctx) == 0);
	CHECK(ctx != NULL);
	CHECK(vh_ctx_ref(ctx) == ctx);
	CHECK(vh_ctx_unref(ctx) == ctx); /* still one reference */
	vh_ctx_set_userdata(ctx, &x);
	CHECK(vh_ctx_get_userdata(ctx) == &x);
	CHECK(vh_ctx_unref(ctx) == NULL);
	CHECK(vh_ctx_ref(NULL) == NULL);
	CHECK(vh_ctx_unref(NULL) == NULL);
	CHECK(vh_version()[0] != '\0');
}

static void test_log_fn_and_priority(void)
{
	struct log_capture cap = { 0 };
	struct vh_ctx *ctx = NULL;

	unsetenv("LIBVHOST_LOG");
	CHECK(vh_ctx_new(&ctx) == 0);
	CHECK(vh_ctx_get_log_priority(ctx) < LOG_EMERG); /* off by default */
	vh_ctx_set_log_fn(ctx, capture_log, &cap);

	/* the ctx logs its own destruction at LOG_INFO: off -> no call */
	vh_ctx_ref(ctx);
	vh_ctx_unref(ctx);
	CHECK_EQ(cap.calls, 0);

	vh_ctx_set_log_priority(ctx, LOG_INFO);
	CHECK_EQ(vh_ctx_get_log_priority(ctx), LOG_INFO);
	CHECK(vh_ctx_unref(ctx) == NULL);
	CHECK_EQ(cap.calls, 1);
	CHECK_EQ(cap.last_priority, LOG_INFO);
	CHECK(strstr(cap.last, "released") != NULL);
}

static void test_env(void)
{
	struct vh_ctx *ctx = NULL;

	setenv("LIBVHOST_LOG", "debug", 1);
	CHECK(vh_ctx_new(&ctx) == 0);
	CHECK_EQ(vh_ctx_get_log_priority(ctx), LOG_DEBUG);
	vh_ctx_unref(ctx);

	setenv("LIBVHOST_LOG", "3", 1);
	CHECK(vh_ctx_new(&ctx) == 0);
	CHECK_EQ(vh_ctx_get_log_priority(ctx), LOG_ERR);
	vh_ctx_unref(ctx);

	setenv("LIBVHOST_LOG", "info", 1);
	/* with LIBVHOST_LOG the default stderr logger speaks ... */
	CHECK(stderr_bytes_during(ctx_lifecycle_default) > 0);
	/* ... unless the caller removed the log function */
	CHECK(vh_ctx_new(&quiet_ctx) == 0);
	CHECK_EQ(stderr_bytes_during(ctx_release_quietly), 0);

	setenv("LIBVHOST_LOG", "bogus", 1);
	CHECK(vh_ctx_new(&ctx) == 0);
	CHECK(vh_ctx_get_log_priority(ctx) < LOG_EMERG);
	vh_ctx_unref(ctx);

	/* and without it, the library prints nothing at all */
	unsetenv("LIBVHOST_LOG");
	CHECK_EQ(stderr_bytes_during(ctx_lifecycle_default), 0);
}

/*
 * A context holds no fd at all (logging goes through a callback or
 * stderr): checked while two are alive, one of them logging, so that an fd
 * a ctx kept (CLOEXEC or not) shows up here.
 */
static void test_no_fds(void)
{
	struct log_capture cap = { 0 };
	struct vh_ctx *a = NULL, *b = NULL;
	struct test_fdset before;
	int n = -1;

	test_fdset_snapshot(&before);
	setenv("LIBVHOST_LOG", "debug", 1);
	CHECK_EQ(vh_ctx_new(&a), 0);
	unsetenv("LIBVHOST_LOG");
	CHECK_EQ(vh_ctx_new(&b), 0);
	vh_ctx_set_log_fn(b, capture_log, &cap);
	vh_ctx_set_log_priority(b, LOG_DEBUG);
	CHECK(vh_ctx_ref(b) == b);
	CHECK(vh_ctx_unref(b) == b);
	CHECK_EQ(test_new_fds_without_cloexec_n(&before, &n), 0);
	CHECK_EQ(n, 0);
	CHECK(vh_ctx_unref(b) == NULL);
	CHECK(vh_ctx_unref(a) == NULL);
}

/* An entry point given no object says -EINVAL; it never looks inside. */
static void test_null_objects(void)
{
	CHECK_EQ(vh_scsi_set_endpoint(NULL, "naa.5001405000000001", 1),
		 -EINVAL);
	CHECK_EQ(vh_scsi_clear_endpoint(NULL, "naa.5001405000000001", 1),
		 -EINVAL);
}

int main(void)
{
	int fds = test_count_fds();

	test_refcount();
	test_log_fn_and_priority();
	test_env();
	test_no_fds();
	test_null_objects();
	CHECK_EQ(test_count_fds(), fds);
	return 0;
}
