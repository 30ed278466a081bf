// Shared by the drawing page (/), the explainer (/explain) and the live training page (/train):
// the drawing pad, the probability bars, decoding the API's base64 float32 arrays and painting
// values onto small canvases.
"use strict";

// A drawing pad on ``canvas``: white ink on black, as MNIST digits are, so no inversion is
// needed. Pointer events cover mouse, touch and pen with one code path. ``onInk`` runs after
// every stroke segment and ``onLift`` when the pen leaves the pad.
function makePad(canvas, { onInk = () => {}, onLift = () => {} } = {}) {
  const ctx = canvas.getContext("2d");
  const pad = { canvas, ctx, inked: false };
  let drawing = false, last = null;
  pad.clear = () => {
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    pad.inked = false;
  };
  const penAt = (event) => {
    const box = canvas.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * canvas.width) / box.width,
      y: ((event.clientY - box.top) * canvas.height) / box.height,
    };
  };
  const stroke = (from, to) => {
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 22;  // about a 2-pixel pen after the 10x reduction to 28x28
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    ctx.beginPath();
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
    pad.inked = true;
    onInk();
  };
  canvas.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    canvas.setPointerCapture(event.pointerId);
    drawing = true;
    last = penAt(event);
    stroke(last, last);
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!drawing) return;
    event.preventDefault();
    const point = penAt(event);
    stroke(last, point);
    last = point;
  });
  for (const name of ["pointerup", "pointercancel", "pointerleave"]) {
    canvas.addEventListener(name, () => { if (drawing) { drawing = false; onLift(); } });
  }
  return pad;
}

// One bar per class into ``bars``; the ``top`` class highlighted (-1: none).
function renderBars(bars, probs, top, classes) {
  bars.replaceChildren();
  probs.forEach((p, i) => {
    const row = document.createElement("div");
    row.className = i === top ? "row top" : "row";
    row.dataset.cls = String(i);
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = classes[i] ?? String(i);
    const track = document.createElement("div");
    track.className = "track";
    const fill = document.createElement("div");
    fill.className = "fill";
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    track.append(fill);
    const pct = document.createElement("span");
    pct.className = "pct";
    pct.textContent = `${(100 * p).toFixed(1)}%`;
    row.append(name, track, pct);
    bars.append(row);
  });
}

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

// diverging() at 511 steps from -m to +m: painting a map is then a table look-up per value.
const SIGNED = (() => {
  const lut = new Uint8ClampedArray(511 * 3);
  for (let k = 0; k < 511; k++) lut.set(diverging(k - 255, 255), 3 * k);
  return lut;
})();

// values[offset .. offset + w*h) on the diverging scale of +-m (the fast path for feature maps).
function paintSigned(canvas, values, offset, w, h, m) {
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  const d = img.data;
  const scale = m > 0 ? 255 / m : 0;
  for (let i = 0; i < w * h; i++) {
    let k = Math.round(values[offset + i] * scale);
    k = 3 * ((k < -255 ? -255 : k > 255 ? 255 : k) + 255);
    d[4 * i] = SIGNED[k]; d[4 * i + 1] = SIGNED[k + 1]; d[4 * i + 2] = SIGNED[k + 2];
    d[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
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

