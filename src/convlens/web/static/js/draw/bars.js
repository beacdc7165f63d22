// Horizontal bars for a vector (class probabilities, a dense layer's outputs).

import { fmtPct, fmtValue } from "./format.js";

/**
 * @param {HTMLElement} el
 * @param {number[]} values
 * @param {object} [opts]
 * @param {string[]} [opts.labels] one per value (default the indices)
 * @param {boolean} [opts.percent] print values as percentages (probabilities)
 * @param {number} [opts.highlight] index drawn in the accent colour (e.g. the prediction)
 * @param {(i: number) => void} [opts.onBar] click handler
 */
export function drawBars(el, values, opts = {}) {
  el.replaceChildren();
  const list = document.createElement("ol");
  list.className = "cl-bars";
  const lo = Math.min(0, ...values);
  const hi = Math.max(0, ...values);
  const span = hi - lo || 1;
  values.forEach((v, i) => {
    const item = document.createElement("li");
    item.className = "cl-bar";
    if (i === opts.highlight) item.classList.add("is-top");
    item.dataset.index = String(i);
    item.dataset.value = String(v);
    const name = document.createElement("span");
    name.className = "cl-bar-label";
    name.textContent = opts.labels ? opts.labels[i] : String(i);
    const track = document.createElement("span");
    track.className = "cl-bar-track";
    const fill = document.createElement("span");
    fill.className = "cl-bar-fill";
    fill.style.left = `${((Math.min(v, 0) - lo) / span) * 100}%`;
    fill.style.width = `${(Math.abs(v) / span) * 100}%`;
    track.appendChild(fill);
    const num = document.createElement("span");
    num.className = "cl-bar-value";
    num.textContent = opts.percent ? fmtPct(v) : fmtValue(v);
    item.title = `${name.textContent}: ${v}`;
    item.append(name, track, num);
    if (opts.onBar) item.addEventListener("click", () => opts.onBar(i));
    list.appendChild(item);
  });
  el.appendChild(list);
}
