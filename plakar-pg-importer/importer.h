/*
 * The Importer service (Plakar's importer.Importer): Init, Ping, Import,
 * Open, Close, on top of grpcserver; the backup itself is plakar-pg's,
 * run as a child, its record frames turned into Plakar records.
 */
#ifndef PLAKAR_PG_IMPORTER_H
#define PLAKAR_PG_IMPORTER_H

#include <stddef.h>

#include "grpcserver.h"

struct importer;

extern const struct grpc_method importer_methods[];
extern const size_t importer_nmethods;
extern const struct grpc_hooks importer_hooks;

/* wrapper: the plakar-pg to run. */
struct importer *importer_new(const char *);
/* Is an Import under way (begun, neither finished nor failed)? */
int	 importer_busy(const struct importer *);
/* Stops what runs, forgets the options (they hold secrets), frees. */
void	 importer_free(struct importer *);

/* A wrapper's exit status as the gRPC status Plakar is to show. */
int	 importer_status_code(int);

#endif
