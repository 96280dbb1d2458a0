/*
 * plakar-pg-importer: the Plakar importer plugin.  Plakar is a gRPC
 * client on our stdin and stdout (HTTP/2 cleartext, prior knowledge); we
 * serve /importer.Importer/{Init,Ping,Import,Open,Close}, run
 * plakar-pg backup, and turn its record frames into Plakar records, one
 * at a time, each acknowledged before the next.
 */
#include <sys/types.h>
#include <sys/wait.h>

#include <err.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <nghttp2/nghttp2.h>

#include "connectors.pb-c.h"
#include "frame.h"
#include "importer.pb-c.h"
#include "util.h"

#define GRPC_OK			0
#define GRPC_INVALID_ARGUMENT	3
#define GRPC_FAILED_PRECONDITION 9
#define GRPC_UNIMPLEMENTED	12
#define GRPC_INTERNAL		13
#define GRPC_UNAVAILABLE	14

#define CHUNK_MAX	(1024 * 1024)	/* payload bytes in one OpenResponse */
#define INBUF_SIZE	(FRAME_HEADER_MAX + CHUNK_MAX)
#define STDIN_BLOCK	(64 * 1024)

/* Plakar's location flags: a stream read in order, each record acked. */
#define FLAG_STREAM	4
#define FLAG_NEEDACK	8

/* Go's fs.FileMode type bits. */
#define GO_MODE_DIR	0x80000000u
#define GO_MODE_SYMLINK	0x08000000u

struct buf {
	unsigned char	*p;
	size_t		 off;		/* consumed */
	size_t		 len;		/* filled */
	size_t		 cap;
};

enum method {
	M_UNKNOWN,
	M_INIT,
	M_PING,
	M_IMPORT,
	M_OPEN,
	M_CLOSE
};

struct stream {
	int32_t		 id;
	enum method	 method;
	struct buf	 in;		/* request bytes, gRPC-framed */
	struct buf	 out;		/* response bytes for nghttp2 */
	int		 submitted;	/* response headers are out */
	int		 done;		/* trailers follow once out drains */
	int		 deferred;
	int		 status;
	char		*message;
	struct stream	*next;
};

enum import_state {
	IMP_NONE,
	IMP_HEADER,	/* reading the next frame header */
	IMP_RECORD,	/* a record is out: its Open, then its ack */
	IMP_ENDED,	/* end frame read: the wrapper's exit is next */
	IMP_FAILING,	/* waiting for the wrapper to say why */
	IMP_DONE
};

struct server {
	nghttp2_session	*session;
	struct buf	 wire;		/* bytes for Plakar, written in batches */
	struct stream	*streams;
	char		*config;	/* key=value lines, for plakar-pg -i */
	char		*wrapper;	/* path of plakar-pg */
	char		*tmpdir;	/* TMPDIR of the programs we run */

	pid_t		 child;
	int		 child_status;	/* once reaped */
	int		 child_reaped;
	int		 child_out;	/* frames */
	int		 child_err;
	int		 out_eof;
	struct buf	 inbuf;
	char		 errline[512];	/* the wrapper's last stderr line */
	char		 errpart[512];
	size_t		 errpartlen;

	enum import_state imp;
	int32_t		 import_id;
	int32_t		 open_id;
	int		 began;
	int		 acked;
	int		 need_bytes;
	char		*cur_path;
	uint64_t	 payload_left;
	uint64_t	 records;
	uint64_t	 bytes;
	char		*failure;	/* an error frame's message */
};

static void
usage(void)
{
	fprintf(stderr, "usage: plakar-pg-importer\n");
	exit(1);
}

/* Buffers. */

static void
buf_reserve(struct buf *b, size_t n)
{
	if (b->off > 0 && b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n <= b->cap)
		return;
	if (b->off > 0) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		while (b->len + n > b->cap)
			b->cap = b->cap ? 2 * b->cap : 4096;
		b->p = xrealloc(b->p, b->cap);
	}
}

static size_t
buf_avail(const struct buf *b)
{
	return b->len - b->off;
}

/* Streams. */

static struct stream *
stream_find(struct server *s, int32_t id)
{
	struct stream *st;

	for (st = s->streams; st != NULL; st = st->next)
		if (st->id == id)
			return st;
	return NULL;
}

static void
stream_free(struct server *s, struct stream *st)
{
	struct stream **pp;

	for (pp = &s->streams; *pp != NULL; pp = &(*pp)->next)
		if (*pp == st) {
			*pp = st->next;
			break;
		}
	free(st->in.p);
	free(st->out.p);
	free(st->message);
	free(st);
}

static void
stream_wake(struct server *s, struct stream *st)
{
	if (st->deferred) {
		st->deferred = 0;
		nghttp2_session_resume_data(s->session, st->id);
	}
}

/* One protobuf message, gRPC-framed, onto a stream's output. */
static void
stream_put(struct server *s, struct stream *st, const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	unsigned char *p;

	buf_reserve(&st->out, n + 5);
	p = st->out.p + st->out.len;
	p[0] = 0;
	p[1] = (unsigned char)(n >> 24);
	p[2] = (unsigned char)(n >> 16);
	p[3] = (unsigned char)(n >> 8);
	p[4] = (unsigned char)n;
	protobuf_c_message_pack(m, p + 5);
	st->out.len += n + 5;
	stream_wake(s, st);
}

/* The end of a response: grpc-status, and a short grpc-message. */
static void
stream_finish(struct server *s, struct stream *st, int status,
    const char *message)
{
	if (st->done)
		return;
	st->done = 1;
	st->status = status;
	if (message != NULL) {
		size_t n = strlen(message);

		st->message = xmalloc(n > 300 ? 301 : n + 1);
		memcpy(st->message, message, n > 300 ? 300 : n);
		st->message[n > 300 ? 300 : n] = '\0';
	}
	stream_wake(s, st);
}

/* gRPC percent-encodes a message: '%' and bytes outside printable ASCII. */
static char *
percent_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(3 * strlen(s) + 1), *o = out;

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c > 0x7e || c == '%') {
			*o++ = '%';
			*o++ = hex[c >> 4];
			*o++ = hex[c & 0xf];
		} else
			*o++ = (char)c;
	}
	*o = '\0';
	return out;
}

static nghttp2_nv
nv(const char *name, const char *value)
{
	nghttp2_nv h = {
		(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
		NGHTTP2_NV_FLAG_NONE
	};

	return h;
}

static ssize_t
read_response(nghttp2_session *session, int32_t id, uint8_t *out,
    size_t length, uint32_t *flags, nghttp2_data_source *source, void *arg)
{
	struct stream *st = source->ptr;
	size_t n = buf_avail(&st->out);
	char status[16], *msg;
	nghttp2_nv trailers[2];

	(void)arg;
	if (n > 0) {
		if (n > length)
			n = length;
		memcpy(out, st->out.p + st->out.off, n);
		st->out.off += n;
		return (ssize_t)n;
	}
	if (!st->done) {
		st->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
	snprintf(status, sizeof(status), "%d", st->status);
	msg = percent_encode(st->message != NULL ? st->message : "");
	trailers[0] = nv("grpc-status", status);
	trailers[1] = nv("grpc-message", msg);
	nghttp2_submit_trailer(session, id, trailers,
	    st->message != NULL ? 2 : 1);
	free(msg);
	return 0;
}

static void
stream_respond(struct server *s, struct stream *st)
{
	nghttp2_nv headers[2];
	nghttp2_data_provider dp;

	if (st->submitted)
		return;
	st->submitted = 1;
	headers[0] = nv(":status", "200");
	headers[1] = nv("content-type", "application/grpc");
	dp.source.ptr = st;
	dp.read_callback = read_response;
	nghttp2_submit_response(s->session, st->id, headers, 2, &dp);
}

static int
remove_entry(const char *path, const struct stat *st, int flag,
    struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		(void)remove(path);
	return 0;
}

/*
 * What the programs we ran left in their TMPDIR, a pgpass file among
 * them if one was killed before it could clean up, goes once they end.
 */
static void
empty_tmpdir(const struct server *s)
{
	if (s->tmpdir != NULL)
		(void)nftw(s->tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Helpers run to completion: uriparse -j for Init, a preflight for Ping. */

static void
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl == -1 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		err(1, "fcntl");
}

/* Start argv with the config on its stdin; its stdout and stderr piped. */
static pid_t
spawn(struct server *s, char *const argv[], int *outfd, int *errfd)
{
	int in[2], out[2], errp[2];
	pid_t pid;

	if (pipe(in) == -1 || pipe(out) == -1 || pipe(errp) == -1)
		err(1, "pipe");
	if ((pid = fork()) == -1)
		err(1, "fork");
	if (pid == 0) {
		dup2(in[0], STDIN_FILENO);
		dup2(out[1], STDOUT_FILENO);
		dup2(errp[1], STDERR_FILENO);
		close(in[0]);
		close(in[1]);
		close(out[0]);
		close(out[1]);
		close(errp[0]);
		close(errp[1]);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], argv);
		fprintf(stderr, "plakar-pg-importer: %s: %s\n", argv[0],
		    strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	close(errp[1]);
	/* A few lines: they fit in the pipe. */
	if (s->config != NULL)
		(void)write_all(in[1], s->config, strlen(s->config));
	close(in[1]);
	*outfd = out[0];
	*errfd = errp[0];
	return pid;
}

static void
keep_last_line(char *last, size_t lastsz, const char *p, size_t n)
{
	size_t end = n, start;

	while (end > 0 && (p[end - 1] == '\n' || p[end - 1] == ' '))
		end--;
	if (end == 0)
		return;
	start = end;
	while (start > 0 && p[start - 1] != '\n')
		start--;
	if (end - start >= lastsz)
		end = start + lastsz - 1;
	memcpy(last, p + start, end - start);
	last[end - start] = '\0';
}

/* Run to the end; stdout into *out, the last stderr line into errline. */
static int
run_helper(struct server *s, char *const argv[], char **out, char *errline,
    size_t errsz)
{
	struct buf o = { NULL, 0, 0, 0 }, e = { NULL, 0, 0, 0 };
	int outfd, errfd, status, open_fds = 2;
	pid_t pid = spawn(s, argv, &outfd, &errfd);
	struct pollfd p[2];

	p[0].fd = outfd;
	p[1].fd = errfd;
	p[0].events = p[1].events = POLLIN;
	while (open_fds > 0) {
		int i;

		if (poll(p, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "poll");
		}
		for (i = 0; i < 2; i++) {
			struct buf *b = i == 0 ? &o : &e;
			ssize_t r;

			if (p[i].fd < 0 || p[i].revents == 0)
				continue;
			buf_reserve(b, 4096);
			r = read(p[i].fd, b->p + b->len, 4096);
			if (r > 0) {
				b->len += (size_t)r;
				continue;
			}
			if (r == -1 && errno == EINTR)
				continue;
			close(p[i].fd);
			p[i].fd = -1;
			open_fds--;
		}
	}
	while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
		;
	empty_tmpdir(s);
	errline[0] = '\0';
	if (e.len > 0) {
		(void)write_all(STDERR_FILENO, e.p, e.len);
		keep_last_line(errline, errsz, (char *)e.p, e.len);
	}
	buf_reserve(&o, 1);
	o.p[o.len] = '\0';
	*out = (char *)o.p;
	free(e.p);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Init. */

/* A config value on one line: the PEM forms write newlines as \n. */
static void
append_config(struct buf *b, const char *key, const char *value)
{
	size_t klen = strlen(key), vlen = strlen(value), i;

	buf_reserve(b, klen + 2 * vlen + 3);
	memcpy(b->p + b->len, key, klen);
	b->len += klen;
	b->p[b->len++] = '=';
	for (i = 0; i < vlen; i++) {
		if (value[i] == '\n') {
			b->p[b->len++] = '\\';
			b->p[b->len++] = 'n';
		} else
			b->p[b->len++] = (unsigned char)value[i];
	}
	b->p[b->len++] = '\n';
	b->p[b->len] = '\0';
}

static void
handle_init(struct server *s, struct stream *st, const uint8_t *p, size_t n)
{
	Importer__InitRequest *req = importer__init_request__unpack(NULL, n, p);
	Importer__InitResponse resp = IMPORTER__INIT_RESPONSE__INIT;
	char *argv[] = { s->wrapper, "options", "-i", NULL };
	struct buf cfg = { NULL, 0, 0, 0 };
	char errline[512], *out = NULL;
	json_t *j;
	size_t i;

	if (req == NULL) {
		stream_finish(s, st, GRPC_INVALID_ARGUMENT, "bad InitRequest");
		return;
	}
	for (i = 0; i < req->n_config; i++)
		append_config(&cfg, req->config[i]->key, req->config[i]->value);
	importer__init_request__free_unpacked(req, NULL);
	if (s->config != NULL)
		explicit_bzero(s->config, strlen(s->config));
	free(s->config);
	buf_reserve(&cfg, 1);
	cfg.p[cfg.len] = '\0';
	s->config = (char *)cfg.p;

	if (run_helper(s, argv, &out, errline, sizeof(errline)) != 0) {
		stream_finish(s, st, GRPC_INVALID_ARGUMENT,
		    errline[0] ? errline : "bad options");
		free(out);
		return;
	}
	j = json_loads(out, 0, NULL);
	free(out);
	resp.origin = (char *)json_string_value(json_object_get(j, "host"));
	if (resp.origin == NULL)
		resp.origin = "localhost";
	resp.type = "postgres+bin";
	resp.root = "/";
	resp.flags = FLAG_STREAM | FLAG_NEEDACK;
	stream_put(s, st, &resp.base);
	json_decref(j);
	stream_finish(s, st, GRPC_OK, NULL);
}

static void
handle_ping(struct server *s, struct stream *st)
{
	Importer__PingResponse resp = IMPORTER__PING_RESPONSE__INIT;
	char *argv[] = { s->wrapper, "check", "-i", NULL };
	char errline[512], *out = NULL;

	if (s->config == NULL) {
		stream_finish(s, st, GRPC_FAILED_PRECONDITION, "Ping before Init");
		return;
	}
	if (run_helper(s, argv, &out, errline, sizeof(errline)) != 0)
		stream_finish(s, st, GRPC_UNAVAILABLE,
		    errline[0] ? errline : "the server is not reachable");
	else {
		stream_put(s, st, &resp.base);
		stream_finish(s, st, GRPC_OK, NULL);
	}
	free(out);
}

/* Import: the wrapper's frames, one record at a time. */

/* Has the wrapper exited?  options: 0 to wait for it, or WNOHANG. */
static int
reap_child(struct server *s, int options)
{
	pid_t r;

	if (s->child > 0) {
		while ((r = waitpid(s->child, &s->child_status, options)) ==
		    -1 && errno == EINTR)
			;
		if (r == s->child) {
			s->child_reaped = 1;
			s->child = 0;
		}
	}
	if (s->child_reaped && s->child_out < 0 && s->child_err < 0)
		empty_tmpdir(s);
	return s->child_reaped;
}

static int
child_failed(const struct server *s)
{
	return s->child_reaped && (!WIFEXITED(s->child_status) ||
	    WEXITSTATUS(s->child_status) != 0);
}

static void
stop_child(struct server *s)
{
	int status;

	if (s->child <= 0)
		return;
	kill(s->child, SIGTERM);
	while (waitpid(s->child, &status, 0) == -1 && errno == EINTR)
		;
	s->child = 0;
	empty_tmpdir(s);
}

static void
close_child_fds(struct server *s)
{
	if (s->child_out >= 0)
		close(s->child_out);
	if (s->child_err >= 0)
		close(s->child_err);
	s->child_out = s->child_err = -1;
}

static void
import_fail(struct server *s, const char *fmt, ...)
{
	struct stream *st = stream_find(s, s->import_id);
	struct stream *op = stream_find(s, s->open_id);
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "plakar-pg-importer: %s\n", msg);
	stop_child(s);
	close_child_fds(s);
	if (op != NULL)
		stream_finish(s, op, GRPC_INTERNAL, msg);
	if (st != NULL)
		stream_finish(s, st, GRPC_INTERNAL, msg);
	s->imp = IMP_DONE;
}

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL && slash[1] != '\0' ? slash + 1 : path;
}

static void
send_record(struct server *s, const struct frame *f)
{
	Importer__ImportResponse resp = IMPORTER__IMPORT_RESPONSE__INIT;
	Plakar__Connectors__Record rec = PLAKAR__CONNECTORS__RECORD__INIT;
	Plakar__Connectors__FileInfo fi = PLAKAR__CONNECTORS__FILE_INFO__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	struct stream *st = stream_find(s, s->import_id);
	char *hexpath = NULL, errbuf[256];

	/* Protobuf strings are UTF-8: a name that is not is an error record. */
	if (json_object_get(f->json, "path_hex") != NULL) {
		hexpath = xmalloc(2 * f->pathlen + 1);
		hex_encode(f->path, f->pathlen, hexpath);
		rec.pathname = hexpath;
		snprintf(errbuf, sizeof(errbuf), "name is not valid UTF-8 "
		    "(hex above)");
		rec.error = errbuf;
	} else if (f->type == FRAME_HARDLINK) {
		rec.pathname = f->path;
		snprintf(errbuf, sizeof(errbuf), "hard link: not supported");
		rec.error = errbuf;
	} else {
		rec.pathname = f->path;
		fi.name = (char *)base_name(f->path);
		fi.size = f->type == FRAME_FILE ? (int64_t)f->size : 0;
		fi.mode = f->mode;
		if (f->type == FRAME_DIR)
			fi.mode |= GO_MODE_DIR;
		else if (f->type == FRAME_SYMLINK) {
			fi.mode |= GO_MODE_SYMLINK;
			rec.target = json_object_get(f->json, "target_hex") ?
			    "" : f->target;
		}
		ts.seconds = f->mtime;
		fi.mod_time = &ts;
		fi.uid = (uint64_t)f->uid;
		fi.gid = (uint64_t)f->gid;
		fi.nlink = 1;
		fi.username = (char *)f->uname;
		fi.groupname = (char *)f->gname;
		rec.fileinfo = &fi;
		rec.hasreader = f->type == FRAME_FILE;
	}
	resp.record = &rec;
	if (st != NULL)
		stream_put(s, st, &resp.base);
	free(hexpath);
}

static void
import_finished(struct server *s)
{
	Importer__ImportResponse resp = IMPORTER__IMPORT_RESPONSE__INIT;
	struct stream *st = stream_find(s, s->import_id);

	resp.finished = 1;
	if (st != NULL) {
		stream_put(s, st, &resp.base);
		stream_finish(s, st, GRPC_OK, NULL);
	}
	s->imp = IMP_DONE;
}

/* The header line at the front of inbuf, if it is all there. */
static int
next_header(struct server *s, struct frame *f)
{
	unsigned char *start = s->inbuf.p + s->inbuf.off, *nl;
	size_t n = buf_avail(&s->inbuf);
	char errbuf[256];

	nl = n > 0 ? memchr(start, '\n', n) : NULL;
	if (nl == NULL) {
		if (n >= FRAME_HEADER_MAX) {
			import_fail(s, "frame header longer than %d bytes",
			    FRAME_HEADER_MAX);
			return -1;
		}
		s->need_bytes = 1;
		return 0;
	}
	if (frame_parse((char *)start, (size_t)(nl - start), f, errbuf,
	    sizeof(errbuf)) != 1) {
		frame_free(f);
		import_fail(s, "bad frame from plakar-pg: %s", errbuf);
		return -1;
	}
	s->inbuf.off += (size_t)(nl - start) + 1;
	return 1;
}

/* The payload of the current record: to its Open stream, or dropped. */
static void
move_payload(struct server *s)
{
	struct stream *op = stream_find(s, s->open_id);
	size_t n = buf_avail(&s->inbuf);

	if (s->payload_left == 0)
		return;
	if (op != NULL && buf_avail(&op->out) >= CHUNK_MAX)
		return;		/* Plakar has not read the last chunk yet */
	if (n > s->payload_left)
		n = (size_t)s->payload_left;
	if (n > CHUNK_MAX)
		n = CHUNK_MAX;
	if (n == 0) {
		s->need_bytes = 1;
		return;
	}
	if (op != NULL) {
		Importer__OpenResponse resp = IMPORTER__OPEN_RESPONSE__INIT;

		resp.chunk.len = n;
		resp.chunk.data = s->inbuf.p + s->inbuf.off;
		stream_put(s, op, &resp.base);
	}
	s->inbuf.off += n;
	s->payload_left -= n;
	if (s->payload_left > 0)
		s->need_bytes = 1;
}

static void
import_progress(struct server *s)
{
	struct frame f;
	struct stream *op;
	int r;

	s->need_bytes = 0;
	for (;;) {
		switch (s->imp) {
		case IMP_HEADER:
			if ((r = next_header(s, &f)) <= 0) {
				if (r == 0 && s->out_eof)
					s->imp = IMP_FAILING;
				if (r == 0 && !s->out_eof)
					return;
				break;
			}
			if (!s->began) {
				if (f.type != FRAME_BEGIN ||
				    f.version != FRAME_VERSION) {
					frame_free(&f);
					import_fail(s, "plakar-pg did not begin "
					    "with a version 1 begin frame");
					return;
				}
				s->began = 1;
				frame_free(&f);
				break;
			}
			if (f.type == FRAME_ERROR) {
				s->failure = xstrdup(f.message);
				frame_free(&f);
				s->imp = IMP_FAILING;
				break;
			}
			if (f.type == FRAME_END) {
				int ok = f.records == s->records &&
				    f.bytes == s->bytes;

				frame_free(&f);
				if (!ok) {
					import_fail(s, "end frame counts do not "
					    "match the records sent");
					return;
				}
				s->imp = IMP_ENDED;
				break;
			}
			if (f.type == FRAME_BEGIN) {
				frame_free(&f);
				import_fail(s, "a second begin frame");
				return;
			}
			s->records++;
			s->bytes += f.type == FRAME_FILE ? f.size : 0;
			free(s->cur_path);
			s->cur_path = xstrdup(f.path);
			s->payload_left = f.type == FRAME_FILE ? f.size : 0;
			s->acked = 0;
			send_record(s, &f);
			frame_free(&f);
			s->imp = IMP_RECORD;
			break;
		case IMP_RECORD:
			op = stream_find(s, s->open_id);
			if (op != NULL || s->acked)
				move_payload(s);
			if (s->payload_left > 0) {
				if (s->need_bytes && s->out_eof)
					s->imp = IMP_FAILING;
				else
					return;
				break;
			}
			if (op != NULL) {
				stream_finish(s, op, GRPC_OK, NULL);
				s->open_id = 0;
			}
			if (!s->acked)
				return;
			s->imp = IMP_HEADER;
			break;
		case IMP_ENDED:
			if (buf_avail(&s->inbuf) > 0) {
				import_fail(s, "data after the end frame");
				return;
			}
			if (!s->out_eof || s->child_err >= 0) {
				s->need_bytes = 1;
				return;
			}
			/* finish only on a zero exit of the wrapper */
			if (reap_child(s, 0) && child_failed(s)) {
				import_fail(s, "%s", s->errline[0] ?
				    s->errline : "plakar-pg failed");
				return;
			}
			close_child_fds(s);
			import_finished(s);
			return;
		case IMP_FAILING:
			/* The wrapper's own last line says it best. */
			s->inbuf.off = s->inbuf.len = 0;
			if (!s->out_eof || s->child_err >= 0) {
				s->need_bytes = 1;
				return;
			}
			import_fail(s, "%s", s->errline[0] ? s->errline :
			    s->failure != NULL ? s->failure :
			    "plakar-pg ended without an end frame");
			return;
		default:
			return;
		}
	}
}

static void
handle_import_start(struct server *s, struct stream *st)
{
	char *argv[] = { s->wrapper, "backup", "-i", "progress=off", NULL };

	stream_respond(s, st);
	if (s->config == NULL) {
		stream_finish(s, st, GRPC_FAILED_PRECONDITION,
		    "Import before Init");
		return;
	}
	if (s->imp != IMP_NONE) {
		stream_finish(s, st, GRPC_FAILED_PRECONDITION,
		    "one Import per plugin run");
		return;
	}
	s->import_id = st->id;
	s->child = spawn(s, argv, &s->child_out, &s->child_err);
	set_nonblock(s->child_out);
	set_nonblock(s->child_err);
	s->inbuf.p = xmalloc(INBUF_SIZE);
	s->inbuf.cap = INBUF_SIZE;
	s->imp = IMP_HEADER;
}

/* Plakar's acknowledgement of the record out. */
static void
handle_import_message(struct server *s, const uint8_t *p, size_t n)
{
	Importer__ImportRequest *req = importer__import_request__unpack(NULL,
	    n, p);

	if (req == NULL) {
		import_fail(s, "bad ImportRequest");
		return;
	}
	if (req->result != NULL && req->result->error != NULL &&
	    req->result->error[0] != '\0')
		fprintf(stderr, "plakar-pg-importer: %s: %s\n",
		    req->result->header != NULL ?
		    req->result->header->pathname : "?", req->result->error);
	importer__import_request__free_unpacked(req, NULL);
	if (s->imp == IMP_RECORD)
		s->acked = 1;
}

static void
handle_open(struct server *s, struct stream *st, const uint8_t *p, size_t n)
{
	Importer__OpenRequest *req = importer__open_request__unpack(NULL, n, p);

	if (req == NULL || req->record == NULL) {
		stream_finish(s, st, GRPC_INVALID_ARGUMENT, "bad OpenRequest");
	} else if (s->imp != IMP_RECORD || s->cur_path == NULL ||
	    strcmp(req->record->pathname, s->cur_path) != 0 ||
	    s->open_id != 0 || s->acked) {
		stream_finish(s, st, GRPC_FAILED_PRECONDITION,
		    "Open: only the record just sent can be read, once");
	} else
		s->open_id = st->id;
	if (req != NULL)
		importer__open_request__free_unpacked(req, NULL);
}

static void
handle_close(struct server *s, struct stream *st)
{
	Importer__CloseResponse resp = IMPORTER__CLOSE_RESPONSE__INIT;

	if (s->imp != IMP_NONE && s->imp != IMP_DONE)
		import_fail(s, "Close during Import");
	stream_put(s, st, &resp.base);
	stream_finish(s, st, GRPC_OK, NULL);
}

/* Requests. */

/* Each whole gRPC message at the front of st->in, to handle(). */
static int
next_message(struct stream *st, const uint8_t **p, size_t *n)
{
	const unsigned char *b = st->in.p + st->in.off;
	size_t avail = buf_avail(&st->in), len;

	if (avail < 5)
		return 0;
	if (b[0] != 0)
		return -1;	/* compressed: we offer no compression */
	len = (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 |
	    b[4];
	if (avail < 5 + len)
		return 0;
	*p = b + 5;
	*n = len;
	st->in.off += 5 + len;
	return 1;
}

static void
dispatch_unary(struct server *s, struct stream *st)
{
	const uint8_t *p = (const uint8_t *)"";
	size_t n = 0;

	stream_respond(s, st);
	if (next_message(st, &p, &n) == -1) {
		stream_finish(s, st, GRPC_UNIMPLEMENTED, "compressed message");
		return;
	}
	switch (st->method) {
	case M_INIT:
		handle_init(s, st, p, n);
		break;
	case M_PING:
		handle_ping(s, st);
		break;
	case M_OPEN:
		handle_open(s, st, p, n);
		break;
	case M_CLOSE:
		handle_close(s, st);
		break;
	default:
		stream_finish(s, st, GRPC_UNIMPLEMENTED, "unknown method");
	}
}

static int
on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
    void *arg)
{
	struct server *s = arg;
	struct stream *st;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	st = xmalloc(sizeof(*st));
	memset(st, 0, sizeof(*st));
	st->id = frame->hd.stream_id;
	st->next = s->streams;
	s->streams = st;
	nghttp2_session_set_stream_user_data(session, st->id, st);
	return 0;
}

static int
on_header(nghttp2_session *session, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value,
    size_t valuelen, uint8_t flags, void *arg)
{
	static const struct {
		const char *path;
		enum method method;
	} methods[] = {
		{ "/importer.Importer/Init", M_INIT },
		{ "/importer.Importer/Ping", M_PING },
		{ "/importer.Importer/Import", M_IMPORT },
		{ "/importer.Importer/Open", M_OPEN },
		{ "/importer.Importer/Close", M_CLOSE },
	};
	struct stream *st;
	size_t i;

	(void)flags;
	(void)arg;
	st = nghttp2_session_get_stream_user_data(session,
	    frame->hd.stream_id);
	if (st == NULL || namelen != 5 || memcmp(name, ":path", 5) != 0)
		return 0;
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (valuelen == strlen(methods[i].path) &&
		    memcmp(value, methods[i].path, valuelen) == 0)
			st->method = methods[i].method;
	return 0;
}

static int
on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id,
    const uint8_t *data, size_t len, void *arg)
{
	struct server *s = arg;
	struct stream *st = nghttp2_session_get_stream_user_data(session, id);
	const uint8_t *p;
	size_t n;
	int r;

	(void)flags;
	if (st == NULL)
		return 0;
	buf_reserve(&st->in, len);
	memcpy(st->in.p + st->in.len, data, len);
	st->in.len += len;
	if (st->method != M_IMPORT || s->import_id != id)
		return 0;
	while ((r = next_message(st, &p, &n)) == 1)
		handle_import_message(s, p, n);
	if (r == -1)
		import_fail(s, "compressed ImportRequest");
	return 0;
}

static int
on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
    void *arg)
{
	struct server *s = arg;
	struct stream *st;

	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type !=
	    NGHTTP2_DATA)
		return 0;
	st = nghttp2_session_get_stream_user_data(session,
	    frame->hd.stream_id);
	if (st == NULL)
		return 0;
	/* Import starts with its headers; the others once whole. */
	if (frame->hd.type == NGHTTP2_HEADERS && st->method == M_IMPORT &&
	    !st->submitted)
		handle_import_start(s, st);
	if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
	    st->method != M_IMPORT && !st->submitted)
		dispatch_unary(s, st);
	return 0;
}

static int
on_stream_close(nghttp2_session *session, int32_t id, uint32_t code,
    void *arg)
{
	struct server *s = arg;
	struct stream *st = nghttp2_session_get_stream_user_data(session, id);

	(void)code;
	if (st == NULL)
		return 0;
	if (id == s->import_id && s->imp != IMP_DONE) {
		/* Plakar gave up on the Import: so do we. */
		stop_child(s);
		close_child_fds(s);
		s->imp = IMP_DONE;
	}
	if (id == s->import_id)
		s->import_id = 0;
	if (id == s->open_id)
		s->open_id = 0;
	stream_free(s, st);
	return 0;
}

/* Frames are gathered and written together: one write, not one a frame. */
static ssize_t
on_send(nghttp2_session *session, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct server *s = arg;

	(void)session;
	(void)flags;
	if (buf_avail(&s->wire) >= 4 * CHUNK_MAX)
		return NGHTTP2_ERR_WOULDBLOCK;
	buf_reserve(&s->wire, len);
	memcpy(s->wire.p + s->wire.len, data, len);
	s->wire.len += len;
	return (ssize_t)len;
}

/* As large a DATA frame as Plakar's window and frame size allow. */
static ssize_t
on_read_length(nghttp2_session *session, uint8_t type, int32_t id,
    int32_t session_window, int32_t stream_window, uint32_t max_frame,
    void *arg)
{
	ssize_t n = session_window < stream_window ? session_window :
	    stream_window;

	(void)session;
	(void)type;
	(void)id;
	(void)arg;
	if (n > (ssize_t)max_frame)
		n = (ssize_t)max_frame;
	return n > 0 ? n : 1;
}

static void
flush_wire(struct server *s)
{
	if (buf_avail(&s->wire) == 0)
		return;
	if (write_all(STDOUT_FILENO, s->wire.p + s->wire.off,
	    buf_avail(&s->wire)) == -1)
		errx(1, "stdout: the connection to Plakar is gone");
	s->wire.off = s->wire.len = 0;
}

/* 1: some read; 0: nothing for now; -1: closed. */
static int
read_child_stderr(struct server *s)
{
	char buf[4096];
	ssize_t r = read(s->child_err, buf, sizeof(buf));
	size_t i;

	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0) {
		close(s->child_err);
		s->child_err = -1;
		return -1;
	}
	(void)write_all(STDERR_FILENO, buf, (size_t)r);
	for (i = 0; i < (size_t)r; i++) {
		if (buf[i] == '\n') {
			if (s->errpartlen > 0) {
				memcpy(s->errline, s->errpart, s->errpartlen);
				s->errline[s->errpartlen] = '\0';
			}
			s->errpartlen = 0;
		} else if (s->errpartlen < sizeof(s->errpart) - 1)
			s->errpart[s->errpartlen++] = buf[i];
	}
	return 1;
}

static void
read_child_frames(struct server *s)
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
	r = read(s->child_out, s->inbuf.p + s->inbuf.len,
	    s->inbuf.cap - s->inbuf.len);
	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0) {
		close(s->child_out);
		s->child_out = -1;
		s->out_eof = 1;
		return;
	}
	s->inbuf.len += (size_t)r;
}

/* A private TMPDIR for the programs we run, ours to empty. */
static char *
make_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *dir;
	size_t n;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	n = strlen(base) + sizeof("/plakar-pg-importer.XXXXXX");
	dir = xmalloc(n);
	snprintf(dir, n, "%s/plakar-pg-importer.XXXXXX", base);
	if (mkdtemp(dir) == NULL)
		err(1, "mkdtemp %s", dir);
	if (setenv("TMPDIR", dir, 1) == -1)
		err(1, "setenv");
	return dir;
}

/* The plakar-pg beside us, as in the package, or the one in PATH. */
static char *
find_wrapper(void)
{
	char path[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 16);
	char *slash;

	if (n > 0) {
		path[n] = '\0';
		if ((slash = strrchr(path, '/')) != NULL) {
			strcpy(slash + 1, "plakar-pg");
			if (access(path, X_OK) == 0)
				return xstrdup(path);
		}
	}
	return xstrdup("plakar-pg");
}

int
main(int argc, char *argv[])
{
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry settings[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 },
		{ NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 1 << 20 },
	};
	struct server s;
	unsigned char *block;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("plakar-pg-importer (plakar-pg) %s\n", VERSION);
		return 0;
	}
	if (argc != 1)
		usage();
	/* Plakar going away must not kill us before we stop the backup. */
	signal(SIGPIPE, SIG_IGN);
	memset(&s, 0, sizeof(s));
	s.child_out = s.child_err = -1;
	s.wrapper = find_wrapper();
	s.tmpdir = make_tmpdir();
	block = xmalloc(STDIN_BLOCK);

	nghttp2_session_callbacks_new(&cb);
	nghttp2_session_callbacks_set_send_callback(cb, on_send);
	nghttp2_session_callbacks_set_data_source_read_length_callback(cb,
	    on_read_length);
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb,
	    on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb,
	    on_data_chunk);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb,
	    on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb,
	    on_stream_close);
	if (nghttp2_session_server_new(&s.session, cb, &s) != 0)
		errx(1, "nghttp2: cannot start a session");
	nghttp2_session_callbacks_del(cb);
	nghttp2_submit_settings(s.session, NGHTTP2_FLAG_NONE, settings, 2);

	for (;;) {
		struct pollfd p[3];
		int np = 0, ifr = -1, ife = -1;

		/*
		 * A wrapper that failed, or was killed, mid-stream: what it
		 * left in the pipe no longer matters.
		 */
		if ((s.imp == IMP_HEADER || s.imp == IMP_RECORD ||
		    s.imp == IMP_FAILING) && reap_child(&s, WNOHANG) &&
		    child_failed(&s)) {
			while (s.child_err >= 0 && read_child_stderr(&s) == 1)
				;
			import_fail(&s, "%s", s.errline[0] ? s.errline :
			    s.failure != NULL ? s.failure :
			    "plakar-pg died in the middle of the backup");
		}
		if (s.imp != IMP_NONE && s.imp != IMP_DONE)
			import_progress(&s);
		/* Until nghttp2 has nothing more: it stops at 4 MiB gathered. */
		for (;;) {
			if (nghttp2_session_send(s.session) != 0)
				errx(1, "nghttp2: cannot send");
			if (buf_avail(&s.wire) == 0)
				break;
			flush_wire(&s);
		}
		if (!nghttp2_session_want_read(s.session) &&
		    !nghttp2_session_want_write(s.session))
			break;
		p[np].fd = STDIN_FILENO;
		p[np++].events = POLLIN;
		if (s.child_out >= 0 && s.need_bytes) {
			ifr = np;
			p[np].fd = s.child_out;
			p[np++].events = POLLIN;
		}
		if (s.child_err >= 0) {
			ife = np;
			p[np].fd = s.child_err;
			p[np++].events = POLLIN;
		}
		/* While a backup runs, look at the wrapper now and then. */
		if (poll(p, (nfds_t)np, s.child > 0 ? 200 : -1) == -1) {
			if (errno == EINTR)
				continue;
			err(1, "poll");
		}
		if (ife >= 0 && p[ife].revents != 0)
			read_child_stderr(&s);
		if (ifr >= 0 && p[ifr].revents != 0)
			read_child_frames(&s);
		if (p[0].revents != 0) {
			ssize_t r = read(STDIN_FILENO, block, STDIN_BLOCK);

			if (r == -1 && errno == EINTR)
				continue;
			if (r <= 0)
				break;	/* Plakar hung up */
			if (nghttp2_session_mem_recv(s.session, block,
			    (size_t)r) < 0)
				errx(1, "stdin: not HTTP/2 from Plakar");
		}
	}
	/* Whatever was under way stops with us, and what it left goes. */
	stop_child(&s);
	close_child_fds(&s);
	empty_tmpdir(&s);
	(void)rmdir(s.tmpdir);
	free(s.tmpdir);
	nghttp2_session_del(s.session);
	while (s.streams != NULL)
		stream_free(&s, s.streams);
	if (s.config != NULL)
		explicit_bzero(s.config, strlen(s.config));
	free(s.config);
	free(s.inbuf.p);
	free(s.cur_path);
	free(s.failure);
	free(s.wrapper);
	free(s.wire.p);
	free(block);
	return s.imp == IMP_NONE || s.imp == IMP_DONE ? 0 : 1;
}
