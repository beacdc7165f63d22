// The sliding window, one step at a time, from an explain trace (convlens.lab.explain ConvTrace /
// PoolTrace .to_dict()): the input with its padding and the window's footprint, the kernel, the
// element-wise products, their sum, and the output filling in. Works for convolution and pooling.

import { COLORMAPS, signed } from "./colors.js";
import { fmtValue } from "./format.js";
import { captioned, drawGrid } from "./grid.js";

const MAX_TERMS = 16; // as the terminal's explain (lab.render_explain._MAX_TERMS)

/** "sum = 1 + (-2) + ... = 4" as the terminal prints it (lab.render_explain._sum_text). */
export function sumText(products, bias, total) {
  let terms = products.flat().map((v) => (v >= 0 ? fmtValue(v) : `(${fmtValue(v)})`));
  if (terms.length > MAX_TERMS) terms = [...terms.slice(0, MAX_TERMS - 2), "...", terms[terms.length - 1]];
  const tail = bias ? ` + bias ${fmtValue(bias)}` : "";
  return `sum = ${terms.join(" + ")}${tail} = ${fmtValue(total)}`;
}

function maxAbs(grid) {
  let m = 0;
  for (const row of grid) for (const v of row) if (v !== null && Math.abs(v) > m) m = Math.abs(v);
  return m;
}

function range(grid) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const row of grid) {
    for (const v of row) {
      if (v !== null) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
    }
  }
  return [lo, hi];
}

/** Input-grid colour: light greys behind numbers; black-to-white (like an MNIST digit) when compact. */
function inputColor(grid, compact) {
  const [lo, hi] = range(grid);
  return (v) => {
    const t = hi > lo ? (v - lo) / (hi - lo) : 0;
    return compact ? COLORMAPS.gray(t) : COLORMAPS.paper(t);
  };
}

/** Input coordinates of the window's taps at a step, as padded-grid cells [[r, c], ...]. */
export function tapCells(trace, step) {
  const [kh, kw] = trace.geometry.kernel_size;
  const [dh, dw] = trace.geometry.dilation_rate;
  const [r0, c0] = step.start_padded;
  const cells = [];
  for (let a = 0; a < kh; a += 1) for (let b = 0; b < kw; b += 1) cells.push([r0 + a * dh, c0 + b * dw]);
  return cells;
}

function extentCells(trace, step) {
  const [eh, ew] = trace.geometry.extent;
  const [r0, c0] = step.start_padded;
  const cells = [];
  for (let a = 0; a < eh; a += 1) for (let b = 0; b < ew; b += 1) cells.push([r0 + a, c0 + b]);
  return cells;
}

/**
 * Build the step view for a trace into `el`; returns {show(position)} to move the window.
 * @param {HTMLElement} el
 * @param {object} trace a ConvTrace or PoolTrace to_dict() (steps may omit their feature maps)
 * @param {object} [opts]
 * @param {string} [opts.inputTitle] caption of the input grid
 * @param {string} [opts.inputNote] note under that caption (default: the padding per side)
 * @param {string} [opts.kernelTitle] caption of the kernel grid
 * @param {string} [opts.outputTitle] caption of the output grid
 */
export function drawConvSteps(el, trace, opts = {}) {
  el.replaceChildren();
  const isConv = trace.kind === "conv";
  const g = trace.geometry;
  const [pt, pb] = g.pads[0];
  const [pl, pr] = g.pads[1];
  const row = document.createElement("div");
  row.className = "cl-steps";
  el.appendChild(row);

  const padded = trace.padded;
  const compact = padded[0].length > 16;
  const padNote = opts.inputNote ?? (pt || pb || pl || pr ? `padding top ${pt}, bottom ${pb}, left ${pl}, right ${pr}` : "no padding");
  const inputHost = captioned(row, opts.inputTitle ?? `Input ${g.input_size.join("×")}`, padNote);
  const input = drawGrid(inputHost, padded, {
    kinds: trace.cells,
    color: inputColor(trace.input, compact),
    origin: [-pt, -pl],
    label: "input",
  });
  input.el.classList.add("cl-input-grid");

  let kernel = null;
  if (isConv) {
    row.appendChild(operator("×"));
    const kb = Math.max(maxAbs(trace.kernel), 1e-12);
    const kernelHost = captioned(row, opts.kernelTitle ?? `Kernel ${g.kernel_size.join("×")}`,
      g.dilation_rate.some((d) => d > 1) ? `dilation ${g.dilation_rate.join("×")}` : "");
    kernel = drawGrid(kernelHost, trace.kernel, { color: (v) => signed(v, kb), numbers: true, label: "kernel" });
    kernel.el.classList.add("cl-kernel-grid");
    row.appendChild(operator("="));
  } else {
    row.appendChild(operator("→"));
  }
  const productsHost = captioned(row, isConv ? "Products" : "Window", isConv ? "input × kernel" : trace.pool === "max" ? "max wins (padding never does)" : "mean of the real cells");
  const sumBox = document.createElement("div");
  sumBox.className = "cl-sum";
  row.appendChild(operator("→"));
  const outBound = Math.max(maxAbs(trace.output), 1e-12);
  const outHost = captioned(row, opts.outputTitle ?? `Output ${g.output_size.join("×")}`, "");
  const output = drawGrid(outHost, trace.output, {
    color: (v) => signed(v, outBound),
    label: "output",
  });
  output.el.classList.add("cl-output-grid");
  productsHost.parentElement.appendChild(sumBox);
  const productBound = isConv ? Math.max(...trace.steps.map((s) => maxAbs(s.products)), 1e-12) : 0;

  const caption = document.createElement("p");
  caption.className = "cl-step-caption";
  el.appendChild(caption);

  function show(position) {
    const p = Math.min(Math.max(position, 0), trace.steps.length - 1);
    const step = trace.steps[p];
    input.mark("extent", extentCells(trace, step));
    input.mark("tap", tapCells(trace, step));
    output.reveal(p + 1);
    output.mark("current", [step.index]);
    const [kh, kw] = g.kernel_size;
    const rs = step.start_input[0];
    const cs = step.start_input[1];
    const lastR = rs + (kh - 1) * g.dilation_rate[0];
    const lastC = cs + (kw - 1) * g.dilation_rate[1];
    if (isConv) {
      const products = drawGrid(productsHost, step.products, {
        color: (v) => signed(v, productBound),
        numbers: true,
        label: "products",
      });
      products.el.classList.add("cl-products-grid");
      sumBox.replaceChildren(sumLine(sumText(step.products, trace.bias, step.total), step.total));
    } else {
      const win = drawGrid(productsHost, step.window, { numbers: true, kinds: step.real.map((r) => r.map((x) => (x ? 0 : 1))), label: "window" });
      win.el.classList.add("cl-products-grid");
      if (step.argmax) win.mark("winner", [[step.argmax[0] - rs, step.argmax[1] - cs]]);
      const text = trace.pool === "max" ? `max = ${fmtValue(step.value)}` : `mean = ${fmtValue(step.value)} (${step.count} real cells)`;
      sumBox.replaceChildren(sumLine(text, step.value));
    }
    caption.textContent = `Step ${p + 1} of ${trace.steps.length}: output[${step.index[0]}, ${step.index[1]}] reads input rows ${rs}..${lastR}, columns ${cs}..${lastC}` +
      (rs < 0 || cs < 0 || lastR >= g.input_size[0] || lastC >= g.input_size[1] ? " (partly padding)" : "");
    el.dataset.position = String(p);
    return step;
  }
  return { show, steps: trace.steps.length };
}

function operator(symbol) {
  const span = document.createElement("span");
  span.className = "cl-operator";
  span.textContent = symbol;
  span.setAttribute("aria-hidden", "true");
  return span;
}

function sumLine(text, total) {
  const p = document.createElement("p");
  p.className = "cl-sum-text";
  p.dataset.total = String(total);
  p.textContent = text;
  return p;
}
