// cnnlab live training page: server-sent events from `cnnlab train --live` redraw the curves,
// the first conv layer's kernels and every conv layer's maps of one fixed probe image.
"use strict";

const $ = (id) => document.getElementById(id);
const evals = [];  // evaluation rows
const steps = [];  // [step, running training loss]
let info = null;
let rows = new Map();

function line(canvas, series, yMax) {
  const c = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 40, B = 22, T = 8, R = 8;
  c.clearRect(0, 0, W, H);
  c.fillStyle = "#fff";
  c.fillRect(0, 0, W, H);
  const xMax = Math.max(1, info ? info.total_steps : 1);
  const top = yMax ?? Math.max(1e-6, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const x = (v) => L + ((W - L - R) * v) / xMax;
  const y = (v) => H - B - ((H - B - T) * v) / top;
  c.strokeStyle = "#ccc";
  c.fillStyle = "#6b6b70";
  c.font = "11px system-ui, sans-serif";
  for (let k = 0; k <= 4; k++) {
    const v = (top * k) / 4;
    c.beginPath(); c.moveTo(L, y(v)); c.lineTo(W - R, y(v)); c.stroke();
    c.fillText(v.toFixed(top < 2 ? 2 : 1), 2, y(v) + 4);
  }
  c.fillText("0", L, H - 6);
  c.textAlign = "center";
  c.fillText("optimiser step", (L + W - R) / 2, H - 6);
  c.textAlign = "right";
  c.fillText(String(xMax), W - R, H - 6);
  c.textAlign = "left";
  for (const s of series) {
    c.strokeStyle = s.colour;
    c.fillStyle = s.colour;
    c.lineWidth = 2;
    c.beginPath();
    s.points.forEach(([px, py], i) => (i ? c.lineTo(x(px), y(py)) : c.moveTo(x(px), y(py))));
    c.stroke();
    if (s.dots) for (const [px, py] of s.points) c.fillRect(x(px) - 2, y(py) - 2, 5, 5);
  }
}

function redrawCurves() {
  const pick = (key) => evals.filter((r) => r[key] != null).map((r) => [r.step, r[key]]);
  line($("loss"), [
    { points: steps, colour: "#2f6fde" },
    { points: pick("val_loss"), colour: "#d9480f", dots: true },
  ]);
  line($("accuracy"), [
    { points: pick("train_accuracy"), colour: "#2f6fde", dots: true },
    { points: pick("val_accuracy"), colour: "#d9480f", dots: true },
  ], 1);
}

function showProbe(probe) {
  const [c, h, w] = probe.shape;
  const v = floats(probe.data);
  const canvas = $("probe");
  canvas.width = w; canvas.height = h;
  paint(canvas, w, h, (i) => (c === 3 ? [0, 1, 2].map((k) => 255 * v[k * h * w + i])
    : [255 * v[i], 255 * v[i], 255 * v[i]]));
}

function figure(w, h, px, caption) {
  const fig = document.createElement("figure");
  fig.className = "fm";
  const canvas = document.createElement("canvas");
  canvas.width = w; canvas.height = h;
  canvas.style.width = `${w * px}px`;
  canvas.style.height = `${h * px}px`;
  blank(canvas);
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(canvas, cap);
  return [fig, canvas];
}

function row(name, note, count, w, h, px, testid) {
  if (rows.has(name)) return rows.get(name);
  const div = document.createElement("div");
  div.className = "layer-row conv";
  div.setAttribute("data-testid", testid);
  div.dataset.layer = name;
  const head = document.createElement("div");
  head.className = "layer-head";
  const title = document.createElement("span");
  title.className = "layer-name";
  title.textContent = name;
  const extra = document.createElement("span");
  extra.className = "muted small";
  extra.textContent = note;
  const scale = document.createElement("span");
  scale.className = "scale small";
  head.append(title, extra, scale);
  const maps = document.createElement("div");
  maps.className = "maps";
  const canvases = [];
  for (let k = 0; k < count; k++) {
    const [fig, canvas] = figure(w, h, px, String(k));
    maps.append(fig);
    canvases.push(canvas);
  }
  div.append(head, maps);
  $("layer-rows").append(div);
  const entry = { canvases, scale };
  rows.set(name, entry);
  return entry;
}

function showKernels(k) {
  const [out, cin, kh, kw] = k.shape;
  const v = floats(k.data);
  const entry = row(`${info.layers[0]} kernels`, `${out} filters of ${cin}×${kh}×${kw}` +
    (cin === 3 ? " (drawn as colour)" : cin > 1 ? " (mean over input channels)" : ""),
  out, kw, kh, Math.max(4, Math.floor(60 / Math.max(kh, kw))), "kernel-row");
  let m = 0;
  for (const x of v) m = Math.max(m, Math.abs(x));
  entry.scale.textContent = `±${m.toPrecision(3)}`;
  entry.canvases.forEach((canvas, o) => {
    paint(canvas, kw, kh, (i) => {
      const at = (ch) => v[(o * cin + ch) * kh * kw + i];
      if (cin === 3) return [0, 1, 2].map((ch) => 127.5 + (127.5 * at(ch)) / (m || 1));
      let s = 0;
      for (let ch = 0; ch < cin; ch++) s += at(ch);
      return diverging(s / cin, m);
    });
  });
}

function showMaps(maps) {
  for (const layer of maps) {
    const [c, h, w] = layer.shape;
    const v = floats(layer.data);
    const entry = row(layer.name, `→ (${c}, ${h}, ${w})`, c, w, h,
      Math.max(2, Math.floor(72 / Math.max(h, w))), "live-maps");
    let m = 0;
    for (const x of v) m = Math.max(m, Math.abs(x));
    entry.scale.textContent = `±${m.toPrecision(3)}`;
    entry.canvases.forEach((canvas, k) => paintSigned(canvas, v, k * h * w, w, h, m));
  }
}

function showBars(probs) {
  renderBars($("bars"), probs, probs.indexOf(Math.max(...probs)), info.classes);
}

function progress(step, done) {
  const epoch = info ? (step / info.steps_per_epoch).toFixed(2) : "?";
  const last = evals[evals.length - 1];
  const acc = last && last.val_accuracy != null
    ? `, validation accuracy ${(100 * last.val_accuracy).toFixed(2)}%` : "";
  $("progress").textContent = `${done ? "finished" : "training"}: step ${step} of ` +
    `${info ? info.total_steps : "?"} (epoch ${epoch})${acc}`;
}

const events = new EventSource("/train/events");
events.addEventListener("start", (e) => {
  info = JSON.parse(e.data);
  evals.length = 0;
  evals.push(...info.history);
  $("model-line").textContent = `${info.model} on ${info.dataset}`;
  $("probe-line").textContent = `a ${info.probe_label} from the validation set`;
  showProbe(info.probe);
  document.body.dataset.state = "training";
  redrawCurves();
});
events.addEventListener("step", (e) => {
  const d = JSON.parse(e.data);
  steps.push([d.step, d.loss]);
  redrawCurves();
  progress(d.step, false);
});
events.addEventListener("eval", (e) => {
  const d = JSON.parse(e.data);
  if (d.row.val_loss != null || d.row.train_loss != null) evals.push(d.row);
  if (d.kernels) showKernels(d.kernels);
  showMaps(d.maps);
  showBars(d.probs);
  redrawCurves();
  progress(d.row.step, false);
  document.body.dataset.evaluations = String(evals.length);
});
events.addEventListener("end", (e) => {
  const d = JSON.parse(e.data);
  progress(d.step, true);
  document.body.dataset.state = "finished";
  events.close();
});
