/* test_abi.c - the copies between a caller's struct and the library's
 * (src/base/abi.c), on plain byte buffers. No server. */
#include <stddef.h>

#include "abi.h"
#include "ctx.h"
#include "dlock.h"
#include "unit.h"

static int all(const unsigned char *p, size_t from, size_t to, unsigned char v) {
    for (size_t i = from; i < to; i++)
        if (p[i] != v)
            return 0;
    return 1;
}

static void test_copy_out(void) {
    unsigned char lib[32], small[40], big[48];
    memset(lib, 7, sizeof lib);
    memset(small, 0xAB, sizeof small);
    dl_abi_copy_out(small, 20, lib, sizeof lib); /* an older caller: 20 bytes */
    CHECK(all(small, 0, 20, 7));
    CHECK(all(small, 20, sizeof small, 0xAB)); /* nothing past its size */
    memset(big, 0xAB, sizeof big);
    dl_abi_copy_out(big, 40, lib, sizeof lib); /* a newer caller: 40 bytes */
    CHECK(all(big, 0, 32, 7));
    CHECK(all(big, 32, 40, 0));           /* fields unknown here: zero */
    CHECK(all(big, 40, sizeof big, 0xAB));
}

static void test_copy_in(void) {
    unsigned char dst[32], src[48];
    memset(dst, 1, sizeof dst);
    memset(src, 2, sizeof src);
    CHECK_INT(dl_abi_copy_in(dst, sizeof dst, src, 16), 0); /* older: the rest keeps defaults */
    CHECK(all(dst, 0, 16, 2));
    CHECK(all(dst, 16, 32, 1));
    memset(dst, 1, sizeof dst);
    memset(src + 32, 0, 16);
    CHECK_INT(dl_abi_copy_in(dst, sizeof dst, src, 48), 0); /* newer, unknown fields zero */
    CHECK(all(dst, 0, 32, 2));
    memset(dst, 1, sizeof dst);
    src[45] = 9;
    CHECK_INT(dl_abi_copy_in(dst, sizeof dst, src, 48), 45); /* newer, one set: refused */
    CHECK(all(dst, 0, 32, 1));                                /* nothing copied */
}

typedef struct opts {
    size_t struct_size;
    int a, b;
} opts;

static void test_options(void) {
    opts def = {sizeof(opts), 10, 20};
    opts mine;
    memset(&mine, 0xAB, sizeof mine);
    dl_abi_init_sized(&mine, offsetof(opts, b), &def, sizeof def);
    CHECK_INT(mine.struct_size, offsetof(opts, b));
    CHECK_INT(mine.a, 10);
    CHECK(all((unsigned char *)&mine, offsetof(opts, b), sizeof mine, 0xAB));
    dl_abi_init_sized(NULL, sizeof mine, &def, sizeof def); /* no-op */
    dl_abi_init_sized(&mine, 3, &def, sizeof def);          /* cannot hold struct_size */
    CHECK_INT(mine.struct_size, offsetof(opts, b));

    dl_ctx x;
    memset(&x, 0, sizeof x);
    opts got = def;
    mine.a = 11;
    CHECK_INT(dl_abi_read_options(&x, &got, sizeof got, &mine, "o", "o_init"), DLOCK_OK);
    CHECK_INT(got.a, 11);
    CHECK_INT(got.b, 20); /* past the caller's size: the default */
    CHECK_INT(got.struct_size, sizeof got);
    CHECK_INT(dl_abi_read_options(&x, &got, sizeof got, NULL, "o", "o_init"), DLOCK_OK);
    mine.struct_size = 0;
    CHECK_INT(dl_abi_read_options(&x, &got, sizeof got, &mine, "o", "o_init"), DLOCK_EINVAL);
    CHECK_CONTAINS(x.err, "call o_init");
    mine.struct_size = DL_ABI_MAX_SIZE + 1;
    CHECK_INT(dl_abi_read_options(&x, &got, sizeof got, &mine, "o", "o_init"), DLOCK_EINVAL);
}

int main(void) {
    test_copy_out();
    test_copy_in();
    test_options();
    UNIT_DONE();
}
