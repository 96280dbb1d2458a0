/*
 * libFuzzer on tarsplit's input, the tar stream it is given: its core
 * (tarsplit/split.h) through its own entry points, a memfd as its input
 * and another as its output, the manifest checked.  Laws checked on every
 * run: the output stays within a small multiple of the input (no padding
 * of a tiny input into a huge output); on a stream tarsplit accepts, no
 * path appears twice and no link but a tablespace's passes; the heap
 * never holds more than 4 times the input and 16 MiB (a manifest parsed
 * as one tree is a finding).
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <sanitizer/allocator_interface.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bmverify.h"
#include "frame.h"
#include "split.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

static size_t heap_peak;

/* The heap's high-water mark during a run. */
static void
on_malloc(const volatile void *p, size_t n)
{
	size_t now = __sanitizer_get_current_allocated_bytes();

	(void)p;
	(void)n;
	if (now > heap_peak)
		heap_peak = now;
}

static void
on_free(const volatile void *p)
{
	(void)p;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* An accepted stream: each record path once; links only pg_tblspc/N. */
static void
check_accepted(const char *p, size_t n)
{
	char errbuf[256], **paths = NULL;
	size_t npaths = 0, i;
	struct frame f;

	while (n > 0) {
		const char *nl = memchr(p, '\n', n);
		size_t len;

		if (nl == NULL)
			abort();	/* accepted, yet cut */
		len = (size_t)(nl - p);
		if (frame_parse(p, len, &f, errbuf, sizeof(errbuf)) != 1)
			abort();
		p += len + 1;
		n -= len + 1;
		if (frame_is_record(f.type)) {
			if (f.type == FRAME_HARDLINK || (f.type == FRAME_SYMLINK &&
			    strncmp(f.path, "/data/pg_tblspc/", 16) != 0))
				abort();	/* a link passed */
			paths = realloc(paths, (npaths + 1) * sizeof(*paths));
			paths[npaths++] = strdup(f.path);
		}
		if (f.type == FRAME_FILE) {
			if (f.size > n)
				abort();
			p += f.size;
			n -= f.size;
		}
		frame_free(&f);
	}
	if (npaths > 1)
		qsort(paths, npaths, sizeof(*paths), cmp_str);
	for (i = 1; i < npaths; i++)
		if (strcmp(paths[i - 1], paths[i]) == 0)
			abort();	/* a path twice */
	for (i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
}

/* One run, as tarsplit's main runs it without options: 0, or -1. */
static int
split_run(int in, int out)
{
	struct split s;
	int rc;

	memset(&s, 0, sizeof(s));
	s.prog = "tarsplit";
	s.in = in;
	s.out = out;
	s.root_mode = -1;
	if ((s.verifier = bmv_new(CK_CRC32C)) == NULL)
		abort();
	rc = split_open(&s) == -1 || split_begin(&s) == -1 ||
	    split_members(&s) == -1 || split_end(&s, out) == -1 ? -1 : 0;
	if (rc == -1 && (s.failed == OUTCOME_OK || s.message[0] == '\0'))
		abort();	/* a failure that does not say why */
	split_close(&s);
	return rc;
}

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static int in = -1, out = -1;
	struct stat st;
	size_t heap_base;
	char *o;
	int rc;

	if (in == -1) {
		__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
		if ((in = memfd_create("in", 0)) == -1 ||
		    (out = memfd_create("out", 0)) == -1)
			abort();
	}
	if (ftruncate(in, 0) == -1 || ftruncate(out, 0) == -1 ||
	    lseek(in, 0, SEEK_SET) == -1 || lseek(out, 0, SEEK_SET) == -1 ||
	    write_all(in, data, size) == -1 || lseek(in, 0, SEEK_SET) == -1)
		abort();
	heap_base = heap_peak = __sanitizer_get_current_allocated_bytes();
	rc = split_run(in, out);
	/* Memory grows with the input's bytes, never many times over. */
	if (heap_peak - heap_base > 4 * size + (16 << 20))
		abort();
	if (fstat(out, &st) == -1)
		abort();
	if ((size_t)st.st_size > 2 * size + 65536)
		abort();	/* runaway output */
	if (rc == 0 && st.st_size > 0) {
		o = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED,
		    out, 0);
		if (o == MAP_FAILED)
			abort();
		check_accepted(o, (size_t)st.st_size);
		munmap(o, (size_t)st.st_size);
	}
	return 0;
}
