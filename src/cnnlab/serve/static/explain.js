// cnnlab explainer page: draw (or upload, or pick a test image) and watch every layer respond.
// Every stroke (throttled) POSTs the pad to /explain/activations and redraws every feature map;
// clicking a unit of a map POSTs /explain/unit and shows its receptive field and arithmetic.
"use strict";

const $ = (id) => document.getElementById(id);
const SEEN_PX = 224;  // the input and its effective receptive field are drawn this size
const UPDATE_MS = 60;  // at most one update in flight; strokes within this window are merged

let model = null;  // GET /explain/model
let rows = new Map();  // layer name -> {info, maps: [canvas], flat, kernels}
let last = null;  // last /explain/activations answer
let selected = null;  // {layer, channel, row, col}
let timer = null, busy = false, dirty = false;

// ---------------------------------------------------------------- input
const pad = makePad($("pad"), { onInk: () => schedule(), onLift: () => schedule() });
const ctx = pad.ctx;
const clearPad = pad.clear;

function drawPicture(img, fill) {
  // fill: stretch a small test image over the pad; else letterbox a photo on black
  clearPad();
  ctx.imageSmoothingEnabled = !fill;
  const scale = fill ? pad.canvas.width / img.width
    : Math.min(pad.canvas.width / img.width, pad.canvas.height / img.height);
  const w = img.width * scale, h = img.height * scale;
  ctx.drawImage(img, (pad.canvas.width - w) / 2, (pad.canvas.height - h) / 2, w, h);
  ctx.imageSmoothingEnabled = true;
  pad.inked = true;
  schedule();
}

$("clear").addEventListener("click", () => {
  clearPad();
  last = null;
  $("label").textContent = "–";
  $("confidence").textContent = "";
  $("timing").textContent = "";
  showBars(model ? model.classes.map(() => 0) : [], -1);
  for (const row of rows.values()) row.maps.forEach((c) => blank(c));
  blank($("seen"));
  clearUnit();
  document.body.dataset.state = "idle";
});

$("upload").addEventListener("change", () => {
  const file = $("upload").files[0];
  if (!file) return;
  const url = URL.createObjectURL(file);
  const img = new Image();
  document.body.dataset.pending = "yes";  // until the picture is decoded and sent
  img.onload = () => { drawPicture(img, false); URL.revokeObjectURL(url); };
  img.onerror = () => { setStatus(`cannot read ${file.name} as an image`); showPending(); };
  img.src = url;
});

// ---------------------------------------------------------------- requests
function schedule() {
  if (timer !== null) return;
  timer = setTimeout(() => { timer = null; update(); showPending(); }, UPDATE_MS);
  showPending();
}

// data-pending="no" once nothing is waiting to be sent or answered (tests wait for it)
function showPending() {
  document.body.dataset.pending = timer !== null || busy ? "yes" : "no";
}

async function post(path, body) {
  const response = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const doc = await response.json();
  if (!response.ok) throw new Error(doc.detail || `HTTP ${response.status}`);
  return doc;
}

async function update() {
  if (!pad.inked || !model) return;
  if (busy) { dirty = true; return; }
  busy = true;
  showPending();
  dirty = false;
  document.body.dataset.state = "busy";
  const image = pad.canvas.toDataURL("image/png");
  try {
    const doc = await post("/explain/activations", { image });
    last = doc;
    last.sent = image;
    const t0 = performance.now();
    render(doc);
    const drawn = performance.now() - t0;
    $("timing").textContent = `${doc.ms.toFixed(1)} ms on the server for every layer, ` +
      `${drawn.toFixed(0)} ms to draw them`;
    document.body.dataset.drawMs = drawn.toFixed(1);
    if (selected) await explainUnit(selected, image);
    document.body.dataset.state = "done";
    setStatus("");
  } catch (err) {
    document.body.dataset.state = "error";
    setStatus(`error: ${err.message}`);
  } finally {
    busy = false;
    if (dirty) schedule();
    showPending();
  }
}

function setStatus(text) { $("status").textContent = text; }

// ---------------------------------------------------------------- layer rows
const fmt = (shape) => `(${shape.join(", ")})`;
const FLAT_COLS = 48;  // a flat layer's units wrap after this many cells

function cellPx(h, w) { return Math.max(2, Math.floor(84 / Math.max(h, w))); }

function buildRows() {
  const box = $("layer-rows");
  box.replaceChildren();
  rows = new Map();
  for (const info of model.layers) {
    const row = document.createElement("div");
    row.className = `layer-row ${info.category}`;
    row.setAttribute("data-testid", "layer-row");
    row.dataset.layer = info.name;
    const head = document.createElement("div");
    head.className = "layer-head";
    const title = document.createElement("span");
    title.className = "layer-name";
    title.textContent = info.name;
    const kind = document.createElement("span");
    kind.className = "muted small";
    kind.textContent = `${info.kind} → ${fmt(info.shape)}`;
    const rf = document.createElement("span");
    rf.className = "muted small";
    const [rh, rw] = info.receptive_field;
    // as the model summary: "(all)" = one unit combines every input position that reaches it
    rf.textContent = info.jump ? `RF ${rh}×${rw}, jump ${info.jump[0]}` : `RF ${rh}×${rw} (all)`;
    const note = document.createElement("span");
    note.className = "muted small note";
    note.textContent = NOTES[info.category] || "";
    const scale = document.createElement("span");
    scale.className = "scale small";
    head.append(title, kind, rf, note, scale);
    const maps = document.createElement("div");
    maps.className = "maps";
    const entry = { info, maps: [], flat: info.shape.length !== 3, scale, kernels: null, row };
    if (info.category === "conv") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "secondary small-button";
      button.textContent = "show kernels";
      button.addEventListener("click", () => toggleKernels(entry, button));
      head.append(button);
    }
    if (entry.flat) {
      const n = info.shape[0];
      const cols = Math.min(n, FLAT_COLS), lines = Math.ceil(n / cols);
      const px = n <= 16 ? 22 : 10;
      const fig = mapFigure(info.name, 0, cols, lines, px, entry, `${n} units`);
      if (info === model.layers[model.layers.length - 1] && n === model.classes.length && n <= 16) {
        fig.querySelector("figcaption").replaceChildren(...model.classes.map((name) => {
          const cell = document.createElement("span");  // the logits: name each cell's class
          cell.className = "class-cell";
          cell.style.width = `${px}px`;
          cell.textContent = name;
          cell.title = name;
          return cell;
        }));
      }
      maps.append(fig);
    } else {
      const [c, h, w] = info.shape;
      const px = cellPx(h, w);
      for (let k = 0; k < c; k++) maps.append(mapFigure(info.name, k, w, h, px, entry, String(k)));
    }
    row.append(head, maps);
    box.append(row);
    rows.set(info.name, entry);
  }
}

const NOTES = {
  conv: "learned filters slide over the previous layer",
  activation: "applied to each value on its own",
  pool: "keeps one value per window",
  norm: "shifts and scales each channel",
  dense: "every unit sees every input",
  reshape: "the same numbers, rearranged",
  dropout: "does nothing at prediction time",
};

function mapFigure(layer, channel, w, h, px, entry, caption) {
  const fig = document.createElement("figure");
  fig.className = "fm";
  const stage = document.createElement("div");
  stage.className = "fm-stage";
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  canvas.style.width = `${w * px}px`;
  canvas.style.height = `${h * px}px`;
  canvas.setAttribute("data-testid", "feature-map");
  canvas.dataset.layer = layer;
  canvas.dataset.channel = String(channel);
  canvas.title = `${layer} channel ${channel}: click a unit`;
  blank(canvas);
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    const col = Math.min(w - 1, Math.floor(((event.clientX - box.left) / box.width) * w));
    const row = Math.min(h - 1, Math.floor(((event.clientY - box.top) / box.height) * h));
    if (entry.flat) select({ layer, channel: row * w + col, row: 0, col: 0 });
    else select({ layer, channel, row, col });
  });
  stage.append(canvas);
  const cap = document.createElement("figcaption");
  cap.textContent = caption;
  fig.append(stage, cap);
  entry.maps.push(canvas);
  return fig;
}

function render(doc) {
  $("label").textContent = doc.class_name;
  $("label").classList.toggle("long", doc.class_name.length > 2);
  const mirror = doc.tta ? " (the image and its mirror)" : "";
  $("confidence").textContent = `${(100 * doc.probs[doc.label]).toFixed(1)}% sure${mirror}`;
  showBars(doc.probs, doc.label);
  drawInput(doc.image);
  for (const layer of doc.layers) {
    const entry = rows.get(layer.name);
    if (!entry) continue;
    const values = floats(layer.data);
    const m = layer.max_abs;
    entry.scale.textContent = `±${m.toPrecision(3)}`;
    if (entry.flat) {
      const canvas = entry.maps[0];
      const n = values.length;
      paint(canvas, canvas.width, canvas.height, (i) => (i < n ? diverging(values[i], m) : [238, 238, 238]));
    } else {
      const [, h, w] = layer.shape;
      entry.maps.forEach((canvas, k) => paintSigned(canvas, values, k * h * w, w, h, m));
    }
  }
}

function drawInput(image) {
  const [c, h, w] = image.shape;
  const values = floats(image.data);
  const canvas = $("seen");
  canvas.width = w; canvas.height = h;
  paint(canvas, w, h, (i) => {
    if (c === 3) return [0, 1, 2].map((k) => 255 * values[k * h * w + i]);
    const g = 255 * values[i];
    return [g, g, g];
  });
}

function showBars(probs, top) { renderBars($("bars"), probs, top, model.classes); }

// ---------------------------------------------------------------- kernels (on demand)
async function toggleKernels(entry, button) {
  if (entry.kernels) {
    entry.kernels.forEach((k) => k.remove());
    entry.kernels = null;
    button.textContent = "show kernels";
    return;
  }
  const response = await fetch(`/explain/kernels/${encodeURIComponent(entry.info.name)}`);
  const doc = await response.json();
  if (!response.ok) { setStatus(`error: ${doc.detail}`); return; }
  const [out, cin, kh, kw] = doc.shape;
  const values = floats(doc.data);
  const cols = Math.ceil(Math.sqrt(cin)), lines = Math.ceil(cin / cols);
  const w = cols * (kw + 1) - 1, h = lines * (kh + 1) - 1;
  const mapWidth = entry.maps[0].getBoundingClientRect().width;
  const px = Math.max(1, Math.floor(mapWidth / Math.max(w, h)));
  entry.kernels = [];
  entry.maps.forEach((canvas, o) => {
    if (o >= out) return;
    const k = document.createElement("canvas");
    k.className = "kernel";
    k.setAttribute("data-testid", "kernel");
    k.width = w; k.height = h;
    k.style.width = `${w * px}px`;
    k.style.height = `${h * px}px`;
    k.title = `filter ${o}: ${cin} input channel${cin > 1 ? "s" : ""} of ${kh}×${kw}`;
    paint(k, w, h, (i) => {
      const x = i % w, y = Math.floor(i / w);
      const tx = Math.floor(x / (kw + 1)), ty = Math.floor(y / (kh + 1));
      const ix = x % (kw + 1), iy = y % (kh + 1);
      const ch = ty * cols + tx;
      if (ix === kw || iy === kh || ch >= cin) return [200, 200, 200];
      return diverging(values[((o * cin + ch) * kh + iy) * kw + ix], doc.max_abs);
    });
    canvas.closest("figure").append(k);
    entry.kernels.push(k);
  });
  button.textContent = "hide kernels";
}

// ---------------------------------------------------------------- one unit
function select(unit) {
  selected = unit;
  if (last) explainUnit(unit, last.sent).catch((err) => setStatus(`error: ${err.message}`));
}

function clearUnit() {
  selected = null;
  $("unit-panel").hidden = true;
  document.querySelectorAll(".rf-box, .unit-mark").forEach((el) => el.remove());
  blank($("erf"));
  $("erf-caption").textContent = "click a unit of any feature map below";
}

async function explainUnit(unit, image) {
  const doc = await post("/explain/unit", { image, ...unit });
  if (selected !== unit) return;  // another unit was clicked meanwhile
  showBoxes(doc);
  markUnit(unit);
  showErf(doc);
  showArithmetic(doc);
}

function markUnit(unit) {
  document.querySelectorAll(".unit-mark").forEach((el) => el.remove());
  const entry = rows.get(unit.layer);
  const canvas = entry.flat ? entry.maps[0] : entry.maps[unit.channel];
  const [w, h] = [canvas.width, canvas.height];
  const [col, row] = entry.flat ? [unit.channel % w, Math.floor(unit.channel / w)] : [unit.col, unit.row];
  const px = canvas.getBoundingClientRect().width / w;
  const mark = document.createElement("div");
  mark.className = "unit-mark";
  Object.assign(mark.style, {
    left: `${col * px}px`, top: `${row * px}px`, width: `${px}px`, height: `${px}px`,
  });
  canvas.parentElement.append(mark);
}

const MINI_PX = 140;  // the input and effective RF beside the arithmetic

function showBoxes(doc) {
  document.querySelectorAll(".rf-box").forEach((el) => el.remove());
  const [h, w] = model.input_shape.slice(1);
  const [top, bottom, left, right] = doc.box_clipped;
  for (const stage of [$("input-stage"), $("erf-stage"), $("mini-input-stage"), $("mini-erf-stage")]) {
    const px = (stage.id.startsWith("mini") ? MINI_PX : SEEN_PX) / Math.max(h, w);
    const box = document.createElement("div");
    box.className = "rf-box";
    Object.assign(box.style, {
      left: `${left * px}px`, top: `${top * px}px`,
      width: `${(right - left + 1) * px}px`, height: `${(bottom - top + 1) * px}px`,
    });
    box.dataset.box = doc.box.join(",");
    box.dataset.rows = String(bottom - top + 1);
    box.dataset.cols = String(right - left + 1);
    if (stage.id === "input-stage") box.setAttribute("data-testid", "rf-box");
    stage.append(box);
  }
}

function showErf(doc) {
  const [h, w] = doc.erf.shape;
  const values = floats(doc.erf.data);
  const canvas = $("erf");
  canvas.width = w; canvas.height = h;
  const m = doc.erf_max;
  paint(canvas, w, h, (i) => heat(m > 0 ? values[i] / m : 0));
  copyCanvas(canvas, $("mini-erf"));
  copyCanvas($("seen"), $("mini-input"));
  const [rh, rw] = doc.receptive_field;
  $("erf-caption").textContent =
    `effective RF: |∂ unit / ∂ input| (box: theoretical RF ${rh}×${rw})`;
}

function num(v, d = 3) {
  if (Math.abs(v) < 1e-12) return "0";
  const text = v.toFixed(d);
  return /^-0\.0*$/.test(text) ? text.slice(1) : text;  // no "-0.00"
}
const sign = (v) => (v > 0 ? "pos" : v < 0 ? "neg" : "zero");

function copyCanvas(from, to) {
  to.width = from.width;
  to.height = from.height;
  to.getContext("2d").drawImage(from, 0, 0);
}

function showArithmetic(doc) {
  const panel = $("unit-panel");
  const row = rows.get(doc.layer).row;
  if (panel.previousElementSibling !== row) row.after(panel);  // right under the clicked row
  panel.hidden = false;
  panel.dataset.unit = `${doc.layer}:${doc.unit.join(",")}`;
  const where = doc.unit.length === 3
    ? `channel ${doc.unit[0]}, row ${doc.unit[1]}, col ${doc.unit[2]}` : `unit ${doc.unit[0]}`;
  $("unit-title").textContent = `${doc.layer} (${doc.kind}), ${where}: value ${num(doc.value, 4)}`;
  const [t, b, l, r] = doc.box;
  const [rh, rw] = doc.receptive_field;
  $("unit-rf").textContent = !rows.get(doc.layer).info.jump
    ? `This unit combines every input position that reaches it: rows ${t}..${b}, cols ${l}..${r}.`
    : `Theoretical receptive field ${rh}×${rw}: input rows ${t}..${b}, cols ${l}..${r}` +
      (doc.box.join() !== doc.box_clipped.join() ? " (partly outside the image: padding)." : ".");
  const body = $("unit-body");
  body.replaceChildren();
  const a = doc.arithmetic;
  if (a.type === "conv") body.append(convArithmetic(doc, a));
  else if (a.type === "pool") body.append(poolArithmetic(doc, a));
  else if (a.type === "dense") body.append(denseArithmetic(doc, a));
  else if (a.type === "elementwise") body.append(elementwise(doc, a));
  else if (a.type === "copy") {
    body.append(para(`A copy of input (${a.source.join(", ")}) = ${num(a.input, 4)}.`));
  } else body.append(para("No arithmetic to show for this layer."));
}

function para(text, cls = "") {
  const p = document.createElement("p");
  p.textContent = text;
  if (cls) p.className = cls;
  return p;
}

function grid(values, opts = {}) {
  const table = document.createElement("table");
  table.className = "grid";
  values.forEach((line, y) => {
    const tr = document.createElement("tr");
    line.forEach((v, x) => {
      const td = document.createElement("td");
      const padding = opts.padded && opts.padded[y][x];
      td.textContent = padding ? "0" : num(v, 2);
      td.className = padding ? "pad" : sign(v);
      if (opts.winner && opts.winner[0] === y && opts.winner[1] === x) td.classList.add("winner");
      td.title = padding ? "padding" : String(v);
      tr.append(td);
    });
    table.append(tr);
  });
  return table;
}

function op(text) {
  const span = document.createElement("span");
  span.className = "op";
  span.textContent = text;
  return span;
}

function convArithmetic(doc, a) {
  const box = document.createElement("div");
  box.setAttribute("data-testid", "conv-arithmetic");
  box.dataset.value = String(doc.value);
  box.dataset.sum = String(a.total);
  const [kh, kw] = a.kernel_size;
  const source = previousName(doc.layer);
  box.append(para(
    `Kernel ${kh}×${kw}, stride ${a.stride.join("×")}, padding ${a.padding.join("×")}: the window ` +
    `covers rows ${a.rows[0]}..${a.rows[a.rows.length - 1]} and cols ${a.cols[0]}..` +
    `${a.cols[a.cols.length - 1]} of ${source}` +
    (a.padded.flat().some(Boolean) ? "; grey cells are zero padding." : "."), "small"));
  const list = document.createElement("div");
  list.className = "channels";
  a.in_channels.forEach((ch, i) => {
    const line = document.createElement("div");
    line.className = "channel";
    const label = document.createElement("span");
    label.className = "ch-label";
    const rgb = model.input_shape[0] === 3 && source.startsWith("the input");
    label.textContent = rgb ? ["red", "green", "blue"][ch] : `in ${ch}`;
    const total = document.createElement("span");
    total.className = "ch-sum";
    total.textContent = `Σ ${num(a.channel_sums[i], 4)}`;
    line.append(label, grid(a.patch[i], { padded: a.padded }), op("×"), grid(a.kernel[i]),
      op("="), grid(a.products[i]), total);
    list.append(line);
  });
  box.append(list);
  const n = a.in_channels.length;
  const sum = document.createElement("p");
  sum.className = "total";
  sum.textContent =
    `sum of ${n * kh * kw} products (${n} channel${n > 1 ? "s" : ""} × ${kh}×${kw}) = ` +
    `${num(a.sum, 4)};  + bias ${num(a.bias, 4)}  =  ${num(a.total, 4)}`;
  const check = para(
    `the network computed ${num(doc.value, 4)} ` +
    (Math.abs(doc.value - a.total) < 1e-4 ? "✓" : "(differs!)"), "check");
  box.append(sum, check);
  return box;
}

function previousName(layer) {
  const i = model.layers.findIndex((l) => l.name === layer);
  return i > 0 ? model.layers[i - 1].name : "the input (after normalisation)";
}

function poolArithmetic(doc, a) {
  const box = document.createElement("div");
  box.setAttribute("data-testid", "pool-arithmetic");
  box.dataset.value = String(doc.value);
  box.dataset.result = String(a.result);
  const source = previousName(doc.layer);
  box.append(para(
    `Window ${a.kernel_size.join("×")} (stride ${a.stride.join("×")}) on channel ${doc.unit[0]} ` +
    `of ${source}, rows ${a.rows[0]}..${a.rows[a.rows.length - 1]}, cols ${a.cols[0]}..` +
    `${a.cols[a.cols.length - 1]}:`, "small"));
  const line = document.createElement("div");
  line.className = "channel";
  line.append(grid(a.window, { padded: a.padded, winner: a.winner }));
  line.append(op(a.op === "max"
    ? `max = ${num(a.result, 4)} (the outlined cell won)`
    : `mean of ${a.count} = ${num(a.result, 4)}`));
  box.append(line);
  return box;
}

function denseArithmetic(doc, a) {
  const box = document.createElement("div");
  box.setAttribute("data-testid", "dense-arithmetic");
  box.dataset.value = String(doc.value);
  box.dataset.sum = String(a.total);
  box.append(para(
    `value = Σ weight × input over ${a.inputs} inputs of ${previousName(doc.layer)}, + bias. ` +
    `The ${a.top.length} largest terms:`, "small"));
  const table = document.createElement("table");
  table.className = "terms";
  const head = document.createElement("tr");
  for (const h of ["input #", "input", "weight", "weight × input"]) {
    const th = document.createElement("th");
    th.textContent = h;
    head.append(th);
  }
  table.append(head);
  for (const t of a.top) {
    const tr = document.createElement("tr");
    for (const [v, cls] of [[String(t.index), ""], [num(t.input), ""], [num(t.weight), ""],
      [num(t.product, 4), sign(t.product)]]) {
      const td = document.createElement("td");
      td.textContent = v;
      if (cls) td.className = cls;
      tr.append(td);
    }
    table.append(tr);
  }
  box.append(table);
  box.append(para(
    `other ${a.inputs - a.top.length} terms: ${num(a.rest, 4)}; sum ${num(a.sum, 4)} + bias ` +
    `${num(a.bias, 4)} = ${num(a.total, 4)} (network: ${num(doc.value, 4)})`, "total"));
  return box;
}

function elementwise(doc, a) {
  if (a.norm) {
    const n = a.norm;
    return para(
      `(x − mean) / √(var + eps) × γ + β = (${num(a.input, 4)} − ${num(n.mean, 4)}) / ` +
      `√(${num(n.var, 4)} + ${n.eps}) × ${num(n.weight, 4)} + ${num(n.bias, 4)} = ` +
      `${num(a.output, 4)}`, "total");
  }
  return para(`${doc.kind}(${num(a.input, 4)}) = ${num(a.output, 4)}: the same position ` +
    `in ${previousName(doc.layer)}, passed through the function.`, "total");
}

// ---------------------------------------------------------------- start
async function loadSamples() {
  const doc = await (await fetch("/explain/samples")).json();
  if (!doc.samples || !doc.samples.length) return;
  const box = $("samples");
  for (const s of doc.samples) {
    const img = document.createElement("img");
    img.src = `data:image/png;base64,${s.png}`;
    img.alt = `test image: ${s.class_name}`;
    img.title = `test image (${s.class_name})`;
    img.className = "sample";
    img.setAttribute("data-testid", "sample");
    img.addEventListener("click", () => drawPicture(img, true));
    box.append(img);
  }
  $("samples-box").hidden = false;
}

async function start() {
  clearPad();
  for (const [id, px] of [["seen", SEEN_PX], ["erf", SEEN_PX], ["mini-input", MINI_PX],
    ["mini-erf", MINI_PX]]) {
    $(id).style.width = `${px}px`;
    $(id).style.height = `${px}px`;
    blank($(id));
  }
  try {
    const response = await fetch("/explain/model");
    model = await response.json();
    if (!response.ok) throw new Error(model.detail || `HTTP ${response.status}`);
  } catch (err) {
    $("model-line").textContent = `cannot explain this model: ${err.message}`;
    return;
  }
  const [c, h, w] = model.input_shape;
  $("model-line").textContent =
    `${model.model ?? "model"} trained on ${model.dataset || "?"}: input ${c}×${h}×${w}, ` +
    `${model.layers.length} layers`;
  if (model.style === "fashion" || c === 3) $("input-title").textContent = "Draw or upload a photo";
  buildRows();
  showBars(model.classes.map(() => 0), -1);
  document.body.dataset.ready = "true";
  loadSamples().catch(() => {});
}

start();
