/*
 * child: the programs a plugin runs, see child.h.
 */
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "child.h"

extern char **environ;

/* How long a stopped child has to clean up before SIGKILL. */
#define STOP_GRACE_MS	5000

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

static void
tmpdir_empty(const char *dir)
{
	if (dir != NULL)
		(void)nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *
child_tmpdir_make(char *errbuf, size_t errlen)
{
	const char *base = getenv("TMPDIR");
	char *dir;
	size_t n;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	n = strlen(base) + sizeof("/plakar-pg-importer.XXXXXX");
	dir = xmalloc(n);
	snprintf(dir, n, "%s/plakar-pg-importer.XXXXXX", base);
	if (mkdtemp(dir) == NULL) {
		seterr(errbuf, errlen, "mkdtemp %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	return dir;
}

void
child_tmpdir_remove(const char *dir)
{
	if (dir == NULL)
		return;
	tmpdir_empty(dir);
	(void)rmdir(dir);
}

/* Plakar's secrets and libpq's defaults stay with us. */
static int
kept_variable(const char *v)
{
	return strncmp(v, "PLAKAR_", 7) != 0 && strncmp(v, "PG", 2) != 0 &&
	    strncmp(v, "TMPDIR=", 7) != 0;
}

static char **
child_environ(const char *tmpdir)
{
	size_t n = 0, i, k = 0;
	char **env, *t;

	while (environ[n] != NULL)
		n++;
	env = xmalloc((n + 2) * sizeof(*env));
	for (i = 0; i < n; i++)
		if (kept_variable(environ[i]))
			env[k++] = environ[i];
	t = xmalloc(strlen(tmpdir) + sizeof("TMPDIR="));
	strcpy(t, "TMPDIR=");
	strcat(t, tmpdir);
	env[k++] = t;
	env[k] = NULL;
	return env;
}

/* Its strings are our environ's but the last, TMPDIR's. */
static void
free_environ(char **env)
{
	size_t k = 0;

	while (env[k + 1] != NULL)
		k++;
	free(env[k]);
	free(env);
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
    const char *tmpdir, char *errbuf, size_t errlen)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, errp[2] = { -1, -1 };
	char **env;
	pid_t parent = getpid();

	memset(c, 0, sizeof(*c));
	c->out = c->err = -1;
	c->tmpdir = tmpdir;
	if (pipe2(in, O_CLOEXEC) == -1 || pipe2(out, O_CLOEXEC) == -1 ||
	    pipe2(errp, O_CLOEXEC) == -1) {
		seterr(errbuf, errlen, "pipe: %s", strerror(errno));
		goto fail;
	}
	env = child_environ(tmpdir);
	if ((c->pid = fork()) == -1) {
		seterr(errbuf, errlen, "fork: %s", strerror(errno));
		free_environ(env);
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
		if (dup2(in[0], STDIN_FILENO) == -1 ||
		    dup2(out[1], STDOUT_FILENO) == -1 ||
		    dup2(errp[1], STDERR_FILENO) == -1)
			_exit(126);
		signal(SIGPIPE, SIG_DFL);
		environ = env;
		execvp(argv[0], argv);
		dprintf(STDERR_FILENO, "plakar-pg-importer: %s: %s\n",
		    argv[0], strerror(errno));
		_exit(127);
	}
	free_environ(env);
	(void)setpgid(c->pid, c->pid);	/* whichever of us comes first */
	c->pgid = c->pid;
	close_fd(&in[0]);
	close_fd(&out[1]);
	close_fd(&errp[1]);
	/* A few lines of options: they fit in the pipe. */
	if (input != NULL)
		(void)write_all(in[1], input, strlen(input));
	close_fd(&in[1]);
	c->out = out[0];
	c->err = errp[0];
	if (set_nonblock(c->out) == -1 || set_nonblock(c->err) == -1) {
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
	c->pid = 0;
	return -1;
}

/*
 * The line just read becomes the last line, the reason a failure is
 * given, unless it is a warning: those go on while the reason comes later
 * or never.
 */
static void
end_line(struct child *c)
{
	if (c->partlen > 0 && !memmem(c->part, c->partlen, "warning: ", 9)) {
		memcpy(c->lastline, c->part, c->partlen);
		c->lastline[c->partlen] = '\0';
	}
	c->partlen = 0;
}

int
child_read_err(struct child *c)
{
	char b[4096];
	ssize_t r;
	size_t i;

	if (c->err < 0)
		return -1;
	r = read(c->err, b, sizeof(b));
	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0) {
		close_fd(&c->err);
		end_line(c);
		return -1;
	}
	(void)write_all(STDERR_FILENO, b, (size_t)r);
	for (i = 0; i < (size_t)r; i++) {
		if (b[i] == '\n')
			end_line(c);
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
		return 0;
	r = read(c->out, b, n);
	if (r == -1 && (errno == EAGAIN || errno == EINTR))
		return -1;
	if (r <= 0) {
		close_fd(&c->out);
		return 0;
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
	if (c->reaped && c->out < 0 && c->err < 0)
		tmpdir_empty(c->tmpdir);
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
	tmpdir_empty(c->tmpdir);
}

int
child_run(char *const argv[], const char *input, const char *tmpdir,
    struct buf *out, char *lastline, size_t linelen)
{
	struct child c;
	struct pollfd p[2];
	char errbuf[256];

	lastline[0] = '\0';
	if (child_spawn(&c, argv, input, tmpdir, errbuf, sizeof(errbuf)) ==
	    -1) {
		snprintf(lastline, linelen, "%s", errbuf);
		return -1;
	}
	while (c.out >= 0 || c.err >= 0) {
		p[0].fd = c.out;
		p[1].fd = c.err;
		p[0].events = p[1].events = POLLIN;
		if (poll(p, 2, -1) == -1 && errno != EINTR)
			break;
		if (p[0].revents != 0) {
			ssize_t r;

			buf_reserve(out, 4096);
			if ((r = child_read_out(&c, out->p + out->len, 4096)) > 0)
				out->len += (size_t)r;
		}
		if (p[1].revents != 0)
			(void)child_read_err(&c);
	}
	child_reap(&c, 1);
	child_stop(&c);
	buf_reserve(out, 1);
	out->p[out->len] = '\0';
	snprintf(lastline, linelen, "%s", c.lastline);
	return c.status;
}
