#ifndef LIGHTSAIL_CSYSTEM_SHIM_H
#define LIGHTSAIL_CSYSTEM_SHIM_H
/* The few glibc calls Swift's Glibc module does not import (they sit behind _GNU_SOURCE or in
   <malloc.h>): declared here as glibc declares them, wrapped with a prefixed name. */
int syncfs(int fd);
int mallopt(int param, int value);
int malloc_trim(unsigned long pad);

/* Flushes the whole file system holding fd: one call for a batch of files. */
static inline int lightsail_syncfs(int fd) { return syncfs(fd); }

/* Big buffers (evidence bodies, recording lines) come from mmap and go back to the system when
   freed, instead of growing the heap: glibc otherwise raises its mmap threshold after the first
   free of a big block, and keeps per-thread arenas at their high-water mark. M_MMAP_THRESHOLD is
   -3 and M_ARENA_MAX -8 in <malloc.h>. */
static inline void lightsail_tune_malloc(int mmap_threshold, int arenas) {
    mallopt(-3, mmap_threshold);
    mallopt(-8, arenas);
}

static inline int lightsail_malloc_trim(void) { return malloc_trim(0); }
#endif
