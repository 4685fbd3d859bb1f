// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Our front-end against our back-end, over a real unix socket: the back-end
 * (vh_vu_backend, in a thread) runs a small "xor" device that answers each
 * chain by writing its readable bytes xor 0x5a into its writable buffers.
 * Checks negotiation, config space, status, the memory table, data through
 * the ring, and a back-end request (CONFIG_CHANGE_MSG) issued while the
 * front-end waits for its own reply (no deadlock).  Twice: with split rings,
 * then with packed rings (the device offers VIRTIO_F_RING_PACKED, the
 * front-end negotiates it, neither side branches on the layout).
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "libvhost.h"
#include "libvhost-vu-backend.h"
#include "test-util.h"

#define MEM_SIZE (2u << 20)
#define QSIZE 64
#define OUT_GPA 0x100000
#define IN_GPA 0x110000
#define LEN 3000

struct dev {
	struct vh_vu_backend *be;
	int stop_fd;
	uint8_t status;
	int config_changes_sent;
	int served;
};

static int dev_get_config(struct vh_vu_backend *be, void *data, uint32_t offset,
			  void *buf, uint32_t size)
{
	uint8_t *b = buf;
	uint32_t i;

	for (i = 0; i < size; i++)
		b[i] = (uint8_t)(0xc0 + offset + i);
	return 0;
}

static int dev_set_status(struct vh_vu_backend *be, void *data, uint8_t status)
{
	struct dev *d = data;
	int r;

	d->status = status;
	/* ask the front-end something while it waits for our ack */
	r = vh_vu_backend_config_change(d->be);
	if (r == 0)
		d->config_changes_sent++;
	return 0;
}

static void dev_kicked(struct vh_vu_backend *be, void *data, unsigned int idx,
		       struct vh_devq *vr)
{
	struct dev *d = data;
	struct iovec iov[8];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 8 };
	uint8_t tmp[LEN];

	while (vh_devq_pop(vr, &e) == 1) {
		size_t n = 0, k;
		unsigned int i;

		for (i = 0; i < e.out_num; i++) {
			k = iov[i].iov_len;
			if (k > sizeof(tmp) - n)
				k = sizeof(tmp) - n;
			memcpy(tmp + n, iov[i].iov_base, k);
			n += k;
		}
		for (k = 0; k < n; k++)
			tmp[k] ^= 0x5a;
		k = 0;
		for (i = e.out_num; i < e.out_num + e.in_num && k < n; i++) {
			size_t c = iov[i].iov_len < n - k ? iov[i].iov_len :
							      n - k;

			memcpy(iov[i].iov_base, tmp + k, c);
			k += c;
		}
		vh_devq_push(vr, e.id, (uint32_t)k);
		d->served++;
	}
	vh_devq_notify(vr);
}

static const struct vh_vu_device_ops dev_ops = {
	.size = sizeof(dev_ops),
	.get_config = dev_get_config,
	.set_status = dev_set_status,
	.queue_kicked = dev_kicked,
};

static void *backend_thread(void *arg)
{
	struct dev *d = arg;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = vh_vu_backend_get_fd(d->be), .events = POLLIN },
			{ .fd = d->stop_fd, .events = POLLIN },
		};
		int r;

		if (poll(pfd, 2, 10000) <= 0 || pfd[1].revents)
			break;
		r = vh_vu_backend_dispatch(d->be);
		if (r < 0 && r != -EAGAIN && r != -ECONNRESET)
			fprintf(stderr, "backend dispatch: %s\n", strerror(-r));
	}
	return NULL;
}

static int config_changes;

static int fe_config_change(struct vh_vu_frontend *fe, void *data)
{
	config_changes++;
	return 0;
}

static const struct vh_vu_frontend_ops fe_ops = {
	.size = sizeof(fe_ops),
	.config_change = fe_config_change,
};

static void run(bool packed)
{
	const struct vh_vu_device desc = {
		.size = sizeof(desc),
		.features = 1ull << VH_VU_VIRTIO_F_VERSION_1 |
			    (packed ? 1ull << VH_VU_VIRTIO_F_RING_PACKED : 0),
		.protocol_features =
			(1ull << VH_VU_PROTOCOL_F_MQ) |
			(1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |
			(1ull << VH_VU_PROTOCOL_F_CONFIG) |
			(1ull << VH_VU_PROTOCOL_F_BACKEND_REQ) |
			(1ull << VH_VU_PROTOCOL_F_STATUS) |
			(1ull << VH_VU_PROTOCOL_F_CONFIGURE_MEM_SLOTS),
		.num_queues = 1,
		.config_size = 32,
	};
	char dir[] = "/tmp/vufe-loop.XXXXXX", sock[64];
	struct vh_ctx *ctx;
	struct vh_vu_frontend *fe;
	struct vh_mem *mem;
	struct vh_drvq *vq;
	struct dev d = { 0 };
	pthread_t th;
	uint8_t *guest, cfg[8], status;
	uint64_t f, pf, one = 1;
	int kick, call, i, r;
	uint32_t len, base;
	void *token;
	struct vh_sg sg[2] = { { OUT_GPA, LEN }, { IN_GPA, LEN } };

	config_changes = 0;
	CHECK(mkdtemp(dir));
	snprintf(sock, sizeof(sock), "%s/vu.sock", dir);
	CHECK_EQ(vh_ctx_new(&ctx), 0);
	CHECK_EQ(vh_vu_backend_new(ctx, &desc, &dev_ops, &d, &d.be), 0);
	CHECK_EQ(vh_vu_backend_listen(d.be, sock), 0);
	d.stop_fd = eventfd(0, EFD_CLOEXEC);
	CHECK(d.stop_fd >= 0);
	CHECK(pthread_create(&th, NULL, backend_thread, &d) == 0);

	CHECK_EQ(vh_vu_frontend_new(ctx, &fe), 0);
	vh_vu_frontend_set_ops(fe, &fe_ops, NULL);
	CHECK_EQ(vh_vu_frontend_connect(fe, sock, 2000), 0);
	CHECK_EQ(vh_vu_frontend_negotiate(fe, ~0ull, ~0ull, &f, &pf), 0);
	CHECK(f & (1ull << VH_VU_VIRTIO_F_VERSION_1));
	CHECK_EQ(!!(f & (1ull << VH_VU_VIRTIO_F_RING_PACKED)), packed);
	CHECK(pf & (1ull << VH_VU_PROTOCOL_F_REPLY_ACK));
	CHECK(pf & (1ull << VH_VU_PROTOCOL_F_BACKEND_REQ));
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(fe), 0);

	/* config space, as the device computes it, at an offset */
	CHECK_EQ(vh_vu_frontend_get_config(fe, 4, cfg, sizeof(cfg)), 0);
	for (i = 0; i < (int)sizeof(cfg); i++)
		CHECK_EQ(cfg[i], 0xc0 + 4 + i);

	/* SET_STATUS: the device sends CONFIG_CHANGE before it acks */
	CHECK(pf & (1ull << VH_VU_PROTOCOL_F_STATUS));
	CHECK_EQ(vh_vu_frontend_set_status(fe, 0x0b), 0);
	CHECK_EQ(config_changes, 1);
	CHECK_EQ(vh_vu_frontend_get_status(fe, &status), 0);
	CHECK_EQ(status, 0x0b);

	/* memory and one ring */
	CHECK_EQ(vh_mem_new(ctx, &mem), 0);
	CHECK_EQ(vh_mem_add_memfd(mem, 0, MEM_SIZE, (void **)&guest), 0);
	CHECK_EQ(vh_drvq_new(ctx, mem, 0, QSIZE, 0, &vq), 0);
	CHECK_EQ(vh_drvq_set_features(vq, f), 0);
	kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	CHECK(kick >= 0 && call >= 0);
	CHECK_EQ(vh_drvq_set_kick_fd(vq, kick), 0);
	CHECK_EQ(vh_drvq_set_call_fd(vq, call), 0);
	CHECK_EQ(vh_vu_frontend_share_mem(fe, mem), 0);
	CHECK_EQ(vh_vu_frontend_setup_vq(fe, 0, vq, kick, call), 0);

	for (i = 0; i < 3; i++) {
		struct pollfd pfd = { .fd = call, .events = POLLIN };
		int k;

		for (k = 0; k < LEN; k++)
			guest[OUT_GPA + k] = (uint8_t)(k * 7 + i);
		memset(guest + IN_GPA, 0, LEN);
		CHECK_EQ(vh_drvq_add(vq, sg, 1, 1, &sg), 0);
		CHECK(vh_drvq_kick(vq) >= 0);
		r = 0;
		/*
		 * Drain the call eventfd after each wake-up, or an early
		 * notification keeps it readable and the wait spins through
		 * its budget at once.  Generous: ASan builds on a loaded
		 * 2-core machine are slow.
		 */
		for (k = 0; k < 400 && r == 0; k++) {
			r = vh_drvq_get_used(vq, &token, &len);
			if (r == 0 && poll(&pfd, 1, 50) > 0 &&
			    read(call, &one, sizeof(one)) < 0)
				one = 0;
		}
		CHECK_EQ(r, 1);
		CHECK(token == &sg);
		CHECK_EQ(len, LEN);
		for (k = 0; k < LEN; k++)
			CHECK_EQ(guest[IN_GPA + k], (uint8_t)(k * 7 + i) ^ 0x5a);
		if (read(call, &one, sizeof(one)) < 0)
			one = 0;
	}
	CHECK_EQ(vh_vu_frontend_get_vring_base(fe, 0, &base), 0);
	/* packed: 6 descriptors on, wrap counters still 1, in both halves */
	CHECK_EQ(base, packed ? 0x80068006u : 3);

	vh_vu_frontend_unref(fe);
	one = 1;
	CHECK(write(d.stop_fd, &one, sizeof(one)) == sizeof(one));
	CHECK(pthread_join(th, NULL) == 0);
	CHECK_EQ(d.served, 3);
	CHECK_EQ(d.config_changes_sent, 1);
	vh_vu_backend_unref(d.be);
	vh_drvq_unref(vq);
	vh_mem_unref(mem);
	close(kick);
	close(call);
	close(d.stop_fd);
	vh_ctx_unref(ctx);
	rmdir(dir);
	printf("loopback %s: config, status + back-end request, 3 chains\n",
	       packed ? "packed" : "split");
}

int main(void)
{
	run(false);
	run(true);
	return 0;
}
