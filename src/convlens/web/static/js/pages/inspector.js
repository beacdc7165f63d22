// The inspector tab: pick a model and an input; see the probabilities, every layer's feature maps,
// the filters, the detailed summary, saliency and Grad-CAM; click a unit for its receptive field and
// the dot product behind it. State in the URL (i.*).

import { api } from "../api.js";
import { drawBars } from "../draw/bars.js";
import { drawFeatureMaps } from "../draw/feature_maps.js";
import { drawFilters } from "../draw/filters.js";
import { fmtInt } from "../draw/format.js";
import { drawColorbar, drawImage } from "../draw/heatmap.js";
import { drawSummary } from "../draw/summary.js";
import { drawUnit } from "../draw/unit.js";
import { $, fillSelect, intOf, message, segmented, showFor } from "../ui.js";
import { packPixels, readUrl, unpackPixels, writeUrl } from "../url.js";
import { createSketch } from "../widgets/sketch.js";

export function initInspector(ctx) {
  const els = {
    model: $("in-model"), info: $("in-model-info"), dataset: $("in-dataset"), index: $("in-index"), file: $("in-file"),
    input: $("in-input"), inputNote: $("in-input-note"), probs: $("in-probs"), desc: $("in-desc"), note: $("in-note"),
    panel: $("in-panel"), unit: $("in-unit"), course: $("in-course"), courseText: $("in-course-text"), courseBar: $("in-course-bar"),
  };
  fillSelect(els.dataset, ctx.info.datasets.map((d) => [d.name, d.label]));
  const classNames = Object.fromEntries(ctx.info.datasets.map((d) => [d.name, d.class_names]));
  let models = [];
  let pixels = null; // (H, W, C) from drawing or upload
  let forward = null;
  let unit = null; // {layer, index}
  let sketch = null;
  let token = 0;
  let coursePoll = 0;
  const source = segmented($("in-source"), () => { syncSource(); save(); run(); });
  const viewSel = segmented($("in-view"), () => { save(); renderView(); });
  const scale = segmented($("in-scale"), () => { save(); renderView(); });

  function modelRef() {
    return els.model.value;
  }
  function currentModel() {
    return models.find((m) => m.name === modelRef());
  }

  // ----- URL ---------------------------------------------------------------------------------------
  function load() {
    const u = readUrl();
    source.set(["dataset", "draw", "upload"].includes(u["i.src"]) ? u["i.src"] : "dataset");
    if (u["i.ds"]) els.dataset.value = u["i.ds"];
    els.index.value = u["i.idx"] ?? "0";
    pixels = unpackPixels(u["i.px"]);
    viewSel.set(["maps", "filters", "summary", "attributions"].includes(u["i.view"]) ? u["i.view"] : "maps");
    scale.set(u["i.scale"] === "per-map" ? "per-map" : "shared");
    if (u["i.layer"] && u["i.unit"]) unit = { layer: u["i.layer"], index: u["i.unit"].split(",").map(Number) };
    return u["i.model"];
  }
  function save() {
    const src = source.get();
    writeUrl({
      "i.model": modelRef() || null,
      "i.src": src === "dataset" ? null : src,
      "i.ds": src === "dataset" ? els.dataset.value : null,
      "i.idx": src === "dataset" ? els.index.value : null,
      "i.px": src !== "dataset" && pixels ? packPixels(pixels) : null,
      "i.view": viewSel.get() === "maps" ? null : viewSel.get(),
      "i.scale": scale.get() === "shared" ? null : scale.get(),
      "i.layer": unit ? unit.layer : null,
      "i.unit": unit ? unit.index.join(",") : null,
    });
  }

  // ----- models ------------------------------------------------------------------------------------
  async function loadModels(wanted) {
    const out = await api("/api/models");
    models = out.models;
    const options = models.map((m) => [m.name, m.error ? `${m.name} (cannot load)` : `${m.name} · ${fmtInt(m.params)} params`]);
    const want = wanted ?? modelRef();
    if (want && want.startsWith("trial:")) {
      const [, db, id] = want.split(":");
      options.push([want, `trial ${id} of ${db}`]);
    }
    fillSelect(els.model, options, want);
    if (!els.model.value && options.length) els.model.value = options[0][0];
    courseStatus(out.course_training);
    if (!options.length) {
      els.info.textContent = `No models in ${out.folder} yet.`;
      return false;
    }
    return true;
  }

  function courseStatus(training) {
    els.course.hidden = !training;
    clearTimeout(coursePoll);
    if (!training) return;
    const poll = async () => {
      const s = await api("/api/train");
      const progress = s.events.filter((e) => e.type === "progress");
      const start = s.events.find((e) => e.type === "start");
      const last = progress[progress.length - 1];
      const total = start ? start.train_images * start.epochs : 0;
      const share = last && total ? last.seen / total : 0;
      els.courseText.textContent = s.state === "loading" ? "Training the course model (first start): loading MNIST…"
        : `Training the course model (first start): ${Math.round(share * 100)}% of one epoch${last ? `, loss ${last.loss.toFixed(3)}` : ""}. It opens here when done.`;
      els.courseBar.style.width = `${share * 100}%`;
      if (s.kind === "course" && ["loading", "running", "paused", "stopping"].includes(s.state)) coursePoll = setTimeout(poll, 700);
      else {
        els.course.hidden = true;
        if (await loadModels("course.npz")) run();
      }
    };
    poll();
  }

  function describeModel() {
    const m = currentModel();
    if (!m) return;
    if (m.error) {
      els.info.textContent = m.error;
      return;
    }
    els.info.textContent = `input ${m.input_shape.join("×")}, ${m.layers.length} layers, ${fmtInt(m.params)} parameters` +
      (m.epochs ? `, trained ${m.epochs} epoch${m.epochs > 1 ? "s" : ""}` : ", no saved training history");
  }

  // ----- input -------------------------------------------------------------------------------------
  function syncSource() {
    showFor($("tab-inspector"), "in-source", source.get());
    if (source.get() === "draw" && !sketch) {
      sketch = createSketch($("in-sketch"), (grid) => {
        pixels = grid.map((row) => row.map((v) => [v]));
        save();
        run();
      });
      if (pixels && pixels.length === 28) sketch.load(pixels);
    }
  }

  function inputBody() {
    const src = source.get();
    if (src === "dataset") return { kind: "dataset", dataset: els.dataset.value, index: intOf(els.index, 0) };
    if (!pixels) return null;
    return { kind: "pixels", pixels };
  }

  // ----- the forward pass ----------------------------------------------------------------------------
  async function run() {
    const input = inputBody();
    if (!modelRef()) return;
    if (!input) {
      els.desc.textContent = source.get() === "draw" ? "draw a digit on the pad" : "choose a picture";
      return;
    }
    describeModel();
    const mine = ++token;
    try {
      forward = await api("/api/forward", { body: { model: modelRef(), input } });
    } catch (err) {
      if (mine !== token) return;
      forward = null;
      message(els.probs, "The model cannot run on this input", err.detail ?? err.message);
      els.panel.replaceChildren();
      document.body.dataset.inState = "error";
      return;
    }
    if (mine !== token) return;
    els.desc.textContent = forward.description;
    els.note.textContent = forward.trained ? "" : forward.model_note;
    const names = source.get() === "dataset" ? classNames[els.dataset.value] : null;
    const labels = names ?? forward.output.map((_, i) => String(i));
    drawBars(els.probs, forward.output, { labels, percent: true, highlight: forward.predicted });
    els.probs.dataset.predicted = String(forward.predicted);
    drawInput();
    await renderView();
    if (unit) await selectUnit(unit.layer, unit.index, false);
    document.body.dataset.inState = "ready";
  }

  function drawInput(box) {
    if (!forward) return;
    const [h, w] = forward.input_shape;
    drawImage(els.input, forward.input, { box, scale: Math.max(1, Math.floor(196 / Math.max(h, w))) });
    els.inputNote.textContent = box ? `blue: the receptive field of ${unit.layer}[${unit.index.join(", ")}]` : `${h}×${w}×${forward.input_shape[2]} input as the model sees it`;
  }

  // ----- the views ---------------------------------------------------------------------------------
  async function renderView() {
    const view = viewSel.get();
    $("in-scale").hidden = view !== "maps";
    els.panel.replaceChildren();
    els.panel.dataset.view = view;
    try {
      if (view === "maps") renderMaps();
      else if (view === "filters") drawFilters(els.panel, await api(`/api/models/${encodeURIComponent(modelRef())}/filters`));
      else if (view === "summary") drawSummary(els.panel, await api(`/api/models/${encodeURIComponent(modelRef())}/summary`));
      else await renderAttributions();
    } catch (err) {
      message(els.panel, "Not available for this model", err.detail ?? err.message);
    }
  }

  function renderMaps() {
    if (!forward) return;
    for (const layer of forward.layers) {
      const block = document.createElement("div");
      block.className = "layer-block";
      block.dataset.layer = layer.name;
      const title = document.createElement("div");
      title.className = "layer-title";
      const b = document.createElement("b");
      b.textContent = `${layer.name} (${layer.class_name})`;
      const shape = document.createElement("span");
      shape.className = "cl-muted";
      shape.textContent = layer.shape.join("×");
      title.append(b, shape);
      block.appendChild(title);
      const body = document.createElement("div");
      block.appendChild(body);
      els.panel.appendChild(block);
      if (layer.kind === "maps") {
        const handle = drawFeatureMaps(body, layer, { scale: scale.get(), onUnit: (r, c, ch) => selectUnit(layer.name, [r, c, ch]) });
        layer.handle = handle;
        if (unit && unit.layer === layer.name) handle.select(unit.index[2], unit.index[0], unit.index[1]);
      } else if (layer.kind === "vector") {
        const last = layer === forward.layers[forward.layers.length - 1];
        drawBars(body, layer.values, { percent: last, highlight: last ? forward.predicted : undefined, onBar: (i) => selectUnit(layer.name, [i]) });
        const hint = document.createElement("p");
        hint.className = "hint";
        hint.textContent = "Click a bar for the dot product behind it.";
        body.appendChild(hint);
      } else if (layer.kind === "same_as") {
        body.textContent = `The same ${fmtInt(layer.shape[0])} numbers as ${layer.same_as}, in (H, W, C) order.`;
        body.className = "cl-muted";
      } else {
        body.textContent = layer.note;
        body.className = "cl-muted";
      }
    }
  }

  async function renderAttributions() {
    if (!forward) return;
    const out = await api("/api/attributions", { body: { model: modelRef(), input: inputBody() } });
    const row = document.createElement("div");
    row.className = "plots";
    const [h, w] = forward.input_shape;
    const side = `${out.cams.hirescam.small.length}×${out.cams.hirescam.small[0].length}`;
    const panels = [
      ["Saliency |d score / d pixel|", out.saliency, `gradient of class ${out.class_index}'s score (its logit) per pixel`, null],
      [`HiResCAM on ${out.layer}`, out.cams.hirescam.map, `relu(Σ_k G_k · A_k), position by position; ${side} map, nearest upsampling`, out.cams.hirescam.zero_reason],
      [`Grad-CAM on ${out.layer}`, out.cams.gradcam.map, `relu(Σ_k α_k A_k), α_k = mean of G_k; ${side} map`, out.cams.gradcam.zero_reason],
    ];
    for (const [title, heat, note, zero] of panels) {
      const fig = document.createElement("figure");
      fig.className = "cl-figure";
      fig.dataset.title = title;
      const cap = document.createElement("figcaption");
      cap.className = "cl-figure-title";
      cap.textContent = title;
      const canvas = document.createElement("canvas");
      drawImage(canvas, forward.input, { heat: zero ? undefined : heat, cmap: "hot", scale: Math.max(1, Math.floor(196 / Math.max(h, w))) });
      let lo = Infinity;
      let hi = -Infinity;
      for (const r of heat) for (const v of r) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
      const bar = document.createElement("div");
      drawColorbar(bar, lo, hi, "hot");
      const small = document.createElement("p");
      small.className = "hint";
      small.textContent = zero ? `All zero: ${zero}` : note;
      fig.append(cap, canvas, bar, small);
      row.appendChild(fig);
    }
    els.panel.appendChild(row);
    const line = document.createElement("p");
    line.className = "hint";
    line.textContent = out.describe;
    els.panel.appendChild(line);
  }

  // ----- units -------------------------------------------------------------------------------------
  async function selectUnit(layer, index, remember = true) {
    unit = { layer, index };
    if (remember) save();
    for (const l of forward?.layers ?? []) if (l.handle) {
      if (l.name === layer) l.handle.select(index[2], index[0], index[1]);
      else l.handle.select(-1, 0, 0);
    }
    try {
      const detail = await api("/api/unit", { body: { model: modelRef(), input: inputBody(), layer, index } });
      const names = source.get() === "dataset" ? classNames[els.dataset.value] : null;
      drawUnit(els.unit, detail, { classNames: names ?? undefined });
      drawInput(detail.receptive_field);
      document.body.dataset.unitState = "ready";
    } catch (err) {
      message(els.unit, "No such unit here", err.detail ?? err.message);
      unit = null;
      save();
    }
  }

  // ----- events ------------------------------------------------------------------------------------
  els.model.addEventListener("change", () => {
    unit = null;
    els.unit.replaceChildren();
    save();
    run();
  });
  for (const el of [els.dataset, els.index]) el.addEventListener("change", () => { save(); run(); });
  const step = (delta) => {
    els.index.value = String(Math.max(0, intOf(els.index, 0) + delta));
    save();
    run();
  };
  $("in-prev").addEventListener("click", () => step(-1));
  $("in-next").addEventListener("click", () => step(1));
  $("in-random").addEventListener("click", () => {
    els.index.value = String(Math.floor(Math.random() * 10000));
    save();
    run();
  });
  $("in-refresh").addEventListener("click", async () => { await loadModels(); run(); });
  els.file.addEventListener("change", async () => {
    const file = els.file.files[0];
    const m = currentModel();
    if (!file || !m) return;
    try {
      const [h, w, c] = m.input_shape;
      const out = await api("/api/images", { body: file, query: { height: h, width: w, channels: c, invert: "auto" } });
      pixels = out.pixels;
      els.inputNote.textContent = out.description;
      save();
      run();
    } catch (err) {
      message(els.probs, "The picture was refused", err.detail ?? err.message);
    }
  });
  $("in-upload-model").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    try {
      const out = await api("/api/models", { body: file, query: { name: file.name } });
      ctx.toast(`Added ${out.name}`);
      await loadModels(out.name);
      save();
      run();
    } catch (err) {
      message(els.info, "The model was refused", err.detail ?? err.message);
    }
  });

  const wanted = load();
  syncSource();
  let ready = null;
  return {
    async activate(params) {
      if (params?.model) {
        unit = null;
        ready = loadModels(params.model).then(() => { save(); return run(); });
        return ready;
      }
      if (!ready) ready = loadModels(wanted).then((ok) => ok && run());
      return ready;
    },
    refreshModels: () => loadModels(),
  };
}
