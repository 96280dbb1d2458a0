/*
 * runpipe: run producer | consumer, each told to write its outcome as
 * one JSON line (-F), and say the pipeline's outcome by one rule: the
 * first program to fail decides, and a program killed by SIGPIPE is the
 * victim of the one after it.  Waits for both and is interrupted at once:
 * what a shell cannot do with a pipeline.
 */
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "die.h"
#include "outcome.h"
#include "stop.h"
#include "util.h"

/* A status line is short; a program that says more is cut. */
#define LINE_MAX_BYTES	2048

struct program {
	char		**argv;		/* with "-F fd" put in after argv[0] */
	const char	 *name;
	pid_t		  pid;
	int		  status;	/* from waitpid */
	char		  line[LINE_MAX_BYTES];	/* its status line, or "" */
};


static void
usage(void)
{
	die_usage("usage: runpipe [-F fd] producer [arg ...] -- consumer "
	    "[arg ...]\n");
}

static void
help(void)
{
	printf("usage: runpipe [-F fd] producer [arg ...] -- consumer "
	    "[arg ...]\n"
	    "Run producer | consumer, each given -F for its status line, and\n"
	    "end with the outcome of the first to fail (a SIGPIPE death is a\n"
	    "victim); INT, TERM or HUP stop both.  See runpipe(1).\n");
}

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash != NULL ? slash + 1 : path;
}

/* argv with "-F", fdname put in after the program's name. */
static char **
with_status_fd(char **argv, int n, const char *fdname)
{
	char **a = xmalloc((size_t)(n + 3) * sizeof(*a));
	int i;

	a[0] = argv[0];
	a[1] = "-F";
	a[2] = (char *)fdname;
	for (i = 1; i < n; i++)
		a[i + 2] = argv[i];
	a[n + 2] = NULL;
	return a;
}

/*
 * fork and exec with stdin and stdout as given; SIGTERM when we die,
 * however we die.  Signals are blocked around fork so that a child
 * never runs our handler.
 */
static void
start(struct program *p, int in, int out, int statusw, int close1,
    int close2)
{
	pid_t parent = getpid();

	if ((p->pid = fork()) == -1)
		status_err(OUTCOME_BACKUP_FAILED, "fork");
	if (p->pid > 0)
		return;
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	if (prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 || getppid() != parent)
		_exit(126);
	if ((in != STDIN_FILENO && dup2(in, STDIN_FILENO) == -1) ||
	    (out != STDOUT_FILENO && dup2(out, STDOUT_FILENO) == -1))
		_exit(126);
	if (close1 >= 0)
		close(close1);
	if (close2 >= 0)
		close(close2);
	/* the status pipe's write end stays open across exec */
	(void)fcntl(statusw, F_SETFD, 0);
	execvp(p->argv[0], p->argv);
	dprintf(STDERR_FILENO, "runpipe: %s: %s\n", p->argv[0],
	    strerror(errno));
	_exit(127);
}

/*
 * The status lines, read until every writer has closed: whole lines,
 * each assigned by its "program" to producer or consumer.
 */
static void
read_lines(int fd, struct program *prog, int nprog)
{
	char buf[8192], pending[LINE_MAX_BYTES];
	size_t plen = 0;
	ssize_t r, k;
	int i;

	for (;;) {
		r = read(fd, buf, sizeof(buf));
		if (r == -1 && errno == EINTR) {
			if (stop_signal)
				return;
			continue;
		}
		if (r <= 0)
			return;
		for (k = 0; k < r; k++) {
			if (buf[k] != '\n') {
				if (plen < sizeof(pending) - 2)
					pending[plen++] = buf[k];
				continue;
			}
			pending[plen] = '\0';
			for (i = 0; i < nprog; i++) {
				char key[96];

				snprintf(key, sizeof(key),
				    "{\"program\":\"%s\",", prog[i].name);
				if (strncmp(pending, key, strlen(key)) == 0 &&
				    prog[i].line[0] == '\0') {
					/* pending is at most LINE_MAX - 2 */
					memcpy(prog[i].line, pending, plen);
					prog[i].line[plen] = '\n';
					prog[i].line[plen + 1] = '\0';
				}
			}
			plen = 0;
		}
	}
}

static void
wait_for(struct program *p)
{
	while (p->pid > 0 && waitpid(p->pid, &p->status, 0) == -1) {
		if (errno != EINTR) {
			p->status = 127 << 8;
			break;
		}
		if (stop_signal)
			return;
	}
	p->pid = 0;
}

static int
killed_by(const struct program *p, int sig)
{
	return WIFSIGNALED(p->status) && WTERMSIG(p->status) == sig;
}

static int
succeeded(const struct program *p)
{
	return WIFEXITED(p->status) && WEXITSTATUS(p->status) == 0;
}

/* The exit status a status line names, if it is a failure's. */
static int
line_exit(const char *line)
{
	const char *e = strstr(line, "\"exit\":");

	return e != NULL ? atoi(e + 7) : -1;
}

/* Its own line, passed on to our caller as it came; its exit status. */
static void
forward(const struct program *p, int statusfd)
{
	if (statusfd >= 0)
		(void)write_all(statusfd, p->line, strlen(p->line));
	exit(line_exit(p->line));
}

/* A program that failed without a line of its own: killed, or not ours. */
static void
failed_silently(const struct program *p)
{
	if (WIFSIGNALED(p->status))
		status_exit(OUTCOME_BACKUP_FAILED, NULL, "%s was killed by "
		    "signal %d", p->name, WTERMSIG(p->status));
	status_exit(OUTCOME_BACKUP_FAILED, NULL, "%s failed (exit %d) "
	    "without saying why", p->name, WEXITSTATUS(p->status));
}

/* The rule, for a program that did not succeed. */
static void
decide(const struct program *p, int statusfd)
{
	int e = line_exit(p->line);

	if (p->line[0] != '\0' && e > 0 && WIFEXITED(p->status) &&
	    WEXITSTATUS(p->status) == e)
		forward(p, statusfd);
	failed_silently(p);
}

int
main(int argc, char *argv[])
{
	struct program prog[2];
	const char *statusarg = NULL;
	char fdname[16];
	int ch, i, sep = -1, tar[2], st[2], statusfd = -1;

	status_start("runpipe", NULL);
	if (status_answer(argc, argv, help))
		return 0;
	while ((ch = getopt(argc, argv, "+F:")) != -1) {
		switch (ch) {
		case 'F':
			statusarg = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	for (i = 0; i < argc; i++)
		if (strcmp(argv[i], "--") == 0) {
			sep = i;
			break;
		}
	if (sep < 1 || sep + 1 >= argc)
		usage();
	if (statusarg != NULL) {
		status_start("runpipe", statusarg);
		statusfd = atoi(statusarg);
	}

	if (pipe2(tar, O_CLOEXEC) == -1 || pipe2(st, O_CLOEXEC) == -1)
		status_err(OUTCOME_BACKUP_FAILED, "pipe");
	snprintf(fdname, sizeof(fdname), "%d", st[1]);
	memset(prog, 0, sizeof(prog));
	prog[0].argv = with_status_fd(argv, sep, fdname);
	prog[1].argv = with_status_fd(argv + sep + 1, argc - sep - 1, fdname);
	prog[0].name = base_name(prog[0].argv[0]);
	prog[1].name = base_name(prog[1].argv[0]);

	/* no SA_RESTART: a signal ends our waits at once */
	stop_signals_catch();
	/* our stderr or status reader gone is no reason to die silently */
	signal(SIGPIPE, SIG_IGN);

	start(&prog[0], STDIN_FILENO, tar[1], st[1], tar[0], st[0]);
	start(&prog[1], tar[0], STDOUT_FILENO, st[1], tar[1], st[0]);
	close(tar[0]);
	close(tar[1]);
	close(st[1]);

	read_lines(st[0], prog, 2);
	for (i = 0; i < 2 && !stop_signal; i++)
		wait_for(&prog[i]);
	if (stop_signal) {
		for (i = 0; i < 2; i++)
			if (prog[i].pid > 0)
				(void)kill(prog[i].pid, SIGTERM);
		for (i = 0; i < 2; i++)
			while (prog[i].pid > 0 &&
			    waitpid(prog[i].pid, &prog[i].status, 0) == -1 &&
			    errno == EINTR)
				;
		status_exit(OUTCOME_INTERRUPTED, NULL, "interrupted (signal "
		    "%d): the backup is incomplete", (int)stop_signal);
	}
	if (succeeded(&prog[0]) && succeeded(&prog[1])) {
		status_ok();
		return 0;
	}
	/* whoever reads our output went away: nothing else matters then */
	if (killed_by(&prog[1], SIGPIPE))
		status_exit(OUTCOME_READER_GONE, NULL, "interrupted: the "
		    "reader of the frames went away");
	/* the producer failed first, unless the consumer's end killed it */
	if (!succeeded(&prog[0]) && !killed_by(&prog[0], SIGPIPE))
		decide(&prog[0], statusfd);
	decide(&prog[1], statusfd);
	return 0;
}
