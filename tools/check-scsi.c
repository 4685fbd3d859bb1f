// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhostctl check scsi: vhost-scsi end to end.  A LIO rd_mcp (ramdisk)
 * backstore behind a vhost WWPN, built by the library through configfs; a
 * userspace virtio-scsi driver (vh_drvq) on the request queue sends TEST UNIT
 * READY, INQUIRY, READ CAPACITY(16) and WRITE(10) + READ(10) of a pattern,
 * every answer checked.  Afterwards configfs must look as it did before.
 */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/virtio_scsi.h>

#include "check.h"

#define SC_TPGT 1
#define SC_BLOCK 512
#define SC_SIZE (1u << 20)
#define SC_RING 16
#define SC_NVQ 3 /* control, event, request (virtio 1.3, 5.6.2) */
#define SC_VQ_REQ 2
#define SC_DATA 8192
#define SC_LBA 100

/* SAM-5 status and SPC-4 sense keys */
#define SAM_GOOD 0x00
#define SAM_CHECK_CONDITION 0x02
#define SK_UNIT_ATTENTION 0x6

#define LIO_ROOT "/sys/kernel/config/target"

struct sc_chk {
	struct vh_lio_target *target;
	struct vh_kdev *dev;
	struct chk_guest g;
	struct vh_drvq *vq[SC_NVQ];
	int kick[SC_NVQ], call[SC_NVQ];
	uint64_t req_gpa, resp_gpa, data_gpa;
	uint64_t tag;
	bool endpoint;
};

/*
 * What the check may touch in configfs: the HBAs and devices under core/
 * and the vhost fabric's WWPNs, as one sorted-by-readdir string.
 */
static void lio_list_dir(const char *dir, const char *prefix, int depth,
			 char *buf, size_t len)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	size_t used;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char sub[1024];

		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		used = strlen(buf);
		snprintf(buf + used, len - used, "%s/%s\n", prefix, de->d_name);
		if (depth > 1) {
			char subprefix[512];

			snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
			snprintf(subprefix, sizeof(subprefix), "%s/%s", prefix,
				 de->d_name);
			lio_list_dir(sub, subprefix, depth - 1, buf, len);
		}
	}
	closedir(d);
}

static int cmp_line(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* readdir order is the kernel's business: compare sorted listings */
static char *lio_snapshot(void)
{
	size_t len = 65536, n = 0;
	char *buf = calloc(1, len), *sorted = calloc(1, len);
	char *lines[1024], *save = NULL, *tok;

	if (!buf || !sorted) {
		free(buf);
		free(sorted);
		return NULL;
	}
	snprintf(buf, len, "vhost:%d\n", access(LIO_ROOT "/vhost", F_OK) == 0);
	lio_list_dir(LIO_ROOT "/core", "core", 2, buf, len);
	lio_list_dir(LIO_ROOT "/vhost", "vhost", 1, buf, len);
	for (tok = strtok_r(buf, "\n", &save); tok && n < 1024;
	     tok = strtok_r(NULL, "\n", &save))
		lines[n++] = tok;
	qsort(lines, n, sizeof(lines[0]), cmp_line);
	for (size_t i = 0; i < n; i++) {
		size_t used = strlen(sorted);

		snprintf(sorted + used, len - used, "%s\n", lines[i]);
	}
	free(buf);
	return sorted;
}

static void sc_teardown(struct sc_chk *s)
{
	if (s->endpoint)
		vh_scsi_clear_endpoint(
			s->dev, vh_lio_target_get_wwpn(s->target), SC_TPGT);
	s->endpoint = false;
	/* the device first: LIO refuses to drop a nexus in use */
	s->dev = vh_kdev_unref(s->dev);
	for (int i = 0; i < SC_NVQ; i++) {
		s->vq[i] = vh_drvq_unref(s->vq[i]);
		chk_close(&s->kick[i]);
		chk_close(&s->call[i]);
	}
	s->target = vh_lio_target_unref(s->target);
	if (s->g.mem)
		chk_guest_fini(&s->g);
}

static enum chk_outcome sc_setup(struct vhc *v, struct sc_chk *s,
				 struct chk_result *r)
{
	const struct vh_lio_lun lun = { .type = VH_LIO_RAMDISK,
					.lun = 0,
					.size = SC_SIZE };
	const struct vh_lio_config cfg = {
		.size = sizeof(cfg), .tpgt = SC_TPGT, .luns = &lun, .nluns = 1
	};
	int err;

	if (access("/dev/vhost-scsi", F_OK))
		return chk_set(r, CHK_SKIP,
			       "/dev/vhost-scsi absent (module vhost_scsi)");
	err = vh_lio_target_new(v->ctx, &cfg, &s->target);
	if (err == -ENODEV)
		return chk_set(r, CHK_SKIP,
			       "LIO not available (configfs, "
			       "modules target_core_mod and vhost_scsi)");
	if (err)
		return chk_fail_err(r, "LIO target", err);
	if (chk_kdev_open(r, v->ctx, VH_KDEV_SCSI, &s->dev) != CHK_PASS)
		return r->outcome;
	err = chk_guest_init(&s->g, v->ctx, 1 << 20);
	if (err)
		return chk_fail_err(r, "guest memory", err);
	s->req_gpa = chk_guest_alloc(&s->g, 256, 64);
	s->resp_gpa = chk_guest_alloc(&s->g, 256, 64);
	s->data_gpa = chk_guest_alloc(&s->g, SC_DATA, 4096);
	/* before SET_ENDPOINT: see vh_scsi_set_endpoint() */
	err = vh_kdev_set_mem_table(s->dev, s->g.mem);
	if (err)
		return chk_fail_err(r, "set mem table", err);
	if (!s->data_gpa)
		return chk_fail_err(r, "guest memory", -ENOMEM);
	for (unsigned int i = 0; i < SC_NVQ; i++) {
		enum chk_outcome o = chk_kdev_ring(r, v->ctx, s->dev, &s->g, i,
						   SC_RING, &s->vq[i], &s->kick[i],
						   &s->call[i]);

		if (o != CHK_PASS)
			return o;
	}
	err = vh_scsi_set_endpoint(s->dev, vh_lio_target_get_wwpn(s->target),
				   SC_TPGT);
	if (err)
		return chk_fail_err(r, "SET_ENDPOINT", err);
	s->endpoint = true;
	return CHK_PASS;
}

/*
 * One command to LUN 0 of target SC_TPGT.  out: data to the device, in:
 * room for data from it (one or the other).  *resp gets the response.
 */
static int sc_cmd(struct sc_chk *s, const uint8_t *cdb, size_t cdblen,
		  const void *out, uint32_t outlen, void *in, uint32_t inlen,
		  struct virtio_scsi_cmd_resp *resp)
{
	struct virtio_scsi_cmd_req *req = chk_gpa(&s->g, s->req_gpa);
	struct virtio_scsi_cmd_resp *rsp = chk_gpa(&s->g, s->resp_gpa);
	uint8_t *data = chk_gpa(&s->g, s->data_gpa);
	struct vh_sg sg[4];
	unsigned int nout = 0, nin = 0;
	void *tok = NULL;
	uint32_t len = 0;
	int err;

	if (cdblen > VIRTIO_SCSI_CDB_DEFAULT_SIZE || outlen > SC_DATA ||
	    inlen > SC_DATA || (outlen && inlen))
		return -EINVAL;
	memset(req, 0, sizeof(*req));
	/* virtio 1.3, 5.6.6.1: single-level LUN structure */
	req->lun[0] = 1;
	req->lun[1] = SC_TPGT;
	req->lun[2] = 0x40;
	req->lun[3] = 0;
	req->tag = ++s->tag;
	req->task_attr = VIRTIO_SCSI_S_SIMPLE;
	memcpy(req->cdb, cdb, cdblen);
	memset(rsp, 0xee, sizeof(*rsp));
	sg[nout++] = (struct vh_sg){ s->req_gpa, sizeof(*req) };
	if (outlen) {
		memcpy(data, out, outlen);
		sg[nout++] = (struct vh_sg){ s->data_gpa, outlen };
	}
	sg[nout + nin++] = (struct vh_sg){ s->resp_gpa, sizeof(*rsp) };
	if (inlen) {
		memset(data, 0xcc, inlen);
		sg[nout + nin++] = (struct vh_sg){ s->data_gpa, inlen };
	}
	err = vh_drvq_add(s->vq[SC_VQ_REQ], sg, nout, nin, req);
	if (err)
		return err;
	vh_drvq_kick(s->vq[SC_VQ_REQ]);
	err = chk_wait_used(s->vq[SC_VQ_REQ], s->call[SC_VQ_REQ], &tok, &len,
			    CHK_TIMEOUT_MS);
	if (err < 0)
		return err;
	if (tok != req)
		return -EPROTO;
	/* vhost-scsi reports 0 bytes written: the response fields tell */
	memcpy(resp, rsp, sizeof(*resp));
	if (resp->response != VIRTIO_SCSI_S_OK)
		return -EIO;
	if (inlen)
		memcpy(in, data, inlen);
	return 0;
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static void rw10(uint8_t cdb[10], uint8_t op, uint32_t lba, uint16_t blocks)
{
	memset(cdb, 0, 10);
	cdb[0] = op;
	cdb[2] = (uint8_t)(lba >> 24);
	cdb[3] = (uint8_t)(lba >> 16);
	cdb[4] = (uint8_t)(lba >> 8);
	cdb[5] = (uint8_t)lba;
	cdb[7] = (uint8_t)(blocks >> 8);
	cdb[8] = (uint8_t)blocks;
}

/* Sense key of fixed (0x70/0x71) or descriptor (0x72/0x73) sense data. */
static int sense_key(const struct virtio_scsi_cmd_resp *rsp)
{
	const uint8_t *b = rsp->sense;

	if (rsp->sense_len < 4 || rsp->sense_len > VIRTIO_SCSI_SENSE_SIZE)
		return -1;
	switch (b[0] & 0x7f) {
	case 0x70:
	case 0x71:
		return rsp->sense_len >= 14 ? b[2] & 0xf : -1;
	case 0x72:
	case 0x73:
		return b[1] & 0xf;
	default:
		return -1;
	}
}

static enum chk_outcome sc_commands(struct sc_chk *s, struct chk_result *r)
{
	static const uint8_t tur[6] = { 0x00 };
	static const uint8_t inquiry[6] = { 0x12, 0, 0, 0, 96, 0 };
	uint8_t cdb[16], inq[96], cap[32];
	struct virtio_scsi_cmd_resp rsp;
	uint8_t *pattern = NULL, *back = NULL;
	enum chk_outcome ret = CHK_FAIL;
	int err, i;

	/* TEST UNIT READY until GOOD: a new LUN may hold a UNIT ATTENTION */
	for (i = 0; i < 4; i++) {
		err = sc_cmd(s, tur, sizeof(tur), NULL, 0, NULL, 0, &rsp);
		if (err)
			return chk_fail_err(r, "TEST UNIT READY", err);
		if (rsp.status == SAM_GOOD)
			break;
		if (rsp.status != SAM_CHECK_CONDITION ||
		    sense_key(&rsp) != SK_UNIT_ATTENTION)
			return chk_set(r, CHK_FAIL,
				       "TEST UNIT READY: status 0x%02x",
				       rsp.status);
	}
	if (i == 4)
		return chk_set(r, CHK_FAIL, "TEST UNIT READY: never ready");

	err = sc_cmd(s, inquiry, sizeof(inquiry), NULL, 0, inq, sizeof(inq),
		     &rsp);
	if (err || rsp.status != SAM_GOOD)
		return chk_fail_err(r, "INQUIRY", err ? err : -EIO);
	/* SPC-4 6.6.2: qualifier 0, direct-access; LIO's identification */
	if (inq[0] != 0 || memcmp(inq + 8, "LIO-ORG ", 8) != 0 ||
	    memcmp(inq + 16, "RAMDISK-MCP     ", 16) != 0)
		return chk_set(r, CHK_FAIL,
			       "INQUIRY: unexpected data "
			       "(type 0x%02x, vendor %.8s)",
			       inq[0], inq + 8);

	memset(cdb, 0, sizeof(cdb));
	cdb[0] = 0x9e; /* SERVICE ACTION IN(16) */
	cdb[1] = 0x10; /* READ CAPACITY(16) */
	cdb[13] = sizeof(cap);
	err = sc_cmd(s, cdb, 16, NULL, 0, cap, sizeof(cap), &rsp);
	if (err || rsp.status != SAM_GOOD)
		return chk_fail_err(r, "READ CAPACITY(16)", err ? err : -EIO);
	/* SBC-3 5.16.2: last LBA and block length */
	if (be64(cap) != SC_SIZE / SC_BLOCK - 1 || be32(cap + 8) != SC_BLOCK)
		return chk_set(r, CHK_FAIL,
			       "READ CAPACITY(16): last LBA %llu, "
			       "block %u",
			       (unsigned long long)be64(cap), be32(cap + 8));

	pattern = malloc(SC_DATA);
	back = malloc(SC_DATA);
	if (!pattern || !back) {
		chk_fail_err(r, "memory", -ENOMEM);
		goto out;
	}
	chk_fill(pattern, SC_DATA, 0x5c51);
	rw10(cdb, 0x2a, SC_LBA, SC_DATA / SC_BLOCK);
	err = sc_cmd(s, cdb, 10, pattern, SC_DATA, NULL, 0, &rsp);
	if (err || rsp.status != SAM_GOOD) {
		chk_fail_err(r, "WRITE(10)", err ? err : -EIO);
		goto out;
	}
	rw10(cdb, 0x28, SC_LBA, SC_DATA / SC_BLOCK);
	err = sc_cmd(s, cdb, 10, NULL, 0, back, SC_DATA, &rsp);
	if (err || rsp.status != SAM_GOOD) {
		chk_fail_err(r, "READ(10)", err ? err : -EIO);
		goto out;
	}
	if (rsp.resid || memcmp(pattern, back, SC_DATA) != 0) {
		chk_set(r, CHK_FAIL,
			"READ(10): data differs from what was "
			"written (resid %u)",
			rsp.resid);
		goto out;
	}
	ret = CHK_PASS;
out:
	free(pattern);
	free(back);
	return ret;
}

void check_scsi(struct vhc *v, struct chk_result *r)
{
	struct sc_chk s = { 0 };
	char wwpn[32] = "";
	char *before, *after;

	for (int i = 0; i < SC_NVQ; i++)
		s.kick[i] = s.call[i] = -1;
	before = lio_snapshot();
	if (sc_setup(v, &s, r) == CHK_PASS && sc_commands(&s, r) == CHK_PASS) {
		snprintf(wwpn, sizeof(wwpn), "%s",
			 vh_lio_target_get_wwpn(s.target));
		chk_set(r, CHK_PASS,
			"%s: INQUIRY, READ CAPACITY(16), "
			"WRITE(10)+READ(10) of %d bytes compared",
			wwpn, SC_DATA);
	}
	sc_teardown(&s);
	after = lio_snapshot();
	if (r->outcome == CHK_PASS &&
	    (!before || !after || strcmp(before, after) != 0))
		chk_set(r, CHK_FAIL, "configfs not restored after %s", wwpn);
	free(before);
	free(after);
}
