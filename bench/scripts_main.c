/* scripts_main.c - dlock-scripts: print a dlock script's SHA1 or source,
 * so shell benchmarks can run the library's own scripts with other tools
 * (bench/pipelined.sh gives them to redis-benchmark).
 *   dlock-scripts --sha acquire|release     the EVALSHA digest
 *   dlock-scripts --source acquire|release  the Lua source, byte for byte */
#include <stdio.h>
#include <string.h>

#include "proto.h"

int main(int argc, char **argv) {
    static const struct {
        const char *name;
        enum dl_script_id id;
    } names[] = {{"acquire", DL_S_ACQUIRE}, {"release", DL_S_RELEASE}, {"extend", DL_S_EXTEND}};
    if (argc != 3 || (strcmp(argv[1], "--sha") != 0 && strcmp(argv[1], "--source") != 0)) {
        fprintf(stderr, "usage: dlock-scripts --sha|--source acquire|release|extend\n");
        return 2;
    }
    dl_proto p;
    if (dl_proto_init(&p, "dlock:") != DLOCK_OK)
        return 1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(argv[2], names[i].name) != 0)
            continue;
        size_t len;
        const char *src = dl_script_source(names[i].id, &len);
        /* The source byte for byte (no newline added): its digest is --sha's. */
        if (strcmp(argv[1], "--sha") == 0)
            printf("%s\n", p.sha[names[i].id]);
        else
            fwrite(src, 1, len, stdout);
        dl_proto_free(&p);
        return 0;
    }
    dl_proto_free(&p);
    fprintf(stderr, "dlock-scripts: unknown script '%s'\n", argv[2]);
    return 2;
}
