/*
 * pgprobe: connect as the libpq environment says, run each query given,
 * print the first field of each; say why a connection failed by its exit
 * status, read from SQLSTATEs and libpq rather than from words.
 */
#include <err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "pgconn.h"
#include "util.h"

/* Exit statuses: pgprobe(1). */
#define EXIT_USAGE	1
#define EXIT_QUERY	8

static const int failure_status[] = {
	[PGCONN_OK] = 0,
	[PGCONN_NO_PASSWORD] = 2,
	[PGCONN_AUTH] = 3,
	[PGCONN_REFUSED] = 4,
	[PGCONN_PRIVILEGE] = 5,
	[PGCONN_TOO_MANY] = 6,
	[PGCONN_OTHER] = 7,
};

static const char synopsis[] = "usage: pgprobe [-r [-k] | -d dbname] query ...\n";

static void
usage(void)
{
	fputs(synopsis, stderr);
	exit(EXIT_USAGE);
}

static void
help(void)
{
	fputs(synopsis, stdout);
	printf("Connect with the libpq environment and print the first field of\n"
	    "each query's result; -r makes it a replication connection, -k\n"
	    "prints the server's clock after them (seconds since the epoch;\n"
	    "an empty line if the server does not tell it).\n"
	    "Exit: 0 ok, 2 no password supplied, 3 authentication failed,\n"
	    "4 refused by pg_hba.conf, 5 no privilege, 6 too many connections,\n"
	    "7 cannot connect, 8 a query failed.  See pgprobe(1).\n");
	exit(0);
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

int
main(int argc, char *argv[])
{
	enum pgconn_failure why;
	char state[6], msg[1024];
	PGconn *conn;
	const char *dbname = NULL;
	int ch, i, replication = 0, clock = 0;

	if (argc == 2 && strcmp(argv[1], "--help") == 0)
		help();
	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		printf("pgprobe (plakar-pg) %s\n", VERSION);
		return 0;
	}
	while ((ch = getopt(argc, argv, "d:kr")) != -1) {
		switch (ch) {
		case 'd':
			dbname = optarg;
			break;
		case 'k':
			clock = 1;
			break;
		case 'r':
			replication = 1;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;

	if ((replication && dbname != NULL) || (clock && !replication))
		usage();
	conn = pgconn_open(replication, dbname, "pgprobe", &why, state, msg,
	    sizeof(msg));
	if (conn == NULL) {
		if (why == PGCONN_NO_PASSWORD)
			fprintf(stderr, "pgprobe: no password supplied\n");
		else if (state[0] != '\0')
			fprintf(stderr, "pgprobe: %s (SQLSTATE %s)\n", msg, state);
		else
			fprintf(stderr, "pgprobe: %s\n", msg);
		return failure_status[why];
	}
	PQsetNoticeProcessor(conn, notice, NULL);
	PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
	for (i = 0; i < argc; i++) {
		PGresult *res = PQexec(conn, argv[i]);
		ExecStatusType st = PQresultStatus(res);

		if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
			const char *code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
			const char *primary = PQresultErrorField(res,
			    PG_DIAG_MESSAGE_PRIMARY);

			pgconn_message(primary != NULL ? primary :
			    PQresultErrorMessage(res), msg, sizeof(msg));
			fprintf(stderr, "pgprobe: query %d failed: %s%s%s%s\n",
			    i + 1, msg, code ? " (SQLSTATE " : "",
			    code ? code : "", code ? ")" : "");
			PQclear(res);
			PQfinish(conn);
			return EXIT_QUERY;
		}
		if (st == PGRES_TUPLES_OK && PQntuples(res) > 0 &&
		    PQnfields(res) > 0) {
			const char *v = PQgetvalue(res, 0, 0);
			char *line = one_line(v, strlen(v));

			printf("%s\n", line);
			free(line);
		} else
			printf("\n");
		PQclear(res);
	}
	if (clock) {
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
	if (fflush(stdout) == EOF || ferror(stdout))
		err(EXIT_QUERY, "stdout");
	return 0;
}
