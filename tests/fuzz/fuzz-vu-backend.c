// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: a hostile vhost-user front-end.  The input is decoded
 * into a sequence of operations on one connection to a vh_vu_backend over a
 * socketpair:
 *
 *   op byte & 0xc0 == 0x00: a message.  request (1 byte, reduced mod 48),
 *       flags (1 byte: version bits as given, NEED_REPLY as given), size
 *       (2 bytes, mod 4097), then that many payload bytes from the input;
 *       op & 7 fds from the stash (eventfds when the stash is empty) go
 *       along.
 *   op byte & 0xc0 == 0x40: a memfd into the stash, size (2 bytes) * 256
 *       bytes (at most 16 MiB), then a length (2 bytes, mod 4097) and that
 *       many bytes written at its start (so rings in it can hold chains),
 *       sealed against resizing.
 *   op byte & 0xc0 == 0x80: a front-end reply to a back-end request
 *       (request id, flags, size mod 33 and payload from the input, an
 *       eventfd if op & 2) is queued on the request channel, then the
 *       back-end makes a request that reads it (SHARED_OBJECT_LOOKUP if
 *       op & 1, else CONFIG_CHANGE_MSG) plus those that wait for nothing.
 *   op byte & 0xc0 == 0xc0: (op & 0x3f) + 1 raw bytes straight onto the
 *       socket, then the end of the stream (a message cut short).
 *
 * After each op the back-end dispatches everything pending and whatever it
 * answered is read and dropped (fds closed).  Nothing may crash, hang or
 * leak (LeakSanitizer; the fd count is checked at the end of every input).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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

#include "fuzz-device.h"
#include "fuzz-trace.h"
#include "libvhost.h"
#include "vu-msg.h"

#define STASH 8

struct in {
	const uint8_t *p;
	size_t n;
};

static int take(struct in *in, void *buf, size_t len)
{
	size_t k = len < in->n ? len : in->n;

	memset(buf, 0, len);
	memcpy(buf, in->p, k);
	in->p += k;
	in->n -= k;
	return k == len ? 0 : -1;
}

static void pump(struct vh_ctx *ctx, struct vh_vu_backend *be, int sock)
{
	struct vh_vu_msg m;
	int n = 0;

	while (n++ < 64 && vh_vu_backend_dispatch(be) != -EAGAIN)
		;
	/* drop what the back-end answered */
	for (;;) {
		struct pollfd p = { .fd = sock, .events = POLLIN };

		if (poll(&p, 1, 0) != 1)
			break;
		if (vh_vu_msg_recv(ctx, sock, &m) < 0)
			break;
		vh_vu_msg_close_fds(&m);
	}
}

static int count_fds(void)
{
	int n = 0, fd;

	for (fd = 0; fd < 1024; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct vh_ctx *ctx;
	struct vh_vu_backend *be;
	int stash[STASH], nstash = 0, sv[2], req_sv[2] = { -1, -1 };
	int fds_before = count_fds(), i, ops_done = 0;

	if (vh_ctx_new(&ctx) < 0)
		return 0;
	fuzz_trace_on(ctx);
	if (vh_vu_backend_new(ctx, &dev, &ops, NULL, &be) < 0)
		abort();
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	if (vh_vu_backend_adopt_fd(be, sv[1]) < 0)
		abort();

	while (in.n > 0 && ops_done++ < 256 && vh_vu_backend_connected(be)) {
		uint8_t op;

		take(&in, &op, 1);
		switch (op & 0xc0) {
		case 0x00: {
			struct vh_vu_msg m;
			uint8_t req, flags;
			uint16_t sz;
			unsigned int k, nfds = op & 7;

			take(&in, &req, 1);
			take(&in, &flags, 1);
			take(&in, &sz, 2);
			vh_vu_msg_init(&m, req % 48,
				       sz % (VH_VU_PAYLOAD_MAX + 1));
			m.hdr.flags = flags & (VH_VU_FLAG_VERSION_MASK |
					       VH_VU_FLAG_NEED_REPLY);
			take(&in, &m.payload, m.hdr.size);
			for (k = 0; k < nfds; k++) {
				if (nstash) {
					m.fds[k] = stash[--nstash];
				} else if (req % 48 ==
						   VH_VU_SET_BACKEND_REQ_FD &&
					   req_sv[0] < 0 &&
					   socketpair(AF_UNIX,
						      SOCK_STREAM |
							      SOCK_CLOEXEC,
						      0, req_sv) == 0) {
					m.fds[k] = req_sv[1];
					req_sv[1] = -1;
				} else {
					m.fds[k] = eventfd(0, EFD_CLOEXEC);
				}
				m.nfds++;
			}
			if (vh_vu_msg_send(ctx, sv[0], &m) < 0)
				in.n = 0;
			for (k = 0; k < m.nfds; k++)
				close(m.fds[k]);
			break;
		}
		case 0x40: {
			uint16_t pages, clen;
			uint8_t buf[4096];
			size_t len;
			int fd;

			take(&in, &pages, 2);
			take(&in, &clen, 2);
			len = clen % (sizeof(buf) + 1);
			take(&in, buf, len);
			if (len > (size_t)pages * 256)
				len = (size_t)pages * 256;
			if (nstash >= STASH)
				break;
			fd = memfd_create("fuzz",
					  MFD_CLOEXEC | MFD_ALLOW_SEALING);
			if (fd < 0)
				break;
			if (ftruncate(fd, (off_t)pages * 256) < 0 ||
			    (len && pwrite(fd, buf, len, 0) != (ssize_t)len)) {
				close(fd);
				break;
			}
			fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
			stash[nstash++] = fd;
			break;
		}
		case 0x80: {
			uint8_t uuid[16] = { op };
			struct vh_vu_msg rep;
			uint8_t rreq, rflags, rsize;
			int got = -1;

			/*
			 * The front-end's answer is queued first (a hostile
			 * one, from the input), then the request is made: the
			 * back-end reads the answer as its reply.  Only a
			 * complete message is queued, so nothing waits.
			 */
			take(&in, &rreq, 1);
			take(&in, &rflags, 1);
			take(&in, &rsize, 1);
			vh_vu_msg_init(
				&rep,
				rreq & 0x10 ?
					rreq % 9 :
					(op & 1 ?
						 VH_VU_BACKEND_SHARED_OBJECT_LOOKUP :
						 VH_VU_BACKEND_CONFIG_CHANGE_MSG),
				rsize % 33);
			rep.hdr.flags = rflags;
			take(&in, &rep.payload, rep.hdr.size);
			if (req_sv[0] >= 0) {
				if (op & 2) {
					rep.fds[0] = eventfd(0, EFD_CLOEXEC);
					rep.nfds = rep.fds[0] >= 0;
				}
				if (vh_vu_msg_send(ctx, req_sv[0], &rep) < 0)
					in.n = 0;
				vh_vu_msg_close_fds(&rep);
			}
			if (op & 1) {
				if (vh_vu_backend_shared_object_lookup(
					    be, uuid, &got) == 0)
					close(got);
			} else {
				vh_vu_backend_config_change(be);
			}
			/* those that wait for no reply */
			if (!(vh_vu_backend_get_protocol_features(be) &
			      (1ull << VH_VU_PROTOCOL_F_REPLY_ACK))) {
				vh_vu_backend_shared_object_add(be, uuid);
				vh_vu_backend_vring_err(be, op % NQ);
				vh_vu_backend_host_notifier(be, op % NQ, -1, 0,
							    0);
			}
			if (req_sv[0] >= 0) {
				/* drop what is left, requests and replies */
				for (;;) {
					struct pollfd p = { .fd = req_sv[0],
							    .events = POLLIN };

					if (poll(&p, 1, 0) != 1 ||
					    vh_vu_msg_recv(ctx, req_sv[0],
							   &rep) < 0)
						break;
					vh_vu_msg_close_fds(&rep);
				}
			}
			break;
		}
		default: {
			uint8_t raw[64];
			size_t k = (op & 0x3f) + 1;

			take(&in, raw, k);
			send(sv[0], raw, k, MSG_NOSIGNAL | MSG_DONTWAIT);
			/*
			 * A message cut short is kept until its rest comes
			 * (VH_VU_MSG_TIMEOUT_MS): end the stream here so the
			 * cut shows as EOF at once.
			 */
			shutdown(sv[0], SHUT_WR);
			in.n = 0;
			break;
		}
		}
		pump(ctx, be, sv[0]);
	}

	close(sv[0]);
	pump(ctx, be, -1);
	for (i = 0; i < nstash; i++)
		close(stash[i]);
	if (req_sv[0] >= 0)
		close(req_sv[0]);
	if (req_sv[1] >= 0)
		close(req_sv[1]);
	if (vh_vu_backend_unref(be) != NULL)
		abort();
	vh_ctx_unref(ctx);
	/* every fd the back-end received or opened is gone */
	if (count_fds() != fds_before)
		abort();
	return 0;
}
