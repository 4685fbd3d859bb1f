/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * A hand-driven vhost-user front-end for the back-end tests: one end of a
 * socketpair, the back-end (vh_vu_backend) on the other, messages built
 * with the wire layer (vu-msg.c is compiled into the tests).
 */
#ifndef _TEST_VU_BACKEND_UTIL_H_
#define _TEST_VU_BACKEND_UTIL_H_

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libvhost.h"
#include "vu-msg.h"
#include "test-util.h"

struct fe {
	struct vh_ctx *ctx;
	struct vh_vu_backend *be;
	int sock;
	int last; /* last dispatch result other than -EAGAIN */
};

static inline void fe_connect(struct fe *f)
{
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK_EQ(vh_vu_backend_adopt_fd(f->be, sv[1]), 0);
	f->sock = sv[0];
	f->last = 0;
}

static inline void fe_init(struct fe *f, const struct vh_vu_device *dev,
			   const struct vh_vu_device_ops *ops, void *data)
{
	memset(f, 0, sizeof(*f));
	CHECK_EQ(vh_ctx_new(&f->ctx), 0);
	CHECK_EQ(vh_vu_backend_new(f->ctx, dev, ops, data, &f->be), 0);
	fe_connect(f);
}

static inline void fe_fini(struct fe *f)
{
	if (f->sock >= 0)
		close(f->sock);
	f->sock = -1;
	CHECK(vh_vu_backend_unref(f->be) == NULL);
	CHECK(vh_ctx_unref(f->ctx) == NULL);
}

/* Let the back-end handle everything pending; the last real result. */
static inline int fe_pump(struct fe *f)
{
	int r, n = 0;

	while ((r = vh_vu_backend_dispatch(f->be)) != -EAGAIN) {
		f->last = r;
		CHECK(++n < 100000);
	}
	return f->last;
}

static inline void fe_send_raw(struct fe *f, uint32_t req, uint32_t flags,
			       const void *payload, uint32_t size,
			       const int *fds, unsigned int nfds)
{
	struct vh_vu_msg m;
	unsigned int i;

	vh_vu_msg_init(&m, req, size);
	m.hdr.flags |= flags;
	if (size)
		memcpy(&m.payload, payload, size);
	for (i = 0; i < nfds; i++)
		m.fds[i] = fds[i];
	m.nfds = nfds;
	CHECK_EQ(vh_vu_msg_send(f->ctx, f->sock, &m), 0);
}

/* Receive a reply (1 s at most); -ECONNRESET once the back-end closed. */
static inline int fe_recv(struct fe *f, struct vh_vu_msg *m)
{
	struct pollfd p = { .fd = f->sock, .events = POLLIN };

	if (poll(&p, 1, 1000) != 1)
		return -ETIMEDOUT;
	return vh_vu_msg_recv(f->ctx, f->sock, m);
}

/* Is nothing waiting on our end (no unexpected reply)? */
static inline bool fe_quiet(struct fe *f)
{
	struct pollfd p = { .fd = f->sock, .events = POLLIN };

	return poll(&p, 1, 0) == 0;
}

/* Has the back-end closed the connection? */
static inline bool fe_closed(struct fe *f)
{
	struct vh_vu_msg m;
	int r;

	if (vh_vu_backend_connected(f->be))
		return false;
	r = fe_recv(f, &m);
	vh_vu_msg_close_fds(&m);
	return r == -ECONNRESET;
}

/* Send, let the back-end run, return its u64 answer (REPLY_ALWAYS / ack). */
static inline uint64_t fe_u64(struct fe *f, uint32_t req, uint32_t flags,
			      const void *payload, uint32_t size,
			      const int *fds, unsigned int nfds)
{
	struct vh_vu_msg m;

	fe_send_raw(f, req, flags, payload, size, fds, nfds);
	fe_pump(f);
	CHECK_EQ(fe_recv(f, &m), 0);
	CHECK_EQ(m.hdr.request, req);
	CHECK(m.hdr.flags & VH_VU_FLAG_REPLY);
	CHECK_EQ(m.hdr.size, 8);
	vh_vu_msg_close_fds(&m);
	return m.payload.u64;
}

/* A request with NEED_REPLY (REPLY_ACK negotiated): the ack value. */
static inline uint64_t fe_ack(struct fe *f, uint32_t req, const void *payload,
			      uint32_t size, const int *fds, unsigned int nfds)
{
	return fe_u64(f, req, VH_VU_FLAG_NEED_REPLY, payload, size, fds, nfds);
}

/* A request without reply; the back-end must keep the connection. */
static inline void fe_do(struct fe *f, uint32_t req, const void *payload,
			 uint32_t size, const int *fds, unsigned int nfds)
{
	fe_send_raw(f, req, 0, payload, size, fds, nfds);
	fe_pump(f);
	CHECK(vh_vu_backend_connected(f->be));
	CHECK(fe_quiet(f));
}

static inline void fe_state(struct fe *f, uint32_t req, uint32_t idx,
			    uint32_t num)
{
	struct vh_vu_vring_state s = { idx, num };

	fe_do(f, req, &s, sizeof(s), NULL, 0);
}

/* Negotiate features and protocol features (all the back-end offers & want). */
static inline void fe_negotiate(struct fe *f, uint64_t want_proto)
{
	uint64_t feat, proto;

	fe_do(f, VH_VU_SET_OWNER, NULL, 0, NULL, 0);
	feat = fe_u64(f, VH_VU_GET_FEATURES, 0, NULL, 0, NULL, 0);
	CHECK(feat & (1ull << VH_VU_F_PROTOCOL_FEATURES));
	/* rings and buffers by user address: no IOMMU (test-vu-iotlb has it) */
	feat &= ~(1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM);
	proto = fe_u64(f, VH_VU_GET_PROTOCOL_FEATURES, 0, NULL, 0, NULL, 0);
	proto &= want_proto;
	/* the rings these tests build by hand are split ones */
	feat &= ~(1ull << VH_VU_VIRTIO_F_RING_PACKED);
	fe_do(f, VH_VU_SET_PROTOCOL_FEATURES, &proto, 8, NULL, 0);
	fe_do(f, VH_VU_SET_FEATURES, &feat, 8, NULL, 0);
	CHECK_EQ(vh_vu_backend_get_protocol_features(f->be), proto);
}

/* Guest memory of the test front-end: one memfd region. */
struct fe_mem {
	struct vh_mem *mem;
	uint64_t gpa, size, uva;
	uint8_t *host;
	int fd;
};

static inline void fe_mem_init(struct fe *f, struct fe_mem *fm, uint64_t gpa,
			       uint64_t size)
{
	struct vh_mem_region r;
	void *host;

	CHECK_EQ(vh_mem_new(f->ctx, &fm->mem), 0);
	CHECK_EQ(vh_mem_add_memfd(fm->mem, gpa, size, &host), 0);
	CHECK_EQ(vh_mem_get_region(fm->mem, 0, &r), 0);
	fm->gpa = gpa;
	fm->size = size;
	fm->uva = r.user_addr;
	fm->host = host;
	fm->fd = r.fd;
}

static inline uint64_t fe_mem_uva(const struct fe_mem *fm, uint64_t gpa)
{
	return gpa - fm->gpa + fm->uva;
}

/* SET_MEM_TABLE with the one region. */
static inline void fe_set_mem(struct fe *f, const struct fe_mem *fm)
{
	struct vh_vu_mem_table t;

	memset(&t, 0, sizeof(t));
	t.nregions = 1;
	t.regions[0].guest_addr = fm->gpa;
	t.regions[0].size = fm->size;
	t.regions[0].user_addr = fm->uva;
	t.regions[0].mmap_offset = 0;
	fe_do(f, VH_VU_SET_MEM_TABLE, &t, 8 + 32, &fm->fd, 1);
}

static inline int test_efd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	CHECK(fd >= 0);
	return fd;
}

#endif
