/*
 * libFuzzer on the gRPC server's input (lib/grpcserver.c): the bytes a
 * client sends on the plugin's stdin, HTTP/2 frames and gRPC messages,
 * served by a trivial service that echoes.  Fails on runaway output.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "grpcserver.h"
#include "util.h"

int	LLVMFuzzerTestOneInput(const unsigned char *, size_t);

static void
echo(void *arg, struct grpc_call *c, const uint8_t *p, size_t n)
{
	(void)arg;
	memcpy(grpc_send(c, n), p, n);
	grpc_finish(c, GRPC_OK, NULL);
}

static void
stream(void *arg, struct grpc_call *c, const uint8_t *p, size_t n)
{
	(void)arg;
	memcpy(grpc_send(c, n), p, n);
}

static const struct grpc_method methods[] = {
	{ "/echo.Echo/Unary", 0, NULL, echo, NULL },
	{ "/echo.Echo/Stream", 1, NULL, stream, NULL },
};
static const struct grpc_hooks hooks = { NULL, NULL, NULL };

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	static volatile sig_atomic_t quit;
	struct grpc_server *s;
	struct stat st;
	char errbuf[256];
	int in[2], out;

	signal(SIGPIPE, SIG_IGN);
	/* The client's preface, then the fuzzer's bytes, then its hang-up. */
	if (pipe(in) == -1 || (out = memfd_create("out", 0)) == -1)
		abort();
	(void)fcntl(in[1], F_SETPIPE_SZ, 1 << 20);
	if (write_all(in[1], preface, sizeof(preface) - 1) == -1 ||
	    write_all(in[1], data, size) == -1)
		abort();
	close(in[1]);
	s = grpc_server_new(methods, 2, &hooks, NULL);
	(void)grpc_server_run(s, in[0], out, &quit, errbuf, sizeof(errbuf));
	grpc_server_free(s);
	if (fstat(out, &st) == -1)
		abort();
	/* echoes, headers and trailers: a few times the input at most */
	if ((size_t)st.st_size > 8 * size + 4096)
		abort();
	close(in[0]);
	close(out);
	return 0;
}
