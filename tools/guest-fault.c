// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Guest memory shrunk under the daemon.
 *
 * A vhost-user front-end passes guest memory as files (memfd, tmpfs,
 * hugetlbfs) that the library maps shared, after checking that each file
 * covers its region.  A front-end that shrinks such a file afterwards (an
 * unsealed memfd, a hugetlbfs file) makes every access past the new end
 * fault with SIGBUS (BUS_ADRERR), whose default action kills the daemon
 * and with it every other front-end it serves next.  Sealing cannot stop
 * it: a hostile front-end chooses a file that cannot be sealed.
 *
 * While vh_daemon_run() serves, a SIGBUS of that kind is mended: the
 * faulting page is replaced with private zero memory, so the access goes
 * on (reading zeros, writing nowhere), and the front-end is dropped with
 * vh_daemon_drop(); the daemon serves the next one.  Only a fault inside
 * a shared file mapping is mended, and never beyond that mapping (found in
 * /proc/self/maps): the replacement is the smallest aligned block the
 * kernel takes there, the base page, or the huge page of a hugetlbfs
 * mapping, whatever its size.  Any other SIGBUS (sent by kill(), a
 * hardware error, a misaligned access, a private mapping such as a
 * truncated library) gets the disposition from before, as without this
 * handler.  A signal disposition is process state, so the program
 * installs it, not the library.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "guest-fault.h"

/* set before the handler is installed, cleared after it is removed */
static struct vh_daemon *gf_daemon;
static size_t gf_page;
static struct sigaction gf_old;

static const char gf_msg[] =
	": SIGBUS: guest memory shrunk under its mapping (the front-end truncated its file): front-end dropped\n";

/* s on stderr with write(2): nothing else is async-signal-safe */
static void gf_put(const char *s)
{
	if (write(STDERR_FILENO, s, strlen(s)) < 0)
		return;
}

static void gf_say(void)
{
	gf_put(program_invocation_short_name);
	gf_put(gf_msg);
}

/* "prog: SIGBUS ... not mended (what, errno N)\n" */
static void gf_say_not_mended(const char *what, int err)
{
	char num[16];
	unsigned int k = sizeof(num);

	num[--k] = 0;
	num[--k] = '\n';
	num[--k] = ')';
	do {
		num[--k] = (char)('0' + err % 10);
		err /= 10;
	} while (err && k > 1);
	gf_put(program_invocation_short_name);
	gf_put(": SIGBUS past the end of a file, not mended (");
	gf_put(what);
	gf_put(", errno ");
	gf_put(num + k);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/*
 * The mapping holding addr, from /proc/self/maps ("start-end perms ..."),
 * read with open(), read() and close() only (async-signal-safe) and
 * parsed as it streams by.  True if it is a shared mapping ('s' in perms):
 * *start and *end are its bounds.
 */
static bool gf_find_shared(uintptr_t addr, uintptr_t *start, uintptr_t *end)
{
	/* field: 0 start, 1 end, 2..5 perms, 6 rest of the line */
	uintptr_t v[2] = { 0, 0 };
	unsigned int field = 0;
	bool shared = false, found = false;
	char buf[1024];
	ssize_t n, i;
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	while (!found && (n = read(fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n && !found; i++) {
			char c = buf[i];
			int h = hexval(c);

			if (c == '\n') {
				found = v[0] <= addr && addr < v[1];
				if (!found) {
					v[0] = v[1] = 0;
					field = 0;
					shared = false;
				}
			} else if (field < 2 && h >= 0) {
				v[field] = v[field] << 4 | (uintptr_t)h;
			} else if (field == 0 && c == '-') {
				field = 1;
			} else if (field == 1 && c == ' ') {
				field = 2;
			} else if (field >= 2 && field < 6) {
				/* r, w, x, then s (shared) or p */
				if (field == 5)
					shared = c == 's';
				field++;
			}
		}
	}
	close(fd);
	if (!found || !shared)
		return false;
	*start = v[0];
	*end = v[1];
	return true;
}

/*
 * Replace the smallest aligned block around fault that the kernel takes,
 * inside [start, end): the base page of a plain mapping; a hugetlbfs one
 * refuses to be split inside a huge page (EINVAL, or ENOMEM before Linux
 * 6.12), so the size doubles up to the huge page's, whatever it is.
 */
static bool gf_mend(void *fault, uintptr_t start, uintptr_t end)
{
	uintptr_t addr = (uintptr_t)fault;
	size_t size;

	for (size = gf_page; size && size <= end - start; size <<= 1) {
		uintptr_t off = addr & (size - 1);
		/* pointer arithmetic from the faulting address, no int cast */
		char *a = (char *)fault - off;

		if (addr - off < start || size > end - (addr - off))
			break;
		if (mmap(a, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			 0) != MAP_FAILED)
			return true;
	}
	return false;
}

static void gf_handler(int sig, siginfo_t *si, void *uc)
{
	uintptr_t start, end;
	int saved = errno;

	(void)uc;
	if (si->si_code == BUS_ADRERR && gf_daemon) {
		if (!gf_find_shared((uintptr_t)si->si_addr, &start, &end)) {
			gf_say_not_mended("not in a shared mapping", 0);
		} else if (!gf_mend(si->si_addr, start, end)) {
			gf_say_not_mended("mmap refused", errno);
		} else {
			gf_say();
			vh_daemon_drop(gf_daemon);
			errno = saved;
			return;
		}
	}
	/*
	 * Not mended: the disposition from before, delivered once this
	 * handler returns (a fault would come again anyway; a SIGBUS sent
	 * by kill() or a machine check notice would not)
	 */
	sigaction(SIGBUS, &gf_old, NULL);
	raise(sig);
	errno = saved;
}

int guest_fault_guard(struct vh_daemon *d)
{
	struct sigaction sa;
	long page = sysconf(_SC_PAGESIZE);

	if (!d || page <= 0)
		return -EINVAL;
	gf_page = (size_t)page;
	gf_daemon = d;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = gf_handler;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &gf_old) < 0) {
		gf_daemon = NULL;
		return -errno;
	}
	return 0;
}

void guest_fault_unguard(void)
{
	if (!gf_daemon)
		return;
	sigaction(SIGBUS, &gf_old, NULL);
	gf_daemon = NULL;
}
