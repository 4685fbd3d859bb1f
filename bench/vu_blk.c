// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vu_blk - 4 KiB random-read IOPS through vhost-user-blk: our daemon
 * (tools/vhost-user-blk) against qemu-storage-daemon's vhost-user-blk
 * export of the same file, page cache warm.  The driver is our front-end
 * (vh_vu_frontend + one vh_drvq ring over memfd memory) keeping a fixed
 * number of requests in flight.  The two back-ends run alternately, in
 * rounds, in the same run; prints IOPS of each and the ratio.  Figures,
 * never pass/fail.
 *
 *   bench/vu_blk [--daemon PATH] [--seconds N] [--size MIB] [--qd N]
 *                [--rounds N]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvhost.h"

#define QSIZE 128u
#define MAX_QD 40u /* 3 descriptors a request */
#define MEM_SIZE (4u << 20)
#define REQ_GPA(i) (0x100000ull + (uint64_t)(i)*8192)

static char dir[64];
static pid_t pids[2] = { -1, -1 };

static void cleanup(void)
{
	char cmd[128];
	int i;

	for (i = 0; i < 2; i++) {
		if (pids[i] > 0) {
			kill(pids[i], SIGTERM);
			waitpid(pids[i], NULL, 0);
			pids[i] = -1;
		}
	}
	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", dir);
	}
}

static void die(const char *what, int err)
{
	fprintf(stderr, "vu_blk: %s: %s\n", what,
		strerror(err < 0 ? -err : err));
	exit(1);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static pid_t spawn(const char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork", errno);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
			      0600);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static bool in_path(const char *prog)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", prog);
	return system(cmd) == 0;
}

struct run {
	struct vh_ctx *ctx;
	struct vh_mem *mem;
	uint8_t *guest;
	int kick, call;
	uint64_t sectors;
	unsigned int qd;
};

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static unsigned int slot_ids[MAX_QD]; /* tokens: &slot_ids[i] */

static uint64_t xorshift(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void add_read(struct run *r, struct vh_drvq *vq, unsigned int i)
{
	struct virtio_blk_outhdr h = {
		.type = htole32(VIRTIO_BLK_T_IN),
		.sector = htole64((xorshift() % (r->sectors / 8)) * 8),
	};
	struct vh_sg sg[3] = { { REQ_GPA(i), 16 },
			       { REQ_GPA(i) + 4096, 4096 },
			       { REQ_GPA(i) + 16, 1 } };
	int e;

	memcpy(r->guest + REQ_GPA(i), &h, sizeof(h));
	r->guest[REQ_GPA(i) + 16] = 0xee;
	e = vh_drvq_add(vq, sg, 1, 2, &slot_ids[i]);
	if (e < 0)
		die("vh_drvq_add", e);
}

/* One timed run against the back-end at sock: IOPS. */
static double measure(struct run *r, const char *sock, double seconds)
{
	struct vh_vu_frontend *fe;
	struct vh_drvq *vq;
	uint64_t features, pf, done = 0;
	struct pollfd pfd = { .fd = r->call, .events = POLLIN };
	double t0, t;
	unsigned int i;
	int e;

	if ((e = vh_vu_frontend_new(r->ctx, &fe)) < 0 ||
	    (e = vh_vu_frontend_connect(fe, sock, 10000)) < 0)
		die("connect", e);
	e = vh_vu_frontend_negotiate(
		fe,
		(1ull << VH_VU_VIRTIO_F_VERSION_1) |
			(1ull << VH_VU_F_PROTOCOL_FEATURES) |
			(1ull << VH_VU_VIRTIO_F_RING_EVENT_IDX) |
			(1ull << VIRTIO_BLK_F_BLK_SIZE) |
			(1ull << VIRTIO_BLK_F_SEG_MAX),
		(1ull << VH_VU_PROTOCOL_F_MQ) |
			(1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |
			(1ull << VH_VU_PROTOCOL_F_CONFIG),
		&features, &pf);
	if (e < 0)
		die("negotiate", e);
	if ((e = vh_vu_frontend_share_mem(fe, r->mem)) < 0)
		die("share_mem", e);
	if ((e = vh_drvq_new(r->ctx, r->mem, 0, QSIZE, 0, &vq)) < 0 ||
	    (e = vh_drvq_set_features(vq, features)) < 0 ||
	    (e = vh_drvq_set_kick_fd(vq, r->kick)) < 0 ||
	    (e = vh_drvq_set_call_fd(vq, r->call)) < 0 ||
	    (e = vh_vu_frontend_setup_vq(fe, 0, vq, r->kick, r->call)) < 0)
		die("ring setup", e);

	for (i = 0; i < r->qd; i++) {
		slot_ids[i] = i;
		add_read(r, vq, i);
	}
	vh_drvq_kick(vq);
	t0 = now();
	do {
		void *tok;
		uint32_t len;
		unsigned int n = 0;

		while ((e = vh_drvq_get_used(vq, &tok, &len)) == 1) {
			i = *(unsigned int *)tok;
			if (len != 4097 || r->guest[REQ_GPA(i) + 16] != 0)
				die("a read failed", EIO);
			add_read(r, vq, i);
			n++;
		}
		if (e < 0)
			die("used ring", e);
		done += n;
		if (n) {
			vh_drvq_kick(vq);
		} else {
			uint64_t v;

			vh_drvq_enable_cb(vq);
			if (poll(&pfd, 1, 1000) == 1 &&
			    read(r->call, &v, sizeof(v)) < 0 && errno != EAGAIN)
				die("call fd", errno);
		}
		t = now();
	} while (t - t0 < seconds);
	/* stop the ring and let the back-end finish what is queued */
	vh_vu_frontend_get_vring_base(fe, 0, NULL);
	vh_vu_frontend_unref(fe);
	vh_drvq_unref(vq);
	return (double)done / (t - t0);
}

int main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "daemon", required_argument, NULL, 'd' },
		{ "seconds", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 'm' },
		{ "qd", required_argument, NULL, 'q' },
		{ "rounds", required_argument, NULL, 'r' },
		{ 0 }
	};
	const char *daemon = "tools/vhost-user-blk";
	unsigned int size_mib = 256, rounds = 2, k;
	double seconds = 10, ours = 0, qsd = 0;
	char img[128], s_ours[128], s_qsd[128], log[160];
	char blockdev[256], exp[384];
	struct run r = { .qd = 32 };
	bool have_qsd;
	uint8_t *buf;
	int c, fd, e;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			daemon = optarg;
			break;
		case 's':
			seconds = strtod(optarg, NULL);
			break;
		case 'm':
			size_mib = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'q':
			r.qd = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'r':
			rounds = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		default:
			fprintf(stderr,
				"usage: %s [--daemon PATH] [--seconds N] [--size MIB] [--qd N] [--rounds N]\n",
				argv[0]);
			return 2;
		}
	}
	if (seconds <= 0 || size_mib < 1 || size_mib > 65536 || r.qd < 1 ||
	    r.qd > MAX_QD || rounds < 1) {
		fprintf(stderr, "vu_blk: bad arguments (qd 1..%u)\n", MAX_QD);
		return 2;
	}
	if (access(daemon, X_OK) != 0) {
		fprintf(stderr,
			"vu_blk: %s not found (run from the build directory or pass --daemon)\n",
			daemon);
		return 1;
	}
	have_qsd = in_path("qemu-storage-daemon");

	snprintf(dir, sizeof(dir), "/tmp/vu_blk.XXXXXX");
	if (!mkdtemp(dir))
		die("mkdtemp", errno);
	atexit(cleanup);
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(s_ours, sizeof(s_ours), "%s/ours.sock", dir);
	snprintf(s_qsd, sizeof(s_qsd), "%s/qsd.sock", dir);

	/* the file, written and so in the page cache */
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	buf = malloc(1 << 20);
	if (fd < 0 || !buf)
		die("image", errno);
	for (k = 0; k < size_mib; k++) {
		unsigned int j;

		for (j = 0; j < (1u << 20) / 8; j++)
			((uint64_t *)(void *)buf)[j] = xorshift();
		if (write(fd, buf, 1 << 20) != 1 << 20)
			die("image write", errno);
	}
	free(buf);
	close(fd);
	r.sectors = (uint64_t)size_mib << 11;

	{
		const char *a[] = { daemon,	     "--blk-file", img,
				    "--socket-path", s_ours,	   NULL };

		snprintf(log, sizeof(log), "%s/ours.log", dir);
		pids[0] = spawn(a, log);
	}
	if (have_qsd) {
		const char *a[] = { "qemu-storage-daemon",
				    "--blockdev",
				    blockdev,
				    "--export",
				    exp,
				    NULL };

		snprintf(blockdev, sizeof(blockdev),
			 "driver=file,node-name=f0,filename=%s", img);
		snprintf(
			exp, sizeof(exp),
			"type=vhost-user-blk,id=e0,addr.type=unix,addr.path=%s,node-name=f0,writable=on",
			s_qsd);
		snprintf(log, sizeof(log), "%s/qsd.log", dir);
		pids[1] = spawn(a, log);
	}

	if ((e = vh_ctx_new(&r.ctx)) < 0 ||
	    (e = vh_mem_new(r.ctx, &r.mem)) < 0 ||
	    (e = vh_mem_add_memfd(r.mem, 0, MEM_SIZE, (void **)&r.guest)) < 0)
		die("guest memory", e);
	r.kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	r.call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r.kick < 0 || r.call < 0)
		die("eventfd", errno);

	printf("4 KiB random reads, queue depth %u, %u MiB file (page cache), %u round(s) of %.1f s each\n",
	       r.qd, size_mib, rounds, seconds);
	for (k = 0; k < rounds; k++) {
		double a = measure(&r, s_ours, seconds), b = 0;

		printf("round %u: vhost-user-blk %.0f IOPS", k + 1, a);
		ours += a;
		if (have_qsd) {
			b = measure(&r, s_qsd, seconds);
			printf(", qemu-storage-daemon %.0f IOPS", b);
			qsd += b;
		}
		printf("\n");
		fflush(stdout);
	}
	printf("vhost-user-blk:      %10.0f IOPS\n", ours / rounds);
	if (have_qsd) {
		printf("qemu-storage-daemon: %10.0f IOPS\n", qsd / rounds);
		printf("ratio (ours / qsd):  %10.2f\n", ours / qsd);
	} else {
		printf("qemu-storage-daemon: not installed, no comparison\n");
	}
	close(r.kick);
	close(r.call);
	vh_mem_unref(r.mem);
	vh_ctx_unref(r.ctx);
	return 0;
}
