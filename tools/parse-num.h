/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unsigned numbers from the command line, for the programs in tools/.
 * strtoull() skips white space and takes a sign, so " -1" would come back
 * as 2^64 - 1 (and " -18446744073709550116" as 1500): a number here starts
 * with a digit, and nothing follows it.
 */
#ifndef _VH_TOOLS_PARSE_NUM_H_
#define _VH_TOOLS_PARSE_NUM_H_

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

/* s in base (0: C prefixes), lo..hi, into *v; 0 or -EINVAL. */
static inline int parse_unum(const char *s, int base, unsigned long long lo,
			     unsigned long long hi, unsigned long long *v)
{
	unsigned long long x;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	x = strtoull(s, &end, base);
	if (errno || *end || x < lo || x > hi)
		return -EINVAL;
	*v = x;
	return 0;
}

/*
 * A decimal quantity (a count, a size, an fd): base 10, and no 0 before
 * another digit, which strtoull(s, 0) reads as octal (010 is 8 there):
 * refused rather than read either way.
 */
static inline int parse_dec(const char *s, unsigned long long lo,
			    unsigned long long hi, unsigned long long *v)
{
	if (s && s[0] == '0' && isdigit((unsigned char)s[1]))
		return -EINVAL;
	return parse_unum(s, 10, lo, hi, v);
}

#endif
