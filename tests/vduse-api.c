// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vduse-api NAME: vh_vduse_dev against the real /dev/vduse/control (run
 * as root in the test VM by tests/vm-vduse-blk.sh, after modprobe vduse):
 * configurations refused before the kernel sees them, and by the kernel
 * (a device id VDUSE does not allow, a name already taken), a device
 * offering packed rings created and destroyed, a device created (its
 * node, a CLOEXEC pollable fd, no request pending) and destroyed by the
 * last unref.  Prints "PASS case" / "FAIL case: why"
 * lines; exits 0 if every case passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvhost.h"
#include "libvhost-vduse.h"

static int failed;

/* why: what went wrong, r: the value that shows it */
static void check(int cond, const char *name, const char *why, int r)
{
	if (cond) {
		printf("PASS %s\n", name);
		return;
	}
	printf("FAIL %s: %s (%d)\n", name, why, r);
	failed = 1;
}

/* virtio-blk config: capacity (le64, sectors) first */
static uint8_t blk_config[60] = { 0x00, 0x80 }; /* 32768 sectors */

static int make(struct vh_ctx *ctx, const char *name, uint32_t device_id,
		uint64_t features, unsigned int config_size,
		struct vh_vduse_dev **out)
{
	static uint8_t big[65536];
	struct vh_vduse_config c = {
		.size = sizeof(c),
		.name = name,
		.device_id = device_id,
		.features = features,
		.num_queues = 1,
		.max_queue_size = 256,
		.config = config_size > sizeof(blk_config) ? big : blk_config,
		.config_size = config_size,
	};

	*out = NULL;
	return vh_vduse_dev_new(ctx, &c, NULL, NULL, out);
}

int main(int argc, char **argv)
{
	static const char *const bad_names[] = { "", "a/b", "control", "..",
						 "." };
	struct vh_vduse_dev *dev = NULL, *dup = NULL;
	struct vh_ctx *ctx;
	char path[300];
	unsigned int i;
	int r, fd;

	if (argc != 2 || strlen(argv[1]) > 200) {
		fprintf(stderr, "usage: %s NAME\n", argv[0]);
		return 2;
	}
	if (vh_ctx_new(&ctx) < 0)
		return 1;
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		r = make(ctx, bad_names[i], 2, 0, sizeof(blk_config), &dev);
		if (r != -EINVAL) {
			check(0, "bad_name", "accepted a bad name", r);
			vh_vduse_dev_unref(dev);
			goto out;
		}
	}
	check(1, "bad_name", "", 0);
	/* packed rings are offered as they are (the kernel takes them) */
	r = make(ctx, argv[1], 2, 1ull << 34 /* RING_PACKED */,
		 sizeof(blk_config), &dev);
	check(r == 0 && dev, "packed_create", "vh_vduse_dev_new", r);
	snprintf(path, sizeof(path), "/dev/vduse/%s", argv[1]);
	check(vh_vduse_dev_unref(dev) == NULL && access(path, F_OK) < 0,
	      "packed_destroyed", "node left", 0);
	dev = NULL;
	r = make(ctx, argv[1], 2, 0, 65536, &dev);
	check(r == -EINVAL && !dev, "config_too_big", "got", r);
	r = make(ctx, argv[1], 0, 0, sizeof(blk_config), &dev);
	check(r == -EINVAL && !dev, "no_device_id", "got", r);
	/* the kernel's own check (vduse_dev.c: allowed device ids) */
	r = make(ctx, argv[1], 9 /* virtio-9p */, 0, 0, &dev);
	check(r < 0 && !dev, "kernel_refuses_type", "got", r);
	snprintf(path, sizeof(path), "/dev/vduse/%s", argv[1]);
	check(access(path, F_OK) < 0, "refused_left_nothing",
	      "a node is left", 0);

	r = make(ctx, argv[1], 2, 0, sizeof(blk_config), &dev);
	check(r == 0 && dev, "create", "vh_vduse_dev_new", r);
	if (r < 0)
		goto out;
	check(access(path, F_OK) == 0, "node", "no node", -errno);
	fd = vh_vduse_dev_get_fd(dev);
	check(fd >= 0 && (fcntl(fd, F_GETFD) & FD_CLOEXEC), "fd_cloexec",
	      "fd", fd);
	r = vh_vduse_dev_process(dev);
	check(r == 0, "no_request", "process", r);
	check(vh_vduse_dev_get_features(dev) == 0, "no_features_yet",
	      "features", 0);
	r = make(ctx, argv[1], 2, 0, sizeof(blk_config), &dup);
	check(r == -EEXIST && !dup, "name_taken", "got", r);
	vh_vduse_dev_unref(dup);
	check(vh_vduse_dev_unref(dev) == NULL && access(path, F_OK) < 0,
	      "destroyed", "node left", 0);
out:
	vh_ctx_unref(ctx);
	return failed;
}
