/* formats.c - a JSON parser and an OpenMetrics validator for the tests of
 * the tool's outputs; see formats.h. */
#include "formats.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ---- JSON ------------------------------------------------------------------ */

typedef struct jp {
    const char *p, *text;
} jp;

static void ws(jp *j) {
    while (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')
        j->p++;
}

_Noreturn static void jfail(const jp *j, const char *what) {
    TH_FAIL("bad JSON (%s) at offset %ld: '%.20s' in:\n%s", what, (long)(j->p - j->text), j->p,
            j->text);
}

static void put_cp(char **o, unsigned cp) {
    if (cp < 0x80) {
        *(*o)++ = (char)cp;
    } else if (cp < 0x800) {
        *(*o)++ = (char)(0xc0 | cp >> 6);
        *(*o)++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *(*o)++ = (char)(0xe0 | cp >> 12);
        *(*o)++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *(*o)++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *(*o)++ = (char)(0xf0 | cp >> 18);
        *(*o)++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *(*o)++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *(*o)++ = (char)(0x80 | (cp & 0x3f));
    }
}

static unsigned hex4(jp *j) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = *j->p++;
        if (!isxdigit((unsigned char)ch))
            jfail(j, "\\u escape");
        v = v * 16 + (unsigned)(isdigit((unsigned char)ch) ? ch - '0' : (tolower(ch) - 'a' + 10));
    }
    return v;
}

static char *jstr(jp *j, size_t *len) {
    if (*j->p != '"')
        jfail(j, "string expected");
    j->p++;
    char *out = malloc(strlen(j->p) * 2 + 8), *o = out;
    while (*j->p != '"') {
        unsigned char ch = (unsigned char)*j->p;
        if (ch == '\0' || ch < 0x20)
            jfail(j, "control character or end in string");
        if (ch != '\\') {
            *o++ = *j->p++;
            continue;
        }
        j->p++;
        char e = *j->p++;
        const char *simple = strchr("\"\\/bfnrt", e);
        if (e != '\0' && simple != NULL) {
            *o++ = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
        } else if (e == 'u') {
            unsigned cp = hex4(j);
            if (cp >= 0xd800 && cp < 0xdc00) {
                if (j->p[0] != '\\' || j->p[1] != 'u')
                    jfail(j, "lone surrogate");
                j->p += 2;
                unsigned lo = hex4(j);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            put_cp(&o, cp);
        } else {
            jfail(j, "escape");
        }
    }
    j->p++;
    *o = '\0';
    *len = (size_t)(o - out);
    return out;
}

static jnode *jvalue(jp *j, int depth);

static void add_kid(jnode *n, jnode *k) {
    n->kids = realloc(n->kids, (n->n + 1) * sizeof *n->kids);
    n->kids[n->n++] = k;
}

static jnode *jcontainer(jp *j, int depth, char close) {
    jnode *n = calloc(1, sizeof *n);
    n->type = close == '}' ? 'o' : 'a';
    j->p++;
    ws(j);
    if (*j->p == close) {
        j->p++;
        return n;
    }
    for (;;) {
        ws(j);
        char *key = NULL;
        size_t kl;
        if (close == '}') {
            key = jstr(j, &kl);
            ws(j);
            if (*j->p++ != ':')
                jfail(j, "':' expected");
        }
        jnode *k = jvalue(j, depth + 1);
        k->key = key;
        add_kid(n, k);
        ws(j);
        if (*j->p == ',') {
            j->p++;
            continue;
        }
        if (*j->p++ != close)
            jfail(j, "',' or end of container expected");
        return n;
    }
}

static jnode *jvalue(jp *j, int depth) {
    if (depth > 32)
        jfail(j, "too deep");
    ws(j);
    if (*j->p == '{' || *j->p == '[')
        return jcontainer(j, depth, *j->p == '{' ? '}' : ']');
    jnode *n = calloc(1, sizeof *n);
    if (*j->p == '"') {
        n->type = 's';
        n->str = jstr(j, &n->len);
    } else if (strncmp(j->p, "true", 4) == 0 || strncmp(j->p, "false", 5) == 0) {
        n->type = 'b';
        n->num = *j->p == 't';
        j->p += *j->p == 't' ? 4 : 5;
    } else if (strncmp(j->p, "null", 4) == 0) {
        n->type = 'z';
        j->p += 4;
    } else {
        const char *s = j->p;
        if (*s == '-')
            s++;
        if (!isdigit((unsigned char)*s) || (s[0] == '0' && isdigit((unsigned char)s[1])))
            jfail(j, "value expected");
        char *end;
        n->type = 'n';
        n->num = strtod(j->p, &end);
        j->p = end;
    }
    return n;
}

jnode *jt_parse(const char *text) {
    jp j = {text, text};
    jnode *n = jvalue(&j, 0);
    ws(&j);
    if (*j.p != '\0')
        jfail(&j, "text after the document");
    return n;
}

const jnode *jt_get(const jnode *o, const char *key, int type) {
    if (o->type != 'o')
        TH_FAIL("JSON: not an object when looking for %s", key);
    for (size_t i = 0; i < o->n; i++)
        if (strcmp(o->kids[i]->key, key) == 0) {
            if (o->kids[i]->type != type)
                TH_FAIL("JSON member %s has type %c, want %c", key, o->kids[i]->type, type);
            return o->kids[i];
        }
    TH_FAIL("JSON member %s missing", key);
}

const jnode *jt_at(const jnode *a, size_t i) {
    if (a->type != 'a' || i >= a->n)
        TH_FAIL("JSON: no element %zu", i);
    return a->kids[i];
}

void jt_free(jnode *n) {
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->n; i++)
        jt_free(n->kids[i]);
    free(n->kids);
    free(n->str);
    free(n->key);
    free(n);
}

/* ---- OpenMetrics -------------------------------------------------------------- */

static int name_char(char ch, int first, int label) {
    return isalpha((unsigned char)ch) || ch == '_' || (!label && ch == ':') ||
           (!first && isdigit((unsigned char)ch));
}

/* Length of a metric (or label) name at s, 0 if none. */
static size_t om_name(const char *s, int label) {
    size_t n = 0;
    while (name_char(s[n], n == 0, label))
        n++;
    return n;
}

static int utf8_ok(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        int k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3
                : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        if (k == 0 || i + (size_t)k > n)
            return 0;
        for (int m = 1; m < k; m++)
            if ((s[i + (size_t)m] & 0xc0) != 0x80)
                return 0;
        i += (size_t)k;
    }
    return 1;
}

/* Checks {name="value",...} at *p; advances past it. */
static void om_labels(const char **p, const char *line) {
    const char *s = *p;
    char seen[16][64];
    int nseen = 0;
    s++;
    while (*s != '}') {
        size_t n = om_name(s, 1);
        if (n == 0 || n >= 64 || s[n] != '=' || s[n + 1] != '"')
            TH_FAIL("OpenMetrics: bad label name in: %s", line);
        for (int i = 0; i < nseen; i++)
            if (strncmp(seen[i], s, n) == 0 && seen[i][n] == '\0')
                TH_FAIL("OpenMetrics: label repeated in: %s", line);
        if (nseen < 16) {
            memcpy(seen[nseen], s, n);
            seen[nseen++][n] = '\0';
        }
        s += n + 2;
        const char *v = s;
        while (*s != '"') {
            if (*s == '\0' || *s == '\n')
                TH_FAIL("OpenMetrics: unterminated label value in: %s", line);
            if (*s == '\\') {
                if (s[1] != '\\' && s[1] != '"' && s[1] != 'n')
                    TH_FAIL("OpenMetrics: bad escape in label value: %s", line);
                s++;
            }
            s++;
        }
        if (!utf8_ok((const unsigned char *)v, (size_t)(s - v)))
            TH_FAIL("OpenMetrics: label value is not UTF-8: %s", line);
        s++;
        if (*s == ',')
            s++;
        else if (*s != '}')
            TH_FAIL("OpenMetrics: ',' or '}' expected in: %s", line);
    }
    *p = s + 1;
}

static void om_number(const char *s, const char *line) {
    if (strcmp(s, "+Inf") == 0 || strcmp(s, "-Inf") == 0 || strcmp(s, "NaN") == 0)
        return;
    char *end;
    strtod(s, &end);
    if (end == s || *end != '\0' || isspace((unsigned char)*s))
        TH_FAIL("OpenMetrics: bad number '%s' in: %s", s, line);
}

/* A "# HELP" or "# TYPE" line; *family set to its name (TYPE opens it). */
static void om_meta(const char *line, char *family, char *families, size_t fam_cap) {
    int help = strncmp(line, "# HELP ", 7) == 0, type = strncmp(line, "# TYPE ", 7) == 0;
    if (!help && !type)
        TH_FAIL("OpenMetrics: unknown comment line: %s", line);
    size_t n = om_name(line + 7, 0);
    if (n == 0 || n >= 200 || line[7 + n] != ' ')
        TH_FAIL("OpenMetrics: bad metric name in: %s", line);
    char name[200];
    memcpy(name, line + 7, n);
    name[n] = '\0';
    const char *rest = line + 8 + n;
    if (type) {
        if (strcmp(rest, "gauge") != 0 && strcmp(rest, "counter") != 0 &&
            strcmp(rest, "unknown") != 0 && strcmp(rest, "info") != 0)
            TH_FAIL("OpenMetrics: bad type in: %s", line);
    } else {
        for (const char *q = rest; *q; q++)
            if (*q == '\\' && q[1] != '\\' && q[1] != '"' && q[1] != 'n')
                TH_FAIL("OpenMetrics: bad escape in HELP: %s", line);
            else if (*q == '\\')
                q++;
    }
    if (strcmp(name, family) != 0) {
        char key[204];
        snprintf(key, sizeof key, "|%s|", name);
        if (strstr(families, key) != NULL)
            TH_FAIL("OpenMetrics: family %s appears twice (line: %s)", name, line);
        if (strlen(families) + strlen(key) + 1 > fam_cap)
            TH_FAIL("OpenMetrics: too many families");
        strcat(families, key);
        strcpy(family, name);
    }
}

int om_check(const char *text) {
    size_t tl = strlen(text);
    if (tl < 6 || strcmp(text + tl - 6, "# EOF\n") != 0)
        TH_FAIL("OpenMetrics: does not end with \"# EOF\\n\":\n%s", text);
    char family[200] = "", families[16384] = "|";
    int samples = 0;
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = (size_t)(nl - p);
        char line[4096];
        if (n == 0 || n >= sizeof line)
            TH_FAIL("OpenMetrics: empty or overlong line in:\n%s", text);
        memcpy(line, p, n);
        line[n] = '\0';
        p = nl + 1;
        if (strcmp(line, "# EOF") == 0) {
            if (*p != '\0')
                TH_FAIL("OpenMetrics: text after # EOF");
            break;
        }
        if (line[0] == '#') {
            om_meta(line, family, families, sizeof families);
            continue;
        }
        size_t mn = om_name(line, 0);
        if (mn == 0 || strncmp(line, family, mn) != 0 || family[mn] != '\0')
            TH_FAIL("OpenMetrics: sample outside its family (%s): %s", family, line);
        const char *s = line + mn;
        if (*s == '{')
            om_labels(&s, line);
        if (*s != ' ')
            TH_FAIL("OpenMetrics: space expected before the value: %s", line);
        om_number(s + 1, line);
        samples++;
    }
    return samples;
}

double om_value(const char *text, const char *series) {
    size_t sl = strlen(series);
    for (const char *p = text; p != NULL && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, sl) == 0 && p[sl] == ' ')
            return strtod(p + sl + 1, NULL);
    TH_FAIL("OpenMetrics: no sample %s in:\n%s", series, text);
}
