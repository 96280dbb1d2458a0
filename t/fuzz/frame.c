/*
 * libFuzzer on the frame parser (lib/frame.c), the reader of every frame
 * stream tarjoin and the importer take in.  A law: a record that parses
 * writes a header that parses back to the same record.
 */
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	struct frame f, g;
	char errbuf[256], *json;

	if (frame_parse((const char *)data, size, &f, errbuf,
	    sizeof(errbuf)) == 1 && frame_is_record(f.type)) {
		if ((json = frame_record_json(&f)) == NULL)
			abort();
		if (strlen(json) > 2 * size + 512)
			abort();	/* runaway output */
		if (frame_parse(json, strlen(json), &g, errbuf,
		    sizeof(errbuf)) != 1 || g.type != f.type ||
		    g.pathlen != f.pathlen || memcmp(g.path, f.path,
		    f.pathlen) != 0 || g.size != f.size || g.mode != f.mode ||
		    g.mtime != f.mtime || g.fresh != f.fresh)
			abort();	/* the law */
		frame_free(&g);
		free(json);
	}
	frame_free(&f);
	return 0;
}
