// genlab explorer: the page of `genlab serve`. Vanilla JS, no build step, no external resources.
// It talks JSON to the server: GET /api/runs, then POST /api/<sample|pick|morph|edit|inpaint|upscale|translate|compare>.
"use strict";

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

const TABS = ["sample", "morph", "edit", "inpaint", "upscale", "translate", "compare"];
const FALLBACK_HELP = {
  sample: "Draw new pictures from the model. Each seed always gives the same pictures.",
  morph: "Walk smoothly from one picture to another through the model's latent space; drag the slider to move along the path.",
  edit: "Push a picture along a direction the model has learned (for example one class towards another) and see what changes.",
  inpaint: "Paint a hole over part of a picture and let the model fill it in.",
  upscale: "Enlarge a small picture with the super-resolution network.",
  translate: "Turn a picture from one domain into the other with the image-translation network.",
  compare: "Measure the runs side by side on the same numbers (sample quality, diversity, speed) and get a verdict.",
};

const state = {
  runs: [], compare: false, limits: {}, run: null, tab: null,
  shown: {},            // tab -> true once something is displayed for the current run
  busy: {}, pending: {}, // tab -> request running / a follow-up request to run when it ends
  morphFrames: [],
  inpaint: { image: null, name: "", w: 0, h: 0, drawable: false, mask: null, painting: false, last: null },
};

// ---------------------------------------------------------------- helpers

// POST body as JSON (GET when body is undefined); returns the JSON or throws an Error with the server's message.
async function api(path, body) {
  let res;
  try {
    res = await fetch(path, body === undefined ? {} : {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
  } catch (err) {
    throw new Error("Network error: cannot reach the genlab server (is `genlab serve` still running?)");
  }
  let data = null;
  try { data = await res.json(); } catch (err) { /* not JSON */ }
  if (!res.ok || !data || data.error) {
    throw new Error((data && data.error) || `The server answered ${res.status} ${res.statusText}`.trim());
  }
  return data;
}

const panel = (tab) => $("#tab-" + tab);

function showError(tab, message) {
  const box = tab ? $(".error", panel(tab)) : $("#global-error");
  box.textContent = message || "";
  box.hidden = !message;
}

function setBusy(tab, on) {
  const p = panel(tab);
  $(".busy", p).hidden = !on;
  $(".go", p).disabled = on;
  p.setAttribute("aria-busy", on ? "true" : "false");
}

// Run one request for a tab: disable its button, show "working…", show errors in the tab, ignore answers
// that arrive after the user switched to another run. A request asked for while one runs waits for it.
async function task(tab, work) {
  if (state.busy[tab]) { state.pending[tab] = work; return; }
  state.busy[tab] = true;
  setBusy(tab, true);
  const runId = state.run && state.run.id;
  const live = () => (state.run && state.run.id) === runId;
  try {
    await work(live);
    if (live()) showError(tab, "");
  } catch (err) {
    if (live()) showError(tab, err.message);
  } finally {
    state.busy[tab] = false;
    setBusy(tab, false);
    const next = state.pending[tab];
    state.pending[tab] = null;
    if (next) task(tab, next);
  }
}

// Show a data URL in an <img>; small images are enlarged by a whole factor to about `target` px (pixelated).
function setImage(img, url, target = 288) {
  img.onload = () => {
    const w = img.naturalWidth;
    const k = w && w < target ? Math.max(1, Math.round(target / w)) : 1;
    img.style.width = w * k + "px";
  };
  img.src = url;
  img.hidden = false;
}

function clearImage(img) {
  img.removeAttribute("src");
  img.style.width = "";
  img.hidden = true;
}

const intOf = (input, fallback = 0) => (/^\s*-?\d+/.test(input.value) ? parseInt(input.value, 10) : fallback);
const secs = (data) => (typeof data.seconds === "number" ? ` · ${data.seconds.toFixed(2)} s` : "");
const classLabel = (select) => (select.value === "" ? null : parseInt(select.value, 10));

function readFile(input) {
  const file = input.files && input.files[0];
  if (!file) return Promise.resolve(null);
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve({ url: reader.result, name: file.name });
    reader.onerror = () => reject(new Error(`Could not read ${file.name}`));
    reader.readAsDataURL(file);
  });
}

function loadImage(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("not an image"));
    img.src = url;
  });
}

function fillSelect(select, options, firstLabel) {
  select.innerHTML = "";
  if (firstLabel !== undefined) select.add(new Option(firstLabel, ""));
  for (const [value, label] of options) select.add(new Option(label, value));
}

function showField(el, on) {
  el.hidden = !on;
  const field = el.closest(".field");
  if (field) field.hidden = !on;
}

// ---------------------------------------------------------------- runs and tabs

async function loadRuns() {
  try {
    const data = await api("/api/runs");
    state.runs = data.runs || [];
    state.compare = !!data.compare;
    state.limits = data.limits || {};
  } catch (err) {
    showError(null, "Could not load the runs: " + err.message);
    return;
  }
  const select = $("#run-select");
  fillSelect(select, state.runs.map((r) => [r.id, r.title || r.id]));
  select.disabled = state.runs.length === 0;
  if (state.runs.length === 0) {
    select.add(new Option("no runs found", ""));
    showError(null, "No runs to explore. Start the server with run folders, e.g. `genlab serve runs/vae runs/gan`.");
    return;
  }
  if (state.limits.max_samples) $("#sample-n").max = state.limits.max_samples;
  if (state.limits.max_frames) $("#morph-frames").max = state.limits.max_frames;
  buildCompare();
  const wanted = new URLSearchParams(location.hash.slice(1));
  const run = state.runs.find((r) => r.id === wanted.get("run")) || state.runs[0];
  select.value = run.id;
  selectRun(run.id, wanted.get("tab"));
}

function tabsOf(run) {
  const tabs = (run && run.tabs) || [];
  return TABS.filter((t) => (t === "compare" ? state.compare : tabs.includes(t)));
}

function selectRun(id, preferTab) {
  const run = state.runs.find((r) => r.id === id);
  if (!run) return;
  state.run = run;
  state.shown = {};
  const [c, h, w] = run.image_shape || [];
  $("#run-info").textContent = [run.kind, run.path, h ? `${c}×${h}×${w} pictures` : "",
    (run.classes || []).length ? `${run.classes.length} classes` : ""].filter(Boolean).join(" · ");
  const tabs = tabsOf(run);
  for (const button of $$("button.tab")) button.hidden = !tabs.includes(button.dataset.tab);
  for (const tab of TABS) {
    $(".help", panel(tab)).textContent = (run.help && run.help[tab]) || FALLBACK_HELP[tab];
    showError(tab, "");
  }
  configureControls(run);
  const keep = [preferTab, state.tab].find((t) => t && tabs.includes(t));
  openTab(keep || tabs[0]);
}

function openTab(tab) {
  if (!tab) return;
  state.tab = tab;
  for (const button of $$("button.tab")) {
    const on = button.dataset.tab === tab;
    button.classList.toggle("active", on);
    button.setAttribute("aria-selected", on ? "true" : "false");
  }
  for (const t of TABS) panel(t).hidden = t !== tab;
  history.replaceState(null, "", `#run=${encodeURIComponent(state.run.id)}&tab=${tab}`);
  if (state.shown[tab]) return;
  state.shown[tab] = true;
  // Cheap tabs run once with their defaults so a newcomer sees pictures straight away.
  if (tab === "sample") runSample();
  else if (tab === "morph" && $("#morph-source").value === "seeds") runMorph();
  else if (tab === "edit" && $("#edit-direction").options.length) runEdit();
  else if (tab === "inpaint") pickInpaint();
}

// Fill the per-run controls and clear the pictures of the previous run.
function configureControls(run) {
  const classes = (run.classes || []).map((name, i) => [String(i), `${i}: ${name}`]);
  fillSelect($("#sample-class"), classes, "every class in turn");
  for (const id of ["#morph-class-a", "#morph-class-b", "#edit-class", "#inpaint-class"]) {
    fillSelect($(id), classes, id === "#inpaint-class" ? "as picked / none" : "automatic");
  }
  showField($("#sample-class"), classes.length > 0);
  for (const el of $$(".classes")) el.hidden = classes.length === 0;

  const tr = run.truncation;
  const trunc = $("#sample-truncation");
  showField(trunc, !!tr);
  trunc.value = "";
  if (tr) {
    Object.assign(trunc, { max: tr.max, step: tr.step, // no min: steps land on round values
      placeholder: `off (try ${tr.default})` });
    $("label[for=sample-truncation]").firstChild.textContent = `Truncation ${tr.name || ""}`;
    $("#sample-truncation-hint").textContent = tr.help || "";
  }

  const imagesOption = $("#morph-source option[value=images]");
  imagesOption.hidden = imagesOption.disabled = !run.morph_images;
  if (!run.morph_images) $("#morph-source").value = "seeds";
  morphSourceChanged();
  state.morphFrames = [];
  clearImage($("#morph-image"));
  clearImage($("#morph-strip"));
  $("#morph-t").disabled = true;
  $("#morph-gif").hidden = true;
  $("#morph-frame-info").textContent = "";

  fillSelect($("#edit-direction"), (run.directions || []).map((d) => [d.id, d.label || d.id]));
  fillSelect($("#inpaint-method"), (run.inpaint_methods || []).map((m) => [m, m]));
  fillSelect($("#translate-direction"), (run.translate_directions || []).map((d) =>
    [d, { a2b: "A → B", b2a: "B → A" }[d] || d]));
  showField($("#inpaint-index"), !!run.pick_from_data);
  for (const el of $$(".test-pick")) el.hidden = !run.pick_from_data;
  showField($("#upscale-alpha"), !!run.alpha);

  for (const img of $$(".pictures img")) clearImage(img);
  for (const cap of $$(".pictures figcaption")) cap.textContent = cap.dataset.base;
  $("#sample-download").hidden = true;
  Object.assign(state.inpaint, { image: null, mask: null }); // the next picture gets a fresh mask from the preset
  drawInpaint();
}

// ---------------------------------------------------------------- sample

function runSample() {
  const run = state.run;
  const n = Math.min(Math.max(intOf($("#sample-n"), 16), 1), state.limits.max_samples || 64);
  $("#sample-n").value = n;
  const t = $("#sample-truncation").value.trim();
  const body = {
    run: run.id, seed: intOf($("#sample-seed")), n,
    label: classLabel($("#sample-class")), truncation: run.truncation && t !== "" ? parseFloat(t) : null,
  };
  task("sample", async (live) => {
    const data = await api("/api/sample", body);
    if (!live()) return;
    setImage($("#sample-image"), data.image, 0);
    $("#tab-sample .caption").textContent = `seed ${data.seed ?? body.seed} · ${data.n ?? n} pictures${secs(data)}`;
    Object.assign($("#sample-download"), { href: data.image, hidden: false });
  });
}

function newSeed() {
  $("#sample-seed").value = Math.floor(Math.random() * 1000000);
  runSample();
}

// ---------------------------------------------------------------- morph

function morphSourceChanged() {
  const source = $("#morph-source").value;
  for (const el of $$("#tab-morph [data-show]")) el.hidden = el.dataset.show !== source;
}

function runMorph() {
  const run = state.run;
  const frames = Math.min(Math.max(intOf($("#morph-frames"), 17), 2), state.limits.max_frames || 33);
  $("#morph-frames").value = frames;
  const la = classLabel($("#morph-class-a")), lb = classLabel($("#morph-class-b"));
  const body = {
    run: run.id, method: $("#morph-method").value, frames,
    labels: la === null && lb === null ? null : [la ?? lb, lb ?? la],
  };
  task("morph", async (live) => {
    if ($("#morph-source").value === "images") {
      const a = await readFile($("#morph-file-a")), b = await readFile($("#morph-file-b"));
      if (!a || !b) throw new Error("Choose a start image and an end image first.");
      body.images = [a.url, b.url];
      body.image_names = [a.name, b.name];
    } else {
      body.seeds = [intOf($("#morph-seed-a")), intOf($("#morph-seed-b"), 1)];
    }
    const data = await api("/api/morph", body);
    if (!live()) return;
    state.morphFrames = data.frames || [];
    $("#morph-t").disabled = state.morphFrames.length === 0;
    showMorphFrame();
    const gif = $("#morph-gif");
    const strip = $("#morph-strip");
    strip.hidden = !data.strip;
    if (data.strip) strip.src = data.strip;
    gif.hidden = !data.gif;
    if (data.gif) gif.href = data.gif;
    $("#tab-morph .caption").textContent = (body.seeds ? `seed ${body.seeds[0]} → seed ${body.seeds[1]}`
      : `${body.image_names[0]} → ${body.image_names[1]}`) + ` · ${body.method}${secs(data)}`;
  });
}

function showMorphFrame() {
  const t = parseFloat($("#morph-t").value);
  $("#morph-t-value").textContent = `t = ${t.toFixed(2)}`;
  const frames = state.morphFrames;
  if (!frames.length) return;
  const i = Math.round(t * (frames.length - 1));
  const img = $("#morph-image");
  if (img.hidden) setImage(img, frames[i]);
  else img.src = frames[i]; // same size as the other frames: keep the width, swap instantly
  $("#morph-frame-info").textContent = `frame ${i + 1} of ${frames.length}`;
}

// ---------------------------------------------------------------- edit

let editTimer = null;

function runEdit() {
  clearTimeout(editTimer);
  const run = state.run;
  if (!$("#edit-direction").value) return showError("edit", "This run has no edit directions.");
  const body = {
    run: run.id, direction: $("#edit-direction").value, strength: parseFloat($("#edit-strength").value),
    label: classLabel($("#edit-class")),
  };
  task("edit", async (live) => {
    const file = await readFile($("#edit-file"));
    if (file) Object.assign(body, { image: file.url, image_name: file.name });
    else body.seed = intOf($("#edit-seed"));
    const data = await api("/api/edit", body);
    if (!live()) return;
    setImage($("#edit-original"), data.original);
    setImage($("#edit-image"), data.edited);
    const name = $("#edit-direction").selectedOptions[0].textContent;
    $("#tab-edit .caption").textContent = `Edited: ${name}, strength ${body.strength > 0 ? "+" : ""}` +
      `${body.strength.toFixed(1)}${secs(data)}`;
  });
}

function editStrengthInput() {
  $("#edit-strength-value").textContent = parseFloat($("#edit-strength").value).toFixed(1);
  clearTimeout(editTimer);
  editTimer = setTimeout(runEdit, 150);
}

function editFileChanged() {
  $("#edit-file-clear").hidden = !$("#edit-file").files.length;
  runEdit();
}

// ---------------------------------------------------------------- inpaint

const ip = state.inpaint;

// A new picture: (re)make the native-size mask when the size changes, keeping the chosen preset.
function setInpaintImage(url, name, imgEl) {
  const [, h0, w0] = state.run.image_shape || [1, 28, 28];
  const w = imgEl ? imgEl.naturalWidth : w0, h = imgEl ? imgEl.naturalHeight : h0;
  Object.assign(ip, { image: url, name, el: imgEl, drawable: !!imgEl });
  if (!ip.mask || ip.w !== w || ip.h !== h) {
    Object.assign(ip, { w, h, mask: Object.assign(document.createElement("canvas"), { width: w, height: h }) });
    applyPreset();
  } else drawInpaint();
  for (const img of $$("#tab-inpaint .side-by-side img")) clearImage(img);
  $("#tab-inpaint .caption").textContent = "Completed";
}

// Load the picture to inpaint: test image #index when given (and the run has test data), else a sample by seed.
async function loadPick(live) {
  const run = state.run, index = $("#inpaint-index").value.trim();
  const body = run.pick_from_data && index !== "" ? { run: run.id, index: parseInt(index, 10) }
    : { run: run.id, seed: intOf($("#inpaint-seed")) };
  const data = await api("/api/pick", body);
  const img = await loadImage(data.image);
  if (!live()) return;
  const name = body.index !== undefined ? `test-${body.index}.png` : `sample-seed-${body.seed}.png`;
  setInpaintImage(data.image, name, img);
  $("#inpaint-class").value = data.label === null || data.label === undefined ? "" : String(data.label);
  $("#inpaint-canvas-caption").textContent = `${data.caption || name} — drag on the picture to paint the hole.`;
}

const pickInpaint = () => task("inpaint", loadPick);

async function inpaintFileChanged() {
  let file;
  try { file = await readFile($("#inpaint-file")); } catch (err) { return showError("inpaint", err.message); }
  if (!file) return;
  let img = null;
  try { img = await loadImage(file.url); } catch (err) { /* the server will say what is wrong */ }
  setInpaintImage(file.url, file.name, img);
  $("#inpaint-class").value = "";
  $("#inpaint-canvas-caption").textContent = img
    ? `${file.name} (${img.naturalWidth}×${img.naturalHeight}) — drag on the picture to paint the hole.`
    : `${file.name} cannot be shown as a picture.`;
  if (!img) runInpaint(); // let the server explain what is wrong with the file
}

function applyPreset() {
  if (!ip.mask) return drawInpaint();
  const ctx = ip.mask.getContext("2d");
  const { w, h } = ip;
  ctx.clearRect(0, 0, w, h);
  ctx.fillStyle = "#fff";
  const preset = $("#inpaint-preset").value;
  if (preset === "center") ctx.fillRect(Math.round(w / 4), Math.round(h / 4), Math.round(w / 2), Math.round(h / 2));
  else if (preset === "left") ctx.fillRect(0, 0, Math.round(w / 2), h);
  else if (preset === "border") {
    const b = Math.max(1, Math.round(Math.min(w, h) / 7));
    ctx.fillRect(0, 0, w, h);
    ctx.clearRect(b, b, w - 2 * b, h - 2 * b);
  }
  drawInpaint();
}

function clearMask() {
  if (ip.mask) ip.mask.getContext("2d").clearRect(0, 0, ip.w, ip.h);
  $("#inpaint-preset").value = "none";
  drawInpaint();
}

function drawInpaint() {
  const canvas = $("#inpaint-canvas");
  const ctx = canvas.getContext("2d");
  if (!ip.image || !ip.mask) return ctx.clearRect(0, 0, canvas.width, canvas.height);
  const k = Math.max(1, Math.round(320 / Math.max(ip.w, ip.h)));
  if (canvas.width !== ip.w * k || canvas.height !== ip.h * k) Object.assign(canvas, { width: ip.w * k, height: ip.h * k });
  ctx.imageSmoothingEnabled = false;
  ctx.fillStyle = "#ddd";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (ip.drawable) ctx.drawImage(ip.el, 0, 0, canvas.width, canvas.height);
  // The mask, tinted red, over the picture.
  const tint = Object.assign(document.createElement("canvas"), { width: ip.w, height: ip.h });
  const tctx = tint.getContext("2d");
  tctx.drawImage(ip.mask, 0, 0);
  tctx.globalCompositeOperation = "source-in";
  tctx.fillStyle = "#e0201b";
  tctx.fillRect(0, 0, ip.w, ip.h);
  ctx.globalAlpha = 0.55;
  ctx.drawImage(tint, 0, 0, canvas.width, canvas.height);
  ctx.globalAlpha = 1;
}

// Paint (or erase) a disc of the brush radius, in native pixels, with hard edges.
function stamp(x, y) {
  const r = intOf($("#inpaint-brush"), 2);
  const ctx = ip.mask.getContext("2d");
  const erase = $("#inpaint-erase").checked;
  ctx.fillStyle = "#fff";
  for (let py = Math.floor(y - r); py <= Math.ceil(y + r); py++) {
    for (let px = Math.floor(x - r); px <= Math.ceil(x + r); px++) {
      if ((px + 0.5 - x) ** 2 + (py + 0.5 - y) ** 2 > r * r) continue;
      if (erase) ctx.clearRect(px, py, 1, 1);
      else ctx.fillRect(px, py, 1, 1);
    }
  }
}

function paintAt(event) {
  const canvas = $("#inpaint-canvas");
  const rect = canvas.getBoundingClientRect();
  const x = ((event.clientX - rect.left) / rect.width) * ip.w;
  const y = ((event.clientY - rect.top) / rect.height) * ip.h;
  const [x0, y0] = ip.last || [x, y];
  const steps = Math.max(1, Math.ceil(Math.hypot(x - x0, y - y0) / 0.5));
  for (let i = 1; i <= steps; i++) stamp(x0 + ((x - x0) * i) / steps, y0 + ((y - y0) * i) / steps);
  ip.last = [x, y];
  drawInpaint();
}

function setupPainting() {
  const canvas = $("#inpaint-canvas");
  canvas.addEventListener("pointerdown", (e) => {
    if (!ip.mask || !ip.image) return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    ip.painting = true;
    ip.last = null;
    paintAt(e);
  });
  canvas.addEventListener("pointermove", (e) => { if (ip.painting) paintAt(e); });
  const stop = () => { ip.painting = false; ip.last = null; };
  canvas.addEventListener("pointerup", stop);
  canvas.addEventListener("pointercancel", stop);
}

function runInpaint() {
  const run = state.run;
  task("inpaint", async (live) => {
    if (!ip.image) await loadPick(live);
    if (!live() || !ip.image) return;
    const body = {
      run: run.id, image: ip.image, image_name: ip.name, mask: ip.mask.toDataURL("image/png"),
      method: $("#inpaint-method").value, label: classLabel($("#inpaint-class")),
    };
    const data = await api("/api/inpaint", body);
    if (!live()) return;
    setImage($("#inpaint-masked"), data.masked, 192);
    setImage($("#inpaint-result"), data.completed, 192);
    const hidden = typeof data.hidden === "number" ? ` · ${Math.round(data.hidden * 100)}% hidden` : "";
    $("#tab-inpaint .caption").textContent = `Completed (${data.method || body.method}${hidden}${secs(data)})`;
  });
}

// ---------------------------------------------------------------- upscale and translate

// The image to send: an uploaded file, or (when asked) a test image picked by index.
async function sourceImage(tab, useTest) {
  if (!useTest) {
    const file = await readFile($(`#${tab}-file`));
    if (file) return { image: file.url, image_name: file.name };
    if (!state.run.pick_from_data) throw new Error("Choose a picture file first.");
  }
  const index = intOf($(`#${tab}-index`));
  const picked = await api("/api/pick", { run: state.run.id, index });
  $(`#${tab}-file`).value = "";
  return { image: picked.image, image_name: `test-${index}.png` };
}

function runUpscale(useTest = false) {
  const run = state.run;
  task("upscale", async (live) => {
    const src = await sourceImage("upscale", useTest);
    const body = { run: run.id, ...src, alpha: run.alpha ? parseFloat($("#upscale-alpha").value) : null };
    const data = await api("/api/upscale", body);
    if (!live()) return;
    const out = $("#upscale-output"), inp = $("#upscale-input");
    out.onload = () => { // the input is shown as wide as the output, to compare them detail by detail
      const w = out.naturalWidth;
      out.style.width = inp.style.width = Math.min(w < 256 ? w * Math.round(256 / w) : w, 512) + "px";
    };
    inp.src = data.input;
    out.src = data.output;
    inp.hidden = out.hidden = false;
    const size = (s) => (Array.isArray(s) ? `${s[1]}×${s[0]}` : "?");
    $("#tab-upscale .caption-in").textContent = `Input ${size(data.size_in)}`;
    $("#tab-upscale .caption-out").textContent = `Upscaled ${size(data.size_in)} → ${size(data.size_out)}${secs(data)}`;
  });
}

function runTranslate(useTest = false) {
  const run = state.run;
  task("translate", async (live) => {
    const src = await sourceImage("translate", useTest);
    const body = { run: run.id, ...src, direction: $("#translate-direction").value };
    const data = await api("/api/translate", body);
    if (!live()) return;
    setImage($("#translate-input"), data.input);
    setImage($("#translate-output"), data.output);
    const dir = $("#translate-direction").selectedOptions[0];
    $("#tab-translate .caption").textContent = `Translated ${dir ? dir.textContent : ""}${secs(data)}`;
  });
}

// ---------------------------------------------------------------- compare

function comparableRuns() {
  // A run can be compared when it generates pictures (it has a Sample tab) unless the server says otherwise.
  return state.runs.filter((r) => (r.comparable !== undefined ? r.comparable : (r.tabs || []).includes("sample")));
}

function buildCompare() {
  $("#compare-runs").replaceChildren(...comparableRuns().map((run) => {
    const label = Object.assign(document.createElement("label"), { className: "check" });
    label.append(Object.assign(document.createElement("input"), { type: "checkbox", value: run.id, checked: true }),
      " " + (run.title || run.id));
    return label;
  }));
}

function runCompare() {
  const runs = $$("#compare-runs input:checked").map((i) => i.value);
  const n = Math.min(Math.max(intOf($("#compare-n"), 500), 200), 5000);
  $("#compare-n").value = n;
  task("compare", async () => {
    if (runs.length === 0) throw new Error("Tick at least one run to compare.");
    const data = await api("/api/compare", { runs, num_samples: n });
    const table = $("#compare-table");
    table.innerHTML = "";
    const addRow = (section, cells, header) => {
      const tr = section.insertRow();
      cells.forEach((text, i) => tr.append(Object.assign(document.createElement(header || i === 0 ? "th" : "td"), { textContent: text })));
    };
    addRow(table.createTHead(), data.columns || [], true);
    const tbody = table.createTBody();
    (data.rows || []).forEach((row, i) => {
      addRow(tbody, row);
      // a property spanning several rows is named once
      if (i > 0 && row[0] === data.rows[i - 1][0]) tbody.lastElementChild.classList.add("same-group");
    });
    $("#compare-verdict").textContent = (data.verdict || "") + (data.seconds ? ` (took ${data.seconds.toFixed(0)} s)` : "");
  });
}

// ---------------------------------------------------------------- wiring

function onSubmit(tab, fn) {
  $("form", panel(tab)).addEventListener("submit", (e) => { e.preventDefault(); fn(); });
}

function init() {
  for (const cap of $$(".pictures figcaption")) cap.dataset.base = cap.textContent;
  $("#run-select").addEventListener("change", (e) => selectRun(e.target.value));
  for (const button of $$("button.tab")) button.addEventListener("click", () => openTab(button.dataset.tab));

  onSubmit("sample", runSample);
  $("#sample-new-seed").addEventListener("click", newSeed);

  onSubmit("morph", runMorph);
  $("#morph-source").addEventListener("change", morphSourceChanged);
  $("#morph-t").addEventListener("input", showMorphFrame);

  onSubmit("edit", runEdit);
  $("#edit-strength").addEventListener("input", editStrengthInput);
  $("#edit-strength").addEventListener("change", runEdit);
  $("#edit-direction").addEventListener("change", runEdit);
  $("#edit-class").addEventListener("change", runEdit);
  $("#edit-seed").addEventListener("change", runEdit);
  $("#edit-file").addEventListener("change", editFileChanged);
  $("#edit-file-clear").addEventListener("click", () => { $("#edit-file").value = ""; editFileChanged(); });

  onSubmit("inpaint", runInpaint);
  $("#inpaint-pick").addEventListener("click", pickInpaint);
  $("#inpaint-seed").addEventListener("change", () => { $("#inpaint-index").value = ""; pickInpaint(); });
  $("#inpaint-index").addEventListener("change", pickInpaint);
  $("#inpaint-file").addEventListener("change", inpaintFileChanged);
  $("#inpaint-preset").addEventListener("change", applyPreset);
  $("#inpaint-clear").addEventListener("click", clearMask);
  $("#inpaint-brush").addEventListener("input", (e) => { $("#inpaint-brush-value").textContent = e.target.value; });
  setupPainting();

  onSubmit("upscale", () => runUpscale(false));
  $("#upscale-file").addEventListener("change", () => runUpscale(false));
  $("#upscale-use-test").addEventListener("click", () => runUpscale(true));
  $("#upscale-alpha").addEventListener("input", (e) => {
    $("#upscale-alpha-value").textContent = parseFloat(e.target.value).toFixed(2);
  });

  onSubmit("translate", () => runTranslate(false));
  $("#translate-file").addEventListener("change", () => runTranslate(false));
  $("#translate-use-test").addEventListener("click", () => runTranslate(true));

  onSubmit("compare", runCompare);
  loadRuns();
}

init();
