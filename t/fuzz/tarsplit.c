/*
 * libFuzzer on tarsplit's input, the tar stream it is given: its main,
 * with a memfd as stdin and another as stdout.  Laws checked on every
 * run: the output stays within a small multiple of the input (no padding
 * of a tiny input into a huge output); on a stream tarsplit accepts, no
 * path appears twice and no link but a tablespace's passes; the heap
 * never holds more than 4 times the input and 16 MiB (a manifest parsed
 * as one tree is a finding).
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <sanitizer/allocator_interface.h>

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);
int	tarsplit_main(int, char *[]);
void	tarsplit_fuzz_cleanup(void);

jmp_buf	fuzz_return;
static volatile int status;
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

void
fuzz_exit(int s)
{
	status = s;
	longjmp(fuzz_return, 1);
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

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static int in = -1, out = -1;
	char *argv[] = { "tarsplit", NULL };
	struct stat st;
	char *o;

	size_t heap_base;

	if (in == -1) {
		__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
		if ((in = memfd_create("in", 0)) == -1 ||
		    (out = memfd_create("out", 0)) == -1 ||
		    dup2(in, STDIN_FILENO) == -1 || dup2(out, STDOUT_FILENO) == -1)
			abort();
	}
	if (ftruncate(STDIN_FILENO, 0) == -1 || ftruncate(STDOUT_FILENO, 0) ==
	    -1 || lseek(STDIN_FILENO, 0, SEEK_SET) == -1 ||
	    lseek(STDOUT_FILENO, 0, SEEK_SET) == -1 ||
	    write_all(STDIN_FILENO, data, size) == -1 ||
	    lseek(STDIN_FILENO, 0, SEEK_SET) == -1)
		abort();
	status = 0;
	optind = 0;
	heap_base = heap_peak = __sanitizer_get_current_allocated_bytes();
	if (setjmp(fuzz_return) == 0)
		status = tarsplit_main(1, argv);
	tarsplit_fuzz_cleanup();
	/* Memory grows with the input's bytes, never many times over. */
	if (heap_peak - heap_base > 4 * size + (16 << 20))
		abort();
	if (fstat(STDOUT_FILENO, &st) == -1)
		abort();
	if ((size_t)st.st_size > 2 * size + 65536)
		abort();	/* runaway output */
	if (status == 0 && st.st_size > 0) {
		o = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED,
		    STDOUT_FILENO, 0);
		if (o == MAP_FAILED)
			abort();
		check_accepted(o, (size_t)st.st_size);
		munmap(o, (size_t)st.st_size);
	}
	return 0;
}
