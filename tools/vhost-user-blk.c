// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhost-user-blk - a vhost-user block device back-end (virtio 1.3, 5.2)
 * serving a file or a block device, built on vh_daemon.
 *
 * One worker thread per queue by default (--threads to share them).  The
 * uring engine (default) submits every request of a kick at once on the
 * queue's io_uring and completes them from the worker's poll loop
 * (vhost-user-blk-uring.c); the sync engine (--io=sync, or where io_uring
 * cannot be set up) runs them one after the other on the worker.  With the
 * front-end's inflight region (PROTOCOL_F_INFLIGHT_SHMFD) a daemon killed
 * mid-I/O and started again on the same socket runs what was left in
 * flight, in order, once each (vhost-user-blk-io.c).
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon-args.h"
#include "libvhost.h"
#include "parse-num.h"
#include "vhost-user-blk.h"

struct blk {
	struct blk_dev dev;
	struct blk_queue queues[BLK_MAX_QUEUES];
	uint8_t config[VH_VU_BACKEND_CONFIG_MAX];
	/*
	 * The write cache the administrator (--writethrough) or the driver
	 * (CONFIG_WCE) chose: 1 writeback.  It is the mode only with FLUSH
	 * negotiated (blk_cache_mode()).  Control thread only.
	 */
	uint8_t wce_chosen;
};

static struct blk *to_blk(struct vh_daemon *d)
{
	return vh_daemon_get_userdata(d);
}

static int blk_handle_event(struct vh_daemon *d, void *data, unsigned int idx,
			    struct vh_devq *vring, void *thread_data)
{
	struct blk *b = to_blk(d);
	int r;

	(void)thread_data;
	if (idx >= b->dev.num_queues || b->queues[idx].vring != vring)
		return -EINVAL;
	r = blk_queue_process(&b->queues[idx]);
	return r < 0 ? r : 0;
}

/*
 * The write cache mode, from the choice and the features (5.2.5): a driver
 * without FLUSH cannot ask for its writes to reach stable storage (Linux
 * then takes the cache to be writethrough), so without FLUSH every write
 * is synced whatever was chosen.
 *
 * The writeback byte is 0 where 5.2.5.1 says so (CONFIG_WCE without
 * FLUSH) and the chosen mode otherwise.  A driver without CONFIG_WCE never
 * reads the byte, but a front-end may cache it for the next driver: QEMU
 * reads the config space once and serves the guest from that copy, and
 * the firmware's driver (SeaBIOS: neither FLUSH nor CONFIG_WCE) runs
 * before the kernel's.  Reporting writethrough for the firmware's sake
 * would leave the kernel's driver, which negotiates FLUSH, a cache it
 * believes off.
 */
static void blk_cache_mode(struct blk *b, bool say)
{
	const uint64_t f = b->dev.features;
	const size_t wce = offsetof(struct virtio_blk_config, wce);
	uint8_t wb = b->wce_chosen && (f & (1ull << VIRTIO_BLK_F_FLUSH));

	/* a change, or each driver that left out FLUSH against the choice */
	if (say &&
	    (__atomic_load_n(&b->dev.writethrough, __ATOMIC_RELAXED) != !wb ||
	     (!wb && b->wce_chosen)))
		blk_log(&b->dev, "info", "write cache %s%s\n",
			wb ? "on (writeback)" : "off: every write is synced",
			!wb && b->wce_chosen ? " (FLUSH not negotiated)" : "");
	__atomic_store_n(&b->dev.writethrough, !wb, __ATOMIC_RELAXED);
	b->config[wce] = (f & (1ull << VIRTIO_BLK_F_CONFIG_WCE)) &&
				 !(f & (1ull << VIRTIO_BLK_F_FLUSH)) ?
				 0 : b->wce_chosen;
}

static int blk_set_features(struct vh_daemon *d, void *data, uint64_t features)
{
	struct blk *b = to_blk(d);

	b->dev.features = features;
	blk_cache_mode(b, true);
	return 0;
}

static int blk_get_config(struct vh_daemon *d, void *data, uint32_t offset,
			  void *buf, uint32_t size)
{
	struct blk *b = to_blk(d);

	/* vhost-user.rst "GET_CONFIG": offset + size within the space */
	if (offset > sizeof(b->config) || size > sizeof(b->config) - offset)
		return -EINVAL;
	memcpy(buf, b->config + offset, size);
	return 0;
}

static int blk_set_config(struct vh_daemon *d, void *data, uint32_t offset,
			  const void *buf, uint32_t size, uint32_t flags)
{
	struct blk *b = to_blk(d);
	const size_t wce = offsetof(struct virtio_blk_config, wce);
	uint8_t v;

	/* front-end write or migration restore: the same rules (5.2.4) */
	(void)flags;
	/* only the writeback byte is writable, and only with CONFIG_WCE */
	if (!(b->dev.features & (1ull << VIRTIO_BLK_F_CONFIG_WCE)) ||
	    offset != wce || size != 1)
		return -EPERM;
	memcpy(&v, buf, 1);
	if (v > 1)
		return -EINVAL;
	b->wce_chosen = v;
	blk_cache_mode(b, true);
	return 0;
}

static int blk_queue_started(struct vh_daemon *d, void *data, unsigned int idx,
			     struct vh_devq *vring)
{
	struct blk *b = to_blk(d);
	void *region = NULL;
	size_t len = 0;

	if (idx >= b->dev.num_queues)
		return -EINVAL;
	if (vh_daemon_get_inflight(d, idx, &region, &len) < 0)
		region = NULL;
	return blk_queue_start(&b->queues[idx], vring, region, len);
}

static void blk_queue_stopped(struct vh_daemon *d, void *data, unsigned int idx,
			      struct vh_devq *vring)
{
	struct blk *b = to_blk(d);

	(void)vring;
	if (idx < b->dev.num_queues)
		blk_queue_stop(&b->queues[idx]);
}

static void blk_reset(struct vh_daemon *d, void *data)
{
	struct blk *b = to_blk(d);

	b->dev.features = 0;
	/*
	 * The chosen cache mode (wce_chosen) outlives the connection (reset
	 * runs on disconnect too): a reconnecting front-end does not send
	 * it again, and dropping to writeback behind a guest that chose
	 * writethrough would lose data on a host crash.  Until the next
	 * SET_FEATURES applies it, writes are synced (no FLUSH yet) and
	 * GET_CONFIG tells the choice.
	 */
	blk_cache_mode(b, false);
}

static const struct vh_daemon_ops blk_ops = {
	.size = sizeof(blk_ops),
	.handle_event = blk_handle_event,
	.set_features = blk_set_features,
	.get_config = blk_get_config,
	.set_config = blk_set_config,
	.queue_started = blk_queue_started,
	.queue_stopped = blk_queue_stopped,
	.reset = blk_reset,
};

/* ---------------------------------------------------------------------- */
/* command line                                                           */
/* ---------------------------------------------------------------------- */

enum {
	OPT_SERIAL = 0x100,
	OPT_QUEUE_SIZE,
	OPT_WRITETHROUGH,
	OPT_IO,
	OPT_POLL_US,
	OPT_INLINE_READS,
};

/*
 * --poll-us default: off.  Spinning (as QEMU's poll-max-ns) took QD 1 p50
 * through the page cache from about 5.2 to 4.5 us in bench/vu_blk on a
 * busy two-CPU host, and left O_DIRECT's in the noise (it no longer spins
 * through a disk read: vhost-user-blk-uring.c); not worth a CPU spinning
 * by default on a shared host.
 */
#define BLK_POLL_US_DEFAULT 0u
#define BLK_POLL_US_MAX 1000u

/*
 * Each io_uring queue watches its ring's eventfd on its worker: all the
 * queues on one worker fit in vh_daemon's VH_VU_MAX_QUEUES watches.
 */
_Static_assert(BLK_MAX_QUEUES <= VH_VU_MAX_QUEUES,
	       "every io_uring queue's eventfd fits on one worker");

static const struct option options[] = {
	DAEMON_LONG_OPTIONS,
	DAEMON_VDUSE_OPTION,
	{ "blk-file", required_argument, NULL, 'b' },
	{ "read-only", no_argument, NULL, 'r' },
	{ "direct", no_argument, NULL, 'D' },
	{ "num-queues", required_argument, NULL, 'n' },
	{ "serial", required_argument, NULL, OPT_SERIAL },
	{ "queue-size", required_argument, NULL, OPT_QUEUE_SIZE },
	{ "writethrough", no_argument, NULL, OPT_WRITETHROUGH },
	{ "io", required_argument, NULL, OPT_IO },
	{ "poll-us", required_argument, NULL, OPT_POLL_US },
	{ "inline-reads", no_argument, NULL, OPT_INLINE_READS },
	{ "help", no_argument, NULL, 'h' },
	{ 0 }
};

static void usage(FILE *f, const char *prog)
{
	fprintf(f,
		"Usage: %s --blk-file=PATH (--socket-path=PATH | --fd=FD |\n"
		"       --vduse=NAME) [OPTIONS]\n"
		"vhost-user (or VDUSE) block device back-end\n\n"
		"  -b, --blk-file=PATH     backing file or block device\n"
		"  -r, --read-only         export read-only (VIRTIO_BLK_F_RO)\n"
		"  -D, --direct            open the backing store with O_DIRECT\n"
		"      --io=ENGINE         uring (asynchronous, the default; sync\n"
		"                          where io_uring cannot be set up) or\n"
		"                          sync (one request at a time per queue)\n"
		"      --poll-us=N         uring: spin N us on an empty queue\n"
		"                          before sleeping, 0..%u (default %u)\n"
		"      --inline-reads      uring: try buffered reads on the worker\n"
		"                          first (preadv2 RWF_NOWAIT), io_uring\n"
		"                          for what the page cache does not hold\n"
		"  -n, --num-queues=N      virtqueues, 1..%u (default 1)\n"
		"      --serial=STRING     GET_ID answer (up to 20 bytes)\n"
		"      --queue-size=N      largest ring accepted (a power of two up to\n"
		"                          4096, default 1024)\n"
		"      --writethrough      start with the write cache off (each\n"
		"                          write is synced before it completes;\n"
		"                          the guest can change it: CONFIG_WCE)\n"
		"%s"
		"%s"
		"  -h, --help              this help\n",
		prog, BLK_POLL_US_MAX, BLK_POLL_US_DEFAULT, BLK_MAX_QUEUES,
		DAEMON_OPTIONS_HELP, DAEMON_VDUSE_HELP DAEMON_VDUSE_STATE_HELP);
}

static int parse_uint(const char *s, unsigned long min, unsigned long max,
		      unsigned int *out)
{
	unsigned long long v;
	int r = parse_dec(s, min, max, &v);

	if (r == 0)
		*out = (unsigned int)v;
	return r;
}

/* No --serial: a stable one from the path (FNV-1a), 20 bytes at most. */
static void derive_serial(char serial[VIRTIO_BLK_ID_BYTES], const char *path)
{
	char tmp[VIRTIO_BLK_ID_BYTES + 1];
	char *real = realpath(path, NULL);
	const char *p = real ? real : path;
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *p; p++)
		h = (h ^ (uint8_t)*p) * 0x100000001b3ull;
	free(real);
	snprintf(tmp, sizeof(tmp), "vublk-%014llx",
		 (unsigned long long)(h & 0xffffffffffffffull));
	memcpy(serial, tmp, VIRTIO_BLK_ID_BYTES);
}

int main(int argc, char *argv[])
{
	static const char *const caps[] = { "blk-file", "read-only", NULL };
	struct vh_daemon_device dev = { .size = sizeof(dev), .type = "blk" };
	const char *file = NULL, *serial = NULL;
	unsigned int queue_size = 1024, poll_us, i;
	struct daemon_args args;
	struct vh_daemon *d = NULL;
	struct vh_ctx *ctx = NULL;
	struct blk *b;
	int c, r, ret = EXIT_FAILURE;

	b = calloc(1, sizeof(*b));
	if (!b) {
		fprintf(stderr, "out of memory\n");
		return EXIT_FAILURE;
	}
	b->dev.fd = -1;
	b->dev.num_queues = 1;
	b->dev.poll_ns = BLK_POLL_US_DEFAULT * 1000ull;
	daemon_args_init(&args);
	while ((c = getopt_long(argc, argv, "b:rDn:h", options, NULL)) != -1) {
		r = daemon_args_parse(&args, c, optarg);
		if (r > 0)
			continue;
		if (r < 0)
			goto out;
		switch (c) {
		case 'b':
			file = optarg;
			break;
		case 'r':
			b->dev.read_only = true;
			break;
		case 'D':
			b->dev.direct = true;
			break;
		case 'n':
			if (parse_uint(optarg, 1, BLK_MAX_QUEUES,
				       &b->dev.num_queues) < 0) {
				fprintf(stderr,
					"bad --num-queues: %s (decimal 1..%u)\n",
					optarg, BLK_MAX_QUEUES);
				goto out;
			}
			break;
		case OPT_SERIAL:
			if (strlen(optarg) > VIRTIO_BLK_ID_BYTES) {
				fprintf(stderr, "--serial: at most %u bytes\n",
					VIRTIO_BLK_ID_BYTES);
				goto out;
			}
			serial = optarg;
			break;
		case OPT_WRITETHROUGH:
			b->dev.writethrough = 1;
			break;
		case OPT_IO:
			if (!strcmp(optarg, "uring")) {
				b->dev.engine = BLK_IO_URING;
			} else if (!strcmp(optarg, "sync")) {
				b->dev.engine = BLK_IO_SYNC;
			} else {
				fprintf(stderr,
					"bad --io: %s (uring or sync)\n",
					optarg);
				goto out;
			}
			break;
		case OPT_POLL_US:
			if (parse_uint(optarg, 0, BLK_POLL_US_MAX, &poll_us) < 0) {
				fprintf(stderr, "bad --poll-us: %s (decimal 0..%u)\n",
					optarg, BLK_POLL_US_MAX);
				goto out;
			}
			b->dev.poll_ns = poll_us * 1000ull;
			break;
		case OPT_INLINE_READS:
			b->dev.inline_reads = true;
			break;
		case OPT_QUEUE_SIZE:
			if (parse_uint(optarg, 1, BLK_IOV_MAX,
				       &queue_size) < 0 ||
			    (queue_size & (queue_size - 1))) {
				fprintf(stderr,
					"bad --queue-size: %s (decimal, a power of 2 up to %u)\n",
					optarg, BLK_IOV_MAX);
				goto out;
			}
			break;
		case 'h':
			usage(stdout, argv[0]);
			ret = daemon_stdout_status("vhost-user-blk") ?
				      EXIT_FAILURE :
				      EXIT_SUCCESS;
			goto out;
		default:
			usage(stderr, argv[0]);
			goto out;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "unexpected argument: %s\n", argv[optind]);
		goto out;
	}
	if (args.print_capabilities) {
		daemon_print_capabilities(stdout, "blk", caps);
		ret = daemon_stdout_status("vhost-user-blk") ? EXIT_FAILURE :
							       EXIT_SUCCESS;
		goto out;
	}
	if (daemon_args_check(&args) < 0)
		goto out;
	if (!file) {
		fprintf(stderr, "--blk-file is required\n");
		goto out;
	}

	r = vh_ctx_new(&ctx);
	if (r < 0) {
		fprintf(stderr, "vh_ctx_new: %s\n", strerror(-r));
		goto out;
	}
	if (args.verbose)
		vh_ctx_set_log_priority(ctx, LOG_DEBUG);
	b->dev.ctx = ctx;
	r = blk_dev_open(&b->dev, file);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", file, strerror(-r));
		goto out;
	}
	if (serial) {
		memset(b->dev.serial, 0, sizeof(b->dev.serial));
		memcpy(b->dev.serial, serial, strlen(serial));
	} else {
		derive_serial(b->dev.serial, file);
	}
	b->dev.seg_max = 126;
	b->dev.max_dwz_sectors = (1u << 30) / BLK_SECTOR;
	blk_dev_config(&b->dev, (struct virtio_blk_config *)b->config);
	b->wce_chosen = !b->dev.writethrough;
	/* no features yet: writes synced, the byte says the choice */
	blk_cache_mode(b, false);
	b->dev.num_threads = args.threads ? args.threads : b->dev.num_queues;
	if (b->dev.num_threads > b->dev.num_queues)
		b->dev.num_threads = b->dev.num_queues;
	for (i = 0; i < b->dev.num_queues; i++) {
		r = blk_queue_init(&b->queues[i], &b->dev, i);
		if (r < 0) {
			fprintf(stderr, "queue %u: %s\n", i, strerror(-r));
			goto out;
		}
	}
	/* io_uring for every queue, or (saying why, once) for none */
	for (i = 0; b->dev.engine == BLK_IO_URING && i < b->dev.num_queues;
	     i++) {
		if (blk_uring_init(&b->queues[i], queue_size) < 0) {
			unsigned int k;

			b->dev.engine = BLK_IO_SYNC;
			for (k = 0; k < b->dev.num_queues; k++) {
				blk_uring_fini(&b->queues[k]);
				b->queues[k].engine = BLK_IO_SYNC;
			}
		}
	}

	/*
	 * Live migration: the library logs every guest write it makes for
	 * us (used elements and the device-writable buffers of each pushed
	 * chain, up to the pushed length) in the front-end's dirty log.
	 */
	dev.features = blk_dev_features(&b->dev) |
		       (1ull << VH_VU_VIRTIO_F_RING_PACKED) |
		       (1ull << VH_VU_VHOST_F_LOG_ALL);
	/* VDUSE: no vhost dirty log (the kernel's driver has none) */
	if (args.vduse)
		dev.features &= ~(1ull << VH_VU_VHOST_F_LOG_ALL);
	if (args.no_packed)
		dev.features &= ~(1ull << VH_VU_VIRTIO_F_RING_PACKED);
	dev.protocol_features = (1ull << VH_VU_PROTOCOL_F_MQ) |
				(1ull << VH_VU_PROTOCOL_F_LOG_SHMFD) |
				(1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |
				(1ull << VH_VU_PROTOCOL_F_BACKEND_REQ) |
				(1ull << VH_VU_PROTOCOL_F_CONFIG) |
				(1ull << VH_VU_PROTOCOL_F_INFLIGHT_SHMFD) |
				(1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS) |
				(1ull << VH_VU_PROTOCOL_F_RESET_DEVICE) |
				(1ull << VH_VU_PROTOCOL_F_STATUS);
	dev.num_queues = b->dev.num_queues;
	dev.max_queue_size = queue_size;
	dev.config_size = sizeof(b->config);
	dev.num_threads = b->dev.num_threads;
	dev.lock = VH_DAEMON_LOCK_NONE;
	r = vh_daemon_new(ctx, &dev, &blk_ops, b, &d);
	if (r < 0) {
		fprintf(stderr, "vh_daemon_new: %s\n", strerror(-r));
		goto out;
	}
	b->dev.daemon = d;
	fprintf(stderr,
		"vhost-user-blk: %s, %llu sectors, %u queue(s), %u thread(s), %s I/O%s%s%s%s\n",
		file, (unsigned long long)b->dev.capacity, b->dev.num_queues,
		b->dev.num_threads,
		b->dev.engine == BLK_IO_URING ? "io_uring" : "synchronous",
		b->dev.read_only ? ", read-only" : "",
		b->dev.direct ? ", O_DIRECT" : "",
		args.vduse ? ", VDUSE device " : "",
		args.vduse ? args.vduse : "");
	r = daemon_args_run(d, &args);
	if (r < 0)
		fprintf(stderr, "vhost-user-blk: %s\n", strerror(-r));
	else
		ret = EXIT_SUCCESS;
out:
	vh_daemon_unref(d);
	for (i = 0; i < BLK_MAX_QUEUES; i++)
		blk_queue_fini(&b->queues[i]);
	blk_dev_close(&b->dev);
	free(b);
	vh_ctx_unref(ctx);
	return ret;
}
