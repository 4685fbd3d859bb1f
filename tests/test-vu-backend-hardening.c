// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user back-end against a hostile front-end: every rule of the
 * checklist's "Rules a backend must enforce" that is the protocol
 * handler's, one case each.  A bad message must close the connection (or
 * get an error reply where REPLY_ACK allows one), never crash, and leave no
 * fd and no mapping behind; the back-end then serves the next connection.
 * Repeated GET_INFLIGHT_FD / SET_MEM_TABLE / SET_VRING_NUM leak nothing.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "libvhost.h"
#include "vu-msg.h"
#include "test-util.h"
#include "test-vu-backend-util.h"

#define P(x) (1ull << VH_VU_PROTOCOL_F_##x)
#define NQ 4
#define ALL_PROTO                                                           \
	(P(MQ) | P(LOG_SHMFD) | P(REPLY_ACK) | P(BACKEND_REQ) | P(CONFIG) | \
	 P(INFLIGHT_SHMFD) | P(RESET_DEVICE) | P(INBAND_NOTIFICATIONS) |    \
	 P(CONFIGURE_MEM_SLOTS) | P(STATUS))

static int cfg_get(struct vh_vu_backend *be, void *data, uint32_t off,
		   void *buf, uint32_t size)
{
	memset(buf, 0x5a, size);
	return 0;
}

static const struct vh_vu_device_ops ops = { .size = sizeof(ops),
					     .get_config = cfg_get };

static const struct vh_vu_device dev = {
	.size = sizeof(dev),
	.features = 1ull << VH_VU_VIRTIO_F_VERSION_1,
	.protocol_features = ALL_PROTO,
	.num_queues = NQ,
	.max_queue_size = 1024,
	.max_mem_slots = 4,
	.config_size = 16,
};

/* Front-end memory shared by the cases (mapped before any count). */
static struct fe_mem fm, fm2;
static struct fe F;
static int cases;

static void fe_open(uint64_t proto, bool mem)
{
	fe_connect(&F);
	fe_negotiate(&F, proto);
	if (mem)
		fe_set_mem(&F, &fm);
}

/*
 * Run one hostile case: fds and maps must be back to what they were, the
 * connection closed, and the back-end must accept the next connection.
 */
#define BAD_CASE(name, proto, mem, ...)                                        \
	do {                                                                   \
		int fds0 = 0, maps0 = 0, rep;                                  \
		/* the first run warms allocators up; the second is counted */ \
		for (rep = 0; rep < 2; rep++) {                                \
			fds0 = test_count_fds();                               \
			maps0 = test_count_maps();                             \
			fe_open(proto, mem);                                   \
			__VA_ARGS__;                                           \
			fe_pump(&F);                                           \
			if (vh_vu_backend_connected(F.be)) {                   \
				fprintf(stderr, "%s: connection still open\n", \
					name);                                 \
				exit(1);                                       \
			}                                                      \
			CHECK(fe_closed(&F));                                  \
			close(F.sock);                                         \
			F.sock = -1;                                           \
		}                                                              \
		if (test_count_fds() != fds0 || test_count_maps() != maps0) {  \
			fprintf(stderr, "%s: fds %d -> %d, maps %d -> %d\n",   \
				name, fds0, test_count_fds(), maps0,           \
				test_count_maps());                            \
			exit(1);                                               \
		}                                                              \
		cases++;                                                       \
	} while (0)

static void send_state(uint32_t req, uint32_t idx, uint32_t num)
{
	struct vh_vu_vring_state s = { idx, num };

	fe_send_raw(&F, req, 0, &s, 8, NULL, 0);
}

/* Send a message with nfds fresh eventfds (closed on our side after). */
static void send_with_efds(uint32_t req, uint32_t flags, const void *p,
			   uint32_t size, unsigned int nfds)
{
	int fds[VH_VU_MAX_FDS] = { -1, -1, -1, -1, -1, -1, -1, -1 };
	unsigned int i;

	for (i = 0; i < nfds; i++)
		fds[i] = test_efd();
	fe_send_raw(&F, req, flags, p, size, fds, nfds);
	for (i = 0; i < nfds; i++)
		close(fds[i]);
}

/* Kinds of fd that are not what a message takes. */
enum other_fd { FD_PIPE_READ, FD_PIPE_WRITE, FD_MEMFD, FD_SOCKET };

/* Send a message with one fd of that kind (closed on our side after). */
static void send_with_fd(uint32_t req, const void *p, uint32_t size,
			 enum other_fd kind)
{
	int fds[2], fd;

	switch (kind) {
	case FD_PIPE_READ:
	case FD_PIPE_WRITE:
		CHECK(pipe2(fds, O_CLOEXEC) == 0);
		fd = fds[kind == FD_PIPE_READ ? 0 : 1];
		close(fds[kind == FD_PIPE_READ ? 1 : 0]);
		break;
	case FD_MEMFD:
		fd = memfd_create("other", MFD_CLOEXEC);
		break;
	default:
		CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
				 fds) == 0);
		fd = fds[0];
		close(fds[1]);
		break;
	}
	CHECK(fd >= 0);
	fe_send_raw(&F, req, 0, p, size, &fd, 1);
	close(fd);
}

static void send_mem(const struct vh_vu_mem_region *r, unsigned int n,
		     const int *fds, unsigned int nfds)
{
	struct vh_vu_mem_table t;

	memset(&t, 0, sizeof(t));
	t.nregions = n;
	memcpy(t.regions, r, n * sizeof(*r));
	fe_send_raw(&F, VH_VU_SET_MEM_TABLE, 0, &t, 8 + 32 * n, fds, nfds);
}

static struct vh_vu_mem_region good_region(void)
{
	struct vh_vu_mem_region r = { fm.gpa, fm.size, fm.uva, 0 };

	return r;
}

/* ------------------------------------------------------------------------ */
static void test_vring_rules(void)
{
	struct vh_vu_vring_addr a;
	uint64_t v;
	uint32_t reqs[] = { VH_VU_SET_VRING_NUM, VH_VU_SET_VRING_BASE,
			    VH_VU_GET_VRING_BASE, VH_VU_SET_VRING_ENABLE,
			    VH_VU_VRING_KICK };
	unsigned int i;

	/* every vring index is below the number of queues */
	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		BAD_CASE("index >= queues", ALL_PROTO, false,
			 send_state(reqs[i], NQ,
				    reqs[i] == VH_VU_SET_VRING_NUM ? 64 : 0));
		BAD_CASE("index 2^32-1", ALL_PROTO, false,
			 send_state(reqs[i], 0xffffffffu, 0));
	}
	v = NQ;
	BAD_CASE("KICK index", ALL_PROTO, false,
		 send_with_efds(VH_VU_SET_VRING_KICK, 0, &v, 8, 1));
	BAD_CASE("CALL index", ALL_PROTO, false,
		 send_with_efds(VH_VU_SET_VRING_CALL, 0, &v, 8, 1));
	BAD_CASE("ERR index", ALL_PROTO, false,
		 send_with_efds(VH_VU_SET_VRING_ERR, 0, &v, 8, 1));
	/*
	 * kick, call and error fds are eventfds ("Communication"): a pipe
	 * (whose write end could block, or raise SIGPIPE once its reader is
	 * gone), a memfd or a socket is refused
	 */
	v = 0;
	BAD_CASE("KICK fd a pipe", ALL_PROTO, false,
		 send_with_fd(VH_VU_SET_VRING_KICK, &v, 8, FD_PIPE_READ));
	BAD_CASE("CALL fd a pipe", ALL_PROTO, false,
		 send_with_fd(VH_VU_SET_VRING_CALL, &v, 8, FD_PIPE_WRITE));
	BAD_CASE("ERR fd a pipe", ALL_PROTO, false,
		 send_with_fd(VH_VU_SET_VRING_ERR, &v, 8, FD_PIPE_WRITE));
	BAD_CASE("CALL fd a memfd", ALL_PROTO, false,
		 send_with_fd(VH_VU_SET_VRING_CALL, &v, 8, FD_MEMFD));
	BAD_CASE("KICK fd a socket", ALL_PROTO, false,
		 send_with_fd(VH_VU_SET_VRING_KICK, &v, 8, FD_SOCKET));
	/* reserved bits in the KICK payload */
	v = 1ull << 9;
	BAD_CASE("KICK reserved bits", ALL_PROTO, false,
		 send_with_efds(VH_VU_SET_VRING_KICK, 0, &v, 8, 1));
	/* NOFD with an fd, no NOFD without one */
	v = VH_VU_VRING_NOFD;
	BAD_CASE("NOFD + fd", ALL_PROTO, false,
		 send_with_efds(VH_VU_SET_VRING_CALL, 0, &v, 8, 1));
	v = 0;
	BAD_CASE("no fd, no NOFD", ALL_PROTO, false,
		 send_with_efds(VH_VU_SET_VRING_KICK, 0, &v, 8, 0));
	memset(&a, 0, sizeof(a));
	a.index = NQ;
	BAD_CASE("ADDR index", ALL_PROTO, true,
		 fe_send_raw(&F, VH_VU_SET_VRING_ADDR, 0, &a, 40, NULL, 0));

	/* ring size: a power of two, at most 32768 and the device's max */
	BAD_CASE("size 3", ALL_PROTO, false,
		 send_state(VH_VU_SET_VRING_NUM, 0, 3));
	BAD_CASE("size 100", ALL_PROTO, false,
		 send_state(VH_VU_SET_VRING_NUM, 0, 100));
	BAD_CASE("size 2048 > max", ALL_PROTO, false,
		 send_state(VH_VU_SET_VRING_NUM, 0, 2048));
	BAD_CASE("size 65536", ALL_PROTO, false,
		 send_state(VH_VU_SET_VRING_NUM, 0, 65536));
	BAD_CASE("base > 0xffff", ALL_PROTO, false,
		 send_state(VH_VU_SET_VRING_BASE, 0, 0x10000));

	/* ring addresses translate fully inside one mapped region */
	memset(&a, 0, sizeof(a));
	a.index = 0;
	a.desc = fm.uva;
	a.avail = fm.uva + 0x1000;
	a.used = fm.uva + 0x2000;
	BAD_CASE("desc outside", ALL_PROTO, true, {
		fe_state(&F, VH_VU_SET_VRING_NUM, 0, 64);
		a.desc = fm.uva - 0x1000;
		fe_send_raw(&F, VH_VU_SET_VRING_ADDR, 0, &a, 40, NULL, 0);
	});
	BAD_CASE("used straddles the end", ALL_PROTO, true, {
		fe_state(&F, VH_VU_SET_VRING_NUM, 0, 64);
		a.desc = fm.uva;
		a.used = fm.uva + fm.size - 16; /* 6 + 8 * 64 bytes needed */
		fe_send_raw(&F, VH_VU_SET_VRING_ADDR, 0, &a, 40, NULL, 0);
	});
	BAD_CASE("avail at 2^64-2", ALL_PROTO, true, {
		fe_state(&F, VH_VU_SET_VRING_NUM, 0, 64);
		a.used = fm.uva + 0x2000;
		a.avail = ~0ull - 1;
		fe_send_raw(&F, VH_VU_SET_VRING_ADDR, 0, &a, 40, NULL, 0);
	});
	BAD_CASE("unknown vring flags", ALL_PROTO, true, {
		a.avail = fm.uva + 0x1000;
		a.flags = 2;
		fe_send_raw(&F, VH_VU_SET_VRING_ADDR, 0, &a, 40, NULL, 0);
	});
	/* ADDR before the memory is fine; NUM then translates and fails */
	BAD_CASE("deferred address outside", ALL_PROTO, false, {
		a.flags = 0;
		a.desc = 0x1000;
		fe_do(&F, VH_VU_SET_VRING_ADDR, &a, 40, NULL, 0);
		fe_state(&F, VH_VU_SET_VRING_NUM, 0, 64);
		fe_set_mem(&F, &fm);
		/* the ring is not handed over; a kick is harmless */
		v = VH_VU_VRING_NOFD;
		fe_do(&F, VH_VU_SET_VRING_KICK, &v, 8, NULL, 0);
		/* and a second, unmapped address now closes */
		a.desc = 0x2000;
		fe_send_raw(&F, VH_VU_SET_VRING_ADDR, 0, &a, 40, NULL, 0);
	});
}

static void test_mem_rules(void)
{
	struct vh_vu_mem_region r[9];
	struct vh_vu_mem_single s;
	struct vh_vu_log log;
	int fds[9], small, i;

	for (i = 0; i < 9; i++) {
		r[i] = good_region();
		r[i].guest_addr = fm.gpa + (uint64_t)i * fm.size;
	}
	for (i = 0; i < 9; i++)
		fds[i] = fm.fd;

	/* region count equals fd count */
	BAD_CASE("2 regions, 1 fd", ALL_PROTO, false, send_mem(r, 2, fds, 1));
	BAD_CASE("1 region, 2 fds", ALL_PROTO, false, send_mem(r, 1, fds, 2));
	BAD_CASE("0 regions, 1 fd", ALL_PROTO, false, send_mem(r, 0, fds, 1));
	/* at most the slot limit: 8 in a message, the device's 4 here */
	BAD_CASE("5 regions > 4 slots", ALL_PROTO, false,
		 send_mem(r, 5, fds, 5));
	BAD_CASE("9 regions", ALL_PROTO, false, {
		struct vh_vu_mem_table t;

		memset(&t, 0, sizeof(t));
		t.nregions = 9;
		fe_send_raw(&F, VH_VU_SET_MEM_TABLE, 0, &t, 8 + 32 * 8, fds, 8);
	});
	BAD_CASE("size for 2, says 1", ALL_PROTO, false, {
		struct vh_vu_mem_table t;

		memset(&t, 0, sizeof(t));
		t.nregions = 1;
		t.regions[0] = r[0];
		fe_send_raw(&F, VH_VU_SET_MEM_TABLE, 0, &t, 8 + 64, fds, 1);
	});
	/* no overflow in gpa / uaddr / offset + size */
	r[0] = good_region();
	r[0].guest_addr = ~0ull - 0x1000;
	BAD_CASE("gpa + size wraps", ALL_PROTO, false, send_mem(r, 1, fds, 1));
	r[0] = good_region();
	r[0].user_addr = ~0ull - 0x1000;
	BAD_CASE("uva + size wraps", ALL_PROTO, false, send_mem(r, 1, fds, 1));
	r[0] = good_region();
	r[0].mmap_offset = ~0ull - 0xfff;
	BAD_CASE("offset + size wraps", ALL_PROTO, false,
		 send_mem(r, 1, fds, 1));
	r[0] = good_region();
	r[0].size = 0;
	BAD_CASE("size 0", ALL_PROTO, false, send_mem(r, 1, fds, 1));
	/* the fd must hold the region (else SIGBUS on access) */
	r[0] = good_region();
	r[0].mmap_offset = 0x1000;
	BAD_CASE("region past the end of the fd", ALL_PROTO, false,
		 send_mem(r, 1, fds, 1));
	small = memfd_create("small", MFD_CLOEXEC);
	CHECK(small >= 0 && ftruncate(small, 4096) == 0);
	r[0] = good_region();
	BAD_CASE("1 MiB region on a 4 KiB fd", ALL_PROTO, false,
		 send_mem(r, 1, &small, 1));
	/* overlapping regions */
	r[1] = good_region();
	r[1].guest_addr += 0x1000;
	BAD_CASE("overlapping regions", ALL_PROTO, false,
		 send_mem(r, 2, fds, 2));

	/* ADD_MEM_REG / REM_MEM_REG: the same checks */
	memset(&s, 0, sizeof(s));
	s.region = good_region();
	s.region.guest_addr = ~0ull - 0x1000;
	BAD_CASE("ADD gpa wraps", ALL_PROTO, false,
		 fe_send_raw(&F, VH_VU_ADD_MEM_REG, 0, &s, 40, fds, 1));
	s.region = good_region();
	BAD_CASE("ADD on a 4 KiB fd", ALL_PROTO, false,
		 fe_send_raw(&F, VH_VU_ADD_MEM_REG, 0, &s, 40, &small, 1));
	BAD_CASE("ADD without fd", ALL_PROTO, false,
		 fe_send_raw(&F, VH_VU_ADD_MEM_REG, 0, &s, 40, NULL, 0));
	/* (the identical region again is a no-op: test_refusal_with_ack) */
	s.region.guest_addr += 0x1000;
	BAD_CASE("ADD overlapping", ALL_PROTO, true,
		 fe_send_raw(&F, VH_VU_ADD_MEM_REG, 0, &s, 40, fds, 1));
	s.region = good_region();
	s.region.mmap_offset = 0x1000;
	s.region.size -= 0x1000;
	BAD_CASE("ADD same addresses, other offset", ALL_PROTO, true,
		 fe_send_raw(&F, VH_VU_ADD_MEM_REG, 0, &s, 40, fds, 1));
	s.region = good_region();
	BAD_CASE("ADD beyond the slot limit", ALL_PROTO, false, {
		for (i = 0; i < 4; i++) {
			s.region = good_region();
			s.region.guest_addr = fm.gpa + (uint64_t)i * fm.size;
			CHECK_EQ(fe_ack(&F, VH_VU_ADD_MEM_REG, &s, 40, fds, 1),
				 0);
		}
		s.region.guest_addr += fm.size;
		fe_send_raw(&F, VH_VU_ADD_MEM_REG, 0, &s, 40, fds, 1);
	});
	s.region = good_region();
	s.region.size = ~0ull;
	BAD_CASE("REM size wraps", ALL_PROTO, true,
		 fe_send_raw(&F, VH_VU_REM_MEM_REG, 0, &s, 40, NULL, 0));
	BAD_CASE("REM with 2 fds", ALL_PROTO, true,
		 fe_send_raw(&F, VH_VU_REM_MEM_REG, 0, &s, 40, fds, 2));

	/* the log: no overflow, bounded, inside its fd */
	log.size = 0x1000;
	log.offset = ~0ull - 0xfff;
	BAD_CASE("log offset + size wraps", ALL_PROTO, true,
		 fe_send_raw(&F, VH_VU_SET_LOG_BASE, 0, &log, 16, fds, 1));
	log.size = 0;
	log.offset = 0;
	BAD_CASE("log size 0", ALL_PROTO, true,
		 fe_send_raw(&F, VH_VU_SET_LOG_BASE, 0, &log, 16, fds, 1));
	log.size = 8192;
	BAD_CASE("log past the end of its fd", ALL_PROTO, true,
		 fe_send_raw(&F, VH_VU_SET_LOG_BASE, 0, &log, 16, &small, 1));
	log.size = 1ull << 40;
	BAD_CASE("log of 1 TiB", ALL_PROTO, true,
		 fe_send_raw(&F, VH_VU_SET_LOG_BASE, 0, &log, 16, fds, 1));
	BAD_CASE("log without LOG_SHMFD", ALL_PROTO & ~P(LOG_SHMFD), true,
		 fe_send_raw(&F, VH_VU_SET_LOG_BASE, 0, &log, 16, fds, 1));
	/*
	 * a log that does not cover guest memory (up to 257 MiB here: 8224
	 * bytes of bitmap): the pages past its end went unlogged, and a
	 * migration lost them without a word
	 */
	log.size = vh_mem_log_size_for(fm.gpa + fm.size) - 1;
	BAD_CASE("log shorter than guest memory", ALL_PROTO, true,
		 fe_send_raw(&F, VH_VU_SET_LOG_BASE, 0, &log, 16, fds, 1));
	close(small);
}

static void test_wire_rules(void)
{
	uint64_t v = 0;
	uint8_t junk[64] = { 0 };

	/* fds on a message that takes none are closed */
	BAD_CASE("GET_FEATURES + 3 fds", ALL_PROTO, false,
		 send_with_efds(VH_VU_GET_FEATURES, 0, NULL, 0, 3));
	BAD_CASE("SET_VRING_NUM + 8 fds", ALL_PROTO, false, {
		struct vh_vu_vring_state s = { 0, 64 };

		send_with_efds(VH_VU_SET_VRING_NUM, 0, &s, 8, 8);
	});
	BAD_CASE("SET_OWNER + fd", ALL_PROTO, false,
		 send_with_efds(VH_VU_SET_OWNER, 0, NULL, 0, 1));
	/* a size that disagrees with the type */
	BAD_CASE("SET_FEATURES of 4 bytes", ALL_PROTO, false,
		 fe_send_raw(&F, VH_VU_SET_FEATURES, 0, junk, 4, NULL, 0));
	BAD_CASE("SET_VRING_NUM of 12 bytes", ALL_PROTO, false,
		 fe_send_raw(&F, VH_VU_SET_VRING_NUM, 0, junk, 12, NULL, 0));
	BAD_CASE("GET_FEATURES with payload", ALL_PROTO, false,
		 fe_send_raw(&F, VH_VU_GET_FEATURES, 0, junk, 8, NULL, 0));
	BAD_CASE("SET_VRING_ADDR of 39 bytes", ALL_PROTO, false,
		 fe_send_raw(&F, VH_VU_SET_VRING_ADDR, 0, junk, 39, NULL, 0));
	BAD_CASE("GET_CONFIG size > 256", ALL_PROTO, false, {
		struct vh_vu_config c = { 0, 257, 0 };

		fe_send_raw(&F, VH_VU_GET_CONFIG, 0, &c, 12, NULL, 0);
	});
	BAD_CASE("SET_CONFIG size vs message", ALL_PROTO, false, {
		struct vh_vu_config c = { 0, 8, 0 };

		fe_send_raw(&F, VH_VU_SET_CONFIG, 0, &c, 12 + 4, NULL, 0);
	});
	/* a version other than 1 */
	BAD_CASE("version 0", ALL_PROTO, false, {
		struct vh_vu_hdr h = { VH_VU_GET_FEATURES, 0, 0 };

		CHECK(write(F.sock, &h, sizeof(h)) == sizeof(h));
	});
	BAD_CASE("version 2", ALL_PROTO, false, {
		struct vh_vu_hdr h = { VH_VU_GET_FEATURES, 2, 0 };

		CHECK(write(F.sock, &h, sizeof(h)) == sizeof(h));
	});
	/* an unknown request */
	BAD_CASE("request 0", ALL_PROTO, false,
		 fe_send_raw(&F, 0, 0, NULL, 0, NULL, 0));
	BAD_CASE("request 44", ALL_PROTO, false,
		 fe_send_raw(&F, 44, 0, NULL, 0, NULL, 0));
	BAD_CASE("request 2^31 + fd", ALL_PROTO, false,
		 send_with_efds(0x80000000u, 0, NULL, 0, 1));
	/* a payload larger than any message, a truncated message */
	BAD_CASE("size 1 MiB", ALL_PROTO, false, {
		struct vh_vu_hdr h = { VH_VU_SET_FEATURES, 1, 1 << 20 };

		CHECK(write(F.sock, &h, sizeof(h)) == sizeof(h));
	});
	BAD_CASE("truncated payload then EOF", ALL_PROTO, false, {
		struct vh_vu_hdr h = { VH_VU_SET_FEATURES, 1, 8 };

		CHECK(write(F.sock, &h, sizeof(h)) == sizeof(h));
		CHECK(write(F.sock, junk, 4) == 4);
		shutdown(F.sock, SHUT_WR);
	});
	/* requests whose protocol feature was not negotiated */
	BAD_CASE("GET_QUEUE_NUM without MQ", ALL_PROTO & ~P(MQ), false,
		 fe_send_raw(&F, VH_VU_GET_QUEUE_NUM, 0, NULL, 0, NULL, 0));
	BAD_CASE("ADD_MEM_REG without MEM_SLOTS",
		 ALL_PROTO & ~P(CONFIGURE_MEM_SLOTS), false, {
			 struct vh_vu_mem_single s = { 0, good_region() };

			 fe_send_raw(&F, VH_VU_ADD_MEM_REG, 0, &s, 40, &fm.fd,
				     1);
		 });
	BAD_CASE("IOTLB_MSG (no ACCESS_PLATFORM)",
		 ALL_PROTO & ~(P(REPLY_ACK) | P(INBAND_NOTIFICATIONS)), false,
		 fe_send_raw(&F, VH_VU_IOTLB_MSG, 0, junk, 32, NULL, 0));
	BAD_CASE("SET_VRING_ENDIAN (no CROSS_ENDIAN)", ALL_PROTO, false,
		 send_state(VH_VU_SET_VRING_ENDIAN, 0, 0));
	BAD_CASE("POSTCOPY_ADVISE (no PAGEFAULT)", ALL_PROTO, false,
		 fe_send_raw(&F, VH_VU_POSTCOPY_ADVISE, 0, NULL, 0, NULL, 0));
	BAD_CASE("CREATE_CRYPTO_SESSION", ALL_PROTO, false,
		 fe_send_raw(&F, VH_VU_CREATE_CRYPTO_SESSION, 0, junk, 64, NULL,
			     0));
	BAD_CASE("GPU_SET_SOCKET (not a GPU)", ALL_PROTO, false,
		 send_with_efds(VH_VU_GPU_SET_SOCKET, 0, NULL, 0, 1));
	BAD_CASE("SET_STATUS > 0xff", ALL_PROTO, false, {
		v = 0x100;
		fe_send_raw(&F, VH_VU_SET_STATUS, 0, &v, 8, NULL, 0);
	});
	/* features not offered */
	BAD_CASE("SET_PROTOCOL_FEATURES not offered", ALL_PROTO, false, {
		v = P(PAGEFAULT);
		fe_send_raw(&F, VH_VU_SET_PROTOCOL_FEATURES, 0, &v, 8, NULL, 0);
	});
	BAD_CASE("INBAND without BACKEND_REQ", 0, false, {
		v = P(INBAND_NOTIFICATIONS) | P(REPLY_ACK);
		fe_send_raw(&F, VH_VU_SET_PROTOCOL_FEATURES, 0, &v, 8, NULL, 0);
	});
	BAD_CASE("inflight: 0 queues", ALL_PROTO, false, {
		struct vh_vu_inflight in = { 0, 0, 0, 64, 0 };

		fe_send_raw(&F, VH_VU_GET_INFLIGHT_FD, 0, &in, 24, NULL, 0);
	});
	BAD_CASE("inflight: queue size 3", ALL_PROTO, false, {
		struct vh_vu_inflight in = { 0, 0, 1, 3, 0 };

		fe_send_raw(&F, VH_VU_GET_INFLIGHT_FD, 0, &in, 24, NULL, 0);
	});
	BAD_CASE("inflight: too many queues", ALL_PROTO, false, {
		struct vh_vu_inflight in = { 0, 0, NQ + 1, 64, 0 };

		fe_send_raw(&F, VH_VU_GET_INFLIGHT_FD, 0, &in, 24, NULL, 0);
	});
	BAD_CASE("SET_INFLIGHT_FD past the end of its fd", ALL_PROTO, false, {
		struct vh_vu_inflight in = { 1088, 1 << 20, 1, 64, 0 };

		fe_send_raw(&F, VH_VU_SET_INFLIGHT_FD, 0, &in, 24, &fm.fd, 1);
		(void)in;
	});
	BAD_CASE("SET_INFLIGHT_FD at an offset not 64-aligned", ALL_PROTO,
		 false, {
			 struct vh_vu_inflight in = { 1088, 4, 1, 64, 0 };

			 fe_send_raw(&F, VH_VU_SET_INFLIGHT_FD, 0, &in, 24,
				     &fm.fd, 1);
		 });
}

/* With REPLY_ACK and NEED_REPLY a refusal is an error reply, not a close. */
static void test_refusal_with_ack(void)
{
	uint8_t junk[32] = { 0 };

	fe_open(ALL_PROTO & ~P(MQ), false);
	CHECK(fe_ack(&F, 77, NULL, 0, NULL, 0) != 0);
	CHECK(fe_ack(&F, VH_VU_IOTLB_MSG, junk, 32, NULL, 0) != 0);
	CHECK(fe_ack(&F, VH_VU_POSTCOPY_LISTEN, NULL, 0, NULL, 0) != 0);
	CHECK(fe_ack(&F, VH_VU_GET_QUEUE_NUM, NULL, 0, NULL, 0) != 0);
	CHECK(vh_vu_backend_connected(F.be));
	/* still fully working */
	CHECK_EQ(fe_ack(&F, VH_VU_SET_OWNER, NULL, 0, NULL, 0), 0);
	/* ring size 0 (DPDK, for rings it does not use): accepted, unused */
	{
		struct vh_vu_vring_state s0 = { 2, 0 };

		CHECK_EQ(fe_ack(&F, VH_VU_SET_VRING_NUM, &s0, 8, NULL, 0), 0);
	}
	/* REM_MEM_REG of a region that is not there: turned down */
	{
		struct vh_vu_mem_single s = { 0, good_region() };

		CHECK(fe_ack(&F, VH_VU_REM_MEM_REG, &s, 40, NULL, 0) != 0);
	}
	/*
	 * The identical region twice (QEMU 7.2 adds it once per queue pair
	 * of a multiqueue net device): one mapping, the second fd closed;
	 * the first REM_MEM_REG removes it, a second is turned down.
	 */
	{
		struct vh_vu_mem_single s = { 0, good_region() };
		int fds0, maps0 = test_count_maps();

		CHECK_EQ(fe_ack(&F, VH_VU_ADD_MEM_REG, &s, 40, &fm.fd, 1), 0);
		CHECK_EQ(test_count_maps(), maps0 + 1);
		fds0 = test_count_fds();
		CHECK_EQ(fe_ack(&F, VH_VU_ADD_MEM_REG, &s, 40, &fm.fd, 1), 0);
		CHECK_EQ(test_count_fds(), fds0);
		CHECK_EQ(test_count_maps(), maps0 + 1);
		CHECK_EQ(fe_ack(&F, VH_VU_REM_MEM_REG, &s, 40, NULL, 0), 0);
		CHECK_EQ(test_count_maps(), maps0);
		CHECK(fe_ack(&F, VH_VU_REM_MEM_REG, &s, 40, NULL, 0) != 0);
		CHECK(vh_vu_backend_connected(F.be));
	}
	close(F.sock);
	fe_pump(&F);
}

/* The spec's REM_MEM_REG compatibility: one stray fd is closed unused. */
static void test_mem_slots(void)
{
	struct vh_vu_mem_single s = { 0, good_region() };
	int fds0, efd;

	fe_open(ALL_PROTO, false);
	fds0 = test_count_fds();
	CHECK_EQ(fe_u64(&F, VH_VU_GET_MAX_MEM_SLOTS, 0, NULL, 0, NULL, 0), 4);
	CHECK_EQ(fe_ack(&F, VH_VU_ADD_MEM_REG, &s, 40, &fm.fd, 1), 0);
	s.region.guest_addr = fm2.gpa;
	s.region.user_addr = fm2.uva;
	s.region.size = fm2.size;
	CHECK_EQ(fe_ack(&F, VH_VU_ADD_MEM_REG, &s, 40, &fm2.fd, 1), 0);
	CHECK_EQ(test_count_fds(), fds0 + 2);
	efd = test_efd();
	CHECK_EQ(fe_ack(&F, VH_VU_REM_MEM_REG, &s, 40, &efd, 1), 0);
	close(efd);
	CHECK_EQ(test_count_fds(), fds0 + 1);
	s.region = good_region();
	CHECK_EQ(fe_ack(&F, VH_VU_REM_MEM_REG, &s, 40, NULL, 0), 0);
	CHECK_EQ(test_count_fds(), fds0);
	close(F.sock);
	fe_pump(&F);
}

/* 1000 repetitions of the messages that allocate: nothing accumulates. */
static void test_leaks(void)
{
	struct vh_vu_inflight in = { 0, 0, NQ, 256, 0 };
	struct vh_vu_msg m;
	/* a log that covers the memory (fe_set_mem(): fm) */
	struct vh_vu_log log = { vh_mem_log_size_for(fm.gpa + fm.size), 0 };
	int fds0 = 0, maps0 = 0, i, logfd;

	fe_open(ALL_PROTO, true);
	logfd = memfd_create("log", MFD_CLOEXEC);
	CHECK(logfd >= 0 && ftruncate(logfd, (off_t)log.size) == 0);
	/*
	 * Warm up through every ring size on every queue (allocator size
	 * classes), then count across 1000 more rounds.
	 */
	for (i = 0; i < 100 + 1000; i++) {
		if (i == 100) {
			fds0 = test_count_fds();
			maps0 = test_count_maps();
		}
		fe_send_raw(&F, VH_VU_GET_INFLIGHT_FD, 0, &in, 24, NULL, 0);
		fe_pump(&F);
		CHECK_EQ(fe_recv(&F, &m), 0);
		CHECK_EQ(m.nfds, 1);
		vh_vu_msg_close_fds(&m);
		fe_set_mem(&F, &fm);
		fe_state(&F, VH_VU_SET_VRING_NUM, i % NQ, 1u << (i % 11));
		CHECK_EQ(fe_u64(&F, VH_VU_SET_LOG_BASE, 0, &log, 16, &logfd, 1),
			 0);
	}
	CHECK_EQ(test_count_fds(), fds0);
	CHECK_EQ(test_count_maps(), maps0);
	close(logfd);
	close(F.sock);
	fe_pump(&F);
}

/*
 * The back-end request channel against a front-end that does not play
 * along: every back-end request (send and reply together) ends by its own
 * deadline (VU_BE_REQ_TIMEOUT_MS, 5 s), never later however the front-end
 * paces its bytes, and a channel that timed out is dropped (later requests
 * fail at once).  The bounds are generous: each case is one deadline, the
 * upper bound leaves 3 s of slack and what it rules out (a per-message
 * deadline restarted by a trickled reply) would take 9 s.
 */
#define REQ_DEADLINE_MS 5000
#define REQ_SLACK_MS 3000

struct trickler {
	int fd;
	int delay_ms; /* before the first byte of the reply */
	int gap_ms; /* between its bytes */
};

/* Read the request, then answer it one byte at a time, slowly. */
static void *trickle_run(void *arg)
{
	struct trickler *t = arg;
	struct vh_vu_msg m;
	struct pollfd p = { .fd = t->fd, .events = POLLIN };
	uint8_t buf[VH_VU_HDR_SIZE + 8];
	unsigned int i;
	ssize_t n;

	CHECK(poll(&p, 1, 10000) == 1);
	n = read(t->fd, buf, sizeof(buf));
	CHECK(n == VH_VU_HDR_SIZE); /* CONFIG_CHANGE_MSG: no payload */
	memcpy(&m.hdr, buf, VH_VU_HDR_SIZE);
	vh_vu_msg_set_reply_u64(&m, 0);
	memcpy(buf, &m.hdr, VH_VU_HDR_SIZE);
	memcpy(buf + VH_VU_HDR_SIZE, &m.payload.u64, 8);
	usleep((useconds_t)t->delay_ms * 1000);
	for (i = 0; i < sizeof(buf); i++) {
		/* EPIPE once the back-end dropped the channel: done */
		if (send(t->fd, buf + i, 1, MSG_NOSIGNAL) != 1)
			break;
		usleep((useconds_t)t->gap_ms * 1000);
	}
	return NULL;
}

/* One request that must fail with -ETIMEDOUT, by its deadline. */
static void req_times_out(void)
{
	int64_t t0 = vh_vu_now_ms(), dt;
	int r = vh_vu_backend_config_change(F.be);

	dt = vh_vu_now_ms() - t0;
	printf("  back-end request ended after %lld ms: %d\n", (long long)dt,
	       r);
	CHECK_EQ(r, -ETIMEDOUT);
	CHECK(dt >= REQ_DEADLINE_MS - 50);
	CHECK(dt <= REQ_DEADLINE_MS + REQ_SLACK_MS);
	/* dropped: the next one fails at once */
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_backend_config_change(F.be), -ENOTCONN);
	CHECK(vh_vu_now_ms() - t0 < 1000);
}

/* The next request on a plain channel's read end: its header. */
static void read_request(int fd, uint32_t request)
{
	struct vh_vu_hdr hdr;

	CHECK_EQ(read(fd, &hdr, sizeof(hdr)), (ssize_t)sizeof(hdr));
	CHECK_EQ(hdr.request, request);
}

/*
 * The front-end fills the channel's pipe through its copy fd of the write
 * end, then makes that copy blocking again.
 */
static void fill_blocking(int fd)
{
	char buf[4096] = { 0 };
	int fl = fcntl(fd, F_GETFL);

	CHECK(fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0);
	while (write(fd, buf, sizeof(buf)) > 0)
		;
	CHECK(errno == EAGAIN);
	CHECK(fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) == 0);
}

/*
 * The channel's write end wfd filled and made blocking: the request ends
 * by its deadline (req_times_out()), and the front-end's disconnect does
 * not wait for the channel.
 */
static void stalled_channel(int wfd)
{
	fill_blocking(wfd);
	alarm((REQ_DEADLINE_MS + REQ_SLACK_MS) / 1000 + 2);
	req_times_out();
	close(F.sock);
	fe_pump(&F);
	CHECK(!vh_vu_backend_connected(F.be));
	alarm(0);
}

/*
 * A pipe as the channel, the front-end keeping its own copy of the write
 * end it sent: it fills the pipe and makes its end blocking again.
 * O_NONBLOCK is a flag of the open file description both ends' copies
 * share, so a channel on the description it was given would then write
 * into the full pipe in the kernel for ever (req_lock held, and the
 * disconnect waiting for it): the alarm ends the test instead.  The
 * channel's own description keeps to the deadline.
 */
static void test_backend_channel_pipe(void)
{
	char dir[] = "/tmp/test-vu-backend-XXXXXX", path[64];
	int p[2], fds0 = test_count_fds();

	fe_open(ALL_PROTO & ~P(REPLY_ACK) & ~P(INBAND_NOTIFICATIONS), false);
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	fe_do(&F, VH_VU_SET_BACKEND_REQ_FD, NULL, 0, &p[1], 1);
	CHECK_EQ(vh_vu_backend_config_change(F.be), 0);
	stalled_channel(p[1]);
	close(p[0]);
	close(p[1]);
	CHECK_EQ(test_count_fds(), fds0);

	/*
	 * A FIFO's write end whose reader is gone cannot be opened again
	 * (ENXIO), but it is still a channel (the front-end may send any
	 * fd): taken as it is (through a pipe of the back-end's), it works
	 * once a reader opens the FIFO, and fails with EPIPE (the channel
	 * dropped) when there is none.
	 */
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/fifo", dir);
	CHECK(mkfifo(path, 0600) == 0);
	p[0] = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK(p[0] >= 0);
	p[1] = open(path, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK(p[1] >= 0);
	close(p[0]);
	fe_open(ALL_PROTO & ~P(REPLY_ACK) & ~P(INBAND_NOTIFICATIONS), false);
	fe_do(&F, VH_VU_SET_BACKEND_REQ_FD, NULL, 0, &p[1], 1);
	close(p[1]);
	p[0] = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK(p[0] >= 0);
	CHECK_EQ(vh_vu_backend_config_change(F.be), 0);
	read_request(p[0], VH_VU_BACKEND_CONFIG_CHANGE_MSG);
	close(p[0]);
	CHECK(unlink(path) == 0 && rmdir(dir) == 0);
	CHECK_EQ(vh_vu_backend_config_change(F.be), -EPIPE);
	CHECK_EQ(vh_vu_backend_config_change(F.be), -ENOTCONN);
	CHECK(vh_vu_backend_connected(F.be));
	close(F.sock);
	fe_pump(&F);
	CHECK_EQ(test_count_fds(), fds0);

	/*
	 * The same FIFO, the front-end keeping its copy of the write end:
	 * once a reader is there, it fills the FIFO and makes its copy
	 * blocking.  On the description it shares, a request would wait in
	 * the kernel for ever (the alarm ends the test); through the
	 * back-end's pipe (splice()) it ends by its deadline.
	 */
	strcpy(dir, "/tmp/test-vu-backend-XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/fifo", dir);
	CHECK(mkfifo(path, 0600) == 0);
	p[0] = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK(p[0] >= 0);
	p[1] = open(path, O_WRONLY | O_CLOEXEC);
	CHECK(p[1] >= 0);
	close(p[0]);
	fe_open(ALL_PROTO & ~P(REPLY_ACK) & ~P(INBAND_NOTIFICATIONS), false);
	fe_do(&F, VH_VU_SET_BACKEND_REQ_FD, NULL, 0, &p[1], 1);
	p[0] = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	CHECK(p[0] >= 0);
	CHECK(unlink(path) == 0 && rmdir(dir) == 0);
	CHECK_EQ(vh_vu_backend_config_change(F.be), 0);
	read_request(p[0], VH_VU_BACKEND_CONFIG_CHANGE_MSG);
	stalled_channel(p[1]);
	close(p[0]);
	close(p[1]);
	CHECK_EQ(test_count_fds(), fds0);
}

static struct test_log_count foreign_log = {
	"back-end channel: pipe not opened again (Permission denied)"
};

/*
 * A pipe the back-end may not open again (EACCES: as a front-end of
 * another user's would be; here its owner, unprivileged, took its mode
 * away): the channel takes the front-end's description as it is, its
 * flags left alone, through a pipe of the back-end's (splice()), with a
 * note and no warning, and works.  Then the front-end fills the pipe and
 * makes its copy blocking: a request on the shared description would wait
 * in the kernel for ever (the alarm ends the child, and the test), and
 * ends by its deadline; the disconnect completes.  In a child: an
 * unprivileged one, the test's user or, for root (whom the mode does not
 * stop), nobody.  Skipped if the child cannot become nobody or can still
 * open the pipe (a capability).
 */
/* A case could not run here: the program ends as a SKIP, not a pass. */
static bool part_skipped;

static void test_backend_channel_foreign_pipe(void)
{
	char path[32];
	int p[2], fd, st;
	pid_t pid;

	fflush(stdout);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (geteuid() == 0 && (setgroups(0, NULL) < 0 ||
				       setresgid(65534, 65534, 65534) < 0 ||
				       setresuid(65534, 65534, 65534) < 0))
			_exit(TEST_SKIP);
		CHECK(pipe2(p, O_CLOEXEC) == 0);
		CHECK(fchmod(p[1], 0) == 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", p[1]);
		fd = open(path, O_WRONLY | O_CLOEXEC);
		/* a capability that opens it anyway: nothing to test */
		if (fd >= 0)
			_exit(TEST_SKIP);
		CHECK_EQ(errno, EACCES);
		vh_ctx_set_log_fn(F.ctx, test_log_count_fn, &foreign_log);
		vh_ctx_set_log_priority(F.ctx, LOG_INFO);
		fe_open(ALL_PROTO & ~P(REPLY_ACK) & ~P(INBAND_NOTIFICATIONS),
			false);
		fe_do(&F, VH_VU_SET_BACKEND_REQ_FD, NULL, 0, &p[1], 1);
		CHECK_EQ(foreign_log.notes, 1);
		CHECK_EQ(foreign_log.warnings, 0);
		CHECK(!(fcntl(p[1], F_GETFL) & O_NONBLOCK));
		CHECK_EQ(vh_vu_backend_config_change(F.be), 0);
		read_request(p[0], VH_VU_BACKEND_CONFIG_CHANGE_MSG);
		stalled_channel(p[1]);
		fflush(stdout);
		/* no leak check: LeakSanitizer cannot trace a setuid child */
		_exit(0);
	}
	CHECK(waitpid(pid, &st, 0) == pid);
	CHECK(WIFEXITED(st));
	if (WEXITSTATUS(st) == TEST_SKIP) {
		/* the program ends as a SKIP: a claim for expected-skips */
		printf("  a pipe not ours to open again: skipped (no unprivileged child)\n");
		part_skipped = true;
		return;
	}
	CHECK_EQ(WEXITSTATUS(st), 0);
}

static void test_backend_channel_deadline(void)
{
	struct trickler t;
	int64_t t0, dt;
	pthread_t th;
	int sv[2], fds0, sndbuf = 1, i, r;

	fds0 = test_count_fds();

	/* 1. REPLY_ACK: the front-end takes the request, never answers */
	fe_open(ALL_PROTO, false);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK_EQ(fe_ack(&F, VH_VU_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1), 0);
	close(sv[1]);
	req_times_out();
	close(sv[0]);
	close(F.sock);
	fe_pump(&F);
	CHECK_EQ(test_count_fds(), fds0);

	/*
	 * 2. No reply due: requests pile up in a socket the front-end never
	 * reads until one cannot be sent; that one ends by its deadline.
	 */
	fe_open(ALL_PROTO & ~P(REPLY_ACK) & ~P(INBAND_NOTIFICATIONS), false);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	/* the kernel's minimum: the buffer fills after a few requests */
	CHECK(setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sndbuf,
			 sizeof(sndbuf)) == 0);
	fe_do(&F, VH_VU_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1);
	close(sv[1]);
	for (i = 0; i < 100000; i++) {
		t0 = vh_vu_now_ms();
		r = vh_vu_backend_config_change(F.be);
		if (r != 0)
			break;
		/* a request that fits is sent at once */
		CHECK(vh_vu_now_ms() - t0 < 1000);
	}
	dt = vh_vu_now_ms() - t0;
	printf("  %d requests queued, the next one ended after %lld ms: %d\n",
	       i, (long long)dt, r);
	CHECK(i > 0 && i < 100000);
	CHECK_EQ(r, -ETIMEDOUT);
	CHECK(dt >= REQ_DEADLINE_MS - 50);
	CHECK(dt <= REQ_DEADLINE_MS + REQ_SLACK_MS);
	CHECK_EQ(vh_vu_backend_config_change(F.be), -ENOTCONN);
	close(sv[0]);
	close(F.sock);
	fe_pump(&F);
	CHECK_EQ(test_count_fds(), fds0);

	/*
	 * 3. The reply starts late and trickles: the call's deadline holds,
	 * it is not restarted by the reply's first byte.
	 */
	fe_open(ALL_PROTO, false);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK_EQ(fe_ack(&F, VH_VU_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1), 0);
	close(sv[1]);
	t.fd = sv[0];
	t.delay_ms = REQ_DEADLINE_MS - 1000;
	t.gap_ms = 400;
	CHECK_EQ(pthread_create(&th, NULL, trickle_run, &t), 0);
	req_times_out();
	pthread_join(th, NULL);
	close(sv[0]);
	close(F.sock);
	fe_pump(&F);
	CHECK_EQ(test_count_fds(), fds0);
}

int main(void)
{
	struct test_fdset fdset;
	int fds0;

	test_fdset_snapshot(&fdset);
	memset(&F, 0, sizeof(F));
	CHECK_EQ(vh_ctx_new(&F.ctx), 0);
	CHECK_EQ(vh_vu_backend_new(F.ctx, &dev, &ops, NULL, &F.be), 0);
	fe_mem_init(&F, &fm, 0x10000000, 1 << 20);
	fe_mem_init(&F, &fm2, 0x20000000, 1 << 20);
	/* warm up (allocator arenas, sanitizer state) before counting */
	fe_open(ALL_PROTO, true);
	/*
	 * the back-end's fds (epoll set, connection) and the memory's,
	 * open: each close-on-exec
	 */
	CHECK_NEW_FDS_CLOEXEC(&fdset, 3);
	close(F.sock);
	fe_pump(&F);
	fds0 = test_count_fds();

	test_vring_rules();
	test_mem_rules();
	test_wire_rules();
	test_refusal_with_ack();
	test_mem_slots();
	test_leaks();
	test_backend_channel_deadline();
	test_backend_channel_pipe();
	test_backend_channel_foreign_pipe();

	/*
	 * Maps are compared per case above (after a warm-up run): the
	 * allocator keeps what it grew for the first use of a size class.
	 */
	CHECK_EQ(test_count_fds(), fds0);
	printf("%d hostile cases, each closed cleanly\n", cases);
	vh_mem_unref(fm.mem);
	vh_mem_unref(fm2.mem);
	F.sock = -1;
	fe_fini(&F);
	return part_skipped ? TEST_SKIP : 0;
}
