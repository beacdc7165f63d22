// Feature maps of one layer (convlens.lab.inspect.forward's layer entry): one small heat map per
// channel on a stated colour scale (shared by the layer, or each map its own), clickable units.

import { cellAt, drawColorbar, drawHeatmap } from "./heatmap.js";
import { fmtValue } from "./format.js";

/**
 * @param {HTMLElement} el
 * @param {object} layer {name, shape: [H, W, C], maps: (C, H, W), min, max, map_min, map_max}
 * @param {object} [opts]
 * @param {"shared"|"per-map"} [opts.scale] colour scale (default shared)
 * @param {number} [opts.pixels] CSS pixels per map side (default about 64)
 * @param {(r: number, c: number, channel: number) => void} [opts.onUnit] called on a click
 * @returns {{select: (channel: number, r: number, c: number) => void}}
 */
export function drawFeatureMaps(el, layer, opts = {}) {
  el.replaceChildren();
  const scale = opts.scale ?? "shared";
  const [h, w, channels] = layer.shape;
  const px = Math.max(1, Math.round((opts.pixels ?? 64) / Math.max(h, w)));
  const head = document.createElement("div");
  head.className = "cl-maps-head";
  const note = document.createElement("span");
  note.className = "cl-muted";
  note.textContent = scale === "shared"
    ? `one colour scale for all ${channels} maps`
    : "each map stretched to its own range (hover a map for it)";
  head.appendChild(note);
  if (scale === "shared") {
    const bar = document.createElement("div");
    drawColorbar(bar, layer.min, layer.max, "viridis");
    head.appendChild(bar);
  }
  el.appendChild(head);
  const grid = document.createElement("div");
  grid.className = "cl-maps";
  grid.dataset.layer = layer.name;
  grid.dataset.scale = scale;
  const tiles = [];
  for (let ch = 0; ch < channels; ch += 1) {
    const tile = document.createElement("div");
    tile.className = "cl-map";
    tile.dataset.channel = String(ch);
    const wrap = document.createElement("div");
    wrap.className = "cl-map-canvas";
    const canvas = document.createElement("canvas");
    const lo = scale === "shared" ? layer.min : layer.map_min[ch];
    const hi = scale === "shared" ? layer.max : layer.map_max[ch];
    drawHeatmap(canvas, layer.maps[ch], { vmin: lo, vmax: hi, cmap: "viridis", scale: px });
    canvas.title = `${layer.name} map ${ch}: range [${fmtValue(layer.map_min[ch])}, ${fmtValue(layer.map_max[ch])}]`;
    const marker = document.createElement("div");
    marker.className = "cl-map-marker";
    marker.hidden = true;
    wrap.append(canvas, marker);
    const label = document.createElement("span");
    label.className = "cl-map-label";
    label.textContent = String(ch);
    tile.append(wrap, label);
    if (opts.onUnit) {
      canvas.addEventListener("click", (event) => {
        const [r, c] = cellAt(canvas, event);
        opts.onUnit(r, c, ch);
      });
    }
    grid.appendChild(tile);
    tiles.push({ tile, marker });
  }
  el.appendChild(grid);
  return {
    select(channel, r, c) {
      for (const [i, t] of tiles.entries()) {
        const on = i === channel;
        t.tile.classList.toggle("is-selected", on);
        t.marker.hidden = !on;
        if (on) {
          t.marker.style.left = `${c * px}px`;
          t.marker.style.top = `${r * px}px`;
          t.marker.style.width = `${px}px`;
          t.marker.style.height = `${px}px`;
        }
      }
    },
  };
}
