// Shared by the explainer (/explain) and the live training page (/train): decoding the API's
// base64 float32 arrays and painting values onto small canvases.
"use strict";

function floats(b64) {
  const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
  return new Float32Array(bytes.buffer);
}

// Signed values: blue (negative) - white (zero) - red (positive), scaled by the row's max |v|.
function diverging(v, m) {
  const t = m > 0 ? Math.max(-1, Math.min(1, v / m)) : 0;
  const a = Math.abs(t);
  if (t >= 0) return [255 - a * 77, 255 - a * 231, 255 - a * 212];  // to #b2182b
  return [255 - a * 222, 255 - a * 153, 255 - a * 83];  // to #2166ac
}

// Non-negative heat (effective receptive field): black - red - yellow - white.
function heat(t) {
  const c = (x) => 255 * Math.max(0, Math.min(1, x));
  return [c(3 * t), c(3 * t - 1), c(3 * t - 2)];
}

function paint(canvas, w, h, colour) {
  const img = canvas.getContext("2d").createImageData(w, h);
  for (let i = 0; i < w * h; i++) {
    const [r, g, b] = colour(i);
    img.data[4 * i] = r; img.data[4 * i + 1] = g; img.data[4 * i + 2] = b; img.data[4 * i + 3] = 255;
  }
  canvas.getContext("2d").putImageData(img, 0, 0);
}

function blank(canvas) {
  const c = canvas.getContext("2d");
  c.fillStyle = "#eee";
  c.fillRect(0, 0, canvas.width, canvas.height);
}

