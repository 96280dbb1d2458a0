/*
 * libFuzzer on uriparse's parser (uriparse/location.h), through its own
 * entry points: the location as libpq reads it, and the options checked
 * by the option table.
 */
#include <stdlib.h>
#include <string.h>

#include "location.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

/*
 * The fuzzer's bytes: a location, then NUL-separated key=value options
 * (but the ones that name files: no file system here).
 */
int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct options o;
	struct conn c;
	char errbuf[512], *buf = xmalloc(size + 1), *p;
	size_t off;

	memcpy(buf, data, size);
	buf[size] = '\0';
	memset(&o, 0, sizeof(o));
	(void)set_value(&o, "location", 8, buf, errbuf, sizeof(errbuf));
	for (off = strlen(buf) + 1; off < size; off += strlen(p) + 1) {
		p = buf + off;
		if (strncmp(p, "ssl_cert=", 9) != 0 && strncmp(p, "ssl_key=",
		    8) != 0 && strncmp(p, "ssl_root_cert=", 14) != 0 &&
		    strncmp(p, "pg_bin_dir=", 11) != 0)
			(void)set_option(&o, p, errbuf, sizeof(errbuf));
	}
	(void)normalize(&o, &c, errbuf, sizeof(errbuf));
	free_conn(&c);
	free_options(&o);
	free(buf);
	return 0;
}

