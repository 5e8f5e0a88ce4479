/*
 * Text that came from outside (thread and process names, command lines, FEX
 * version strings, paths) written into an output: one module for every
 * tool and format, so no output carries bytes its format does not allow.
 *
 * Every function decodes s as UTF-8: a valid sequence is a code point, any
 * other byte (a stray continuation, an overlong or surrogate form, a cut
 * sequence, 0xC0, 0xC1, 0xF5..0xFF) is invalid. Each writes to dst, which
 * must hold TEXT_MAX(n) bytes, and returns the end (not NUL-terminated).
 *
 *  - text_json: a JSON string, quotes included (RFC 8259): quote and
 *    backslash escaped, every control (U+0000..U+001F), DEL and C1
 *    (U+007F..U+009F) as \u00XX, invalid bytes as U+FFFD. The result is
 *    valid UTF-8 and valid JSON for any input.
 *  - text_csv: a CSV field (RFC 4180): quoted, with quotes doubled, when it
 *    holds a comma, quote, CR or LF; invalid bytes as U+FFFD.
 *  - text_tsv: a TSV field: tab, CR and LF as spaces; invalid bytes as U+FFFD.
 *  - text_term: for a terminal: printable text kept, and every C0, DEL and
 *    C1 control and every invalid byte made visible as \xNN, so nothing
 *    reaches the terminal as a control (a backslash is kept: it is not one).
 *    With ascii, every non-ASCII code point is escaped too (\u{XXXX}).
 */
#ifndef FELIX_TOOLS_TEXT_H
#define FELIX_TOOLS_TEXT_H

#include <stddef.h>

/* The most bytes any function writes for n input bytes. */
#define TEXT_MAX(n) ((n) * 10 + 2)

char *text_json(char *dst, const char *s, size_t n);
char *text_csv(char *dst, const char *s, size_t n);
char *text_tsv(char *dst, const char *s, size_t n);
char *text_term(char *dst, const char *s, size_t n, int ascii);

/* text_term into buf of len bytes (NUL-terminated, cut at a whole escape). */
const char *text_term_str(char *buf, size_t len, const char *s, int ascii);

#endif
