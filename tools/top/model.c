/*
 * felix-top's model bookkeeping: rows found by TID in O(1), and the rows a
 * panel shows chosen with bounded work, so a 16 MiB segment (209,714
 * threads) costs a pass over the rows per frame, not a sort of all of them.
 * Invariant: row_index holds row + 1 for every row, at most half full.
 */
#include "top.h"

#include "../common.h"

#include <stdlib.h>
#include <string.h>

static size_t slot_of(uint32_t tid, size_t mask) { return (size_t)((tid * 2654435761u) >> 3) & mask; }

int top_reindex(struct top_model *m)
{
    size_t cap = m->row_index_cap ? m->row_index_cap : 256;
    while (cap < m->nrows * 2 + 2)
        cap *= 2;
    if (cap != m->row_index_cap) {
        uint32_t *idx = calloc(cap, sizeof *idx);
        if (!idx)
            return -1;
        free(m->row_index);
        m->row_index = idx;
        m->row_index_cap = cap;
    } else {
        memset(m->row_index, 0, cap * sizeof *m->row_index);
    }
    for (size_t i = 0; i < m->nrows; i++) {
        size_t h = slot_of(m->rows[i].tid, cap - 1);
        while (m->row_index[h])
            h = (h + 1) & (cap - 1);
        m->row_index[h] = (uint32_t)i + 1;
    }
    return 0;
}

struct top_row *top_find_row(struct top_model *m, uint32_t tid)
{
    if (!m->row_index_cap)
        return NULL;
    size_t mask = m->row_index_cap - 1;
    for (size_t h = slot_of(tid, mask); m->row_index[h]; h = (h + 1) & mask)
        if (m->rows[m->row_index[h] - 1].tid == tid)
            return &m->rows[m->row_index[h] - 1];
    return NULL;
}

struct top_row *top_add_row(struct top_model *m, uint32_t tid)
{
    struct top_row *r = top_find_row(m, tid);
    if (r)
        return r;
    if (tool_grow((void **)&m->rows, &m->rows_cap, m->nrows + 1, sizeof *m->rows) < 0)
        return NULL;
    r = &m->rows[m->nrows++];
    memset(r, 0, sizeof *r);
    r->tid = tid;
    r->cpu_share = -1;
    if (m->nrows * 2 + 2 > m->row_index_cap) {
        if (top_reindex(m) < 0) {
            m->nrows--;
            return NULL;
        }
    } else {
        size_t mask = m->row_index_cap - 1, h = slot_of(tid, mask);
        while (m->row_index[h])
            h = (h + 1) & mask;
        m->row_index[h] = (uint32_t)m->nrows;
    }
    return r;
}

/* Whether row a goes before row b in the chosen order: live before exited,
 * then by the sort key, then by TID. */
static int row_before(int sort, const struct top_row *a, const struct top_row *b)
{
    if (a->exited != b->exited)
        return !a->exited;
    switch (sort) {
    case SORT_JIT_COUNT:
        if (a->jit_count != b->jit_count)
            return a->jit_count > b->jit_count;
        break;
    case SORT_TID: break;
    case SORT_NAME: {
        int c = strcmp(a->name, b->name);
        if (c)
            return c < 0;
        break;
    }
    default:
        if (a->load != b->load)
            return a->load > b->load;
    }
    return a->tid < b->tid;
}

size_t top_select_rows(struct top_model *m, size_t n)
{
    if (n > m->nrows)
        n = m->nrows;
    if (tool_grow((void **)&m->view, &m->view_cap, n ? n : 1, sizeof *m->view) < 0)
        return 0;
    size_t kept = 0;
    for (size_t i = 0; i < m->nrows && n; i++) {
        const struct top_row *r = &m->rows[i];
        if (kept == n && !row_before(m->sort, r, &m->rows[m->view[n - 1]]))
            continue; /* not among the first n: the common case, one comparison */
        /* Binary search for its place among the kept ones. */
        size_t lo = 0, hi = kept;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (row_before(m->sort, r, &m->rows[m->view[mid]]))
                hi = mid;
            else
                lo = mid + 1;
        }
        if (kept < n)
            kept++;
        memmove(m->view + lo + 1, m->view + lo, (kept - 1 - lo) * sizeof *m->view);
        m->view[lo] = (uint32_t)i;
    }
    return kept;
}
