// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: a hostile vhost-user front-end, fed to the back-end's
 * message handler in memory (vu_be_handle_msg(), the function the socket
 * path calls after vh_vu_msg_recv()).  No socket, memfd or mapping is made
 * per input: fds are dup()s of a few made once per process, whose state
 * (contents, file offset, status flags, queued bytes) is reset before every
 * input, so an input replays the same way alone or in a campaign.
 *
 * The input is a sequence of operations:
 *
 *   op < 0x80: a message, as vh_vu_msg_recv() would return it: request
 *       (1 byte), flags (1 byte; version 1 is forced, the receive path
 *       drops other versions), size (2 bytes LE, mod 4097), then op & 7
 *       fd kind bytes, then the payload.  Fd kinds (byte % 4):
 *         0 a new eventfd (a dup is kept for the kick op below),
 *         1 the guest memfd (GUEST_SIZE bytes),
 *         2 the aux memfd (AUX_SIZE bytes: log, inflight),
 *         3 the back-end channel socket.
 *   0x80-0xbf: guest memory write: offset (2 bytes LE), length (1 byte,
 *       + 1), data, into the guest memfd (rings and buffers).
 *   0xc0-0xdf: write 1 to eventfd (op & 7) of this input, then let
 *       vh_vu_backend_dispatch() serve what epoll reports (kick fds).
 *   0xe0-0xff: a back-end request: a front-end reply (request, flags,
 *       size mod 33, payload; an eventfd rides along if op & 2) is queued
 *       on the back-end channel, then the back-end makes a request that
 *       reads it (SHARED_OBJECT_LOOKUP if op & 1, else CONFIG_CHANGE_MSG)
 *       plus those that wait for nothing when REPLY_ACK is off.
 *
 * Replies are read and dropped (fds closed) after every operation.  At the
 * end of each input the back-end is freed: no fd (poll on the fd numbers
 * above those of the process) and no memfd mapping (/proc/self/maps when
 * the address space changed) may survive it; LeakSanitizer sees the rest.
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
#include "fuzz-device.h"
#include "fuzz-trace.h"
#include "libvhost.h"
#include "vu-backend-internal.h"

#define GUEST_SIZE 0x10000
#define AUX_SIZE 0x4000
#define NKICK 8

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

/* per process */
static struct vh_ctx *ctx;
static int conn[2] = { -1, -1 }; /* [1] is dup()ed as the connection */
static int chan[2] = { -1, -1 }; /* [1] is dup()ed as a back-end channel */
static int guest_fd = -1, aux_fd = -1;
static int conn_fl, chan_fl, guest_fl, aux_fl;
static int first_free_fd;
static long last_vsize;

/* ------------------------------------------------------------------------ */
/* per process / per input state                                            */
/* ------------------------------------------------------------------------ */
static int sealed_memfd(const char *name, off_t size)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);

	/* its size is part of what an input sees: nobody may change it */
	if (fd < 0 || ftruncate(fd, size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) <
		    0)
		abort();
	return fd;
}

static long vsize(void)
{
	char buf[64];
	long pages = 0;
	int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		abort();
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		abort();
	buf[n] = 0;
	sscanf(buf, "%ld", &pages);
	return pages;
}

/* Mappings of a memfd: only the back-end makes them, it must undo them. */
static int memfd_maps(void)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "re");
	int n = 0;

	if (!f)
		abort();
	while (fgets(line, sizeof(line), f))
		if (strstr(line, "/memfd:"))
			n++;
	fclose(f);
	return n;
}

static void setup(void)
{
	if (ctx)
		return;
	if (vh_ctx_new(&ctx) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, conn) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, chan) < 0)
		abort();
	fuzz_trace_on(ctx);
	guest_fd = sealed_memfd("fuzz-guest", GUEST_SIZE);
	aux_fd = sealed_memfd("fuzz-aux", AUX_SIZE);
	/* the connection is non-blocking (conn_open() sets it anyway) */
	fcntl(conn[1], F_SETFL, fcntl(conn[1], F_GETFL) | O_NONBLOCK);
	fcntl(conn[0], F_SETFL, fcntl(conn[0], F_GETFL) | O_NONBLOCK);
	conn_fl = fcntl(conn[1], F_GETFL);
	chan_fl = fcntl(chan[1], F_GETFL);
	guest_fl = fcntl(guest_fd, F_GETFL);
	aux_fl = fcntl(aux_fd, F_GETFL);
	first_free_fd = dup(0);
	if (first_free_fd < 0)
		abort();
	close(first_free_fd);
}

/* Read and drop whatever is queued on sock (replies, requests); fds closed. */
static void drain(int sock)
{
	for (;;) {
		union {
			char buf[CMSG_SPACE(64 * sizeof(int))];
			struct cmsghdr align;
		} ctl;
		char buf[8192];
		struct iovec iov = { buf, sizeof(buf) };
		struct msghdr mh = { .msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *cm;
		ssize_t n = recvmsg(sock, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

		if (n <= 0)
			return;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			size_t i, k;

			if (cm->cmsg_level != SOL_SOCKET ||
			    cm->cmsg_type != SCM_RIGHTS)
				continue;
			k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (i = 0; i < k; i++) {
				int fd;

				memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int),
				       sizeof(fd));
				close(fd);
			}
		}
	}
}

/* Whatever an earlier input did to the shared files is undone. */
static void reset_shared(void)
{
	static const uint8_t zero[GUEST_SIZE];

	if (pwrite(guest_fd, zero, GUEST_SIZE, 0) != GUEST_SIZE ||
	    pwrite(aux_fd, zero, AUX_SIZE, 0) != AUX_SIZE)
		abort();
	lseek(guest_fd, 0, SEEK_SET);
	lseek(aux_fd, 0, SEEK_SET);
	fcntl(conn[1], F_SETFL, conn_fl);
	fcntl(chan[1], F_SETFL, chan_fl);
	fcntl(guest_fd, F_SETFL, guest_fl);
	fcntl(aux_fd, F_SETFL, aux_fl);
	drain(conn[0]);
	drain(conn[1]);
	drain(chan[0]);
	drain(chan[1]);
}

static void check_maps(void)
{
	long v = vsize();

	/* the address space changed: was it a mapping left behind? */
	if (v != last_vsize && memfd_maps() != 0) {
		fprintf(stderr, "a memfd mapping leaked\n");
		abort();
	}
	last_vsize = v;
}

/* ------------------------------------------------------------------------ */
/* operations                                                               */
/* ------------------------------------------------------------------------ */
struct run {
	struct vh_vu_backend *be;
	int kick[NKICK]; /* dups of this input's eventfds */
	unsigned int nkick;
};

static int fd_of_kind(struct run *run, uint8_t kind)
{
	int fd;

	switch (kind % 4) {
	case 0:
		fd = eventfd(0, EFD_CLOEXEC);
		if (fd >= 0 && run->nkick < NKICK)
			run->kick[run->nkick++] =
				fcntl(fd, F_DUPFD_CLOEXEC, 0);
		return fd;
	case 1:
		return fcntl(guest_fd, F_DUPFD_CLOEXEC, 0);
	case 2:
		return fcntl(aux_fd, F_DUPFD_CLOEXEC, 0);
	default:
		return fcntl(chan[1], F_DUPFD_CLOEXEC, 0);
	}
}

/*
 * Read what the back-end answered: every reply must be a whole message
 * with the REPLY flag and the id of the request; fds closed.  The count.
 */
static unsigned int replies(uint32_t request)
{
	struct vh_vu_msg m;
	unsigned int n = 0;
	int r;

	while ((r = vh_vu_msg_recv(ctx, conn[0], &m)) == 0) {
		vh_vu_msg_close_fds(&m);
		if (m.hdr.request != request ||
		    !(m.hdr.flags & VH_VU_FLAG_REPLY)) {
			fprintf(stderr, "reply %u flags %#x to request %u\n",
				m.hdr.request, m.hdr.flags, request);
			abort();
		}
		n++;
	}
	if (r != -EAGAIN)
		abort();
	return n;
}

static void op_msg(struct run *run, struct in *in, uint8_t op)
{
	const struct vh_vu_msg_rule *rule;
	struct vh_vu_msg m;
	uint8_t req, flags, kinds[8];
	uint16_t sz;
	unsigned int k, n, nfds = op & 7;
	bool need, ack, due;
	int r;

	take(in, &req, 1);
	take(in, &flags, 1);
	take(in, &sz, 2);
	take(in, kinds, nfds);
	vh_vu_msg_init(&m, req, sz % (VH_VU_PAYLOAD_MAX + 1));
	m.hdr.flags = (flags & ~VH_VU_FLAG_VERSION_MASK) | VH_VU_VERSION;
	take(in, &m.payload, m.hdr.size);
	/* what vh_vu_msg_recv() leaves: the rest of the payload zeroed */
	memset(m.payload.raw + m.hdr.size, 0,
	       sizeof(m.payload) - m.hdr.size);
	for (k = 0; k < nfds; k++) {
		int fd = fd_of_kind(run, kinds[k]);

		if (fd < 0)
			abort();
		m.fds[m.nfds++] = fd;
	}
	/* the reply-ack decision uses the state before the request */
	rule = vh_vu_msg_rule(false, m.hdr.request);
	need = m.hdr.flags & VH_VU_FLAG_NEED_REPLY;
	ack = vh_vu_backend_get_protocol_features(run->be) &
	      (1ull << VH_VU_PROTOCOL_F_REPLY_ACK);
	r = vu_be_handle_msg(run->be, &m);
	/* the SET_PROTOCOL_FEATURES that turns REPLY_ACK on is acked too */
	ack |= !!(vh_vu_backend_get_protocol_features(run->be) &
		  (1ull << VH_VU_PROTOCOL_F_REPLY_ACK));
	n = replies(req);
	/*
	 * A front-end waits for a reply that is due: the one it gets is the
	 * only one.  After an error (the connection closed) at most one.
	 */
	due = (rule && rule->reply == VH_VU_REPLY_ALWAYS) || (need && ack);
	if (n > 1 || (r >= 0 && n != due)) {
		fprintf(stderr, "request %u flags %#x: %u replies (r %d)\n",
			req, m.hdr.flags, n, r);
		abort();
	}
}

static void op_guest_write(struct in *in)
{
	uint8_t buf[256], len;
	uint16_t off;

	take(in, &off, 2);
	take(in, &len, 1);
	take(in, buf, (size_t)len + 1);
	if ((size_t)off + len + 1 > GUEST_SIZE)
		return;
	if (pwrite(guest_fd, buf, (size_t)len + 1, off) != (ssize_t)len + 1)
		abort();
}

static void op_kick(struct run *run, uint8_t op)
{
	uint64_t one = 1;
	int n = 0;

	if (!run->nkick)
		return;
	if (write(run->kick[(op & 7) % run->nkick], &one, sizeof(one)) < 0) {
		/* a full counter: the kick is there anyway */
	}
	while (n++ < 16 && vh_vu_backend_dispatch(run->be) != -EAGAIN &&
	       vh_vu_backend_connected(run->be))
		;
}

static void op_backend_req(struct run *run, struct in *in, uint8_t op)
{
	struct vh_vu_backend *be = run->be;
	uint8_t uuid[16] = { op };
	struct vh_vu_msg rep;
	uint8_t rreq, rflags, rsize;
	int got = -1;

	/*
	 * The front-end's answer is queued first (a hostile one, from the
	 * input), then the request is made: the back-end reads the answer as
	 * its reply.  Only a whole message is queued, so nothing waits.
	 */
	take(in, &rreq, 1);
	take(in, &rflags, 1);
	take(in, &rsize, 1);
	vh_vu_msg_init(&rep,
		       rreq & 0x10 ? rreq % 9 :
		       op & 1	   ? VH_VU_BACKEND_SHARED_OBJECT_LOOKUP :
				     VH_VU_BACKEND_CONFIG_CHANGE_MSG,
		       rsize % 33);
	rep.hdr.flags = rflags;
	take(in, &rep.payload, rep.hdr.size);
	if (op & 2) {
		rep.fds[0] = eventfd(0, EFD_CLOEXEC);
		rep.nfds = rep.fds[0] >= 0;
	}
	vh_vu_msg_send(ctx, chan[0], &rep);
	vh_vu_msg_close_fds(&rep);
	if (op & 1) {
		if (vh_vu_backend_shared_object_lookup(be, uuid, &got) == 0)
			close(got);
	} else {
		vh_vu_backend_config_change(be);
	}
	/* those that wait for no reply */
	if (!(vh_vu_backend_get_protocol_features(be) &
	      (1ull << VH_VU_PROTOCOL_F_REPLY_ACK))) {
		vh_vu_backend_shared_object_add(be, uuid);
		vh_vu_backend_vring_err(be, op % NQ);
		vh_vu_backend_host_notifier(be, op % NQ, -1, 0, 0);
	}
	/* what the back-end did not read is not for the next request */
	drain(chan[0]);
	drain(chan[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct run run = { .nkick = 0 };
	unsigned int i, ops_done = 0;
	struct fuzz_fds fds_before;
	int fd;

	setup();
	reset_shared();
	fuzz_fds_scan(&fds_before, first_free_fd);
	if (vh_vu_backend_new(ctx, &dev, &ops, NULL, &run.be) < 0)
		abort();
	fd = fcntl(conn[1], F_DUPFD_CLOEXEC, 0);
	if (fd < 0 || vh_vu_backend_adopt_fd(run.be, fd) < 0)
		abort();

	while (in.n > 0 && ops_done++ < 256 && vh_vu_backend_connected(run.be)) {
		uint8_t op;

		take(&in, &op, 1);
		if (op < 0x80)
			op_msg(&run, &in, op);
		else if (op < 0xc0)
			op_guest_write(&in);
		else if (op < 0xe0)
			op_kick(&run, op);
		else
			op_backend_req(&run, &in, op);
		/* nothing answers what was not a request */
		if (op >= 0x80 && replies(UINT32_MAX) != 0)
			abort();
	}

	if (vh_vu_backend_unref(run.be) != NULL)
		abort();
	for (i = 0; i < run.nkick; i++)
		if (run.kick[i] >= 0)
			close(run.kick[i]);
	drain(conn[0]);
	drain(conn[1]);
	drain(chan[0]);
	drain(chan[1]);
	fuzz_fds_check(&fds_before);
	check_maps();
	return 0;
}
