/*
 * split: the core of tarsplit(1), the tar stream of a base backup into
 * record frames, each member checked against its backup_manifest.  It
 * never ends the process: each step returns 0, or -1 with the outcome
 * and message in the split (and, at a frame boundary, an error frame
 * written), for tarsplit's main, or the fuzz target, to end with.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bmverify.h"
#include "frame.h"
#include "split.h"
#include "tar.h"
#include "util.h"

#define EXIT_STREAM	OUTCOME_STREAM_BROKEN
#define EXIT_VERIFY	OUTCOME_MANIFEST_MISMATCH
#define READ_BLOCK	(1024 * 1024)

/*
 * A data directory's own manifest.json would stand where the snapshot's
 * /manifest.json is once Plakar holds the data directory at its root.
 */
#define OWN_MANIFEST	"manifest.json"
#define OWN_MANIFEST_MAX (64 * 1024 * 1024)

/*
 * The failure, kept; no end frame follows.  At a frame boundary an error
 * frame says why; inside a payload we stop writing (frames(5)): the
 * consumer finds the payload cut short, and no padding turns a tiny
 * input into a huge output.  -1.
 */
static int __attribute__((format(printf, 5, 6)))
fail(struct split *s, enum outcome status, const char *member, size_t memberlen,
    const char *fmt, ...)
{
	char *path = NULL, *shown;
	size_t pathlen = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->message, sizeof(s->message), fmt, ap);
	va_end(ap);
	if (member != NULL) {
		pathlen = 6 + memberlen;
		path = xmalloc(pathlen + 1);
		memcpy(path, "/data/", 6);
		memcpy(path + 6, member, memberlen);
		path[pathlen] = '\0';
	}
	if (!s->list && s->begun && s->owed == 0)
		(void)frame_write_error(s->out, s->message, path, pathlen);
	shown = one_line(s->message, strlen(s->message));
	snprintf(s->message, sizeof(s->message), "%s", shown);
	free(shown);
	free(path);
	s->failed = status;
	return -1;
}

/* A system call's failure, errno named: no error frame can follow it. */
static int
fail_errno(struct split *s, const char *what)
{
	snprintf(s->message, sizeof(s->message), "%s: %s", what,
	    strerror(errno));
	s->failed = EXIT_STREAM;
	return -1;
}

static int
out(struct split *s, const void *p, size_t n)
{
	if (s->list)
		return 0;
	if (write_all(s->out, p, n) == -1)
		return fail_errno(s, "stdout");
	s->owed -= n;
	return 0;
}

static int
emit_header(struct split *s, const struct frame *f)
{
	char *json;

	s->records++;
	if (!s->list)
		return frame_write_record(s->out, f) == -1 ?
		    fail_errno(s, "stdout") : 0;
	if ((json = frame_record_json(f)) == NULL)
		return fail_errno(s, "json");
	if (dprintf(s->out, "%s\n", json) < 0) {
		free(json);
		return fail_errno(s, "stdout");
	}
	free(json);
	return 0;
}

int
split_manifest(struct split *s, const void *data, size_t len,
    const struct stat *st)
{
	struct frame f;
	struct passwd *pw;
	struct group *gr;

	memset(&f, 0, sizeof(f));
	f.type = FRAME_FILE;
	f.path = "/manifest.json";
	f.pathlen = strlen(f.path);
	f.size = (uint64_t)len;
	f.mode = st->st_mode & 07777;
	f.mtime = st->st_mtime;
	f.uid = st->st_uid;
	f.gid = st->st_gid;
	pw = getpwuid(st->st_uid);
	f.uname = pw != NULL ? pw->pw_name : "";
	gr = getgrgid(st->st_gid);
	f.gname = gr != NULL ? gr->gr_name : "";
	if (emit_header(s, &f) == -1)
		return -1;
	s->owed = f.size;
	s->bytes += f.size;
	return len > 0 ? out(s, data, len) : 0;
}

/* Bytes of the input at hand, reading more when none are: 0 at its end. */
static ssize_t
input(struct split *s, const unsigned char **p)
{
	ssize_t n;

	if (s->primed == 0) {
		do
			n = read(s->in, s->inbuf, READ_BLOCK);
		while (n == -1 && errno == EINTR);
		if (n <= 0)
			return n;
		s->primed = (size_t)n;
		s->inoff = 0;
	}
	*p = (const unsigned char *)s->inbuf + s->inoff;
	return (ssize_t)s->primed;
}

static void
consume(struct split *s, size_t n)
{
	s->inoff += n;
	s->primed -= n;
	s->consumed += n;
}

/* What take does with the bytes, besides consuming them. */
#define SEND	0x1		/* out, as payload */
#define VERIFY	0x2		/* to the verifier: a member's data */

/*
 * n bytes of input: sent, kept in b (if not NULL), verified, as how
 * says, or only skipped.  The number read, short at the input's end; -1
 * on a read error or a failed write (failed set).
 */
static int64_t
take(struct split *s, uint64_t n, int how, struct buf *b)
{
	const unsigned char *p;
	uint64_t done = 0;
	ssize_t r;

	while (done < n) {
		size_t k;

		if ((r = input(s, &p)) == -1)
			return fail_errno(s, "stdin");
		if (r == 0)
			break;
		k = (uint64_t)r < n - done ? (size_t)r : (size_t)(n - done);
		if ((how & SEND) && out(s, p, k) == -1)
			return -1;
		if (b != NULL)
			buf_append(b, p, k);
		if ((how & VERIFY) && s->verifier != NULL)
			bmv_data(s->verifier, p, k);
		consume(s, k);
		done += k;
	}
	return (int64_t)done;
}

/* A member's data, sent, then its padding. */
static int
copy_data(struct split *s, const char *name, size_t namelen, uint64_t size)
{
	int64_t done;

	if ((done = take(s, size, SEND | VERIFY, NULL)) == -1)
		return -1;
	if ((uint64_t)done != size)
		return fail(s, EXIT_STREAM, name, namelen, "member cut short: "
		    "%ju of %ju bytes", (uintmax_t)done, (uintmax_t)size);
	if ((done = take(s, tar_padding(size), 0, NULL)) == -1)
		return -1;
	if ((uint64_t)done != tar_padding(size))
		return fail(s, EXIT_STREAM, name, namelen, "truncated tar "
		    "stream: the member's padding is cut short");
	return 0;
}

static enum bmv_type
bmv_type_of(enum frame_type t)
{
	switch (t) {
	case FRAME_DIR:
		return BMV_DIR;
	case FRAME_SYMLINK:
		return BMV_SYMLINK;
	case FRAME_HARDLINK:
		return BMV_HARDLINK;
	default:
		return BMV_FILE;
	}
}

/* -r: the data directory itself, owned and dated as its first member. */
static int
emit_root(struct split *s, const struct frame *first)
{
	struct frame f = *first;

	f.type = FRAME_DIR;
	f.path = "/data";
	f.pathlen = 5;
	f.target = NULL;
	f.targetlen = 0;
	f.size = 0;
	f.mode = (unsigned int)s->root_mode;
	s->root_mode = -1;
	return emit_header(s, &f);
}

/* A member read whole into memory and checked, not sent. */
static int
read_member(struct split *s, const char *name, size_t namelen,
    uint64_t size, struct buf *b)
{
	int64_t done;

	if ((done = take(s, size, VERIFY, b)) == -1)
		return -1;
	if ((uint64_t)done != size)
		return fail(s, EXIT_STREAM, name, namelen, "member cut short");
	if ((done = take(s, tar_padding(size), 0, NULL)) == -1)
		return -1;
	if ((uint64_t)done != tar_padding(size))
		return fail(s, EXIT_STREAM, name, namelen, "truncated tar "
		    "stream: the member's padding is cut short");
	return 0;
}

/*
 * The data directory's manifest.json: one that a restore of a snapshot
 * left (a /manifest.json of ours) is left out, with a notice; any other
 * fails the backup, since the snapshot's would hide it.
 */
static int
own_manifest(struct split *s, const struct frame *f, const char *member,
    size_t len)
{
	struct buf b = { 0 };
	json_t *j;
	int ours;

	if (f->size > OWN_MANIFEST_MAX)
		return fail(s, EXIT_STREAM, member, len, "manifest.json: a file of "
		    "this name in the data directory would be hidden by the "
		    "snapshot's /manifest.json: move it away");
	if (s->verifier != NULL)
		bmv_begin(s->verifier, member, len, f->size, BMV_FILE);
	if (read_member(s, member, len, f->size, &b) == -1) {
		buf_free(&b);
		return -1;
	}
	j = json_loadb((const char *)b.p, b.len, 0, NULL);
	ours = json_is_object(j) &&
	    json_string_value(json_object_get(j, "connector")) != NULL &&
	    strcmp(json_string_value(json_object_get(j, "connector")),
	    "postgresql+bin") == 0 &&
	    json_string_value(json_object_get(j, "dump_format")) != NULL &&
	    strcmp(json_string_value(json_object_get(j, "dump_format")),
	    "basebackup") == 0;
	json_decref(j);
	buf_free(&b);
	if (!ours)
		return fail(s, EXIT_STREAM, member, len, "manifest.json: a file of "
		    "this name in the data directory would be hidden by the "
		    "snapshot's /manifest.json: move it away");
	fprintf(stderr, "%s: manifest.json: the /manifest.json of the "
	    "snapshot this cluster was restored from; left out of the "
	    "backup\n", s->prog);
	return 0;
}

/* The record of a member, its name checked; its path and target owned. */
static int
member_record(struct split *s, const struct tar_member *m, const char *member,
    size_t len, struct frame *f)
{
	memset(f, 0, sizeof(*f));
	f->pathlen = 6 + len;
	f->path = xmalloc(f->pathlen + 1);
	memcpy(f->path, "/data/", 6);
	memcpy(f->path + 6, member, len);
	f->path[f->pathlen] = '\0';
	f->mode = m->h.mode & 07777;
	f->mtime = m->h.mtime;
	f->uid = (int64_t)m->h.uid;
	f->gid = (int64_t)m->h.gid;
	f->uname = m->h.uname;
	f->gname = m->h.gname;

	/* Holes would be ours to fill: pg_basebackup sends none. */
	if (m->sparse || m->h.type == 'S')
		return fail(s, EXIT_STREAM, member, len, "a sparse member: not "
		    "a stream of pg_basebackup");
	switch (m->h.type) {
	case TAR_HARDLINK: {
		size_t linklen = strlen(m->link);

		if (!relpath_is_safe(m->link, linklen))
			return fail(s, EXIT_STREAM, member, len,
			    "unsafe hard link target");
		f->type = FRAME_HARDLINK;
		f->targetlen = 6 + linklen;
		f->target = xmalloc(f->targetlen + 1);
		memcpy(f->target, "/data/", 6);
		memcpy(f->target + 6, m->link, linklen + 1);
		return 0;
	}
	case TAR_FILE:
		f->type = FRAME_FILE;
		f->size = m->h.size;
		f->fresh = s->fresh_set && f->mtime >= s->fresh_since;
		return 0;
	case TAR_DIR:
		f->type = FRAME_DIR;
		return 0;
	case TAR_SYMLINK:
		f->type = FRAME_SYMLINK;
		f->target = xstrdup(m->link != NULL ? m->link : "");
		f->targetlen = strlen(f->target);
		if (f->targetlen == 0)
			return fail(s, EXIT_STREAM, member, len,
			    "symbolic link without a target");
		return 0;
	default:
		return fail(s, EXIT_STREAM, member, len, "unsupported member "
		    "type (not a file, directory or link)");
	}
}

/* The member's record and payload out, checked against the manifest. */
static int
send_member(struct split *s, const char *member, size_t len,
    const struct frame *f)
{
	char errbuf[512];

	if (s->root_mode >= 0 && emit_root(s, f) == -1)
		return -1;
	if (f->type != FRAME_DIR && len == strlen(OWN_MANIFEST) &&
	    memcmp(member, OWN_MANIFEST, len) == 0) {
		if (f->type != FRAME_FILE)
			return fail(s, EXIT_STREAM, member, len, "manifest.json: "
			    "a link of this name in the data directory would "
			    "be hidden by the snapshot's /manifest.json: move "
			    "it away");
		if (own_manifest(s, f, member, len) == -1)
			return -1;
	} else {
		if (emit_header(s, f) == -1)
			return -1;
		if (s->verifier != NULL)
			bmv_begin(s->verifier, member, len, f->size,
			    bmv_type_of(f->type));
		if (f->type == FRAME_FILE) {
			s->owed = f->size;
			s->bytes += f->size;
			if (copy_data(s, member, len, f->size) == -1)
				return -1;
		}
	}
	if (s->verifier != NULL &&
	    bmv_end(s->verifier, errbuf, sizeof(errbuf)) == -1)
		return fail(s, EXIT_VERIFY, member, len, "%s", errbuf);
	return 0;
}

static int
split_member(struct split *s, const struct tar_member *m)
{
	const char *member = m->name;
	struct frame f;
	size_t len;
	int rc;

	len = strlen(member);
	while (len > 1 && member[len - 1] == '/')
		len--;
	if (len == 0)
		return fail(s, EXIT_STREAM, NULL, 0, "member without a name");
	if (!relpath_is_safe(member, len)) {
		char *shown = one_line(member, len);

		fail(s, EXIT_STREAM, NULL, 0, "unsafe member name: %s", shown);
		free(shown);
		return -1;
	}
	if (s->verifier != NULL && bmv_manifest_seen(s->verifier))
		return fail(s, EXIT_STREAM, member, len, "member after "
		    "backup_manifest");
	rc = member_record(s, m, member, len, &f);
	if (rc == 0)
		rc = send_member(s, member, len, &f);
	/* what a link or directory carried is not theirs to send */
	if (rc == 0 && f.type != FRAME_FILE && m->h.size > 0 &&
	    take(s, m->h.size + tar_padding(m->h.size), 0, NULL) !=
	    (int64_t)(m->h.size + tar_padding(m->h.size)))
		rc = s->failed != OUTCOME_OK ? -1 : fail(s, EXIT_STREAM, NULL,
		    0, "truncated tar stream");
	free(f.path);
	free(f.target);
	return rc;
}

/* An extended header's data, whole: 0, or -1. */
static int
extended(struct split *s, const struct tar_header *h, struct buf *b)
{
	int64_t done;

	if (h->size > TAR_EXTENDED_MAX)
		return fail(s, EXIT_STREAM, NULL, 0, "an extended tar header "
		    "of %ju bytes, over %d", (uintmax_t)h->size,
		    TAR_EXTENDED_MAX);
	b->len = 0;
	if ((done = take(s, h->size, 0, b)) == -1)
		return -1;
	if ((uint64_t)done != h->size || take(s, tar_padding(h->size), 0,
	    NULL) != (int64_t)tar_padding(h->size))
		return s->failed != OUTCOME_OK ? -1 : fail(s, EXIT_STREAM,
		    NULL, 0, "truncated tar stream: an extended header is cut "
		    "short");
	buf_append(b, "", 1);		/* a NUL after it */
	return 0;
}

/*
 * The next member, the extended headers before it applied: 1, 0 at the
 * archive's end (two zero blocks), -1.
 */
static int
next_member(struct split *s, struct tar_member *m)
{
	unsigned char block[TAR_BLOCK];
	char errbuf[256];
	struct tar_header h;
	struct buf b = { 0 };
	int64_t n;
	int r;

	memset(m, 0, sizeof(*m));
	for (;;) {
		b.len = 0;
		if ((n = take(s, TAR_BLOCK, 0, &b)) == -1)
			goto failed;
		if (n < TAR_BLOCK) {
			fail(s, EXIT_STREAM, NULL, 0, "truncated tar stream: %s",
			    n > 0 ? "a header cut short" : "it ends without "
			    "its end-of-archive blocks");
			goto failed;
		}
		memcpy(block, b.p, TAR_BLOCK);
		if ((r = tar_header_read(block, &h, errbuf,
		    sizeof(errbuf))) == -1) {
			if (s->consumed == TAR_BLOCK)
				fail(s, EXIT_STREAM, NULL, 0, "not a tar "
				    "stream: %s", errbuf);
			else
				fail(s, EXIT_STREAM, NULL, 0, "%s", errbuf);
			goto failed;
		}
		if (r == 0) {
			/* the end: a second zero block must follow */
			b.len = 0;
			if ((n = take(s, TAR_BLOCK, 0, &b)) == -1)
				goto failed;
			if (n < TAR_BLOCK || tar_header_read(b.p, &h, errbuf,
			    sizeof(errbuf)) != 0) {
				fail(s, EXIT_STREAM, NULL, 0, "truncated tar "
				    "stream: it ends without its "
				    "end-of-archive blocks");
				goto failed;
			}
			buf_free(&b);
			tar_member_free(m);
			return 0;
		}
		switch (h.type) {
		case TAR_PAX:
			if (extended(s, &h, &b) == -1 ||
			    tar_pax_apply(m, (char *)b.p, b.len - 1, errbuf,
			    sizeof(errbuf)) == -1) {
				if (s->failed == OUTCOME_OK)
					fail(s, EXIT_STREAM, NULL, 0, "%s",
					    errbuf);
				goto failed;
			}
			continue;
		case TAR_PAX_GLOBAL:
			if (extended(s, &h, &b) == -1)
				goto failed;
			continue;
		case TAR_GNU_NAME:
		case TAR_GNU_LINK:
			if (extended(s, &h, &b) == -1)
				goto failed;
			if (h.type == TAR_GNU_NAME) {
				free(m->name);
				m->name = xstrdup((char *)b.p);
			} else {
				free(m->link);
				m->link = xstrdup((char *)b.p);
			}
			continue;
		default:
			tar_member_finish(m, &h);
			buf_free(&b);
			s->members++;
			return 1;
		}
	}
failed:
	buf_free(&b);
	tar_member_free(m);
	return -1;
}

/* An empty input says so, rather than what a tar reader makes of it. */
int
split_open(struct split *s)
{
	const unsigned char *p;
	ssize_t n;

	s->failed = OUTCOME_OK;
	s->inbuf = xmalloc(READ_BLOCK);
	if ((n = input(s, &p)) == -1)
		return fail_errno(s, "stdin");
	if (n == 0)
		return fail(s, EXIT_STREAM, NULL, 0, "empty input: no tar "
		    "stream");
	return 0;
}

int
split_begin(struct split *s)
{
	if (s->list)
		return 0;
	if (frame_write_begin(s->out, "plakar-pg tarsplit " VERSION) == -1)
		return fail_errno(s, "stdout");
	s->begun = 1;
	return 0;
}

int
split_members(struct split *s)
{
	struct tar_member m;
	char errbuf[1024], *bad;
	size_t badlen;
	int r;

	while ((r = next_member(s, &m)) == 1) {
		r = split_member(s, &m);
		tar_member_free(&m);
		if (r == -1)
			return -1;
	}
	if (r == -1)
		return -1;
	if (s->members == 0)
		return fail(s, EXIT_STREAM, NULL, 0, "empty input: no tar "
		    "member");
	bad = NULL;
	if (s->verifier != NULL && bmv_check(s->verifier, errbuf,
	    sizeof(errbuf), &bad, &badlen) == -1) {
		fail(s, EXIT_VERIFY, bad, bad != NULL ? badlen : 0, "%s",
		    errbuf);
		free(bad);
		return -1;
	}
	return 0;
}

int
split_end(struct split *s, int fd)
{
	if (s->list)
		return 0;
	if (frame_write_end(fd, s->records, s->bytes) == -1)
		return fail_errno(s, "end frame");
	return 0;
}

void
split_close(struct split *s)
{
	bmv_free(s->verifier);
	free(s->inbuf);
	s->verifier = NULL;
	s->inbuf = NULL;
}
