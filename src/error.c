/* error.c - status names and descriptions, generated from DLOCK_ERRNO_MAP. */
#include "dlock.h"

#ifndef DLOCK_VERSION_STRING
#define DLOCK_VERSION_STRING "0.1.0"
#endif

const char *dlock_strerror(int status) {
    switch (status) {
#define DLOCK_DESC_(name, value, desc) \
    case value:                        \
        return desc;
        DLOCK_ERRNO_MAP(DLOCK_DESC_)
#undef DLOCK_DESC_
    }
    return "unknown status";
}

const char *dlock_err_name(int status) {
    switch (status) {
#define DLOCK_NAME_(name, value, desc) \
    case value:                        \
        return "DLOCK_" #name;
        DLOCK_ERRNO_MAP(DLOCK_NAME_)
#undef DLOCK_NAME_
    }
    return "DLOCK_UNKNOWN_STATUS";
}

const char *dlock_version(void) { return DLOCK_VERSION_STRING; }
