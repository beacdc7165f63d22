// Form controls of the notebook widgets, bound to an anywidget model: a change sets the model's
// value and saves it (debounced), and a change of the model (from Python) moves the control.

import { debounce, fillSelect } from "../../web/static/js/ui.js";

/** A labelled box for controls: a <fieldset> with a legend. */
export function group(parent, title) {
  const box = document.createElement("fieldset");
  box.className = "clw-group";
  const legend = document.createElement("legend");
  legend.textContent = title;
  box.appendChild(legend);
  parent.appendChild(box);
  return box;
}

/**
 * Sliders bound to one list-valued trait (e.g. `strides` = [SH, SW]): one range input per entry.
 * @param {HTMLElement} parent
 * @param {object} model the anywidget model
 * @param {string} name the trait
 * @param {string[]} labels one per entry
 * @param {{min: number, max: number}} range
 * @param {() => void} save the (debounced) save
 */
export function sliders(parent, model, name, labels, range, save) {
  const inputs = labels.map((text, i) => {
    const label = document.createElement("label");
    label.className = "clw-slider";
    const caption = document.createElement("span");
    caption.textContent = text;
    const input = document.createElement("input");
    input.type = "range";
    input.min = String(range.min);
    input.max = String(range.max);
    input.dataset.trait = name;
    input.dataset.index = String(i);
    input.setAttribute("aria-label", `${name} ${text}`);
    const value = document.createElement("output");
    label.append(caption, input, value);
    parent.appendChild(label);
    input.addEventListener("input", () => {
      value.textContent = input.value;
      model.set(name, inputs.map((x) => Number(x.input.value)));
      save();
    });
    return { input, value, label };
  });
  const sync = () => {
    const values = model.get(name) ?? [];
    inputs.forEach((x, i) => {
      if (values[i] === undefined) return;
      x.input.value = String(values[i]);
      x.value.textContent = String(values[i]);
    });
  };
  model.on(`change:${name}`, sync);
  sync();
  return {
    disable(off) {
      for (const x of inputs) x.input.disabled = off;
    },
    hide(off) {
      for (const x of inputs) x.label.hidden = off;
    },
    off: () => model.off(`change:${name}`, sync),
  };
}

/** A <select> bound to a string trait; `options` are [value, label] pairs. */
export function choice(parent, model, name, title, options, save) {
  const label = document.createElement("label");
  label.className = "clw-choice";
  label.append(Object.assign(document.createElement("span"), { textContent: title }));
  const select = document.createElement("select");
  select.dataset.trait = name;
  label.appendChild(select);
  parent.appendChild(label);
  let current = options;
  const sync = () => fillSelect(select, current, model.get(name));
  select.addEventListener("change", () => {
    model.set(name, select.value);
    save();
  });
  model.on(`change:${name}`, sync);
  sync();
  return {
    select,
    label,
    options(list) {
      current = list;
      sync();
    },
    off: () => model.off(`change:${name}`, sync),
  };
}

/** A number input bound to a numeric trait (or to one entry of a nested list trait via `get`/`put`). */
export function number(parent, model, name, title, save, opts = {}) {
  const label = document.createElement("label");
  label.className = "clw-number";
  label.append(Object.assign(document.createElement("span"), { textContent: title }));
  const input = document.createElement("input");
  input.type = "number";
  input.step = String(opts.step ?? 1);
  if (opts.min !== undefined) input.min = String(opts.min);
  if (opts.max !== undefined) input.max = String(opts.max);
  input.dataset.trait = name;
  label.appendChild(input);
  parent.appendChild(label);
  const get = opts.get ?? ((m) => m.get(name));
  const put = opts.put ?? ((m, v) => m.set(name, v));
  const sync = () => {
    input.value = String(get(model));
  };
  input.addEventListener("input", () => {
    const v = Number(input.value);
    if (input.value === "" || !Number.isFinite(v)) return;
    put(model, v);
    save();
  });
  model.on(`change:${name}`, sync);
  sync();
  return { input, label, off: () => model.off(`change:${name}`, sync) };
}

/** A save that waits until the controls have been quiet for `ms` (one message per gesture). */
export function saver(model, ms = 120) {
  return debounce(() => model.save_changes(), ms);
}
