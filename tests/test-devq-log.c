// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The dirty log of the device-side ring (live migration): a push with
 * logging on marks exactly the guest pages the device wrote (the first len
 * device-writable bytes of the chain, direct and indirect, the used element
 * and used->idx) and nothing else; push_batch the same; a log replaced
 * while a thread pushes (SET_LOG_BASE growing the log) is never written
 * once vh_mem_log_set() has returned; the written buffers are logged
 * before the used entry is published (the driver may reuse the
 * descriptors, and an indirect table, the moment it sees it).
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/vhost_types.h>
#include <linux/virtio_config.h>

#include "test-vring.h"

#define PAGE 4096ull
#define LOG_BYTES (vh_mem_log_size_for(MEM_GPA + MEM_SIZE))

/* A log whose memfd we map ourselves too: readable after the library drops it. */
struct ext_log {
	int fd;
	uint8_t *view;
	size_t size;
};

static void ext_log_new(struct ext_log *l, size_t size)
{
	l->size = size;
	l->fd = memfd_create("test-log", MFD_CLOEXEC);
	CHECK(l->fd >= 0);
	CHECK_EQ(ftruncate(l->fd, (off_t)size), 0);
	l->view = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, l->fd, 0);
	CHECK(l->view != MAP_FAILED);
}

/* Hand it to mem (a dup: the vh_mem owns what it is given). */
static void ext_log_set(struct ext_log *l, struct vh_mem *mem)
{
	int fd = dup(l->fd);

	CHECK(fd >= 0);
	CHECK_EQ(vh_mem_log_set(mem, fd, l->size, 0), 0);
}

static void ext_log_free(struct ext_log *l)
{
	munmap(l->view, l->size);
	close(l->fd);
}

static void mark(uint8_t *want, uint64_t gpa, uint64_t len)
{
	uint64_t p;

	for (p = gpa / PAGE; p <= (gpa + len - 1) / PAGE; p++)
		want[p / 8] |= (uint8_t)(1u << (p % 8));
}

/* The log holds exactly the pages of want; print the first difference. */
static void check_log(const uint8_t *log, const uint8_t *want, size_t size)
{
	size_t i;

	for (i = 0; i < size; i++) {
		if (log[i] == want[i])
			continue;
		fprintf(stderr, "log byte %zu (pages %zu..): %#x, want %#x\n",
			i, i * 8, log[i], want[i]);
		CHECK(0);
	}
}

static void enable_log(struct rig *r, uint64_t features, uint64_t *used_gpa)
{
	uint64_t d, av, u;
	struct vh_devq_addr a;

	CHECK_EQ(vh_drvq_get_addrs(r->vq, &d, &av, &u), 0);
	a = (struct vh_devq_addr){ .desc = d, .avail = av, .used = u,
				    .log = u, .flags = VH_DEVQ_ADDR_LOG };
	CHECK_EQ(vh_devq_set_addr(r->vr, &a), 0);
	CHECK_EQ(vh_devq_set_features(r->vr, features | 1ull << VHOST_F_LOG_ALL),
		 0);
	*used_gpa = u;
}

/* Exact marking for one push and for push_batch, direct and indirect. */
static void test_exact(void)
{
	struct iovec iov[8];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 8 };
	struct vh_devq_used_elem batch[2];
	uint8_t want[4096] = { 0 };
	struct ext_log lg;
	uint64_t u;
	struct rig r;
	void *tok;
	uint32_t len;

	const uint64_t f = 1ull << VIRTIO_F_VERSION_1 |
			   1ull << VIRTIO_RING_F_INDIRECT_DESC;

	rig_init(&r, 16, f);
	CHECK(LOG_BYTES <= sizeof(want));
	ext_log_new(&lg, LOG_BYTES);
	ext_log_set(&lg, r.mem);
	enable_log(&r, f, &u);
	{
		/*
		 * readable 3 pages (never marked), then writable buffers of
		 * 100 bytes at the end of a page, 3 pages + 1, 2 pages; the
		 * device reports 100 + 3 * 4096 + 50 written: 49 bytes of
		 * the last buffer, only its first page.
		 */
		struct vh_sg sg[4] = {
			{ DATA_GPA, 3 * PAGE },
			{ DATA_GPA + 4 * PAGE - 100, 100 },
			{ DATA_GPA + 6 * PAGE, 3 * PAGE + 1 },
			{ DATA_GPA + 12 * PAGE + 8, 2 * PAGE },
		};

		CHECK_EQ(vh_drvq_add(r.vq, sg, 1, 3, &e), 0);
	}
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 100 + 3 * PAGE + 50), 0);
	mark(want, DATA_GPA + 4 * PAGE - 100, 100);
	mark(want, DATA_GPA + 6 * PAGE, 3 * PAGE + 1); /* 4 pages */
	mark(want, DATA_GPA + 12 * PAGE + 8, 49);
	mark(want, u + 4, 8); /* used->ring[0] */
	mark(want, u + 2, 2); /* used->idx */
	check_log(lg.view, want, lg.size);
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);

	/* indirect chains through push_batch; len 0 marks no buffer */
	memset(lg.view, 0, lg.size);
	memset(want, 0, sizeof(want));
	CHECK_EQ(vh_drvq_set_indirect_area(r.vq, IND_GPA, IND_SIZE), 0);
	{
		struct vh_sg a[2] = { { DATA_GPA + 20 * PAGE, 64 },
				      { DATA_GPA + 30 * PAGE + 4000, 200 } };
		struct vh_sg b[1] = { { DATA_GPA + 40 * PAGE, PAGE } };

		CHECK_EQ(vh_drvq_add_indirect(r.vq, a, 1, 1, &r), 0);
		CHECK_EQ(vh_drvq_add_indirect(r.vq, b, 0, 1, &lg), 0);
	}
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	batch[0] = (struct vh_devq_used_elem){ e.id, 200 };
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	batch[1] = (struct vh_devq_used_elem){ e.id, 0 };
	CHECK_EQ(vh_devq_push_batch(r.vr, batch, 2), 0);
	mark(want, DATA_GPA + 30 * PAGE + 4000, 200); /* spans two pages */
	mark(want, u + 4 + 8, 16);                    /* ring[1], ring[2] */
	mark(want, u + 2, 2);
	check_log(lg.view, want, lg.size);

	/* logging off again: nothing marked */
	memset(lg.view, 0, lg.size);
	CHECK_EQ(vh_mem_log_clear(r.mem), 0);
	{
		struct vh_sg sg = { DATA_GPA + 60 * PAGE, 8 };

		CHECK_EQ(vh_drvq_add(r.vq, &sg, 0, 1, &r), 0);
	}
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	CHECK_EQ(vh_devq_push(r.vr, e.id, 8), 0);
	memset(want, 0, sizeof(want));
	check_log(lg.view, want, lg.size);
	rig_fini(&r);
	ext_log_free(&lg);
}

/* ---------------------------------------------------------------------- */
/* a log replaced while another thread pushes                             */
/* ---------------------------------------------------------------------- */

struct pusher {
	struct rig *r;
	unsigned long pushes; /* atomic */
	bool stop;            /* atomic */
};

static void *pusher_main(void *arg)
{
	struct pusher *p = arg;
	struct iovec iov[4];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };
	void *tok;
	uint32_t len;

	while (!__atomic_load_n(&p->stop, __ATOMIC_ACQUIRE)) {
		struct vh_sg sg = { DATA_GPA + 50 * PAGE, 64 };

		CHECK_EQ(vh_drvq_add(p->r->vq, &sg, 0, 1, p), 0);
		CHECK_EQ(vh_devq_pop(p->r->vr, &e), 1);
		CHECK_EQ(vh_devq_push(p->r->vr, e.id, 64), 0);
		CHECK_EQ(vh_drvq_get_used(p->r->vq, &tok, &len), 1);
		__atomic_add_fetch(&p->pushes, 1, __ATOMIC_RELEASE);
	}
	return NULL;
}

static void wait_pushes(struct pusher *p, unsigned long n)
{
	unsigned long start = __atomic_load_n(&p->pushes, __ATOMIC_ACQUIRE);

	while (__atomic_load_n(&p->pushes, __ATOMIC_ACQUIRE) - start < n)
		sched_yield();
}

static void test_replace_while_pushing(void)
{
	struct ext_log logs[2];
	struct pusher p = { 0 };
	pthread_t th;
	uint64_t u;
	struct rig r;
	size_t i, j, cur = 0;

	rig_init(&r, 16, 1ull << VIRTIO_F_VERSION_1);
	/* the second log is bigger: a log that grows (and then shrinks) */
	ext_log_new(&logs[0], LOG_BYTES);
	ext_log_new(&logs[1], LOG_BYTES + 4096);
	ext_log_set(&logs[0], r.mem);
	enable_log(&r, 1ull << VIRTIO_F_VERSION_1, &u);
	p.r = &r;
	CHECK_EQ(pthread_create(&th, NULL, pusher_main, &p), 0);
	for (i = 0; i < 200; i++) {
		size_t old = cur;

		wait_pushes(&p, 5);
		cur ^= 1;
		memset(logs[cur].view, 0, logs[cur].size);
		ext_log_set(&logs[cur], r.mem);
		/* from here on the old log is the front-end's, synced */
		memset(logs[old].view, 0, logs[old].size);
		wait_pushes(&p, 5);
		for (j = 0; j < logs[old].size; j++)
			if (logs[old].view[j]) {
				fprintf(stderr,
					"round %zu: byte %zu of the replaced log written\n",
					i, j);
				CHECK(0);
			}
		/* and the new one has the pushes: data page and used ring */
		CHECK(logs[cur].view[(DATA_GPA + 50 * PAGE) / PAGE / 8] &
		      (1u << ((DATA_GPA + 50 * PAGE) / PAGE % 8)));
		CHECK(logs[cur].view[u / PAGE / 8] & (1u << (u / PAGE % 8)));
	}
	__atomic_store_n(&p.stop, true, __ATOMIC_RELEASE);
	CHECK_EQ(pthread_join(th, NULL), 0);
	printf("log replaced 200 times under %lu pushes from another thread\n",
	       p.pushes);
	rig_fini(&r);
	ext_log_free(&logs[0]);
	ext_log_free(&logs[1]);
}

/* ---------------------------------------------------------------------- */
/* the buffers are logged before the used entry is published              */
/* ---------------------------------------------------------------------- */

/*
 * The ring page a push publishes into is made read-only; the first write
 * there faults, and the handler notes whether the written buffer's page
 * was in the log by then, and lets the write go on.
 */
static struct {
	uint8_t *lo, *hi;
	const uint8_t *log;
	uint64_t gpa;
	int faults;
	bool logged;
} g_pub;

static void pub_segv(int sig, siginfo_t *si, void *uc)
{
	uint8_t *a = si->si_addr;
	uint64_t pg = g_pub.gpa / PAGE;

	(void)uc;
	if (a < g_pub.lo || a >= g_pub.hi) {
		/* not ours: fault again, this time for real */
		signal(sig, SIG_DFL);
		return;
	}
	if (!g_pub.faults++)
		g_pub.logged = g_pub.log[pg / 8] & (1u << (pg % 8));
	mprotect(g_pub.lo, (size_t)(g_pub.hi - g_pub.lo),
		 PROT_READ | PROT_WRITE);
}

/*
 * layout 0 (split) or VIRTIO_F_RING_PACKED; a direct or an indirect chain
 * popped before logging starts (the push walks it again: the case that
 * reads guest memory), pushed with vh_devq_push() or push_batch().
 */
static void publish_after_log(uint64_t layout, bool indirect, bool batch)
{
	const uint64_t f = 1ull << VIRTIO_F_VERSION_1 |
			   1ull << VIRTIO_RING_F_INDIRECT_DESC | layout;
	const uint64_t buf = DATA_GPA + 70 * PAGE + 100;
	struct sigaction sa = { 0 }, old;
	struct iovec iov[4];
	struct vh_devq_elem e = { .iov = iov, .iov_max = 4 };
	struct vh_devq_used_elem ue;
	uint64_t d, av, u, pub;
	size_t pub_len;
	struct ext_log lg;
	struct rig r;
	void *tok;
	uint32_t len;

	rig_init(&r, 16, f);
	{
		struct vh_sg sg[2] = { { DATA_GPA + 60 * PAGE, 16 },
				       { buf, 512 } };

		if (indirect) {
			CHECK_EQ(vh_drvq_set_indirect_area(r.vq, IND_GPA,
							   IND_SIZE),
				 0);
			CHECK_EQ(vh_drvq_add_indirect(r.vq, sg, 1, 1, &r), 0);
		} else {
			CHECK_EQ(vh_drvq_add(r.vq, sg, 1, 1, &r), 0);
		}
	}
	CHECK_EQ(vh_devq_pop(r.vr, &e), 1);
	ext_log_new(&lg, LOG_BYTES);
	ext_log_set(&lg, r.mem);
	enable_log(&r, f, &u);
	CHECK_EQ(vh_drvq_get_addrs(r.vq, &d, &av, &u), 0);
	/* where the push publishes: the used ring, or the descriptor ring */
	pub = layout ? d : u;
	pub_len = layout ? 16 * 16 : 4 + 8 * 16 + 2;
	g_pub.lo = (uint8_t *)((uintptr_t)gpa_host(&r, pub) & ~(PAGE - 1));
	g_pub.hi = (uint8_t *)(((uintptr_t)gpa_host(&r, pub) + pub_len +
				PAGE - 1) & ~(PAGE - 1));
	g_pub.log = lg.view;
	g_pub.gpa = buf;
	g_pub.faults = 0;
	g_pub.logged = false;
	sa.sa_sigaction = pub_segv;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	CHECK_EQ(sigaction(SIGSEGV, &sa, &old), 0);
	CHECK_EQ(mprotect(g_pub.lo, (size_t)(g_pub.hi - g_pub.lo), PROT_READ),
		 0);
	ue = (struct vh_devq_used_elem){ e.id, 512 };
	if (batch)
		CHECK_EQ(vh_devq_push_batch(r.vr, &ue, 1), 0);
	else
		CHECK_EQ(vh_devq_push(r.vr, e.id, 512), 0);
	CHECK_EQ(sigaction(SIGSEGV, &old, NULL), 0);
	CHECK(g_pub.faults >= 1);
	if (!g_pub.logged) {
		fprintf(stderr,
			"%s, %s, %s: the used entry was written before the buffer was logged\n",
			layout ? "packed" : "split",
			indirect ? "indirect" : "direct",
			batch ? "push_batch" : "push");
		CHECK(0);
	}
	CHECK_EQ(vh_drvq_get_used(r.vq, &tok, &len), 1);
	CHECK(tok == &r);
	CHECK_EQ(len, 512);
	rig_fini(&r);
	ext_log_free(&lg);
}

static void test_log_before_publish(void)
{
	unsigned int i;

	for (i = 0; i < 8; i++)
		publish_after_log(i & 1 ? 1ull << VIRTIO_F_RING_PACKED : 0,
				  i & 2, i & 4);
}

int main(void)
{
	test_exact();
	test_log_before_publish();
	test_replace_while_pushing();
	printf("ok\n");
	return 0;
}
