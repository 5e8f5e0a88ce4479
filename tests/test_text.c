/* The escaping module (tools/text.c): every class of byte in every output
 * format. Classes: printable ASCII, quote, backslash, separators, C0 (NUL is
 * never in a C string; ESC, BEL, TAB, LF, CR), DEL, C1 as UTF-8 (C2 85) and
 * as a raw byte (85), valid multi-byte UTF-8 (é, €, 😀), invalid UTF-8 (FF,
 * a lone continuation, an overlong form, a surrogate, a cut sequence). */
#include "../tools/text.h"
#include "t.h"
#include "../tools/common.h"

struct want {
    const char *in, *json, *csv, *tsv, *term, *term_ascii;
};

static const struct want table[] = {
    {"plain", "\"plain\"", "plain", "plain", "plain", "plain"},
    {"a\"b\\c", "\"a\\\"b\\\\c\"", "\"a\"\"b\\c\"", "a\"b\\c", "a\"b\\c", "a\"b\\c"},
    {"x,y", "\"x,y\"", "\"x,y\"", "x,y", "x,y", "x,y"},
    {"t\tl\nr\r", "\"t\\u0009l\\u000ar\\u000d\"", "\"t\tl\nr\r\"", "t l r ", "t\\x09l\\x0ar\\x0d", "t\\x09l\\x0ar\\x0d"},
    {"\x1b[2J\a", "\"\\u001b[2J\\u0007\"", "\x1b[2J\a", "\x1b[2J\a", "\\x1b[2J\\x07", "\\x1b[2J\\x07"},
    {"d\x7f", "\"d\\u007f\"", "d\x7f", "d\x7f", "d\\x7f", "d\\x7f"},
    {"c1\xc2\x85", "\"c1\\u0085\"", "c1\xc2\x85", "c1\xc2\x85", "c1\\xc2\\x85", "c1\\xc2\\x85"},
    {"raw\x85", "\"raw\xef\xbf\xbd\"", "raw\xef\xbf\xbd", "raw\xef\xbf\xbd", "raw\\x85", "raw\\x85"},
    {"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"",
     "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
     "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\\u{e9}\\u{20ac}\\u{1f600}"},
    {"\xff\x80\xc0\xaf\xed\xa0\x80\xe2\x82", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"",
     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
     "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd",
     "\\xff\\x80\\xc0\\xaf\\xed\\xa0\\x80\\xe2\\x82", "\\xff\\x80\\xc0\\xaf\\xed\\xa0\\x80\\xe2\\x82"},
};

static void check_one(const char *what, const char *in, char *(*fn)(char *, const char *, size_t), const char *want)
{
    char out[TEXT_MAX(64)];
    size_t n = (size_t)(fn(out, in, strlen(in)) - out);
    if (n != strlen(want) || memcmp(out, want, n) != 0) {
        fprintf(stderr, "%s of %s: got '%.*s'\n", what, in, (int)n, out);
        t_failures++;
    }
}

static char *term_utf8(char *d, const char *s, size_t n) { return text_term(d, s, n, 0); }
static char *term_ascii(char *d, const char *s, size_t n) { return text_term(d, s, n, 1); }

static void every_class_every_format(void)
{
    for (size_t i = 0; i < sizeof table / sizeof *table; i++) {
        check_one("json", table[i].in, text_json, table[i].json);
        check_one("csv", table[i].in, text_csv, table[i].csv);
        check_one("tsv", table[i].in, text_tsv, table[i].tsv);
        check_one("term", table[i].in, term_utf8, table[i].term);
        check_one("term-ascii", table[i].in, term_ascii, table[i].term_ascii);
    }
}

/* Every string of up to two bytes (and random longer ones): JSON output is
 * valid UTF-8 with no raw control byte; terminal output has no control byte
 * and no byte >= 0x80 that is not part of valid UTF-8 (and in ascii mode,
 * none >= 0x80 at all); CSV is valid UTF-8; TSV has no tab or newline in a
 * field; sizes stay within TEXT_MAX. */
/* Valid UTF-8; with controls 0, also no C0, DEL or C1 control. */
static int valid_utf8(const unsigned char *p, size_t n, int controls)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = p[i];
        if (!controls && (c < 0x20 || c == 0x7f))
            return 0;
        size_t len = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (!len || i + len > n)
            return 0;
        for (size_t k = 1; k < len; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
        if (!controls && len == 2 && c == 0xc2 && p[i + 1] < 0xa0)
            return 0; /* C1 */
        i += len;
    }
    return 1;
}

static void exhaustive_small(void)
{
    char in[8], out[TEXT_MAX(8)];
    unsigned bad = 0;
    uint64_t seed = 88172645463325252ull;
    for (unsigned v = 0; v < 65536 + 200000; v++) {
        size_t n;
        if (v < 65536) {
            in[0] = (char)(v & 0xff), in[1] = (char)(v >> 8), n = 2;
        } else {
            n = 1 + v % 7;
            for (size_t k = 0; k < n; k++) {
                seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
                in[k] = (char)seed;
            }
        }
        for (size_t k = 0; k < n; k++)
            if (!in[k])
                in[k] = 'z'; /* C strings */
        size_t m = (size_t)(text_json(out, in, n) - out);
        bad += m > TEXT_MAX(n) || !valid_utf8((unsigned char *)out, m, 0);
        m = (size_t)(text_term(out, in, n, 0) - out);
        bad += m > TEXT_MAX(n) || !valid_utf8((unsigned char *)out, m, 0);
        m = (size_t)(text_term(out, in, n, 1) - out);
        for (size_t k = 0; k < m; k++)
            bad += (unsigned char)out[k] >= 0x80 || (unsigned char)out[k] < 0x20 || out[k] == 0x7f;
        m = (size_t)(text_csv(out, in, n) - out);
        bad += m > TEXT_MAX(n) || !valid_utf8((unsigned char *)out, m, 1); /* RFC 4180 allows controls */
        m = (size_t)(text_tsv(out, in, n) - out);
        for (size_t k = 0; k < m; k++)
            bad += out[k] == '\t' || out[k] == '\n' || out[k] == '\r';
    }
    CHECK_EQ(bad, 0);
}

/* A cut never splits an escape or a sequence. */
static void term_str_cuts_whole(void)
{
    char buf[6];
    CHECK(strcmp(text_term_str(buf, sizeof buf, "a\x1b\x1b", 0), "a\\x1b") == 0); /* 5 bytes + NUL: the second does not fit */
    CHECK(strcmp(text_term_str(buf, sizeof buf, "ab\xc3\xa9xyz", 0), "ab\xc3\xa9x") == 0);
    CHECK(strcmp(text_term_str(buf, sizeof buf, "\x1b", 0), "\\x1b") == 0);
}

/* felix-csv's number formatting (tools/common.h): integers as printf's %llu
 * for every magnitude, fixed decimals as "round half up at that decimal"
 * (x = v * 10^dec + 0.5, then its integer and fraction parts), and printf's
 * %.*f beyond 9e18 / 10^dec. */
static void number_formats(void)
{
    char a[64], b[64];
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (long i = 0; i < 2000000; i++) {
        rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
        uint64_t v = i < 100000 ? (uint64_t)i : i % 5 == 0 ? ~0ull - (uint64_t)i : rng >> (rng % 64);
        *tool_fmt_u64(a, v) = '\0';
        snprintf(b, sizeof b, "%llu", (unsigned long long)v);
        if (strcmp(a, b) != 0) {
            CHECK(strcmp(a, b) == 0);
            fprintf(stderr, "u64 %s, printf %s\n", a, b);
            return;
        }
        double d = (double)(rng % 100000000000ull) / (double)(1 + rng % 100000);
        for (int dec = 0; dec <= 9; dec++) {
            *tool_fmt_fixed(a, d, dec) = '\0';
            double scale = 1;
            for (int k = 0; k < dec; k++)
                scale *= 10;
            uint64_t x = (uint64_t)(d * scale + 0.5), ip = x / (uint64_t)scale, fp = x - ip * (uint64_t)scale;
            if (d >= 9e18 / scale) /* beyond the fast path: printf's own */
                snprintf(b, sizeof b, "%.*f", dec, d);
            else if (dec)
                snprintf(b, sizeof b, "%llu.%0*llu", (unsigned long long)ip, dec, (unsigned long long)fp);
            else
                snprintf(b, sizeof b, "%llu", (unsigned long long)ip);
            if (strcmp(a, b) != 0) {
                CHECK(strcmp(a, b) == 0);
                fprintf(stderr, "fixed %d: %s, expected %s\n", dec, a, b);
                return;
            }
        }
    }
}

T_MAIN(T(number_formats), T(every_class_every_format), T(exhaustive_small), T(term_str_cuts_whole))
