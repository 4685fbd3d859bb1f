// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user back-end: the handshake, every request's answer, the ring state
 * model, a full data path (a front-end thread with a vh_drvq driver ring, the
 * back-end's device popping and pushing, bytes compared), the inflight
 * region, device state transfer and the back-end -> front-end requests.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "libvhost.h"
#include "vu-msg.h"
#include "test-util.h"
#include "test-vu-backend-util.h"

#define NQ 2
#define QSZ 64
#define P(x) (1ull << VH_VU_PROTOCOL_F_##x)

/* ------------------------------------------------------------------------ */
/* the test device: an "echo" device that inverts what it reads             */
/* ------------------------------------------------------------------------ */
struct dev {
	struct vh_vu_backend *be;
	int started[NQ], stopped[NQ], kicked[NQ];
	int handed[NQ];
	int start_err; /* queue_started's answer when not 0 */
	unsigned int processed;
	uint8_t config[32];
	uint8_t status;
	uint16_t mtu;
	uint8_t mac[6];
	int resets;
	int state_fd;
	int state_dir;
	int check_result;
};

/* a u16 at any address (clang -Wcast-align) */
static uint16_t u16_at(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void echo_ring(struct dev *d, unsigned int idx, struct vh_devq *vr)
{
	/* more iovecs than ring entries: a loop is seen as a loop */
	struct iovec iov[2 * QSZ];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 2 * QSZ };
	uint8_t buf[4096];

	while (vh_devq_pop(vr, &e) == 1) {
		size_t n = 0, w = 0, i, k;

		for (i = 0; i < e.out_num; i++) {
			k = iov[i].iov_len;
			if (n + k > sizeof(buf))
				k = sizeof(buf) - n;
			memcpy(buf + n, iov[i].iov_base, k);
			n += k;
		}
		for (i = 0; i < n; i++)
			buf[i] ^= 0xff;
		for (i = e.out_num; i < e.out_num + e.in_num && w < n; i++) {
			k = iov[i].iov_len < n - w ? iov[i].iov_len : n - w;
			memcpy(iov[i].iov_base, buf + w, k);
			w += k;
		}
		CHECK_EQ(vh_devq_push(vr, e.id, (uint32_t)w), 0);
		d->processed++;
	}
	vh_vu_backend_notify(d->be, idx);
}

static int d_started(struct vh_vu_backend *be, void *data, unsigned int idx,
		     struct vh_devq *vr)
{
	struct dev *d = data;

	if (d->start_err)
		return d->start_err;
	d->started[idx]++;
	d->handed[idx] = 1;
	return 0;
}

static void d_stopped(struct vh_vu_backend *be, void *data, unsigned int idx,
		      struct vh_devq *vr)
{
	struct dev *d = data;

	d->stopped[idx]++;
	d->handed[idx] = 0;
}

static void d_kicked(struct vh_vu_backend *be, void *data, unsigned int idx,
		     struct vh_devq *vr)
{
	struct dev *d = data;

	CHECK(d->handed[idx]); /* never kicked while not handed over */
	d->kicked[idx]++;
	echo_ring(d, idx, vr);
}

static int d_get_config(struct vh_vu_backend *be, void *data, uint32_t off,
			void *buf, uint32_t size)
{
	struct dev *d = data;

	memcpy(buf, d->config + off, size);
	return 0;
}

static int d_set_config(struct vh_vu_backend *be, void *data, uint32_t off,
			const void *buf, uint32_t size, uint32_t flags)
{
	struct dev *d = data;

	/* bytes 0..7 are read-only unless migrating */
	if (off < 8 && flags != VH_VU_CONFIG_F_MIGRATION)
		return -EPERM;
	memcpy(d->config + off, buf, size);
	return 0;
}

static void d_reset(struct vh_vu_backend *be, void *data)
{
	struct dev *d = data;

	d->resets++;
}

static int d_set_status(struct vh_vu_backend *be, void *data, uint8_t s)
{
	struct dev *d = data;

	d->status = s;
	return 0;
}

static int d_mtu(struct vh_vu_backend *be, void *data, uint16_t mtu)
{
	struct dev *d = data;

	if (mtu > 9000)
		return -EINVAL;
	d->mtu = mtu;
	return 0;
}

static int d_rarp(struct vh_vu_backend *be, void *data, const uint8_t mac[6])
{
	struct dev *d = data;

	memcpy(d->mac, mac, 6);
	return 0;
}

static int d_state_fd(struct vh_vu_backend *be, void *data,
		      enum vh_vu_state_direction dir, uint32_t phase, int fd,
		      int *reply_fd)
{
	struct dev *d = data;
	int p[2];

	d->state_dir = dir;
	if (dir == VH_VU_STATE_SAVE) {
		/* write our state, then offer our own channel back */
		CHECK(write(fd, "STATE42", 7) == 7);
		close(fd);
		CHECK(pipe2(p, O_CLOEXEC) == 0);
		CHECK(write(p[1], "OWN", 3) == 3);
		close(p[1]);
		*reply_fd = p[0];
		return 0;
	}
	d->state_fd = fd;
	return 0;
}

static int d_check_state(struct vh_vu_backend *be, void *data)
{
	struct dev *d = data;
	char buf[16] = { 0 };

	if (d->state_fd >= 0) {
		ssize_t n = read(d->state_fd, buf, sizeof(buf) - 1);

		close(d->state_fd);
		d->state_fd = -1;
		d->check_result = n == 5 && !memcmp(buf, "HELLO", 5) ? 0 : -1;
	}
	return d->check_result;
}

static int d_shared(struct vh_vu_backend *be, void *data,
		    const uint8_t uuid[16], int *fd)
{
	if (uuid[0] != 0xab)
		return -ENOENT;
	*fd = eventfd(0, EFD_CLOEXEC);
	return *fd < 0 ? -errno : 0;
}

static const struct vh_vu_device_ops dev_ops = {
	.size = sizeof(dev_ops),
	.get_config = d_get_config,
	.set_config = d_set_config,
	.queue_started = d_started,
	.queue_stopped = d_stopped,
	.queue_kicked = d_kicked,
	.reset = d_reset,
	.set_status = d_set_status,
	.net_set_mtu = d_mtu,
	.send_rarp = d_rarp,
	.set_device_state_fd = d_state_fd,
	.check_device_state = d_check_state,
	.get_shared_object = d_shared,
};

#define ALL_PROTO                                                              \
	(P(MQ) | P(LOG_SHMFD) | P(RARP) | P(REPLY_ACK) | P(NET_MTU) |          \
	 P(BACKEND_REQ) | P(CROSS_ENDIAN) | P(CRYPTO_SESSION) | P(PAGEFAULT) | \
	 P(CONFIG) | P(BACKEND_SEND_FD) | P(HOST_NOTIFIER) |                   \
	 P(INFLIGHT_SHMFD) | P(RESET_DEVICE) | P(INBAND_NOTIFICATIONS) |       \
	 P(CONFIGURE_MEM_SLOTS) | P(STATUS) | P(XEN_MMAP) | P(SHARED_OBJECT) | \
	 P(DEVICE_STATE))

static const struct vh_vu_device test_dev = {
	.size = sizeof(test_dev),
	.features = (1ull << VH_VU_VIRTIO_F_VERSION_1) |
		    (1ull << VH_VU_VIRTIO_F_RING_EVENT_IDX) |
		    (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM) |
		    (1ull << VH_VU_VIRTIO_F_RING_PACKED) | (1ull << 5),
	.protocol_features = ALL_PROTO,
	.num_queues = NQ,
	.max_queue_size = 1024,
	.config_size = 32,
};

static void dev_init(struct dev *d)
{
	unsigned int i;

	memset(d, 0, sizeof(*d));
	d->state_fd = -1;
	for (i = 0; i < sizeof(d->config); i++)
		d->config[i] = (uint8_t)i;
}

static void setup(struct fe *f, struct dev *d, uint64_t proto)
{
	dev_init(d);
	fe_init(f, &test_dev, &dev_ops, d);
	d->be = f->be;
	fe_negotiate(f, proto);
}

/* ------------------------------------------------------------------------ */
static void test_handshake(void)
{
	struct fe f;
	struct dev d;
	uint64_t v;
	struct vh_vu_vring_state s;
	struct test_fdset fdset;

	dev_init(&d);
	test_fdset_snapshot(&fdset);
	fe_init(&f, &test_dev, &dev_ops, &d);
	d.be = f.be;

	v = fe_u64(&f, VH_VU_GET_FEATURES, 0, NULL, 0, NULL, 0);
	/* the back-end's own fds (its epoll set, the connection), open */
	CHECK_NEW_FDS_CLOEXEC(&fdset, 2);
	/*
	 * bit 30 added; RING_PACKED offered; ACCESS_PLATFORM since the
	 * device offers it with BACKEND_REQ and REPLY_ACK
	 */
	CHECK_EQ(v, (1ull << VH_VU_VIRTIO_F_VERSION_1) |
			    (1ull << VH_VU_VIRTIO_F_RING_EVENT_IDX) |
			    (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM) |
			    (1ull << VH_VU_VIRTIO_F_RING_PACKED) |
			    (1ull << 5) | (1ull << 30));
	/* answered before SET_FEATURES (spec note) */
	v = fe_u64(&f, VH_VU_GET_PROTOCOL_FEATURES, 0, NULL, 0, NULL, 0);
	CHECK_EQ(v, ALL_PROTO & ~(P(CROSS_ENDIAN) | P(CRYPTO_SESSION) |
				  P(PAGEFAULT) | P(XEN_MMAP)));
	/* a feature we did not offer: connection closed */
	v = 1ull << 6;
	fe_send_raw(&f, VH_VU_SET_FEATURES, 0, &v, 8, NULL, 0);
	CHECK(fe_pump(&f) < 0);
	CHECK(fe_closed(&f));
	close(f.sock);
	CHECK_EQ(d.resets, 1);

	/* a fresh connection on the same back-end starts from scratch */
	fe_connect(&f);
	CHECK_EQ(vh_vu_backend_get_protocol_features(f.be), 0);
	fe_negotiate(&f, ALL_PROTO);
	CHECK_EQ(fe_u64(&f, VH_VU_GET_QUEUE_NUM, 0, NULL, 0, NULL, 0), NQ);
	CHECK_EQ(fe_u64(&f, VH_VU_GET_MAX_MEM_SLOTS, 0, NULL, 0, NULL, 0),
		 VH_MEM_MAX_REGIONS);
	/* REPLY_ACK on a message without its own reply */
	CHECK_EQ(fe_ack(&f, VH_VU_SET_OWNER, NULL, 0, NULL, 0), 0);
	/* status */
	v = 0x0f;
	CHECK_EQ(fe_ack(&f, VH_VU_SET_STATUS, &v, 8, NULL, 0), 0);
	CHECK_EQ(d.status, 0x0f);
	CHECK_EQ(fe_u64(&f, VH_VU_GET_STATUS, 0, NULL, 0, NULL, 0), 0x0f);
	/* MTU: the device turns 9001 down, the connection stays */
	v = 1500;
	CHECK_EQ(fe_ack(&f, VH_VU_NET_SET_MTU, &v, 8, NULL, 0), 0);
	CHECK_EQ(d.mtu, 1500);
	v = 9001;
	CHECK(fe_ack(&f, VH_VU_NET_SET_MTU, &v, 8, NULL, 0) != 0);
	CHECK(vh_vu_backend_connected(f.be));
	/* RARP: the first 6 bytes are the MAC */
	{
		uint8_t mac[8] = { 0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 0 };

		CHECK_EQ(fe_ack(&f, VH_VU_SEND_RARP, mac, 8, NULL, 0), 0);
		CHECK(!memcmp(d.mac, mac, 6));
	}
	/* SET_VRING_ENABLE 2 is invalid */
	s.index = 0;
	s.num = 2;
	fe_send_raw(&f, VH_VU_SET_VRING_ENABLE, 0, &s, 8, NULL, 0);
	CHECK(fe_pump(&f) < 0);
	CHECK(fe_closed(&f));
	fe_fini(&f);
}

static void test_config(void)
{
	struct vh_vu_config c;
	struct vh_vu_msg m;
	struct fe f;
	struct dev d;

	setup(&f, &d, ALL_PROTO);
	memset(&c, 0, sizeof(c));
	c.offset = 4;
	c.size = 8;
	fe_send_raw(&f, VH_VU_GET_CONFIG, 0, &c, 12 + 8, NULL, 0);
	fe_pump(&f);
	CHECK_EQ(fe_recv(&f, &m), 0);
	CHECK_EQ(m.hdr.size, 12 + 8);
	CHECK_EQ(m.payload.config.offset, 4);
	CHECK_EQ(m.payload.config.size, 8);
	CHECK_EQ(m.payload.config.region[0], 4);
	CHECK_EQ(m.payload.config.region[7], 11);

	/* past the device's 32 bytes: a zero-length reply, connection stays */
	c.offset = 30;
	c.size = 8;
	fe_send_raw(&f, VH_VU_GET_CONFIG, 0, &c, 12 + 8, NULL, 0);
	fe_pump(&f);
	CHECK_EQ(fe_recv(&f, &m), 0);
	CHECK_EQ(m.hdr.size, 0);
	CHECK(vh_vu_backend_connected(f.be));

	/* SET_CONFIG on a read-only field: refused unless migrating */
	c.offset = 0;
	c.size = 2;
	c.flags = VH_VU_CONFIG_F_WRITABLE;
	c.region[0] = 0xee;
	c.region[1] = 0xdd;
	CHECK(fe_ack(&f, VH_VU_SET_CONFIG, &c, 12 + 2, NULL, 0) != 0);
	CHECK_EQ(d.config[0], 0);
	c.flags = VH_VU_CONFIG_F_MIGRATION;
	CHECK_EQ(fe_ack(&f, VH_VU_SET_CONFIG, &c, 12 + 2, NULL, 0), 0);
	CHECK_EQ(d.config[0], 0xee);
	CHECK_EQ(d.config[1], 0xdd);
	c.offset = 16;
	c.flags = 7; /* no such flag */
	CHECK(fe_ack(&f, VH_VU_SET_CONFIG, &c, 12 + 2, NULL, 0) != 0);
	fe_fini(&f);
}

/* Ring setup on one queue; the ring lives in fm at gpa ring_gpa. */
static void fe_ring(struct fe *f, struct fe_mem *fm, unsigned int idx,
		    struct vh_drvq **vqp, int *kick, int *call, bool send_kick)
{
	uint64_t dg, ag, ug, v;
	struct vh_vu_vring_addr a;
	struct vh_drvq *vq;
	int k, c;

	CHECK_EQ(vh_drvq_new(f->ctx, fm->mem, idx, QSZ,
			   fm->gpa + 0x1000 + idx * 0x4000, &vq),
		 0);
	CHECK_EQ(vh_drvq_get_addrs(vq, &dg, &ag, &ug), 0);
	fe_state(f, VH_VU_SET_VRING_NUM, idx, QSZ);
	fe_state(f, VH_VU_SET_VRING_BASE, idx, 0);
	memset(&a, 0, sizeof(a));
	a.index = idx;
	a.desc = fe_mem_uva(fm, dg);
	a.avail = fe_mem_uva(fm, ag);
	a.used = fe_mem_uva(fm, ug);
	fe_do(f, VH_VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	c = test_efd();
	v = idx;
	fe_do(f, VH_VU_SET_VRING_CALL, &v, 8, &c, 1);
	k = test_efd();
	CHECK_EQ(vh_drvq_set_kick_fd(vq, k), 0);
	CHECK_EQ(vh_drvq_set_call_fd(vq, c), 0);
	if (send_kick)
		fe_do(f, VH_VU_SET_VRING_KICK, &v, 8, &k, 1);
	*vqp = vq;
	*kick = k;
	*call = c;
}

/* "Ring states": started by KICK, enabled by ENABLE, stopped by GET_VRING_BASE */
static void test_ring_states(void)
{
	struct fe f;
	struct dev d;
	struct fe_mem fm;
	struct vh_drvq *vq;
	struct vh_vu_msg m;
	struct vh_vu_vring_state s;
	uint8_t *buf;
	struct vh_sg sg[2];
	void *tok;
	uint32_t len;
	int kick, call;
	uint64_t v;

	setup(&f, &d, ALL_PROTO);
	fe_mem_init(&f, &fm, 0x40000000, 1 << 20);
	fe_set_mem(&f, &fm);
	fe_ring(&f, &fm, 0, &vq, &kick, &call, true);
	/* started but (protocol features negotiated) disabled: not handed */
	CHECK_EQ(d.started[0], 0);

	/* a buffer and a kick before enable */
	buf = fm.host + 0x80000;
	memcpy(buf, "hello", 5);
	sg[0].addr = fm.gpa + 0x80000;
	sg[0].len = 5;
	sg[1].addr = fm.gpa + 0x81000;
	sg[1].len = 64;
	CHECK_EQ(vh_drvq_add(vq, sg, 1, 1, (void *)1), 0);
	CHECK(vh_drvq_kick(vq) >= 0);
	fe_pump(&f);
	CHECK_EQ(d.processed, 0);

	/* enable: handed over, and the early kick is not lost */
	fe_state(&f, VH_VU_SET_VRING_ENABLE, 0, 1);
	CHECK_EQ(d.started[0], 1);
	CHECK_EQ(d.processed, 1);
	CHECK_EQ(vh_drvq_get_used(vq, &tok, &len), 1);
	CHECK(tok == (void *)1);
	CHECK_EQ(len, 5);
	CHECK(!memcmp(fm.host + 0x81000, "\x97\x9a\x93\x93\x90", 5));

	/* disable and enable again */
	fe_state(&f, VH_VU_SET_VRING_ENABLE, 0, 0);
	CHECK_EQ(d.stopped[0], 1);
	fe_state(&f, VH_VU_SET_VRING_ENABLE, 0, 1);
	CHECK_EQ(d.started[0], 2);

	/* GET_VRING_BASE stops the ring and returns last_avail_idx */
	s.index = 0;
	s.num = 0;
	fe_send_raw(&f, VH_VU_GET_VRING_BASE, 0, &s, 8, NULL, 0);
	fe_pump(&f);
	CHECK_EQ(fe_recv(&f, &m), 0);
	CHECK_EQ(m.hdr.size, 8);
	CHECK_EQ(m.payload.state.index, 0);
	CHECK_EQ(m.payload.state.num, 1);
	CHECK_EQ(d.stopped[0], 2);
	CHECK(!d.handed[0]);

	/* stopped: a kick does nothing until SET_VRING_KICK restarts it */
	CHECK_EQ(vh_drvq_add(vq, sg, 1, 1, (void *)2), 0);
	CHECK(vh_drvq_kick(vq) >= 0);
	fe_pump(&f);
	CHECK_EQ(d.processed, 1);
	fe_state(&f, VH_VU_SET_VRING_BASE, 0, 1);
	v = 0;
	{
		int k2 = dup(kick);

		fe_do(&f, VH_VU_SET_VRING_KICK, &v, 8, &k2, 1);
		close(k2);
	}
	CHECK_EQ(d.started[0], 3);
	CHECK_EQ(d.processed, 2);

	/* in-band kick (VRING_KICK) reaches the device */
	CHECK_EQ(vh_drvq_add(vq, sg, 1, 1, (void *)3), 0);
	vh_drvq_kick_prepare(vq);
	fe_state(&f, VH_VU_VRING_KICK, 0, 0);
	CHECK_EQ(d.processed, 3);

	/* RESET_DEVICE: every ring stopped and forgotten */
	CHECK_EQ(fe_ack(&f, VH_VU_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	CHECK(!d.handed[0]);
	CHECK_EQ(d.resets, 1);

	/* without protocol features, SET_FEATURES enables every ring */
	close(f.sock);
	fe_pump(&f);
	CHECK(!vh_vu_backend_connected(f.be));
	fe_connect(&f);
	v = 1ull << VH_VU_VIRTIO_F_VERSION_1;
	fe_do(&f, VH_VU_SET_FEATURES, &v, 8, NULL, 0);
	fe_set_mem(&f, &fm);
	vh_drvq_unref(vq);
	close(kick);
	close(call);
	fe_ring(&f, &fm, 1, &vq, &kick, &call, true);
	CHECK(d.handed[1]);

	vh_drvq_unref(vq);
	close(kick);
	close(call);
	vh_mem_unref(fm.mem);
	fe_fini(&f);
}

static int d_set_features_split(struct vh_vu_backend *be, void *data,
				uint64_t features)
{
	return features & (1ull << VH_VU_VIRTIO_F_RING_PACKED) ? -ENOTSUP : 0;
}

/*
 * A device that turns SET_FEATURES down (packed rings): an error reply,
 * the connection stays, and neither the rings nor the negotiated features
 * changed: a stopped ring's base is the split one set before, and a handed
 * ring is handed again.
 */
static void test_features_refused(void)
{
	struct vh_vu_device_ops ops = dev_ops;
	struct vh_drvq *vq0, *vq1;
	struct vh_vu_vring_state s = { 0, 0 };
	struct vh_vu_msg m;
	struct fe_mem fm;
	struct fe f;
	struct dev d;
	uint64_t feat, v;
	int k0, c0, k1, c1;

	ops.set_features = d_set_features_split;
	dev_init(&d);
	fe_init(&f, &test_dev, &ops, &d);
	d.be = f.be;
	fe_negotiate(&f, ALL_PROTO);
	feat = vh_vu_backend_get_features(f.be);
	CHECK(!(feat & (1ull << VH_VU_VIRTIO_F_RING_PACKED)));
	fe_mem_init(&f, &fm, 0x40000000, 1 << 20);
	fe_set_mem(&f, &fm);
	/* ring 0 started, disabled, at base 5; ring 1 handed */
	fe_ring(&f, &fm, 0, &vq0, &k0, &c0, true);
	fe_state(&f, VH_VU_SET_VRING_BASE, 0, 5);
	fe_ring(&f, &fm, 1, &vq1, &k1, &c1, true);
	fe_state(&f, VH_VU_SET_VRING_ENABLE, 1, 1);
	CHECK(d.handed[1]);
	CHECK_EQ(d.started[1], 1);

	v = feat | 1ull << VH_VU_VIRTIO_F_RING_PACKED;
	CHECK(fe_ack(&f, VH_VU_SET_FEATURES, &v, 8, NULL, 0) != 0);
	CHECK(vh_vu_backend_connected(f.be));
	CHECK_EQ(vh_vu_backend_get_features(f.be), feat);
	CHECK(d.handed[1]);
	CHECK_EQ(d.started[1], 2);
	fe_send_raw(&f, VH_VU_GET_VRING_BASE, 0, &s, 8, NULL, 0);
	fe_pump(&f);
	CHECK_EQ(fe_recv(&f, &m), 0);
	CHECK_EQ(m.payload.state.index, 0);
	CHECK_EQ(m.payload.state.num, 5);
	/* what the device takes is taken */
	CHECK_EQ(fe_ack(&f, VH_VU_SET_FEATURES, &feat, 8, NULL, 0), 0);
	CHECK(vh_vu_backend_connected(f.be));

	vh_drvq_unref(vq0);
	vh_drvq_unref(vq1);
	close(k0);
	close(c0);
	close(k1);
	close(c1);
	vh_mem_unref(fm.mem);
	fe_fini(&f);
}

/*
 * SET_VRING_NUM: a packed ring takes any size up to the device's maximum
 * (2.8), a split ring a power of two (2.7).
 */
static void test_ring_size_layout(void)
{
	struct vh_vu_vring_state s = { 0, 100 };
	unsigned int packed;
	uint64_t feat;
	struct fe f;
	struct dev d;

	for (packed = 0; packed < 2; packed++) {
		dev_init(&d);
		fe_init(&f, &test_dev, &dev_ops, &d);
		d.be = f.be;
		fe_negotiate(&f, ALL_PROTO);
		feat = vh_vu_backend_get_features(f.be) &
		       ~(1ull << VH_VU_VIRTIO_F_RING_PACKED);
		feat |= (uint64_t)packed << VH_VU_VIRTIO_F_RING_PACKED;
		CHECK_EQ(fe_ack(&f, VH_VU_SET_FEATURES, &feat, 8, NULL, 0), 0);
		s.num = 100;
		if (packed)
			CHECK_EQ(fe_ack(&f, VH_VU_SET_VRING_NUM, &s, 8, NULL,
					0),
				 0);
		if (packed) {
			/*
			 * a ring of 100 handed; back to split, the size goes
			 * with the layout: the ring is taken back and waits
			 * for a new one, not handed without a size
			 */
			struct vh_drvq *vq;
			struct fe_mem fm;
			int k, c;

			fe_mem_init(&f, &fm, 0x40000000, 1 << 20);
			fe_set_mem(&f, &fm);
			fe_ring(&f, &fm, 0, &vq, &k, &c, true);
			s.num = 100;
			CHECK_EQ(fe_ack(&f, VH_VU_SET_VRING_NUM, &s, 8, NULL,
					0),
				 0);
			fe_state(&f, VH_VU_SET_VRING_ENABLE, 0, 1);
			CHECK(d.handed[0]);
			feat &= ~(1ull << VH_VU_VIRTIO_F_RING_PACKED);
			CHECK_EQ(fe_ack(&f, VH_VU_SET_FEATURES, &feat, 8, NULL,
					0),
				 0);
			CHECK(!d.handed[0]);
			vh_drvq_unref(vq);
			close(k);
			close(c);
			vh_mem_unref(fm.mem);
			s.num = test_dev.max_queue_size + 1;
		}
		/* a bad size ends the connection */
		CHECK(fe_ack(&f, VH_VU_SET_VRING_NUM, &s, 8, NULL, 0) != 0);
		fe_fini(&f);
	}
}

/*
 * A device that refuses to start a ring (queue_started fails): the
 * SET_VRING_ENABLE or SET_VRING_KICK that would have handed it gets an
 * error reply, the connection stays, the ring is not handed (its kicks are
 * not delivered) and stays disabled or stopped; once the device takes it,
 * the same message hands it over, and the kick that waited is served.
 * Refused after a change no ring message asked for (a memory table), it
 * is reported on the ring's error eventfd instead, once.
 */
static void test_ring_refused(void)
{
	struct vh_vu_vring_state s;
	struct vh_drvq *vq0, *vq1;
	struct vh_sg sg[2];
	struct fe_mem fm;
	struct fe f;
	struct dev d;
	int k0, c0, k1, c1, errfd;
	uint64_t v;

	setup(&f, &d, ALL_PROTO);
	fe_mem_init(&f, &fm, 0x40000000, 1 << 20);
	fe_set_mem(&f, &fm);
	fe_ring(&f, &fm, 0, &vq0, &k0, &c0, true);
	d.start_err = -EIO;
	s.index = 0;
	s.num = 1;
	CHECK(fe_ack(&f, VH_VU_SET_VRING_ENABLE, &s, 8, NULL, 0) != 0);
	CHECK(vh_vu_backend_connected(f.be));
	CHECK(!d.handed[0]);
	/* left disabled: another message on the ring does not hand it */
	d.start_err = 0;
	v = 0;
	CHECK_EQ(fe_ack(&f, VH_VU_SET_VRING_CALL, &v, 8, &c0, 1), 0);
	CHECK(!d.handed[0]);
	CHECK_EQ(fe_ack(&f, VH_VU_SET_VRING_ENABLE, &s, 8, NULL, 0), 0);
	CHECK(d.handed[0]);
	CHECK_EQ(d.started[0], 1);

	/* ring 1 enabled first, then started by SET_VRING_KICK */
	fe_ring(&f, &fm, 1, &vq1, &k1, &c1, false);
	s.index = 1;
	CHECK_EQ(fe_ack(&f, VH_VU_SET_VRING_ENABLE, &s, 8, NULL, 0), 0);
	CHECK(!d.handed[1]);
	d.start_err = -EIO;
	v = 1;
	CHECK(fe_ack(&f, VH_VU_SET_VRING_KICK, &v, 8, &k1, 1) != 0);
	CHECK(vh_vu_backend_connected(f.be));
	CHECK(!d.handed[1]);
	/* a buffer and a kick: not delivered (d_kicked checks it) */
	memcpy(fm.host + 0x80000, "hello", 5);
	sg[0].addr = fm.gpa + 0x80000;
	sg[0].len = 5;
	sg[1].addr = fm.gpa + 0x81000;
	sg[1].len = 64;
	CHECK_EQ(vh_drvq_add(vq1, sg, 1, 1, (void *)1), 0);
	CHECK(vh_drvq_kick(vq1) >= 0);
	fe_pump(&f);
	CHECK_EQ(d.processed, 0);
	/* left stopped: an enable does not hand it */
	d.start_err = 0;
	CHECK_EQ(fe_ack(&f, VH_VU_SET_VRING_ENABLE, &s, 8, NULL, 0), 0);
	CHECK(!d.handed[1]);
	CHECK_EQ(fe_ack(&f, VH_VU_SET_VRING_KICK, &v, 8, &k1, 1), 0);
	CHECK(d.handed[1]);
	CHECK_EQ(d.processed, 1);

	/*
	 * Refused after a memory table change: SET_MEM_TABLE acks its own
	 * change, so the ring is reported on its error eventfd, once; taken
	 * back, a new refusal is news again.
	 */
	errfd = test_efd();
	v = 0;
	fe_do(&f, VH_VU_SET_VRING_ERR, &v, 8, &errfd, 1);
	d.start_err = -EIO;
	fe_set_mem(&f, &fm);
	CHECK(!d.handed[0]);
	CHECK(read(errfd, &v, 8) == 8);
	CHECK_EQ(v, 1);
	fe_set_mem(&f, &fm);
	CHECK(!d.handed[0]);
	CHECK(read(errfd, &v, 8) < 0 && errno == EAGAIN);
	CHECK(vh_vu_backend_connected(f.be));
	d.start_err = 0;
	fe_set_mem(&f, &fm);
	CHECK(d.handed[0]);
	CHECK(read(errfd, &v, 8) < 0 && errno == EAGAIN);
	d.start_err = -EIO;
	fe_set_mem(&f, &fm);
	CHECK(!d.handed[0]);
	CHECK(read(errfd, &v, 8) == 8);
	close(errfd);

	vh_drvq_unref(vq0);
	vh_drvq_unref(vq1);
	close(k0);
	close(c0);
	close(k1);
	close(c1);
	vh_mem_unref(fm.mem);
	fe_fini(&f);
}

/*
 * REM_MEM_REG of the region a started ring lies in, then ADD_MEM_REG of it
 * again (QEMU does this when a memory section changes its bounds), with a
 * buffer waiting: the ring goes back from the device while its memory is
 * gone (it is not broken: the driver did nothing wrong), comes back with
 * the region, and the buffer is served at the kick.
 */
static void test_mem_reg_ring(void)
{
	struct vh_vu_mem_single s;
	struct fe f;
	struct dev d;
	struct fe_mem fm;
	struct vh_drvq *vq;
	struct vh_sg sg[2];
	void *tok;
	uint32_t len;
	int kick, call;

	setup(&f, &d, ALL_PROTO);
	fe_mem_init(&f, &fm, 0x40000000, 1 << 20);
	memset(&s, 0, sizeof(s));
	s.region.guest_addr = fm.gpa;
	s.region.size = fm.size;
	s.region.user_addr = fm.uva;
	CHECK_EQ(fe_ack(&f, VH_VU_ADD_MEM_REG, &s, sizeof(s), &fm.fd, 1), 0);
	fe_ring(&f, &fm, 0, &vq, &kick, &call, true);
	fe_state(&f, VH_VU_SET_VRING_ENABLE, 0, 1);
	CHECK(d.handed[0]);
	memcpy(fm.host + 0x80000, "hello", 5);
	sg[0].addr = fm.gpa + 0x80000;
	sg[0].len = 5;
	sg[1].addr = fm.gpa + 0x81000;
	sg[1].len = 64;
	CHECK_EQ(vh_drvq_add(vq, sg, 1, 1, (void *)1), 0);

	CHECK_EQ(fe_ack(&f, VH_VU_REM_MEM_REG, &s, sizeof(s), NULL, 0), 0);
	CHECK(!d.handed[0]);
	CHECK_EQ(vh_devq_is_broken(vh_vu_backend_get_vring(f.be, 0)), 0);
	CHECK_EQ(fe_ack(&f, VH_VU_ADD_MEM_REG, &s, sizeof(s), &fm.fd, 1), 0);
	CHECK(d.handed[0]);
	CHECK(vh_drvq_kick(vq) >= 0);
	fe_pump(&f);
	CHECK_EQ(d.processed, 1);
	CHECK_EQ(vh_drvq_get_used(vq, &tok, &len), 1);
	CHECK(tok == (void *)1);
	CHECK_EQ(len, 5);
	CHECK(!memcmp(fm.host + 0x81000, "\x97\x9a\x93\x93\x90", 5));

	vh_drvq_unref(vq);
	close(kick);
	close(call);
	vh_mem_unref(fm.mem);
	fe_fini(&f);
}

/*
 * A hostile ring through the whole stack: a descriptor loop and an avail
 * index more than the ring size ahead.  The device's pop fails, nothing
 * is written, the back-end and the connection stay up.
 */
static void test_hostile_ring(void)
{
	struct fe f;
	struct dev d;
	struct fe_mem fm;
	struct vh_drvq *vq;
	void *desc, *avail, *used;
	uint8_t *dp;
	uint16_t *ap;
	uint64_t v;
	int kick, call, errfd;

	setup(&f, &d, ALL_PROTO);
	fe_mem_init(&f, &fm, 0x40000000, 1 << 20);
	fe_set_mem(&f, &fm);
	fe_ring(&f, &fm, 0, &vq, &kick, &call, true);
	errfd = test_efd();
	v = 0;
	fe_do(&f, VH_VU_SET_VRING_ERR, &v, 8, &errfd, 1);
	fe_state(&f, VH_VU_SET_VRING_ENABLE, 0, 1);
	CHECK(d.handed[0]);
	CHECK_EQ(vh_drvq_get_host_addrs(vq, &desc, &avail, &used), 0);
	dp = desc;
	ap = avail;
	/* desc 0: 16 bytes at gpa + 0x80000, NEXT (1) -> itself */
	{
		/* a split descriptor: addr, len, flags, next */
		uint64_t addr = fm.gpa + 0x80000;
		uint32_t dlen = 16;
		uint16_t flags = 1, next = 0;

		memcpy(dp, &addr, 8);
		memcpy(dp + 8, &dlen, 4);
		memcpy(dp + 12, &flags, 2);
		memcpy(dp + 14, &next, 2);
	}
	ap[2] = 0; /* ring[0] = head 0 */
	__atomic_store_n(&ap[1], 1, __ATOMIC_RELEASE);
	fe_state(&f, VH_VU_VRING_KICK, 0, 0);
	CHECK_EQ(d.processed, 0);
	CHECK(vh_devq_is_broken(vh_vu_backend_get_vring(f.be, 0)));
	CHECK(vh_vu_backend_connected(f.be));
	/* the front-end heard of it on the error eventfd, once */
	CHECK(read(errfd, &v, 8) == 8);
	CHECK_EQ(v, 1);
	fe_state(&f, VH_VU_VRING_KICK, 0, 0);
	CHECK(read(errfd, &v, 8) < 0 && errno == EAGAIN);
	/*
	 * QEMU's restart of the ring (vhost_virtqueue_stop(), then _start()):
	 * it is handed again unbroken, and its next break is reported too
	 */
	{
		struct vh_vu_vring_state s = { 0, 0 };
		struct vh_vu_vring_addr a;
		uint64_t dg, ag, ug;
		struct vh_vu_msg m;
		int k2 = dup(kick);

		fe_send_raw(&f, VH_VU_GET_VRING_BASE, 0, &s, 8, NULL, 0);
		fe_pump(&f);
		CHECK_EQ(fe_recv(&f, &m), 0);
		CHECK(!d.handed[0]);
		fe_state(&f, VH_VU_SET_VRING_NUM, 0, QSZ);
		fe_state(&f, VH_VU_SET_VRING_BASE, 0, 0);
		CHECK_EQ(vh_drvq_get_addrs(vq, &dg, &ag, &ug), 0);
		memset(&a, 0, sizeof(a));
		a.desc = fe_mem_uva(&fm, dg);
		a.avail = fe_mem_uva(&fm, ag);
		a.used = fe_mem_uva(&fm, ug);
		fe_do(&f, VH_VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
		v = 0;
		fe_do(&f, VH_VU_SET_VRING_KICK, &v, 8, &k2, 1);
		close(k2);
		fe_state(&f, VH_VU_SET_VRING_ENABLE, 0, 1);
		CHECK(d.handed[0]);
		fe_state(&f, VH_VU_VRING_KICK, 0, 0);
		CHECK_EQ(d.processed, 0);
		CHECK(vh_devq_is_broken(vh_vu_backend_get_vring(f.be, 0)));
		CHECK(read(errfd, &v, 8) == 8);
		CHECK_EQ(v, 1);
		/* and once */
		fe_state(&f, VH_VU_VRING_KICK, 0, 0);
		CHECK(read(errfd, &v, 8) < 0 && errno == EAGAIN);
	}
	/* a fresh start of the ring (RESET_DEVICE) clears the broken state */
	CHECK_EQ(fe_ack(&f, VH_VU_RESET_DEVICE, NULL, 0, NULL, 0), 0);
	CHECK(!vh_devq_is_broken(vh_vu_backend_get_vring(f.be, 0)));

	/*
	 * A new error eventfd, blocking and with its counter at the maximum
	 * (0xfffffffffffffffe), where any write would wait: the back-end
	 * makes it non-blocking (the file is shared), and the report below
	 * then fails with EAGAIN instead of holding the dispatch for ever
	 * (alarm() in main() catches a hang).
	 */
	close(errfd);
	errfd = eventfd(0, EFD_CLOEXEC);
	CHECK(errfd >= 0);
	v = 0xfffffffffffffffeull;
	CHECK(write(errfd, &v, 8) == 8);
	CHECK(!(fcntl(errfd, F_GETFL) & O_NONBLOCK));
	v = 0;
	fe_do(&f, VH_VU_SET_VRING_ERR, &v, 8, &errfd, 1);
	CHECK(fcntl(errfd, F_GETFL) & O_NONBLOCK);

	/* avail index QSZ + 1 ahead of last_avail_idx */
	vh_drvq_unref(vq);
	close(kick);
	close(call);
	fe_ring(&f, &fm, 0, &vq, &kick, &call, true);
	fe_state(&f, VH_VU_SET_VRING_ENABLE, 0, 1);
	CHECK_EQ(vh_drvq_get_host_addrs(vq, &desc, &avail, &used), 0);
	ap = avail;
	__atomic_store_n(&ap[1], QSZ + 1, __ATOMIC_RELEASE);
	fe_state(&f, VH_VU_VRING_KICK, 0, 0);
	CHECK_EQ(d.processed, 0);
	CHECK(vh_devq_is_broken(vh_vu_backend_get_vring(f.be, 0)));
	CHECK(vh_vu_backend_connected(f.be));
	/* the counter was full: that report was lost, not waited for */
	CHECK(read(errfd, &v, 8) == 8);
	CHECK_EQ(v, 0xfffffffffffffffeull);
	CHECK_EQ(vh_vu_backend_vring_error(f.be, 0), 1);
	CHECK(read(errfd, &v, 8) == 8);
	CHECK_EQ(v, 1);

	vh_drvq_unref(vq);
	close(kick);
	close(call);
	close(errfd);
	vh_mem_unref(fm.mem);
	fe_fini(&f);
}

/* ------------------------------------------------------------------------ */
/* full data path: a front-end thread, the back-end in this one            */
/* ------------------------------------------------------------------------ */
#define DP_ROUNDS 2000

struct dp {
	struct fe *f;
	int done;
	int failed;
};

static void *dp_frontend(void *arg)
{
	struct dp *dp = arg;
	struct fe *f = dp->f;
	struct fe_mem fm;
	struct vh_drvq *vq;
	int kick, call, i;
	uint64_t v;

	fe_mem_init(f, &fm, 0x100000000ull, 4 << 20);
	for (i = 0; i < DP_ROUNDS; i++) {
		struct vh_sg sg[3];
		uint32_t len, n = 1 + (uint32_t)(i * 37) % 3000, k;
		uint64_t out = fm.gpa + 0x100000, in = fm.gpa + 0x200000;
		void *tok;
		struct pollfd p;

		if (i == 0) {
			/* the control plane runs from this thread */
			struct vh_vu_vring_addr a;
			uint64_t dg, ag, ug;

			CHECK_EQ(vh_drvq_new(f->ctx, fm.mem, 1, QSZ,
					   fm.gpa + 0x1000, &vq),
				 0);
			CHECK_EQ(vh_drvq_get_addrs(vq, &dg, &ag, &ug), 0);
			vh_drvq_set_features(
				vq, 1ull << VH_VU_VIRTIO_F_RING_EVENT_IDX);
			/* the main thread pumps: only send here */
			{
				struct vh_vu_mem_table t;

				memset(&t, 0, sizeof(t));
				t.nregions = 1;
				t.regions[0].guest_addr = fm.gpa;
				t.regions[0].size = fm.size;
				t.regions[0].user_addr = fm.uva;
				fe_send_raw(f, VH_VU_SET_MEM_TABLE, 0, &t, 40,
					    &fm.fd, 1);
			}
			v = (1ull << VH_VU_VIRTIO_F_VERSION_1) |
			    (1ull << VH_VU_VIRTIO_F_RING_EVENT_IDX);
			fe_send_raw(f, VH_VU_SET_FEATURES, 0, &v, 8, NULL, 0);
			{
				struct vh_vu_vring_state s = { 1, QSZ };

				fe_send_raw(f, VH_VU_SET_VRING_NUM, 0, &s, 8,
					    NULL, 0);
			}
			memset(&a, 0, sizeof(a));
			a.index = 1;
			a.desc = fe_mem_uva(&fm, dg);
			a.avail = fe_mem_uva(&fm, ag);
			a.used = fe_mem_uva(&fm, ug);
			fe_send_raw(f, VH_VU_SET_VRING_ADDR, 0, &a, sizeof(a),
				    NULL, 0);
			kick = test_efd();
			call = test_efd();
			vh_drvq_set_kick_fd(vq, kick);
			vh_drvq_set_call_fd(vq, call);
			v = 1;
			fe_send_raw(f, VH_VU_SET_VRING_CALL, 0, &v, 8, &call,
				    1);
			fe_send_raw(f, VH_VU_SET_VRING_KICK, 0, &v, 8, &kick,
				    1);
		}
		/* split over two readable descriptors and one writable */
		for (k = 0; k < n; k++)
			fm.host[0x100000 + k] = (uint8_t)(k * 7 + i);
		sg[0].addr = out;
		sg[0].len = n / 2 ? n / 2 : 1;
		sg[1].addr = out + sg[0].len;
		sg[1].len = n - sg[0].len ? n - sg[0].len : 1;
		sg[2].addr = in;
		sg[2].len = 4096;
		if (n == 1)
			sg[1].len = 1, fm.host[0x100001] = (uint8_t)(7 + i);
		n = sg[0].len + sg[1].len;
		CHECK_EQ(vh_drvq_add(vq, sg, 2, 1, (void *)(uintptr_t)(i + 1)),
			 0);
		vh_drvq_kick(vq);
		/* wait for the call */
		for (;;) {
			int r = vh_drvq_get_used(vq, &tok, &len);

			CHECK(r >= 0);
			if (r == 1)
				break;
			p.fd = call;
			p.events = POLLIN;
			CHECK(poll(&p, 1, 5000) == 1);
			CHECK(read(call, &v, 8) == 8);
		}
		CHECK(tok == (void *)(uintptr_t)(i + 1));
		CHECK_EQ(len, n);
		for (k = 0; k < n; k++) {
			unsigned int want = 0xffu &
					    (0xffu ^ fm.host[0x100000 + k]);

			if (fm.host[0x200000 + k] == want)
				continue;
			{
				fprintf(stderr, "round %d byte %u differs\n", i,
					k);
				dp->failed = 1;
				break;
			}
		}
		if (dp->failed)
			break;
	}
	vh_drvq_unref(vq);
	vh_mem_unref(fm.mem);
	__atomic_store_n(&dp->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_datapath(void)
{
	struct fe f;
	struct dev d;
	struct dp dp = { 0 };
	pthread_t t;
	struct pollfd p;

	/* no protocol features: rings enabled by SET_FEATURES */
	dev_init(&d);
	fe_init(&f, &test_dev, &dev_ops, &d);
	d.be = f.be;
	dp.f = &f;
	CHECK_EQ(pthread_create(&t, NULL, dp_frontend, &dp), 0);
	p.fd = vh_vu_backend_get_fd(f.be);
	p.events = POLLIN;
	while (!__atomic_load_n(&dp.done, __ATOMIC_ACQUIRE)) {
		int r;

		if (poll(&p, 1, 100) <= 0)
			continue;
		r = vh_vu_backend_dispatch(f.be);
		CHECK(r == 0 || r == -EAGAIN);
	}
	pthread_join(t, NULL);
	CHECK(!dp.failed);
	CHECK_EQ(d.processed, DP_ROUNDS);
	CHECK(d.handed[1]);
	fe_fini(&f);
	/* unref stopped the ring for the device */
	CHECK(!d.handed[1]);
}

/* ------------------------------------------------------------------------ */
/* Pages of [p, p + len) in memory (a memfd's: allocated). */
static unsigned int resident_pages(void *p, size_t len)
{
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), i, n = (len + pg - 1) / pg;
	unsigned char *vec = calloc(n, 1);
	unsigned int k = 0;

	CHECK(vec != NULL);
	CHECK_EQ(mincore(p, len, vec), 0);
	for (i = 0; i < n; i++)
		k += vec[i] & 1;
	free(vec);
	return k;
}

/*
 * GET_INFLIGHT_FD: the region's geometry, its pages left for the queues to
 * write (a front-end asking again and again holds no memory of ours), the
 * same region handed back after a reconnect, a wrong size refused.
 */
static void test_inflight(void)
{
	struct vh_vu_inflight in = { 0 };
	struct vh_vu_msg m;
	struct fe f;
	struct dev d;
	uint8_t *p;
	void *region;
	size_t len;
	int fd;

	setup(&f, &d, ALL_PROTO);
	in.num_queues = NQ;
	in.queue_size = 256;
	fe_send_raw(&f, VH_VU_GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0);
	fe_pump(&f);
	CHECK_EQ(fe_recv(&f, &m), 0);
	CHECK_EQ(m.hdr.size, sizeof(in));
	CHECK_EQ(m.nfds, 1);
	/* per queue: 16-byte header + 256 * 16, 64-byte aligned */
	CHECK_EQ(m.payload.inflight.mmap_size, NQ * 4160);
	CHECK_EQ(m.payload.inflight.mmap_offset, 0);
	CHECK_EQ(m.payload.inflight.num_queues, NQ);
	CHECK_EQ(m.payload.inflight.queue_size, 256);
	fd = m.fds[0];
	p = mmap(NULL, NQ * 4160, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK(p != MAP_FAILED);
	/*
	 * An uninitialized buffer (version 0), not a page of it written by
	 * the back-end: a queue initializes it when it first uses it
	 */
	CHECK_EQ(resident_pages(p, NQ * 4160), 0);
	CHECK_EQ(u16_at(p + 8), 0);
	CHECK_EQ(u16_at(p + 10), 0);
	CHECK_EQ(vh_vu_backend_get_inflight(f.be, 1, &region, &len), 0);
	CHECK_EQ(len, 4160);
	((uint8_t *)region)[16] = 1; /* desc[0].inflight of queue 1 */
	CHECK_EQ(p[4160 + 16], 1);

	/* after a reconnect the front-end hands the same region back */
	close(f.sock);
	fe_pump(&f);
	CHECK_EQ(vh_vu_backend_get_inflight(f.be, 0, &region, &len), -ENOENT);
	fe_connect(&f);
	fe_negotiate(&f, ALL_PROTO);
	in = m.payload.inflight;
	CHECK_EQ(fe_ack(&f, VH_VU_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1), 0);
	CHECK_EQ(vh_vu_backend_get_inflight(f.be, 1, &region, &len), 0);
	CHECK_EQ(((uint8_t *)region)[16], 1);
	/* a wrong size is refused */
	in.mmap_size += 64;
	CHECK(fe_ack(&f, VH_VU_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1) != 0);
	munmap(p, NQ * 4160);
	close(fd);

	/* packed rings negotiated first: QueueRegionPacked, initialized */
	close(f.sock); /* the refusal ended the session anyway */
	fe_pump(&f);
	fe_connect(&f);
	fe_negotiate(&f, ALL_PROTO);
	{
		uint64_t feat = vh_vu_backend_get_features(f.be) |
				1ull << VH_VU_VIRTIO_F_RING_PACKED;
		unsigned int j;

		fe_do(&f, VH_VU_SET_FEATURES, &feat, 8, NULL, 0);
		in = (struct vh_vu_inflight){ .num_queues = NQ,
					      .queue_size = 256 };
		fe_send_raw(&f, VH_VU_GET_INFLIGHT_FD, 0, &in, sizeof(in),
			    NULL, 0);
		fe_pump(&f);
		CHECK_EQ(fe_recv(&f, &m), 0);
		CHECK_EQ(m.nfds, 1);
		/* per queue: 32-byte header + 256 * 32, 64-byte aligned */
		CHECK_EQ(m.payload.inflight.mmap_size, NQ * 8256);
		fd = m.fds[0];
		p = mmap(NULL, NQ * 8256, PROT_READ | PROT_WRITE, MAP_SHARED,
			 fd, 0);
		CHECK(p != MAP_FAILED);
		/* all zero and untouched too (vh_devq_set_inflight() sets it up) */
		CHECK_EQ(resident_pages(p, NQ * 8256), 0);
		for (j = 0; j < NQ * 8256; j++)
			CHECK_EQ(p[j], 0);
		CHECK_EQ(vh_vu_backend_get_inflight(f.be, 1, &region, &len),
			 0);
		CHECK_EQ(len, 8256);
		CHECK(region == p + 8256 ||
		      memcmp(region, p + 8256, 8256) == 0);
		munmap(p, NQ * 8256);
		close(fd);
	}
	fe_fini(&f);
}

/* A started ring writes to the region: it is not replaced under it. */
static void test_inflight_busy(void)
{
	struct vh_vu_inflight in = { .num_queues = NQ, .queue_size = QSZ };
	struct vh_vu_msg m;
	struct fe_mem fm;
	struct vh_drvq *vq;
	struct fe f;
	struct dev d;
	int k, c, fd;

	setup(&f, &d, ALL_PROTO);
	fe_send_raw(&f, VH_VU_GET_INFLIGHT_FD, 0, &in, sizeof(in), NULL, 0);
	fe_pump(&f);
	CHECK_EQ(fe_recv(&f, &m), 0);
	CHECK_EQ(m.nfds, 1);
	fd = m.fds[0];
	in = m.payload.inflight;
	fe_mem_init(&f, &fm, 0x40000000, 1 << 20);
	fe_set_mem(&f, &fm);
	fe_ring(&f, &fm, 0, &vq, &k, &c, true);
	CHECK(fe_ack(&f, VH_VU_SET_INFLIGHT_FD, &in, sizeof(in), &fd, 1) != 0);
	close(fd);
	vh_drvq_unref(vq);
	close(k);
	close(c);
	vh_mem_unref(fm.mem);
	fe_fini(&f);
}

static void test_device_state(void)
{
	struct vh_vu_device_state ds = { VH_VU_TRANSFER_SAVE,
					 VH_VU_PHASE_STOPPED };
	struct vh_vu_msg m;
	struct fe f;
	struct dev d;
	char buf[16] = { 0 };
	int p[2];

	setup(&f, &d, ALL_PROTO);
	/* save: the device writes into our pipe and gives its own back */
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	fe_send_raw(&f, VH_VU_SET_DEVICE_STATE_FD, 0, &ds, 8, &p[1], 1);
	close(p[1]);
	fe_pump(&f);
	CHECK_EQ(fe_recv(&f, &m), 0);
	CHECK_EQ(m.payload.u64, 0); /* success, fd returned */
	CHECK_EQ(m.nfds, 1);
	CHECK_EQ(read(p[0], buf, sizeof(buf)), 7);
	CHECK(!memcmp(buf, "STATE42", 7));
	CHECK_EQ(read(m.fds[0], buf, sizeof(buf)), 3);
	close(p[0]);
	vh_vu_msg_close_fds(&m);
	CHECK_EQ(fe_u64(&f, VH_VU_CHECK_DEVICE_STATE, 0, NULL, 0, NULL, 0), 0);

	/* load: we write, the device checks in CHECK_DEVICE_STATE */
	ds.direction = VH_VU_TRANSFER_LOAD;
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK_EQ(fe_u64(&f, VH_VU_SET_DEVICE_STATE_FD, 0, &ds, 8, &p[0], 1),
		 VH_VU_DEVICE_STATE_NOFD);
	close(p[0]);
	CHECK(write(p[1], "HELLO", 5) == 5);
	close(p[1]);
	CHECK_EQ(fe_u64(&f, VH_VU_CHECK_DEVICE_STATE, 0, NULL, 0, NULL, 0), 0);
	/* a bad stream fails the check */
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	fe_u64(&f, VH_VU_SET_DEVICE_STATE_FD, 0, &ds, 8, &p[0], 1);
	close(p[0]);
	CHECK(write(p[1], "JUNK!", 5) == 5);
	close(p[1]);
	CHECK(fe_u64(&f, VH_VU_CHECK_DEVICE_STATE, 0, NULL, 0, NULL, 0) != 0);
	/* unknown phase: error and NOFD */
	ds.phase = 1;
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK_EQ(fe_u64(&f, VH_VU_SET_DEVICE_STATE_FD, 0, &ds, 8, &p[0], 1),
		 1 | VH_VU_DEVICE_STATE_NOFD);
	close(p[0]);
	close(p[1]);
	fe_fini(&f);
}

static void test_shared_object(void)
{
	struct vh_vu_shared s;
	struct vh_vu_msg m;
	struct fe f;
	struct dev d;

	setup(&f, &d, ALL_PROTO);
	memset(&s, 0, sizeof(s));
	s.uuid[0] = 0xab;
	fe_send_raw(&f, VH_VU_GET_SHARED_OBJECT, 0, &s, 16, NULL, 0);
	fe_pump(&f);
	CHECK_EQ(fe_recv(&f, &m), 0);
	CHECK_EQ(m.payload.u64, 0);
	CHECK_EQ(m.nfds, 1);
	vh_vu_msg_close_fds(&m);
	s.uuid[0] = 0xcd;
	fe_send_raw(&f, VH_VU_GET_SHARED_OBJECT, 0, &s, 16, NULL, 0);
	fe_pump(&f);
	CHECK_EQ(fe_recv(&f, &m), 0);
	CHECK(m.payload.u64 != 0);
	CHECK_EQ(m.nfds, 0);
	fe_fini(&f);
}

/* ------------------------------------------------------------------------ */
/* back-end -> front-end requests                                           */
/* ------------------------------------------------------------------------ */
struct req_peer {
	struct vh_ctx *ctx;
	int fd;
	int n;
	uint32_t req[16];
	uint64_t u64[16];
	uint8_t uuid0[16];
	int got_fd[16];
	uint64_t answer; /* ack value */
};

/* The front-end side of the channel: answer n requests. */
static void *req_peer_run(void *arg)
{
	struct req_peer *rp = arg;
	struct vh_vu_msg m;
	int i;

	for (i = 0; i < rp->n; i++) {
		struct pollfd p = { .fd = rp->fd, .events = POLLIN };

		CHECK(poll(&p, 1, 5000) == 1);
		CHECK_EQ(vh_vu_msg_recv(rp->ctx, rp->fd, &m), 0);
		rp->req[i] = m.hdr.request;
		rp->u64[i] = m.payload.u64;
		rp->uuid0[i] = m.payload.shared.uuid[0];
		rp->got_fd[i] = m.nfds ? 1 : 0;
		vh_vu_msg_close_fds(&m);
		if (m.hdr.request == VH_VU_BACKEND_SHARED_OBJECT_LOOKUP) {
			int efd = eventfd(0, EFD_CLOEXEC);

			vh_vu_msg_set_reply_u64(&m, 0);
			m.fds[0] = efd;
			m.nfds = 1;
			CHECK_EQ(vh_vu_msg_send(rp->ctx, rp->fd, &m), 0);
			close(efd);
		} else if (m.hdr.flags & VH_VU_FLAG_NEED_REPLY) {
			vh_vu_msg_set_reply_u64(
				&m, i == rp->n - 1 ? rp->answer : 0);
			CHECK_EQ(vh_vu_msg_send(rp->ctx, rp->fd, &m), 0);
		}
	}
	return NULL;
}

static void test_backend_requests(void)
{
	uint8_t uuid[16] = { 0x11 };
	struct req_peer rp = { 0 };
	struct fe f;
	struct dev d;
	pthread_t t;
	int sv[2], efd, fd, p[2];

	setup(&f, &d, ALL_PROTO);
	/* no channel yet */
	CHECK_EQ(vh_vu_backend_config_change(f.be), -ENOTCONN);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK_EQ(fe_ack(&f, VH_VU_SET_BACKEND_REQ_FD, NULL, 0, &sv[1], 1), 0);
	close(sv[1]);

	rp.ctx = f.ctx;
	rp.fd = sv[0];
	rp.n = 8;
	rp.answer = 1; /* the last one fails */
	CHECK_EQ(pthread_create(&t, NULL, req_peer_run, &rp), 0);
	CHECK_EQ(vh_vu_backend_config_change(f.be), 0);
	efd = eventfd(0, EFD_CLOEXEC);
	CHECK_EQ(vh_vu_backend_host_notifier(f.be, 1, efd, 4096, 0), 0);
	close(efd);
	CHECK_EQ(vh_vu_backend_host_notifier(f.be, 1, -1, 0, 0), 0);
	CHECK_EQ(vh_vu_backend_vring_call(f.be, 0), 0);
	CHECK_EQ(vh_vu_backend_vring_err(f.be, 1), 0);
	CHECK_EQ(vh_vu_backend_shared_object_add(f.be, uuid), 0);
	CHECK_EQ(vh_vu_backend_shared_object_lookup(f.be, uuid, &fd), 0);
	CHECK(fd >= 0);
	close(fd);
	CHECK_EQ(vh_vu_backend_shared_object_remove(f.be, uuid), -EIO);
	/* IOTLB needs ACCESS_PLATFORM, which was not negotiated here */
	CHECK_EQ(vh_vu_backend_iotlb_msg(f.be, 0x1000, VH_ACCESS_RO,
					 VH_IOTLB_MISS),
		 -EOPNOTSUPP);
	pthread_join(t, NULL);
	CHECK_EQ(rp.req[0], VH_VU_BACKEND_CONFIG_CHANGE_MSG);
	CHECK_EQ(rp.req[1], VH_VU_BACKEND_VRING_HOST_NOTIFIER_MSG);
	CHECK_EQ(rp.u64[1], 1);
	CHECK_EQ(rp.got_fd[1], 1);
	CHECK_EQ(rp.u64[2], 1 | VH_VU_VRING_NOFD);
	CHECK_EQ(rp.got_fd[2], 0);
	CHECK_EQ(rp.req[3], VH_VU_BACKEND_VRING_CALL);
	CHECK_EQ(rp.req[4], VH_VU_BACKEND_VRING_ERR);
	CHECK_EQ(rp.u64[4], 1); /* index 1, num 0 */
	CHECK_EQ(rp.req[5], VH_VU_BACKEND_SHARED_OBJECT_ADD);
	CHECK_EQ(rp.uuid0[5], 0x11);
	CHECK_EQ(rp.req[6], VH_VU_BACKEND_SHARED_OBJECT_LOOKUP);
	CHECK_EQ(rp.req[7], VH_VU_BACKEND_SHARED_OBJECT_REMOVE);
	close(sv[0]);
	fe_fini(&f);

	/* a plain pipe as channel: requests without fds work, no replies */
	setup(&f, &d, ALL_PROTO & ~P(REPLY_ACK) & ~P(INBAND_NOTIFICATIONS));
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	fe_do(&f, VH_VU_SET_BACKEND_REQ_FD, NULL, 0, &p[1], 1);
	close(p[1]);
	CHECK_EQ(vh_vu_backend_config_change(f.be), 0);
	{
		struct vh_vu_hdr h;

		CHECK(read(p[0], &h, sizeof(h)) == sizeof(h));
		CHECK_EQ(h.request, VH_VU_BACKEND_CONFIG_CHANGE_MSG);
		CHECK_EQ(h.flags, VH_VU_VERSION);
		CHECK_EQ(h.size, 0);
	}
	efd = eventfd(0, EFD_CLOEXEC);
	CHECK_EQ(vh_vu_backend_host_notifier(f.be, 0, efd, 4096, 0),
		 -EOPNOTSUPP);
	close(efd);
	/* INBAND_NOTIFICATIONS not negotiated */
	CHECK_EQ(vh_vu_backend_vring_call(f.be, 0), -EOPNOTSUPP);
	/*
	 * The reader gone: the next request fails with EPIPE, and SIGPIPE
	 * (default action: the end of this process) is neither delivered
	 * nor left pending
	 */
	close(p[0]);
	CHECK(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
	CHECK(vh_vu_backend_config_change(f.be) < 0);
	{
		sigset_t pend;

		CHECK_EQ(sigpending(&pend), 0);
		CHECK(!sigismember(&pend, SIGPIPE));
	}
	fe_fini(&f);
}

/*
 * Half a message: a dispatch returns at once (-EAGAIN) and the connection
 * stays; the rest, when it comes, completes it.  A message whose rest never
 * comes closes the connection VH_VU_MSG_TIMEOUT_MS after its first byte:
 * the back-end's fd wakes the caller's poll() for it.
 */
static void test_partial_message(void)
{
	struct vh_vu_hdr h = { VH_VU_GET_FEATURES, VH_VU_VERSION, 0 };
	struct vh_vu_msg m;
	struct pollfd p;
	int64_t t0, t;
	struct fe f;
	struct dev d;
	int r;

	dev_init(&d);
	fe_init(&f, &test_dev, &dev_ops, &d);
	d.be = f.be;
	/* a header in two pieces */
	CHECK(write(f.sock, &h, 4) == 4);
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_backend_dispatch(f.be), -EAGAIN);
	/* not held for the message deadline (5 s) */
	CHECK(vh_vu_now_ms() - t0 < 1000);
	CHECK(vh_vu_backend_connected(f.be));
	CHECK(write(f.sock, (char *)&h + 4, sizeof(h) - 4) == sizeof(h) - 4);
	fe_pump(&f);
	CHECK_EQ(fe_recv(&f, &m), 0);
	CHECK_EQ(m.hdr.request, VH_VU_GET_FEATURES);
	CHECK(m.payload.u64 & (1ull << 30));

	/* 4 bytes of a header, and nothing more */
	CHECK(write(f.sock, &h, 4) == 4);
	t0 = vh_vu_now_ms();
	CHECK_EQ(vh_vu_backend_dispatch(f.be), -EAGAIN);
	/* not held for the message deadline (5 s) */
	CHECK(vh_vu_now_ms() - t0 < 1000);
	CHECK(vh_vu_backend_connected(f.be));
	p.fd = vh_vu_backend_get_fd(f.be);
	p.events = POLLIN;
	do {
		CHECK(poll(&p, 1, 2 * VH_VU_MSG_TIMEOUT_MS) == 1);
		r = vh_vu_backend_dispatch(f.be);
	} while (r == -EAGAIN);
	t = vh_vu_now_ms() - t0;
	CHECK_EQ(r, -ETIMEDOUT);
	CHECK(t >= VH_VU_MSG_TIMEOUT_MS - 50 &&
	      t < VH_VU_MSG_TIMEOUT_MS + 2500);
	CHECK(fe_closed(&f));
	CHECK_EQ(d.resets, 1);
	fe_fini(&f);
}

/* ------------------------------------------------------------------------ */
/* the protocol trace (LOG_DEBUG) over hostile messages                     */
/* ------------------------------------------------------------------------ */
struct trace_seen {
	unsigned int lines;
	bool unknown; /* an unknown request traced with its number */
	bool decoded; /* a payload decoded (SET_VRING_ADDR) */
};

__attribute__((format(printf, 7, 0))) static void
trace_log(struct vh_ctx *ctx, void *data, int priority, const char *file,
	  int line, const char *fn, const char *format, va_list args)
{
	struct trace_seen *t = data;
	char buf[2048];

	/* formatted, as a real log function would: ASan sees every byte */
	vsnprintf(buf, sizeof(buf), format, args);
	if (strcmp(fn, "vhost-user") || strncmp(buf, "<- ", 3))
		return;
	t->lines++;
	if (!strncmp(buf, "<- request 77", 13))
		t->unknown = true;
	if (strstr(buf, "SET_VRING_ADDR") && strstr(buf, " desc 0x"))
		t->decoded = true;
}

/* Read and drop whatever the back-end answered (fds closed). */
static void fe_drain(struct fe *f)
{
	struct vh_vu_msg m;

	while (!fe_quiet(f)) {
		if (vh_vu_msg_recv(f->ctx, f->sock, &m) < 0)
			break;
		vh_vu_msg_close_fds(&m);
	}
}

/*
 * Every request, and unknown ones, with payloads of many sizes (most of
 * them short of what the request needs) and random bytes and flags, traced
 * at LOG_DEBUG: the decoder reads only what the message holds (ASan), and
 * an unknown request is traced with its number.
 */
static void test_trace(void)
{
	static const uint32_t sizes[] = { 0,  1,  4,  6,  7,  8,   12,	16,
					  20, 24, 39, 40, 52, 100, 264, 4096 };
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))
	static uint8_t raw[VH_VU_HDR_SIZE + VH_VU_PAYLOAD_MAX];
	struct trace_seen t = { 0 };
	uint32_t rng = 0x12345678, req, i, k;
	struct fe f;
	struct dev d;

	dev_init(&d);
	fe_init(&f, &test_dev, &dev_ops, &d);
	d.be = f.be;
	vh_ctx_set_log_fn(f.ctx, trace_log, &t);
	vh_ctx_set_log_priority(f.ctx, LOG_DEBUG);
	fe_negotiate(&f, ALL_PROTO);
	for (req = 0; req <= VH_VU_REQUEST_MAX + 1; req++) {
		/* past the table: 77 and the largest id */
		uint32_t id = req < VH_VU_REQUEST_MAX  ? req :
			      req == VH_VU_REQUEST_MAX ? 77 :
							 0xffffffffu;

		for (i = 0; i < NSIZES; i++) {
			struct vh_vu_hdr h = { id, VH_VU_VERSION, sizes[i] };

			rng = rng * 1103515245u + 12345u;
			h.flags |= (rng >> 16) &
				   (VH_VU_FLAG_REPLY | VH_VU_FLAG_NEED_REPLY);
			memcpy(raw, &h, sizeof(h));
			for (k = 0; k < sizes[i]; k++) {
				rng = rng * 1103515245u + 12345u;
				raw[VH_VU_HDR_SIZE + k] = (uint8_t)(rng >> 16);
			}
			CHECK(write(f.sock, raw, VH_VU_HDR_SIZE + sizes[i]) ==
			      (ssize_t)(VH_VU_HDR_SIZE + sizes[i]));
			fe_pump(&f);
			fe_drain(&f);
			if (!vh_vu_backend_connected(f.be)) {
				close(f.sock);
				fe_connect(&f);
				fe_negotiate(&f, ALL_PROTO);
			}
		}
	}
	CHECK(t.lines >= (VH_VU_REQUEST_MAX + 2) * NSIZES);
	CHECK(t.unknown);
	CHECK(t.decoded);
	fe_fini(&f);
#undef NSIZES
}

/* The listening path: two connections one after the other. */
static void test_listen(void)
{
	char dir[] = "/tmp/test-vu-backend-XXXXXX", path[128];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct vh_ctx *ctx;
	struct vh_vu_backend *be;
	struct dev d;
	struct fe f;
	int i, s;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	dev_init(&d);
	CHECK_EQ(vh_ctx_new(&ctx), 0);
	CHECK_EQ(vh_vu_backend_new(ctx, &test_dev, &dev_ops, &d, &be), 0);
	CHECK_EQ(vh_vu_backend_listen(be, path), 0);
	strcpy(sun.sun_path, path);
	for (i = 0; i < 3; i++) {
		s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(connect(s, (struct sockaddr *)&sun, sizeof(sun)) == 0);
		f.ctx = ctx;
		f.be = be;
		f.sock = s;
		f.last = 0;
		fe_pump(&f);
		CHECK(vh_vu_backend_connected(be));
		if (i == 1) {
			/* a malformed header: closed, the next one is served */
			struct vh_vu_hdr h = { VH_VU_GET_FEATURES, 3, 0 };

			CHECK(write(s, &h, sizeof(h)) == sizeof(h));
			CHECK(fe_pump(&f) < 0);
			CHECK(fe_closed(&f));
			close(s);
			continue;
		}
		CHECK(fe_u64(&f, VH_VU_GET_FEATURES, 0, NULL, 0, NULL, 0) &
		      (1ull << 30));
		close(s);
		CHECK_EQ(fe_pump(&f), -ECONNRESET);
		CHECK(!vh_vu_backend_connected(be));
	}
	CHECK(vh_vu_backend_unref(be) == NULL);
	vh_ctx_unref(ctx);
	/* the socket went with the back-end */
	CHECK(access(path, F_OK) < 0);
	CHECK_EQ(rmdir(dir), 0);
}

/* Connect to path and let be accept: is be the one listening there? */
static bool serves(struct vh_vu_backend *be, const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct fe f = { .be = be };
	bool r;
	int s;

	strcpy(sun.sun_path, path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(s >= 0);
	if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
		close(s);
		return false;
	}
	fe_pump(&f);
	r = vh_vu_backend_connected(be);
	close(s);
	fe_pump(&f);
	CHECK(!vh_vu_backend_connected(be));
	return r;
}

/*
 * Who owns the socket path.  A second back-end on a live path is refused
 * (-EADDRINUSE) and the first keeps serving; one on a stale socket (its
 * back-end died) takes it.  A back-end freed after another took its path
 * (an overlapping restart: the path unlinked and listened on again) leaves
 * the other's socket alone.  A path as long as sun_path allows works.
 */
static void test_listen_owner(void)
{
	char dir[] = "/tmp/test-vu-backend-XXXXXX", path[128];
	char longp[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct vh_vu_backend *a, *b;
	struct vh_ctx *ctx;
	struct dev d;
	int s, n;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	dev_init(&d);
	CHECK_EQ(vh_ctx_new(&ctx), 0);
	CHECK_EQ(vh_vu_backend_new(ctx, &test_dev, &dev_ops, &d, &a), 0);
	CHECK_EQ(vh_vu_backend_new(ctx, &test_dev, &dev_ops, &d, &b), 0);
	CHECK_EQ(vh_vu_backend_listen(a, path), 0);
	CHECK_EQ(vh_vu_backend_listen(b, path), -EADDRINUSE);
	CHECK(serves(a, path));

	/* A's path unlinked and taken by B: A's unref leaves B's socket */
	CHECK_EQ(unlink(path), 0);
	CHECK_EQ(vh_vu_backend_listen(b, path), 0);
	CHECK(vh_vu_backend_unref(a) == NULL);
	CHECK(serves(b, path));
	CHECK(vh_vu_backend_unref(b) == NULL);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);

	/* a stale socket (bound, closed, not unlinked) is taken */
	strcpy(sun.sun_path, path);
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(bind(s, (struct sockaddr *)&sun, sizeof(sun)) == 0);
	CHECK(listen(s, 1) == 0);
	close(s);
	CHECK_EQ(vh_vu_backend_new(ctx, &test_dev, &dev_ops, &d, &a), 0);
	CHECK_EQ(vh_vu_backend_listen(a, path), 0);
	CHECK(serves(a, path));
	CHECK(vh_vu_backend_unref(a) == NULL);
	CHECK(access(path, F_OK) < 0 && errno == ENOENT);

	/*
	 * "<100-byte directory>/s": it fits sun_path, the temporary name
	 * beside it (".vu-<pid>-<ns>.tmp") does not
	 */
	n = snprintf(longp, sizeof(longp), "%s/", dir);
	memset(longp + n, 'l', 100 - (size_t)n);
	longp[100] = '\0';
	CHECK_EQ(mkdir(longp, 0700), 0);
	strcat(longp, "/s");
	CHECK_EQ(vh_vu_backend_new(ctx, &test_dev, &dev_ops, &d, &a), 0);
	CHECK_EQ(vh_vu_backend_listen(a, longp), 0);
	CHECK(serves(a, longp));
	CHECK(vh_vu_backend_unref(a) == NULL);
	CHECK(access(longp, F_OK) < 0 && errno == ENOENT);
	longp[100] = '\0';
	CHECK_EQ(rmdir(longp), 0);

	vh_ctx_unref(ctx);
	CHECK_EQ(rmdir(dir), 0);
}

/*
 * A ring restarted in new memory, NUM before ADDR (QEMU's order): the
 * addresses kept from before fit neither the memory nor (second round) a
 * larger size, and the ring waits for its new ones; the connection stays
 * (it was closed at SET_VRING_NUM) and the ring runs again from them.
 */
static void test_restart_new_mem(void)
{
	struct fe f;
	struct dev d;
	struct fe_mem fm, fm2;
	struct vh_drvq *vq, *vq2;
	struct vh_vu_msg m;
	struct vh_vu_vring_state s = { 0, 0 };
	struct vh_sg sg[2];
	uint8_t *buf;
	void *tok;
	uint32_t len;
	int kick, call, kick2, call2;

	setup(&f, &d, ALL_PROTO);
	fe_mem_init(&f, &fm, 0x40000000, 1 << 20);
	fe_mem_init(&f, &fm2, 0x80000000, 1 << 20);
	fe_set_mem(&f, &fm);
	fe_ring(&f, &fm, 0, &vq, &kick, &call, true);
	fe_state(&f, VH_VU_SET_VRING_ENABLE, 0, 1);
	CHECK(d.handed[0]);
	fe_send_raw(&f, VH_VU_GET_VRING_BASE, 0, &s, 8, NULL, 0);
	fe_pump(&f);
	CHECK_EQ(fe_recv(&f, &m), 0);
	CHECK(!d.handed[0]);
	fe_set_mem(&f, &fm2);
	fe_state(&f, VH_VU_SET_VRING_NUM, 0, QSZ);
	CHECK(vh_vu_backend_connected(f.be));
	fe_state(&f, VH_VU_SET_VRING_NUM, 0, 2 * QSZ);
	CHECK(vh_vu_backend_connected(f.be));
	CHECK(!d.handed[0]);
	/* the new ring, in the new memory: it runs */
	fe_ring(&f, &fm2, 0, &vq2, &kick2, &call2, true);
	CHECK(d.handed[0]);
	buf = fm2.host + 0x80000;
	memset(buf, 0x5a, 16);
	sg[0] = (struct vh_sg){ fm2.gpa + 0x80000, 16 };
	sg[1] = (struct vh_sg){ fm2.gpa + 0x81000, 16 };
	CHECK_EQ(vh_drvq_add(vq2, sg, 1, 1, (void *)1), 0);
	CHECK(vh_drvq_kick(vq2) >= 0);
	fe_pump(&f);
	CHECK_EQ(vh_drvq_get_used(vq2, &tok, &len), 1);
	CHECK_EQ(len, 16);
	CHECK_EQ(fm2.host[0x81000], 0xa5);
	vh_drvq_unref(vq);
	vh_drvq_unref(vq2);
	close(kick);
	close(call);
	close(kick2);
	close(call2);
	vh_mem_unref(fm.mem);
	vh_mem_unref(fm2.mem);
	fe_fini(&f);
}

/*
 * Ring 0 of QSZ entries in fm, split, its addresses sent as IOVAs (iova +
 * the offset in fm) under ACCESS_PLATFORM: NUM, BASE, ADDR.  The features
 * set.
 */
static uint64_t ring_at_iova(struct fe *f, struct fe_mem *fm, uint64_t iova)
{
	struct vh_vu_vring_addr a;
	uint64_t feat, dg, ag, ug;
	struct vh_drvq *vq;

	feat = fe_u64(f, VH_VU_GET_FEATURES, 0, NULL, 0, NULL, 0);
	CHECK(feat & (1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM));
	feat &= ~(1ull << VH_VU_VIRTIO_F_RING_PACKED);
	fe_do(f, VH_VU_SET_FEATURES, &feat, 8, NULL, 0);
	CHECK_EQ(vh_drvq_new(f->ctx, fm->mem, 0, QSZ, fm->gpa + 0x1000, &vq),
		 0);
	CHECK_EQ(vh_drvq_get_addrs(vq, &dg, &ag, &ug), 0);
	vh_drvq_unref(vq);
	fe_state(f, VH_VU_SET_VRING_NUM, 0, QSZ);
	fe_state(f, VH_VU_SET_VRING_BASE, 0, 0);
	memset(&a, 0, sizeof(a));
	a.desc = dg - fm->gpa + iova;
	a.avail = ag - fm->gpa + iova;
	a.used = ug - fm->gpa + iova;
	fe_do(f, VH_VU_SET_VRING_ADDR, &a, sizeof(a), NULL, 0);
	return feat;
}

/*
 * A ring at IOVAs that an IOTLB update maps read-only (its used ring
 * cannot be written): not handed to the device, and said once on the
 * error eventfd, where it was handed and every pop failed (-EACCES).
 */
static void test_iotlb_ring_ro(void)
{
	const uint64_t iova = 0x100000000ull;
	struct fe f;
	struct dev d;
	struct fe_mem fm;
	struct vh_vu_iotlb u;
	uint64_t v = 0, cnt = 0;
	int k, c, e;

	setup(&f, &d, ALL_PROTO);
	fe_mem_init(&f, &fm, 0x40000000, 1 << 20);
	fe_set_mem(&f, &fm);
	ring_at_iova(&f, &fm, iova);
	k = test_efd();
	c = test_efd();
	e = test_efd();
	fe_do(&f, VH_VU_SET_VRING_ERR, &v, 8, &e, 1);
	fe_do(&f, VH_VU_SET_VRING_CALL, &v, 8, &c, 1);
	fe_do(&f, VH_VU_SET_VRING_KICK, &v, 8, &k, 1);
	fe_state(&f, VH_VU_SET_VRING_ENABLE, 0, 1);
	/* no translation yet: waiting */
	CHECK(!d.handed[0]);
	memset(&u, 0, sizeof(u));
	u.iova = iova;
	u.size = 1 << 20;
	u.uaddr = fm.uva;
	u.perm = VH_ACCESS_RO;
	u.type = VH_IOTLB_UPDATE;
	CHECK_EQ(fe_u64(&f, VH_VU_IOTLB_MSG, 0, &u, sizeof(u), NULL, 0), 0);
	CHECK(!d.handed[0]);
	CHECK_EQ(read(e, &cnt, sizeof(cnt)), (ssize_t)sizeof(cnt));
	CHECK_EQ(cnt, 1);
	CHECK(vh_vu_backend_connected(f.be));
	/* writable now (an entry changes by invalidation): handed */
	u.type = VH_IOTLB_INVALIDATE;
	CHECK_EQ(fe_u64(&f, VH_VU_IOTLB_MSG, 0, &u, sizeof(u), NULL, 0), 0);
	u.type = VH_IOTLB_UPDATE;
	u.perm = VH_ACCESS_RW;
	CHECK_EQ(fe_u64(&f, VH_VU_IOTLB_MSG, 0, &u, sizeof(u), NULL, 0), 0);
	CHECK(d.handed[0]);
	close(k);
	close(c);
	close(e);
	vh_mem_unref(fm.mem);
	fe_fini(&f);
}

/*
 * SET_FEATURES that takes ACCESS_PLATFORM away from rings whose addresses
 * are IOVAs: they no longer map, and the rings wait for new addresses
 * (the connection was closed); the ring set up anew runs.
 */
static void test_features_stale_addr(void)
{
	const uint64_t iova = 0x100000000ull;
	const uint64_t ap = 1ull << VH_VU_VIRTIO_F_ACCESS_PLATFORM;
	struct fe f;
	struct dev d;
	struct fe_mem fm;
	struct vh_drvq *vq;
	uint64_t feat;
	int kick, call;

	setup(&f, &d, ALL_PROTO);
	fe_mem_init(&f, &fm, 0x40000000, 1 << 20);
	fe_set_mem(&f, &fm);
	feat = ring_at_iova(&f, &fm, iova) & ~ap;
	fe_do(&f, VH_VU_SET_FEATURES, &feat, 8, NULL, 0);
	CHECK(vh_vu_backend_connected(f.be));
	/* the ring anew, at the front-end's addresses: it is handed */
	fe_ring(&f, &fm, 0, &vq, &kick, &call, true);
	fe_state(&f, VH_VU_SET_VRING_ENABLE, 0, 1);
	CHECK(d.handed[0]);
	vh_drvq_unref(vq);
	close(kick);
	close(call);
	vh_mem_unref(fm.mem);
	fe_fini(&f);
}

/*
 * An fd the front-end attaches is closed without waiting for it: a TCP
 * socket with unsent data and a 15 s SO_LINGER on GET_FEATURES (which
 * takes no fd) held the dispatch for 15 s in its close().
 */
static void test_lingering_fd(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct linger lg = { .l_onoff = 1, .l_linger = 15 };
	static char junk[1 << 16];
	int l, c, s, small = 4096;
	struct vh_vu_msg m;
	int64_t t0, t;
	struct fe f;
	struct dev d;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(l >= 0);
	CHECK_EQ(setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)),
		 0);
	CHECK_EQ(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_EQ(getsockname(l, (struct sockaddr *)&a, &al), 0);
	CHECK_EQ(listen(l, 1), 0);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(c >= 0);
	CHECK_EQ(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	s = accept(l, NULL, NULL); /* never read: the data stays unsent */
	CHECK(s >= 0);
	CHECK_EQ(fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK), 0);
	while (write(c, junk, sizeof(junk)) > 0)
		;
	CHECK_EQ(errno, EAGAIN);
	CHECK_EQ(setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	dev_init(&d);
	fe_init(&f, &test_dev, &dev_ops, &d);
	d.be = f.be;
	fe_send_raw(&f, VH_VU_GET_FEATURES, 0, NULL, 0, &c, 1);
	close(c); /* the back-end's copy is the last one */
	t0 = vh_vu_now_ms();
	fe_pump(&f);
	t = vh_vu_now_ms() - t0;
	printf("a lingering socket attached to GET_FEATURES: dispatched in %lld ms\n",
	       (long long)t);
	CHECK(t < 2000);
	/* a request that takes no fd came with one: the connection goes */
	CHECK(fe_recv(&f, &m) < 0);
	CHECK(!vh_vu_backend_connected(f.be));
	fe_fini(&f);
	close(s);
	close(l);
}

int main(void)
{
	/* a back-end held in a blocking call fails the test, not hangs it */
	alarm(120);
	test_handshake();
	test_config();
	test_ring_states();
	test_features_refused();
	test_ring_size_layout();
	test_ring_refused();
	test_mem_reg_ring();
	test_restart_new_mem();
	test_iotlb_ring_ro();
	test_features_stale_addr();
	test_hostile_ring();
	test_datapath();
	test_inflight();
	test_inflight_busy();
	test_device_state();
	test_shared_object();
	test_backend_requests();
	test_partial_message();
	test_lingering_fd();
	test_trace();
	test_listen();
	test_listen_owner();
	return 0;
}
