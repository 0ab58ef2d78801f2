/* formats.h - checkers for the tool's machine-readable outputs, strict
 * enough to catch what a real consumer would reject: a JSON parser (the
 * whole grammar, into a tree) and an OpenMetrics text validator. Both fail
 * the test (TH_FAIL) on bad input. */
#ifndef DLOCK_TEST_FORMATS_H
#define DLOCK_TEST_FORMATS_H

#include <stddef.h>

/* ---- JSON ------------------------------------------------------------------ */

typedef struct jnode jnode;
struct jnode {
    int type;     /* 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null */
    char *str;    /* 's': the decoded string (UTF-8); member key for children */
    size_t len;   /* 's': its length */
    double num;   /* 'n'; 'b': 0 or 1 */
    char *key;    /* the member's key when inside an object */
    jnode **kids; /* 'o' members, 'a' elements */
    size_t n;
};

/* Parses one JSON document (and nothing but white space after it). */
jnode *jt_parse(const char *text);
/* The member `key` of object o, which must exist with type `type`. */
const jnode *jt_get(const jnode *o, const char *key, int type);
/* Element i of array a (must exist). */
const jnode *jt_at(const jnode *a, size_t i);
void jt_free(jnode *n);

/* ---- OpenMetrics -------------------------------------------------------------- */

/* Checks text against the OpenMetrics text format (gauge families, as the
 * tool writes): HELP/TYPE before samples, families contiguous and unique,
 * metric and label names, label values escaped and valid UTF-8, numbers,
 * and "# EOF" last. Returns the number of samples. */
int om_check(const char *text);
/* The value of the sample written exactly as `series` (e.g.
 * "dlock_lock_held{name=\"a\",kind=\"mutex\"}"); fails the test if absent. */
double om_value(const char *text, const char *series);

#endif
