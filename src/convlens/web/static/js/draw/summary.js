// The detailed summary (convlens.lab.summary JSON): formulas, MACs, FLOPs, receptive fields, memory,
// why each shape, and how many parameters a dense layer would need instead of each convolution.

import { fmtBytes, fmtInt, fmtShape, fmtValue } from "./format.js";

const COLUMNS = [
  ["Layer (type)", (s) => `${s.name} (${s.class_name})`],
  ["Output shape", (s) => fmtShape(s.output_shape)],
  ["Params (formula)", (s) => s.params_formula],
  ["MACs", (s) => fmtInt(s.macs), true],
  ["FLOPs", (s) => fmtInt(s.flops), true],
  ["Receptive field", (s) => s.receptive_field.join("x") + (s.jump.length ? "" : " (all)")],
  ["Jump", (s) => (s.jump.length ? s.jump.join("x") : "-")],
  ["Start", (s) => (s.start.length ? s.start.map(fmtValue).join(", ") : "-")],
  ["Activations", (s) => fmtBytes(s.activation_bytes), true],
  ["Why this shape", (s) => s.why],
];

/**
 * @param {HTMLElement} el
 * @param {object} summary {model, input_shape, layers, totals, note}
 */
export function drawSummary(el, summary) {
  el.replaceChildren();
  const title = document.createElement("p");
  title.className = "cl-strong";
  title.textContent = `Model "${summary.model}", input ${fmtShape([null, ...summary.input_shape.slice(1)])}`;
  el.appendChild(title);
  const wrap = document.createElement("div");
  wrap.className = "cl-table-wrap";
  const table = document.createElement("table");
  table.className = "cl-table cl-summary";
  const hdr = table.createTHead().insertRow();
  for (const [name, , right] of COLUMNS) {
    const th = document.createElement("th");
    th.textContent = name;
    if (right) th.className = "num";
    hdr.appendChild(th);
  }
  const body = table.createTBody();
  for (const s of summary.layers) {
    const tr = body.insertRow();
    tr.dataset.layer = s.name;
    for (const [, cell, right] of COLUMNS) {
      const td = tr.insertCell();
      td.textContent = cell(s);
      if (right) td.className = "num";
    }
  }
  wrap.appendChild(table);
  el.appendChild(wrap);
  const t = summary.totals;
  const list = document.createElement("ul");
  list.className = "cl-totals";
  const items = [
    `Total params: ${fmtInt(t.params)} (${fmtBytes(t.params * 4)}); trainable ${fmtInt(t.trainable_params)}`,
    `MACs: ${fmtInt(t.macs)} per sample; FLOPs: ${fmtInt(t.flops)} (= 2 × MACs)`,
    `Other ops (pooling, normalisation): ${fmtInt(t.ops)}`,
    `Activation memory: ${fmtBytes(t.activation_bytes)} per sample (float32, outputs of every layer)`,
  ];
  for (const text of items) list.appendChild(Object.assign(document.createElement("li"), { textContent: text }));
  el.appendChild(list);
  const convs = summary.layers.filter((s) => s.dense_params !== null && s.dense_params !== undefined);
  if (convs.length) {
    const h = document.createElement("h4");
    h.textContent = "Versus dense";
    el.appendChild(h);
    const ul = document.createElement("ul");
    ul.className = "cl-totals";
    for (const s of convs) {
      const ratio = s.dense_params / Math.max(s.params, 1);
      const li = document.createElement("li");
      li.textContent = `${s.name}: ${fmtInt(s.params)} parameters; a Dense layer mapping ${fmtShape(s.input_shape)} to ${fmtShape(s.output_shape)} would need ${fmtInt(s.dense_params)} (${fmtInt(ratio)}× more) and ${fmtInt(s.dense_macs)} MACs instead of ${fmtInt(s.macs)}.`;
      ul.appendChild(li);
    }
    el.appendChild(ul);
  }
  const note = document.createElement("p");
  note.className = "cl-muted cl-small";
  note.textContent = summary.note;
  el.appendChild(note);
}
