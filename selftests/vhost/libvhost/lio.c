// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * LIO target setup for vhost-scsi through configfs, without targetcli.
 *
 *   /sys/kernel/config/target/
 *     core/fileio_N/lunL/{control,enable}      backstore (or rd_mcp_N)
 *     vhost/                                   the vhost fabric
 *       naa.XXXXXXXXXXXXXXXX/tpgt_T/
 *         nexus                                I_T nexus (initiator port)
 *         lun/lun_L/<link> -> core/.../lunL    LUN
 *
 * Every directory, link and nexus we create is pushed on an undo list;
 * teardown pops it, so only what we made is removed, newest first (a LUN
 * link before its backstore, the LUNs before the nexus, the nexus before
 * the TPG).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "libvhost-internal.h"
#include "libvhost-scsi.h"

#define CONFIGFS_ROOT "/sys/kernel/config"
#define TARGET_ROOT CONFIGFS_ROOT "/target"
#define CONFIGFS_MAGIC_NR 0x62656570
/* VHOST_SCSI_MAX_TARGET in drivers/vhost/scsi.c */
#define LIO_MAX_TPGT 255
/* FD_MAX_DEV_NAME in target_core_file.h */
#define LIO_MAX_FILE_PATH 255
/* HBA ids we try before giving up */
#define LIO_MAX_HBA_TRIES 1024
#define LIO_PATH_MAX 512
/* fileio's block size (FD_BLOCKSIZE), the least a backstore can hold */
#define LIO_BLOCK 512

enum undo_op {
	UNDO_RMDIR,
	UNDO_UNLINK,
	UNDO_NEXUS, /* write "NULL" to the nexus attribute */
};

struct undo {
	enum undo_op op;
	bool lun_owned; /* belongs to LUN `lun` (vh_lio_target_remove_lun) */
	uint64_t lun;
	char *path;
};

struct vh_lio_target {
	int refcount;
	struct vh_ctx *ctx;
	char wwpn[21];
	char initiator[21];
	unsigned int tpgt;
	char tpg_path[LIO_PATH_MAX];
	struct undo *undo;
	unsigned int nundo, capundo;
};

VH_EXPORT int vh_lio_wwpn_check(const char *s)
{
	int i;

	if (!s || strncmp(s, "naa.", 4) != 0)
		return -EINVAL;
	for (i = 0; i < 16; i++)
		if (!isxdigit((unsigned char)s[4 + i]))
			return -EINVAL;
	return s[20] == '\0' ? 0 : -EINVAL;
}

/* naa.5001405 + 9 random hex digits: NAA 5, IEEE OUI 00:14:05 (as LIO does). */
static void random_wwpn(char out[21])
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = ((uint64_t)getpid() << 32) ^ (uint64_t)time(NULL) ^
		    (uint64_t)(uintptr_t)out;
	snprintf(out, 21, "naa.5001405%09llx",
		 (unsigned long long)(r & 0xfffffffffull));
}

static int push_undo(struct vh_lio_target *t, enum undo_op op, const char *path,
		     bool lun_owned, uint64_t lun)
{
	struct undo *u;

	if (t->nundo == t->capundo) {
		unsigned int cap = t->capundo ? 2 * t->capundo : 16;

		u = reallocarray(t->undo, cap, sizeof(*u));
		if (!u)
			return -ENOMEM;
		t->undo = u;
		t->capundo = cap;
	}
	u = &t->undo[t->nundo];
	u->path = strdup(path);
	if (!u->path)
		return -ENOMEM;
	u->op = op;
	u->lun_owned = lun_owned;
	u->lun = lun;
	t->nundo++;
	return 0;
}

/* snprintf into a path buffer: -ENAMETOOLONG instead of a cut path. */
__attribute__((format(printf, 3, 4))) static int pathf(char *buf, size_t len,
						       const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static int write_attr(struct vh_ctx *ctx, const char *path, const char *val)
{
	size_t len = strlen(val);
	ssize_t n;
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		vh_err(ctx, "lio: open %s: %s\n", path, strerror(errno));
		return ret;
	}
	n = write(fd, val, len);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != len)
		ret = -EIO;
	if (ret)
		vh_err(ctx, "lio: write \"%s\" to %s: %s\n", val, path,
		       strerror(-ret));
	close(fd);
	return ret;
}

/* Undo one step: 0 (the entry is spent), or -errno (it is kept). */
static int run_undo(struct vh_lio_target *t, struct undo *u)
{
	int ret = 0;

	switch (u->op) {
	case UNDO_RMDIR:
		if (rmdir(u->path))
			ret = -errno;
		break;
	case UNDO_UNLINK:
		if (unlink(u->path))
			ret = -errno;
		break;
	case UNDO_NEXUS:
		ret = write_attr(t->ctx, u->path, "NULL");
		break;
	}
	if (ret) {
		/* kept: a later remove_lun or the last unref tries again */
		vh_warn(t->ctx, "lio: undo %s: %s\n", u->path, strerror(-ret));
		return ret;
	}
	vh_dbg(t->ctx, "lio: removed %s\n", u->path);
	free(u->path);
	u->path = NULL;
	return 0;
}

/*
 * Run every undo entry (or those of one LUN), newest first; the ones that
 * fail stay.  How many there were; *err the first failure, or 0.
 */
static unsigned int undo_all(struct vh_lio_target *t, bool one_lun,
			     uint64_t lun, int *err)
{
	unsigned int i, kept = 0, done = 0;

	*err = 0;
	for (i = t->nundo; i-- > 0;) {
		struct undo *u = &t->undo[i];
		int r;

		if (one_lun && (!u->lun_owned || u->lun != lun))
			continue;
		r = run_undo(t, u);
		if (r && !*err)
			*err = r;
		done++;
	}
	/* compact what is left, keeping its order */
	for (i = 0; i < t->nundo; i++)
		if (t->undo[i].path)
			t->undo[kept++] = t->undo[i];
	t->nundo = kept;
	return done;
}

static int make_dir(struct vh_lio_target *t, const char *path, bool lun_owned,
		    uint64_t lun)
{
	int ret;

	if (mkdir(path, 0755)) {
		ret = -errno;
		vh_dbg(t->ctx, "lio: mkdir %s: %s\n", path, strerror(errno));
		return ret;
	}
	ret = push_undo(t, UNDO_RMDIR, path, lun_owned, lun);
	if (ret < 0)
		rmdir(path);
	return ret;
}

/* -ENODEV with the module to load, when the LIO core is not there. */
static int check_target_core(struct vh_ctx *ctx)
{
	struct statfs sfs;
	struct stat st;

	if (statfs(CONFIGFS_ROOT, &sfs) ||
	    sfs.f_type != (typeof(sfs.f_type))CONFIGFS_MAGIC_NR) {
		vh_err(ctx,
		       "lio: configfs is not mounted on " CONFIGFS_ROOT
		       " (modprobe configfs; mount -t configfs none " CONFIGFS_ROOT
		       ")\n");
		return -ENODEV;
	}
	if (stat(TARGET_ROOT, &st) || !S_ISDIR(st.st_mode)) {
		vh_err(ctx, "lio: no " TARGET_ROOT
			    ": the target_core_mod module is not loaded\n");
		return -ENODEV;
	}
	return 0;
}

static int check_lun(struct vh_ctx *ctx, const struct vh_lio_lun *l)
{
	if (!l)
		return -EINVAL;
	switch (l->type) {
	case VH_LIO_FILEIO:
		if (!l->path || l->path[0] != '/' ||
		    strlen(l->path) > LIO_MAX_FILE_PATH ||
		    strpbrk(l->path, ",\n")) {
			vh_err(ctx,
			       "lio: fileio needs an absolute path without ',' or newline, at most %d bytes\n",
			       LIO_MAX_FILE_PATH);
			return -EINVAL;
		}
		/*
		 * fileio takes its last LBA as (size - 512) / 512 unsigned:
		 * less than a block wraps to a disk of 2^55 blocks, which a
		 * guest may write anywhere in (the host file grows)
		 */
		if (l->size && l->size < LIO_BLOCK) {
			vh_err(ctx,
			       "lio: fileio of %llu bytes: at least %d are needed\n",
			       (unsigned long long)l->size, LIO_BLOCK);
			return -EINVAL;
		}
		break;
	case VH_LIO_RAMDISK:
		if (l->size < (uint64_t)sysconf(_SC_PAGESIZE)) {
			vh_err(ctx,
			       "lio: ramdisk of %llu bytes: at least a page is needed\n",
			       (unsigned long long)l->size);
			return -EINVAL;
		}
		/* rd_mcp parses rd_pages as an int (and ignores overflow) */
		if (l->size / (uint64_t)sysconf(_SC_PAGESIZE) > INT_MAX) {
			vh_err(ctx, "lio: ramdisk of %llu bytes: too large\n",
			       (unsigned long long)l->size);
			return -EINVAL;
		}
		break;
	default:
		vh_err(ctx, "lio: unknown backstore type %d\n", (int)l->type);
		return -EINVAL;
	}
	/* configfs parses lun_<n> with kstrtoull; the SCSI LUN space is 14 bits for virtio-scsi */
	if (l->lun > 16383) {
		vh_err(ctx,
		       "lio: LUN %llu out of range (virtio-scsi: 0..16383)\n",
		       (unsigned long long)l->lun);
		return -EINVAL;
	}
	return 0;
}

/* core/<plugin>_<N>: a fresh HBA with the first free id. */
static int make_hba(struct vh_lio_target *t, const char *plugin, uint64_t lun,
		    char *path, size_t len)
{
	unsigned int id;
	int ret = -EEXIST;

	for (id = 0; id < LIO_MAX_HBA_TRIES; id++) {
		ret = pathf(path, len, TARGET_ROOT "/core/%s_%u", plugin, id);
		if (ret < 0)
			return ret;
		ret = make_dir(t, path, true, lun);
		if (ret != -EEXIST)
			break;
	}
	if (ret < 0) {
		if (ret == -ENOENT || ret == -EINVAL || ret == -ENODEV)
			vh_err(t->ctx,
			       "lio: cannot create a %s HBA (%s): is the target_core_%s module available?\n",
			       plugin, strerror(-ret),
			       !strcmp(plugin, "fileio") ? "file" : "mod");
		else
			vh_err(t->ctx, "lio: cannot create a %s HBA: %s\n",
			       plugin, strerror(-ret));
	}
	return ret;
}

/*
 * The size of a FILEIO backing: a regular file's, or a block device's
 * (whose st_size is 0); 0 if it cannot be read.
 */
static uint64_t backing_size(const char *path)
{
	uint64_t size = 0;
	struct stat st;
	int fd;

	if (stat(path, &st) < 0)
		return 0;
	if (S_ISREG(st.st_mode))
		return (uint64_t)st.st_size;
	if (!S_ISBLK(st.st_mode))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return 0;
	if (ioctl(fd, BLKGETSIZE64, &size) < 0)
		size = 0;
	close(fd);
	return size;
}

static int make_backstore(struct vh_lio_target *t, const struct vh_lio_lun *l,
			  char *dev, size_t len)
{
	char hba[LIO_PATH_MAX], attr[LIO_PATH_MAX + 16], opts[LIO_PATH_MAX];
	const char *plugin = l->type == VH_LIO_FILEIO ? "fileio" : "rd_mcp";
	uint64_t size = l->size;
	int ret;

	if (l->type == VH_LIO_FILEIO && size == 0) {
		size = backing_size(l->path);
		if (size < LIO_BLOCK) {
			vh_err(t->ctx,
			       "lio: %s: no size given and the file is missing or shorter than %d bytes\n",
			       l->path, LIO_BLOCK);
			return -EINVAL;
		}
	}

	ret = make_hba(t, plugin, l->lun, hba, sizeof(hba));
	if (ret < 0)
		return ret;
	ret = pathf(dev, len, "%s/lun%llu", hba, (unsigned long long)l->lun);
	if (ret < 0)
		return ret;
	ret = make_dir(t, dev, true, l->lun);
	if (ret < 0) {
		vh_err(t->ctx, "lio: mkdir %s: %s\n", dev, strerror(-ret));
		return ret;
	}

	if (l->type == VH_LIO_FILEIO)
		ret = pathf(opts, sizeof(opts),
			    "fd_dev_name=%s,fd_dev_size=%llu%s", l->path,
			    (unsigned long long)size,
			    l->buffered ? ",fd_buffered_io=1" : "");
	else
		ret = pathf(opts, sizeof(opts), "rd_pages=%llu",
			    (unsigned long long)(size / (uint64_t)sysconf(
								_SC_PAGESIZE)));
	if (ret < 0)
		return ret;
	if ((ret = pathf(attr, sizeof(attr), "%s/control", dev)) < 0)
		return ret;
	ret = write_attr(t->ctx, attr, opts);
	if (ret < 0)
		return ret;
	if ((ret = pathf(attr, sizeof(attr), "%s/enable", dev)) < 0)
		return ret;
	return write_attr(t->ctx, attr, "1");
}

static int add_lun(struct vh_lio_target *t, const struct vh_lio_lun *l)
{
	char dev[LIO_PATH_MAX], lundir[LIO_PATH_MAX], link[LIO_PATH_MAX + 16];
	unsigned int i;
	int ret;

	ret = check_lun(t->ctx, l);
	if (ret < 0)
		return ret;
	for (i = 0; i < t->nundo; i++)
		if (t->undo[i].lun_owned && t->undo[i].lun == l->lun) {
			vh_err(t->ctx, "lio: LUN %llu already exists\n",
			       (unsigned long long)l->lun);
			return -EEXIST;
		}
	ret = make_backstore(t, l, dev, sizeof(dev));
	if (ret < 0)
		goto fail;
	ret = pathf(lundir, sizeof(lundir), "%s/lun/lun_%llu", t->tpg_path,
		    (unsigned long long)l->lun);
	if (ret < 0)
		goto fail;
	ret = make_dir(t, lundir, true, l->lun);
	if (ret < 0) {
		vh_err(t->ctx, "lio: mkdir %s: %s\n", lundir, strerror(-ret));
		goto fail;
	}
	ret = pathf(link, sizeof(link), "%s/vh_port", lundir);
	if (ret < 0)
		goto fail;
	if (symlink(dev, link)) {
		ret = -errno;
		vh_err(t->ctx, "lio: link %s -> %s: %s\n", link, dev,
		       strerror(errno));
		goto fail;
	}
	ret = push_undo(t, UNDO_UNLINK, link, true, l->lun);
	if (ret < 0) {
		unlink(link);
		goto fail;
	}
	vh_info(t->ctx, "lio: %s LUN %llu on %s\n", t->wwpn,
		(unsigned long long)l->lun, dev);
	return 0;
fail:
	{
		int uerr; /* ret says what failed; the undo logs its own */

		undo_all(t, true, l->lun, &uerr);
	}
	return ret;
}

VH_EXPORT int vh_lio_target_add_lun(struct vh_lio_target *t,
				    const struct vh_lio_lun *l)
{
	if (!t)
		return -EINVAL;
	return add_lun(t, l);
}

VH_EXPORT int vh_lio_target_remove_lun(struct vh_lio_target *t, uint64_t lun)
{
	if (!t)
		return -EINVAL;
	int err;

	if (!undo_all(t, true, lun, &err))
		return -ENOENT;
	return err;
}

static int make_fabric(struct vh_lio_target *t)
{
	const char *fabric = TARGET_ROOT "/vhost";
	struct stat st;
	int ret;

	if (stat(fabric, &st) == 0 && S_ISDIR(st.st_mode))
		return 0;
	/* mkdir registers the fabric; it only works with vhost_scsi loaded */
	ret = make_dir(t, fabric, false, 0);
	if (ret == -EEXIST)
		return 0;
	/*
	 * target_core_register_fabric() answers EINVAL for a fabric nobody
	 * registered (ENOENT: target/ went away under us); any other errno
	 * (EACCES, EROFS, ENOMEM, ...) is a failure of its own, not a
	 * missing module, and goes back as it is.
	 */
	if (ret == -EINVAL || ret == -ENOENT) {
		vh_err(t->ctx,
		       "lio: cannot register the vhost fabric (%s): is the vhost_scsi module loaded?\n",
		       strerror(-ret));
		return -ENODEV;
	}
	if (ret < 0) {
		vh_err(t->ctx, "lio: mkdir %s: %s\n", fabric, strerror(-ret));
		return ret;
	}
	return 0;
}

static int build(struct vh_lio_target *t, const struct vh_lio_config *cfg)
{
	char path[LIO_PATH_MAX + 16];
	unsigned int i;
	int ret;

	ret = make_fabric(t);
	if (ret < 0)
		return ret;
	ret = pathf(path, sizeof(path), TARGET_ROOT "/vhost/%s", t->wwpn);
	if (ret < 0)
		return ret;
	ret = make_dir(t, path, false, 0);
	if (ret < 0) {
		vh_err(t->ctx, "lio: mkdir %s: %s\n", path, strerror(-ret));
		return ret;
	}
	ret = pathf(t->tpg_path, sizeof(t->tpg_path), "%s/tpgt_%u", path,
		    t->tpgt);
	if (ret < 0)
		return ret;
	ret = make_dir(t, t->tpg_path, false, 0);
	if (ret < 0) {
		vh_err(t->ctx, "lio: mkdir %s: %s\n", t->tpg_path,
		       strerror(-ret));
		return ret;
	}
	/*
	 * The nexus before the LUNs: vhost-scsi refuses to drop a nexus while
	 * LUNs are linked, and teardown runs in reverse.
	 */
	ret = pathf(path, sizeof(path), "%s/nexus", t->tpg_path);
	if (ret < 0)
		return ret;
	ret = write_attr(t->ctx, path, t->initiator);
	if (ret < 0)
		return ret;
	ret = push_undo(t, UNDO_NEXUS, path, false, 0);
	if (ret < 0)
		return ret;
	for (i = 0; i < cfg->nluns; i++) {
		ret = add_lun(t, &cfg->luns[i]);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* The layout of the first release (HACKING, "Extensible structs"). */
#define LIO_CONFIG_SIZE_1 VH_SIZEOF_UNTIL(struct vh_lio_config, nluns)

VH_EXPORT int vh_lio_target_new(struct vh_ctx *ctx,
				const struct vh_lio_config *cfg,
				struct vh_lio_target **target)
{
	struct vh_lio_config c;
	struct vh_lio_target *t;
	unsigned int i;
	int ret;

	if (!ctx || !cfg || !target)
		return -EINVAL;
	/* the application's layout may be older or newer than ours */
	ret = vh_copy_struct(&c, sizeof(c), LIO_CONFIG_SIZE_1, cfg);
	if (ret < 0)
		return ret;
	cfg = &c;
	if (cfg->nluns && !cfg->luns)
		return -EINVAL;
	if (cfg->tpgt > LIO_MAX_TPGT) {
		vh_err(ctx, "lio: tpgt %u out of range (0..%d)\n", cfg->tpgt,
		       LIO_MAX_TPGT);
		return -EINVAL;
	}
	if ((cfg->wwpn && vh_lio_wwpn_check(cfg->wwpn)) ||
	    (cfg->initiator && vh_lio_wwpn_check(cfg->initiator))) {
		vh_err(ctx, "lio: a WWPN is \"naa.\" and 16 hex digits\n");
		return -EINVAL;
	}
	for (i = 0; i < cfg->nluns; i++) {
		ret = check_lun(ctx, &cfg->luns[i]);
		if (ret < 0)
			return ret;
	}
	ret = check_target_core(ctx);
	if (ret < 0)
		return ret;

	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->refcount = 1;
	t->ctx = vh_ctx_ref(ctx);
	t->tpgt = cfg->tpgt;
	if (cfg->wwpn)
		memcpy(t->wwpn, cfg->wwpn, sizeof(t->wwpn));
	else
		random_wwpn(t->wwpn);
	if (cfg->initiator)
		memcpy(t->initiator, cfg->initiator, sizeof(t->initiator));
	else
		random_wwpn(t->initiator);

	ret = build(t, cfg);
	if (ret < 0) {
		vh_lio_target_unref(t);
		return ret;
	}
	vh_info(ctx, "lio: target %s tpgt %u ready (%u LUNs)\n", t->wwpn,
		t->tpgt, cfg->nluns);
	*target = t;
	return 0;
}

VH_EXPORT struct vh_lio_target *vh_lio_target_ref(struct vh_lio_target *t)
{
	if (t)
		t->refcount++;
	return t;
}

VH_EXPORT struct vh_lio_target *vh_lio_target_unref(struct vh_lio_target *t)
{
	unsigned int i;
	int err;

	if (!t)
		return NULL;
	if (--t->refcount > 0)
		return t;
	undo_all(t, false, 0, &err);
	if (err)
		vh_err(t->ctx,
		       "lio: target %s: %u configfs entries left (is its vhost-scsi endpoint still set?)\n",
		       t->wwpn, t->nundo);
	else
		vh_info(t->ctx, "lio: target %s removed\n", t->wwpn);
	for (i = 0; i < t->nundo; i++)
		free(t->undo[i].path);
	free(t->undo);
	vh_ctx_unref(t->ctx);
	free(t);
	return NULL;
}

VH_EXPORT const char *vh_lio_target_get_wwpn(const struct vh_lio_target *t)
{
	return t ? t->wwpn : NULL;
}

VH_EXPORT unsigned int vh_lio_target_get_tpgt(const struct vh_lio_target *t)
{
	return t ? t->tpgt : 0;
}
