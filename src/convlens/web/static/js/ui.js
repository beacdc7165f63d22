// Small DOM helpers for the page (not the drawing modules): lookups, segmented controls, messages.

/** document.getElementById that fails loudly. */
export function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`no element #${id}`);
  return el;
}

/** A segmented control: buttons with data-value; returns {get(), set(value)}; onChange(value) on clicks. */
export function segmented(el, onChange) {
  const buttons = [...el.querySelectorAll("button[data-value]")];
  const set = (value) => buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.value === value)));
  buttons.forEach((b) => b.addEventListener("click", () => {
    set(b.dataset.value);
    onChange(b.dataset.value);
  }));
  return {
    get: () => (buttons.find((b) => b.getAttribute("aria-pressed") === "true") ?? buttons[0]).dataset.value,
    set,
  };
}

/** Show only the children of `root` whose `data-<attr>` lists `value`. */
export function showFor(root, attr, value) {
  for (const el of root.querySelectorAll(`[data-${attr}]`)) el.hidden = !el.dataset[camel(attr)].split(" ").includes(value);
}

function camel(attr) {
  return attr.replace(/-([a-z])/g, (_, ch) => ch.toUpperCase());
}

/** A message box (error or note) with a bold first line; replaces `el`'s content. */
export function message(el, title, text, kind = "error") {
  el.replaceChildren();
  const box = document.createElement("div");
  box.className = kind === "error" ? "error-box" : "note-box";
  const strong = document.createElement("strong");
  strong.textContent = title;
  box.appendChild(strong);
  if (text) box.appendChild(document.createTextNode(text));
  el.appendChild(box);
  el.hidden = false;
}

let toastTimer = 0;
/** A short message at the bottom right. */
export function toast(text) {
  const el = $("toast");
  el.textContent = text;
  el.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove("show"), 3500);
}

/** Call `fn` once things have been quiet for `ms`. */
export function debounce(fn, ms = 160) {
  let timer = 0;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Fill a <select> with [value, label] pairs, keeping `selected` when present. */
export function fillSelect(select, options, selected) {
  select.replaceChildren();
  for (const [value, label] of options) {
    const opt = document.createElement("option");
    opt.value = value;
    opt.textContent = label;
    select.appendChild(opt);
  }
  if (selected !== undefined && options.some(([v]) => v === selected)) select.value = selected;
}

/** An integer from an input, clamped to its min/max, or `fallback`. */
export function intOf(input, fallback) {
  const v = Number.parseInt(input.value, 10);
  if (!Number.isFinite(v)) return fallback;
  const lo = input.min !== "" ? Number(input.min) : -Infinity;
  const hi = input.max !== "" ? Number(input.max) : Infinity;
  return Math.min(Math.max(v, lo), hi);
}
