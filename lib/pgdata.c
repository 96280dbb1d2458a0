/*
 * pgdata: PG_VERSION, tablespace_map and -T, parsed or refused
 * (pgdata.h).
 */
#include <stdlib.h>
#include <string.h>

#include "pgdata.h"
#include "util.h"

int
pg_version_parse(const char *p, size_t n, int *major, char *err,
    size_t errlen)
{
	size_t i;
	int v = 0;

	for (i = 0; i < n && i < 3 && p[i] >= '0' && p[i] <= '9'; i++)
		v = v * 10 + (p[i] - '0');
	if (i == 0 || i + 1 != n || p[i] != '\n' || p[0] == '0' || v < 10 ||
	    v > 99)
		return seterr(err, errlen, "PG_VERSION: not a major version "
		    "of PostgreSQL 10 or later on one line");
	*major = v;
	return 0;
}

/* One line, escapes undone, as "OID path". */
static int
tsmap_line(struct tsmap *m, const char *line, size_t len, char *err,
    size_t errlen)
{
	const char *sp = memchr(line, ' ', len);
	struct tsmap_entry *e;
	size_t olen, plen, i;
	unsigned long long oid = 0;

	/* read_tablespace_map: an OID, one space, a path of a byte or more */
	if (sp == NULL || sp == line || (size_t)(sp - line) + 1 >= len)
		return seterr(err, errlen, "tablespace_map: a line that is not "
		    "an OID, a space and a path");
	olen = (size_t)(sp - line);
	for (i = 0; i < olen; i++)
		if (line[i] < '0' || line[i] > '9')
			return seterr(err, errlen, "tablespace_map: an OID that "
			    "is not digits");
	if (olen > 10)
		return seterr(err, errlen, "tablespace_map: an OID of more "
		    "than 10 digits");
	for (i = 0; i < olen; i++)
		oid = oid * 10 + (unsigned long long)(line[i] - '0');
	if (line[0] == '0' || oid == 0 || oid > 4294967295ULL)
		return seterr(err, errlen, "tablespace_map: an OID out of "
		    "range");
	plen = len - olen - 1;
	if (plen >= PGDATA_PATH_MAX)
		return seterr(err, errlen, "tablespace_map: a path over %d "
		    "bytes", PGDATA_PATH_MAX - 1);
	if (sp[1] != '/')
		return seterr(err, errlen, "tablespace_map: OID %.*s: a path "
		    "that is not absolute", (int)olen, line);
	if (memchr(sp + 1, '\0', plen) != NULL)
		return seterr(err, errlen, "tablespace_map: a NUL in a path");
	for (i = 0; i < m->n; i++) {
		if (strlen(m->e[i].oid) == olen &&
		    memcmp(m->e[i].oid, line, olen) == 0)
			return seterr(err, errlen, "tablespace_map: OID %.*s "
			    "twice", (int)olen, line);
		if (strlen(m->e[i].path) == plen &&
		    memcmp(m->e[i].path, sp + 1, plen) == 0)
			return seterr(err, errlen, "tablespace_map: one path "
			    "for OIDs %s and %.*s", m->e[i].oid, (int)olen,
			    line);
	}
	if (m->n == TSMAP_MAX)
		return seterr(err, errlen, "tablespace_map: more than %d "
		    "tablespaces", TSMAP_MAX);
	m->e = xrealloc(m->e, (m->n + 1) * sizeof(*m->e));
	e = &m->e[m->n++];
	memcpy(e->oid, line, olen);
	e->oid[olen] = '\0';
	e->path = xmalloc(plen + 1);
	memcpy(e->path, sp + 1, plen);
	e->path[plen] = '\0';
	return 0;
}

int
tsmap_parse(const char *p, size_t n, struct tsmap *m, char *err,
    size_t errlen)
{
	char *line = xmalloc(n + 1);
	size_t i, len = 0;
	int escaped = 0;

	memset(m, 0, sizeof(*m));
	for (i = 0; i < n; i++) {
		char c = p[i];

		if (!escaped && (c == '\n' || c == '\r')) {
			if (len == 0)
				continue;	/* "\r\n", or an empty line */
			if (tsmap_line(m, line, len, err, errlen) == -1)
				goto bad;
			len = 0;
		} else if (!escaped && c == '\\')
			escaped = 1;
		else {
			line[len++] = c;
			escaped = 0;
		}
	}
	if (len != 0 || escaped) {
		seterr(err, errlen, "tablespace_map: its last line has no end "
		    "(PostgreSQL refuses such a map)");
		goto bad;
	}
	free(line);
	return 0;
bad:
	free(line);
	tsmap_free(m);
	return -1;
}

void
tsmap_free(struct tsmap *m)
{
	size_t i;

	for (i = 0; i < m->n; i++)
		free(m->e[i].path);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

int
tsmap_option(const char *arg, char **oldp, char **newp, char *err,
    size_t errlen)
{
	size_t n = strlen(arg), i, k = 0;
	char *buf = xmalloc(n + 1), *split = NULL;

	/* undo "\=", and find the first '=' not so escaped */
	for (i = 0; i < n; i++) {
		if (arg[i] == '\\' && i + 1 < n && arg[i + 1] == '=') {
			buf[k++] = '=';
			i++;
		} else if (arg[i] == '=' && split == NULL) {
			buf[k] = '\0';
			split = buf + k + 1;
			k++;
		} else
			buf[k++] = arg[i];
	}
	buf[k] = '\0';
	if (split == NULL || buf[0] != '/' || split[0] != '/') {
		free(buf);
		return seterr(err, errlen, "-T %s: OLD=NEW, both absolute "
		    "paths (an '=' in a path is written \\=)", arg);
	}
	*oldp = xstrdup(buf);
	*newp = xstrdup(split);
	free(buf);
	return 0;
}
