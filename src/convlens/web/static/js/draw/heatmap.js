// Heat maps on a <canvas>: one pixel per value, scaled up with crisp edges, on a stated colour scale;
// colour bars that print their range; an image with a rectangle (a receptive field) or a heat overlay.

import { COLORMAPS, css, unit } from "./colors.js";
import { fmtValue } from "./format.js";

/**
 * Paint a 2-D grid on a canvas.
 * @param {HTMLCanvasElement} canvas
 * @param {number[][]} grid rows of numbers
 * @param {object} opts
 * @param {number} opts.vmin
 * @param {number} opts.vmax
 * @param {string} [opts.cmap] a COLORMAPS name (default viridis)
 * @param {number} [opts.scale] CSS pixels per value (default 4)
 */
export function drawHeatmap(canvas, grid, opts) {
  const h = grid.length;
  const w = h ? grid[0].length : 0;
  const cmap = COLORMAPS[opts.cmap ?? "viridis"];
  canvas.width = w;
  canvas.height = h;
  const scale = opts.scale ?? 4;
  canvas.style.width = `${w * scale}px`;
  canvas.style.height = `${h * scale}px`;
  canvas.classList.add("cl-heatmap");
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let r = 0; r < h; r += 1) {
    for (let c = 0; c < w; c += 1) {
      const rgb = cmap(unit(grid[r][c], opts.vmin, opts.vmax));
      const i = (r * w + c) * 4;
      img.data[i] = rgb[0];
      img.data[i + 1] = rgb[1];
      img.data[i + 2] = rgb[2];
      img.data[i + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  return canvas;
}

/** The (row, col) of the value under a mouse event on a heat-map canvas. */
export function cellAt(canvas, event) {
  const box = canvas.getBoundingClientRect();
  const c = Math.floor(((event.clientX - box.left) / box.width) * canvas.width);
  const r = Math.floor(((event.clientY - box.top) / box.height) * canvas.height);
  return [Math.min(Math.max(r, 0), canvas.height - 1), Math.min(Math.max(c, 0), canvas.width - 1)];
}

/**
 * A horizontal colour bar with its range written under it.
 * @param {HTMLElement} el
 * @param {number} vmin
 * @param {number} vmax
 * @param {string} [cmap]
 * @param {string} [label]
 */
export function drawColorbar(el, vmin, vmax, cmap = "viridis", label = "") {
  el.replaceChildren();
  const box = document.createElement("div");
  box.className = "cl-colorbar";
  const canvas = document.createElement("canvas");
  canvas.width = 64;
  canvas.height = 1;
  const ctx = canvas.getContext("2d");
  for (let i = 0; i < 64; i += 1) {
    ctx.fillStyle = css(COLORMAPS[cmap](i / 63));
    ctx.fillRect(i, 0, 1, 1);
  }
  const ends = document.createElement("div");
  ends.className = "cl-colorbar-ends";
  const lo = document.createElement("span");
  lo.textContent = fmtValue(vmin);
  const mid = document.createElement("span");
  mid.textContent = label;
  const hi = document.createElement("span");
  hi.textContent = fmtValue(vmax);
  ends.append(lo, mid, hi);
  box.append(canvas, ends);
  box.dataset.vmin = String(vmin);
  box.dataset.vmax = String(vmax);
  el.appendChild(box);
  return box;
}

/** An input image, (H, W, C) lists with values in [0, 1], as RGBA pixels (C = 1: grey; C = 3: colour). */
function imagePixels(image, data) {
  const h = image.length;
  const w = image[0].length;
  for (let r = 0; r < h; r += 1) {
    for (let c = 0; c < w; c += 1) {
      const px = image[r][c];
      const vals = Array.isArray(px) ? px : [px];
      const rgb = vals.length >= 3 ? vals.slice(0, 3) : [vals[0], vals[0], vals[0]];
      const i = (r * w + c) * 4;
      for (let k = 0; k < 3; k += 1) data[i + k] = Math.round(Math.min(Math.max(rgb[k], 0), 1) * 255);
      data[i + 3] = 255;
    }
  }
}

/**
 * Draw an image with an optional heat overlay and an optional highlighted box (a receptive field).
 * @param {HTMLCanvasElement} canvas
 * @param {number[][][]} image (H, W, C) in [0, 1]
 * @param {object} [opts]
 * @param {{rows: number[], cols: number[]}} [opts.box] inclusive rows / cols to highlight
 * @param {number[][]} [opts.heat] (H, W) values drawn over the image
 * @param {string} [opts.cmap] colour map of the heat (default hot)
 * @param {number} [opts.alpha] heat opacity (default 0.55)
 * @param {number} [opts.scale] CSS pixels per image pixel (default 8)
 */
export function drawImage(canvas, image, opts = {}) {
  const h = image.length;
  const w = image[0].length;
  const scale = opts.scale ?? 8;
  canvas.width = w * scale;
  canvas.height = h * scale;
  canvas.style.width = `${w * scale}px`;
  canvas.style.height = `${h * scale}px`;
  const ctx = canvas.getContext("2d");
  const small = document.createElement("canvas");
  small.width = w;
  small.height = h;
  const sctx = small.getContext("2d");
  const img = sctx.createImageData(w, h);
  imagePixels(image, img.data);
  sctx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(small, 0, 0, w * scale, h * scale);
  if (opts.heat) {
    let lo = Infinity;
    let hi = -Infinity;
    for (const row of opts.heat) for (const v of row) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const heat = sctx.createImageData(w, h);
    const cmap = COLORMAPS[opts.cmap ?? "hot"];
    for (let r = 0; r < h; r += 1) {
      for (let c = 0; c < w; c += 1) {
        const rgb = cmap(unit(opts.heat[r][c], lo, hi));
        const i = (r * w + c) * 4;
        heat.data.set([rgb[0], rgb[1], rgb[2], 255], i);
      }
    }
    sctx.putImageData(heat, 0, 0);
    ctx.globalAlpha = opts.alpha ?? 0.55;
    ctx.drawImage(small, 0, 0, w * scale, h * scale);
    ctx.globalAlpha = 1;
  }
  if (opts.box) {
    const [r0, r1] = opts.box.rows;
    const [c0, c1] = opts.box.cols;
    ctx.fillStyle = "rgba(37, 99, 235, 0.28)";
    ctx.fillRect(c0 * scale, r0 * scale, (c1 - c0 + 1) * scale, (r1 - r0 + 1) * scale);
    ctx.strokeStyle = "rgb(37, 99, 235)";
    ctx.lineWidth = 2;
    ctx.strokeRect(c0 * scale + 1, r0 * scale + 1, (c1 - c0 + 1) * scale - 2, (r1 - r0 + 1) * scale - 2);
    canvas.dataset.box = JSON.stringify(opts.box);
  } else {
    delete canvas.dataset.box;
  }
  return canvas;
}
