/*
 * importer: Plakar's importer service, see importer.h.  Import runs
 * plakar-pg backup and hands Plakar one record per frame, each read with
 * Open (or taken from Plakar's cache) and acknowledged before the next.
 */
#include <sys/random.h>

#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "child.h"
#include "die.h"
#include "outcome.h"
#include "connectors.pb-c.h"
#include "frame.h"
#include "importer.h"
#include "importer.pb-c.h"
#include "options.h"
#include "util.h"

#define CHUNK_MAX	(1024 * 1024)	/* payload bytes in one OpenResponse */
#define INBUF_SIZE	(FRAME_HEADER_MAX + CHUNK_MAX)
#define WATCH_MS	200		/* how often a running backup is looked at */
#define STALL_DEFAULT	600		/* seconds: slow remote stores stall too */

/* Plakar's location flags: a stream read in order, each record acked. */
#define FLAG_STREAM	4
#define FLAG_NEEDACK	8

/* Go's fs.FileMode type bits. */
#define GO_MODE_DIR	0x80000000u
#define GO_MODE_SYMLINK	0x08000000u

enum import_state {
	IMP_NONE,
	IMP_HEADER,	/* reading the next frame header */
	IMP_RECORD,	/* a record is out: its Open, then its ack */
	IMP_ENDED,	/* end frame read: the wrapper's exit is next */
	IMP_FAILING,	/* waiting for the wrapper to say why */
	IMP_DONE
};

struct importer {
	char		*wrapper;	/* path of plakar-pg */
	char		*config;	/* key=value lines, for plakar-pg -i */

	struct child	 child;		/* plakar-pg backup */
	struct buf	 inbuf;		/* its frames */
	int		 need_bytes;	/* progress waits for its stdout */

	enum import_state imp;
	struct grpc_call *import_call;
	struct grpc_call *open_call;	/* the record's Open, until it closes */
	int		 open_finished;	/* its last byte and status are queued */
	struct frame_reader frames;	/* the stream's rules: frame.h */
	int		 acked;
	char		*cur_path;
	uint64_t	 cur_size;
	uint64_t	 payload_left;
	char		*failure;	/* an error frame's message */
	char		*ended_msg;	/* why the Import failed, for later Opens */
	int		 ended_code;

	long		 stall_timeout;	/* seconds Plakar may do nothing; 0: no limit */
	time_t		 stalled_since;	/* waiting on Plakar since, or 0 */
	size_t		 last_pending;	/* of the Open call, to see it drain */

	uint64_t	 fresh_ino;	/* this Import's inode numbers, from random */
	int		 opened;	/* the record out was read with Open */
	uint64_t	 files;		/* file records sent */
	uint64_t	 cached;	/* acked without an Open: Plakar's cache */
};

static int
importing(const struct importer *s)
{
	return s->imp != IMP_NONE && s->imp != IMP_DONE;
}

/*
 * A failed child's gRPC code and message: those of the outcome its first
 * failure line names (share/outcomes), else of the first outcome with its
 * exit status, else INTERNAL.  Plakar shows the message of every code
 * but UNAVAILABLE and CANCELLED, which it replaces with words of its
 * own: the table uses neither.
 */
int
importer_status_code(int exit_status)
{
	int o;

	for (o = 0; o < OUTCOME_COUNT; o++)
		if (outcome_exit((enum outcome)o) == exit_status)
			return outcome_grpc((enum outcome)o);
	return GRPC_INTERNAL;
}

static int
child_code(const struct child *c, const char **msg, const char *fallback)
{
	if (c->outcome > 0) {
		*msg = c->message;
		return outcome_grpc((enum outcome)c->outcome);
	}
	*msg = fallback;
	return child_failed(c) && c->status < 128 ?
	    importer_status_code(c->status) : GRPC_INTERNAL;
}

/* One protobuf message onto a call's response. */
static void
reply(struct grpc_call *c, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);

	protobuf_c_message_pack(m, grpc_send(c, n));
}

/* Init. */

/* A config value on one line: the PEM forms write newlines as \n. */
static void
forget_config(struct importer *s)
{
	if (s->config != NULL)
		explicit_bzero(s->config, strlen(s->config));
	free(s->config);
	s->config = NULL;
}

/* Where the snapshot comes from, as Plakar shows it: host:port. */
static char *
origin_of(const char *options_json)
{
	json_t *j = json_loads(options_json, 0, NULL);
	const char *host = json_string_value(json_object_get(j, "host"));
	json_int_t port = json_integer_value(json_object_get(j, "port"));
	char *origin;
	size_t n;

	if (host == NULL)
		host = "localhost";
	n = strlen(host) + 24;
	origin = xmalloc(n);
	if (port > 0)
		snprintf(origin, n, "%s:%lld", host, (long long)port);
	else
		snprintf(origin, n, "%s", host);
	json_decref(j);
	return origin;
}

static void
init_message(void *arg, struct grpc_call *c, const uint8_t *p, size_t n)
{
	struct importer *s = arg;
	Importer__InitRequest *req = importer__init_request__unpack(NULL, n, p);
	Importer__InitResponse resp = IMPORTER__INIT_RESPONSE__INIT;
	/* The preflight, so that plakar source check shows what is wrong. */
	char *argv[] = { s->wrapper, "check", "-J", "-F", CHILD_STATUS_ARG,
	    NULL };
	struct buf out = { 0 };
	json_t *cfg;
	struct child ch;
	char errbuf[256];
	const char *why;
	size_t i;
	int status, code;

	if (req == NULL) {
		grpc_finish(c, GRPC_INVALID_ARGUMENT, "bad InitRequest");
		return;
	}
	/* Plakar always sends the location; a client that does not is lost. */
	for (i = 0; i < req->n_config; i++)
		if (strcmp(req->config[i]->key, "location") == 0)
			break;
	if (i == req->n_config) {
		importer__init_request__free_unpacked(req, NULL);
		grpc_finish(c, GRPC_INVALID_ARGUMENT, "Init: the config has "
		    "no location");
		return;
	}
	/*
	 * The options go to plakar-pg as one JSON object, where the option
	 * table checks each (uriparse); stall_timeout is ours alone, checked
	 * here by the same table.
	 */
	s->stall_timeout = STALL_DEFAULT;
	cfg = json_object();
	for (i = 0; i < req->n_config; i++) {
		const char *k = req->config[i]->key, *v = req->config[i]->value;

		if (strcmp(k, "stall_timeout") == 0) {
			const struct option_def *d = option_find(k, strlen(k));
			char bad[256], msg[300];

			if (option_check(d, v, bad, sizeof(bad)) == -1) {
				snprintf(msg, sizeof(msg), "stall_timeout: %s", bad);
				importer__init_request__free_unpacked(req, NULL);
				json_decref(cfg);
				grpc_finish(c, GRPC_INVALID_ARGUMENT, msg);
				return;
			}
			s->stall_timeout = option_number(d, v);
			continue;
		}
		if (json_object_set_new(cfg, k, json_stringn(v, strlen(v))) ==
		    -1) {
			char msg[300];

			snprintf(msg, sizeof(msg), "%.100s: not valid UTF-8", k);
			importer__init_request__free_unpacked(req, NULL);
			json_decref(cfg);
			grpc_finish(c, GRPC_INVALID_ARGUMENT, msg);
			return;
		}
	}
	importer__init_request__free_unpacked(req, NULL);
	forget_config(s);
	s->config = json_dumps(cfg, JSON_COMPACT);
	json_decref(cfg);
	if (s->config == NULL) {
		grpc_finish(c, GRPC_INTERNAL, "Init: out of memory");
		return;
	}

	status = child_run(&ch, argv, s->config, &out, errbuf,
	    sizeof(errbuf));
	if (status != 0) {
		if (status == -1)
			grpc_finish(c, GRPC_INTERNAL, errbuf);
		else {
			code = child_code(&ch, &why, "bad options");
			grpc_finish(c, code, why);
		}
		buf_free(&out);
		return;
	}
	resp.origin = origin_of((char *)out.p);
	resp.type = "postgres+bin";
	resp.root = "/";
	resp.flags = FLAG_STREAM | FLAG_NEEDACK;
	reply(c, &resp.base);
	grpc_finish(c, GRPC_OK, NULL);
	free(resp.origin);
	buf_free(&out);
}

/* Ping: the preflight. */
static void
ping_message(void *arg, struct grpc_call *c, const uint8_t *p, size_t n)
{
	struct importer *s = arg;
	Importer__PingResponse resp = IMPORTER__PING_RESPONSE__INIT;
	char *argv[] = { s->wrapper, "check", "-J", "-F", CHILD_STATUS_ARG,
	    NULL };
	char errbuf[256];
	struct buf out = { 0 };
	struct child ch;
	const char *why;
	int status, code;

	(void)p;
	(void)n;
	if (s->config == NULL) {
		grpc_finish(c, GRPC_FAILED_PRECONDITION, "Ping before Init");
		return;
	}
	status = child_run(&ch, argv, s->config, &out, errbuf,
	    sizeof(errbuf));
	buf_free(&out);
	if (status != 0) {
		if (status == -1)
			grpc_finish(c, GRPC_INTERNAL, errbuf);
		else {
			code = child_code(&ch, &why,
			    "the server is not reachable");
			grpc_finish(c, code, why);
		}
		return;
	}
	reply(c, &resp.base);
	grpc_finish(c, GRPC_OK, NULL);
}

/* Import. */

static void
import_fail(struct importer *s, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
import_fail(struct importer *s, int code, const char *fmt, ...)
{
	char buf[512], *msg;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	/* an error frame's message among them: one safe line */
	msg = one_line(buf, strlen(buf));
	fprintf(stderr, "plakar-pg-importer: %s\n", msg);
	child_stop(&s->child);
	free(s->ended_msg);
	s->ended_msg = xstrdup(msg);
	s->ended_code = code;
	if (s->open_call != NULL)
		grpc_finish(s->open_call, code, msg);
	if (s->import_call != NULL)
		grpc_finish(s->import_call, code, msg);
	s->imp = IMP_DONE;
	free(msg);
}

/*
 * The wrapper failed: its first failure line says it, else its error
 * frame; a wrapper killed without a word is said to be so.
 */
static void
import_fail_child(struct importer *s, const char *fallback)
{
	char killed[128];
	const char *why;
	int code;

	while (child_read_status(&s->child) == 1)
		;
	code = child_code(&s->child, &why, s->failure != NULL ? s->failure :
	    fallback);
	if (why == fallback && s->child.reaped && s->child.status > 128) {
		snprintf(killed, sizeof(killed), "plakar-pg died in the middle "
		    "of the backup (signal %d)", s->child.status - 128);
		why = killed;
	}
	import_fail(s, code, "%s", why);
}

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL && slash[1] != '\0' ? slash + 1 : path;
}

/*
 * Where a record goes in the snapshot: the data directory at its root,
 * so that a plain restore is a data directory (the frames keep it under
 * /data), and /manifest.json beside its files.  NULL for anything else.
 */
static const char *
snapshot_path(const char *path)
{
	if (strcmp(path, "/manifest.json") == 0)
		return path;
	if (strcmp(path, "/data") == 0)
		return "/";
	if (strncmp(path, "/data/", 6) == 0 && path[6] != '\0')
		return path + 5;
	return NULL;
}

/*
 * A record frame as a Plakar record: 0, or -1 when Plakar cannot hold
 * it as it is.  Plakar commits a snapshot with error records in it, so
 * none is ever sent: such a file fails the Import.
 */
static int
send_record(struct importer *s, const struct frame *f)
{
	Importer__ImportResponse resp = IMPORTER__IMPORT_RESPONSE__INIT;
	Plakar__Connectors__Record rec = PLAKAR__CONNECTORS__RECORD__INIT;
	Plakar__Connectors__FileInfo fi = PLAKAR__CONNECTORS__FILE_INFO__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	const char *path;

	/* Protobuf strings are UTF-8. */
	if (f->path_hex) {
		char *hex = xmalloc(2 * f->pathlen + 1);

		hex_encode(f->path, f->pathlen, hex);
		import_fail(s, GRPC_FAILED_PRECONDITION, "a file whose name is "
		    "not UTF-8 (hex %s): Plakar cannot hold it; rename it", hex);
		free(hex);
		return -1;
	}
	if (f->target_hex) {
		import_fail(s, GRPC_FAILED_PRECONDITION, "%s: a link whose "
		    "target is not UTF-8: Plakar cannot hold it", f->path);
		return -1;
	}
	if (f->type == FRAME_HARDLINK) {
		import_fail(s, GRPC_FAILED_PRECONDITION, "%s: a hard link (to "
		    "%s): Plakar cannot hold it", f->path, f->target);
		return -1;
	}
	if ((path = snapshot_path(f->path)) == NULL) {
		import_fail(s, GRPC_INTERNAL, "%s: a record outside /data and "
		    "/manifest.json", f->path);
		return -1;
	}
	rec.pathname = (char *)path;
	fi.name = (char *)base_name(path);
	fi.size = f->type == FRAME_FILE ? (int64_t)f->size : 0;
	fi.mode = f->mode;
	if (f->type == FRAME_DIR)
		fi.mode |= GO_MODE_DIR;
	else if (f->type == FRAME_SYMLINK) {
		fi.mode |= GO_MODE_SYMLINK;
		rec.target = f->target;
	}
	ts.seconds = f->mtime;
	fi.mod_time = &ts;
	/*
	 * Plakar reuses a file's previous content when its FileInfo equals
	 * the previous snapshot's, inode included: a file that may have
	 * changed within the second its mtime names gets an inode number of
	 * this Import's own, which no earlier or later one has.
	 */
	if (f->fresh)
		fi.ino = s->fresh_ino + s->frames.records;
	fi.uid = (uint64_t)f->uid;
	fi.gid = (uint64_t)f->gid;
	fi.nlink = 1;
	fi.username = (char *)f->uname;
	fi.groupname = (char *)f->gname;
	rec.fileinfo = &fi;
	rec.hasreader = f->type == FRAME_FILE;
	resp.record = &rec;
	if (s->import_call != NULL)
		reply(s->import_call, &resp.base);
	free(s->cur_path);
	s->cur_path = xstrdup(path);
	s->cur_size = f->type == FRAME_FILE ? f->size : 0;
	s->opened = 0;
	s->open_finished = 0;
	if (f->type == FRAME_FILE)
		s->files++;
	return 0;
}

/* The header line at the front of inbuf: 1, 0 if not all there, -1 bad. */
static int
next_header(struct importer *s, struct frame *f)
{
	unsigned char *start = s->inbuf.p + s->inbuf.off, *nl;
	size_t n = buf_avail(&s->inbuf);
	char errbuf[256];

	nl = n > 0 ? memchr(start, '\n', n) : NULL;
	if (nl == NULL) {
		if (n >= FRAME_HEADER_MAX) {
			import_fail(s, GRPC_INTERNAL, "frame header longer "
			    "than %d bytes", FRAME_HEADER_MAX);
			return -1;
		}
		s->need_bytes = 1;
		return 0;
	}
	if (frame_parse((char *)start, (size_t)(nl - start), f, errbuf,
	    sizeof(errbuf)) != 1) {
		frame_free(f);
		import_fail(s, GRPC_INTERNAL, "bad frame from plakar-pg: %s",
		    errbuf);
		return -1;
	}
	s->inbuf.off += (size_t)(nl - start) + 1;
	return 1;
}

/* The payload of the current record: to its Open call, or dropped. */
static void
move_payload(struct importer *s)
{
	size_t n = buf_avail(&s->inbuf);

	if (s->payload_left == 0)
		return;
	if (s->open_call != NULL && grpc_pending(s->open_call) >= CHUNK_MAX)
		return;		/* Plakar has not read the last chunk yet */
	if (n > s->payload_left)
		n = (size_t)s->payload_left;
	if (n > CHUNK_MAX)
		n = CHUNK_MAX;
	if (n == 0) {
		s->need_bytes = 1;
		return;
	}
	if (s->open_call != NULL) {
		Importer__OpenResponse resp = IMPORTER__OPEN_RESPONSE__INIT;

		resp.chunk.len = n;
		resp.chunk.data = s->inbuf.p + s->inbuf.off;
		reply(s->open_call, &resp.base);
	}
	s->inbuf.off += n;
	s->payload_left -= n;
	if (s->payload_left > 0)
		s->need_bytes = 1;
}

/*
 * The states of an Import, one function each: each returns 1 when it
 * moved to another state (look again at once), 0 when it waits.
 */

static int
import_header(struct importer *s)
{
	char msg[512];
	struct frame f;
	int r;

	if ((r = next_header(s, &f)) == -1)
		return 1;
	if (r == 0) {
		if (s->child.out >= 0)
			return 0;
		s->imp = IMP_FAILING;
		return 1;
	}
	switch (frame_accept(&s->frames, &f, msg, sizeof(msg))) {
	case FRAME_BEGUN:
		break;
	case FRAME_REFUSED:
		/* the producer's own message goes to Plakar as it is */
		if (f.type == FRAME_ERROR && s->frames.began) {
			s->failure = xstrdup(f.message);
			s->imp = IMP_FAILING;
		} else
			import_fail(s, GRPC_INTERNAL, "plakar-pg's frames: %s",
			    msg);
		break;
	case FRAME_ENDED:
		s->imp = IMP_ENDED;
		break;
	case FRAME_RECORD:
		s->payload_left = f.type == FRAME_FILE ? f.size : 0;
		s->acked = 0;
		if (send_record(s, &f) == 0)
			s->imp = IMP_RECORD;
		break;
	}
	frame_free(&f);
	return 1;
}

/*
 * A record is out: its content goes to its Open, or is dropped when
 * Plakar acked it without one (its cache).  An Open that closes before
 * its last byte and status went out fails the Import (open_close): what
 * it did not read would be a hole in a committed snapshot.
 */
static int
import_record(struct importer *s)
{
	if (s->open_call != NULL || (s->acked && !s->opened))
		move_payload(s);
	if (s->payload_left > 0) {
		if (s->need_bytes && s->child.out < 0) {
			s->imp = IMP_FAILING;
			return 1;
		}
		return 0;
	}
	if (s->open_call != NULL) {
		if (!s->open_finished) {
			grpc_finish(s->open_call, GRPC_OK, NULL);
			s->open_finished = 1;
		}
		return 0;	/* until it is delivered */
	}
	if (!s->acked)
		return 0;
	s->imp = IMP_HEADER;
	return 1;
}

/* The end frame is in: finished only on the wrapper's zero exit. */
static int
import_ended(struct importer *s)
{
	Importer__ImportResponse resp = IMPORTER__IMPORT_RESPONSE__INIT;

	if (buf_avail(&s->inbuf) > 0) {
		import_fail(s, GRPC_INTERNAL, "data after the end frame");
		return 0;
	}
	if (s->child.out >= 0 || s->child.err >= 0 || s->child.st >= 0) {
		s->need_bytes = 1;
		return 0;
	}
	if (child_reap(&s->child, 1) && child_failed(&s->child)) {
		import_fail_child(s, "plakar-pg failed");
		return 0;
	}
	fprintf(stderr, "plakar-pg-importer: %ju files, %ju of them taken "
	    "from Plakar's cache without a read\n", (uintmax_t)s->files,
	    (uintmax_t)s->cached);
	resp.finished = 1;
	if (s->import_call != NULL) {
		reply(s->import_call, &resp.base);
		grpc_finish(s->import_call, GRPC_OK, NULL);
	}
	s->imp = IMP_DONE;
	return 0;
}

/* The stream broke off: wait for the wrapper's last word. */
static int
import_failing(struct importer *s)
{
	s->inbuf.off = s->inbuf.len = 0;
	if (s->child.out >= 0 || s->child.err >= 0 || s->child.st >= 0) {
		s->need_bytes = 1;
		return 0;
	}
	child_reap(&s->child, 1);
	import_fail_child(s, "plakar-pg ended without an end frame");
	return 0;
}

static void
import_progress(struct importer *s)
{
	int more = 1;

	s->need_bytes = 0;
	while (more) {
		switch (s->imp) {
		case IMP_HEADER:
			more = import_header(s);
			break;
		case IMP_RECORD:
			more = import_record(s);
			break;
		case IMP_ENDED:
			more = import_ended(s);
			break;
		case IMP_FAILING:
			more = import_failing(s);
			break;
		default:
			more = 0;
		}
	}
}

static void
import_open(void *arg, struct grpc_call *c)
{
	struct importer *s = arg;
	char *argv[] = { s->wrapper, "backup", "-J", "-F", CHILD_STATUS_ARG,
	    "progress=off", NULL };
	char errbuf[256];

	if (s->config == NULL) {
		grpc_finish(c, GRPC_FAILED_PRECONDITION, "Import before Init");
		return;
	}
	if (s->imp != IMP_NONE) {
		grpc_finish(c, GRPC_FAILED_PRECONDITION,
		    "one Import per plugin run");
		return;
	}
	s->import_call = c;
	if (child_spawn(&s->child, argv, s->config, errbuf, sizeof(errbuf)) ==
	    -1) {
		import_fail(s, GRPC_INTERNAL, "%s", errbuf);
		return;
	}
	s->inbuf.p = xmalloc(INBUF_SIZE);
	s->inbuf.cap = INBUF_SIZE;
	/* High bits random, low bits the record number: never 0. */
	if (getrandom(&s->fresh_ino, sizeof(s->fresh_ino), 0) !=
	    sizeof(s->fresh_ino))
		s->fresh_ino = (uint64_t)time(NULL) << 32;
	s->fresh_ino = (s->fresh_ino | 1ULL << 63) & ~0xffffffffULL;
	s->imp = IMP_HEADER;
}

/* Plakar's acknowledgement of the record out. */
static void
import_message(void *arg, struct grpc_call *c, const uint8_t *p, size_t n)
{
	struct importer *s = arg;
	Importer__ImportRequest *req = importer__import_request__unpack(NULL,
	    n, p);

	if (c != s->import_call)
		return;
	if (req == NULL) {
		import_fail(s, GRPC_INVALID_ARGUMENT, "bad ImportRequest");
		return;
	}
	if (req->result != NULL && req->result->error != NULL &&
	    req->result->error[0] != '\0')
		fprintf(stderr, "plakar-pg-importer: %s: %s\n",
		    req->result->header != NULL ?
		    req->result->header->pathname : "?", req->result->error);
	importer__import_request__free_unpacked(req, NULL);
	if (s->imp == IMP_RECORD && !s->acked) {
		s->acked = 1;
		if (s->payload_left > 0 && s->open_call == NULL && !s->opened)
			s->cached++;
	}
}

/* Plakar gave up on the Import, or it is over. */
static void
import_close(void *arg, struct grpc_call *c)
{
	struct importer *s = arg;

	if (c != s->import_call)
		return;
	s->import_call = NULL;
	if (s->imp != IMP_DONE) {
		child_stop(&s->child);
		s->imp = IMP_DONE;
	}
}

/* Open: the content of the record just sent, once. */
static void
open_message(void *arg, struct grpc_call *c, const uint8_t *p, size_t n)
{
	struct importer *s = arg;
	Importer__OpenRequest *req = importer__open_request__unpack(NULL, n, p);

	if (req == NULL || req->record == NULL)
		grpc_finish(c, GRPC_INVALID_ARGUMENT, "bad OpenRequest");
	else if (s->imp == IMP_DONE && s->ended_msg != NULL)
		/* the Import failed: the reason, not a complaint about order */
		grpc_finish(c, s->ended_code, s->ended_msg);
	else if (s->imp != IMP_RECORD || s->cur_path == NULL ||
	    strcmp(req->record->pathname, s->cur_path) != 0 ||
	    s->opened || s->acked)
		grpc_finish(c, GRPC_FAILED_PRECONDITION,
		    "Open: only the record just sent can be read, once");
	else {
		s->open_call = c;
		s->opened = 1;
	}
	if (req != NULL)
		importer__open_request__free_unpacked(req, NULL);
}

/*
 * An Open ended.  kloset commits a record whose content it could not
 * read in full as an error entry, in a snapshot that looks successful:
 * an Open cancelled or cut before its end fails the whole Import.
 */
static void
open_close(void *arg, struct grpc_call *c)
{
	struct importer *s = arg;

	if (c != s->open_call)
		return;
	s->open_call = NULL;
	if (!grpc_delivered(c) && importing(s))
		import_fail(s, GRPC_ABORTED, "%s: Plakar cancelled its read "
		    "(%ju of %ju bytes sent): the backup is stopped rather than "
		    "stored with the file short", s->cur_path,
		    (uintmax_t)(s->cur_size - s->payload_left -
		    grpc_pending(c)), (uintmax_t)s->cur_size);
}

static void
close_message(void *arg, struct grpc_call *c, const uint8_t *p, size_t n)
{
	struct importer *s = arg;
	Importer__CloseResponse resp = IMPORTER__CLOSE_RESPONSE__INIT;

	(void)p;
	(void)n;
	if (s->imp != IMP_NONE && s->imp != IMP_DONE)
		import_fail(s, GRPC_ABORTED, "Close during Import");
	reply(c, &resp.base);
	grpc_finish(c, GRPC_OK, NULL);
}

const struct grpc_method importer_methods[] = {
	{ "/importer.Importer/Init", 0, NULL, init_message, NULL },
	{ "/importer.Importer/Ping", 0, NULL, ping_message, NULL },
	{ "/importer.Importer/Import", 1, import_open, import_message,
	    import_close },
	{ "/importer.Importer/Open", 0, NULL, open_message, open_close },
	{ "/importer.Importer/Close", 0, NULL, close_message, NULL },
};
const size_t importer_nmethods = sizeof(importer_methods) /
    sizeof(importer_methods[0]);

/*
 * Is Plakar doing nothing?  Only while we wait on it: a record is out,
 * not acknowledged, and either not opened or its content not drained.
 * While we wait on the backup itself, Plakar is not to blame.
 */
static void
watch_stall(struct importer *s)
{
	size_t pending = s->open_call != NULL ? grpc_pending(s->open_call) : 0;
	int waiting = s->imp == IMP_RECORD && !s->acked &&
	    (s->open_call == NULL || pending > 0);
	time_t now = time(NULL);

	if (!waiting || pending < s->last_pending)
		s->stalled_since = 0;
	s->last_pending = pending;
	if (!waiting || s->stall_timeout == 0)
		return;
	if (s->stalled_since == 0)
		s->stalled_since = now;
	else if (now - s->stalled_since >= s->stall_timeout)
		import_fail(s, GRPC_DEADLINE_EXCEEDED, "Plakar neither read nor "
		    "acknowledged anything for %ld s (stall_timeout): the "
		    "backup is stopped", s->stall_timeout);
}

/* The loop's hooks: a running backup moves on with its pipes. */

/* What the wrapper wrote on its stdout, into inbuf. */
static void
read_frames(struct importer *s)
{
	ssize_t r;

	buf_reserve(&s->inbuf, 0);
	if (s->inbuf.len == s->inbuf.cap && s->inbuf.off > 0) {
		memmove(s->inbuf.p, s->inbuf.p + s->inbuf.off,
		    buf_avail(&s->inbuf));
		s->inbuf.len -= s->inbuf.off;
		s->inbuf.off = 0;
	}
	if (s->inbuf.len == s->inbuf.cap)
		return;
	r = child_read_out(&s->child, s->inbuf.p + s->inbuf.len,
	    s->inbuf.cap - s->inbuf.len);
	if (r > 0)
		s->inbuf.len += (size_t)r;
}

/*
 * The wrapper ended badly: an error frame it wrote just before, still in
 * the pipe, says why.  Only looked for, payloads skipped: nothing more
 * goes to Plakar.
 */
static void
find_failure(struct importer *s)
{
	const char *p;
	uint64_t skip = s->payload_left;
	size_t n, len;
	struct frame f;
	char errbuf[64];

	if (s->failure != NULL || s->inbuf.p == NULL)
		return;
	read_frames(s);
	p = (const char *)s->inbuf.p + s->inbuf.off;
	n = buf_avail(&s->inbuf);
	for (;;) {
		const char *nl;

		len = skip < n ? (size_t)skip : n;
		p += len;
		n -= len;
		if (n == 0 || (nl = memchr(p, '\n', n)) == NULL)
			return;
		len = (size_t)(nl - p);
		if (frame_parse(p, len, &f, errbuf, sizeof(errbuf)) != 1) {
			frame_free(&f);
			return;
		}
		p += len + 1;
		n -= len + 1;
		skip = f.type == FRAME_FILE ? f.size : 0;
		if (f.type == FRAME_ERROR)
			s->failure = xstrdup(f.message);
		frame_free(&f);
		if (s->failure != NULL)
			return;
	}
}

static void
hook_progress(void *arg)
{
	struct importer *s = arg;

	/*
	 * A wrapper that failed, or was killed, mid-stream: what it left
	 * in the pipe no longer matters.
	 */
	if ((s->imp == IMP_HEADER || s->imp == IMP_RECORD ||
	    s->imp == IMP_FAILING) &&
	    child_reap(&s->child, 0) && child_failed(&s->child)) {
		while (child_read_err(&s->child) == 1)
			;
		find_failure(s);
		import_fail_child(s, "plakar-pg died in the middle of the "
		    "backup");
	}
	if (importing(s)) {
		import_progress(s);
		watch_stall(s);
	}
}

static int
hook_fds(void *arg, struct pollfd *p, int max, int *timeout)
{
	struct importer *s = arg;
	int n = 0;

	if (!importing(s) || max < 3)
		return 0;
	if (s->child.out >= 0 && s->need_bytes) {
		p[n].fd = s->child.out;
		p[n++].events = POLLIN;
	}
	if (s->child.err >= 0) {
		p[n].fd = s->child.err;
		p[n++].events = POLLIN;
	}
	if (s->child.st >= 0 && n < max) {
		p[n].fd = s->child.st;
		p[n++].events = POLLIN;
	}
	if (s->child.pid > 0)
		*timeout = WATCH_MS;
	return n;
}


static void
hook_ready(void *arg, const struct pollfd *p, int n)
{
	struct importer *s = arg;
	int i;

	for (i = 0; i < n; i++) {
		if (p[i].revents == 0)
			continue;
		if (p[i].fd == s->child.err)
			(void)child_read_err(&s->child);
		else if (p[i].fd == s->child.st)
			(void)child_read_status(&s->child);
		else if (p[i].fd == s->child.out)
			read_frames(s);
	}
}

const struct grpc_hooks importer_hooks = {
	hook_progress, hook_fds, hook_ready
};

struct importer *
importer_new(const char *wrapper)
{
	struct importer *s = xmalloc(sizeof(*s));

	memset(s, 0, sizeof(*s));
	s->wrapper = xstrdup(wrapper);
	s->child.out = s->child.err = s->child.st = -1;
	s->child.outcome = -1;
	return s;
}

int
importer_busy(const struct importer *s)
{
	return importing(s);
}

void
importer_free(struct importer *s)
{
	if (s == NULL)
		return;
	child_stop(&s->child);
	forget_config(s);
	buf_free(&s->inbuf);
	free(s->cur_path);
	free(s->failure);
	free(s->ended_msg);
	free(s->wrapper);
	free(s);
}
