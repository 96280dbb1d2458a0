/*
 * libFuzzer on what basetar parses of the server's (lib/archmerge.c): the
 * CopyData messages of servers 15 and later, the per-archive COPYs of
 * earlier ones, and the tar inside both.  Input: one byte for the
 * generation, then messages, each a 2-byte big-endian length and its
 * bytes; for the legacy generation a message 'A' begins the next
 * archive, 'M' the manifest, any other is data.  Laws: the output is at
 * most a bounded multiple of the input (no amplification), and a merge
 * that finishes is a whole tar: 512-byte blocks, two zero blocks last.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archmerge.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

static struct tablespace ts[] = {
	{ "16384", "/srv/ts", -1 },
	{ NULL, NULL, -1 },
};

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static int fd = -1;
	struct merge *m;
	struct stat st;
	char err[512];
	size_t off = 1;
	int legacy, r = 0;

	if (size < 1)
		return 0;
	if (fd == -1 && (fd = memfd_create("basetar-fuzz", 0)) == -1)
		abort();
	if (ftruncate(fd, 0) == -1 || lseek(fd, 0, SEEK_SET) == -1)
		abort();
	legacy = data[0] & 1;
	m = merge_new(fd, ts, 2);
	while (r == 0 && off + 2 <= size) {
		size_t n = (size_t)data[off] << 8 | data[off + 1];
		const unsigned char *p = data + off + 2;

		off += 2;
		if (n > size - off)
			n = size - off;
		off += n;
		if (!legacy)
			r = merge_copydata(m, p, n, err, sizeof(err));
		else if (n == 1 && p[0] == 'A')
			r = merge_archive(m, err, sizeof(err));
		else if (n == 1 && p[0] == 'M')
			r = merge_manifest(m, err, sizeof(err));
		else
			r = merge_data(m, p, n, err, sizeof(err));
		if (r == -1 && (err[0] == '\0' || strchr(err, '\n') != NULL))
			abort();	/* every failure says why, on one line */
	}
	if (r == 0 && merge_finish(m, err, sizeof(err)) == 0) {
		unsigned char tail[1024];

		if (fstat(fd, &st) == -1 || st.st_size % 512 != 0 ||
		    st.st_size < 1024)
			abort();
		if (pread(fd, tail, sizeof(tail), st.st_size - 1024) != 1024)
			abort();
		for (size_t i = 0; i < sizeof(tail); i++)
			if (tail[i] != 0)
				abort();	/* a finished tar ends so */
	}
	if (fstat(fd, &st) == -1 || (size_t)st.st_size > 4 * size + 16384)
		abort();	/* amplification */
	merge_free(m);
	return 0;
}
