/*
 * The library by its own entry points, no process ended by it: the tar
 * codec both ways, frames(5)'s rules, the status channel.  Prints one
 * "ok - law" or "not ok - law" line each, then "N passed, N failed".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "outcome.h"
#include "pgdata.h"
#include "tar.h"
#include "util.h"

static int passed, failed;

static void
law(int ok, const char *what)
{
	printf("%s - %s\n", ok ? "ok" : "not ok", what);
	if (ok)
		passed++;
	else
		failed++;
}

/* A header written by tar_header_write, read back as a reader would. */
static int
read_back(const struct buf *b, struct tar_member *m)
{
	const unsigned char *p = b->p;
	size_t left = b->len;
	struct tar_header h;
	char err[128];

	memset(m, 0, sizeof(*m));
	while (left >= TAR_BLOCK) {
		if (tar_header_read(p, &h, err, sizeof(err)) != 1)
			return -1;
		p += TAR_BLOCK;
		left -= TAR_BLOCK;
		if (h.type == TAR_PAX) {
			if (tar_pax_apply(m, (const char *)p, (size_t)h.size, err,
			    sizeof(err)) == -1)
				return -1;
			p += h.size + tar_padding(h.size);
			left -= (size_t)(h.size + tar_padding(h.size));
			continue;
		}
		tar_member_finish(m, &h);
		return left == 0 ? 0 : -1;
	}
	return -1;
}

static void
tar_laws(void)
{
	struct tar_header h;
	struct tar_member m;
	struct buf b = { 0 };
	char name[400], err[128];
	unsigned char block[TAR_BLOCK];

	memset(&h, 0, sizeof(h));
	h.type = TAR_FILE;
	h.mode = 0640;
	h.uid = 26;
	h.gid = 26;
	h.size = 5;
	h.mtime = 1700000000;
	strcpy(h.uname, "postgres");
	strcpy(h.gname, "postgres");
	tar_header_write(&b, &h, "base/1/1259", NULL);
	law(b.len == TAR_BLOCK && read_back(&b, &m) == 0 &&
	    strcmp(m.name, "base/1/1259") == 0 && m.h.mode == 0640 &&
	    m.h.uid == 26 && m.h.size == 5 && m.h.mtime == 1700000000 &&
	    strcmp(m.h.uname, "postgres") == 0,
	    "tar: a short name in one ustar block, every field read back");
	tar_member_free(&m);

	memset(name, 'a', 150);
	memcpy(name + 150, "/b", 3);
	b.len = 0;
	tar_header_write(&b, &h, name, NULL);
	law(b.len == TAR_BLOCK && read_back(&b, &m) == 0 &&
	    strcmp(m.name, name) == 0,
	    "tar: a 152-byte name split into prefix and name, no pax");
	tar_member_free(&m);

	memset(name, 'c', 300);
	name[300] = '\0';
	b.len = 0;
	tar_header_write(&b, &h, name, NULL);
	law(b.len == 3 * TAR_BLOCK && read_back(&b, &m) == 0 &&
	    strcmp(m.name, name) == 0,
	    "tar: a 300-byte name that no split fits: a pax path record");
	tar_member_free(&m);

	h.size = (uint64_t)1 << 40;
	b.len = 0;
	tar_header_write(&b, &h, "big", NULL);
	law(b.len == TAR_BLOCK && (b.p[124] & 0x80) && read_back(&b, &m) ==
	    0 && m.h.size == (uint64_t)1 << 40,
	    "tar: a 1 TiB size in base-256, read back");
	tar_member_free(&m);

	h.size = 0;
	h.type = TAR_SYMLINK;
	memset(name, 't', 130);
	name[130] = '\0';
	b.len = 0;
	tar_header_write(&b, &h, "link", name);
	law(read_back(&b, &m) == 0 && m.link != NULL &&
	    strcmp(m.link, name) == 0,
	    "tar: a 130-byte link target: a pax linkpath record");
	tar_member_free(&m);

	tar_header_block(block, &h);
	block[10] ^= 1;
	law(tar_header_read(block, &h, err, sizeof(err)) == -1 &&
	    strstr(err, "checksum") != NULL,
	    "tar: a changed byte fails the checksum");
	memset(block, 0, sizeof(block));
	law(tar_header_read(block, &h, err, sizeof(err)) == 0,
	    "tar: a zero block is the end, not a header");
	memset(&m, 0, sizeof(m));
	law(tar_pax_apply(&m, "99 path=x\n", 10, err, sizeof(err)) == -1,
	    "tar: a pax record whose length lies is refused");
	memset(&m, 0, sizeof(m));
	(void)tar_pax_apply(&m, "22 GNU.sparse.major=1\n", 22, err,
	    sizeof(err));
	law(m.sparse == 1, "tar: GNU.sparse marks the member sparse");
	tar_member_free(&m);
	buf_free(&b);
}

/* One header line through frame_parse and frame_accept. */
static enum frame_verdict
accept_line(struct frame_reader *r, const char *line, char *err,
    size_t errlen)
{
	struct frame f;
	enum frame_verdict v;

	if (frame_parse(line, strlen(line), &f, err, errlen) != 1) {
		frame_free(&f);
		return FRAME_REFUSED;
	}
	v = frame_accept(r, &f, err, errlen);
	frame_free(&f);
	return v;
}

static void
frame_laws(void)
{
	static const char begin[] =
	    "{\"type\":\"begin\",\"version\":1,\"producer\":\"t\"}";
	static const char file[] = "{\"type\":\"file\",\"path\":\"/data/a\","
	    "\"size\":3,\"mode\":384,\"mtime\":0,\"uid\":0,\"gid\":0,"
	    "\"uname\":\"\",\"gname\":\"\"}";
	struct frame_reader r;
	char err[256];

	memset(&r, 0, sizeof(r));
	law(accept_line(&r, file, err, sizeof(err)) == FRAME_REFUSED &&
	    strstr(err, "begin") != NULL,
	    "frames: a record before the begin frame is refused");
	memset(&r, 0, sizeof(r));
	law(accept_line(&r, "{\"type\":\"begin\",\"version\":2,"
	    "\"producer\":\"t\"}", err, sizeof(err)) == FRAME_REFUSED,
	    "frames: version 2 is refused");
	memset(&r, 0, sizeof(r));
	law(accept_line(&r, begin, err, sizeof(err)) == FRAME_BEGUN &&
	    accept_line(&r, file, err, sizeof(err)) == FRAME_RECORD &&
	    r.records == 1 && r.bytes == 3 &&
	    accept_line(&r, begin, err, sizeof(err)) == FRAME_REFUSED,
	    "frames: records counted; a second begin is refused");
	memset(&r, 0, sizeof(r));
	(void)accept_line(&r, begin, err, sizeof(err));
	(void)accept_line(&r, file, err, sizeof(err));
	law(accept_line(&r, "{\"type\":\"end\",\"records\":1,\"bytes\":4}",
	    err, sizeof(err)) == FRAME_REFUSED,
	    "frames: an end frame whose counts differ is refused");
	law(accept_line(&r, "{\"type\":\"end\",\"records\":1,\"bytes\":3}",
	    err, sizeof(err)) == FRAME_ENDED &&
	    accept_line(&r, file, err, sizeof(err)) == FRAME_REFUSED,
	    "frames: the end frame ends the stream; nothing after it");
	memset(&r, 0, sizeof(r));
	(void)accept_line(&r, begin, err, sizeof(err));
	law(accept_line(&r, "{\"type\":\"error\",\"message\":\"boom\"}",
	    err, sizeof(err)) == FRAME_REFUSED &&
	    strcmp(err, "the backup failed: boom") == 0,
	    "frames: an error frame fails the stream with its message");
}

static void
pgdata_laws(void)
{
	static const char map[] = "16384 /srv/ts a\\\nb\r\n\n16385 /lead\n";
	struct tsmap m;
	char err[256], *o, *n;
	int major;

	law(tsmap_parse(map, sizeof(map) - 1, &m, err, sizeof(err)) == 0 &&
	    m.n == 2 && strcmp(m.e[0].path, "/srv/ts a\nb") == 0 &&
	    strcmp(m.e[1].oid, "16385") == 0 &&
	    strcmp(m.e[1].path, "/lead") == 0,
	    "tablespace_map: an escaped newline, \\r\\n, an empty line");
	tsmap_free(&m);
	law(tsmap_parse("16385  /lead\n", 13, &m, err, sizeof(err)) == -1,
	    "tablespace_map: a path that begins with a space is not absolute");
	law(tsmap_parse("1 /a\n2 /b", 10, &m, err, sizeof(err)) == -1 &&
	    strstr(err, "last line") != NULL,
	    "tablespace_map: a last line without its end is refused");
	law(tsmap_parse("0 /a\n", 5, &m, err, sizeof(err)) == -1 &&
	    tsmap_parse("4294967296 /a\n", 14, &m, err, sizeof(err)) == -1 &&
	    tsmap_parse("4294967295 /a\n", 14, &m, err, sizeof(err)) == 0,
	    "tablespace_map: OIDs from 1 to 4294967295");
	tsmap_free(&m);
	law(pg_version_parse("16\n", 3, &major, err, sizeof(err)) == 0 &&
	    major == 16 && pg_version_parse("16", 2, &major, err,
	    sizeof(err)) == -1 && pg_version_parse("9.6\n", 4, &major, err,
	    sizeof(err)) == -1, "PG_VERSION: digits and a newline, 10 or more");
	law(tsmap_option("/a\\=b=/c=d", &o, &n, err, sizeof(err)) == 0 &&
	    strcmp(o, "/a=b") == 0 && strcmp(n, "/c=d") == 0,
	    "-T: \\= is an '=' of a path; the first other '=' splits");
	free(o);
	free(n);
}

static void
status_laws(void)
{
	char line[256];
	int fds[2], e;
	ssize_t n;

	if (pipe(fds) == -1)
		abort();
	snprintf(line, sizeof(line), "%d", fds[1] < 3 ? 3 : fds[1]);
	if (fds[1] < 3 && dup2(fds[1], 3) == -1)
		abort();
	law(status_open("lib_test", "2") != 0, "status: -F 2 is refused, "
	    "and returns");
	law(status_open("lib_test", line) == 0, "status: -F N opens");
	e = status_fail(OUTCOME_DAMAGED, NULL, "a test failure");
	n = read(fds[0], line, sizeof(line) - 1);
	line[n > 0 ? n : 0] = '\0';
	law(e == outcome_exit(OUTCOME_DAMAGED) && strstr(line,
	    "\"status\":\"damaged\"") != NULL && strstr(line,
	    "\"message\":\"a test failure\"") != NULL,
	    "status: a failure writes its line and returns its exit status");
}

int
main(void)
{
	tar_laws();
	frame_laws();
	pgdata_laws();
	status_laws();
	printf("%d passed, %d failed\n", passed, failed);
	return failed > 0;
}
