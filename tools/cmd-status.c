// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhostctl status: which vhost character devices exist, which modules are
 * loaded or loadable, and what each device offers.
 * vhostctl features DEVICE: one device's feature words, decoded.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#ifdef HAVE_LIBKMOD
#include <libkmod.h>
#endif

#include "libvhost-kernel.h"
#include "vhostctl.h"

/* The modules of the vhost family, in load order. */
static const char *const vhost_modules[] = {
	"vhost",     "vhost_iotlb", "tun",	    "tap",	  "vhost_net",
	"vsock",     "vhost_vsock", "target_core_mod", "vhost_scsi",
	"vdpa",	     "vhost_vdpa",  "vdpa_sim",	    "vdpa_sim_net", "vdpa_sim_blk",
	"vduse",
};

static void out_feature_word(struct vhc_out *o, const char *key,
			     const char *names, uint64_t word)
{
	out_open_obj(o, key);
	out_hex(o, "bits", "0x%016llx", word);
	out_open_arr(o, "names");
	if (o->json) {
		char *copy = strdup(names), *save = NULL, *tok;

		for (tok = copy ? strtok_r(copy, " ", &save) : NULL; tok;
		     tok = strtok_r(NULL, " ", &save))
			out_str(o, NULL, NULL, tok);
		free(copy);
	} else if (names[0]) {
		out_text(o, " (%s)", names);
	}
	out_close_arr(o);
	out_close_obj(o);
}

void out_features(struct vhc_out *o, const char *key, unsigned int device_id,
		  uint64_t features)
{
	char names[2048];

	vh_features_format(device_id, features, names, sizeof(names));
	out_feature_word(o, key, names, features);
}

void out_backend_features(struct vhc_out *o, const char *key,
			  uint64_t features)
{
	char names[1024];

	vh_backend_features_format(features, names, sizeof(names));
	out_feature_word(o, key, names, features);
}

void out_protocol_features(struct vhc_out *o, const char *key,
			   uint64_t features)
{
	char names[1024];

	vh_vu_protocol_features_format(features, names, sizeof(names));
	out_feature_word(o, key, names, features);
}

/* Open, own and ask one device; prints its object. */
static int show_kdev(struct vhc *v, const char *path, bool verbose_missing)
{
	struct vhc_out *o = &v->out;
	struct vh_kdev *dev = NULL;
	uint64_t features = 0, backend = 0;
	int err, berr;

	out_open_obj(o, NULL);
	out_str(o, "path", "%s", path);
	err = vh_kdev_open(v->ctx, path, &dev);
	if (err == 0)
		err = vh_kdev_set_owner(dev);
	if (err == 0)
		err = vh_kdev_get_features(dev, &features);
	if (err < 0) {
		out_str(o, "type", NULL,
			dev ? vh_kdev_type_name(vh_kdev_get_type(dev)) : "");
		out_str(o, "error", ": %s\n", strerror(-err));
		out_close_obj(o);
		vh_kdev_unref(dev);
		return err;
	}
	out_str(o, "type", " (%s)\n", vh_kdev_type_name(vh_kdev_get_type(dev)));
	out_u64(o, "vrings", NULL, vh_kdev_get_num_vrings(dev));
	out_text(o, "    features        ");
	out_features(o, "features", vh_kdev_get_virtio_id(dev), features);
	out_text(o, "\n");
	berr = vh_kdev_get_backend_features(dev, &backend);
	if (berr == 0) {
		out_text(o, "    backend         ");
		out_backend_features(o, "backend_features", backend);
		out_text(o, "\n");
	} else {
		out_null(o, "backend_features");
	}
	out_close_obj(o);
	vh_kdev_unref(dev);
	return 0;
}

static int cmp_vdpa_path(const void *a, const void *b)
{
	const char *pa = *(char *const *)a, *pb = *(char *const *)b;
	long na = strtol(pa + strlen("/dev/vhost-vdpa-"), NULL, 10);
	long nb = strtol(pb + strlen("/dev/vhost-vdpa-"), NULL, 10);

	return na < nb ? -1 : na > nb;
}

/* Append a copy of s to the list *v of *n strings (grown as needed). */
static int names_add(char ***v, unsigned int *n, unsigned int *cap,
		     char *s)
{
	if (!s)
		return -ENOMEM;
	if (*n == *cap) {
		unsigned int c = *cap ? *cap * 2 : 16;
		char **p = reallocarray(*v, c, sizeof(*p));

		if (!p) {
			free(s);
			return -ENOMEM;
		}
		*v = p;
		*cap = c;
	}
	(*v)[(*n)++] = s;
	return 0;
}

static char *path_of(const char *dir, const char *name)
{
	char *p;

	return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* Every node: no vhost-vdpa-N left out, however many there are. */
static int list_device_nodes(char ***paths)
{
	static const char *const fixed[] = { "/dev/vhost-net",
					     "/dev/vhost-vsock",
					     "/dev/vhost-scsi" };
	unsigned int n = 0, cap = 0, nfixed;
	struct dirent *de;
	char **p = NULL;
	int r = 0;
	DIR *d;

	for (unsigned int i = 0; i < 3 && r == 0; i++)
		if (access(fixed[i], F_OK) == 0)
			r = names_add(&p, &n, &cap, strdup(fixed[i]));
	nfixed = n;
	d = opendir("/dev");
	while (r == 0 && d && (de = readdir(d)))
		if (strncmp(de->d_name, "vhost-vdpa-", 11) == 0)
			r = names_add(&p, &n, &cap, path_of("/dev", de->d_name));
	if (d)
		closedir(d);
	if (r < 0) {
		while (n)
			free(p[--n]);
		free(p);
		return r;
	}
	/* readdir order is arbitrary: list vhost-vdpa-N by N */
	if (n > nfixed)
		qsort(p + nfixed, n - nfixed, sizeof(*p), cmp_vdpa_path);
	*paths = p;
	return (int)n;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * The VDUSE devices (/sys/class/vduse/NAME, else /dev/vduse/NAME; "control"
 * is the control node) and, for each, the vdpa device of the same name
 * (vdpa dev add ... mgmtdev vduse requires that name) with its driver.
 */
static void show_vduse(struct vhc *v)
{
	struct vhc_out *o = &v->out;
	unsigned int n = 0, cap = 0;
	char **names = NULL;
	struct dirent *de;
	int r = 0;
	DIR *d;

	d = opendir("/sys/class/vduse");
	if (!d)
		d = opendir("/dev/vduse");
	while (r == 0 && d && (de = readdir(d))) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "control") == 0)
			continue;
		r = names_add(&names, &n, &cap, strdup(de->d_name));
	}
	if (d)
		closedir(d);
	/* out of memory: what was read is shown, and said to be partial */
	if (r < 0)
		vhc_err(v, "status: VDUSE devices: %s (list incomplete)",
			strerror(-r));
	if (n)
		qsort(names, n, sizeof(names[0]), cmp_name);

	out_open_arr(o, "vduse");
	out_text(o, "vduse:%s\n", n ? "" : " none");
	for (unsigned int i = 0; i < n; i++) {
		char path[PATH_MAX], link[PATH_MAX];
		bool vdpa;
		ssize_t len;

		snprintf(path, sizeof(path), "/sys/bus/vdpa/devices/%s",
			 names[i]);
		vdpa = access(path, F_OK) == 0;
		out_open_obj(o, NULL);
		out_str(o, "name", "  %s", names[i]);
		out_bool(o, "vdpa", " vdpa: %s", vdpa);
		snprintf(path, sizeof(path), "/sys/bus/vdpa/devices/%s/driver",
			 names[i]);
		len = vdpa ? readlink(path, link, sizeof(link) - 1) : -1;
		if (len > 0) {
			link[len] = '\0';
			out_str(o, "driver", " driver: %s\n",
				strrchr(link, '/') ? strrchr(link, '/') + 1 :
						     link);
		} else {
			out_null(o, "driver");
			out_text(o, "%s\n", vdpa ? " driver: none" : "");
		}
		out_close_obj(o);
		free(names[i]);
	}
	free(names);
	out_close_arr(o);
}

static void show_modules(struct vhc *v, bool load)
{
	struct vhc_out *o = &v->out;
#ifdef HAVE_LIBKMOD
	struct kmod_ctx *kctx = kmod_new(NULL, NULL);

	out_open_arr(o, "modules");
	out_text(o, "modules:\n");
	for (unsigned int i = 0; i < sizeof(vhost_modules) / sizeof(vhost_modules[0]); i++) {
		struct kmod_list *list = NULL, *it;
		struct kmod_module *mod = NULL;
		const char *state = "absent";
		bool loadable = false;
		int st;

		if (kctx && kmod_module_new_from_lookup(kctx, vhost_modules[i], &list) == 0) {
			kmod_list_foreach(it, list) {
				mod = kmod_module_get_module(it);
				break;
			}
			kmod_module_unref_list(list);
		}
		if (mod) {
			loadable = kmod_module_get_path(mod) != NULL;
			st = kmod_module_get_initstate(mod);
			if (st < 0 && load && loadable) {
				int lerr = kmod_module_probe_insert_module(
					mod, 0, NULL, NULL, NULL, NULL);

				if (lerr < 0)
					vhc_err(v, "loading %s: %s",
						vhost_modules[i], strerror(-lerr));
				st = kmod_module_get_initstate(mod);
			}
			state = st < 0 ? (loadable ? "not loaded" : "absent") :
				kmod_module_initstate_str(st);
			kmod_module_unref(mod);
		}
		out_open_obj(o, NULL);
		out_str(o, "name", "  %-16s", vhost_modules[i]);
		out_str(o, "state", " %-10s", state);
		out_bool(o, "loadable", " loadable: %s\n", loadable);
		out_close_obj(o);
	}
	out_close_arr(o);
	kmod_unref(kctx);
#else
	(void)load;
	out_null(o, "modules");
	out_text(o, "modules: unknown (vhostctl was built without libkmod)\n");
#endif
}

int cmd_status(struct vhc *v, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "load", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhc_out *o = &v->out;
	struct utsname uts;
	bool load = false;
	char **paths = NULL;
	int n, c, failed = 0;

	/* 0: glibc starts afresh, permuting ("+" was the caller's) */
	optind = 0;
	/* options anywhere among the arguments: "status --help" as "status x --help" */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			load = true;
			break;
		case 'h':
			printf("Usage: vhostctl status [--load]\n"
			       "  Lists the vhost devices and modules of this host and\n"
			       "  each device's features, and the VDUSE devices with\n"
			       "  their vdpa devices.  --load loads missing modules\n"
			       "  (root).\n");
			return VHC_EXIT_OK;
		default:
			return VHC_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		vhc_err(v, "status: unexpected argument \"%s\"", argv[optind]);
		return VHC_EXIT_USAGE;
	}
	if (load && geteuid() != 0) {
		vhc_err(v, "status --load: loading modules needs root");
		return VHC_EXIT_PERM;
	}

	uname(&uts);
	out_open_obj(o, NULL);
	out_str(o, "kernel", "kernel %s\n", uts.release);
	show_modules(v, load);

	n = list_device_nodes(&paths);
	if (n < 0) {
		vhc_err(v, "status: device nodes: %s", strerror(-n));
		failed++;
	}
	out_open_arr(o, "devices");
	out_text(o, "devices:%s\n", n > 0 ? "" : " none");
	for (int i = 0; i < n; i++) {
		out_text(o, "  ");
		if (show_kdev(v, paths[i], true) < 0)
			failed++;
		free(paths[i]);
	}
	free(paths);
	out_close_arr(o);
	show_vduse(v);
	out_close_obj(o);
	out_end(o);
	return failed ? VHC_EXIT_FAIL : VHC_EXIT_OK;
}

int cmd_features(struct vhc *v, int argc, char **argv)
{
	bool help = vhc_wants_help(argc, argv) ||
		    (argc == 2 && vhc_is_help(argv[1]));
	struct stat st;
	int err;

	if (help || argc != 2) {
		fprintf(help ? stdout : stderr,
			"Usage: vhostctl features DEVICE|SOCKET\n"
			"  DEVICE: a vhost character device (/dev/vhost-net ...)\n"
			"  SOCKET: a vhost-user backend's Unix socket\n");
		return help ? VHC_EXIT_OK : VHC_EXIT_USAGE;
	}
	if (stat(argv[1], &st) < 0) {
		int e = errno; /* before writing to stderr, which may fail */

		vhc_err(v, "%s: %s", argv[1], strerror(e));
		return vhc_exit_for(-e);
	}
	if (S_ISSOCK(st.st_mode))
		return user_features(v, argv[1]);
	if (!S_ISCHR(st.st_mode)) {
		vhc_err(v, "%s: neither a character device nor a socket",
			argv[1]);
		return VHC_EXIT_USAGE;
	}
	err = show_kdev(v, argv[1], false);
	out_end(&v->out);
	if (err < 0)
		vhc_err(v, "%s: %s", argv[1], strerror(-err));
	return vhc_exit_for(err);
}
