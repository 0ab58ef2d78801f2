/* test_keys.c - the pure pieces of listing: the SCAN pattern of the locks'
 * main keys (prefix glob characters escaped), reading a name back from a
 * key, and the set of names seen; and the key sets of script calls, held in
 * the struct for short names and in an allocation for long ones. No
 * server. */
#include <string.h>

#include "crc16.h"
#include "dlock.h"
#include "proto.h"
#include "strset.h"
#include "unit.h"

static void check_pattern(const char *prefix, const char *glob, const char *want) {
    dl_proto p;
    CHECK_INT(dl_proto_init(&p, prefix), DLOCK_OK);
    char *pat;
    size_t len;
    CHECK_INT(dl_scan_pattern(&p, glob, strlen(glob), &pat, &len), DLOCK_OK);
    CHECK_INT(len, strlen(want));
    CHECK(memcmp(pat, want, len) == 0);
    free(pat);
    dl_proto_free(&p);
}

static void test_pattern(void) {
    check_pattern("dlock:", "*", "dlock:{*}");
    check_pattern("dlock:", "job-[0-9]", "dlock:{job-[0-9]}");
    check_pattern("t*[x]:", "*", "t\\*\\[x\\]:{*}");
    check_pattern("a?b\\c:", "n", "a\\?b\\\\c:{n}");
    check_pattern("", "a\\*b", "{a\\*b}");
}

static int key_name(const dl_proto *p, const char *key, size_t klen, const char **name,
                    size_t *len) {
    return dl_key_name(p, key, klen, DL_KEYS_PLAIN | DL_KEYS_BRACED, name, len) == 1;
}

static void test_key_name(void) {
    dl_proto p;
    CHECK_INT(dl_proto_init(&p, "dlock:"), DLOCK_OK);
    const char *name;
    size_t len;
    CHECK(key_name(&p, "dlock:{job}", 11, &name, &len));
    CHECK_INT(len, 3);
    CHECK(memcmp(name, "job", 3) == 0);
    CHECK(key_name(&p, "dlock:{a}:fence}", 16, &name, &len)); /* the name "a}:fence" */
    CHECK_INT(len, 8);
    CHECK(!key_name(&p, "dlock:{job}:fence", 17, &name, &len));
    CHECK(!key_name(&p, "dlock:{}", 8, &name, &len));
    CHECK(!key_name(&p, "other:{job}", 11, &name, &len));
    CHECK(!key_name(&p, "dlock:job}", 10, &name, &len));
    CHECK(!key_name(&p, "dlock:{a\0b}", 11, &name, &len)); /* not a name: NUL */
    CHECK(key_name(&p, "dlock:{\0}x}", 11, &name, &len)); /* the name "}x" */
    CHECK(len == 2 && memcmp(name, "}x", 2) == 0);
    CHECK(!key_name(&p, "dlock:{}x}", 10, &name, &len)); /* older layout of "}x" */
    CHECK(!key_name(&p, "dlock:{\0x}", 10, &name, &len)); /* marker on a plain name */
    CHECK(!key_name(&p, "dlock:{\0}", 9, &name, &len));
    CHECK_INT(dl_key_name(&p, "dlock:{\0}x}", 11, DL_KEYS_PLAIN, &name, &len), -1);
    CHECK_INT(dl_key_name(&p, "dlock:{x}", 9, DL_KEYS_BRACED, &name, &len), -1);
    char big[DLOCK_NAME_MAX + 16];
    memset(big, 'x', sizeof big);
    memcpy(big, "dlock:{", 7);
    big[sizeof big - 1] = '}';
    CHECK(!key_name(&p, big, sizeof big, &name, &len)); /* longer than DLOCK_NAME_MAX */
    dl_proto_free(&p);
}

/* Every name, under every prefix Cluster allows, keeps its 4 keys in one
 * slot; the main key reads back as the name; ordinary names keep the
 * "<prefix>{<name>}" layout. Random names rich in braces. */
static void test_one_slot(void) {
    static const char *const prefixes[] = {"dlock:", "", "p{x}:", "q{:", "}", "a}b{c", "{", NULL};
    uint32_t seed = 12345;
    for (int pi = 0; prefixes[pi] != NULL; pi++) {
        dl_proto p;
        CHECK_INT(dl_proto_init(&p, prefixes[pi]), DLOCK_OK);
        CHECK(dl_prefix_tag_ok(&p));
        for (int t = 0; t < 20000; t++) {
            char name[16];
            size_t n = 1 + (seed = seed * 1103515245u + 12345u) % 8;
            for (size_t i = 0; i < n; i++) {
                seed = seed * 1103515245u + 12345u;
                name[i] = "{}{}ab:\x01"[(seed >> 16) % 8];
            }
            dl_keys k;
            CHECK_INT(dl_keys_make(&p, name, n, &k), DLOCK_OK);
            int slot = dl_key_slot(k.k[0], k.len[0]);
            for (int i = 1; i < DL_NKEYS; i++)
                CHECK_INT(dl_key_slot(k.k[i], k.len[i]), slot);
            const char *got;
            size_t gl;
            CHECK(key_name(&p, k.k[0], k.len[0], &got, &gl));
            CHECK(gl == n && memcmp(got, name, n) == 0);
            for (int i = 1; i < DL_NKEYS; i++)
                CHECK(!key_name(&p, k.k[i], k.len[i], &got, &gl));
            if (name[0] != '}') {
                CHECK_INT(k.len[0], p.prefix_len + n + 2);
                CHECK(k.k[0][p.prefix_len] == '{');
                CHECK(memcmp(k.k[0] + p.prefix_len + 1, name, n) == 0);
            }
            dl_keys_free(&k);
        }
        dl_proto_free(&p);
    }
    dl_proto p;
    CHECK_INT(dl_proto_init(&p, "p{}:"), DLOCK_OK);
    CHECK(!dl_prefix_tag_ok(&p));
    dl_proto_free(&p);
}

/* The SCAN passes of a glob, and which keys each takes. */
static void check_plan(const char *glob, int npass, int accept0) {
    dl_proto p;
    CHECK_INT(dl_proto_init(&p, "dlock:"), DLOCK_OK);
    dl_scan_pass pass[2];
    int n;
    CHECK_INT(dl_scan_plan(&p, glob, strlen(glob), pass, &n), DLOCK_OK);
    CHECK_INT(n, npass);
    CHECK_INT(pass[0].accept, accept0);
    if (n == 2) {
        CHECK_INT(pass[1].accept, DL_KEYS_BRACED);
        CHECK_INT(pass[1].len, 9 + strlen(glob));
        CHECK(memcmp(pass[1].pat, "dlock:{\0", 8) == 0);
    }
    for (int i = 0; i < n; i++)
        free(pass[i].pat);
    dl_proto_free(&p);
}

static void test_plan(void) {
    const int both = DL_KEYS_PLAIN | DL_KEYS_BRACED;
    check_plan("*", 1, both);
    check_plan("**x*", 1, both);
    check_plan("job-*", 1, DL_KEYS_PLAIN);
    check_plan("}*", 2, DL_KEYS_PLAIN);
    check_plan("\\}x", 2, DL_KEYS_PLAIN);
    check_plan("?a", 2, DL_KEYS_PLAIN);
    check_plan("[}]a", 2, DL_KEYS_PLAIN);
    check_plan("*?a", 2, DL_KEYS_PLAIN);
}

static void test_strset(void) {
    dl_strset s = {0};
    char buf[32];
    for (int i = 0; i < 5000; i++) {
        int n = snprintf(buf, sizeof buf, "name-%d", i);
        CHECK_INT(dl_strset_add(&s, buf, (size_t)n), 1);
    }
    for (int i = 0; i < 5000; i += 7) {
        int n = snprintf(buf, sizeof buf, "name-%d", i);
        CHECK_INT(dl_strset_add(&s, buf, (size_t)n), 0);
    }
    CHECK_INT(s.n, 5000);
    CHECK_INT(dl_strset_add(&s, "a\0b", 3), 1); /* bytes, not C strings */
    CHECK_INT(dl_strset_add(&s, "a\0c", 3), 1);
    CHECK_INT(dl_strset_add(&s, "a", 1), 1);
    CHECK_INT(dl_strset_add(&s, "a\0b", 3), 0);
    dl_strset_free(&s);
    CHECK_INT(s.n, 0);
    CHECK_INT(dl_strset_add(&s, "again", 5), 1);
    dl_strset_free(&s);
}

/* A name's mutex keys, made by dl_keys_make and by dl_keyset_mutexes, for
 * names that fit the structs' own room and names that do not. */
static void test_keysets(void) {
    dl_proto p;
    CHECK_INT(dl_proto_init(&p, "dlock:"), DLOCK_OK);
    static char big[DLOCK_NAME_MAX + 1];
    memset(big, 'b', DLOCK_NAME_MAX);
    const char *names[3] = {"job", big, "}x"};
    size_t lens[3] = {3, DLOCK_NAME_MAX, 2};
    for (int i = 0; i < 3; i++) {
        dl_keys k;
        CHECK_INT(dl_keys_make(&p, names[i], lens[i], &k), DLOCK_OK);
        CHECK((k.buf != NULL) == (i == 1)); /* only the long name allocates */
        CHECK_INT(k.len[DL_KEY_FENCE], 6 + 1 + (i == 2) + lens[i] + 1 + 6);
        dl_keyset ks;
        CHECK_INT(dl_keyset_mutexes(&p, 1, &names[i], &lens[i], &ks), DLOCK_OK);
        CHECK_INT(ks.n, DL_NKEYS);
        CHECK((ks.buf != NULL) == (i == 1));
        for (int j = 0; j < DL_NKEYS; j++)
            CHECK(ks.len[j] == k.len[j] && memcmp(ks.k[j], k.k[j], k.len[j]) == 0);
        dl_keyset_free(&ks);
        CHECK_INT(dl_keyset_sem(&p, names[i], lens[i], &ks), DLOCK_OK);
        CHECK_INT(ks.n, DL_SEM_NKEYS);
        CHECK(ks.len[DL_SEM_KEY_MAIN] == k.len[DL_KEY_LOCK] &&
              memcmp(ks.k[DL_SEM_KEY_MAIN], k.k[DL_KEY_LOCK], k.len[DL_KEY_LOCK]) == 0);
        dl_keyset_free(&ks);
        dl_keys_free(&k);
    }
    /* Sixteen names of a multi-lock: more than the set's own room. */
    const char *many[DLOCK_MULTI_MAX];
    size_t mlens[DLOCK_MULTI_MAX];
    for (int i = 0; i < DLOCK_MULTI_MAX; i++)
        many[i] = "name-of-a-multi-lock", mlens[i] = 20;
    dl_keyset ks;
    CHECK_INT(dl_keyset_mutexes(&p, DLOCK_MULTI_MAX, many, mlens, &ks), DLOCK_OK);
    CHECK(ks.buf != NULL);
    CHECK_INT(ks.n, DL_NKEYS * DLOCK_MULTI_MAX);
    CHECK(ks.len[ks.n - 1] == 6 + 1 + 20 + 1 + 3 && memcmp(ks.k[ks.n - 1], "dlock:{", 7) == 0);
    dl_keyset_free(&ks);
    CHECK_INT(dl_keyset_mutexes(&p, 0, many, mlens, &ks), DLOCK_EINVAL);
    dl_keyset_free(&ks); /* a refused set is empty */
    dl_proto_free(&p);
}

int main(void) {
    test_pattern();
    test_keysets();
    test_key_name();
    test_one_slot();
    test_plan();
    test_strset();
    UNIT_DONE();
}
