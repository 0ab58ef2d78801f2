/* cli_util.c - helpers of the dlock tool tests: running dlock with its
 * output in files, and a small JSON reader. See cli_util.h. */
#include "cli_util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

const char *g_dlock;
const char *g_self;
th_server *g_srv;
char g_url[128];
static int g_seq;

static int exec_fn(void *arg) {
    proc *p = arg;
    int in = open("/dev/null", O_RDONLY);
    int o = open(p->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || o < 0 || e < 0)
        return 120;
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    execv(p->argv[0], p->argv);
    return 121;
}

void path_in_dir(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", th_server_dir(g_srv), name);
}

/* Starts dlock with the arguments args[0..n). */
void start_arr(proc *p, const char *const *args, int n) {
    memset(p, 0, sizeof *p);
    if (n > 38)
        TH_FAIL("too many arguments");
    p->argv[0] = (char *)g_dlock;
    for (int i = 0; i < n; i++)
        p->argv[i + 1] = (char *)args[i];
    p->argv[n + 1] = NULL;
    int seq = g_seq++;
    char name[64];
    snprintf(name, sizeof name, "out.%d.%d", (int)getpid(), seq);
    path_in_dir(p->out, sizeof p->out, name);
    snprintf(name, sizeof name, "err.%d.%d", (int)getpid(), seq);
    path_in_dir(p->err, sizeof p->err, name);
    p->t0_us = th_now_us();
    p->pid = th_spawn(exec_fn, p);
    TH_CHECK(p->pid > 0);
}

/* Starts dlock with the NULL-terminated argument list in va. */
static void start_va(proc *p, va_list ap) {
    const char *args[40];
    int n = 0;
    const char *a;
    while ((a = va_arg(ap, const char *)) != NULL && n < 39)
        args[n++] = a;
    start_arr(p, args, n);
}

void start(proc *p, ...) {
    va_list ap;
    va_start(ap, p);
    start_va(p, ap);
    va_end(ap);
}

void slurp(const char *path, char *buf, size_t n) {
    buf[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    size_t k = fread(buf, 1, n - 1, f);
    buf[k] = '\0';
    fclose(f);
}

void finish(proc *p, int timeout_ms, result *r) {
    r->code = th_wait(p->pid, timeout_ms);
    r->ms = (th_now_us() - p->t0_us) / 1000;
    if (r->code < 0) {
        kill(p->pid, SIGKILL);
        th_wait(p->pid, -1);
    }
    slurp(p->out, r->out, sizeof r->out);
    slurp(p->err, r->err, sizeof r->err);
    if (r->code < 0)
        TH_FAIL("dlock did not finish within %d ms; stderr: %s", timeout_ms, r->err);
}

/* Runs dlock to completion (at most 15 s). */
void dl(result *r, ...) {
    proc p;
    va_list ap;
    va_start(ap, r);
    start_va(&p, ap);
    va_end(ap);
    finish(&p, 15000, r);
}

int wait_file(const char *path, int timeout_ms) {
    long long end = th_now_us() + (long long)timeout_ms * 1000;
    struct stat st;
    while (th_now_us() < end) {
        if (stat(path, &st) == 0)
            return 0;
        th_sleep_ms(10);
    }
    return -1;
}

pid_t ready_pid(const char *path, int timeout_ms) {
    if (wait_file(path, timeout_ms) != 0)
        TH_FAIL("the command did not start (no %s)", path);
    char text[32];
    slurp(path, text, sizeof text);
    pid_t pid = (pid_t)atoi(text);
    TH_CHECK(pid > 0);
    return pid;
}

int pid_dead(pid_t pid) {
    if (kill(pid, 0) != 0)
        return errno == ESRCH;
    char path[64], stat[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    slurp(path, stat, sizeof stat);
    const char *rp = strrchr(stat, ')'); /* "pid (comm) S ..." */
    return rp == NULL || (rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

long long wait_dead(pid_t pid, int timeout_ms) {
    long long end = th_now_us() + (long long)timeout_ms * 1000;
    for (;;) {
        long long now = th_now_us();
        if (pid_dead(pid))
            return now;
        if (now >= end)
            return -1;
        th_sleep_ms(2);
    }
}

long long key_exists(const char *name) {
    char key[600];
    snprintf(key, sizeof key, "dlock:{%s}", name);
    return th_server_int(g_srv, "EXISTS %s", key);
}

/* ---- a tiny JSON reader (flat objects of scalars) ---------------------------- */

static void put_utf8(char **o, unsigned cp) {
    if (cp < 0x80) {
        *(*o)++ = (char)cp;
    } else if (cp < 0x800) {
        *(*o)++ = (char)(0xc0 | cp >> 6);
        *(*o)++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *(*o)++ = (char)(0xe0 | cp >> 12);
        *(*o)++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *(*o)++ = (char)(0x80 | (cp & 0x3f));
    }
}

static const char *jstring(const char *p, char *out, size_t n) {
    if (*p != '"')
        return NULL;
    p++;
    char *o = out, *end = out + n - 4;
    while (*p && *p != '"') {
        if (o >= end)
            return NULL;
        unsigned char ch = (unsigned char)*p;
        if (ch < 0x20)
            return NULL; /* raw control characters are not valid JSON */
        if (*p != '\\') {
            *o++ = *p++;
            continue;
        }
        p++;
        switch (*p) {
        case '"': case '\\': case '/': *o++ = *p; break;
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case 'r': *o++ = '\r'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'u': {
            char hex[5] = {0};
            memcpy(hex, p + 1, 4);
            if (strlen(hex) != 4 || strspn(hex, "0123456789abcdefABCDEF") != 4)
                return NULL;
            put_utf8(&o, (unsigned)strtoul(hex, NULL, 16));
            p += 4;
            break;
        }
        default: return NULL;
        }
        p++;
    }
    if (*p != '"')
        return NULL;
    *o = '\0';
    return p + 1;
}

/* Parses one flat JSON object from the start of text; fails the test if
 * it is not valid. */
void jparse(const char *text, jobj *obj) {
    const char *p = text;
    memset(obj, 0, sizeof *obj);
    while (*p == ' ' || *p == '\n')
        p++;
    if (*p++ != '{')
        TH_FAIL("not a JSON object: %s", text);
    while (*p != '}') {
        if (obj->count == 40)
            TH_FAIL("too many members: %s", text);
        jval *v = &obj->v[obj->count++];
        p = jstring(p, v->key, sizeof v->key);
        if (p == NULL || *p++ != ':')
            TH_FAIL("bad JSON key in %s", text);
        if (*p == '"') {
            v->type = 's';
            p = jstring(p, v->s, sizeof v->s);
            if (p == NULL)
                TH_FAIL("bad JSON string in %s", text);
        } else if (strncmp(p, "true", 4) == 0 || strncmp(p, "false", 5) == 0) {
            v->type = 'b';
            v->n = *p == 't';
            p += v->n ? 4 : 5;
        } else if (strncmp(p, "null", 4) == 0) {
            v->type = 'z';
            p += 4;
        } else {
            char *end;
            v->type = 'n';
            v->n = strtoll(p, &end, 10);
            if (end == p)
                TH_FAIL("bad JSON value in %s", text);
            p = end;
        }
        if (*p == ',')
            p++;
        else if (*p != '}')
            TH_FAIL("bad JSON separator at '%.10s' in %s", p, text);
    }
    p++;
    if (*p != '\n')
        TH_FAIL("JSON object not followed by a newline: %s", text);
}

const jval *jget(const jobj *o, const char *key, int type) {
    for (int i = 0; i < o->count; i++)
        if (strcmp(o->v[i].key, key) == 0) {
            if (o->v[i].type != type)
                TH_FAIL("JSON member %s has type %c, expected %c", key, o->v[i].type, type);
            return &o->v[i];
        }
    TH_FAIL("JSON member %s missing", key);
}

/* The last line of a text (JSON summaries come last on stderr). */
const char *last_line(const char *text) {
    size_t n = strlen(text);
    if (n == 0)
        return text;
    const char *p = text + n - 1; /* the final newline */
    while (p > text && p[-1] != '\n')
        p--;
    return p;
}

void cli_test_init(const char *dlock_path, int timeout_s) {
    th_test_init(timeout_s);
    g_dlock = dlock_path;
    static char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    TH_CHECK(n > 0);
    self[n] = '\0';
    g_self = self;
    unsetenv("DLOCK_URL");
    unsetenv("DLOCK_URL_FILE");
}
