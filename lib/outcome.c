/*
 * outcome: the table of outcomes, and the status line that says one.
 * Nothing here ends the process: each failure returns the exit status
 * its outcome has, for the program's main to end with (cmd/die.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outcome.h"
#include "util.h"

static const struct {
	const char	*name;
	int		 exit;
	int		 grpc;
} table[] = {
#define OUTCOME(id, name, exit, grpc)	{ name, exit, grpc },
#include "outcomes.inc"
#undef OUTCOME
};

static const char *status_prog = "plakar-pg";
static int status_fd = -1;

const char *
outcome_name(enum outcome o)
{
	return table[o].name;
}

int
outcome_exit(enum outcome o)
{
	return table[o].exit;
}

int
outcome_grpc(enum outcome o)
{
	return table[o].grpc;
}

int
outcome_by_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, name) == 0)
			return (int)i;
	return -1;
}

int
status_open(const char *prog, const char *fdarg)
{
	char *end;
	long fd;

	status_prog = prog;
	if (fdarg == NULL)
		return 0;
	errno = 0;
	fd = strtol(fdarg, &end, 10);
	/* stdin, stdout and stderr carry other things */
	if (errno != 0 || end == fdarg || *end != '\0' || fd < 3 ||
	    fd > 1023 || fcntl((int)fd, F_GETFL) == -1) {
		status_fd = -1;
		return status_fail(OUTCOME_USAGE, NULL, "-F %s: not an open "
		    "descriptor above 2", fdarg);
	}
	status_fd = (int)fd;
	/* for our caller: what we run does not write into it */
	(void)fcntl(status_fd, F_SETFD, FD_CLOEXEC);
	return 0;
}

int
status_answer(int argc, char *argv[], void (*help)(void))
{
	if (argc != 2)
		return 0;
	if (strcmp(argv[1], "--help") == 0) {
		help();
		return 1;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("%s (plakar-pg) %s\n", status_prog, VERSION);
		return 1;
	}
	return 0;
}

void
status_inherit(void)
{
	if (status_fd >= 0)
		(void)fcntl(status_fd, F_SETFD, 0);
}

/* s as a JSON string's contents: quotes, backslashes, controls escaped. */
static size_t
json_escape(char *out, size_t outlen, const char *s)
{
	size_t n = 0;
	char e[8];

	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;
		size_t k;

		if (c == '"' || c == '\\')
			k = (size_t)snprintf(e, sizeof(e), "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			k = (size_t)snprintf(e, sizeof(e), "\\u%04x", c);
		else
			e[0] = (char)c, e[1] = '\0', k = 1;
		if (n + k + 1 > outlen)
			break;
		memcpy(out + n, e, k);
		n += k;
	}
	if (outlen > 0)
		out[n] = '\0';
	return n;
}

size_t
status_format(char *buf, size_t len, const char *prog, enum outcome o,
    const char *sqlstate, const char *message)
{
	char m[1024], p[64], st[16];
	int n;

	json_escape(p, sizeof(p), prog);
	json_escape(m, sizeof(m), message != NULL ? message : "");
	json_escape(st, sizeof(st), sqlstate != NULL ? sqlstate : "");
	n = snprintf(buf, len, "{\"program\":\"%s\",\"status\":\"%s\","
	    "\"exit\":%d%s%s%s%s%s%s}\n", p, table[o].name, table[o].exit,
	    st[0] != '\0' ? ",\"sqlstate\":\"" : "", st,
	    st[0] != '\0' ? "\"" : "",
	    message != NULL ? ",\"message\":\"" : "", m,
	    message != NULL ? "\"" : "");
	if (n < 0)
		return 0;
	/* cut short, it still ends the line */
	if ((size_t)n >= len && len > 1) {
		buf[len - 2] = '\n';
		return len - 1;
	}
	return (size_t)n;
}

static void
status_write(enum outcome o, const char *sqlstate, const char *message)
{
	char line[1400];
	size_t n;

	if (status_fd < 0)
		return;
	n = status_format(line, sizeof(line), status_prog, o, sqlstate,
	    message);
	/* one write: lines of several programs on one pipe stay whole */
	(void)write_all(status_fd, line, n);
}

void
status_ok(void)
{
	status_write(OUTCOME_OK, NULL, NULL);
}

int
status_vfail(enum outcome o, const char *sqlstate, int errnum,
    const char *fmt, va_list ap)
{
	char msg[1024];
	char *line;
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	if (errnum != 0)
		snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(errnum));
	line = one_line(msg, strlen(msg));
	fprintf(stderr, "%s: %s\n", status_prog, line);
	status_write(o, sqlstate, line);
	free(line);
	return table[o].exit;
}

int
status_usage(const char *synopsis)
{
	fputs(synopsis, stderr);
	status_write(OUTCOME_USAGE, NULL, "bad usage");
	return table[OUTCOME_USAGE].exit;
}

int
status_fail(enum outcome o, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	int e;

	va_start(ap, fmt);
	e = status_vfail(o, sqlstate, 0, fmt, ap);
	va_end(ap);
	return e;
}
