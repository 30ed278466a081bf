// cnnlab draw-a-digit page: draw with mouse / touch / pen, POST the canvas to /predict,
// show the probabilities, the 28x28 image the network saw and the first conv layer's maps.
"use strict";

const pad = document.getElementById("pad");
const ctx = pad.getContext("2d");
const $ = (id) => document.getElementById(id);
let classes = [];
let drawing = false;
let inked = false;
let last = null;

// MNIST digits are white ink on black: draw the same way so no inversion is needed.
function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  inked = false;
}

function penAt(event) {
  const box = pad.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * pad.width) / box.width,
    y: ((event.clientY - box.top) * pad.height) / box.height,
  };
}

function stroke(from, to) {
  ctx.strokeStyle = "#fff";
  ctx.lineWidth = 22;  // about a 2-pixel pen after the 10x reduction to 28x28
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
  inked = true;
}

// Pointer events cover mouse, touch and pen with one code path.
pad.addEventListener("pointerdown", (event) => {
  event.preventDefault();
  pad.setPointerCapture(event.pointerId);
  drawing = true;
  last = penAt(event);
  stroke(last, last);
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  event.preventDefault();
  const point = penAt(event);
  stroke(last, point);
  last = point;
});
for (const name of ["pointerup", "pointercancel", "pointerleave"]) {
  pad.addEventListener(name, () => { drawing = false; });
}

function setStatus(text) { $("status").textContent = text; }

function renderBars(probs, top) {
  const bars = $("bars");
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

function renderFeatures(features) {
  const box = $("features");
  box.replaceChildren();
  if (!features) {
    $("features-title").textContent = "First conv layer (not available for this backend)";
    return;
  }
  const [c, h, w] = features.shape;
  $("features-title").textContent = `First conv layer: ${features.layer} (${c} maps, ${h}x${w})`;
  const img = document.createElement("img");
  img.src = `data:image/png;base64,${features.grid}`;
  img.alt = `${features.rows} x ${features.cols} grid of feature maps`;
  img.id = "feature-grid";
  img.style.width = "300px";  // about 36 px per map, pixels kept sharp by the CSS
  box.append(img);
}

function show(result) {
  $("label").textContent = result.class_name;
  $("label").classList.toggle("long", result.class_name.length > 2);
  $("class-name").textContent = result.class_name;
  $("confidence").textContent = `${(100 * result.probability).toFixed(1)}% sure`;
  $("timing").textContent = `${result.ms.toFixed(1)} ms on the server`;
  $("seen").src = `data:image/png;base64,${result.preprocessed}`;
  renderBars(result.probs, result.label);
  renderFeatures(result.features);
  document.body.dataset.state = "done";
}

async function send(init) {
  document.body.dataset.state = "busy";
  setStatus("predicting…");
  $("predict").disabled = true;
  try {
    const response = await fetch("/predict", { method: "POST", ...init });
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
    show(body);
    setStatus("");
  } catch (err) {
    document.body.dataset.state = "error";
    setStatus(`error: ${err.message}`);
  } finally {
    $("predict").disabled = false;
  }
}

$("predict").addEventListener("click", () => {
  if (!inked) { setStatus("draw something first"); return; }
  send({
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ image: pad.toDataURL("image/png") }),
  });
});

$("clear").addEventListener("click", () => {
  clearPad();
  $("label").textContent = "–";
  for (const id of ["class-name", "confidence", "timing"]) $(id).textContent = "";
  $("bars").replaceChildren();
  $("features").replaceChildren();
  $("seen").removeAttribute("src");
  setStatus("");
  document.body.dataset.state = "idle";
});

function showPhoto(file) {
  // Show the photo on the pad, letterboxed, so the person sees what was sent.
  const url = URL.createObjectURL(file);
  const img = new Image();
  img.onload = () => {
    clearPad();
    const scale = Math.min(pad.width / img.width, pad.height / img.height);
    const w = img.width * scale, h = img.height * scale;
    ctx.drawImage(img, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
    URL.revokeObjectURL(url);
  };
  img.src = url;
}

$("upload").addEventListener("change", () => {
  const file = $("upload").files[0];
  if (!file) return;
  showPhoto(file);
  const form = new FormData();
  form.append("file", file);
  send({ body: form });
});

async function loadModel() {
  try {
    const info = await (await fetch("/model")).json();
    classes = info.classes || [];
    const acc = info.accuracy != null
      ? `, ${info.accuracy_split || "test"} accuracy ${(100 * info.accuracy).toFixed(2)}%` : "";
    $("model-line").textContent =
      `${info.model ?? "model"} trained on ${info.dataset || "?"}${acc}`;
    if (info.style === "fashion") {
      // Clothes are photographed, not drawn: lead with the upload.
      $("input-title").textContent = "Upload a photo (or draw)";
      $("upload-hint").textContent = "Photo (PNG, JPEG, WebP)";
      $("input-panel").insertBefore($("upload-box"), pad);
    }
    renderBars(classes.map(() => 0), -1);
  } catch (err) {
    $("model-line").textContent = `cannot read /model: ${err.message}`;
  }
}

clearPad();
document.body.dataset.state = "idle";
loadModel();
