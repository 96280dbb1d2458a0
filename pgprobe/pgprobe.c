/*
 * pgprobe: connect as the libpq environment says and either run the
 * backup's preflight (-p) or run each query given and print the first
 * field of each.  Why a connection failed is read from SQLSTATEs and
 * libpq, never from words, and said as an outcome (plakar-pg(7)).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "die.h"
#include "outcome.h"
#include "pgconn.h"
#include "util.h"

/* How long one preflight query may take, in milliseconds. */
#define QUERY_WAIT_MS	30000
/* Seconds the file system's clock may lag the server's (fresh_since). */
#define FRESH_MARGIN	2

static const char synopsis[] =
    "usage: pgprobe [-F fd] -p [-Ss]\n"
    "       pgprobe [-F fd] [-r [-k] | -d dbname] query ...\n";

struct options {
	int		 replication;
	int		 clock;
	int		 preflight;
	int		 want_slot;	/* -S: the backup will ask for a slot */
	int		 strict;	/* -s: a warning is an error */
	const char	*dbname;
};

static void
usage(void)
{
	die_usage(synopsis);
}

static void
help(void)
{
	fputs(synopsis, stdout);
	printf("-p: the backup's preflight over a replication connection, its\n"
	    "findings as one JSON object; -S: a slot will be wanted; -s: a\n"
	    "warning is an error.  Otherwise connect and print the first field\n"
	    "of each query's result; -r makes it a replication connection, -k\n"
	    "prints the server's clock after them (seconds since the epoch; an\n"
	    "empty line if the server does not tell it).  -F fd gets the\n"
	    "outcome as one JSON line.  Exit statuses: the table in\n"
	    "plakar-pg(7).  See pgprobe(1).\n");
}

/* Errors the server sends during queries, on one line of ours. */
static void
notice(void *arg, const char *message)
{
	char line[512];

	(void)arg;
	pgconn_message(message, line, sizeof(line));
	fprintf(stderr, "pgprobe: server: %s\n", line);
}

/* A failed connection's outcome, as pgconn_explain tells it. */
static void __attribute__((noreturn))
connect_failed(int replication, enum pgconn_failure why, const char state[6],
    const char *msg)
{
	const char *sqlstate;
	char line[1400];
	enum outcome o;

	o = pgconn_explain(replication, why, state, msg, &sqlstate, line,
	    sizeof(line));
	status_exit(o, sqlstate, "%s", line);
}

static PGconn *
connect_or_fail(int replication, const char *dbname)
{
	enum pgconn_failure why;
	char state[6], msg[1024];
	PGconn *conn;

	conn = pgconn_open(replication, dbname, "pgprobe", &why, state, msg,
	    sizeof(msg));
	if (conn == NULL)
		connect_failed(replication, why, state, msg);
	PQsetNoticeProcessor(conn, notice, NULL);
	return conn;
}

/*
 * One query, its wait bounded: the first field of its first row into
 * value (NULL: the query failed, its line in msg).
 */
static char *
query(PGconn *conn, const char *sql, char *msg, size_t msglen)
{
	PGresult *res;
	char *value;
	int late;

	res = pgconn_exec(conn, sql, QUERY_WAIT_MS, &late);
	if (late) {
		snprintf(msg, msglen, "the server did not answer in %d s",
		    QUERY_WAIT_MS / 1000);
		return NULL;
	}
	if (PQresultStatus(res) != PGRES_TUPLES_OK &&
	    PQresultStatus(res) != PGRES_COMMAND_OK) {
		pgconn_result_line(res, msg, msglen);
		PQclear(res);
		return NULL;
	}
	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
	    PQnfields(res) > 0 && !PQgetisnull(res, 0, 0))
		value = one_line(PQgetvalue(res, 0, 0),
		    strlen(PQgetvalue(res, 0, 0)));
	else
		value = xstrdup("");
	PQclear(res);
	return value;
}

static char *
must_show(PGconn *conn, const char *setting)
{
	char sql[128], msg[1024];
	char *v;

	snprintf(sql, sizeof(sql), "SHOW %s", setting);
	if ((v = query(conn, sql, msg, sizeof(msg))) == NULL)
		status_exit(OUTCOME_QUERY_FAILED, NULL, "%s: %s", sql, msg);
	return v;
}

/* A warning, or with -s the end: outcome o. */
static void
warn_or_fail(const struct options *o, enum outcome out, const char *what)
{
	if (o->strict)
		status_exit(out, NULL, "%s (strict=on)", what);
	fprintf(stderr, "pgprobe: warning: %s\n", what);
}

/*
 * wal_level minimal comes with max_wal_senders = 0, which refuses every
 * replication connection as too many (53300): a plain connection, if
 * the role has one, tells which.
 */
static void
too_many_why(void)
{
	enum pgconn_failure why;
	char state[6], msg[1024];
	PGconn *conn;
	char *v;

	conn = pgconn_open(0, "postgres", "pgprobe", &why, state, msg,
	    sizeof(msg));
	if (conn == NULL)
		return;
	v = query(conn, "SHOW wal_level", msg, sizeof(msg));
	PQfinish(conn);
	if (v != NULL && strcmp(v, "minimal") == 0)
		status_exit(OUTCOME_WAL_LEVEL, NULL, "wal_level is minimal: "
		    "set wal_level = replica and max_wal_senders > 0 in "
		    "postgresql.conf and restart the server");
	free(v);
}

/*
 * In-place tablespaces (allow_in_place_tablespaces) are sent by no base
 * backup.  Over SQL, when the role may connect to the postgres database,
 * the catalog tells each tablespace; oids gets their OIDs for basetar -t.
 * A role limited to replication skips this: basetar and the setting
 * still catch what they can (plakar-pg(7)).
 */
static char *
catalog_tablespaces(void)
{
	enum pgconn_failure why;
	char state[6], msg[1024];
	PGconn *conn;
	char *in_place, *oids;

	conn = pgconn_open(0, "postgres", "pgprobe", &why, state, msg,
	    sizeof(msg));
	if (conn == NULL)
		return xstrdup("");
	in_place = query(conn, "SELECT string_agg(spcname, ', ') FROM "
	    "pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global') "
	    "AND pg_tablespace_location(oid) !~ '^/'", msg, sizeof(msg));
	oids = query(conn, "SELECT string_agg(oid::text, ',') FROM "
	    "pg_tablespace WHERE spcname NOT IN ('pg_default', 'pg_global')",
	    msg, sizeof(msg));
	PQfinish(conn);
	if (in_place != NULL && in_place[0] != '\0')
		status_exit(OUTCOME_IN_PLACE_TABLESPACE, NULL, "tablespace %s "
		    "is in place (allow_in_place_tablespaces): a base backup "
		    "would leave its files out; move its objects to a "
		    "tablespace with an absolute location", in_place);
	free(in_place);
	/* only digits and commas reach basetar's command line */
	if (oids == NULL || strspn(oids, "0123456789,") != strlen(oids)) {
		free(oids);
		return xstrdup("");
	}
	return oids;
}

/*
 * The preflight: the address, authentication, pg_hba's replication
 * line, REPLICATION and a free WAL sender by connecting; then the
 * version, wal_level, the slots, in-place tablespaces and the clock, all
 * over that connection but the catalog's tablespaces.  Its findings, for
 * the backup, as one JSON object on stdout.
 */
static void
preflight(const struct options *o)
{
	enum pgconn_failure why;
	char state[6], msg[1024];
	char *wal_level, *mode, *slots, *in_place, *oids;
	PGconn *conn;
	int64_t usec;
	int have_clock, version;

	conn = pgconn_open(1, NULL, "pgprobe", &why, state, msg, sizeof(msg));
	if (conn == NULL) {
		if (why == PGCONN_TOO_MANY)
			too_many_why();
		connect_failed(1, why, state, msg);
	}
	PQsetNoticeProcessor(conn, notice, NULL);
	version = PQserverVersion(conn);
	if (version < 130000)
		status_exit(OUTCOME_SERVER_TOO_OLD, NULL, "the server is "
		    "PostgreSQL %d: plakar-pg needs 13 or later (backup "
		    "manifests)", version / 10000);
	wal_level = must_show(conn, "wal_level");
	if (strcmp(wal_level, "minimal") == 0)
		status_exit(OUTCOME_WAL_LEVEL, NULL, "wal_level is minimal: "
		    "set wal_level = replica in postgresql.conf and restart "
		    "the server");
	mode = must_show(conn, "data_directory_mode");
	if (strspn(mode, "01234567") != strlen(mode) || strlen(mode) != 4)
		status_exit(OUTCOME_QUERY_FAILED, NULL, "data_directory_mode: "
		    "not a mode: %s", mode);
	slots = must_show(conn, "max_replication_slots");
	if (o->want_slot && strcmp(slots, "0") == 0)
		warn_or_fail(o, OUTCOME_SLOT_REFUSED, "the server has "
		    "max_replication_slots = 0: WAL cannot be held for the "
		    "backup, and a busy server may remove WAL the backup "
		    "needs");
	/* a server too old to know the setting has none in place */
	in_place = query(conn, "SHOW allow_in_place_tablespaces", msg,
	    sizeof(msg));
	if (in_place != NULL && strcmp(in_place, "on") == 0)
		status_exit(OUTCOME_IN_PLACE_TABLESPACE, NULL,
		    "allow_in_place_tablespaces is on: an in-place tablespace "
		    "would be left out of the backup; turn it off once none "
		    "is left");
	have_clock = pgconn_server_clock(conn, &usec, msg, sizeof(msg)) == 0;
	if (!have_clock)
		warn_or_fail(o, OUTCOME_CLOCK_UNKNOWN, "cannot read the "
		    "server's clock: every file is marked as changed, and "
		    "Plakar's cache will spare no read");
	PQfinish(conn);
	oids = catalog_tablespaces();
	printf("{\"server_version_num\":%d,\"data_directory_mode\":\"%s\","
	    "\"max_replication_slots\":%d,\"clock\":", version, mode,
	    atoi(slots));
	/*
	 * Files modified since fresh_since may change again within the
	 * second their tar header names: tarsplit -f marks them, so that
	 * Plakar's cache never reuses an earlier copy of one.  The server's
	 * clock, whose time the files carry, read before the backup starts
	 * (earlier only marks more), less a margin for the file system's
	 * coarser clock; unknown, 0 marks every file.
	 */
	if (have_clock)
		printf("%lld,\"fresh_since\":%lld",
		    (long long)(usec / 1000000),
		    (long long)(usec / 1000000) - FRESH_MARGIN);
	else
		printf("null,\"fresh_since\":0");
	printf(",\"tablespaces\":\"%s\"}\n", oids);
	free(wal_level);
	free(mode);
	free(slots);
	free(in_place);
	free(oids);
}

/* Each query's first field, one line each; the clock after them (-k). */
static void
queries(const struct options *o, int argc, char *argv[])
{
	char msg[1024];
	PGconn *conn;
	int i;

	conn = connect_or_fail(o->replication, o->dbname);
	for (i = 0; i < argc; i++) {
		char *v = query(conn, argv[i], msg, sizeof(msg));

		if (v == NULL)
			status_exit(OUTCOME_QUERY_FAILED, NULL, "query %d "
			    "failed: %s", i + 1, msg);
		printf("%s\n", v);
		free(v);
	}
	if (o->clock) {
		int64_t usec;

		/* unknown is an answer: an empty line */
		if (pgconn_server_clock(conn, &usec, msg, sizeof(msg)) == -1) {
			fprintf(stderr, "pgprobe: warning: the server's clock: "
			    "%s\n", msg);
			printf("\n");
		} else
			printf("%lld\n", (long long)(usec / 1000000));
	}
	PQfinish(conn);
}

int
main(int argc, char *argv[])
{
	struct options o;
	int ch;

	memset(&o, 0, sizeof(o));
	status_start("pgprobe", NULL);
	if (status_answer(argc, argv, help))
		return 0;
	while ((ch = getopt(argc, argv, "F:Sd:kprs")) != -1) {
		switch (ch) {
		case 'F':
			status_start("pgprobe", optarg);
			break;
		case 'S':
			o.want_slot = 1;
			break;
		case 'd':
			o.dbname = optarg;
			break;
		case 'k':
			o.clock = 1;
			break;
		case 'p':
			o.preflight = 1;
			break;
		case 'r':
			o.replication = 1;
			break;
		case 's':
			o.strict = 1;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;

	if ((o.replication && o.dbname != NULL) || (o.clock && !o.replication))
		usage();
	if (o.preflight && (argc > 0 || o.replication || o.dbname || o.clock))
		usage();
	if (!o.preflight && (o.want_slot || o.strict))
		usage();
	if (o.preflight)
		preflight(&o);
	else
		queries(&o, argc, argv);
	if (fflush(stdout) == EOF || ferror(stdout))
		status_err(OUTCOME_QUERY_FAILED, "stdout");
	status_ok();
	return 0;
}
