# The addon: src/addon.cc (Node-API, through node-addon-api) with libdlock's
# C sources compiled in (scripts/dlock-root.js finds them: ./dlock in a
# packed tarball, ../.. in the repository). hiredis comes from the system
# (Debian: libhiredis-dev). libuv and OpenSSL are the process's own: their
# headers come with Node's (nodedir; Debian's nodejs uses the system's
# OpenSSL, so there they are libssl-dev's), their symbols from the node
# binary or the libssl it loads. The addon does not link libssl: a second
# OpenSSL in the process would be shadowed by node's, symbol by symbol.
{
  "targets": [
    {
      "target_name": "dlock_node",
      "sources": [
        "src/addon.cc",
        "src/client.cc",
        "<!@(node scripts/dlock-root.js sources)"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!@(node scripts/dlock-root.js includes)"
      ],
      "defines": [
        "DLOCK_BUILDING=1",
        "_GNU_SOURCE",
        "NAPI_VERSION=8",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NAPI_DISABLE_CPP_EXCEPTIONS"
      ],
      "cflags": [
        "-fvisibility=hidden",
        "-Wall",
        "-Wextra",
        "<!@(pkg-config --cflags hiredis 2>/dev/null || echo -I/usr/include/hiredis)"
      ],
      "cflags_c": [
        "-std=c11",
        "-Wshadow",
        "-Wstrict-prototypes",
        "-Wmissing-prototypes",
        "-Wno-format-truncation"
      ],
      "libraries": [
        "<!@(pkg-config --libs hiredis 2>/dev/null || echo -lhiredis)",
        "-lpthread"
      ]
    }
  ]
}
