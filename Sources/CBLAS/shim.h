// OpenBLAS's CBLAS interface plus its thread and configuration queries.
#ifndef PSKD_CBLAS_SHIM_H
#define PSKD_CBLAS_SHIM_H
#include <cblas.h>
#endif
