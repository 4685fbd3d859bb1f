// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhostctl check vsock: vhost-vsock with a userspace guest.  A host
 * AF_VSOCK stream socket connects to the guest's CID; the guest (vh_drvq
 * rings and the library's vh_vsock_conn state machine) accepts, data goes
 * both ways and is compared, then the guest shuts down both directions and
 * the host answers with RST: the orderly close of virtio 1.3, 5.10.6.6.
 * The host socket is non-blocking, so one thread plays both sides.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "check.h"

#define VS_RING 32
#define VS_RXBUF 4096
#define VS_TXBUF 4096
#define VS_BUF_ALLOC 65536
#define VS_PORT 5151
#define VS_DATA 6000 /* more than one RX buffer each way */

struct vs_chk {
	struct vh_kdev *dev;
	struct chk_guest g;
	struct vh_drvq *vq[2]; /* VH_VSOCK_VQ_RX, VH_VSOCK_VQ_TX */
	int kick[2], call[2];
	uint64_t cid;
	uint64_t rx_gpa, tx_gpa;
	unsigned int tx_next;
	bool running;
	struct vh_vsock_conn *conn;
	int sock;
	uint8_t payload[VS_RXBUF];
	/* what the host sent, what the guest got */
	uint8_t h2g[VS_DATA], got[VS_DATA];
	size_t ngot;
};

static int rx_post(struct vs_chk *s, unsigned int i)
{
	uint64_t gpa = s->rx_gpa + (uint64_t)i * VS_RXBUF;
	struct vh_sg sg = { gpa, VS_RXBUF };

	return vh_drvq_add(s->vq[VH_VSOCK_VQ_RX], &sg, 0, 1, chk_gpa(&s->g, gpa));
}

/* One packet (header + payload) on the TX queue; waits for the slot. */
static int guest_tx(struct vs_chk *s, const struct vh_vsock_hdr *h,
		    const void *payload)
{
	unsigned int slot = s->tx_next++ % VS_RING;
	uint64_t gpa = s->tx_gpa + (uint64_t)slot * VS_TXBUF;
	struct vh_sg sg = { gpa, VH_VSOCK_HDR_LEN + h->len };
	uint8_t *p = chk_gpa(&s->g, gpa);
	void *tok;
	uint32_t len;
	int err;

	if (h->len > VS_TXBUF - VH_VSOCK_HDR_LEN)
		return -EMSGSIZE;
	/* reuse slots in order: take back whatever the device finished */
	while (vh_drvq_num_free(s->vq[VH_VSOCK_VQ_TX]) == 0) {
		err = chk_wait_used(s->vq[VH_VSOCK_VQ_TX],
				    s->call[VH_VSOCK_VQ_TX], &tok, &len,
				    CHK_TIMEOUT_MS);
		if (err < 0)
			return err;
	}
	vh_vsock_hdr_pack(h, p, VH_VSOCK_HDR_LEN);
	if (h->len && payload)
		memcpy(p + VH_VSOCK_HDR_LEN, payload, h->len);
	err = vh_drvq_add(s->vq[VH_VSOCK_VQ_TX], &sg, 1, 0, p);
	if (err)
		return err;
	vh_drvq_kick(s->vq[VH_VSOCK_VQ_TX]);
	return 0;
}

/* Reap finished TX buffers without waiting. */
static void reap_tx(struct vs_chk *s)
{
	void *tok;
	uint32_t len;

	while (vh_drvq_get_used(s->vq[VH_VSOCK_VQ_TX], &tok, &len) == 1)
		;
}

/*
 * Next packet from the RX queue: 1 with *h (payload in s->payload), 0 on
 * timeout, -errno (-EPROTO for a malformed packet).
 */
static int guest_rx(struct vs_chk *s, struct vh_vsock_hdr *h, int ms)
{
	struct vh_drvq *vq = s->vq[VH_VSOCK_VQ_RX];
	uint8_t *base = chk_gpa(&s->g, s->rx_gpa);
	void *tok = NULL;
	uint32_t len = 0;
	unsigned int idx;
	int r;

	r = chk_wait_used(vq, s->call[VH_VSOCK_VQ_RX], &tok, &len, ms);
	if (r == -ETIMEDOUT)
		return 0;
	if (r < 0)
		return r;
	idx = (unsigned int)(((uint8_t *)tok - base) / VS_RXBUF);
	if (idx >= VS_RING || len > VS_RXBUF)
		return -EPROTO;
	r = vh_vsock_hdr_parse(h, tok, len);
	if (r > 0) {
		memcpy(s->payload, (uint8_t *)tok + VH_VSOCK_HDR_LEN, h->len);
		r = 1;
	}
	if (rx_post(s, idx) == 0)
		vh_drvq_kick(vq);
	return r;
}

static enum chk_outcome vs_setup(struct vhc *v, struct vs_chk *s,
				 struct chk_result *r)
{
	int err;

	if (access("/dev/vhost-vsock", F_OK))
		return chk_set(r, CHK_SKIP,
			       "/dev/vhost-vsock absent (module vhost_vsock)");
	s->sock =
		socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->sock < 0 && (errno == EAFNOSUPPORT || errno == EINVAL))
		return chk_set(r, CHK_SKIP,
			       "no AF_VSOCK sockets (module vsock)");
	if (s->sock < 0)
		return chk_fail_err(r, "AF_VSOCK socket", -errno);
	if (chk_kdev_open(r, v->ctx, VH_KDEV_VSOCK, &s->dev) != CHK_PASS)
		return r->outcome;
	err = chk_guest_init(&s->g, v->ctx,
			     (uint64_t)VS_RING * (VS_RXBUF + VS_TXBUF) +
				     (1 << 18));
	if (err)
		return chk_fail_err(r, "guest memory", err);
	s->rx_gpa = chk_guest_alloc(&s->g, (uint64_t)VS_RING * VS_RXBUF, 4096);
	s->tx_gpa = chk_guest_alloc(&s->g, (uint64_t)VS_RING * VS_TXBUF, 4096);
	if (!s->rx_gpa || !s->tx_gpa)
		return chk_fail_err(r, "guest memory", -ENOMEM);
	err = vh_kdev_set_mem_table(s->dev, s->g.mem);
	if (err)
		return chk_fail_err(r, "set mem table", err);
	for (unsigned int i = 0; i < 2; i++) {
		enum chk_outcome o = chk_kdev_ring(r, v->ctx, s->dev, &s->g, i,
						   VS_RING, &s->vq[i], &s->kick[i],
						   &s->call[i]);

		if (o != CHK_PASS)
			return o;
	}
	for (unsigned int i = 0; i < VS_RING; i++) {
		err = rx_post(s, i);
		if (err)
			return chk_fail_err(r, "RX post", err);
	}
	vh_drvq_kick(s->vq[VH_VSOCK_VQ_RX]);
	/* a CID of our own; the pid keeps concurrent runs apart */
	for (unsigned int i = 0; i < 16; i++) {
		s->cid = 0x5c000000u + ((uint64_t)getpid() + i) % 0x1000000u;
		err = vh_vsock_set_guest_cid(s->dev, s->cid);
		if (err != -EADDRINUSE)
			break;
	}
	if (err)
		return chk_fail_err(r, "set guest CID", err);
	err = vh_vsock_set_running(s->dev, true);
	if (err)
		return chk_fail_err(r, "set running", err);
	s->running = true;
	return CHK_PASS;
}

static void vs_teardown(struct vs_chk *s)
{
	chk_close(&s->sock);
	s->conn = vh_vsock_conn_unref(s->conn);
	if (s->running)
		vh_vsock_set_running(s->dev, false);
	s->dev = vh_kdev_unref(s->dev);
	for (int i = 0; i < 2; i++) {
		s->vq[i] = vh_drvq_unref(s->vq[i]);
		chk_close(&s->kick[i]);
		chk_close(&s->call[i]);
	}
	if (s->g.mem)
		chk_guest_fini(&s->g);
}

/* Feed one packet to the connection; collect RW payload. */
static int vs_input(struct vs_chk *s, const struct vh_vsock_hdr *h)
{
	struct vh_vsock_hdr reply;
	int err;

	if (!vh_vsock_conn_matches(s->conn, h))
		return 0; /* a stray packet */
	err = vh_vsock_conn_input(s->conn, h, &reply);
	if (err < 0)
		return err;
	if (err == 1) {
		err = guest_tx(s, &reply, NULL);
		if (err)
			return err;
	}
	if (h->op == VH_VSOCK_OP_RW && h->len) {
		if (h->len > sizeof(s->got) - s->ngot)
			return -EMSGSIZE;
		memcpy(s->got + s->ngot, s->payload, h->len);
		s->ngot += h->len;
		if (vh_vsock_conn_consumed(s->conn, h->len) == 1) {
			err = vh_vsock_conn_credit_update(s->conn, &reply);
			if (!err)
				err = guest_tx(s, &reply, NULL);
			if (err)
				return err;
		}
	}
	return 0;
}

/* The host connects; the guest accepts. */
static enum chk_outcome vs_connect(struct vhc *v, struct vs_chk *s,
				   struct chk_result *r)
{
	struct sockaddr_vm addr = { .svm_family = AF_VSOCK,
				    .svm_cid = (unsigned int)s->cid,
				    .svm_port = VS_PORT };
	uint64_t deadline = chk_now_ms() + CHK_TIMEOUT_MS;
	struct vh_vsock_hdr h, reply;
	struct timeval tv = { .tv_sec = CHK_TIMEOUT_MS / 1000 };
	socklen_t elen = sizeof(int);
	int err, soerr = 0;

	/* TCG guests are slow: more than vsock's default 2 s to connect */
	setsockopt(s->sock, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv,
		   sizeof(tv));
	if (connect(s->sock, (struct sockaddr *)&addr, sizeof(addr)) < 0 &&
	    errno != EINPROGRESS)
		return chk_fail_err(r, "host connect", -errno);
	while (!s->conn) {
		if (chk_now_ms() >= deadline)
			return chk_set(r, CHK_FAIL, "no connection REQUEST");
		err = guest_rx(s, &h, 200);
		if (err < 0)
			return chk_fail_err(r, "guest RX", err);
		if (err == 0 || h.op != VH_VSOCK_OP_REQUEST)
			continue;
		/* 5.10.6.4: the host is CID 2, the request for our port */
		if (h.dst_cid != s->cid || h.dst_port != VS_PORT ||
		    h.src_cid != VH_VSOCK_CID_HOST ||
		    h.type != VH_VSOCK_TYPE_STREAM)
			return chk_set(r, CHK_FAIL, "unexpected REQUEST");
		err = vh_vsock_conn_new(v->ctx, VH_VSOCK_TYPE_STREAM, s->cid,
					VS_PORT, h.src_cid, h.src_port,
					VS_BUF_ALLOC, &s->conn);
		if (err)
			return chk_fail_err(r, "connection", err);
		err = vh_vsock_conn_input(s->conn, &h, &reply);
		if (err != 1 || reply.op != VH_VSOCK_OP_RESPONSE)
			return chk_fail_err(r, "accept",
					    err < 0 ? err : -EPROTO);
		err = guest_tx(s, &reply, NULL);
		if (err)
			return chk_fail_err(r, "RESPONSE", err);
	}
	if (chk_poll(s->sock, POLLOUT, CHK_TIMEOUT_MS) != 1)
		return chk_set(r, CHK_FAIL, "host connect timed out");
	if (getsockopt(s->sock, SOL_SOCKET, SO_ERROR, &soerr, &elen) < 0 ||
	    soerr)
		return chk_fail_err(r, "host connect", soerr ? -soerr : -errno);
	return CHK_PASS;
}

static enum chk_outcome vs_data(struct vs_chk *s, struct chk_result *r)
{
	uint64_t deadline = chk_now_ms() + CHK_TIMEOUT_MS;
	uint8_t g2h[VS_DATA], hgot[VS_DATA];
	size_t hsent = 0, gsent = 0, nh = 0;
	struct vh_vsock_hdr h, out;
	ssize_t n;
	int err;

	chk_fill(s->h2g, sizeof(s->h2g), 0x1111);
	chk_fill(g2h, sizeof(g2h), 0x2222);
	while (s->ngot < VS_DATA || nh < VS_DATA) {
		if (chk_now_ms() >= deadline)
			return chk_set(r, CHK_FAIL,
				       "data timeout: host->guest %zu/%d, "
				       "guest->host %zu/%d",
				       s->ngot, VS_DATA, nh, VS_DATA);
		if (hsent < VS_DATA) {
			n = send(s->sock, s->h2g + hsent, VS_DATA - hsent,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN)
				return chk_fail_err(r, "host send", -errno);
			if (n > 0)
				hsent += (size_t)n;
		}
		/* guest -> host, as far as the host's credit allows */
		while (gsent < VS_DATA) {
			size_t left = VS_DATA - gsent,
			       max = VS_TXBUF - VH_VSOCK_HDR_LEN;

			err = vh_vsock_conn_send(
				s->conn, (uint32_t)(left < max ? left : max), 0,
				&out);
			if (err < 0)
				return chk_fail_err(r, "guest send", err);
			if (err == 0)
				break;
			err = guest_tx(s, &out, g2h + gsent);
			if (err)
				return chk_fail_err(r, "guest TX", err);
			gsent += out.len;
		}
		reap_tx(s);
		if (nh < VS_DATA) {
			n = recv(s->sock, hgot + nh, VS_DATA - nh,
				 MSG_DONTWAIT);
			if (n == 0)
				return chk_set(r, CHK_FAIL,
					       "host: early end of stream");
			if (n < 0 && errno != EAGAIN)
				return chk_fail_err(r, "host recv", -errno);
			if (n > 0)
				nh += (size_t)n;
		}
		err = guest_rx(s, &h, 20);
		if (err < 0)
			return chk_fail_err(r, "guest RX", err);
		if (err == 1) {
			err = vs_input(s, &h);
			if (err)
				return chk_fail_err(r, "guest input", err);
		}
	}
	if (memcmp(s->got, s->h2g, VS_DATA) != 0)
		return chk_set(r, CHK_FAIL, "host->guest bytes differ");
	if (memcmp(hgot, g2h, VS_DATA) != 0)
		return chk_set(r, CHK_FAIL, "guest->host bytes differ");
	return CHK_PASS;
}

/* 5.10.6.6: the guest shuts down both ways, the host resets. */
static enum chk_outcome vs_close(struct vs_chk *s, struct chk_result *r)
{
	uint64_t deadline = chk_now_ms() + CHK_TIMEOUT_MS;
	struct vh_vsock_hdr h, out;
	bool eof = false;
	uint8_t b;
	ssize_t n;
	int err;

	err = vh_vsock_conn_shutdown(
		s->conn, VH_VSOCK_SHUTDOWN_RCV | VH_VSOCK_SHUTDOWN_SEND, &out);
	if (!err)
		err = guest_tx(s, &out, NULL);
	if (err)
		return chk_fail_err(r, "guest shutdown", err);
	while (vh_vsock_conn_get_state(s->conn) != VH_VSOCK_CLOSED || !eof) {
		if (chk_now_ms() >= deadline)
			return chk_set(r, CHK_FAIL, "close: %s",
				       eof ? "no RST from the host" :
					     "host saw no end of stream");
		if (!eof) {
			n = recv(s->sock, &b, 1, MSG_DONTWAIT);
			if (n > 0)
				return chk_set(r, CHK_FAIL,
					       "close: data after shutdown");
			if (n == 0)
				eof = true;
			else if (errno != EAGAIN)
				return chk_fail_err(r, "host recv", -errno);
		}
		err = guest_rx(s, &h, 50);
		if (err < 0)
			return chk_fail_err(r, "guest RX", err);
		if (err == 1) {
			err = vs_input(s, &h);
			if (err)
				return chk_fail_err(r, "close", err);
		}
	}
	return CHK_PASS;
}

void check_vsock(struct vhc *v, struct chk_result *r)
{
	struct vs_chk *s = calloc(1, sizeof(*s));

	if (!s) {
		chk_fail_err(r, "memory", -ENOMEM);
		return;
	}
	s->kick[0] = s->kick[1] = s->call[0] = s->call[1] = s->sock = -1;
	if (vs_setup(v, s, r) == CHK_PASS && vs_connect(v, s, r) == CHK_PASS &&
	    vs_data(s, r) == CHK_PASS && vs_close(s, r) == CHK_PASS)
		chk_set(r, CHK_PASS,
			"CID %llu port %u: %d bytes each way compared, "
			"orderly close",
			(unsigned long long)s->cid, VS_PORT, VS_DATA);
	vs_teardown(s);
	free(s);
}
