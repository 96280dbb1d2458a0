/*
 * basetar: a base backup of the server the libpq environment names, run
 * over the replication protocol, as one tar on stdout: the data directory,
 * every tablespace under pg_tblspc/OID/, the WAL the backup needs, and
 * backup_manifest last.
 */
#include <sys/random.h>

#include <err.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "archmerge.h"
#include "options.h"
#include "die.h"
#include "outcome.h"
#include "pgconn.h"
#include "util.h"

#define PIPE_SIZE	(1024 * 1024)
#define SILENCE_DEFAULT	600	/* seconds: -T */

struct options {
	const char	*checkpoint;	/* fast, spread */
	const char	*label;
	const char	*wal;		/* fetch, none */
	const char	*checksums;	/* manifest checksum algorithm */
	long		 max_rate;	/* kB/s, 0 for none */
	int		 progress;
	const char	*expected;	/* -t: OIDs pg_tablespace lists */
	int		 hold_wal;	/* -S: a temporary slot keeps the WAL */
	int		 strict;	/* -s: a warning is an error */
	long		 silence;	/* -T: seconds the server may say nothing */
};

struct backup {
	PGconn		*conn;
	int		 wal_held;	/* a slot keeps the WAL (-S, made) */
	int		 fetch;		/* -X fetch: the WAL is sent */
	long		 silence;	/* -T, in seconds; 0: no limit */
	long		 first_wait;	/* seconds for the first result */
	int		 server;	/* PQserverVersion */
	struct tablespace *ts;
	size_t		 nts;
	struct merge	*merge;
	int64_t		 total_kb;	/* -1 unknown */
	time_t		 last_progress;
};

static const char synopsis[] =
    "usage: basetar [-PSs] [-c fast|spread] [-F fd] [-l label] [-m algorithm]\n"
    "               [-r rate] [-T seconds] [-t oid,...] [-X fetch|none]\n";

static void
usage(void)
{
	die_usage(synopsis);
}

static void
help(void)
{
	fputs(synopsis, stdout);
	fputs("A base backup of the server the libpq environment names, as one\n"
	    "tar on stdout: the data directory, each tablespace under\n"
	    "pg_tblspc/OID/, the WAL it needs, and backup_manifest last.\n"
	    "-S holds the WAL with a temporary slot; -s fails on a warning;\n"
	    "-F fd gets the outcome as one JSON line.  Exit statuses: the\n"
	    "table in plakar-pg(7).  See basetar(1).\n", stdout);
}

/* A string as a literal of the replication grammar: quotes doubled. */
static char *
literal(const char *s)
{
	size_t n = 3, i;
	char *out, *p;

	for (i = 0; s[i] != '\0'; i++)
		n += s[i] == '\'' ? 2 : 1;
	p = out = xmalloc(n);
	*p++ = '\'';
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] == '\'')
			*p++ = '\'';
		*p++ = s[i];
	}
	*p++ = '\'';
	*p = '\0';
	return out;
}

/* BASE_BACKUP in the server's own syntax: parenthesized from 15 on. */
static char *
base_backup_command(const struct options *o, int server)
{
	char *label = literal(o->label), *sums = literal(o->checksums);
	char rate[64] = "";
	char *cmd;
	int fast = strcmp(o->checkpoint, "fast") == 0;
	int wal = strcmp(o->wal, "fetch") == 0;
	size_t n;

	n = strlen(label) + strlen(sums) + 256;
	cmd = xmalloc(n);
	if (server >= 150000) {
		if (o->max_rate > 0)
			snprintf(rate, sizeof(rate), ", MAX_RATE %ld", o->max_rate);
		snprintf(cmd, n, "BASE_BACKUP (LABEL %s, PROGRESS, CHECKPOINT "
		    "'%s', WAIT 0%s, TABLESPACE_MAP, MANIFEST 'yes', "
		    "MANIFEST_CHECKSUMS %s%s, TARGET 'client')", label,
		    fast ? "fast" : "spread", wal ? ", WAL" : "", sums, rate);
	} else {
		if (o->max_rate > 0)
			snprintf(rate, sizeof(rate), " MAX_RATE %ld", o->max_rate);
		snprintf(cmd, n, "BASE_BACKUP LABEL %s PROGRESS%s%s NOWAIT%s "
		    "TABLESPACE_MAP MANIFEST 'yes' MANIFEST_CHECKSUMS %s",
		    label, fast ? " FAST" : "", wal ? " WAL" : "", rate, sums);
	}
	free(label);
	free(sums);
	return cmd;
}

/*
 * A failed result: one line with the SQLSTATE; a page checksum failure
 * (XX001, data corrupted) has its own exit status.  A WAL segment the
 * server removed before it could send it has no SQLSTATE of its own
 * (XX000 or 58P01): it is told by where the backup failed, past the data
 * directory's last file, while the server sends the WAL that no slot
 * held.
 */
static void
server_failed(const struct backup *b, PGresult *res, const char *what)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
	const char *primary = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
	char msg[1024];

	if (state != NULL && strcmp(state, "XX001") == 0) {
		pgconn_message(primary != NULL ? primary :
		    PQresultErrorMessage(res), msg, sizeof(msg));
		status_exit(OUTCOME_CHECKSUM, "XX001", "page checksum failure "
		    "(SQLSTATE XX001): %s", msg);
	}
	pgconn_result_line(res, msg, sizeof(msg));
	if (b->fetch && !b->wal_held && merge_past_control(b->merge))
		status_exit(OUTCOME_WAL_REMOVED, state, "the server removed "
		    "WAL the backup needed before it could send it: raise "
		    "wal_keep_size, or hold the WAL with a slot (-S): %s", msg);
	status_exit(OUTCOME_BACKUP_FAILED, state, "%s: %s", what, msg);
}

static void
progress(struct backup *b, int last)
{
	time_t now = time(NULL);
	uint64_t kb = merge_received(b->merge) / 1024;

	if (!last && now == b->last_progress)
		return;
	b->last_progress = now;
	if (b->total_kb > 0)
		fprintf(stderr, "basetar: %llu of %lld kB (%d%%)%s",
		    (unsigned long long)kb, (long long)b->total_kb,
		    (int)(kb * 100 / (uint64_t)b->total_kb > 100 ? 100 :
		    kb * 100 / (uint64_t)b->total_kb), last ? "\n" : "\r");
	else
		fprintf(stderr, "basetar: %llu kB%s", (unsigned long long)kb,
		    last ? "\n" : "\r");
}

/* The tablespace list: one row per archive, the data directory last. */
static void
read_tablespaces(struct backup *b, PGresult *res)
{
	size_t i;
	int base = 0;

	if (PQnfields(res) < 3 || PQntuples(res) < 1)
		status_exit(OUTCOME_BACKUP_FAILED, NULL, "the server's tablespace list is malformed");
	b->nts = (size_t)PQntuples(res);
	b->ts = xmalloc(b->nts * sizeof(*b->ts));
	b->total_kb = 0;
	for (i = 0; i < b->nts; i++) {
		struct tablespace *t = &b->ts[i];
		int row = (int)i;

		t->oid = PQgetisnull(res, row, 0) ? NULL :
		    xstrdup(PQgetvalue(res, row, 0));
		t->location = PQgetisnull(res, row, 1) ? NULL :
		    xstrdup(PQgetvalue(res, row, 1));
		t->size = PQgetisnull(res, row, 2) ? -1 :
		    strtoll(PQgetvalue(res, row, 2), NULL, 10);
		if (t->size >= 0 && b->total_kb >= 0)
			b->total_kb += t->size;
		else
			b->total_kb = -1;
		if (t->oid == NULL) {
			base++;
			continue;
		}
		if (strspn(t->oid, "0123456789") != strlen(t->oid) ||
		    t->oid[0] == '\0')
			status_exit(OUTCOME_BACKUP_FAILED, NULL, "the server's tablespace list is malformed");
		/* allow_in_place_tablespaces: its files are not sent apart */
		if (t->location == NULL || t->location[0] != '/')
			status_exit(OUTCOME_IN_PLACE_TABLESPACE, NULL,
			    "tablespace %s is in place (location "
			    "\"%s\"): its files cannot be backed up as a "
			    "tablespace; move it with ALTER TABLE ... SET "
			    "TABLESPACE", t->oid, t->location ? t->location : "");
	}
	if (base != 1 || b->ts[b->nts - 1].oid != NULL)
		status_exit(OUTCOME_BACKUP_FAILED, NULL, "the server's tablespace list is malformed");
}

/*
 * Each tablespace the catalog lists (-t) must be in the server's list:
 * an in-place one is in neither the list nor the archive, and only the
 * catalog, over SQL, tells it exists.
 */
static void
check_expected(const struct backup *b, const char *expected)
{
	char *copy, *oid, *last;
	size_t i;

	if (expected == NULL)
		return;
	copy = xstrdup(expected);
	for (oid = strtok_r(copy, ",", &last); oid != NULL;
	    oid = strtok_r(NULL, ",", &last)) {
		for (i = 0; i < b->nts; i++)
			if (b->ts[i].oid != NULL && strcmp(b->ts[i].oid, oid) == 0)
				break;
		if (i == b->nts)
			status_exit(OUTCOME_IN_PLACE_TABLESPACE, NULL,
			    "tablespace %s is not in the server's "
			    "base backup: an in-place tablespace, whose files "
			    "would be left out", oid);
	}
	free(copy);
}

/*
 * Wait until libpq has what it needs for the next result or CopyData,
 * at most seconds (0: no limit).  Only time spent waiting to read
 * counts: while its output is full, basetar is blocked in write(2), not
 * here, so a slow reader is not a silent server.
 */
static void
await_server(struct backup *b, long seconds, const char *what)
{
	int r = pgconn_wait(b->conn, seconds > 0 ? seconds * 1000 : -1);

	if (r == -1)
		status_err(OUTCOME_BACKUP_FAILED, "poll");
	if (r == 0)
		status_exit(OUTCOME_SILENCE, NULL, "the server sent nothing "
		    "for %ld s %s "
		    "(-T): the backup is stopped", seconds, what);
}

/* The next CopyData, waiting at most -T seconds for it. */
static int
next_copydata(struct backup *b, char **data)
{
	int n;

	while ((n = PQgetCopyData(b->conn, data, 1)) == 0) {
		await_server(b, b->silence, "while sending the backup");
		if (!PQconsumeInput(b->conn))
			return -2;
	}
	return n;
}

/* The next result, the wait bounded: the first one by the checkpoint. */
static PGresult *
next_result(struct backup *b, int first)
{
	while (PQisBusy(b->conn)) {
		if (first)
			await_server(b, b->first_wait, "for the start checkpoint");
		else
			await_server(b, b->silence, "while sending the backup");
		if (!PQconsumeInput(b->conn))
			break;
	}
	return PQgetResult(b->conn);
}

/*
 * A command with one result, waited for at most -T seconds; NULL (the
 * caller says what failed) when the connection broke.
 */
static PGresult *
command(struct backup *b, const char *cmd)
{
	PGresult *res, *last = NULL;

	if (!PQsendQuery(b->conn, cmd))
		return NULL;
	while ((res = next_result(b, 0)) != NULL) {
		PQclear(last);
		last = res;
	}
	return last;
}

/* The merge refused the server's archives: an in-place tablespace, or worse. */
static void __attribute__((noreturn))
merge_failed(const struct backup *b, const char *err)
{
	status_exit(merge_in_place(b->merge) ? OUTCOME_IN_PLACE_TABLESPACE :
	    OUTCOME_BACKUP_FAILED, NULL, "%s", err);
}

/* One COPY's data, into the merge: framed (15 on) or plain (up to 14). */
static void
read_copy(struct backup *b, const struct options *o, int framed)
{
	char err[512];
	char *data;
	int n;

	while ((n = next_copydata(b, &data)) > 0) {
		int r = framed ?
		    merge_copydata(b->merge, (unsigned char *)data, (size_t)n,
		    err, sizeof(err)) :
		    merge_data(b->merge, (unsigned char *)data, (size_t)n, err,
		    sizeof(err));

		PQfreemem(data);
		if (r == -1)
			merge_failed(b, err);
		if (o->progress)
			progress(b, 0);
	}
	if (n == -2) {
		char msg[1024];

		pgconn_message(PQerrorMessage(b->conn), msg, sizeof(msg));
		status_exit(OUTCOME_BACKUP_FAILED, NULL, "the base backup broke off: %s", msg);
	}
}

/*
 * The results of BASE_BACKUP in order: the start position, the
 * tablespace list, the archives (one COPY, or one COPY each and one for
 * the manifest), the end position, the command's completion.
 */
static void
run_backup(struct backup *b, const struct options *o)
{
	PGresult *res;
	char *cmd, err[512];
	int tuples = 0, copies = 0, complete = 0;

	cmd = base_backup_command(o, b->server);
	if (!PQsendQuery(b->conn, cmd)) {
		pgconn_message(PQerrorMessage(b->conn), err, sizeof(err));
		status_exit(OUTCOME_BACKUP_FAILED, NULL, "cannot start the base backup: %s", err);
	}
	free(cmd);
	while ((res = next_result(b, tuples == 0)) != NULL) {
		switch (PQresultStatus(res)) {
		case PGRES_TUPLES_OK:
			tuples++;
			if (tuples == 2) {
				read_tablespaces(b, res);
				check_expected(b, o->expected);
				b->merge = merge_new(STDOUT_FILENO, b->ts, b->nts);
			} else if (tuples > 3)
				status_exit(OUTCOME_BACKUP_FAILED, NULL, "the server sent more results "
				    "than a base backup has");
			break;
		case PGRES_COPY_OUT:
			if (tuples != 2)
				status_exit(OUTCOME_BACKUP_FAILED, NULL, "the server sent data before "
				    "its tablespace list");
			if (b->server >= 150000)
				read_copy(b, o, 1);
			else {
				int r = (size_t)copies < b->nts ?
				    merge_archive(b->merge, err, sizeof(err)) :
				    merge_manifest(b->merge, err, sizeof(err));

				if (r == -1)
					merge_failed(b, err);
				read_copy(b, o, 0);
			}
			copies++;
			break;
		case PGRES_COMMAND_OK:
			complete = 1;
			break;
		default:
			server_failed(b, res, tuples < 1 ?
			    "the server refused the base backup" :
			    "the base backup failed");
		}
		PQclear(res);
	}
	if (!complete || tuples != 3) {
		pgconn_message(PQerrorMessage(b->conn), err, sizeof(err));
		status_exit(OUTCOME_BACKUP_FAILED, NULL, "the base backup ended early%s%s",
		    err[0] ? ": " : "", err);
	}
	if (o->progress)
		progress(b, 1);
	if (merge_finish(b->merge, err, sizeof(err)) == -1)
		status_exit(OUTCOME_BACKUP_FAILED, NULL, "%s", err);
}

/*
 * A temporary physical slot, made on this connection before BASE_BACKUP
 * runs on it: from now until the connection ends, however it ends, the
 * server keeps every WAL segment the backup needs.  It needs no SQL and
 * no second WAL sender, and the connection is never idle.  A server
 * that refuses it (every slot in use, or max_replication_slots = 0: both
 * 53400 over the replication protocol) gets a warning, or with -s the
 * backup fails.
 */
static void
hold_wal(struct backup *b, int strict)
{
	unsigned char r[6];
	char cmd[160], name[64], msg[600], code[6];
	const char *state;
	PGresult *res;

	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		status_exit(OUTCOME_BACKUP_FAILED, NULL, "getrandom failed");
	/* unique across hosts and PID namespaces backing up one cluster */
	snprintf(name, sizeof(name), "plakar_pg_%ld_%02x%02x%02x%02x%02x%02x",
	    (long)getpid(), r[0], r[1], r[2], r[3], r[4], r[5]);
	snprintf(cmd, sizeof(cmd), b->server >= 150000 ?
	    "CREATE_REPLICATION_SLOT %s TEMPORARY PHYSICAL (RESERVE_WAL)" :
	    "CREATE_REPLICATION_SLOT %s TEMPORARY PHYSICAL RESERVE_WAL", name);
	res = command(b, cmd);
	if (PQresultStatus(res) == PGRES_TUPLES_OK) {
		PQclear(res);
		b->wal_held = 1;
		return;
	}
	pgconn_result_line(res, msg, sizeof(msg));
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	snprintf(code, sizeof(code), "%s", state != NULL ? state : "");
	PQclear(res);
	if (strict)
		status_exit(OUTCOME_SLOT_REFUSED, code, "cannot hold the WAL for "
		    "the backup: %s", msg);
	warnx("warning: WAL is not held for the backup: %s; a busy server "
	    "may remove WAL the backup needs", msg);
}

/* Server notices (a checksum failure's file, WAL waits), one safe line. */
static void
notice(void *arg, const char *message)
{
	char line[1024];

	(void)arg;
	pgconn_message(message, line, sizeof(line));
	fprintf(stderr, "basetar: server: %s\n", line);
}

/*
 * checkpoint_timeout, as SHOW prints it ("5min", "300s", "1h"), in
 * seconds; -1 if it cannot be read.
 */
static long
checkpoint_timeout(struct backup *b)
{
	static const struct { const char *unit; long mult; } units[] = {
		{ "ms", 0 }, { "s", 1 }, { "min", 60 }, { "h", 3600 },
		{ "d", 86400 },
	};
	PGresult *res = command(b, "SHOW checkpoint_timeout");
	long v = -1;
	char *end;
	size_t i;

	if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
		v = strtol(PQgetvalue(res, 0, 0), &end, 10);
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (strcmp(end, units[i].unit) == 0)
				break;
		v = i < sizeof(units) / sizeof(units[0]) && v >= 0 ?
		    (units[i].mult > 0 ? v * units[i].mult : v / 1000 + 1) : -1;
	}
	PQclear(res);
	return v;
}

/*
 * optarg checked as the option table's key would take it
 * (share/options): the same check as plakar-pg options and plakar
 * source check make.  Its row, for option_number.
 */
static const struct option_def *
table_check(int flag, const char *key, const char *v)
{
	const struct option_def *d = option_find(key, strlen(key));
	char why[512];

	if (option_check(d, v, why, sizeof(why)) == -1)
		status_exit(OUTCOME_USAGE, NULL, "-%c (%s): %s", flag, key, why);
	return d;
}

int
main(int argc, char *argv[])
{
	struct options o = { "fast", "basetar base backup", "fetch", "CRC32C",
	    0, 0, NULL, 0, 0, SILENCE_DEFAULT };
	struct backup b;
	enum pgconn_failure why;
	enum outcome failed;
	const char *sqlstate;
	char state[6], msg[1024], line[1400];
	int ch;

	status_start("basetar", NULL);
	if (status_answer(argc, argv, help))
		return 0;
	while ((ch = getopt(argc, argv, "F:PST:c:l:m:r:st:X:")) != -1) {
		switch (ch) {
		case 'F':
			status_start("basetar", optarg);
			break;
		case 'P':
			o.progress = 1;
			break;
		case 'S':
			o.hold_wal = 1;
			break;
		case 'T':
			o.silence = option_number(table_check('T',
			    "silence_timeout", optarg), optarg);
			break;
		case 's':
			o.strict = 1;
			break;
		case 'c':
			table_check('c', "checkpoint", optarg);
			o.checkpoint = optarg;
			break;
		case 'l':
			table_check('l', "label", optarg);
			o.label = optarg;
			break;
		case 'm':
			if (strcasecmp(optarg, "NONE") != 0 &&
			    strcasecmp(optarg, "CRC32C") != 0 &&
			    strcasecmp(optarg, "SHA224") != 0 &&
			    strcasecmp(optarg, "SHA256") != 0 &&
			    strcasecmp(optarg, "SHA384") != 0 &&
			    strcasecmp(optarg, "SHA512") != 0)
				status_exit(OUTCOME_USAGE, NULL, "-m: NONE, CRC32C, SHA224, "
				    "SHA256, SHA384 or SHA512");
			o.checksums = optarg;
			break;
		case 'r':
			o.max_rate = option_number(table_check('r', "max_rate",
			    optarg), optarg);
			break;
		case 't':
			if (strspn(optarg, "0123456789,") != strlen(optarg))
				status_exit(OUTCOME_USAGE, NULL, "-t: tablespace OIDs, comma-separated");
			o.expected = optarg;
			break;
		case 'X':
			table_check('X', "wal_method", optarg);
			o.wal = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind != argc)
		usage();
	if (isatty(STDOUT_FILENO))
		status_exit(OUTCOME_USAGE, NULL, "stdout is a terminal: send the tar to a "
		    "file or a pipe");
	/* fewer, larger writes when stdout is a pipe */
	(void)fcntl(STDOUT_FILENO, F_SETPIPE_SZ, PIPE_SIZE);

	memset(&b, 0, sizeof(b));
	b.conn = pgconn_open(1, NULL, "basetar", &why, state, msg, sizeof(msg));
	if (b.conn == NULL) {
		failed = pgconn_explain(1, why, state, msg, &sqlstate, line,
		    sizeof(line));
		status_exit(failed, sqlstate, "%s", line);
	}
	PQsetNoticeProcessor(b.conn, notice, NULL);
	PQsetErrorVerbosity(b.conn, PQERRORS_DEFAULT);
	b.server = PQserverVersion(b.conn);
	if (b.server < 130000)
		status_exit(OUTCOME_SERVER_TOO_OLD, NULL, "the server is "
		    "PostgreSQL %d: backup "
		    "manifests need 13 or later", b.server / 10000);
	b.fetch = strcmp(o.wal, "fetch") == 0;
	/*
	 * The first result waits for the start checkpoint: a spread one may
	 * take a whole checkpoint_timeout, on top of the silence allowed.
	 */
	b.silence = o.silence;
	b.first_wait = o.silence;
	if (o.silence > 0 && strcmp(o.checkpoint, "spread") == 0) {
		long ct = checkpoint_timeout(&b);

		b.first_wait = ct >= 0 ? o.silence + ct : 0;
	}
	if (o.hold_wal)
		hold_wal(&b, o.strict);
	run_backup(&b, &o);
	PQfinish(b.conn);
	merge_free(b.merge);
	status_ok();
	return 0;
}
