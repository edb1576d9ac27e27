#ifndef LIGHTSAIL_CPOSTGRES_SHIM_H
#define LIGHTSAIL_CPOSTGRES_SHIM_H
#include <libpq-fe.h>

/* PG_DIAG_* are character macros: typed accessors Swift can call. */
static inline const char *lightsail_pq_sqlstate(const PGresult *res) { return PQresultErrorField(res, 'C'); }
static inline const char *lightsail_pq_primary_message(const PGresult *res) { return PQresultErrorField(res, 'M'); }
static inline const char *lightsail_pq_detail(const PGresult *res) { return PQresultErrorField(res, 'D'); }
#endif
