// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: a hostile vhost-user back-end, fed to the front-end's
 * parsers in memory: replies go to vu_fe_reply() (what vu_fe_call() runs
 * on a received reply), back-end requests to vu_fe_backend_msg() (what
 * vh_vu_frontend_dispatch_backend() runs on a received request).  No
 * socket per input; fds are new eventfds or dup()s of files made once per
 * process that the front-end never reads or writes.
 *
 * Input:
 *   bytes 0-7   negotiated virtio features (little endian)
 *   bytes 8-15  negotiated protocol features
 *   byte 16     bit 0: the application has callbacks, bit 1: they fail,
 *               bit 2: SHARED_OBJECT_LOOKUP finds no fd
 *   byte 17     rings set up (SET_VRING_NUM went through for 0..n-1)
 *   then records, each starting with an op byte; op & 7 fds ride along,
 *   one kind byte each (% 4: a new eventfd, a memfd, a socket, a pipe):
 *     op < 0x80: a reply to request `asked` (1 byte): request (1 byte),
 *         flags (1 byte; version 1 forced, as vh_vu_msg_recv() drops
 *         others), size (2 bytes LE, mod 4097), fd kinds, payload;
 *     op >= 0x80: a back-end request: request, flags, size, fd kinds,
 *         payload as above.
 *
 * What the front-end sends back for a back-end request must pass its own
 * rule table (a reply the back-end would take); nothing may crash or leak.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "fuzz-fds.h"
#include "fuzz-trace.h"
#include "libvhost.h"
#include "vu-frontend-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct in {
	const uint8_t *p;
	size_t n;
};

static void take(struct in *in, void *buf, size_t len)
{
	size_t k = len < in->n ? len : in->n;

	memset(buf, 0, len);
	memcpy(buf, in->p, k);
	in->p += k;
	in->n -= k;
}

static struct vh_ctx *ctx;
static int memfd = -1, sock[2] = { -1, -1 }, pipefd[2] = { -1, -1 };
static int first_free_fd;
static uint8_t cfg;

static void setup(void)
{
	if (ctx)
		return;
	if (vh_ctx_new(&ctx) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sock) < 0 ||
	    pipe2(pipefd, O_CLOEXEC) < 0)
		abort();
	fuzz_trace_on(ctx);
	memfd = memfd_create("fuzz-fe", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, 0x4000) < 0)
		abort();
	first_free_fd = dup(0);
	if (first_free_fd < 0)
		abort();
	close(first_free_fd);
}

/* ------------------------------------------------------------------------ */
/* the application's callbacks                                              */
/* ------------------------------------------------------------------------ */
static int result(void)
{
	return (cfg & 2) ? -EIO : 0;
}

static int config_change(struct vh_vu_frontend *fe, void *data)
{
	return result();
}

static int host_notifier(struct vh_vu_frontend *fe, void *data,
			 unsigned int idx, int fd, uint64_t size,
			 uint64_t offset)
{
	if (fd >= 0)
		close(fd);
	return result();
}

static int iotlb(struct vh_vu_frontend *fe, void *data,
		 const struct vh_vu_iotlb *msg)
{
	return result();
}

static int vring_call(struct vh_vu_frontend *fe, void *data, unsigned int idx)
{
	return result();
}

static int vring_err(struct vh_vu_frontend *fe, void *data, unsigned int idx)
{
	return result();
}

static int shared_add(struct vh_vu_frontend *fe, void *data,
		      const uint8_t uuid[16])
{
	return result();
}

static int shared_remove(struct vh_vu_frontend *fe, void *data,
			 const uint8_t uuid[16])
{
	return result();
}

static int shared_lookup(struct vh_vu_frontend *fe, void *data,
			 const uint8_t uuid[16], int *fd)
{
	if (cfg & 2)
		return -ENOENT;
	if (!(cfg & 4))
		*fd = eventfd(0, EFD_CLOEXEC);
	return 0;
}

static const struct vh_vu_frontend_ops fe_ops = {
	.size = sizeof(fe_ops),
	.config_change = config_change,
	.host_notifier = host_notifier,
	.iotlb = iotlb,
	.vring_call = vring_call,
	.vring_err = vring_err,
	.shared_object_add = shared_add,
	.shared_object_remove = shared_remove,
	.shared_object_lookup = shared_lookup,
};

/* ------------------------------------------------------------------------ */
/* records                                                                  */
/* ------------------------------------------------------------------------ */
static int fd_of_kind(uint8_t kind)
{
	switch (kind % 4) {
	case 0:
		return eventfd(0, EFD_CLOEXEC);
	case 1:
		return fcntl(memfd, F_DUPFD_CLOEXEC, 0);
	case 2:
		return fcntl(sock[1], F_DUPFD_CLOEXEC, 0);
	default:
		return fcntl(pipefd[0], F_DUPFD_CLOEXEC, 0);
	}
}

/* A message as vh_vu_msg_recv() returns it. */
static void read_msg(struct in *in, uint8_t op, struct vh_vu_msg *m)
{
	uint8_t req, flags, kinds[8];
	uint16_t sz;
	unsigned int k, nfds = op & 7;

	take(in, &req, 1);
	take(in, &flags, 1);
	take(in, &sz, 2);
	take(in, kinds, nfds);
	vh_vu_msg_init(m, req, sz % (VH_VU_PAYLOAD_MAX + 1));
	m->hdr.flags = (flags & ~VH_VU_FLAG_VERSION_MASK) | VH_VU_VERSION;
	take(in, &m->payload, m->hdr.size);
	memset(m->payload.raw + m->hdr.size, 0,
	       sizeof(m->payload) - m->hdr.size);
	for (k = 0; k < nfds; k++) {
		int fd = fd_of_kind(kinds[k]);

		if (fd < 0)
			abort();
		m->fds[m->nfds++] = fd;
	}
}

static void op_reply(struct vh_vu_frontend *fe, struct in *in, uint8_t op)
{
	const struct vh_vu_msg_rule *rule;
	struct vh_vu_msg m, rep;
	uint8_t asked;
	int r;

	take(in, &asked, 1);
	read_msg(in, op, &m);
	rule = vh_vu_msg_rule(false, asked);
	if (!rule || rule->reply == VH_VU_REPLY_NONE) {
		/* nothing is asked that has no reply */
		vh_vu_msg_close_fds(&m);
		return;
	}
	vh_vu_msg_init(&rep, 0, 0);
	r = vu_fe_reply(fe, rule, &m, op & 0x40 ? NULL : &rep);
	if (r == 0 && rule->reply == VH_VU_REPLY_ALWAYS && !(op & 0x40)) {
		/* what the caller gets passed the rule */
		if (vh_vu_msg_check(ctx, rule, &rep, true) < 0)
			abort();
		vh_vu_msg_close_fds(&rep);
	}
	if (r < 0 && r != -EPROTO && rule->reply == VH_VU_REPLY_ALWAYS)
		abort();
	/* a broken front-end sends nothing more: this one goes on */
	fe->broken = false;
}

static void op_backend(struct vh_vu_frontend *fe, struct in *in, uint8_t op)
{
	const struct vh_vu_msg_rule *rule;
	struct vh_vu_msg m;
	uint32_t request;
	int r;

	read_msg(in, op, &m);
	request = m.hdr.request;
	r = vu_fe_backend_msg(fe, &m);
	if (r < 0)
		return;
	if (r != 1)
		return;
	/* our answer must be one the back-end takes */
	rule = vh_vu_msg_rule(true, request);
	if (!rule || m.hdr.request != request ||
	    m.hdr.flags != (VH_VU_VERSION | VH_VU_FLAG_REPLY) ||
	    vh_vu_msg_check(ctx, rule, &m, true) < 0) {
		fprintf(stderr, "bad reply to back-end request %u\n", request);
		abort();
	}
	vh_vu_msg_close_fds(&m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct vh_vu_frontend *fe;
	struct fuzz_fds before;
	unsigned int ops_done = 0;
	uint8_t nrings;

	setup();
	fuzz_fds_scan(&before, first_free_fd);
	if (vh_vu_frontend_new(ctx, &fe) < 0)
		abort();
	/* what a negotiation would have left */
	take(&in, &fe->features, 8);
	take(&in, &fe->protocol_features, 8);
	fe->offered = fe->features;
	fe->protocol_offered = fe->protocol_features;
	take(&in, &cfg, 1);
	take(&in, &nrings, 1);
	fe->nrings = nrings;
	if ((cfg & 1) && vh_vu_frontend_set_ops(fe, &fe_ops, NULL) < 0)
		abort();

	while (in.n > 0 && ops_done++ < 256) {
		uint8_t op;

		take(&in, &op, 1);
		if (op < 0x80)
			op_reply(fe, &in, op);
		else
			op_backend(fe, &in, op);
	}
	vh_vu_frontend_unref(fe);
	fuzz_fds_check(&before);
	return 0;
}
