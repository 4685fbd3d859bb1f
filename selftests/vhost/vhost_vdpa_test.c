// SPDX-License-Identifier: GPL-2.0-only
/*
 * vhost_vdpa_test - vDPA end to end on the kernel's simulators: devices
 * are created and deleted through libvhost's vdpa netlink code, driven
 * through /dev/vhost-vdpa-N by a userspace virtio driver (vh_drvq rings in
 * memfd guest memory, reached by the device only through IOTLB v2
 * mappings), with bytes checked:
 *  - vdpa_sim_net: config space MAC as created, TX -> RX loopback,
 *    map/unmap and a buffer outside every mapping, the control VQ in its
 *    own address space (ASID 1) changing the MAC, suspend/resume with the
 *    ring state kept, vendor statistics;
 *  - vdpa_sim_blk: write/read sectors, GET_ID, capacity from config space.
 * Deleting a device leaves no /dev/vhost-vdpa-* behind.  Devices are
 * bound to vhost_vdpa by hand (autoprobe off), whatever other vDPA bus
 * driver is loaded.  Kernels without vDPA (no "vdpa" netlink family) SKIP.
 */
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <linux/vhost.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_config.h>
#include <linux/virtio_net.h>

#include "kselftest_harness.h"
#include "vh_selftest.h"

#define BIT(n) (1ULL << (n))
#define RING_NUM 64
#define MEM_SIZE (2u << 20)
#define NVQ_MAX 3
#define HDR_LEN sizeof(struct virtio_net_hdr_v1)
#define FRAME_LEN 300
#define BUF_LEN 2048
/* An IOVA window far from guest memory (IOVA = GPA below MEM_SIZE). */
#define FAR_IOVA 0x100000000ull
#define AUTOPROBE "/sys/bus/vdpa/drivers_autoprobe"
#define VHOST_VDPA_DRV "/sys/bus/vdpa/drivers/vhost_vdpa"
/* <linux/vhost_types.h> from 6.4 on */
#define BACKEND_F_RESUME 5
/* what vd_setup() asks for: IOTLB v2, batching, ASIDs, suspend, resume */
#define BACKEND_WANT                                                          \
	(BIT(VHOST_BACKEND_F_IOTLB_MSG_V2) | BIT(VHOST_BACKEND_F_IOTLB_BATCH) | \
	 BIT(VHOST_BACKEND_F_IOTLB_ASID) | BIT(VHOST_BACKEND_F_SUSPEND) |      \
	 BIT(BACKEND_F_RESUME))

static const uint8_t test_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0x01 };
static const uint8_t new_mac[6] = { 0x52, 0x54, 0x00, 0xab, 0xcd, 0x02 };

struct vd {
	struct vh_ctx *ctx;
	struct vh_vdpa_mgmt *mgmt;
	char name[32];
	bool created;
	char path[64];
	int nodes_before;
	struct vh_kdev *dev;
	uint64_t backend, backend_offered;
	struct st_guest g;
	bool have_guest;
	struct vh_drvq *vq[NVQ_MAX];
	uint64_t ring_gpa[NVQ_MAX];
	int kick[NVQ_MAX], call[NVQ_MAX];
};

static int count_nodes(void)
{
	glob_t gl;
	int n;

	if (glob("/dev/vhost-vdpa-*", 0, NULL, &gl))
		return 0;
	n = (int)gl.gl_pathc;
	globfree(&gl);
	return n;
}

/* Delete the device; 0 if its node is gone afterwards. */
static int vd_cleanup(struct vd *v)
{
	int i, ret = 0;

	v->dev = vh_kdev_unref(v->dev);
	for (i = 0; i < NVQ_MAX; i++) {
		v->vq[i] = vh_drvq_unref(v->vq[i]);
		if (v->kick[i] >= 0)
			close(v->kick[i]);
		if (v->call[i] >= 0)
			close(v->call[i]);
		v->kick[i] = v->call[i] = -1;
	}
	if (v->have_guest)
		st_guest_fini(&v->g);
	v->have_guest = false;
	if (v->created) {
		ret = vh_vdpa_mgmt_dev_del(v->mgmt, v->name);
		v->created = false;
		if (ret == 0 && v->path[0] && access(v->path, F_OK) == 0)
			ret = -EEXIST;
		if (ret == 0 && count_nodes() != v->nodes_before)
			ret = -EEXIST;
	}
	v->mgmt = vh_vdpa_mgmt_unref(v->mgmt);
	v->ctx = vh_ctx_unref(v->ctx);
	return ret;
}

/*
 * Create a device on mgmtdev and open its vhost-vdpa node.  Returns 0,
 * KSFT_SKIP with *why set, or -errno with *why set.
 */
static int vd_setup(struct vd *v, const char *mgmtdev, char kind,
		    const struct vh_vdpa_dev_new *extra, const char **why)
{
	struct vh_vdpa_mgmtdev_info *list = NULL;
	struct vh_vdpa_dev_new p = { .size = sizeof(p) };
	size_t n = 0, i;
	bool found = false;
	char autoprobe[8];
	int ret, err;

	memset(v, 0, sizeof(*v));
	for (i = 0; i < NVQ_MAX; i++)
		v->kick[i] = v->call[i] = -1;
	*why = "ctx";
	ret = vh_ctx_new(&v->ctx);
	if (ret)
		return ret;
	if (!getenv("LIBVHOST_LOG"))
		vh_ctx_set_log_priority(v->ctx, 3);
	/*
	 * main() saw /sys/bus/vdpa: the vdpa module, and with it the "vdpa"
	 * netlink family, is there.  -ENODEV (no family) is then a failure,
	 * and so is -EOPNOTSUPP (libvhost built without libmnl): a build
	 * that cannot test vDPA is broken, not skipped (as in vduse_test).
	 */
	ret = vh_vdpa_mgmt_new(v->ctx, &v->mgmt);
	*why = ret == -EOPNOTSUPP ? "vh_vdpa_mgmt_new (libvhost built without libmnl?)" :
				    "vh_vdpa_mgmt_new (vdpa netlink family)";
	if (ret)
		return ret;
	ret = vh_vdpa_mgmt_list_mgmtdevs(v->mgmt, &list, &n);
	*why = "mgmtdev list";
	if (ret)
		return ret;
	for (i = 0; i < n; i++)
		if (!strcmp(list[i].dev_name, mgmtdev))
			found = true;
	free(list);
	if (!found) {
		*why = kind == 'n' ? "no vdpasim_net management device" :
				     "no vdpasim_blk management device";
		return KSFT_SKIP;
	}

	if (access(VHOST_VDPA_DRV, F_OK)) {
		*why = "no " VHOST_VDPA_DRV " (CONFIG_VHOST_VDPA)";
		return KSFT_SKIP;
	}

	v->nodes_before = count_nodes();
	snprintf(v->name, sizeof(v->name), "vhst%c%d", kind, (int)getpid());
	if (extra)
		p = *extra;
	p.name = v->name;
	p.mgmtdev = mgmtdev;
	/*
	 * Added with autoprobe off and bound to vhost_vdpa by hand: with
	 * virtio_vdpa loaded too (vduse_test loads it), autoprobe may give
	 * the device to either.
	 */
	*why = "read " AUTOPROBE;
	ret = st_read_file(AUTOPROBE, autoprobe, sizeof(autoprobe));
	if (ret)
		return ret;
	*why = "write " AUTOPROBE;
	ret = st_write_file(AUTOPROBE, "0");
	if (ret)
		return ret;
	*why = "dev add";
	ret = vh_vdpa_mgmt_dev_add(v->mgmt, &p);
	if (ret == 0) {
		v->created = true;
		*why = "bind to vhost_vdpa";
		ret = st_write_file(VHOST_VDPA_DRV "/bind", v->name);
	}
	err = st_write_file(AUTOPROBE, autoprobe);
	if (ret)
		return ret;
	*why = "restore " AUTOPROBE;
	if (err)
		return err;

	/* vhost_vdpa binds and devtmpfs makes the node: wait for both */
	*why = "vhost-vdpa node";
	for (i = 0; i < 100; i++) {
		ret = vh_vdpa_dev_chardev(v->ctx, v->name, v->path,
					  sizeof(v->path));
		if (ret == 0 && access(v->path, F_OK) == 0)
			break;
		usleep(20000);
	}
	if (ret)
		return ret;
	*why = "open";
	ret = vh_kdev_open(v->ctx, v->path, &v->dev);
	if (ret)
		return ret;
	*why = "set_owner";
	ret = vh_kdev_set_owner(v->dev);
	if (ret)
		return ret;
	*why = "backend features";
	ret = vh_kdev_get_backend_features(v->dev, &v->backend_offered);
	if (ret)
		return ret;
	ret = vh_vdpa_setup_backend(v->dev, BACKEND_WANT, &v->backend);
	if (ret)
		return ret;
	*why = "guest memory";
	ret = st_guest_init(&v->g, v->ctx, MEM_SIZE);
	if (ret)
		return ret;
	v->have_guest = true;
	return 0;
}

/* Lay out ring idx in guest memory (not yet given to the device). */
static int vd_new_vq(struct vd *v, unsigned int idx, uint64_t features)
{
	uint64_t gpa = st_guest_alloc(&v->g, vh_drvq_ring_bytes(RING_NUM), 4096);
	int ret;

	if (!gpa)
		return -ENOMEM;
	v->ring_gpa[idx] = gpa;
	ret = vh_drvq_new(v->ctx, v->g.mem, idx, RING_NUM, gpa, &v->vq[idx]);
	if (ret)
		return ret;
	ret = vh_drvq_set_features(v->vq[idx], features);
	if (ret)
		return ret;
	v->kick[idx] = st_eventfd();
	v->call[idx] = st_eventfd();
	if (v->kick[idx] < 0 || v->call[idx] < 0)
		return -errno;
	return vh_drvq_set_kick_fd(v->vq[idx], v->kick[idx]);
}

/* Wait for a used buffer on vq idx: its length, -ETIMEDOUT or -errno. */
static int vd_wait_used(struct vd *v, unsigned int idx, void **token,
			int timeout_ms)
{
	uint64_t deadline = st_now_ns() + (uint64_t)timeout_ms * 1000000ull;
	uint32_t len = 0;
	int ret;

	for (;;) {
		ret = vh_drvq_get_used(v->vq[idx], token, &len);
		if (ret < 0)
			return ret;
		if (ret == 1)
			return (int)len;
		if (st_now_ns() > deadline)
			return -ETIMEDOUT;
		st_wait_fd(v->call[idx], 20);
		st_eventfd_drain(v->call[idx]);
	}
}

/* ------------------------------------------------------------------ */
/* vdpa_sim_net                                                        */
/* ------------------------------------------------------------------ */

#define NET_FEATURES                                                          \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_ACCESS_PLATFORM) |            \
	 BIT(VIRTIO_NET_F_MAC) | BIT(VIRTIO_NET_F_STATUS) |                   \
	 BIT(VIRTIO_NET_F_MTU))
#define NET_CVQ_FEATURES                                                      \
	(NET_FEATURES | BIT(VIRTIO_NET_F_CTRL_VQ) |                           \
	 BIT(VIRTIO_NET_F_CTRL_MAC_ADDR))

FIXTURE(vdpa_net)
{
	struct vd v;
	uint64_t features;
	uint64_t rx_gpa, tx_gpa;
};

FIXTURE_SETUP(vdpa_net)
{
	struct vh_vdpa_dev_new p = {
		.size = sizeof(p),
		.set = VH_VDPA_NEW_MAC | VH_VDPA_NEW_MTU,
		.mtu = 1400,
	};
	const char *why = "";
	int ret;

	memcpy(p.mac, test_mac, 6);
	ret = vd_setup(&self->v, "vdpasim_net", 'n', &p, &why);
	if (ret) {
		vd_cleanup(&self->v);
		if (ret == KSFT_SKIP)
			SKIP(return, "%s", why);
		ASSERT_EQ(0, ret)
		TH_LOG("%s: %s", why, strerror(-ret));
	}
	self->rx_gpa = st_guest_alloc(&self->v.g, 8 * BUF_LEN, 64);
	self->tx_gpa = st_guest_alloc(&self->v.g, 8 * BUF_LEN, 64);
	if (!self->rx_gpa || !self->tx_gpa) {
		/* no teardown after a setup that did not complete */
		vd_cleanup(&self->v);
		ASSERT_NE(0, self->rx_gpa);
		ASSERT_NE(0, self->tx_gpa);
	}
}

FIXTURE_TEARDOWN(vdpa_net)
{
	/* the device goes, and its /dev/vhost-vdpa-N with it */
	EXPECT_EQ(0, vd_cleanup(&self->v));
}

/* Negotiate, map all memory in ASID 0, rings RX(0)/TX(1)[/CVQ(2)], DRIVER_OK. */
static int net_start(FIXTURE_DATA(vdpa_net) *self, uint64_t want,
		     bool cvq_in_asid1)
{
	struct vd *v = &self->v;
	unsigned int i, nvq = (want & BIT(VIRTIO_NET_F_CTRL_VQ)) ? 3 : 2;
	int ret;

	ret = vh_vdpa_negotiate(v->dev, want, &self->features);
	if (ret)
		return ret;
	if (self->features != want)
		return -EOPNOTSUPP;
	for (i = 0; i < nvq; i++) {
		ret = vd_new_vq(v, i, self->features);
		if (ret)
			return ret;
	}
	ret = vh_vdpa_map_mem(v->dev, 0, v->g.mem);
	if (ret)
		return ret;
	for (i = 0; i < nvq; i++) {
		if (i == 2 && cvq_in_asid1)
			continue; /* the caller sets it up in its IOVA space */
		ret = vh_vdpa_setup_vring(v->dev, i, v->vq[i], v->kick[i],
					  v->call[i]);
		if (ret)
			return ret;
		ret = vh_vdpa_set_vring_enable(v->dev, i, true);
		if (ret)
			return ret;
	}
	return 0;
}

/* A frame for our MAC: virtio-net header, Ethernet header, pattern. */
static void make_frame(uint8_t *buf, uint32_t seed)
{
	memset(buf, 0, HDR_LEN);
	memcpy(buf + HDR_LEN, test_mac, 6);
	memcpy(buf + HDR_LEN + 6, "\x52\x54\x00\x00\x00\x77", 6);
	buf[HDR_LEN + 12] = 0x88; /* local experimental ethertype */
	buf[HDR_LEN + 13] = 0xb5;
	st_fill(buf + HDR_LEN + 14, FRAME_LEN - 14, seed);
}

static int post_rx(FIXTURE_DATA(vdpa_net) *self, unsigned int slot)
{
	uint64_t gpa = self->rx_gpa + slot * BUF_LEN;
	struct vh_sg sg = { gpa, BUF_LEN };

	memset(st_gpa(&self->v.g, gpa), 0xee, BUF_LEN);
	return vh_drvq_add(self->v.vq[0], &sg, 0, 1, st_gpa(&self->v.g, gpa));
}

/* Put frame `seed` on TX at IOVA iova (its bytes at tx slot `slot`). */
static int send_tx(FIXTURE_DATA(vdpa_net) *self, unsigned int slot,
		   uint64_t iova, uint32_t seed)
{
	uint64_t gpa = self->tx_gpa + slot * BUF_LEN;
	struct vh_sg sg = { iova ? iova : gpa, HDR_LEN + FRAME_LEN };
	int ret;

	make_frame(st_gpa(&self->v.g, gpa), seed);
	ret = vh_drvq_add(self->v.vq[1], &sg, 1, 0, st_gpa(&self->v.g, gpa));
	if (ret)
		return ret;
	return vh_drvq_kick(self->v.vq[1]) < 0 ? -EIO : 0;
}

/* The RX buffer token holds exactly the frame `seed`. */
static bool rx_matches(FIXTURE_DATA(vdpa_net) *self, void *token, int len,
		       uint32_t seed)
{
	uint8_t want[HDR_LEN + FRAME_LEN];

	make_frame(want, seed);
	return len == (int)sizeof(want) && !memcmp(token, want, sizeof(want));
}

static int vstat(struct vd *v, uint32_t queue, const char *name,
		 uint64_t *value)
{
	struct vh_vdpa_vstats *s = NULL;
	unsigned int i;
	int ret;

	ret = vh_vdpa_mgmt_dev_vstats_get(v->mgmt, v->name, queue, &s);
	if (ret)
		return ret;
	ret = -ENOENT;
	for (i = 0; i < s->nstats; i++)
		if (!strcmp(s->stats[i].name, name)) {
			*value = s->stats[i].value;
			ret = 0;
		}
	vh_vdpa_vstats_free(s);
	return ret;
}

TEST_F(vdpa_net, ioctls_config_and_netlink)
{
	struct vd *v = &self->v;
	struct vh_vdpa_dev_config cfg;
	struct vh_vdpa_dev_info info, *devs = NULL;
	struct vh_vdpa_vstats *vs = NULL;
	uint32_t id = 0, n = 0, size = 0, group = 9;
	uint64_t first = 1, last = 0, acked = 0;
	uint8_t mac[6], st = 0xff;
	uint16_t max = 0;
	size_t ndevs = 0, i;
	bool listed = false;
	void *db = NULL;
	size_t dbsize = 0;
	int efd;

	ASSERT_EQ(0, vh_vdpa_get_device_id(v->dev, &id));
	EXPECT_EQ(VH_VIRTIO_ID_NET, id);
	ASSERT_EQ(0, vh_vdpa_get_vqs_count(v->dev, &n));
	EXPECT_EQ(3, n); /* RX, TX, CVQ */
	ASSERT_EQ(0, vh_vdpa_get_group_num(v->dev, &n));
	EXPECT_EQ(2, n);
	ASSERT_EQ(0, vh_vdpa_get_as_num(v->dev, &n));
	EXPECT_EQ(2, n);
	ASSERT_EQ(0, vh_vdpa_get_vring_group(v->dev, 0, &group));
	EXPECT_EQ(0, group);
	ASSERT_EQ(0, vh_vdpa_get_vring_group(v->dev, 1, &group));
	EXPECT_EQ(0, group);
	ASSERT_EQ(0, vh_vdpa_get_vring_group(v->dev, 2, &group));
	EXPECT_EQ(1, group);
	/* the simulator has no separate descriptor groups */
	EXPECT_EQ(-EOPNOTSUPP, vh_vdpa_get_vring_desc_group(v->dev, 0, &group));
	EXPECT_EQ(-ENOBUFS, vh_vdpa_get_vring_group(v->dev, 3, &group));
	ASSERT_EQ(0, vh_vdpa_get_iova_range(v->dev, &first, &last));
	EXPECT_EQ(0, first);
	EXPECT_EQ(UINT64_MAX, last);
	ASSERT_EQ(0, vh_vdpa_get_vring_num(v->dev, &max));
	EXPECT_EQ(256, max);
	/* only some parents report per-queue sizes */
	size = 0;
	n = vh_vdpa_get_vring_size(v->dev, 0, &size);
	if ((int)n == 0) {
		EXPECT_EQ(256, size);
	} else {
		EXPECT_EQ(-EOPNOTSUPP, (int)n);
	}
	ASSERT_EQ(0, vh_vdpa_get_config_size(v->dev, &size));
	EXPECT_LE(sizeof(struct virtio_net_config), size);
	/*
	 * backend features: what we asked for that the kernel offers (each
	 * kernel offers its own: RESUME came in 6.4); IOTLB v2 always
	 */
	EXPECT_EQ(BACKEND_WANT & v->backend_offered, v->backend);
	EXPECT_TRUE(v->backend & BIT(VHOST_BACKEND_F_IOTLB_MSG_V2));

	/* config space: the MAC given at creation */
	ASSERT_EQ(0, vh_vdpa_get_config(v->dev,
					offsetof(struct virtio_net_config, mac),
					mac, 6));
	EXPECT_EQ(0, memcmp(mac, test_mac, 6));
	/* past the end of config space (the kernel folds E2BIG into EINVAL) */
	EXPECT_EQ(-EINVAL, vh_vdpa_get_config(v->dev, size - 2, mac, 6));
	EXPECT_EQ(-EINVAL, vh_vdpa_get_config(v->dev, 0, mac, 0));

	/* and the same over netlink */
	ASSERT_EQ(0, vh_vdpa_mgmt_dev_config_get(v->mgmt, v->name, &cfg));
	EXPECT_STREQ(v->name, cfg.name);
	EXPECT_EQ(VH_VIRTIO_ID_NET, cfg.device_id);
	ASSERT_TRUE(VH_VDPA_HAS(&cfg, VH_VDPA_FIELD_MAC));
	EXPECT_EQ(0, memcmp(cfg.mac, test_mac, 6));
	EXPECT_EQ(1400, cfg.mtu);
	EXPECT_FALSE(VH_VDPA_HAS(&cfg, VH_VDPA_FIELD_NEGOTIATED_FEATURES));
	ASSERT_EQ(0, vh_vdpa_mgmt_dev_get(v->mgmt, v->name, &info));
	EXPECT_EQ(VH_VIRTIO_ID_NET, info.device_id);
	EXPECT_EQ(3, info.max_vqs);
	EXPECT_EQ(256, info.max_vq_size);
	EXPECT_STREQ("vdpasim_net", info.mgmt_dev_name);
	ASSERT_EQ(0, vh_vdpa_mgmt_list_devs(v->mgmt, &devs, &ndevs));
	for (i = 0; i < ndevs; i++) {
		if (!strcmp(devs[i].name, v->name))
			listed = true;
	}
	free(devs);
	EXPECT_TRUE(listed);
	/* unknown device: the kernel's errno and its message */
	EXPECT_EQ(-ENODEV, vh_vdpa_mgmt_dev_get(v->mgmt, "vhst-nonexistent",
						&info));
	EXPECT_STREQ("vdpa: device not found",
		     vh_vdpa_mgmt_last_error(v->mgmt));
	/* vendor stats need FEATURES_OK first */
	EXPECT_EQ(-EAGAIN,
		  vh_vdpa_mgmt_dev_vstats_get(v->mgmt, v->name, 0, &vs));
	EXPECT_NE(NULL, strstr(vh_vdpa_mgmt_last_error(v->mgmt),
			       "feature negotiation not complete"));

	/* status handshake with FEATURES_OK read back */
	ASSERT_EQ(0, vh_vdpa_negotiate(v->dev, NET_FEATURES, &acked));
	EXPECT_EQ(NET_FEATURES, acked);
	ASSERT_EQ(0, vh_vdpa_get_status(v->dev, &st));
	EXPECT_EQ(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER |
			  VIRTIO_CONFIG_S_FEATURES_OK,
		  st);
	/* clearing a bit without a reset is refused */
	EXPECT_EQ(-EINVAL, vh_vdpa_set_status(v->dev, VIRTIO_CONFIG_S_DRIVER));
	ASSERT_EQ(0, vh_vdpa_mgmt_dev_config_get(v->mgmt, v->name, &cfg));
	ASSERT_TRUE(VH_VDPA_HAS(&cfg, VH_VDPA_FIELD_NEGOTIATED_FEATURES));
	EXPECT_EQ(NET_FEATURES, cfg.negotiated_features);
	ASSERT_EQ(0, vh_vdpa_mgmt_dev_vstats_get(v->mgmt, v->name, 0, &vs));
	EXPECT_EQ(0, vs->queue_index);
	EXPECT_LE(1, vs->nstats);
	EXPECT_STREQ("rx packets", vs->stats[0].name);
	vh_vdpa_vstats_free(vs);
	ASSERT_EQ(0, vh_vdpa_reset(v->dev));

	/* the MAC can be changed over netlink too (6.9+) */
	ASSERT_EQ(0, vh_vdpa_mgmt_dev_set_mac(v->mgmt, v->name, new_mac));
	ASSERT_EQ(0, vh_vdpa_get_config(v->dev, 0, mac, 6));
	EXPECT_EQ(0, memcmp(mac, new_mac, 6));
	/* a multicast address is refused, with the kernel's reason */
	EXPECT_EQ(-EOPNOTSUPP, vh_vdpa_mgmt_dev_set_mac(
				       v->mgmt, v->name,
				       (const uint8_t *)"\x01\x00\x5e\x00\x00\x01"));
	EXPECT_STREQ("vdpa: Invalid MAC address",
		     vh_vdpa_mgmt_last_error(v->mgmt));

	/* a config-change eventfd binds and unbinds */
	efd = st_eventfd();
	ASSERT_LE(0, efd);
	EXPECT_EQ(0, vh_vdpa_set_config_call(v->dev, efd));
	EXPECT_EQ(0, vh_vdpa_set_config_call(v->dev, -1));
	close(efd);

	/* no doorbell page on the simulator */
	EXPECT_EQ(-EOPNOTSUPP, vh_vdpa_map_notify(v->dev, 0, &db, &dbsize));
}

TEST_F(vdpa_net, tx_rx_loopback)
{
	struct vd *v = &self->v;
	void *tok = NULL;
	unsigned int i;
	int len;

	ASSERT_EQ(0, net_start(self, NET_FEATURES, false));
	ASSERT_EQ(0, vh_vdpa_driver_ok(v->dev));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, post_rx(self, i));
	}
	ASSERT_LE(0, vh_drvq_kick(v->vq[0]));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, send_tx(self, i, 0, 100 + i));
		len = vd_wait_used(v, 0, &tok, 5000);
		ASSERT_LE(0, len);
		EXPECT_EQ(st_gpa(&v->g, self->rx_gpa + i * BUF_LEN), tok);
		EXPECT_TRUE(rx_matches(self, tok, len, 100 + i));
		ASSERT_LE(0, vd_wait_used(v, 1, &tok, 5000));
	}
}

TEST_F(vdpa_net, iotlb_map_unmap_and_unmapped_buffer)
{
	struct vd *v = &self->v;
	uint64_t errs0 = 0, errs1 = 0;
	void *tok = NULL;
	uint8_t *frame = st_gpa(&v->g, self->tx_gpa + BUF_LEN);
	int len;

	ASSERT_EQ(0, net_start(self, NET_FEATURES, false));
	ASSERT_EQ(0, vh_vdpa_driver_ok(v->dev));
	ASSERT_EQ(0, post_rx(self, 0));
	ASSERT_LE(0, vh_drvq_kick(v->vq[0]));

	/* a second window onto TX slot 1, at an IOVA far from the rest */
	ASSERT_EQ(0, vh_vdpa_dma_map(v->dev, 0, FAR_IOVA, 4096, frame,
				     VH_ACCESS_RO));
	ASSERT_EQ(0, send_tx(self, 1, FAR_IOVA, 7));
	len = vd_wait_used(v, 0, &tok, 5000);
	ASSERT_LE(0, len);
	EXPECT_TRUE(rx_matches(self, tok, len, 7));
	ASSERT_LE(0, vd_wait_used(v, 1, &tok, 5000));

	/*
	 * Unmapped, the same IOVA reaches nothing: the simulator cannot read
	 * the buffer, completes the TX descriptor with 0 bytes, counts a tx
	 * error, and no frame arrives.
	 */
	ASSERT_EQ(0, vstat(v, 1, "tx errors", &errs0));
	ASSERT_EQ(0, vh_vdpa_dma_unmap(v->dev, 0, FAR_IOVA, 4096));
	ASSERT_EQ(0, post_rx(self, 1));
	ASSERT_LE(0, vh_drvq_kick(v->vq[0]));
	ASSERT_EQ(0, send_tx(self, 1, FAR_IOVA, 8));
	EXPECT_EQ(0, vd_wait_used(v, 1, &tok, 5000));
	EXPECT_EQ(-ETIMEDOUT, vd_wait_used(v, 0, &tok, 300));
	ASSERT_EQ(0, vstat(v, 1, "tx errors", &errs1));
	EXPECT_EQ(errs0 + 1, errs1);

	/* an IOVA that was never mapped at all: the same */
	ASSERT_EQ(0, send_tx(self, 2, FAR_IOVA + 0x10000000ull, 9));
	EXPECT_EQ(0, vd_wait_used(v, 1, &tok, 5000));
	EXPECT_EQ(-ETIMEDOUT, vd_wait_used(v, 0, &tok, 300));

	/* and the device still delivers a mapped frame */
	ASSERT_EQ(0, send_tx(self, 3, 0, 10));
	len = vd_wait_used(v, 0, &tok, 5000);
	ASSERT_LE(0, len);
	EXPECT_TRUE(rx_matches(self, tok, len, 10));
}

/*
 * vh_vdpa_map_mem() is all or nothing: a second region whose first page is
 * mapped already (vhost refuses the overlap: EEXIST, turned into EFAULT)
 * fails the call, and the first region does not stay mapped behind it (a
 * map of it alone works); without the clash every region maps.
 */
TEST_F(vdpa_net, map_mem_all_or_nothing)
{
	struct vd *v = &self->v;
	struct vh_mem_region r0;
	uint8_t *page = st_gpa(&v->g, self->tx_gpa);
	void *second = NULL;

	ASSERT_EQ(0, vh_vdpa_negotiate(v->dev, NET_FEATURES, &self->features));
	ASSERT_EQ(0, vh_mem_add_memfd(v->g.mem, FAR_IOVA, 65536, &second));
	ASSERT_EQ(0, vh_vdpa_dma_map(v->dev, 0, FAR_IOVA, 4096, page,
				     VH_ACCESS_RO));
	EXPECT_EQ(-EFAULT, vh_vdpa_map_mem(v->dev, 0, v->g.mem));
	ASSERT_EQ(0, vh_mem_get_region(v->g.mem, 0, &r0));
	ASSERT_EQ(0, r0.gpa);
	EXPECT_EQ(0, vh_vdpa_dma_map(v->dev, 0, r0.gpa, r0.size, r0.host,
				     VH_ACCESS_RW));
	EXPECT_EQ(0, vh_vdpa_dma_unmap(v->dev, 0, r0.gpa, r0.size));
	ASSERT_EQ(0, vh_vdpa_dma_unmap(v->dev, 0, FAR_IOVA, 4096));
	EXPECT_EQ(0, vh_vdpa_map_mem(v->dev, 0, v->g.mem));
}

/*
 * IOTLB_BATCH: updates between BATCH_BEGIN and BATCH_END reach the device
 * together at the end (the simulator takes the whole map in set_map()), so
 * a buffer mapped inside an open batch is not yet readable by the device.
 */
TEST_F(vdpa_net, iotlb_batch_applies_at_end)
{
	struct vd *v = &self->v;
	uint8_t *frame = st_gpa(&v->g, self->tx_gpa + BUF_LEN);
	void *tok = NULL;
	int len;

	ASSERT_TRUE(v->backend & BIT(VHOST_BACKEND_F_IOTLB_BATCH));
	ASSERT_EQ(0, net_start(self, NET_FEATURES, false));
	ASSERT_EQ(0, vh_vdpa_driver_ok(v->dev));
	ASSERT_EQ(0, post_rx(self, 0));
	ASSERT_LE(0, vh_drvq_kick(v->vq[0]));

	ASSERT_EQ(0, vh_vdpa_batch_begin(v->dev, 0));
	ASSERT_EQ(0, vh_vdpa_dma_map(v->dev, 0, FAR_IOVA, 4096, frame,
				     VH_ACCESS_RO));
	/*
	 * a batch is for one address space at a time (vhost turns every
	 * refused IOTLB message into EFAULT)
	 */
	EXPECT_EQ(-EFAULT, vh_vdpa_dma_map(v->dev, 1, FAR_IOVA, 4096, frame,
					   VH_ACCESS_RO));
	ASSERT_EQ(0, send_tx(self, 1, FAR_IOVA, 21));
	EXPECT_EQ(0, vd_wait_used(v, 1, &tok, 5000));
	EXPECT_EQ(-ETIMEDOUT, vd_wait_used(v, 0, &tok, 300));

	ASSERT_EQ(0, vh_vdpa_batch_end(v->dev, 0));
	ASSERT_EQ(0, send_tx(self, 1, FAR_IOVA, 22));
	len = vd_wait_used(v, 0, &tok, 5000);
	ASSERT_LE(0, len);
	EXPECT_TRUE(rx_matches(self, tok, len, 22));
}

/*
 * ASID: the CVQ's group (1) gets address space 1, where only the CVQ ring
 * and its command buffers are mapped, at IOVAs that mean nothing in ASID
 * 0.  A MAC_ADDR_SET through it works; a command whose buffers are mapped
 * only in ASID 0 is never processed.
 */
TEST_F(vdpa_net, cvq_in_asid1)
{
	struct vd *v = &self->v;
	uint64_t cmd_gpa = st_guest_alloc(&v->g, 4096, 4096);
	uint8_t *cmd = st_gpa(&v->g, cmd_gpa);
	const uint64_t off = FAR_IOVA; /* ASID 1 IOVA = GPA + off */
	struct vh_kdev_vring_addr a = { 0 };
	struct virtio_net_ctrl_hdr hdr = { VIRTIO_NET_CTRL_MAC,
					   VIRTIO_NET_CTRL_MAC_ADDR_SET };
	struct vh_vdpa_dev_config cfg;
	struct vh_sg sg[3];
	uint8_t mac[6];
	void *tok = NULL;
	size_t rbytes = vh_drvq_ring_bytes(RING_NUM);

	ASSERT_NE(0, cmd_gpa);
	/* after the negotiation: a reset puts every group back in ASID 0 */
	ASSERT_EQ(0, net_start(self, NET_CVQ_FEATURES, true));
	ASSERT_EQ(0, vh_vdpa_set_group_asid(v->dev, 1, 1));
	/* a group or an address space the device does not have */
	EXPECT_EQ(-EINVAL, vh_vdpa_set_group_asid(v->dev, 2, 0));
	EXPECT_EQ(-EINVAL, vh_vdpa_set_group_asid(v->dev, 1, 2));

	/* ASID 1: the CVQ ring and the command page, shifted by off */
	ASSERT_EQ(0, vh_vdpa_batch_begin(v->dev, 1));
	ASSERT_EQ(0, vh_vdpa_dma_map(v->dev, 1, v->ring_gpa[2] + off,
				     (rbytes + 4095) & ~4095ull,
				     st_gpa(&v->g, v->ring_gpa[2]),
				     VH_ACCESS_RW));
	ASSERT_EQ(0, vh_vdpa_dma_map(v->dev, 1, cmd_gpa + off, 4096, cmd,
				     VH_ACCESS_RW));
	ASSERT_EQ(0, vh_vdpa_batch_end(v->dev, 1));
	ASSERT_EQ(0, vh_drvq_get_addrs(v->vq[2], &a.desc, &a.avail, &a.used));
	a.desc += off;
	a.avail += off;
	a.used += off;
	ASSERT_EQ(0, vh_kdev_set_vring_num(v->dev, 2, RING_NUM));
	ASSERT_EQ(0, vh_kdev_set_vring_addr(v->dev, 2, &a));
	ASSERT_EQ(0, vh_kdev_set_vring_base(v->dev, 2, 0));
	ASSERT_EQ(0, vh_kdev_set_vring_kick(v->dev, 2, v->kick[2]));
	ASSERT_EQ(0, vh_kdev_set_vring_call(v->dev, 2, v->call[2]));
	ASSERT_EQ(0, vh_vdpa_set_vring_enable(v->dev, 2, true));
	ASSERT_EQ(0, vh_vdpa_driver_ok(v->dev));

	/* VIRTIO_NET_CTRL_MAC_ADDR_SET (virtio 1.3, 5.1.6.5.2) */
	memcpy(cmd, &hdr, sizeof(hdr));
	memcpy(cmd + sizeof(hdr), new_mac, 6);
	cmd[64] = 0xee;
	sg[0] = (struct vh_sg){ cmd_gpa + off, sizeof(hdr) };
	sg[1] = (struct vh_sg){ cmd_gpa + off + sizeof(hdr), 6 };
	sg[2] = (struct vh_sg){ cmd_gpa + off + 64, 1 };
	ASSERT_EQ(0, vh_drvq_add(v->vq[2], sg, 2, 1, cmd));
	ASSERT_LE(0, vh_drvq_kick(v->vq[2]));
	ASSERT_EQ(1, vd_wait_used(v, 2, &tok, 5000));
	EXPECT_EQ(VIRTIO_NET_OK, cmd[64]);
	ASSERT_EQ(0, vh_vdpa_get_config(v->dev, 0, mac, 6));
	EXPECT_EQ(0, memcmp(mac, new_mac, 6));
	ASSERT_EQ(0, vh_vdpa_mgmt_dev_config_get(v->mgmt, v->name, &cfg));
	EXPECT_EQ(0, memcmp(cfg.mac, new_mac, 6));

	/*
	 * Buffers at their ASID 0 IOVAs (IOVA = GPA): the device cannot
	 * read the header in ASID 1 and stops at this command, so the MAC
	 * stays.
	 */
	memcpy(cmd + sizeof(hdr), test_mac, 6);
	sg[0].addr -= off;
	sg[1].addr -= off;
	sg[2].addr -= off;
	ASSERT_EQ(0, vh_drvq_add(v->vq[2], sg, 2, 1, cmd));
	ASSERT_LE(0, vh_drvq_kick(v->vq[2]));
	EXPECT_EQ(-ETIMEDOUT, vd_wait_used(v, 2, &tok, 500));
	ASSERT_EQ(0, vh_vdpa_get_config(v->dev, 0, mac, 6));
	EXPECT_EQ(0, memcmp(mac, new_mac, 6));

	/* the data queues in ASID 0 are unaffected (frames to the new MAC drop) */
	ASSERT_EQ(0, post_rx(self, 0));
	ASSERT_LE(0, vh_drvq_kick(v->vq[0]));
	ASSERT_EQ(0, send_tx(self, 0, 0, 1));
	EXPECT_EQ(0, vd_wait_used(v, 1, &tok, 5000));
}

TEST_F(vdpa_net, suspend_resume_keeps_ring_state)
{
	struct vd *v = &self->v;
	unsigned int base = 99, i;
	void *tok = NULL;
	int len;

	/* a kernel that does not offer them is not broken: RESUME is 6.4's */
	if (!(v->backend & BIT(VHOST_BACKEND_F_SUSPEND)) ||
	    !(v->backend & BIT(BACKEND_F_RESUME)))
		SKIP(return, "backend features %#llx: no SUSPEND or RESUME",
		     (unsigned long long)v->backend_offered);
	ASSERT_EQ(0, net_start(self, NET_FEATURES, false));
	ASSERT_EQ(0, vh_vdpa_driver_ok(v->dev));
	for (i = 0; i < 4; i++) {
		ASSERT_EQ(0, post_rx(self, i));
	}
	ASSERT_LE(0, vh_drvq_kick(v->vq[0]));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, send_tx(self, i, 0, 200 + i));
		ASSERT_LE(0, vd_wait_used(v, 0, &tok, 5000));
		ASSERT_LE(0, vd_wait_used(v, 1, &tok, 5000));
	}

	ASSERT_EQ(0, vh_vdpa_suspend(v->dev));
	/* what the device consumed: 3 TX and 3 RX descriptors */
	ASSERT_EQ(0, vh_kdev_get_vring_base(v->dev, 1, &base));
	EXPECT_EQ(3, base);
	ASSERT_EQ(0, vh_kdev_get_vring_base(v->dev, 0, &base));
	EXPECT_EQ(3, base);
	/* suspended: a kick is held */
	ASSERT_EQ(0, send_tx(self, 3, 0, 203));
	EXPECT_EQ(-ETIMEDOUT, vd_wait_used(v, 0, &tok, 400));
	ASSERT_EQ(0, vh_kdev_get_vring_base(v->dev, 1, &base));
	EXPECT_EQ(3, base);

	ASSERT_EQ(0, vh_vdpa_resume(v->dev));
	len = vd_wait_used(v, 0, &tok, 5000);
	ASSERT_LE(0, len);
	EXPECT_EQ(st_gpa(&v->g, self->rx_gpa + 3 * BUF_LEN), tok);
	EXPECT_TRUE(rx_matches(self, tok, len, 203));
	ASSERT_LE(0, vd_wait_used(v, 1, &tok, 5000));
	ASSERT_EQ(0, vh_kdev_get_vring_base(v->dev, 1, &base));
	EXPECT_EQ(4, base);
}

/* ------------------------------------------------------------------ */
/* vdpa_sim_blk                                                        */
/* ------------------------------------------------------------------ */

#define BLK_FEATURES                                                          \
	(BIT(VIRTIO_F_VERSION_1) | BIT(VIRTIO_F_ACCESS_PLATFORM) |            \
	 BIT(VIRTIO_BLK_F_BLK_SIZE) | BIT(VIRTIO_BLK_F_SEG_MAX) |             \
	 BIT(VIRTIO_BLK_F_SIZE_MAX))

FIXTURE(vdpa_blk)
{
	struct vd v;
	uint64_t hdr_gpa, data_gpa;
};

/* Features, one ring, memory, DRIVER_OK: 0 or -errno with *why set. */
static int blk_start(FIXTURE_DATA(vdpa_blk) *self, const char **why)
{
	struct vd *v = &self->v;
	uint64_t acked = 0;
	int ret;

	*why = "guest memory";
	self->hdr_gpa = st_guest_alloc(&v->g, 4096, 64);
	self->data_gpa = st_guest_alloc(&v->g, 65536, 4096);
	if (!self->hdr_gpa || !self->data_gpa)
		return -ENOMEM;
	*why = "negotiate";
	ret = vh_vdpa_negotiate(v->dev, BLK_FEATURES, &acked);
	if (ret)
		return ret;
	if (acked != BLK_FEATURES) {
		fprintf(stderr, "# features acked 0x%llx, wanted 0x%llx\n",
			(unsigned long long)acked,
			(unsigned long long)BLK_FEATURES);
		return -EOPNOTSUPP;
	}
	*why = "vring";
	ret = vd_new_vq(v, 0, acked);
	if (ret)
		return ret;
	*why = "map memory";
	ret = vh_vdpa_map_mem(v->dev, 0, v->g.mem);
	if (ret)
		return ret;
	*why = "setup vring";
	ret = vh_vdpa_setup_vring(v->dev, 0, v->vq[0], v->kick[0], v->call[0]);
	if (ret)
		return ret;
	*why = "vring enable";
	ret = vh_vdpa_set_vring_enable(v->dev, 0, true);
	if (ret)
		return ret;
	*why = "DRIVER_OK";
	return vh_vdpa_driver_ok(v->dev);
}

FIXTURE_SETUP(vdpa_blk)
{
	const char *why = "";
	int ret;

	ret = vd_setup(&self->v, "vdpasim_blk", 'b', NULL, &why);
	if (ret == 0)
		ret = blk_start(self, &why);
	if (ret) {
		/* the device goes now: no teardown after a failed setup */
		vd_cleanup(&self->v);
		if (ret == KSFT_SKIP)
			SKIP(return, "%s", why);
		ASSERT_EQ(0, ret)
		TH_LOG("%s: %s", why, strerror(-ret));
	}
}

FIXTURE_TEARDOWN(vdpa_blk)
{
	EXPECT_EQ(0, vd_cleanup(&self->v));
}

/* One request: out header (+ data out) / (data in +) status. Returns status. */
static int blk_req(FIXTURE_DATA(vdpa_blk) *self, uint32_t type,
		   uint64_t sector, uint32_t len, bool in)
{
	struct virtio_blk_outhdr *h = st_gpa(&self->v.g, self->hdr_gpa);
	uint8_t *status = st_gpa(&self->v.g, self->hdr_gpa + 64);
	struct vh_sg sg[3];
	unsigned int nout = 1, nin = 0;
	void *tok = NULL;
	int ret;

	h->type = type;
	h->ioprio = 0;
	h->sector = sector;
	*status = 0xee;
	sg[0] = (struct vh_sg){ self->hdr_gpa, sizeof(*h) };
	if (len && !in)
		sg[nout++] = (struct vh_sg){ self->data_gpa, len };
	if (len && in)
		sg[nout + nin++] = (struct vh_sg){ self->data_gpa, len };
	sg[nout + nin++] = (struct vh_sg){ self->hdr_gpa + 64, 1 };
	ret = vh_drvq_add(self->v.vq[0], sg, nout, nin, h);
	if (ret)
		return ret;
	if (vh_drvq_kick(self->v.vq[0]) < 0)
		return -EIO;
	ret = vd_wait_used(&self->v, 0, &tok, 5000);
	if (ret < 0)
		return ret;
	return *status;
}

TEST_F(vdpa_blk, capacity_get_id_write_read)
{
	struct vd *v = &self->v;
	uint8_t *data = st_gpa(&v->g, self->data_gpa);
	const uint32_t len = 16 * 512;
	struct vh_vdpa_dev_config cfg;
	uint8_t pattern[16 * 512];
	uint64_t capacity = 0;
	uint32_t id = 0, blk_size = 0;

	ASSERT_EQ(0, vh_vdpa_get_device_id(v->dev, &id));
	EXPECT_EQ(VH_VIRTIO_ID_BLOCK, id);
	/* capacity from config space, and the same over netlink */
	ASSERT_EQ(0, vh_vdpa_get_config(v->dev,
					offsetof(struct virtio_blk_config,
						 capacity),
					&capacity, sizeof(capacity)));
	EXPECT_LT(0, capacity);
	ASSERT_EQ(0, vh_vdpa_get_config(v->dev,
					offsetof(struct virtio_blk_config,
						 blk_size),
					&blk_size, sizeof(blk_size)));
	EXPECT_EQ(512, blk_size);
	ASSERT_EQ(0, vh_vdpa_mgmt_dev_config_get(v->mgmt, v->name, &cfg));
	EXPECT_EQ(VH_VIRTIO_ID_BLOCK, cfg.device_id);
	ASSERT_TRUE(VH_VDPA_HAS(&cfg, VH_VDPA_FIELD_BLK_CAPACITY));
	EXPECT_EQ(capacity, cfg.blk_capacity);
	EXPECT_EQ(512, cfg.blk_blk_size);
	EXPECT_EQ(BLK_FEATURES, cfg.negotiated_features);

	/* GET_ID: 20 bytes of serial */
	memset(data, 0, 64);
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  blk_req(self, VIRTIO_BLK_T_GET_ID, 0, VIRTIO_BLK_ID_BYTES,
			  true));
	EXPECT_STREQ("vdpa_blk_sim", (char *)data);

	/* write the last 16 sectors, read them back */
	st_fill(pattern, len, 0xb10c);
	memcpy(data, pattern, len);
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  blk_req(self, VIRTIO_BLK_T_OUT, capacity - 16, len, false));
	memset(data, 0, len);
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  blk_req(self, VIRTIO_BLK_T_IN, capacity - 16, len, true));
	EXPECT_EQ(0, memcmp(data, pattern, len));
	/* elsewhere is untouched (zero) */
	memset(data, 0xaa, 512);
	ASSERT_EQ(VIRTIO_BLK_S_OK,
		  blk_req(self, VIRTIO_BLK_T_IN, capacity - 17, 512, true));
	for (int i = 0; i < 512; i++) {
		ASSERT_EQ(0, data[i]);
	}
	/* past the end: IOERR */
	EXPECT_EQ(VIRTIO_BLK_S_IOERR,
		  blk_req(self, VIRTIO_BLK_T_IN, capacity - 1, 1024, true));
}

/*
 * Delete the devices a killed run of ours left (vd_setup()'s names, with a
 * pid that is gone): best effort, before any test counts nodes.
 */
static void remove_stale_devices(void)
{
	struct vh_vdpa_mgmt *mgmt = NULL;
	struct vh_ctx *ctx = NULL;
	struct dirent *e;
	char kind;
	int pid;
	DIR *d;

	d = opendir("/sys/bus/vdpa/devices");
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (sscanf(e->d_name, "vhst%c%d", &kind, &pid) != 2 ||
		    (kind != 'n' && kind != 'b') ||
		    kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (!mgmt && (vh_ctx_new(&ctx) ||
			      vh_vdpa_mgmt_new(ctx, &mgmt)))
			break;
		vh_vdpa_mgmt_dev_del(mgmt, e->d_name);
	}
	closedir(d);
	vh_vdpa_mgmt_unref(mgmt);
	vh_ctx_unref(ctx);
}

int main(int argc, char **argv)
{
	/* the simulators' devices are bound to vhost_vdpa by hand */
	st_need_module("vdpa");
	st_need_module("vdpa_sim");
	st_need_module("vdpa_sim_net");
	st_need_module("vdpa_sim_blk");
	st_need_module("vhost_vdpa");
	if (access("/sys/bus/vdpa", F_OK))
		ksft_exit_skip("kernel without vDPA (no /sys/bus/vdpa)\n");
	remove_stale_devices();
	return test_harness_run(argc, argv);
}
