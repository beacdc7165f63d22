// Small SVG plotting helpers: nice ticks, scales, axes. No globals; every function takes its parent.

import { fmtG } from "./format.js";

const NS = "http://www.w3.org/2000/svg";

/** Create an SVG element with attributes. */
export function svgEl(name, attrs = {}, parent = null) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (parent) parent.appendChild(node);
  return node;
}

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const step0 = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= step0) ?? 10 * mag;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** Ticks for a log axis: decades, plus 2 and 5 times them when the range spans few decades. */
export function logTicks(lo, hi) {
  const steps = Math.log10(hi / lo) < 2 ? [1, 2, 5] : [1];
  const out = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e += 1) for (const m of steps) out.push(m * 10 ** e);
  return out.filter((v) => v >= lo / 1.0001 && v <= hi * 1.0001);
}

/** Tick label: 1,200 / 0.25 / 20k / 1.5M. */
export function tickText(v) {
  const a = Math.abs(v);
  if (a >= 1e6) return `${fmtG(v / 1e6, 3)}M`;
  if (a >= 1e4) return `${fmtG(v / 1e3, 3)}k`;
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  return fmtG(v, 3);
}

/**
 * A plot frame: returns {svg, x(v), y(v), inner} with axes, grid lines and labels drawn.
 * @param {HTMLElement} parent
 * @param {object} o {width, height, xRange: [lo, hi], yRange: [lo, hi], xLabel, yLabel, logX, title}
 */
export function frame(parent, o) {
  const width = o.width ?? 420;
  const height = o.height ?? 240;
  const m = { left: 52, right: 14, top: o.title ? 26 : 12, bottom: 40 };
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, class: "cl-plot", role: "img" }, parent);
  if (o.title) svgEl("text", { x: m.left, y: 16, class: "cl-plot-title" }, svg).textContent = o.title;
  const [x0, x1] = o.xRange;
  const [y0, y1] = o.yRange;
  const lx = (v) => (o.logX ? Math.log10(v) : v);
  const x = (v) => m.left + ((lx(v) - lx(x0)) / (lx(x1) - lx(x0) || 1)) * (width - m.left - m.right);
  const y = (v) => height - m.bottom - ((v - y0) / (y1 - y0 || 1)) * (height - m.top - m.bottom);
  const grid = svgEl("g", { class: "cl-plot-grid" }, svg);
  for (const t of ticks(y0, y1, 4)) {
    svgEl("line", { x1: m.left, x2: width - m.right, y1: y(t), y2: y(t) }, grid);
    svgEl("text", { x: m.left - 6, y: y(t) + 4, class: "cl-tick", "text-anchor": "end" }, svg).textContent = tickText(t);
  }
  for (const t of o.logX ? logTicks(x0, x1) : ticks(x0, x1, 5)) {
    svgEl("line", { x1: x(t), x2: x(t), y1: m.top, y2: height - m.bottom }, grid);
    svgEl("text", { x: x(t), y: height - m.bottom + 15, class: "cl-tick", "text-anchor": "middle" }, svg).textContent = tickText(t);
  }
  svgEl("rect", { x: m.left, y: m.top, width: width - m.left - m.right, height: height - m.top - m.bottom, class: "cl-plot-box" }, svg);
  if (o.xLabel) svgEl("text", { x: (m.left + width - m.right) / 2, y: height - 6, class: "cl-axis-label", "text-anchor": "middle" }, svg).textContent = o.xLabel;
  if (o.yLabel) {
    const t = svgEl("text", { x: 12, y: (m.top + height - m.bottom) / 2, class: "cl-axis-label", "text-anchor": "middle", transform: `rotate(-90 12 ${(m.top + height - m.bottom) / 2})` }, svg);
    t.textContent = o.yLabel;
  }
  return { svg, x, y };
}
