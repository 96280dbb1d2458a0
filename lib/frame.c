#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "frame.h"
#include "util.h"

static const char *const type_names[] = {
	[FRAME_BEGIN] = "begin",
	[FRAME_FILE] = "file",
	[FRAME_DIR] = "dir",
	[FRAME_SYMLINK] = "symlink",
	[FRAME_HARDLINK] = "hardlink",
	[FRAME_ERROR] = "error",
	[FRAME_END] = "end",
};

int
frame_is_record(enum frame_type t)
{
	return t == FRAME_FILE || t == FRAME_DIR || t == FRAME_SYMLINK ||
	    t == FRAME_HARDLINK;
}

const char *
frame_type_name(enum frame_type t)
{
	return type_names[t];
}

/*
 * A name goes out as "key" when it is valid UTF-8 and as "key_hex"
 * otherwise, so that any byte string survives a JSON header.
 */
static void
set_name(json_t *o, const char *key, const char *p, size_t len)
{
	json_t *s = json_stringn(p, len);
	char hexkey[32];
	char *hex;

	if (s != NULL) {
		json_object_set_new(o, key, s);
		return;
	}
	hex = xmalloc(2 * len + 1);
	hex_encode(p, len, hex);
	snprintf(hexkey, sizeof(hexkey), "%s_hex", key);
	json_object_set_new(o, hexkey, json_string(hex));
	free(hex);
}

/* An owner name that is not UTF-8 is sent empty: it is informative only. */
static json_t *
owner_name(const char *s)
{
	json_t *j = json_string(s != NULL ? s : "");

	return j != NULL ? j : json_string("");
}

static int
put_json(int fd, json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	size_t n;
	int rc;

	json_decref(o);
	if (s == NULL) {
		errno = ENOMEM;
		return -1;
	}
	n = strlen(s);
	s[n] = '\n';	/* the terminating NUL becomes the newline */
	rc = write_all(fd, s, n + 1);
	free(s);
	return rc;
}

int
frame_write_begin(int fd, const char *producer)
{
	json_t *o = json_object();

	json_object_set_new(o, "type", json_string("begin"));
	json_object_set_new(o, "version", json_integer(FRAME_VERSION));
	json_object_set_new(o, "producer", json_string(producer));
	return put_json(fd, o);
}

static json_t *
record_object(const struct frame *f)
{
	json_t *o = json_object();

	json_object_set_new(o, "type", json_string(type_names[f->type]));
	set_name(o, "path", f->path, f->pathlen);
	if (f->type == FRAME_FILE)
		json_object_set_new(o, "size", json_integer((json_int_t)f->size));
	json_object_set_new(o, "mode", json_integer(f->mode & 07777));
	json_object_set_new(o, "mtime", json_integer(f->mtime));
	json_object_set_new(o, "uid", json_integer(f->uid));
	json_object_set_new(o, "gid", json_integer(f->gid));
	json_object_set_new(o, "uname", owner_name(f->uname));
	json_object_set_new(o, "gname", owner_name(f->gname));
	if (f->type == FRAME_SYMLINK || f->type == FRAME_HARDLINK)
		set_name(o, "target", f->target, f->targetlen);
	if (f->type == FRAME_FILE && f->fresh)
		json_object_set_new(o, "fresh", json_true());
	return o;
}

char *
frame_record_json(const struct frame *f)
{
	json_t *o = record_object(f);
	char *s = json_dumps(o, JSON_COMPACT);

	json_decref(o);
	if (s == NULL)
		errno = ENOMEM;
	return s;
}

int
frame_write_record(int fd, const struct frame *f)
{
	return put_json(fd, record_object(f));
}

int
frame_write_error(int fd, const char *message, const char *path,
    size_t pathlen)
{
	json_t *o = json_object();
	json_t *m = json_string(message);

	json_object_set_new(o, "type", json_string("error"));
	json_object_set_new(o, "message",
	    m != NULL ? m : json_string("(message not UTF-8)"));
	if (path != NULL)
		set_name(o, "path", path, pathlen);
	return put_json(fd, o);
}

int
frame_write_end(int fd, uint64_t records, uint64_t bytes)
{
	json_t *o = json_object();

	json_object_set_new(o, "type", json_string("end"));
	json_object_set_new(o, "records", json_integer((json_int_t)records));
	json_object_set_new(o, "bytes", json_integer((json_int_t)bytes));
	return put_json(fd, o);
}

/* Reading. */

/* Read one line into a growing buffer; the newline is not kept. */
static int
read_line(FILE *in, char **buf, size_t *len, char *errbuf, size_t errlen)
{
	size_t cap = 256, n = 0;
	char *p = xmalloc(cap);
	int c;

	while ((c = getc_unlocked(in)) != EOF && c != '\n') {
		if (n + 1 >= cap) {
			if (cap >= FRAME_HEADER_MAX) {
				free(p);
				return seterr(errbuf, errlen,
				    "frame header longer than %d bytes",
				    FRAME_HEADER_MAX);
			}
			cap *= 2;
			p = xrealloc(p, cap);
		}
		p[n++] = (char)c;
	}
	if (c == EOF) {
		int failed = ferror(in);

		free(p);
		if (failed)
			return seterr(errbuf, errlen, "read error: %s",
			    strerror(errno));
		if (n == 0)
			return 0;
		return seterr(errbuf, errlen, "truncated frame header");
	}
	p[n] = '\0';
	*buf = p;
	*len = n;
	return 1;
}

static int
get_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *out,
    char *errbuf, size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_integer(v))
		return seterr(errbuf, errlen, "frame without integer \"%s\"", key);
	*out = json_integer_value(v);
	if (*out < min || *out > max)
		return seterr(errbuf, errlen, "frame \"%s\" out of range", key);
	return 0;
}

static int
get_str(json_t *o, const char *key, const char **out, char *errbuf,
    size_t errlen)
{
	json_t *v = json_object_get(o, key);

	if (!json_is_string(v))
		return seterr(errbuf, errlen, "frame without string \"%s\"", key);
	*out = json_string_value(v);
	return 0;
}

/* "key" or "key_hex", decoded into a fresh NUL-terminated buffer. */
static int
get_name(json_t *o, const char *key, char **out, size_t *outlen, int *hex,
    char *errbuf, size_t errlen)
{
	char hexkey[32];
	json_t *v = json_object_get(o, key), *h;
	const char *s;
	size_t n;

	snprintf(hexkey, sizeof(hexkey), "%s_hex", key);
	h = json_object_get(o, hexkey);
	/* Exactly one, and a string (a "path": 0 beside a path_hex is not). */
	if (json_is_string(v) == json_is_string(h) ||
	    (v != NULL && !json_is_string(v)) ||
	    (h != NULL && !json_is_string(h)))
		return seterr(errbuf, errlen, "frame needs one of \"%s\" and \"%s\"",
		    key, hexkey);
	*hex = v == NULL;
	if (v != NULL) {
		n = json_string_length(v);
		*out = xmalloc(n + 1);
		memcpy(*out, json_string_value(v), n);
	} else {
		s = json_string_value(h);
		n = json_string_length(h) / 2;
		*out = xmalloc(n + 1);
		if (hex_decode(s, json_string_length(h),
		    (unsigned char *)*out) == -1) {
			free(*out);
			*out = NULL;
			return seterr(errbuf, errlen, "bad hex in \"%s\"", hexkey);
		}
	}
	(*out)[n] = '\0';
	*outlen = n;
	return 0;
}

static int
parse_record(json_t *o, struct frame *f, char *errbuf, size_t errlen)
{
	int64_t v;

	if (get_name(o, "path", &f->path, &f->pathlen, &f->path_hex, errbuf,
	    errlen) == -1)
		return -1;
	if (f->pathlen < 2 || f->path[0] != '/' ||
	    !relpath_is_safe(f->path + 1, f->pathlen - 1))
		return seterr(errbuf, errlen, "unsafe record path");
	if (f->type == FRAME_FILE) {
		json_t *fresh = json_object_get(o, "fresh");

		if (get_int(o, "size", 0, INT64_MAX, &v, errbuf, errlen) == -1)
			return -1;
		f->size = (uint64_t)v;
		if (fresh != NULL && !json_is_boolean(fresh))
			return seterr(errbuf, errlen, "fresh: not a boolean");
		f->fresh = json_is_true(fresh);
	}
	if (get_int(o, "mode", 0, 07777, &v, errbuf, errlen) == -1)
		return -1;
	f->mode = (unsigned int)v;
	if (get_int(o, "mtime", INT64_MIN, INT64_MAX, &f->mtime, errbuf,
	    errlen) == -1 ||
	    get_int(o, "uid", 0, INT64_MAX, &f->uid, errbuf, errlen) == -1 ||
	    get_int(o, "gid", 0, INT64_MAX, &f->gid, errbuf, errlen) == -1 ||
	    get_str(o, "uname", &f->uname, errbuf, errlen) == -1 ||
	    get_str(o, "gname", &f->gname, errbuf, errlen) == -1)
		return -1;
	if (f->type == FRAME_SYMLINK || f->type == FRAME_HARDLINK) {
		if (get_name(o, "target", &f->target, &f->targetlen,
		    &f->target_hex, errbuf, errlen) == -1)
			return -1;
		if (f->targetlen == 0 || memchr(f->target, '\0',
		    f->targetlen) != NULL)
			return seterr(errbuf, errlen, "bad link target");
		if (f->type == FRAME_HARDLINK && (f->target[0] != '/' ||
		    !relpath_is_safe(f->target + 1, f->targetlen - 1)))
			return seterr(errbuf, errlen, "unsafe hard link target");
	}
	return 0;
}

int
frame_parse(const char *line, size_t len, struct frame *f, char *errbuf,
    size_t errlen)
{
	json_error_t jerr;
	const char *type = NULL;
	json_t *o;
	int64_t v;
	int t;

	memset(f, 0, sizeof(*f));
	f->owner = o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(o))
		return seterr(errbuf, errlen, "frame header is not a JSON object%s%s",
		    o == NULL ? ": " : "", o == NULL ? jerr.text : "");
	if (get_str(o, "type", &type, errbuf, errlen) == -1)
		return -1;
	for (t = FRAME_BEGIN; t <= FRAME_END; t++)
		if (strcmp(type, type_names[t]) == 0)
			break;
	if (t > FRAME_END)
		return seterr(errbuf, errlen, "unknown frame type \"%s\"", type);
	f->type = (enum frame_type)t;

	switch (f->type) {
	case FRAME_BEGIN:
		if (get_int(o, "version", 0, INT32_MAX, &v, errbuf,
		    errlen) == -1 ||
		    get_str(o, "producer", &f->producer, errbuf,
		    errlen) == -1)
			return -1;
		f->version = (int)v;
		return 1;
	case FRAME_ERROR:
		if (get_str(o, "message", &f->message, errbuf,
		    errlen) == -1)
			return -1;
		return 1;
	case FRAME_END:
		if (get_int(o, "records", 0, INT64_MAX, &v, errbuf,
		    errlen) == -1)
			return -1;
		f->records = (uint64_t)v;
		if (get_int(o, "bytes", 0, INT64_MAX, &v, errbuf,
		    errlen) == -1)
			return -1;
		f->bytes = (uint64_t)v;
		return 1;
	default:
		return parse_record(o, f, errbuf, errlen) == -1 ? -1 : 1;
	}
}

int
frame_read(FILE *in, struct frame *f, char *errbuf, size_t errlen)
{
	return frame_read_line(in, f, NULL, errbuf, errlen);
}

/* frame_read, the header's line as it came (no newline) to *line. */
int
frame_read_line(FILE *in, struct frame *f, char **linep, char *errbuf,
    size_t errlen)
{
	char *line = NULL;
	size_t len = 0;
	int rc;

	memset(f, 0, sizeof(*f));
	if (linep != NULL)
		*linep = NULL;
	if ((rc = read_line(in, &line, &len, errbuf, errlen)) != 1)
		return rc;
	rc = frame_parse(line, len, f, errbuf, errlen);
	if (linep != NULL)
		*linep = line;
	else
		free(line);
	return rc;
}

void
frame_free(struct frame *f)
{
	free(f->path);
	free(f->target);
	json_decref(f->owner);
	memset(f, 0, sizeof(*f));
}

/* The rules of a frame stream, in one place: see frame.h. */
enum frame_verdict
frame_accept(struct frame_reader *r, const struct frame *f, char *errbuf,
    size_t errlen)
{
	if (r->ended) {
		seterr(errbuf, errlen, "data after the end frame");
		return FRAME_REFUSED;
	}
	if (!r->began) {
		if (f->type != FRAME_BEGIN)
			seterr(errbuf, errlen, "not a frame stream: it does "
			    "not start with a begin frame");
		else if (f->version != FRAME_VERSION)
			seterr(errbuf, errlen, "frame version %d, this reader "
			    "reads version %d", f->version, FRAME_VERSION);
		else {
			r->began = 1;
			return FRAME_BEGUN;
		}
		return FRAME_REFUSED;
	}
	switch (f->type) {
	case FRAME_BEGIN:
		seterr(errbuf, errlen, "a second begin frame");
		return FRAME_REFUSED;
	case FRAME_ERROR:
		seterr(errbuf, errlen, "the backup failed: %s", f->message);
		return FRAME_REFUSED;
	case FRAME_END:
		if (f->records != r->records || f->bytes != r->bytes) {
			seterr(errbuf, errlen, "end frame counts %ju records "
			    "and %ju bytes, the stream had %ju and %ju",
			    (uintmax_t)f->records, (uintmax_t)f->bytes,
			    (uintmax_t)r->records, (uintmax_t)r->bytes);
			return FRAME_REFUSED;
		}
		r->ended = 1;
		return FRAME_ENDED;
	default:
		r->records++;
		if (f->type == FRAME_FILE)
			r->bytes += f->size;
		return FRAME_RECORD;
	}
}
