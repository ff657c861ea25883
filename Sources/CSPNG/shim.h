// libspng, for decoding PNG images (Sources/DataPipeline/Images/ImageDecoder.swift).
#ifndef PSKD_CSPNG_SHIM_H
#define PSKD_CSPNG_SHIM_H
#include <spng.h>
#endif
