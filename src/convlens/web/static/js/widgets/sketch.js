// A drawing pad for digits: white strokes on black (like MNIST), read back as a 28x28 grid whose
// values are k / 255 (each the mean of a 10x10 block of the 280x280 canvas, rounded to a byte).

const SIDE = 280;
const CELLS = 28;

/**
 * @param {HTMLElement} el where to put the pad (content replaced)
 * @param {(pixels: number[][]) => void} onChange called with (28, 28) values after each stroke
 * @param {{brush?: number}} [opts]
 * @returns {{clear(): void, pixels(): number[][], canvas: HTMLCanvasElement}}
 */
export function createSketch(el, onChange, opts = {}) {
  el.replaceChildren();
  const box = document.createElement("div");
  box.className = "sketch";
  const canvas = document.createElement("canvas");
  canvas.width = SIDE;
  canvas.height = SIDE;
  canvas.setAttribute("aria-label", "Drawing pad: draw a digit with the mouse");
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  const clearBtn = document.createElement("button");
  clearBtn.type = "button";
  clearBtn.className = "btn";
  clearBtn.textContent = "Clear";
  const hint = document.createElement("span");
  hint.className = "hint";
  hint.textContent = "Draw large and centred, as MNIST's digits are.";
  box.append(canvas, clearBtn, hint);
  el.appendChild(box);

  function clear() {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, SIDE, SIDE);
  }
  clear();
  let drawing = false;
  let last = null;
  const brush = opts.brush ?? 22;
  function point(event) {
    const r = canvas.getBoundingClientRect();
    return [((event.clientX - r.left) / r.width) * SIDE, ((event.clientY - r.top) / r.height) * SIDE];
  }
  function stroke(to) {
    ctx.strokeStyle = "#fff";
    ctx.fillStyle = "#fff";
    ctx.lineWidth = brush;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    const from = last ?? to;
    ctx.moveTo(from[0], from[1]);
    ctx.lineTo(to[0], to[1]);
    ctx.stroke();
    last = to;
  }
  canvas.addEventListener("pointerdown", (event) => {
    drawing = true;
    last = null;
    canvas.setPointerCapture(event.pointerId);
    stroke(point(event));
  });
  canvas.addEventListener("pointermove", (event) => {
    if (drawing) stroke(point(event));
  });
  const finish = () => {
    if (!drawing) return;
    drawing = false;
    last = null;
    onChange(pixels());
  };
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  clearBtn.addEventListener("click", () => {
    clear();
    onChange(pixels());
  });

  function pixels() {
    const data = ctx.getImageData(0, 0, SIDE, SIDE).data;
    const block = SIDE / CELLS;
    const out = [];
    for (let r = 0; r < CELLS; r += 1) {
      const row = [];
      for (let c = 0; c < CELLS; c += 1) {
        let sum = 0;
        for (let y = r * block; y < (r + 1) * block; y += 1) {
          for (let x = c * block; x < (c + 1) * block; x += 1) sum += data[(y * SIDE + x) * 4];
        }
        row.push(Math.round(sum / (block * block)) / 255);
      }
      out.push(row);
    }
    return out;
  }

  /** Paint a (28, 28) grid back onto the pad (to restore a drawing from the URL). */
  function load(grid) {
    const small = document.createElement("canvas");
    small.width = CELLS;
    small.height = CELLS;
    const sctx = small.getContext("2d");
    const img = sctx.createImageData(CELLS, CELLS);
    grid.forEach((row, r) => row.forEach((v, c) => {
      const g = Math.round((Array.isArray(v) ? v[0] : v) * 255);
      img.data.set([g, g, g, 255], (r * CELLS + c) * 4);
    }));
    sctx.putImageData(img, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(small, 0, 0, SIDE, SIDE);
  }
  return { clear, pixels, load, canvas };
}
