// Page state lives in the URL's query string, so a link reproduces what is on screen.

/** The current query parameters as a plain object. */
export function readUrl() {
  return Object.fromEntries(new URLSearchParams(window.location.search));
}

/** Set (or, for null/undefined/"", remove) parameters without adding a history entry. */
export function writeUrl(patch) {
  const params = new URLSearchParams(window.location.search);
  for (const [key, value] of Object.entries(patch)) {
    if (value === null || value === undefined || value === "") params.delete(key);
    else params.set(key, String(value));
  }
  const query = params.toString();
  const target = `${window.location.pathname}${query ? `?${query}` : ""}`;
  if (target !== `${window.location.pathname}${window.location.search}`) window.history.replaceState(null, "", target);
}

/** Remove every parameter starting with `prefix`. */
export function clearUrl(prefix) {
  const patch = {};
  for (const key of new URLSearchParams(window.location.search).keys()) if (key.startsWith(prefix)) patch[key] = null;
  writeUrl(patch);
}

/** Pixels in [0, 1] that are k/255 exactly, packed as "u8:HxWxC:base64" (exact and short). */
export function packPixels(pixels) {
  const h = pixels.length;
  const w = pixels[0].length;
  const c = Array.isArray(pixels[0][0]) ? pixels[0][0].length : 1;
  const bytes = new Uint8Array(h * w * c);
  let i = 0;
  for (const row of pixels) for (const px of row) for (const v of Array.isArray(px) ? px : [px]) bytes[i++] = Math.round(Math.min(Math.max(v, 0), 1) * 255);
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return `u8:${h}x${w}x${c}:${btoa(binary)}`;
}

/** Inverse of packPixels: (H, W, C) nested lists of k / 255 (null when the text is malformed). */
export function unpackPixels(text) {
  const m = /^u8:(\d+)x(\d+)x(\d+):([A-Za-z0-9+/=]+)$/.exec(text ?? "");
  if (!m) return null;
  const [h, w, c] = [Number(m[1]), Number(m[2]), Number(m[3])];
  let binary;
  try {
    binary = atob(m[4]);
  } catch {
    return null;
  }
  if (binary.length !== h * w * c) return null;
  const out = [];
  for (let r = 0; r < h; r += 1) {
    const row = [];
    for (let q = 0; q < w; q += 1) {
      const px = [];
      for (let k = 0; k < c; k += 1) px.push(binary.charCodeAt((r * w + q) * c + k) / 255);
      row.push(px);
    }
    out.push(row);
  }
  return out;
}
