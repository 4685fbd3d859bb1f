// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vhostctl output layer: JSON (compact or pretty) or text from one set of
 * calls.  Keys are stable: scripts parse them.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "vhostctl.h"

/*
 * The out_*() calls take the text format as an argument, iproute2 style; the
 * callers pass string literals with exactly one conversion for the value.
 */
#pragma GCC diagnostic ignored "-Wformat-nonliteral"

static void indent(struct vhc_out *o)
{
	if (!o->pretty)
		return;
	fputc('\n', o->f);
	for (int i = 0; i < o->depth; i++)
		fputs("  ", o->f);
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

/* Comma, indentation and "key": before a member or element. */
static void member(struct vhc_out *o, const char *key)
{
	if (o->depth > 0 && o->need_comma[o->depth])
		fputc(',', o->f);
	if (o->depth > 0) {
		o->need_comma[o->depth] = true;
		indent(o);
	}
	if (key) {
		json_string(o->f, key);
		fputs(o->pretty ? ": " : ":", o->f);
	}
}

static void open_container(struct vhc_out *o, const char *key, char c)
{
	if (!o->json)
		return;
	member(o, o->depth > 0 ? key : NULL);
	fputc(c, o->f);
	if (o->depth + 1 < (int)(sizeof(o->need_comma) / sizeof(o->need_comma[0])))
		o->depth++;
	o->need_comma[o->depth] = false;
}

static void close_container(struct vhc_out *o, char c)
{
	bool had = o->need_comma[o->depth];

	if (!o->json)
		return;
	if (o->depth > 0)
		o->depth--;
	if (had)
		indent(o);
	fputc(c, o->f);
}

void out_open_obj(struct vhc_out *o, const char *key)
{
	open_container(o, key, '{');
}

void out_close_obj(struct vhc_out *o)
{
	close_container(o, '}');
}

void out_open_arr(struct vhc_out *o, const char *key)
{
	open_container(o, key, '[');
}

void out_close_arr(struct vhc_out *o)
{
	close_container(o, ']');
}

void out_str(struct vhc_out *o, const char *key, const char *fmt,
	     const char *val)
{
	if (o->json) {
		member(o, key);
		json_string(o->f, val ? val : "");
	} else if (fmt) {
		fprintf(o->f, fmt, val ? val : "");
	}
}

void out_u64(struct vhc_out *o, const char *key, const char *fmt,
	     uint64_t val)
{
	if (o->json) {
		member(o, key);
		fprintf(o->f, "%llu", (unsigned long long)val);
	} else if (fmt) {
		fprintf(o->f, fmt, (unsigned long long)val);
	}
}

void out_hex(struct vhc_out *o, const char *key, const char *fmt,
	     uint64_t val)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)val);
	if (o->json) {
		member(o, key);
		json_string(o->f, buf);
	} else if (fmt) {
		fprintf(o->f, fmt, (unsigned long long)val);
	}
}

void out_bool(struct vhc_out *o, const char *key, const char *fmt, bool val)
{
	if (o->json) {
		member(o, key);
		fputs(val ? "true" : "false", o->f);
	} else if (fmt) {
		fprintf(o->f, fmt, val ? "yes" : "no");
	}
}

void out_null(struct vhc_out *o, const char *key)
{
	if (o->json) {
		member(o, key);
		fputs("null", o->f);
	}
}

void out_text(struct vhc_out *o, const char *fmt, ...)
{
	va_list ap;

	if (o->json)
		return;
	va_start(ap, fmt);
	vfprintf(o->f, fmt, ap);
	va_end(ap);
}

void out_end(struct vhc_out *o)
{
	if (o->json)
		fputc('\n', o->f);
	fflush(o->f);
}

void vhc_err(const struct vhc *v, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", v->prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int vhc_exit_for(int err)
{
	switch (-err) {
	case 0:
		return VHC_EXIT_OK;
	case EPERM:
	case EACCES:
		return VHC_EXIT_PERM;
	case ENOENT:
	case ENODEV:
	case ENXIO:
		return VHC_EXIT_ABSENT;
	default:
		return VHC_EXIT_FAIL;
	}
}
