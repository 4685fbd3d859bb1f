// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user wire layer: every message of both rule tables round-trips over
 * a socketpair, fds pass (1..8) and never leak (9, fds where none belong,
 * truncated messages), malformed headers and payloads are refused, partial
 * I/O and EINTR are survived, and the socket modes work.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "libvhost-internal.h"
#include "vu-msg.h"
#include "test-util.h"

static struct vh_ctx *ctx;

static void sp(int sv[2])
{
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
}

static int new_efd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC);

	CHECK(fd >= 0);
	return fd;
}

static bool same_file(int a, int b)
{
	struct stat sa, sb;

	CHECK(fstat(a, &sa) == 0);
	CHECK(fstat(b, &sb) == 0);
	return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static void msleep(int ms)
{
	nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000L },
		  NULL);
}

/*
 * Build a message that satisfies rule (request side, or reply side):
 * a byte pattern, then the fields the checkers look at, then fds.
 */
static void make_valid(const struct vh_vu_msg_rule *r, bool be, bool reply,
		       struct vh_vu_msg *m)
{
	const struct vh_vu_size_rule *s = reply ? &r->rep : &r->req;
	uint32_t size = s->size_min, id = r->request;
	unsigned int i, nfds = 0;

	if (reply && r->reply != VH_VU_REPLY_ALWAYS) {
		vh_vu_msg_init(m, id, 8);
		vh_vu_msg_set_reply_u64(m, 0);
		return;
	}
	/* a little more than the minimum where a range allows it */
	if (s->kind == VH_VU_SIZE_RANGE && s->size_max > size)
		size = size + (s->size_max - size) / 2;
	vh_vu_msg_init(m, id, size);
	for (i = 0; i < size; i++)
		m->payload.raw[i] = (uint8_t)(i * 7 + id);
	if (reply)
		m->hdr.flags |= VH_VU_FLAG_REPLY;

	/* the fields the checkers read, set to valid values */
	if (!be && !reply && id == VH_VU_SET_MEM_TABLE) {
		m->hdr.size = 8 + 3 * sizeof(struct vh_vu_mem_region);
		m->payload.mem.nregions = 3;
		m->payload.mem.padding = 0;
	} else if (!be && (id == VH_VU_GET_CONFIG || id == VH_VU_SET_CONFIG)) {
		m->hdr.size = VH_VU_CONFIG_HDR_SIZE + 10;
		m->payload.config.offset = 4;
		m->payload.config.size = 10;
		m->payload.config.flags = 0;
	} else if (!be && !reply &&
		   (id == VH_VU_SET_VRING_KICK || id == VH_VU_SET_VRING_CALL ||
		    id == VH_VU_SET_VRING_ERR || id == VH_VU_VRING_KICK)) {
		m->payload.u64 = 5; /* index 5, an fd / num 0 */
	} else if (!be && !reply && id == VH_VU_SET_VRING_ENDIAN) {
		m->payload.state.num = 1;
	} else if (be && !reply && (id == VH_VU_BACKEND_VRING_CALL ||
				    id == VH_VU_BACKEND_VRING_ERR)) {
		m->payload.state.num = 0;
	} else if (be && !reply && id == VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG) {
		m->payload.area.u64 = 2; /* index 2, with an fd */
	} else if (!be && reply && id == VH_VU_GET_INFLIGHT_FD) {
		m->payload.inflight.mmap_size = 4096;
		nfds = 1;
	} else if (reply && ((!be && id == VH_VU_SET_DEVICE_STATE_FD) ||
			     (be && id == VH_VU_BACKEND_SHARED_OBJECT_LOOKUP))) {
		m->payload.u64 = 0; /* success, with an fd */
		nfds = 1;
	}

	switch (s->fds) {
	case VH_VU_FDS_ONE:
	case VH_VU_FDS_NOFD:
		nfds = 1;
		break;
	case VH_VU_FDS_REGIONS:
		nfds = m->payload.mem.nregions;
		break;
	default:
		break;
	}
	for (i = 0; i < nfds; i++)
		m->fds[m->nfds++] = new_efd();
}

static void roundtrip(const struct vh_vu_msg_rule *r, bool be, bool reply)
{
	struct vh_vu_msg out, in;
	int sv[2], before;
	unsigned int i;

	before = test_count_fds();
	sp(sv);
	make_valid(r, be, reply, &out);
	CHECK_EQ(vh_vu_msg_check(ctx, r, &out, reply), 0);
	CHECK_EQ(vh_vu_msg_send(ctx, sv[0], &out), 0);
	memset(&in, 0xa5, sizeof(in));
	CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &in), 0);
	CHECK_EQ(in.hdr.request, out.hdr.request);
	CHECK_EQ(in.hdr.flags, out.hdr.flags);
	CHECK_EQ(in.hdr.size, out.hdr.size);
	CHECK(memcmp(&in.payload, &out.payload, out.hdr.size) == 0);
	CHECK_EQ(in.nfds, out.nfds);
	for (i = 0; i < in.nfds; i++) {
		CHECK(in.fds[i] != out.fds[i]);
		CHECK(same_file(in.fds[i], out.fds[i]));
		CHECK(fcntl(in.fds[i], F_GETFD) & FD_CLOEXEC);
	}
	CHECK_EQ(vh_vu_msg_check(ctx, r, &in, reply), 0);
	vh_vu_msg_close_fds(&in);
	vh_vu_msg_close_fds(&out);
	close(sv[0]);
	close(sv[1]);
	CHECK_EQ(test_count_fds(), before);
}

static void test_tables(void)
{
	unsigned int id, n = 0;

	for (id = 1; id < VH_VU_REQUEST_MAX; id++) {
		const struct vh_vu_msg_rule *r = vh_vu_msg_rule(false, id);

		CHECK(r);
		CHECK_EQ(r->request, id);
		CHECK(vh_vu_request_name(id));
		CHECK(strcmp(vh_vu_request_name(id), r->name) == 0);
		roundtrip(r, false, false);
		roundtrip(r, false, true);
		n++;
	}
	for (id = 1; id < VH_VU_BACKEND_REQUEST_MAX; id++) {
		const struct vh_vu_msg_rule *r = vh_vu_msg_rule(true, id);

		CHECK(r);
		CHECK_EQ(r->request, id);
		CHECK(vh_vu_backend_request_name(id));
		roundtrip(r, true, false);
		roundtrip(r, true, true);
		n++;
	}
	CHECK_EQ(n, 43 + 8);
	CHECK(!vh_vu_msg_rule(false, 0));
	CHECK(!vh_vu_msg_rule(false, 44));
	CHECK(!vh_vu_msg_rule(true, 9));
	CHECK(!vh_vu_msg_rule(false, 0xffffffff));
	CHECK(!vh_vu_request_name(0));
	CHECK(strcmp(vh_vu_request_name(5), "SET_MEM_TABLE") == 0);
	CHECK(strcmp(vh_vu_backend_request_name(2), "CONFIG_CHANGE_MSG") == 0);
	CHECK(strcmp(vh_vu_msg_name(false, 99), "UNKNOWN") == 0);
	/* spot-check the gates against the checklist */
	CHECK_EQ(vh_vu_msg_rule(false, VH_VU_GET_PROTOCOL_FEATURES)->gate,
		 VH_VU_GATE_F_PROTOCOL);
	CHECK_EQ(vh_vu_msg_rule(false, VH_VU_ADD_MEM_REG)->gate,
		 VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS);
	CHECK_EQ(vh_vu_msg_rule(false, VH_VU_CHECK_DEVICE_STATE)->gate,
		 VH_VU_PROTOCOL_F_DEVICE_STATE);
	CHECK(!vh_vu_msg_gate_open(vh_vu_msg_rule(false, VH_VU_GET_QUEUE_NUM),
				   ~0ull, 0));
	CHECK(vh_vu_msg_gate_open(vh_vu_msg_rule(false, VH_VU_GET_QUEUE_NUM),
				  0, 1));
	CHECK(vh_vu_msg_gate_open(vh_vu_msg_rule(false, VH_VU_SET_OWNER), 0,
				  0));
	CHECK(!vh_vu_msg_gate_open(vh_vu_msg_rule(false, VH_VU_IOTLB_MSG), 0,
				   ~0ull));
}

/* ------------------------------------------------------------------------ */
/* the rule tables against the spec, written out here by hand              */
/* ------------------------------------------------------------------------ */
/*
 * Payload sizes, fds, gates and replies of every request, from QEMU's
 * docs/interop/vhost-user.rst ("Front-end message types", "Back-end message
 * types", the payload descriptions) and the project's checklist.  Nothing
 * here is taken from the library's table: every value is probed through
 * vh_vu_msg_check() and vh_vu_msg_gate_open(), so a wrong table entry
 * (size, fd rule, gate or reply) fails.
 *
 * Payload sizes (vhost-user.rst, "Payload"): u64 8; vring state 8; vring
 * address 40; memory region 32, single region 8 + 32 = 40, multiple regions
 * 4 + 4 + 32 per region (at most 8); log 8 + 8 = 16; IOTLB message
 * 8 + 8 + 8 + 1 + 1 = 26, 32 with the padding of struct vhost_iotlb_msg
 * that QEMU sends; config space 4 + 4 + 4 + up to 256; vring area
 * 8 + 8 + 8 = 24; inflight 8 + 8 + 2 + 2 = 20, 24 with the padding of
 * QEMU's VhostUserInflight; shared object: a 16-byte UUID; device state
 * transfer parameters 4 + 4 = 8.
 */
enum spec_fds {
	S_F0,    /* no fd */
	S_F1,    /* exactly one */
	S_FNOFD, /* one, or none with bit 8 (NOFD) of the leading u64 */
	S_FREG,  /* one per region of the table */
	S_FOPT,  /* none or one */
};

enum spec_reply { S_ACK, S_ALWAYS };

/* gates: a protocol feature bit, or one of these */
#define S_G_NONE (-1)
#define S_G_F30 (-2)    /* virtio feature bit 30, PROTOCOL_FEATURES */
#define S_G_ACCESS (-3) /* VIRTIO_F_ACCESS_PLATFORM (33), IOTLB */

/* a size range; step > 1: min + k * step only; empty: 0 as well */
struct spec_size {
	uint16_t min, max, step;
	uint8_t fds;
	bool empty;
};

struct spec_row {
	bool be; /* back-end request channel */
	uint32_t id;
	const char *name;
	int gate;
	uint8_t reply;
	struct spec_size req, rep; /* rep: S_ALWAYS only */
};

#define SZR(min, max, step, f) { min, max, step, f, false }
#define SZR_OR_EMPTY(min, max, step, f) { min, max, step, f, true }
#define EXACT(n, f) SZR(n, n, 1, f)
#define FE_ROW(id, name, gate, reply, req, rep) \
	{ false, id, name, gate, reply, req, rep }
#define BE_ROW(id, name, gate, reply, req, rep) \
	{ true, id, name, gate, reply, req, rep }
#define NOREPLY SZR(0, 0, 1, S_F0)

static const struct spec_row spec[] = {
	FE_ROW(1, "GET_FEATURES", S_G_NONE, S_ALWAYS, EXACT(0, S_F0),
	       EXACT(8, S_F0)),
	FE_ROW(2, "SET_FEATURES", S_G_NONE, S_ACK, EXACT(8, S_F0), NOREPLY),
	FE_ROW(3, "SET_OWNER", S_G_NONE, S_ACK, EXACT(0, S_F0), NOREPLY),
	FE_ROW(4, "RESET_OWNER", S_G_NONE, S_ACK, EXACT(0, S_F0), NOREPLY),
	FE_ROW(5, "SET_MEM_TABLE", S_G_NONE, S_ACK,
	       SZR(8, 8 + 8 * 32, 32, S_FREG), NOREPLY),
	/* the log description; QEMU and DPDK reply empty or with a u64 */
	FE_ROW(6, "SET_LOG_BASE", 1, S_ALWAYS, EXACT(16, S_F1),
	       SZR(0, 8, 8, S_F0)),
	FE_ROW(7, "SET_LOG_FD", 1, S_ACK, EXACT(0, S_F1), NOREPLY),
	FE_ROW(8, "SET_VRING_NUM", S_G_NONE, S_ACK, EXACT(8, S_F0), NOREPLY),
	FE_ROW(9, "SET_VRING_ADDR", S_G_NONE, S_ACK, EXACT(40, S_F0), NOREPLY),
	FE_ROW(10, "SET_VRING_BASE", S_G_NONE, S_ACK, EXACT(8, S_F0), NOREPLY),
	FE_ROW(11, "GET_VRING_BASE", S_G_NONE, S_ALWAYS, EXACT(8, S_F0),
	       EXACT(8, S_F0)),
	FE_ROW(12, "SET_VRING_KICK", S_G_NONE, S_ACK, EXACT(8, S_FNOFD),
	       NOREPLY),
	FE_ROW(13, "SET_VRING_CALL", S_G_NONE, S_ACK, EXACT(8, S_FNOFD),
	       NOREPLY),
	FE_ROW(14, "SET_VRING_ERR", S_G_NONE, S_ACK, EXACT(8, S_FNOFD),
	       NOREPLY),
	FE_ROW(15, "GET_PROTOCOL_FEATURES", S_G_F30, S_ALWAYS, EXACT(0, S_F0),
	       EXACT(8, S_F0)),
	FE_ROW(16, "SET_PROTOCOL_FEATURES", S_G_F30, S_ACK, EXACT(8, S_F0),
	       NOREPLY),
	FE_ROW(17, "GET_QUEUE_NUM", 0, S_ALWAYS, EXACT(0, S_F0),
	       EXACT(8, S_F0)),
	FE_ROW(18, "SET_VRING_ENABLE", S_G_F30, S_ACK, EXACT(8, S_F0),
	       NOREPLY),
	FE_ROW(19, "SEND_RARP", 2, S_ACK, EXACT(8, S_F0), NOREPLY),
	FE_ROW(20, "NET_SET_MTU", 4, S_ACK, EXACT(8, S_F0), NOREPLY),
	FE_ROW(21, "SET_BACKEND_REQ_FD", 5, S_ACK, EXACT(0, S_F1), NOREPLY),
	FE_ROW(22, "IOTLB_MSG", S_G_ACCESS, S_ALWAYS, EXACT(32, S_F0),
	       EXACT(8, S_F0)),
	FE_ROW(23, "SET_VRING_ENDIAN", 6, S_ACK, EXACT(8, S_F0), NOREPLY),
	/* config space: 12 bytes of header and 0..256 of data */
	/* "zero length of payload to indicate an error" */
	FE_ROW(24, "GET_CONFIG", 9, S_ALWAYS,
	       SZR(12, 12 + 256, 1, S_F0),
	       SZR_OR_EMPTY(12, 12 + 256, 1, S_F0)),
	FE_ROW(25, "SET_CONFIG", 9, S_ACK,
	       SZR(12, 12 + 256, 1, S_F0), NOREPLY),
	/* crypto session descriptions: opaque, a u64 session id first */
	FE_ROW(26, "CREATE_CRYPTO_SESSION", 7, S_ALWAYS,
	       SZR(8, 4096, 1, S_F0),
	       SZR(8, 4096, 1, S_F0)),
	FE_ROW(27, "CLOSE_CRYPTO_SESSION", 7, S_ACK, EXACT(8, S_F0), NOREPLY),
	/* the reply carries the userfaultfd (and a u64 in QEMU's) */
	FE_ROW(28, "POSTCOPY_ADVISE", 8, S_ALWAYS, EXACT(0, S_F0),
	       SZR(0, 8, 8, S_FOPT)),
	FE_ROW(29, "POSTCOPY_LISTEN", 8, S_ACK, EXACT(0, S_F0), NOREPLY),
	FE_ROW(30, "POSTCOPY_END", 8, S_ALWAYS, EXACT(0, S_F0),
	       EXACT(8, S_F0)),
	FE_ROW(31, "GET_INFLIGHT_FD", 12, S_ALWAYS, EXACT(24, S_F0),
	       EXACT(24, S_FOPT)),
	FE_ROW(32, "SET_INFLIGHT_FD", 12, S_ACK, EXACT(24, S_F1), NOREPLY),
	FE_ROW(33, "GPU_SET_SOCKET", S_G_NONE, S_ACK, EXACT(0, S_F1), NOREPLY),
	FE_ROW(34, "RESET_DEVICE", 13, S_ACK, EXACT(0, S_F0), NOREPLY),
	FE_ROW(35, "VRING_KICK", 14, S_ACK, EXACT(8, S_F0), NOREPLY),
	FE_ROW(36, "GET_MAX_MEM_SLOTS", 15, S_ALWAYS, EXACT(0, S_F0),
	       EXACT(8, S_F0)),
	FE_ROW(37, "ADD_MEM_REG", 15, S_ACK, EXACT(40, S_F1), NOREPLY),
	/* "MAY accept messages with one file descriptor" */
	FE_ROW(38, "REM_MEM_REG", 15, S_ACK, EXACT(40, S_FOPT), NOREPLY),
	FE_ROW(39, "SET_STATUS", 16, S_ACK, EXACT(8, S_F0), NOREPLY),
	FE_ROW(40, "GET_STATUS", 16, S_ALWAYS, EXACT(0, S_F0),
	       EXACT(8, S_F0)),
	/* the reply: the dma-buf fd on success, none otherwise */
	FE_ROW(41, "GET_SHARED_OBJECT", 18, S_ALWAYS, EXACT(16, S_F0),
	       SZR(0, 16, 1, S_FOPT)),
	/* reply u64: bits 0-7 error, bit 8 NOFD */
	FE_ROW(42, "SET_DEVICE_STATE_FD", 19, S_ALWAYS, EXACT(8, S_F1),
	       EXACT(8, S_FNOFD)),
	FE_ROW(43, "CHECK_DEVICE_STATE", 19, S_ALWAYS, EXACT(0, S_F0),
	       EXACT(8, S_F0)),

	BE_ROW(1, "IOTLB_MSG", S_G_ACCESS, S_ACK, EXACT(32, S_F0), NOREPLY),
	BE_ROW(2, "CONFIG_CHANGE_MSG", 9, S_ACK, EXACT(0, S_F0), NOREPLY),
	BE_ROW(3, "VRING_HOST_NOTIFIER_MSG", 11, S_ACK, EXACT(24, S_FNOFD),
	       NOREPLY),
	BE_ROW(4, "VRING_CALL", 14, S_ACK, EXACT(8, S_F0), NOREPLY),
	BE_ROW(5, "VRING_ERR", 14, S_ACK, EXACT(8, S_F0), NOREPLY),
	BE_ROW(6, "SHARED_OBJECT_ADD", 18, S_ACK, EXACT(16, S_F0), NOREPLY),
	BE_ROW(7, "SHARED_OBJECT_REMOVE", 18, S_ACK, EXACT(16, S_F0),
	       NOREPLY),
	/* reply: u64 0 and the fd, or non-zero and no fd */
	BE_ROW(8, "SHARED_OBJECT_LOOKUP", 18, S_ALWAYS, EXACT(16, S_F0),
	       EXACT(8, S_FOPT)),
};

static bool spec_size_ok(const struct spec_size *z, uint32_t size)
{
	if (size == 0 && z->empty)
		return true;
	if (size < z->min || size > z->max)
		return false;
	return (size - z->min) % z->step == 0;
}

/*
 * A message of size bytes for row (request or reply side) whose content
 * the spec calls valid for that size, with_fd: whether the content should
 * announce an fd where it can say either (NOFD bits, inflight area, the
 * lookup and device state results).  Returns the fds it should carry.
 */
static unsigned int spec_fill(const struct spec_row *row, bool reply,
			      uint32_t size, bool with_fd, struct vh_vu_msg *m)
{
	const struct spec_size *z = reply ? &row->rep : &row->req;
	unsigned int nfds = 0;

	vh_vu_msg_init(m, row->id, size);
	memset(&m->payload, 0, sizeof(m->payload));
	if (reply)
		m->hdr.flags |= VH_VU_FLAG_REPLY;
	if (!row->be && !reply && row->id == 5 && size >= 8)
		m->payload.mem.nregions = (size - 8) / 32;
	if (!row->be && (row->id == 24 || row->id == 25) && size >= 12)
		m->payload.config.size = size - 12;
	if (!row->be && reply && row->id == 31 && with_fd)
		m->payload.inflight.mmap_size = 4096;
	if (row->be && reply && row->id == 8 && !with_fd)
		m->payload.u64 = 1; /* a failed lookup */
	switch (z->fds) {
	case S_F1:
		nfds = 1;
		break;
	case S_FNOFD:
		/* the NOFD bit (8) of the leading u64 */
		if (!with_fd)
			m->payload.u64 |= 1u << 8;
		nfds = with_fd;
		break;
	case S_FREG:
		nfds = size >= 8 ? (size - 8) / 32 : 0;
		break;
	case S_FOPT:
		nfds = with_fd;
		break;
	default:
		break;
	}
	return nfds;
}

static int spec_check(const struct spec_row *row, const struct vh_vu_msg_rule *r,
		      bool reply, uint32_t size, bool with_fd, int fd_delta)
{
	struct vh_vu_msg m;
	unsigned int i, nfds;
	int ret;

	nfds = spec_fill(row, reply, size, with_fd, &m);
	if (fd_delta < 0 && nfds == 0)
		return -EBADMSG; /* nothing to take away: as refused */
	nfds = (unsigned int)((int)nfds + fd_delta);
	if (nfds > VH_VU_MAX_FDS)
		return -EBADMSG;
	for (i = 0; i < nfds; i++)
		m.fds[m.nfds++] = new_efd();
	ret = vh_vu_msg_check(ctx, r, &m, reply);
	vh_vu_msg_close_fds(&m);
	return ret;
}

/* The one place the test reads a field of the rule: its reply kind. */
static bool rule_replies_always(const struct vh_vu_msg_rule *r)
{
	return r->reply == VH_VU_REPLY_ALWAYS;
}

static void spec_side(const struct spec_row *row,
		      const struct vh_vu_msg_rule *r, bool reply)
{
	const struct spec_size *z = reply ? &row->rep : &row->req;
	uint32_t size, good = UINT32_MAX;

	/* every size up to 300 bytes, and the largest payloads */
	for (size = 0; size <= VH_VU_PAYLOAD_MAX; size++) {
		bool want = spec_size_ok(z, size);
		int got;

		if (size > 300 && size < VH_VU_PAYLOAD_MAX - 8)
			continue;
		/* the natural fds: one where NOFD could say none */
		got = spec_check(row, r, reply, size,
				 z->fds == S_FNOFD || z->fds == S_F1, 0);
		if ((got == 0) != want) {
			fprintf(stderr, "%s %s %s: %u bytes %s, spec says %s\n",
				row->be ? "back-end" : "front-end", row->name,
				reply ? "reply" : "request", size,
				got == 0 ? "accepted" : "refused",
				want ? "valid" : "invalid");
			CHECK(0);
		}
		if (want && good == UINT32_MAX)
			good = size;
		/* a mem table of two regions: fds to count */
		if (want && z->fds == S_FREG && size == 8 + 2 * 32)
			good = size;
	}
	CHECK(good != UINT32_MAX);

	/* the fds, at a valid size */
	switch (z->fds) {
	case S_F0:
		CHECK_EQ(spec_check(row, r, reply, good, false, 1), -EBADMSG);
		break;
	case S_F1:
		CHECK_EQ(spec_check(row, r, reply, good, true, 0), 0);
		CHECK_EQ(spec_check(row, r, reply, good, true, -1), -EBADMSG);
		CHECK_EQ(spec_check(row, r, reply, good, true, 1), -EBADMSG);
		break;
	case S_FNOFD:
		CHECK_EQ(spec_check(row, r, reply, good, true, 0), 0);
		CHECK_EQ(spec_check(row, r, reply, good, false, 0), 0);
		CHECK_EQ(spec_check(row, r, reply, good, true, -1), -EBADMSG);
		CHECK_EQ(spec_check(row, r, reply, good, false, 1), -EBADMSG);
		break;
	case S_FREG:
		CHECK_EQ(spec_check(row, r, reply, good, false, 0), 0);
		CHECK_EQ(spec_check(row, r, reply, good, false, -1), -EBADMSG);
		CHECK_EQ(spec_check(row, r, reply, good, false, 1), -EBADMSG);
		break;
	case S_FOPT:
		CHECK_EQ(spec_check(row, r, reply, good, false, 0), 0);
		CHECK_EQ(spec_check(row, r, reply, z->max, true, 0), 0);
		CHECK_EQ(spec_check(row, r, reply, z->max, true, 1), -EBADMSG);
		break;
	}
}

static void test_spec_table(void)
{
	unsigned int i, nfe = 0, nbe = 0;

	for (i = 0; i < VH_ARRAY_SIZE(spec); i++) {
		const struct spec_row *row = &spec[i];
		const struct vh_vu_msg_rule *r = vh_vu_msg_rule(row->be, row->id);
		const uint64_t f30 = 1ull << 30, access = 1ull << 33;

		CHECK(r);
		if (strcmp(vh_vu_msg_name(row->be, row->id), row->name)) {
			fprintf(stderr, "request %u is %s, spec says %s\n",
				row->id, vh_vu_msg_name(row->be, row->id),
				row->name);
			CHECK(0);
		}
		*(row->be ? &nbe : &nfe) += 1;

		/* the gate: open with exactly its bit, closed without it */
		switch (row->gate) {
		case S_G_NONE:
			CHECK(vh_vu_msg_gate_open(r, 0, 0));
			break;
		case S_G_F30:
			CHECK(vh_vu_msg_gate_open(r, f30, 0));
			CHECK(!vh_vu_msg_gate_open(r, ~f30, ~0ull));
			break;
		case S_G_ACCESS:
			CHECK(vh_vu_msg_gate_open(r, access, 0));
			CHECK(!vh_vu_msg_gate_open(r, ~access, ~0ull));
			break;
		default:
			CHECK(vh_vu_msg_gate_open(r, 0, 1ull << row->gate));
			CHECK(!vh_vu_msg_gate_open(r, ~0ull,
						   ~(1ull << row->gate)));
			break;
		}

		spec_side(row, r, false);
		if (row->reply == S_ALWAYS) {
			CHECK(rule_replies_always(r));
			spec_side(row, r, true);
		} else {
			/* REPLY_ACK: the reply is a u64 and nothing else */
			struct spec_row ack = *row;

			CHECK(!rule_replies_always(r));
			ack.rep = (struct spec_size)EXACT(8, S_F0);
			spec_side(&ack, r, true);
		}
	}
	/* every request of both channels is in the table above */
	CHECK_EQ(nfe, 43);
	CHECK_EQ(nbe, 8);
	CHECK(!vh_vu_msg_rule(false, 44));
	CHECK(!vh_vu_msg_rule(true, 9));
	printf("rule tables: %u front-end and %u back-end requests match the spec\n",
	       nfe, nbe);
}

/* Raw sendmsg with nfds fds attached to len bytes. */
static void raw_send(int sock, const void *buf, size_t len, const int *fds,
		     unsigned int nfds)
{
	char ctl[CMSG_SPACE(16 * sizeof(int))];
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;

	memset(ctl, 0, sizeof(ctl));
	if (nfds) {
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	}
	CHECK(sendmsg(sock, &mh, MSG_NOSIGNAL) == (ssize_t)len);
}

static void test_fds(void)
{
	const struct vh_vu_msg_rule *r;
	struct vh_vu_msg out, in;
	int sv[2], fds[9], before, i;
	struct vh_vu_hdr h = { VH_VU_SET_OWNER, VH_VU_VERSION, 0 };

	before = test_count_fds();
	sp(sv);

	/* 8 fds: a full mem table */
	vh_vu_msg_init(&out, VH_VU_SET_MEM_TABLE,
		       sizeof(struct vh_vu_mem_table));
	out.payload.mem.nregions = 8;
	for (i = 0; i < 8; i++) {
		out.payload.mem.regions[i].guest_addr = (uint64_t)i << 30;
		out.payload.mem.regions[i].size = 1 << 20;
		out.fds[out.nfds++] = new_efd();
	}
	CHECK_EQ(vh_vu_msg_send(ctx, sv[0], &out), 0);
	CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &in), 0);
	CHECK_EQ(in.nfds, 8);
	for (i = 0; i < 8; i++)
		CHECK(same_file(in.fds[i], out.fds[i]));
	r = vh_vu_msg_rule(false, VH_VU_SET_MEM_TABLE);
	CHECK_EQ(vh_vu_msg_check(ctx, r, &in, false), 0);
	/* region count and fd count must agree */
	close(in.fds[7]);
	in.nfds = 7;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &in, false), -EBADMSG);
	vh_vu_msg_close_fds(&in);

	/* 9 fds: the library refuses to send them ... */
	out.nfds = 9;
	CHECK_EQ(vh_vu_msg_send(ctx, sv[0], &out), -EINVAL);
	for (i = 0; i < 8; i++)
		fds[i] = out.fds[i];
	fds[8] = new_efd();
	/* ... and a peer that does gets -EPROTO, with nothing installed */
	raw_send(sv[0], &h, sizeof(h), fds, 9);
	for (i = 0; i < 9; i++)
		close(fds[i]);
	out.nfds = 0;
	CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &in), -EPROTO);
	CHECK_EQ(in.nfds, 0);
	close(sv[0]);
	close(sv[1]);
	CHECK_EQ(test_count_fds(), before);

	/* an fd on a message that takes none: received, refused, closed */
	sp(sv);
	fds[0] = new_efd();
	h.request = VH_VU_GET_FEATURES;
	raw_send(sv[0], &h, sizeof(h), fds, 1);
	close(fds[0]);
	CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &in), 0);
	CHECK_EQ(in.nfds, 1);
	CHECK_EQ(vh_vu_msg_check(ctx, vh_vu_msg_rule(false, VH_VU_GET_FEATURES),
				 &in, false),
		 -EBADMSG);
	vh_vu_msg_close_fds(&in);
	CHECK_EQ(in.fds[0], -1);

	/* KICK with NOFD but an fd anyway, and without NOFD but no fd */
	r = vh_vu_msg_rule(false, VH_VU_SET_VRING_KICK);
	vh_vu_msg_init(&out, VH_VU_SET_VRING_KICK, 8);
	out.payload.u64 = 1 | VH_VU_VRING_NOFD;
	out.fds[out.nfds++] = new_efd();
	CHECK_EQ(vh_vu_msg_check(ctx, r, &out, false), -EBADMSG);
	vh_vu_msg_close_fds(&out);
	out.payload.u64 = 1;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &out, false), -EBADMSG);
	out.payload.u64 = 1 | VH_VU_VRING_NOFD;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &out, false), 0);
	out.payload.u64 = 1 | (1u << 9); /* reserved bit */
	CHECK_EQ(vh_vu_msg_check(ctx, r, &out, false), -EBADMSG);

	/* REM_MEM_REG: one stray fd tolerated (the caller closes it), two not */
	r = vh_vu_msg_rule(false, VH_VU_REM_MEM_REG);
	vh_vu_msg_init(&out, VH_VU_REM_MEM_REG, 40);
	CHECK_EQ(vh_vu_msg_check(ctx, r, &out, false), 0);
	out.fds[out.nfds++] = new_efd();
	CHECK_EQ(vh_vu_msg_check(ctx, r, &out, false), 0);
	out.fds[out.nfds++] = new_efd();
	CHECK_EQ(vh_vu_msg_check(ctx, r, &out, false), -EBADMSG);
	vh_vu_msg_close_fds(&out);

	/* fds in the middle of a payload are collected too */
	{
		char buf[12 + 8];
		struct vh_vu_hdr k = { VH_VU_SET_VRING_CALL, VH_VU_VERSION,
				       8 };
		uint64_t v = 0;

		memcpy(buf, &k, sizeof(k));
		memcpy(buf + 12, &v, 8);
		fds[0] = new_efd();
		raw_send(sv[0], buf, 12, NULL, 0);
		raw_send(sv[0], buf + 12, 8, fds, 1);
		CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &in), 0);
		CHECK_EQ(in.nfds, 1);
		CHECK(same_file(in.fds[0], fds[0]));
		close(fds[0]);
		vh_vu_msg_close_fds(&in);
	}
	close(sv[0]);
	close(sv[1]);
	CHECK_EQ(test_count_fds(), before);
}

static void test_bad_headers(void)
{
	struct vh_vu_msg in;
	struct vh_vu_hdr h;
	int sv[2], fd, before = test_count_fds();
	char junk[64];

	/* EOF before anything: ECONNRESET */
	sp(sv);
	close(sv[0]);
	CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &in), -ECONNRESET);
	close(sv[1]);

	/* nothing yet on a non-blocking socket: EAGAIN, nothing consumed */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK,
			 0, sv) == 0);
	CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &in), -EAGAIN);
	close(sv[0]);
	close(sv[1]);

	/* truncated header, with an fd riding on it: EPROTO, fd closed */
	sp(sv);
	h = (struct vh_vu_hdr){ VH_VU_SET_OWNER, VH_VU_VERSION, 0 };
	fd = new_efd();
	raw_send(sv[0], &h, 6, &fd, 1);
	close(fd);
	close(sv[0]);
	CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &in), -EPROTO);
	CHECK_EQ(in.nfds, 0);
	close(sv[1]);
	CHECK_EQ(test_count_fds(), before);

	/* truncated payload */
	sp(sv);
	h = (struct vh_vu_hdr){ VH_VU_SET_FEATURES, VH_VU_VERSION, 8 };
	memcpy(junk, &h, sizeof(h));
	fd = new_efd();
	raw_send(sv[0], junk, 12 + 4, &fd, 1);
	close(fd);
	close(sv[0]);
	CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &in), -EPROTO);
	close(sv[1]);
	CHECK_EQ(test_count_fds(), before);

	/* bad versions: 0, 2, 3 */
	for (unsigned int v = 0; v < 4; v++) {
		if (v == VH_VU_VERSION)
			continue;
		sp(sv);
		h = (struct vh_vu_hdr){ VH_VU_GET_FEATURES,
					v | VH_VU_FLAG_NEED_REPLY, 0 };
		fd = new_efd();
		raw_send(sv[0], &h, sizeof(h), &fd, 1);
		close(fd);
		CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &in), -EPROTO);
		close(sv[0]);
		close(sv[1]);
	}
	CHECK_EQ(test_count_fds(), before);

	/* oversized payload: refused before reading it */
	sp(sv);
	h = (struct vh_vu_hdr){ VH_VU_SET_CONFIG, VH_VU_VERSION,
				VH_VU_PAYLOAD_MAX + 1 };
	raw_send(sv[0], &h, sizeof(h), NULL, 0);
	CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &in), -EPROTO);
	close(sv[0]);
	close(sv[1]);

	/* the largest payload is fine */
	sp(sv);
	{
		struct vh_vu_msg out;

		vh_vu_msg_init(&out, VH_VU_CREATE_CRYPTO_SESSION,
			       VH_VU_PAYLOAD_MAX);
		memset(out.payload.raw, 0x5a, VH_VU_PAYLOAD_MAX);
		CHECK_EQ(vh_vu_msg_send(ctx, sv[0], &out), 0);
		CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &in), 0);
		CHECK_EQ(in.hdr.size, VH_VU_PAYLOAD_MAX);
		CHECK_EQ(in.payload.raw[VH_VU_PAYLOAD_MAX - 1], 0x5a);
		out.hdr.size = VH_VU_PAYLOAD_MAX + 1;
		CHECK_EQ(vh_vu_msg_send(ctx, sv[0], &out), -EINVAL);
	}
	close(sv[0]);
	close(sv[1]);
	CHECK_EQ(test_count_fds(), before);
}

static void test_sizes(void)
{
	struct vh_vu_msg m;
	const struct vh_vu_msg_rule *r;

	r = vh_vu_msg_rule(false, VH_VU_SET_FEATURES);
	vh_vu_msg_init(&m, VH_VU_SET_FEATURES, 4);
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), -EBADMSG);
	m.hdr.size = 16;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), -EBADMSG);
	m.hdr.size = 8;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), 0);
	/* a reply-ack reply is a u64 */
	m.hdr.size = 0;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, true), -EBADMSG);

	r = vh_vu_msg_rule(false, VH_VU_SET_MEM_TABLE);
	vh_vu_msg_init(&m, VH_VU_SET_MEM_TABLE, 8 + 32);
	m.payload.mem.nregions = 2; /* says 2, carries 1 */
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), -EBADMSG);
	m.payload.mem.nregions = 9;
	m.hdr.size = 8 + 8 * 32;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), -EBADMSG);
	m.payload.mem.nregions = 0xffffffffu; /* 8 + n * 32 wraps */
	m.hdr.size = 8 - 32;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), -EBADMSG);
	m.payload.mem.nregions = 0;
	m.hdr.size = 8;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), 0);

	r = vh_vu_msg_rule(false, VH_VU_SET_CONFIG);
	vh_vu_msg_init(&m, VH_VU_SET_CONFIG, 12 + 256);
	m.payload.config.size = 256;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), 0);
	m.payload.config.offset = 1; /* offset + size beyond 256 */
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), -EBADMSG);
	m.payload.config.offset = 0;
	m.payload.config.size = 257;
	m.hdr.size = 12 + 257;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), -EBADMSG);
	m.payload.config.size = 8;
	m.hdr.size = 12 + 4; /* says 8, carries 4 */
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), -EBADMSG);
	/* GET_CONFIG reply may be empty: the back-end's error */
	r = vh_vu_msg_rule(false, VH_VU_GET_CONFIG);
	m.hdr.size = 0;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, true), 0);

	r = vh_vu_msg_rule(false, VH_VU_SET_VRING_ENDIAN);
	vh_vu_msg_init(&m, VH_VU_SET_VRING_ENDIAN, 8);
	m.payload.state.num = 2;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), -EBADMSG);

	r = vh_vu_msg_rule(false, VH_VU_SET_DEVICE_STATE_FD);
	vh_vu_msg_init(&m, VH_VU_SET_DEVICE_STATE_FD, 8);
	m.payload.u64 = 5; /* an error, and an fd */
	m.fds[m.nfds++] = new_efd();
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, true), -EBADMSG);
	vh_vu_msg_close_fds(&m);
	m.payload.u64 = 5 | VH_VU_DEVICE_STATE_NOFD;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, true), 0);

	r = vh_vu_msg_rule(true, VH_VU_BACKEND_VRING_CALL);
	vh_vu_msg_init(&m, VH_VU_BACKEND_VRING_CALL, 8);
	m.payload.state.num = 1;
	CHECK_EQ(vh_vu_msg_check(ctx, r, &m, false), -EBADMSG);
}

/* ---- partial writes: a slow reader behind a tiny socket buffer ---- */
struct slow_reader {
	int sock;
	struct vh_vu_msg msg;
	int ret;
};

static void *slow_reader_fn(void *arg)
{
	struct slow_reader *s = arg;

	msleep(100);
	s->ret = vh_vu_msg_recv(ctx, s->sock, &s->msg);
	return NULL;
}

/* ---- partial reads: a writer that trickles bytes ---- */
struct trickle {
	int sock;
	const uint8_t *buf;
	size_t len;
	int fd;
	int delay_ms;
};

static void *trickle_fn(void *arg)
{
	struct trickle *t = arg;
	size_t i;

	msleep(t->delay_ms);
	for (i = 0; i < t->len; i++) {
		raw_send(t->sock, t->buf + i, 1, i == 0 ? &t->fd : NULL,
			 i == 0 && t->fd >= 0 ? 1 : 0);
		if (i % 5 == 0)
			msleep(1);
	}
	return NULL;
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void test_partial_and_eintr(void)
{
	struct slow_reader s;
	struct vh_vu_msg out;
	struct trickle t;
	pthread_t th;
	int sv[2], sz = 1024, i;
	uint8_t buf[12 + 64];
	struct vh_vu_hdr h = { VH_VU_SET_CONFIG, VH_VU_VERSION, 64 };
	struct sigaction sa;
	struct itimerval it;
	sigset_t set, old;

	/* writer: non-blocking with a 1 KiB buffer, message of 4 KiB + fd */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)) == 0);
	CHECK(setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz)) == 0);
	CHECK(fcntl(sv[0], F_SETFL, O_NONBLOCK) == 0);
	s.sock = sv[1];
	CHECK(pthread_create(&th, NULL, slow_reader_fn, &s) == 0);
	vh_vu_msg_init(&out, VH_VU_CREATE_CRYPTO_SESSION, VH_VU_PAYLOAD_MAX);
	for (i = 0; i < (int)VH_VU_PAYLOAD_MAX; i++)
		out.payload.raw[i] = (uint8_t)(i * 13);
	out.fds[out.nfds++] = new_efd();
	CHECK_EQ(vh_vu_msg_send(ctx, sv[0], &out), 0);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_EQ(s.ret, 0);
	CHECK_EQ(s.msg.hdr.size, VH_VU_PAYLOAD_MAX);
	CHECK(memcmp(s.msg.payload.raw, out.payload.raw, VH_VU_PAYLOAD_MAX) ==
	      0);
	CHECK_EQ(s.msg.nfds, 1);
	CHECK(same_file(s.msg.fds[0], out.fds[0]));
	vh_vu_msg_close_fds(&s.msg);
	vh_vu_msg_close_fds(&out);
	close(sv[0]);
	close(sv[1]);

	/* reader: bytes arrive one by one (fd on the first) */
	memcpy(buf, &h, sizeof(h));
	for (i = 0; i < 64; i++)
		buf[12 + i] = (uint8_t)(0x80 + i);
	{
		uint32_t cfg_off = 0, cfg_size = 52; /* 12 + 52 = 64 */

		memcpy(buf + 12, &cfg_off, 4);
		memcpy(buf + 16, &cfg_size, 4);
	}
	sp(sv);
	t = (struct trickle){ sv[0], buf, sizeof(buf), new_efd(), 0 };
	CHECK(pthread_create(&th, NULL, trickle_fn, &t) == 0);
	CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &s.msg), 0);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_EQ(s.msg.hdr.size, 64);
	CHECK(memcmp(s.msg.payload.raw + 12, buf + 24, 52) == 0);
	CHECK_EQ(s.msg.nfds, 1);
	vh_vu_msg_close_fds(&s.msg);
	close(t.fd);

	/*
	 * EINTR: a SIGALRM (no SA_RESTART) hits this thread every 10 ms
	 * while it waits for a message the trickler sends after 150 ms.
	 */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
	sigemptyset(&set);
	sigaddset(&set, SIGALRM);
	CHECK(pthread_sigmask(SIG_BLOCK, &set, &old) == 0);
	t = (struct trickle){ sv[0], buf, sizeof(buf), -1, 150 };
	CHECK(pthread_create(&th, NULL, trickle_fn, &t) == 0);
	CHECK(pthread_sigmask(SIG_UNBLOCK, &set, NULL) == 0);
	it.it_interval = (struct timeval){ 0, 10000 };
	it.it_value = (struct timeval){ 0, 10000 };
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	CHECK_EQ(vh_vu_msg_recv(ctx, sv[1], &s.msg), 0);
	memset(&it, 0, sizeof(it));
	CHECK(setitimer(ITIMER_REAL, &it, NULL) == 0);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_EQ(s.msg.hdr.request, VH_VU_SET_CONFIG);
	CHECK(memcmp(s.msg.payload.raw, buf + 12, 64) == 0);
	close(sv[0]);
	close(sv[1]);
}

/* ---- socket modes ---- */
struct late_listener {
	char path[256];
	int fd;
};

static void *late_listen_fn(void *arg)
{
	struct late_listener *l = arg;

	msleep(150);
	l->fd = vh_vu_socket_listen(ctx, l->path, 4, false);
	return NULL;
}

static void test_sockets(void)
{
	char dir[] = "/tmp/test-vu-msg.XXXXXX";
	char path[256], longpath[200], fitpath[108]; /* sun_path */
	struct late_listener ll;
	struct vh_vu_msg out, in;
	struct vh_vu_sock_id id;
	struct test_fdset fdset0;
	struct stat st, st2;
	int lfd, cfd, afd, sv[2], p[2], before = test_count_fds(), n, i;
	pthread_t th;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vu.sock", dir);
	test_fdset_snapshot(&fdset0);

	/* nothing there: a single try fails, retries time out */
	CHECK_EQ(vh_vu_socket_connect(ctx, path, 0), -ENOENT);
	CHECK_EQ(vh_vu_socket_connect(ctx, path, 100), -ETIMEDOUT);

	lfd = vh_vu_socket_listen(ctx, path, 4, false);
	CHECK(lfd >= 0);
	CHECK(fcntl(lfd, F_GETFD) & FD_CLOEXEC);
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode));
	cfd = vh_vu_socket_connect(ctx, path, 1000);
	CHECK(cfd >= 0);
	CHECK(fcntl(cfd, F_GETFD) & FD_CLOEXEC);
	afd = vh_vu_socket_accept(ctx, lfd, true);
	CHECK(afd >= 0);
	CHECK(fcntl(afd, F_GETFL) & O_NONBLOCK);
	/* the library's three sockets, open: each close-on-exec */
	CHECK_NEW_FDS_CLOEXEC(&fdset0, 3);
	vh_vu_msg_init(&out, VH_VU_GET_FEATURES, 0);
	CHECK_EQ(vh_vu_msg_send(ctx, cfd, &out), 0);
	CHECK_EQ(vh_vu_msg_recv(ctx, afd, &in), 0);
	CHECK_EQ(in.hdr.request, VH_VU_GET_FEATURES);
	close(cfd);
	close(afd);

	/*
	 * A second listener does not take a live socket (its probe
	 * connection aside, the first keeps the path) ...
	 */
	CHECK(stat(path, &st) == 0);
	CHECK_EQ(vh_vu_socket_listen(ctx, path, 4, true), -EADDRINUSE);
	CHECK(stat(path, &st2) == 0 && st2.st_ino == st.st_ino);
	CHECK(fcntl(lfd, F_SETFL, O_NONBLOCK) == 0);
	while ((cfd = vh_vu_socket_accept(ctx, lfd, true)) >= 0)
		close(cfd); /* the probe */
	cfd = vh_vu_socket_connect(ctx, path, 1000);
	CHECK(cfd >= 0);
	afd = vh_vu_socket_accept(ctx, lfd, true);
	CHECK(afd >= 0);
	close(afd);
	close(cfd);
	/* ... and replaces a stale one atomically, once nobody listens */
	close(lfd);
	afd = vh_vu_socket_listen_id(ctx, path, 4, true, &id);
	CHECK(afd >= 0);
	CHECK(stat(path, &st2) == 0 && st2.st_ino == id.ino);
	CHECK(st2.st_ino != st.st_ino);
	cfd = vh_vu_socket_connect(ctx, path, 1000);
	CHECK(cfd >= 0);
	close(cfd);
	cfd = vh_vu_socket_accept(ctx, afd, true);
	CHECK(cfd >= 0); /* the new listener got it */
	close(cfd);
	/*
	 * The socket file is unlinked by its own listener only: not once
	 * another has taken the path (here after an unlink by hand)
	 */
	CHECK(unlink(path) == 0);
	lfd = vh_vu_socket_listen(ctx, path, 4, true);
	CHECK(lfd >= 0);
	CHECK_EQ(vh_vu_socket_unlink_id(ctx, path, &id), -ESTALE);
	CHECK(stat(path, &st2) == 0 && S_ISSOCK(st2.st_mode));
	close(afd);
	close(lfd);
	/* its own: unlinked (before it is closed, as a back-end does) */
	afd = vh_vu_socket_listen_id(ctx, path, 4, true, &id);
	CHECK(afd >= 0);
	CHECK_EQ(vh_vu_socket_unlink_id(ctx, path, &id), 0);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);
	close(afd);
	/* what is not a socket is never replaced */
	afd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(afd >= 0);
	CHECK(write(afd, "data", 4) == 4);
	close(afd);
	CHECK_EQ(vh_vu_socket_listen(ctx, path, 4, true), -EEXIST);
	CHECK(stat(path, &st2) == 0 && S_ISREG(st2.st_mode) &&
	      st2.st_size == 4);
	CHECK(unlink(path) == 0);

	/* connect retries until the server shows up */
	snprintf(ll.path, sizeof(ll.path), "%s", path);
	ll.fd = -1;
	CHECK(pthread_create(&th, NULL, late_listen_fn, &ll) == 0);
	cfd = vh_vu_socket_connect(ctx, path, 3000);
	CHECK(pthread_join(th, NULL) == 0);
	CHECK(cfd >= 0);
	CHECK(ll.fd >= 0);
	close(cfd);
	close(ll.fd);
	CHECK(unlink(path) == 0);

	/*
	 * "<100-byte directory>/s" fits sun_path, the temporary name
	 * beside it does not: bound directly, and a stale socket there is
	 * replaced too
	 */
	n = snprintf(fitpath, sizeof(fitpath), "%s/", dir);
	memset(fitpath + n, 'f', 100 - (size_t)n);
	fitpath[100] = '\0';
	CHECK(mkdir(fitpath, 0700) == 0);
	strcat(fitpath, "/s");
	for (i = 0; i < 2; i++) {
		lfd = vh_vu_socket_listen_id(ctx, fitpath, 4, true, &id);
		CHECK(lfd >= 0);
		CHECK_EQ(vh_vu_socket_listen(ctx, fitpath, 4, true),
			 -EADDRINUSE);
		cfd = vh_vu_socket_connect(ctx, fitpath, 1000);
		CHECK(cfd >= 0);
		close(cfd);
		close(lfd); /* stale: the second round replaces it */
	}
	CHECK_EQ(vh_vu_socket_unlink_id(ctx, fitpath, &id), 0);
	fitpath[100] = '\0';
	CHECK(rmdir(fitpath) == 0);

	/* a path that does not fit sun_path */
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	CHECK_EQ(vh_vu_socket_listen(ctx, longpath, 1, false), -ENAMETOOLONG);
	CHECK_EQ(vh_vu_socket_connect(ctx, longpath, 0), -ENAMETOOLONG);

	/* adopt: a connected unix stream socket, nothing else */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK_EQ(vh_vu_socket_adopt(ctx, sv[0]), 0);
	CHECK(fcntl(sv[0], F_GETFD) & FD_CLOEXEC);
	close(sv[0]);
	close(sv[1]);
	CHECK(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK_EQ(vh_vu_socket_adopt(ctx, sv[0]), -EPROTOTYPE);
	close(sv[0]);
	close(sv[1]);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK_EQ(vh_vu_socket_adopt(ctx, p[0]), -ENOTSOCK);
	close(p[0]);
	close(p[1]);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK_EQ(vh_vu_socket_adopt(ctx, lfd), -ENOTCONN);
	close(lfd);
	CHECK_EQ(vh_vu_socket_adopt(ctx, -1), -EBADF);

	CHECK(rmdir(dir) == 0);
	CHECK_EQ(test_count_fds(), before);
}

int main(void)
{
	CHECK_EQ(vh_ctx_new(&ctx), 0);
	test_spec_table();
	test_tables();
	test_fds();
	test_bad_headers();
	test_sizes();
	test_partial_and_eintr();
	test_sockets();
	vh_ctx_unref(ctx);
	return 0;
}
