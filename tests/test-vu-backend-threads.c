// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * vhost-user back-end with a threaded device, the usual shape of a real
 * one: each handed ring gets a worker thread that polls the kick eventfd
 * itself (no queue_kicked callback) and pops/pushes; queue_stopped joins it.
 * A front-end thread runs traffic and, in the middle of it, changes the
 * memory table (SET_MEM_TABLE again, ADD_MEM_REG / REM_MEM_REG of another
 * region), re-sends SET_VRING_CALL and toggles LOG_ALL with SET_FEATURES:
 * every change takes the ring back from the worker and hands it over
 * again, and every byte of every round trip must still be right.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libvhost.h"
#include "vu-msg.h"
#include "test-util.h"
#include "test-vu-backend-util.h"

#define QSZ 128
#define ROUNDS 3000
#define P(x) (1ull << VH_VU_PROTOCOL_F_##x)

struct worker {
	pthread_t thread;
	struct vh_devq *vr;
	struct vh_vu_backend *be;
	unsigned int idx;
	int stop;
	unsigned long done;
};

struct dev {
	struct vh_vu_backend *be;
	struct worker w[2];
	int running[2];
	unsigned int starts, stops, mem_updates;
	unsigned long done;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	struct iovec iov[8];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 8 };
	struct pollfd p = { .fd = vh_devq_get_kick_fd(w->vr),
			    .events = POLLIN };

	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE)) {
		int r;

		/* kicks that came before the hand-over are still counted */
		vh_devq_read_kick(w->vr);
		while ((r = vh_devq_pop(w->vr, &e)) == 1) {
			uint8_t buf[4096];
			size_t n = 0, k, o = 0;
			unsigned int i;

			for (i = 0; i < e.out_num; i++) {
				k = iov[i].iov_len;
				if (n + k > sizeof(buf))
					k = sizeof(buf) - n;
				memcpy(buf + n, iov[i].iov_base, k);
				n += k;
			}
			for (i = 0; i < n; i++)
				buf[i] = (uint8_t)(buf[i] + 1);
			for (i = e.out_num; i < e.out_num + e.in_num && o < n;
			     i++) {
				k = iov[i].iov_len < n - o ? iov[i].iov_len :
							     n - o;
				memcpy(iov[i].iov_base, buf + o, k);
				o += k;
			}
			CHECK_EQ(vh_devq_push(w->vr, e.id, (uint32_t)o), 0);
			w->done++;
		}
		CHECK(r == 0);
		vh_vu_backend_notify(w->be, w->idx);
		poll(&p, 1, 20);
	}
	return NULL;
}

static int d_started(struct vh_vu_backend *be, void *data, unsigned int idx,
		     struct vh_devq *vr)
{
	struct dev *d = data;
	struct worker *w = &d->w[idx];

	CHECK(!d->running[idx]);
	w->vr = vr;
	w->be = d->be;
	w->idx = idx;
	w->stop = 0;
	w->done = 0;
	CHECK_EQ(pthread_create(&w->thread, NULL, worker_run, w), 0);
	d->running[idx] = 1;
	d->starts++;
	return 0;
}

static void d_stopped(struct vh_vu_backend *be, void *data, unsigned int idx,
		      struct vh_devq *vr)
{
	struct dev *d = data;
	struct worker *w = &d->w[idx];

	CHECK(d->running[idx]);
	__atomic_store_n(&w->stop, 1, __ATOMIC_RELEASE);
	pthread_join(w->thread, NULL);
	d->done += w->done;
	d->running[idx] = 0;
	d->stops++;
}

static void d_mem(struct vh_vu_backend *be, void *data)
{
	struct dev *d = data;

	/* the memory changes only while no worker runs */
	CHECK(!d->running[0] && !d->running[1]);
	d->mem_updates++;
}

static const struct vh_vu_device_ops ops = {
	.size = sizeof(ops),
	.queue_started = d_started,
	.queue_stopped = d_stopped,
	.memory_updated = d_mem,
};

static const struct vh_vu_device devdesc = {
	.size = sizeof(devdesc),
	.features = (1ull << VH_VU_VIRTIO_F_VERSION_1) |
		    (1ull << VH_VU_VIRTIO_F_RING_EVENT_IDX) |
		    (1ull << VH_VU_VHOST_F_LOG_ALL),
	.protocol_features = P(MQ) | P(REPLY_ACK) | P(CONFIGURE_MEM_SLOTS) |
			     P(LOG_SHMFD),
	.num_queues = 2,
};

struct fe_thread {
	struct fe *f;
	int done;
	unsigned int changes;
};

/* Send a request with NEED_REPLY and wait for the ack (main thread pumps). */
static uint64_t ack(struct fe *f, uint32_t req, const void *p, uint32_t size,
		    const int *fds, unsigned int nfds)
{
	struct vh_vu_msg m;
	struct pollfd pf = { .fd = f->sock, .events = POLLIN };

	fe_send_raw(f, req, VH_VU_FLAG_NEED_REPLY, p, size, fds, nfds);
	CHECK(poll(&pf, 1, 5000) == 1);
	CHECK_EQ(vh_vu_msg_recv(f->ctx, f->sock, &m), 0);
	CHECK_EQ(m.hdr.request, req);
	return m.payload.u64;
}

static void *frontend(void *arg)
{
	struct fe_thread *ft = arg;
	struct fe *f = ft->f;
	struct fe_mem fm, fm2;
	struct vh_vu_mem_table t;
	struct vh_vu_vring_addr a;
	struct vh_vu_vring_state s;
	struct vh_vu_mem_single one;
	struct vh_vu_log log = { 4096, 0 };
	struct vh_drvq *vq;
	uint64_t dg, ag, ug, v, feat;
	int kick, call, logfd, i;

	fe_mem_init(f, &fm, 0x200000000ull, 2 << 20);
	fe_mem_init(f, &fm2, 0x300000000ull, 1 << 20);
	memset(&t, 0, sizeof(t));
	t.nregions = 1;
	t.regions[0].guest_addr = fm.gpa;
	t.regions[0].size = fm.size;
	t.regions[0].user_addr = fm.uva;
	memset(&one, 0, sizeof(one));
	one.region.guest_addr = fm2.gpa;
	one.region.size = fm2.size;
	one.region.user_addr = fm2.uva;
	/*
	 * a log covering fm, the memory when it is set (a shorter one is
	 * refused), not fm2: ADD_MEM_REG adds fm2 while logging is off, as
	 * after a migration that ended, and a log left mapped from it has
	 * nothing to cover then
	 */
	log.size = vh_mem_log_size_for(fm.gpa + fm.size);
	logfd = memfd_create("log", MFD_CLOEXEC);
	CHECK(logfd >= 0 && ftruncate(logfd, (off_t)log.size) == 0);

	v = P(MQ) | P(REPLY_ACK) | P(CONFIGURE_MEM_SLOTS) | P(LOG_SHMFD);
	fe_send_raw(f, VH_VU_SET_PROTOCOL_FEATURES, 0, &v, 8, NULL, 0);
	feat = (1ull << VH_VU_VIRTIO_F_VERSION_1) |
	       (1ull << VH_VU_VIRTIO_F_RING_EVENT_IDX) |
	       (1ull << VH_VU_F_PROTOCOL_FEATURES);
	CHECK_EQ(ack(f, VH_VU_SET_FEATURES, &feat, 8, NULL, 0), 0);
	CHECK_EQ(ack(f, VH_VU_SET_MEM_TABLE, &t, 40, &fm.fd, 1), 0);
	CHECK_EQ(vh_drvq_new(f->ctx, fm.mem, 1, QSZ, fm.gpa, &vq), 0);
	vh_drvq_set_features(vq, 1ull << VH_VU_VIRTIO_F_RING_EVENT_IDX);
	CHECK_EQ(vh_drvq_get_addrs(vq, &dg, &ag, &ug), 0);
	s.index = 1;
	s.num = QSZ;
	CHECK_EQ(ack(f, VH_VU_SET_VRING_NUM, &s, 8, NULL, 0), 0);
	memset(&a, 0, sizeof(a));
	a.index = 1;
	a.desc = fe_mem_uva(&fm, dg);
	a.avail = fe_mem_uva(&fm, ag);
	a.used = fe_mem_uva(&fm, ug);
	CHECK_EQ(ack(f, VH_VU_SET_VRING_ADDR, &a, 40, NULL, 0), 0);
	kick = test_efd();
	call = test_efd();
	vh_drvq_set_kick_fd(vq, kick);
	vh_drvq_set_call_fd(vq, call);
	v = 1;
	CHECK_EQ(ack(f, VH_VU_SET_VRING_CALL, &v, 8, &call, 1), 0);
	CHECK_EQ(ack(f, VH_VU_SET_VRING_KICK, &v, 8, &kick, 1), 0);
	s.num = 1;
	CHECK_EQ(ack(f, VH_VU_SET_VRING_ENABLE, &s, 8, NULL, 0), 0);

	for (i = 0; i < ROUNDS; i++) {
		uint64_t out = fm.gpa + 0x100000, in = fm.gpa + 0x180000;
		uint32_t n = 1 + (uint32_t)(i * 131) % 4000, k, len;
		struct vh_sg sg[2] = { { out, n }, { in, 4096 } };
		void *tok;

		/* every 100 rounds one of the changes, rings running */
		if (i % 100 == 50) {
			switch ((i / 100) % 5) {
			case 0:
				CHECK_EQ(ack(f, VH_VU_SET_MEM_TABLE, &t, 40,
					     &fm.fd, 1),
					 0);
				break;
			case 1:
				CHECK_EQ(ack(f, VH_VU_ADD_MEM_REG, &one, 40,
					     &fm2.fd, 1),
					 0);
				break;
			case 2:
				CHECK_EQ(ack(f, VH_VU_REM_MEM_REG, &one, 40,
					     NULL, 0),
					 0);
				break;
			case 3:
				v = 1;
				CHECK_EQ(ack(f, VH_VU_SET_VRING_CALL, &v, 8,
					     &call, 1),
					 0);
				break;
			default:
				/* dirty logging on, then off again */
				CHECK_EQ(ack(f, VH_VU_SET_LOG_BASE, &log, 16,
					     &logfd, 1),
					 0);
				v = feat | (1ull << VH_VU_VHOST_F_LOG_ALL);
				CHECK_EQ(ack(f, VH_VU_SET_FEATURES, &v, 8,
					     NULL, 0),
					 0);
				CHECK_EQ(ack(f, VH_VU_SET_FEATURES, &feat, 8,
					     NULL, 0),
					 0);
				break;
			}
			ft->changes++;
		}
		for (k = 0; k < n; k++)
			fm.host[0x100000 + k] = (uint8_t)(k ^ (uint32_t)i);
		CHECK_EQ(vh_drvq_add(vq, sg, 1, 1, (void *)(uintptr_t)(i + 1)),
			 0);
		vh_drvq_kick(vq);
		for (;;) {
			struct pollfd p = { .fd = call, .events = POLLIN };
			int r = vh_drvq_get_used(vq, &tok, &len);

			CHECK(r >= 0);
			if (r == 1)
				break;
			CHECK(poll(&p, 1, 5000) == 1);
			CHECK(read(call, &v, 8) == 8);
		}
		CHECK(tok == (void *)(uintptr_t)(i + 1));
		CHECK_EQ(len, n);
		for (k = 0; k < n; k++)
			CHECK_EQ(fm.host[0x180000 + k],
				 (uint8_t)((k ^ (uint32_t)i) + 1));
	}
	vh_drvq_unref(vq);
	close(kick);
	close(call);
	close(logfd);
	vh_mem_unref(fm.mem);
	vh_mem_unref(fm2.mem);
	__atomic_store_n(&ft->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

int main(void)
{
	struct fe f;
	struct dev d;
	struct fe_thread ft = { .f = &f };
	struct pollfd p;
	pthread_t t;

	memset(&d, 0, sizeof(d));
	fe_init(&f, &devdesc, &ops, &d);
	d.be = f.be;
	CHECK_EQ(pthread_create(&t, NULL, frontend, &ft), 0);
	p.fd = vh_vu_backend_get_fd(f.be);
	p.events = POLLIN;
	while (!__atomic_load_n(&ft.done, __ATOMIC_ACQUIRE)) {
		int r;

		if (poll(&p, 1, 100) <= 0)
			continue;
		r = vh_vu_backend_dispatch(f.be);
		CHECK(r == 0 || r == -EAGAIN);
	}
	pthread_join(t, NULL);
	fe_fini(&f); /* stops the ring: the last worker is joined */
	CHECK(!d.running[1]);
	CHECK_EQ(d.done, ROUNDS);
	CHECK_EQ(ft.changes, ROUNDS / 100);
	/* one hand-over at start and one after every change */
	CHECK(d.starts >= 1 + ft.changes);
	CHECK_EQ(d.starts, d.stops);
	CHECK(d.mem_updates >= 1 + ROUNDS / 100 * 3 / 5);
	printf("%d round trips, %u ring hand-overs, %u memory updates\n",
	       ROUNDS, d.starts, d.mem_updates);
	return 0;
}
