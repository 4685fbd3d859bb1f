// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libFuzzer target: a hostile vhost-user back-end.  The input is what the
 * back-end "says":
 *
 *   byte 0: how many eventfds ride (SCM_RIGHTS) on the first bytes of the
 *           reply stream (0-15, more than 8 is a truncation);
 *   bytes 1-2: the length of the reply stream (little endian, capped at
 *           what is left);
 *   then the reply stream, written whole onto the connection before the
 *   front-end asks anything, followed by EOF;
 *   then the rest: requests on the back-end request channel.
 *
 * The front-end runs its whole repertoire against that (negotiate, config,
 * vring base, inflight, device state, shared object, postcopy, crypto,
 * status, log base, back-end channel) and dispatches the back-end's
 * requests.  Nothing may crash, hang or leak (LeakSanitizer; fds counted
 * at the end of every input).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

#include "fuzz-trace.h"
#include "libvhost.h"
#include "vu-msg.h"

static struct vh_ctx *ctx;

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		abort();
	while ((de = readdir(d)))
		n++;
	closedir(d);
	return n;
}

static void send_with_fds(int sock, const uint8_t *p, size_t len,
			  unsigned int nfds)
{
	char ctl[CMSG_SPACE(16 * sizeof(int))];
	int fds[16];
	struct iovec iov = { (void *)p, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	unsigned int i;

	if (!len)
		return;
	memset(ctl, 0, sizeof(ctl));
	for (i = 0; i < nfds; i++)
		fds[i] = eventfd(0, EFD_CLOEXEC);
	if (nfds) {
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	if (sendmsg(sock, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
		/* more than the socket holds: the rest is simply not said */
	}
	for (i = 0; i < nfds; i++)
		close(fds[i]);
}

static void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vh_vu_frontend *fe;
	struct vh_vu_inflight inf;
	struct vh_vu_msg m;
	uint8_t buf[64], uuid[16] = { 0 }, st;
	uint64_t v;
	uint32_t base;
	size_t len;
	int sv[2], fd, efd, before, backend = -1, i;

	if (size < 3 || size > 65536)
		return 0;
	if (!ctx && vh_ctx_new(&ctx) < 0)
		abort();
	fuzz_trace_on(ctx);
	before = count_fds();
	len = data[1] | (size_t)data[2] << 8;
	if (len > size - 3)
		len = size - 3;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	send_with_fds(sv[1], data + 3, len, data[0] & 15);
	shutdown(sv[1], SHUT_WR);
	if (vh_vu_frontend_new(ctx, &fe) < 0)
		abort();
	vh_vu_frontend_set_timeout(fe, 20);
	if (vh_vu_frontend_set_fd(fe, sv[0]) < 0)
		abort();
	efd = eventfd(0, EFD_CLOEXEC);

	/* the whole repertoire; each call reads what it reads */
	vh_vu_frontend_negotiate(fe, ~0ull, ~0ull, NULL, NULL);
	vh_vu_frontend_get_queue_num(fe, &v);
	vh_vu_frontend_get_max_mem_slots(fe, &v);
	vh_vu_frontend_set_backend_req_fd(fe);
	vh_vu_frontend_get_config(fe, 0, buf, sizeof(buf));
	vh_vu_frontend_set_vring_num(fe, 0, 256);
	vh_vu_frontend_set_vring_kick(fe, 0, efd);
	vh_vu_frontend_get_vring_base(fe, 0, &base);
	if (vh_vu_frontend_get_inflight_fd(fe, 1, 256, &inf, &fd) == 0)
		closep(&fd);
	if (vh_vu_frontend_set_device_state_fd(fe, 0, 0, efd, &fd) == 0)
		closep(&fd);
	vh_vu_frontend_check_device_state(fe);
	if (vh_vu_frontend_get_shared_object(fe, uuid, &fd) == 0)
		closep(&fd);
	if (vh_vu_frontend_postcopy_advise(fe, &fd) == 0)
		closep(&fd);
	vh_vu_frontend_postcopy_end(fe);
	vh_vu_frontend_create_crypto_session(fe, buf, sizeof(buf), buf,
					     sizeof(buf));
	vh_vu_frontend_get_status(fe, &st);
	vh_vu_frontend_set_log_base(fe, efd, 4096, 0);
	vh_vu_frontend_iotlb_msg(fe, &(struct vh_vu_iotlb){ 0 });

	/* find the back-end channel among what the front-end sent */
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	while (vh_vu_msg_recv(ctx, sv[1], &m) == 0) {
		if (m.hdr.request == VH_VU_SET_BACKEND_REQ_FD && m.nfds == 1 &&
		    backend < 0) {
			backend = m.fds[0];
			m.fds[0] = -1;
		}
		vh_vu_msg_close_fds(&m);
	}
	if (backend >= 0) {
		send_with_fds(backend, data + 3 + len, size - 3 - len,
			      data[0] >> 4);
		shutdown(backend, SHUT_WR);
		for (i = 0; i < 64; i++)
			if (vh_vu_frontend_dispatch_backend(fe) < 0)
				break;
		closep(&backend);
	}

	vh_vu_frontend_unref(fe);
	close(sv[1]);
	close(efd);
	if (count_fds() != before) {
		fprintf(stderr, "fd leak: %d -> %d\n", before, count_fds());
		abort();
	}
	return 0;
}
