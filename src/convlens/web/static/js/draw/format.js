// Number formatting shared by every view. fmtValue mirrors convlens.lab.render_explain.fmt_value
// (the terminal's `convlens explain`), so the page and the terminal print the same digits (except
// that a value rounding to a whole number drops the trailing "." the terminal keeps: 1.0001 -> "1").

/** Short number: integers without decimals, else 3 decimals (3 significant digits when tiny or huge). */
export function fmtValue(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return "?";
  if (Number.isInteger(x) && Math.abs(x) < 1e9) return String(x);
  if (Math.abs(x) < 1e-2 || Math.abs(x) >= 1e4) return fmtG(x, 3);
  return x.toFixed(3).replace(/0+$/, "").replace(/\.$/, "");
}

/** Python's "%.{p}g" formatting (no trailing zeros, exponent with at least two digits). */
export function fmtG(x, p) {
  if (x === 0) return "0";
  const exp = Math.floor(Math.log10(Math.abs(x)));
  let text;
  if (exp < -4 || exp >= p) {
    const [mant, e] = x.toExponential(p - 1).split("e");
    const m = mant.includes(".") ? mant.replace(/0+$/, "").replace(/\.$/, "") : mant;
    const n = Number(e);
    text = `${m}e${n < 0 ? "-" : "+"}${String(Math.abs(n)).padStart(2, "0")}`;
  } else {
    text = x.toPrecision(p);
    if (text.includes(".")) text = text.replace(/0+$/, "").replace(/\.$/, "");
  }
  return text;
}

/** 63050 -> "63,050". */
export function fmtInt(n) {
  return n === null || n === undefined ? "-" : Math.round(n).toLocaleString("en-US");
}

/** 0.98765 -> "98.77%". */
export function fmtPct(x, digits = 2) {
  return x === null || x === undefined ? "-" : `${(x * 100).toFixed(digits)}%`;
}

/** Bytes -> "246.29 KB" (as convlens.summary_table.format_bytes). */
export function fmtBytes(n) {
  const units = ["B", "KB", "MB", "GB"];
  let v = n;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${v.toFixed(2)} ${units[i]}`;
}

/** (None, 28, 28, 32) style shape text. */
export function fmtShape(shape) {
  return `(${shape.map((v) => (v === null ? "None" : String(v))).join(", ")})`;
}

/** "28x28" style size text. */
export function fmtSize(values) {
  return values.join("×");
}
