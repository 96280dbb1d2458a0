/*
 * Connecting with libpq, and saying why it failed by SQLSTATE.
 */
#include <poll.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pgconn.h"
#include "util.h"

static int
is_state_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z');
}

/*
 * A verbose libpq message carries the SQLSTATE after the (translated)
 * severity: "...: FATAL:  28P01:  password ...".  Five code characters
 * between ":  " and ":" are it; nothing else in libpq's text has that
 * shape.
 */
void
pgconn_sqlstate(const char *text, char state[6])
{
	const char *p;

	state[0] = '\0';
	for (p = text; (p = strstr(p, ":  ")) != NULL; p++) {
		const char *c = p + 3;
		int i;

		for (i = 0; i < 5 && is_state_char(c[i]); i++)
			;
		if (i == 5 && c[5] == ':') {
			memcpy(state, c, 5);
			state[5] = '\0';
			return;
		}
	}
}

/*
 * The message without libpq's "connection to server ... failed: ", the
 * severity and the SQLSTATE: the first line, made safe.
 */
void
pgconn_message(const char *text, char *out, size_t outlen)
{
	const char *p, *end;
	char state[6];
	char *line;

	p = text;
	pgconn_sqlstate(text, state);
	if (state[0] != '\0') {
		const char *s = strstr(text, state);

		/* past "STATE:" and its spaces */
		p = s + 6;
		while (*p == ' ')
			p++;
	}
	end = strchr(p, '\n');
	if (end == NULL)
		end = p + strlen(p);
	line = one_line(p, (size_t)(end - p));
	snprintf(out, outlen, "%s", line);
	free(line);
}

static enum pgconn_failure
classify(PGconn *conn, const char *state)
{
	if (PQconnectionNeedsPassword(conn))
		return PGCONN_NO_PASSWORD;
	if (strcmp(state, "28P01") == 0)
		return PGCONN_AUTH;
	if (strcmp(state, "28000") == 0)
		return PGCONN_REFUSED;
	if (strcmp(state, "42501") == 0)
		return PGCONN_PRIVILEGE;
	if (strcmp(state, "53300") == 0)
		return PGCONN_TOO_MANY;
	return PGCONN_OTHER;
}

/*
 * PQconnectStartParams, and the verbosity set before any message can
 * arrive, so that the server's error carries its SQLSTATE; then libpq's
 * documented polling loop, which leaves connect_timeout (PGCONNECT_TIMEOUT)
 * to its caller: the whole attempt gets that many seconds.
 */
PGconn *
pgconn_open(int replication, const char *dbname, const char *appname,
    enum pgconn_failure *why,
    char state[6], char *msg, size_t msglen)
{
	const char *keys[5], *vals[5];
	PostgresPollingStatusType st;
	PGconn *conn;
	const char *t;
	int n = 0, timeout_ms = -1;
	struct timespec start, now;

	if (replication) {
		/* pg_hba.conf's "replication" matches this database name */
		keys[n] = "dbname", vals[n++] = "replication";
		keys[n] = "replication", vals[n++] = "true";
	} else if (dbname != NULL)
		keys[n] = "dbname", vals[n++] = dbname;
	keys[n] = "fallback_application_name", vals[n++] = appname;
	keys[n] = NULL, vals[n] = NULL;

	*why = PGCONN_OK;
	state[0] = '\0';
	conn = PQconnectStartParams(keys, vals, 0);
	if (conn == NULL) {
		*why = PGCONN_OTHER;
		snprintf(msg, msglen, "out of memory");
		return NULL;
	}
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	if ((t = getenv("PGCONNECT_TIMEOUT")) != NULL && atoi(t) > 0)
		timeout_ms = atoi(t) * 1000;
	clock_gettime(CLOCK_MONOTONIC, &start);
	st = PGRES_POLLING_WRITING;
	while (PQstatus(conn) != CONNECTION_BAD &&
	    st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd;
		int left = -1;

		if (timeout_ms >= 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = timeout_ms - (int)((now.tv_sec - start.tv_sec) * 1000 +
			    (now.tv_nsec - start.tv_nsec) / 1000000);
			if (left <= 0) {
				PQfinish(conn);
				*why = PGCONN_OTHER;
				snprintf(msg, msglen, "timeout expired after %d s",
				    timeout_ms / 1000);
				return NULL;
			}
		}
		pfd.fd = PQsocket(conn);
		pfd.events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
		if (pfd.fd >= 0 && poll(&pfd, 1, left) <= 0)
			continue;	/* EINTR or time: look again */
		st = PQconnectPoll(conn);
	}
	if (PQstatus(conn) == CONNECTION_OK) {
		PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
		return conn;
	}
	pgconn_sqlstate(PQerrorMessage(conn), state);
	*why = classify(conn, state);
	pgconn_message(PQerrorMessage(conn), msg, msglen);
	PQfinish(conn);
	return NULL;
}
