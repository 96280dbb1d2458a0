/*
 * The option table (plakar/options, generated into options.inc) and the
 * check of a value against its row.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "options.h"
#include "util.h"

const struct option_def option_table[] = {
#define OPTION(key, prog, type, lo, hi, values, def) \
	{ key, prog, type, lo, hi, values, def },
#include "options.inc"
#undef OPTION
};

const size_t option_count = sizeof(option_table) / sizeof(option_table[0]);

const struct option_def *
option_find(const char *key, size_t len)
{
	size_t i;

	for (i = 0; i < option_count; i++)
		if (strlen(option_table[i].key) == len &&
		    memcmp(option_table[i].key, key, len) == 0)
			return &option_table[i];
	return NULL;
}

/* Well-formed UTF-8 (RFC 3629: no overlongs, no surrogates). */
static int
is_utf8(const unsigned char *s)
{
	while (*s != '\0') {
		unsigned char c = *s;
		int n, i;
		unsigned long cp;

		if (c < 0x80) {
			s++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return 0;
		for (i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i] & 0x3f);
		}
		if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
			return 0;
		s += n + 1;
	}
	return 1;
}

/*
 * Decimal digits, no sign, no leading zero, at most as many digits as
 * hi has; its value in *v.  A bounded parse: no overflow to rely on.
 */
static int
decimal(const char *s, size_t n, long long hi, long long *v)
{
	char max[32];
	size_t i;

	snprintf(max, sizeof(max), "%lld", hi);
	if (n == 0 || n > strlen(max) || (s[0] == '0' && n > 1))
		return -1;
	*v = 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

static int
check_enum(const struct option_def *o, const char *v, char *errbuf,
    size_t errlen)
{
	const char *w;
	char list[256];
	size_t n, len = 0;

	for (w = o->values; *w != '\0'; w += n + (w[n] == ' ')) {
		n = strcspn(w, " ");
		if (n == strlen(v) && strncmp(w, v, n) == 0)
			return 0;
	}
	/* "a, b or c" */
	for (w = o->values; *w != '\0' && len < sizeof(list); w += n +
	    (w[n] == ' ')) {
		n = strcspn(w, " ");
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%.*s",
		    w == o->values ? "" : w[n] == '\0' ? " or " : ", ", (int)n, w);
	}
	return seterr(errbuf, errlen, "%s", list);
}

/*
 * A TYPE_INT value, or a TYPE_RATE one in kB/s (its k or M read), into
 * *x; the bounds are the caller's to check.
 */
static int
number(const struct option_def *o, const char *v, long long *x)
{
	size_t n = strlen(v);
	int mega = 0;

	if (o->type == TYPE_RATE && n > 0 && (v[n - 1] == 'k' ||
	    v[n - 1] == 'M'))
		mega = v[--n] == 'M';
	if (decimal(v, n, o->hi, x) == -1)
		return -1;
	if (mega)
		*x *= 1024;
	return 0;
}

static int
check_file(const char *v, char *errbuf, size_t errlen)
{
	struct stat st;
	int fd;

	if ((fd = open(v, O_RDONLY | O_NONBLOCK)) == -1)
		return seterr(errbuf, errlen, "%s: %s", v, strerror(errno));
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		close(fd);
		return seterr(errbuf, errlen, "%s: not a regular file", v);
	}
	close(fd);
	return 0;
}

static int
check_bindir(const char *v, char *errbuf, size_t errlen)
{
	size_t n = strlen(v) + sizeof("/pg_basebackup");
	char *p = xmalloc(n);
	int ok;

	snprintf(p, n, "%s/pg_basebackup", v);
	ok = access(p, X_OK) == 0;
	free(p);
	return ok ? 0 : seterr(errbuf, errlen, "%s has no executable "
	    "pg_basebackup", v);
}

int
option_check(const struct option_def *o, const char *v, char *errbuf,
    size_t errlen)
{
	const unsigned char *p;
	long long n;

	for (p = (const unsigned char *)v; *p != '\0'; p++)
		if ((*p < 0x20 || *p == 0x7f) && !(o->type == TYPE_PEM &&
		    (*p == '\n' || (*p == '\r' && p[1] == '\n'))))
			return seterr(errbuf, errlen, "a control character (0x%02x) "
			    "is not allowed%s", *p, *p == '\n' || *p == '\r' ?
			    ": a value is one line" : "");
	if (!is_utf8((const unsigned char *)v))
		return seterr(errbuf, errlen, "not valid UTF-8");

	switch (o->type) {
	case TYPE_LOCATION:
		if (strncasecmp(v, "postgres+bin://", 15) != 0)
			return seterr(errbuf, errlen, "not a postgres+bin:// URI");
		return 0;
	case TYPE_HOST:
		if (strchr(v, ',') != NULL)
			return seterr(errbuf, errlen, "one host: a backup comes from "
			    "one server, not a list");
		return 0;
	case TYPE_INT:
		if (number(o, v, &n) == -1 || n < o->lo || n > o->hi)
			return seterr(errbuf, errlen, "a whole number from %lld to "
			    "%lld", o->lo, o->hi);
		return 0;
	case TYPE_TEXT:
		if (strlen(v) > (size_t)o->hi)
			return seterr(errbuf, errlen, "longer than %lld bytes",
			    o->hi);
		return 0;
	case TYPE_SECRET:
		return 0;
	case TYPE_FILE:
		return check_file(v, errbuf, errlen);
	case TYPE_PEM:
		if (strstr(v, "-----BEGIN ") == NULL)
			return seterr(errbuf, errlen, "not PEM text (-----BEGIN ...)");
		return 0;
	case TYPE_BINDIR:
		return check_bindir(v, errbuf, errlen);
	case TYPE_ENUM:
		return check_enum(o, v, errbuf, errlen);
	case TYPE_RATE:
		if (number(o, v, &n) == -1 || n < o->lo || n > o->hi)
			return seterr(errbuf, errlen, "kB/s from %lld to %lld, or "
			    "with k or M (32M)", o->lo, o->hi);
		return 0;
	}
	return seterr(errbuf, errlen, "unknown type");
}

long long
option_number(const struct option_def *o, const char *v)
{
	long long x = 0;

	(void)number(o, v, &x);
	return x;
}
