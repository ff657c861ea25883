// zlib, for gzip-compressed IDX files.
#ifndef PSKD_CZLIB_SHIM_H
#define PSKD_CZLIB_SHIM_H
#include <zlib.h>
#endif
