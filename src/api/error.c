/* error.c - status names and descriptions, generated from DLOCK_ERRNO_MAP;
 * the version, from the header. */
#include "dlock.h"

#define DL_STR2_(x) #x
#define DL_STR_(x) DL_STR2_(x)
#define DLOCK_VERSION_STRING                                                  \
    DL_STR_(DLOCK_VERSION_MAJOR) "." DL_STR_(DLOCK_VERSION_MINOR) "." DL_STR_( \
        DLOCK_VERSION_PATCH)

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

int dlock_version_number(void) { return DLOCK_VERSION_NUMBER; }
