// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The front-end against a scripted back-end (a thread speaking the wire
 * protocol over a real socketpair): every request of the checklist is sent
 * with the right id, size, fds and NEED_REPLY flag; replies that are wrong
 * (id, REPLY flag, size, stray fds, silence) break the connection without
 * leaking; REPLY_ACK errors come back as -errno; the back-end request
 * channel dispatches to callbacks and answers.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/udmabuf.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "libvhost-internal.h"
#include "libvhost-private.h"
#include "vu-msg.h"
#include "test-util.h"

enum mode {
	M_OK,
	M_WRONG_ID,
	M_NO_REPLY_FLAG,
	M_BAD_SIZE,
	M_SILENT,
	M_EXTRA_FD,
	M_ACK_ERR,
};

struct peer {
	int sock;
	int backend_fd; /* the channel we got with SET_BACKEND_REQ_FD */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int count;
	struct vh_vu_msg last; /* header + payload of the last request */
	unsigned int last_nfds;
	enum mode mode;
	uint64_t ack_value;
	uint64_t features, protocol;
	bool quit;
};

static struct vh_ctx *ctx;

static int new_efd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	CHECK(fd >= 0);
	return fd;
}

/* A userfaultfd (user-mode only: no privilege needed, Linux 5.11). */
static int new_uffd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | UFFD_USER_MODE_ONLY);

	CHECK(fd >= 0);
	return fd;
}

/*
 * A dma-buf (a shared object) from /dev/udmabuf over a sealed memfd, or -1
 * where the kernel has no udmabuf (the test VM's 6.12 has it; most hosts
 * do not).
 */
static int new_dmabuf(void)
{
	struct udmabuf_create c = { .flags = UDMABUF_FLAGS_CLOEXEC,
				    .size = 4096 };
	int dev, mfd, fd;

	dev = open("/dev/udmabuf", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -1;
	mfd = memfd_create("vufe-dmabuf", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(mfd >= 0);
	CHECK(ftruncate(mfd, 4096) == 0);
	CHECK(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK) == 0);
	c.memfd = (uint32_t)mfd;
	fd = ioctl(dev, UDMABUF_CREATE, &c);
	CHECK(fd >= 0);
	close(mfd);
	close(dev);
	return fd;
}

/* Shared memory of size bytes (an inflight area, a notifier page). */
static int new_memfd(size_t size)
{
	int fd = memfd_create("vufe-test", MFD_CLOEXEC);

	CHECK(fd >= 0);
	CHECK(ftruncate(fd, (off_t)size) == 0);
	return fd;
}

/* One end of a pipe (a device state channel); the other is closed. */
static int new_pipe_end(void)
{
	int p[2];

	CHECK(pipe2(p, O_CLOEXEC) == 0);
	close(p[1]);
	return p[0];
}

/* A valid reply for m (a REPLY_ALWAYS request). */
static void build_reply(struct peer *p, const struct vh_vu_msg *m,
			struct vh_vu_msg *r)
{
	uint32_t id = m->hdr.request;
	int fd;

	vh_vu_msg_init(r, id, 8);
	r->hdr.flags |= VH_VU_FLAG_REPLY;
	switch (id) {
	case VH_VU_GET_FEATURES:
		r->payload.u64 = p->features;
		break;
	case VH_VU_GET_PROTOCOL_FEATURES:
		r->payload.u64 = p->protocol;
		break;
	case VH_VU_GET_QUEUE_NUM:
		r->payload.u64 = 4;
		break;
	case VH_VU_GET_MAX_MEM_SLOTS:
		r->payload.u64 = 2;
		break;
	case VH_VU_GET_STATUS:
		r->payload.u64 = 0x0f;
		break;
	case VH_VU_GET_VRING_BASE:
		r->payload.state.index = m->payload.state.index;
		r->payload.state.num = 42;
		break;
	case VH_VU_GET_CONFIG:
		r->hdr.size = m->hdr.size;
		r->payload.config = m->payload.config;
		for (unsigned int i = 0; i < m->payload.config.size; i++)
			r->payload.config.region[i] =
				(uint8_t)(m->payload.config.offset + i);
		break;
	case VH_VU_SET_LOG_BASE:
		r->hdr.size = 0; /* QEMU-style empty acknowledgement */
		break;
	case VH_VU_CREATE_CRYPTO_SESSION:
		r->hdr.size = m->hdr.size;
		memcpy(r->payload.raw, m->payload.raw, m->hdr.size);
		r->payload.u64 = 7; /* the session id first */
		break;
	case VH_VU_POSTCOPY_ADVISE:
		r->payload.u64 = 0;
		r->fds[r->nfds++] = new_uffd();
		break;
	case VH_VU_GET_INFLIGHT_FD:
		r->hdr.size = sizeof(struct vh_vu_inflight);
		r->payload.inflight = m->payload.inflight;
		r->payload.inflight.mmap_size = 4096;
		r->fds[r->nfds++] = new_memfd(4096);
		break;
	case VH_VU_GET_SHARED_OBJECT:
		r->payload.u64 = 0;
		fd = new_dmabuf();
		if (fd >= 0)
			r->fds[r->nfds++] = fd;
		break;
	case VH_VU_SET_DEVICE_STATE_FD:
		r->payload.u64 = 0; /* our own channel back */
		r->fds[r->nfds++] = new_pipe_end();
		break;
	default:
		r->payload.u64 = 0;
		break;
	}
}

static void *peer_fn(void *arg)
{
	struct peer *p = arg;
	struct vh_vu_msg m, r;
	const struct vh_vu_msg_rule *rule;
	bool want;
	int ret;

	for (;;) {
		ret = vh_vu_msg_recv(ctx, p->sock, &m);
		if (ret < 0)
			break;
		rule = vh_vu_msg_rule(false, m.hdr.request);
		/* what we got must be valid by the table */
		if (!rule || vh_vu_msg_check(ctx, rule, &m, false) < 0) {
			fprintf(stderr, "peer: invalid request %u\n",
				m.hdr.request);
			exit(1);
		}
		if (m.hdr.request == VH_VU_SET_BACKEND_REQ_FD) {
			p->backend_fd = m.fds[0];
			m.fds[0] = -1;
		}
		pthread_mutex_lock(&p->lock);
		memcpy(&p->last, &m, sizeof(m));
		p->last_nfds = m.nfds;
		p->count++;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);

		want = rule->reply == VH_VU_REPLY_ALWAYS ||
		       (m.hdr.flags & VH_VU_FLAG_NEED_REPLY);
		if (!want || p->mode == M_SILENT) {
			vh_vu_msg_close_fds(&m);
			continue;
		}
		if (rule->reply == VH_VU_REPLY_ALWAYS) {
			build_reply(p, &m, &r);
		} else {
			vh_vu_msg_init(&r, m.hdr.request, 8);
			vh_vu_msg_set_reply_u64(&r, p->mode == M_ACK_ERR ?
							    p->ack_value :
							    0);
		}
		vh_vu_msg_close_fds(&m);
		switch (p->mode) {
		case M_WRONG_ID:
			r.hdr.request++;
			break;
		case M_NO_REPLY_FLAG:
			r.hdr.flags &= ~VH_VU_FLAG_REPLY;
			break;
		case M_BAD_SIZE:
			r.hdr.size += 4;
			break;
		case M_EXTRA_FD:
			if (r.nfds < VH_VU_MAX_FDS)
				r.fds[r.nfds++] = new_efd();
			break;
		default:
			break;
		}
		ret = vh_vu_msg_send(ctx, p->sock, &r);
		vh_vu_msg_close_fds(&r);
		if (ret < 0)
			break;
	}
	close(p->sock);
	return NULL;
}

/* Wait until the peer has seen n requests in all. */
static void peer_wait(struct peer *p, unsigned int n)
{
	pthread_mutex_lock(&p->lock);
	while (p->count < n)
		pthread_cond_wait(&p->cond, &p->lock);
	pthread_mutex_unlock(&p->lock);
}

struct setup {
	struct peer peer;
	pthread_t th;
	struct vh_vu_frontend *fe;
};

static void start(struct setup *s, uint64_t features, uint64_t protocol)
{
	int sv[2];

	memset(&s->peer, 0, sizeof(s->peer));
	pthread_mutex_init(&s->peer.lock, NULL);
	pthread_cond_init(&s->peer.cond, NULL);
	s->peer.features = features;
	s->peer.protocol = protocol;
	s->peer.backend_fd = -1;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	s->peer.sock = sv[1];
	CHECK_EQ(vh_vu_frontend_new(ctx, &s->fe), 0);
	CHECK_EQ(vh_vu_frontend_set_fd(s->fe, sv[0]), 0);
	/* calls that must succeed: the peer thread may be slow to run */
	vh_vu_frontend_set_timeout(s->fe, 3000);
	CHECK(pthread_create(&s->th, NULL, peer_fn, &s->peer) == 0);
}

static void stop(struct setup *s)
{
	vh_vu_frontend_unref(s->fe); /* closes our end: the peer sees EOF */
	CHECK(pthread_join(s->th, NULL) == 0);
	if (s->peer.backend_fd >= 0)
		close(s->peer.backend_fd);
	pthread_mutex_destroy(&s->peer.lock);
	pthread_cond_destroy(&s->peer.cond);
}

#define ALL_PROTOCOL (((1ull << VH_VU_PROTOCOL_F_MAX) - 1) & \
		      ~(1ull << VH_VU_PROTOCOL_F_XEN_MMAP))
#define F30 (1ull << VH_VU_F_PROTOCOL_FEATURES)
#define ACCESS_PLATFORM (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM)

/* The last request the peer saw: id, payload size, fds, NEED_REPLY. */
static void expect(struct setup *s, unsigned int n, uint32_t id,
		   uint32_t size, unsigned int nfds)
{
	peer_wait(&s->peer, n);
	pthread_mutex_lock(&s->peer.lock);
	CHECK_EQ(s->peer.count, n);
	CHECK_EQ(s->peer.last.hdr.request, id);
	CHECK_EQ(s->peer.last.hdr.size, size);
	CHECK_EQ(s->peer.last_nfds, nfds);
	CHECK_EQ(s->peer.last.hdr.flags & VH_VU_FLAG_VERSION_MASK,
		 VH_VU_VERSION);
	/* with REPLY_ACK negotiated, every ack-capable request asks for it */
	if (vh_vu_msg_rule(false, id)->reply == VH_VU_REPLY_ACK &&
	    (vh_vu_frontend_protocol_features(s->fe) &
	     (1ull << VH_VU_PROTOCOL_F_REPLY_ACK)))
		if (!(s->peer.last.hdr.flags & VH_VU_FLAG_NEED_REPLY)) {
			fprintf(stderr, "%s: no NEED_REPLY\n",
				vh_vu_request_name(id));
			exit(1);
		}
	pthread_mutex_unlock(&s->peer.lock);
}

static void test_every_request(void)
{
	struct setup s;
	struct vh_vu_frontend *fe;
	struct vh_mem *mem;
	struct vh_drvq *vq;
	struct vh_vu_vring_addr a = { .index = 1, .desc = 0x1000 };
	struct vh_vu_iotlb io = { .iova = 0x1000, .size = 0x1000,
				  .perm = VH_ACCESS_RW,
				  .type = VH_IOTLB_UPDATE };
	struct vh_vu_inflight inf;
	uint8_t cfg[16], uuid[16] = { 1, 2, 3 }, status, crypto[64];
	const uint8_t mac[6] = { 2, 0, 0, 0, 0, 1 };
	uint64_t f, pf, v;
	uint32_t base;
	unsigned int n = 0, i;
	int fd, efd, before = test_count_fds();

	start(&s, ~0ull, ALL_PROTOCOL);
	fe = s.fe;
	efd = new_efd();

	CHECK_EQ(vh_vu_frontend_negotiate(fe, ~0ull, ~0ull, &f, &pf), 0);
	n += 5; /* GET_FEATURES, GET/SET_PROTOCOL, SET_OWNER, SET_FEATURES */
	expect(&s, n, VH_VU_SET_FEATURES, 8, 0);
	CHECK_EQ(s.peer.last.payload.u64, ~0ull);
	CHECK_EQ(pf, ALL_PROTOCOL);
	CHECK_EQ(vh_vu_frontend_protocol_features(fe), ALL_PROTOCOL);

	CHECK_EQ(vh_vu_frontend_get_queue_num(fe, &v), 0);
	expect(&s, ++n, VH_VU_GET_QUEUE_NUM, 0, 0);
	CHECK_EQ(v, 4);
	CHECK_EQ(vh_vu_frontend_get_max_mem_slots(fe, &v), 0);
	expect(&s, ++n, VH_VU_GET_MAX_MEM_SLOTS, 0, 0);
	CHECK_EQ(v, 2);

	/* memory: three regions, but the back-end has two slots */
	CHECK_EQ(vh_mem_new(ctx, &mem), 0);
	CHECK_EQ(vh_mem_add_memfd(mem, 0, 1 << 20, NULL), 0);
	CHECK_EQ(vh_mem_add_memfd(mem, 1 << 30, 1 << 20, NULL), 0);
	CHECK_EQ(vh_vu_frontend_share_mem(fe, mem), 0);
	expect(&s, n += 2, VH_VU_ADD_MEM_REG, 40, 1);
	CHECK_EQ(s.peer.last.payload.mem_reg.region.guest_addr, 1 << 30);
	CHECK_EQ(vh_mem_add_memfd(mem, 2ull << 30, 1 << 20, NULL), 0);
	CHECK_EQ(vh_vu_frontend_share_mem(fe, mem), -ENOSPC);
	CHECK_EQ(vh_vu_frontend_set_mem_table(fe, mem), 0);
	expect(&s, ++n, VH_VU_SET_MEM_TABLE, 8 + 3 * 32, 3);
	CHECK_EQ(s.peer.last.payload.mem.nregions, 3);
	CHECK_EQ(vh_vu_frontend_rem_mem_reg(fe, mem, 1), 0);
	expect(&s, ++n, VH_VU_REM_MEM_REG, 40, 0);
	CHECK_EQ(s.peer.last.payload.mem_reg.region.guest_addr, 1 << 30);
	CHECK_EQ(s.peer.last.payload.mem_reg.region.size, 1 << 20);

	/* vrings */
	CHECK_EQ(vh_vu_frontend_set_vring_num(fe, 1, 256), 0);
	expect(&s, ++n, VH_VU_SET_VRING_NUM, 8, 0);
	CHECK_EQ(s.peer.last.payload.state.num, 256);
	CHECK_EQ(vh_vu_frontend_set_vring_addr(fe, &a), 0);
	expect(&s, ++n, VH_VU_SET_VRING_ADDR, 40, 0);
	CHECK_EQ(s.peer.last.payload.addr.desc, 0x1000);
	CHECK_EQ(vh_vu_frontend_set_vring_base(fe, 1, 5), 0);
	expect(&s, ++n, VH_VU_SET_VRING_BASE, 8, 0);
	CHECK_EQ(vh_vu_frontend_set_vring_kick(fe, 1, efd), 0);
	expect(&s, ++n, VH_VU_SET_VRING_KICK, 8, 1);
	CHECK_EQ(s.peer.last.payload.u64, 1);
	CHECK_EQ(vh_vu_frontend_set_vring_call(fe, 2, -1), 0);
	expect(&s, ++n, VH_VU_SET_VRING_CALL, 8, 0);
	CHECK_EQ(s.peer.last.payload.u64, 2 | VH_VU_VRING_NOFD);
	CHECK_EQ(vh_vu_frontend_set_vring_err(fe, 3, efd), 0);
	expect(&s, ++n, VH_VU_SET_VRING_ERR, 8, 1);
	CHECK_EQ(vh_vu_frontend_set_vring_kick(fe, 256, efd), -EINVAL);
	CHECK_EQ(vh_vu_frontend_set_vring_enable(fe, 1, true), 0);
	expect(&s, ++n, VH_VU_SET_VRING_ENABLE, 8, 0);
	CHECK_EQ(s.peer.last.payload.state.num, 1);
	CHECK_EQ(vh_vu_frontend_set_vring_endian(fe, 1, true), 0);
	expect(&s, ++n, VH_VU_SET_VRING_ENDIAN, 8, 0);
	CHECK_EQ(vh_vu_frontend_vring_kick(fe, 1), 0);
	expect(&s, ++n, VH_VU_VRING_KICK, 8, 0);
	CHECK_EQ(vh_vu_frontend_get_vring_base(fe, 1, &base), 0);
	expect(&s, ++n, VH_VU_GET_VRING_BASE, 8, 0);
	CHECK_EQ(base, 42);
	CHECK_EQ(vh_drvq_new(ctx, mem, 0, 64, 0, &vq), 0);
	CHECK_EQ(vh_vu_frontend_setup_vq(fe, 0, vq, efd, efd), 0);
	n += 6; /* NUM, BASE, ADDR, CALL, KICK, ENABLE */
	expect(&s, n, VH_VU_SET_VRING_ENABLE, 8, 0);
	vh_drvq_unref(vq);

	/* device requests */
	CHECK_EQ(vh_vu_frontend_get_config(fe, 4, cfg, 16), 0);
	expect(&s, ++n, VH_VU_GET_CONFIG, 12 + 16, 0);
	for (i = 0; i < 16; i++)
		CHECK_EQ(cfg[i], 4 + i);
	CHECK_EQ(vh_vu_frontend_get_config(fe, 250, cfg, 16), -EINVAL);
	CHECK_EQ(vh_vu_frontend_set_config(fe, 0, cfg, 8, 0), 0);
	expect(&s, ++n, VH_VU_SET_CONFIG, 12 + 8, 0);
	CHECK_EQ(vh_vu_frontend_set_status(fe, 7), 0);
	expect(&s, ++n, VH_VU_SET_STATUS, 8, 0);
	CHECK_EQ(vh_vu_frontend_get_status(fe, &status), 0);
	expect(&s, ++n, VH_VU_GET_STATUS, 0, 0);
	CHECK_EQ(status, 0x0f);
	CHECK_EQ(vh_vu_frontend_net_set_mtu(fe, 9000), 0);
	expect(&s, ++n, VH_VU_NET_SET_MTU, 8, 0);
	CHECK_EQ(s.peer.last.payload.u64, 9000);
	CHECK_EQ(vh_vu_frontend_send_rarp(fe, mac), 0);
	expect(&s, ++n, VH_VU_SEND_RARP, 8, 0);
	CHECK(memcmp(s.peer.last.payload.raw, mac, 6) == 0);
	CHECK_EQ(vh_vu_frontend_iotlb_msg(fe, &io), 0);
	expect(&s, ++n, VH_VU_IOTLB_MSG, 32, 0);
	CHECK(s.peer.last.hdr.flags & VH_VU_FLAG_NEED_REPLY);
	CHECK_EQ(vh_vu_frontend_enable_log(fe, mem), 0);
	expect(&s, ++n, VH_VU_SET_LOG_BASE, 16, 1);
	CHECK_EQ(s.peer.last.payload.log.size,
		 vh_mem_log_size_for((2ull << 30) + (1 << 20)));
	CHECK_EQ(vh_vu_frontend_set_log_fd(fe, efd), 0);
	expect(&s, ++n, VH_VU_SET_LOG_FD, 0, 1);
	CHECK_EQ(vh_vu_frontend_get_inflight_fd(fe, 2, 128, &inf, &fd), 0);
	CHECK_CLOEXEC(fd); /* received: MSG_CMSG_CLOEXEC */
	expect(&s, ++n, VH_VU_GET_INFLIGHT_FD, 24, 0);
	CHECK_EQ(inf.mmap_size, 4096);
	CHECK_EQ(inf.num_queues, 2);
	CHECK(fd >= 0);
	CHECK_EQ(vh_vu_frontend_set_inflight_fd(fe, &inf, fd), 0);
	expect(&s, ++n, VH_VU_SET_INFLIGHT_FD, 24, 1);
	close(fd);
	CHECK_EQ(vh_vu_frontend_set_device_state_fd(fe, VH_VU_TRANSFER_SAVE,
						    VH_VU_PHASE_STOPPED, efd,
						    &fd),
		 0);
	expect(&s, ++n, VH_VU_SET_DEVICE_STATE_FD, 8, 1);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(vh_vu_frontend_check_device_state(fe), 0);
	expect(&s, ++n, VH_VU_CHECK_DEVICE_STATE, 0, 0);
	/* a dma-buf where the peer could make one, else no object */
	if (access("/dev/udmabuf", R_OK | W_OK) == 0) {
		CHECK_EQ(vh_vu_frontend_get_shared_object(fe, uuid, &fd), 0);
		CHECK(fd >= 0);
		close(fd);
	} else {
		CHECK_EQ(vh_vu_frontend_get_shared_object(fe, uuid, &fd),
			 -ENOENT);
		CHECK_EQ(fd, -1);
	}
	expect(&s, ++n, VH_VU_GET_SHARED_OBJECT, 16, 0);
	CHECK(memcmp(s.peer.last.payload.shared.uuid, uuid, 16) == 0);
	CHECK_EQ(vh_vu_frontend_postcopy_advise(fe, &fd), 0);
	expect(&s, ++n, VH_VU_POSTCOPY_ADVISE, 0, 0);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(vh_vu_frontend_postcopy_listen(fe), 0);
	expect(&s, ++n, VH_VU_POSTCOPY_LISTEN, 0, 0);
	CHECK_EQ(vh_vu_frontend_postcopy_end(fe), 0);
	expect(&s, ++n, VH_VU_POSTCOPY_END, 0, 0);
	CHECK_EQ(vh_vu_frontend_gpu_set_socket(fe, efd), 0);
	expect(&s, ++n, VH_VU_GPU_SET_SOCKET, 0, 1);
	memset(crypto, 0x11, sizeof(crypto));
	CHECK_EQ(vh_vu_frontend_create_crypto_session(fe, crypto, 48, crypto,
						      sizeof(crypto)),
		 48);
	expect(&s, ++n, VH_VU_CREATE_CRYPTO_SESSION, 48, 0);
	memcpy(&v, crypto, 8);
	CHECK_EQ(v, 7);
	CHECK_EQ(vh_vu_frontend_close_crypto_session(fe, 7), 0);
	expect(&s, ++n, VH_VU_CLOSE_CRYPTO_SESSION, 8, 0);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(fe), 0);
	expect(&s, ++n, VH_VU_SET_BACKEND_REQ_FD, 0, 1);
	CHECK_CLOEXEC(vh_vu_frontend_get_backend_fd(fe));
	CHECK_CLOEXEC(vh_vu_frontend_get_fd(fe));
	CHECK_EQ(vh_vu_frontend_reset_device(fe), 0);
	expect(&s, ++n, VH_VU_RESET_DEVICE, 0, 0);
	CHECK_EQ(vh_vu_frontend_reset_owner(fe), 0);
	expect(&s, ++n, VH_VU_RESET_OWNER, 0, 0);

	/* REPLY_ACK errors: a small value is an errno, anything else EIO */
	s.peer.mode = M_ACK_ERR;
	s.peer.ack_value = EINVAL;
	CHECK_EQ(vh_vu_frontend_set_vring_num(fe, 0, 3), -EINVAL);
	s.peer.ack_value = 1ull << 40;
	CHECK_EQ(vh_vu_frontend_set_vring_num(fe, 0, 3), -EIO);
	s.peer.mode = M_OK;
	n += 2;
	/* without REPLY_ACK asked, no reply is awaited */
	vh_vu_frontend_set_reply_ack(fe, false);
	CHECK_EQ(vh_vu_frontend_set_vring_num(fe, 0, 8), 0);
	peer_wait(&s.peer, ++n);
	CHECK_EQ(s.peer.last.hdr.request, VH_VU_SET_VRING_NUM);
	CHECK(!(s.peer.last.hdr.flags & VH_VU_FLAG_NEED_REPLY));
	vh_vu_frontend_set_reply_ack(fe, true);

	close(efd);
	stop(&s);
	vh_mem_unref(mem);
	CHECK_EQ(test_count_fds(), before);
}

/* A hostile reply breaks the connection, leaking nothing. */
static void test_bad_reply(enum mode mode, int want)
{
	struct setup s;
	uint64_t v;
	int before = test_count_fds();

	start(&s, F30, ALL_PROTOCOL);
	s.peer.mode = mode;
	vh_vu_frontend_set_timeout(s.fe, 300);
	CHECK_EQ(vh_vu_frontend_get_features(s.fe, &v), want);
	/* broken from here on: nothing more is sent */
	CHECK_EQ(vh_vu_frontend_get_features(s.fe, &v), -EPIPE);
	CHECK_EQ(s.peer.count, 1);
	stop(&s);
	CHECK_EQ(test_count_fds(), before);
}

static void test_gates(void)
{
	struct setup s;
	uint64_t v;
	uint8_t st;

	/* no bit 30: GET_PROTOCOL_FEATURES is not even asked */
	start(&s, 1ull << VH_VU_VIRTIO_F_VERSION_1, ALL_PROTOCOL);
	CHECK_EQ(vh_vu_frontend_negotiate(s.fe, ~0ull, ~0ull, &v, NULL), 0);
	CHECK_EQ(v, 1ull << VH_VU_VIRTIO_F_VERSION_1);
	peer_wait(&s.peer, 3);
	CHECK_EQ(s.peer.count, 3); /* GET_FEATURES, SET_OWNER, SET_FEATURES */
	CHECK_EQ(vh_vu_frontend_get_protocol_features(s.fe, &v), -EOPNOTSUPP);
	CHECK_EQ(vh_vu_frontend_set_vring_enable(s.fe, 0, true), -EOPNOTSUPP);
	CHECK_EQ(vh_vu_frontend_get_status(s.fe, &st), -EOPNOTSUPP);
	CHECK_EQ(s.peer.count, 3);
	stop(&s);

	/* INBAND_NOTIFICATIONS is dropped without BACKEND_REQ */
	start(&s, F30, (1ull << VH_VU_PROTOCOL_F_INBAND_NOTIFICATIONS) |
			       (1ull << VH_VU_PROTOCOL_F_REPLY_ACK));
	CHECK_EQ(vh_vu_frontend_negotiate(s.fe, ~0ull, ~0ull, NULL, &v), 0);
	CHECK_EQ(v, 1ull << VH_VU_PROTOCOL_F_REPLY_ACK);
	CHECK_EQ(vh_vu_frontend_vring_kick(s.fe, 0), -EOPNOTSUPP);
	/* IOTLB needs ACCESS_PLATFORM */
	CHECK_EQ(vh_vu_frontend_iotlb_msg(s.fe, &(struct vh_vu_iotlb){ 0 }),
		 -EOPNOTSUPP);
	stop(&s);
}

/* ---- back-end request channel ---- */
struct cb_state {
	int config_changes;
	unsigned int last_idx;
	int notifier_fd;
	int lookup_fd;
};

static int cb_config(struct vh_vu_frontend *fe, void *data)
{
	((struct cb_state *)data)->config_changes++;
	return 0;
}

static int cb_call(struct vh_vu_frontend *fe, void *data, unsigned int idx)
{
	((struct cb_state *)data)->last_idx = idx;
	return -ENOSPC;
}

static int cb_notifier(struct vh_vu_frontend *fe, void *data,
		       unsigned int idx, int fd, uint64_t size,
		       uint64_t offset)
{
	struct cb_state *c = data;

	c->last_idx = idx;
	if (c->notifier_fd >= 0)
		close(c->notifier_fd);
	c->notifier_fd = fd;
	return 0;
}

static int cb_lookup(struct vh_vu_frontend *fe, void *data,
		     const uint8_t uuid[16], int *fd)
{
	struct cb_state *c = data;

	if (uuid[0] != 0xaa)
		return -ENOENT;
	*fd = dup(c->lookup_fd);
	return *fd < 0 ? -errno : 0;
}

static const struct vh_vu_frontend_ops ops = {
	.size = sizeof(ops),
	.config_change = cb_config,
	.vring_call = cb_call,
	.host_notifier = cb_notifier,
	.shared_object_lookup = cb_lookup,
};

/* The peer thread is idle between requests; the test drives the channel. */
static void backend_send(struct setup *s, uint32_t id, uint32_t flags,
			 const void *payload, uint32_t size, int fd)
{
	struct vh_vu_msg m;

	vh_vu_msg_init(&m, id, size);
	m.hdr.flags |= flags;
	if (size)
		memcpy(m.payload.raw, payload, size);
	if (fd >= 0)
		m.fds[m.nfds++] = fd;
	CHECK_EQ(vh_vu_msg_send(ctx, s->peer.backend_fd, &m), 0);
}

static void backend_reply(struct setup *s, uint32_t id, uint64_t want,
			  unsigned int nfds, int *fd)
{
	struct vh_vu_msg m;

	CHECK_EQ(vh_vu_msg_recv(ctx, s->peer.backend_fd, &m), 0);
	CHECK_EQ(m.hdr.request, id);
	CHECK(m.hdr.flags & VH_VU_FLAG_REPLY);
	CHECK_EQ(m.hdr.size, 8);
	CHECK_EQ(m.payload.u64, want);
	CHECK_EQ(m.nfds, nfds);
	if (fd && nfds) {
		*fd = m.fds[0];
		m.nfds = 0;
	}
	vh_vu_msg_close_fds(&m);
}

static void test_backend_channel(void)
{
	struct cb_state cb = { .notifier_fd = -1 };
	struct vh_vu_vring_area area = { .u64 = 3, .size = 4096 };
	struct vh_vu_vring_state st = { .index = 5 };
	uint8_t uuid[16] = { 0xaa };
	struct setup s;
	int fd, before = test_count_fds();

	cb.lookup_fd = new_efd();
	start(&s, F30, ALL_PROTOCOL);
	CHECK_EQ(vh_vu_frontend_negotiate(s.fe, ~0ull, ~0ull, NULL, NULL), 0);
	vh_vu_frontend_set_ops(s.fe, &ops, &cb);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(s.fe), -ENOTCONN);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(s.fe), 0);
	peer_wait(&s.peer, 6);
	CHECK(s.peer.backend_fd >= 0);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(s.fe), -EAGAIN);
	/* rings 0..5 set up: a back-end request may name them */
	CHECK_EQ(vh_vu_frontend_set_vring_num(s.fe, 5, 64), 0);
	cb.notifier_fd = new_memfd(4096);

	/* CONFIG_CHANGE with NEED_REPLY: callback, then ack 0 */
	backend_send(&s, VH_VU_BACKEND_CONFIG_CHANGE_MSG,
		     VH_VU_FLAG_NEED_REPLY, NULL, 0, -1);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(s.fe), 0);
	CHECK_EQ(cb.config_changes, 1);
	backend_reply(&s, VH_VU_BACKEND_CONFIG_CHANGE_MSG, 0, 0, NULL);
	/* without NEED_REPLY: no answer */
	backend_send(&s, VH_VU_BACKEND_CONFIG_CHANGE_MSG, 0, NULL, 0, -1);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(s.fe), 0);
	CHECK_EQ(cb.config_changes, 2);

	/* a callback's error goes back as a non-zero ack */
	backend_send(&s, VH_VU_BACKEND_VRING_CALL, VH_VU_FLAG_NEED_REPLY, &st,
		     8, -1);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(s.fe), 0);
	CHECK_EQ(cb.last_idx, 5);
	backend_reply(&s, VH_VU_BACKEND_VRING_CALL, ENOSPC, 0, NULL);
	/* a ring that was never set up: EINVAL, no callback */
	cb.last_idx = 0;
	st.index = 6;
	backend_send(&s, VH_VU_BACKEND_VRING_CALL, VH_VU_FLAG_NEED_REPLY, &st,
		     8, -1);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(s.fe), 0);
	CHECK_EQ(cb.last_idx, 0);
	backend_reply(&s, VH_VU_BACKEND_VRING_CALL, EINVAL, 0, NULL);
	st.index = 5;
	/* no callback: EOPNOTSUPP */
	backend_send(&s, VH_VU_BACKEND_VRING_ERR, VH_VU_FLAG_NEED_REPLY, &st,
		     8, -1);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(s.fe), 0);
	backend_reply(&s, VH_VU_BACKEND_VRING_ERR, EOPNOTSUPP, 0, NULL);

	/* host notifier with an fd: the callback gets (and keeps) it */
	fd = cb.notifier_fd;
	cb.notifier_fd = -1;
	backend_send(&s, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG,
		     VH_VU_FLAG_NEED_REPLY, &area, sizeof(area), fd);
	close(fd);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(s.fe), 0);
	backend_reply(&s, VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG, 0, 0, NULL);
	CHECK_EQ(cb.last_idx, 3);
	CHECK(cb.notifier_fd >= 0);
	close(cb.notifier_fd);

	/* lookup: the fd comes back with 0; unknown uuid: error, no fd */
	backend_send(&s, VH_VU_BACKEND_SHARED_OBJECT_LOOKUP, 0, uuid, 16, -1);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(s.fe), 0);
	backend_reply(&s, VH_VU_BACKEND_SHARED_OBJECT_LOOKUP, 0, 1, &fd);
	close(fd);
	uuid[0] = 0;
	backend_send(&s, VH_VU_BACKEND_SHARED_OBJECT_LOOKUP, 0, uuid, 16, -1);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(s.fe), 0);
	backend_reply(&s, VH_VU_BACKEND_SHARED_OBJECT_LOOKUP, ENOENT, 0, NULL);

	/* a back-end request while we wait for a reply is served meanwhile */
	backend_send(&s, VH_VU_BACKEND_CONFIG_CHANGE_MSG, 0, NULL, 0, -1);
	CHECK_EQ(vh_vu_frontend_get_status(s.fe, &(uint8_t){ 0 }), 0);
	CHECK_EQ(cb.config_changes, 3);

	/* malformed (a size that disagrees): the channel is closed */
	backend_send(&s, VH_VU_BACKEND_VRING_CALL, 0, &st, 4, -1);
	CHECK_EQ(vh_vu_frontend_dispatch_backend(s.fe), -EPROTO);
	CHECK_EQ(vh_vu_frontend_get_backend_fd(s.fe), -1);

	close(cb.lookup_fd);
	stop(&s);
	CHECK_EQ(test_count_fds(), before);
}

/* send_raw: anything goes out, the next message comes back unchecked */
static void test_raw(void)
{
	struct setup s;
	struct vh_vu_msg m, r;

	start(&s, F30, 0);
	vh_vu_msg_init(&m, VH_VU_GET_FEATURES, 0);
	CHECK_EQ(vh_vu_frontend_send_raw(s.fe, &m, &r), 0);
	CHECK_EQ(r.hdr.request, VH_VU_GET_FEATURES);
	CHECK_EQ(r.payload.u64, F30);
	/* a peer that stays silent: the wait times out */
	s.peer.mode = M_SILENT;
	vh_vu_frontend_set_timeout(s.fe, 300);
	vh_vu_msg_init(&m, VH_VU_GET_STATUS, 0);
	CHECK_EQ(vh_vu_frontend_send_raw(s.fe, &m, &r), -ETIMEDOUT);
	stop(&s);
}

/* ---- front-end as the listening side ---- */
static char accept_path[64];

static void *connect_then_serve(void *arg)
{
	struct peer *p = arg;

	p->sock = vh_vu_socket_connect(ctx, accept_path, 3000);
	if (p->sock < 0) {
		fprintf(stderr, "connect: %s\n", strerror(-p->sock));
		exit(1);
	}
	return peer_fn(p);
}

/* Another program's socket renamed over accept_path after 100 ms. */
static void *replace_path(void *arg)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	(void)arg;
	CHECK(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s.other", accept_path);
	usleep(100 * 1000);
	CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(rename(a.sun_path, accept_path) == 0);
	close(fd); /* a stale socket file stays */
	return NULL;
}

static void test_accept(void)
{
	char dir[] = "/tmp/vufe-acc.XXXXXX";
	struct setup s;
	struct stat st;
	uint64_t v;
	int p[2], before = test_count_fds();

	CHECK(mkdtemp(dir));
	snprintf(accept_path, sizeof(accept_path), "%s/fe.sock", dir);
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.peer.lock, NULL);
	pthread_cond_init(&s.peer.cond, NULL);
	s.peer.features = F30 | 1;
	s.peer.backend_fd = -1;
	CHECK_EQ(vh_vu_frontend_new(ctx, &s.fe), 0);
	vh_vu_frontend_set_timeout(s.fe, 1000);

	/* nobody comes: ETIMEDOUT, and the socket file is gone */
	CHECK_EQ(vh_vu_frontend_accept(s.fe, accept_path, 100), -ETIMEDOUT);
	CHECK(stat(accept_path, &st) < 0 && errno == ENOENT);
	CHECK_EQ(vh_vu_frontend_get_features(s.fe, &v), -ENOTCONN);

	/*
	 * another program renames its socket over the path while we wait:
	 * ETIMEDOUT, and its socket stays (only our own file is removed)
	 */
	CHECK(pthread_create(&s.th, NULL, replace_path, NULL) == 0);
	CHECK_EQ(vh_vu_frontend_accept(s.fe, accept_path, 300), -ETIMEDOUT);
	CHECK(pthread_join(s.th, NULL) == 0);
	CHECK(stat(accept_path, &st) == 0 && S_ISSOCK(st.st_mode));
	CHECK(unlink(accept_path) == 0);

	/* a back-end that connects to us */
	CHECK(pthread_create(&s.th, NULL, connect_then_serve, &s.peer) == 0);
	CHECK_EQ(vh_vu_frontend_accept(s.fe, accept_path, 3000), 0);
	CHECK_EQ(vh_vu_frontend_get_features(s.fe, &v), 0);
	CHECK_EQ(v, F30 | 1);
	CHECK(stat(accept_path, &st) < 0 && errno == ENOENT);

	/* set_fd refuses what is not a connected stream socket */
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK_EQ(vh_vu_frontend_set_fd(s.fe, p[0]), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	/* and the connection is untouched */
	CHECK_EQ(vh_vu_frontend_get_features(s.fe, &v), 0);
	stop(&s);
	CHECK(rmdir(dir) == 0);
	CHECK_EQ(test_count_fds(), before);
}

int main(void)
{
	CHECK_EQ(vh_ctx_new(&ctx), 0);
	test_every_request();
	test_bad_reply(M_WRONG_ID, -EPROTO);
	test_bad_reply(M_NO_REPLY_FLAG, -EPROTO);
	test_bad_reply(M_BAD_SIZE, -EPROTO);
	test_bad_reply(M_EXTRA_FD, -EPROTO);
	test_bad_reply(M_SILENT, -ETIMEDOUT);
	test_gates();
	test_backend_channel();
	test_raw();
	test_accept();
	vh_ctx_unref(ctx);
	return 0;
}
