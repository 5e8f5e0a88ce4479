/*
 * FEX's memory regions, from /proc/<pid>/smaps.
 *
 * FEX names its anonymous mappings (prctl PR_SET_VMA_ANON_NAME), so they show
 * as "[anon:NAME]"; memfd-backed mappings show as "/memfd:NAME (deleted)".
 * Both are recognised. Known names: FEXMem, FEXMemJIT, FEXMem_OpDispatcher,
 * FEXMem_Frontend, FEXMem_CPUBackend, FEXMem_Lookup, FEXMem_Lookup_L1,
 * FEXMem_ThreadState, FEXMem_BlockLinks, FEXMem_CallRetStacks, FEXMem_Misc,
 * FEXAllocator and JEMalloc (older FEX). Any other FEXMem* name is reported
 * under its own name. Lines and units the parser does not know are skipped.
 *
 * A felix_mem is reusable: it reads through one buffer and allocates only
 * when a region name it has not seen before appears. One object, one thread.
 */
#ifndef FELIX_MEM_H
#define FELIX_MEM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/** At most this many distinct region names are kept; further unknown names
 *  are added up under "FEXMem_other". */
#define FELIX_MEM_MAX_REGIONS 64

/** One region: every mapping with the same FEX name. Owned by the felix_mem. */
typedef struct felix_region {
    char name[48];        /**< e.g. "FEXMemJIT" */
    uint64_t rss;         /**< resident bytes */
    uint64_t size;        /**< mapped bytes */
    uint32_t mappings;    /**< mappings with this name */
    uint64_t largest_rss; /**< resident bytes of its largest mapping */
} felix_region;

typedef struct felix_mem felix_mem;

/** Create an empty region table. */
int felix_mem_new(felix_mem **out);
/** Free (NULL is allowed). */
void felix_mem_free(felix_mem *m);
/** Empty the table (keeps its buffers). */
void felix_mem_clear(felix_mem *m);

/**
 * Read /proc/<pid>/smaps into the table (replacing its content).
 * Errors: FELIX_ESRCH (no such process), FELIX_EACCES, FELIX_EIO.
 */
int felix_mem_read_pid(felix_mem *m, pid_t pid);
/** Read smaps text from an open descriptor until end of file. */
int felix_mem_read_fd(felix_mem *m, int fd);
/** Parse smaps text held in memory (replacing the table's content). */
int felix_mem_parse(felix_mem *m, const char *text, size_t len);

/** Regions present (only names seen in the last read), in first-seen order. */
size_t felix_mem_count(const felix_mem *m);
/** Region i, or NULL. */
const felix_region *felix_mem_region(const felix_mem *m, size_t i);
/** The region with this name, or NULL. */
const felix_region *felix_mem_find(const felix_mem *m, const char *name);
/** Sum of every FEX region's resident bytes. */
uint64_t felix_mem_total(const felix_mem *m);
/** Resident bytes of the largest single FEXAllocator or JEMalloc mapping. */
uint64_t felix_mem_largest_allocator(const felix_mem *m);
/** The whole process's resident bytes (every mapping's Rss, FEX's or not),
 *  from the same read; 0 when unknown (a recording made before it was kept). */
uint64_t felix_mem_process_rss(const felix_mem *m);
/** The whole process's mappings, from the same read (0 when unknown). */
uint32_t felix_mem_process_mappings(const felix_mem *m);
/** Set the process's figures by hand (recording readers, tests). */
int felix_mem_set_process(felix_mem *m, uint64_t rss, uint32_t mappings);
/**
 * Set a region's figures by hand (recording readers, tests), adding the
 * region when new. Errors: FELIX_EINVAL (empty name), FELIX_ENOMEM.
 */
int felix_mem_set(felix_mem *m, const char *name, uint64_t rss, uint64_t size,
                  uint32_t mappings, uint64_t largest_rss);
/** Copy src into dst. */
int felix_mem_copy(felix_mem *dst, const felix_mem *src);

#ifdef __cplusplus
}
#endif
#endif
