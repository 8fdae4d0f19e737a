"""An Agg canvas for the reused per-layer figures: cached text bitmaps and pixels pasted after each draw.

Half of an Agg draw of a small figure is text (FreeType layout and glyph rasterization of every tick label
and title, on every draw), while a figure series repeats the same strings ('0.5', '10^-1', legend entries)
on every layer. The renderer here rasterizes each distinct string once, with its origin on a whole pixel,
and afterwards only blits the cached glyph bitmaps (text lands within half a pixel of where matplotlib puts
it). It uses matplotlib 3.11's Agg internals; on any other API it turns itself off and draws text the
ordinary way, so it can only cost speed, never a figure."""
from __future__ import annotations

import math

import numpy as np
from matplotlib.backends import backend_agg
from matplotlib.ft2font import RenderMode

_CACHE_LIMIT = 4096  # distinct strings kept per process (a figure series needs a few hundred)
_enabled = True


class CachedTextRenderer(backend_agg.RendererAgg):
    """RendererAgg whose draw_text reuses each string's glyph bitmaps (see the module docstring)."""

    _bitmaps: dict = {}
    _heights: dict = {}

    def _get_font_height_metrics(self, prop):
        """(ascent, descent, line gap) of a font in pixels, which Text asks on every layout (a font lookup
        and two table reads); cached per font and dpi. (None, None, None) lets Text measure instead."""
        key = (prop, self.dpi)
        metrics = self._heights.get(key)
        if metrics is None:
            metrics = (None, None, None)
            font = self._prepare_font(prop)
            for table_name, gap, ascent, descent in (("OS/2", "sTypoLineGap", "sTypoAscender", "sTypoDescender"),
                                                     ("hhea", "lineGap", "ascent", "descent")):
                table = font.get_sfnt_table(table_name)
                if table is not None:
                    scale = prop.get_size_in_points() * self.dpi / 72 / font.get_sfnt_table("head")["unitsPerEm"]
                    metrics = (table[ascent] * scale, -table[descent] * scale, table[gap] * scale)
                    break
            self._heights[key] = metrics
        return metrics

    def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
        global _enabled
        if not _enabled or ismath == "TeX":
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        features = mtext.get_fontfeatures() if mtext is not None and hasattr(mtext, "get_fontfeatures") else None
        language = mtext.get_language() if mtext is not None and hasattr(mtext, "get_language") else None
        key = (s, prop, angle, bool(ismath), bool(gc.get_antialiased()), self.dpi,
               tuple(features) if features else None, language)
        try:
            glyphs = self._bitmaps.get(key)
            if glyphs is None:
                glyphs = self._rasterize(gc, s, prop, angle, ismath, mtext)
                if glyphs is None:  # drawn with rules/boxes (mathtext fractions...): the ordinary way
                    return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
                if len(self._bitmaps) >= _CACHE_LIMIT:
                    self._bitmaps.clear()
                self._bitmaps[key] = glyphs
        except (AttributeError, TypeError, ValueError):  # another matplotlib's internals
            _enabled = False
            return super().draw_text(gc, x, y, s, prop, angle, ismath, mtext)
        px, py = round(x), round(self.height - y)  # the origin, on a whole pixel (FreeType's y is upwards)
        height = int(self.height)
        for buffer, left, top in glyphs:
            self._renderer.draw_text_image(buffer, left + px, height - (top + py) + buffer.shape[0], 0, gc)

    def _rasterize(self, gc, s, prop, angle, ismath, mtext):
        """The glyph bitmaps of `s` drawn with its origin at (0, 0): [(bitmap, left, top)], as
        RendererAgg._draw_text_glyphs_and_boxes renders them."""
        if ismath:
            parse = self.mathtext_parser.parse(s, self.dpi, prop, antialiased=gc.get_antialiased())
            if parse.rects:
                return None
            glyphs = [(font, size, index, dx, dy) for font, size, _char, index, dx, dy in parse.glyphs]
        else:
            font = self._prepare_font(prop)
            items = font._layout(s, flags=backend_agg.get_hinting_flag(),
                                 features=mtext.get_fontfeatures() if mtext is not None else None,
                                 language=mtext.get_language() if mtext is not None else None)
            size = prop.get_size_in_points()
            glyphs = [(item.ft_object, size, item.glyph_index, item.x, item.y) for item in items]
        cos, sin = math.cos(math.radians(angle)), math.sin(math.radians(angle))
        rotation = (0x10000 * np.array([[cos, -sin], [sin, cos]])).round().astype(int)
        flags = backend_agg.get_hinting_flag()
        mode = RenderMode.NORMAL if gc.get_antialiased() else RenderMode.MONO
        out = []
        for font, size, index, dx, dy in glyphs:
            font.set_size(size, self.dpi)
            font._set_transform(rotation, [round(0x40 * (dx * cos - dy * sin)), round(0x40 * (dx * sin + dy * cos))])
            bitmap = font._render_glyph(index, flags, mode)
            buffer = np.array(bitmap.buffer, copy=True)
            if not gc.get_antialiased():
                buffer *= 0xff
            out.append((buffer, bitmap.left, bitmap.top))
        return out


class PastingCanvasAgg(backend_agg.FigureCanvasAgg):
    """FigureCanvasAgg drawing with CachedTextRenderer; `overlays` (regions from copy_from_bbox) are pasted
    over every finished draw."""

    def __init__(self, figure):
        super().__init__(figure)
        self.overlays = []

    def get_renderer(self):
        w, h = self.get_width_height(physical=True)
        key = w, h, self.figure.dpi
        if self._lastKey != key:
            self.renderer = CachedTextRenderer(w, h, self.figure.dpi)
            self._lastKey = key
        return self.renderer

    def draw(self):
        super().draw()
        for region in self.overlays:
            self.restore_region(region)
