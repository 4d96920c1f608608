() => {
  // The layout checks of tests/test_browser.py, measured from element boxes in the page:
  // overlaps between a chart's title, legend, axis titles, annotations, colour-bar title and tick labels,
  // tick labels of one axis overlapping each other, text outside its chart (cut off), Streamlit text cut
  // off (metrics, select boxes), and how wide the page is.
  const out = {overlaps: [], cut: [], charts: 0};
  const box = e => { const r = e.getBoundingClientRect(); return {l: r.left, t: r.top, r: r.right, b: r.bottom, w: r.width, h: r.height}; };
  const inter = (a, b) => Math.max(0, Math.min(a.r, b.r) - Math.max(a.l, b.l)) * Math.max(0, Math.min(a.b, b.b) - Math.max(a.t, b.t));
  const text = e => (e.textContent || '').trim().slice(0, 40);
  const rotated = e => /rotate\((?!0[,)])/.test(e.getAttribute('transform') || '');
  document.querySelectorAll('.js-plotly-plot').forEach((plot, pi) => {
    out.charts++;
    const frame = box(plot);
    const name = plot.querySelector('.gtitle') ? text(plot.querySelector('.gtitle')) : 'chart ' + pi;
    const items = [];
    const add = (kind, sel) => plot.querySelectorAll(sel).forEach(e => { const b = box(e); if (b.w > 0 && b.h > 0) items.push({kind, b, e}); });
    add('title', '.g-gtitle .gtitle');
    add('legend', '.legend .bg');
    add('axis title', '.g-xtitle text, .g-ytitle text, g[class^="g-x"][class$="title"] text, g[class^="g-y"][class$="title"] text');
    add('annotation', '.annotation-text-g text');
    add('colour bar title', '.cbtitle text');
    add('toolbar', '.modebar-container .modebar');
    const seen = new Set();
    const its = items.filter(i => !seen.has(i.e) && seen.add(i.e));
    for (let i = 0; i < its.length; i++) for (let j = i + 1; j < its.length; j++) {
      const a = its[i], b = its[j];
      if (a.kind === b.kind && a.kind !== 'axis title') continue;
      const o = inter(a.b, b.b);
      if (o > 4) out.overlaps.push(`${name}: ${a.kind} '${text(a.e)}' over ${b.kind} '${text(b.e)}' (${o.toFixed(0)} px²)`);
    }
    const ticks = [...plot.querySelectorAll('.xtick text, .ytick text, g[class*="tick"] > text')].filter(e => text(e));
    const byAxis = {};
    ticks.forEach(t => { const k = t.parentNode.parentNode.getAttribute('class') + '|' + t.closest('g.subplot, g[class*="subplot"]')?.getAttribute('class'); (byAxis[k] = byAxis[k] || []).push(t); });
    Object.entries(byAxis).forEach(([k, ts]) => {
      const flat = ts.filter(t => !rotated(t));  // a rotated label's box is a loose rectangle: not compared
      for (let i = 0; i < flat.length; i++) for (let j = i + 1; j < flat.length; j++)
        if (inter(box(flat[i]), box(flat[j])) > 1) { out.overlaps.push(`${name}: tick labels '${text(flat[i])}' and '${text(flat[j])}' overlap`); return; }
    });
    ticks.forEach(t => its.forEach(a => { if (inter(box(t), a.b) > 4) out.overlaps.push(`${name}: tick '${text(t)}' over ${a.kind} '${text(a.e)}'`); }));
    its.concat(ticks.map(e => ({kind: 'tick label', b: box(e), e}))).forEach(a => {
      if (a.b.l < frame.l - 1 || a.b.r > frame.r + 1 || a.b.t < frame.t - 1 || a.b.b > frame.b + 1)
        out.cut.push(`${name}: ${a.kind} '${text(a.e)}' runs outside its chart`);
    });
  });
  const sel = ['[data-testid="stMetricValue"] div', '[data-testid="stMetricLabel"] p',
               '[data-testid="stSelectbox"] [data-baseweb="select"] div[value]',
               '[data-testid="stSelectbox"] [data-baseweb="select"] > div > div > div'].join(', ');
  document.querySelectorAll(sel).forEach(e => {
    if (e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1) out.cut.push(`'${text(e)}' is cut off (${e.scrollWidth} px in ${e.clientWidth})`);
  });
  const main = document.querySelector('[data-testid="stMain"]');
  out.pageWidth = Math.max(document.documentElement.scrollWidth, main ? main.scrollWidth : 0);
  out.viewport = window.innerWidth;
  return out;
}
