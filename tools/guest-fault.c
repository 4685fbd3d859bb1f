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
 * faulting page (or huge page) is replaced with private zero memory, so
 * the access goes on (reading zeros, writing nowhere), and the front-end
 * is dropped with vh_daemon_drop(); the daemon serves the next one.
 * Any other SIGBUS (a hardware error, a misaligned access) gets the
 * default action, as without this handler.  A signal disposition is
 * process state, so the program installs it, not the library.
 */
#include <errno.h>
#include <signal.h>
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

static void gf_say(void)
{
	const char *name = program_invocation_short_name;

	/* write(2) only: nothing else is async-signal-safe */
	if (write(STDERR_FILENO, name, strlen(name)) < 0 ||
	    write(STDERR_FILENO, gf_msg, sizeof(gf_msg) - 1) < 0)
		return;
}

static void gf_handler(int sig, siginfo_t *si, void *uc)
{
	/* the base page, then the huge page sizes hugetlbfs maps with */
	const size_t sizes[] = { gf_page, (size_t)2 << 20, (size_t)1 << 30 };
	int saved = errno;
	unsigned int i;

	(void)sig;
	(void)uc;
	if (si->si_code == BUS_ADRERR && gf_daemon) {
		for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
			/* pointer arithmetic, not an integer cast */
			char *a = (char *)si->si_addr -
				  ((uintptr_t)si->si_addr & (sizes[i] - 1));
			void *p = mmap(a, sizes[i],
				       PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				       -1, 0);

			if (p != MAP_FAILED) {
				gf_say();
				vh_daemon_drop(gf_daemon);
				errno = saved;
				return;
			}
			/*
			 * EINVAL: not aligned for the mapping there (a
			 * hugetlbfs one): the next size.  Anything else:
			 * give up rather than replace more than the page.
			 */
			if (errno != EINVAL)
				break;
		}
	}
	/* not mended: the access faults again and takes the default action */
	signal(SIGBUS, SIG_DFL);
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
