// Colour scales: sequential (viridis) for maps, grey for inputs, diverging (blue-white-red) for signed
// values such as kernels, products and gradients. Each returns [r, g, b] in 0..255.

const VIRIDIS = [
  [68, 1, 84], [72, 35, 116], [64, 67, 135], [52, 94, 141], [41, 120, 142], [32, 144, 140],
  [34, 167, 132], [68, 190, 112], [121, 209, 81], [189, 222, 38], [253, 231, 37],
];
const DIVERGING = [
  [33, 102, 172], [103, 169, 207], [209, 229, 240], [247, 247, 247], [253, 219, 199], [239, 138, 98],
  [178, 24, 43],
];
const HOT = [[0, 0, 0], [120, 0, 0], [230, 40, 0], [255, 160, 0], [255, 240, 120], [255, 255, 255]];

function ramp(table, t) {
  const u = Math.min(Math.max(Number.isFinite(t) ? t : 0, 0), 1) * (table.length - 1);
  const i = Math.min(Math.floor(u), table.length - 2);
  const f = u - i;
  const a = table[i];
  const b = table[i + 1];
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * f));
}

/** Colour maps by name: t in [0, 1] -> [r, g, b]. */
export const COLORMAPS = {
  viridis: (t) => ramp(VIRIDIS, t),
  gray: (t) => {
    const v = Math.round(Math.min(Math.max(t, 0), 1) * 255);
    return [v, v, v];
  },
  diverging: (t) => ramp(DIVERGING, t),
  hot: (t) => ramp(HOT, t),
  // light greys that keep dark numbers readable: the background of input values written as numbers
  paper: (t) => {
    const g = Math.round(252 - Math.min(Math.max(t, 0), 1) * 120);
    return [g, g, Math.min(255, g + 4)];
  },
};

/** Position of v in [vmin, vmax] (0.5 when the range is empty). */
export function unit(v, vmin, vmax) {
  return vmax > vmin ? (v - vmin) / (vmax - vmin) : 0.5;
}

/** "rgb(r, g, b)". */
export function css(rgb) {
  return `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
}

/** Black or white text, whichever reads better on the background rgb. */
export function ink(rgb) {
  const luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2];
  return luma > 140 ? "#1f2328" : "#ffffff";
}

/** Colour of a signed value on a scale symmetric about zero (|v| <= bound). */
export function signed(v, bound) {
  return COLORMAPS.diverging(bound > 0 ? 0.5 + v / (2 * bound) : 0.5);
}
