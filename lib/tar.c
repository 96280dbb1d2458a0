/*
 * tar: headers read and written by their fields (tar.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tar.h"
#include "util.h"

/* A header field: where it is in the block, and how wide. */
struct field {
	size_t	off;
	size_t	len;
};

static const struct field F_NAME = { 0, 100 };
static const struct field F_MODE = { 100, 8 };
static const struct field F_UID = { 108, 8 };
static const struct field F_GID = { 116, 8 };
static const struct field F_SIZE = { 124, 12 };
static const struct field F_MTIME = { 136, 12 };
static const struct field F_CHKSUM = { 148, 8 };
static const struct field F_TYPE = { 156, 1 };
static const struct field F_LINK = { 157, 100 };
static const struct field F_MAGIC = { 257, 6 };
static const struct field F_VERSION = { 263, 2 };
static const struct field F_UNAME = { 265, 32 };
static const struct field F_GNAME = { 297, 32 };
static const struct field F_PREFIX = { 345, 155 };

/* The checksum's sums: bytes unsigned, and signed as some old tars did. */
static void
checksums(const unsigned char *b, unsigned long *u, long *s)
{
	size_t i;

	*u = 0;
	*s = 0;
	for (i = 0; i < TAR_BLOCK; i++) {
		unsigned char c = i >= F_CHKSUM.off &&
		    i < F_CHKSUM.off + F_CHKSUM.len ? ' ' : b[i];

		*u += c;
		*s += (signed char)c;
	}
}

/* A number field: octal, or base-256 when its first byte has 0x80. */
static int
get_number(const unsigned char *b, struct field f, uint64_t *v)
{
	const unsigned char *p = b + f.off;
	size_t i;

	*v = 0;
	if (p[0] & 0x80) {
		/* positive only, and within 64 bits */
		if (p[0] != 0x80)
			return -1;
		for (i = 1; i < f.len; i++) {
			if (*v >> 56)
				return -1;
			*v = *v << 8 | p[i];
		}
		return 0;
	}
	for (i = 0; i < f.len && p[i] == ' '; i++)
		;
	for (; i < f.len && p[i] >= '0' && p[i] <= '7'; i++) {
		if (*v >> 61)
			return -1;
		*v = *v << 3 | (uint64_t)(p[i] - '0');
	}
	for (; i < f.len; i++)
		if (p[i] != ' ' && p[i] != '\0')
			return -1;
	return 0;
}

static void
get_string(const unsigned char *b, struct field f, char *out)
{
	memcpy(out, b + f.off, f.len);
	out[f.len] = '\0';
}

int
tar_header_read(const unsigned char *b, struct tar_header *h, char *err,
    size_t errlen)
{
	unsigned long usum;
	long ssum;
	uint64_t stored, v;
	char name[101], prefix[156];

	memset(h, 0, sizeof(*h));
	if (is_zero(b, TAR_BLOCK))
		return 0;
	checksums(b, &usum, &ssum);
	if (get_number(b, F_CHKSUM, &stored) == -1 ||
	    (stored != usum && (long)stored != ssum))
		return seterr(err, errlen, "a damaged tar header (its checksum "
		    "does not match)");
	h->type = (char)b[F_TYPE.off];
	if (h->type == '\0' || h->type == '7')
		h->type = TAR_FILE;
	if (get_number(b, F_MODE, &v) == -1)
		return seterr(err, errlen, "a damaged tar header (mode)");
	h->mode = (unsigned int)(v & 07777);
	if (get_number(b, F_UID, &h->uid) == -1 ||
	    get_number(b, F_GID, &h->gid) == -1)
		return seterr(err, errlen, "a damaged tar header (owner)");
	if (get_number(b, F_SIZE, &h->size) == -1 || h->size > INT64_MAX)
		return seterr(err, errlen, "a damaged tar header (size)");
	if (get_number(b, F_MTIME, &v) == -1 || v > INT64_MAX)
		return seterr(err, errlen, "a damaged tar header (mtime)");
	h->mtime = (int64_t)v;
	get_string(b, F_NAME, name);
	/* POSIX ustar has a prefix; GNU's "ustar  " keeps other things there */
	if (memcmp(b + F_MAGIC.off, "ustar", F_MAGIC.len) == 0 &&
	    b[F_PREFIX.off] != '\0') {
		get_string(b, F_PREFIX, prefix);
		snprintf(h->name, sizeof(h->name), "%s/%s", prefix, name);
	} else
		snprintf(h->name, sizeof(h->name), "%s", name);
	get_string(b, F_LINK, h->link);
	get_string(b, F_UNAME, h->uname);
	get_string(b, F_GNAME, h->gname);
	return 1;
}

/* A decimal number of a pax record, whole: 0, or -1. */
static int
pax_number(const char *s, size_t n, int fraction, uint64_t *v)
{
	size_t i;

	*v = 0;
	if (n == 0)
		return -1;
	for (i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		if (*v > (UINT64_MAX - 9) / 10)
			return -1;
		*v = *v * 10 + (uint64_t)(s[i] - '0');
	}
	if (i == 0)
		return -1;
	/* mtime may have a fraction of a second: whole seconds are kept */
	if (i < n && fraction && s[i] == '.') {
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++)
			;
	}
	return i == n ? 0 : -1;
}

static char *
dup_bytes(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static int
key_is(const char *k, size_t klen, const char *want)
{
	return klen == strlen(want) && memcmp(k, want, klen) == 0;
}

int
tar_pax_apply(struct tar_member *m, const char *p, size_t n, char *err,
    size_t errlen)
{
	while (n > 0) {
		const char *sp, *eq, *val;
		size_t len, klen, vlen;
		uint64_t v;

		if ((sp = memchr(p, ' ', n)) == NULL ||
		    pax_number(p, (size_t)(sp - p), 0, &v) == -1 || v > n ||
		    v <= (uint64_t)(sp - p) + 1 || p[v - 1] != '\n')
			return seterr(err, errlen, "a damaged pax header");
		len = (size_t)v;
		if ((eq = memchr(sp + 1, '=', len - (size_t)(sp + 1 - p))) ==
		    NULL)
			return seterr(err, errlen, "a damaged pax header");
		klen = (size_t)(eq - (sp + 1));
		val = eq + 1;
		vlen = len - (size_t)(val - p) - 1;
		if (key_is(sp + 1, klen, "path")) {
			free(m->name);
			m->name = dup_bytes(val, vlen);
		} else if (key_is(sp + 1, klen, "linkpath")) {
			free(m->link);
			m->link = dup_bytes(val, vlen);
		} else if (key_is(sp + 1, klen, "size") ||
		    key_is(sp + 1, klen, "uid") ||
		    key_is(sp + 1, klen, "gid") ||
		    key_is(sp + 1, klen, "mtime")) {
			int mtime = key_is(sp + 1, klen, "mtime");

			if (pax_number(val, vlen, mtime, &v) == -1 ||
			    v > INT64_MAX)
				return seterr(err, errlen, "a damaged pax "
				    "header: %.*s", (int)klen, sp + 1);
			if (mtime) {
				m->pax_mtime = (int64_t)v;
				m->pax |= TAR_PAX_MTIME;
			} else if (key_is(sp + 1, klen, "size")) {
				m->pax_size = v;
				m->pax |= TAR_PAX_SIZE;
			} else if (key_is(sp + 1, klen, "uid")) {
				m->pax_uid = v;
				m->pax |= TAR_PAX_UID;
			} else {
				m->pax_gid = v;
				m->pax |= TAR_PAX_GID;
			}
		} else if (klen > 11 && memcmp(sp + 1, "GNU.sparse.", 11) == 0)
			m->sparse = 1;
		p += len;
		n -= len;
	}
	return 0;
}

void
tar_member_finish(struct tar_member *m, const struct tar_header *h)
{
	m->h = *h;
	if (m->name == NULL)
		m->name = xstrdup(h->name);
	if (m->link == NULL && (h->type == TAR_HARDLINK ||
	    h->type == TAR_SYMLINK))
		m->link = xstrdup(h->link);
	if (m->pax & TAR_PAX_SIZE)
		m->h.size = m->pax_size;
	if (m->pax & TAR_PAX_UID)
		m->h.uid = m->pax_uid;
	if (m->pax & TAR_PAX_GID)
		m->h.gid = m->pax_gid;
	if (m->pax & TAR_PAX_MTIME)
		m->h.mtime = m->pax_mtime;
}

void
tar_member_free(struct tar_member *m)
{
	free(m->name);
	free(m->link);
	memset(m, 0, sizeof(*m));
}

uint64_t
tar_padding(uint64_t n)
{
	return (TAR_BLOCK - n % TAR_BLOCK) % TAR_BLOCK;
}

/* Octal in the field, NUL-ended, or base-256 when it does not fit. */
static void
put_number(unsigned char *b, struct field f, uint64_t v)
{
	size_t i;

	if (f.len - 1 >= 22 || v < (uint64_t)1 << (3 * (f.len - 1))) {
		char tmp[32];

		snprintf(tmp, sizeof(tmp), "%0*" PRIo64, (int)(f.len - 1), v);
		memcpy(b + f.off, tmp, f.len - 1);
		b[f.off + f.len - 1] = '\0';
		return;
	}
	memset(b + f.off, 0, f.len);
	b[f.off] = 0x80;
	for (i = f.len - 1; i > 0 && v > 0; i--, v >>= 8)
		b[f.off + i] = (unsigned char)(v & 0xff);
}

static void
put_string(unsigned char *b, struct field f, const char *s)
{
	size_t n = strlen(s);

	memset(b + f.off, 0, f.len);
	memcpy(b + f.off, s, n < f.len ? n : f.len);
}

/* h into a block, with prefix (or ""), its checksum set. */
static void
build_block(unsigned char *b, const struct tar_header *h, const char *prefix)
{
	unsigned long usum;
	long ssum;
	char tmp[8];

	memset(b, 0, TAR_BLOCK);
	put_string(b, F_NAME, h->name);
	put_number(b, F_MODE, h->mode & 07777);
	put_number(b, F_UID, h->uid);
	put_number(b, F_GID, h->gid);
	put_number(b, F_SIZE, h->size);
	put_number(b, F_MTIME, h->mtime < 0 ? 0 : (uint64_t)h->mtime);
	b[F_TYPE.off] = (unsigned char)h->type;
	put_string(b, F_LINK, h->link);
	memcpy(b + F_MAGIC.off, "ustar", F_MAGIC.len);
	memcpy(b + F_VERSION.off, "00", F_VERSION.len);
	put_string(b, F_UNAME, h->uname);
	put_string(b, F_GNAME, h->gname);
	put_string(b, F_PREFIX, prefix);
	checksums(b, &usum, &ssum);
	snprintf(tmp, sizeof(tmp), "%06lo", usum);
	memcpy(b + F_CHKSUM.off, tmp, 6);
	b[F_CHKSUM.off + 6] = '\0';
	b[F_CHKSUM.off + 7] = ' ';
}

void
tar_header_block(unsigned char *b, const struct tar_header *h)
{
	build_block(b, h, "");
}

/* "LEN key=value\n", LEN counting its own digits. */
static void
pax_record(struct buf *b, const char *key, const char *value)
{
	size_t n = strlen(key) + strlen(value) + 3, digits = 1, len;
	char *rec;

	for (;;) {
		len = digits + n;
		if (snprintf(NULL, 0, "%zu", len) == (int)digits)
			break;
		digits++;
	}
	rec = xmalloc(len + 1);
	snprintf(rec, len + 1, "%zu %s=%s\n", len, key, value);
	buf_append(b, rec, len);
	free(rec);
}

/*
 * name into the name field, or split at a slash into prefix and name:
 * 0, or -1 when it fits neither way.
 */
static int
ustar_name(const char *name, char *prefix, char *rest)
{
	size_t n = strlen(name), i;

	if (n <= F_NAME.len) {
		prefix[0] = '\0';
		memcpy(rest, name, n + 1);
		return 0;
	}
	for (i = n - 1; i > 0; i--) {
		if (name[i] != '/')
			continue;
		if (i <= F_PREFIX.len && n - i - 1 <= F_NAME.len &&
		    n - i - 1 > 0) {
			memcpy(prefix, name, i);
			prefix[i] = '\0';
			memcpy(rest, name + i + 1, n - i);
			return 0;
		}
		if (n - i - 1 > F_NAME.len)
			break;
	}
	return -1;
}

void
tar_header_write(struct buf *out, const struct tar_header *h,
    const char *name, const char *link)
{
	unsigned char b[TAR_BLOCK], pad[TAR_BLOCK];
	struct tar_header m = *h;
	struct buf pax = { 0 };
	char prefix[F_PREFIX.len + 1], rest[F_NAME.len + 1];
	int split;

	split = ustar_name(name, prefix, rest) == 0;
	if (!split)
		pax_record(&pax, "path", name);
	if (link != NULL && strlen(link) > F_LINK.len)
		pax_record(&pax, "linkpath", link);
	if (pax.len > 0) {
		struct tar_header x = *h;

		snprintf(x.name, sizeof(x.name), "././@PaxHeader");
		x.type = TAR_PAX;
		x.size = pax.len;
		x.mode = 0644;
		x.link[0] = '\0';
		tar_header_block(b, &x);
		buf_append(out, b, TAR_BLOCK);
		buf_append(out, pax.p, pax.len);
		memset(pad, 0, sizeof(pad));
		buf_append(out, pad, (size_t)tar_padding(pax.len));
		buf_free(&pax);
	}
	snprintf(m.name, sizeof(m.name), "%s", split ? rest : "");
	if (!split)
		snprintf(m.name, sizeof(m.name), "%.*s", (int)F_NAME.len, name);
	snprintf(m.link, sizeof(m.link), "%.*s", (int)F_LINK.len,
	    link != NULL ? link : "");
	build_block(b, &m, split ? prefix : "");
	buf_append(out, b, TAR_BLOCK);
}
