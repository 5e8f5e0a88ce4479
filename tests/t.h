/* A tiny test harness: each test binary holds named cases; meson runs each
 * case as its own test ("binary CASE"), or every case with no argument. */
#ifndef FELIX_TESTS_T_H
#define FELIX_TESTS_T_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern int t_failures;

#define CHECK(cond)                                                                \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            t_failures++;                                                          \
        }                                                                          \
    } while (0)

#define CHECK_EQ(a, b)                                                             \
    do {                                                                           \
        long long _a = (long long)(a), _b = (long long)(b);                        \
        if (_a != _b) {                                                            \
            fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld\n", __FILE__,    \
                    __LINE__, #a, #b, _a, _b);                                     \
            t_failures++;                                                          \
        }                                                                          \
    } while (0)

#define CHECK_NEAR(a, b, rel)                                                      \
    do {                                                                           \
        double _a = (double)(a), _b = (double)(b);                                 \
        double _d = _a > _b ? _a - _b : _b - _a;                                   \
        double _m = (_b < 0 ? -_b : _b) * (rel);                                   \
        if (!(_d <= _m)) {                                                         \
            fprintf(stderr, "%s:%d: %s ~ %s failed: %g vs %g (tolerance %g)\n",    \
                    __FILE__, __LINE__, #a, #b, _a, _b, _m);                       \
            t_failures++;                                                          \
        }                                                                          \
    } while (0)

/* Stop the case: a precondition the rest depends on failed. */
#define REQUIRE(cond)                                                              \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, #cond); \
            t_failures++;                                                          \
            return;                                                                \
        }                                                                          \
    } while (0)

struct t_case {
    const char *name;
    void (*fn)(void);
};

#define T_MAIN(...)                                                                \
    int t_failures;                                                                \
    int main(int argc, char **argv)                                                \
    {                                                                              \
        static const struct t_case cases[] = {__VA_ARGS__};                        \
        size_t n = sizeof cases / sizeof *cases, ran = 0;                          \
        for (size_t i = 0; i < n; i++) {                                           \
            if (argc > 1 && strcmp(argv[1], cases[i].name) != 0)                   \
                continue;                                                          \
            int before = t_failures;                                               \
            cases[i].fn();                                                         \
            fprintf(stderr, "%s: %s\n", t_failures == before ? "ok" : "FAIL",      \
                    cases[i].name);                                                \
            ran++;                                                                 \
        }                                                                          \
        if (ran == 0) {                                                            \
            fprintf(stderr, "no test case named %s\n", argc > 1 ? argv[1] : "");   \
            return 2;                                                              \
        }                                                                          \
        return t_failures ? 1 : 0;                                                 \
    }
#define T(name) {#name, name}

#endif
