// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vduse-api NAME: vh_vduse_dev against the real /dev/vduse/control (run
 * as root in the test VM by tests/vm-vduse-blk.sh, after modprobe vduse):
 * configurations refused before the kernel sees them, and by the kernel
 * (a device id VDUSE does not allow, a name already taken), a device
 * offering packed rings created and destroyed, a device created (its
 * node, a CLOEXEC pollable fd, no request pending) and destroyed by the
 * last unref; a state file another user could truncate is refused (owner,
 * mode, links).  Then two devices the kernel gives up on, each added to the
 * vdpa bus and bound to virtio_vdpa by a child (virtio_vdpa's probe sends
 * requests): a request whose requester is killed before our answer
 * is no error (process() returns 1), and a device whose request was not
 * answered within its msg_timeout (1 s), which the kernel marks broken, is
 * unusable (-EIO), not idle; a network device whose set_features
 * refuses DRIVER_OK reads no features.  Prints "PASS case" / "FAIL case: why"
 * lines; exits 0 if every case passed.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
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

/* virtio-net config: a MAC, status, max_virtqueue_pairs */
static uint8_t net_config[10] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

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

/*
 * A state file not ours alone is refused before the kernel sees the device
 * (-EPERM, no node): it is mapped, and whoever else can truncate it can
 * SIGBUS us.  Group-writable, a second link, another owner; then the same
 * file put right is taken, and the destroyed device removes it.
 */
static void state_file_owner(struct vh_ctx *ctx, const char *name)
{
	static const char *const bad[] = { "state_group_writable",
					   "state_second_link",
					   "state_other_owner" };
	struct vh_vduse_config c = {
		.size = sizeof(c),
		.name = name,
		.device_id = 2,
		.num_queues = 1,
		.max_queue_size = 256,
		.config = blk_config,
		.config_size = sizeof(blk_config),
	};
	char dir[] = "/tmp/vduse-api.XXXXXX", file[64], link2[64], node[300];
	struct vh_vduse_dev *dev = NULL;
	unsigned int i;
	int r, fd;

	if (!mkdtemp(dir)) {
		check(0, "state_file", "mkdtemp", -errno);
		return;
	}
	snprintf(file, sizeof(file), "%s/state", dir);
	snprintf(link2, sizeof(link2), "%s/link", dir);
	snprintf(node, sizeof(node), "/dev/vduse/%s", name);
	fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		check(0, "state_file", "create", -errno);
		rmdir(dir);
		return;
	}
	c.state_path = file;
	for (i = 0; i < 3; i++) {
		if (i == 0)
			r = fchmod(fd, 0620);
		else if (i == 1)
			r = fchmod(fd, 0600) < 0 ? -1 : link(file, link2);
		else
			r = unlink(link2) < 0 ? -1 : fchown(fd, 65534, 65534);
		if (r < 0) {
			check(0, bad[i], "set-up", -errno);
			continue;
		}
		r = vh_vduse_dev_new(ctx, &c, NULL, NULL, &dev);
		check(r == -EPERM && !dev && access(node, F_OK) < 0, bad[i],
		      "got", r);
		vh_vduse_dev_unref(dev);
		dev = NULL;
	}
	if (fchown(fd, geteuid(), getegid()) < 0) {
		check(0, "state_ours", "set-up", -errno);
	} else {
		r = vh_vduse_dev_new(ctx, &c, NULL, NULL, &dev);
		check(r == 0 && dev, "state_ours", "vh_vduse_dev_new", r);
		check(vh_vduse_dev_unref(dev) == NULL &&
		      access(file, F_OK) < 0 && access(node, F_OK) < 0,
		      "state_removed", "file or node left", 0);
		dev = NULL;
	}
	close(fd);
	unlink(file);
	rmdir(dir);
}

/*
 * In a child: `vdpa dev add name NAME mgmtdev vduse`, then NAME bound to
 * virtio_vdpa by the shell itself (its probe's requests are the shell's
 * own), or `vdpa dev del NAME`
 */
static pid_t vdpa(const char *verb, const char *name)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (!strcmp(verb, "add"))
			execlp("sh", "sh", "-c",
			       "b=/sys/bus/vdpa; a=$(cat $b/drivers_autoprobe); "
			       "echo 0 >$b/drivers_autoprobe; "
			       "vdpa dev add name \"$0\" mgmtdev vduse; r=$?; "
			       "echo $a >$b/drivers_autoprobe; [ $r = 0 ] && "
			       "echo \"$0\" >$b/drivers/virtio_vdpa/bind",
			       name, (char *)NULL);
		else
			execlp("vdpa", "vdpa", "dev", "del", name,
			       (char *)NULL);
		_exit(127);
	}
	return pid;
}

static pid_t adder = -1;

/* the first request's callback: its requester dies before our answer */
static void kill_adder(void)
{
	if (adder <= 0)
		return;
	kill(adder, SIGKILL);
	waitpid(adder, NULL, 0);
	adder = 0;
}

static void on_reset(struct vh_vduse_dev *dev, void *data)
{
	(void)dev;
	(void)data;
	kill_adder();
}

static int refusals;

/* a device that refuses every feature set: no DRIVER_OK */
static int refuse_features(struct vh_vduse_dev *dev, void *data,
			   uint64_t features)
{
	(void)dev;
	(void)data;
	(void)features;
	refusals++;
	return -EINVAL;
}

static int on_status(struct vh_vduse_dev *dev, void *data, uint8_t status)
{
	(void)dev;
	(void)data;
	(void)status;
	kill_adder();
	return 0;
}

/* a request pending within ms */
static int wait_request(struct vh_vduse_dev *dev, int ms)
{
	struct pollfd p = { .fd = vh_vduse_dev_get_fd(dev), .events = POLLIN };

	return poll(&p, 1, ms);
}

static void kernel_gives_up(struct vh_ctx *ctx, const char *base)
{
	const struct vh_vduse_ops ops = {
		.size = sizeof(ops),
		.set_status = on_status,
		.reset = on_reset,
	};
	struct vh_vduse_config c = {
		.size = sizeof(c),
		.device_id = 2,
		.num_queues = 1,
		.max_queue_size = 256,
		.config = blk_config,
		.config_size = sizeof(blk_config),
	};
	struct vh_vduse_dev *dev = NULL;
	char name[256], path[300];
	int r, i, st;
	FILE *f;

	/* withdrawn: the requester killed while we handle its request */
	snprintf(name, sizeof(name), "%sw", base);
	c.name = name;
	r = vh_vduse_dev_new(ctx, &c, &ops, NULL, &dev);
	check(r == 0, "withdrawn_create", "vh_vduse_dev_new", r);
	if (r < 0)
		return;
	adder = vdpa("add", name);
	r = wait_request(dev, 10000);
	if (r != 1 && waitpid(adder, &st, WNOHANG) == adder) {
		r = -st; /* the child's wait status, negated */
		adder = -1;
	}
	check(r == 1, "withdrawn_request", "no request from vdpa dev add", r);
	r = vh_vduse_dev_process(dev);
	check(r == 1 && adder == 0, "withdrawn", "process", r);
	kill_adder();
	/* what the killed probe left: answered until it is gone */
	for (i = 0; i < 50 && vh_vduse_dev_process(dev) > 0; i++)
		;
	waitpid(vdpa("del", name), &st, 0);
	vh_vduse_dev_unref(dev);
	dev = NULL;

	/* broken: a request left unanswered past msg_timeout */
	snprintf(name, sizeof(name), "%sb", base);
	r = vh_vduse_dev_new(ctx, &c, &ops, NULL, &dev);
	check(r == 0, "broken_create", "vh_vduse_dev_new", r);
	if (r < 0)
		return;
	snprintf(path, sizeof(path), "/sys/class/vduse/%s/msg_timeout", name);
	f = fopen(path, "w");
	r = f && fputs("1\n", f) >= 0 ? 0 : -errno;
	if (f && fclose(f) != 0)
		r = -errno;
	check(r == 0, "broken_timeout", "cannot set msg_timeout", r);
	adder = vdpa("add", name);
	/* the probe's requests time out one after the other, or fail */
	waitpid(adder, &st, 0);
	adder = -1;
	r = vh_vduse_dev_process(dev);
	check(r == -EIO, "broken", "process", r);
	waitpid(vdpa("del", name), &st, 0);
	vh_vduse_dev_unref(dev);
	dev = NULL;

	/*
	 * refused: set_features fails DRIVER_OK, and the features read 0
	 * again.  A network device: virtio_net's probe goes on without
	 * waiting for I/O (virtio_blk's would read the partition table
	 * from rings nobody serves, and hang).
	 */
	snprintf(name, sizeof(name), "%sf", base);
	c.device_id = 1;
	c.num_queues = 2;
	c.config = net_config;
	c.config_size = sizeof(net_config);
	r = vh_vduse_dev_new(ctx, &c, &(const struct vh_vduse_ops){
					    .size = sizeof(struct vh_vduse_ops),
					    .set_features = refuse_features,
				    },
			     NULL, &dev);
	check(r == 0, "refused_create", "vh_vduse_dev_new", r);
	if (r < 0)
		return;
	adder = vdpa("add", name);
	for (i = 0; i < 3000 && waitpid(adder, &st, WNOHANG) == 0; i++)
		if (wait_request(dev, 10) == 1)
			vh_vduse_dev_process(dev);
	adder = -1;
	check(refusals >= 1 && vh_vduse_dev_get_features(dev) == 0,
	      "refused_features", "DRIVER_OK refused, features",
	      refusals);
	r = vdpa("del", name);
	for (i = 0; i < 3000 && waitpid(r, &st, WNOHANG) == 0; i++)
		if (wait_request(dev, 10) == 1)
			vh_vduse_dev_process(dev);
	vh_vduse_dev_unref(dev);
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
	state_file_owner(ctx, argv[1]);
	kernel_gives_up(ctx, argv[1]);
out:
	vh_ctx_unref(ctx);
	return failed;
}
