// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhostctl user probe|check SOCKET, vhostctl features SOCKET: ask a
 * vhost-user back-end what it speaks, as a front-end that sets nothing up
 * (no SET_OWNER, no memory, no rings), so the back-end is left as it was.
 */
#include <endian.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "libvhost-kernel.h"
#include "libvhost-vu.h"
#include "vhostctl.h"

#define PROBE_TIMEOUT_MS 3000

enum dev_kind { KIND_UNKNOWN = 0, KIND_NET = 1, KIND_BLK = 2 };

struct probe {
	uint64_t features, protocol;
	bool has_protocol;
	int queue_num_err, slots_err, config_err;
	uint64_t queue_num, slots;
	enum dev_kind kind;
	uint8_t config[VH_VU_MAX_CONFIG_SIZE];
	uint32_t config_len;
	/* the first query the back-end answered wrongly, and how */
	const char *failed;
	int failed_err;
};

/*
 * A query the back-end advertised and then did not answer right (a
 * malformed or impossible reply, silence, a closed connection): the probe
 * fails.  Not advertised (-EOPNOTSUPP) is no failure, nor is a GET_CONFIG
 * the back-end answered with its error reply (-EIO, an empty payload).
 */
static void note_query(struct probe *p, const char *name, int err)
{
	if (err >= 0 || err == -EOPNOTSUPP || p->failed)
		return;
	if (err == -EIO && !strcmp(name, "GET_CONFIG"))
		return;
	p->failed = name;
	p->failed_err = err;
}

/*
 * vhost-user does not say which device a back-end is: guess from the
 * device-specific feature bits (virtio 1.3, 5.1.3 and 5.2.3), or take
 * --type.
 */
static enum dev_kind guess_kind(uint64_t f)
{
	const uint64_t net = (1ull << 5) | (1ull << 15) | (1ull << 16) |
			     (1ull << 17) | (1ull << 3);
	const uint64_t blk = (1ull << 1) | (1ull << 2) | (1ull << 4) |
			     (1ull << 6) | (1ull << 9) | (1ull << 13) |
			     (1ull << 14);

	if (__builtin_popcountll(f & net) > __builtin_popcountll(f & blk))
		return KIND_NET;
	if (f & blk)
		return KIND_BLK;
	return KIND_UNKNOWN;
}

static int parse_kind(const char *s, enum dev_kind *k)
{
	if (!strcmp(s, "net"))
		*k = KIND_NET;
	else if (!strcmp(s, "blk") || !strcmp(s, "block"))
		*k = KIND_BLK;
	else if (!strcmp(s, "auto"))
		*k = KIND_UNKNOWN;
	else
		return -EINVAL;
	return 0;
}

static const char *kind_name(enum dev_kind k)
{
	return k == KIND_NET ? "net" : k == KIND_BLK ? "blk" : "unknown";
}

/* how long a refused socket may take to start listening */
#define REFUSED_GRACE_MS 500

int vhc_user_connect(struct vhc *v, const char *path, int timeout_ms,
		     struct vh_vu_frontend **fe)
{
	struct stat st;
	int err;

	if (stat(path, &st) < 0) {
		err = -errno; /* before writing to stderr, which may fail */
		vhc_err(v, "%s: %s", path, strerror(-err));
		return err;
	}
	if (!S_ISSOCK(st.st_mode)) {
		vhc_err(v, "%s: not a Unix socket", path);
		return -ENOTSOCK;
	}
	err = vh_vu_frontend_new(v->ctx, fe);
	if (err < 0)
		return err;
	vh_vu_frontend_set_timeout(*fe, timeout_ms);
	/*
	 * One attempt first.  A full backlog (-EAGAIN) is a busy back-end:
	 * that one is waited for, timeout_ms.  A refusal is a socket nobody
	 * listens on: its back-end died and left it, or is between bind()
	 * and listen() (QEMU and DPDK bind the path itself), a moment that
	 * REFUSED_GRACE_MS covers; waiting the whole timeout_ms for a dead
	 * one would only end in "timed out".
	 */
	err = vh_vu_frontend_connect(*fe, path, 0);
	if (err == -EAGAIN)
		err = vh_vu_frontend_connect(*fe, path, timeout_ms);
	else if (err == -ECONNREFUSED) {
		err = vh_vu_frontend_connect(*fe, path,
					     timeout_ms < REFUSED_GRACE_MS ?
						     timeout_ms :
						     REFUSED_GRACE_MS);
		if (err == -ETIMEDOUT)
			err = -ECONNREFUSED;
	}
	if (err == -ECONNREFUSED)
		vhc_err(v, "%s: no back-end listens on this socket", path);
	else if (err < 0)
		vhc_err(v, "%s: cannot connect: %s", path, strerror(-err));
	if (err < 0)
		*fe = vh_vu_frontend_unref(*fe);
	return err;
}

int vhc_user_exit_for(int err)
{
	switch (-err) {
	case ENOTSOCK:
		return VHC_EXIT_USAGE; /* the argument names another kind of file */
	case ECONNREFUSED:
		return VHC_EXIT_ABSENT; /* the socket is there, its back-end is not */
	default:
		return vhc_exit_for(err);
	}
}

/* Ask everything a front-end may ask without configuring the device. */
static int probe(struct vhc *v, const char *path, enum dev_kind kind,
		 struct probe *p)
{
	struct vh_vu_frontend *fe = NULL;
	int err;

	memset(p, 0, sizeof(*p));
	p->queue_num_err = p->slots_err = p->config_err = -EOPNOTSUPP;
	err = vhc_user_connect(v, path, PROBE_TIMEOUT_MS, &fe);
	if (err < 0)
		return err;

	err = vh_vu_frontend_get_features(fe, &p->features);
	if (err < 0) {
		vhc_err(v, "%s: GET_FEATURES: %s (is this a vhost-user back-end?)",
			path, strerror(-err));
		goto out;
	}
	p->kind = kind ? kind : guess_kind(p->features);
	if (p->features & (1ull << VH_VU_F_PROTOCOL_FEATURES)) {
		err = vh_vu_frontend_get_protocol_features(fe, &p->protocol);
		if (err < 0) {
			vhc_err(v, "%s: GET_PROTOCOL_FEATURES: %s", path,
				strerror(-err));
			goto out;
		}
		p->has_protocol = true;
		/*
		 * The queries below are gated on negotiated protocol
		 * features (spec: "a front-end ... must first negotiate"),
		 * so acknowledge what was offered; this changes no device
		 * state.
		 */
		err = vh_vu_frontend_set_protocol_features(fe, p->protocol);
		if (err < 0) {
			vhc_err(v, "%s: SET_PROTOCOL_FEATURES: %s", path,
				strerror(-err));
			goto out;
		}
		if (p->protocol & (1ull << VH_VU_PROTOCOL_F_MQ))
			p->queue_num_err =
				vh_vu_frontend_get_queue_num(fe, &p->queue_num);
		note_query(p, "GET_QUEUE_NUM", p->queue_num_err);
		if (p->protocol & (1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS))
			p->slots_err = vh_vu_frontend_get_max_mem_slots(
				fe, &p->slots);
		note_query(p, "GET_MAX_MEM_SLOTS", p->slots_err);
		if (p->protocol & (1ull << VH_VU_PROTOCOL_F_CONFIG)) {
			uint32_t len = p->kind == KIND_NET ? 12 :
				       p->kind == KIND_BLK ? 60 : 8;

			p->config_err = vh_vu_frontend_get_config(
				fe, 0, p->config, len);
			if (p->config_err == 0)
				p->config_len = len;
			note_query(p, "GET_CONFIG", p->config_err);
		}
	}
	err = 0;
out:
	vh_vu_frontend_unref(fe);
	return err;
}

static uint64_t le(const uint8_t *b, unsigned int n)
{
	uint64_t x = 0;

	for (unsigned int i = 0; i < n; i++)
		x |= (uint64_t)b[i] << (8 * i);
	return x;
}

/* virtio 1.3, 5.2.4 (blk) and 5.1.4 (net) configuration layouts. */
static void print_config(struct vhc *v, const struct probe *p)
{
	struct vhc_out *o = &v->out;
	const uint8_t *c = p->config;

	if (p->config_err < 0) {
		out_null(o, "config");
		if (p->config_err != -EOPNOTSUPP)
			out_text(o, "  config          error: %s\n",
				 strerror(-p->config_err));
		return;
	}
	out_open_obj(o, "config");
	if (p->kind == KIND_BLK) {
		out_u64(o, "capacity", "  capacity        %llu sectors\n",
			le(c, 8));
		if (p->features & (1ull << 1))
			out_u64(o, "size_max", "  size_max        %llu\n",
				le(c + 8, 4));
		if (p->features & (1ull << 2))
			out_u64(o, "seg_max", "  seg_max         %llu\n",
				le(c + 12, 4));
		if (p->features & (1ull << 6))
			out_u64(o, "blk_size", "  blk_size        %llu\n",
				le(c + 20, 4));
		if (p->features & (1ull << 12))
			out_u64(o, "num_queues", "  num_queues      %llu\n",
				le(c + 34, 2));
	} else if (p->kind == KIND_NET) {
		char mac[18];

		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x",
			 c[0], c[1], c[2], c[3], c[4], c[5]);
		if (p->features & (1ull << 5))
			out_str(o, "mac", "  mac             %s\n", mac);
		if (p->features & (1ull << 16))
			out_u64(o, "status", "  status          %llu\n",
				le(c + 6, 2));
		if (p->features & (1ull << 22))
			out_u64(o, "max_virtqueue_pairs",
				"  max_vq_pairs    %llu\n", le(c + 8, 2));
		if (p->features & (1ull << 3))
			out_u64(o, "mtu", "  mtu             %llu\n",
				le(c + 10, 2));
	}
	out_open_arr(o, "raw");
	for (uint32_t i = 0; i < p->config_len; i++)
		out_u64(o, NULL, NULL, c[i]);
	out_close_arr(o);
	out_close_obj(o);
}

static unsigned int kind_virtio_id(enum dev_kind k)
{
	return k == KIND_NET ? VH_VIRTIO_ID_NET :
	       k == KIND_BLK ? VH_VIRTIO_ID_BLOCK : 0;
}

static void print_probe(struct vhc *v, const char *path,
			const struct probe *p, bool full)
{
	struct vhc_out *o = &v->out;

	out_open_obj(o, NULL);
	out_str(o, "socket", "%s", path);
	out_str(o, "type", " (vhost-user %s)\n", kind_name(p->kind));
	out_text(o, "  features        ");
	out_features(o, "features", kind_virtio_id(p->kind), p->features);
	out_text(o, "\n");
	if (p->has_protocol) {
		out_text(o, "  protocol        ");
		out_protocol_features(o, "protocol_features", p->protocol);
		out_text(o, "\n");
	} else {
		out_null(o, "protocol_features");
	}
	if (!full)
		goto done;
	if (p->queue_num_err == 0)
		out_u64(o, "queues", "  queues          %llu\n", p->queue_num);
	else
		out_null(o, "queues");
	if (p->queue_num_err < 0 && p->queue_num_err != -EOPNOTSUPP)
		out_text(o, "  queues          error: %s\n",
			 strerror(-p->queue_num_err));
	if (p->slots_err == 0)
		out_u64(o, "max_mem_slots", "  max mem slots   %llu\n",
			p->slots);
	else
		out_null(o, "max_mem_slots");
	if (p->slots_err < 0 && p->slots_err != -EOPNOTSUPP)
		out_text(o, "  max mem slots   error: %s\n",
			 strerror(-p->slots_err));
	print_config(v, p);
done:
	out_close_obj(o);
	out_end(o);
}

/* What was read is printed; then a wrong answer fails the command. */
static int probe_result(struct vhc *v, const char *path,
			const struct probe *p)
{
	if (!p->failed)
		return VHC_EXIT_OK;
	vhc_err(v, "%s: %s: %s (bad reply from the back-end; -v says why)",
		path, p->failed, strerror(-p->failed_err));
	return VHC_EXIT_FAIL;
}

int user_features(struct vhc *v, const char *path)
{
	struct probe p;
	int err = probe(v, path, KIND_UNKNOWN, &p);

	if (err < 0)
		return vhc_user_exit_for(err);
	print_probe(v, path, &p, false);
	return probe_result(v, path, &p);
}

static void probe_usage(FILE *f)
{
	fputs("Usage: vhostctl user probe [-t|--type net|blk|auto] SOCKET\n"
	      "  Connects as a vhost-user front-end and prints the back-end's\n"
	      "  features, protocol features, queue count, memory slots and\n"
	      "  config space, without configuring it.  Exit status 1 if the\n"
	      "  back-end answered an advertised query wrongly.\n",
	      f);
}

static int user_probe(struct vhc *v, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "type", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	enum dev_kind kind = KIND_UNKNOWN;
	struct probe p;
	int c, err;

	/* 0: glibc starts afresh, permuting ("+" was the caller's) */
	optind = 0;
	/* options anywhere: "user probe SOCKET --help" too */
	while ((c = getopt_long(argc, argv, "t:h", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_kind(optarg, &kind) < 0) {
				vhc_err(v, "user probe: bad type \"%s\"", optarg);
				return VHC_EXIT_USAGE;
			}
			break;
		case 'h':
			probe_usage(stdout);
			return VHC_EXIT_OK;
		default:
			probe_usage(stderr);
			return VHC_EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		probe_usage(stderr);
		return VHC_EXIT_USAGE;
	}
	err = probe(v, argv[optind], kind, &p);
	if (err < 0)
		return vhc_user_exit_for(err);
	print_probe(v, argv[optind], &p, true);
	return probe_result(v, argv[optind], &p);
}

static void user_usage(FILE *f)
{
	fputs("Usage: vhostctl user probe [-t|--type net|blk|auto] SOCKET\n"
	      "       vhostctl user check SOCKET\n",
	      f);
}

static const struct vhc_cmd user_cmds[] = {
	{ "probe", user_probe, NULL },
	{ "check", user_check, NULL },
	{ NULL, NULL, NULL },
};

int cmd_user(struct vhc *v, int argc, char **argv)
{
	return vhc_dispatch(v, "user command", user_cmds, argc - 1, argv + 1,
			    user_usage);
}
