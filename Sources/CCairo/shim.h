#ifndef LIGHTSAIL_CCAIRO_SHIM_H
#define LIGHTSAIL_CCAIRO_SHIM_H
#include <cairo.h>
#include <cairo-pdf.h>

/* The few calls of pango (1.50, libpangocairo-1.0) the report makes, declared here as pango's
 * headers declare them: including those headers brings glib's -pthread into the flags, which
 * SwiftPM refuses from pkg-config. Pango lays out the text cairo's own calls cannot draw. */
typedef struct _PangoLayout PangoLayout;
typedef struct _PangoFontDescription PangoFontDescription;
typedef struct { int x; int y; int width; int height; } PangoRectangle;
enum { LIGHTSAIL_PANGO_SCALE = 1024, LIGHTSAIL_PANGO_WEIGHT_NORMAL = 400, LIGHTSAIL_PANGO_WEIGHT_BOLD = 700 };

PangoLayout *pango_cairo_create_layout(cairo_t *cr);
void pango_cairo_show_layout(cairo_t *cr, PangoLayout *layout);
void pango_layout_set_text(PangoLayout *layout, const char *text, int length);
void pango_layout_set_font_description(PangoLayout *layout, const PangoFontDescription *desc);
void pango_layout_get_extents(PangoLayout *layout, PangoRectangle *ink_rect, PangoRectangle *logical_rect);
int pango_layout_get_baseline(PangoLayout *layout);
PangoFontDescription *pango_font_description_new(void);
void pango_font_description_free(PangoFontDescription *desc);
void pango_font_description_set_family(PangoFontDescription *desc, const char *family);
void pango_font_description_set_weight(PangoFontDescription *desc, int weight);
void pango_font_description_set_absolute_size(PangoFontDescription *desc, double size);
void g_object_unref(void *object);
#endif
