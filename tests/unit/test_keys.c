/* test_keys.c - the pure pieces of listing: the SCAN pattern of the locks'
 * main keys (prefix glob characters escaped), reading a name back from a
 * key, and the set of names seen. No server. */
#include <string.h>

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

static void test_key_name(void) {
    dl_proto p;
    CHECK_INT(dl_proto_init(&p, "dlock:"), DLOCK_OK);
    const char *name;
    size_t len;
    CHECK(dl_key_name(&p, "dlock:{job}", 11, &name, &len));
    CHECK_INT(len, 3);
    CHECK(memcmp(name, "job", 3) == 0);
    CHECK(dl_key_name(&p, "dlock:{a}:fence}", 16, &name, &len)); /* the name "a}:fence" */
    CHECK_INT(len, 8);
    CHECK(!dl_key_name(&p, "dlock:{job}:fence", 17, &name, &len));
    CHECK(!dl_key_name(&p, "dlock:{}", 8, &name, &len));
    CHECK(!dl_key_name(&p, "other:{job}", 11, &name, &len));
    CHECK(!dl_key_name(&p, "dlock:job}", 10, &name, &len));
    CHECK(!dl_key_name(&p, "dlock:{a\0b}", 11, &name, &len)); /* not a name: NUL */
    char big[DLOCK_NAME_MAX + 16];
    memset(big, 'x', sizeof big);
    memcpy(big, "dlock:{", 7);
    big[sizeof big - 1] = '}';
    CHECK(!dl_key_name(&p, big, sizeof big, &name, &len)); /* longer than DLOCK_NAME_MAX */
    dl_proto_free(&p);
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

int main(void) {
    test_pattern();
    test_key_name();
    test_strset();
    UNIT_DONE();
}
