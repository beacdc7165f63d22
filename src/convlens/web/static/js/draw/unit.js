// One unit's value explained (convlens.lab.inspect.unit): the window, the kernel, the products and
// their sum for a convolution; the window and its max/mean for a pooling; the largest x·w terms and
// the whole contribution map for a dense unit.

import { COLORMAPS, signed, unit } from "./colors.js";
import { fmtInt, fmtValue } from "./format.js";
import { captioned, drawGrid } from "./grid.js";
import { drawHeatmap } from "./heatmap.js";

const MAX_CHANNELS = 4;

function line(parent, text, cls = "") {
  const p = document.createElement("p");
  p.className = `cl-unit-line ${cls}`.trim();
  p.textContent = text;
  parent.appendChild(p);
  return p;
}

function maxAbs(values) {
  return Math.max(1e-12, ...values.flat(3).map((v) => Math.abs(v ?? 0)));
}

/** A flat Flatten index as (row, col, channel) of the map before it, when that shape is known. */
function where(i, shape) {
  if (!shape) return String(i);
  const [, w, c] = shape;
  return `${Math.floor(i / (w * c))}, ${Math.floor(i / c) % w}, ${i % c}`;
}

function channel(grid3, k) {
  return grid3.map((row) => row.map((px) => px[k]));
}

/**
 * @param {HTMLElement} el
 * @param {object} d the unit detail
 * @param {object} [opts]
 * @param {string[]} [opts.classNames] names of the output classes (dense output units)
 */
export function drawUnit(el, d, opts = {}) {
  el.replaceChildren();
  const head = document.createElement("h4");
  head.className = "cl-unit-head";
  const at = d.index.length === 3 ? `[${d.index[0]}, ${d.index[1]}], map ${d.index[2]}` : `[${d.index[0]}]`;
  head.textContent = `${d.layer} ${at} = ${fmtValue(d.value)}`;
  head.dataset.value = String(d.value);
  el.appendChild(head);
  const rf = d.receptive_field;
  line(el, rf.whole_input
    ? `Sees the whole input (its receptive field is ${rf.size.join("×")}).`
    : `Receptive field ${rf.size.join("×")}: input rows ${rf.rows[0]}..${rf.rows[1]}, columns ${rf.cols[0]}..${rf.cols[1]}${rf.clipped ? " (clipped at the border: part of it is padding)" : ""}.`, "cl-muted");
  if (d.kind === "conv") {
    const channels = d.channels[1] - d.channels[0] + 1;
    const row = document.createElement("div");
    row.className = "cl-unit-grids";
    el.appendChild(row);
    const values = d.window.flat(2);
    const [wlo, whi] = [Math.min(...values), Math.max(...values)];
    const kb = maxAbs(d.kernel);
    const pb = maxAbs(d.products);
    const kinds = d.real.map((r) => r.map((x) => (x ? 0 : 1)));
    for (let k = 0; k < Math.min(channels, MAX_CHANNELS); k += 1) {
      const suffix = channels > 1 ? ` (channel ${d.channels[0] + k})` : "";
      drawGrid(captioned(row, `Window${suffix}`, `from row ${d.window_start[0]}, col ${d.window_start[1]}`), channel(d.window, k), { kinds, color: (v) => COLORMAPS.paper(unit(v, wlo, whi)), numbers: true, label: "unit window" });
      drawGrid(captioned(row, "× Kernel", ""), channel(d.kernel, k), { color: (v) => signed(v, kb), numbers: true, label: "unit kernel" });
      const prod = drawGrid(captioned(row, "= Products", ""), channel(d.products, k), { color: (v) => signed(v, pb), numbers: true, label: "unit products" });
      prod.el.classList.add("cl-unit-products");
    }
    if (channels > MAX_CHANNELS) line(el, `(${channels - MAX_CHANNELS} more input channels not drawn; all are in the sum)`, "cl-muted");
    const taps = d.products.length * d.products[0].length * channels;
    const sum = line(el, `sum of ${fmtInt(taps)} products = ${fmtValue(d.sum)}`);
    sum.dataset.sum = String(d.sum);
    line(el, `+ bias ${fmtValue(d.bias)} = ${fmtValue(d.pre_activation)} (pre-activation)`);
    line(el, `${d.activation}(${fmtValue(d.pre_activation)}) = ${fmtValue(d.activated)}; the engine's float32 output: ${fmtValue(d.value)}`, "cl-strong");
  } else if (d.kind === "pool") {
    const win = drawGrid(captioned(el, `Window of map ${d.index[2]}`, `from row ${d.window_start[0]}, col ${d.window_start[1]} of the previous layer`), d.window, {
      kinds: d.real.map((r) => r.map((x) => (x ? 0 : 1))), numbers: true, label: "unit window",
    });
    if (d.argmax) win.mark("winner", [d.argmax]);
    line(el, d.pool === "max" ? `max = ${fmtValue(d.result)}` : `mean of ${d.count} real cells = ${fmtValue(d.result)}`, "cl-strong");
  } else if (d.kind === "dense") {
    const name = opts.classNames ? ` (${opts.classNames[d.index[0]]})` : "";
    line(el, `Dense unit ${d.index[0]}${name}: ${fmtInt(d.inputs)} inputs x·w, summed. The largest |x·w|:`);
    const table = document.createElement("table");
    table.className = "cl-table cl-compact";
    const shape = d.input_shape;
    const hdr = table.createTHead().insertRow();
    for (const h of [d.source_shape ? "row, col, map" : "input", "x", "w", "x·w"]) {
      const th = document.createElement("th");
      th.textContent = h;
      hdr.appendChild(th);
    }
    const body = table.createTBody();
    for (const t of d.top) {
      const tr = body.insertRow();
      tr.insertCell().textContent = where(t.index, d.source_shape);
      tr.insertCell().textContent = fmtValue(t.x);
      tr.insertCell().textContent = fmtValue(t.w);
      tr.insertCell().textContent = fmtValue(t.product);
    }
    el.appendChild(table);
    line(el, `sum of all ${fmtInt(d.inputs)} = ${fmtValue(d.sum)}; + bias ${fmtValue(d.bias)} = ${fmtValue(d.pre_activation)} (${d.activation === "softmax" ? "logit" : "pre-activation"})`);
    if (d.activation === "softmax") line(el, `softmax over all units gives ${fmtValue(d.value)}`, "cl-strong");
    if (d.contribution_map) {
      const host = captioned(el, "Where the evidence is", `x·w summed over channels at each position of the map feeding Flatten (input ${shape.join("×")}); red for, blue against`);
      const canvas = document.createElement("canvas");
      const b = maxAbs(d.contribution_map);
      drawHeatmap(canvas, d.contribution_map.map((r) => r.map((v) => 0.5 + v / (2 * b))), { vmin: 0, vmax: 1, cmap: "diverging", scale: 8 });
      host.appendChild(canvas);
    }
  } else {
    line(el, `${d.class_name}: the value passes through element-wise (no window, no weights).`, "cl-muted");
  }
}
