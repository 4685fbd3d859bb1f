// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * virtio-vsock packet headers and the guest-side connection state machine
 * (no device needed), plus the virtio-net header length rule.
 */
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>
#include <linux/virtio_vsock.h>

#include "libvhost.h"
#include "test-util.h"

static void test_hdr_wire_format(void)
{
	struct vh_vsock_hdr h = {
		.src_cid = 3,
		.dst_cid = 2,
		.src_port = 0x01020304,
		.dst_port = 1024,
		.len = 5,
		.type = VH_VSOCK_TYPE_STREAM,
		.op = VH_VSOCK_OP_RW,
		.flags = 0,
		.buf_alloc = 0x10000,
		.fwd_cnt = 0xa0b0c0d0,
	}, p;
	uint8_t buf[VH_VSOCK_HDR_LEN + 5];
	struct virtio_vsock_hdr w;

	CHECK_EQ(vh_vsock_hdr_pack(&h, buf, sizeof(buf)), VH_VSOCK_HDR_LEN);
	/* little endian on the wire, at the uapi struct's offsets */
	memcpy(&w, buf, sizeof(w));
	CHECK_EQ(buf[0], 3);
	CHECK_EQ(buf[8], 2);
	CHECK_EQ(buf[16], 0x04);
	CHECK_EQ(buf[19], 0x01);
	CHECK_EQ(le32toh(w.fwd_cnt), 0xa0b0c0d0u);
	CHECK_EQ(le16toh(w.op), VIRTIO_VSOCK_OP_RW);
	CHECK_EQ(le16toh(w.type), VIRTIO_VSOCK_TYPE_STREAM);
	memcpy(buf + VH_VSOCK_HDR_LEN, "hello", 5);

	memset(&p, 0xff, sizeof(p));
	CHECK_EQ(vh_vsock_hdr_parse(&p, buf, sizeof(buf)), VH_VSOCK_HDR_LEN);
	CHECK_EQ(p.src_cid, h.src_cid);
	CHECK_EQ(p.dst_cid, h.dst_cid);
	CHECK_EQ(p.src_port, h.src_port);
	CHECK_EQ(p.dst_port, h.dst_port);
	CHECK_EQ(p.len, h.len);
	CHECK_EQ(p.type, h.type);
	CHECK_EQ(p.op, h.op);
	CHECK_EQ(p.flags, h.flags);
	CHECK_EQ(p.buf_alloc, h.buf_alloc);
	CHECK_EQ(p.fwd_cnt, h.fwd_cnt);

	CHECK_EQ(vh_vsock_hdr_pack(&h, buf, VH_VSOCK_HDR_LEN - 1), -EINVAL);
	CHECK_EQ(vh_vsock_hdr_pack(NULL, buf, sizeof(buf)), -EINVAL);
}

/* Pack h, then expect parse over pkt_len bytes to give err. */
static void expect_parse(struct vh_vsock_hdr h, size_t pkt_len, int err)
{
	uint8_t buf[256] = { 0 };
	struct vh_vsock_hdr p;

	CHECK(pkt_len <= sizeof(buf));
	vh_vsock_hdr_pack(&h, buf, sizeof(buf));
	CHECK_EQ(vh_vsock_hdr_parse(&p, buf, pkt_len), err);
}

static void test_hdr_hostile(void)
{
	struct vh_vsock_hdr ok = { .src_cid = 2, .dst_cid = 3,
				   .type = VH_VSOCK_TYPE_STREAM,
				   .op = VH_VSOCK_OP_REQUEST };
	struct vh_vsock_hdr h;

	expect_parse(ok, VH_VSOCK_HDR_LEN, VH_VSOCK_HDR_LEN);
	expect_parse(ok, VH_VSOCK_HDR_LEN - 1, -EPROTO);
	expect_parse(ok, 0, -EPROTO);
	h = ok;
	h.type = 0;
	expect_parse(h, VH_VSOCK_HDR_LEN, -EPROTO);
	h.type = 3; /* DGRAM is not in the spec's vsock */
	expect_parse(h, VH_VSOCK_HDR_LEN, -EPROTO);
	h = ok;
	h.op = 0;
	expect_parse(h, VH_VSOCK_HDR_LEN, -EPROTO);
	h.op = 8;
	expect_parse(h, VH_VSOCK_HDR_LEN, -EPROTO);
	/* a payload only on RW */
	h = ok;
	h.len = 1;
	expect_parse(h, VH_VSOCK_HDR_LEN + 1, -EPROTO);
	/* a payload longer than the packet */
	h.op = VH_VSOCK_OP_RW;
	h.len = 100;
	expect_parse(h, VH_VSOCK_HDR_LEN + 99, -EMSGSIZE);
	expect_parse(h, VH_VSOCK_HDR_LEN + 100, VH_VSOCK_HDR_LEN);
	h.len = 0xffffffff;
	expect_parse(h, VH_VSOCK_HDR_LEN + 100, -EMSGSIZE);
	/* the reserved upper halves of the CIDs */
	h = ok;
	h.dst_cid = 3 | (1ULL << 32);
	expect_parse(h, VH_VSOCK_HDR_LEN, -EPROTO);
	h = ok;
	h.src_cid = 1ULL << 63;
	expect_parse(h, VH_VSOCK_HDR_LEN, -EPROTO);
}

#define GCID 7
#define HCID 2

static struct vh_vsock_hdr from_host(uint16_t op, uint32_t len,
				     uint32_t flags, uint32_t buf_alloc,
				     uint32_t fwd_cnt)
{
	struct vh_vsock_hdr h = {
		.src_cid = HCID, .dst_cid = GCID, .src_port = 9999,
		.dst_port = 5000, .len = len, .type = VH_VSOCK_TYPE_STREAM,
		.op = op, .flags = flags, .buf_alloc = buf_alloc,
		.fwd_cnt = fwd_cnt,
	};

	return h;
}

static void test_conn_connect_and_credit(struct vh_ctx *ctx)
{
	struct vh_vsock_conn *c;
	struct vh_vsock_hdr out, in;

	CHECK_EQ(vh_vsock_conn_new(ctx, VH_VSOCK_TYPE_STREAM, GCID, 5000,
				   HCID, 9999, 1000, &c),
		 0);
	CHECK_EQ(vh_vsock_conn_get_state(c), VH_VSOCK_CLOSED);
	/* nothing but connect before the connection exists */
	CHECK_EQ(vh_vsock_conn_send(c, 10, 0, &out), -ENOTCONN);
	CHECK_EQ(vh_vsock_conn_shutdown(c, VH_VSOCK_SHUTDOWN_SEND, &out),
		 -ENOTCONN);

	CHECK_EQ(vh_vsock_conn_connect(c, &out), 0);
	CHECK_EQ(out.op, VH_VSOCK_OP_REQUEST);
	CHECK_EQ(out.src_cid, GCID);
	CHECK_EQ(out.dst_cid, HCID);
	CHECK_EQ(out.src_port, 5000);
	CHECK_EQ(out.dst_port, 9999);
	CHECK_EQ(out.buf_alloc, 1000);
	CHECK_EQ(out.fwd_cnt, 0);
	CHECK_EQ(vh_vsock_conn_get_state(c), VH_VSOCK_CONNECTING);
	CHECK_EQ(vh_vsock_conn_connect(c, &out), -EISCONN);

	/* a packet for another connection is not taken */
	in = from_host(VH_VSOCK_OP_RESPONSE, 0, 0, 300, 0);
	in.src_port = 1;
	CHECK(!vh_vsock_conn_matches(c, &in));
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), -EINVAL);

	in = from_host(VH_VSOCK_OP_RESPONSE, 0, 0, 300, 0);
	CHECK(vh_vsock_conn_matches(c, &in));
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 0);
	CHECK_EQ(vh_vsock_conn_get_state(c), VH_VSOCK_CONNECTED);
	/* a second RESPONSE is a protocol error */
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), -EPROTO);

	/* the peer's window is 300 bytes: sends are cut to the credit */
	CHECK_EQ(vh_vsock_conn_tx_credit(c), 300);
	CHECK_EQ(vh_vsock_conn_send(c, 200, 0, &out), 200);
	CHECK_EQ(out.op, VH_VSOCK_OP_RW);
	CHECK_EQ(out.len, 200);
	CHECK_EQ(vh_vsock_conn_send(c, 200, 0, &out), 100);
	CHECK_EQ(vh_vsock_conn_tx_credit(c), 0);
	CHECK_EQ(vh_vsock_conn_send(c, 200, 0, &out), 0);
	/* STREAM has no message flags */
	CHECK_EQ(vh_vsock_conn_send(c, 1, VH_VSOCK_SEQ_EOM, &out), -EINVAL);
	/* the peer consumed 250: credit comes back */
	in = from_host(VH_VSOCK_OP_CREDIT_UPDATE, 0, 0, 300, 250);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 0);
	CHECK_EQ(vh_vsock_conn_tx_credit(c), 250);
	/* a peer shrinking its buffer below what is in flight: no credit */
	in = from_host(VH_VSOCK_OP_CREDIT_UPDATE, 0, 0, 10, 250);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 0);
	CHECK_EQ(vh_vsock_conn_tx_credit(c), 0);

	/* our receive side: 1000 bytes of credit */
	in = from_host(VH_VSOCK_OP_RW, 600, 0, 300, 250);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 0);
	CHECK_EQ(vh_vsock_conn_rx_pending(c), 600);
	/* more than the 400 left: the peer overran its credit */
	in = from_host(VH_VSOCK_OP_RW, 401, 0, 300, 250);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), -EPROTO);
	in = from_host(VH_VSOCK_OP_RW, 400, 0, 300, 250);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 0);
	/* consuming more than was received is refused */
	CHECK_EQ(vh_vsock_conn_consumed(c, 1001), -EINVAL);
	/* an update is due once half the buffer is free again */
	CHECK_EQ(vh_vsock_conn_consumed(c, 499), 0);
	CHECK_EQ(vh_vsock_conn_consumed(c, 1), 1);
	CHECK_EQ(vh_vsock_conn_credit_update(c, &out), 0);
	CHECK_EQ(out.op, VH_VSOCK_OP_CREDIT_UPDATE);
	CHECK_EQ(out.fwd_cnt, 500);
	CHECK_EQ(vh_vsock_conn_consumed(c, 1), 0);

	/* CREDIT_REQUEST is answered with our counters */
	in = from_host(VH_VSOCK_OP_CREDIT_REQUEST, 0, 0, 300, 250);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 1);
	CHECK_EQ(out.op, VH_VSOCK_OP_CREDIT_UPDATE);
	CHECK_EQ(out.fwd_cnt, 501);
	CHECK_EQ(out.buf_alloc, 1000);

	/* the peer stops receiving: our sends fail */
	in = from_host(VH_VSOCK_OP_SHUTDOWN, 0, VH_VSOCK_SHUTDOWN_RCV, 300,
		       400);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 0);
	CHECK_EQ(vh_vsock_conn_send(c, 1, 0, &out), -EPIPE);
	/* ... and then sending: both ways down, we answer RST */
	in = from_host(VH_VSOCK_OP_SHUTDOWN, 0, VH_VSOCK_SHUTDOWN_SEND, 300,
		       400);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 1);
	CHECK_EQ(out.op, VH_VSOCK_OP_RST);
	CHECK_EQ(vh_vsock_conn_get_state(c), VH_VSOCK_CLOSED);
	CHECK_EQ(vh_vsock_conn_peer_shutdown(c),
		 VH_VSOCK_SHUTDOWN_RCV | VH_VSOCK_SHUTDOWN_SEND);

	/*
	 * Opened again, the connection starts from zero: the old counters
	 * skewed both sides' credit (the REQUEST said fwd_cnt 501) and the
	 * old shutdown bits refused sends (-EPIPE)
	 */
	CHECK_EQ(vh_vsock_conn_connect(c, &out), 0);
	CHECK_EQ(out.fwd_cnt, 0);
	CHECK_EQ(vh_vsock_conn_peer_shutdown(c), 0);
	CHECK_EQ(vh_vsock_conn_rx_pending(c), 0);
	in = from_host(VH_VSOCK_OP_RESPONSE, 0, 0, 4096, 0);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 0);
	CHECK_EQ(vh_vsock_conn_tx_credit(c), 4096);
	CHECK_EQ(vh_vsock_conn_send(c, 100, 0, &out), 100);
	/* a refused packet says nothing of the peer's credit */
	in = from_host(VH_VSOCK_OP_RW, 1001, 0, 1u << 30, 0);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), -EPROTO);
	CHECK_EQ(vh_vsock_conn_tx_credit(c), 3996);
	CHECK(vh_vsock_conn_unref(c) == NULL);
}

static void test_conn_accept_and_close(struct vh_ctx *ctx)
{
	struct vh_vsock_conn *c;
	struct vh_vsock_hdr out, in;

	CHECK_EQ(vh_vsock_conn_new(ctx, VH_VSOCK_TYPE_STREAM, GCID, 5000,
				   HCID, 9999, 4096, &c),
		 0);
	/* a listener: REQUEST in CLOSED state accepts */
	in = from_host(VH_VSOCK_OP_REQUEST, 0, 0, 8192, 0);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 1);
	CHECK_EQ(out.op, VH_VSOCK_OP_RESPONSE);
	CHECK_EQ(out.dst_port, 9999);
	CHECK_EQ(vh_vsock_conn_get_state(c), VH_VSOCK_CONNECTED);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), -EPROTO);
	CHECK_EQ(vh_vsock_conn_tx_credit(c), 8192);

	/* our orderly close: SHUTDOWN both ways, then the peer's RST */
	CHECK_EQ(vh_vsock_conn_shutdown(c, 0, &out), -EINVAL);
	CHECK_EQ(vh_vsock_conn_shutdown(c, 4, &out), -EINVAL);
	CHECK_EQ(vh_vsock_conn_shutdown(c, VH_VSOCK_SHUTDOWN_SEND, &out), 0);
	CHECK_EQ(out.op, VH_VSOCK_OP_SHUTDOWN);
	CHECK_EQ(out.flags, VH_VSOCK_SHUTDOWN_SEND);
	CHECK_EQ(vh_vsock_conn_send(c, 1, 0, &out), -EPIPE);
	CHECK_EQ(vh_vsock_conn_get_state(c), VH_VSOCK_CONNECTED);
	CHECK_EQ(vh_vsock_conn_shutdown(c, VH_VSOCK_SHUTDOWN_RCV, &out), 0);
	CHECK_EQ(vh_vsock_conn_get_state(c), VH_VSOCK_CLOSING);
	/* data still in flight from the peer is taken while closing */
	in = from_host(VH_VSOCK_OP_RW, 10, 0, 8192, 0);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 0);
	in = from_host(VH_VSOCK_OP_RST, 0, 0, 0, 0);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 0);
	CHECK_EQ(vh_vsock_conn_get_state(c), VH_VSOCK_CLOSED);
	vh_vsock_conn_unref(c);

	/* an unexpected RST resets a live connection */
	CHECK_EQ(vh_vsock_conn_new(ctx, VH_VSOCK_TYPE_STREAM, GCID, 5000,
				   HCID, 9999, 4096, &c),
		 0);
	in = from_host(VH_VSOCK_OP_REQUEST, 0, 0, 8192, 0);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 1);
	in = from_host(VH_VSOCK_OP_RST, 0, 0, 0, 0);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), -ECONNRESET);
	CHECK_EQ(vh_vsock_conn_get_state(c), VH_VSOCK_CLOSED);
	/* RW on a closed connection */
	in = from_host(VH_VSOCK_OP_RW, 1, 0, 8192, 0);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), -EPROTO);
	vh_vsock_conn_unref(c);
}

/* 5.10.6.3: the counters are free-running 32-bit values */
static void test_conn_counter_wrap(struct vh_ctx *ctx)
{
	struct vh_vsock_conn *c;
	struct vh_vsock_hdr out, in;
	uint64_t total = 0;
	int i, n;

	CHECK_EQ(vh_vsock_conn_new(ctx, VH_VSOCK_TYPE_STREAM, GCID, 5000,
				   HCID, 9999, 65536, &c),
		 0);
	in = from_host(VH_VSOCK_OP_REQUEST, 0, 0, 65536, 0);
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 1);
	/* push 5 GiB through a 64 KiB window: both counters wrap */
	for (i = 0; i < 81920; i++) {
		n = vh_vsock_conn_send(c, 65536, 0, &out);
		CHECK_EQ(n, 65536);
		total += (uint64_t)n;
		CHECK_EQ(vh_vsock_conn_send(c, 1, 0, &out), 0);
		in = from_host(VH_VSOCK_OP_CREDIT_UPDATE, 0, 0, 65536,
			       (uint32_t)total);
		CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 0);
		CHECK_EQ(vh_vsock_conn_tx_credit(c), 65536);

		in = from_host(VH_VSOCK_OP_RW, 65536, 0, 65536,
			       (uint32_t)total);
		CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 0);
		CHECK_EQ(vh_vsock_conn_rx_pending(c), 65536);
		CHECK_EQ(vh_vsock_conn_consumed(c, 65536), 1);
		CHECK_EQ(vh_vsock_conn_credit_update(c, &out), 0);
		CHECK_EQ(out.fwd_cnt, (uint32_t)total);
	}
	CHECK(total > 0x100000000ULL);
	vh_vsock_conn_unref(c);
}

static void test_seqpacket_flags(struct vh_ctx *ctx)
{
	struct vh_vsock_conn *c;
	struct vh_vsock_hdr out, in;

	CHECK_EQ(vh_vsock_conn_new(ctx, VH_VSOCK_TYPE_SEQPACKET, GCID, 5000,
				   HCID, 9999, 4096, &c),
		 0);
	in = from_host(VH_VSOCK_OP_REQUEST, 0, 0, 100, 0);
	in.type = VH_VSOCK_TYPE_SEQPACKET;
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 1);
	CHECK_EQ(out.type, VH_VSOCK_TYPE_SEQPACKET);
	/* a message's last packet carries EOM; it is never cut short */
	CHECK_EQ(vh_vsock_conn_send(c, 50, 0, &out), 50);
	CHECK_EQ(vh_vsock_conn_send(c, 60, VH_VSOCK_SEQ_EOM, &out), 0);
	CHECK_EQ(vh_vsock_conn_send(c, 50, VH_VSOCK_SEQ_EOM | VH_VSOCK_SEQ_EOR,
				    &out),
		 50);
	CHECK_EQ(out.flags, VH_VSOCK_SEQ_EOM | VH_VSOCK_SEQ_EOR);
	CHECK_EQ(vh_vsock_conn_send(c, 1, 4, &out), -EINVAL);
	/*
	 * A peer window of 4 GiB - 1: a message of 2^31 bytes fits it but
	 * not one packet (the length sent is at most 2^31 - 1): nothing is
	 * sent rather than a part marked EOM
	 */
	in = from_host(VH_VSOCK_OP_CREDIT_UPDATE, 0, 0, 0xffffffffu, 0);
	in.type = VH_VSOCK_TYPE_SEQPACKET;
	CHECK_EQ(vh_vsock_conn_input(c, &in, &out), 0);
	CHECK(vh_vsock_conn_tx_credit(c) > 0x80000000u);
	CHECK_EQ(vh_vsock_conn_send(c, 0x80000000u, VH_VSOCK_SEQ_EOM, &out),
		 0);
	CHECK_EQ(vh_vsock_conn_send(c, 0x80000000u, 0, &out), 0x7fffffff);
	CHECK_EQ(out.flags, 0);
	vh_vsock_conn_unref(c);
}

static void test_conn_args(struct vh_ctx *ctx)
{
	struct vh_vsock_conn *c = NULL;

	CHECK_EQ(vh_vsock_conn_new(ctx, VH_VSOCK_TYPE_STREAM, GCID, 1, HCID,
				   1, 0, &c),
		 -EINVAL);
	CHECK_EQ(vh_vsock_conn_new(ctx, 3, GCID, 1, HCID, 1, 10, &c),
		 -EINVAL);
	CHECK_EQ(vh_vsock_conn_new(ctx, VH_VSOCK_TYPE_STREAM, 1ULL << 40, 1,
				   HCID, 1, 10, &c),
		 -EINVAL);
	CHECK(c == NULL);
	CHECK(vh_vsock_conn_ref(NULL) == NULL);
	CHECK(vh_vsock_conn_unref(NULL) == NULL);
	CHECK_EQ(vh_vsock_conn_tx_credit(NULL), 0);
	CHECK_EQ(vh_vsock_set_guest_cid(NULL, 3), -EINVAL);
}

static void test_net_hdr_len(void)
{
	/* virtio 1.3, 5.1.6: num_buffers exists with VERSION_1 or MRG_RXBUF */
	CHECK_EQ(vh_net_hdr_len(0), 10);
	CHECK_EQ(vh_net_hdr_len(1ULL << VIRTIO_NET_F_MRG_RXBUF), 12);
	CHECK_EQ(vh_net_hdr_len(1ULL << VIRTIO_F_VERSION_1), 12);
	CHECK_EQ(vh_net_hdr_len(1ULL << VIRTIO_NET_F_CSUM), 10);
}

int main(void)
{
	struct vh_ctx *ctx;

	CHECK_EQ(vh_ctx_new(&ctx), 0);
	test_hdr_wire_format();
	test_hdr_hostile();
	test_conn_connect_and_credit(ctx);
	test_conn_accept_and_close(ctx);
	test_conn_counter_wrap(ctx);
	test_seqpacket_flags(ctx);
	test_conn_args(ctx);
	test_net_hdr_len();
	vh_ctx_unref(ctx);
	return 0;
}
