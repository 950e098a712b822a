"""Checks of plotly figures as headless Chromium drew them, shared by ``test_figures.test_render_page_figures``
(each figure builder's output drawn alone in a bare page) and ``test_browser`` (every chart of the served app).

``MEASURE_FN`` is a script that defines ``iptMeasure(gd)``: the boxes of what plotly drew in the graph div
``gd`` (tick labels, the titles, annotations, the legend and each colour bar as a whole), its plot areas and
category axes. :func:`rendered_defects` reads that and names what a reader would find broken: texts that
overlap, texts outside the figure, a legend or colour bar over a plot, a legend that scrolls, a category axis
that skips labels.
"""
from __future__ import annotations

import math

MEASURE_FN = r"""
window.iptMeasure = function (gd) {
  const o = gd.getBoundingClientRect(), items = [];
  // each text as the four corners of its box, relative to the figure (rotated labels stay rotated boxes)
  const box = (el, group, text) => {
    const b = el.getBBox(), m = el.getScreenCTM();
    if (!b.width || !b.height || !m) return;
    const t = text === undefined ? el.textContent : text;
    if (!t.trim()) return;
    const pts = [[b.x, b.y], [b.x + b.width, b.y], [b.x + b.width, b.y + b.height], [b.x, b.y + b.height]].map(
      ([x, y]) => { const p = new DOMPoint(x, y).matrixTransform(m); return [p.x - o.left, p.y - o.top]; });
    items.push({group, text: t, pts});
  };
  const sub = el => { const g = el.closest('g.subplot'); return g ? g.getAttribute('class').replace('subplot ', '') : ''; };
  gd.querySelectorAll('g.xtick > text, g.ytick > text').forEach(el => box(el, sub(el) + ' ' + el.parentNode.getAttribute('class')));
  gd.querySelectorAll('g.infolayer > g[class^="g-"][class$="title"] text').forEach(el => box(el, el.closest('g').getAttribute('class')));
  gd.querySelectorAll('g.annotation').forEach((el, i) => box(el.querySelector('text') || el, 'annotation ' + i));
  gd.querySelectorAll('g.legend').forEach(el => box(el.querySelector('rect.bg') || el, 'legend', 'legend'));
  gd.querySelectorAll('g.colorbar').forEach((el, i) => box(el, 'colour bar ' + i, 'colour bar'));
  // the toolbar (HTML over the figure) where it shows: always without a hover pointer (touch screens)
  gd.querySelectorAll('.modebar').forEach(el => {
    const r = el.getBoundingClientRect(), shown = [...el.children].some(c => getComputedStyle(c).opacity !== '0');
    if (!r.width || !shown) return;
    const [x0, y0, x1, y1] = [r.left - o.left, r.top - o.top, r.right - o.left, r.bottom - o.top];
    items.push({group: 'toolbar', text: 'toolbar', pts: [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]});
  });
  const fl = gd._fullLayout, lg = fl.legend;
  const scroll = !!(lg && lg._effHeight !== undefined && lg._effHeight < lg._height - 1);  // entries clipped
  const plots = [];
  for (const [id, p] of Object.entries(fl._plots || {})) {
    const x0 = p.xaxis._offset, x1 = x0 + p.xaxis._length, y0 = p.yaxis._offset, y1 = y0 + p.yaxis._length;
    plots.push({group: 'plot ' + id, text: '', pts: [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]});
  }
  const cats = Object.keys(fl).filter(k => /^[xy]axis\d*$/.test(k) && fl[k].type === 'category' && fl[k].showticklabels)
    .map(k => ({axis: k, n: (fl[k]._categories || []).length, drawn: (fl[k]._vals || []).length}));
  const title = (fl.title && fl.title.text) || '';
  // the marks drawn in the plot areas: lines, markers, bars, fills (a path with a course) and heatmap images;
  // none, and the figure is empty (a trace of no points, a legend-only note, still has its group)
  const drawn = [...gd.querySelectorAll('g.mlayer path, g.mlayer image, g.pielayer path')]
    .filter(e => e.tagName.toLowerCase() === 'image' || (e.getAttribute('d') || '').length > 4).length;
  return {items, plots, cats, W: fl.width, H: fl.height, scroll, title, traces: (gd._fullData || []).length, drawn};
};
"""

# Draws one figure (its JSON in arguments[0]) in the bare page's div#gd and measures it (execute_async_script).
MEASURE_JS = MEASURE_FN + r"""
const gd = document.getElementById('gd'), done = arguments[arguments.length - 1];
const spec = JSON.parse(arguments[0]);
Plotly.purge(gd);
gd.style.width = spec.layout.width + 'px';
gd.style.height = spec.layout.height + 'px';
Plotly.newPlot(gd, spec.data, spec.layout, {displayModeBar: false, staticPlot: true}).then(() => done(iptMeasure(gd)));
"""

# Every visible plotly chart of a served Streamlit page, measured where it is (execute_script). ``clip``: the
# chart element's box relative to the figure (what lies outside it is cut off or runs onto its neighbours);
# ``ready``: whether plotly has drawn it (Streamlit loads the chart component lazily).
MEASURE_PAGE_JS = MEASURE_FN + r"""
return [...document.querySelectorAll('[data-testid="stPlotlyChart"]')].map((el, i) => {
  const r = el.getBoundingClientRect(), gd = el.querySelector('.js-plotly-plot');
  const visible = r.width > 0 && r.height > 0 && el.offsetParent !== null;
  if (!visible) return {index: i, visible};
  if (!gd || !gd._fullLayout || !gd.querySelector('.main-svg')) return {index: i, visible, ready: false};
  const o = gd.getBoundingClientRect();
  const m = iptMeasure(gd);
  m.clip = [r.left - o.left, r.top - o.top, r.right - o.left, r.bottom - o.top];
  return Object.assign(m, {index: i, visible, ready: true});
});
"""


def _overlap(a: list, b: list, tol: float) -> bool:
    """Whether two convex boxes (corner lists) overlap by more than ``tol`` px (separating axes)."""
    for poly in (a, b):
        for (x1, y1), (x2, y2) in zip(poly, poly[1:] + poly[:1]):
            nx, ny = y1 - y2, x2 - x1
            n = math.hypot(nx, ny) or 1.0
            pa = [(x * nx + y * ny) / n for x, y in a]
            pb = [(x * nx + y * ny) / n for x, y in b]
            if min(max(pa), max(pb)) - max(min(pa), min(pb)) <= tol:
                return False
    return True


def rendered_defects(m: dict) -> list[str]:
    """Defects in what Chromium drew (from :data:`MEASURE_FN`): texts that overlap (tick labels of one
    axis by more than 2 px or level x labels nearer than 3.5 px, anything else by more than 0.5), texts or
    legend outside the figure (or outside ``m["clip"]``, the box the page gives the chart, where set), a
    legend or colour bar over a plot area, a legend that scrolls, a category axis that skips labels."""
    out, items = [], m["items"]
    x0, y0, x1, y1 = 0, 0, m["W"], m["H"]
    if m.get("clip"):
        cx0, cy0, cx1, cy1 = m["clip"]
        x0, y0, x1, y1 = max(x0, cx0), max(y0, cy0), min(x1, cx1), min(y1, cy1)
    for i, a in enumerate(items):
        xs, ys = [p[0] for p in a["pts"]], [p[1] for p in a["pts"]]
        if min(xs) < x0 - 1 or min(ys) < y0 - 1 or max(xs) > x1 + 1 or max(ys) > y1 + 1:
            out.append(f"{a['group']} {a['text'][:30]!r} outside the figure: x {min(xs):.0f}..{max(xs):.0f}, "
                       f"y {min(ys):.0f}..{max(ys):.0f} of {x0:.0f}..{x1:.0f} x {y0:.0f}..{y1:.0f}")
        level = abs(a["pts"][1][1] - a["pts"][0][1]) < 0.5  # not rotated
        for b in items[i + 1:]:
            same_axis = a["group"] == b["group"] and "tick" in a["group"]
            # level x labels side by side: 3.5 px apart at least; stacked or rotated labels: their boxes' leading may touch
            tol = (-3.5 if level and "xtick" in a["group"] else 2.0) if same_axis else 0.5
            if _overlap(a["pts"], b["pts"], tol):
                out.append(f"{a['group']} {a['text'][:30]!r} and {b['group']} {b['text'][:30]!r} overlap")
        if a["group"] == "legend" or a["group"].startswith("colour bar"):
            for p in m["plots"]:
                if _overlap(a["pts"], p["pts"], 1.0):
                    out.append(f"{a['group']} over the {p['group']}")
    if m["scroll"]:
        out.append("the legend scrolls: entries hidden")
    for c in m["cats"]:
        if c["drawn"] < c["n"]:
            out.append(f"{c['axis']}: {c['drawn']} of {c['n']} categories labelled")
    return out
