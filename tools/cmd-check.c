// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhostctl check net|vsock|scsi|vdpa|vduse|all: end-to-end dataplane self-checks
 * of this host's kernel, driven as the selftests drive it, with the
 * library's userspace virtio driver as the guest.  One PASS/FAIL/SKIP line
 * per check; the helpers all checks share are here too.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "libvhost-kernel.h"
#include "check.h"

/* ------------------------------------------------------------------ */
/* helpers                                                             */
/* ------------------------------------------------------------------ */

/*
 * Set by SIGINT/SIGTERM/SIGHUP: the waits below give up with -EINTR, so
 * that the running check fails and still removes what it created.
 */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

bool chk_interrupted(void)
{
	return interrupted != 0;
}

enum chk_outcome chk_set(struct chk_result *r, enum chk_outcome outcome,
			 const char *fmt, ...)
{
	va_list ap;

	r->outcome = outcome;
	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
	return outcome;
}

enum chk_outcome chk_fail_err(struct chk_result *r, const char *step, int err)
{
	return chk_set(r, CHK_FAIL, "%s: %s", step,
		       err ? strerror(err < 0 ? -err : err) : "failed");
}

int chk_guest_init(struct chk_guest *g, struct vh_ctx *ctx, uint64_t size)
{
	void *host = NULL;
	int err;

	memset(g, 0, sizeof(*g));
	/* vhost wants page-aligned regions (<linux/vhost_types.h>) */
	size = (size + 4095) & ~4095ull;
	err = vh_mem_new(ctx, &g->mem);
	if (err)
		return err;
	err = vh_mem_add_memfd(g->mem, 0, size, &host);
	if (err) {
		g->mem = vh_mem_unref(g->mem);
		return err;
	}
	g->host = host;
	g->size = size;
	g->next = 0x1000; /* GPA 0 stays unused: it looks like NULL */
	return 0;
}

void chk_guest_fini(struct chk_guest *g)
{
	vh_mem_unref(g->mem);
	memset(g, 0, sizeof(*g));
}

uint64_t chk_guest_alloc(struct chk_guest *g, uint64_t len, uint64_t align)
{
	uint64_t gpa = (g->next + align - 1) & ~(align - 1);

	if (!g->mem || len > g->size || gpa > g->size - len)
		return 0;
	g->next = gpa + len;
	return gpa;
}

void *chk_gpa(struct chk_guest *g, uint64_t gpa)
{
	return g->host + gpa;
}

enum chk_outcome chk_kdev_open(struct chk_result *r, struct vh_ctx *ctx,
			       int type, struct vh_kdev **dev)
{
	const uint64_t version_1 = 1ull << 32;
	uint64_t offered = 0;
	char what[64];
	int err;

	err = vh_kdev_open_type(ctx, (enum vh_kdev_type)type, dev);
	if (err) {
		snprintf(what, sizeof(what), "open /dev/%s",
			 vh_kdev_type_name((enum vh_kdev_type)type));
		return chk_fail_err(r, what, err);
	}
	err = vh_kdev_set_owner(*dev);
	if (!err)
		err = vh_kdev_get_features(*dev, &offered);
	if (err)
		return chk_fail_err(r, "owner/features", err);
	if (!(offered & version_1))
		return chk_set(r, CHK_FAIL, "VERSION_1 not offered");
	err = vh_kdev_set_features(*dev, version_1);
	if (err)
		return chk_fail_err(r, "set features", err);
	return CHK_PASS;
}

enum chk_outcome chk_kdev_ring(struct chk_result *r, struct vh_ctx *ctx,
			       struct vh_kdev *dev, struct chk_guest *g,
			       unsigned int idx, unsigned int num,
			       struct vh_drvq **vq, int *kick, int *call)
{
	uint64_t ring = chk_guest_alloc(g, vh_drvq_ring_bytes(num), 4096);
	int err;

	if (!ring)
		return chk_fail_err(r, "guest memory", -ENOMEM);
	err = vh_drvq_new(ctx, g->mem, idx, num, ring, vq);
	if (!err)
		err = vh_drvq_set_features(*vq, 1ull << 32 /* VERSION_1 */);
	if (err)
		return chk_fail_err(r, "vring", err);
	*kick = chk_eventfd();
	*call = chk_eventfd();
	if (*kick < 0 || *call < 0)
		return chk_fail_err(r, "eventfd", -EMFILE);
	err = vh_drvq_set_kick_fd(*vq, *kick);
	if (!err)
		err = vh_drvq_set_call_fd(*vq, *call);
	if (!err)
		err = vh_kdev_setup_vring(dev, idx, *vq, *kick, *call);
	if (err)
		return chk_fail_err(r, "vring setup", err);
	return CHK_PASS;
}

int chk_eventfd(void)
{
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);

	return fd < 0 ? -errno : fd;
}

void chk_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int chk_poll(int fd, short events, int ms)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	if (interrupted)
		return -EINTR;
	r = poll(&p, 1, ms);
	if (r < 0 && errno == EINTR)
		return interrupted ? -EINTR : 0;
	return r < 0 ? -errno : r;
}

void chk_drain(int fd)
{
	uint64_t val;

	if (read(fd, &val, sizeof(val)) < 0)
		return; /* nothing pending */
}

uint64_t chk_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void chk_fill(void *buf, size_t len, uint32_t seed)
{
	uint8_t *p = buf;
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

int chk_wait_used(struct vh_drvq *vq, int call_fd, void **token, uint32_t *len,
		  int ms)
{
	uint64_t now, deadline = chk_now_ms() + (uint64_t)ms;
	int r;

	for (;;) {
		r = vh_drvq_get_used(vq, token, len);
		if (r != 0)
			return r;
		/* re-arm, then look again before sleeping */
		if (vh_drvq_enable_cb(vq) == 1)
			continue;
		now = chk_now_ms();
		if (interrupted)
			return -EINTR;
		if (now >= deadline)
			return -ETIMEDOUT;
		if (chk_poll(call_fd, POLLIN,
			     deadline - now < 100 ? (int)(deadline - now) :
						    100) == 1)
			chk_drain(call_fd);
	}
}

/* ------------------------------------------------------------------ */
/* the command                                                         */
/* ------------------------------------------------------------------ */

struct check_def {
	const char *name;
	void (*fn)(struct vhc *v, struct chk_result *r);
};

static const struct check_def checks[] = {
	{ "net", check_net },
	{ "vsock", check_vsock },
	{ "scsi", check_scsi },
	{ "vdpa", check_vdpa },
	{ "vduse", check_vduse },
};

#define NCHECKS (sizeof(checks) / sizeof(checks[0]))

static void check_usage(FILE *f)
{
	fputs("Usage: vhostctl check net|vsock|scsi|vdpa|vduse|all ...\n"
	      "  End-to-end dataplane self-checks of this host's kernel (root):\n"
	      "  net    vhost-net + tap: a frame each way, bytes compared\n"
	      "  vsock  vhost-vsock: host AF_VSOCK stream to a userspace guest,\n"
	      "         data both ways, orderly close\n"
	      "  scsi   vhost-scsi + LIO ramdisk: INQUIRY, READ CAPACITY(16),\n"
	      "         WRITE(10)/READ(10) of a pattern\n"
	      "  vdpa   vdpa_sim_net device: status handshake, IOTLB, a frame\n"
	      "         looped back TX -> RX\n"
	      "  vduse  a 1 MiB RAM disk served by vhostctl as a VDUSE virtio-blk\n"
	      "         device, bound to virtio_vdpa: O_DIRECT pattern written\n"
	      "         to /dev/vdX, read back, compared there and in the RAM disk\n"
	      "         (loads vduse and virtio_vdpa)\n"
	      "  all    each of the above\n"
	      "  Everything created (tap, LIO target, vDPA and VDUSE devices) is\n"
	      "  removed, also on failure and on SIGINT/SIGTERM/SIGHUP - but\n"
	      "  the vduse check's devices while requests on them stay\n"
	      "  unanswered (its FAIL line names them).\n"
	      "  Exit: 0 all run checks passed, 1 a check failed, 3 not root,\n"
	      "  4 a single named check was skipped (device or module absent)\n"
	      "  or every check was skipped; with several checks a skip alone\n"
	      "  does not fail the run.\n",
	      f);
}

static const char *outcome_name(enum chk_outcome o)
{
	return o == CHK_PASS ? "pass" : o == CHK_FAIL ? "fail" : "skip";
}

int cmd_check(struct vhc *v, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhc_out *o = &v->out;
	bool want[NCHECKS] = { false };
	unsigned int nwant = 0, passed = 0, failed = 0, skipped = 0;
	struct sigaction sa = { 0 };
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			check_usage(stdout);
			return VHC_EXIT_OK;
		default:
			check_usage(stderr);
			return VHC_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		check_usage(stderr);
		return VHC_EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++) {
		bool found = false;

		if (vhc_is_help(argv[i])) {
			check_usage(stdout);
			return VHC_EXIT_OK;
		}
		for (unsigned int k = 0; k < NCHECKS; k++) {
			if (!strcmp(argv[i], "all") ||
			    !strcmp(argv[i], checks[k].name)) {
				want[k] = true;
				found = true;
			}
		}
		if (!found) {
			vhc_err(v, "check: unknown check \"%s\" (try --help)",
				argv[i]);
			return VHC_EXIT_USAGE;
		}
	}
	/* refuse before anything is created or opened */
	if (geteuid() != 0) {
		vhc_err(v, "check: needs root (creates taps, LIO targets, "
			   "vDPA and VDUSE devices)");
		return VHC_EXIT_PERM;
	}
	/* no SA_RESTART: a signal ends the waits, the teardown still runs */
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/*
	 * a closed pipe on stdout or stderr (vhostctl -v check | head) is a
	 * write error, not the end before the teardown
	 */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	out_open_obj(o, NULL);
	out_open_arr(o, "checks");
	for (unsigned int k = 0; k < NCHECKS; k++) {
		struct chk_result r = { CHK_FAIL, "" };

		if (!want[k] || interrupted)
			continue;
		nwant++;
		checks[k].fn(v, &r);
		if (interrupted && r.outcome == CHK_FAIL) {
			char why[sizeof(r.detail)];

			memcpy(why, r.detail, sizeof(why));
			chk_set(&r, CHK_FAIL, "interrupted (%s)", why);
		}
		switch (r.outcome) {
		case CHK_PASS:
			passed++;
			break;
		case CHK_SKIP:
			skipped++;
			break;
		default:
			failed++;
		}
		out_open_obj(o, NULL);
		out_str(o, "name", "%-6s ", checks[k].name);
		out_text(o, "%s",
			 r.outcome == CHK_PASS ? "PASS" :
			 r.outcome == CHK_FAIL ? "FAIL" :
						 "SKIP");
		out_str(o, "result", NULL, outcome_name(r.outcome));
		out_str(o, "detail", "  %s\n", r.detail);
		out_close_obj(o);
		fflush(o->f);
	}
	out_close_arr(o);
	out_u64(o, "passed", "%llu passed, ", passed);
	out_u64(o, "failed", "%llu failed, ", failed);
	out_u64(o, "skipped", "%llu skipped\n", skipped);
	out_close_obj(o);
	out_end(o);
	if (interrupted) {
		vhc_err(v, "check: interrupted; what it created was removed");
		return VHC_EXIT_FAIL;
	}
	if (failed)
		return VHC_EXIT_FAIL;
	if (skipped == nwant)
		return VHC_EXIT_ABSENT;
	return VHC_EXIT_OK;
}
