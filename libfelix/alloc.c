/*
 * Every allocation in libfelix goes through here: the allocator a program
 * set with felix_set_allocator (tests use one that fails the Nth call), and
 * fx_grow, the one overflow-checked way a buffer grows.
 */
#include "felix/felix.h"
#include "record_format.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static felix_allocator cur; /* all NULL: the C library's */

void felix_allocator_init(felix_allocator *p)
{
    if (p) {
        memset(p, 0, sizeof *p);
        p->version = FELIX_ALLOCATOR_VERSION;
    }
}

int felix_set_allocator(const felix_allocator *a)
{
    if (a && !FX_VERSION_OK(a, FELIX_ALLOCATOR_VERSION))
        return fx_fail(FELIX_EINVAL, "felix_set_allocator: version %u (start from FELIX_ALLOCATOR_INIT)", a->version);
    if (a && (!a->malloc || !a->realloc || !a->free))
        return fx_fail(FELIX_EINVAL, "felix_set_allocator: malloc, realloc and free are all required");
    if (a)
        cur = *a;
    else
        memset(&cur, 0, sizeof cur);
    return 0;
}

void *fx_malloc(size_t n)
{
    if (n == 0)
        n = 1;
    return cur.malloc ? cur.malloc(n, cur.ctx) : malloc(n);
}

void *fx_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = fx_malloc(n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

void *fx_realloc(void *p, size_t n)
{
    if (n == 0)
        n = 1;
    return cur.realloc ? cur.realloc(p, n, cur.ctx) : realloc(p, n);
}

void fx_free(void *p)
{
    if (!p)
        return;
    if (cur.free)
        cur.free(p, cur.ctx);
    else
        free(p);
}

static void *zstd_alloc(void *opaque, size_t n)
{
    (void)opaque;
    return fx_malloc(n);
}

static void zstd_free(void *opaque, void *p)
{
    (void)opaque;
    fx_free(p);
}

ZSTD_customMem fx_zstd_mem(void)
{
    ZSTD_customMem m = {zstd_alloc, zstd_free, NULL};
    return m;
}

int fx_grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem)
            return fx_fail(FELIX_ENOMEM, "cannot grow a buffer to %zu items", need);
        n *= 2;
    }
    void *p = fx_realloc(*buf, n * elem);
    if (!p)
        return fx_fail(FELIX_ENOMEM, "out of memory growing a buffer to %zu items", n);
    *buf = p;
    *cap = n;
    return 0;
}
