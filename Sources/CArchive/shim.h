#ifndef LIGHTSAIL_CARCHIVE_SHIM_H
#define LIGHTSAIL_CARCHIVE_SHIM_H
#include <archive.h>
#include <archive_entry.h>

/* AE_IFREG is a cast macro ((__LA_MODE_T)0100000) that Swift does not import. */
static inline unsigned int lightsail_archive_regular_file_type(void) { return (unsigned int)AE_IFREG; }
#endif
