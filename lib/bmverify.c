#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <isa-l/crc.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "bmverify.h"
#include "util.h"

#define CK_MAX		64	/* SHA-512 */
#define LABEL_MAX	(64 * 1024)
#define MANIFEST_MAX	((size_t)1 << 30)

struct seen {
	char		*name;
	size_t		 namelen;
	uint64_t	 size;
	unsigned char	 ck[CK_MAX];
	unsigned int	 cklen;
	int		 in_manifest;
	enum bmv_type	 type;
};

enum member_kind {
	M_SKIP,		/* not checked: directories, links, WAL */
	M_FILE,
	M_MANIFEST
};

struct bmv {
	enum ck_algo	 algo;
	EVP_MD_CTX	*md;
	uint32_t	 crc;

	/* the member passing now */
	enum member_kind kind;
	char		*name;
	size_t		 namelen;
	uint64_t	 size;
	int		 is_label;
	int		 is_control;

	struct seen	*files;
	size_t		 nfiles, capfiles;
	struct seen	*others;	/* directories and links */
	size_t		 nothers, capothers;

	char		*label;		/* backup_label, for its start LSN */
	size_t		 labellen;
	unsigned char	 sysid[8];	/* head of global/pg_control */
	size_t		 sysidlen;
	char		**wal;		/* names of pg_wal/ segments */
	size_t		 nwal, capwal;
	char		**done;		/* segments named in archive_status/ */
	size_t		 ndone, capdone;
	int		 need_wal;
	uint64_t	 walsegsize;
	int		 restore;	/* bmv_restore: a copy, not a stream */
	char		*walother;	/* the first pg_wal file no backup has */

	char		*manifest;
	size_t		 manifestlen, manifestcap;
	int		 manifest_seen;
	int		 overflow;
};

static const char *const algo_names[] = {
	[CK_NONE] = "NONE",
	[CK_CRC32C] = "CRC32C",
	[CK_SHA224] = "SHA224",
	[CK_SHA256] = "SHA256",
	[CK_SHA384] = "SHA384",
	[CK_SHA512] = "SHA512",
};

int
ck_algo_parse(const char *s, enum ck_algo *out)
{
	size_t i;

	for (i = 0; i < sizeof(algo_names) / sizeof(algo_names[0]); i++)
		if (strcasecmp(s, algo_names[i]) == 0) {
			*out = (enum ck_algo)i;
			return 0;
		}
	return -1;
}

const char *
ck_algo_name(enum ck_algo a)
{
	return algo_names[a];
}

static const EVP_MD *
algo_md(enum ck_algo a)
{
	switch (a) {
	case CK_SHA224:
		return EVP_sha224();
	case CK_SHA256:
		return EVP_sha256();
	case CK_SHA384:
		return EVP_sha384();
	case CK_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

void
bmv_need_wal(struct bmv *v)
{
	v->need_wal = 1;
}

void
bmv_restore(struct bmv *v)
{
	v->restore = 1;
	v->need_wal = 1;
}

/* n upper- or lower-case hex digits at p. */
static int
all_hex(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isxdigit((unsigned char)p[i]))
			return 0;
	return 1;
}

/*
 * What pg_wal/ of a backup holds besides segments: archive_status/'s
 * .done or .ready of a segment, and timeline history files.
 */
static int
wal_companion(const char *name, size_t len)
{
	static const char status[] = "pg_wal/archive_status/";
	size_t sl = sizeof(status) - 1;

	if (len > sl && memcmp(name, status, sl) == 0)
		return all_hex(name + sl, 24) &&
		    ((len == sl + 24 + 5 && memcmp(name + sl + 24, ".done", 5) ==
		    0) || (len == sl + 24 + 6 && memcmp(name + sl + 24,
		    ".ready", 6) == 0));
	return len == 7 + 8 + 8 && memcmp(name, "pg_wal/", 7) == 0 &&
	    all_hex(name + 7, 8) && memcmp(name + 15, ".history", 8) == 0;
}

struct bmv *
bmv_new(enum ck_algo algo)
{
	struct bmv *v = xmalloc(sizeof(*v));

	memset(v, 0, sizeof(*v));
	v->algo = algo;
	v->md = EVP_MD_CTX_new();
	if (v->md == NULL) {
		free(v);
		return NULL;
	}
	return v;
}

void
bmv_free(struct bmv *v)
{
	size_t i;

	if (v == NULL)
		return;
	for (i = 0; i < v->nfiles; i++)
		free(v->files[i].name);
	for (i = 0; i < v->nothers; i++)
		free(v->others[i].name);
	free(v->others);
	for (i = 0; i < v->nwal; i++)
		free(v->wal[i]);
	for (i = 0; i < v->ndone; i++)
		free(v->done[i]);
	free(v->done);
	free(v->files);
	free(v->wal);
	free(v->name);
	free(v->label);
	free(v->walother);
	free(v->manifest);
	EVP_MD_CTX_free(v->md);
	free(v);
}

static int
name_is(const struct bmv *v, const char *s)
{
	return v->namelen == strlen(s) && memcmp(v->name, s, v->namelen) == 0;
}

/* pg_wal/ and its subdirectories are not in the manifest: WAL is checked apart. */
static int
in_pg_wal(const char *name, size_t len)
{
	return len >= 6 && memcmp(name, "pg_wal", 6) == 0 &&
	    (len == 6 || name[6] == '/');
}

/* A WAL segment: pg_wal/ and 24 upper-case hex digits. */
static int
is_wal_segment(const char *name, size_t len)
{
	size_t i;

	if (len != 7 + 24 || memcmp(name, "pg_wal/", 7) != 0)
		return 0;
	for (i = 7; i < len; i++)
		if (!((name[i] >= '0' && name[i] <= '9') ||
		    (name[i] >= 'A' && name[i] <= 'F')))
			return 0;
	return 1;
}

static void
push(char ***list, size_t *n, size_t *cap, const char *s)
{
	if (*n == *cap) {
		*cap = *cap ? 2 * *cap : 64;
		*list = xrealloc(*list, *cap * sizeof(**list));
	}
	(*list)[(*n)++] = xstrdup(s);
}

void
bmv_begin(struct bmv *v, const char *name, size_t namelen, uint64_t size,
    enum bmv_type type)
{
	int regular = type == BMV_FILE;

	if (!regular) {
		struct seen *o;

		if (v->nothers == v->capothers) {
			v->capothers = v->capothers ? 2 * v->capothers : 256;
			v->others = xrealloc(v->others, v->capothers *
			    sizeof(*v->others));
		}
		o = &v->others[v->nothers++];
		memset(o, 0, sizeof(*o));
		o->name = xmalloc(namelen + 1);
		memcpy(o->name, name, namelen);
		o->name[namelen] = '\0';
		o->namelen = namelen;
		o->type = type;
	}
	free(v->name);
	v->name = xmalloc(namelen + 1);
	memcpy(v->name, name, namelen);
	v->name[namelen] = '\0';
	v->namelen = namelen;
	v->size = size;
	v->is_label = regular && name_is(v, "backup_label");
	v->is_control = regular && name_is(v, "global/pg_control");

	if (!regular)
		v->kind = M_SKIP;
	else if (name_is(v, "backup_manifest"))
		v->kind = M_MANIFEST;
	else if (in_pg_wal(name, namelen)) {
		v->kind = M_SKIP;
		if (namelen == 22 + 24 + 5 && memcmp(name,
		    "pg_wal/archive_status/", 22) == 0 &&
		    memcmp(name + namelen - 5, ".done", 5) == 0) {
			push(&v->done, &v->ndone, &v->capdone, v->name + 22);
			v->done[v->ndone - 1][24] = '\0';
		}
		if (is_wal_segment(name, namelen)) {
			push(&v->wal, &v->nwal, &v->capwal, v->name + 7);
			if (v->walsegsize == 0)
				v->walsegsize = size;
		} else if (v->restore && v->walother == NULL &&
		    namelen > 7 && !wal_companion(name, namelen)) {
			v->walother = xmalloc(namelen + 1);
			memcpy(v->walother, name, namelen);
			v->walother[namelen] = '\0';
		}
	} else
		v->kind = M_FILE;

	if (v->kind == M_FILE) {
		if (v->algo == CK_CRC32C)
			v->crc = 0xffffffff;
		else if (v->algo != CK_NONE)
			EVP_DigestInit_ex(v->md, algo_md(v->algo), NULL);
	}
	if (v->kind == M_MANIFEST) {
		v->manifestlen = 0;
		v->manifest_seen = 1;
	}
	if (v->is_label) {
		if (v->label == NULL)
			v->label = xmalloc(LABEL_MAX + 1);
		v->labellen = 0;
		v->label[0] = '\0';
	}
	if (v->is_control)
		v->sysidlen = 0;
}

static void
append(char **buf, size_t *len, size_t *cap, const void *p, size_t n)
{
	if (*len + n + 1 > *cap) {
		while (*len + n + 1 > *cap)
			*cap = *cap ? 2 * *cap : 4096;
		*buf = xrealloc(*buf, *cap);
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	(*buf)[*len] = '\0';
}

void
bmv_data(struct bmv *v, const void *p, size_t n)
{
	const unsigned char *b = p;

	switch (v->kind) {
	case M_FILE:
		if (v->algo == CK_CRC32C) {
			/* crc32_iscsi takes an int length. */
			size_t off = 0;

			while (off < n) {
				size_t k = n - off > (1u << 30) ? 1u << 30 :
				    n - off;

				v->crc = crc32_iscsi((unsigned char *)b + off,
				    (int)k, v->crc);
				off += k;
			}
		} else if (v->algo != CK_NONE)
			EVP_DigestUpdate(v->md, b, n);
		break;
	case M_MANIFEST:
		if (v->manifestlen + n > MANIFEST_MAX)
			v->overflow = 1;
		else
			append(&v->manifest, &v->manifestlen, &v->manifestcap,
			    b, n);
		break;
	case M_SKIP:
		break;
	}
	if (v->is_label && v->labellen + n <= LABEL_MAX) {
		memcpy(v->label + v->labellen, b, n);
		v->labellen += n;
		v->label[v->labellen] = '\0';
	}
	if (v->is_control && v->sysidlen < sizeof(v->sysid)) {
		size_t k = sizeof(v->sysid) - v->sysidlen;

		if (k > n)
			k = n;
		memcpy(v->sysid + v->sysidlen, b, k);
		v->sysidlen += k;
	}
}

int
bmv_end(struct bmv *v, char *errbuf, size_t errlen)
{
	struct seen *s;
	unsigned int mdlen;

	if (v->kind == M_MANIFEST && v->overflow) {
		snprintf(errbuf, errlen, "backup_manifest larger than %zu bytes",
		    MANIFEST_MAX);
		return -1;
	}
	if (v->kind != M_FILE)
		return 0;
	if (v->nfiles == v->capfiles) {
		v->capfiles = v->capfiles ? 2 * v->capfiles : 1024;
		v->files = xrealloc(v->files, v->capfiles * sizeof(*v->files));
	}
	s = &v->files[v->nfiles++];
	memset(s, 0, sizeof(*s));
	s->name = v->name;
	s->namelen = v->namelen;
	s->size = v->size;
	v->name = NULL;
	if (v->algo == CK_CRC32C) {
		/* PostgreSQL writes the final CRC's bytes in memory order. */
		uint32_t crc = ~v->crc;

		s->ck[0] = crc & 0xff;
		s->ck[1] = (crc >> 8) & 0xff;
		s->ck[2] = (crc >> 16) & 0xff;
		s->ck[3] = crc >> 24;
		s->cklen = 4;
	} else if (v->algo != CK_NONE) {
		EVP_DigestFinal_ex(v->md, s->ck, &mdlen);
		s->cklen = mdlen;
	}
	v->kind = M_SKIP;
	return 0;
}

int
bmv_manifest_seen(const struct bmv *v)
{
	return v->manifest_seen;
}

/* Checking at the end. */

struct report {
	char	*errbuf;
	size_t	 errlen;
	char	**badpath;
	size_t	*badpathlen;
	size_t	 nbad;
};

static int
fail(struct report *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->errbuf, r->errlen, fmt, ap);
	va_end(ap);
	return -1;
}

/* Remember the first bad file and count them all. */
static void
bad_file(struct report *r, const char *name, size_t len, const char *fmt, ...)
{
	char reason[256];
	va_list ap;

	if (r->nbad++ > 0)
		return;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	*r->badpath = xmalloc(len + 1);
	memcpy(*r->badpath, name, len);
	(*r->badpath)[len] = '\0';
	*r->badpathlen = len;
	snprintf(r->errbuf, r->errlen, "%s: %s", *r->badpath, reason);
}

static int
cmp_seen(const void *a, const void *b)
{
	const struct seen *x = a, *y = b;
	size_t n = x->namelen < y->namelen ? x->namelen : y->namelen;
	int c = memcmp(x->name, y->name, n);

	if (c != 0)
		return c;
	return (x->namelen > y->namelen) - (x->namelen < y->namelen);
}

static struct seen *
find_seen(struct bmv *v, const char *name, size_t len)
{
	struct seen key;

	if (v->nfiles == 0)
		return NULL;
	key.name = (char *)name;
	key.namelen = len;
	return bsearch(&key, v->files, v->nfiles, sizeof(*v->files), cmp_seen);
}

/*
 * Files the manifest cannot speak for: itself, and standby.signal, which
 * a copy of a standby may carry.  pg_verifybackup also skips
 * postgresql.auto.conf and recovery.signal, which pg_basebackup -R
 * rewrites; our streams never come from -R, so they are checked.
 */
static int
ignored(const char *name, size_t len)
{
	static const char *const names[] = {
		"backup_manifest", "standby.signal"
	};
	size_t i;

	if (in_pg_wal(name, len))
		return 1;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (len == strlen(names[i]) && memcmp(name, names[i], len) == 0)
			return 1;
	return 0;
}

static int
parse_lsn(const char *s, uint64_t *lsn)
{
	unsigned int hi, lo;
	int n;

	if (sscanf(s, "%X/%X%n", &hi, &lo, &n) != 2 || s[n] != '\0')
		return -1;
	*lsn = (uint64_t)hi << 32 | lo;
	return 0;
}

/*
 * Whether backup_label says the backup was taken from a standby, whose
 * standby.signal a base backup carries outside its manifest.
 */
static int
from_standby(const struct bmv *v)
{
	return v->label != NULL && strstr(v->label,
	    "\nBACKUP FROM: standby\n") != NULL;
}

/* START WAL LOCATION and START TIMELINE from backup_label. */
static int
label_start(const struct bmv *v, uint64_t *lsn, unsigned int *tli)
{
	const char *p;
	unsigned int hi, lo;

	if (v->label == NULL)
		return -1;
	p = strstr(v->label, "START WAL LOCATION: ");
	if (p == NULL || sscanf(p + 20, "%X/%X", &hi, &lo) != 2)
		return -1;
	*lsn = (uint64_t)hi << 32 | lo;
	p = strstr(v->label, "START TIMELINE: ");
	if (p == NULL || sscanf(p + 16, "%u", tli) != 1)
		return -1;
	return 0;
}

static int
check_manifest_checksum(struct bmv *v, json_t *m, struct report *r)
{
	const char *want = json_string_value(json_object_get(m,
	    "Manifest-Checksum"));
	unsigned char md[32];
	char hex[65];
	size_t i, nl1 = 0, nl2 = 0, nnl = 0;

	if (want == NULL)
		return fail(r, "backup_manifest has no Manifest-Checksum");
	/* It covers every byte up to the line holding it. */
	for (i = 0; i < v->manifestlen; i++)
		if (v->manifest[i] == '\n') {
			nnl++;
			nl2 = nl1;
			nl1 = i;
		}
	if (nnl < 2)
		return fail(r, "backup_manifest has fewer than two lines");
	if (EVP_Digest(v->manifest, nl2 + 1, md, NULL, EVP_sha256(),
	    NULL) != 1)
		return fail(r, "SHA-256 failed");
	hex_encode(md, sizeof(md), hex);
	if (strcasecmp(hex, want) != 0)
		return fail(r, "backup_manifest is damaged: its Manifest-Checksum "
		    "does not match its contents");
	return 0;
}

static int
check_identity(struct bmv *v, json_t *m, json_int_t version,
    struct report *r)
{
	json_t *ranges = json_object_get(m, "WAL-Ranges"), *range;
	uint64_t lsn, start;
	unsigned int tli;
	size_t i;
	int found = 0;

	if (version >= 2) {
		json_t *id = json_object_get(m, "System-Identifier");
		uint64_t sysid = 0;

		if (!json_is_integer(id))
			return fail(r, "backup_manifest: version %d without "
			    "System-Identifier", (int)version);
		if (v->sysidlen < sizeof(v->sysid))
			return fail(r, "global/pg_control is missing or short: "
			    "cannot check the system identifier");
		for (i = 0; i < 8; i++)
			sysid |= (uint64_t)v->sysid[i] << (8 * i);
		if ((uint64_t)json_integer_value(id) != sysid)
			return fail(r, "backup_manifest is from another cluster: "
			    "system identifier %" PRIu64 ", pg_control says %"
			    PRIu64, (uint64_t)json_integer_value(id), sysid);
	}
	if (!json_is_array(ranges) || json_array_size(ranges) == 0)
		return fail(r, "backup_manifest has no WAL-Ranges");
	if (label_start(v, &lsn, &tli) == -1)
		return fail(r, "backup_label is missing or has no start of WAL");
	json_array_foreach(ranges, i, range) {
		const char *s = json_string_value(json_object_get(range,
		    "Start-LSN"));
		json_t *t = json_object_get(range, "Timeline");

		if (s == NULL || parse_lsn(s, &start) == -1 ||
		    !json_is_integer(t))
			return fail(r, "backup_manifest: bad WAL-Ranges entry");
		if (start == lsn && (unsigned int)json_integer_value(t) == tli)
			found = 1;
	}
	if (!found)
		return fail(r, "backup_manifest is from another backup: no WAL "
		    "range starts at backup_label's %X/%X on timeline %u",
		    (unsigned int)(lsn >> 32), (unsigned int)lsn, tli);
	return 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * With the WAL in the stream (-X fetch), every segment of the one WAL
 * range must be there, or the backup cannot reach consistency.
 */
static int
check_wal(struct bmv *v, json_t *m, struct report *r)
{
	json_t *ranges = json_object_get(m, "WAL-Ranges"), *range;
	uint64_t start, end, seg, last, per_id;
	unsigned int tli;
	char name[25], *key;

	size_t i;

	if (v->nwal > 0)
		qsort(v->wal, v->nwal, sizeof(*v->wal), cmp_str);
	/* archive_status/ names the segments -X fetch sent. */
	for (i = 0; i < v->ndone; i++) {
		key = v->done[i];
		if (v->nwal == 0 || bsearch(&key, v->wal, v->nwal,
		    sizeof(*v->wal), cmp_str) == NULL)
			return fail(r, "pg_wal/%s is missing: archive_status "
			    "says it was sent", v->done[i]);
	}
	if (v->nwal == 0 && v->need_wal)
		return fail(r, "pg_wal has no WAL segment: the backup needs "
		    "the WAL of its WAL-Ranges");
	if (v->walother != NULL)
		return fail(r, "%s: in pg_wal, and no backup puts it there",
		    v->walother);
	if (v->nwal == 0 || json_array_size(ranges) != 1)
		return 0;
	if (v->walsegsize < (1u << 20) || v->walsegsize > (1u << 30) ||
	    (v->walsegsize & (v->walsegsize - 1)) != 0)
		return fail(r, "pg_wal: segment size %" PRIu64 " is not a "
		    "power of two between 1 MB and 1 GB", v->walsegsize);
	range = json_array_get(ranges, 0);
	tli = (unsigned int)json_integer_value(json_object_get(range,
	    "Timeline"));
	if (parse_lsn(json_string_value(json_object_get(range, "Start-LSN")),
	    &start) == -1 ||
	    parse_lsn(json_string_value(json_object_get(range, "End-LSN")),
	    &end) == -1 || end < start)
		return fail(r, "backup_manifest: bad WAL-Ranges entry");
	key = name;
	per_id = UINT64_C(0x100000000) / v->walsegsize;
	last = (end > start ? end - 1 : end) / v->walsegsize;
	for (seg = start / v->walsegsize; seg <= last; seg++) {
		snprintf(name, sizeof(name), "%08X%08X%08X", tli,
		    (unsigned int)(seg / per_id), (unsigned int)(seg % per_id));
		if (bsearch(&key, v->wal, v->nwal, sizeof(*v->wal),
		    cmp_str) == NULL)
			return fail(r, "pg_wal/%s is missing: the backup needs "
			    "WAL from %X/%X to %X/%X", name,
			    (unsigned int)(start >> 32), (unsigned int)start,
			    (unsigned int)(end >> 32), (unsigned int)end);
	}
	/*
	 * A restored copy: a segment beyond the range is WAL the server
	 * would replay past this backup's end (an older copy's, or one a
	 * hostile snapshot added).
	 */
	for (i = 0; v->restore && i < v->nwal; i++) {
		unsigned int stli, hi, lo;

		if (sscanf(v->wal[i], "%8X%8X%8X", &stli, &hi, &lo) != 3 ||
		    stli != tli || (uint64_t)hi * per_id + lo <
		    start / v->walsegsize || (uint64_t)hi * per_id + lo > last)
			return fail(r, "pg_wal/%s: a WAL segment outside the "
			    "backup's WAL range (%X/%X to %X/%X)", v->wal[i],
			    (unsigned int)(start >> 32), (unsigned int)start,
			    (unsigned int)(end >> 32), (unsigned int)end);
	}
	return 0;
}

static int
manifest_path(json_t *f, unsigned char **out, size_t *len)
{
	json_t *p = json_object_get(f, "Path");
	json_t *e = json_object_get(f, "Encoded-Path");

	if (json_is_string(p)) {
		*len = json_string_length(p);
		*out = xmalloc(*len + 1);
		memcpy(*out, json_string_value(p), *len);
		return 0;
	}
	if (!json_is_string(e))
		return -1;
	*len = json_string_length(e) / 2;
	*out = xmalloc(*len + 1);
	if (hex_decode(json_string_value(e), json_string_length(e),
	    *out) == -1) {
		free(*out);
		return -1;
	}
	return 0;
}

static int
check_file(struct bmv *v, json_t *f, struct report *r)
{
	json_t *size = json_object_get(f, "Size");
	const char *algo = json_string_value(json_object_get(f,
	    "Checksum-Algorithm"));
	const char *want = json_string_value(json_object_get(f, "Checksum"));
	unsigned char ck[CK_MAX], *name;
	enum ck_algo a = CK_NONE;
	struct seen *s;
	size_t len;

	if (manifest_path(f, &name, &len) == -1 || !json_is_integer(size))
		return fail(r, "backup_manifest: a Files entry lacks a path "
		    "or a size");
	if (algo != NULL && ck_algo_parse(algo, &a) == -1) {
		free(name);
		return fail(r, "backup_manifest: unknown checksum algorithm %s",
		    algo);
	}
	if (a != CK_NONE && a != v->algo) {
		free(name);
		return fail(r, "backup_manifest uses %s checksums and tarsplit "
		    "computed %s: run tarsplit -a %s", ck_algo_name(a),
		    ck_algo_name(v->algo), ck_algo_name(a));
	}
	if (ignored((char *)name, len)) {
		free(name);
		return 0;
	}
	s = find_seen(v, (char *)name, len);
	if (s == NULL)
		bad_file(r, (char *)name, len, "in the manifest but not in the "
		    "backup");
	else {
		s->in_manifest++;
		if (s->size != (uint64_t)json_integer_value(size))
			bad_file(r, (char *)name, len, "%s than in the manifest "
			    "(%" PRIu64 " bytes, manifest says %" PRIu64 ")",
			    s->size < (uint64_t)json_integer_value(size) ?
			    "shorter" : "longer", s->size,
			    (uint64_t)json_integer_value(size));
		else if (a != CK_NONE && (want == NULL ||
		    strlen(want) != 2 * s->cklen ||
		    hex_decode(want, strlen(want), ck) == -1 ||
		    memcmp(ck, s->ck, s->cklen) != 0))
			bad_file(r, (char *)name, len, "%s checksum mismatch",
			    ck_algo_name(a));
	}
	free(name);
	return 0;
}

/* A tablespace's link, pg_tblspc/OID: the one link pg_basebackup sends. */
static int
tablespace_link(const struct seen *o)
{
	size_t n = sizeof("pg_tblspc/") - 1;

	return o->type == BMV_SYMLINK && o->namelen > n &&
	    memcmp(o->name, "pg_tblspc/", n) == 0 &&
	    strspn(o->name + n, "0123456789") == o->namelen - n;
}

/*
 * Every member, whatever its type: a path appears once, and a link is
 * one the manifest accounts for.  (Files are held to the manifest by
 * check_file and the loop after it.)
 */
static void
check_members(struct bmv *v, struct report *r)
{
	struct seen *all;
	size_t n = v->nfiles + v->nothers, i;

	for (i = 0; i < v->nothers; i++) {
		const struct seen *o = &v->others[i];

		if (o->type == BMV_HARDLINK)
			bad_file(r, o->name, o->namelen, "a hard link, which "
			    "pg_basebackup never sends");
		else if (o->type == BMV_SYMLINK && !tablespace_link(o))
			bad_file(r, o->name, o->namelen, "a symbolic link that "
			    "the manifest does not account for");
	}
	if (n == 0)
		return;
	all = xmalloc(n * sizeof(*all));
	if (v->nfiles > 0)
		memcpy(all, v->files, v->nfiles * sizeof(*all));
	if (v->nothers > 0)
		memcpy(all + v->nfiles, v->others, v->nothers * sizeof(*all));
	qsort(all, n, sizeof(*all), cmp_seen);
	for (i = 1; i < n; i++)
		if (cmp_seen(&all[i - 1], &all[i]) == 0)
			bad_file(r, all[i].name, all[i].namelen, "appears "
			    "twice in the stream");
	free(all);
}

/*
 * The manifest is kept as its text, a few hundred bytes a file, but never
 * parsed whole: a JSON tree takes tens of bytes for each byte of it.  The
 * top-level "Files" array is found by a scanner that knows strings and
 * nesting; its elements are parsed and checked one at a time, and the
 * rest is parsed with the array emptied.
 */

/* The index just past the JSON value at p[i], or n if it does not end. */
static size_t
skip_value(const char *p, size_t i, size_t n)
{
	int depth = 0, instr = 0, esc = 0;

	for (; i < n; i++) {
		char c = p[i];

		if (instr) {
			if (esc)
				esc = 0;
			else if (c == '\\')
				esc = 1;
			else if (c == '"') {
				instr = 0;
				if (depth == 0)
					return i + 1;
			}
			continue;
		}
		if (c == '"')
			instr = 1;
		else if (c == '{' || c == '[')
			depth++;
		else if (c == '}' || c == ']') {
			if (--depth <= 0)
				return depth == 0 ? i + 1 : n;
		} else if (depth == 0 && (c == ',' || c == ' ' || c == '\n' ||
		    c == '\t' || c == '\r'))
			return i;
	}
	return n;
}

static size_t
skip_space(const char *p, size_t i, size_t n)
{
	while (i < n && (p[i] == ' ' || p[i] == '\n' || p[i] == '\t' ||
	    p[i] == '\r'))
		i++;
	return i;
}

/* The top-level "Files": its '[' at *open, its ']' at *close. */
static int
files_array(const char *p, size_t n, size_t *open, size_t *close)
{
	size_t i = skip_space(p, 0, n), key, keyend, end;

	if (i >= n || p[i] != '{')
		return -1;
	for (i = skip_space(p, i + 1, n); i < n && p[i] == '"'; ) {
		key = i;
		keyend = skip_value(p, key, n);
		i = skip_space(p, keyend, n);
		if (i >= n || p[i] != ':')
			return -1;
		i = skip_space(p, i + 1, n);
		end = skip_value(p, i, n);
		if (keyend - key == 7 && memcmp(p + key, "\"Files\"", 7) == 0) {
			if (i >= n || p[i] != '[' || end > n || p[end - 1] != ']')
				return -1;
			*open = i;
			*close = end - 1;
			return 0;
		}
		i = skip_space(p, end, n);
		if (i < n && p[i] == ',')
			i = skip_space(p, i + 1, n);
	}
	return -1;
}

/* Each element of Files, parsed alone and checked. */
static int
check_files(struct bmv *v, size_t open, size_t close, struct report *r)
{
	const char *p = v->manifest;
	size_t i = skip_space(p, open + 1, close), end;
	json_error_t jerr;
	json_t *f;
	int rc;

	while (i < close) {
		end = skip_value(p, i, close);
		if ((f = json_loadb(p + i, end - i, 0, &jerr)) == NULL)
			return fail(r, "backup_manifest: a Files entry is not "
			    "valid JSON: %s", jerr.text);
		rc = check_file(v, f, r);
		json_decref(f);
		if (rc == -1)
			return -1;
		i = skip_space(p, end, close);
		if (i < close && p[i] != ',')
			return fail(r, "backup_manifest: Files is not a JSON "
			    "array");
		i = skip_space(p, i + 1, close);
	}
	return 0;
}

int
bmv_check(struct bmv *v, char *errbuf, size_t errlen, char **badpath,
    size_t *badpathlen)
{
	struct report r = { errbuf, errlen, badpath, badpathlen, 0 };
	json_error_t jerr;
	json_t *m;
	json_int_t version;
	size_t i, open, close;
	char *top;
	int rc = -1;

	*badpath = NULL;
	if (!v->manifest_seen)
		return fail(&r, "backup_manifest is missing: the stream is "
		    "incomplete or was made with --no-manifest");
	if (files_array(v->manifest, v->manifestlen, &open, &close) == -1)
		return fail(&r, "backup_manifest has no Files, or is not JSON");
	/* The manifest with "Files": [], for the rest of it. */
	top = xmalloc(v->manifestlen - (close - open) + 2);
	memcpy(top, v->manifest, open + 1);
	memcpy(top + open + 1, v->manifest + close, v->manifestlen - close);
	m = json_loadb(top, open + 1 + v->manifestlen - close, 0, &jerr);
	free(top);
	if (m == NULL)
		return fail(&r, "backup_manifest is not valid JSON: line %d: %s",
		    jerr.line, jerr.text);
	version = json_integer_value(json_object_get(m,
	    "PostgreSQL-Backup-Manifest-Version"));
	if (version != 1 && version != 2)
		fail(&r, "backup_manifest: unsupported version");
	else if (check_manifest_checksum(v, m, &r) == 0 &&
	    check_identity(v, m, version, &r) == 0 &&
	    check_wal(v, m, &r) == 0) {
		if (v->nfiles > 0)
			qsort(v->files, v->nfiles, sizeof(*v->files),
			    cmp_seen);
		check_members(v, &r);
		if ((rc = check_files(v, open, close, &r)) == -1) {
			free(*badpath);
			*badpath = NULL;
		}
		for (i = 0; rc == 0 && i < v->nfiles; i++)
			if (!v->files[i].in_manifest &&
			    (!ignored(v->files[i].name, v->files[i].namelen) ||
			    (v->restore && !from_standby(v) &&
			    v->files[i].namelen == 14 &&
			    memcmp(v->files[i].name, "standby.signal", 14) == 0)))
				bad_file(&r, v->files[i].name,
				    v->files[i].namelen,
				    "in the backup but not in the manifest");
		if (rc == 0 && r.nbad > 0) {
			char first[512];

			snprintf(first, sizeof(first), "%s", errbuf);
			snprintf(errbuf, errlen, "verification failed: %zu bad "
			    "file%s; first: %s", r.nbad, r.nbad == 1 ? "" : "s",
			    first);
			rc = -1;
		}
	}
	json_decref(m);
	return rc;
}
