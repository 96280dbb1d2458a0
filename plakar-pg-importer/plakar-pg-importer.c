/*
 * plakar-pg-importer: the Plakar importer plugin.  Plakar is a gRPC
 * client on our stdin and stdout; grpcserver speaks HTTP/2 with it, the
 * importer service answers it, and child runs plakar-pg for it.
 */
#include <err.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "child.h"
#include "grpcserver.h"
#include "importer.h"
#include "die.h"
#include "util.h"

static volatile sig_atomic_t quit;

/* What every exit leaves behind, a fatal error's included: nothing. */
static struct {
	struct grpc_server *server;
	struct importer	*importer;
} run;

static void
help(void)
{
	printf("usage: plakar-pg-importer\n"
	    "Plakar's importer gRPC service on stdin and stdout, for "
	    "postgres+bin:// sources;\nrun by Plakar, see "
	    "plakar-pg-importer(1).\n");
}

static void
cleanup(void)
{
	grpc_server_free(run.server);
	run.server = NULL;
	importer_free(run.importer);
	run.importer = NULL;
}

static void
on_signal(int sig)
{
	(void)sig;
	quit = 1;
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
	struct sigaction sa;
	char errbuf[512], *wrapper;
	int r, busy;

	status_start("plakar-pg-importer", NULL);
	if (status_answer(argc, argv, help))
		return 0;
	if (argc != 1)
		die_usage("usage: plakar-pg-importer\n");
	/* Plakar going away must not kill us before we stop the backup. */
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (atexit(cleanup) != 0)
		errx(1, "atexit");

	wrapper = find_wrapper();
	run.importer = importer_new(wrapper);
	free(wrapper);
	run.server = grpc_server_new(importer_methods, importer_nmethods,
	    &importer_hooks, run.importer);

	r = grpc_server_run(run.server, STDIN_FILENO, STDOUT_FILENO, &quit,
	    errbuf, sizeof(errbuf));
	busy = importer_busy(run.importer);
	cleanup();
	if (r == -1)
		errx(1, "%s", errbuf);
	if (busy)
		errx(1, "Plakar hung up in the middle of the backup: "
		    "the backup was stopped");
	return 0;
}
