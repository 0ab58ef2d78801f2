/* core.c - the life cycle of a client's state: default options, options
 * checked, URL parsed and checked, connection settings and protocol set
 * up, owner metadata; a clone for the keepalive thread; teardown. The
 * public create/free calls are in api/client.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi.h"
#include "backoff.h"
#include "client.h"

static void default_options(dlock_options *o) {
    memset(o, 0, sizeof *o);
    o->struct_size = sizeof *o;
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
    o->owner_pid = 0;
    o->require_noeviction = 0;
}

void dlock_options_init_sized(dlock_options *opts, size_t size) {
    dlock_options d;
    default_options(&d);
    dl_abi_init_sized(opts, size, &d, sizeof d);
}

int dl_refuse_forked(dlock_client *c) {
    if (!dl_forked(c))
        return DLOCK_OK;
    return dl_seterr(&c->ctx, DLOCK_EINVAL,
                     "this client was made by process %ld, before a fork(): its connections "
                     "are that process's; create a new client in this one (inherited clients "
                     "and locks can only be freed)",
                     c->born_pid);
}

int dl_begin(dlock_client *c) {
    if (c == NULL)
        return DLOCK_EINVAL;
    if (dl_forked(c))
        return dl_refuse_forked(c);
    if (c->unusable)
        return dl_seterr(&c->ctx, c->unusable, "client not usable: %s", c->unusable_why);
    dl_clearerr(&c->ctx);
    return DLOCK_OK;
}

static int check_options(dlock_client *c) {
    const dlock_options *o = &c->opts;
    dl_ctx *x = &c->ctx;
    if (o->connect_timeout_ms < 1 || o->connect_timeout_ms > 3600000)
        return dl_seterr(x, DLOCK_EINVAL, "connect_timeout_ms must be 1..3600000");
    if (o->command_timeout_ms < 1 || o->command_timeout_ms > 3600000)
        return dl_seterr(x, DLOCK_EINVAL, "command_timeout_ms must be 1..3600000");
    if (o->retry_count < 0 || o->retry_count > 1000000)
        return dl_seterr(x, DLOCK_EINVAL, "retry_count must be 0..1000000");
    if (o->retry_delay_ms < 1 || o->retry_max_delay_ms < o->retry_delay_ms ||
        o->retry_max_delay_ms > 3600000)
        return dl_seterr(x, DLOCK_EINVAL,
                         "retry delays must satisfy 1 <= retry_delay_ms <= retry_max_delay_ms "
                         "<= 3600000");
    if (o->retry_jitter_pct < 0 || o->retry_jitter_pct > 100)
        return dl_seterr(x, DLOCK_EINVAL, "retry_jitter_pct must be 0..100");
    if (!(o->drift_factor >= 0.0 && o->drift_factor < 0.5))
        return dl_seterr(x, DLOCK_EINVAL, "drift_factor must be in [0, 0.5)");
    if (o->waiting != DLOCK_WAIT_PUSH && o->waiting != DLOCK_WAIT_POLL)
        return dl_seterr(x, DLOCK_EINVAL, "waiting must be DLOCK_WAIT_PUSH or DLOCK_WAIT_POLL");
    if (o->max_hold_ms < 0 || o->max_hold_ms > DLOCK_TTL_MAX)
        return dl_seterr(x, DLOCK_EINVAL, "max_hold_ms must be 0..%lld",
                         (long long)DLOCK_TTL_MAX);
    if (o->replicas < 0 || o->replicas > 100 || o->replica_timeout_ms < 0 ||
        o->replica_timeout_ms > 3600000)
        return dl_seterr(x, DLOCK_EINVAL, "replicas must be 0..100, replica_timeout_ms 0..3600000");
    if (c->proto.prefix_len > 256)
        return dl_seterr(x, DLOCK_EINVAL, "key_prefix longer than 256 bytes");
    if (c->url.kind == DL_URL_CLUSTER && !dl_prefix_tag_ok(&c->proto))
        return dl_seterr(x, DLOCK_EINVAL,
                         "key_prefix '%.256s' has an empty hash tag \"{}\": on a Cluster each "
                         "key of a lock would hash whole, into different slots",
                         c->proto.prefix);
    if (o->owner_pid < 0 || o->owner_pid > 2147483647L)
        return dl_seterr(x, DLOCK_EINVAL, "owner_pid must be 0..2147483647 (0: this process)");
    if (c->label != NULL && strlen(c->label) > DLOCK_LABEL_MAX)
        return dl_seterr(x, DLOCK_EINVAL, "owner_label longer than %d bytes", DLOCK_LABEL_MAX);
    return DLOCK_OK;
}

static void make_meta(dlock_client *c) {
    int n = snprintf(c->meta, sizeof c->meta, "%s\t%ld\t%s", c->host, c->pid,
                     c->label ? c->label : "");
    c->meta_len = n < 0 ? 0 : (size_t)n >= sizeof c->meta ? sizeof c->meta - 1 : (size_t)n;
}

/* The client's own TLS settings (rediss://): files are read now, so a bad
 * one fails dlock_client_new. */
static int setup_tls(dlock_client *c) {
    if (!c->url.tls)
        return DLOCK_OK;
    char err[400];
    int rc = dl_tls_from_url(&c->tls, &c->url, err, sizeof err);
    if (rc != DLOCK_OK)
        return dl_seterr(&c->ctx, rc, "%s", rc == DLOCK_ENOMEM ? "out of memory" : err);
    return DLOCK_OK;
}

/* Copy the label and prefix, build the metadata, and set up the
 * connection settings from c->url and c->opts. */
static int finish_setup(dlock_client *c, const char *prefix, const char *label) {
    c->ctx.on_event = c->opts.on_event;
    c->ctx.event_ud = c->opts.event_userdata;
    c->label = label ? strdup(label) : NULL;
    if (dl_proto_init(&c->proto, prefix) != DLOCK_OK || (label && c->label == NULL))
        return DLOCK_ENOMEM;
    c->opts.key_prefix = c->proto.prefix;
    c->opts.owner_label = c->label;
    make_meta(c);
    int rc = check_options(c);
    if (rc != DLOCK_OK)
        return rc;
    c->cfg.user = c->url.user;
    c->cfg.password = c->url.password;
    c->cfg.has_password = c->url.has_password;
    c->cfg.db = c->url.db;
    c->cfg.connect_timeout_ms = c->opts.connect_timeout_ms;
    c->cfg.ask_policy = 1; /* every data node: lock/engine.c reports it */
    rc = setup_tls(c);
    if (rc != DLOCK_OK)
        return rc;
    c->cfg.tls = c->tls;
    /* Each engine sets up its own topology from the URL, when first used. */
    return dl_topo_check(&c->url, &c->ctx);
}

static void apply_url_options(dlock_client *c) {
    if (c->url.connect_timeout_ms >= 0)
        c->opts.connect_timeout_ms = c->url.connect_timeout_ms;
    if (c->url.command_timeout_ms >= 0)
        c->opts.command_timeout_ms = c->url.command_timeout_ms;
    if (c->url.replicas >= 0)
        c->opts.replicas = c->url.replicas;
    if (c->url.replica_timeout_ms >= 0)
        c->opts.replica_timeout_ms = c->url.replica_timeout_ms;
}

int dl_client_setup(dlock_client *c, const char *url, const dlock_options *opts) {
    pthread_mutex_init(&c->ka_mu, NULL);
    pthread_mutex_init(&c->live_mu, NULL);
    c->fork_gen = dl_fork_gen();
    c->born_pid = (long)getpid();
    default_options(&c->opts);
    /* On failure c->opts keeps the defaults (freed as usual). */
    int rc = dl_abi_read_options(&c->ctx, &c->opts, sizeof c->opts, opts, "options",
                                 "dlock_options_init");
    /* Checked with the other options in finish_setup. */
    c->pid = c->opts.owner_pid > 0 ? c->opts.owner_pid : (long)getpid();
    if (gethostname(c->host, sizeof c->host - 1) != 0)
        snprintf(c->host, sizeof c->host, "unknown");
    dl_random_bytes(&c->rng, sizeof c->rng);
    dl_pool_init(&c->pool);
    if (rc != DLOCK_OK)
        return rc;
    if (url == NULL)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "URL is NULL");
    dl_url_redact(url, c->url_redacted, sizeof c->url_redacted);
    char perr[256];
    if (dl_url_parse(url, &c->url, perr, sizeof perr) != 0)
        return dl_seterr(&c->ctx, DLOCK_EINVAL, "%s", perr);
    apply_url_options(c);
    const char *prefix = c->url.has_prefix    ? c->url.prefix
                         : c->opts.key_prefix ? c->opts.key_prefix
                                              : "dlock:";
    rc = finish_setup(c, prefix, c->opts.owner_label);
    /* Turning verification off is allowed, never silent (once per client,
     * not again for its keepalive clone). */
    if (rc == DLOCK_OK && c->url.tls && !c->url.tls_verify)
        dl_warn(&c->ctx, DL_WARN_TLS_NO_VERIFY);
    return rc;
}

int dl_client_clone(const dlock_client *src, dlock_client **out) {
    *out = NULL;
    dlock_client *c = calloc(1, sizeof *c);
    if (c == NULL)
        return DLOCK_ENOMEM;
    pthread_mutex_init(&c->ka_mu, NULL);
    pthread_mutex_init(&c->live_mu, NULL);
    c->fork_gen = src->fork_gen;
    c->born_pid = src->born_pid;
    c->opts = src->opts;
    c->url = src->url;
    memcpy(c->url_redacted, src->url_redacted, sizeof c->url_redacted);
    memcpy(c->host, src->host, sizeof c->host);
    c->pid = src->pid;
    dl_random_bytes(&c->rng, sizeof c->rng);
    int rc = finish_setup(c, src->proto.prefix, src->label);
    if (rc != DLOCK_OK) {
        dl_client_teardown(c);
        free(c);
        return rc;
    }
    *out = c;
    return DLOCK_OK;
}

void dl_client_teardown(dlock_client *c) {
    dl_tls_free(c->tls);
    c->tls = NULL;
    dl_pool_free(&c->pool);
    dl_proto_free(&c->proto);
    free(c->label);
    c->label = NULL;
    if (!dl_forked(c)) { /* a child's copy may be held by a thread it lacks */
        pthread_mutex_destroy(&c->ka_mu);
        pthread_mutex_destroy(&c->live_mu);
    }
    /* The password lived in c->url: do not leave it in freed memory. */
    explicit_bzero(&c->url, sizeof c->url); /* a memset here is optimised away */
}

/* ---- the client's live handles ---- */

/* live_mu, except in a child after fork(): there the mutex may have been
 * held by a thread that the child lacks, and the child's one thread is the
 * only user of what it inherited. */
static void live_lock(dlock_client *c) {
    if (!dl_forked(c))
        pthread_mutex_lock(&c->live_mu);
}

static void live_unlock(dlock_client *c) {
    if (!dl_forked(c))
        pthread_mutex_unlock(&c->live_mu);
}

dlock_lock *dl_lock_new(dlock_client *c, const char *name, size_t len) {
    dlock_lock *l = calloc(1, sizeof *l + len + 1);
    if (l == NULL)
        return NULL;
    l->client = c;
    l->name = (char *)(l + 1);
    memcpy(l->name, name, len);
    l->name[len] = '\0';
    l->name_len = len;
    dl_lock_register(c, l);
    return l;
}

void dl_lock_register(dlock_client *c, dlock_lock *l) {
    l->client = c;
    l->fork_gen = c->fork_gen;
    live_lock(c);
    l->live_next = c->live;
    if (c->live != NULL)
        c->live->live_prev = l;
    c->live = l;
    live_unlock(c);
}

void dl_lock_destroy(dlock_lock *l) {
    if (l == NULL)
        return;
    dlock_client *c = l->client;
    if (c != NULL) {
        live_lock(c);
        if (l->live_prev != NULL)
            l->live_prev->live_next = l->live_next;
        else
            c->live = l->live_next;
        if (l->live_next != NULL)
            l->live_next->live_prev = l->live_prev;
        live_unlock(c);
    }
    free(l);
}

void dl_client_orphan_locks(dlock_client *c) {
    live_lock(c);
    for (dlock_lock *l = c->live, *next; l != NULL; l = next) {
        next = l->live_next;
        atomic_store(&l->orphaned, 1);
        l->client = NULL;
        l->live_prev = l->live_next = NULL;
    }
    c->live = NULL;
    live_unlock(c);
}
