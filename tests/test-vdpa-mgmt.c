// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vDPA netlink reply parsing: crafted replies (valid, unknown attribute,
 * wrong attribute length, truncated attribute or message, extended ACK
 * errors, dumps split over several reads) go through the same walker and
 * parsers the library uses on kernel replies.  No kernel needed.
 */
#include <stdarg.h>
#include <syslog.h>

#include "test-util.h"

#ifndef HAVE_LIBMNL
int main(void)
{
	fprintf(stderr, "built without libmnl\n");
	return TEST_SKIP;
}
#else

#include <libmnl/libmnl.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#include "vdpa-internal.h"

#define FAMILY 0x1f
#define SEQ 77
#define PORTID 4242

static struct vh_ctx *ctx;
static char logbuf[4096];

__attribute__((format(printf, 7, 0))) static void
capture_log(struct vh_ctx *c, void *data, int priority, const char *file,
	    int line, const char *fn, const char *format, va_list args)
{
	size_t n = strlen(logbuf);

	vsnprintf(logbuf + n, sizeof(logbuf) - n, format, args);
}

/* A reply: nlmsghdr + genlmsghdr, attributes added by the caller. */
static struct nlmsghdr *reply(void *buf, uint16_t type, uint8_t cmd,
			      uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct genlmsghdr *g;

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	nlh->nlmsg_seq = SEQ;
	nlh->nlmsg_pid = PORTID;
	g = mnl_nlmsg_put_extra_header(nlh, sizeof(*g));
	g->cmd = cmd;
	g->version = 1;
	return nlh;
}

/* Append an NLMSG_ERROR carrying err and, if msg, an extended-ACK string. */
static size_t put_error(char *at, int err, const char *msg, bool capped)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(at);
	struct nlmsgerr *e;

	nlh->nlmsg_type = NLMSG_ERROR;
	nlh->nlmsg_seq = SEQ;
	nlh->nlmsg_pid = PORTID;
	nlh->nlmsg_flags = capped ? NLM_F_CAPPED : 0;
	e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
	e->error = err;
	e->msg.nlmsg_len = sizeof(struct nlmsghdr) + GENL_HDRLEN + 8;
	e->msg.nlmsg_seq = SEQ;
	if (!capped) {
		/* the echoed request: a header, a genl header, one attribute */
		char *req = mnl_nlmsg_put_extra_header(nlh, GENL_HDRLEN + 8);

		memset(req, 0xab, GENL_HDRLEN + 8);
	}
	if (msg) {
		nlh->nlmsg_flags |= NLM_F_ACK_TLVS;
		mnl_attr_put_strz(nlh, NLMSGERR_ATTR_MSG, msg);
		mnl_attr_put_u32(nlh, NLMSGERR_ATTR_OFFS, 20);
	}
	return nlh->nlmsg_len;
}

static size_t put_done(char *at, int err)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(at);
	int *p;

	nlh->nlmsg_type = NLMSG_DONE;
	nlh->nlmsg_flags = NLM_F_MULTI;
	nlh->nlmsg_seq = SEQ;
	nlh->nlmsg_pid = PORTID;
	p = mnl_nlmsg_put_extra_header(nlh, sizeof(int));
	*p = err;
	return nlh->nlmsg_len;
}

static int walk(const void *buf, size_t len, vh_vdpa_nl_cb cb, void *data,
		char *err, size_t errlen)
{
	return vh_vdpa_nl_walk(ctx, buf, len, SEQ, PORTID, FAMILY, cb, data,
			       err, errlen);
}

/* --- parsers ------------------------------------------------------- */

static void test_dev_valid_and_unknown(void)
{
	char buf[1024] __attribute__((aligned(8)));
	struct nlmsghdr *nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_NEW, 0);
	struct vh_vdpa_dev_info d;

	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_MGMTDEV_DEV_NAME, "vdpasim_net");
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "vdpa0");
	/* an attribute from a future kernel, and the pad attribute */
	mnl_attr_put_u32(nlh, 200, 0xdeadbeef);
	mnl_attr_put(nlh, VH_VDPA_ATTR_PAD, 0, NULL);
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_ID, 1);
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_VENDOR_ID, 0);
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_MAX_VQS, 3);
	mnl_attr_put_u16(nlh, VH_VDPA_ATTR_DEV_MAX_VQ_SIZE, 256);
	mnl_attr_put_u16(nlh, VH_VDPA_ATTR_DEV_MIN_VQ_SIZE, 1);

	CHECK_EQ(vh_vdpa_parse_dev(ctx, nlh, &d), 0);
	CHECK(!strcmp(d.name, "vdpa0"));
	CHECK(!strcmp(d.mgmt_dev_name, "vdpasim_net"));
	CHECK_EQ(d.mgmt_bus_name[0], 0);
	CHECK(!VH_VDPA_HAS(&d, VH_VDPA_FIELD_BUS_NAME));
	CHECK(VH_VDPA_HAS(&d, VH_VDPA_FIELD_MIN_VQ_SIZE));
	CHECK_EQ(d.device_id, 1);
	CHECK_EQ(d.max_vqs, 3);
	CHECK_EQ(d.max_vq_size, 256);
	CHECK_EQ(d.min_vq_size, 1);
}

static void test_wrong_length(void)
{
	char buf[1024] __attribute__((aligned(8)));
	struct vh_vdpa_dev_info d;
	struct vh_vdpa_dev_config c;
	struct nlmsghdr *nlh;
	uint8_t mac5[5] = { 1, 2, 3, 4, 5 };

	/* DEV_ID is a u32: a u16 payload is malformed, not silently read */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_NEW, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "vdpa0");
	mnl_attr_put_u16(nlh, VH_VDPA_ATTR_DEV_ID, 1);
	logbuf[0] = 0;
	CHECK_EQ(vh_vdpa_parse_dev(ctx, nlh, &d), -EBADMSG);
	CHECK(strstr(logbuf, "malformed attribute 5") != NULL);

	/* a u64 where a u16 belongs */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_NEW, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "vdpa0");
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_DEV_MAX_VQ_SIZE, 1);
	CHECK_EQ(vh_vdpa_parse_dev(ctx, nlh, &d), -EBADMSG);

	/* a MAC of 5 bytes */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_CONFIG_GET, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "vdpa0");
	mnl_attr_put(nlh, VH_VDPA_ATTR_DEV_NET_CFG_MACADDR, sizeof(mac5), mac5);
	CHECK_EQ(vh_vdpa_parse_config(ctx, nlh, &c), -EBADMSG);

	/* a string without its NUL */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_NEW, 0);
	mnl_attr_put(nlh, VH_VDPA_ATTR_DEV_NAME, 5, "vdpa0");
	CHECK_EQ(vh_vdpa_parse_dev(ctx, nlh, &d), -EBADMSG);

	/* an empty string attribute */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_NEW, 0);
	mnl_attr_put(nlh, VH_VDPA_ATTR_DEV_NAME, 0, NULL);
	CHECK_EQ(vh_vdpa_parse_dev(ctx, nlh, &d), -EBADMSG);

	/* a name longer than we keep */
	{
		char longname[VH_VDPA_NAME_MAX + 8];

		memset(longname, 'x', sizeof(longname) - 1);
		longname[sizeof(longname) - 1] = '\0';
		nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_NEW, 0);
		mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, longname);
		CHECK_EQ(vh_vdpa_parse_dev(ctx, nlh, &d), -EBADMSG);
	}

	/* the device name is required */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_NEW, 0);
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_ID, 1);
	CHECK_EQ(vh_vdpa_parse_dev(ctx, nlh, &d), -EBADMSG);
}

static void test_truncated_attribute(void)
{
	char buf[1024] __attribute__((aligned(8)));
	struct vh_vdpa_dev_info d;
	struct nlmsghdr *nlh;
	struct nlattr *a;

	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_NEW, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "vdpa0");
	a = (struct nlattr *)mnl_nlmsg_get_payload_tail(nlh);
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_MAX_VQS, 2);
	/* the attribute claims more than the message holds */
	a->nla_len = 64;
	CHECK_EQ(vh_vdpa_parse_dev(ctx, nlh, &d), -EBADMSG);

	/* an attribute header cut in half at the end of the message */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_NEW, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "vdpa0");
	memset((char *)nlh + nlh->nlmsg_len, 0, 4);
	nlh->nlmsg_len += 2;
	CHECK_EQ(vh_vdpa_parse_dev(ctx, nlh, &d), -EBADMSG);

	/* nla_len smaller than the attribute header */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_NEW, 0);
	a = (struct nlattr *)mnl_nlmsg_get_payload_tail(nlh);
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_MAX_VQS, 2);
	a->nla_len = 2;
	CHECK_EQ(vh_vdpa_parse_dev(ctx, nlh, &d), -EBADMSG);

	/* no room even for the generic netlink header */
	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = FAMILY;
	CHECK_EQ(vh_vdpa_parse_dev(ctx, nlh, &d), -EBADMSG);
}

static void test_mgmtdev(void)
{
	char buf[1024] __attribute__((aligned(8)));
	struct nlmsghdr *nlh = reply(buf, FAMILY, VH_VDPA_CMD_MGMTDEV_NEW, 0);
	struct vh_vdpa_mgmtdev_info m;

	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_MGMTDEV_BUS_NAME, "pci");
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_MGMTDEV_DEV_NAME, "0000:65:00.2");
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_MGMTDEV_SUPPORTED_CLASSES,
			 (1ull << 1) | (1ull << 2));
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_MGMTDEV_MAX_VQS, 3);
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_DEV_SUPPORTED_FEATURES,
			 0x8000000300000020ull);
	CHECK_EQ(vh_vdpa_parse_mgmtdev(ctx, nlh, &m), 0);
	CHECK(!strcmp(m.bus_name, "pci"));
	CHECK(!strcmp(m.dev_name, "0000:65:00.2"));
	CHECK_EQ(m.supported_classes, 6);
	CHECK_EQ(m.max_supported_vqs, 3);
	CHECK(m.supported_features == 0x8000000300000020ull);

	/* a management device without its name names nothing */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_MGMTDEV_NEW, 0);
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_MGMTDEV_SUPPORTED_CLASSES, 2);
	CHECK_EQ(vh_vdpa_parse_mgmtdev(ctx, nlh, &m), -EBADMSG);
}

static void test_config(void)
{
	char buf[1024] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	struct vh_vdpa_dev_config c;
	const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_CONFIG_GET, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "vdpa0");
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_ID, 1);
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_DEV_FEATURES, 0x300010020ull);
	mnl_attr_put_u16(nlh, VH_VDPA_ATTR_DEV_NET_CFG_MTU, 1400);
	mnl_attr_put(nlh, VH_VDPA_ATTR_DEV_NET_CFG_MACADDR, 6, mac);
	mnl_attr_put_u16(nlh, VH_VDPA_ATTR_DEV_NET_STATUS, 1);
	CHECK_EQ(vh_vdpa_parse_config(ctx, nlh, &c), 0);
	CHECK(!memcmp(c.mac, mac, 6));
	CHECK_EQ(c.mtu, 1400);
	CHECK_EQ(c.status, 1);
	CHECK(c.device_features == 0x300010020ull);
	CHECK(!VH_VDPA_HAS(&c, VH_VDPA_FIELD_NEGOTIATED_FEATURES));
	CHECK(!VH_VDPA_HAS(&c, VH_VDPA_FIELD_MAX_VQ_PAIRS));
	CHECK(VH_VDPA_HAS(&c, VH_VDPA_FIELD_MAC));

	/* block: attribute 21 is the capacity in a config reply */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_CONFIG_GET, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "blk0");
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_ID, 2);
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_DEV_BLK_CFG_CAPACITY, 0x40000);
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_BLK_CFG_BLK_SIZE, 512);
	mnl_attr_put_u16(nlh, VH_VDPA_ATTR_DEV_BLK_CFG_NUM_QUEUES, 1);
	mnl_attr_put_u8(nlh, VH_VDPA_ATTR_DEV_BLK_CFG_PHY_BLK_EXP, 3);
	mnl_attr_put_u8(nlh, VH_VDPA_ATTR_DEV_BLK_READ_ONLY, 0);
	mnl_attr_put_u8(nlh, VH_VDPA_ATTR_DEV_BLK_FLUSH, 1);
	CHECK_EQ(vh_vdpa_parse_config(ctx, nlh, &c), 0);
	CHECK_EQ(c.device_id, 2);
	CHECK_EQ(c.blk_capacity, 0x40000);
	CHECK_EQ(c.blk_blk_size, 512);
	CHECK_EQ(c.blk_num_queues, 1);
	CHECK_EQ(c.blk_physical_block_exp, 3);
	CHECK(VH_VDPA_HAS(&c, VH_VDPA_FIELD_BLK_READ_ONLY));
	CHECK_EQ(c.blk_flush, 1);

	/*
	 * 6.0/6.1: a net device's config reply has its features as 21
	 * (VDPA_ATTR_VDPA_DEV_SUPPORTED_FEATURES): not a capacity
	 */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_CONFIG_GET, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "vdpa0");
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_ID, 1);
	mnl_attr_put_u16(nlh, VH_VDPA_ATTR_DEV_NET_CFG_MTU, 1500);
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_DEV_BLK_CFG_CAPACITY,
			 0x300010020ull);
	CHECK_EQ(vh_vdpa_parse_config(ctx, nlh, &c), 0);
	CHECK(c.device_features == 0x300010020ull);
	CHECK(VH_VDPA_HAS(&c, VH_VDPA_FIELD_DEVICE_FEATURES));
	CHECK(!VH_VDPA_HAS(&c, VH_VDPA_FIELD_BLK_CAPACITY));

	/* a u8 attribute of 2 bytes */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_CONFIG_GET, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "blk0");
	mnl_attr_put_u16(nlh, VH_VDPA_ATTR_DEV_BLK_FLUSH, 1);
	CHECK_EQ(vh_vdpa_parse_config(ctx, nlh, &c), -EBADMSG);
}

static void test_vstats(void)
{
	char buf[1024] __attribute__((aligned(8)));
	struct vh_vdpa_vstats *s = NULL;
	struct nlmsghdr *nlh;

	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_VSTATS_GET, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "vdpa0");
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_ID, 1);
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_DEV_NEGOTIATED_FEATURES, 1ull << 32);
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_QUEUE_INDEX, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_VENDOR_ATTR_NAME,
			  "received_desc");
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_DEV_VENDOR_ATTR_VALUE, 417);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_VENDOR_ATTR_NAME,
			  "completed_desc");
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_DEV_VENDOR_ATTR_VALUE, 416);
	CHECK_EQ(vh_vdpa_parse_vstats(ctx, nlh, &s), 0);
	CHECK_EQ(s->nstats, 2);
	CHECK(!strcmp(s->stats[0].name, "received_desc"));
	CHECK_EQ(s->stats[0].value, 417);
	CHECK(!strcmp(s->stats[1].name, "completed_desc"));
	CHECK_EQ(s->stats[1].value, 416);
	CHECK(VH_VDPA_HAS(s, VH_VDPA_FIELD_QUEUE_INDEX));
	vh_vdpa_vstats_free(s);

	/* a name without its value */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_VSTATS_GET, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "vdpa0");
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_VENDOR_ATTR_NAME, "x");
	s = NULL;
	CHECK_EQ(vh_vdpa_parse_vstats(ctx, nlh, &s), -EBADMSG);
	CHECK(s == NULL);
	/* a value without a name */
	nlh = reply(buf, FAMILY, VH_VDPA_CMD_DEV_VSTATS_GET, 0);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "vdpa0");
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_DEV_VENDOR_ATTR_VALUE, 1);
	CHECK_EQ(vh_vdpa_parse_vstats(ctx, nlh, &s), -EBADMSG);
}

static void test_family(void)
{
	char buf[1024] __attribute__((aligned(8)));
	struct nlmsghdr *nlh;
	uint16_t id = 0;

	nlh = reply(buf, GENL_ID_CTRL, CTRL_CMD_NEWFAMILY, 0);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, "vdpa");
	mnl_attr_put_u16(nlh, CTRL_ATTR_FAMILY_ID, 0x22);
	mnl_attr_put_u32(nlh, CTRL_ATTR_VERSION, 1); /* not ours: skipped */
	CHECK_EQ(vh_vdpa_parse_family(ctx, nlh, &id), 0);
	CHECK_EQ(id, 0x22);

	/* another family's answer is refused */
	nlh = reply(buf, GENL_ID_CTRL, CTRL_CMD_NEWFAMILY, 0);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, "devlink");
	mnl_attr_put_u16(nlh, CTRL_ATTR_FAMILY_ID, 0x22);
	CHECK_EQ(vh_vdpa_parse_family(ctx, nlh, &id), -EBADMSG);
	/* an id in the control range */
	nlh = reply(buf, GENL_ID_CTRL, CTRL_CMD_NEWFAMILY, 0);
	mnl_attr_put_strz(nlh, CTRL_ATTR_FAMILY_NAME, "vdpa");
	mnl_attr_put_u16(nlh, CTRL_ATTR_FAMILY_ID, NLMSG_DONE);
	CHECK_EQ(vh_vdpa_parse_family(ctx, nlh, &id), -EBADMSG);
}

/* --- the message walker -------------------------------------------- */

struct collect {
	int n;
	char names[8][VH_VDPA_NAME_MAX];
};

static int collect_cb(const struct nlmsghdr *nlh, void *data)
{
	struct collect *c = data;
	struct vh_vdpa_dev_info d;
	int ret = vh_vdpa_parse_dev(ctx, nlh, &d);

	if (ret < 0)
		return ret;
	if (c->n < 8)
		strcpy(c->names[c->n], d.name);
	c->n++;
	return 0;
}

static size_t put_dev(char *at, const char *name, uint16_t flags)
{
	struct nlmsghdr *nlh = reply(at, FAMILY, VH_VDPA_CMD_DEV_NEW, flags);

	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, name);
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_ID, 1);
	return nlh->nlmsg_len;
}

static void test_walk_dump(void)
{
	char buf[4096] __attribute__((aligned(8)));
	struct collect c = { 0 };
	char err[VH_VDPA_ERRMSG_MAX];
	size_t len = 0;

	/* first read: two devices, no DONE yet -> more to come */
	len += put_dev(buf + len, "vdpa0", NLM_F_MULTI);
	len += put_dev(buf + len, "vdpa1", NLM_F_MULTI);
	CHECK_EQ(walk(buf, len, collect_cb, &c, err, sizeof(err)), 1);
	CHECK_EQ(c.n, 2);
	/* second read: one more, then DONE */
	len = put_dev(buf, "vdpa2", NLM_F_MULTI);
	len += put_done(buf + len, 0);
	CHECK_EQ(walk(buf, len, collect_cb, &c, err, sizeof(err)), 0);
	CHECK_EQ(c.n, 3);
	CHECK(!strcmp(c.names[2], "vdpa2"));

	/* a message of another family and a stale sequence are skipped */
	c.n = 0;
	len = put_dev(buf, "vdpa0", NLM_F_MULTI);
	((struct nlmsghdr *)buf)->nlmsg_type = FAMILY + 1;
	len += put_dev(buf + len, "vdpa1", NLM_F_MULTI);
	/* buf is aligned(8) and messages MNL_ALIGN()ed: through void * */
	((struct nlmsghdr *)(void *)(buf + len -
				     MNL_ALIGN(((struct nlmsghdr *)(void *)buf)
						       ->nlmsg_len)))
		->nlmsg_seq = SEQ - 1;
	len += put_dev(buf + len, "vdpa2", NLM_F_MULTI);
	len += put_done(buf + len, 0);
	CHECK_EQ(walk(buf, len, collect_cb, &c, err, sizeof(err)), 0);
	CHECK_EQ(c.n, 1);
	CHECK(!strcmp(c.names[0], "vdpa2"));

	/* a dump that fails in the kernel: DONE carries the error */
	c.n = 0;
	len = put_done(buf, -EAGAIN);
	CHECK_EQ(walk(buf, len, collect_cb, &c, err, sizeof(err)), -EAGAIN);

	/* interrupted dump */
	len = put_dev(buf, "vdpa0", NLM_F_MULTI | NLM_F_DUMP_INTR);
	CHECK_EQ(walk(buf, len, collect_cb, &c, err, sizeof(err)), -EINTR);

	/* a malformed entry fails the request once the reply is drained */
	c.n = 0;
	len = put_dev(buf, "vdpa0", NLM_F_MULTI);
	{
		struct nlmsghdr *nlh = reply(buf + len, FAMILY,
					     VH_VDPA_CMD_DEV_NEW, NLM_F_MULTI);

		mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "bad");
		mnl_attr_put_u8(nlh, VH_VDPA_ATTR_DEV_MAX_VQS, 1);
		len += nlh->nlmsg_len;
	}
	len += put_dev(buf + len, "vdpa2", NLM_F_MULTI);
	len += put_done(buf + len, 0);
	CHECK_EQ(walk(buf, len, collect_cb, &c, err, sizeof(err)), -EBADMSG);
	CHECK_EQ(c.n, 2);
}

static void test_walk_truncated(void)
{
	char buf[4096] __attribute__((aligned(8)));
	char err[VH_VDPA_ERRMSG_MAX];
	struct collect c = { 0 };
	size_t len;

	/* the buffer ends inside a message */
	len = put_dev(buf, "vdpa0", 0);
	CHECK_EQ(walk(buf, len - 4, collect_cb, &c, err, sizeof(err)),
		 -EBADMSG);
	CHECK_EQ(c.n, 0);
	/* a message length below the header size */
	len = put_dev(buf, "vdpa0", 0);
	((struct nlmsghdr *)buf)->nlmsg_len = 8;
	CHECK_EQ(walk(buf, len, collect_cb, &c, err, sizeof(err)), -EBADMSG);
	/* an error message too short for struct nlmsgerr */
	{
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

		nlh->nlmsg_type = NLMSG_ERROR;
		nlh->nlmsg_seq = SEQ;
		nlh->nlmsg_pid = PORTID;
		mnl_nlmsg_put_extra_header(nlh, 4);
		CHECK_EQ(walk(buf, nlh->nlmsg_len, collect_cb, &c, err,
			      sizeof(err)),
			 -EBADMSG);
	}
}

static void test_walk_errors(void)
{
	char buf[4096] __attribute__((aligned(8)));
	char err[VH_VDPA_ERRMSG_MAX];
	struct collect c = { 0 };
	size_t len;

	/* a doit reply then its ACK */
	len = put_dev(buf, "vdpa0", 0);
	len += put_error(buf + len, 0, NULL, true);
	CHECK_EQ(walk(buf, len, collect_cb, &c, err, sizeof(err)), 0);
	CHECK_EQ(c.n, 1);

	/* an error with the kernel's message, capped ACK */
	len = put_error(buf, -EOPNOTSUPP,
			"Some provided attributes are not supported: 0x400",
			true);
	CHECK_EQ(walk(buf, len, NULL, NULL, err, sizeof(err)), -EOPNOTSUPP);
	CHECK(!strcmp(err,
		      "Some provided attributes are not supported: 0x400"));

	/* the same without NETLINK_CAP_ACK: the request is echoed first */
	len = put_error(buf, -ENODEV, "device not found", false);
	CHECK_EQ(walk(buf, len, NULL, NULL, err, sizeof(err)), -ENODEV);
	CHECK(!strcmp(err, "device not found"));

	/* no extended ACK: empty message */
	len = put_error(buf, -EPERM, NULL, true);
	CHECK_EQ(walk(buf, len, NULL, NULL, err, sizeof(err)), -EPERM);
	CHECK_EQ(err[0], 0);

	/* an echoed request claiming to be longer than the error message */
	len = put_error(buf, -EINVAL, "x", false);
	{
		struct nlmsgerr *e =
			mnl_nlmsg_get_payload((struct nlmsghdr *)buf);

		e->msg.nlmsg_len = 4000;
	}
	CHECK_EQ(walk(buf, len, NULL, NULL, err, sizeof(err)), -EBADMSG);

	/* a positive "errno" is not something the kernel sends */
	len = put_error(buf, 5, NULL, true);
	CHECK_EQ(walk(buf, len, NULL, NULL, err, sizeof(err)), -EBADMSG);

	/* an extended-ACK message without its NUL */
	{
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
		struct nlmsgerr *e;

		nlh->nlmsg_type = NLMSG_ERROR;
		nlh->nlmsg_flags = NLM_F_CAPPED | NLM_F_ACK_TLVS;
		nlh->nlmsg_seq = SEQ;
		nlh->nlmsg_pid = PORTID;
		e = mnl_nlmsg_put_extra_header(nlh, sizeof(*e));
		e->error = -EINVAL;
		mnl_attr_put(nlh, NLMSGERR_ATTR_MSG, 3, "bad");
		CHECK_EQ(walk(buf, nlh->nlmsg_len, NULL, NULL, err,
			      sizeof(err)),
			 -EBADMSG);
	}

	/* overrun */
	{
		struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

		nlh->nlmsg_type = NLMSG_OVERRUN;
		nlh->nlmsg_seq = SEQ;
		nlh->nlmsg_pid = PORTID;
		CHECK_EQ(walk(buf, nlh->nlmsg_len, NULL, NULL, err,
			      sizeof(err)),
			 -ENOBUFS);
	}
}

/*
 * Hostile replies: a valid reply stream mutated at random (bits flipped,
 * cut short) goes through the walker and every parser.  Nothing may crash
 * or read outside the buffer (the ASan/UBSan build catches that); each
 * result must be 0, 1 or a negative errno.
 */
#define PARSE_RESULT_OK(r) ((r) == 0 || (r) == 1 || ((r) < 0 && (r) >= -4095))

static int parse_all_cb(const struct nlmsghdr *nlh, void *data)
{
	struct vh_vdpa_mgmtdev_info m;
	struct vh_vdpa_dev_info d;
	struct vh_vdpa_dev_config c;
	struct vh_vdpa_vstats *s = NULL;
	uint16_t fam;
	int *count = data;

	int r;

	(*count)++;
	r = vh_vdpa_parse_mgmtdev(ctx, nlh, &m);
	CHECK(PARSE_RESULT_OK(r));
	r = vh_vdpa_parse_dev(ctx, nlh, &d);
	CHECK(PARSE_RESULT_OK(r));
	r = vh_vdpa_parse_config(ctx, nlh, &c);
	CHECK(PARSE_RESULT_OK(r));
	r = vh_vdpa_parse_vstats(ctx, nlh, &s);
	CHECK(PARSE_RESULT_OK(r));
	if (r == 0)
		vh_vdpa_vstats_free(s);
	r = vh_vdpa_parse_family(ctx, nlh, &fam);
	CHECK(PARSE_RESULT_OK(r));
	return 0;
}

static void test_mutated_replies(void)
{
	static char orig[4096] __attribute__((aligned(8)));
	static char buf[4096] __attribute__((aligned(8)));
	const uint8_t mac[6] = { 1, 2, 3, 4, 5, 6 };
	char err[VH_VDPA_ERRMSG_MAX];
	struct nlmsghdr *nlh;
	uint32_t x = 12345;
	size_t len;
	int i, count;

	nlh = reply(orig, FAMILY, VH_VDPA_CMD_DEV_CONFIG_GET, NLM_F_MULTI);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_NAME, "vdpa0");
	mnl_attr_put_u32(nlh, VH_VDPA_ATTR_DEV_ID, 1);
	mnl_attr_put(nlh, VH_VDPA_ATTR_DEV_NET_CFG_MACADDR, 6, mac);
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_DEV_FEATURES, 1ull << 32);
	mnl_attr_put_strz(nlh, VH_VDPA_ATTR_DEV_VENDOR_ATTR_NAME, "x");
	mnl_attr_put_u64(nlh, VH_VDPA_ATTR_DEV_VENDOR_ATTR_VALUE, 7);
	mnl_attr_put_u16(nlh, CTRL_ATTR_FAMILY_ID, 0x30);
	len = nlh->nlmsg_len;
	len += put_dev(orig + len, "vdpa1", NLM_F_MULTI);
	len += put_error(orig + len, -EINVAL, "bad things", false);

	for (i = 0; i < 20000; i++) {
		size_t n = len, k, flips;
		int ret;

		memcpy(buf, orig, len);
		x = x * 1103515245u + 12345u;
		flips = 1 + (x >> 16) % 4;
		for (k = 0; k < flips; k++) {
			x = x * 1103515245u + 12345u;
			buf[(x >> 8) % len] ^= (char)(1u << ((x >> 4) % 8));
		}
		x = x * 1103515245u + 12345u;
		if ((x >> 12) % 4 == 0)
			n = (x >> 3) % len; /* cut short */
		count = 0;
		err[0] = '\0';
		ret = walk(buf, n, parse_all_cb, &count, err, sizeof(err));
		CHECK(ret == 0 || ret == 1 || (ret < 0 && ret >= -4095));
		CHECK(strlen(err) < sizeof(err));
	}
}

/*
 * The netlink socket of a vh_vdpa_mgmt is close-on-exec.  Checked while it
 * is open: after vh_vdpa_mgmt_new() where the vdpa family exists, and from
 * the log callback where it does not (the socket is open while the error
 * is logged, closed when vh_vdpa_mgmt_new() returns -ENODEV).
 */
static struct test_fdset nl_before;
static int nl_seen, nl_bad;

__attribute__((format(printf, 7, 0))) static void
scan_fds_log(struct vh_ctx *c, void *data, int priority, const char *file,
	     int line, const char *fn, const char *format, va_list args)
{
	int n = 0;

	nl_bad += test_new_fds_without_cloexec_n(&nl_before, &n);
	if (n > nl_seen)
		nl_seen = n;
}

/*
 * vh_vdpa_nl_recv(): a socket with nothing to read gives -ETIMEDOUT by the
 * deadline, not a wait for ever; a datagram from a port other than the
 * kernel's is dropped (sending one to another socket's port needs
 * CAP_NET_ADMIN: without it that half is not run).
 */
static void test_recv_deadline(void)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK }, b = a;
	socklen_t alen = sizeof(a);
	char buf[256], msg[NLMSG_HDRLEN] = { 0 };
	struct nlmsghdr *nlh = (void *)msg;
	int fa, fb;
	int64_t t0;
	ssize_t n;

	fa = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	fb = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	CHECK(fa >= 0 && fb >= 0);
	CHECK_EQ(bind(fa, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(bind(fb, (struct sockaddr *)&b, sizeof(b)), 0);
	CHECK_EQ(getsockname(fa, (struct sockaddr *)&a, &alen), 0);
	CHECK(a.nl_pid != 0);

	t0 = test_now_ms();
	n = vh_vdpa_nl_recv(ctx, fa, buf, sizeof(buf), 200);
	CHECK_EQ(n, -ETIMEDOUT);
	CHECK(test_now_ms() - t0 >= 190);
	CHECK(test_now_ms() - t0 < 5000);

	nlh->nlmsg_len = NLMSG_HDRLEN;
	nlh->nlmsg_type = NLMSG_NOOP;
	if (sendto(fb, msg, sizeof(msg), 0, (struct sockaddr *)&a,
		   sizeof(a)) == (ssize_t)sizeof(msg)) {
		logbuf[0] = 0;
		vh_ctx_set_log_priority(ctx, LOG_WARNING);
		n = vh_vdpa_nl_recv(ctx, fa, buf, sizeof(buf), 200);
		vh_ctx_set_log_priority(ctx, LOG_ERR);
		CHECK_EQ(n, -ETIMEDOUT);
		CHECK(strstr(logbuf, "dropping a datagram from port") != NULL);
	} else {
		CHECK_EQ(errno, EPERM);
	}
	close(fa);
	close(fb);
}

static void test_socket_cloexec(void)
{
	struct vh_vdpa_mgmt *m = NULL;
	struct vh_ctx *c;
	int r;

	CHECK_EQ(vh_ctx_new(&c), 0);
	vh_ctx_set_log_fn(c, scan_fds_log, NULL);
	vh_ctx_set_log_priority(c, LOG_DEBUG);
	test_fdset_snapshot(&nl_before);
	r = vh_vdpa_mgmt_new(c, &m);
	if (r == 0) {
		CHECK_NEW_FDS_CLOEXEC(&nl_before, 1);
		CHECK(vh_vdpa_mgmt_unref(m) == NULL);
	} else {
		CHECK_EQ(r, -ENODEV);
		CHECK(nl_seen >= 1);
	}
	CHECK_EQ(nl_bad, 0);
	vh_ctx_unref(c);
}

int main(void)
{
	int fds = test_count_fds();

	CHECK_EQ(vh_ctx_new(&ctx), 0);
	vh_ctx_set_log_fn(ctx, capture_log, NULL);
	vh_ctx_set_log_priority(ctx, LOG_ERR);

	test_dev_valid_and_unknown();
	test_wrong_length();
	test_truncated_attribute();
	test_mgmtdev();
	test_config();
	test_vstats();
	test_family();
	test_walk_dump();
	test_walk_truncated();
	test_walk_errors();
	/* the mutations make the parsers log errors: keep that quiet */
	vh_ctx_set_log_priority(ctx, -1);
	test_mutated_replies();
	vh_ctx_set_log_priority(ctx, LOG_ERR);

	/* names are validated before anything is sent */
	CHECK_EQ(vh_lio_wwpn_check("naa.5001405123456789"), 0);
	CHECK_EQ(vh_lio_wwpn_check("naa.500140512345678"), -EINVAL);
	CHECK_EQ(vh_lio_wwpn_check("naa.50014051234567890"), -EINVAL);
	CHECK_EQ(vh_lio_wwpn_check("naa.500140512345678g"), -EINVAL);
	CHECK_EQ(vh_lio_wwpn_check("iqn.5001405123456789"), -EINVAL);
	CHECK_EQ(vh_lio_wwpn_check(NULL), -EINVAL);

	/* device names never leave /sys/bus/vdpa/devices */
	{
		char path[64];

		CHECK_EQ(vh_vdpa_dev_chardev(ctx, "..", path, sizeof(path)),
			 -EINVAL);
		CHECK_EQ(vh_vdpa_dev_chardev(ctx, "a/../../b", path,
					     sizeof(path)),
			 -EINVAL);
		CHECK_EQ(vh_vdpa_dev_chardev(ctx, "", path, sizeof(path)),
			 -EINVAL);
		CHECK_EQ(vh_vdpa_dev_chardev(ctx, "vhst-no-such-device", path,
					     sizeof(path)),
			 -ENOENT);
	}

	test_socket_cloexec();
	test_recv_deadline();

	vh_ctx_unref(ctx);
	CHECK_EQ(test_count_fds(), fds);
	return 0;
}
#endif
