// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vu_blk - 4 KiB random I/O through vhost-user-blk: our daemon
 * (tools/vhost-user-blk) against qemu-storage-daemon's vhost-user-blk
 * export of the same file, and fio (io_uring, the same file) as the limit
 * of the disk.  The driver is our front-end (vh_vu_frontend + one vh_drvq
 * ring per queue over memfd memory, one thread per queue) keeping a fixed
 * number of requests in flight on every queue.
 *
 * Runs, each in rounds alternating the back-ends (each round starting one
 * later), in the same run:
 *   QD --qd on 1 queue and on --queues queues (IOPS), and QD 1 on 1 queue
 *   (IOPS and latency p50 / p99 in microseconds).
 * qemu-storage-daemon runs in its best configuration for the job
 * (aio=io_uring, plus cache.direct=on with --direct) and with its defaults
 * (aio=threads).  Figures, never pass/fail: build without sanitizers.
 *
 * Each job also reports the CPU used by the front-end's threads (their
 * CPU clocks), the back-end (/proc/PID/stat) and the machine (/proc/stat),
 * and says when the front-end or the machine was the limit: on a small
 * machine the driver, the back-end and everything else share the cores.
 * --compare runs a second build of our daemon in the same rounds (A/B).
 *
 *   bench/vu_blk [--daemon PATH] [--daemon-opt OPT] [--compare PATH]
 *                [--compare-opt OPT] [--no-peers] [--io uring|sync]
 *                [--direct] [--dir DIR] [--rw randread|randwrite] [--qd N]
 *                [--queues N]
 *                [--seconds N] [--rounds N] [--size MIB]
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/magic.h>
#include <linux/virtio_blk.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libvhost.h"

#define QSIZE 128u
#define MAX_QD 40u /* 3 descriptors a request */
#define MAX_QUEUES 4u
#define MEM_SIZE (8u << 20)
#define RING_GPA(q) ((uint64_t)(q) << 16)
#define REQ_GPA(q, i) (0x100000ull + ((uint64_t)(q) * MAX_QD + (i)) * 8192)
#define MAX_SAMPLES (8u << 20)

enum backend { OURS, QSD_BEST, QSD_DEFAULT, OURS_B, NBACKENDS };

static const char *const backend_name[NBACKENDS] = {
	"vhost-user-blk", "qemu-storage-daemon best",
	"qemu-storage-daemon defaults", "vhost-user-blk B (--compare)"
};
static const char *const backend_short[NBACKENDS] = {
	"ours", "qsd-best", "qsd-defaults", "ours-B"
};

static char dir[128];
static char img[192];
static pid_t pids[NBACKENDS] = { -1, -1, -1, -1 };
static char socks[NBACKENDS][192];

/* options */
static const char *daemon_path = "tools/vhost-user-blk";
static const char *daemon_opt, *compare_path, *compare_opt;
static const char *io_engine = "uring";
static bool direct, write_mode, no_peers;
static double seconds = 5;
static unsigned int rounds = 2, size_mib = 1024, qd = 32, max_queues = 2;

static void stop_all(void)
{
	int i;

	for (i = 0; i < NBACKENDS; i++) {
		if (pids[i] > 0) {
			kill(pids[i], SIGTERM);
			waitpid(pids[i], NULL, 0);
			pids[i] = -1;
		}
	}
}

static void cleanup(void)
{
	char cmd[256];

	stop_all();
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

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static pid_t spawn(const char *const argv[], const char *log)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork", errno);
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
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

static void wait_socket(const char *path, pid_t pid)
{
	struct stat st;
	int i, status;

	for (i = 0; i < 500; i++) {
		if (stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
			return;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			fprintf(stderr, "vu_blk: a back-end exited, see %s/*.log\n",
				dir);
			dir[0] = 0; /* keep the logs */
			exit(1);
		}
		usleep(20000);
	}
	die(path, ETIMEDOUT);
}

/* Start back-end b with nq queues on its socket. */
static void start_backend(enum backend b, unsigned int nq)
{
	char log[256], nqs[16], io[32], blockdev[512], exp[1024];

	snprintf(log, sizeof(log), "%s/%s.log", dir,
		 backend_short[b]);
	snprintf(nqs, sizeof(nqs), "%u", nq);
	unlink(socks[b]);
	if (b == OURS || b == OURS_B) {
		const char *opt = b == OURS ? daemon_opt : compare_opt;
		const char *a[] = { b == OURS ? daemon_path : compare_path,
				    "--blk-file",
				    img,
				    "--socket-path",
				    socks[b],
				    "--num-queues",
				    nqs,
				    io,
				    opt ? opt : io, /* --io twice: harmless */
				    direct ? "--direct" : NULL,
				    NULL };

		snprintf(io, sizeof(io), "--io=%s", io_engine);
		pids[b] = spawn(a, log);
	} else {
		/*
		 * The best: io_uring, and an iothread, the export's documented
		 * setup (it polls before it sleeps; the main loop does not)
		 */
		const char *best[] = { "qemu-storage-daemon", "--object",
				       "iothread,id=io0", "--blockdev",
				       blockdev, "--export", exp, NULL };
		const char *dflt[] = { "qemu-storage-daemon", "--blockdev",
				       blockdev, "--export", exp, NULL };
		const char **a = b == QSD_BEST ? best : dflt;

		snprintf(blockdev, sizeof(blockdev),
			 "driver=file,node-name=f0,filename=%s%s%s", img,
			 b == QSD_BEST ? ",aio=io_uring" : "",
			 direct ? ",cache.direct=on" : "");
		snprintf(exp, sizeof(exp),
			 "type=vhost-user-blk,id=e0,addr.type=unix,addr.path=%s,node-name=f0,writable=on,num-queues=%u%s",
			 socks[b], nq, b == QSD_BEST ? ",iothread=io0" : "");
		pids[b] = spawn(a, log);
	}
	wait_socket(socks[b], pids[b]);
}

/* ---------------------------------------------------------------------- */
/* the front-end                                                          */
/* ---------------------------------------------------------------------- */

struct conn {
	struct vh_ctx *ctx;
	struct vh_mem *mem;
	uint8_t *guest;
	uint64_t sectors;
};

struct qrun {
	struct conn *c;
	struct vh_drvq *vq;
	unsigned int q, qd;
	int kick, call;
	uint64_t rng;
	uint64_t start_ns[MAX_QD];
	unsigned int slot_ids[MAX_QD];
	uint64_t done;
	uint64_t cpu_ns; /* this thread's CPU time while it ran the job */
	uint32_t *lat; /* ns, QD 1 only */
	size_t nlat;
	double secs;
	int err;
};

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static int add_req(struct qrun *r, unsigned int i)
{
	uint64_t gpa = REQ_GPA(r->q, i);
	struct virtio_blk_outhdr h = {
		.type = htole32(write_mode ? VIRTIO_BLK_T_OUT :
					     VIRTIO_BLK_T_IN),
		.sector = htole64((xorshift(&r->rng) % (r->c->sectors / 8)) *
				  8),
	};
	struct vh_sg sg[3] = { { gpa, 16 }, { gpa + 4096, 4096 }, { gpa + 16, 1 } };

	memcpy(r->c->guest + gpa, &h, sizeof(h));
	r->c->guest[gpa + 16] = 0xee;
	r->start_ns[i] = now_ns();
	return write_mode ? vh_drvq_add(r->vq, sg, 2, 1, &r->slot_ids[i]) :
			    vh_drvq_add(r->vq, sg, 1, 2, &r->slot_ids[i]);
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *qrun_main(void *arg)
{
	struct qrun *r = arg;
	struct pollfd pfd = { .fd = r->call, .events = POLLIN };
	uint64_t t0, t, end, c0;
	unsigned int i;
	int e;

	for (i = 0; i < r->qd; i++) {
		r->slot_ids[i] = i;
		if ((e = add_req(r, i)) < 0)
			goto fail;
	}
	vh_drvq_kick(r->vq);
	c0 = thread_cpu_ns();
	t0 = t = now_ns();
	end = t0 + (uint64_t)(seconds * 1e9);
	do {
		void *tok;
		uint32_t len;
		unsigned int n = 0;

		while ((e = vh_drvq_get_used(r->vq, &tok, &len)) == 1) {
			uint64_t gpa;

			i = *(unsigned int *)tok;
			gpa = REQ_GPA(r->q, i);
			if (len != (write_mode ? 1u : 4097u) ||
			    r->c->guest[gpa + 16] != 0) {
				e = -EIO;
				goto fail;
			}
			if (r->lat && r->nlat < MAX_SAMPLES)
				r->lat[r->nlat++] =
					(uint32_t)(now_ns() - r->start_ns[i]);
			if ((e = add_req(r, i)) < 0)
				goto fail;
			n++;
		}
		if (e < 0)
			goto fail;
		r->done += n;
		if (n) {
			vh_drvq_kick(r->vq);
		} else {
			uint64_t v;

			if (vh_drvq_enable_cb(r->vq) != 1 &&
			    poll(&pfd, 1, 1000) == 1 &&
			    read(r->call, &v, sizeof(v)) < 0 && errno != EAGAIN) {
				e = -errno;
				goto fail;
			}
		}
		t = now_ns();
	} while (t < end);
	r->secs = (double)(t - t0) / 1e9;
	r->cpu_ns = thread_cpu_ns() - c0;
	return NULL;
fail:
	r->err = e;
	return NULL;
}

struct result {
	double iops;
	double p50, p99; /* us, QD 1 */
	/* CPU, in cores (1.0 = one core busy all the time) */
	double fe;       /* the front-end's driving threads */
	double fe_max;   /* the busiest of them */
	double be;       /* the back-end process, every thread */
	double machine;  /* every CPU of the machine (other work included) */
	double fe_ns;    /* front-end CPU per request */
	double be_ns;    /* back-end CPU per request */
};

/* utime + stime of process pid (every thread), ns; 0 if unreadable. */
static uint64_t proc_cpu_ns(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ut = 0, st = 0;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = 0;
	/* proc(5): fields 14 and 15 after "pid (comm)", comm may hold ')' */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &ut, &st) != 2)
		return 0;
	return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* Busy time of every CPU (/proc/stat "cpu" less idle and iowait), ns. */
static uint64_t machine_busy_ns(void)
{
	unsigned long long v[8] = { 0 };
	FILE *f = fopen("/proc/stat", "re");
	uint64_t busy = 0;

	if (!f)
		return 0;
	if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
		   &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) == 8)
		busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
	fclose(f);
	return busy * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* One timed run against the back-end at sock. */
static struct result measure(struct conn *c, const char *sock, pid_t pid,
			     unsigned int nq, unsigned int depth)
{
	uint64_t be0, m0, t0, fe_cpu = 0, done = 0;
	double wall;
	struct vh_vu_frontend *fe;
	struct qrun *runs = calloc(nq, sizeof(*runs));
	pthread_t th[MAX_QUEUES];
	uint64_t features, pf;
	struct result res = { 0 };
	unsigned int q;
	int e;

	if (!runs)
		die("calloc", ENOMEM);
	if ((e = vh_vu_frontend_new(c->ctx, &fe)) < 0 ||
	    (e = vh_vu_frontend_connect(fe, sock, 10000)) < 0)
		die("connect", e);
	e = vh_vu_frontend_negotiate(
		fe,
		(1ull << VH_VU_VIRTIO_F_VERSION_1) |
			(1ull << VH_VU_F_PROTOCOL_FEATURES) |
			(1ull << VH_VU_VIRTIO_F_RING_EVENT_IDX) |
			(1ull << VIRTIO_BLK_F_BLK_SIZE) |
			(1ull << VIRTIO_BLK_F_SEG_MAX) |
			/*
			 * FLUSH: without it a device is writethrough
			 * (5.2.5), ours syncing every write, while qsd's
			 * export keeps its write cache: two jobs
			 */
			(1ull << VIRTIO_BLK_F_FLUSH) |
			(1ull << VIRTIO_BLK_F_MQ),
		(1ull << VH_VU_PROTOCOL_F_MQ) |
			(1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |
			(1ull << VH_VU_PROTOCOL_F_CONFIG),
		&features, &pf);
	if (e < 0)
		die("negotiate", e);
	if ((e = vh_vu_frontend_share_mem(fe, c->mem)) < 0)
		die("share_mem", e);
	for (q = 0; q < nq; q++) {
		struct qrun *r = &runs[q];

		r->c = c;
		r->q = q;
		r->qd = depth;
		r->rng = 0x9e3779b97f4a7c15ull * (q + 1);
		r->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		r->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (r->kick < 0 || r->call < 0)
			die("eventfd", errno);
		if (depth == 1 && !(r->lat = malloc(MAX_SAMPLES * 4)))
			die("malloc", ENOMEM);
		if ((e = vh_drvq_new(c->ctx, c->mem, q, QSIZE, RING_GPA(q),
				     &r->vq)) < 0 ||
		    (e = vh_drvq_set_features(r->vq, features)) < 0 ||
		    (e = vh_drvq_set_kick_fd(r->vq, r->kick)) < 0 ||
		    (e = vh_drvq_set_call_fd(r->vq, r->call)) < 0 ||
		    (e = vh_vu_frontend_setup_vq(fe, q, r->vq, r->kick,
						 r->call)) < 0)
			die("ring setup", e);
	}
	be0 = proc_cpu_ns(pid);
	m0 = machine_busy_ns();
	t0 = now_ns();
	for (q = 0; q < nq; q++)
		if ((e = pthread_create(&th[q], NULL, qrun_main, &runs[q])))
			die("pthread_create", e);
	for (q = 0; q < nq; q++) {
		double f;

		pthread_join(th[q], NULL);
		if (runs[q].err)
			die("a request failed", runs[q].err);
		res.iops += (double)runs[q].done / runs[q].secs;
		f = (double)runs[q].cpu_ns / 1e9 / runs[q].secs;
		if (f > res.fe_max)
			res.fe_max = f;
		fe_cpu += runs[q].cpu_ns;
		done += runs[q].done;
	}
	/* the window includes thread start and the first kick: tiny */
	wall = (double)(now_ns() - t0) / 1e9;
	be0 = proc_cpu_ns(pid) - be0;
	res.be = (double)be0 / 1e9 / wall;
	res.be_ns = done ? (double)be0 / (double)done : 0;
	res.machine = (double)(machine_busy_ns() - m0) / 1e9 / wall;
	res.fe = (double)fe_cpu / 1e9 / wall;
	res.fe_ns = done ? (double)fe_cpu / (double)done : 0;
	if (depth == 1 && runs[0].nlat) {
		qsort(runs[0].lat, runs[0].nlat, 4, cmp_u32);
		res.p50 = runs[0].lat[runs[0].nlat / 2] / 1e3;
		res.p99 = runs[0].lat[runs[0].nlat * 99 / 100] / 1e3;
	}
	/* stop the rings and let the back-end finish what is queued */
	for (q = 0; q < nq; q++)
		vh_vu_frontend_get_vring_base(fe, q, NULL);
	vh_vu_frontend_unref(fe);
	for (q = 0; q < nq; q++) {
		vh_drvq_unref(runs[q].vq);
		close(runs[q].kick);
		close(runs[q].call);
		free(runs[q].lat);
	}
	free(runs);
	return res;
}

/*
 * fio, io_uring, the same file and job: IOPS (0 if it failed).  Not
 * --invalidate (fio's default drops the file's page cache before its job:
 * the next back-end measured, in the next round, then read from the disk,
 * ten times slower at QD 1).
 */
static double fio_iops(unsigned int nq, unsigned int depth)
{
	char cmd[1024], line[4096];
	double iops = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd),
		 "fio --name=vu_blk --filename='%s' --rw=%s --bs=4k --iodepth=%u --numjobs=%u --ioengine=io_uring --direct=%d --runtime=%.1f --time_based --group_reporting --randrepeat=0 --norandommap --invalidate=0 --minimal 2>/dev/null",
		 img, write_mode ? "randwrite" : "randread", depth, nq,
		 direct ? 1 : 0, seconds);
	p = popen(cmd, "r");
	if (!p)
		return 0;
	/* terse v3: field 8 read IOPS, field 49 write IOPS */
	if (fgets(line, sizeof(line), p)) {
		char *save = NULL, *f = strtok_r(line, ";", &save);
		unsigned int k;

		for (k = 1; f; k++, f = strtok_r(NULL, ";", &save)) {
			if (k == (write_mode ? 49u : 8u)) {
				iops = strtod(f, NULL);
				break;
			}
		}
	}
	pclose(p);
	return iops;
}

/*
 * Who was the limit: the CPU each side used, in cores.  The front-end
 * (this program: one thread per queue) shares the machine with the back-
 * end; a driving thread busy all the time, or a machine with no idle CPU
 * left, caps every back-end alike and the ratios then say little.
 */
static void cpu_report(const struct result *sum, const enum backend *list,
		       unsigned int nb)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	bool fe_bound = false, saturated = false;
	unsigned int i, b;

	printf("  CPU (cores; front-end = this program's driving threads):\n");
	for (i = 0; i < nb; i++) {
		double others;

		b = list[i];
		others = sum[b].machine - sum[b].fe - sum[b].be;
		printf("    %-28s front-end %.2f (busiest thread %.2f, %.1f us/req)  back-end %.2f (%.1f us/req)  others %.2f  machine %.2f of %ld\n",
		       backend_name[b], sum[b].fe, sum[b].fe_max,
		       sum[b].fe_ns / 1e3, sum[b].be, sum[b].be_ns / 1e3,
		       others > 0 ? others : 0, sum[b].machine, ncpu);
		if (sum[b].fe_max >= 0.85)
			fe_bound = true;
		if (ncpu > 0 && sum[b].machine >= 0.9 * (double)ncpu)
			saturated = true;
	}
	if (fe_bound)
		printf("  LIMIT: a front-end thread was busy >= 85%% of the time: figures near its ceiling (1 / its CPU per request) measure the load generator, not the back-end\n");
	if (saturated)
		printf("  LIMIT: the machine had no idle CPU (>= 90%% busy): the back-ends competed for CPU with the front-end and other work; compare CPU per request, not IOPS alone\n");
}

/*
 * a / b to two places, or "n/a" where b measured nothing (a back-end that
 * completed no request): one static buffer per call site's printf.
 */
static const char *ratio(double a, double b)
{
	static char buf[32];

	if (!(b > 0))
		return "n/a";
	snprintf(buf, sizeof(buf), "%.2f", a / b);
	return buf;
}

/* One job (queues, depth): every back-end, alternating, in rounds. */
static void job(struct conn *c, unsigned int nq, unsigned int depth,
		bool have_qsd, bool have_fio)
{
	struct result sum[NBACKENDS] = { 0 };
	unsigned int k, i, b, nb = 0;
	enum backend list[NBACKENDS];
	double fio = 0;
	unsigned int fio_rounds = 0;

	list[nb++] = OURS;
	if (compare_path)
		list[nb++] = OURS_B;
	if (have_qsd) {
		list[nb++] = QSD_BEST;
		list[nb++] = QSD_DEFAULT;
	}

	printf("\nQD %u, %u queue%s (%u in flight):\n", depth, nq,
	       nq > 1 ? "s" : "", depth * nq);
	for (i = 0; i < nb; i++)
		start_backend(list[i], nq);
	for (k = 0; k < rounds; k++) {
		printf("  round %u:", k + 1);
		/*
		 * Each round starts one back-end later: the place in a round
		 * showed in the figures (QD 1 p50 of one daemon against
		 * itself: 56 us first, 24 us second), so none keeps it.
		 */
		for (i = 0; i < nb; i++) {
			struct result r;

			b = list[(i + k) % nb];
			r = measure(c, socks[b], pids[b], nq, depth);
			printf(" %s %.0f", backend_short[b], r.iops);
			sum[b].iops += r.iops / rounds;
			sum[b].p50 += r.p50 / rounds;
			sum[b].p99 += r.p99 / rounds;
			sum[b].fe += r.fe / rounds;
			sum[b].fe_max += r.fe_max / rounds;
			sum[b].be += r.be / rounds;
			sum[b].machine += r.machine / rounds;
			sum[b].fe_ns += r.fe_ns / rounds;
			sum[b].be_ns += r.be_ns / rounds;
		}
		/*
		 * the disk's limit in the same rounds: the disk is shared; a
		 * round fio failed (0) is left out of the average
		 */
		if (have_fio) {
			double f = fio_iops(nq, depth);

			printf(" fio %.0f", f);
			if (f > 0) {
				fio += f;
				fio_rounds++;
			}
		}
		printf(" IOPS\n");
		fflush(stdout);
	}
	stop_all();
	if (fio_rounds)
		fio /= fio_rounds;
	for (i = 0; i < nb; i++) {
		b = list[i];
		printf("  %-30s %9.0f IOPS", backend_name[b], sum[b].iops);
		if (depth == 1)
			printf("  latency p50 %6.1f us  p99 %6.1f us",
			       sum[b].p50, sum[b].p99);
		printf("\n");
	}
	cpu_report(sum, list, nb);
	if (have_fio)
		printf("  %-30s %9.0f IOPS (fio io_uring on the file: %s; %u of %u rounds)\n",
		       "fio", fio,
		       direct ? "the disk's limit" :
				"the page cache's, no disk: no --direct",
		       fio_rounds, rounds);
	if (have_qsd) {
		printf("  ours / qsd best (aio=io_uring%s, iothread): %s",
		       direct ? ",cache.direct=on" : "",
		       ratio(sum[OURS].iops, sum[QSD_BEST].iops));
		printf("   ours / qsd defaults: %s\n",
		       ratio(sum[OURS].iops, sum[QSD_DEFAULT].iops));
		if (depth == 1)
			printf("  QD 1 p50 latency ours / qsd best: %s\n",
			       ratio(sum[OURS].p50, sum[QSD_BEST].p50));
	}
	if (have_fio)
		printf("  ours / fio: %s\n", ratio(sum[OURS].iops, fio));
	if (compare_path) {
		printf("  ours / ours-B: %s",
		       ratio(sum[OURS].iops, sum[OURS_B].iops));
		if (depth == 1)
			printf("   QD 1 p50 ours / ours-B: %s",
			       ratio(sum[OURS].p50, sum[OURS_B].p50));
		if (have_qsd)
			printf("   ours-B / qsd best: %s",
			       ratio(sum[OURS_B].iops, sum[QSD_BEST].iops));
		printf("\n");
	}
	fflush(stdout);
}

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"usage: %s [--daemon PATH] [--daemon-opt OPT] [--compare PATH]\n"
		"          [--compare-opt OPT] [--no-peers] [--io uring|sync] [--direct]\n"
		"          [--dir DIR]"
		" [--rw randread|randwrite] [--qd N] [--queues N]\n"
		"          [--seconds N] [--rounds N] [--size MIB]\n"
		"  --daemon PATH      our vhost-user-blk (default tools/vhost-user-blk)\n"
		"  --daemon-opt OPT   one more argument for it (e.g. --poll-us=32)\n"
		"  --compare PATH     another build of it, measured in the same rounds\n"
		"                     (A/B under the same load: ours / ours-B)\n"
		"  --compare-opt OPT  one more argument for that one\n"
		"  --no-peers         neither qemu-storage-daemon nor fio (with\n"
		"                     --compare: our two builds only)\n"
		"  --io ENGINE        our engine (--io=ENGINE, default uring)\n"
		"  --direct           O_DIRECT (qsd: cache.direct=on); else the page cache\n"
		"  --dir DIR          where the file goes (default /var/tmp; not tmpfs\n"
		"                     with --direct)\n"
		"  --rw MODE          randread (default) or randwrite, 4 KiB\n"
		"  --qd N             requests in flight per queue (default 32, max %u)\n"
		"  --queues N         the multi-queue job's queues (default 2, max %u;\n"
		"                     1: no multi-queue job)\n"
		"  --seconds N        per measurement (default 5)\n"
		"  --rounds N         rounds alternating the back-ends (default 2)\n"
		"  --size MIB         the file (default 1024)\n"
		"Each job prints IOPS per back-end, ratios, and the CPU each side used\n"
		"(front-end threads, back-end process, the machine): a LIMIT line says\n"
		"when the front-end or the machine's CPUs, not the back-end, capped it.\n",
		prog, MAX_QD, MAX_QUEUES);
}

int main(int argc, char *argv[])
{
	static const struct option opts[] = {
		{ "daemon", required_argument, NULL, 'd' },
		{ "daemon-opt", required_argument, NULL, 'o' },
		{ "compare", required_argument, NULL, 'c' },
		{ "compare-opt", required_argument, NULL, 'O' },
		{ "no-peers", no_argument, NULL, 'N' },
		{ "io", required_argument, NULL, 'i' },
		{ "direct", no_argument, NULL, 'D' },
		{ "dir", required_argument, NULL, 'p' },
		{ "rw", required_argument, NULL, 'w' },
		{ "qd", required_argument, NULL, 'q' },
		{ "queues", required_argument, NULL, 'Q' },
		{ "seconds", required_argument, NULL, 's' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "size", required_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *base = "/var/tmp";
	struct conn c = { 0 };
	struct statfs sfs;
	bool have_qsd, have_fio;
	uint8_t *buf;
	unsigned int k;
	int ch, fd, e;

	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			daemon_path = optarg;
			break;
		case 'o':
			daemon_opt = optarg;
			break;
		case 'c':
			compare_path = optarg;
			break;
		case 'O':
			compare_opt = optarg;
			break;
		case 'N':
			no_peers = true;
			break;
		case 'i':
			io_engine = optarg;
			break;
		case 'D':
			direct = true;
			break;
		case 'p':
			base = optarg;
			break;
		case 'w':
			if (!strcmp(optarg, "randwrite"))
				write_mode = true;
			else if (strcmp(optarg, "randread"))
				goto bad;
			break;
		case 'q':
			qd = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'Q':
			max_queues = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 's':
			seconds = strtod(optarg, NULL);
			break;
		case 'r':
			rounds = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'm':
			size_mib = (unsigned int)strtoul(optarg, NULL, 0);
			break;
		case 'h':
			usage(stdout, argv[0]);
			return 0;
		default:
			goto bad;
		}
	}
	if (seconds <= 0 || size_mib < 1 || size_mib > 65536 || qd < 1 ||
	    qd > MAX_QD || rounds < 1 || max_queues < 1 ||
	    max_queues > MAX_QUEUES) {
		fprintf(stderr, "vu_blk: bad arguments (qd 1..%u, queues 1..%u)\n",
			MAX_QD, MAX_QUEUES);
		return 2;
	}
	if (compare_path && access(compare_path, X_OK) != 0) {
		fprintf(stderr, "vu_blk: --compare %s: not an executable\n",
			compare_path);
		return 1;
	}
	if (access(daemon_path, X_OK) != 0) {
		fprintf(stderr,
			"vu_blk: %s not found (run from the build directory or pass --daemon)\n",
			daemon_path);
		return 1;
	}
	if (statfs(base, &sfs) < 0)
		die(base, errno);
	/* O_DIRECT measures a disk: tmpfs has none (nor O_DIRECT < 6.6) */
	if (direct && sfs.f_type == TMPFS_MAGIC) {
		fprintf(stderr, "vu_blk: %s is tmpfs: --direct needs a disk file system (--dir)\n",
			base);
		return 1;
	}
	have_qsd = !no_peers && in_path("qemu-storage-daemon");
	have_fio = !no_peers && in_path("fio");

	snprintf(dir, sizeof(dir), "%s/vu_blk.XXXXXX", base);
	if (!mkdtemp(dir))
		die("mkdtemp", errno);
	atexit(cleanup);
	signal(SIGINT, exit);
	snprintf(img, sizeof(img), "%s/disk.img", dir);
	snprintf(socks[OURS], sizeof(socks[0]), "%s/ours.sock", dir);
	snprintf(socks[QSD_BEST], sizeof(socks[0]), "%s/qsd-best.sock", dir);
	snprintf(socks[QSD_DEFAULT], sizeof(socks[0]), "%s/qsd-def.sock", dir);
	snprintf(socks[OURS_B], sizeof(socks[0]), "%s/ours-b.sock", dir);

	/* the file, written (real blocks, not holes): in the page cache too */
	fd = open(img, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	buf = malloc(1 << 20);
	if (fd < 0 || !buf)
		die("image", errno);
	{
		uint64_t s = 0x2545f4914f6cdd1dull;

		for (k = 0; k < size_mib; k++) {
			unsigned int j;

			for (j = 0; j < (1u << 20) / 8; j++)
				((uint64_t *)(void *)buf)[j] = xorshift(&s);
			if (write(fd, buf, 1 << 20) != 1 << 20)
				die("image write", errno);
		}
	}
	free(buf);
	if (fsync(fd) < 0)
		die("image fsync", errno);
	close(fd);
	c.sectors = (uint64_t)size_mib << 11;

	if ((e = vh_ctx_new(&c.ctx)) < 0 || (e = vh_mem_new(c.ctx, &c.mem)) < 0 ||
	    (e = vh_mem_add_memfd(c.mem, 0, MEM_SIZE, (void **)&c.guest)) < 0)
		die("guest memory", e);

	printf("4 KiB %s, %s, %s (%u MiB), our engine --io=%s, %u round(s) of %.1f s\n",
	       write_mode ? "randwrite" : "randread",
	       direct ? "O_DIRECT (qsd: cache.direct=on)" : "page cache", img,
	       size_mib, io_engine, rounds, seconds);
	printf("qemu-storage-daemon best: aio=io_uring%s; defaults: aio=threads%s\n",
	       direct ? ",cache.direct=on" : "",
	       direct ? ",cache.direct=on" : "");
	if (!have_qsd)
		printf("qemu-storage-daemon: %s, no comparison\n",
		       no_peers ? "--no-peers" : "not installed");
	if (!have_fio)
		printf("fio: %s, no disk limit\n",
		       no_peers ? "--no-peers" : "not installed");
	job(&c, 1, qd, have_qsd, have_fio);
	if (max_queues > 1)
		job(&c, max_queues, qd, have_qsd, have_fio);
	if (qd != 1)
		job(&c, 1, 1, have_qsd, have_fio);
	vh_mem_unref(c.mem);
	vh_ctx_unref(c.ctx);
	return 0;
bad:
	usage(stderr, argv[0]);
	return 2;
}
