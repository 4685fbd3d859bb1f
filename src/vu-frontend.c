// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user front-end: connection, request/reply engine, feature
 * negotiation, guest memory and vrings.  The remaining requests and the
 * back-end request channel are in vu-frontend-msgs.c.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "vu-frontend-internal.h"
#include "vu-trace.h"

VH_EXPORT int vh_vu_frontend_new(struct vh_ctx *ctx,
				 struct vh_vu_frontend **out)
{
	struct vh_vu_frontend *fe;

	if (!ctx || !out)
		return -EINVAL;
	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	fe->refcount = 1;
	fe->ctx = vh_ctx_ref(ctx);
	fe->sock = -1;
	fe->backend_fd = -1;
	fe->timeout_ms = VH_VU_FRONTEND_TIMEOUT_MS;
	fe->reply_ack = true;
	vh_vu_rx_init(&fe->backend_rx);
	vh_vu_rx_init(&fe->reply_rx);
	*out = fe;
	return 0;
}

VH_EXPORT struct vh_vu_frontend *vh_vu_frontend_ref(struct vh_vu_frontend *fe)
{
	if (fe)
		__atomic_add_fetch(&fe->refcount, 1, __ATOMIC_RELAXED);
	return fe;
}

VH_EXPORT void vh_vu_frontend_disconnect(struct vh_vu_frontend *fe)
{
	if (!fe)
		return;
	if (fe->sock >= 0)
		close(fe->sock);
	fe->sock = -1;
	vu_fe_close_backend(fe);
	vh_vu_rx_reset(&fe->reply_rx);
	if (fe->early_valid)
		vh_vu_msg_close_fds(&fe->early);
	fe->early_valid = false;
	fe->waiting = false;
	fe->conn_gen++;
	fe->broken = false;
	fe->offered = fe->features = 0;
	fe->protocol_offered = fe->protocol_features = 0;
	fe->max_mem_slots = 0;
	fe->nrings = 0;
	memset(fe->ring_num, 0, sizeof(fe->ring_num));
}

VH_EXPORT struct vh_vu_frontend *vh_vu_frontend_unref(struct vh_vu_frontend *fe)
{
	if (!fe)
		return NULL;
	if (__atomic_sub_fetch(&fe->refcount, 1, __ATOMIC_ACQ_REL) > 0)
		return fe;
	vh_vu_frontend_disconnect(fe);
	vh_ctx_unref(fe->ctx);
	free(fe);
	return NULL;
}

/*
 * Take fd as the connection.  Non-blocking: every wait on the back-end is
 * a poll() against the call's deadline, never a sleep in the kernel.
 */
static int adopt(struct vh_vu_frontend *fe, int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	vh_vu_frontend_disconnect(fe);
	fe->sock = fd;
	return 0;
}

VH_EXPORT int vh_vu_frontend_connect(struct vh_vu_frontend *fe,
				     const char *path, int timeout_ms)
{
	int fd, r;

	if (!fe || !path)
		return -EINVAL;
	fd = vh_vu_socket_connect(fe->ctx, path, timeout_ms);
	if (fd < 0)
		return fd;
	r = adopt(fe, fd);
	if (r < 0)
		close(fd);
	return r;
}

VH_EXPORT int vh_vu_frontend_set_fd(struct vh_vu_frontend *fe, int fd)
{
	int r;

	if (!fe)
		return -EINVAL;
	r = vh_vu_socket_adopt(fe->ctx, fd);
	if (r < 0)
		return r;
	return adopt(fe, fd);
}

VH_EXPORT int vh_vu_frontend_accept(struct vh_vu_frontend *fe, const char *path,
				    int timeout_ms)
{
	struct vh_vu_sock_id id;
	struct pollfd pfd;
	int64_t deadline, left = -1;
	int lfd, fd, r;

	if (!fe || !path)
		return -EINVAL;
	deadline = vh_vu_now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	lfd = vh_vu_socket_listen_id(fe->ctx, path, 1, true, &id);
	if (lfd < 0)
		return lfd;
	pfd = (struct pollfd){ .fd = lfd, .events = POLLIN };
	/* one deadline, whatever interrupts the wait (< 0: none, as poll) */
	do {
		if (timeout_ms >= 0) {
			left = deadline - vh_vu_now_ms();
			left = left < 0 ? 0 : left > INT_MAX ? INT_MAX : left;
		}
		r = poll(&pfd, 1, (int)left);
	} while (r < 0 && errno == EINTR);
	if (r <= 0) {
		r = r == 0 ? -ETIMEDOUT : -errno;
		goto out;
	}
	fd = vh_vu_socket_accept(fe->ctx, lfd, true);
	if (fd < 0) {
		r = fd;
		goto out;
	}
	r = adopt(fe, fd);
	if (r < 0)
		close(fd);
out:
	/* ours only: another listener may have put its socket there since */
	vh_vu_socket_unlink_id(fe->ctx, path, &id);
	close(lfd);
	return r;
}

VH_EXPORT int vh_vu_frontend_get_fd(const struct vh_vu_frontend *fe)
{
	return fe ? fe->sock : -EINVAL;
}

VH_EXPORT void vh_vu_frontend_set_timeout(struct vh_vu_frontend *fe,
					  int timeout_ms)
{
	if (fe)
		fe->timeout_ms = timeout_ms > 0 ? timeout_ms :
						  VH_VU_FRONTEND_TIMEOUT_MS;
}

VH_EXPORT void vh_vu_frontend_set_reply_ack(struct vh_vu_frontend *fe, bool on)
{
	if (fe)
		fe->reply_ack = on;
}

/* ------------------------------------------------------------------------ */
/* request / reply                                                          */
/* ------------------------------------------------------------------------ */
/*
 * Wait for the reply of this call until deadline, serving the back-end
 * channel meanwhile (a back-end may need an answer from us before it can
 * answer: an IOTLB miss in the middle of a request).  inner: a callback's
 * call while an outer call waits (see struct vh_vu_frontend).  Both
 * sockets are read incrementally: half a message on either holds nothing
 * up.  -ECONNRESET if a callback dropped or replaced the connection.
 */
static int wait_message(struct vh_vu_frontend *fe, bool inner,
			struct vh_vu_msg *rep, int64_t deadline)
{
	const uint64_t gen = fe->conn_gen;
	int r;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = fe->sock, .events = POLLIN },
			{ .fd = fe->dispatching ? -1 : fe->backend_fd,
			  .events = POLLIN },
		};
		int64_t left = deadline - vh_vu_now_ms();

		/* at the deadline, still take what is already there */
		r = poll(pfd, 2, left <= 0 ? 0 : left > INT32_MAX ? INT32_MAX :
								  (int)left);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (pfd[1].revents) {
			r = vu_fe_dispatch_backend(fe, deadline);
			if (r < 0 && r != -EAGAIN)
				vh_warn(fe->ctx, "back-end channel: %s\n",
					strerror(-r));
		} else if (!fe->dispatching) {
			vu_fe_backend_stalled(fe);
		}
		/* the callback disconnected: no reply can come any more */
		if (fe->conn_gen != gen)
			return -ECONNRESET;
		/* a call made by that dispatch may have read ours */
		if (!inner && fe->early_valid) {
			memcpy(rep, &fe->early, sizeof(*rep));
			fe->early_valid = false;
			return 0;
		}
		if (pfd[0].revents) {
			r = vh_vu_rx_step(fe->ctx, fe->sock, &fe->reply_rx, rep);
			if (r == -EAGAIN)
				goto next;
			if (r < 0)
				return r; /* reply_rx is empty again */
			vh_vu_trace(fe->ctx, "<-", false, rep);
			/*
			 * The outer call's (its request, and the first of
			 * two to the same request) is kept for it; anything
			 * else is ours, checked by vu_fe_reply()
			 */
			if (inner && !fe->early_valid &&
			    rep->hdr.request == fe->waiting_request) {
				memcpy(&fe->early, rep, sizeof(*rep));
				fe->early_valid = true;
				continue; /* ours may be there already */
			}
			return 0;
		}
next:
		if (left <= 0) {
			if (fe->reply_rx.got)
				vh_err(fe->ctx, "reply stalled after %u bytes\n",
				       fe->reply_rx.got);
			r = -ETIMEDOUT;
			break;
		}
	}
	return r;
}

/* The gate of a request, against what is negotiated (spec per message). */
static bool gate_open(const struct vh_vu_frontend *fe,
		      const struct vh_vu_msg_rule *rule)
{
	uint64_t features = fe->features;

	/* "Only legal if feature bit 30 is present in GET_FEATURES" */
	if (rule->request == VH_VU_GET_PROTOCOL_FEATURES ||
	    rule->request == VH_VU_SET_PROTOCOL_FEATURES)
		features = fe->offered;
	return vh_vu_msg_gate_open(rule, features, fe->protocol_features);
}

static int call_until(struct vh_vu_frontend *fe, struct vh_vu_msg *msg,
		      struct vh_vu_msg *rep, int64_t deadline)
{
	const struct vh_vu_msg_rule *rule;
	uint32_t request = msg->hdr.request;
	struct vh_vu_msg tmp;
	bool want = false, inner;
	uint64_t gen;
	int r;

	if (fe->sock < 0)
		return -ENOTCONN;
	if (fe->broken)
		return -EPIPE;
	rule = vh_vu_msg_rule(false, request);
	if (!rule)
		return -EINVAL;
	if (!gate_open(fe, rule)) {
		vh_dbg(fe->ctx, "%s: not negotiated\n", rule->name);
		return -EOPNOTSUPP;
	}
	if (vh_vu_msg_check(fe->ctx, rule, msg, false) < 0)
		return -EINVAL; /* our own caller's bad arguments */

	if (rule->reply == VH_VU_REPLY_ALWAYS) {
		want = true;
	} else if (rule->reply == VH_VU_REPLY_ACK && fe->reply_ack &&
		   vu_fe_has_protocol(fe, VH_VU_PROTOCOL_F_REPLY_ACK)) {
		msg->hdr.flags |= VH_VU_FLAG_NEED_REPLY;
		want = true;
	}
	/* QEMU always sets NEED_REPLY on IOTLB_MSG; back-ends expect it */
	if (request == VH_VU_IOTLB_MSG)
		msg->hdr.flags |= VH_VU_FLAG_NEED_REPLY;

	vh_vu_trace(fe->ctx, "->", false, msg);
	r = vh_vu_msg_send_until(fe->ctx, fe->sock, msg, deadline);
	if (r < 0) {
		vh_err(fe->ctx, "%s: send: %s\n", rule->name, strerror(-r));
		fe->broken = true;
		return r;
	}
	if (!want)
		return 0;

	vh_vu_msg_init(&tmp, 0, 0);
	gen = fe->conn_gen;
	inner = fe->waiting && fe->waiting_gen == gen;
	if (!inner) {
		fe->waiting = true;
		fe->waiting_request = request;
		fe->waiting_gen = gen;
	}
	r = wait_message(fe, inner, &tmp, deadline);
	if (!inner && fe->conn_gen == gen)
		fe->waiting = false;
	if (r < 0) {
		vh_err(fe->ctx, "%s: no reply: %s\n", rule->name, strerror(-r));
		/* a connection a callback dropped is not ours to break */
		if (fe->conn_gen == gen)
			fe->broken = true;
		return r;
	}
	return vu_fe_reply(fe, rule, &tmp, rep);
}

int vu_fe_reply(struct vh_vu_frontend *fe, const struct vh_vu_msg_rule *rule,
		struct vh_vu_msg *tmp, struct vh_vu_msg *rep)
{
	uint64_t v;

	/* the back-end is hostile too: the reply must be the one we asked */
	if (tmp->hdr.request != rule->request ||
	    !(tmp->hdr.flags & VH_VU_FLAG_REPLY) ||
	    vh_vu_msg_check(fe->ctx, rule, tmp, true) < 0) {
		vh_err(fe->ctx,
		       "%s: bad reply (request %u, flags %#x, %u bytes, %u fds)\n",
		       rule->name, tmp->hdr.request, tmp->hdr.flags,
		       tmp->hdr.size, tmp->nfds);
		vh_vu_msg_close_fds(tmp);
		fe->broken = true;
		return -EPROTO;
	}
	if (rule->reply == VH_VU_REPLY_ALWAYS) {
		if (rep)
			memcpy(rep, tmp, sizeof(*tmp));
		else
			vh_vu_msg_close_fds(tmp);
		return 0;
	}
	/* REPLY_ACK: "zero on success or non-zero on failure" */
	v = tmp->payload.u64;
	if (v == 0)
		return 0;
	vh_dbg(fe->ctx, "%s: back-end says %llu\n", rule->name,
	       (unsigned long long)v);
	return v < 4096 ? -(int)v : -EIO;
}

int vu_fe_bad_reply(struct vh_vu_frontend *fe, const char *request,
		    const char *fmt, ...)
{
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	vh_err(fe->ctx, "%s: bad reply: %s\n", request, why);
	fe->broken = true;
	return -EPROTO;
}

int vu_fe_call(struct vh_vu_frontend *fe, struct vh_vu_msg *msg,
	       struct vh_vu_msg *rep)
{
	int64_t deadline = vu_fe_deadline(fe), outer = fe->call_deadline;
	int r;

	/*
	 * A call made from a back-end request's callback, in the middle of
	 * another call, ends by that call's deadline.
	 */
	if (outer && outer < deadline)
		deadline = outer;
	fe->call_deadline = deadline;
	r = call_until(fe, msg, rep, deadline);
	fe->call_deadline = outer;
	return r;
}

int vu_fe_call_u64(struct vh_vu_frontend *fe, uint32_t request, bool with_u64,
		   uint64_t value)
{
	struct vh_vu_msg m;

	vh_vu_msg_init(&m, request, with_u64 ? 8 : 0);
	m.payload.u64 = value;
	return vu_fe_call(fe, &m, NULL);
}

int vu_fe_get_u64(struct vh_vu_frontend *fe, uint32_t request, uint64_t *value)
{
	struct vh_vu_msg m, rep;
	int r;

	vh_vu_msg_init(&m, request, 0);
	r = vu_fe_call(fe, &m, &rep);
	if (r < 0)
		return r;
	/* checked against the rule: a u64 and no fds */
	if (value)
		*value = rep.payload.u64;
	return 0;
}

int vu_fe_call_fd(struct vh_vu_frontend *fe, uint32_t request, int fd)
{
	struct vh_vu_msg m;

	if (fd < 0)
		return -EBADF;
	vh_vu_msg_init(&m, request, 0);
	m.fds[m.nfds++] = fd;
	return vu_fe_call(fe, &m, NULL);
}

/* ------------------------------------------------------------------------ */
/* features                                                                 */
/* ------------------------------------------------------------------------ */
VH_EXPORT int vh_vu_frontend_get_features(struct vh_vu_frontend *fe,
					  uint64_t *features)
{
	uint64_t v;
	int r;

	if (!fe)
		return -EINVAL;
	r = vu_fe_get_u64(fe, VH_VU_GET_FEATURES, &v);
	if (r < 0)
		return r;
	fe->offered = v;
	if (features)
		*features = v;
	return 0;
}

VH_EXPORT int vh_vu_frontend_set_features(struct vh_vu_frontend *fe,
					  uint64_t features)
{
	int r;

	if (!fe)
		return -EINVAL;
	r = vu_fe_call_u64(fe, VH_VU_SET_FEATURES, true, features);
	if (r == 0)
		fe->features = features;
	return r;
}

VH_EXPORT int vh_vu_frontend_get_protocol_features(struct vh_vu_frontend *fe,
						   uint64_t *features)
{
	uint64_t v;
	int r;

	if (!fe)
		return -EINVAL;
	r = vu_fe_get_u64(fe, VH_VU_GET_PROTOCOL_FEATURES, &v);
	if (r < 0)
		return r;
	fe->protocol_offered = v;
	if (features)
		*features = v;
	return 0;
}

VH_EXPORT int vh_vu_frontend_set_protocol_features(struct vh_vu_frontend *fe,
						   uint64_t features)
{
	int r;

	if (!fe)
		return -EINVAL;
	/* the ack for this very message may only be asked once it is on */
	r = vu_fe_call_u64(fe, VH_VU_SET_PROTOCOL_FEATURES, true, features);
	if (r == 0)
		fe->protocol_features = features;
	return r;
}

static int negotiate(struct vh_vu_frontend *fe, uint64_t features,
		     uint64_t protocol_features, uint64_t *features_out,
		     uint64_t *protocol_out)
{
	const uint64_t f30 = 1ull << VH_VU_F_PROTOCOL_FEATURES;
	const uint64_t inband = 1ull << VH_VU_PROTOCOL_F_INBAND_NOTIFICATIONS;
	const uint64_t inband_needs = (1ull << VH_VU_PROTOCOL_F_BACKEND_REQ) |
				      (1ull << VH_VU_PROTOCOL_F_REPLY_ACK);
	uint64_t offered, poffered, f, p = 0;
	int r;

	r = vh_vu_frontend_get_features(fe, &offered);
	if (r < 0)
		return r;
	f = offered & features;
	if (offered & f30) {
		f |= f30;
		r = vh_vu_frontend_get_protocol_features(fe, &poffered);
		if (r < 0)
			return r;
		/* only what we know: an unknown bit would be acked blindly */
		p = poffered & protocol_features &
		    ((1ull << VH_VU_PROTOCOL_F_MAX) - 1);
		/* XEN_MMAP changes the region layout, which we do not speak */
		p &= ~(1ull << VH_VU_PROTOCOL_F_XEN_MMAP);
		/* "In-band notifications": not without BACKEND_REQ + REPLY_ACK */
		if ((p & inband) && (p & inband_needs) != inband_needs)
			p &= ~inband;
		r = vh_vu_frontend_set_protocol_features(fe, p);
		if (r < 0)
			return r;
	}
	r = vh_vu_frontend_set_owner(fe);
	if (r < 0)
		return r;
	r = vh_vu_frontend_set_features(fe, f);
	if (r < 0)
		return r;
	if (features_out)
		*features_out = f;
	if (protocol_out)
		*protocol_out = p;
	return 0;
}

VH_EXPORT int vh_vu_frontend_negotiate(struct vh_vu_frontend *fe,
				       uint64_t features,
				       uint64_t protocol_features,
				       uint64_t *features_out,
				       uint64_t *protocol_out)
{
	int64_t outer;
	int r;

	if (!fe)
		return -EINVAL;
	outer = vu_fe_calls_begin(fe);
	r = negotiate(fe, features, protocol_features, features_out,
		      protocol_out);
	vu_fe_calls_end(fe, outer);
	return r;
}

VH_EXPORT uint64_t vh_vu_frontend_features(const struct vh_vu_frontend *fe)
{
	return fe ? fe->features : 0;
}

VH_EXPORT uint64_t
vh_vu_frontend_protocol_features(const struct vh_vu_frontend *fe)
{
	return fe ? fe->protocol_features : 0;
}

VH_EXPORT uint64_t
vh_vu_frontend_offered_features(const struct vh_vu_frontend *fe)
{
	return fe ? fe->offered : 0;
}

VH_EXPORT uint64_t
vh_vu_frontend_offered_protocol_features(const struct vh_vu_frontend *fe)
{
	return fe ? fe->protocol_offered : 0;
}

VH_EXPORT int vh_vu_frontend_set_owner(struct vh_vu_frontend *fe)
{
	return fe ? vu_fe_call_u64(fe, VH_VU_SET_OWNER, false, 0) : -EINVAL;
}

VH_EXPORT int vh_vu_frontend_reset_owner(struct vh_vu_frontend *fe)
{
	return fe ? vu_fe_call_u64(fe, VH_VU_RESET_OWNER, false, 0) : -EINVAL;
}

VH_EXPORT int vh_vu_frontend_reset_device(struct vh_vu_frontend *fe)
{
	if (!fe)
		return -EINVAL;
	if (vu_fe_has_protocol(fe, VH_VU_PROTOCOL_F_RESET_DEVICE))
		return vu_fe_call_u64(fe, VH_VU_RESET_DEVICE, false, 0);
	return vu_fe_call_u64(fe, VH_VU_RESET_OWNER, false, 0);
}

VH_EXPORT int vh_vu_frontend_get_queue_num(struct vh_vu_frontend *fe,
					   uint64_t *num)
{
	uint64_t v;
	int r;

	if (!fe)
		return -EINVAL;
	r = vu_fe_get_u64(fe, VH_VU_GET_QUEUE_NUM, &v);
	if (r < 0)
		return r;
	/* a device has a queue; more than 256 cannot be addressed */
	if (v == 0 || v > VU_FE_MAX_QUEUES)
		return vu_fe_bad_reply(fe, "GET_QUEUE_NUM",
				       "%llu queues (1..%u)",
				       (unsigned long long)v, VU_FE_MAX_QUEUES);
	if (num)
		*num = v;
	return 0;
}

VH_EXPORT int vh_vu_frontend_get_max_mem_slots(struct vh_vu_frontend *fe,
					       uint64_t *slots)
{
	uint64_t v;
	int r;

	if (!fe)
		return -EINVAL;
	r = vu_fe_get_u64(fe, VH_VU_GET_MAX_MEM_SLOTS, &v);
	if (r < 0)
		return r;
	if (v == 0 || v > VU_FE_MAX_MEM_SLOTS)
		return vu_fe_bad_reply(fe, "GET_MAX_MEM_SLOTS",
				       "%llu slots (1..%u)",
				       (unsigned long long)v,
				       VU_FE_MAX_MEM_SLOTS);
	fe->max_mem_slots = v;
	if (slots)
		*slots = v;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* guest memory                                                             */
/* ------------------------------------------------------------------------ */
static int get_region(struct vh_mem *mem, unsigned int idx,
		      struct vh_vu_mem_region *out, int *fd)
{
	struct vh_mem_region r;
	int ret;

	ret = vh_mem_get_region(mem, idx, &r);
	if (ret < 0)
		return ret;
	if (r.fd < 0 || !r.host)
		return -EINVAL;
	out->guest_addr = r.gpa;
	out->size = r.size;
	/* ring and buffer addresses we send are our own mapping's */
	out->user_addr = (uint64_t)(uintptr_t)r.host;
	out->mmap_offset = r.fd_offset;
	*fd = r.fd;
	return 0;
}

VH_EXPORT int vh_vu_frontend_set_mem_table(struct vh_vu_frontend *fe,
					   struct vh_mem *mem)
{
	struct vh_vu_msg m;
	int n, i, r;

	if (!fe || !mem)
		return -EINVAL;
	n = vh_mem_num_regions(mem);
	if (n < 0)
		return n;
	if (n > (int)VH_VU_MAX_MEM_REGIONS)
		return -E2BIG;
	vh_vu_msg_init(&m, VH_VU_SET_MEM_TABLE,
		       8 + n * sizeof(struct vh_vu_mem_region));
	m.payload.mem.nregions = n;
	for (i = 0; i < n; i++) {
		r = get_region(mem, i, &m.payload.mem.regions[i], &m.fds[i]);
		if (r < 0)
			return r;
		m.nfds++;
	}
	return vu_fe_call(fe, &m, NULL);
}

static int mem_reg(struct vh_vu_frontend *fe, uint32_t request,
		   struct vh_mem *mem, unsigned int idx)
{
	struct vh_vu_msg m;
	int fd, r;

	if (!fe || !mem)
		return -EINVAL;
	vh_vu_msg_init(&m, request, sizeof(struct vh_vu_mem_single));
	r = get_region(mem, idx, &m.payload.mem_reg.region, &fd);
	if (r < 0)
		return r;
	/* REM_MEM_REG: "No file descriptors SHOULD be passed" */
	if (request == VH_VU_ADD_MEM_REG)
		m.fds[m.nfds++] = fd;
	return vu_fe_call(fe, &m, NULL);
}

VH_EXPORT int vh_vu_frontend_add_mem_reg(struct vh_vu_frontend *fe,
					 struct vh_mem *mem, unsigned int idx)
{
	return mem_reg(fe, VH_VU_ADD_MEM_REG, mem, idx);
}

VH_EXPORT int vh_vu_frontend_rem_mem_reg(struct vh_vu_frontend *fe,
					 struct vh_mem *mem, unsigned int idx)
{
	return mem_reg(fe, VH_VU_REM_MEM_REG, mem, idx);
}

static int share_mem(struct vh_vu_frontend *fe, struct vh_mem *mem,
		     int64_t outer)
{
	int n, i, r;

	if (!vu_fe_has_protocol(fe, VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
		return vh_vu_frontend_set_mem_table(fe, mem);
	n = vh_mem_num_regions(mem);
	if (n < 0)
		return n;
	if (!fe->max_mem_slots) {
		r = vh_vu_frontend_get_max_mem_slots(fe, NULL);
		if (r < 0)
			return r;
	}
	if ((uint64_t)n > fe->max_mem_slots)
		return -ENOSPC;
	for (i = 0; i < n; i++) {
		r = vh_vu_frontend_add_mem_reg(fe, mem, i);
		if (r < 0)
			break;
	}
	if (i == n)
		return 0;
	/*
	 * All or nothing: a refusal (REPLY_ACK) leaves the connection up, and
	 * regions left behind would be sent twice by a retry.  A broken
	 * connection has nothing left to undo.  The undoing has a deadline
	 * of its own: the call's may be what ran out.
	 */
	vu_fe_calls_end(fe, outer);
	vu_fe_calls_begin(fe);
	while (i-- > 0 && !fe->broken && fe->sock >= 0)
		if (vh_vu_frontend_rem_mem_reg(fe, mem, i) < 0)
			vh_warn(fe->ctx, "share_mem: region %d left behind\n",
				i);
	return r;
}

VH_EXPORT int vh_vu_frontend_share_mem(struct vh_vu_frontend *fe,
				       struct vh_mem *mem)
{
	int64_t outer;
	int r;

	if (!fe || !mem)
		return -EINVAL;
	outer = vu_fe_calls_begin(fe);
	r = share_mem(fe, mem, outer);
	vu_fe_calls_end(fe, outer);
	return r;
}

/* ------------------------------------------------------------------------ */
/* vrings                                                                   */
/* ------------------------------------------------------------------------ */
static int vring_state(struct vh_vu_frontend *fe, uint32_t request,
		       unsigned int idx, uint32_t num)
{
	struct vh_vu_msg m;

	if (!fe)
		return -EINVAL;
	vh_vu_msg_init(&m, request, sizeof(struct vh_vu_vring_state));
	m.payload.state.index = idx;
	m.payload.state.num = num;
	return vu_fe_call(fe, &m, NULL);
}

VH_EXPORT int vh_vu_frontend_set_vring_num(struct vh_vu_frontend *fe,
					   unsigned int idx, unsigned int num)
{
	int r = vring_state(fe, VH_VU_SET_VRING_NUM, idx, num);

	/* the rings a back-end request may name (no more than can be) */
	if (r == 0 && idx < VU_FE_MAX_QUEUES && idx >= fe->nrings)
		fe->nrings = idx + 1;
	if (r == 0 && idx <= VH_VU_VRING_IDX_MASK)
		fe->ring_num[idx] = num;
	return r;
}

VH_EXPORT int vh_vu_frontend_set_vring_base(struct vh_vu_frontend *fe,
					    unsigned int idx, uint32_t base)
{
	return vring_state(fe, VH_VU_SET_VRING_BASE, idx, base);
}

VH_EXPORT int vh_vu_frontend_set_vring_enable(struct vh_vu_frontend *fe,
					      unsigned int idx, bool enable)
{
	return vring_state(fe, VH_VU_SET_VRING_ENABLE, idx, enable ? 1 : 0);
}

VH_EXPORT int vh_vu_frontend_set_vring_endian(struct vh_vu_frontend *fe,
					      unsigned int idx, bool big_endian)
{
	return vring_state(fe, VH_VU_SET_VRING_ENDIAN, idx, big_endian);
}

VH_EXPORT int vh_vu_frontend_vring_kick(struct vh_vu_frontend *fe,
					unsigned int idx)
{
	return vring_state(fe, VH_VU_VRING_KICK, idx, 0);
}

VH_EXPORT int vh_vu_frontend_set_vring_addr(struct vh_vu_frontend *fe,
					    const struct vh_vu_vring_addr *a)
{
	struct vh_vu_msg m;

	if (!fe || !a)
		return -EINVAL;
	vh_vu_msg_init(&m, VH_VU_SET_VRING_ADDR, sizeof(*a));
	m.payload.addr = *a;
	return vu_fe_call(fe, &m, NULL);
}

VH_EXPORT int vh_vu_frontend_get_vring_base(struct vh_vu_frontend *fe,
					    unsigned int idx, uint32_t *base)
{
	struct vh_vu_msg m, rep;
	int r;

	if (!fe)
		return -EINVAL;
	vh_vu_msg_init(&m, VH_VU_GET_VRING_BASE,
		       sizeof(struct vh_vu_vring_state));
	m.payload.state.index = idx;
	r = vu_fe_call(fe, &m, &rep);
	if (r < 0)
		return r;
	if (rep.payload.state.index != idx)
		return vu_fe_bad_reply(fe, "GET_VRING_BASE",
				       "for ring %u, asked %u",
				       rep.payload.state.index, idx);
	/* a split ring's index is 16 bits ("Ring states"); packed uses 32 */
	if (!(fe->features & (1ull << VH_VU_VIRTIO_F_RING_PACKED)) &&
	    rep.payload.state.num > 0xffff)
		return vu_fe_bad_reply(fe, "GET_VRING_BASE",
				       "ring %u base %u on a split ring", idx,
				       rep.payload.state.num);
	/*
	 * packed ("Ring states"): bits 0-14 the next avail position, 16-30
	 * the next used one (15 and 31 their wrap counters), each below the
	 * ring's size
	 */
	if ((fe->features & (1ull << VH_VU_VIRTIO_F_RING_PACKED)) &&
	    idx <= VH_VU_VRING_IDX_MASK && fe->ring_num[idx] &&
	    ((rep.payload.state.num & 0x7fff) >= fe->ring_num[idx] ||
	     (rep.payload.state.num >> 16 & 0x7fff) >= fe->ring_num[idx]))
		return vu_fe_bad_reply(fe, "GET_VRING_BASE",
				       "ring %u base %#x past its %u entries",
				       idx, rep.payload.state.num,
				       fe->ring_num[idx]);
	if (base)
		*base = rep.payload.state.num;
	return 0;
}

static int vring_file(struct vh_vu_frontend *fe, uint32_t request,
		      unsigned int idx, int fd)
{
	struct vh_vu_msg m;

	if (!fe)
		return -EINVAL;
	/* "Bits (0-7) of the payload contain the vring index" */
	if (idx > VH_VU_VRING_IDX_MASK)
		return -EINVAL;
	vh_vu_msg_init(&m, request, 8);
	m.payload.u64 = idx;
	if (fd < 0)
		m.payload.u64 |= VH_VU_VRING_NOFD;
	else
		m.fds[m.nfds++] = fd;
	return vu_fe_call(fe, &m, NULL);
}

VH_EXPORT int vh_vu_frontend_set_vring_kick(struct vh_vu_frontend *fe,
					    unsigned int idx, int fd)
{
	return vring_file(fe, VH_VU_SET_VRING_KICK, idx, fd);
}

VH_EXPORT int vh_vu_frontend_set_vring_call(struct vh_vu_frontend *fe,
					    unsigned int idx, int fd)
{
	return vring_file(fe, VH_VU_SET_VRING_CALL, idx, fd);
}

VH_EXPORT int vh_vu_frontend_set_vring_err(struct vh_vu_frontend *fe,
					   unsigned int idx, int fd)
{
	return vring_file(fe, VH_VU_SET_VRING_ERR, idx, fd);
}

int vu_fe_vring_log(struct vh_vu_frontend *fe, struct vh_drvq *vq,
		    struct vh_vu_vring_addr *a)
{
	uint64_t dg, ag;
	int r;

	if (!(fe->features & (1ull << VH_VU_VHOST_F_LOG_ALL)))
		return 0;
	r = vh_drvq_get_addrs(vq, &dg, &ag, &a->log);
	if (r < 0)
		return r;
	a->flags |= VH_VRING_F_LOG;
	return 0;
}

static int setup_vq(struct vh_vu_frontend *fe, unsigned int idx,
		    struct vh_drvq *vq, int kick_fd, int call_fd)
{
	struct vh_vu_vring_addr a;
	void *desc, *avail, *used;
	int r;

	r = vh_drvq_get_host_addrs(vq, &desc, &avail, &used);
	if (r < 0)
		return r;
	r = vh_vu_frontend_set_vring_num(fe, idx, vh_drvq_get_num(vq));
	if (r < 0)
		return r;
	r = vh_vu_frontend_set_vring_base(fe, idx, vu_fe_fresh_base(fe));
	if (r < 0)
		return r;
	memset(&a, 0, sizeof(a));
	a.index = idx;
	a.desc = (uint64_t)(uintptr_t)desc;
	a.avail = (uint64_t)(uintptr_t)avail;
	a.used = (uint64_t)(uintptr_t)used;
	r = vu_fe_vring_log(fe, vq, &a);
	if (r < 0)
		return r;
	r = vh_vu_frontend_set_vring_addr(fe, &a);
	if (r < 0)
		return r;
	/* the call fd first: the ring may start at the kick */
	r = vh_vu_frontend_set_vring_call(fe, idx, call_fd);
	if (r < 0)
		return r;
	r = vh_vu_frontend_set_vring_kick(fe, idx, kick_fd);
	if (r < 0)
		return r;
	if (fe->features & (1ull << VH_VU_F_PROTOCOL_FEATURES))
		r = vh_vu_frontend_set_vring_enable(fe, idx, true);
	return r;
}

VH_EXPORT int vh_vu_frontend_setup_vq(struct vh_vu_frontend *fe,
				      unsigned int idx, struct vh_drvq *vq,
				      int kick_fd, int call_fd)
{
	int64_t outer;
	int r;

	/* the KICK/CALL payload has 8 bits of ring index */
	if (!fe || !vq || idx > VH_VU_VRING_IDX_MASK)
		return -EINVAL;
	outer = vu_fe_calls_begin(fe);
	r = setup_vq(fe, idx, vq, kick_fd, call_fd);
	vu_fe_calls_end(fe, outer);
	return r;
}
