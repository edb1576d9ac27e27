#ifndef LIGHTSAIL_CPOSTGRES_SHIM_H
#define LIGHTSAIL_CPOSTGRES_SHIM_H
#include <libpq-fe.h>
/* PQresultErrorField takes the PG_DIAG_* codes as plain characters ('C' SQLSTATE, 'M' message,
   'D' detail, 'H' hint, 'n' constraint); Swift calls it directly. */
#endif
