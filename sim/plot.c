/* plot.c — the day's plot as a hand-written SVG document.
 *
 * Two panels over the hours of the day: hourly VWAP per GPU type (one line
 * each, gaps where nothing traded) and traded GPU-hours per hour (bars).
 * No plotting library: SVG is text, and a few rectangles, paths and labels
 * are all the day needs. Coordinates are computed in integers from the
 * report's exact sums, so the same report gives the same bytes. */
#include "sim/sim.h"

#include "gpux_assert.h"

#include <string.h>

#define W 960
#define H 600
#define LEFT 80
#define RIGHT 130
#define PRICE_TOP 50
#define PRICE_H 320
#define VOL_TOP 420
#define VOL_H 130

static const char *const colours[SIM_N_GPUS] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
};

typedef struct frame {
    int32_t hours;
    int64_t pmin, pmax;      /* price axis range, micros */
    int64_t vmax;            /* volume axis max, GPU-hours */
} frame;

static int x_of(const frame *f, int32_t h)
{
    int plot_w = W - LEFT - RIGHT;
    return LEFT + (int)((int64_t)(2 * h + 1) * plot_w / (2 * f->hours));
}

static int y_of_price(const frame *f, int64_t p)
{
    return PRICE_TOP + (int)((__int128)(f->pmax - p) * PRICE_H / (f->pmax - f->pmin));
}

/* Price range over all buckets, widened to whole dollars around the data. */
static void make_frame(const sim_report *r, frame *f)
{
    f->hours = sim_report_hours(r);
    f->pmin = -1;
    f->pmax = -1;
    f->vmax = 0;
    for (int32_t h = 0; h < f->hours; h++) {
        int64_t vol = 0;
        for (int g = 0; g < SIM_N_GPUS; g++) {
            int64_t gh, p = sim_report_bucket(r, g, h, &gh);
            vol += gh;
            if (p < 0)
                continue;
            f->pmin = f->pmin < 0 || p < f->pmin ? p : f->pmin;
            f->pmax = p > f->pmax ? p : f->pmax;
        }
        f->vmax = vol > f->vmax ? vol : f->vmax;
    }
    if (f->pmin < 0) { /* nothing traded: an empty $0-$1 frame */
        f->pmin = 0;
        f->pmax = 1000000;
    }
    f->pmin = f->pmin / 1000000 * 1000000;
    f->pmax = (f->pmax / 1000000 + 1) * 1000000;
    if (f->vmax == 0)
        f->vmax = 1;
}

static int axes(const frame *f, FILE *out)
{
    int rc = 0;
    char mb[SIM_MONEY_LEN];
    int64_t step = (f->pmax - f->pmin) / 5;
    for (int i = 0; i <= 5; i++) {
        int64_t p = f->pmin + step * i;
        int y = y_of_price(f, p);
        rc |= fprintf(out, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#ddd\"/>\n"
                      "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">$%s</text>\n",
                      LEFT, y, W - RIGHT, y, LEFT - 6, y + 4, sim_fmt_micros(p, mb)) < 0;
    }
    for (int32_t h = 0; h < f->hours; h += f->hours > 24 ? 12 : 3)
        rc |= fprintf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%d</text>\n",
                      x_of(f, h), VOL_TOP + VOL_H + 18, h) < 0;
    rc |= fprintf(out,
                  "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n"
                  "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#444\"/>\n"
                  "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">hour of the day (UTC)</text>\n"
                  "<text x=\"%d\" y=\"%d\">VWAP per GPU-hour</text>\n"
                  "<text x=\"%d\" y=\"%d\">traded GPU-hours (max %lld)</text>\n",
                  LEFT, PRICE_TOP, W - LEFT - RIGHT, PRICE_H, LEFT, VOL_TOP,
                  W - LEFT - RIGHT, VOL_H, LEFT + (W - LEFT - RIGHT) / 2,
                  VOL_TOP + VOL_H + 36, LEFT, PRICE_TOP - 8, LEFT, VOL_TOP - 8,
                  (long long)f->vmax) < 0;
    return rc ? -1 : 0;
}

static int price_lines(const sim_report *r, const frame *f, FILE *out)
{
    int rc = 0;
    for (int g = 0; g < SIM_N_GPUS; g++) {
        bool open = false, any = false;
        for (int32_t h = 0; h < f->hours; h++) {
            int64_t gh, p = sim_report_bucket(r, g, h, &gh);
            if (p < 0) {
                open = false;
                continue;
            }
            if (!any)
                rc |= fprintf(out, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"2\" d=\"",
                              colours[g]) < 0;
            rc |= fprintf(out, "%s%c%d %d", any ? " " : "", open ? 'L' : 'M',
                          x_of(f, h), y_of_price(f, p)) < 0;
            open = any = true;
        }
        if (any)
            rc |= fprintf(out, "\"/>\n") < 0;
        rc |= fprintf(out,
                      "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"4\" fill=\"%s\"/>"
                      "<text x=\"%d\" y=\"%d\">%s</text>\n",
                      W - RIGHT + 14, PRICE_TOP + 10 + 22 * g, colours[g],
                      W - RIGHT + 34, PRICE_TOP + 16 + 22 * g, sim_gpu(g)->gpu) < 0;
    }
    return rc ? -1 : 0;
}

static int volume_bars(const sim_report *r, const frame *f, FILE *out)
{
    int rc = 0;
    int bar_w = (W - LEFT - RIGHT) / f->hours - 2;
    bar_w = bar_w < 1 ? 1 : bar_w;
    for (int32_t h = 0; h < f->hours; h++) {
        int64_t vol = 0, gh;
        for (int g = 0; g < SIM_N_GPUS; g++) {
            sim_report_bucket(r, g, h, &gh);
            vol += gh;
        }
        int bh = (int)((__int128)vol * VOL_H / f->vmax);
        rc |= fprintf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
                      "fill=\"#7f9fbf\"><title>hour %d: %lld GPU-hours</title></rect>\n",
                      x_of(f, h) - bar_w / 2, VOL_TOP + VOL_H - bh, bar_w, bh, h,
                      (long long)vol) < 0;
    }
    return rc ? -1 : 0;
}

/* Writes s with the five XML special characters escaped. */
static int xml_text(const char *s, FILE *out)
{
    int rc = 0;
    for (; *s; s++) {
        switch (*s) {
        case '&': rc |= fputs("&amp;", out) == EOF; break;
        case '<': rc |= fputs("&lt;", out) == EOF; break;
        case '>': rc |= fputs("&gt;", out) == EOF; break;
        case '"': rc |= fputs("&quot;", out) == EOF; break;
        case '\'': rc |= fputs("&apos;", out) == EOF; break;
        default: rc |= fputc(*s, out) == EOF; break;
        }
    }
    return rc ? -1 : 0;
}

int sim_report_plot_svg(const sim_report *r, const char *title, FILE *out)
{
    frame f;
    int rc = 0;
    make_frame(r, &f);
    rc |= fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"12\">\n"
                  "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n"
                  "<text x=\"%d\" y=\"24\" font-size=\"16\">",
                  W, H, W, H, W, H, LEFT) < 0;
    rc |= xml_text(title ? title : "gpux market day", out);
    rc |= fputs("</text>\n", out) == EOF;
    rc |= axes(&f, out);
    rc |= volume_bars(r, &f, out);
    rc |= price_lines(r, &f, out);
    rc |= fputs("</svg>\n", out) == EOF;
    return rc || fflush(out) != 0 ? -1 : 0;
}
