/*
 * grpc_echo: a trivial service on grpcserver, for the tests of the
 * transport alone (t/grpcclient echo), with no Plakar, frames or children.
 *
 *	/echo.Echo/Unary	the request back
 *	/echo.Echo/Stream	each message back; an empty one finishes
 *	/echo.Echo/Flood	N bytes (the request, in decimal) back in
 *				64 KiB messages, byte i being i % 251, sent
 *				only as fast as the client reads
 *	/echo.Echo/Closed	how many calls have ended so far, in decimal
 */
#include <err.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grpcserver.h"
#include "util.h"

#define FLOOD_MESSAGE	(64 * 1024)
#define FLOOD_QUEUE	(1024 * 1024)

static struct {
	struct grpc_call *flood;
	unsigned long long flood_left;
	unsigned long long flood_sent;
	unsigned long	 closed;
} echo;

static volatile sig_atomic_t quit;

static void
send_bytes(struct grpc_call *c, const uint8_t *p, size_t n)
{
	memcpy(grpc_send(c, n), p, n);
}

static void
unary(void *arg, struct grpc_call *c, const uint8_t *p, size_t n)
{
	(void)arg;
	send_bytes(c, p, n);
	grpc_finish(c, GRPC_OK, NULL);
}

static void
stream(void *arg, struct grpc_call *c, const uint8_t *p, size_t n)
{
	(void)arg;
	if (n == 0)
		grpc_finish(c, GRPC_OK, NULL);
	else
		send_bytes(c, p, n);
}

static void
flood(void *arg, struct grpc_call *c, const uint8_t *p, size_t n)
{
	char num[32];

	(void)arg;
	if (n == 0 || n >= sizeof(num) || echo.flood != NULL) {
		grpc_finish(c, GRPC_INVALID_ARGUMENT, "one flood at a time");
		return;
	}
	memcpy(num, p, n);
	num[n] = '\0';
	echo.flood = c;
	echo.flood_left = strtoull(num, NULL, 10);
	echo.flood_sent = 0;
}

static void
closed(void *arg, struct grpc_call *c, const uint8_t *p, size_t n)
{
	char num[32];

	(void)arg;
	(void)p;
	(void)n;
	snprintf(num, sizeof(num), "%lu", echo.closed);
	send_bytes(c, (const uint8_t *)num, strlen(num));
	grpc_finish(c, GRPC_OK, NULL);
}

static void
on_close(void *arg, struct grpc_call *c)
{
	(void)arg;
	if (c == echo.flood)
		echo.flood = NULL;
	echo.closed++;
}

/* The flood goes on while the client takes it. */
static void
progress(void *arg)
{
	(void)arg;
	while (echo.flood != NULL && grpc_pending(echo.flood) < FLOOD_QUEUE) {
		size_t n = echo.flood_left < FLOOD_MESSAGE ?
		    (size_t)echo.flood_left : FLOOD_MESSAGE, i;
		uint8_t *m;

		if (n == 0) {
			grpc_finish(echo.flood, GRPC_OK, NULL);
			echo.flood = NULL;
			break;
		}
		m = grpc_send(echo.flood, n);
		for (i = 0; i < n; i++)
			m[i] = (uint8_t)((echo.flood_sent + i) % 251);
		echo.flood_sent += n;
		echo.flood_left -= n;
	}
}

static const struct grpc_method methods[] = {
	{ "/echo.Echo/Unary", 0, NULL, unary, on_close },
	{ "/echo.Echo/Stream", 1, NULL, stream, on_close },
	{ "/echo.Echo/Flood", 0, NULL, flood, on_close },
	{ "/echo.Echo/Closed", 0, NULL, closed, on_close },
};

static const struct grpc_hooks hooks = { progress, NULL, NULL };

int
main(void)
{
	struct grpc_server *s;
	char errbuf[256];
	int r;

	signal(SIGPIPE, SIG_IGN);
	s = grpc_server_new(methods, sizeof(methods) / sizeof(methods[0]),
	    &hooks, NULL);
	r = grpc_server_run(s, STDIN_FILENO, STDOUT_FILENO, &quit, errbuf,
	    sizeof(errbuf));
	grpc_server_free(s);
	if (r == -1)
		errx(1, "%s", errbuf);
	return 0;
}
