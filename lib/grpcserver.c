/*
 * grpcserver: gRPC over HTTP/2 on two descriptors, on nghttp2.  See
 * grpcserver.h.  Messages are framed as gRPC frames them: a byte of
 * flags (we offer no compression), a 32-bit big-endian length, the bytes.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>

#include "grpcserver.h"
#include "util.h"

#define READ_BLOCK	(64 * 1024)
/* Frames gathered for one write; nghttp2 waits while this much is out. */
#define WIRE_MAX	(4 * 1024 * 1024)
#define MAX_FDS		8

struct grpc_call {
	struct grpc_server *server;
	int32_t		 id;
	const struct grpc_method *method;	/* NULL: unknown path */
	struct buf	 in;		/* request bytes, gRPC-framed */
	struct buf	 out;		/* response bytes for nghttp2 */
	int		 responded;	/* response headers submitted */
	int		 finished;	/* trailers follow once out drains */
	int		 deferred;	/* nghttp2 waits for out */
	int		 refused;	/* request dropped: too large, or no such method */
	int		 trailered;	/* the trailers are submitted */
	int		 delivered;	/* closed cleanly after them */
	int		 status;
	char		*message;
	struct grpc_call *next;
};

struct grpc_server {
	nghttp2_session	*session;
	const struct grpc_method *methods;
	size_t		 nmethods;
	const struct grpc_hooks *hooks;
	void		*svc;
	struct buf	 wire;		/* bytes for the client, written together */
	struct grpc_call *calls;
};

static struct grpc_call *
call_new(struct grpc_server *s, int32_t id)
{
	struct grpc_call *c = xmalloc(sizeof(*c));

	memset(c, 0, sizeof(*c));
	c->server = s;
	c->id = id;
	c->next = s->calls;
	s->calls = c;
	return c;
}

static void
call_free(struct grpc_server *s, struct grpc_call *c)
{
	struct grpc_call **pp;

	for (pp = &s->calls; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	buf_free(&c->in);
	buf_free(&c->out);
	free(c->message);
	free(c);
}

static void
call_wake(struct grpc_call *c)
{
	if (c->deferred) {
		c->deferred = 0;
		nghttp2_session_resume_data(c->server->session, c->id);
	}
}

/* gRPC percent-encodes a message: '%' and bytes outside printable ASCII. */
static char *
percent_encode(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = xmalloc(3 * strlen(s) + 1), *o = out;

	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch > 0x7e || ch == '%') {
			*o++ = '%';
			*o++ = hex[ch >> 4];
			*o++ = hex[ch & 0xf];
		} else
			*o++ = (char)ch;
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

/* nghttp2 takes the response body from out, then the trailers. */
static ssize_t
read_response(nghttp2_session *session, int32_t id, uint8_t *dst,
    size_t length, uint32_t *flags, nghttp2_data_source *source, void *arg)
{
	struct grpc_call *c = source->ptr;
	size_t n = buf_avail(&c->out);
	char status[16], *msg;
	nghttp2_nv trailers[2];

	(void)arg;
	if (n > 0) {
		if (n > length)
			n = length;
		memcpy(dst, c->out.p + c->out.off, n);
		c->out.off += n;
		return (ssize_t)n;
	}
	if (!c->finished) {
		c->deferred = 1;
		return NGHTTP2_ERR_DEFERRED;
	}
	*flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
	snprintf(status, sizeof(status), "%d", c->status);
	msg = percent_encode(c->message != NULL ? c->message : "");
	trailers[0] = nv("grpc-status", status);
	trailers[1] = nv("grpc-message", msg);
	nghttp2_submit_trailer(session, id, trailers,
	    c->message != NULL ? 2 : 1);
	c->trailered = 1;
	free(msg);
	return 0;
}

static void
respond(struct grpc_call *c)
{
	nghttp2_nv headers[2];
	nghttp2_data_provider dp;

	if (c->responded)
		return;
	c->responded = 1;
	headers[0] = nv(":status", "200");
	headers[1] = nv("content-type", "application/grpc");
	dp.source.ptr = c;
	dp.read_callback = read_response;
	nghttp2_submit_response(c->server->session, c->id, headers, 2, &dp);
}

uint8_t *
grpc_send(struct grpc_call *c, size_t n)
{
	uint8_t *p;

	respond(c);
	buf_reserve(&c->out, n + 5);
	p = c->out.p + c->out.len;
	p[0] = 0;	/* not compressed */
	be32_put(p + 1, (uint32_t)n);
	c->out.len += n + 5;
	call_wake(c);
	return p + 5;
}

void
grpc_finish(struct grpc_call *c, int status, const char *message)
{
	size_t n;

	if (c->finished)
		return;
	respond(c);
	c->finished = 1;
	c->status = status;
	if (message != NULL) {
		/* One short line in a trailer. */
		n = strlen(message);
		if (n > 300)
			n = 300;
		c->message = xmalloc(n + 1);
		memcpy(c->message, message, n);
		c->message[n] = '\0';
	}
	call_wake(c);
}

size_t
grpc_pending(const struct grpc_call *c)
{
	return buf_avail(&c->out);
}

int
grpc_delivered(const struct grpc_call *c)
{
	return c->delivered;
}

/*
 * The next whole message at the front of the request: 1 and its bytes,
 * 0 if it is not all there, -1 if it cannot be taken (compressed, or
 * over GRPC_MESSAGE_MAX: finished with a status).
 */
static int
next_message(struct grpc_call *c, const uint8_t **p, size_t *n)
{
	const uint8_t *b = c->in.p + c->in.off;
	size_t avail = buf_avail(&c->in), len;

	if (avail < 5)
		return 0;
	if (b[0] != 0) {
		grpc_finish(c, GRPC_UNIMPLEMENTED, "compressed message: "
		    "this server offers no compression");
		return -1;
	}
	len = (size_t)b[1] << 24 | (size_t)b[2] << 16 | (size_t)b[3] << 8 |
	    b[4];
	if (len > GRPC_MESSAGE_MAX) {
		char msg[128];

		snprintf(msg, sizeof(msg), "message of %zu bytes: the limit "
		    "is %d", len, GRPC_MESSAGE_MAX);
		grpc_finish(c, GRPC_RESOURCE_EXHAUSTED, msg);
		return -1;
	}
	if (avail < 5 + len)
		return 0;
	*p = b + 5;
	*n = len;
	c->in.off += 5 + len;
	return 1;
}

static void
refuse(struct grpc_call *c)
{
	c->refused = 1;
	buf_free(&c->in);
}

static int
on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame,
    void *arg)
{
	struct grpc_call *c;

	if (frame->hd.type != NGHTTP2_HEADERS ||
	    frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	c = call_new(arg, frame->hd.stream_id);
	nghttp2_session_set_stream_user_data(session, c->id, c);
	return 0;
}

static int
on_header(nghttp2_session *session, const nghttp2_frame *frame,
    const uint8_t *name, size_t namelen, const uint8_t *value,
    size_t valuelen, uint8_t flags, void *arg)
{
	struct grpc_server *s = arg;
	struct grpc_call *c;
	size_t i;

	(void)flags;
	c = nghttp2_session_get_stream_user_data(session,
	    frame->hd.stream_id);
	if (c == NULL || namelen != 5 || memcmp(name, ":path", 5) != 0)
		return 0;
	for (i = 0; i < s->nmethods; i++)
		if (valuelen == strlen(s->methods[i].path) &&
		    memcmp(value, s->methods[i].path, valuelen) == 0)
			c->method = &s->methods[i];
	return 0;
}

/* A streaming call's messages, each as soon as it is whole. */
static void
deliver(struct grpc_call *c)
{
	struct grpc_server *s = c->server;
	const uint8_t *p;
	size_t n;
	int r;

	while (!c->refused && (r = next_message(c, &p, &n)) != 0) {
		if (r == -1) {
			refuse(c);
			break;
		}
		c->method->on_message(s->svc, c, p, n);
	}
}

static int
on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id,
    const uint8_t *data, size_t len, void *arg)
{
	struct grpc_call *c = nghttp2_session_get_stream_user_data(session, id);
	const uint8_t *p;
	size_t n;

	(void)flags;
	(void)arg;
	if (c == NULL || c->refused)
		return 0;
	buf_append(&c->in, data, len);
	if (c->method != NULL && c->method->streaming)
		deliver(c);
	else if (next_message(c, &p, &n) == -1)
		refuse(c);	/* a unary request too large: say so at once */
	else if (buf_avail(&c->in) > GRPC_MESSAGE_MAX) {
		/* more than one message where one is due */
		grpc_finish(c, GRPC_RESOURCE_EXHAUSTED, "a unary request "
		    "over the message limit");
		refuse(c);
	} else
		c->in.off = 0;	/* whole or not, it is read at the end */
	return 0;
}

static void
dispatch_unary(struct grpc_server *s, struct grpc_call *c)
{
	const uint8_t *p = (const uint8_t *)"";
	size_t n = 0;

	if (c->refused)
		return;
	if (buf_avail(&c->in) > 0) {
		int r = next_message(c, &p, &n);

		if (r == -1)
			return;
		if (r == 0 || buf_avail(&c->in) > 0) {
			grpc_finish(c, GRPC_INVALID_ARGUMENT,
			    "a unary request holds one whole message");
			return;
		}
	}
	c->method->on_message(s->svc, c, p, n);
}

static int
on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame,
    void *arg)
{
	struct grpc_server *s = arg;
	struct grpc_call *c;
	int end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;

	if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type !=
	    NGHTTP2_DATA)
		return 0;
	c = nghttp2_session_get_stream_user_data(session,
	    frame->hd.stream_id);
	if (c == NULL)
		return 0;
	if (frame->hd.type == NGHTTP2_HEADERS && !c->responded &&
	    !c->refused) {
		if (c->method == NULL) {
			refuse(c);
			grpc_finish(c, GRPC_UNIMPLEMENTED, "unknown method");
			return 0;
		}
		if (c->method->streaming) {
			respond(c);
			if (c->method->on_open != NULL)
				c->method->on_open(s->svc, c);
		}
	}
	if (end && c->method != NULL && !c->method->streaming &&
	    !c->responded)
		dispatch_unary(s, c);
	return 0;
}

static int
on_stream_close(nghttp2_session *session, int32_t id, uint32_t code,
    void *arg)
{
	struct grpc_server *s = arg;
	struct grpc_call *c = nghttp2_session_get_stream_user_data(session, id);

	if (c == NULL)
		return 0;
	/* A reset, even one saying NO_ERROR, before the trailers cut it. */
	c->delivered = code == NGHTTP2_NO_ERROR && c->trailered;
	if (c->method != NULL && c->method->on_close != NULL)
		c->method->on_close(s->svc, c);
	call_free(s, c);
	return 0;
}

/* Frames are gathered and written together: one write, not one a frame. */
static ssize_t
on_send(nghttp2_session *session, const uint8_t *data, size_t len,
    int flags, void *arg)
{
	struct grpc_server *s = arg;

	(void)session;
	(void)flags;
	if (buf_avail(&s->wire) >= WIRE_MAX)
		return NGHTTP2_ERR_WOULDBLOCK;
	buf_append(&s->wire, data, len);
	return (ssize_t)len;
}

/* As large a DATA frame as the client's window and frame size allow. */
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

struct grpc_server *
grpc_server_new(const struct grpc_method *methods, size_t nmethods,
    const struct grpc_hooks *hooks, void *svc)
{
	nghttp2_session_callbacks *cb;
	nghttp2_settings_entry settings[] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100 },
		{ NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 1 << 20 },
	};
	struct grpc_server *s = xmalloc(sizeof(*s));

	memset(s, 0, sizeof(*s));
	s->methods = methods;
	s->nmethods = nmethods;
	s->hooks = hooks;
	s->svc = svc;
	if (nghttp2_session_callbacks_new(&cb) != 0)
		out_of_memory("nghttp2");
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
	if (nghttp2_session_server_new(&s->session, cb, s) != 0)
		out_of_memory("nghttp2");
	nghttp2_session_callbacks_del(cb);
	nghttp2_submit_settings(s->session, NGHTTP2_FLAG_NONE, settings, 2);
	return s;
}

/*
 * Everything nghttp2 has to say, written out: 0, or 1 when the client
 * has hung up (its end of the output is closed), or -1.
 */
static int
send_all(struct grpc_server *s, int out, char *errbuf, size_t errlen)
{
	int r;

	for (;;) {
		if ((r = nghttp2_session_send(s->session)) != 0)
			return seterr(errbuf, errlen, "HTTP/2: %s",
			    nghttp2_strerror(r));
		if (buf_avail(&s->wire) == 0)
			return 0;
		if (write_all(out, s->wire.p + s->wire.off,
		    buf_avail(&s->wire)) == -1) {
			if (errno == EPIPE || errno == ECONNRESET)
				return 1;
			return seterr(errbuf, errlen, "write: %s",
			    strerror(errno));
		}
		s->wire.off = s->wire.len = 0;
	}
}

int
grpc_server_run(struct grpc_server *s, int in, int out,
    volatile sig_atomic_t *quit, char *errbuf, size_t errlen)
{
	uint8_t *block = xmalloc(READ_BLOCK);
	int ret = -1;

	for (;;) {
		struct pollfd p[1 + MAX_FDS];
		int np = 0, timeout = -1;
		ssize_t r, n;

		if (*quit) {
			seterr(errbuf, errlen, "interrupted");
			break;
		}
		if (s->hooks->progress != NULL)
			s->hooks->progress(s->svc);
		if ((r = send_all(s, out, errbuf, errlen)) != 0) {
			if (r == 1)
				ret = 0;	/* the client hung up */
			break;
		}
		if (!nghttp2_session_want_read(s->session) &&
		    !nghttp2_session_want_write(s->session)) {
			ret = 0;
			break;
		}
		p[0].fd = in;
		p[0].events = POLLIN;
		if (s->hooks->fds != NULL)
			np = s->hooks->fds(s->svc, p + 1, MAX_FDS, &timeout);
		if (poll(p, (nfds_t)(1 + np), timeout) == -1) {
			if (errno == EINTR)
				continue;
			seterr(errbuf, errlen, "poll: %s", strerror(errno));
			break;
		}
		if (np > 0 && s->hooks->ready != NULL)
			s->hooks->ready(s->svc, p + 1, np);
		if (p[0].revents == 0)
			continue;
		r = read(in, block, READ_BLOCK);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == 0 || (r == -1 && errno == ECONNRESET)) {
			ret = 0;	/* the client hung up */
			break;
		}
		if (r == -1) {
			seterr(errbuf, errlen, "read: %s", strerror(errno));
			break;
		}
		if ((n = nghttp2_session_mem_recv(s->session, block,
		    (size_t)r)) < 0) {
			seterr(errbuf, errlen, "the input is not HTTP/2 "
			    "from a gRPC client (%s)",
			    nghttp2_strerror((int)n));
			break;
		}
	}
	free(block);
	return ret;
}

void
grpc_server_free(struct grpc_server *s)
{
	if (s == NULL)
		return;
	while (s->calls != NULL) {
		struct grpc_call *c = s->calls;

		if (c->method != NULL && c->method->on_close != NULL)
			c->method->on_close(s->svc, c);
		call_free(s, c);
	}
	nghttp2_session_del(s->session);
	buf_free(&s->wire);
	free(s);
}
