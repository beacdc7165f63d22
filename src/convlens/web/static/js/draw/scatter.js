// Accuracy-versus-cost scatter with its Pareto front (the trials no other beats on both), clickable points.

import { fmtPct } from "./format.js";
import { frame, svgEl } from "./svg.js";

/**
 * @param {HTMLElement} el
 * @param {object} spec
 * @param {{id: number, x: number, y: number, label: string}[]} spec.points y is accuracy in [0, 1]
 * @param {number[]} spec.front ids on the Pareto front, in order of increasing cost
 * @param {string} spec.xLabel
 * @param {boolean} [spec.logX]
 * @param {number} [spec.selected] id drawn selected
 * @param {(id: number) => void} [spec.onPoint]
 */
export function drawScatter(el, spec) {
  el.replaceChildren();
  const pts = spec.points.filter((p) => p.x !== null && p.y !== null);
  if (!pts.length) {
    const p = document.createElement("p");
    p.className = "cl-muted";
    p.textContent = `no trial recorded ${spec.xLabel}`;
    el.appendChild(p);
    return;
  }
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y * 100);
  let x0 = Math.min(...xs);
  let x1 = Math.max(...xs);
  if (spec.logX) {
    x0 /= 1.3;
    x1 *= 1.3;
  } else {
    const pad = (x1 - x0) * 0.06 || 1;
    x0 = Math.max(0, x0 - pad);
    x1 += pad;
  }
  const ypad = (Math.max(...ys) - Math.min(...ys)) * 0.1 || 1;
  const f = frame(el, {
    xRange: [x0, x1],
    yRange: [Math.min(...ys) - ypad, Math.min(100, Math.max(...ys) + ypad)],
    xLabel: spec.xLabel,
    yLabel: "test accuracy (%)",
    logX: spec.logX,
    height: 220,
    width: 340,
  });
  const byId = new Map(pts.map((p) => [p.id, p]));
  const front = spec.front.map((id) => byId.get(id)).filter(Boolean);
  const d = front.map((p, j) => `${j ? "L" : "M"}${f.x(p.x).toFixed(1)},${f.y(p.y * 100).toFixed(1)}`).join(" ");
  svgEl("path", { d, class: "cl-front" }, f.svg);
  const onFront = new Set(spec.front);
  for (const p of pts) {
    const dot = svgEl("circle", {
      cx: f.x(p.x),
      cy: f.y(p.y * 100),
      r: onFront.has(p.id) ? 5 : 4,
      class: `cl-point${onFront.has(p.id) ? " is-front" : ""}${p.id === spec.selected ? " is-selected" : ""}`,
    }, f.svg);
    dot.dataset.id = String(p.id);
    svgEl("title", {}, dot).textContent = `${p.label}: ${fmtPct(p.y)}`;
    if (spec.onPoint) dot.addEventListener("click", () => spec.onPoint(p.id));
  }
}
