// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhostctl - the administrator's tool for vhost, vDPA and vhost-user.
 */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "vhostctl.h"

static void usage(FILE *f)
{
	fputs("Usage: vhostctl [OPTIONS] COMMAND [ARGS...]\n"
	      "\n"
	      "Commands:\n"
	      "  status [--load]             vhost devices and modules of this host\n"
	      "  features DEVICE|SOCKET      decoded features of a kernel device or a\n"
	      "                              vhost-user backend\n"
	      "  check net|vsock|scsi|vdpa|vduse|all\n"
	      "                              end-to-end dataplane self-checks (root)\n"
	      "  vdpa mgmtdev show [MGMTDEV] vDPA management devices\n"
	      "  vdpa dev add|del|show|config|vstats ...\n"
	      "                              vDPA devices (as iproute2's vdpa)\n"
	      "  user probe SOCKET           what a vhost-user backend speaks\n"
	      "  user check SOCKET           vhost-user conformance run\n"
	      "\n"
	      "Options:\n"
	      "  -j, --json       JSON output (stable keys)\n"
	      "  -p, --pretty     indent JSON output\n"
	      "  -v, --verbose    more detail; twice: library debug log on stderr\n"
	      "  -V, --version    print the version and exit\n"
	      "  -h, --help       this help; COMMAND --help for a command's\n"
	      "\n"
	      "Exit status: 0 success, 1 failure, 2 usage error, 3 permission\n"
	      "denied (not root), 4 device, module or socket absent.  check\n"
	      "all exits 0 when nothing failed, even if some check was skipped\n"
	      "(4 only when all were).\n",
	      f);
}

bool vhc_is_help(const char *arg)
{
	return !strcmp(arg, "-h") || !strcmp(arg, "--help") ||
	       !strcmp(arg, "help");
}

bool vhc_wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help"))
			return true;
	return false;
}

int vhc_dispatch(struct vhc *v, const char *what, const struct vhc_cmd *cmds,
		 int argc, char **argv, void (*usage_fn)(FILE *f))
{
	if (argc < 1) {
		usage_fn(stderr);
		return VHC_EXIT_USAGE;
	}
	if (vhc_is_help(argv[0])) {
		usage_fn(stdout);
		return VHC_EXIT_OK;
	}
	for (const struct vhc_cmd *c = cmds; c->name; c++)
		if (!strcmp(argv[0], c->name))
			return c->fn(v, argc, argv);
	vhc_err(v, "unknown %s \"%s\" (try --help)", what, argv[0]);
	return VHC_EXIT_USAGE;
}

static const struct vhc_cmd top_cmds[] = {
	{ "status", cmd_status, NULL },
	{ "features", cmd_features, NULL },
	{ "check", cmd_check, NULL },
	{ "vdpa", cmd_vdpa, NULL },
	{ "user", cmd_user, NULL },
	{ NULL, NULL, NULL },
};

/*
 * What was printed reached standard output: a write error (a full disk, a
 * closed pipe) is a failure, not a short document with status 0.
 */
static int stdout_done(int rc)
{
	int err = fflush(stdout) == EOF ? errno : 0;

	if (!err && !ferror(stdout))
		return rc;
	fprintf(stderr, "vhostctl: cannot write to standard output%s%s\n",
		err ? ": " : "", err ? strerror(err) : "");
	return rc == VHC_EXIT_OK ? VHC_EXIT_FAIL : rc;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct vhc v = { .prog = "vhostctl" };
	int c, err, rc;

	v.out.f = stdout;
	/* '+': options after the command belong to the command */
	while ((c = getopt_long(argc, argv, "+jpvVh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			v.out.json = true;
			break;
		case 'p':
			v.out.pretty = true;
			break;
		case 'v':
			v.verbose++;
			break;
		case 'V':
			printf("vhostctl (libvhost) %s\n", vh_version());
			return stdout_done(VHC_EXIT_OK);
		case 'h':
			usage(stdout);
			return stdout_done(VHC_EXIT_OK);
		default:
			usage(stderr);
			return VHC_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return VHC_EXIT_USAGE;
	}

	err = vh_ctx_new(&v.ctx);
	if (err < 0) {
		vhc_err(&v, "cannot create a libvhost context: %s",
			strerror(-err));
		return VHC_EXIT_FAIL;
	}
	if (v.verbose > 1)
		vh_ctx_set_log_priority(v.ctx, LOG_DEBUG);
	else if (v.verbose)
		vh_ctx_set_log_priority(v.ctx, LOG_INFO);

	rc = vhc_dispatch(&v, "command", top_cmds, argc - optind, argv + optind,
			  usage);
	vh_ctx_unref(v.ctx);
	return stdout_done(rc);
}
