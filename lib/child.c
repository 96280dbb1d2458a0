/*
 * child: the programs a plugin runs, see child.h.
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
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "child.h"
#include "outcome.h"

extern char **environ;

/* How long a stopped child has to clean up before SIGKILL. */
#define STOP_GRACE_MS	5000

/* Plakar's secrets and libpq's defaults stay with us. */
static int
kept_variable(const char *v)
{
	return strncmp(v, "PLAKAR_", 7) != 0 && strncmp(v, "PG", 2) != 0;
}

/* Its strings are our environ's: free only the array. */
static char **
child_environ(void)
{
	size_t n = 0, i, k = 0;
	char **env;

	while (environ[n] != NULL)
		n++;
	env = xmalloc((n + 1) * sizeof(*env));
	for (i = 0; i < n; i++)
		if (kept_variable(environ[i]))
			env[k++] = environ[i];
	env[k] = NULL;
	return env;
}

static int
set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	return fl == -1 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void
close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * fork and exec rather than posix_spawn: the child must get SIGTERM
 * when we die (prctl PR_SET_PDEATHSIG), which posix_spawn cannot ask.
 */
int
child_spawn(struct child *c, char *const argv[], const char *input,
    char *errbuf, size_t errlen)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	int st[2] = { -1, -1 };
	char **env;
	pid_t parent = getpid();

	memset(c, 0, sizeof(*c));
	c->out = c->err = c->st = -1;
	c->outcome = -1;
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1 ||
	    pipe2(errp, O_CLOEXEC) == -1 || pipe2(st, O_CLOEXEC) == -1) {
		seterr(errbuf, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	env = child_environ();
	if ((c->pid = fork()) == -1) {
		seterr(errbuf, errlen, "fork: %s", strerror(errno));
		free(env);
		goto fail;
	}
	if (c->pid == 0) {
		/*
		 * Its own process group: what it starts is stopped with it,
		 * even when it was SIGKILLed and could not stop them itself.
		 */
		if (setpgid(0, 0) == -1 ||
		    prctl(PR_SET_PDEATHSIG, SIGTERM) == -1 ||
		    getppid() != parent)
			_exit(126);
		/* st[1] is above 2: pipes made after 0, 1, 2 are open */
		if (dup2(in[0], STDIN_FILENO) == -1 ||
		    dup2(out[1], STDOUT_FILENO) == -1 ||
		    dup2(errp[1], STDERR_FILENO) == -1 ||
		    dup2(st[1], CHILD_STATUS_FD) == -1)
			_exit(126);
		signal(SIGPIPE, SIG_DFL);
		environ = env;
		execvp(argv[0], argv);
		dprintf(STDERR_FILENO, "plakar-pg-importer: %s: %s\n",
		    argv[0], strerror(errno));
		_exit(127);
	}
	free(env);
	(void)setpgid(c->pid, c->pid);	/* whichever of us comes first */
	c->pgid = c->pid;
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&errp[1]);
	close_fd(&st[1]);
	/* A few lines of options: they fit in the pipe. */
	if (input != NULL)
		(void)write_all(in[1], input, strlen(input));
	close_fd(&in[1]);
	c->out = out[0];
	c->err = errp[0];
	c->st = st[0];
	if (set_nonblock(c->out) == -1 || set_nonblock(c->err) == -1 ||
	    set_nonblock(c->st) == -1) {
		seterr(errbuf, errlen, "fcntl: %s", strerror(errno));
		child_stop(c);
		return -1;
	}
	return 0;
fail:
	close_fd(&in[0]);
	close_fd(&in[1]);
	close_fd(&out[0]);
	close_fd(&out[1]);
	close_fd(&errp[0]);
	close_fd(&errp[1]);
	close_fd(&st[0]);
	close_fd(&st[1]);
	c->pid = 0;
	return -1;
}

int
child_read_err(struct child *c)
{
	char b[4096];
	ssize_t r;

	if (c->err < 0)
		return -1;
	r = read(c->err, b, sizeof(b));
	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0) {
		close_fd(&c->err);
		return -1;
	}
	(void)write_all(STDERR_FILENO, b, (size_t)r);
	return 1;
}

/*
 * A status line (plakar-pg(7)): the first that names a failure is kept,
 * its outcome and "program: message"; the rest, oks among them, are
 * passed over.
 */
static void
status_line(struct child *c)
{
	json_t *j, *st, *msg, *prog;
	int o;

	c->part[c->partlen] = '\0';
	c->partlen = 0;
	if (c->outcome >= 0 ||
	    (j = json_loads(c->part, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return;
	st = json_object_get(j, "status");
	msg = json_object_get(j, "message");
	prog = json_object_get(j, "program");
	o = json_is_string(st) ? outcome_by_name(json_string_value(st)) : -1;
	if (o > 0) {
		const char *m = json_is_string(msg) ? json_string_value(msg) :
		    outcome_name(o);
		const char *p = json_is_string(prog) ?
		    json_string_value(prog) : "plakar-pg";
		char *mline = one_line(m, strlen(m));
		char *pline = one_line(p, strlen(p));

		c->outcome = o;
		snprintf(c->message, sizeof(c->message), "%.64s: %s", pline,
		    mline);
		free(mline);
		free(pline);
	}
	json_decref(j);
}

int
child_read_status(struct child *c)
{
	char b[4096];
	ssize_t r, i;

	if (c->st < 0)
		return -1;
	r = read(c->st, b, sizeof(b));
	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0) {
		close_fd(&c->st);
		return -1;
	}
	for (i = 0; i < r; i++) {
		if (b[i] == '\n')
			status_line(c);
		else if (c->partlen < sizeof(c->part) - 1)
			c->part[c->partlen++] = b[i];
	}
	return 1;
}

ssize_t
child_read_out(struct child *c, void *b, size_t n)
{
	ssize_t r;

	if (c->out < 0)
		return -1;
	r = read(c->out, b, n);
	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0) {
		close_fd(&c->out);
		return -1;
	}
	return r;
}

int
child_reap(struct child *c, int block)
{
	pid_t r;
	int status;

	if (c->pid > 0) {
		while ((r = waitpid(c->pid, &status, block ? 0 : WNOHANG)) ==
		    -1 && errno == EINTR)
			;
		if (r == c->pid || (r == -1 && errno == ECHILD)) {
			c->reaped = 1;
			c->pid = 0;
			c->status = r == -1 ? 127 : WIFEXITED(status) ?
			    WEXITSTATUS(status) : 128 + WTERMSIG(status);
			/* What it left running in its group, if it was killed. */
			if (c->pgid > 0)
				(void)kill(-c->pgid, SIGTERM);
		}
	}
	return c->reaped;
}

int
child_failed(const struct child *c)
{
	return c->reaped && c->status != 0;
}

void
child_stop(struct child *c)
{
	int waited = 0;

	if (c->pid > 0) {
		(void)kill(-c->pgid, SIGTERM);
		while (!child_reap(c, 0) && waited < STOP_GRACE_MS) {
			struct timespec ts = { 0, 20 * 1000 * 1000 };

			nanosleep(&ts, NULL);
			waited += 20;
		}
		if (c->pid > 0) {
			(void)kill(-c->pgid, SIGKILL);
			child_reap(c, 1);
		}
	}
	close_fd(&c->out);
	close_fd(&c->err);
	close_fd(&c->st);
}

int
child_run(struct child *c, char *const argv[], const char *input,
    struct buf *out, char *errbuf, size_t errlen)
{
	struct pollfd p[3];

	if (child_spawn(c, argv, input, errbuf, errlen) == -1)
		return -1;
	while (c->out >= 0 || c->err >= 0 || c->st >= 0) {
		p[0].fd = c->out;
		p[1].fd = c->err;
		p[2].fd = c->st;
		p[0].events = p[1].events = p[2].events = POLLIN;
		if (poll(p, 3, -1) == -1 && errno != EINTR)
			break;
		if (p[0].revents != 0) {
			ssize_t r;

			buf_reserve(out, 4096);
			if ((r = child_read_out(c, out->p + out->len, 4096)) > 0)
				out->len += (size_t)r;
		}
		if (p[1].revents != 0)
			(void)child_read_err(c);
		if (p[2].revents != 0)
			(void)child_read_status(c);
	}
	child_reap(c, 1);
	child_stop(c);
	buf_reserve(out, 1);
	out->p[out->len] = '\0';
	return c->status;
}
