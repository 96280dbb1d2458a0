/*
 * importer_test: the Importer service without HTTP/2.  The transport's
 * three functions are replaced by a recorder of what the service queues;
 * the requests are fed to its method table; plakar-pg is either the real
 * one (options) or a script that writes a given frame stream.
 *
 *	importer_test PLAKAR_PG_BIN
 *
 * Prints one line per case and "N passed, N failed".
 */
#include <sys/stat.h>

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "connectors.pb-c.h"
#include "grpcserver.h"
#include "importer.h"
#include "importer.pb-c.h"
#include "util.h"

/* The transport, as the service sees it: what it was given to send. */
struct grpc_call {
	struct buf	 out;		/* gRPC-framed messages */
	int		 finished;
	int		 status;
	char		 message[512];
	int		 delivered;	/* what on_close is told */
};

uint8_t *
grpc_send(struct grpc_call *c, size_t n)
{
	uint8_t *p;

	buf_reserve(&c->out, n + 5);
	p = c->out.p + c->out.len;
	p[0] = 0;	/* not compressed */
	be32_put(p + 1, (uint32_t)n);
	c->out.len += n + 5;
	return p + 5;
}

void
grpc_finish(struct grpc_call *c, int status, const char *message)
{
	if (c->finished)
		return;
	c->finished = 1;
	c->status = status;
	snprintf(c->message, sizeof(c->message), "%s",
	    message != NULL ? message : "");
}

size_t
grpc_pending(const struct grpc_call *c)
{
	(void)c;
	return 0;	/* the client reads at once */
}

int
grpc_delivered(const struct grpc_call *c)
{
	return c->delivered;
}

static int passed, failed;
/* The record whose Open the client cancels before its end, if any. */
static const char *cancel_path;
static char dir[] = "/tmp/importer_test.XXXXXX";

static void
expect(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s - ", ok ? "ok" : "not ok");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (ok)
		passed++;
	else
		failed++;
}

static const struct grpc_method *
method(const char *name)
{
	size_t i;

	for (i = 0; i < importer_nmethods; i++)
		if (strcmp(importer_methods[i].path, name) == 0)
			return &importer_methods[i];
	abort();
}

/* The next queued message of a call; NULL when none is left. */
static const uint8_t *
next_reply(struct grpc_call *c, size_t *n)
{
	const uint8_t *p = c->out.p + c->out.off;

	if (buf_avail(&c->out) < 5)
		return NULL;
	*n = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 |
	    p[4];
	c->out.off += 5 + *n;
	return p + 5;
}

/* Until cond holds or 10 s pass: the loop grpcserver would run. */
static void
pump(struct importer *s, int (*cond)(void *), void *arg)
{
	time_t end = time(NULL) + 10;

	while (!cond(arg) && time(NULL) < end) {
		struct pollfd p[8];
		int timeout = 50, n;

		importer_hooks.progress(s);
		if (cond(arg))
			break;
		n = importer_hooks.fds(s, p, 8, &timeout);
		if (poll(p, (nfds_t)n, 50) > 0)
			importer_hooks.ready(s, p, n);
	}
}

static int
has_reply(void *arg)
{
	struct grpc_call *c = arg;

	return buf_avail(&c->out) > 0 || c->finished;
}

static int
is_finished(void *arg)
{
	return ((struct grpc_call *)arg)->finished;
}

static void
call_unary(struct importer *s, const char *name, struct grpc_call *c,
    const ProtobufCMessage *m)
{
	size_t n = m != NULL ? protobuf_c_message_get_packed_size(m) : 0;
	uint8_t *b = xmalloc(n);

	if (m != NULL)
		protobuf_c_message_pack(m, b);
	memset(c, 0, sizeof(*c));
	method(name)->on_message(s, c, b, n);
	free(b);
}

/* Init with these key, value pairs (NULL-terminated). */
static void
init(struct importer *s, struct grpc_call *c, ...)
{
	Importer__InitRequest req = IMPORTER__INIT_REQUEST__INIT;
	Importer__InitRequest__ConfigEntry e[8], *ep[8];
	va_list ap;
	size_t n = 0;

	va_start(ap, c);
	while (n < 8 && (e[n].key = va_arg(ap, char *)) != NULL) {
		Importer__InitRequest__ConfigEntry init =
		    IMPORTER__INIT_REQUEST__CONFIG_ENTRY__INIT;
		char *key = e[n].key;

		e[n] = init;
		e[n].key = key;
		e[n].value = va_arg(ap, char *);
		ep[n] = &e[n];
		n++;
	}
	va_end(ap);
	req.n_config = n;
	req.config = ep;
	call_unary(s, "/importer.Importer/Init", c, n > 0 ? &req.base : NULL);
}

/*
 * A plakar-pg that writes frames and exits with status: its status line,
 * if any, on the descriptor -F names, and on stderr an English line
 * that the importer must not take for it.
 */
static char *
script(const char *name, const char *frames, const char *status_line,
    int status)
{
	char *path;
	FILE *f;

	if (asprintf(&path, "%s/%s", dir, name) == -1)
		abort();
	if ((f = fopen(path, "w")) == NULL)
		abort();
	fprintf(f, "#!/bin/sh\ncase $1 in options|check) echo "
	    "'{\"host\":\"/run/pg\",\"port\":6543}'; exit 0;; esac\n"
	    "printf '%%s' '%s'\n", frames);
	if (status_line != NULL)
		fprintf(f, "echo 'plakar-pg: words in some language' >&2\n"
		    "[ \"$3\" = -F ] || exit 99\n"
		    "echo '{\"program\":\"plakar-pg\",\"status\":\"ok\","
		    "\"exit\":0}' >&$4\n"
		    "echo '%s' >&$4\n", status_line);
	fprintf(f, "exit %d\n", status);
	fclose(f);
	chmod(path, 0700);
	return path;
}

#define HDR "\"mode\":384,\"mtime\":1,\"uid\":1,\"gid\":1,\"uname\":\"u\",\"gname\":\"g\""
#define GOOD \
	"{\"type\":\"begin\",\"version\":1,\"producer\":\"test\"}\n" \
	"{\"type\":\"dir\",\"path\":\"/data\"," HDR "}\n" \
	"{\"type\":\"dir\",\"path\":\"/data/base\"," HDR "}\n" \
	"{\"type\":\"file\",\"path\":\"/data/PG_VERSION\",\"size\":3," HDR "}\n" \
	"15\n" \
	"{\"type\":\"end\",\"records\":3,\"bytes\":3}\n"

static void
ack(struct importer *s, struct grpc_call *imp, const char *path)
{
	Importer__ImportRequest req = IMPORTER__IMPORT_REQUEST__INIT;
	Plakar__Connectors__Result res = PLAKAR__CONNECTORS__RESULT__INIT;
	Plakar__Connectors__Record rec = PLAKAR__CONNECTORS__RECORD__INIT;
	size_t n;
	uint8_t *b;

	rec.pathname = (char *)path;
	res.header = &rec;
	req.result = &res;
	n = protobuf_c_message_get_packed_size(&req.base);
	b = xmalloc(n);
	protobuf_c_message_pack(&req.base, b);
	method("/importer.Importer/Import")->on_message(s, imp, b, n);
	free(b);
}

/*
 * An Import of a frame stream, as Plakar reads it: each record, its
 * content through Open, its ack.  The paths and contents, in order, into
 * log; the Import call's end in *imp.
 */
static void
import(struct importer *s, struct grpc_call *imp, struct buf *log)
{
	const struct grpc_method *m = method("/importer.Importer/Import");

	memset(imp, 0, sizeof(*imp));
	m->on_open(s, imp);
	for (;;) {
		Importer__ImportResponse *r;
		const uint8_t *p;
		size_t n;
		char *path;

		pump(s, has_reply, imp);
		if ((p = next_reply(imp, &n)) == NULL)
			break;
		r = importer__import_response__unpack(NULL, n, p);
		if (r == NULL || r->finished || r->record == NULL) {
			if (r != NULL && r->finished)
				buf_append(log, "finished;", 9);
			importer__import_response__free_unpacked(r, NULL);
			pump(s, is_finished, imp);
			break;
		}
		path = xstrdup(r->record->pathname);
		buf_append(log, path, strlen(path));
		if (r->record->hasreader) {
			Importer__OpenRequest oreq = IMPORTER__OPEN_REQUEST__INIT;
			struct grpc_call op;
			const uint8_t *q;
			size_t k;

			oreq.record = r->record;
			call_unary(s, "/importer.Importer/Open", &op,
			    &oreq.base);
			/* Plakar reads to the end; a cancel closes it first. */
			if (cancel_path == NULL ||
			    strcmp(path, cancel_path) != 0) {
				pump(s, is_finished, &op);
				op.delivered = 1;
			}
			method("/importer.Importer/Open")->on_close(s, &op);
			buf_append(log, "=", 1);
			while ((q = next_reply(&op, &k)) != NULL) {
				Importer__OpenResponse *o =
				    importer__open_response__unpack(NULL, k, q);

				buf_append(log, o->chunk.data, o->chunk.len);
				importer__open_response__free_unpacked(o, NULL);
			}
			buf_free(&op.out);
		}
		buf_append(log, ";", 1);
		importer__import_response__free_unpacked(r, NULL);
		ack(s, imp, path);
		free(path);
	}
	buf_append(log, "", 1);
	m->on_close(s, imp);
}

/*
 * One frame stream, as a scripted plakar-pg writes it and exits with
 * status, imported: the paths, contents and end into log, the Import's
 * status into imp.
 */
static void
import_case(const char *name, const char *frames, const char *errline,
    int status, struct grpc_call *imp, struct buf *log)
{
	struct importer *s;
	struct grpc_call c;

	buf_free(log);
	buf_free(&imp->out);
	s = importer_new(script(name, frames, errline, status));
	init(s, &c, "location", "postgres+bin://h", NULL);
	buf_free(&c.out);
	import(s, imp, log);
	importer_free(s);
}

#define BEGIN	"{\"type\":\"begin\",\"version\":1,\"producer\":\"t\"}\n"

int
main(int argc, char *argv[])
{
	char *wrapper;
	struct importer *s;
	struct grpc_call c, imp = { 0 };
	struct buf log = { 0 };
	Importer__InitResponse *r;
	const uint8_t *p;
	size_t n;

	if (argc != 2) {
		fprintf(stderr, "usage: importer_test PLAKAR_PG_BIN\n");
		return 1;
	}
	if (mkdtemp(dir) == NULL ||
	    asprintf(&wrapper, "%s/plakar-pg", argv[1]) == -1)
		abort();

	/* Init answers what the wrapper's check printed. */
	s = importer_new(script("check", "", NULL, 0));
	call_unary(s, "/importer.Importer/Ping", &c, NULL);
	expect(c.finished && c.status == GRPC_FAILED_PRECONDITION,
	    "Ping before Init: FAILED_PRECONDITION (%d %s)", c.status,
	    c.message);
	init(s, &c, "location", "postgres+bin://u@db.example.com:6543",
	    "host", "/run/pg", NULL);
	p = next_reply(&c, &n);
	r = p != NULL ? importer__init_response__unpack(NULL, n, p) : NULL;
	expect(c.status == GRPC_OK && r != NULL &&
	    strcmp(r->origin, "/run/pg:6543") == 0 &&
	    strcmp(r->type, "postgres+bin") == 0 &&
	    strcmp(r->root, "/") == 0 && r->flags == 12,
	    "Init: origin host:port, type, root /, flags 12 (%s)",
	    r != NULL ? r->origin : c.message);
	importer__init_response__free_unpacked(r, NULL);
	buf_free(&c.out);
	importer_free(s);

	/* The real wrapper refuses bad options before it connects. */
	s = importer_new(wrapper);
	init(s, &c, "location", "postgres+bin://h/db", NULL);
	expect(c.status == GRPC_INVALID_ARGUMENT &&
	    strstr(c.message, "a subpath is not allowed") != NULL,
	    "Init with a subpath: INVALID_ARGUMENT, uriparse's line (%s)",
	    c.message);
	init(s, &c, NULL);
	expect(c.status == GRPC_INVALID_ARGUMENT,
	    "Init without a location: INVALID_ARGUMENT (%s)", c.message);
	init(s, &c, "location", "postgres+bin://h", "label",
	    "x\nSTART TIMELINE: 7", NULL);
	expect(c.status == GRPC_INVALID_ARGUMENT &&
	    strcmp(c.message, "uriparse: label: a control character (0x0a) "
	    "is not allowed: a value is one line") == 0,
	    "a newline in a value: INVALID_ARGUMENT (%s)", c.message);
	init(s, &c, "location", "postgres+bin://h", "stall_timeout", "10m",
	    NULL);
	expect(c.status == GRPC_INVALID_ARGUMENT &&
	    strncmp(c.message, "stall_timeout: ", 15) == 0,
	    "stall_timeout not a number of seconds: INVALID_ARGUMENT (%s)",
	    c.message);
	call_unary(s, "/importer.Importer/Open", &c, NULL);
	expect(c.status == GRPC_INVALID_ARGUMENT,
	    "an empty OpenRequest: INVALID_ARGUMENT (%s)", c.message);
	importer_free(s);

	import_case("good", GOOD, NULL, 0, &imp, &log);
	expect(strcmp((char *)log.p, "/;/base;/PG_VERSION=15\n;"
	    "finished;") == 0 && imp.status == GRPC_OK,
	    "a whole stream: each record at the snapshot's root, its "
	    "content, finished, OK (%s)", (char *)log.p);

	import_case("late", GOOD, "{\"program\":\"tarsplit\",\"status\":"
	    "\"manifest-mismatch\",\"exit\":5,\"message\":\"the backup does "
	    "not match its backup_manifest\"}", 5, &imp, &log);
	expect(strstr((char *)log.p, "finished") == NULL &&
	    imp.status == GRPC_DATA_LOSS && strcmp(imp.message, "tarsplit: "
	    "the backup does not match its backup_manifest") == 0,
	    "an end frame, then exit 5: never finished, DATA_LOSS, the "
	    "message of the first failure's status line, not stderr's (%d %s)",
	    imp.status, imp.message);

	import_case("error", BEGIN "{\"type\":\"error\",\"message\":"
	    "\"boom\\u001b[2J\\nx\"}\n", NULL, 3, &imp, &log);
	expect(imp.status == GRPC_ABORTED && strcmp(imp.message, "boom?[2J?x")
	    == 0, "an error frame, exit 3: ABORTED with its message, on one "
	    "safe line (%d %s)", imp.status, imp.message);

	import_case("cut", BEGIN "{\"type\":\"file\",\"path\":\"/data/x\","
	    "\"size\":9," HDR "}\nabc", NULL, 0, &imp, &log);
	expect(imp.finished && imp.status != GRPC_OK &&
	    strstr((char *)log.p, "finished") == NULL,
	    "a payload cut short, exit 0: an error, never finished (%d %s)",
	    imp.status, imp.message);

	/* What Plakar cannot hold fails the Import: no error record. */
	import_case("hex", BEGIN "{\"type\":\"dir\",\"path_hex\":"
	    "\"2f646174612f61e9\"," HDR "}\n"
	    "{\"type\":\"end\",\"records\":1,\"bytes\":0}\n", NULL, 0, &imp,
	    &log);
	expect(imp.status == GRPC_FAILED_PRECONDITION &&
	    strstr(imp.message, "2f646174612f61e9") != NULL &&
	    strcmp((char *)log.p, "") == 0,
	    "a name that is not UTF-8: no record, FAILED_PRECONDITION naming "
	    "it (%s)", imp.message);

	import_case("hardlink", BEGIN
	    "{\"type\":\"file\",\"path\":\"/data/a\",\"size\":0," HDR "}\n"
	    "{\"type\":\"hardlink\",\"path\":\"/data/b\",\"target\":"
	    "\"/data/a\"," HDR "}\n"
	    "{\"type\":\"end\",\"records\":2,\"bytes\":0}\n", NULL, 0, &imp,
	    &log);
	expect(imp.status == GRPC_FAILED_PRECONDITION &&
	    strstr(imp.message, "/data/b: a hard link") != NULL &&
	    strstr((char *)log.p, "finished") == NULL,
	    "a hard link: FAILED_PRECONDITION naming it, never finished (%s)",
	    imp.message);

	/* kloset acks a record it could not read: never a hole. */
	cancel_path = "/x";
	import_case("cancel", BEGIN "{\"type\":\"file\",\"path\":\"/data/x\","
	    "\"size\":3," HDR "}\nabc"
	    "{\"type\":\"end\",\"records\":1,\"bytes\":3}\n", NULL, 0, &imp,
	    &log);
	cancel_path = NULL;
	expect(imp.status == GRPC_ABORTED &&
	    strstr(imp.message, "/x: Plakar cancelled its read") != NULL &&
	    strstr((char *)log.p, "finished") == NULL,
	    "an Open closed before its end, its record acked: ABORTED, never "
	    "finished (%d %s)", imp.status, imp.message);

	import_case("counts", BEGIN "{\"type\":\"end\",\"records\":1,"
	    "\"bytes\":0}\n", NULL, 0, &imp, &log);
	expect(imp.status == GRPC_INTERNAL &&
	    strstr(imp.message, "counts") != NULL,
	    "end frame counts that do not match: INTERNAL (%s)", imp.message);
	buf_free(&log);
	buf_free(&imp.out);

	printf("%d passed, %d failed\n", passed, failed);
	{
		char *cmd;

		if (asprintf(&cmd, "rm -rf %s", dir) == -1 || system(cmd) != 0)
			fprintf(stderr, "importer_test: %s is left\n", dir);
	}
	return failed > 0;
}
