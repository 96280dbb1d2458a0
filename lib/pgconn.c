/*
 * Connecting with libpq, and saying why it failed by SQLSTATE.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "outcome.h"
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
	const char *keys[10], *vals[10];
	PostgresPollingStatusType st;
	PGconn *conn;
	const char *t;
	int n = 0;
	long long timeout_ms = -1;
	struct timespec start, now;

	if (replication) {
		/* pg_hba.conf's "replication" matches this database name */
		keys[n] = "dbname", vals[n++] = "replication";
		keys[n] = "replication", vals[n++] = "true";
	} else if (dbname != NULL)
		keys[n] = "dbname", vals[n++] = dbname;
	keys[n] = "fallback_application_name", vals[n++] = appname;
	/*
	 * Over TCP, a peer that vanished is noticed: keepalives after 30 s
	 * of quiet, and unacknowledged data given up after 60 s.  A Unix
	 * socket ignores them.
	 */
	keys[n] = "keepalives_idle", vals[n++] = "30";
	keys[n] = "keepalives_interval", vals[n++] = "10";
	keys[n] = "keepalives_count", vals[n++] = "3";
	keys[n] = "tcp_user_timeout", vals[n++] = "60000";
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
	/* up to INT_MAX seconds, as the option table allows */
	if ((t = getenv("PGCONNECT_TIMEOUT")) != NULL && atoll(t) > 0)
		timeout_ms = atoll(t) * 1000;
	clock_gettime(CLOCK_MONOTONIC, &start);
	st = PGRES_POLLING_WRITING;
	while (PQstatus(conn) != CONNECTION_BAD &&
	    st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
		struct pollfd pfd;
		long long rest;
		int left = -1;

		if (timeout_ms >= 0) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			rest = timeout_ms - ((long long)(now.tv_sec -
			    start.tv_sec) * 1000 + (now.tv_nsec -
			    start.tv_nsec) / 1000000);
			left = rest > INT_MAX ? INT_MAX : (int)rest;
			if (rest <= 0) {
				PQfinish(conn);
				*why = PGCONN_OTHER;
				snprintf(msg, msglen, "timeout expired after %lld s",
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

/* The role libpq connects as: PGUSER, or the user we run as. */
static const char *
role_name(void)
{
	const char *u = getenv("PGUSER");
	struct passwd *pw;

	if (u != NULL && *u != '\0')
		return u;
	pw = getpwuid(geteuid());
	return pw != NULL ? pw->pw_name : "(unknown)";
}

enum outcome
pgconn_explain(int replication, enum pgconn_failure why, const char state[6],
    const char *msg, const char **sqlstate, char *out, size_t outlen)
{
	const char *role = role_name();
	char *r = one_line(role, strlen(role));
	enum outcome o = OUTCOME_UNREACHABLE;

	*sqlstate = state[0] != '\0' ? state : NULL;
	switch (why) {
	case PGCONN_NO_PASSWORD:
		o = OUTCOME_NO_PASSWORD;
		*sqlstate = NULL;
		snprintf(out, outlen, "no password supplied: the server wants "
		    "one for role %s; give it in the location, the password "
		    "option or the Plakar source", r);
		break;
	case PGCONN_AUTH:
		o = OUTCOME_AUTH_FAILED;
		snprintf(out, outlen, "authentication failed for role %s: %s "
		    "(SQLSTATE %s)", r, msg, state);
		break;
	case PGCONN_REFUSED:
		o = OUTCOME_HBA_REJECTED;
		snprintf(out, outlen, "the server does not admit role %s from "
		    "this host: %s (SQLSTATE %s)", r, msg, state);
		break;
	case PGCONN_PRIVILEGE:
		if (replication) {
			o = OUTCOME_NO_REPLICATION;
			snprintf(out, outlen, "role %s has no REPLICATION "
			    "privilege: ALTER ROLE %s REPLICATION, or use "
			    "another role (SQLSTATE %s)", r, r, state);
		}
		break;
	case PGCONN_TOO_MANY:
		o = OUTCOME_NO_WAL_SENDER;
		snprintf(out, outlen, "no free %s (max_wal_senders, "
		    "max_connections): %s (SQLSTATE %s)",
		    replication ? "WAL sender or connection" : "connection",
		    msg, state);
		break;
	default:
		break;
	}
	if (o == OUTCOME_UNREACHABLE) {
		if (state[0] != '\0')
			snprintf(out, outlen, "cannot connect: %s (SQLSTATE %s)",
			    msg, state);
		else
			snprintf(out, outlen, "cannot connect: %s", msg);
	}
	free(r);
	return o;
}

/* Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01 UTC. */
#define PG_EPOCH_USEC	(946684800LL * 1000000)
#define CLOCK_WAIT_MS	10000

static int64_t
be64_get(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return (int64_t)v;
}

static void
be64_put(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

void
pgconn_result_line(const PGresult *res, char *out, size_t outlen)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	char line[512];

	pgconn_message(primary != NULL ? primary : PQresultErrorMessage(res),
	    line, sizeof(line));
	snprintf(out, outlen, "%s%s%s%s", line[0] ? line :
	    "the connection was lost", state ? " (SQLSTATE " : "",
	    state ? state : "", state ? ")" : "");
}

int
pgconn_wait(PGconn *conn, long ms)
{
	struct pollfd pfd;
	int r;

	pfd.fd = PQsocket(conn);
	pfd.events = POLLIN;
	while ((r = poll(&pfd, 1, ms < 0 ? -1 : (int)ms)) == -1 &&
	    errno == EINTR)
		;
	return r > 0 ? 1 : r;
}

/* A command's failure, as one line with its SQLSTATE. */
static void
command_failed(PGresult *res, const char *what, char *msg, size_t msglen)
{
	char line[600];

	pgconn_result_line(res, line, sizeof(line));
	snprintf(msg, msglen, "%s: %s", what, line);
}

/* The next CopyData, waiting at most until deadline_ms (monotonic). */
static int
copy_data(PGconn *conn, char **data, int64_t deadline_ms)
{
	struct timespec now;
	int n;

	for (;;) {
		if ((n = PQgetCopyData(conn, data, 1)) != 0)
			return n;
		clock_gettime(CLOCK_MONOTONIC, &now);
		n = (int)(deadline_ms - (now.tv_sec * 1000 + now.tv_nsec / 1000000));
		if (n <= 0 || pgconn_wait(conn, n) != 1)
			return 0;
		if (!PQconsumeInput(conn))
			return -2;
	}
}

static int64_t
now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* The results of a command until deadline_ms; see pgconn_exec. */
static PGresult *
exec_until(PGconn *conn, const char *cmd, int64_t deadline_ms, int *timed_out)
{
	PGresult *res, *last = NULL;
	int64_t left;

	*timed_out = 0;
	if (!PQsendQuery(conn, cmd))
		return NULL;
	for (;;) {
		while (PQisBusy(conn)) {
			left = deadline_ms - now_ms();
			if (left <= 0 || pgconn_wait(conn, (long)left) == 0) {
				*timed_out = 1;
				PQclear(last);
				return NULL;
			}
			if (!PQconsumeInput(conn))
				break;
		}
		if ((res = PQgetResult(conn)) == NULL)
			return last;
		PQclear(last);
		last = res;
		/* a COPY has begun: its data, not another result, comes next */
		if (PQresultStatus(res) == PGRES_COPY_OUT ||
		    PQresultStatus(res) == PGRES_COPY_IN ||
		    PQresultStatus(res) == PGRES_COPY_BOTH)
			return res;
	}
}

PGresult *
pgconn_exec(PGconn *conn, const char *cmd, long ms, int *timed_out)
{
	return exec_until(conn, cmd, now_ms() + ms, timed_out);
}

/*
 * The server's clock over a replication connection, without SQL: from
 * the position IDENTIFY_SYSTEM gives, START_REPLICATION; one standby
 * status update asking for a reply; the keepalive that answers carries
 * the server's time (µs since 2000-01-01); then CopyDone.
 */
int
pgconn_server_clock(PGconn *conn, int64_t *usec, char *msg, size_t msglen)
{
	PGresult *res;
	char cmd[128], *data;
	unsigned char reply[34];
	struct timespec now;
	int64_t deadline;
	int n, found = 0, late;

	/* the whole probe, every step of it, within CLOCK_WAIT_MS */
	deadline = now_ms() + CLOCK_WAIT_MS;
	res = exec_until(conn, "IDENTIFY_SYSTEM", deadline, &late);
	if (late) {
		snprintf(msg, msglen, "IDENTIFY_SYSTEM: no answer within %d s",
		    CLOCK_WAIT_MS / 1000);
		return -1;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
	    PQnfields(res) < 3) {
		command_failed(res, "IDENTIFY_SYSTEM", msg, msglen);
		PQclear(res);
		return -1;
	}
	if (strspn(PQgetvalue(res, 0, 1), "0123456789") !=
	    strlen(PQgetvalue(res, 0, 1)) ||
	    strspn(PQgetvalue(res, 0, 2), "0123456789ABCDEF/") !=
	    strlen(PQgetvalue(res, 0, 2)) || strlen(PQgetvalue(res, 0, 2)) > 17) {
		snprintf(msg, msglen, "IDENTIFY_SYSTEM: a malformed timeline "
		    "or position");
		PQclear(res);
		return -1;
	}
	snprintf(cmd, sizeof(cmd), "START_REPLICATION PHYSICAL %s TIMELINE %s",
	    PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 1));
	PQclear(res);
	res = exec_until(conn, cmd, deadline, &late);
	if (late) {
		snprintf(msg, msglen, "START_REPLICATION: no answer within %d s",
		    CLOCK_WAIT_MS / 1000);
		return -1;
	}
	if (PQresultStatus(res) != PGRES_COPY_BOTH) {
		command_failed(res, "START_REPLICATION", msg, msglen);
		PQclear(res);
		return -1;
	}
	PQclear(res);
	/* 'r', write, flush, apply (0: none), our time, replyRequested */
	memset(reply, 0, sizeof(reply));
	reply[0] = 'r';
	clock_gettime(CLOCK_REALTIME, &now);
	be64_put(reply + 25, (uint64_t)((int64_t)now.tv_sec * 1000000 +
	    now.tv_nsec / 1000 - PG_EPOCH_USEC));
	reply[33] = 1;
	if (PQputCopyData(conn, (char *)reply, sizeof(reply)) != 1 ||
	    PQflush(conn) != 0) {
		pgconn_message(PQerrorMessage(conn), msg, msglen);
		return -1;
	}
	/* WAL written meanwhile comes first ('w'): passed over */
	while (!found && (n = copy_data(conn, &data, deadline)) > 0) {
		if (data[0] == 'k' && n >= 18) {
			*usec = be64_get((unsigned char *)data + 9) +
			    PG_EPOCH_USEC;
			found = 1;
		}
		PQfreemem(data);
	}
	if (!found) {
		if (n == 0)
			snprintf(msg, msglen, "no keepalive from the server "
			    "within %d s", CLOCK_WAIT_MS / 1000);
		else
			pgconn_message(PQerrorMessage(conn), msg, msglen);
		return -1;
	}
	/* CopyDone; the server's own CopyDone and completion follow */
	if (PQputCopyEnd(conn, NULL) != 1 || PQflush(conn) != 0) {
		pgconn_message(PQerrorMessage(conn), msg, msglen);
		return -1;
	}
	while ((n = copy_data(conn, &data, deadline)) > 0)
		PQfreemem(data);
	if (n == 0) {
		snprintf(msg, msglen, "START_REPLICATION did not end within "
		    "%d s", CLOCK_WAIT_MS / 1000);
		return -1;
	}
	for (;;) {
		ExecStatusType st;

		while (PQisBusy(conn)) {
			int64_t left = deadline - now_ms();

			if (left <= 0 || pgconn_wait(conn, (long)left) != 1 ||
			    !PQconsumeInput(conn)) {
				snprintf(msg, msglen, "START_REPLICATION did not "
				    "end within %d s", CLOCK_WAIT_MS / 1000);
				return -1;
			}
		}
		if ((res = PQgetResult(conn)) == NULL)
			break;
		st = PQresultStatus(res);

		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			command_failed(res, "START_REPLICATION", msg, msglen);
			PQclear(res);
			return -1;
		}
		PQclear(res);
	}
	return 0;
}
