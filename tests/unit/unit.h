/* unit.h - a tiny check macro set for the unit test programs.
 *
 * Each tests/unit/test_*.c is its own program (one process per test, run by
 * ctest with a timeout). A failed check prints "file:line: ..." and exits 1
 * at once; a program that gets to the end calls UNIT_DONE(), which prints
 * "N passed, 0 failed" and returns 0 from main.
 *
 *   CHECK(cond)            any condition
 *   CHECK_INT(a, b)        two integers (printed on failure)
 *   CHECK_STR(a, b)        two C strings (printed on failure)
 *   CHECK_CONTAINS(s, sub) s contains sub
 */
#ifndef DLOCK_UNIT_H
#define DLOCK_UNIT_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_passed;

#define UNIT_FAIL_(file, line, ...)                                   \
    do {                                                              \
        fprintf(stderr, "%s:%d: check failed: ", (file), (line));     \
        fprintf(stderr, __VA_ARGS__);                                 \
        fputc('\n', stderr);                                          \
        printf("%d passed, 1 failed\n", unit_passed);                 \
        exit(1);                                                      \
    } while (0)

#define CHECK_AT(file, line, cond)                                    \
    do {                                                              \
        if (!(cond))                                                  \
            UNIT_FAIL_((file), (line), "%s", #cond);                  \
        unit_passed++;                                                \
    } while (0)

#define CHECK(cond) CHECK_AT(__FILE__, __LINE__, cond)

#define CHECK_INT_AT(file, line, a, b)                                            \
    do {                                                                          \
        long long unit_a_ = (long long)(a), unit_b_ = (long long)(b);             \
        if (unit_a_ != unit_b_)                                                   \
            UNIT_FAIL_((file), (line), "%s == %s (%lld != %lld)", #a, #b, unit_a_, \
                       unit_b_);                                                  \
        unit_passed++;                                                            \
    } while (0)

#define CHECK_INT(a, b) CHECK_INT_AT(__FILE__, __LINE__, a, b)

#define CHECK_STR_AT(file, line, a, b)                                                  \
    do {                                                                                \
        const char *unit_a_ = (a), *unit_b_ = (b);                                      \
        if (unit_a_ == NULL || unit_b_ == NULL || strcmp(unit_a_, unit_b_) != 0)        \
            UNIT_FAIL_((file), (line), "%s == %s (\"%s\" != \"%s\")", #a, #b,           \
                       unit_a_ ? unit_a_ : "(null)", unit_b_ ? unit_b_ : "(null)");     \
        unit_passed++;                                                                  \
    } while (0)

#define CHECK_STR(a, b) CHECK_STR_AT(__FILE__, __LINE__, a, b)

#define CHECK_CONTAINS_AT(file, line, s, sub)                                           \
    do {                                                                                \
        const char *unit_s_ = (s), *unit_sub_ = (sub);                                  \
        if (unit_s_ == NULL || strstr(unit_s_, unit_sub_) == NULL)                      \
            UNIT_FAIL_((file), (line), "\"%s\" contains \"%s\"",                        \
                       unit_s_ ? unit_s_ : "(null)", unit_sub_);                        \
        unit_passed++;                                                                  \
    } while (0)

#define CHECK_CONTAINS(s, sub) CHECK_CONTAINS_AT(__FILE__, __LINE__, s, sub)

#define UNIT_DONE()                                   \
    do {                                              \
        printf("%d passed, 0 failed\n", unit_passed); \
        return 0;                                     \
    } while (0)

#endif
