#ifndef LIGHTSAIL_CCAIRO_SHIM_H
#define LIGHTSAIL_CCAIRO_SHIM_H
#include <cairo.h>
#include <cairo-pdf.h>
#endif
