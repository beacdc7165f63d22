// A grid of numbers (or of coloured cells when the numbers would not fit), built once and then
// updated cheaply: marks (window footprint, current cell), how many cells are written so far.
// Cells carry data-r, data-c and data-value (the exact number) so tests and tooltips read the truth.

import { css, ink } from "./colors.js";
import { fmtValue } from "./format.js";

const KIND_CLASS = { 1: "is-pad", 2: "is-inserted" };

/**
 * Draw a 2-D grid into `el` (its content is replaced).
 * @param {HTMLElement} el
 * @param {(number|null)[][]} values rows of numbers; null shows as blank
 * @param {object} [opts]
 * @param {number[][]} [opts.kinds] per cell: 0 input, 1 padding, 2 inserted zero
 * @param {(v: number, r: number, c: number) => number[]} [opts.color] background colour of a cell
 * @param {boolean|"auto"} [opts.numbers] write the numbers (auto: when at most `maxNumbers` columns)
 * @param {number} [opts.maxNumbers] column count above which "auto" hides numbers (default 16)
 * @param {[number, number]} [opts.origin] coordinates of the top-left cell in the titles (e.g. [-1, -1])
 * @param {string} [opts.label] aria-label of the grid
 * @param {(r: number, c: number) => void} [opts.onCell] click handler
 * @returns {{el: HTMLElement, mark: Function, reveal: Function, cell: Function}}
 */
export function drawGrid(el, values, opts = {}) {
  const rows = values.length;
  const cols = rows ? values[0].length : 0;
  const showNumbers = opts.numbers === undefined || opts.numbers === "auto" ? cols <= (opts.maxNumbers ?? 16) : opts.numbers;
  const [r0, c0] = opts.origin ?? [0, 0];
  el.replaceChildren();
  const grid = document.createElement("div");
  grid.className = `cl-grid ${showNumbers ? "with-numbers" : "compact"}`;
  grid.setAttribute("role", "grid");
  if (opts.label) grid.setAttribute("aria-label", opts.label);
  const texts = values.map((row) => row.map((v) => (v === null ? "" : fmtValue(v))));
  const chars = Math.max(1, ...texts.flat().map((t) => t.length));
  grid.style.setProperty("--cols", String(cols));
  grid.style.setProperty("--chars", String(chars));
  const cells = [];
  for (let r = 0; r < rows; r += 1) {
    for (let c = 0; c < cols; c += 1) {
      const v = values[r][c];
      const cell = document.createElement("div");
      cell.className = "cl-cell";
      const kind = opts.kinds ? opts.kinds[r][c] : 0;
      if (KIND_CLASS[kind]) cell.classList.add(KIND_CLASS[kind]);
      cell.dataset.r = String(r);
      cell.dataset.c = String(c);
      if (v !== null) {
        cell.dataset.value = String(v);
        if (opts.color && !KIND_CLASS[kind]) {
          const rgb = opts.color(v, r, c);
          cell.style.background = css(rgb);
          cell.style.color = ink(rgb);
        }
      }
      if (showNumbers) cell.textContent = texts[r][c];
      const where = `[${r + r0}, ${c + c0}]`;
      cell.title = v === null ? where : `${where} = ${v}`;
      if (opts.onCell) cell.addEventListener("click", () => opts.onCell(r, c));
      grid.appendChild(cell);
      cells.push(cell);
    }
  }
  el.appendChild(grid);
  const marked = new Map();
  return {
    el: grid,
    /** Give exactly `list` ([[r, c], ...]) the class `is-<name>`, removing it from the others. */
    mark(name, list) {
      for (const cell of marked.get(name) ?? []) cell.classList.remove(`is-${name}`);
      const now = [];
      for (const [r, c] of list) {
        if (r >= 0 && r < rows && c >= 0 && c < cols) {
          const cell = cells[r * cols + c];
          cell.classList.add(`is-${name}`);
          now.push(cell);
        }
      }
      marked.set(name, now);
    },
    /** Show the first `count` cells (row-major) and blank the rest (an output being written). */
    reveal(count) {
      cells.forEach((cell, i) => cell.classList.toggle("is-unwritten", i >= count));
    },
    /** The cell element at (r, c). */
    cell(r, c) {
      return cells[r * cols + c];
    },
  };
}

/** A caption above a grid: a title and a small note. */
export function captioned(parent, title, note) {
  const box = document.createElement("figure");
  box.className = "cl-figure";
  const cap = document.createElement("figcaption");
  const strong = document.createElement("span");
  strong.className = "cl-figure-title";
  strong.textContent = title;
  cap.appendChild(strong);
  if (note) {
    const small = document.createElement("span");
    small.className = "cl-figure-note";
    small.textContent = note;
    cap.appendChild(small);
  }
  const body = document.createElement("div");
  body.className = "cl-figure-body";
  box.append(cap, body);
  parent.appendChild(box);
  return body;
}
