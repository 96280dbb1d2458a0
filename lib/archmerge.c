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
#include "tar.h"
#include "util.h"

#define BLOCK		TAR_BLOCK
#define FLUSH_AT	(256 * 1024)
#define MANIFEST_MAX	((size_t)1 << 30)	/* the server's own limit */

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
	struct tar_header	 model;
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

/* What archive i is, for messages. */
static const char *
archive_name(const struct merge *m, size_t i)
{
	return m->ts[i].oid == NULL ? "the data directory's archive" :
	    "a tablespace's archive";
}

/*
 * The header of a member of ours, with the owner of the model, the first
 * header the server sent: a directory at its time, or the manifest.
 */
static int
emit_ours(struct merge *m, const char *name, char type, unsigned int mode,
    uint64_t size, int64_t mtime, char *err, size_t errlen)
{
	struct tar_header h;
	struct buf b = { 0 };
	int r;

	memset(&h, 0, sizeof(h));
	if (m->have_model) {
		h.uid = m->model.uid;
		h.gid = m->model.gid;
		memcpy(h.uname, m->model.uname, sizeof(h.uname));
		memcpy(h.gname, m->model.gname, sizeof(h.gname));
	}
	h.type = type;
	h.mode = mode;
	h.size = size;
	h.mtime = mtime;
	tar_header_write(&b, &h, name, NULL);
	r = emit(m, b.p, b.len, err, errlen);
	buf_free(&b);
	return r;
}

/*
 * A member's header with its name replaced: in the name field when it
 * fits, else after a pax header that carries it (tar_header_write).
 */
static int
emit_renamed(struct merge *m, const struct tar_header *h, const char *name,
    char *err, size_t errlen)
{
	struct buf b = { 0 };
	int r;

	tar_header_write(&b, h, name, h->type == TAR_HARDLINK ||
	    h->type == TAR_SYMLINK ? h->link : NULL);
	r = emit(m, b.p, b.len, err, errlen);
	buf_free(&b);
	return r;
}

/* Our pg_tblspc and pg_tblspc/OID, before any tablespace's member. */
static int
emit_tablespace_dirs(struct merge *m, char *err, size_t errlen)
{
	size_t i;

	if (emit_ours(m, "pg_tblspc", TAR_DIR, 0700, 0, m->model.mtime, err,
	    errlen) == -1)
		return -1;
	for (i = 0; i < m->nts; i++) {
		char name[128];

		if (m->ts[i].oid == NULL)
			continue;
		snprintf(name, sizeof(name), "pg_tblspc/%s", m->ts[i].oid);
		if (emit_ours(m, name, TAR_DIR, 0700, 0, m->model.mtime, err,
		    errlen) == -1)
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
	struct tar_header h;
	char why[128];
	int r;

	if ((r = tar_header_read(m->hdr, &h, why, sizeof(why))) == 0) {
		m->trailer = 1;
		return 0;
	}
	if (r == -1)
		return seterr(err, errlen, "%s: %s", archive_name(m, arch), why);
	switch (h.type) {
	case TAR_FILE: case TAR_HARDLINK: case TAR_SYMLINK: case TAR_DIR:
		break;
	default:
		return seterr(err, errlen, "%s: a tar member of type '%c', "
		    "which the server does not send", archive_name(m, arch),
		    h.type >= ' ' && h.type < 127 ? h.type : '?');
	}
	if (h.type != TAR_FILE)
		h.size = 0;
	if (h.name[0] == '\0')
		return seterr(err, errlen, "%s: a member without a name",
		    archive_name(m, arch));

	if (!m->have_model) {
		m->model = h;
		m->have_model = 1;
		if (m->nts > 1 && emit_tablespace_dirs(m, err, errlen) == -1)
			return -1;
	}
	m->left = h.size + tar_padding(h.size);
	m->dropping = 0;
	if (t->oid == NULL) {
		/* the data directory's last file: the WAL comes next */
		if (strcmp(h.name, "global/pg_control") == 0)
			m->past_control = 1;
		if ((r = tblspc_member(m, h.name, h.type, h.link, err,
		    errlen)) == -1)
			return -1;
		if (r == 1) {
			m->dropping = 1;
			return 0;
		}
		/* the server's own header, as it came */
		return emit(m, m->hdr, BLOCK, err, errlen);
	} else {
		char *renamed;
		size_t n = strlen(t->oid) + strlen(h.name) + 12;

		renamed = xmalloc(n);
		snprintf(renamed, n, "pg_tblspc/%s/%s", t->oid, h.name);
		r = emit_renamed(m, &h, renamed, err, errlen);
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
			if (!is_zero(p, take))
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
	unsigned char zero[2 * BLOCK];
	size_t pad;

	if (m->where != IN_MANIFEST)
		return seterr(err, errlen, "the server sent no backup_manifest");
	if (m->manifest.len == 0)
		return seterr(err, errlen, "the server sent an empty backup_manifest");
	memset(zero, 0, sizeof(zero));
	pad = (size_t)tar_padding(m->manifest.len);
	if (emit_ours(m, "backup_manifest", TAR_FILE, 0600, m->manifest.len,
	    (int64_t)time(NULL), err, errlen) == -1 ||
	    emit(m, m->manifest.p, m->manifest.len, err, errlen) == -1 ||
	    emit(m, zero, pad, err, errlen) == -1 ||
	    emit(m, zero, sizeof(zero), err, errlen) == -1)
		return -1;
	return flush(m, err, errlen);
}
