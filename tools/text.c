/* Escaping outside text for each output format (see text.h). */
#include "text.h"

#include <stdint.h>
#include <string.h>

/* Decode one code point at s (n bytes left): its length, or 0 when the byte
 * at s does not start a valid UTF-8 sequence. */
static size_t utf8_next(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    size_t len;
    uint32_t v, min;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

static const char hex[] = "0123456789abcdef";

static char *put_fffd(char *d)
{
    *d++ = (char)0xef, *d++ = (char)0xbf, *d++ = (char)0xbd;
    return d;
}

char *text_json(char *d, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    *d++ = '"';
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (!len) {
            d = put_fffd(d);
            i++;
            continue;
        }
        if (cp == '"' || cp == '\\') {
            *d++ = '\\', *d++ = (char)cp;
        } else if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f)) {
            *d++ = '\\', *d++ = 'u', *d++ = '0', *d++ = '0';
            *d++ = hex[cp >> 4], *d++ = hex[cp & 15];
        } else {
            memcpy(d, s + i, len);
            d += len;
        }
        i += len;
    }
    *d++ = '"';
    return d;
}

/* Valid UTF-8 copied, invalid bytes as U+FFFD; each byte for which special
 * says so replaced by repl (0: kept). */
static char *clean(char *d, const unsigned char *s, size_t n, const char *special, char repl)
{
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (!len) {
            d = put_fffd(d);
            i++;
        } else if (len == 1 && repl && cp && strchr(special, (int)cp)) {
            *d++ = repl;
            i++;
        } else {
            for (size_t k = 0; k < len; k++) {
                if (!repl && s[i + k] == '"')
                    *d++ = '"'; /* CSV doubles quotes */
                *d++ = (char)s[i + k];
            }
            i += len;
        }
    }
    return d;
}

char *text_csv(char *d, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    int quote = 0;
    for (size_t i = 0; i < n; i++)
        quote |= s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (!quote)
        return clean(d, s, n, "", 0);
    *d++ = '"';
    d = clean(d, s, n, "", 0);
    *d++ = '"';
    return d;
}

char *text_tsv(char *d, const char *str, size_t n)
{
    return clean(d, (const unsigned char *)str, n, "\t\r\n", ' ');
}

static char *put_xbyte(char *d, unsigned char c)
{
    *d++ = '\\', *d++ = 'x', *d++ = hex[c >> 4], *d++ = hex[c & 15];
    return d;
}

char *text_term(char *d, const char *str, size_t n, int ascii)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_next(s + i, n - i, &cp);
        if (!len) {
            d = put_xbyte(d, s[i++]);
            continue;
        }
        if (cp < 0x20 || cp == 0x7f) {
            d = put_xbyte(d, (unsigned char)cp);
        } else if (cp >= 0x80 && cp <= 0x9f) { /* C1, as its UTF-8 bytes */
            for (size_t k = 0; k < len; k++)
                d = put_xbyte(d, s[i + k]);
        } else if (cp >= 0x80 && ascii) {
            *d++ = '\\', *d++ = 'u', *d++ = '{';
            int started = 0;
            for (int sh = 20; sh >= 0; sh -= 4)
                if (started || (cp >> sh) & 15 || sh == 0)
                    *d++ = hex[(cp >> sh) & 15], started = 1;
            *d++ = '}';
        } else {
            memcpy(d, s + i, len);
            d += len;
        }
        i += len;
    }
    return d;
}

const char *text_term_str(char *buf, size_t len, const char *s, int ascii)
{
    if (!len)
        return buf;
    size_t n = strlen(s), o = 0;
    char tmp[TEXT_MAX(4)];
    /* One code point (or invalid byte) at a time, so a cut never splits an
     * escape or a sequence. */
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t step = utf8_next((const unsigned char *)s + i, n - i, &cp);
        if (!step)
            step = 1;
        size_t w = (size_t)(text_term(tmp, s + i, step, ascii) - tmp);
        if (o + w + 1 > len)
            break;
        memcpy(buf + o, tmp, w);
        o += w;
        i += step;
    }
    buf[o] = '\0';
    return buf;
}
