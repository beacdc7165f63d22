// The train tab: choose an architecture and settings, train live (server-sent events), pause, stop,
// save into the models folder and open the result in the inspector. The form lives in the URL (t.*).

import { api } from "../api.js";
import { drawCurves } from "../draw/curves.js";
import { drawFeatureMaps } from "../draw/feature_maps.js";
import { fmtInt, fmtPct } from "../draw/format.js";
import { $, fillSelect, message } from "../ui.js";
import { readUrl, writeUrl } from "../url.js";

// form field id -> [request key, kind]
const FIELDS = {
  "tr-dataset": ["dataset", "text"], "tr-train-limit": ["train_limit", "int?"], "tr-test-limit": ["test_limit", "int?"],
  "tr-validation": ["validation_split", "float"], "tr-blocks": ["conv_blocks", "int"], "tr-filters": ["filters", "int"],
  "tr-kernel": ["kernel_size", "int"], "tr-strides": ["strides", "int"], "tr-padding": ["padding", "text"],
  "tr-activation": ["activation", "text"], "tr-pooling": ["pooling", "text"], "tr-pool-size": ["pool_size", "int"],
  "tr-spec": ["spec", "text?"], "tr-optimizer": ["optimizer", "text"], "tr-lr": ["learning_rate", "float?"],
  "tr-batch": ["batch_size", "int"], "tr-epochs": ["epochs", "int"], "tr-seed": ["seed", "int"],
};
const ACTIVE = ["loading", "running", "paused", "stopping"];

export function initTrain(ctx) {
  const els = {
    state: $("tr-state"), kind: $("tr-kind"), stats: $("tr-stats"), bar: $("tr-bar"), loss: $("tr-loss"), acc: $("tr-acc"),
    maps: $("tr-maps"), mapsNote: $("tr-maps-note"), result: $("tr-result"), resultText: $("tr-result-text"),
    saveName: $("tr-save-name"), save: $("tr-save"), open: $("tr-open"), start: $("tr-start"), pause: $("tr-pause"),
    stop: $("tr-stop"), error: $("tr-error"), arch: $("tr-arch"),
  };
  fillSelect($("tr-dataset"), ctx.info.datasets.map((d) => [d.name, d.label]));
  let source = null;
  let run = null; // what the page knows about the current job
  let savedName = null;

  // ----- the form <-> URL -------------------------------------------------------------------------
  function load(values) {
    for (const [id, [key]] of Object.entries(FIELDS)) {
      if (key in values) $(id).value = values[key] === null ? "" : String(values[key]);
    }
  }
  function request() {
    const out = {};
    for (const [id, [key, kind]] of Object.entries(FIELDS)) {
      const raw = $(id).value.trim();
      if (raw === "") {
        if (!kind.endsWith("?")) throw new Error(`${key.replace("_", " ")} is empty`);
        continue;
      }
      const v = kind.startsWith("int") ? Number.parseInt(raw, 10) : kind.startsWith("float") ? Number(raw) : raw;
      if (typeof v === "number" && !Number.isFinite(v)) throw new Error(`${key.replace("_", " ")} must be a number, got ${raw}`);
      out[key] = v;
    }
    return out;
  }
  function save() {
    const patch = {};
    for (const [id, [key]] of Object.entries(FIELDS)) patch[`t.${key}`] = $(id).value.trim() || null;
    writeUrl(patch);
    describe();
  }
  function describe() {
    try {
      const r = request();
      els.arch.textContent = r.spec
        ? `Spec: input from the dataset, then ${r.spec}`
        : `${r.conv_blocks} × [Conv2D(${r.filters}, ${r.kernel_size}×${r.kernel_size}, stride ${r.strides}, '${r.padding}', ${r.activation})${r.pooling === "none" ? "" : ` → ${r.pooling === "max" ? "MaxPooling2D" : "AveragePooling2D"}(${r.pool_size})`}] → Flatten → Dense(10, softmax)`;
    } catch (err) {
      els.arch.textContent = err.message;
    }
  }
  const fromUrl = Object.fromEntries(Object.entries(readUrl()).filter(([k]) => k.startsWith("t.")).map(([k, v]) => [k.slice(2), v]));
  load(fromUrl);
  $("tr-form").addEventListener("input", save);
  describe();

  // ----- drawing the run ---------------------------------------------------------------------------
  function reset(job, kind) {
    run = { job, kind, start: null, progress: [], epochs: [], done: null, state: "loading", after: -1 };
    els.maps.replaceChildren();
    els.result.hidden = true;
    els.open.disabled = true;
    savedName = null;
  }
  function apply(event) {
    if (event.type === "start") run.start = event;
    else if (event.type === "progress") run.progress.push(event);
    else if (event.type === "epoch") run.epochs.push(event);
    else if (event.type === "state") run.state = event.state;
    else if (event.type === "done") {
      run.done = event;
      run.state = event.state;
    }
    if (event.seq !== undefined) run.after = event.seq;
  }
  function draw() {
    if (!run) return;
    els.state.textContent = run.state;
    els.state.className = `pill ${run.state}`;
    document.body.dataset.trainState = run.state;
    els.kind.textContent = run.kind === "course" ? "the course model, trained on first start" : run.start ? `${run.start.dataset}, ${fmtInt(run.start.params)} parameters` : "";
    const active = ACTIVE.includes(run.state);
    els.start.disabled = active;
    els.pause.disabled = !active || run.state === "stopping" || run.state === "loading";
    els.pause.textContent = run.state === "paused" ? "Resume" : "Pause";
    els.stop.disabled = !active || run.state === "stopping";
    const s = run.start;
    const last = run.progress[run.progress.length - 1];
    const total = s ? s.train_images * s.epochs : 0;
    els.bar.style.width = `${total && last ? (100 * last.seen) / total : run.done ? 100 : 0}%`;
    const stats = [
      ["epoch", s && last ? `${last.epoch + 1} / ${s.epochs}` : "-"],
      ["images seen", last ? `${fmtInt(last.seen)} / ${fmtInt(total)}` : "-"],
      ["images / s", last ? fmtInt(last.images_per_second) : "-"],
      ["elapsed", last ? `${last.elapsed.toFixed(1)} s` : "-"],
      ["train loss", last ? last.epoch_loss.toFixed(4) : "-"],
      ["train accuracy", last && last.epoch_accuracy !== null ? fmtPct(last.epoch_accuracy) : "-"],
    ];
    els.stats.replaceChildren(...stats.map(([k, v]) => {
      const d = document.createElement("div");
      const b = document.createElement("b");
      b.textContent = v;
      b.dataset.stat = k;
      const span = document.createElement("span");
      span.textContent = k;
      d.append(b, span);
      return d;
    }));
    const per = s ? s.train_images : 1;
    const epochPoint = (e, key) => [(e.epoch + 1) * per, e.logs[key]];
    const maxX = Math.max(total, 1);
    drawCurves(els.loss, {
      title: "Loss", xLabel: "images seen", xRange: [0, maxX], format: (v) => v.toFixed(4),
      series: [
        { name: "train", points: run.progress.map((p) => [p.seen, p.loss]) },
        { name: "validation", points: run.epochs.filter((e) => "val_loss" in e.logs).map((e) => epochPoint(e, "val_loss")), dashed: true, dots: true },
      ],
    });
    drawCurves(els.acc, {
      title: "Accuracy (%)", xLabel: "images seen", xRange: [0, maxX], format: (v) => `${v.toFixed(2)}%`,
      series: [
        { name: "train", points: run.progress.filter((p) => p.accuracy !== null).map((p) => [p.seen, p.accuracy * 100]) },
        { name: "validation", points: run.epochs.filter((e) => "val_accuracy" in e.logs).map((e) => [(e.epoch + 1) * per, e.logs.val_accuracy * 100]), dashed: true, dots: true },
      ],
    });
    if (run.done) {
      els.result.hidden = false;
      const d = run.done;
      els.resultText.textContent = d.state === "failed"
        ? `The run failed: ${d.error}`
        : `${d.state === "stopped" ? "Stopped" : "Finished"} after ${fmtInt(d.trained_images ?? 0)} training images at ${fmtInt(d.images_per_second ?? 0)} images/s. Test accuracy ${fmtPct(d.test_accuracy)} (loss ${(d.test_loss ?? 0).toFixed(4)}) on ${fmtInt(s?.test_images ?? 0)} test images.`;
      els.resultText.dataset.testAccuracy = String(d.test_accuracy ?? "");
      els.save.disabled = d.state === "failed" || run.kind === "course";
      if (run.kind === "course") els.resultText.textContent += " Saved as course.npz.";
    }
  }
  function drawMaps(event) {
    if (!event) return;
    const [c, h, w] = [event.maps.length, event.maps[0].length, event.maps[0][0].length];
    drawFeatureMaps(els.maps, { name: event.layer, shape: [h, w, c], maps: event.maps, min: event.min, max: event.max,
      map_min: event.maps.map((m) => Math.min(...m.flat())), map_max: event.maps.map((m) => Math.max(...m.flat())) }, { pixels: 56 });
    els.mapsNote.textContent = `${event.layer} on test image ${0}, after ${fmtInt(event.seen)} images`;
    els.maps.dataset.seen = String(event.seen);
  }

  // ----- the event stream --------------------------------------------------------------------------
  function follow(job) {
    if (source) source.close();
    source = new EventSource(`/api/train/events?job=${job}&after=${run.after}`);
    const handle = (e) => {
      apply(JSON.parse(e.data));
      draw();
    };
    for (const type of ["start", "progress", "epoch", "state", "done"]) source.addEventListener(type, handle);
    source.addEventListener("maps", (e) => drawMaps(JSON.parse(e.data)));
    source.addEventListener("end", () => {
      source.close();
      source = null;
      draw();
      if (run?.kind === "course") ctx.modelsChanged();
    });
  }

  async function sync() {
    const s = await api("/api/train");
    if (!s.job) return;
    if (!run || run.job !== s.job) reset(s.job, s.kind);
    run.progress = [];
    run.epochs = [];
    for (const e of s.events) apply(e);
    if (run.start && !Object.keys(readUrl()).some((k) => k.startsWith("t."))) {
      load({ ...run.start.config, dataset: run.start.dataset, spec: run.start.spec ?? "" });  // show what is running
      describe();
    }
    drawMaps(s.maps);
    draw();
    if (s.saved_as) {
      savedName = s.saved_as;
      els.open.disabled = false;
    }
    if (ACTIVE.includes(s.state) && !source) follow(s.job);
  }

  // ----- buttons -----------------------------------------------------------------------------------
  els.start.addEventListener("click", async () => {
    els.error.hidden = true;
    let body;
    try {
      body = request();
    } catch (err) {
      message(els.error, "Check the settings", err.message);
      return;
    }
    try {
      const out = await api("/api/train", { body });
      reset(out.job, "user");
      els.saveName.value = ctx.pendingSaveName ?? `live-${out.config_hash.slice(0, 8)}.npz`;
      ctx.pendingSaveName = null;
      draw();
      follow(out.job);
    } catch (err) {
      message(els.error, err.status === 409 ? "Busy" : "This model cannot be trained", err.detail ?? err.message);
    }
  });
  els.pause.addEventListener("click", async () => {
    try {
      await api(`/api/train/${run.state === "paused" ? "resume" : "pause"}`, { method: "POST" });
    } catch (err) {
      ctx.toast(err.detail ?? err.message);
    }
  });
  els.stop.addEventListener("click", async () => {
    try {
      await api("/api/train/stop", { method: "POST" });
    } catch (err) {
      ctx.toast(err.detail ?? err.message);
    }
  });
  els.save.addEventListener("click", async () => {
    try {
      const out = await api("/api/train/save", { body: { name: els.saveName.value.trim() } });
      savedName = out.name;
      els.open.disabled = false;
      ctx.toast(`Saved ${out.path}`);
      ctx.modelsChanged();
    } catch (err) {
      ctx.toast(err.detail ?? err.message);
    }
  });
  els.open.addEventListener("click", () => savedName && ctx.switchTab("inspector", { model: savedName }));

  return {
    activate(params) {
      if (params?.config) {
        load(params.config);
        save();
      }
      return sync();
    },
  };
}
