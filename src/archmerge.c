/*
 * Merging BASE_BACKUP's archives into one tar.  Each archive is read as a
 * tar, header by header: members pass unchanged, but for a tablespace's,
 * renamed under pg_tblspc/OID/, and the data directory's pg_tblspc
 * entries, which the merged tar holds as directories already.  The
 * manifest is held in memory until the server has said the backup is
 * good: only then do it and the trailer go out, so that a failed backup
 * never looks like a complete tar.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "archmerge.h"
#include "util.h"

#define BLOCK		512
#define FLUSH_AT	(256 * 1024)
#define MANIFEST_MAX	((size_t)1 << 30)	/* the server's own limit */

/* ustar header fields: offset, width */
#define NAME		0, 100
#define MODE		100, 8
#define UID		108, 8
#define GID		116, 8
#define SIZE		124, 12
#define MTIME		136, 12
#define CHKSUM		148, 8
#define TYPEFLAG	156

enum place { NOWHERE, IN_ARCHIVE, IN_MANIFEST };

struct merge {
	int			 fd;
	const struct tablespace	*ts;
	size_t			 nts;
	size_t			 next;		/* archives begun */
	enum place		 where;
	/* the current archive's tar */
	unsigned char		 hdr[BLOCK];
	size_t			 hdrlen;
	uint64_t		 left;		/* payload and padding to go */
	int			 dropping;	/* ... not copied */
	int			 trailer;	/* its end blocks were seen */
	/* the first header seen: owner and time for members of ours */
	unsigned char		 model[BLOCK];
	int			 have_model;
	struct buf		 out;
	struct buf		 manifest;
	uint64_t		 received;
	int			 past_control;	/* global/pg_control begun */
	int			 in_place;	/* refused: pg_tblspc/X unlisted */
};

struct merge *
merge_new(int fd, const struct tablespace *ts, size_t nts)
{
	struct merge *m = xmalloc(sizeof(*m));

	memset(m, 0, sizeof(*m));
	m->fd = fd;
	m->ts = ts;
	m->nts = nts;
	return m;
}

void
merge_free(struct merge *m)
{
	if (m == NULL)
		return;
	buf_free(&m->out);
	buf_free(&m->manifest);
	free(m);
}

int
merge_in_place(const struct merge *m)
{
	return m->in_place;
}

int
merge_past_control(const struct merge *m)
{
	return m != NULL && m->past_control;
}

uint64_t
merge_received(const struct merge *m)
{
	return m->received;
}

static int
flush(struct merge *m, char *err, size_t errlen)
{
	if (m->out.len == 0)
		return 0;
	if (write_all(m->fd, m->out.p, m->out.len) == -1)
		return seterr(err, errlen, "write: %s", strerror(errno));
	m->out.len = 0;
	return 0;
}

static int
emit(struct merge *m, const void *p, size_t n, char *err, size_t errlen)
{
	/* large payloads go straight out, without a copy */
	if (n >= FLUSH_AT) {
		if (flush(m, err, errlen) == -1)
			return -1;
		if (write_all(m->fd, p, n) == -1)
			return seterr(err, errlen, "write: %s", strerror(errno));
		return 0;
	}
	buf_append(&m->out, p, n);
	return m->out.len >= FLUSH_AT ? flush(m, err, errlen) : 0;
}

/* Octal, zero-padded, NUL-terminated, in a field of width w. */
static void
put_octal(unsigned char *h, size_t off, size_t w, uint64_t v)
{
	char tmp[32];

	snprintf(tmp, sizeof(tmp), "%0*llo", (int)(w - 1), (unsigned long long)v);
	memcpy(h + off, tmp, w - 1);
	h[off + w - 1] = '\0';
}

static void
put_string(unsigned char *h, size_t off, size_t w, const char *s)
{
	size_t n = strlen(s);

	memset(h + off, 0, w);
	memcpy(h + off, s, n < w ? n : w);
}

static unsigned
checksum_of(const unsigned char *h)
{
	unsigned sum = 0;
	size_t i;

	for (i = 0; i < BLOCK; i++)
		sum += (i >= 148 && i < 156) ? ' ' : h[i];
	return sum;
}

static void
put_checksum(unsigned char *h)
{
	char tmp[8];

	snprintf(tmp, sizeof(tmp), "%06o", checksum_of(h));
	memcpy(h + 148, tmp, 6);
	h[154] = '\0';
	h[155] = ' ';
}

/* A numeric field: octal, or base-256 when its first byte has 0x80. */
static int
get_number(const unsigned char *h, size_t off, size_t w, uint64_t *v)
{
	size_t i;

	*v = 0;
	if (h[off] & 0x80) {
		if (h[off] != 0x80)
			return -1;	/* negative, or beyond 2^88 */
		for (i = 1; i < w; i++) {
			if (*v >> 56)
				return -1;
			*v = *v << 8 | h[off + i];
		}
		return 0;
	}
	for (i = 0; i < w && h[off + i] == ' '; i++)
		;
	for (; i < w && h[off + i] >= '0' && h[off + i] <= '7'; i++) {
		if (*v >> 60)
			return -1;
		*v = *v << 3 | (uint64_t)(h[off + i] - '0');
	}
	for (; i < w; i++)
		if (h[off + i] != ' ' && h[off + i] != '\0')
			return -1;
	return 0;
}

static int
all_zero(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

/* What archive i is, for messages. */
static const char *
archive_name(const struct merge *m, size_t i)
{
	return m->ts[i].oid == NULL ? "the data directory's archive" :
	    "a tablespace's archive";
}

/*
 * A header of ours, from the model: name, mode, type, size; the model's
 * owner; mtime as given.
 */
static void
make_header(const struct merge *m, unsigned char *h, const char *name,
    unsigned mode, char type, uint64_t size, int64_t mtime)
{
	memset(h, 0, BLOCK);
	if (m->have_model) {
		memcpy(h + 108, m->model + 108, 16);	/* uid, gid */
		memcpy(h + 265, m->model + 265, 64);	/* uname, gname */
	} else {
		put_octal(h, UID, 0);
		put_octal(h, GID, 0);
	}
	put_string(h, NAME, name);
	put_octal(h, MODE, mode);
	put_octal(h, SIZE, size);
	put_octal(h, MTIME, mtime < 0 ? 0 : (uint64_t)mtime);
	h[TYPEFLAG] = type;
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	put_checksum(h);
}

/*
 * A member's header with its name replaced: in the name field when it
 * fits, else after a pax header that carries it.
 */
static int
emit_renamed(struct merge *m, const unsigned char *orig, const char *name,
    char *err, size_t errlen)
{
	unsigned char h[BLOCK];
	size_t n = strlen(name);

	memcpy(h, orig, BLOCK);
	if (n > 100) {
		unsigned char ph[BLOCK], pad[BLOCK];
		char *rec;
		size_t len, digits = 1, pdlen;
		uint64_t mtime;

		/* "LEN path=NAME\n", LEN counting its own digits */
		for (;;) {
			len = digits + 7 + n;
			if (snprintf(NULL, 0, "%zu", len) == (int)digits)
				break;
			digits++;
		}
		rec = xmalloc(len + 1);
		snprintf(rec, len + 1, "%zu path=%s\n", len, name);
		(void)get_number(orig, MTIME, &mtime);
		make_header(m, ph, "././@PaxHeader", 0644, 'x', len,
		    (int64_t)mtime);
		pdlen = (BLOCK - len % BLOCK) % BLOCK;
		memset(pad, 0, sizeof(pad));
		if (emit(m, ph, BLOCK, err, errlen) == -1 ||
		    emit(m, rec, len, err, errlen) == -1 ||
		    emit(m, pad, pdlen, err, errlen) == -1) {
			free(rec);
			return -1;
		}
		free(rec);
	}
	put_string(h, NAME, name);
	memset(h + 345, 0, 155);		/* prefix */
	put_checksum(h);
	return emit(m, h, BLOCK, err, errlen);
}

/* Our pg_tblspc and pg_tblspc/OID, before any tablespace's member. */
static int
emit_tablespace_dirs(struct merge *m, char *err, size_t errlen)
{
	unsigned char h[BLOCK];
	uint64_t mtime = 0;
	size_t i;

	(void)get_number(m->model, MTIME, &mtime);
	make_header(m, h, "pg_tblspc", 0700, '5', 0, (int64_t)mtime);
	if (emit(m, h, BLOCK, err, errlen) == -1)
		return -1;
	for (i = 0; i < m->nts; i++) {
		char name[128];

		if (m->ts[i].oid == NULL)
			continue;
		snprintf(name, sizeof(name), "pg_tblspc/%s", m->ts[i].oid);
		make_header(m, h, name, 0700, '5', 0, (int64_t)mtime);
		if (emit(m, h, BLOCK, err, errlen) == -1)
			return -1;
	}
	return 0;
}

static const struct tablespace *
listed(const struct merge *m, const char *oid, size_t len)
{
	size_t i;

	for (i = 0; i < m->nts; i++)
		if (m->ts[i].oid != NULL && strlen(m->ts[i].oid) == len &&
		    memcmp(m->ts[i].oid, oid, len) == 0)
			return &m->ts[i];
	return NULL;
}

/*
 * A member of the data directory's archive under pg_tblspc: the
 * directory itself and each listed tablespace's symlink are dropped (the
 * merged tar has them as directories); anything else there is an
 * in-place tablespace or one created during the backup, whose files
 * would be missing.  1: drop, 0: keep, -1: refuse.
 */
static int
tblspc_member(struct merge *m, const char *name, char type, const char *link,
    char *err, size_t errlen)
{
	const struct tablespace *t;
	const char *rest;
	size_t len;

	if (strcmp(name, "pg_tblspc") == 0 || strcmp(name, "pg_tblspc/") == 0)
		return m->nts > 1 && type == '5' ? 1 : 0;
	if (strncmp(name, "pg_tblspc/", 10) != 0)
		return 0;
	rest = name + 10;
	len = strcspn(rest, "/");
	t = listed(m, rest, len);
	if (t == NULL || rest[len] != '\0' || type != '2') {
		char *safe = one_line(rest, len);

		seterr(err, errlen, "pg_tblspc/%s is not a tablespace the server "
		    "listed for the backup: an in-place tablespace, or one "
		    "created during the backup; its files would be missing", safe);
		free(safe);
		m->in_place = 1;
		return -1;
	}
	if (strcmp(link, t->location) != 0)
		return seterr(err, errlen, "pg_tblspc/%s links to another "
		    "place than the server listed", t->oid);
	return 1;
}

static int
header(struct merge *m, size_t arch, char *err, size_t errlen)
{
	const struct tablespace *t = &m->ts[arch];
	unsigned char *h = m->hdr;
	char name[256 + 2], link[101];
	uint64_t size, stored;
	char type = (char)h[TYPEFLAG];
	int r;

	if (all_zero(h, BLOCK)) {
		m->trailer = 1;
		return 0;
	}
	if (get_number(h, CHKSUM, &stored) == -1 || stored != checksum_of(h))
		return seterr(err, errlen, "%s: a damaged tar header",
		    archive_name(m, arch));
	if (get_number(h, SIZE, &size) == -1)
		return seterr(err, errlen, "%s: a damaged size field",
		    archive_name(m, arch));
	switch (type) {
	case '0': case '\0': case '1': case '2': case '5':
		break;
	default:
		return seterr(err, errlen, "%s: a tar member of type '%c', "
		    "which the server does not send", archive_name(m, arch),
		    type >= ' ' && type < 127 ? type : '?');
	}
	if (type == '2' || type == '5' || type == '1')
		size = 0;
	if (memcmp(h + 257, "ustar", 5) == 0 && h[345] != '\0')
		snprintf(name, sizeof(name), "%.*s/%.*s", 155, (char *)h + 345,
		    100, (char *)h);
	else
		snprintf(name, sizeof(name), "%.*s", 100, (char *)h);
	snprintf(link, sizeof(link), "%.*s", 100, (char *)h + 157);
	if (name[0] == '\0')
		return seterr(err, errlen, "%s: a member without a name",
		    archive_name(m, arch));

	if (!m->have_model) {
		memcpy(m->model, h, BLOCK);
		m->have_model = 1;
		if (m->nts > 1 && emit_tablespace_dirs(m, err, errlen) == -1)
			return -1;
	}
	m->left = (size + BLOCK - 1) / BLOCK * BLOCK;
	m->dropping = 0;
	if (t->oid == NULL) {
		/* the data directory's last file: the WAL comes next */
		if (strcmp(name, "global/pg_control") == 0)
			m->past_control = 1;
		if ((r = tblspc_member(m, name, type, link, err, errlen)) == -1)
			return -1;
		if (r == 1) {
			m->dropping = 1;
			return 0;
		}
		return emit(m, h, BLOCK, err, errlen);
	} else {
		char *renamed;
		size_t n = strlen(t->oid) + strlen(name) + 12;

		renamed = xmalloc(n);
		snprintf(renamed, n, "pg_tblspc/%s/%s", t->oid, name);
		r = emit_renamed(m, h, renamed, err, errlen);
		free(renamed);
		return r;
	}
}

static int
archive_bytes(struct merge *m, const unsigned char *p, size_t n, char *err,
    size_t errlen)
{
	size_t arch = m->next - 1;

	while (n > 0) {
		size_t take;

		if (m->left > 0) {
			take = m->left < n ? (size_t)m->left : n;
			if (!m->dropping && emit(m, p, take, err, errlen) == -1)
				return -1;
			m->left -= take;
		} else if (m->trailer) {
			take = n;
			if (!all_zero(p, take))
				return seterr(err, errlen, "%s: data after its "
				    "end", archive_name(m, arch));
		} else {
			take = BLOCK - m->hdrlen < n ? BLOCK - m->hdrlen : n;
			memcpy(m->hdr + m->hdrlen, p, take);
			m->hdrlen += take;
			if (m->hdrlen == BLOCK) {
				m->hdrlen = 0;
				if (header(m, arch, err, errlen) == -1)
					return -1;
			}
		}
		p += take;
		n -= take;
	}
	return 0;
}

/* The current archive must end between members. */
static int
end_archive(struct merge *m, char *err, size_t errlen)
{
	if (m->where == IN_ARCHIVE && (m->left > 0 || m->hdrlen > 0))
		return seterr(err, errlen, "%s ended inside a member",
		    archive_name(m, m->next - 1));
	return 0;
}

int
merge_archive(struct merge *m, char *err, size_t errlen)
{
	if (m->where == IN_MANIFEST)
		return seterr(err, errlen, "an archive after the manifest");
	if (end_archive(m, err, errlen) == -1)
		return -1;
	if (m->next >= m->nts)
		return seterr(err, errlen, "more archives than the %zu the "
		    "server listed", m->nts);
	m->next++;
	m->where = IN_ARCHIVE;
	m->hdrlen = 0;
	m->left = 0;
	m->trailer = 0;
	return 0;
}

int
merge_manifest(struct merge *m, char *err, size_t errlen)
{
	if (m->where == IN_MANIFEST)
		return seterr(err, errlen, "a second manifest");
	if (end_archive(m, err, errlen) == -1)
		return -1;
	if (m->next != m->nts)
		return seterr(err, errlen, "the manifest arrived after %zu of "
		    "the %zu archives", m->next, m->nts);
	m->where = IN_MANIFEST;
	return 0;
}

int
merge_data(struct merge *m, const unsigned char *p, size_t n, char *err,
    size_t errlen)
{
	m->received += n;
	switch (m->where) {
	case IN_ARCHIVE:
		return archive_bytes(m, p, n, err, errlen);
	case IN_MANIFEST:
		if (n > MANIFEST_MAX - m->manifest.len)
			return seterr(err, errlen, "a backup_manifest over 1 GiB");
		buf_append(&m->manifest, p, n);
		return 0;
	default:
		return seterr(err, errlen, "data before any archive");
	}
}

int
merge_copydata(struct merge *m, const unsigned char *p, size_t n, char *err,
    size_t errlen)
{
	const unsigned char *name_end, *loc, *loc_end;
	const char *want;

	if (n == 0)
		return seterr(err, errlen, "an empty CopyData message");
	switch (p[0]) {
	case 'n':
		name_end = memchr(p + 1, '\0', n - 1);
		if (name_end == NULL)
			return seterr(err, errlen, "a malformed new-archive message");
		loc = name_end + 1;
		loc_end = memchr(loc, '\0', (size_t)(p + n - loc));
		if (loc_end == NULL || loc_end != p + n - 1)
			return seterr(err, errlen, "a malformed new-archive message");
		if (m->next >= m->nts)
			return seterr(err, errlen, "more archives than the %zu "
			    "the server listed", m->nts);
		want = m->ts[m->next].location ? m->ts[m->next].location : "";
		if (strcmp((const char *)loc, want) != 0)
			return seterr(err, errlen, "an archive arrived out of "
			    "the listed order");
		return merge_archive(m, err, errlen);
	case 'd':
		return merge_data(m, p + 1, n - 1, err, errlen);
	case 'p':
		if (n != 9)
			return seterr(err, errlen, "a malformed progress message");
		return 0;
	case 'm':
		if (n != 1)
			return seterr(err, errlen, "a malformed manifest message");
		return merge_manifest(m, err, errlen);
	default:
		return seterr(err, errlen, "a CopyData message of unknown "
		    "type 0x%02x", p[0]);
	}
}

int
merge_finish(struct merge *m, char *err, size_t errlen)
{
	unsigned char h[BLOCK], zero[2 * BLOCK];
	size_t pad;

	if (m->where != IN_MANIFEST)
		return seterr(err, errlen, "the server sent no backup_manifest");
	if (m->manifest.len == 0)
		return seterr(err, errlen, "the server sent an empty backup_manifest");
	make_header(m, h, "backup_manifest", 0600, '0', m->manifest.len,
	    (int64_t)time(NULL));
	memset(zero, 0, sizeof(zero));
	pad = (BLOCK - m->manifest.len % BLOCK) % BLOCK;
	if (emit(m, h, BLOCK, err, errlen) == -1 ||
	    emit(m, m->manifest.p, m->manifest.len, err, errlen) == -1 ||
	    emit(m, zero, pad, err, errlen) == -1 ||
	    emit(m, zero, sizeof(zero), err, errlen) == -1)
		return -1;
	return flush(m, err, errlen);
}
