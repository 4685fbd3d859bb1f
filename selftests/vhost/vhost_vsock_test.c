// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost_vsock_test - vhost-vsock with a userspace guest.
 *
 * The test process is both sides: host AF_VSOCK sockets (in a thread) talk
 * to a guest made of a vhost-vsock device, libvhost's userspace virtio
 * driver (vh_drvq) for the rx and tx queues, and the library's virtio-vsock
 * packet and connection helpers.  Data is a position-dependent byte
 * pattern, checked byte by byte on both sides, with an FNV-1a checksum
 * compared at the end.  Both sides advertise small receive buffers so that
 * every transfer needs several credit windows (virtio 1.3, 5.10.6.3).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4(), as in a kernel tree build */
#endif
#include <fcntl.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/vhost.h>
#include <linux/virtio_config.h>
#include <linux/virtio_ring.h>
#include <linux/virtio_vsock.h>
#include <linux/vm_sockets.h>

#include "kselftest_harness.h"
#include "vh_selftest.h"

#define BIT(n) (1ULL << (n))
#define RING 128
#define RXBUF 4096		/* header + payload, as Linux guests post */
#define TXBUF (VH_VSOCK_HDR_LEN + 65536)
#define GUEST_BUF_ALLOC 32768	/* our receive window */
#define HOST_BUF_SIZE 32768	/* the host socket's (SO_VM_SOCKETS_BUFFER_SIZE) */
#define CHUNK 16384		/* largest RW payload the guest sends */
#define GUEST_PORT 1234
#define TIMEOUT_MS 20000

/* ------------------------------------------------------------------ */
/* data pattern                                                        */
/* ------------------------------------------------------------------ */

static uint8_t pat(uint64_t off, uint32_t seed)
{
	uint32_t x = (uint32_t)(off / 4) * 2654435761u ^ seed;

	x ^= x >> 15;
	x *= 2246822519u;
	x ^= x >> 13;
	return (uint8_t)(x >> (8 * (off % 4)));
}

static void pat_fill(uint8_t *p, size_t len, uint64_t off, uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = pat(off + i, seed);
}

/* 0 if p matches the pattern at off, else 1 + index of the first mismatch */
static size_t pat_check(const uint8_t *p, size_t len, uint64_t off,
			uint32_t seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != pat(off + i, seed))
			return i + 1;
	return 0;
}

static uint32_t fnv1a(uint32_t h, const uint8_t *p, size_t len)
{
	while (len--) {
		h ^= *p++;
		h *= 16777619u;
	}
	return h;
}

#define FNV_INIT 2166136261u

static uint32_t pat_fnv(uint64_t len, uint32_t seed)
{
	uint8_t buf[4096];
	uint32_t h = FNV_INIT;
	uint64_t off = 0;

	while (off < len) {
		size_t n = len - off < sizeof(buf) ? len - off : sizeof(buf);

		pat_fill(buf, n, off, seed);
		h = fnv1a(h, buf, n);
		off += n;
	}
	return h;
}

/* ------------------------------------------------------------------ */
/* the guest                                                           */
/* ------------------------------------------------------------------ */

struct vguest {
	struct vh_ctx *ctx;
	struct vh_kdev *dev;
	struct st_guest g;
	bool have_guest;
	struct vh_drvq *vq[2]; /* VH_VSOCK_VQ_RX, VH_VSOCK_VQ_TX */
	int kick[2], call[2];
	uint64_t cid;
	uint64_t features;
	uint64_t rxbuf_gpa, txbuf_gpa;
	unsigned int tx_free[RING], ntx_free;
	uint8_t payload[65536];
};

static void rx_post(struct vguest *v, unsigned int i)
{
	struct vh_sg sg = { .addr = v->rxbuf_gpa + (uint64_t)i * RXBUF,
			    .len = RXBUF };

	if (vh_drvq_add(v->vq[VH_VSOCK_VQ_RX], &sg, 0, 1,
		      (void *)(uintptr_t)(i + 1)))
		fprintf(stderr, "# rx_post %u failed\n", i);
}

/* 0, 1 with *why set (skip), or -errno */
static int guest_setup(struct vguest *v, uint64_t want, const char **why)
{
	uint64_t offered = 0, ring;
	unsigned int i;
	int err;

	err = vh_ctx_new(&v->ctx);
	if (err)
		return err;
	if (access("/dev/vhost-vsock", F_OK)) {
		*why = "/dev/vhost-vsock missing (vhost_vsock not loaded)";
		return 1;
	}
	err = vh_kdev_open_type(v->ctx, VH_KDEV_VSOCK, &v->dev);
	if (err == -EACCES || err == -EPERM) {
		*why = "no permission on /dev/vhost-vsock (run as root)";
		return 1;
	}
	if (err)
		return err;
	err = vh_kdev_set_owner(v->dev);
	if (!err)
		err = vh_kdev_get_features(v->dev, &offered);
	if (err)
		return err;
	/*
	 * VERSION_1, EVENT_IDX (VHOST_FEATURES) and SEQPACKET (since 5.14)
	 * are offered by every kernel we run on: one missing is a failure.
	 */
	if ((offered & want) != want) {
		*why = "the kernel does not offer the features asked for";
		fprintf(stderr, "# offered 0x%llx, missing 0x%llx\n",
			(unsigned long long)offered,
			(unsigned long long)(want & ~offered));
		return -EOPNOTSUPP;
	}
	v->features = want;
	err = vh_kdev_set_features(v->dev, want);
	if (err)
		return err;
	err = st_guest_init(&v->g, v->ctx,
			    (uint64_t)RING * (RXBUF + TXBUF) + (1 << 20));
	if (err)
		return err;
	v->have_guest = true;
	v->rxbuf_gpa = st_guest_alloc(&v->g, (uint64_t)RING * RXBUF, 4096);
	v->txbuf_gpa = st_guest_alloc(&v->g, (uint64_t)RING * TXBUF, 4096);
	if (!v->rxbuf_gpa || !v->txbuf_gpa)
		return -ENOMEM;
	err = vh_kdev_set_mem_table(v->dev, v->g.mem);
	if (err)
		return err;
	for (i = 0; i < 2; i++) {
		ring = st_guest_alloc(&v->g, vh_drvq_ring_bytes(RING), 4096);
		if (!ring)
			return -ENOMEM;
		err = vh_drvq_new(v->ctx, v->g.mem, i, RING, ring, &v->vq[i]);
		if (!err)
			err = vh_drvq_set_features(v->vq[i], want);
		if (err)
			return err;
		v->kick[i] = st_eventfd();
		v->call[i] = st_eventfd();
		if (v->kick[i] < 0 || v->call[i] < 0)
			return -errno;
		err = vh_drvq_set_kick_fd(v->vq[i], v->kick[i]);
		if (!err)
			err = vh_drvq_set_call_fd(v->vq[i], v->call[i]);
		if (!err)
			err = vh_kdev_setup_vring(v->dev, i, v->vq[i], v->kick[i],
						  v->call[i]);
		if (err)
			return err;
	}
	for (i = 0; i < RING; i++) {
		rx_post(v, i);
		v->tx_free[v->ntx_free++] = i;
	}
	vh_drvq_kick(v->vq[VH_VSOCK_VQ_RX]);
	/* a CID of our own: the pid keeps concurrent runs apart */
	v->cid = 1000 + (uint64_t)getpid() % 1000000;
	err = vh_vsock_set_guest_cid(v->dev, v->cid);
	if (!err)
		err = vh_vsock_set_running(v->dev, true);
	return err;
}

static void guest_teardown(struct vguest *v)
{
	unsigned int i;

	if (v->dev)
		vh_vsock_set_running(v->dev, false);
	vh_kdev_unref(v->dev);
	for (i = 0; i < 2; i++) {
		vh_drvq_unref(v->vq[i]);
		if (v->kick[i] >= 0)
			close(v->kick[i]);
		if (v->call[i] >= 0)
			close(v->call[i]);
	}
	if (v->have_guest)
		st_guest_fini(&v->g);
	vh_ctx_unref(v->ctx);
}

static int wait_used(struct vguest *v, int q, int ms)
{
	int r;

	if (vh_drvq_enable_cb(v->vq[q]) == 1)
		return 1;
	r = st_wait_fd(v->call[q], ms);
	if (r == 1)
		st_eventfd_drain(v->call[q]);
	return r;
}

static void reap_tx(struct vguest *v)
{
	void *tok;
	uint32_t len;

	while (vh_drvq_get_used(v->vq[VH_VSOCK_VQ_TX], &tok, &len) == 1)
		v->tx_free[v->ntx_free++] = (unsigned int)(uintptr_t)tok - 1;
}

/* Put one packet (header + payload) on the TX queue. */
static int guest_tx(struct vguest *v, const struct vh_vsock_hdr *h,
		    const void *payload)
{
	struct vh_sg sg;
	unsigned int slot;
	uint8_t *p;
	int tries = 0;

	if (h->len > TXBUF - VH_VSOCK_HDR_LEN)
		return -EMSGSIZE;
	reap_tx(v);
	while (!v->ntx_free) {
		if (wait_used(v, VH_VSOCK_VQ_TX, 500) <= 0 && ++tries > 20)
			return -ETIMEDOUT;
		reap_tx(v);
	}
	slot = v->tx_free[--v->ntx_free];
	sg.addr = v->txbuf_gpa + (uint64_t)slot * TXBUF;
	sg.len = VH_VSOCK_HDR_LEN + h->len;
	p = st_gpa(&v->g, sg.addr);
	vh_vsock_hdr_pack(h, p, VH_VSOCK_HDR_LEN);
	if (h->len)
		memcpy(p + VH_VSOCK_HDR_LEN, payload, h->len);
	if (vh_drvq_add(v->vq[VH_VSOCK_VQ_TX], &sg, 1, 0,
		      (void *)(uintptr_t)(slot + 1)))
		return -ENOSPC;
	vh_drvq_kick(v->vq[VH_VSOCK_VQ_TX]);
	return 0;
}

/*
 * Next packet from the RX queue: 1 with *h and the payload in
 * v->payload, 0 on timeout, -errno (a malformed packet is -EPROTO).
 */
static int guest_rx(struct vguest *v, struct vh_vsock_hdr *h, int ms)
{
	struct vh_drvq *vq = v->vq[VH_VSOCK_VQ_RX];
	void *tok;
	uint32_t len;
	unsigned int idx;
	uint8_t *p;
	int r;

	for (;;) {
		r = vh_drvq_get_used(vq, &tok, &len);
		if (r < 0)
			return r;
		if (r == 1)
			break;
		r = wait_used(v, VH_VSOCK_VQ_RX, ms);
		if (r <= 0)
			return r;
	}
	idx = (unsigned int)(uintptr_t)tok - 1;
	p = st_gpa(&v->g, v->rxbuf_gpa + (uint64_t)idx * RXBUF);
	r = vh_vsock_hdr_parse(h, p, len);
	if (r > 0) {
		memcpy(v->payload, p + VH_VSOCK_HDR_LEN, h->len);
		r = 1;
	}
	rx_post(v, idx);
	vh_drvq_kick(vq);
	return r;
}

/* ------------------------------------------------------------------ */
/* the host side, in a thread                                          */
/* ------------------------------------------------------------------ */

struct host_job {
	/* in */
	int type;	    /* SOCK_STREAM or SOCK_SEQPACKET */
	bool listen;	    /* listen on VMADDR_CID_ANY:port, else connect */
	uint64_t cid;	    /* the guest's, to connect to */
	unsigned int port;
	uint64_t tx_len;    /* bytes to send (stream) */
	uint32_t tx_seed;
	uint64_t rx_len;    /* bytes expected (stream) */
	uint32_t rx_seed;
	bool shut_wr;	    /* shutdown(SHUT_WR) after sending */
	const size_t *msgs; /* SEQPACKET: sizes to send, each echoed back */
	unsigned int nmsgs;
	int ready;	    /* eventfd: written once listening */
	/* out */
	int err;	    /* errno of the first failure, 0 */
	const char *where;  /* ... and the step */
	uint64_t rx_got;
	uint32_t rx_fnv;
	unsigned int peer_cid;
	int eof_rc;	    /* recv() after the peer's shutdown */
};

static void *host_thread(void *arg)
{
	struct host_job *j = arg;
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK };
	unsigned long long bufsz = HOST_BUF_SIZE;
	struct timeval tv = { .tv_sec = TIMEOUT_MS / 1000 };
	socklen_t alen;
	uint8_t *buf = malloc(65536);
	uint64_t off;
	int s = -1, c = -1, fd;
	ssize_t r;
	unsigned int i;

	j->rx_fnv = FNV_INIT;
	if (!buf) {
		j->err = ENOMEM;
		j->where = "malloc";
		return NULL;
	}
#define FAIL(step)                                                           \
	do {                                                                 \
		j->err = errno ? errno : EIO;                                \
		j->where = step;                                             \
		goto out;                                                    \
	} while (0)
	/* SEQPACKET: a whole message must fit the receive buffer */
	if (j->type == SOCK_SEQPACKET)
		bufsz = 128 * 1024;
	s = socket(AF_VSOCK, j->type | SOCK_CLOEXEC, 0);
	if (s < 0)
		FAIL("socket");
	/* set before listen/connect: REQUEST/RESPONSE carry buf_alloc */
	if (setsockopt(s, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE, &bufsz,
		       sizeof(bufsz)) < 0)
		FAIL("SO_VM_SOCKETS_BUFFER_SIZE");
	/* TCG is slow: more than vsock's default 2 s to connect */
	setsockopt(s, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv,
		   sizeof(tv));
	if (j->listen) {
		addr.svm_cid = VMADDR_CID_ANY;
		addr.svm_port = j->port;
		if (bind(s, (struct sockaddr *)&addr, sizeof(addr)) < 0)
			FAIL("bind");
		if (listen(s, 1) < 0)
			FAIL("listen");
		if (eventfd_write(j->ready, 1) < 0)
			FAIL("ready");
		if (st_wait_fd(s, TIMEOUT_MS) != 1) {
			errno = ETIMEDOUT;
			FAIL("accept wait");
		}
		alen = sizeof(addr);
		c = accept4(s, (struct sockaddr *)&addr, &alen, SOCK_CLOEXEC);
		if (c < 0)
			FAIL("accept");
		j->peer_cid = addr.svm_cid;
		fd = c;
	} else {
		addr.svm_cid = (unsigned int)j->cid;
		addr.svm_port = j->port;
		fd = s;
	}
	/* a small window: the guest's data needs several credit updates */
	if (fd != s && setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_BUFFER_SIZE,
				  &bufsz, sizeof(bufsz)) < 0)
		FAIL("SO_VM_SOCKETS_BUFFER_SIZE");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (!j->listen &&
	    connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		FAIL("connect");

	if (j->type == SOCK_SEQPACKET) {
		for (i = 0; i < j->nmsgs; i++) {
			pat_fill(buf, j->msgs[i], 0, j->tx_seed + i);
			if (send(fd, buf, j->msgs[i], 0) !=
			    (ssize_t)j->msgs[i])
				FAIL("send message");
			r = recv(fd, buf, 65536, MSG_TRUNC);
			if (r != (ssize_t)j->msgs[i]) {
				errno = r < 0 ? errno : EMSGSIZE;
				FAIL("recv echo");
			}
			if (pat_check(buf, r, 0, j->tx_seed + i)) {
				errno = EBADMSG;
				FAIL("echo content");
			}
			j->rx_got += r;
		}
		goto out;
	}

	for (off = 0; off < j->tx_len;) {
		size_t n = j->tx_len - off < 65536 ? j->tx_len - off : 65536;

		pat_fill(buf, n, off, j->tx_seed);
		r = send(fd, buf, n, 0);
		if (r <= 0)
			FAIL("send");
		off += r;
	}
	if (j->shut_wr && shutdown(fd, SHUT_WR) < 0)
		FAIL("shutdown");
	while (j->rx_got < j->rx_len) {
		r = recv(fd, buf, 65536, 0);
		if (r <= 0) {
			errno = r < 0 ? errno : EPIPE;
			FAIL("recv");
		}
		if (pat_check(buf, r, j->rx_got, j->rx_seed)) {
			errno = EBADMSG;
			FAIL("recv content");
		}
		j->rx_fnv = fnv1a(j->rx_fnv, buf, r);
		j->rx_got += r;
	}
	/* the guest shuts down both ways: end of stream */
	j->eof_rc = (int)recv(fd, buf, 65536, 0);
	if (j->eof_rc < 0)
		j->eof_rc = -errno;
out:
	if (c >= 0)
		close(c);
	if (s >= 0)
		close(s);
	free(buf);
	return NULL;
#undef FAIL
}

/* ------------------------------------------------------------------ */
/* the guest side of one connection                                    */
/* ------------------------------------------------------------------ */

struct session {
	struct vh_vsock_conn *conn;
	uint64_t tx_len, tx_sent;
	uint32_t tx_seed;
	uint64_t rx_len, rx_got; /* rx_len: what to expect before EOF */
	uint32_t rx_seed;
	uint32_t rx_fnv;
	bool shut_sent;
	unsigned int credit_stalls; /* times we had data but no credit */
	unsigned int updates_sent;
	int err;
	const char *where;
};

/* Handle one incoming packet for the session's connection. */
static int session_input(struct vguest *v, struct session *s,
			 const struct vh_vsock_hdr *h)
{
	struct vh_vsock_hdr reply;
	int r;

	r = vh_vsock_conn_input(s->conn, h, &reply);
	if (r < 0)
		return r;
	if (r == 1) {
		r = guest_tx(v, &reply, NULL);
		if (r)
			return r;
	}
	if (h->op == VH_VSOCK_OP_RW && h->len) {
		if (pat_check(v->payload, h->len, s->rx_got, s->rx_seed))
			return -EBADMSG;
		s->rx_fnv = fnv1a(s->rx_fnv, v->payload, h->len);
		s->rx_got += h->len;
		/* the application consumed it at once */
		if (vh_vsock_conn_consumed(s->conn, h->len) == 1) {
			r = vh_vsock_conn_credit_update(s->conn, &reply);
			if (!r)
				r = guest_tx(v, &reply, NULL);
			if (r)
				return r;
			s->updates_sent++;
		}
	}
	return 0;
}

/*
 * Move data both ways until the connection closes: send tx_len bytes as
 * the peer's credit allows, take what comes, and once everything is sent
 * and rx_len bytes (and the peer's end of stream, when it sends one) have
 * arrived, shut down both ways and wait for the peer's RST.
 */
static void run_session(struct vguest *v, struct session *s, bool want_eof)
{
	struct vh_vsock_hdr h, out;
	uint64_t deadline = st_now_ns() + (uint64_t)TIMEOUT_MS * 1000000;
	bool stalled = false;
	int r;

#define SFAIL(step, e)                                                       \
	do {                                                                 \
		s->err = (e);                                                \
		s->where = (step);                                           \
		return;                                                      \
	} while (0)
	s->rx_fnv = FNV_INIT;
	while (vh_vsock_conn_get_state(s->conn) != VH_VSOCK_CLOSED) {
		if (st_now_ns() > deadline)
			SFAIL("session timeout", -ETIMEDOUT);
		/* send what the credit allows */
		while (s->tx_sent < s->tx_len) {
			uint64_t left = s->tx_len - s->tx_sent;
			uint32_t want = left < CHUNK ? (uint32_t)left : CHUNK;

			r = vh_vsock_conn_send(s->conn, want, 0, &out);
			if (r < 0)
				SFAIL("conn_send", r);
			if (r == 0) {
				if (!stalled)
					s->credit_stalls++;
				stalled = true;
				break;
			}
			stalled = false;
			pat_fill(v->payload, r, s->tx_sent, s->tx_seed);
			r = guest_tx(v, &out, v->payload);
			if (r)
				SFAIL("guest_tx", r);
			s->tx_sent += out.len;
		}
		if (!s->shut_sent && s->tx_sent == s->tx_len &&
		    s->rx_got >= s->rx_len &&
		    (!want_eof || (vh_vsock_conn_peer_shutdown(s->conn) &
				   VH_VSOCK_SHUTDOWN_SEND))) {
			r = vh_vsock_conn_shutdown(s->conn,
						   VH_VSOCK_SHUTDOWN_RCV |
							   VH_VSOCK_SHUTDOWN_SEND,
						   &out);
			if (!r)
				r = guest_tx(v, &out, NULL);
			if (r)
				SFAIL("shutdown", r);
			s->shut_sent = true;
		}
		r = guest_rx(v, &h, 100);
		if (r < 0)
			SFAIL("guest_rx", r);
		if (r == 0)
			continue;
		if (!vh_vsock_conn_matches(s->conn, &h))
			continue; /* not ours (a stray packet) */
		r = session_input(v, s, &h);
		if (r < 0)
			SFAIL("input", r);
	}
#undef SFAIL
}

/* Wait for a REQUEST to port and accept it: a connected vh_vsock_conn. */
static int guest_accept(struct vguest *v, unsigned int port, uint16_t type,
			uint32_t buf_alloc, struct vh_vsock_conn **conn)
{
	struct vh_vsock_hdr h, reply;
	uint64_t deadline = st_now_ns() + (uint64_t)TIMEOUT_MS * 1000000;
	int r;

	while (st_now_ns() < deadline) {
		r = guest_rx(v, &h, 200);
		if (r < 0)
			return r;
		if (r == 0 || h.op != VH_VSOCK_OP_REQUEST)
			continue;
		if (h.dst_cid != v->cid || h.dst_port != port ||
		    h.src_cid != VH_VSOCK_CID_HOST || h.type != type)
			return -EPROTO;
		r = vh_vsock_conn_new(v->ctx, type, v->cid, port, h.src_cid,
				      h.src_port, buf_alloc, conn);
		if (r)
			return r;
		r = vh_vsock_conn_input(*conn, &h, &reply);
		if (r != 1 || reply.op != VH_VSOCK_OP_RESPONSE)
			return r < 0 ? r : -EPROTO;
		return guest_tx(v, &reply, NULL);
	}
	return -ETIMEDOUT;
}

/* ------------------------------------------------------------------ */
/* fixture                                                             */
/* ------------------------------------------------------------------ */

FIXTURE(vsock)
{
	struct vguest v;
	struct host_job job;
	pthread_t th;
	bool th_started;
	struct session s;
};

FIXTURE_VARIANT(vsock)
{
	uint64_t features;
};

FIXTURE_VARIANT_ADD(vsock, v1)
{
	.features = BIT(VIRTIO_F_VERSION_1),
};

FIXTURE_VARIANT_ADD(vsock, v1_event_idx)
{
	.features = BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_RING_F_EVENT_IDX),
};

FIXTURE_SETUP(vsock)
{
	const char *why = NULL;
	int err;

	memset(&self->v, 0, sizeof(self->v));
	self->v.kick[0] = self->v.kick[1] = -1;
	self->v.call[0] = self->v.call[1] = -1;
	self->job.ready = -1;
	err = guest_setup(&self->v, variant->features, &why);
	if (err > 0)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, err)
		TH_LOG("%s", why ? why : strerror(-err));
	self->job.ready = st_eventfd();
	ASSERT_LE(0, self->job.ready);
}

FIXTURE_TEARDOWN(vsock)
{
	if (self->th_started)
		pthread_join(self->th, NULL);
	vh_vsock_conn_unref(self->s.conn);
	if (self->job.ready >= 0)
		close(self->job.ready);
	guest_teardown(&self->v);
}

static void start_host(struct __test_metadata *_metadata,
		       FIXTURE_DATA(vsock) * self)
{
	ASSERT_EQ(0, pthread_create(&self->th, NULL, host_thread, &self->job));
	self->th_started = true;
}

static void join_host(struct __test_metadata *_metadata,
		      FIXTURE_DATA(vsock) * self)
{
	ASSERT_TRUE(self->th_started);
	pthread_join(self->th, NULL);
	self->th_started = false;
	if (self->job.err)
		TH_LOG("host: %s: %s", self->job.where,
		       strerror(self->job.err));
	ASSERT_EQ(0, self->job.err);
}

/*
 * The host connects to the guest; 1 MiB host->guest (some 260 packets
 * through a 128-entry RX ring: it wraps) then the host's SHUT_WR, 768 KiB
 * guest->host, then the guest shuts down both ways and the host answers
 * with RST (the orderly close of 5.10.6.6).
 */
TEST_F_TIMEOUT(vsock, host_connects_stream, 120)
{
	struct host_job *j = &self->job;
	struct session *s = &self->s;

	j->type = SOCK_STREAM;
	j->cid = self->v.cid;
	j->port = GUEST_PORT;
	j->tx_len = 1024 * 1024;
	j->tx_seed = 0x1111;
	j->rx_len = 768 * 1024;
	j->rx_seed = 0x2222;
	j->shut_wr = true;
	start_host(_metadata, self);

	ASSERT_EQ(0, guest_accept(&self->v, GUEST_PORT, VH_VSOCK_TYPE_STREAM,
				  GUEST_BUF_ALLOC, &s->conn));
	EXPECT_EQ((int)VH_VSOCK_CONNECTED, (int)vh_vsock_conn_get_state(s->conn));
	s->tx_len = j->rx_len;
	s->tx_seed = j->rx_seed;
	s->rx_len = j->tx_len;
	s->rx_seed = j->tx_seed;
	run_session(&self->v, s, true);
	if (s->err)
		TH_LOG("guest: %s: %d", s->where, s->err);
	ASSERT_EQ(0, s->err);
	join_host(_metadata, self);

	TH_LOG("host->guest %llu bytes fnv %08x, guest->host %llu bytes "
	       "fnv %08x, %u credit updates sent, %u credit stalls",
	       (unsigned long long)s->rx_got, s->rx_fnv,
	       (unsigned long long)j->rx_got, j->rx_fnv, s->updates_sent,
	       s->credit_stalls);
	/* every byte arrived, in order, both ways */
	EXPECT_EQ(j->tx_len, s->rx_got);
	EXPECT_EQ(pat_fnv(j->tx_len, j->tx_seed), s->rx_fnv);
	EXPECT_EQ(j->rx_len, j->rx_got);
	EXPECT_EQ(pat_fnv(j->rx_len, j->rx_seed), j->rx_fnv);
	EXPECT_EQ(0, j->eof_rc);
	/* more than one window each way: the credit mechanism did work */
	EXPECT_LT(1u, s->updates_sent);
	EXPECT_LT(0u, s->credit_stalls);
	EXPECT_EQ((int)VH_VSOCK_CLOSED, (int)vh_vsock_conn_get_state(s->conn));
}

/* The guest connects to a host listener on CID 2. */
TEST_F_TIMEOUT(vsock, guest_connects_to_host, 120)
{
	struct host_job *j = &self->job;
	struct session *s = &self->s;
	struct vh_vsock_hdr out, h;
	uint64_t deadline;
	int r;

	j->type = SOCK_STREAM;
	j->listen = true;
	j->port = 40000 + getpid() % 20000;
	j->tx_len = 100 * 1024;
	j->tx_seed = 0x3333;
	j->rx_len = 120 * 1024;
	j->rx_seed = 0x4444;
	start_host(_metadata, self);
	ASSERT_EQ(1, st_wait_fd(j->ready, TIMEOUT_MS));

	ASSERT_EQ(0, vh_vsock_conn_new(self->v.ctx, VH_VSOCK_TYPE_STREAM,
				       self->v.cid, 5000, VMADDR_CID_HOST,
				       j->port, GUEST_BUF_ALLOC, &s->conn));
	ASSERT_EQ(0, vh_vsock_conn_connect(s->conn, &out));
	EXPECT_EQ(VH_VSOCK_OP_REQUEST, out.op);
	ASSERT_EQ(0, guest_tx(&self->v, &out, NULL));
	deadline = st_now_ns() + (uint64_t)TIMEOUT_MS * 1000000;
	while (vh_vsock_conn_get_state(s->conn) == VH_VSOCK_CONNECTING &&
	       st_now_ns() < deadline) {
		r = guest_rx(&self->v, &h, 200);
		ASSERT_LE(0, r);
		if (r == 1 && vh_vsock_conn_matches(s->conn, &h))
			ASSERT_EQ(0, session_input(&self->v, s, &h));
	}
	ASSERT_EQ((int)VH_VSOCK_CONNECTED, (int)vh_vsock_conn_get_state(s->conn));

	s->tx_len = j->rx_len;
	s->tx_seed = j->rx_seed;
	s->rx_len = j->tx_len;
	s->rx_seed = j->tx_seed;
	run_session(&self->v, s, false);
	if (s->err)
		TH_LOG("guest: %s: %d", s->where, s->err);
	ASSERT_EQ(0, s->err);
	join_host(_metadata, self);
	EXPECT_EQ(self->v.cid, j->peer_cid);
	EXPECT_EQ(j->tx_len, s->rx_got);
	EXPECT_EQ(pat_fnv(j->tx_len, j->tx_seed), s->rx_fnv);
	EXPECT_EQ(j->rx_len, j->rx_got);
	EXPECT_EQ(pat_fnv(j->rx_len, j->rx_seed), j->rx_fnv);
	EXPECT_EQ(0, j->eof_rc);
}

/* No listener on the guest port: the guest answers RST, connect() fails. */
TEST_F_TIMEOUT(vsock, connect_refused_by_rst, 60)
{
	struct host_job *j = &self->job;
	struct vh_vsock_conn *c = NULL;
	struct vh_vsock_hdr h, out;
	int r;

	j->type = SOCK_STREAM;
	j->cid = self->v.cid;
	j->port = 4242;
	start_host(_metadata, self);
	do {
		r = guest_rx(&self->v, &h, TIMEOUT_MS);
		ASSERT_EQ(1, r);
	} while (h.op != VH_VSOCK_OP_REQUEST);
	ASSERT_EQ(4242u, h.dst_port);
	ASSERT_EQ(0, vh_vsock_conn_new(self->v.ctx, VH_VSOCK_TYPE_STREAM,
				       self->v.cid, h.dst_port, h.src_cid,
				       h.src_port, GUEST_BUF_ALLOC, &c));
	ASSERT_EQ(0, vh_vsock_conn_reset(c, &out));
	ASSERT_EQ(0, guest_tx(&self->v, &out, NULL));
	vh_vsock_conn_unref(c);
	pthread_join(self->th, NULL);
	self->th_started = false;
	EXPECT_STREQ("connect", j->where);
	EXPECT_EQ(ECONNRESET, j->err);
}

/*
 * A reset from the guest in mid-stream: the host sees the end of the
 * stream and can no longer send.
 */
TEST_F_TIMEOUT(vsock, guest_resets, 60)
{
	struct host_job *j = &self->job;
	struct session *s = &self->s;
	struct vh_vsock_hdr out, h;
	int r;

	j->type = SOCK_STREAM;
	j->cid = self->v.cid;
	j->port = GUEST_PORT;
	j->rx_len = 1000; /* the host waits for 1000 bytes, gets 10 */
	j->rx_seed = 5;
	start_host(_metadata, self);
	ASSERT_EQ(0, guest_accept(&self->v, GUEST_PORT, VH_VSOCK_TYPE_STREAM,
				  GUEST_BUF_ALLOC, &s->conn));
	/* the host's first credit information comes with its packets */
	while (vh_vsock_conn_tx_credit(s->conn) == 0) {
		r = vh_vsock_conn_credit_request(s->conn, &out);
		ASSERT_EQ(0, r);
		ASSERT_EQ(0, guest_tx(&self->v, &out, NULL));
		r = guest_rx(&self->v, &h, 2000);
		ASSERT_LE(0, r);
		if (r == 1 && vh_vsock_conn_matches(s->conn, &h))
			ASSERT_EQ(0, session_input(&self->v, s, &h));
	}
	ASSERT_EQ(10, vh_vsock_conn_send(s->conn, 10, 0, &out));
	pat_fill(self->v.payload, 10, 0, 5);
	ASSERT_EQ(0, guest_tx(&self->v, &out, self->v.payload));
	ASSERT_EQ(0, vh_vsock_conn_reset(s->conn, &out));
	ASSERT_EQ(VH_VSOCK_OP_RST, out.op);
	ASSERT_EQ(0, guest_tx(&self->v, &out, NULL));
	EXPECT_EQ(-ENOTCONN, vh_vsock_conn_send(s->conn, 1, 0, &out));
	pthread_join(self->th, NULL);
	self->th_started = false;
	/* 10 bytes, then end of stream where 1000 were expected */
	EXPECT_EQ(10u, j->rx_got);
	EXPECT_STREQ("recv", j->where);
	EXPECT_EQ(EPIPE, j->err);
}

FIXTURE(vsock_seq)
{
	struct vguest v;
	struct host_job job;
	pthread_t th;
	bool th_started;
	struct vh_vsock_conn *conn;
};

FIXTURE_SETUP(vsock_seq)
{
	const char *why = NULL;
	int err;

	memset(&self->v, 0, sizeof(self->v));
	self->v.kick[0] = self->v.kick[1] = -1;
	self->v.call[0] = self->v.call[1] = -1;
	err = guest_setup(&self->v,
			  BIT(VIRTIO_F_VERSION_1) |
				  BIT(VIRTIO_VSOCK_F_SEQPACKET),
			  &why);
	if (err > 0)
		SKIP(return, "%s", why);
	ASSERT_EQ(0, err)
		TH_LOG("%s", why ? why : strerror(-err));
}

FIXTURE_TEARDOWN(vsock_seq)
{
	if (self->th_started)
		pthread_join(self->th, NULL);
	vh_vsock_conn_unref(self->conn);
	guest_teardown(&self->v);
}

/*
 * SOCK_SEQPACKET: messages keep their boundaries (EOM on the last packet
 * of each, 5.10.6.7) both ways; each host message is echoed by the guest.
 */
TEST_F_TIMEOUT(vsock_seq, echo_messages, 120)
{
	static const size_t msgs[] = { 1, 100, 3000, 4052, 4053, 20000, 60000 };
	struct host_job *j = &self->job;
	struct vh_vsock_hdr h, out;
	uint8_t *msg = malloc(65536);
	unsigned int got = 0;
	size_t len = 0, off;
	uint64_t deadline;
	int r;

	ASSERT_NE(NULL, msg);
	j->type = SOCK_SEQPACKET;
	j->cid = self->v.cid;
	j->port = GUEST_PORT;
	j->msgs = msgs;
	j->nmsgs = sizeof(msgs) / sizeof(msgs[0]);
	j->tx_seed = 0x5555;
	ASSERT_EQ(0, pthread_create(&self->th, NULL, host_thread, j));
	self->th_started = true;

	/* a window larger than any message: no message waits on credit */
	ASSERT_EQ(0, guest_accept(&self->v, GUEST_PORT,
				  VH_VSOCK_TYPE_SEQPACKET, 65536,
				  &self->conn));
	deadline = st_now_ns() + (uint64_t)TIMEOUT_MS * 1000000;
	while (got < j->nmsgs && st_now_ns() < deadline) {
		r = guest_rx(&self->v, &h, 200);
		ASSERT_LE(0, r);
		if (r == 0 || !vh_vsock_conn_matches(self->conn, &h))
			continue;
		r = vh_vsock_conn_input(self->conn, &h, &out);
		ASSERT_LE(0, r);
		if (r == 1)
			ASSERT_EQ(0, guest_tx(&self->v, &out, NULL));
		if (h.op != VH_VSOCK_OP_RW)
			continue;
		ASSERT_GE(65536u, len + h.len);
		memcpy(msg + len, self->v.payload, h.len);
		len += h.len;
		vh_vsock_conn_consumed(self->conn, h.len);
		if (!(h.flags & VH_VSOCK_SEQ_EOM))
			continue;
		/* one whole message */
		ASSERT_EQ(msgs[got], len);
		ASSERT_EQ(0u, pat_check(msg, len, 0, j->tx_seed + got));
		/* echo it, in pieces, EOM on the last */
		for (off = 0; off < len;) {
			uint32_t n = len - off > CHUNK ? CHUNK : len - off;
			uint32_t fl = off + n == len ? VH_VSOCK_SEQ_EOM : 0;

			r = vh_vsock_conn_send(self->conn, n, fl, &out);
			if (r == 0) {
				/* wait for the host's credit */
				r = guest_rx(&self->v, &h, 200);
				ASSERT_LE(0, r);
				if (r == 1 &&
				    vh_vsock_conn_matches(self->conn, &h))
					ASSERT_LE(0, vh_vsock_conn_input(
							     self->conn, &h,
							     &out));
				continue;
			}
			ASSERT_EQ((int)n, r);
			ASSERT_EQ(0, guest_tx(&self->v, &out, msg + off));
			off += n;
		}
		got++;
		len = 0;
	}
	free(msg);
	EXPECT_EQ(j->nmsgs, got);
	pthread_join(self->th, NULL);
	self->th_started = false;
	if (j->err)
		TH_LOG("host: %s: %s", j->where, strerror(j->err));
	ASSERT_EQ(0, j->err);
	EXPECT_EQ(60000u + 20000 + 4053 + 4052 + 3000 + 100 + 1, j->rx_got);
}

/* ------------------------------------------------------------------ */
/* control-plane negative cases                                        */
/* ------------------------------------------------------------------ */

TEST(cid_in_use)
{
	struct vh_ctx *ctx;
	struct vh_kdev *a = NULL, *b = NULL;
	uint64_t cid = 2000000 + getpid() % 1000000;
	__u64 raw;
	int err;

	if (access("/dev/vhost-vsock", F_OK))
		SKIP(return, "/dev/vhost-vsock missing");
	ASSERT_EQ(0, vh_ctx_new(&ctx));
	ASSERT_EQ(0, vh_kdev_open_type(ctx, VH_KDEV_VSOCK, &a));
	ASSERT_EQ(0, vh_kdev_open_type(ctx, VH_KDEV_VSOCK, &b));
	ASSERT_EQ(0, vh_kdev_set_owner(a));
	ASSERT_EQ(0, vh_kdev_set_owner(b));
	ASSERT_EQ(0, vh_vsock_set_guest_cid(a, cid));
	/* vhost_vsock_set_cid(): one device per CID */
	EXPECT_EQ(-EADDRINUSE, vh_vsock_set_guest_cid(b, cid));
	EXPECT_EQ(0, vh_vsock_set_guest_cid(b, cid + 1));
	/* a device may change its own CID, and the old one is free again */
	EXPECT_EQ(0, vh_vsock_set_guest_cid(a, cid + 2));
	EXPECT_EQ(0, vh_vsock_set_guest_cid(b, cid));
	/* reserved CIDs: refused by the library, and by the kernel */
	EXPECT_EQ(-EINVAL, vh_vsock_set_guest_cid(a, VMADDR_CID_HOST));
	EXPECT_EQ(-EINVAL, vh_vsock_set_guest_cid(a, 0xffffffffULL));
	EXPECT_EQ(-EINVAL, vh_vsock_set_guest_cid(a, 1ULL << 32));
	raw = VMADDR_CID_HOST;
	err = ioctl(vh_kdev_get_fd(a), VHOST_VSOCK_SET_GUEST_CID, &raw);
	EXPECT_EQ(-1, err);
	EXPECT_EQ(EINVAL, errno);
	/* vsock calls on another device type */
	vh_kdev_unref(b);
	b = NULL;
	if (!access("/dev/vhost-net", F_OK)) {
		ASSERT_EQ(0, vh_kdev_open_type(ctx, VH_KDEV_NET, &b));
		EXPECT_EQ(-ENOTTY, vh_vsock_set_guest_cid(b, cid + 3));
		EXPECT_EQ(-ENOTTY, vh_vsock_set_running(b, true));
	}
	vh_kdev_unref(b);
	vh_kdev_unref(a);
	vh_ctx_unref(ctx);
}

int main(int argc, char **argv)
{
	st_need_module("vhost_vsock");
	if (access("/dev/vhost-vsock", F_OK))
		ksft_exit_skip("/dev/vhost-vsock missing: vhost_vsock not "
			       "loaded\n");
	return test_harness_run(argc, argv);
}
