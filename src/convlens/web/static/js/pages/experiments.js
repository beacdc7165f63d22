// The experiments tab: a sweep database's trials ranked as `convlens sweep report` ranks them, the
// accuracy-versus-cost plots with their Pareto fronts, and one trial's details; a trial opens in the
// inspector or goes to the train tab. State in the URL (e.*).

import { api } from "../api.js";
import { drawCurves } from "../draw/curves.js";
import { fmtInt, fmtPct } from "../draw/format.js";
import { drawScatter } from "../draw/scatter.js";
import { $, fillSelect, message } from "../ui.js";
import { readUrl, writeUrl } from "../url.js";

const COSTS = [["params", "parameters", true], ["macs", "MACs per image", true], ["train_time", "train time (s)", false]];

export function initExperiments(ctx) {
  const els = { db: $("ex-db"), folder: $("ex-folder"), plots: $("ex-plots"), table: $("ex-table"), count: $("ex-count"), trial: $("ex-trial") };
  let data = null;
  let selected = null;

  async function loadDatabases() {
    const out = await api("/api/sweeps");
    els.folder.textContent = `Folder: ${out.folder}`;
    const want = readUrl()["e.db"];
    fillSelect(els.db, out.databases.map((d) => [d, d]), want);
    if (!out.databases.length) {
      els.table.replaceChildren();
      message(els.table, "No sweep databases here yet", ` Run a sweep in ${out.folder}, e.g. convlens sweep run --kernel-size 3,5 --train-limit 2000 --test-limit 500 --db sweep.db`, "note");
      return;
    }
    await loadSweep();
  }

  async function loadSweep() {
    const db = els.db.value;
    writeUrl({ "e.db": db });
    data = await api(`/api/sweeps/${encodeURIComponent(db)}`);
    const want = Number(readUrl()["e.trial"]);
    selected = data.trials.some((t) => t.id === want) ? want : null;
    render();
    if (selected !== null) showTrial(selected);
  }

  function render() {
    const ok = data.trials.filter((t) => t.status === "OK");
    els.count.textContent = `${data.trials.length} trials (${ok.length} trained)`;
    els.plots.replaceChildren();
    for (const [key, label, log] of COSTS) {
      const box = document.createElement("div");
      box.dataset.cost = key;
      els.plots.appendChild(box);
      drawScatter(box, {
        points: ok.map((t) => ({ id: t.id, x: t[key], y: t.test_accuracy, label: `trial ${t.id}` })),
        front: data.fronts[key],
        xLabel: label,
        logX: log,
        selected,
        onPoint: (id) => showTrial(id),
      });
    }
    const table = document.createElement("table");
    table.className = "cl-table";
    const head = table.createTHead().insertRow();
    for (const h of data.headers) {
      const th = document.createElement("th");
      th.textContent = h;
      head.appendChild(th);
    }
    const body = table.createTBody();
    data.rows.forEach((row, i) => {
      const trial = data.trials[i];
      const tr = body.insertRow();
      tr.className = `clickable ${trial.status.toLowerCase()}${trial.id === selected ? " is-selected" : ""}`;
      tr.dataset.trial = String(trial.id);
      row.forEach((cell, j) => {
        const td = tr.insertCell();
        td.textContent = cell;
        if (j < row.length - 1 && /^[\d,.%x-]+$/.test(cell)) td.className = "num";
      });
      tr.addEventListener("click", () => showTrial(trial.id));
    });
    els.table.replaceChildren(table);
  }

  function showTrial(id) {
    selected = id;
    writeUrl({ "e.trial": id });
    render();
    const t = data.trials.find((x) => x.id === id);
    els.trial.replaceChildren();
    const title = document.createElement("p");
    title.className = "cl-strong";
    const rank = t.status === "OK" ? ` (rank ${data.trials.indexOf(t) + 1})` : "";
    title.textContent = `Trial ${t.id}: ${t.status}${t.test_accuracy !== null ? `, ${fmtPct(t.test_accuracy)}` : ""}${rank}`;
    els.trial.appendChild(title);
    if (t.reason) {
      const p = document.createElement("p");
      p.className = "hint";
      p.textContent = t.reason;
      els.trial.appendChild(p);
    }
    const dl = document.createElement("dl");
    dl.className = "kv";
    const unset = { learning_rate: "the optimizer's default", train_limit: "all", test_limit: "all" };
    const facts = [...Object.entries(t.config).map(([k, v]) => [k, v === null ? unset[k] ?? "-" : String(v)]),
      ["params", fmtInt(t.params)], ["MACs", fmtInt(t.macs)], ["train time", t.train_time === null ? "-" : `${t.train_time.toFixed(1)} s`]];
    for (const [k, v] of facts) {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = v;
      dl.append(dt, dd);
    }
    els.trial.appendChild(dl);
    if (t.history && t.history.loss && t.history.loss.length > 1) {
      const box = document.createElement("div");
      els.trial.appendChild(box);
      drawCurves(box, { title: "Training loss per epoch", xLabel: "epoch", series: [{ name: "loss", points: t.history.loss.map((v, i) => [i + 1, v]), dots: true }] });
    }
    if (t.has_png) {
      const img = document.createElement("img");
      img.src = `/api/sweeps/${encodeURIComponent(data.database)}/trials/${t.id}/features.png`;
      img.alt = `first-layer feature maps of trial ${t.id}`;
      const fig = document.createElement("div");
      fig.className = "thumb";
      const cap = document.createElement("p");
      cap.className = "hint";
      cap.textContent = "First-layer feature maps of the first test image (each map on its own scale).";
      fig.append(img, cap);
      els.trial.appendChild(fig);
    }
    const buttons = document.createElement("div");
    buttons.className = "buttons";
    const open = document.createElement("button");
    open.type = "button";
    open.className = "btn primary";
    open.id = "ex-open";
    open.textContent = "Open in inspector";
    open.addEventListener("click", () => ctx.switchTab("inspector", { model: `trial:${data.database}:${t.id}` }));
    const train = document.createElement("button");
    train.type = "button";
    train.className = "btn";
    train.textContent = "Train this configuration";
    train.addEventListener("click", () => {
      ctx.pendingSaveName = `trial-${t.config_hash}.npz`;
      ctx.switchTab("train", { config: t.config });
    });
    buttons.append(open, train);
    els.trial.appendChild(buttons);
    const note = document.createElement("p");
    note.className = "hint";
    note.textContent = t.saved_model
      ? `A trained model of this configuration is saved (${t.saved_model}); the inspector opens it.`
      : "The sweep kept no weights: the inspector shows this configuration untrained, until you train it and save it under the suggested name.";
    els.trial.appendChild(note);
  }

  els.db.addEventListener("change", () => {
    writeUrl({ "e.trial": null });
    loadSweep();
  });
  let loaded = null;
  return {
    activate() {
      if (!loaded) loaded = loadDatabases().catch((err) => message(els.table, "Cannot read the sweeps", err.detail ?? err.message));
      return loaded;
    },
  };
}
