// Learned kernels (convlens.lab.inspect.filters): one tile per (filter, input channel), a colour scale
// symmetric about zero (red positive, blue negative); hover a tile for its numbers.

import { drawColorbar, drawHeatmap } from "./heatmap.js";
import { fmtValue } from "./format.js";

/**
 * @param {HTMLElement} el
 * @param {{layers: {name: string, shape: number[], kernels: number[][][][], bound: number, shown: number[]}[]}} data
 */
export function drawFilters(el, data) {
  el.replaceChildren();
  for (const layer of data.layers) {
    const section = document.createElement("section");
    section.className = "cl-filters";
    const head = document.createElement("div");
    head.className = "cl-maps-head";
    const title = document.createElement("span");
    title.className = "cl-strong";
    const [kh, kw, c, f] = layer.shape;
    title.textContent = `${layer.name}: ${f} filters of ${kh}×${kw}×${c}` + (layer.shown[0] < f || layer.shown[1] < c ? ` (first ${layer.shown[0]} × ${layer.shown[1]} channels shown)` : "");
    const bar = document.createElement("div");
    drawColorbar(bar, -layer.bound, layer.bound, "diverging", "0");
    head.append(title, bar);
    section.appendChild(head);
    const grid = document.createElement("div");
    grid.className = "cl-maps";
    layer.kernels.forEach((channels, fi) => {
      channels.forEach((kernel, ci) => {
        const tile = document.createElement("div");
        tile.className = "cl-map";
        const canvas = document.createElement("canvas");
        const norm = kernel.map((row) => row.map((v) => 0.5 + v / (2 * layer.bound)));
        drawHeatmap(canvas, norm, { vmin: 0, vmax: 1, cmap: "diverging", scale: Math.max(4, Math.round(54 / Math.max(kh, kw))) });
        canvas.title = kernel.map((row) => row.map(fmtValue).join("  ")).join("\n");
        const label = document.createElement("span");
        label.className = "cl-map-label";
        label.textContent = channels.length > 1 ? `${fi}·${ci}` : String(fi);
        tile.append(canvas, label);
        grid.appendChild(tile);
      });
    });
    section.appendChild(grid);
    el.appendChild(section);
  }
}
