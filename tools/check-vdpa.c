// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhostctl check vdpa: a vdpa_sim_net device created over the vdpa netlink
 * family, driven through its vhost-vdpa node: the virtio status handshake
 * (virtio 1.3, 3.1.1), guest memory mapped through IOTLB v2 messages, one
 * frame on TX that the simulator loops back to RX, compared byte for byte.
 * The device is deleted again, and its node must go with it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#define VD_RING 64
#define VD_HDR 12 /* struct virtio_net_hdr_v1 */
#define VD_FRAME 300
#define VD_BUF 2048
#define VD_MGMTDEV "vdpasim_net"

/* VERSION_1, ACCESS_PLATFORM (IOVAs), MAC */
#define VD_FEATURES ((1ull << 32) | (1ull << 33) | (1ull << 5))
/* virtio 1.3, 2.1: device status bits */
#define S_ACKNOWLEDGE 1
#define S_DRIVER 2
#define S_DRIVER_OK 4
#define S_FEATURES_OK 8

static const uint8_t vd_mac[6] = { 0x52, 0x54, 0x00, 0x5c, 0x4b, 0x01 };
static const uint8_t peer_mac[6] = { 0x52, 0x54, 0x00, 0x00, 0x00, 0x77 };

struct vd_chk {
	struct vh_vdpa_mgmt *mgmt;
	char name[32];
	bool created;
	char path[64];
	struct vh_kdev *dev;
	struct chk_guest g;
	struct vh_drvq *vq[2]; /* 0 rx, 1 tx */
	int kick[2], call[2];
	uint64_t rx_gpa, tx_gpa;
};

/* 0, or -errno; the device and its node are gone when it returns 0. */
static int vd_teardown(struct vd_chk *d)
{
	int err = 0;

	/* the node first: deleting waits for its last user (vhost_vdpa) */
	d->dev = vh_kdev_unref(d->dev);
	for (int i = 0; i < 2; i++) {
		d->vq[i] = vh_drvq_unref(d->vq[i]);
		chk_close(&d->kick[i]);
		chk_close(&d->call[i]);
	}
	if (d->g.mem)
		chk_guest_fini(&d->g);
	if (d->created) {
		err = vh_vdpa_mgmt_dev_del(d->mgmt, d->name);
		d->created = false;
		for (int i = 0; !err && d->path[0] && i < 250 &&
				access(d->path, F_OK) == 0;
		     i++)
			usleep(20000);
		if (!err && d->path[0] && access(d->path, F_OK) == 0)
			err = -EEXIST;
	}
	d->mgmt = vh_vdpa_mgmt_unref(d->mgmt);
	return err;
}

static enum chk_outcome vd_create(struct vhc *v, struct vd_chk *d,
				  struct chk_result *r)
{
	struct vh_vdpa_mgmtdev_info *list = NULL;
	struct vh_vdpa_dev_new p = { .size = sizeof(p),
				     .mgmtdev = VD_MGMTDEV,
				     .set = VH_VDPA_NEW_MAC };
	bool found = false;
	size_t n = 0;
	int err;

	err = vh_vdpa_mgmt_new(v->ctx, &d->mgmt);
	if (err == -ENODEV)
		return chk_set(r, CHK_SKIP,
			       "no vdpa netlink family (module "
			       "vdpa; kernel without vDPA)");
	if (err == -EOPNOTSUPP)
		return chk_set(r, CHK_SKIP, "libvhost built without libmnl");
	if (err)
		return chk_fail_err(r, "vdpa netlink", err);
	err = vh_vdpa_mgmt_list_mgmtdevs(d->mgmt, &list, &n);
	if (err)
		return chk_fail_err(r, "mgmtdev list", err);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(list[i].dev_name, VD_MGMTDEV))
			found = true;
	free(list);
	if (!found)
		return chk_set(r, CHK_SKIP,
			       "no vdpa management device " VD_MGMTDEV
			       " (module vdpa_sim_net)");
	if (access("/sys/bus/vdpa/drivers/vhost_vdpa", F_OK))
		return chk_set(r, CHK_SKIP,
			       "vhost_vdpa driver absent (module vhost_vdpa)");

	snprintf(d->name, sizeof(d->name), "vhchk%d", (int)getpid());
	p.name = d->name;
	memcpy(p.mac, vd_mac, 6);
	err = vh_vdpa_mgmt_dev_add(d->mgmt, &p);
	if (err) {
		chk_set(r, CHK_FAIL, "dev add %s: %s%s%s", d->name,
			strerror(-err),
			vh_vdpa_mgmt_last_error(d->mgmt)[0] ? ": " : "",
			vh_vdpa_mgmt_last_error(d->mgmt));
		return CHK_FAIL;
	}
	d->created = true;
	/* vhost_vdpa binds and devtmpfs makes the node: wait for both */
	for (int i = 0; i < 250 && !chk_interrupted(); i++) {
		err = vh_vdpa_dev_chardev(v->ctx, d->name, d->path,
					  sizeof(d->path));
		if (!err && access(d->path, F_OK) == 0)
			break;
		usleep(20000);
	}
	if (err)
		return chk_fail_err(r, "vhost-vdpa node", err);
	return CHK_PASS;
}

static enum chk_outcome vd_start(struct vhc *v, struct vd_chk *d,
				 struct chk_result *r)
{
	uint64_t acked = 0, ring;
	uint8_t status = 0, mac[6];
	int err;

	err = vh_kdev_open(v->ctx, d->path, &d->dev);
	if (err)
		return chk_fail_err(r, "open vhost-vdpa", err);
	err = vh_kdev_set_owner(d->dev);
	if (err)
		return chk_fail_err(r, "set owner", err);
	err = vh_vdpa_setup_backend(d->dev, 0, NULL);
	if (err)
		return chk_fail_err(r, "backend features (IOTLB v2)", err);
	err = vh_vdpa_negotiate(d->dev, VD_FEATURES, &acked);
	if (err)
		return chk_fail_err(r, "status handshake", err);
	if (acked != VD_FEATURES)
		return chk_set(r, CHK_FAIL,
			       "features 0x%llx negotiated, "
			       "wanted 0x%llx",
			       (unsigned long long)acked,
			       (unsigned long long)VD_FEATURES);
	err = vh_vdpa_get_status(d->dev, &status);
	if (err)
		return chk_fail_err(r, "get status", err);
	if (status != (S_ACKNOWLEDGE | S_DRIVER | S_FEATURES_OK))
		return chk_set(r, CHK_FAIL, "status 0x%02x after FEATURES_OK",
			       status);
	/* virtio 1.3, 5.1.4: the MAC we created the device with */
	err = vh_vdpa_get_config(d->dev, 0, mac, sizeof(mac));
	if (err)
		return chk_fail_err(r, "config space", err);
	if (memcmp(mac, vd_mac, 6) != 0)
		return chk_set(r, CHK_FAIL, "config space MAC differs");

	err = chk_guest_init(&d->g, v->ctx, 1 << 20);
	if (err)
		return chk_fail_err(r, "guest memory", err);
	d->rx_gpa = chk_guest_alloc(&d->g, VD_BUF, 64);
	d->tx_gpa = chk_guest_alloc(&d->g, VD_BUF, 64);
	for (unsigned int i = 0; i < 2; i++) {
		ring = chk_guest_alloc(&d->g, vh_drvq_ring_bytes(VD_RING), 4096);
		if (!ring || !d->tx_gpa)
			return chk_fail_err(r, "guest memory", -ENOMEM);
		err = vh_drvq_new(v->ctx, d->g.mem, i, VD_RING, ring, &d->vq[i]);
		if (!err)
			err = vh_drvq_set_features(d->vq[i], acked);
		if (err)
			return chk_fail_err(r, "vring", err);
		d->kick[i] = chk_eventfd();
		d->call[i] = chk_eventfd();
		if (d->kick[i] < 0 || d->call[i] < 0)
			return chk_fail_err(r, "eventfd", -EMFILE);
		err = vh_drvq_set_kick_fd(d->vq[i], d->kick[i]);
		if (!err)
			err = vh_drvq_set_call_fd(d->vq[i], d->call[i]);
		if (err)
			return chk_fail_err(r, "vring", err);
	}
	/* IOVA = GPA: the whole guest memory, read-write, one batch */
	err = vh_vdpa_map_mem(d->dev, 0, d->g.mem);
	if (err)
		return chk_fail_err(r, "IOTLB map", err);
	for (unsigned int i = 0; i < 2; i++) {
		err = vh_vdpa_setup_vring(d->dev, i, d->vq[i], d->kick[i],
					  d->call[i]);
		if (!err)
			err = vh_vdpa_set_vring_enable(d->dev, i, true);
		if (err)
			return chk_fail_err(r, "vring setup", err);
	}
	err = vh_vdpa_driver_ok(d->dev);
	if (err)
		return chk_fail_err(r, "DRIVER_OK", err);
	return CHK_PASS;
}

/* A frame to our MAC behind an all-zero virtio-net header. */
static void make_frame(uint8_t *buf)
{
	memset(buf, 0, VD_HDR);
	memcpy(buf + VD_HDR, vd_mac, 6);
	memcpy(buf + VD_HDR + 6, peer_mac, 6);
	buf[VD_HDR + 12] = 0x88; /* local experimental EtherType */
	buf[VD_HDR + 13] = 0xb5;
	chk_fill(buf + VD_HDR + 14, VD_FRAME - 14, 0xd1a);
}

static enum chk_outcome vd_loop(struct vd_chk *d, struct chk_result *r)
{
	uint8_t *rx = chk_gpa(&d->g, d->rx_gpa),
		*tx = chk_gpa(&d->g, d->tx_gpa);
	struct vh_sg rsg = { d->rx_gpa, VD_BUF };
	struct vh_sg tsg = { d->tx_gpa, VD_HDR + VD_FRAME };
	uint8_t want[VD_HDR + VD_FRAME];
	void *tok = NULL;
	uint32_t len = 0;
	int err;

	memset(rx, 0xee, VD_BUF);
	err = vh_drvq_add(d->vq[0], &rsg, 0, 1, rx);
	if (err)
		return chk_fail_err(r, "RX add", err);
	vh_drvq_kick(d->vq[0]);
	make_frame(want);
	memcpy(tx, want, sizeof(want));
	err = vh_drvq_add(d->vq[1], &tsg, 1, 0, tx);
	if (err)
		return chk_fail_err(r, "TX add", err);
	vh_drvq_kick(d->vq[1]);
	err = chk_wait_used(d->vq[0], d->call[0], &tok, &len, CHK_TIMEOUT_MS);
	if (err < 0)
		return chk_fail_err(r, "RX: no frame looped back", err);
	if (tok != rx || len != sizeof(want) ||
	    memcmp(rx, want, sizeof(want)) != 0)
		return chk_set(r, CHK_FAIL,
			       "RX: %u bytes differ from the %zu "
			       "sent",
			       len, sizeof(want));
	err = chk_wait_used(d->vq[1], d->call[1], &tok, &len, CHK_TIMEOUT_MS);
	if (err < 0 || tok != tx)
		return chk_fail_err(r, "TX used buffer",
				    err < 0 ? err : -EPROTO);
	/* back to status 0 before the device goes */
	err = vh_vdpa_reset(d->dev);
	if (err)
		return chk_fail_err(r, "reset", err);
	return CHK_PASS;
}

void check_vdpa(struct vhc *v, struct chk_result *r)
{
	struct vd_chk d = { .kick = { -1, -1 }, .call = { -1, -1 } };
	int err;

	if (vd_create(v, &d, r) == CHK_PASS && vd_start(v, &d, r) == CHK_PASS &&
	    vd_loop(&d, r) == CHK_PASS)
		chk_set(r, CHK_PASS,
			"%s (%s): status handshake, IOTLB map, "
			"%d-byte frame TX -> RX compared",
			d.name, d.path, VD_FRAME);
	err = vd_teardown(&d);
	if (err && r->outcome == CHK_PASS)
		chk_set(r, CHK_FAIL, "deleting %s: %s%s", d.name,
			strerror(-err), err == -EEXIST ? " (node stays)" : "");
}
