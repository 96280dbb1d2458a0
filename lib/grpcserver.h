/*
 * A gRPC server on two file descriptors: HTTP/2 cleartext with prior
 * knowledge (nghttp2), as a gRPC client speaks it over a plugin's stdin
 * and stdout.  It knows methods by path and messages as bytes; what they
 * mean is the service's.
 */
#ifndef PLAKAR_PG_GRPCSERVER_H
#define PLAKAR_PG_GRPCSERVER_H

#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* The status codes we use (grpc/doc/statuscodes.md). */
#define GRPC_OK			0
#define GRPC_CANCELLED		1
#define GRPC_INVALID_ARGUMENT	3
#define GRPC_DEADLINE_EXCEEDED	4
#define GRPC_RESOURCE_EXHAUSTED	8
#define GRPC_FAILED_PRECONDITION 9
#define GRPC_ABORTED		10
#define GRPC_UNIMPLEMENTED	12
#define GRPC_INTERNAL		13
#define GRPC_UNAVAILABLE	14
#define GRPC_DATA_LOSS		15
#define GRPC_UNAUTHENTICATED	16

/* The largest message either way: gRPC's default receive limit. */
#define GRPC_MESSAGE_MAX	(4 * 1024 * 1024)

struct grpc_server;
struct grpc_call;

/*
 * A method.  A unary one (streaming 0) gets on_message once, with the
 * whole request, when the client has sent it.  A streaming one gets
 * on_open when its headers arrive, then on_message for each message as
 * it comes.  Both get on_close when the call is gone, answered or not;
 * the call may not be used after it.
 */
struct grpc_method {
	const char	*path;
	int		 streaming;
	void		(*on_open)(void *, struct grpc_call *);
	void		(*on_message)(void *, struct grpc_call *,
			    const uint8_t *, size_t);
	void		(*on_close)(void *, struct grpc_call *);
};

/*
 * The service's part of the loop: before each poll, progress() moves
 * its work on and fds() adds descriptors of its own (returning how many,
 * and lowering *timeout_ms if it wants to look again soon); after it,
 * ready() sees them.
 */
struct grpc_hooks {
	void		(*progress)(void *);
	int		(*fds)(void *, struct pollfd *, int, int *);
	void		(*ready)(void *, const struct pollfd *, int);
};

struct grpc_server *grpc_server_new(const struct grpc_method *, size_t,
	    const struct grpc_hooks *, void *);

/*
 * Serve on in and out until the client hangs up (0), or until the input
 * is not HTTP/2, the output is gone or *quit is set (-1, errbuf says
 * why).
 */
int	 grpc_server_run(struct grpc_server *, int, int,
	    volatile sig_atomic_t *, char *, size_t);

/* Ends every call still open (on_close), then frees the server. */
void	 grpc_server_free(struct grpc_server *);

/* Room for a message of n bytes on the call's response; fill it. */
uint8_t	*grpc_send(struct grpc_call *, size_t);
/* The response's end: its status and, unless NULL, a message. */
void	 grpc_finish(struct grpc_call *, int, const char *);
/* Response bytes not yet taken by HTTP/2: the client's backpressure. */
size_t	 grpc_pending(const struct grpc_call *);
/*
 * In on_close: 1 if the whole response, trailers included, went out and
 * the stream closed without a reset; 0 if the client cancelled or reset
 * it, or the connection ended, first.
 */
int	 grpc_delivered(const struct grpc_call *);

#endif
