#ifndef LIGHTSAIL_CPOSTGRES_SHIM_H
#define LIGHTSAIL_CPOSTGRES_SHIM_H
#include <libpq-fe.h>
#endif
