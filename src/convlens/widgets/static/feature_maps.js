// FeatureMapExplorer's view (anywidget: `render({ model, el })`). Python syncs `view` (the input, the
// probabilities and the selected layer, from convlens.lab.inspect.forward) and `unit_detail`
// (inspect.unit); this view draws them with the inspector's drawing modules and sends clicks as `unit`.

import { drawBars } from "../../web/static/js/draw/bars.js";
import { drawFeatureMaps } from "../../web/static/js/draw/feature_maps.js";
import { drawImage } from "../../web/static/js/draw/heatmap.js";
import { drawUnit } from "../../web/static/js/draw/unit.js";
import { message } from "../../web/static/js/ui.js";
import { choice, group, number, saver } from "./controls.js";

const SCALES = [["shared", "one scale for the layer"], ["per-map", "each map its own range"]];

function layerOptions(layers) {
  return layers.map((l) => [l.name, `${l.name} (${l.class_name}) ${l.shape.join("×")}`]);
}

export function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "convlens-widget clw-explorer";
  el.appendChild(root);
  const save = saver(model, 60);
  const offs = [];
  const on = (name, fn) => {
    model.on(`change:${name}`, fn);
    offs.push(() => model.off(`change:${name}`, fn));
  };

  // ----- the selectors ------------------------------------------------------------------------
  const form = document.createElement("div");
  form.className = "clw-form";
  root.appendChild(form);
  const layerBox = group(form, "Layer");
  const layer = choice(layerBox, model, "layer", "layer", layerOptions(model.get("layers")), save);
  offs.push(layer.off);
  const imageBox = group(form, "Image");
  const nav = document.createElement("div");
  nav.className = "clw-nav";
  imageBox.appendChild(nav);
  const move = (delta) => {
    const n = model.get("image_count");
    model.set("image", (model.get("image") + delta + n) % n);
    model.save_changes();
  };
  for (const [text, delta] of [["<", -1], [">", 1]]) {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "cl-stepper-button";
    b.dataset.move = String(delta);
    b.textContent = text;
    b.addEventListener("click", () => move(delta));
    nav.appendChild(b);
  }
  const image = number(nav, model, "image", "index", save, { min: 0, max: model.get("image_count") - 1 });
  offs.push(image.off);
  const description = document.createElement("span");
  description.className = "cl-muted cl-small";
  imageBox.appendChild(description);
  const scaleBox = group(form, "Colour scale");
  offs.push(choice(scaleBox, model, "scale", "maps", SCALES, save).off);

  // ----- the views ----------------------------------------------------------------------------
  const error = document.createElement("div");
  error.hidden = true;
  const columns = document.createElement("div");
  columns.className = "clw-columns";
  root.append(error, columns);
  const left = document.createElement("div");
  left.className = "clw-column clw-input";
  const canvas = document.createElement("canvas");
  const inputNote = document.createElement("p");
  inputNote.className = "cl-muted cl-small";
  const probs = document.createElement("div");
  probs.className = "clw-probs";
  left.append(canvas, inputNote, probs);
  const maps = document.createElement("div");
  maps.className = "clw-column clw-maps";
  columns.append(left, maps);
  const unitBox = document.createElement("div");
  unitBox.className = "clw-unit";
  root.appendChild(unitBox);
  let handle = null;

  const pick = (index) => {
    model.set("unit", index);
    model.save_changes();
  };
  function drawInput(box) {
    const view = model.get("view");
    if (!view.input) return;
    const [h, w] = view.input_shape;
    drawImage(canvas, view.input, { box, scale: Math.max(1, Math.floor(196 / Math.max(h, w))) });
    inputNote.textContent = box
      ? `blue: the receptive field of ${model.get("layer")}[${model.get("unit").join(", ")}]`
      : `${view.description}: ${h}×${w}×${view.input_shape[2]} as the model sees it`;
  }
  function drawView() {
    const view = model.get("view");
    const problem = model.get("error");
    root.dataset.state = problem ? "error" : "ready";
    if (problem || !view.layer) {
      message(error, "Nothing to show", problem);
      columns.hidden = true;
      return;
    }
    error.hidden = true;
    columns.hidden = false;
    description.textContent = view.description;
    const names = model.get("class_names");
    drawBars(probs, view.output, {
      labels: names.length ? names : view.output.map((_, i) => String(i)),
      percent: true,
      highlight: view.predicted,
    });
    probs.dataset.predicted = String(view.predicted);
    const entry = view.layer;
    maps.replaceChildren();
    maps.dataset.layer = entry.name;
    handle = null;
    const title = document.createElement("h4");
    title.textContent = `${entry.name} (${entry.class_name}) ${entry.shape.join("×")}`;
    const body = document.createElement("div");
    maps.append(title, body);
    if (entry.kind === "maps") {
      handle = drawFeatureMaps(body, entry, { scale: model.get("scale"), onUnit: (r, c, ch) => pick([r, c, ch]) });
    } else if (entry.kind === "vector") {
      drawBars(body, entry.values, { onBar: (i) => pick([i]) });
    } else {
      body.className = "cl-muted";
      body.textContent = entry.kind === "same_as" ? `The same ${entry.shape[0]} numbers as ${entry.same_as}, in (H, W, C) order.` : entry.note;
    }
    drawDetail();
  }
  function drawDetail() {
    const d = model.get("unit_detail");
    const index = model.get("unit");
    if (handle) {
      if (index.length === 3) handle.select(index[2], index[0], index[1]);
      else handle.select(-1, 0, 0);
    }
    if (!d || !d.kind) {
      if (d && d.error) message(unitBox, "No such unit here", d.error);
      else unitBox.replaceChildren(Object.assign(document.createElement("p"), { className: "cl-muted", textContent: "Click a unit (a map's pixel, or a bar) for its receptive field and the sum behind its value." }));
      unitBox.dataset.state = d && d.error ? "error" : "empty";
      drawInput(undefined);
      return;
    }
    const names = model.get("class_names");
    drawUnit(unitBox, d, { classNames: names.length ? names : undefined });
    unitBox.dataset.state = "ready";
    drawInput(d.receptive_field);
  }
  on("view", drawView);
  on("error", drawView);
  on("scale", drawView);
  on("unit_detail", drawDetail);
  on("layers", () => layer.options(layerOptions(model.get("layers"))));
  drawView();
  return () => {
    for (const off of offs) off();
  };
}
