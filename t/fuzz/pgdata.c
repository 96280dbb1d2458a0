/*
 * libFuzzer on what the restore step reads of a snapshot before it names
 * anything (lib/pgdata.h): the first byte picks PG_VERSION, tablespace_map
 * or a -T argument, the rest is its content.  Laws: an accepted map's
 * OIDs are digits and its paths absolute, none twice; an accepted
 * PG_VERSION is 10 to 99.
 */
#include <stdlib.h>
#include <string.h>

#include "pgdata.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	char err[256], *o, *n, *arg;
	struct tsmap m;
	size_t i, k;
	int major;

	if (size == 0)
		return 0;
	switch (data[0] % 3) {
	case 0:
		if (pg_version_parse((const char *)data + 1, size - 1, &major,
		    err, sizeof(err)) == 0 && (major < 10 || major > 99))
			abort();
		break;
	case 1:
		if (tsmap_parse((const char *)data + 1, size - 1, &m, err,
		    sizeof(err)) == -1)
			break;
		for (i = 0; i < m.n; i++) {
			if (strspn(m.e[i].oid, "0123456789") !=
			    strlen(m.e[i].oid) || m.e[i].path[0] != '/')
				abort();
			for (k = 0; k < i; k++)
				if (strcmp(m.e[i].oid, m.e[k].oid) == 0 ||
				    strcmp(m.e[i].path, m.e[k].path) == 0)
					abort();
		}
		tsmap_free(&m);
		break;
	default:
		arg = xmalloc(size);
		memcpy(arg, data + 1, size - 1);
		arg[size - 1] = '\0';
		if (tsmap_option(arg, &o, &n, err, sizeof(err)) == 0) {
			if (o[0] != '/' || n[0] != '/')
				abort();
			free(o);
			free(n);
		}
		free(arg);
	}
	return 0;
}
