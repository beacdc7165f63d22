// Training curves as SVG: several series of (x, y) points, solid or dashed, with a legend.

import { fmtValue } from "./format.js";
import { frame, svgEl } from "./svg.js";

/**
 * @param {HTMLElement} el
 * @param {object} spec
 * @param {{name: string, points: number[][], dashed?: boolean, color?: string, dots?: boolean}[]} spec.series
 * @param {string} [spec.title]
 * @param {string} [spec.xLabel]
 * @param {string} [spec.yLabel]
 * @param {number[]} [spec.yRange] fixed [lo, hi] (default: the data's)
 * @param {number[]} [spec.xRange] fixed [lo, hi] (default: the data's)
 * @param {(v: number) => string} [spec.format] how the legend prints each series' last value
 */
export function drawCurves(el, spec) {
  el.replaceChildren();
  const all = spec.series.flatMap((s) => s.points);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]).filter((v) => v !== null && Number.isFinite(v));
  const xRange = spec.xRange ?? [Math.min(0, ...xs), Math.max(1, ...xs)];
  let yRange = spec.yRange;
  if (!yRange) {
    const lo = ys.length ? Math.min(...ys) : 0;
    const hi = ys.length ? Math.max(...ys) : 1;
    const pad = (hi - lo) * 0.08 || 0.5;
    yRange = [Math.max(0, lo - pad), hi + pad];
  }
  const f = frame(el, { ...spec, xRange, yRange });
  const legend = document.createElement("div");
  legend.className = "cl-legend";
  spec.series.forEach((s, i) => {
    const color = s.color ?? ["#2563eb", "#d97706", "#059669", "#9333ea"][i % 4];
    const pts = s.points.filter((p) => p[1] !== null && Number.isFinite(p[1]));
    const path = pts.map((p, j) => `${j ? "L" : "M"}${f.x(p[0]).toFixed(1)},${f.y(p[1]).toFixed(1)}`).join(" ");
    const line = svgEl("path", { d: path, fill: "none", stroke: color, "stroke-width": 1.8, class: "cl-series" }, f.svg);
    line.dataset.name = s.name;
    line.dataset.points = String(pts.length);
    if (s.dashed) line.setAttribute("stroke-dasharray", "5 4");
    if (s.dots || pts.length <= 12) {
      for (const p of pts) svgEl("circle", { cx: f.x(p[0]), cy: f.y(p[1]), r: 2.6, fill: color }, f.svg);
    }
    const item = document.createElement("span");
    item.className = "cl-legend-item";
    const swatch = document.createElement("span");
    swatch.className = `cl-swatch${s.dashed ? " is-dashed" : ""}`;
    swatch.style.borderColor = color;
    const last = pts.length ? ` ${(spec.format ?? fmtValue)(pts[pts.length - 1][1])}` : "";
    item.append(swatch, document.createTextNode(`${s.name}${last}`));
    legend.appendChild(item);
  });
  el.appendChild(legend);
}
