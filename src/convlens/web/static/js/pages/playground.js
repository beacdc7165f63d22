// The playground tab: one convolution or pooling on a small input, traced by the server
// (convlens.lab.explain) and replayed here step by step. Every control is mirrored in the URL (p.*).

import { api } from "../api.js";
import { signed } from "../draw/colors.js";
import { drawConvSteps } from "../draw/conv_step.js";
import { fmtValue } from "../draw/format.js";
import { captioned, drawGrid } from "../draw/grid.js";
import { $, debounce, fillSelect, intOf, message, segmented, showFor } from "../ui.js";
import { packPixels, readUrl, unpackPixels, writeUrl } from "../url.js";
import { createSketch } from "../widgets/sketch.js";

const GENERATED = ["ramp", "checker", "random"];

/** Parse "1,2;3,4" into rows of numbers; throws a sentence saying what is wrong. */
export function parseRows(text, what) {
  const rows = text.split(";").map((r) => r.trim()).filter(Boolean);
  if (!rows.length) throw new Error(`${what}: type rows of numbers split by ';', e.g. 1,0;0,1`);
  const out = rows.map((r, i) => r.split(/[\s,]+/).filter(Boolean).map((v) => {
    const x = Number(v);
    if (!Number.isFinite(x)) throw new Error(`${what}: row ${i + 1} has ${JSON.stringify(v)}, not a number`);
    return x;
  }));
  const widths = new Set(out.map((r) => r.length));
  if (widths.size !== 1) throw new Error(`${what}: rows must have the same length, got ${out.map((r) => r.length).join(", ")}`);
  return out;
}

function rowsText(rows) {
  return rows.map((r) => r.join(",")).join("; ");
}

export function initPlayground(ctx) {
  const els = {
    source: $("pg-source"), height: $("pg-height"), width: $("pg-width"), seed: $("pg-seed"), dataset: $("pg-dataset"),
    index: $("pg-index"), numbers: $("pg-numbers"), file: $("pg-file"), kernel: $("pg-kernel"), kernelNumbers: $("pg-kernel-numbers"),
    bias: $("pg-bias"), poolH: $("pg-pool-h"), poolW: $("pg-pool-w"), strideH: $("pg-stride-h"), strideW: $("pg-stride-w"),
    padding: $("pg-padding"), padT: $("pg-pad-t"), padB: $("pg-pad-b"), padL: $("pg-pad-l"), padR: $("pg-pad-r"),
    dilH: $("pg-dil-h"), dilW: $("pg-dil-w"), compare: $("pg-compare"), backward: $("pg-backward"),
    form: $("pg-form"), note: $("pg-input-note"), error: $("pg-error"), formula: $("pg-formula"), outsize: $("pg-outsize"),
    why: $("pg-why"), steps: $("pg-steps"), scrub: $("pg-scrub"), pos: $("pg-pos"), play: $("pg-play"), speed: $("pg-speed"),
    sourceNote: $("pg-source-note"), stepsCard: $("pg-steps-card"), compareCard: $("pg-compare-card"), compareBox: $("pg-compare-box"),
    backwardCard: $("pg-backward-card"), backwardBox: $("pg-backward-box"), bscrub: $("pg-bscrub"), bpos: $("pg-bpos"), bnote: $("pg-backward-note"),
  };
  fillSelect(els.kernel, [...Object.keys(ctx.info.kernels).map((k) => [k, k]), ["custom", "custom numbers"]]);
  fillSelect(els.dataset, ctx.info.datasets.map((d) => [d.name, d.label]));
  let pixels = null; // (H, W) grid from an upload or the drawing pad, k / 255
  let sketch = null;
  let view = null;
  let bview = null;
  let position = 0;
  let timer = 0;
  let pending = null;
  const op = segmented($("pg-op"), () => changed());

  // ----- state <-> URL -------------------------------------------------------------------------
  function load() {
    const u = readUrl();
    const pick = (key, fallback) => (u[key] !== undefined ? u[key] : fallback);
    els.source.value = ["ramp", "checker", "random", "numbers", "dataset", "upload", "draw"].includes(u["p.src"]) ? u["p.src"] : "ramp";
    els.height.value = pick("p.h", "5");
    els.width.value = pick("p.w", "5");
    els.seed.value = pick("p.seed", "0");
    if (u["p.ds"]) els.dataset.value = u["p.ds"];
    els.index.value = pick("p.idx", "0");
    if (u["p.nums"] && !u["p.nums"].startsWith("u8:")) els.numbers.value = u["p.nums"];
    const packed = unpackPixels(u["p.nums"]);
    pixels = packed ? packed.map((row) => row.map((px) => px[0])) : null;
    op.set(["conv", "max", "avg"].includes(u["p.op"]) ? u["p.op"] : "conv");
    els.kernel.value = u["p.k"] && [...els.kernel.options].some((o) => o.value === u["p.k"]) ? u["p.k"] : "sobel_x";
    if (u["p.kn"]) els.kernelNumbers.value = u["p.kn"];
    els.bias.value = pick("p.bias", "0");
    const pairs = (key, a, b, fallback) => {
      const [x, y] = pick(key, fallback).split(",");
      a.value = x;
      b.value = y ?? x;
    };
    pairs("p.pool", els.poolH, els.poolW, "2,2");
    pairs("p.s", els.strideH, els.strideW, "1,1");
    pairs("p.d", els.dilH, els.dilW, "1,1");
    const pad = pick("p.pad", "valid");
    if (pad === "valid" || pad === "same") els.padding.value = pad;
    else {
      els.padding.value = "explicit";
      const [t, b, l, r] = pad.split(",");
      [els.padT.value, els.padB.value, els.padL.value, els.padR.value] = [t, b, l, r].map((v) => v ?? "0");
    }
    els.compare.checked = pick("p.cmp", "1") !== "0";
    els.backward.checked = pick("p.bwd", "0") === "1";
    position = Math.max(0, Number.parseInt(pick("p.step", "1"), 10) - 1 || 0);
  }

  function save() {
    const src = els.source.value;
    writeUrl({
      "p.src": src,
      "p.h": GENERATED.includes(src) || src === "upload" ? els.height.value : null,
      "p.w": GENERATED.includes(src) || src === "upload" ? els.width.value : null,
      "p.seed": src === "random" ? els.seed.value : null,
      "p.ds": src === "dataset" ? els.dataset.value : null,
      "p.idx": src === "dataset" ? els.index.value : null,
      "p.nums": src === "numbers" ? els.numbers.value : (src === "upload" || src === "draw") && pixels ? packPixels(pixels) : null,
      "p.op": op.get(),
      "p.k": op.get() === "conv" ? els.kernel.value : null,
      "p.kn": op.get() === "conv" && els.kernel.value === "custom" ? els.kernelNumbers.value : null,
      "p.bias": op.get() === "conv" && Number(els.bias.value) ? els.bias.value : null,
      "p.pool": op.get() !== "conv" ? `${els.poolH.value},${els.poolW.value}` : null,
      "p.s": `${els.strideH.value},${els.strideW.value}`,
      "p.d": op.get() === "conv" ? `${els.dilH.value},${els.dilW.value}` : null,
      "p.pad": els.padding.value === "explicit" ? [els.padT, els.padB, els.padL, els.padR].map((e) => e.value).join(",") : els.padding.value,
      "p.cmp": els.compare.checked ? null : "0",
      "p.bwd": els.backward.checked ? "1" : null,
    });
  }

  // ----- the request -----------------------------------------------------------------------------
  function body() {
    const src = els.source.value;
    let input;
    if (GENERATED.includes(src)) input = { kind: src, height: intOf(els.height, 5), width: intOf(els.width, 5), seed: intOf(els.seed, 0) };
    else if (src === "numbers") input = { kind: "numbers", numbers: parseRows(els.numbers.value, "Input numbers") };
    else if (src === "dataset") input = { kind: "dataset", dataset: els.dataset.value, index: intOf(els.index, 0) };
    else {
      if (!pixels) throw new Error(src === "draw" ? "Draw something on the pad first." : "Choose an image file first.");
      input = { kind: "numbers", numbers: pixels };
    }
    const padding = els.padding.value === "explicit"
      ? { top: intOf(els.padT, 0), bottom: intOf(els.padB, 0), left: intOf(els.padL, 0), right: intOf(els.padR, 0) }
      : els.padding.value;
    const req = {
      input,
      op: op.get(),
      strides: [intOf(els.strideH, 1), intOf(els.strideW, 1)],
      padding,
      backward: els.backward.checked,
      compare: els.compare.checked,
    };
    if (req.op === "conv") {
      req.kernel = els.kernel.value === "custom" ? parseRows(els.kernelNumbers.value, "Kernel numbers") : els.kernel.value;
      req.dilation_rate = [intOf(els.dilH, 1), intOf(els.dilW, 1)];
      req.bias = Number(els.bias.value) || 0;
    } else {
      req.pool_size = [intOf(els.poolH, 2), intOf(els.poolW, 2)];
    }
    return req;
  }

  async function refresh() {
    let req;
    try {
      req = body();
    } catch (err) {
      showError("Check the settings", err.message);
      return;
    }
    const token = {};
    pending = token;
    try {
      const result = await api("/api/playground", { body: req });
      if (pending !== token) return;
      render(result);
    } catch (err) {
      if (pending !== token) return;
      showError(err.status === 422 ? "This setting has no output" : "The server could not trace this", err.detail ?? err.message);
    }
  }
  const changed = debounce(() => {
    syncVisibility();
    save();
    refresh();
  }, 120);

  function showError(title, text) {
    stop();
    message(els.error, title, text);
    els.outsize.textContent = "No output";
    els.why.textContent = "";
    els.formula.hidden = true;
    els.stepsCard.hidden = true;
    els.compareCard.hidden = true;
    els.backwardCard.hidden = true;
    ctx.root.dataset.pgState = "error";
  }

  // ----- rendering -------------------------------------------------------------------------------
  function render(result) {
    const trace = result.trace;
    const g = trace.geometry;
    els.error.hidden = true;
    els.formula.hidden = false;
    els.stepsCard.hidden = false;
    els.outsize.textContent = `Output ${g.output_size[0]} × ${g.output_size[1]}`;
    els.outsize.dataset.size = g.output_size.join("x");
    els.why.textContent = result.why;
    els.formula.textContent = result.formula.join("\n");
    els.sourceNote.textContent = `Input: ${trace.source}. Grey stripes: zero padding. Blue: the window's taps. Amber: the output cell being written.`;
    view = drawConvSteps(els.steps, trace);
    els.scrub.max = String(view.steps - 1);
    position = Math.min(position, view.steps - 1);
    show(position);
    renderCompare(result.comparison);
    renderBackward(result.backward);
    ctx.root.dataset.pgState = "ready";
  }

  function show(p) {
    if (!view) return;
    position = Math.min(Math.max(p, 0), view.steps - 1);
    view.show(position);
    els.scrub.value = String(position);
    els.pos.textContent = `step ${position + 1} / ${view.steps}`;
    writeUrl({ "p.step": position ? position + 1 : null });
  }

  function renderCompare(cmp) {
    els.compareCard.hidden = !cmp;
    if (!cmp) return;
    els.compareBox.replaceChildren();
    const table = document.createElement("table");
    table.className = "cl-table";
    const head = table.createTHead().insertRow();
    for (const h of ["Convention", "Pads (top, bottom)", "Pads (left, right)", "Output", "First window rows", "Last window rows", "Padding never read"]) {
      const th = document.createElement("th");
      th.textContent = h;
      head.appendChild(th);
    }
    const tbody = table.createTBody();
    for (const r of cmp.results) {
      const tr = tbody.insertRow();
      const unread = r.pad_read.map((p, a) => {
        const total = r.pads[a][0] + r.pads[a][1];
        const read = p[0] + p[1];
        return total > read ? `${total - read} ${a ? "col" : "row"}${total - read > 1 ? "s" : ""}` : "";
      }).filter(Boolean).join(", ");
      for (const text of [r.label, r.pads[0].join(", "), r.pads[1].join(", "), r.output_size.join("×"),
        `${r.first_window[0][0]}..${r.first_window[0][1]}`, `${r.last_window[0][0]}..${r.last_window[0][1]}`, unread || "none"]) {
        tr.insertCell().textContent = text;
      }
    }
    els.compareBox.appendChild(table);
    const row = document.createElement("div");
    row.className = "cl-steps cl-compare-grids";
    const bound = Math.max(1e-12, ...cmp.results.flatMap((r) => r.output.flat().map(Math.abs)));
    const [a, b] = cmp.results;
    const sameSize = a.output.length === b.output.length && a.output[0].length === b.output[0].length;
    const differs = [];
    if (sameSize) a.output.forEach((line, r) => line.forEach((v, c) => { if (Math.abs(v - b.output[r][c]) > 1e-9 * Math.max(1, Math.abs(v))) differs.push([r, c]); }));
    for (const r of cmp.results) {
      const grid = drawGrid(captioned(row, r.label, `output ${r.output_size.join("×")}`), r.output, { color: (v) => signed(v, bound) });
      if (r.name !== "explicit") grid.mark("differs", differs);
    }
    els.compareBox.appendChild(row);
    const legend = document.createElement("p");
    legend.className = "hint";
    legend.textContent = "Same kernel, same input; amber outlines: the cells where TensorFlow's and PyTorch's outputs differ.";
    els.compareBox.appendChild(legend);
    for (const [pair, shift] of Object.entries(cmp.shifts)) {
      const p = document.createElement("p");
      p.className = "cl-small";
      const diff = cmp.differing[pair];
      if (shift === null) p.textContent = `${pair}: different output sizes, so different maps.`;
      else if (!diff.rows.length) p.textContent = `${pair}: windows shifted by ${shift[0]} row(s), ${shift[1]} col(s); on this input the outputs are equal.`;
      else p.textContent = `${pair}: windows shifted by ${shift[0]} row(s), ${shift[1]} col(s); on this input the outputs differ in rows ${diff.rows.join(", ")} and columns ${diff.cols.join(", ")}.`;
      els.compareBox.appendChild(p);
    }
  }

  function renderBackward(back) {
    els.backwardCard.hidden = !back;
    bview = null;
    if (!back) return;
    els.backwardBox.replaceChildren();
    const gb = Math.max(1e-12, ...back.grad_x.flat().map(Math.abs));
    if (back.kind === "conv_backward") {
      els.bnote.textContent = "the input gradient is a stride-1 convolution of the zero-inserted, padded grad_out with the flipped kernel";
      const top = document.createElement("div");
      els.backwardBox.appendChild(top);
      bview = drawConvSteps(top, back.trace, {
        inputTitle: "grad_out, zero-inserted and padded",
        inputNote: "stripes: a border of extent − 1 zeros; pale: zeros inserted between strided outputs",
        kernelTitle: "Kernel flipped 180°",
        outputTitle: "Gradient of the padded input",
      });
      els.bscrub.max = String(bview.steps - 1);
      $("pg-bstepper").hidden = false;
      showBackward(0);
    } else {
      els.bnote.textContent = back.trace.pool === "max" ? "each window's gradient goes to its max (first in row order); overlaps add up" : "each window's gradient is shared by its real cells";
      $("pg-bstepper").hidden = true;
    }
    const row = document.createElement("div");
    row.className = "cl-steps";
    const gob = Math.max(1e-12, ...back.grad_out.flat().map(Math.abs));
    drawGrid(captioned(row, "grad_out (1, 2, 3, ...)", "the gradient arriving at the output"), back.grad_out, { color: (v) => signed(v, gob) });
    const gx = drawGrid(captioned(row, "grad_x", "the gradient of the input"), back.grad_x, { color: (v) => signed(v, gb) });
    gx.el.classList.add("cl-gradx-grid");
    els.backwardBox.appendChild(row);
  }

  function showBackward(p) {
    if (!bview) return;
    const q = Math.min(Math.max(p, 0), bview.steps - 1);
    bview.show(q);
    els.bscrub.value = String(q);
    els.bpos.textContent = `step ${q + 1} / ${bview.steps}`;
  }

  // ----- playing ---------------------------------------------------------------------------------
  function stop() {
    clearInterval(timer);
    timer = 0;
    els.play.textContent = "Play";
  }
  function play() {
    if (!view) return;
    if (timer) return stop();
    if (position >= view.steps - 1) show(0);
    els.play.textContent = "Pause";
    timer = setInterval(() => {
      if (position >= view.steps - 1) stop();
      else show(position + 1);
    }, 1000 / Number(els.speed.value));
  }
  $("pg-stepper").addEventListener("click", (event) => {
    const action = event.target.closest("button")?.dataset.step;
    if (!action || !view) return;
    if (action === "play") return play();
    stop();
    show({ first: 0, prev: position - 1, next: position + 1, last: view.steps - 1 }[action]);
  });
  $("pg-bstepper").addEventListener("click", (event) => {
    const action = event.target.closest("button")?.dataset.step;
    if (action) showBackward(Number(els.bscrub.value) + (action === "next" ? 1 : -1));
  });
  els.scrub.addEventListener("input", () => {
    stop();
    show(Number(els.scrub.value));
  });
  els.bscrub.addEventListener("input", () => showBackward(Number(els.bscrub.value)));
  els.speed.addEventListener("change", () => {
    if (timer) {
      stop();
      play();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (ctx.activeTab() !== "playground" || event.target.closest("input, textarea, select")) return;
    if (event.key === "ArrowRight") show(position + 1);
    else if (event.key === "ArrowLeft") show(position - 1);
    else if (event.key === " ") {
      event.preventDefault();
      play();
    } else return;
    if (event.key !== " ") stop();
  });

  // ----- inputs ----------------------------------------------------------------------------------
  function syncVisibility() {
    const src = els.source.value;
    showFor(els.form, "source", src);
    showFor(els.form, "op", op.get());
    $("pg-kernel-numbers-label").hidden = op.get() !== "conv" || els.kernel.value !== "custom";
    $("pg-pads").hidden = els.padding.value !== "explicit";
    if (src === "draw" && !sketch) {
      sketch = createSketch($("pg-sketch"), (grid) => {
        pixels = grid;
        changed();
      });
      if (pixels && pixels.length === 28 && pixels[0].length === 28) sketch.load(pixels);
    }
    els.note.textContent = src === "draw" ? "The pad gives 28×28 values: each the mean of a 10×10 block, / 255."
      : src === "upload" ? "Converted to greyscale (Pillow 'L'), resized to Height × Width, divided by 255."
        : src === "dataset" ? "28×28 test image, pixels / 255 (numbers are hidden when the grid is wide; hover a cell)."
          : "";
  }
  let lastFile = null;
  async function upload() {
    try {
      const out = await api("/api/images", {
        body: lastFile,
        query: { height: intOf(els.height, 12), width: intOf(els.width, 12), channels: 1, invert: "no" },
      });
      pixels = out.pixels.map((row) => row.map((px) => px[0]));
      els.note.textContent = out.description;
      changed();
    } catch (err) {
      showError("The image was refused", err.detail ?? err.message);
    }
  }
  els.form.addEventListener("input", (event) => {
    if (event.target === els.file) return;
    if (lastFile && els.source.value === "upload" && (event.target === els.height || event.target === els.width)) {
      upload();
      return;
    }
    if (event.target === els.kernel && els.kernel.value !== "custom") els.kernelNumbers.value = rowsText(ctx.info.kernels[els.kernel.value]);
    if (event.target === els.source && els.source.value !== "upload" && els.source.value !== "draw") pixels = null;
    changed();
  });
  els.file.addEventListener("change", () => {
    lastFile = els.file.files[0] ?? null;
    if (lastFile) upload();
  });

  load();
  if (els.kernel.value !== "custom") els.kernelNumbers.value = rowsText(ctx.info.kernels[els.kernel.value]);
  syncVisibility();
  refresh();
  return { activate() {}, deactivate: stop };
}
