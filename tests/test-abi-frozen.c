// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * An application built against the frozen 1.0 headers (tests/abi/frozen-1.0,
 * the only include path of this file) keeps working with the libvhost being
 * built: its ops and device structs, with the sizes it was compiled with,
 * drive a vh_vu_backend, a vh_daemon and a vh_vu_frontend through a real
 * connection, and every callback gets (object, data, ...).  And the size
 * rules (HACKING, "Extensible structs"): a struct from a newer application
 * (larger size) is accepted when the tail is zero, refused with -E2BIG
 * when not; a size below the first layout is -EINVAL.
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
#include "test-util.h"

#ifndef VH_VU_MAX_QUEUES
#error "not the frozen headers"
#endif

#define F_VERSION_1 (1ull << VH_VU_VIRTIO_F_VERSION_1)
#define PROTO                                                                 \
	((1ull << VH_VU_PROTOCOL_F_REPLY_ACK) |                               \
	 (1ull << VH_VU_PROTOCOL_F_CONFIG) |                                  \
	 (1ull << VH_VU_PROTOCOL_F_BACKEND_REQ) |                             \
	 (1ull << VH_VU_PROTOCOL_F_STATUS))

/* ------------------------------------------------------------------------ */
/* vh_vu_backend + vh_vu_frontend                                           */
/* ------------------------------------------------------------------------ */
struct be_app {
	struct vh_vu_backend *be;
	int stop_fd;
	int bad_args; /* a callback saw the wrong object or data */
	uint64_t features;
	uint8_t status;
};

static int be_set_features(struct vh_vu_backend *be, void *data,
			   uint64_t features)
{
	struct be_app *a = data;

	a->bad_args += be != a->be;
	a->features = features;
	return 0;
}

static int be_get_config(struct vh_vu_backend *be, void *data,
			 uint32_t offset, void *buf, uint32_t size)
{
	struct be_app *a = data;

	a->bad_args += be != a->be;
	memset(buf, 0xa0 + (int)offset, size);
	return 0;
}

static int be_set_status(struct vh_vu_backend *be, void *data, uint8_t s)
{
	struct be_app *a = data;

	a->bad_args += be != a->be;
	a->status = s;
	/* the front-end's ops answer this while it waits for our ack */
	return vh_vu_backend_config_change(be);
}

static void *be_thread(void *arg)
{
	struct be_app *a = arg;

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = vh_vu_backend_get_fd(a->be), .events = POLLIN },
			{ .fd = a->stop_fd, .events = POLLIN },
		};

		if (poll(p, 2, -1) < 0 || p[1].revents)
			break;
		vh_vu_backend_dispatch(a->be);
	}
	return NULL;
}

struct fe_app {
	struct vh_vu_frontend *fe;
	int bad_args;
	int config_changes;
};

static int fe_config_change(struct vh_vu_frontend *fe, void *data)
{
	struct fe_app *f = data;

	f->bad_args += fe != f->fe;
	f->config_changes++;
	return 0;
}

static void test_backend_frontend(struct vh_ctx *ctx, const char *sock)
{
	const struct vh_vu_device dev = {
		.size = sizeof(dev),
		.features = F_VERSION_1,
		.protocol_features = PROTO,
		.num_queues = 2,
		.config_size = 16,
	};
	const struct vh_vu_device_ops ops = {
		.size = sizeof(ops),
		.set_features = be_set_features,
		.get_config = be_get_config,
		.set_status = be_set_status,
	};
	const struct vh_vu_frontend_ops fops = {
		.size = sizeof(fops),
		.config_change = fe_config_change,
	};
	struct be_app a = { 0 };
	struct fe_app f = { 0 };
	uint8_t cfg[4];
	uint64_t feat, pf, one = 1;
	pthread_t th;

	CHECK_EQ(vh_vu_backend_new(ctx, &dev, &ops, &a, &a.be), 0);
	CHECK_EQ(vh_vu_backend_listen(a.be, sock), 0);
	a.stop_fd = eventfd(0, EFD_CLOEXEC);
	CHECK(a.stop_fd >= 0);
	CHECK_EQ(pthread_create(&th, NULL, be_thread, &a), 0);

	CHECK_EQ(vh_vu_frontend_new(ctx, &f.fe), 0);
	CHECK_EQ(vh_vu_frontend_set_ops(f.fe, &fops, &f), 0);
	CHECK_EQ(vh_vu_frontend_connect(f.fe, sock, 5000), 0);
	CHECK_EQ(vh_vu_frontend_negotiate(f.fe, ~0ull, ~0ull, &feat, &pf), 0);
	CHECK(feat & F_VERSION_1);
	CHECK_EQ(pf & PROTO, PROTO);
	CHECK_EQ(vh_vu_frontend_set_backend_req_fd(f.fe), 0);
	CHECK_EQ(vh_vu_frontend_get_config(f.fe, 4, cfg, sizeof(cfg)), 0);
	CHECK_EQ(cfg[0], 0xa4);
	CHECK_EQ(vh_vu_frontend_set_status(f.fe, 0x0f), 0);
	CHECK_EQ(f.config_changes, 1);

	vh_vu_frontend_unref(f.fe);
	CHECK_EQ(write(a.stop_fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_EQ(a.features, feat);
	CHECK_EQ(a.status, 0x0f);
	CHECK_EQ(a.bad_args, 0);
	CHECK_EQ(f.bad_args, 0);
	vh_vu_backend_unref(a.be);
	close(a.stop_fd);
	printf("backend + frontend ops at their 1.0 sizes: ok\n");
}

/* ------------------------------------------------------------------------ */
/* vh_daemon                                                                */
/* ------------------------------------------------------------------------ */
struct dm_app {
	struct vh_daemon *d;
	int bad_args;
	uint64_t features;
	int connected;
};

static int dm_handle(struct vh_daemon *d, void *data, unsigned int idx,
		     struct vh_devq *vring, void *thread_data)
{
	struct dm_app *a = data;

	__atomic_add_fetch(&a->bad_args, d != a->d, __ATOMIC_RELAXED);
	return 0;
}

static int dm_set_features(struct vh_daemon *d, void *data, uint64_t f)
{
	struct dm_app *a = data;

	a->bad_args += d != a->d;
	a->features = f;
	return 0;
}

static void dm_connected(struct vh_daemon *d, void *data)
{
	struct dm_app *a = data;

	a->bad_args += d != a->d;
	a->connected++;
}

static void test_daemon(struct vh_ctx *ctx, const char *sock)
{
	const struct vh_daemon_device dev = {
		.size = sizeof(dev),
		.type = "frozen",
		.features = F_VERSION_1,
		.num_queues = 2,
		.num_threads = 2,
	};
	const struct vh_daemon_ops ops = {
		.size = sizeof(ops),
		.handle_event = dm_handle,
		.set_features = dm_set_features,
		.connected = dm_connected,
	};
	struct dm_app a = { 0 };
	struct vh_vu_frontend *fe;
	uint64_t feat, pf;

	CHECK_EQ(vh_daemon_new(ctx, &dev, &ops, &a, &a.d), 0);
	CHECK(vh_daemon_get_userdata(a.d) == &a);
	CHECK_EQ(vh_daemon_start_listen(a.d, sock), 0);
	CHECK_EQ(vh_vu_frontend_new(ctx, &fe), 0);
	CHECK_EQ(vh_vu_frontend_connect(fe, sock, 5000), 0);
	CHECK_EQ(vh_vu_frontend_negotiate(fe, ~0ull, ~0ull, &feat, &pf), 0);
	/* the daemon adds EVENT_IDX to what the device offers */
	CHECK(feat & F_VERSION_1);
	/* a round trip after SET_FEATURES: the daemon has handled it */
	CHECK_EQ(vh_vu_frontend_get_features(fe, &pf), 0);
	vh_vu_frontend_unref(fe);
	vh_daemon_stop(a.d);
	CHECK_EQ(vh_daemon_wait(a.d), 0);
	CHECK_EQ(a.features, feat);
	CHECK_EQ(a.connected, 1);
	CHECK_EQ(a.bad_args, 0);
	CHECK(vh_daemon_unref(a.d) == NULL);
	printf("daemon device + ops at their 1.0 sizes: ok\n");
}

/* ------------------------------------------------------------------------ */
/* sizes from a newer (larger) and a broken (smaller) application            */
/* ------------------------------------------------------------------------ */
#define NEWER(type)                                                           \
	struct {                                                              \
		type s;                                                       \
		uint64_t future[3]; /* members a later release may add */    \
	}

static void test_sizes(struct vh_ctx *ctx)
{
	NEWER(struct vh_vu_device) dev = { 0 };
	NEWER(struct vh_vu_device_ops) ops = { 0 };
	NEWER(struct vh_daemon_device) ddev = { 0 };
	NEWER(struct vh_daemon_ops) dops = { 0 };
	NEWER(struct vh_vu_frontend_ops) fops = { 0 };
	struct vh_vu_backend *be;
	struct vh_vu_frontend *fe;
	struct vh_daemon *d;

	dev.s.size = sizeof(dev);
	dev.s.num_queues = 1;
	ops.s.size = sizeof(ops);
	ddev.s.size = sizeof(ddev);
	ddev.s.num_queues = 1;
	dops.s.size = sizeof(dops);
	dops.s.handle_event = dm_handle;
	fops.s.size = sizeof(fops);
	fops.s.config_change = fe_config_change;

	/* larger, zero tail: as if the members were not there */
	CHECK_EQ(vh_vu_backend_new(ctx, &dev.s, &ops.s, NULL, &be), 0);
	CHECK(vh_vu_backend_unref(be) == NULL);
	CHECK_EQ(vh_daemon_new(ctx, &ddev.s, &dops.s, NULL, &d), 0);
	CHECK(vh_daemon_unref(d) == NULL);
	CHECK_EQ(vh_vu_frontend_new(ctx, &fe), 0);
	CHECK_EQ(vh_vu_frontend_set_ops(fe, &fops.s, NULL), 0);

	/* larger, a member set the library does not know: refused */
	dev.future[2] = 1;
	CHECK_EQ(vh_vu_backend_new(ctx, &dev.s, &ops.s, NULL, &be), -E2BIG);
	dev.future[2] = 0;
	ops.future[0] = 1;
	CHECK_EQ(vh_vu_backend_new(ctx, &dev.s, &ops.s, NULL, &be), -E2BIG);
	ddev.future[1] = 1;
	CHECK_EQ(vh_daemon_new(ctx, &ddev.s, &dops.s, NULL, &d), -E2BIG);
	ddev.future[1] = 0;
	dops.future[0] = 0xff;
	CHECK_EQ(vh_daemon_new(ctx, &ddev.s, &dops.s, NULL, &d), -E2BIG);
	fops.future[2] = 1;
	CHECK_EQ(vh_vu_frontend_set_ops(fe, &fops.s, NULL), -E2BIG);

	/* smaller than the first layout, or no size at all */
	ops.future[0] = 0;
	ops.s.size = sizeof(ops.s) - sizeof(void *);
	CHECK_EQ(vh_vu_backend_new(ctx, &dev.s, &ops.s, NULL, &be), -EINVAL);
	dev.s.size = 0;
	ops.s.size = sizeof(ops.s);
	CHECK_EQ(vh_vu_backend_new(ctx, &dev.s, &ops.s, NULL, &be), -EINVAL);
	dops.future[0] = 0;
	dops.s.size = offsetof(struct vh_daemon_ops, load_state);
	CHECK_EQ(vh_daemon_new(ctx, &ddev.s, &dops.s, NULL, &d), -EINVAL);
	fops.s.size = 1;
	CHECK_EQ(vh_vu_frontend_set_ops(fe, &fops.s, NULL), -EINVAL);
	CHECK(vh_vu_frontend_unref(fe) == NULL);
	printf("newer (zero tail / -E2BIG) and short (-EINVAL) sizes: ok\n");
}

int main(void)
{
	char dir[] = "/tmp/test-abi-frozen.XXXXXX", sock[64];
	struct vh_ctx *ctx;

	CHECK(mkdtemp(dir));
	CHECK_EQ(vh_ctx_new(&ctx), 0);
	snprintf(sock, sizeof(sock), "%s/be.sock", dir);
	test_backend_frontend(ctx, sock);
	snprintf(sock, sizeof(sock), "%s/dm.sock", dir);
	test_daemon(ctx, sock);
	unlink(sock);
	test_sizes(ctx);
	CHECK(vh_ctx_unref(ctx) == NULL);
	rmdir(dir);
	return 0;
}
