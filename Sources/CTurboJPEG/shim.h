// libjpeg-turbo's TurboJPEG API, for decoding JPEG images (Sources/DataPipeline/Images/ImageDecoder.swift).
// jconfig.h gives LIBJPEG_TURBO_VERSION_NUMBER, the version the headers belong to.
#ifndef PSKD_CTURBOJPEG_SHIM_H
#define PSKD_CTURBOJPEG_SHIM_H
#include <stdio.h>
#include <jconfig.h>
#include <turbojpeg.h>
#endif
