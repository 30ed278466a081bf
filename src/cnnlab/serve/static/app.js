// cnnlab draw-a-digit page: draw with mouse / touch / pen, POST the canvas to /predict,
// show the probabilities, the 28x28 image the network saw and the first conv layer's maps.
"use strict";

const $ = (id) => document.getElementById(id);
const pad = makePad($("pad"));
const ctx = pad.ctx;
const clearPad = pad.clear;
let classes = [];

function setStatus(text) { $("status").textContent = text; }

function showBars(probs, top) { renderBars($("bars"), probs, top, classes); }

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
  showBars(result.probs, result.label);
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
  if (!pad.inked) { setStatus("draw something first"); return; }
  send({
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ image: pad.canvas.toDataURL("image/png") }),
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
    const scale = Math.min(pad.canvas.width / img.width, pad.canvas.height / img.height);
    const w = img.width * scale, h = img.height * scale;
    ctx.drawImage(img, (pad.canvas.width - w) / 2, (pad.canvas.height - h) / 2, w, h);
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
      $("input-panel").insertBefore($("upload-box"), pad.canvas);
    }
    showBars(classes.map(() => 0), -1);
  } catch (err) {
    $("model-line").textContent = `cannot read /model: ${err.message}`;
  }
}

clearPad();
document.body.dataset.state = "idle";
loadModel();
