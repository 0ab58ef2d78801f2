/* client.c - options, client life cycle, error detail, events, key names. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "internal.h"

void dlock_options_init(dlock_options *o) {
    if (o == NULL)
        return;
    memset(o, 0, sizeof *o);
    o->key_prefix = "dlock:";
    o->connect_timeout_ms = 1000;
    o->command_timeout_ms = 1000;
    o->retry_count = 10;
    o->retry_delay_ms = 100;
    o->retry_max_delay_ms = 1000;
    o->retry_jitter_pct = 20;
    o->drift_factor = 0.01;
    o->fencing = 1;
    o->waiting = DLOCK_WAIT_PUSH;
    o->owner_label = NULL;
    o->replicas = 0;
    o->replica_timeout_ms = 100;
}

int dl_seterr(dlock_client *c, int status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return status;
}

void dl_clearerr(dlock_client *c) { c->err[0] = '\0'; }

int dl_begin(dlock_client *c) {
    if (c == NULL)
        return DLOCK_EINVAL;
    if (c->unusable)
        return dl_seterr(c, c->unusable, "client not usable: %s", c->unusable_why);
    c->err[0] = '\0';
    return DLOCK_OK;
}

void dl_emit(dlock_client *c, dlock_event_type type, const char *name, int status, int64_t fence,
             int64_t wait_us, int attempts) {
    if (c->opts.on_event == NULL)
        return;
    dlock_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = type;
    ev.name = name;
    ev.status = status;
    ev.fence = fence;
    ev.wait_us = wait_us;
    ev.attempts = attempts;
    c->opts.on_event(&ev, c->opts.event_userdata);
}

const char *dlock_client_errstr(const dlock_client *c) { return c ? c->err : "no client"; }

static int check_options(dlock_client *c) {
    const dlock_options *o = &c->opts;
    if (o->connect_timeout_ms < 1 || o->connect_timeout_ms > 3600000)
        return dl_seterr(c, DLOCK_EINVAL, "connect_timeout_ms must be 1..3600000");
    if (o->command_timeout_ms < 1 || o->command_timeout_ms > 3600000)
        return dl_seterr(c, DLOCK_EINVAL, "command_timeout_ms must be 1..3600000");
    if (o->retry_count < 0 || o->retry_count > 1000000)
        return dl_seterr(c, DLOCK_EINVAL, "retry_count must be 0..1000000");
    if (o->retry_delay_ms < 1 || o->retry_max_delay_ms < o->retry_delay_ms ||
        o->retry_max_delay_ms > 3600000)
        return dl_seterr(c, DLOCK_EINVAL,
                         "retry delays must satisfy 1 <= retry_delay_ms <= retry_max_delay_ms "
                         "<= 3600000");
    if (o->retry_jitter_pct < 0 || o->retry_jitter_pct > 100)
        return dl_seterr(c, DLOCK_EINVAL, "retry_jitter_pct must be 0..100");
    if (!(o->drift_factor >= 0.0 && o->drift_factor < 0.5))
        return dl_seterr(c, DLOCK_EINVAL, "drift_factor must be in [0, 0.5)");
    if (o->waiting != DLOCK_WAIT_PUSH && o->waiting != DLOCK_WAIT_POLL)
        return dl_seterr(c, DLOCK_EINVAL, "waiting must be DLOCK_WAIT_PUSH or DLOCK_WAIT_POLL");
    if (o->replicas < 0 || o->replicas > 100 || o->replica_timeout_ms < 0)
        return dl_seterr(c, DLOCK_EINVAL, "replicas must be 0..100, replica_timeout_ms >= 0");
    if (c->prefix_len > 256)
        return dl_seterr(c, DLOCK_EINVAL, "key_prefix longer than 256 bytes");
    if (c->label != NULL && strlen(c->label) > DLOCK_LABEL_MAX)
        return dl_seterr(c, DLOCK_EINVAL, "owner_label longer than %d bytes", DLOCK_LABEL_MAX);
    return DLOCK_OK;
}

void dl_client_meta(dlock_client *c) {
    int n = snprintf(c->meta, sizeof c->meta, "%s\t%ld\t%s", c->host, c->pid,
                     c->label ? c->label : "");
    c->meta_len = n < 0 ? 0 : (size_t)n >= sizeof c->meta ? sizeof c->meta - 1 : (size_t)n;
}

/* Connection settings and topology, from c->url and c->opts. */
static int connect_setup(dlock_client *c) {
    c->cfg.user = c->url.user;
    c->cfg.password = c->url.password;
    c->cfg.has_password = c->url.has_password;
    c->cfg.db = c->url.db;
    c->cfg.connect_timeout_ms = c->opts.connect_timeout_ms;
    return dl_topo_init(c);
}

int dl_client_clone(const dlock_client *src, dlock_client **out) {
    *out = NULL;
    dlock_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return DLOCK_ENOMEM;
    pthread_mutex_init(&c->ka_mu, NULL);
    c->opts = src->opts;
    c->url = src->url;
    memcpy(c->url_redacted, src->url_redacted, sizeof c->url_redacted);
    memcpy(c->host, src->host, sizeof c->host);
    memcpy(c->sha, src->sha, sizeof c->sha);
    c->pid = src->pid;
    dl_random_bytes(&c->rng, sizeof c->rng);
    c->prefix = strdup(src->prefix);
    c->label = src->label ? strdup(src->label) : NULL;
    if (c->prefix == NULL || (src->label && c->label == NULL)) {
        dlock_client_free(c);
        return DLOCK_ENOMEM;
    }
    c->prefix_len = src->prefix_len;
    c->opts.key_prefix = c->prefix;
    c->opts.owner_label = c->label;
    dl_client_meta(c);
    int rc = connect_setup(c);
    if (rc != DLOCK_OK) {
        dlock_client_free(c);
        return rc;
    }
    *out = c;
    return DLOCK_OK;
}

/* Everything dlock_client_new checks and sets up after allocating. */
static int client_setup(dlock_client *c, const char *url) {
    if (url == NULL)
        return dl_seterr(c, DLOCK_EINVAL, "URL is NULL");
    dl_url_redact(url, c->url_redacted, sizeof c->url_redacted);
    char perr[256];
    if (dl_url_parse(url, &c->url, perr, sizeof perr) != 0)
        return dl_seterr(c, DLOCK_EINVAL, "%s", perr);
    if (c->url.tls)
        return dl_seterr(c, DLOCK_ENOTSUP,
                         "rediss:// needs TLS, but this build links hiredis %d.%d without "
                         "hiredis_ssl; use redis:// or rebuild against hiredis >= 1.0 with TLS",
                         HIREDIS_MAJOR, HIREDIS_MINOR);
    if (c->url.connect_timeout_ms >= 0)
        c->opts.connect_timeout_ms = c->url.connect_timeout_ms;
    if (c->url.command_timeout_ms >= 0)
        c->opts.command_timeout_ms = c->url.command_timeout_ms;
    if (c->url.replicas >= 0)
        c->opts.replicas = c->url.replicas;
    if (c->url.replica_timeout_ms >= 0)
        c->opts.replica_timeout_ms = c->url.replica_timeout_ms;

    const char *prefix = c->url.has_prefix ? c->url.prefix
                         : c->opts.key_prefix ? c->opts.key_prefix
                                              : "dlock:";
    c->prefix = strdup(prefix);
    c->label = c->opts.owner_label ? strdup(c->opts.owner_label) : NULL;
    if (c->prefix == NULL || (c->opts.owner_label && c->label == NULL))
        return DLOCK_ENOMEM;
    c->prefix_len = strlen(c->prefix);
    c->opts.key_prefix = c->prefix;
    c->opts.owner_label = c->label;
    dl_client_meta(c);
    int rc = check_options(c);
    if (rc != DLOCK_OK)
        return rc;

    return connect_setup(c);
}

int dlock_client_new(dlock_client **out, const char *url, const dlock_options *opts) {
    if (out == NULL)
        return DLOCK_EINVAL;
    *out = NULL;
    dlock_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return DLOCK_ENOMEM;
    pthread_mutex_init(&c->ka_mu, NULL);
    if (opts != NULL)
        c->opts = *opts;
    else
        dlock_options_init(&c->opts);
    *out = c;
    c->pid = (long)getpid();
    if (gethostname(c->host, sizeof c->host - 1) != 0)
        snprintf(c->host, sizeof c->host, "unknown");
    dl_random_bytes(&c->rng, sizeof c->rng);
    dl_pool_init(&c->pool);
    dl_scripts_digest(c->sha);

    int rc = client_setup(c, url);
    if (rc == DLOCK_ENOMEM) {
        dlock_client_free(c);
        *out = NULL;
        return rc;
    }
    if (rc != DLOCK_OK) {
        c->unusable = rc; /* every later call repeats why */
        snprintf(c->unusable_why, sizeof c->unusable_why, "%s", c->err);
    }
    return rc;
}

void dlock_client_free(dlock_client *c) {
    if (c == NULL)
        return;
    dl_keepalive_client_free(c);
    dl_topo_free(&c->topo);
    dl_pool_free(&c->pool);
    free(c->prefix);
    free(c->label);
    pthread_mutex_destroy(&c->ka_mu);
    /* The password lived in c->url: do not leave it in freed memory. */
    explicit_bzero(&c->url, sizeof c->url); /* a memset here is optimised away */
    free(c);
}

int dlock_client_ping(dlock_client *c) {
    int rc = dl_begin(c);
    if (rc != DLOCK_OK)
        return rc;
    dl_call call;
    const char *argv[1] = {"PING"};
    size_t lens[1] = {4};
    rc = dl_call_argv(c, &call, "", 0, 1, argv, lens, 0);
    if (rc != DLOCK_OK)
        return rc;
    return dl_call_error(c, &call, "ping");
}

int dl_keys_make(const dlock_client *c, const char *name, size_t name_len, dl_keys *out) {
    static const char *const suffix[DL_NKEYS] = {"", ":fence", ":q", ":qi"};
    size_t total = 0;
    for (int i = 0; i < DL_NKEYS; i++)
        total += c->prefix_len + name_len + 2 + strlen(suffix[i]);
    char *p = out->small;
    out->buf = NULL;
    if (total > sizeof out->small) {
        out->buf = malloc(total);
        if (out->buf == NULL)
            return DLOCK_ENOMEM;
        p = out->buf;
    }
    for (int i = 0; i < DL_NKEYS; i++) {
        size_t sl = strlen(suffix[i]);
        out->k[i] = p;
        memcpy(p, c->prefix, c->prefix_len);
        p += c->prefix_len;
        *p++ = '{';
        memcpy(p, name, name_len);
        p += name_len;
        *p++ = '}';
        memcpy(p, suffix[i], sl);
        p += sl;
        out->len[i] = c->prefix_len + name_len + 2 + sl;
    }
    return DLOCK_OK;
}
