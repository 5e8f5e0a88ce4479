/* Shared by the fuzz targets: libfelix's memory, counted. More than 64 MiB
 * live at once is a finding (inputs are far below the 1 MiB for which the
 * recording reader promises that bound; segments and smaps need far less). */
#ifndef FELIX_FUZZ_ALLOC_H
#define FELIX_FUZZ_ALLOC_H

#include <felix/felix.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_MEM_CAP (64u << 20)

struct fuzz_block {
    size_t size, pad;
};

static size_t fuzz_live;

static void fuzz_account(size_t add, size_t sub)
{
    fuzz_live = fuzz_live + add - sub;
    if (fuzz_live > FUZZ_MEM_CAP) {
        fprintf(stderr, "libfelix holds %zu bytes, more than the %u-byte cap\n", fuzz_live, FUZZ_MEM_CAP);
        abort();
    }
}

static void *fuzz_malloc(size_t n, void *ctx)
{
    (void)ctx;
    struct fuzz_block *b = malloc(sizeof *b + n);
    if (!b)
        return NULL;
    b->size = n;
    fuzz_account(n, 0);
    return b + 1;
}

static void *fuzz_realloc(void *p, size_t n, void *ctx)
{
    if (!p)
        return fuzz_malloc(n, ctx);
    struct fuzz_block *b = (struct fuzz_block *)p - 1;
    size_t was = b->size;
    b = realloc(b, sizeof *b + n);
    if (!b)
        return NULL;
    b->size = n;
    fuzz_account(n, was);
    return b + 1;
}

static void fuzz_free(void *p, void *ctx)
{
    (void)ctx;
    if (!p)
        return;
    struct fuzz_block *b = (struct fuzz_block *)p - 1;
    fuzz_account(0, b->size);
    free(b);
}

/* Count libfelix's memory from now on. */
static void fuzz_alloc_install(void)
{
    static const felix_allocator a = {FELIX_ALLOCATOR_VERSION, fuzz_malloc, fuzz_realloc, fuzz_free, NULL};
    felix_set_allocator(&a);
}

#endif
