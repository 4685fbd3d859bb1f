// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhostctl vdpa: the jobs of iproute2's `vdpa` tool over libvhost's netlink
 * code, with the same argument shapes and JSON keys.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvhost-kernel.h"
#include "libvhost-vdpa.h"
#include "parse-num.h"
#include "vhostctl.h"

static const char *class_name(unsigned int id)
{
	switch (id) {
	case 1:
		return "net";
	case 2:
		return "block";
	case 8:
		return "scsi";
	case 19:
		return "vsock";
	default:
		return NULL;
	}
}

static const char *dev_type_name(unsigned int id)
{
	switch (id) {
	case 1:
		return "network";
	case 2:
		return "block";
	default:
		return class_name(id);
	}
}

static void mgmtdev_usage(FILE *f)
{
	fputs("Usage: vhostctl vdpa mgmtdev [show|list [MGMTDEV]]\n", f);
}

static void dev_usage(FILE *f)
{
	fputs("Usage: vhostctl vdpa dev [show|list [DEV]]\n"
	      "       vhostctl vdpa dev add name NAME mgmtdev MGMTDEV [mac MAC] [mtu MTU]\n"
	      "                             [max_vqp N] [device_features FEATURES]\n"
	      "       vhostctl vdpa dev del DEV\n"
	      "       vhostctl vdpa dev config show [DEV]\n"
	      "       vhostctl vdpa dev vstats show DEV qidx QUEUE_INDEX\n",
	      f);
}

static void vdpa_usage(FILE *f)
{
	mgmtdev_usage(f);
	dev_usage(f);
}

/* Open the netlink side; explains the usual reasons it fails. */
static int open_mgmt(struct vhc *v, struct vh_vdpa_mgmt **m)
{
	int err = vh_vdpa_mgmt_new(v->ctx, m);

	if (err == -ENODEV)
		vhc_err(v, "no \"vdpa\" generic netlink family: is the vdpa module loaded?");
	else if (err == -EOPNOTSUPP)
		vhc_err(v, "vhostctl was built without libmnl: no vDPA management");
	else if (err < 0)
		vhc_err(v, "vdpa netlink: %s", strerror(-err));
	return err;
}

static int report(struct vhc *v, struct vh_vdpa_mgmt *m, const char *what,
		  int err)
{
	const char *msg = m ? vh_vdpa_mgmt_last_error(m) : "";

	if (err >= 0)
		return VHC_EXIT_OK;
	if (msg && msg[0])
		vhc_err(v, "%s: %s (kernel: %s)", what, strerror(-err), msg);
	else
		vhc_err(v, "%s: %s", what, strerror(-err));
	return vhc_exit_for(err);
}

static void out_feature_names(struct vhc_out *o, const char *key,
			      unsigned int device_id, uint64_t features)
{
	char names[2048];

	vh_features_format(device_id, features, names, sizeof(names));
	out_open_arr(o, key);
	if (o->json) {
		char *save = NULL;

		for (char *t = strtok_r(names, " ", &save); t;
		     t = strtok_r(NULL, " ", &save))
			out_str(o, NULL, NULL, t);
	} else {
		out_text(o, "%s", names);
	}
	out_close_arr(o);
}

static int mgmtdev_show(struct vhc *v, int argc, char **argv)
{
	struct vhc_out *o = &v->out;
	struct vh_vdpa_mgmtdev_info *list = NULL;
	struct vh_vdpa_mgmt *m = NULL;
	const char *only = argc > 1 ? argv[1] : NULL;
	size_t n = 0;
	bool found = false;
	int err;

	if (argc > 2) {
		mgmtdev_usage(stderr);
		return VHC_EXIT_USAGE;
	}
	err = open_mgmt(v, &m);
	if (err < 0)
		return vhc_exit_for(err);
	err = vh_vdpa_mgmt_list_mgmtdevs(m, &list, &n);
	if (err < 0) {
		int rc = report(v, m, "mgmtdev show", err);

		vh_vdpa_mgmt_unref(m);
		return rc;
	}
	out_open_obj(o, NULL);
	out_open_obj(o, "mgmtdev");
	for (size_t i = 0; i < n; i++) {
		struct vh_vdpa_mgmtdev_info *d = &list[i];
		char full[2 * VH_VDPA_NAME_MAX + 2];
		unsigned int first_class = 0;

		if (d->bus_name[0])
			snprintf(full, sizeof(full), "%s/%s", d->bus_name,
				 d->dev_name);
		else
			snprintf(full, sizeof(full), "%s", d->dev_name);
		if (only && strcmp(only, full) != 0 &&
		    strcmp(only, d->dev_name) != 0)
			continue;
		found = true;
		out_open_obj(o, full);
		out_text(o, "%s:\n", full);
		out_open_arr(o, "supported_classes");
		out_text(o, "  supported_classes");
		for (unsigned int c = 0; c < 64; c++) {
			if (!(d->supported_classes & (1ull << c)))
				continue;
			if (!first_class)
				first_class = c;
			if (class_name(c))
				out_str(o, NULL, " %s", class_name(c));
			else
				out_u64(o, NULL, " %llu", c);
		}
		out_close_arr(o);
		out_text(o, "\n");
		if (VH_VDPA_HAS(d, VH_VDPA_FIELD_MAX_VQS))
			out_u64(o, "max_supported_vqs", "  max_supported_vqs %llu\n",
				d->max_supported_vqs);
		if (VH_VDPA_HAS(d, VH_VDPA_FIELD_SUPPORTED_FEATURES)) {
			out_text(o, "  dev_features ");
			out_feature_names(o, "dev_features", first_class,
					  d->supported_features);
			out_text(o, "\n");
		}
		out_close_obj(o);
	}
	out_close_obj(o);
	out_close_obj(o);
	out_end(o);
	free(list);
	vh_vdpa_mgmt_unref(m);
	if (only && !found) {
		vhc_err(v, "mgmtdev %s: no such management device", only);
		return VHC_EXIT_ABSENT;
	}
	return VHC_EXIT_OK;
}

static void print_dev(struct vhc *v, const struct vh_vdpa_dev_info *d)
{
	struct vhc_out *o = &v->out;
	char full[2 * VH_VDPA_NAME_MAX + 2];
	char chardev[64];

	out_open_obj(o, d->name);
	out_text(o, "%s:", d->name);
	out_str(o, "type", " type %s", dev_type_name(d->device_id) ?
		dev_type_name(d->device_id) : "unknown");
	if (d->mgmt_bus_name[0])
		snprintf(full, sizeof(full), "%s/%s", d->mgmt_bus_name,
			 d->mgmt_dev_name);
	else
		snprintf(full, sizeof(full), "%s", d->mgmt_dev_name);
	out_str(o, "mgmtdev", " mgmtdev %s", full);
	out_u64(o, "vendor_id", " vendor_id %llu", d->vendor_id);
	out_u64(o, "max_vqs", " max_vqs %llu", d->max_vqs);
	out_u64(o, "max_vq_size", " max_vq_size %llu", d->max_vq_size);
	if (VH_VDPA_HAS(d, VH_VDPA_FIELD_MIN_VQ_SIZE))
		out_u64(o, "min_vq_size", " min_vq_size %llu", d->min_vq_size);
	if (vh_vdpa_dev_chardev(v->ctx, d->name, chardev, sizeof(chardev)) == 0)
		out_str(o, "chardev", " chardev %s", chardev);
	out_text(o, "\n");
	out_close_obj(o);
}

/*
 * A name the kernel can hold (VH_VDPA_NAME_MAX with its NUL), said to be
 * bad on the command line before anything is asked of it.
 */
static bool good_name(struct vhc *v, const char *what, const char *name)
{
	if (name[0] && strlen(name) < VH_VDPA_NAME_MAX)
		return true;
	vhc_err(v, "%s: empty or longer than %d bytes", what,
		VH_VDPA_NAME_MAX - 1);
	return false;
}

static int dev_show(struct vhc *v, int argc, char **argv)
{
	struct vhc_out *o = &v->out;
	struct vh_vdpa_mgmt *m = NULL;
	int err;

	if (argc > 2) {
		dev_usage(stderr);
		return VHC_EXIT_USAGE;
	}
	if (argc == 2 && !good_name(v, "dev show: name", argv[1]))
		return VHC_EXIT_USAGE;
	err = open_mgmt(v, &m);
	if (err < 0)
		return vhc_exit_for(err);
	if (argc == 2) {
		struct vh_vdpa_dev_info info;

		err = vh_vdpa_mgmt_dev_get(m, argv[1], &info);
		if (err == 0) {
			out_open_obj(o, NULL);
			out_open_obj(o, "dev");
			print_dev(v, &info);
			out_close_obj(o);
			out_close_obj(o);
		}
	} else {
		struct vh_vdpa_dev_info *list = NULL;
		size_t n = 0;

		err = vh_vdpa_mgmt_list_devs(m, &list, &n);
		if (err == 0) {
			out_open_obj(o, NULL);
			out_open_obj(o, "dev");
			for (size_t i = 0; i < n; i++)
				print_dev(v, &list[i]);
			out_close_obj(o);
			out_close_obj(o);
		}
		free(list);
	}
	out_end(o);
	err = report(v, m, "dev show", err);
	vh_vdpa_mgmt_unref(m);
	return err;
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	for (int i = 0; i < 6; i++) {
		char *end;
		unsigned long b;

		if (!isxdigit((unsigned char)s[0]))
			return -EINVAL;
		b = strtoul(s, &end, 16);
		if (b > 0xff || end - s > 2 || *end != (i < 5 ? ':' : '\0'))
			return -EINVAL;
		mac[i] = (uint8_t)b;
		s = end + 1;
	}
	return 0;
}

/* base 10 (parse_dec()), or 0 (C prefixes: 0x) for device_features */
static int parse_u64(const char *s, int base, uint64_t max, uint64_t *out)
{
	unsigned long long x;
	int r = base == 10 ? parse_dec(s, 0, max, &x) :
			     parse_unum(s, base, 0, max, &x);

	if (r == 0)
		*out = x;
	return r;
}

/* ETH_MIN_MTU: the kernel's netlink policy for VDPA_ATTR_DEV_NET_CFG_MTU */
#define VDPA_MTU_MIN 68

static int dev_add(struct vhc *v, int argc, char **argv)
{
	struct vh_vdpa_dev_new p = { .size = sizeof(p) };
	struct vh_vdpa_mgmt *m = NULL;
	char *bus = NULL;
	uint64_t x;
	int rc = VHC_EXIT_USAGE, err;

	for (int i = 1; i < argc; i += 2) {
		const char *k = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!val) {
			vhc_err(v, "dev add: \"%s\" needs a value", k);
			goto out;
		}
		if (!strcmp(k, "name")) {
			p.name = val;
		} else if (!strcmp(k, "mgmtdev")) {
			const char *slash = strchr(val, '/');

			free(bus);
			bus = NULL;
			p.mgmtdev_bus = NULL;
			p.mgmtdev = val;
			if (slash) {
				bus = strndup(val, (size_t)(slash - val));
				p.mgmtdev_bus = bus;
				p.mgmtdev = slash + 1;
			}
		} else if (!strcmp(k, "mac")) {
			if (parse_mac(val, p.mac) < 0) {
				vhc_err(v, "dev add: bad MAC \"%s\"", val);
				goto out;
			}
			p.set |= VH_VDPA_NEW_MAC;
		} else if (!strcmp(k, "mtu") &&
			   parse_u64(val, 10, UINT16_MAX, &x) == 0 &&
			   x >= VDPA_MTU_MIN) {
			p.mtu = (uint16_t)x;
			p.set |= VH_VDPA_NEW_MTU;
		} else if (!strcmp(k, "max_vqp") &&
			   parse_u64(val, 10, UINT16_MAX, &x) == 0 && x > 0) {
			p.max_vq_pairs = (uint16_t)x;
			p.set |= VH_VDPA_NEW_MAX_VQ_PAIRS;
		} else if (!strcmp(k, "device_features") &&
			   parse_u64(val, 0, UINT64_MAX, &x) == 0) {
			p.device_features = x;
			p.set |= VH_VDPA_NEW_FEATURES;
		} else {
			vhc_err(v, "dev add: bad argument \"%s %s\"", k, val);
			goto out;
		}
	}
	if (!p.name || !p.mgmtdev) {
		vhc_err(v, "dev add: name and mgmtdev are required");
		dev_usage(stderr);
		goto out;
	}
	/* mgmtdev is [BUS/]DEVICE: neither part empty */
	if (!good_name(v, "dev add: name", p.name) ||
	    !good_name(v, "dev add: mgmtdev device", p.mgmtdev) ||
	    (p.mgmtdev_bus &&
	     !good_name(v, "dev add: mgmtdev bus", p.mgmtdev_bus)))
		goto out;
	err = open_mgmt(v, &m);
	if (err == 0)
		rc = report(v, m, "dev add", vh_vdpa_mgmt_dev_add(m, &p));
	else
		rc = vhc_exit_for(err);
	vh_vdpa_mgmt_unref(m);
out:
	free(bus);
	return rc;
}

/*
 * Whether the vhost-vdpa node of device name is open: the kernel deletes
 * the device only once it is closed everywhere, and waits for that
 * uninterruptibly, holding every other vdpa request of the host.
 * vhost-vdpa takes one opener at a time (EBUSY for another), so an open
 * of ours tells (it resets the device: nobody uses it then).  Racy: it may
 * be opened between our close() and the deletion; but a VM or a program
 * still holding it, the common case, is caught.
 */
static bool chardev_busy(struct vhc *v, const char *name, char *node,
			 size_t len)
{
	int fd;

	if (vh_vdpa_dev_chardev(v->ctx, name, node, len) < 0)
		return false; /* not bound to vhost_vdpa: nothing to wait for */
	fd = open(node, O_RDWR | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd >= 0) {
		close(fd);
		return false;
	}
	return errno == EBUSY;
}

static int dev_del(struct vhc *v, int argc, char **argv)
{
	struct vh_vdpa_mgmt *m = NULL;
	char node[64];
	int err;

	if (argc != 2) {
		dev_usage(stderr);
		return VHC_EXIT_USAGE;
	}
	if (!good_name(v, "dev del: name", argv[1]))
		return VHC_EXIT_USAGE;
	err = open_mgmt(v, &m);
	if (err < 0)
		return vhc_exit_for(err);
	if (chardev_busy(v, argv[1], node, sizeof(node))) {
		vhc_err(v, "dev del: %s is in use (%s is open): close it first",
			argv[1], node);
		vh_vdpa_mgmt_unref(m);
		return VHC_EXIT_FAIL;
	}
	err = report(v, m, "dev del", vh_vdpa_mgmt_dev_del(m, argv[1]));
	vh_vdpa_mgmt_unref(m);
	return err;
}

static void print_config(struct vhc *v, const struct vh_vdpa_dev_config *c)
{
	struct vhc_out *o = &v->out;
	char mac[18];

	out_open_obj(o, c->name);
	out_text(o, "%s:", c->name);
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_MAC)) {
		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x",
			 c->mac[0], c->mac[1], c->mac[2], c->mac[3], c->mac[4],
			 c->mac[5]);
		out_str(o, "mac", " mac %s", mac);
	}
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_STATUS))
		out_str(o, "link", " link %s",
			(c->status & 1) ? "up" : "down");
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_MTU))
		out_u64(o, "mtu", " mtu %llu", c->mtu);
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_MAX_VQ_PAIRS))
		out_u64(o, "max_vq_pairs", " max_vq_pairs %llu", c->max_vq_pairs);
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_BLK_CAPACITY))
		out_u64(o, "capacity", " capacity %llu", c->blk_capacity);
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_BLK_SIZE_MAX))
		out_u64(o, "size_max", " size_max %llu", c->blk_size_max);
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_BLK_BLK_SIZE))
		out_u64(o, "blk_size", " blk_size %llu", c->blk_blk_size);
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_BLK_SEG_MAX))
		out_u64(o, "seg_max", " seg_max %llu", c->blk_seg_max);
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_BLK_NUM_QUEUES))
		out_u64(o, "num_queues", " num_queues %llu", c->blk_num_queues);
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_BLK_READ_ONLY))
		out_bool(o, "read_only", " read_only %s", c->blk_read_only);
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_BLK_FLUSH))
		out_bool(o, "flush", " flush %s", c->blk_flush);
	out_text(o, "\n");
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_NEGOTIATED_FEATURES)) {
		out_text(o, "  negotiated_features ");
		out_feature_names(o, "negotiated_features", c->device_id,
				  c->negotiated_features);
		out_text(o, "\n");
	}
	if (VH_VDPA_HAS(c, VH_VDPA_FIELD_DEVICE_FEATURES)) {
		out_text(o, "  dev_features ");
		out_feature_names(o, "dev_features", c->device_id,
				  c->device_features);
		out_text(o, "\n");
	}
	out_close_obj(o);
}

static int dev_config(struct vhc *v, int argc, char **argv)
{
	struct vhc_out *o = &v->out;
	struct vh_vdpa_mgmt *m = NULL;
	struct vh_vdpa_dev_info *list = NULL;
	size_t n = 0;
	int err;

	if (argc < 2 || strcmp(argv[1], "show") != 0 || argc > 3) {
		dev_usage(stderr);
		return VHC_EXIT_USAGE;
	}
	if (argc == 3 && !good_name(v, "dev config show: name", argv[2]))
		return VHC_EXIT_USAGE;
	err = open_mgmt(v, &m);
	if (err < 0)
		return vhc_exit_for(err);
	if (argc == 2) {
		err = vh_vdpa_mgmt_list_devs(m, &list, &n);
		if (err < 0) {
			err = report(v, m, "dev config show", err);
			vh_vdpa_mgmt_unref(m);
			return err;
		}
	}
	out_open_obj(o, NULL);
	out_open_obj(o, "config");
	for (size_t i = 0; argc == 3 ? i < 1 : i < n; i++) {
		struct vh_vdpa_dev_config cfg;

		err = vh_vdpa_mgmt_dev_config_get(m, argc == 3 ? argv[2] :
						  list[i].name, &cfg);
		if (err < 0)
			break;
		print_config(v, &cfg);
	}
	out_close_obj(o);
	out_close_obj(o);
	out_end(o);
	free(list);
	err = report(v, m, "dev config show", err < 0 ? err : 0);
	vh_vdpa_mgmt_unref(m);
	return err;
}

static int dev_vstats(struct vhc *v, int argc, char **argv)
{
	struct vhc_out *o = &v->out;
	struct vh_vdpa_vstats *st = NULL;
	struct vh_vdpa_mgmt *m = NULL;
	uint64_t q;
	int err;

	if (argc != 5 || strcmp(argv[1], "show") != 0 ||
	    strcmp(argv[3], "qidx") != 0 ||
	    parse_u64(argv[4], 10, UINT32_MAX, &q) < 0) {
		dev_usage(stderr);
		return VHC_EXIT_USAGE;
	}
	if (!good_name(v, "dev vstats show: name", argv[2]))
		return VHC_EXIT_USAGE;
	err = open_mgmt(v, &m);
	if (err < 0)
		return vhc_exit_for(err);
	err = vh_vdpa_mgmt_dev_vstats_get(m, argv[2], (uint32_t)q, &st);
	if (err == 0) {
		out_open_obj(o, NULL);
		out_open_obj(o, "vstats");
		out_open_obj(o, st->name);
		out_text(o, "%s:", st->name);
		out_u64(o, "queue_index", " queue_index %llu", st->queue_index);
		out_open_arr(o, "name_value");
		for (unsigned int i = 0; i < st->nstats; i++) {
			out_open_obj(o, NULL);
			out_str(o, "name", " %s", st->stats[i].name);
			out_u64(o, "value", " %llu", st->stats[i].value);
			out_close_obj(o);
		}
		out_close_arr(o);
		out_text(o, "\n");
		out_close_obj(o);
		out_close_obj(o);
		out_close_obj(o);
		out_end(o);
		vh_vdpa_vstats_free(st);
	}
	err = report(v, m, "dev vstats show", err);
	vh_vdpa_mgmt_unref(m);
	return err;
}

static const struct vhc_cmd dev_cmds[] = {
	{ "show", dev_show, NULL },   { "list", dev_show, NULL },
	{ "add", dev_add, NULL },     { "del", dev_del, NULL },
	{ "config", dev_config, NULL }, { "vstats", dev_vstats, NULL },
	{ NULL, NULL, NULL },
};

/* -h/--help anywhere below "vdpa mgmtdev|dev" (a device may be "help") */
static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	return false;
}

static int mgmtdev_cmd(struct vhc *v, int argc, char **argv)
{
	if (wants_help(argc, argv)) {
		mgmtdev_usage(stdout);
		return VHC_EXIT_OK;
	}
	if (argc < 2)
		return mgmtdev_show(v, 1, argv);
	if (vhc_is_help(argv[1])) {
		mgmtdev_usage(stdout);
		return VHC_EXIT_OK;
	}
	if (strcmp(argv[1], "show") != 0 && strcmp(argv[1], "list") != 0) {
		mgmtdev_usage(stderr);
		return VHC_EXIT_USAGE;
	}
	return mgmtdev_show(v, argc - 1, argv + 1);
}

static int dev_cmd(struct vhc *v, int argc, char **argv)
{
	if (wants_help(argc, argv)) {
		dev_usage(stdout);
		return VHC_EXIT_OK;
	}
	if (argc < 2)
		return dev_show(v, 1, argv);
	return vhc_dispatch(v, "vdpa dev command", dev_cmds, argc - 1,
			    argv + 1, dev_usage);
}

static const struct vhc_cmd vdpa_cmds[] = {
	{ "mgmtdev", mgmtdev_cmd, NULL },
	{ "dev", dev_cmd, NULL },
	{ NULL, NULL, NULL },
};

int cmd_vdpa(struct vhc *v, int argc, char **argv)
{
	return vhc_dispatch(v, "vdpa object", vdpa_cmds, argc - 1, argv + 1,
			    vdpa_usage);
}
