// ExplainWidget's view (anywidget: `render({ model, el })`). The settings are the model's traits; Python
// traces the operation (convlens.lab.explain) and syncs `trace`, `formula`, `why` and `error`; this
// view draws the trace with the page's step view (draw/conv_step.js) and steps through it.

import { drawConvSteps } from "../../web/static/js/draw/conv_step.js";
import { createStepper } from "../../web/static/js/draw/stepper.js";
import { message } from "../../web/static/js/ui.js";
import { choice, group, number, saver, sliders } from "./controls.js";

const OPS = [["conv", "convolution"], ["max", "max pooling"], ["avg", "average pooling"]];
const SOURCES = [["ramp", "ramp 1, 2, 3, ..."], ["checker", "checkerboard"], ["random", "random integers 0..9"]];
const GENERATED = ["ones", "random"];

export function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "convlens-widget clw-explain";
  el.appendChild(root);
  const save = saver(model);
  const offs = [];
  const keep = (control) => {
    offs.push(control.off);
    return control;
  };

  // ----- the settings -------------------------------------------------------------------------
  const form = document.createElement("div");
  form.className = "clw-form";
  root.appendChild(form);
  const opBox = group(form, "Operation");
  keep(choice(opBox, model, "op", "op", OPS, save));
  const inputBox = group(form, "Input");
  const source = keep(choice(inputBox, model, "source", "source", SOURCES, save));
  const size = keep(sliders(inputBox, model, "input_size", ["height", "width"], { min: 1, max: model.get("max_input") }, save));
  const seed = keep(number(inputBox, model, "seed", "seed", save, { min: 0 }));
  const kernelBox = group(form, "Kernel");
  const kernel = keep(choice(kernelBox, model, "kernel", "kernel", [], save));
  const ksize = keep(sliders(kernelBox, model, "kernel_size", ["height", "width"], { min: 1, max: model.get("max_kernel") }, save));
  keep(number(kernelBox, model, "bias", "bias", save, { step: 0.5 }));
  keep(sliders(kernelBox, model, "dilation_rate", ["dilation rows", "dilation cols"], { min: 1, max: 4 }, save));
  const poolBox = group(form, "Pool size");
  keep(sliders(poolBox, model, "pool_size", ["height", "width"], { min: 1, max: model.get("max_kernel") }, save));
  const strideBox = group(form, "Strides");
  keep(sliders(strideBox, model, "strides", ["rows", "cols"], { min: 1, max: 6 }, save));
  const padBox = group(form, "Padding");
  const padding = keep(choice(padBox, model, "padding", "padding", [], save));
  const padSides = document.createElement("div");
  padSides.className = "clw-pads";
  padBox.appendChild(padSides);
  ["top", "bottom", "left", "right"].forEach((side, i) => {
    const [axis, end] = [Math.floor(i / 2), i % 2];
    keep(number(padSides, model, "pads", side, save, {
      min: 0,
      max: 8,
      get: (m) => m.get("pads")[axis][end],
      put: (m, v) => {
        const pads = m.get("pads").map((p) => [...p]);
        pads[axis][end] = Math.max(0, Math.round(v));
        m.set("pads", pads);
      },
    }));
  });

  function syncForm() {
    const op = model.get("op");
    const isConv = op === "conv";
    const given = model.get("source") === "given";
    source.options(given ? [...SOURCES, ["given", "given numbers"]] : SOURCES);
    size.disable(given);
    seed.label.hidden = model.get("source") !== "random";
    const names = model.get("kernel_names").map((k) => [k, k]);
    const kinds = [...names, ["ones", "ones (any size)"], ["random", "random integers -2..2 (any size)"]];
    kernel.options(model.get("kernel") === "given" ? [...kinds, ["given", "given numbers"]] : kinds);
    ksize.hide(!GENERATED.includes(model.get("kernel"))); // a named or given kernel has its own size
    kernelBox.hidden = !isConv;
    poolBox.hidden = isConv;
    padding.options(isConv ? [["valid", "valid"], ["same", "same"], ["explicit", "explicit per side"]] : [["valid", "valid"], ["same", "same"]]);
    padSides.hidden = !isConv || model.get("padding") !== "explicit";
  }
  for (const name of ["op", "source", "kernel", "padding", "kernel_names"]) {
    model.on(`change:${name}`, syncForm);
    offs.push(() => model.off(`change:${name}`, syncForm));
  }
  syncForm();

  // ----- the result ---------------------------------------------------------------------------
  const result = document.createElement("div");
  result.className = "clw-result";
  root.appendChild(result);
  const head = document.createElement("div");
  head.className = "clw-head";
  const outsize = document.createElement("span");
  outsize.className = "clw-outsize";
  const why = document.createElement("span");
  why.className = "cl-muted";
  head.append(outsize, why);
  const formula = document.createElement("pre");
  formula.className = "clw-formula";
  const error = document.createElement("div");
  const controls = document.createElement("div");
  const stage = document.createElement("div");
  stage.className = "clw-stage";
  const note = document.createElement("p");
  note.className = "cl-muted cl-small";
  result.append(head, formula, error, controls, stage, note);

  let stepper = null;
  function redraw() {
    if (stepper) stepper.destroy();
    stepper = null;
    const trace = model.get("trace");
    const problem = model.get("error");
    root.dataset.state = problem ? "error" : "ready";
    if (problem || !trace || !trace.steps) {
      outsize.textContent = "No output";
      outsize.dataset.size = "";
      why.textContent = "";
      formula.hidden = true;
      controls.replaceChildren();
      stage.replaceChildren();
      note.textContent = "";
      message(error, "This setting has no output", problem);
      return;
    }
    error.hidden = true;
    error.replaceChildren();
    const g = trace.geometry;
    outsize.textContent = `Output ${g.output_size[0]} × ${g.output_size[1]}`;
    outsize.dataset.size = g.output_size.join("x");
    why.textContent = model.get("why");
    formula.hidden = false;
    formula.textContent = model.get("formula").join("\n");
    note.textContent = `Input: ${trace.source}. Grey stripes: zero padding. Blue: the window's taps. Amber: the output cell being written.`;
    const view = drawConvSteps(stage, trace);
    stepper = createStepper(controls, view.steps, view.show, {
      position: Math.min(model.get("step"), view.steps - 1),
      onMove: (p) => {
        if (model.get("step") !== p) {
          model.set("step", p);
          model.save_changes();
        }
      },
    });
  }
  const fromPython = () => {
    if (stepper && stepper.position() !== model.get("step")) stepper.show(model.get("step"));
  };
  for (const [name, fn] of [["trace", redraw], ["error", redraw], ["step", fromPython]]) {
    model.on(`change:${name}`, fn);
    offs.push(() => model.off(`change:${name}`, fn));
  }
  redraw();
  return () => {
    if (stepper) stepper.destroy();
    for (const off of offs) off();
  };
}
