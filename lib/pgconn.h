/*
 * A libpq connection whose failure is classified by what the server and
 * libpq say in codes, not in words: the server's words follow its
 * lc_messages, libpq's the client's locale.
 */
#ifndef PLAKAR_PG_PGCONN_H
#define PLAKAR_PG_PGCONN_H

#include <stdint.h>

#include <libpq-fe.h>

#include "outcome.h"

/* Why a connection failed. */
enum pgconn_failure {
	PGCONN_OK = 0,
	PGCONN_NO_PASSWORD,	/* the server wants a password, none given */
	PGCONN_AUTH,		/* 28P01: authentication failed */
	PGCONN_REFUSED,		/* 28000: pg_hba.conf, or peer/ident */
	PGCONN_PRIVILEGE,	/* 42501: no REPLICATION privilege */
	PGCONN_TOO_MANY,	/* 53300: no free connection or WAL sender */
	PGCONN_OTHER		/* unreachable, or any other reason */
};

/*
 * Connect with the libpq environment (PG* variables); with replication
 * set, as a physical replication connection; to dbname if not NULL.  On failure NULL, *why and
 * the SQLSTATE (or "") in state[6], and one safe line in msg.
 */
PGconn	*pgconn_open(int replication, const char *dbname, const char *appname,
	    enum pgconn_failure *why, char state[6], char *msg, size_t msglen);

/*
 * A failed pgconn_open as its outcome (lib/outcomes), returned: into out
 * one line naming the role and what to do, into *sqlstate the SQLSTATE
 * its status line carries (or NULL).  replication: the connection was
 * one, so 42501 is REPLICATION.
 */
enum outcome pgconn_explain(int replication, enum pgconn_failure,
	    const char state[6], const char *msg, const char **sqlstate,
	    char *out, size_t outlen);

/*
 * The server's clock, in µs since the Unix epoch, over a replication
 * connection and without SQL (a keepalive's send time); 0, or -1 with
 * one line in msg.  Waits 10 s at most.
 */
int	 pgconn_server_clock(PGconn *, int64_t *, char *, size_t);

/*
 * A failed result as one safe line: its primary message and, when the
 * server gave one, "(SQLSTATE XXXXX)"; "the connection was lost" when
 * there is no message.  res may be NULL.
 */
void	 pgconn_result_line(const PGresult *, char *, size_t);

/*
 * A command whose results are waited for at most ms milliseconds in all:
 * its last result, or the one that begins a COPY; NULL when the
 * connection broke, or with *timed_out set when the time ran out (the
 * connection is then of no more use).
 */
PGresult *pgconn_exec(PGconn *, const char *, long ms, int *timed_out);

/*
 * Wait at most ms milliseconds (negative: no limit) for the server to
 * send something: 1 when it did, 0 when the time ran out, -1 on error.
 */
int	 pgconn_wait(PGconn *, long);

/* The SQLSTATE in a verbose libpq message ("FATAL:  28P01: ..."), or "". */
void	 pgconn_sqlstate(const char *, char state[6]);

/* One line of a libpq or server message, without SQLSTATE or severity. */
void	 pgconn_message(const char *, char *, size_t);

#endif
