// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The front-end against a malicious back-end written here (a thread on a
 * socketpair or on a listening socket), one class of attack at a time:
 *
 *  - a listener whose backlog is full and never accepts: connect fails
 *    with -ETIMEDOUT at its timeout, not in the kernel's sleep;
 *  - a flood of NEED_REPLY requests on the back-end channel whose replies
 *    are never read: the call returns at its deadline, the channel is shut;
 *  - half a message, on the back-end channel (the reply on the connection
 *    is still taken at once; the channel is shut when the rest never comes)
 *    and on the connection (the call times out at its deadline);
 *  - an IOTLB miss sent just before the reply to the call in progress,
 *    whose callback makes a call of its own: each call gets its reply,
 *    whichever the back-end answers first; a callback that drops or
 *    replaces the connection ends the call in progress at once;
 *  - a region refused in the middle of share_mem: the ones before are
 *    removed again;
 *  - replies each just in time: a call of several requests (negotiate,
 *    share_mem) still ends by one deadline;
 *  - unknown protocol bits (not acknowledged), packed ring bases past the
 *    ring, a device state pipe of the wrong direction, a dispatch from
 *    inside a callback (-EBUSY);
 *  - impossible values in replies (GET_QUEUE_NUM, GET_MAX_MEM_SLOTS,
 *    GET_STATUS, GET_VRING_BASE, GET_INFLIGHT_FD size/offset/fd type,
 *    SET_DEVICE_STATE_FD, GET_SHARED_OBJECT and POSTCOPY_ADVISE fd types,
 *    a 4096-byte reply with 8 fds) and in
 *    back-end requests (ring indexes beyond the rings set up, host
 *    notifier areas beyond or outside their fd, IOTLB types);
 *  - and vhostctl user probe / user check against such a back-end: they
 *    fail, say why, and return in time.
 *
 * Every timeout is measured (CLOCK_MONOTONIC) against [timeout, timeout +
 * SLACK_MS]; fds are counted before and after every case.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libvhost-internal.h"
#include "vu-msg.h"
#include "test-util.h"

/* the front-end's timeout here, and how late a call may return on a
 * loaded machine (sanitizers, other tests) */
#define TMO_MS 300
#define SLACK_MS 2500

#define F30 (1ull << VH_VU_F_PROTOCOL_FEATURES)
#define PF(f) (1ull << VH_VU_PROTOCOL_F_##f)
#define ALL_PROTOCOL (((1ull << VH_VU_PROTOCOL_F_MAX) - 1) & ~PF(XEN_MMAP))

static struct vh_ctx *ctx;

static void check_took(int64_t t0, int64_t lo, int64_t hi, const char *what)
{
	int64_t d = vh_vu_now_ms() - t0;

	if (d < lo || d > hi) {
		fprintf(stderr, "%s: took %lld ms, expected %lld..%lld\n", what,
			(long long)d, (long long)lo, (long long)hi);
		exit(1);
	}
	printf("  %-44s %lld ms\n", what, (long long)d);
}

static int new_memfd(size_t size)
{
	int fd = memfd_create("vufe-hostile", MFD_CLOEXEC);

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)size) == 0);
	return fd;
}

enum fd_kind {
	FD_NONE,
	FD_MEMFD,
	FD_PIPE, /* its read end */
	FD_PIPE_W, /* its write end */
	FD_SOCKET,
	FD_EVENTFD,
	FD_UFFD
};

static int new_fd(enum fd_kind k)
{
	int p[2], fd = -1;

	switch (k) {
	case FD_NONE:
		break;
	case FD_MEMFD:
		fd = new_memfd(4096);
		break;
	case FD_PIPE:
		CHECK(pipe2(p, O_CLOEXEC) == 0);
		close(p[1]);
		fd = p[0];
		break;
	case FD_PIPE_W:
		CHECK(pipe2(p, O_CLOEXEC) == 0);
		close(p[0]);
		fd = p[1];
		break;
	case FD_SOCKET:
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) ==
		      0);
		close(p[1]);
		fd = p[0];
		break;
	case FD_EVENTFD:
		fd = eventfd(0, EFD_CLOEXEC);
		CHECK(fd >= 0);
		break;
	case FD_UFFD:
		/* user-mode only: no privilege needed (Linux 5.11) */
		fd = (int)syscall(SYS_userfaultfd,
				  O_CLOEXEC | UFFD_USER_MODE_ONLY);
		CHECK(fd >= 0);
		break;
	}
	return fd;
}

/* ------------------------------------------------------------------------ */
/* the malicious back-end                                                   */
/* ------------------------------------------------------------------------ */
enum trick {
	T_NONE,
	T_SILENT, /* no reply */
	T_HALF, /* 6 bytes of the reply, then nothing */
	T_U64, /* reply u64 = value */
	T_BASE, /* GET_VRING_BASE num = value */
	T_INFLIGHT, /* mmap_size = value, mmap_offset = value2, fd kind */
	T_INFLIGHT_QUEUES, /* a valid area for other num_queues */
	T_BIG, /* 4096 bytes and 8 fds */
	T_FD, /* the reply's fd replaced by one of fd kind */
	/* after value ms an IOTLB miss on the channel, then silence */
	T_LATE_MISS,
	/* an IOTLB miss on the channel, then the reply at once */
	T_MISS_FIRST,
	/*
	 * an IOTLB miss on the channel, then the reply to the next request
	 * (the miss callback's call), then this one's
	 */
	T_INNER_FIRST,
};

struct evil {
	int sock;
	int chan; /* the back-end channel (SET_BACKEND_REQ_FD), or -1 */
	uint64_t features, protocol;
	/* what to do to the reply to request target */
	uint32_t target;
	enum trick trick;
	uint64_t value, value2;
	enum fd_kind kind;
	bool mute; /* no more replies */
	/* a message it cannot read: 5 bytes of a header, then the close */
	bool cut_on_bad;
	/* the trick skips this many requests of id target first */
	unsigned int skip;
	/* every reply this late (ms) */
	unsigned int delay_ms;
	/* the requests received, in order */
	uint32_t seen[64];
	unsigned int nseen;
	pthread_mutex_t lock;
	pthread_t th;
	struct vh_vu_frontend *fe;
};

/* The plain, valid answer to m. */
static void answer(struct evil *e, const struct vh_vu_msg *m,
		   struct vh_vu_msg *r)
{
	vh_vu_msg_init(r, m->hdr.request, 8);
	vh_vu_msg_set_reply_u64(r, 0);
	switch (m->hdr.request) {
	case VH_VU_GET_FEATURES:
		r->payload.u64 = e->features;
		break;
	case VH_VU_GET_PROTOCOL_FEATURES:
		r->payload.u64 = e->protocol;
		break;
	case VH_VU_GET_QUEUE_NUM:
		r->payload.u64 = 2;
		break;
	case VH_VU_GET_MAX_MEM_SLOTS:
		r->payload.u64 = 8;
		break;
	case VH_VU_GET_STATUS:
		r->payload.u64 = 0xf;
		break;
	case VH_VU_GET_VRING_BASE:
		r->payload.state.index = m->payload.state.index;
		r->payload.state.num = 0;
		break;
	case VH_VU_GET_INFLIGHT_FD:
		r->hdr.size = sizeof(struct vh_vu_inflight);
		r->payload.inflight = m->payload.inflight;
		r->payload.inflight.mmap_size = 4096;
		r->payload.inflight.mmap_offset = 0;
		r->fds[r->nfds++] = new_memfd(4096);
		break;
	case VH_VU_SET_DEVICE_STATE_FD:
		r->fds[r->nfds++] = new_fd(FD_PIPE);
		break;
	default:
		break;
	}
}

/* Apply the trick; false: send nothing. */
static bool tamper(struct evil *e, const struct vh_vu_msg *m,
		   struct vh_vu_msg *r)
{
	unsigned int i;

	if (m->hdr.request != e->target)
		return true;
	if (e->skip) {
		e->skip--;
		return true;
	}
	switch (e->trick) {
	case T_NONE:
		break;
	case T_SILENT:
		return false;
	case T_HALF:
		CHECK(send(e->sock, &r->hdr, 6, MSG_NOSIGNAL) == 6);
		return false;
	case T_U64:
		r->payload.u64 = e->value;
		break;
	case T_BASE:
		r->payload.state.num = (uint32_t)e->value;
		break;
	case T_INFLIGHT:
		r->payload.inflight.mmap_size = e->value;
		r->payload.inflight.mmap_offset = e->value2;
		vh_vu_msg_close_fds(r);
		r->fds[0] = new_fd(e->kind);
		r->nfds = r->fds[0] >= 0;
		break;
	case T_INFLIGHT_QUEUES:
		r->payload.inflight.num_queues++;
		break;
	case T_BIG:
		r->hdr.size = VH_VU_PAYLOAD_MAX;
		memset(r->payload.raw, 0xa5, VH_VU_PAYLOAD_MAX);
		vh_vu_msg_close_fds(r);
		for (i = 0; i < VH_VU_MAX_FDS; i++)
			r->fds[r->nfds++] = new_fd(FD_EVENTFD);
		break;
	case T_FD:
		vh_vu_msg_close_fds(r);
		r->fds[0] = new_fd(e->kind);
		r->nfds = 1;
		break;
	case T_LATE_MISS:
	case T_MISS_FIRST:
	case T_INNER_FIRST: {
		struct vh_vu_msg miss, m2, r2;

		if (e->trick == T_LATE_MISS)
			usleep((useconds_t)e->value * 1000);
		vh_vu_msg_init(&miss, VH_VU_BACKEND_IOTLB_MSG,
			       sizeof(struct vh_vu_iotlb));
		miss.hdr.flags |= VH_VU_FLAG_NEED_REPLY;
		miss.payload.iotlb.iova = 0x1000;
		miss.payload.iotlb.perm = VH_ACCESS_RO;
		miss.payload.iotlb.type = VH_IOTLB_MISS;
		pthread_mutex_lock(&e->lock);
		CHECK_EQ(vh_vu_msg_send(ctx, e->chan, &miss), 0);
		pthread_mutex_unlock(&e->lock);
		if (e->trick == T_MISS_FIRST) {
			/* once: the miss's own callback asks again */
			e->trick = T_NONE;
			return true;
		}
		if (e->trick == T_INNER_FIRST) {
			e->trick = T_NONE;
			/* the callback's request is answered first */
			CHECK_EQ(vh_vu_msg_recv(ctx, e->sock, &m2), 0);
			if (e->nseen < VH_ARRAY_SIZE(e->seen))
				e->seen[e->nseen++] = m2.hdr.request;
			answer(e, &m2, &r2);
			CHECK_EQ(vh_vu_msg_send(ctx, e->sock, &r2), 0);
			vh_vu_msg_close_fds(&m2);
			vh_vu_msg_close_fds(&r2);
			return true;
		}
		e->mute = true;
		return false;
	}
	}
	return true;
}

/* Serve one connection until it closes or sends something unreadable. */
static void evil_serve(struct evil *e)
{
	const struct vh_vu_msg_rule *rule;
	struct vh_vu_msg m, r;
	bool want;

	while (vh_vu_msg_recv(ctx, e->sock, &m) == 0) {
		if (e->nseen < VH_ARRAY_SIZE(e->seen))
			e->seen[e->nseen++] = m.hdr.request;
		rule = vh_vu_msg_rule(false, m.hdr.request);
		if (m.hdr.request == VH_VU_SET_BACKEND_REQ_FD && m.nfds == 1) {
			pthread_mutex_lock(&e->lock);
			if (e->chan >= 0)
				close(e->chan);
			e->chan = m.fds[0];
			m.fds[0] = -1;
			m.nfds = 0;
			pthread_mutex_unlock(&e->lock);
		}
		want = (rule && rule->reply == VH_VU_REPLY_ALWAYS) ||
		       (m.hdr.flags & VH_VU_FLAG_NEED_REPLY);
		answer(e, &m, &r);
		if (want && e->delay_ms)
			usleep(e->delay_ms * 1000);
		/* a failed send shows in the next receive */
		if (want && !e->mute && tamper(e, &m, &r))
			(void)vh_vu_msg_send(ctx, e->sock, &r);
		vh_vu_msg_close_fds(&m);
		vh_vu_msg_close_fds(&r);
	}
	if (e->cut_on_bad) {
		char junk[256];

		/* read what is left (a close with unread input resets) */
		while (recv(e->sock, junk, sizeof(junk), MSG_DONTWAIT) > 0)
			;
		(void)send(e->sock, "\x01\0\0\0\x05", 5, MSG_NOSIGNAL);
	}
}

static void *evil_fn(void *arg)
{
	struct evil *e = arg;

	evil_serve(e);
	return NULL;
}

static void evil_start(struct evil *e, uint64_t features, uint64_t protocol)
{
	int sv[2];

	memset(e, 0, sizeof(*e));
	pthread_mutex_init(&e->lock, NULL);
	e->chan = -1;
	e->features = features;
	e->protocol = protocol;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	e->sock = sv[1];
	CHECK_EQ(vh_vu_frontend_new(ctx, &e->fe), 0);
	CHECK_EQ(vh_vu_frontend_set_fd(e->fe, sv[0]), 0);
	vh_vu_frontend_set_timeout(e->fe, TMO_MS);
	CHECK(pthread_create(&e->th, NULL, evil_fn, e) == 0);
}

/* Start and negotiate everything offered. */
static void evil_open(struct evil *e, uint64_t features, uint64_t protocol)
{
	evil_start(e, features, protocol);
	CHECK_EQ(vh_vu_frontend_negotiate(e->fe, ~0ull, ~0ull, NULL, NULL), 0);
}

static int evil_chan(struct evil *e)
{
	int fd;

	pthread_mutex_lock(&e->lock);
	fd = e->chan;
	pthread_mutex_unlock(&e->lock);
	CHECK(fd >= 0);
	return fd;
}

static void evil_stop(struct evil *e)
{
	vh_vu_frontend_unref(e->fe); /* the back-end sees EOF */
	CHECK(pthread_join(e->th, NULL) == 0);
	close(e->sock);
	if (e->chan >= 0)
		close(e->chan);
	pthread_mutex_destroy(&e->lock);
}

/* The trick for the next request of id target. */
static void evil_trick(struct evil *e, uint32_t target, enum trick t,
		       uint64_t value, uint64_t value2, enum fd_kind kind)
{
	e->target = target;
	e->trick = t;
	e->value = value;
	e->value2 = value2;
	e->kind = kind;
}

/* ------------------------------------------------------------------------ */
/* callbacks for back-end requests                                          */
/* ------------------------------------------------------------------------ */
struct calls {
	int config, call, err, notifier, iotlb;
	unsigned int last_idx;
	/* the iotlb callback makes a call of its own; its result */
	bool nested;
	int nested_r;
	/* the iotlb callback dispatches the channel itself; its result */
	bool dispatch;
	int dispatch_r;
	/*
	 * the iotlb callback disconnects, then (reconnect_fd >= 0) takes
	 * reconnect_fd as the new connection
	 */
	bool drop;
	int reconnect_fd;
};

static int cb_config(struct vh_vu_frontend *fe, void *data)
{
	((struct calls *)data)->config++;
	return 0;
}

static int cb_call(struct vh_vu_frontend *fe, void *data, unsigned int idx)
{
	struct calls *c = data;

	c->call++;
	c->last_idx = idx;
	return 0;
}

static int cb_err(struct vh_vu_frontend *fe, void *data, unsigned int idx)
{
	struct calls *c = data;

	c->err++;
	c->last_idx = idx;
	return 0;
}

static int cb_notifier(struct vh_vu_frontend *fe, void *data,
		       unsigned int idx, int fd, uint64_t size,
		       uint64_t offset)
{
	struct calls *c = data;

	c->notifier++;
	c->last_idx = idx;
	if (fd >= 0)
		close(fd);
	return 0;
}

static int cb_iotlb(struct vh_vu_frontend *fe, void *data,
		    const struct vh_vu_iotlb *msg)
{
	struct calls *c = data;
	uint8_t st;

	c->iotlb++;
	if (c->nested)
		c->nested_r = vh_vu_frontend_get_status(fe, &st);
	if (c->dispatch)
		c->dispatch_r = vh_vu_frontend_dispatch_backend(fe);
	if (c->drop) {
		vh_vu_frontend_disconnect(fe);
		if (c->reconnect_fd >= 0)
			CHECK_EQ(vh_vu_frontend_set_fd(fe, c->reconnect_fd), 0);
	}
	return 0;
}

static const struct vh_vu_frontend_ops ops = {
	.size = sizeof(struct vh_vu_frontend_ops),
	.config_change = cb_config,
	.vring_call = cb_call,
	.vring_err = cb_err,
	.host_notifier = cb_notifier,
	.iotlb = cb_iotlb,
};

/* ------------------------------------------------------------------------ */
/* vhostctl as a child                                                      */
/* ------------------------------------------------------------------------ */
static const char *vhostctl(void)
{
	const char *p = getenv("VHOSTCTL");

	if (!p)
		p = "tools/vhostctl"; /* make check runs in the build dir */
	if (access(p, X_OK) < 0) {
		fprintf(stderr, "%s: %s (set VHOSTCTL)\n", p, strerror(errno));
		exit(1);
	}
	return p;
}

/*
 * Run vhostctl with up to 4 arguments (NULL-terminated), its stdout and
 * stderr into out; it must be done in limit_ms (else it is killed and the
 * test fails).  Its exit status.
 */
#define run_vhostctl(out, outlen, limit_ms, ...)                              \
	run_vhostctl_argv(out, outlen, limit_ms,                               \
			  (const char *[]){ "vhostctl", __VA_ARGS__, NULL })
static int run_vhostctl_argv(char *out, size_t outlen, int64_t limit_ms,
			     const char **argv)
{
	const char *prog = vhostctl();
	int64_t deadline = vh_vu_now_ms() + limit_ms;
	size_t have = 0;
	int p[2], st;
	pid_t pid;

	CHECK(pipe2(p, O_CLOEXEC) == 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	for (;;) {
		ssize_t n;
		int r = vh_vu_wait_fd(p[0], POLLIN, deadline);

		if (r == -ETIMEDOUT) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fprintf(stderr, "vhostctl %s %s: still running after %lld ms\n",
				argv[1], argv[2], (long long)limit_ms);
			exit(1);
		}
		CHECK_EQ(r, 0);
		n = read(p[0], out + have, outlen - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		if (have == outlen - 1)
			break;
	}
	out[have] = 0;
	close(p[0]);
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* A back-end on a listening socket, serving one connection at a time. */
struct server {
	struct evil e;
	int lfd;
	bool stop;
	pthread_t th;
	char dir[64], path[96];
};

static void *server_fn(void *arg)
{
	struct server *s = arg;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
		struct pollfd pfd = { .fd = s->lfd, .events = POLLIN };
		int fd;

		if (poll(&pfd, 1, 50) <= 0)
			continue;
		fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		s->e.sock = fd;
		evil_serve(&s->e);
		close(fd);
		pthread_mutex_lock(&s->e.lock);
		if (s->e.chan >= 0)
			close(s->e.chan);
		s->e.chan = -1;
		pthread_mutex_unlock(&s->e.lock);
	}
	return NULL;
}

static void server_start(struct server *s, uint64_t features,
			 uint64_t protocol)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/vufe-hostile.XXXXXX");
	CHECK(mkdtemp(s->dir));
	snprintf(s->path, sizeof(s->path), "%s/be.sock", s->dir);
	pthread_mutex_init(&s->e.lock, NULL);
	s->e.chan = -1;
	s->e.features = features;
	s->e.protocol = protocol;
	s->lfd = vh_vu_socket_listen(ctx, s->path, 4, false);
	CHECK(s->lfd >= 0);
	CHECK(pthread_create(&s->th, NULL, server_fn, s) == 0);
}

static void server_stop(struct server *s)
{
	__atomic_store_n(&s->stop, true, __ATOMIC_RELEASE);
	CHECK(pthread_join(s->th, NULL) == 0);
	close(s->lfd);
	unlink(s->path);
	CHECK(rmdir(s->dir) == 0);
	pthread_mutex_destroy(&s->e.lock);
}

/* ------------------------------------------------------------------------ */
/* a listener that never accepts                                            */
/* ------------------------------------------------------------------------ */
static void test_full_backlog(void)
{
	char dir[] = "/tmp/vufe-backlog.XXXXXX", out[8192];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct vh_vu_frontend *fe;
	int lfd, queued[64], n = 0, before, i, rc;
	int64_t t0;

	printf("full backlog, never accepted\n");
	CHECK(mkdtemp(dir));
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/be.sock", dir);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(lfd >= 0);
	CHECK(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	CHECK(listen(lfd, 0) == 0);
	/* fill the backlog: connects succeed until it is full */
	for (;;) {
		int c = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC |
						SOCK_NONBLOCK,
			       0);

		CHECK(c >= 0);
		if (connect(c, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
			CHECK_EQ(errno, EAGAIN);
			close(c);
			break;
		}
		CHECK(n < 64);
		queued[n++] = c;
	}
	before = test_count_fds();

	CHECK_EQ(vh_vu_frontend_new(ctx, &fe), 0);
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_frontend_connect(fe, sun.sun_path, TMO_MS), -ETIMEDOUT);
	check_took(t0, TMO_MS, TMO_MS + SLACK_MS, "connect: -ETIMEDOUT");
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_socket_connect(ctx, sun.sun_path, 0), -EAGAIN);
	check_took(t0, 0, SLACK_MS, "connect, one try: -EAGAIN");
	CHECK_EQ(vh_vu_frontend_get_fd(fe), -1);
	vh_vu_frontend_unref(fe);
	CHECK_EQ(test_count_fds(), before);

	/* vhostctl's own timeouts: 3 s for probe, 2 s for check */
	t0 = vh_vu_now_ms();
	rc = run_vhostctl(out, sizeof(out), 3000 + SLACK_MS, "user", "probe",
			  sun.sun_path);
	CHECK_EQ(rc, 1);
	CHECK(strstr(out, "cannot connect"));
	check_took(t0, 3000, 3000 + SLACK_MS, "vhostctl user probe: exit 1");
	t0 = vh_vu_now_ms();
	rc = run_vhostctl(out, sizeof(out), 2000 + SLACK_MS, "user", "check",
			  sun.sun_path);
	CHECK_EQ(rc, 1);
	CHECK(strstr(out, "cannot connect"));
	check_took(t0, 2000, 2000 + SLACK_MS, "vhostctl user check: exit 1");

	for (i = 0; i < n; i++)
		close(queued[i]);
	close(lfd);
	unlink(sun.sun_path);
	CHECK(rmdir(dir) == 0);
}

/* ------------------------------------------------------------------------ */
/* a flood of NEED_REPLY requests whose replies are never read              */
/* ------------------------------------------------------------------------ */
struct flood {
	int fd;
	bool stop;
	unsigned long bytes;
};

static void *flood_fn(void *arg)
{
	static struct vh_vu_hdr hdrs[4096];
	struct flood *f = arg;
	size_t off = 0, len = sizeof(hdrs);
	unsigned int i;

	for (i = 0; i < VH_ARRAY_SIZE(hdrs); i++)
		hdrs[i] = (struct vh_vu_hdr){
			.request = VH_VU_BACKEND_CONFIG_CHANGE_MSG,
			.flags = VH_VU_VERSION | VH_VU_FLAG_NEED_REPLY,
		};
	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
		ssize_t n = send(f->fd, (char *)hdrs + off, len - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0) {
			struct pollfd pfd = { .fd = f->fd, .events = POLLOUT };

			if (errno != EAGAIN && errno != EINTR)
				break; /* the front-end closed the channel */
			poll(&pfd, 1, 20);
			continue;
		}
		/* whole headers in a row: a short write resumes mid-header */
		off = (off + (size_t)n) % len;
		f->bytes += (unsigned long)n;
	}
	return NULL;
}

static void test_flood(void)
{
	struct calls calls = { 0 };
	struct flood f = { 0 };
	pthread_t th;
	struct evil e;
	uint64_t v;
	int before = test_count_fds(), r;
	int64_t t0;

	printf("flood of NEED_REPLY back-end requests, replies never read\n");
	/* through a call that waits for a reply that never comes */
	evil_open(&e, F30, PF(BACKEND_REQ) | PF(REPLY_ACK) | PF(CONFIG));
	CHECK_EQ(vh_vu_frontend_set_ops(e.fe, &ops, &calls), 0);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(e.fe), 0);
	CHECK_CLOEXEC(vh_vu_frontend_get_backend_fd(e.fe));
	f.fd = evil_chan(&e);
	CHECK(pthread_create(&th, NULL, flood_fn, &f) == 0);
	evil_trick(&e, VH_VU_GET_FEATURES, T_SILENT, 0, 0, FD_NONE);
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v), -ETIMEDOUT);
	check_took(t0, TMO_MS, TMO_MS + SLACK_MS, "call while flooded: -ETIMEDOUT");
	/* it served some, then gave up on a back-end that does not read */
	CHECK(calls.config > 0);
	CHECK_EQ(vh_vu_frontend_get_backend_fd(e.fe), -1);
	__atomic_store_n(&f.stop, true, __ATOMIC_RELEASE);
	CHECK(pthread_join(th, NULL) == 0);
	evil_stop(&e);
	CHECK_EQ(test_count_fds(), before);

	/* through the application's own dispatch calls */
	memset(&calls, 0, sizeof(calls));
	memset(&f, 0, sizeof(f));
	evil_open(&e, F30, PF(BACKEND_REQ) | PF(REPLY_ACK) | PF(CONFIG));
	CHECK_EQ(vh_vu_frontend_set_ops(e.fe, &ops, &calls), 0);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(e.fe), 0);
	f.fd = evil_chan(&e);
	CHECK(pthread_create(&th, NULL, flood_fn, &f) == 0);
	t0 = vh_vu_now_ms();
	for (;;) {
		r = vh_vu_frontend_dispatch_backend(e.fe);
		if (r == -EAGAIN) {
			/* half a header in the socket: wait for the rest */
			CHECK(vh_vu_wait_fd(vh_vu_frontend_get_backend_fd(e.fe),
					    POLLIN, t0 + SLACK_MS) == 0);
			continue;
		}
		if (r < 0)
			break;
	}
	CHECK_EQ(r, -ETIMEDOUT);
	check_took(t0, TMO_MS, TMO_MS + SLACK_MS, "dispatch loop: -ETIMEDOUT");
	CHECK(calls.config > 0);
	CHECK_EQ(vh_vu_frontend_get_backend_fd(e.fe), -1);
	__atomic_store_n(&f.stop, true, __ATOMIC_RELEASE);
	CHECK(pthread_join(th, NULL) == 0);
	/* the connection itself is fine */
	CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v), 0);
	evil_stop(&e);
	CHECK_EQ(test_count_fds(), before);
}

/* ------------------------------------------------------------------------ */
/* half a message                                                           */
/* ------------------------------------------------------------------------ */
/* Send len bytes of buf on fd, with fd_pass (if >= 0) riding on them. */
static void send_part(int fd, const void *buf, size_t len, int fd_pass)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	if (fd_pass >= 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.buf;
		mh.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &fd_pass, sizeof(int));
	}
	CHECK(sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)len);
}

static void test_half_message(void)
{
	const struct vh_vu_hdr hdr = {
		.request = VH_VU_BACKEND_CONFIG_CHANGE_MSG,
		.flags = VH_VU_VERSION | VH_VU_FLAG_NEED_REPLY,
	};
	struct calls calls = { 0 };
	struct vh_vu_msg m;
	struct evil e;
	uint64_t v;
	int before = test_count_fds(), chan, efd;
	int64_t t0;

	printf("half a message\n");
	evil_open(&e, F30,
		  PF(BACKEND_REQ) | PF(REPLY_ACK) | PF(CONFIG) |
			  PF(RESET_DEVICE) | PF(BACKEND_SEND_FD));
	CHECK_EQ(vh_vu_frontend_set_ops(e.fe, &ops, &calls), 0);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(e.fe), 0);
	chan = evil_chan(&e);

	/*
	 * on the channel: the ack of the call is still taken at once (a
	 * long timeout for this call: "at once" and "at the deadline" stay
	 * far apart on a loaded machine)
	 */
	send_part(chan, &hdr, 6, -1);
	vh_vu_frontend_set_timeout(e.fe, 10 * SLACK_MS);
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_frontend_reset_device(e.fe), 0);
	check_took(t0, 0, SLACK_MS, "RESET_DEVICE beside half a request: 0");
	vh_vu_frontend_set_timeout(e.fe, TMO_MS);
	CHECK_EQ(calls.config, 0);
	/* the rest comes: the request is whole and served */
	send_part(chan, (const char *)&hdr + 6, sizeof(hdr) - 6, -1);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(e.fe), 0);
	CHECK_EQ(calls.config, 1);
	CHECK_EQ(vh_vu_msg_recv(ctx, chan, &m), 0);
	CHECK_EQ(m.hdr.request, VH_VU_BACKEND_CONFIG_CHANGE_MSG);
	CHECK(m.hdr.flags & VH_VU_FLAG_REPLY);
	CHECK_EQ(m.payload.u64, 0);

	/* the rest never comes (an fd rode on the first bytes) */
	efd = new_fd(FD_EVENTFD);
	send_part(chan, &hdr, 6, efd);
	close(efd);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(e.fe), -EAGAIN);
	CHECK(vh_vu_frontend_get_backend_fd(e.fe) >= 0);
	usleep((TMO_MS + 50) * 1000);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(e.fe), -ETIMEDOUT);
	CHECK_EQ(vh_vu_frontend_get_backend_fd(e.fe), -1);

	/* half a reply on the connection: the call ends at its deadline */
	evil_trick(&e, VH_VU_GET_FEATURES, T_HALF, 0, 0, FD_NONE);
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v), -ETIMEDOUT);
	check_took(t0, TMO_MS, TMO_MS + SLACK_MS, "half a reply: -ETIMEDOUT");
	CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v), -EPIPE);
	evil_stop(&e);
	CHECK_EQ(test_count_fds(), before);
}

/*
 * A call made by a back-end request's callback in the middle of a call
 * ends by the outer call's deadline: a back-end that asks late and then
 * answers nothing holds the outer call no longer than its timeout.
 */
static void test_nested_deadline(void)
{
	/* late + tmo, the failure, is 2250 ms past the bound */
	const int tmo = 6000, late = 3000;
	struct calls calls = { .nested = true };
	struct evil e;
	uint64_t v;
	int before = test_count_fds();
	int64_t t0;

	printf("a call inside a back-end request, late in a call\n");
	evil_open(&e, F30 | (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM),
		  PF(BACKEND_REQ) | PF(REPLY_ACK) | PF(STATUS));
	vh_vu_frontend_set_timeout(e.fe, tmo);
	CHECK_EQ(vh_vu_frontend_set_ops(e.fe, &ops, &calls), 0);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(e.fe), 0);
	evil_trick(&e, VH_VU_GET_FEATURES, T_LATE_MISS, late, 0, FD_NONE);
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v), -ETIMEDOUT);
	/* not late + tmo: the inner call had what was left of the outer one */
	check_took(t0, tmo, tmo + late * 3 / 4,
		   "outer call: -ETIMEDOUT");
	CHECK_EQ(calls.iotlb, 1);
	CHECK_EQ(calls.nested_r, -ETIMEDOUT);
	evil_stop(&e);
	CHECK_EQ(test_count_fds(), before);
}

/*
 * A back-end that sends an IOTLB miss and goes on with the reply to the
 * call in progress, as ours does (a worker never waits on the front-end):
 * the miss's callback makes a call of its own, which reads the outer
 * call's reply first.  Each call must get its own reply.
 */
static void test_nested_in_order(void)
{
	struct calls calls = { .nested = true };
	uint64_t f = F30 | (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM), v = 0;
	struct evil e;
	int before = test_count_fds();
	uint8_t st = 0;

	printf("a call inside a back-end request, the outer reply first\n");
	evil_open(&e, f, PF(BACKEND_REQ) | PF(REPLY_ACK) | PF(STATUS));
	CHECK_EQ(vh_vu_frontend_set_ops(e.fe, &ops, &calls), 0);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(e.fe), 0);
	evil_trick(&e, VH_VU_GET_FEATURES, T_MISS_FIRST, 0, 0, FD_NONE);
	calls.nested_r = 1;
	CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v), 0);
	CHECK_EQ(v, f);
	CHECK_EQ(calls.iotlb, 1);
	CHECK_EQ(calls.nested_r, 0);
	/* and the connection is still good */
	CHECK_EQ(vh_vu_frontend_get_status(e.fe, &st), 0);
	CHECK_EQ(st, 0xf);
	evil_stop(&e);
	CHECK_EQ(test_count_fds(), before);
}

/*
 * The same, but the back-end answers the callback's call first, as it may
 * when it handles the update while still inside the outer request
 * (vhost-user.rst "IOMMU support"): replies are matched by request.
 */
static void test_nested_inner_first(void)
{
	struct calls calls = { .nested = true };
	uint64_t f = F30 | (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM), v = 0;
	struct evil e;
	int before = test_count_fds();
	uint8_t st = 0;

	printf("a call inside a back-end request, the inner reply first\n");
	evil_open(&e, f, PF(BACKEND_REQ) | PF(REPLY_ACK) | PF(STATUS));
	CHECK_EQ(vh_vu_frontend_set_ops(e.fe, &ops, &calls), 0);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(e.fe), 0);
	evil_trick(&e, VH_VU_GET_FEATURES, T_INNER_FIRST, 0, 0, FD_NONE);
	calls.nested_r = 1;
	CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v), 0);
	CHECK_EQ(v, f);
	CHECK_EQ(calls.iotlb, 1);
	CHECK_EQ(calls.nested_r, 0);
	CHECK_EQ(vh_vu_frontend_get_status(e.fe, &st), 0);
	CHECK_EQ(st, 0xf);
	evil_stop(&e);
	CHECK_EQ(test_count_fds(), before);
}

/*
 * A callback that disconnects in the middle of a call (say, on a ring
 * error), or takes another connection: the call in progress ends at once
 * (-ECONNRESET), not at its deadline, and breaks nothing of the new one.
 */
static void test_callback_drops_connection(void)
{
	const uint64_t f = F30 | (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM);
	const uint64_t pf = PF(BACKEND_REQ) | PF(REPLY_ACK);
	struct calls calls = { .drop = true, .reconnect_fd = -1 };
	struct evil e, e2;
	int before = test_count_fds(), sv[2];
	int64_t t0;
	uint64_t v;

	printf("a callback that drops the connection in the middle of a call\n");
	evil_open(&e, f, pf);
	/* far beyond SLACK_MS: the old way waited for it */
	vh_vu_frontend_set_timeout(e.fe, SLACK_MS + 3000);
	CHECK_EQ(vh_vu_frontend_set_ops(e.fe, &ops, &calls), 0);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(e.fe), 0);
	evil_trick(&e, VH_VU_GET_FEATURES, T_LATE_MISS, 0, 0, FD_NONE);
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v), -ECONNRESET);
	check_took(t0, 0, SLACK_MS, "dropped: -ECONNRESET");
	CHECK_EQ(calls.iotlb, 1);
	CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v), -ENOTCONN);
	evil_stop(&e);
	CHECK_EQ(test_count_fds(), before);

	/* the same, and the callback connects to another back-end */
	memset(&e2, 0, sizeof(e2));
	pthread_mutex_init(&e2.lock, NULL);
	e2.chan = -1;
	e2.features = F30 | 0x5;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	e2.sock = sv[1];
	CHECK(pthread_create(&e2.th, NULL, evil_fn, &e2) == 0);
	calls = (struct calls){ .drop = true, .reconnect_fd = sv[0] };
	evil_open(&e, f, pf);
	vh_vu_frontend_set_timeout(e.fe, SLACK_MS + 3000);
	CHECK_EQ(vh_vu_frontend_set_ops(e.fe, &ops, &calls), 0);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(e.fe), 0);
	evil_trick(&e, VH_VU_GET_FEATURES, T_LATE_MISS, 0, 0, FD_NONE);
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v), -ECONNRESET);
	check_took(t0, 0, SLACK_MS, "replaced: -ECONNRESET");
	/* the new connection works: nothing of the old call broke it */
	CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v), 0);
	CHECK_EQ(v, e2.features);
	evil_stop(&e); /* the front-end's unref closes e2's connection too */
	CHECK(pthread_join(e2.th, NULL) == 0);
	close(e2.sock);
	pthread_mutex_destroy(&e2.lock);
	CHECK_EQ(test_count_fds(), before);
}

/*
 * share_mem with CONFIGURE_MEM_SLOTS: the back-end takes the first region
 * and refuses the second (REPLY_ACK ENOSPC).  All or nothing: the first is
 * removed again, and a retry adds each region once.
 */
static void test_share_mem_rollback(void)
{
	unsigned int i, adds = 0, rems = 0;
	struct vh_mem *mem;
	struct evil e;
	int before = test_count_fds();
	uint64_t v;

	printf("share_mem: the second region refused\n");
	evil_open(&e, F30, PF(CONFIGURE_MEM_SLOTS) | PF(REPLY_ACK));
	CHECK_EQ(vh_mem_new(ctx, &mem), 0);
	for (i = 0; i < 3; i++)
		CHECK_EQ(vh_mem_add_memfd(mem, (uint64_t)i << 30, 1 << 20,
					  NULL),
			 0);
	evil_trick(&e, VH_VU_ADD_MEM_REG, T_U64, ENOSPC, 0, FD_NONE);
	e.skip = 1;
	e.nseen = 0;
	CHECK_EQ(vh_vu_frontend_share_mem(e.fe, mem), -ENOSPC);
	for (i = 0; i < e.nseen; i++) {
		adds += e.seen[i] == VH_VU_ADD_MEM_REG;
		rems += e.seen[i] == VH_VU_REM_MEM_REG;
	}
	CHECK_EQ(adds, 2);
	CHECK_EQ(rems, 1);
	CHECK_EQ(e.seen[e.nseen - 1], VH_VU_REM_MEM_REG);
	/* a refusal is no broken connection, and a retry goes through */
	CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v), 0);
	evil_trick(&e, 0, T_NONE, 0, 0, FD_NONE);
	e.nseen = 0;
	CHECK_EQ(vh_vu_frontend_share_mem(e.fe, mem), 0);
	for (i = adds = 0; i < e.nseen; i++)
		adds += e.seen[i] == VH_VU_ADD_MEM_REG;
	CHECK_EQ(adds, 3);
	vh_mem_unref(mem);
	evil_stop(&e);
	CHECK_EQ(test_count_fds(), before);
	printf("  %-44s removed again\n", "region 0 of 3");
}

/* ------------------------------------------------------------------------ */
/* impossible values in replies                                             */
/* ------------------------------------------------------------------------ */
enum call {
	C_QUEUE_NUM,
	C_MEM_SLOTS,
	C_STATUS,
	C_VRING_BASE,
	C_INFLIGHT,
	C_FEATURES,
	C_STATE_FD,
	C_SHARED,
	C_POSTCOPY,
};

struct reply_case {
	const char *name;
	enum call call;
	uint32_t request;
	enum trick trick;
	uint64_t value, value2;
	enum fd_kind kind;
	int want;
};

#define R(name, call, req, trick, v, v2, kind, want)                         \
	{ name, call, VH_VU_##req, trick, v, v2, kind, want }
static const struct reply_case reply_cases[] = {
	R("GET_QUEUE_NUM 2^64-1", C_QUEUE_NUM, GET_QUEUE_NUM, T_U64, ~0ull, 0,
	  FD_NONE, -EPROTO),
	R("GET_QUEUE_NUM 0", C_QUEUE_NUM, GET_QUEUE_NUM, T_U64, 0, 0, FD_NONE,
	  -EPROTO),
	R("GET_QUEUE_NUM 257", C_QUEUE_NUM, GET_QUEUE_NUM, T_U64, 257, 0,
	  FD_NONE, -EPROTO),
	R("GET_QUEUE_NUM 256", C_QUEUE_NUM, GET_QUEUE_NUM, T_U64, 256, 0,
	  FD_NONE, 0),
	R("GET_MAX_MEM_SLOTS 2^32", C_MEM_SLOTS, GET_MAX_MEM_SLOTS, T_U64,
	  1ull << 32, 0, FD_NONE, -EPROTO),
	R("GET_MAX_MEM_SLOTS 2^64-1", C_MEM_SLOTS, GET_MAX_MEM_SLOTS, T_U64,
	  ~0ull, 0, FD_NONE, -EPROTO),
	R("GET_MAX_MEM_SLOTS 0", C_MEM_SLOTS, GET_MAX_MEM_SLOTS, T_U64, 0, 0,
	  FD_NONE, -EPROTO),
	R("GET_MAX_MEM_SLOTS 509", C_MEM_SLOTS, GET_MAX_MEM_SLOTS, T_U64, 509,
	  0, FD_NONE, 0),
	R("GET_STATUS 0x100", C_STATUS, GET_STATUS, T_U64, 0x100, 0, FD_NONE,
	  -EPROTO),
	R("GET_VRING_BASE 0x10000 (split)", C_VRING_BASE, GET_VRING_BASE,
	  T_BASE, 0x10000, 0, FD_NONE, -EPROTO),
	R("GET_INFLIGHT_FD mmap_size 2^62", C_INFLIGHT, GET_INFLIGHT_FD,
	  T_INFLIGHT, 1ull << 62, 0, FD_MEMFD, -EPROTO),
	R("GET_INFLIGHT_FD offset past the end", C_INFLIGHT, GET_INFLIGHT_FD,
	  T_INFLIGHT, 4096, 8192, FD_MEMFD, -EPROTO),
	R("GET_INFLIGHT_FD offset + size wraps", C_INFLIGHT, GET_INFLIGHT_FD,
	  T_INFLIGHT, 8192, ~0ull - 4095, FD_MEMFD, -EPROTO),
	R("GET_INFLIGHT_FD offset unaligned", C_INFLIGHT, GET_INFLIGHT_FD,
	  T_INFLIGHT, 64, 64, FD_MEMFD, -EPROTO),
	R("GET_INFLIGHT_FD a pipe", C_INFLIGHT, GET_INFLIGHT_FD, T_INFLIGHT,
	  4096, 0, FD_PIPE, -EPROTO),
	R("GET_INFLIGHT_FD a socket", C_INFLIGHT, GET_INFLIGHT_FD, T_INFLIGHT,
	  4096, 0, FD_SOCKET, -EPROTO),
	R("GET_INFLIGHT_FD an eventfd", C_INFLIGHT, GET_INFLIGHT_FD,
	  T_INFLIGHT, 4096, 0, FD_EVENTFD, -EPROTO),
	R("GET_INFLIGHT_FD other queues", C_INFLIGHT, GET_INFLIGHT_FD,
	  T_INFLIGHT_QUEUES, 0, 0, FD_NONE, -EPROTO),
	R("GET_INFLIGHT_FD valid", C_INFLIGHT, GET_INFLIGHT_FD, T_INFLIGHT,
	  4096, 0, FD_MEMFD, 0),
	R("GET_FEATURES 4096 bytes + 8 fds", C_FEATURES, GET_FEATURES, T_BIG,
	  0, 0, FD_NONE, -EPROTO),
	R("SET_DEVICE_STATE_FD an eventfd back", C_STATE_FD,
	  SET_DEVICE_STATE_FD, T_FD, 0, 0, FD_EVENTFD, -EPROTO),
	R("SET_DEVICE_STATE_FD a memfd back", C_STATE_FD, SET_DEVICE_STATE_FD,
	  T_FD, 0, 0, FD_MEMFD, -EPROTO),
	/* saving: the front-end reads, a write end cannot be */
	R("SET_DEVICE_STATE_FD a write end back", C_STATE_FD,
	  SET_DEVICE_STATE_FD, T_FD, 0, 0, FD_PIPE_W, -EPROTO),
	R("SET_DEVICE_STATE_FD a pipe back", C_STATE_FD, SET_DEVICE_STATE_FD,
	  T_FD, 0, 0, FD_PIPE, 0),
	/* a dma-buf ("Shared objects") */
	R("GET_SHARED_OBJECT a pipe", C_SHARED, GET_SHARED_OBJECT, T_FD, 0, 0,
	  FD_PIPE, -EPROTO),
	R("GET_SHARED_OBJECT an eventfd", C_SHARED, GET_SHARED_OBJECT, T_FD, 0,
	  0, FD_EVENTFD, -EPROTO),
	R("GET_SHARED_OBJECT a memfd", C_SHARED, GET_SHARED_OBJECT, T_FD, 0, 0,
	  FD_MEMFD, -EPROTO),
	R("GET_SHARED_OBJECT no fd", C_SHARED, GET_SHARED_OBJECT, T_NONE, 0, 0,
	  FD_NONE, -ENOENT),
	/* the back-end's userfaultfd */
	R("POSTCOPY_ADVISE a pipe", C_POSTCOPY, POSTCOPY_ADVISE, T_FD, 0, 0,
	  FD_PIPE, -EPROTO),
	R("POSTCOPY_ADVISE an eventfd", C_POSTCOPY, POSTCOPY_ADVISE, T_FD, 0, 0,
	  FD_EVENTFD, -EPROTO),
	R("POSTCOPY_ADVISE a memfd", C_POSTCOPY, POSTCOPY_ADVISE, T_FD, 0, 0,
	  FD_MEMFD, -EPROTO),
	R("POSTCOPY_ADVISE a userfaultfd", C_POSTCOPY, POSTCOPY_ADVISE, T_FD, 0,
	  0, FD_UFFD, 0),
};

static int do_call(struct vh_vu_frontend *fe, enum call c)
{
	struct vh_vu_inflight inf;
	uint32_t base;
	uint64_t v;
	uint8_t st;
	int r, fd = -1, p[2];

	switch (c) {
	case C_QUEUE_NUM:
		return vh_vu_frontend_get_queue_num(fe, &v);
	case C_MEM_SLOTS:
		return vh_vu_frontend_get_max_mem_slots(fe, &v);
	case C_STATUS:
		return vh_vu_frontend_get_status(fe, &st);
	case C_VRING_BASE:
		return vh_vu_frontend_get_vring_base(fe, 0, &base);
	case C_INFLIGHT:
		r = vh_vu_frontend_get_inflight_fd(fe, 2, 64, &inf, &fd);
		if (r == 0) {
			struct stat sb;

			CHECK(fd >= 0);
			CHECK(fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode));
			CHECK_EQ(inf.mmap_size, 4096);
			close(fd);
		} else {
			CHECK_EQ(fd, -1);
		}
		return r;
	case C_FEATURES:
		return vh_vu_frontend_get_features(fe, &v);
	case C_SHARED: {
		const uint8_t uuid[16] = { 1 };

		r = vh_vu_frontend_get_shared_object(fe, uuid, &fd);
		if (r == 0)
			close(fd);
		else
			CHECK_EQ(fd, -1);
		return r;
	}
	case C_POSTCOPY:
		r = vh_vu_frontend_postcopy_advise(fe, &fd);
		if (r == 0) {
			CHECK(fd >= 0);
			close(fd);
		} else {
			CHECK_EQ(fd, -1);
		}
		return r;
	case C_STATE_FD:
		CHECK(pipe2(p, O_CLOEXEC) == 0);
		r = vh_vu_frontend_set_device_state_fd(fe, VH_VU_TRANSFER_SAVE,
						       VH_VU_PHASE_STOPPED,
						       p[1], &fd);
		if (r == 0) {
			CHECK(fd >= 0);
			close(fd);
		} else {
			CHECK_EQ(fd, -1);
		}
		close(p[0]);
		close(p[1]);
		return r;
	}
	return -EINVAL;
}

/*
 * A call of several requests ends by one deadline: a back-end that answers
 * each of them just in time (0.6 of the timeout) no longer stretches
 * negotiate (5 requests) or share_mem (4) to several timeouts.
 */
static void test_calls_deadline(void)
{
	const uint64_t pf = PF(REPLY_ACK) | PF(CONFIGURE_MEM_SLOTS);
	int before = test_count_fds(), i;
	struct vh_mem *mem;
	struct evil e;
	int64_t t0;

	printf("one deadline for a call of several requests\n");
	evil_start(&e, F30, pf);
	e.delay_ms = TMO_MS * 6 / 10;
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_frontend_negotiate(e.fe, ~0ull, ~0ull, NULL, NULL),
		 -ETIMEDOUT);
	check_took(t0, TMO_MS - 20, TMO_MS + SLACK_MS, "negotiate, 5 slow replies");
	evil_stop(&e);

	CHECK_EQ(vh_mem_new(ctx, &mem), 0);
	for (i = 0; i < 3; i++)
		CHECK_EQ(vh_mem_add_memfd(mem, (uint64_t)i << 20, 4096, NULL),
			 0);
	evil_open(&e, F30, pf);
	e.delay_ms = TMO_MS * 6 / 10;
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_frontend_share_mem(e.fe, mem), -ETIMEDOUT);
	check_took(t0, TMO_MS - 20, TMO_MS + SLACK_MS,
		   "share_mem, 4 slow replies");
	evil_stop(&e);
	vh_mem_unref(mem);
	CHECK_EQ(test_count_fds(), before);
}

/*
 * Protocol features we do not know are not acknowledged; a packed ring's
 * GET_VRING_BASE positions must lie inside the ring.
 */
static void test_unknown_and_packed(void)
{
	const uint64_t packed = 1ull << VH_VU_VIRTIO_F_RING_PACKED;
	int before = test_count_fds();
	uint64_t f = 0, p = 0;
	uint32_t base = 0;
	struct evil e;

	printf("unknown protocol bits, packed ring bases\n");
	evil_start(&e, F30 | packed, ALL_PROTOCOL | 1ull << 40 | 1ull << 63);
	CHECK_EQ(vh_vu_frontend_negotiate(e.fe, ~0ull, ~0ull, &f, &p), 0);
	CHECK_EQ(p, ALL_PROTOCOL);
	CHECK(f & packed);
	CHECK_EQ(vh_vu_frontend_set_vring_num(e.fe, 0, 64), 0);
	/* avail 5 and used 3, both wrap counters set */
	evil_trick(&e, VH_VU_GET_VRING_BASE, T_BASE, 0x80038005u, 0, FD_NONE);
	CHECK_EQ(vh_vu_frontend_get_vring_base(e.fe, 0, &base), 0);
	CHECK_EQ(base, 0x80038005u);
	/* used position 64 on a ring of 64 */
	evil_trick(&e, VH_VU_GET_VRING_BASE, T_BASE, 0x00400001u, 0, FD_NONE);
	CHECK_EQ(vh_vu_frontend_get_vring_base(e.fe, 0, &base), -EPROTO);
	evil_stop(&e);

	evil_open(&e, F30 | packed, ALL_PROTOCOL);
	CHECK_EQ(vh_vu_frontend_set_vring_num(e.fe, 0, 64), 0);
	/* avail position 0x7fff */
	evil_trick(&e, VH_VU_GET_VRING_BASE, T_BASE, 0x7fff, 0, FD_NONE);
	CHECK_EQ(vh_vu_frontend_get_vring_base(e.fe, 0, &base), -EPROTO);
	evil_stop(&e);
	CHECK_EQ(test_count_fds(), before);
}

static void test_bad_replies(void)
{
	size_t i;

	printf("impossible values in replies\n");
	for (i = 0; i < VH_ARRAY_SIZE(reply_cases); i++) {
		const struct reply_case *c = &reply_cases[i];
		int before = test_count_fds(), r;
		struct evil e;
		uint64_t v;

		evil_open(&e, F30, ALL_PROTOCOL);
		evil_trick(&e, c->request, c->trick, c->value, c->value2,
			   c->kind);
		r = do_call(e.fe, c->call);
		if (r != c->want) {
			fprintf(stderr, "%s: %d (%s), expected %d\n", c->name,
				r, strerror(-r), c->want);
			exit(1);
		}
		/* a wrong answer breaks the connection: nothing more is sent */
		CHECK_EQ(vh_vu_frontend_get_features(e.fe, &v),
			 c->want == -EPROTO ? -EPIPE : 0);
		evil_stop(&e);
		CHECK_EQ(test_count_fds(), before);
		printf("  %-44s %s\n", c->name,
		       c->want == -EPROTO ? "refused" :
		       c->want ? "no fd" : "taken");
	}
}

/* ------------------------------------------------------------------------ */
/* impossible values in back-end requests                                   */
/* ------------------------------------------------------------------------ */
/* Send a request with NEED_REPLY on chan, dispatch it, return the ack. */
static uint64_t backend_call(struct evil *e, int chan, uint32_t request,
			     const void *payload, uint32_t size, int fd)
{
	struct vh_vu_msg m;

	vh_vu_msg_init(&m, request, size);
	m.hdr.flags |= VH_VU_FLAG_NEED_REPLY;
	if (size)
		memcpy(m.payload.raw, payload, size);
	if (fd >= 0)
		m.fds[m.nfds++] = fd;
	CHECK_EQ(vh_vu_msg_send(ctx, chan, &m), 0);
	if (fd >= 0)
		close(fd);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(e->fe), 0);
	CHECK_EQ(vh_vu_msg_recv(ctx, chan, &m), 0);
	CHECK_EQ(m.hdr.request, request);
	CHECK(m.hdr.flags & VH_VU_FLAG_REPLY);
	CHECK_EQ(m.hdr.size, 8);
	CHECK_EQ(m.nfds, 0);
	return m.payload.u64;
}

/* dispatch_backend() from a callback of a back-end request: -EBUSY */
static void test_dispatch_in_callback(void)
{
	struct calls calls = { .dispatch = true, .dispatch_r = 1 };
	int before = test_count_fds(), chan;
	struct vh_vu_iotlb io = { 0 };
	struct evil e;

	printf("dispatch inside a callback\n");
	evil_open(&e, F30 | (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM),
		  ALL_PROTOCOL);
	CHECK_EQ(vh_vu_frontend_set_ops(e.fe, &ops, &calls), 0);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(e.fe), 0);
	chan = evil_chan(&e);
	io.iova = 0x1000;
	io.size = 0x1000;
	io.perm = VH_ACCESS_RO;
	io.type = VH_IOTLB_MISS;
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_IOTLB_MSG, &io,
			      sizeof(io), -1),
		 0);
	CHECK_EQ(calls.iotlb, 1);
	CHECK_EQ(calls.dispatch_r, -EBUSY);
	evil_stop(&e);
	CHECK_EQ(test_count_fds(), before);
}

static void test_bad_backend_requests(void)
{
	const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	struct calls calls = { 0 };
	struct vh_vu_vring_state st = { 0 };
	struct vh_vu_vring_area a;
	struct vh_vu_iotlb io;
	struct evil e;
	int before = test_count_fds(), chan;

	printf("impossible values in back-end requests\n");
	evil_open(&e, F30 | (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM),
		  ALL_PROTOCOL);
	CHECK_EQ(vh_vu_frontend_set_ops(e.fe, &ops, &calls), 0);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(e.fe), 0);
	chan = evil_chan(&e);
	/* rings 0 and 1 */
	CHECK_EQ(vh_vu_frontend_set_vring_num(e.fe, 1, 64), 0);

	/* VRING_CALL / VRING_ERR: only rings that are set up */
	st.index = 1;
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_CALL, &st, 8, -1),
		 0);
	CHECK_EQ(calls.call, 1);
	CHECK_EQ(calls.last_idx, 1);
	st.index = 2;
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_CALL, &st, 8, -1),
		 EINVAL);
	st.index = UINT32_MAX;
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_CALL, &st, 8, -1),
		 EINVAL);
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_ERR, &st, 8, -1),
		 EINVAL);
	CHECK_EQ(calls.call, 1);
	CHECK_EQ(calls.err, 0);
	st.index = 0;
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_ERR, &st, 8, -1),
		 0);
	CHECK_EQ(calls.err, 1);

	/* HOST_NOTIFIER: a ring that is set up, an area inside its fd */
	a = (struct vh_vu_vring_area){ .u64 = 1, .size = page, .offset = 0 };
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG,
			      &a, sizeof(a), new_memfd(page)),
		 0);
	CHECK_EQ(calls.notifier, 1);
	a.u64 = 2; /* ring 2 was never set up */
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG,
			      &a, sizeof(a), new_memfd(page)),
		 EINVAL);
	a.u64 = 1;
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG,
			      &a, sizeof(a), new_fd(FD_PIPE)),
		 EINVAL);
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG,
			      &a, sizeof(a), new_fd(FD_SOCKET)),
		 EINVAL);
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG,
			      &a, sizeof(a), new_fd(FD_EVENTFD)),
		 EINVAL);
	a.size = 2 * page; /* larger than the fd */
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG,
			      &a, sizeof(a), new_memfd(page)),
		 EINVAL);
	a.size = page;
	a.offset = page; /* past its end */
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG,
			      &a, sizeof(a), new_memfd(page)),
		 EINVAL);
	a.offset = ~0ull & ~(page - 1); /* offset + size wraps */
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG,
			      &a, sizeof(a), new_memfd(page)),
		 EINVAL);
	a.offset = 0;
	a.size = 100; /* not a page */
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG,
			      &a, sizeof(a), new_memfd(page)),
		 EINVAL);
	a.size = 0;
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG,
			      &a, sizeof(a), new_memfd(page)),
		 EINVAL);
	CHECK_EQ(calls.notifier, 1);
	/* removing the notifier (no fd) is fine */
	a = (struct vh_vu_vring_area){ .u64 = 1 | VH_VU_VRING_NOFD };
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG,
			      &a, sizeof(a), -1),
		 0);
	CHECK_EQ(calls.notifier, 2);

	/* IOTLB: a back-end reports misses and access failures, no more */
	io = (struct vh_vu_iotlb){ .iova = 0x1000, .size = 0x1000,
				   .perm = VH_ACCESS_RW,
				   .type = VH_IOTLB_UPDATE };
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_IOTLB_MSG, &io,
			      sizeof(io), -1),
		 EINVAL);
	io.type = VH_IOTLB_MISS;
	io.perm = 7;
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_IOTLB_MSG, &io,
			      sizeof(io), -1),
		 EINVAL);
	io.perm = VH_ACCESS_RO;
	CHECK_EQ(backend_call(&e, chan, VH_VU_BACKEND_IOTLB_MSG, &io,
			      sizeof(io), -1),
		 0);
	CHECK_EQ(calls.iotlb, 1);

	/* the channel and the connection both still work */
	CHECK(vh_vu_frontend_get_backend_fd(e.fe) >= 0);
	CHECK_EQ(vh_vu_frontend_get_status(e.fe, &(uint8_t){ 0 }), 0);
	evil_stop(&e);
	CHECK_EQ(test_count_fds(), before);
}

/* ------------------------------------------------------------------------ */
/* vhostctl user probe / user check against such a back-end                 */
/* ------------------------------------------------------------------------ */
/* The start of the line of vhostctl's report out that names key. */
static char *report_line(char *out, const char *key)
{
	char *line = strstr(out, key);

	CHECK(line);
	while (line > out && line[-1] != '\n')
		line--;
	return line;
}

static void test_vhostctl(void)
{
	char out[65536], *line;
	struct server s;
	int rc;

	printf("vhostctl against a hostile back-end\n");
	server_start(&s, F30 | (1ull << VH_VU_VIRTIO_F_VERSION_1),
		     PF(MQ) | PF(REPLY_ACK) | PF(CONFIGURE_MEM_SLOTS));

	/* the honest answers: probe succeeds and prints them */
	rc = run_vhostctl(out, sizeof(out), 3000 + SLACK_MS, "user", "probe",
			  s.path);
	if (rc != 0 || !strstr(out, "queues          2") ||
	    !strstr(out, "max mem slots   8")) {
		fprintf(stderr, "probe (honest) exit %d:\n%s", rc, out);
		exit(1);
	}
	/* a bad GET_QUEUE_NUM: exit 1, and the message says which */
	evil_trick(&s.e, VH_VU_GET_QUEUE_NUM, T_U64, ~0ull, 0, FD_NONE);
	rc = run_vhostctl(out, sizeof(out), 3000 + SLACK_MS, "user", "probe",
			  s.path);
	if (rc != 1 || !strstr(out, "GET_QUEUE_NUM: Protocol error (bad reply")) {
		fprintf(stderr, "probe (GET_QUEUE_NUM 2^64-1) exit %d:\n%s",
			rc, out);
		exit(1);
	}
	/* -v: the library's reason names the request and the value */
	rc = run_vhostctl(out, sizeof(out), 3000 + SLACK_MS, "-v", "user",
			  "probe", s.path);
	if (rc != 1 ||
	    !strstr(out, "GET_QUEUE_NUM: bad reply: 18446744073709551615")) {
		fprintf(stderr, "probe -v (GET_QUEUE_NUM 2^64-1) exit %d:\n%s",
			rc, out);
		exit(1);
	}
	printf("  %-44s exit %d\n", "probe, GET_QUEUE_NUM 2^64-1", rc);
	evil_trick(&s.e, VH_VU_GET_MAX_MEM_SLOTS, T_U64, 1ull << 32, 0,
		   FD_NONE);
	rc = run_vhostctl(out, sizeof(out), 3000 + SLACK_MS, "user", "probe",
			  s.path);
	if (rc != 1 || !strstr(out, "GET_MAX_MEM_SLOTS: Protocol error (bad")) {
		fprintf(stderr, "probe (GET_MAX_MEM_SLOTS 2^32) exit %d:\n%s",
			rc, out);
		exit(1);
	}
	printf("  %-44s exit %d\n", "probe, GET_MAX_MEM_SLOTS 2^32", rc);

	/* check: a 4096-byte reply with 8 fds to an unknown request */
	evil_trick(&s.e, 999, T_BIG, 0, 0, FD_NONE);
	rc = run_vhostctl(out, sizeof(out), 60000, "user", "check", s.path);
	line = report_line(out, "unknown request 999");
	if (rc != 1 || strncmp(line, "FAIL", 4) ||
	    !strstr(line, "malformed reply") ||
	    (strstr(line, "accepted") && strstr(line, "accepted") <
						 strchr(line, '\n'))) {
		fprintf(stderr, "check (999: 4096 bytes, 8 fds) exit %d:\n%s",
			rc, out);
		exit(1);
	}
	printf("  %-44s exit %d\n", "check, 4096 bytes + 8 fds to 999", rc);

	/*
	 * check: a message it cannot read answered with 5 bytes of a header
	 * and a close: a reply cut short, so malformed (FAIL), not a message
	 * of its own (WARN)
	 */
	evil_trick(&s.e, 0, T_NONE, 0, 0, FD_NONE);
	s.e.cut_on_bad = true;
	rc = run_vhostctl(out, sizeof(out), 60000, "user", "check", s.path);
	line = report_line(out, "size field 1 GiB");
	if (rc != 1 || strncmp(line, "FAIL", 4) ||
	    !strstr(line, "malformed reply")) {
		fprintf(stderr, "check (size 1 GiB: 5 bytes back) exit %d:\n%s",
			rc, out);
		exit(1);
	}
	printf("  %-44s exit %d\n", "check, 5 bytes of a header back", rc);
	server_stop(&s);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	/* a front-end that hangs is a failure, not a stuck make check */
	alarm(180);
	CHECK_EQ(vh_ctx_new(&ctx), 0);
	test_full_backlog();
	test_flood();
	test_half_message();
	test_nested_deadline();
	test_nested_in_order();
	test_nested_inner_first();
	test_callback_drops_connection();
	test_share_mem_rollback();
	test_calls_deadline();
	test_unknown_and_packed();
	test_bad_replies();
	test_bad_backend_requests();
	test_dispatch_in_callback();
	test_vhostctl();
	vh_ctx_unref(ctx);
	return 0;
}
