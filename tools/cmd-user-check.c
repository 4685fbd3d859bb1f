// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhostctl user check SOCKET: a conformance run against any vhost-user
 * back-end.  It walks the handshake and each optional path the back-end
 * advertises, then sends malformed messages, each on a fresh connection,
 * and checks that the back-end refuses them (error reply or closed
 * connection, per ../shared/spec "Rules a back-end must enforce") and goes
 * on serving the next connection.
 *
 * Results: pass; warn (the back-end survived but did not refuse as the spec
 * says); fail (a required step failed, a reply was malformed, or the
 * back-end stopped serving); skip (not advertised).  The exit status is 1
 * if anything failed.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/mman.h>
#include <unistd.h>

#include "libvhost-private.h"
#include "libvhost-vu.h"
#include "check.h"
#include "vhostctl.h"

/* features the check never acks (it sets up no IOTLB) */
#define CHECK_NO_FEATURES (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM)

#define CHECK_TIMEOUT_MS 2000
#define CHECK_MEM_SIZE (4u << 20)
#define CHECK_RING_GPA 0x100000u
#define CHECK_RING_NUM 64

enum result { R_PASS, R_WARN, R_FAIL, R_SKIP };
static const char *const result_names[] = { "pass", "warn", "fail", "skip" };

struct checker {
	struct vhc *v;
	const char *path;
	unsigned int counts[4];
	uint64_t features, protocol;
	bool got_features; /* GET_FEATURES answered (0 is an answer) */
	/* check_paths() passed these: refused later, they fail */
	bool negotiated, ring_setup;
	bool dead; /* a malformed message killed the back-end */
};

__attribute__((format(printf, 4, 5))) static void
report(struct checker *c, const char *name, enum result r, const char *fmt,
       ...)
{
	struct vhc_out *o = &c->v->out;
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	c->counts[r]++;
	out_open_obj(o, NULL);
	out_str(o, "name", NULL, name);
	out_str(o, "result", NULL, result_names[r]);
	out_str(o, "detail", NULL, detail);
	out_close_obj(o);
	out_text(o, "%-4s  %-30s %s\n", r == R_PASS ? "PASS" : r == R_WARN ? "WARN" :
		 r == R_FAIL ? "FAIL" : "SKIP", name, detail);
}

/* err < 0: fail with its message; else fail if bad, pass otherwise. */
__attribute__((format(printf, 5, 6))) static void
report_rc(struct checker *c, const char *name, int err, bool bad,
	  const char *fmt, ...)
{
	char detail[200];
	va_list ap;

	if (err < 0) {
		report(c, name, R_FAIL, "%s", strerror(-err));
		return;
	}
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	report(c, name, bad ? R_FAIL : R_PASS, "%s", detail);
}

static int fresh(struct checker *c, struct vh_vu_frontend **fe)
{
	int err = vh_vu_frontend_new(c->v->ctx, fe);

	if (err < 0)
		return err;
	vh_vu_frontend_set_timeout(*fe, CHECK_TIMEOUT_MS);
	err = vh_vu_frontend_connect(*fe, c->path, CHECK_TIMEOUT_MS);
	if (err < 0)
		*fe = vh_vu_frontend_unref(*fe);
	return err;
}

static bool has_pf(const struct checker *c, unsigned int bit)
{
	return c->protocol & (1ull << bit);
}

/* Is the back-end still answering on a new connection? */
static bool still_serving(struct checker *c)
{
	struct vh_vu_frontend *fe = NULL;
	uint64_t f;
	bool ok;

	/*
	 * A back-end serving one connection at a time needs a moment: fresh()
	 * retries the connection for CHECK_TIMEOUT_MS, and a dead back-end
	 * costs no more than that.
	 */
	if (fresh(c, &fe) < 0)
		return false;
	ok = vh_vu_frontend_get_features(fe, &f) == 0 && f == c->features;
	vh_vu_frontend_unref(fe);
	return ok;
}

/* ------------------------------------------------------------------------ */
/* the handshake and advertised paths                                       */
/* ------------------------------------------------------------------------ */
static void check_paths(struct checker *c)
{
	struct vh_vu_frontend *fe = NULL;
	struct vh_mem *mem = NULL;
	struct vh_drvq *vq = NULL;
	uint64_t x, neg_f = 0, neg_p = 0;
	int kick = -1, call = -1, err;

	err = fresh(c, &fe);
	if (err < 0) {
		report(c, "connect", R_FAIL, "%s", strerror(-err));
		return;
	}
	report(c, "connect", R_PASS, "%s", c->path);

	err = vh_vu_frontend_get_features(fe, &c->features);
	if (err < 0) {
		report(c, "GET_FEATURES", R_FAIL, "%s", strerror(-err));
		goto out;
	}
	c->got_features = true;
	report(c, "GET_FEATURES", R_PASS, "0x%016llx",
	       (unsigned long long)c->features);
	if (!(c->features & (1ull << VH_VU_F_PROTOCOL_FEATURES))) {
		report(c, "GET_PROTOCOL_FEATURES", R_SKIP,
		       "feature bit 30 not offered");
	} else {
		err = vh_vu_frontend_get_protocol_features(fe, &c->protocol);
		report_rc(c, "GET_PROTOCOL_FEATURES", err, false, "0x%llx",
			  (unsigned long long)c->protocol);
	}
	/*
	 * Negotiate everything offered, as a front-end that supports all
	 * of it; the requests below are gated on what is negotiated.  Not
	 * ACCESS_PLATFORM: the check gives the back-end no IOTLB, and its
	 * ring addresses are guest addresses, not IOVAs.
	 */
	err = vh_vu_frontend_negotiate(fe, c->features & ~CHECK_NO_FEATURES,
				       c->protocol, &neg_f, &neg_p);
	report_rc(c, "negotiate", err, false, "%s",
		  c->protocol ? "SET_OWNER, SET_FEATURES, SET_PROTOCOL_FEATURES" :
				"SET_OWNER, SET_FEATURES");
	if (err)
		goto out;
	c->negotiated = true;

	if (has_pf(c, VH_VU_PROTOCOL_F_MQ)) {
		err = vh_vu_frontend_get_queue_num(fe, &x);
		report_rc(c, "GET_QUEUE_NUM", err, !x, "%llu queues",
			  (unsigned long long)x);
	} else {
		report(c, "GET_QUEUE_NUM", R_SKIP, "MQ not offered");
	}

	if (has_pf(c, VH_VU_PROTOCOL_F_CONFIG)) {
		uint8_t cfg[8];

		err = vh_vu_frontend_get_config(fe, 0, cfg, sizeof(cfg));
		report_rc(c, "GET_CONFIG", err, false, "%s",
			  "8 bytes at offset 0");
	} else {
		report(c, "GET_CONFIG", R_SKIP, "CONFIG not offered");
	}

	if (has_pf(c, VH_VU_PROTOCOL_F_STATUS)) {
		uint8_t st = 0;

		err = vh_vu_frontend_set_status(fe, 1 | 2); /* ACK | DRIVER */
		if (!err)
			err = vh_vu_frontend_get_status(fe, &st);
		report_rc(c, "SET_STATUS/GET_STATUS", err, (st & 3) != 3,
			  "status 0x%x", st);
	} else {
		report(c, "SET_STATUS/GET_STATUS", R_SKIP, "STATUS not offered");
	}

	/* guest memory: one memfd region */
	err = vh_mem_new(c->v->ctx, &mem);
	if (!err)
		err = vh_mem_add_memfd(mem, 0, CHECK_MEM_SIZE, NULL);
	if (err) {
		report(c, "memory", R_FAIL, "cannot allocate: %s", strerror(-err));
		goto out;
	}
	if (has_pf(c, VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS)) {
		err = vh_vu_frontend_get_max_mem_slots(fe, &x);
		report_rc(c, "GET_MAX_MEM_SLOTS", err, !x, "%llu slots",
			  (unsigned long long)x);
		err = vh_vu_frontend_add_mem_reg(fe, mem, 0);
		if (!err)
			err = vh_vu_frontend_rem_mem_reg(fe, mem, 0);
		report_rc(c, "ADD_MEM_REG/REM_MEM_REG", err, false, "%s",
			  "one 4 MiB region");
	} else {
		report(c, "ADD_MEM_REG/REM_MEM_REG", R_SKIP,
		       "CONFIGURE_MEM_SLOTS not offered");
	}
	err = vh_vu_frontend_share_mem(fe, mem);
	report_rc(c, "share memory", err, false, "%s", "4 MiB memfd region");
	if (err)
		goto out;

	/* one ring, set up and stopped again */
	kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	err = vh_drvq_new(c->v->ctx, mem, 0, CHECK_RING_NUM, CHECK_RING_GPA, &vq);
	if (!err)
		err = vh_drvq_set_features(vq, neg_f);
	if (!err)
		err = vh_vu_frontend_setup_vq(fe, 0, vq, kick, call);
	/*
	 * the ring is packed when the back-end offers VIRTIO_F_RING_PACKED;
	 * SET_VRING_ENABLE goes only with bit 30 ("Ring states")
	 */
	report_rc(c, "vring setup", err, false,
		  "NUM, BASE, ADDR, CALL, KICK%s on ring 0%s",
		  neg_f & (1ull << VH_VU_F_PROTOCOL_FEATURES) ? ", ENABLE" : "",
		  neg_f & (1ull << VH_VU_VIRTIO_F_RING_PACKED) ? " (packed)" :
								 "");
	if (!err)
		c->ring_setup = true;
	if (!err) {
		uint32_t base = 1;
		bool bad;

		err = vh_vu_frontend_get_vring_base(fe, 0, &base);
		/*
		 * untouched: split index 0; packed positions 0, wrap counters
		 * 1 ("vring descriptor indices for packed virtqueues"), the
		 * used half possibly left out (DPDK)
		 */
		if (neg_f & (1ull << VH_VU_VIRTIO_F_RING_PACKED))
			bad = (base & 0xffff) != 0x8000 ||
			      (base >> 16 != 0 && base >> 16 != 0x8000);
		else
			bad = base != 0;
		report_rc(c, "GET_VRING_BASE", err, bad,
			  "ring 0 stopped at %#x", base);
	}

	if (has_pf(c, VH_VU_PROTOCOL_F_LOG_SHMFD)) {
		err = vh_vu_frontend_enable_log(fe, mem);
		report_rc(c, "SET_LOG_BASE", err, false, "%s",
			  "dirty log mapped");
	} else {
		report(c, "SET_LOG_BASE", R_SKIP, "LOG_SHMFD not offered");
	}

	if (has_pf(c, VH_VU_PROTOCOL_F_INFLIGHT_SHMFD)) {
		struct vh_vu_inflight inf;
		int fd = -1;

		err = vh_vu_frontend_get_inflight_fd(fe, 1, CHECK_RING_NUM,
						     &inf, &fd);
		report_rc(c, "GET_INFLIGHT_FD", err,
			  fd < 0 || !inf.mmap_size, "%llu bytes",
			  (unsigned long long)inf.mmap_size);
		if (fd >= 0)
			close(fd);
	} else {
		report(c, "GET_INFLIGHT_FD", R_SKIP, "INFLIGHT_SHMFD not offered");
	}

	if (has_pf(c, VH_VU_PROTOCOL_F_BACKEND_REQ)) {
		err = vh_vu_frontend_set_backend_req_fd(fe);
		report_rc(c, "SET_BACKEND_REQ_FD", err, false, "%s",
			  "channel handed over");
	} else {
		report(c, "SET_BACKEND_REQ_FD", R_SKIP, "BACKEND_REQ not offered");
	}

	if (has_pf(c, VH_VU_PROTOCOL_F_RESET_DEVICE)) {
		err = vh_vu_frontend_reset_device(fe);
		report_rc(c, "RESET_DEVICE", err, false, "%s", "accepted");
	} else {
		report(c, "RESET_DEVICE", R_SKIP, "RESET_DEVICE not offered");
	}
out:
	vh_drvq_unref(vq);
	vh_vu_frontend_unref(fe);
	vh_mem_unref(mem);
	if (kick >= 0)
		close(kick);
	if (call >= 0)
		close(call);
}

/* ------------------------------------------------------------------------ */
/* malformed messages                                                       */
/* ------------------------------------------------------------------------ */
struct bad_msg {
	const char *name;
	uint32_t request;
	uint32_t flags;     /* with the version bits */
	uint32_t size;      /* header size field */
	uint32_t send_len;  /* payload bytes actually sent */
	bool open_first;    /* negotiate first (for gated requests) */
	bool with_fd;       /* attach an fd the message does not take */
	/* first a memory table and SET_VRING_NUM 64 on ring 0 */
	bool ring_ready;
	/* negotiated without VIRTIO_F_RING_PACKED (the rule is split's) */
	bool split;
	void (*fill)(union vh_vu_payload *p);
};

static void fill_ring_big_index(union vh_vu_payload *p)
{
	p->state.index = 1000;
	p->state.num = 64;
}

static void fill_ring_bad_num(union vh_vu_payload *p)
{
	p->state.index = 0;
	p->state.num = 100; /* not a power of two (2.7; packed may, 2.8) */
}

static void fill_ring_huge_num(union vh_vu_payload *p)
{
	p->state.index = 0;
	p->state.num = 65536; /* above 32768 */
}

static void fill_mem_too_many(union vh_vu_payload *p)
{
	p->mem.nregions = 9;
}

static void fill_mem_no_fds(union vh_vu_payload *p)
{
	p->mem.nregions = 1;
	p->mem.regions[0].size = 4096;
	p->mem.regions[0].user_addr = 0x10000;
}

static void fill_addr_unmapped(union vh_vu_payload *p)
{
	p->addr.index = 0;
	p->addr.desc = 0xdead0000;
	p->addr.used = 0xdead1000;
	p->addr.avail = 0xdead2000;
}

#define V1 VH_VU_VERSION
#define NR VH_VU_FLAG_NEED_REPLY
static const struct bad_msg bad_msgs[] = {
	{ "unknown request 999", 999, V1 | NR, 8, 8, false, false, false, false, NULL },
	{ "version 2 header", VH_VU_GET_FEATURES, 2, 0, 0, false, false, false, false, NULL },
	{ "SET_FEATURES size 4", VH_VU_SET_FEATURES, V1 | NR, 4, 4, true, false, false, false, NULL },
	{ "size field 1 GiB", VH_VU_SET_FEATURES, V1 | NR, 1u << 30, 8, false, false, false, false, NULL },
	{ "GET_FEATURES with an fd", VH_VU_GET_FEATURES, V1, 0, 0, false, true, false, false, NULL },
	{ "SET_VRING_NUM index 1000", VH_VU_SET_VRING_NUM, V1 | NR, 8, 8, true, false, false, false, fill_ring_big_index },
	{ "SET_VRING_NUM num 100", VH_VU_SET_VRING_NUM, V1 | NR, 8, 8, true, false, false, true, fill_ring_bad_num },
	{ "SET_VRING_NUM num 65536", VH_VU_SET_VRING_NUM, V1 | NR, 8, 8, true, false, false, false, fill_ring_huge_num },
	{ "SET_MEM_TABLE 9 regions", VH_VU_SET_MEM_TABLE, V1 | NR, 8 + 32 * 8, 8 + 32 * 8, true, false, false, false, fill_mem_too_many },
	{ "SET_MEM_TABLE without fds", VH_VU_SET_MEM_TABLE, V1 | NR, 8 + 32, 8 + 32, true, false, false, false, fill_mem_no_fds },
	{ "SET_VRING_ADDR unmapped", VH_VU_SET_VRING_ADDR, V1 | NR, 40, 40, true, false, false, false, fill_addr_unmapped },
	/* with a memory table and the size known the address can be checked */
	{ "SET_VRING_ADDR outside memory", VH_VU_SET_VRING_ADDR, V1 | NR, 40, 40, true, false, true, false, fill_addr_unmapped },
};

/*
 * Read one reply as it comes, fds and all, whatever it claims: the header,
 * then up to the payload size it gives (at most a full payload), until
 * CHECK_TIMEOUT_MS.  reply->hdr.size stays what the header said; *got is
 * the payload bytes that came.  0, -ETIMEDOUT, -ECONNRESET or -errno.
 */
static int recv_reply_raw(int fd, struct vh_vu_msg *reply, uint32_t *got)
{
	union {
		char buf[CMSG_SPACE(VH_VU_MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	uint8_t buf[VH_VU_HDR_SIZE + VH_VU_PAYLOAD_MAX] = { 0 };
	size_t have = 0, want = VH_VU_HDR_SIZE;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	/* one deadline for the whole reply: a trickle does not extend it */
	uint64_t deadline = chk_now_ms() + CHECK_TIMEOUT_MS;

	reply->nfds = 0;
	*got = 0;
	while (have < want) {
		struct iovec iov = { buf + have, want - have };
		struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
				     .msg_control = ctl.buf,
				     .msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *cm;
		ssize_t n;
		uint64_t now = chk_now_ms();
		int r = now < deadline ? poll(&pfd, 1, (int)(deadline - now)) :
					 0;

		/*
		 * Part of a reply is judged by its size; part of a header
		 * is malformed outright (there is no size to judge)
		 */
		if (r == 0)
			return !have			? -ETIMEDOUT :
			       have < VH_VU_HDR_SIZE ? -EPROTO :
						       0;
		if (r < 0)
			return -errno;
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			return -errno;
		for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
			size_t i, k;

			if (cm->cmsg_level != SOL_SOCKET ||
			    cm->cmsg_type != SCM_RIGHTS)
				continue;
			k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			for (i = 0; i < k; i++) {
				int f;

				memcpy(&f, CMSG_DATA(cm) + i * sizeof(int),
				       sizeof(f));
				if (reply->nfds < VH_VU_MAX_FDS)
					reply->fds[reply->nfds++] = f;
				else
					close(f);
			}
		}
		if (n == 0)
			return !have			? -ECONNRESET :
			       have < VH_VU_HDR_SIZE ? -EPROTO :
						       0;
		have += (size_t)n;
		if (have == VH_VU_HDR_SIZE) {
			memcpy(&reply->hdr, buf, VH_VU_HDR_SIZE);
			want += reply->hdr.size < VH_VU_PAYLOAD_MAX ?
					reply->hdr.size :
					VH_VU_PAYLOAD_MAX;
		}
	}
	*got = (uint32_t)(have - VH_VU_HDR_SIZE);
	memcpy(&reply->payload, buf + VH_VU_HDR_SIZE, *got);
	return 0;
}

/*
 * A header whose size field claims more than is sent (more than any message
 * can carry): written by hand, since the wire layer refuses to.  The answer
 * is an error reply, a close, or nothing.
 */
static int send_lying_header(struct vh_vu_frontend *fe,
			     const struct vh_vu_msg *msg, uint32_t len,
			     struct vh_vu_msg *reply)
{
	int fd = vh_vu_frontend_get_fd(fe);
	uint8_t buf[VH_VU_HDR_SIZE + 64];
	uint32_t got;
	int r;

	if (len > sizeof(buf) - VH_VU_HDR_SIZE)
		return -EINVAL;
	memcpy(buf, &msg->hdr, VH_VU_HDR_SIZE);
	memcpy(buf + VH_VU_HDR_SIZE, &msg->payload, len);
	if (send(fd, buf, VH_VU_HDR_SIZE + len, MSG_NOSIGNAL) < 0)
		return -errno;
	r = recv_reply_raw(fd, reply, &got);
	/* a reply cut short is as malformed as one of the wrong size */
	if (r == 0 && got < reply->hdr.size)
		reply->hdr.size = VH_VU_PAYLOAD_MAX + 1;
	return r;
}

/*
 * Is reply the well-formed u64 answer to request ("Message types": every
 * request sent here is answered, if at all, with a u64 and no fds)?  If
 * not, why, in buf.
 */
static bool malformed_reply(uint32_t request, const struct vh_vu_msg *r,
			    char *buf, size_t len)
{
	if (r->hdr.request == request && (r->hdr.flags & VH_VU_FLAG_REPLY) &&
	    (r->hdr.flags & VH_VU_FLAG_VERSION_MASK) == VH_VU_VERSION &&
	    r->hdr.size == 8 && r->nfds == 0)
		return false;
	snprintf(buf, len,
		 "malformed reply (request %u, flags %#x, %u bytes, %u fds)",
		 r->hdr.request, r->hdr.flags, r->hdr.size, r->nfds);
	return true;
}

static void check_bad(struct checker *c, const struct bad_msg *b)
{
	struct vh_vu_frontend *fe = NULL;
	struct vh_mem *mem = NULL;
	struct vh_vu_msg msg, reply;
	enum result r;
	const char *how;
	char why[96];
	int err;

	err = fresh(c, &fe);
	if (err < 0) {
		report(c, b->name, R_FAIL, "cannot connect: %s", strerror(-err));
		return;
	}
	if (b->open_first &&
	    (err = vh_vu_frontend_negotiate(
		     fe,
		     c->features & ~CHECK_NO_FEATURES &
			     ~(b->split ? 1ull << VH_VU_VIRTIO_F_RING_PACKED :
					  0),
		     c->protocol, NULL, NULL)) < 0) {
		/* refused on a fresh connection after it passed: a failure */
		report(c, b->name, c->negotiated ? R_FAIL : R_SKIP,
		       "handshake %s: %s",
		       c->negotiated ? "refused on a fresh connection" :
				       "failed",
		       strerror(-err));
		vh_vu_frontend_unref(fe);
		return;
	}
	if (b->ring_ready) {
		err = vh_mem_new(c->v->ctx, &mem);
		if (!err)
			err = vh_mem_add_memfd(mem, 0, CHECK_MEM_SIZE, NULL);
		if (!err)
			err = vh_vu_frontend_set_mem_table(fe, mem);
		if (!err)
			err = vh_vu_frontend_set_vring_num(fe, 0,
							   CHECK_RING_NUM);
		if (err) {
			report(c, b->name, c->ring_setup ? R_FAIL : R_SKIP,
			       "setup refused%s: %s",
			       c->ring_setup ? " on a fresh connection" : "",
			       strerror(-err));
			vh_vu_frontend_unref(fe);
			vh_mem_unref(mem);
			return;
		}
	}
	memset(&msg, 0, sizeof(msg));
	memset(&reply, 0, sizeof(reply));
	msg.hdr.request = b->request;
	msg.hdr.flags = b->flags;
	msg.hdr.size = b->size;
	if (b->fill)
		b->fill(&msg.payload);
	if (b->with_fd) {
		msg.fds[0] = eventfd(0, EFD_CLOEXEC);
		msg.nfds = msg.fds[0] >= 0;
	}
	if (b->send_len != b->size)
		err = send_lying_header(fe, &msg, b->send_len, &reply);
	else
		err = vh_vu_frontend_send_raw(fe, &msg, &reply);
	if (msg.nfds)
		close(msg.fds[0]);
	for (unsigned int i = 0; i < reply.nfds && i < VH_VU_MAX_FDS; i++)
		close(reply.fds[i]);

	if (err == -ECONNRESET || err == -EPIPE) {
		r = R_PASS;
		how = "connection closed";
	} else if (err == -EPROTO) {
		/* the wire layer refused the reply's header, fds or length */
		r = R_FAIL;
		how = "malformed reply (bad header, too many fds or cut short)";
	} else if (err == 0 && !(reply.hdr.flags & VH_VU_FLAG_REPLY) &&
		   reply.hdr.size <= VH_VU_PAYLOAD_MAX && reply.nfds == 0) {
		/* a message of its own, not a reply: says nothing of ours */
		r = R_WARN;
		how = "answered with a non-reply message";
	} else if (err == 0 &&
		   malformed_reply(b->request, &reply, why, sizeof(why))) {
		r = R_FAIL;
		how = why;
	} else if (err == 0 && (reply.hdr.flags & VH_VU_FLAG_REPLY) &&
		   reply.hdr.size == 8 && reply.payload.u64 != 0 &&
		   b->request != VH_VU_GET_FEATURES) {
		r = R_PASS;
		how = "error reply";
	} else if (err == -ETIMEDOUT) {
		r = R_WARN;
		how = "no answer (neither an error reply nor a close)";
	} else if (err == 0 && b->request == VH_VU_GET_FEATURES &&
		   b->with_fd) {
		/* the message is valid apart from the fd: an answer is fine */
		r = R_PASS;
		how = "answered, stray fd ignored";
	} else if (err == 0) {
		r = R_WARN;
		how = "accepted (success reply)";
	} else {
		r = R_PASS;
		how = strerror(-err);
	}
	vh_vu_frontend_unref(fe);
	vh_mem_unref(mem);
	if (!still_serving(c)) {
		report(c, b->name, R_FAIL, "%.120s; back-end no longer serving",
		       how);
		c->dead = true;
		return;
	}
	report(c, b->name, r, "%s; still serving", how);
}

static void check_usage(FILE *f)
{
	fputs("Usage: vhostctl user check SOCKET\n"
	      "  Conformance run against a vhost-user back-end: handshake,\n"
	      "  each advertised protocol path, and malformed messages on\n"
	      "  fresh connections (a malformed reply fails).  Exit status 1\n"
	      "  if a check failed.\n",
	      f);
}

int user_check(struct vhc *v, int argc, char **argv)
{
	struct checker c = { .v = v };
	struct vhc_out *o = &v->out;

	if (vhc_wants_help(argc, argv)) {
		check_usage(stdout);
		return VHC_EXIT_OK;
	}
	if (argc != 2 || vhc_is_help(argv[1])) {
		check_usage(argc == 2 ? stdout : stderr);
		return argc == 2 ? VHC_EXIT_OK : VHC_EXIT_USAGE;
	}
	c.path = argv[1];
	{
		struct vh_vu_frontend *fe = NULL;
		int err = vhc_user_connect(v, c.path, CHECK_TIMEOUT_MS, &fe);

		if (err < 0)
			return vhc_user_exit_for(err);
		vh_vu_frontend_unref(fe);
	}

	out_open_obj(o, NULL);
	out_str(o, "socket", "vhost-user conformance run against %s\n", c.path);
	out_open_arr(o, "checks");
	check_paths(&c);
	for (size_t i = 0; i < sizeof(bad_msgs) / sizeof(bad_msgs[0]); i++) {
		/* each gated on the features (0 is an answer: go on) */
		if (!c.got_features) {
			report(&c, bad_msgs[i].name, R_SKIP,
			       "GET_FEATURES failed");
			continue;
		}
		if (c.dead) {
			report(&c, bad_msgs[i].name, R_SKIP,
			       "back-end no longer serving");
			continue;
		}
		check_bad(&c, &bad_msgs[i]);
	}
	out_close_arr(o);
	out_u64(o, "passed", "%llu passed", c.counts[R_PASS]);
	out_u64(o, "warnings", ", %llu warnings", c.counts[R_WARN]);
	out_u64(o, "failed", ", %llu failed", c.counts[R_FAIL]);
	out_u64(o, "skipped", ", %llu skipped\n", c.counts[R_SKIP]);
	out_close_obj(o);
	out_end(o);
	return c.counts[R_FAIL] ? VHC_EXIT_FAIL : VHC_EXIT_OK;
}
