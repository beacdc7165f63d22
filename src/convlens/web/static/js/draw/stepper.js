// Play / step controls for a view with steps (drawConvSteps' handle): first, prev, play/pause, next,
// last, a slider and "step i / n". Built into any element; the notebook's explanation and its widget
// use it (the page keeps its own stepper in index.html, with keys and the URL).

/**
 * @param {HTMLElement} el container (its content is replaced)
 * @param {number} count how many steps
 * @param {(position: number) => void} onShow draws step `position` (0-based)
 * @param {object} [opts]
 * @param {number} [opts.position] the step shown first (default 0)
 * @param {number} [opts.interval] milliseconds per step while playing (default 500)
 * @param {(position: number) => void} [opts.onMove] called after every move (e.g. to sync a model)
 * @returns {{show: Function, play: Function, stop: Function, position: Function, destroy: Function}}
 */
export function createStepper(el, count, onShow, opts = {}) {
  el.replaceChildren();
  const bar = document.createElement("div");
  bar.className = "cl-stepper";
  const button = (action, text, title) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "cl-stepper-button";
    b.dataset.step = action;
    b.textContent = text;
    b.title = title;
    bar.appendChild(b);
    return b;
  };
  button("first", "|<", "first step");
  button("prev", "<", "previous step");
  const playButton = button("play", "Play", "play / pause");
  button("next", ">", "next step");
  button("last", ">|", "last step");
  const scrub = document.createElement("input");
  scrub.type = "range";
  scrub.min = "0";
  scrub.max = String(Math.max(count - 1, 0));
  scrub.dataset.step = "scrub";
  scrub.setAttribute("aria-label", "step");
  const label = document.createElement("span");
  label.className = "cl-stepper-pos";
  bar.append(scrub, label);
  el.appendChild(bar);

  let position = 0;
  let timer = 0;
  function show(p) {
    position = Math.min(Math.max(Math.round(p), 0), Math.max(count - 1, 0));
    onShow(position);
    scrub.value = String(position);
    label.textContent = `step ${position + 1} / ${count}`;
    bar.dataset.position = String(position);
    if (opts.onMove) opts.onMove(position);
    return position;
  }
  function stop() {
    clearInterval(timer);
    timer = 0;
    playButton.textContent = "Play";
  }
  function play() {
    if (timer) return stop();
    if (position >= count - 1) show(0);
    playButton.textContent = "Pause";
    timer = setInterval(() => {
      if (position >= count - 1) stop();
      else show(position + 1);
    }, opts.interval ?? 500);
    return undefined;
  }
  bar.addEventListener("click", (event) => {
    const action = event.target.closest("button")?.dataset.step;
    if (!action) return;
    if (action === "play") return play();
    stop();
    show({ first: 0, prev: position - 1, next: position + 1, last: count - 1 }[action]);
    return undefined;
  });
  scrub.addEventListener("input", () => {
    stop();
    show(Number(scrub.value));
  });
  show(opts.position ?? 0);
  return { show, play, stop, position: () => position, destroy: stop };
}
