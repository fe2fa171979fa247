// The page: draw a letter or hold one up to the webcam; the answer, the top 3, the
// 32x32 image the model sees and the time per letter, live. ?selftest=1 runs the
// check against Python instead (selftest.js); ?demo=1 draws an "A" on the pad;
// ?camera=1 starts in webcam mode.

import { Model, NO_GLYPH, UNKNOWN } from "./model.js";
import { MAX_WORK_SIDE, canonical, normalize } from "./preprocess.js";
import { runSelftest } from "./selftest.js";

const TOP_K = 3;
// The webcam's region of interest: a centred square, this share of the shorter side
// (as `letters camera` on a camera); read at most this many pixels a side.
const ROI_FRACTION = 0.5;
const ROI_SIDE = 256;
// Pen width, a share of the pad's side: a marker on paper.
const PEN_FRACTION = 0.06;

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const timing = { letters: 0, preprocess: 0, inference: 0 };

function setStatus(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

function showGlyph(glyph, size) {
  const seen = $("seen");
  seen.width = seen.height = size;
  const image = new ImageData(size, size);
  glyph.forEach((v, i) => image.data.set([v, v, v, 255], i * 4));
  seen.getContext("2d").putImageData(image, 0, 0);
}

function showAnswer(answer) {
  $("letter").textContent = answer.letter;
  $("confidence").textContent = answer.reason === NO_GLYPH ? "" : `${(answer.confidence * 100).toFixed(1)}%`;
  $("reason").textContent = answer.reason ?? "";
  $("top").replaceChildren(
    ...answer.top.map(([label, p]) => {
      const item = document.createElement("li");
      const name = document.createElement("b");
      const bar = document.createElement("div");
      const fill = document.createElement("span");
      const value = document.createElement("span");
      name.textContent = label;
      bar.className = "bar";
      fill.style.width = `${(p * 100).toFixed(1)}%`;
      bar.append(fill);
      value.className = "p";
      value.textContent = `${(p * 100).toFixed(1)}%`;
      item.append(name, bar, value);
      return item;
    }),
  );
}

// One letter: pixels -> canonical glyph -> model -> answer, timed.
async function read(model, pixels) {
  const start = performance.now();
  const glyph = canonical(pixels.data, pixels.width, pixels.height, model.spec);
  const prepared = performance.now();
  showGlyph(glyph, model.spec.size);
  $("seen-caption").textContent = `what the model sees (${model.spec.size}\u00d7${model.spec.size})`;
  if (!glyph.some((v) => v > 0)) {
    showAnswer({ letter: UNKNOWN, confidence: 0, top: [], reason: NO_GLYPH });
    return;
  }
  const probabilities = await model.probabilities(normalize(glyph, model.spec));
  const done = performance.now();
  showAnswer(model.decide(probabilities, TOP_K));
  timing.letters += 1;
  timing.preprocess += prepared - start;
  timing.inference += done - prepared;
  const n = timing.letters;
  $("timing").textContent =
    timing.preprocess + timing.inference > 0
      ? `${((timing.preprocess + timing.inference) / n).toFixed(1)} ms per letter ` +
        `(preprocessing ${(timing.preprocess / n).toFixed(1)} ms, model ${(timing.inference / n).toFixed(1)} ms; mean of ${n})`
      : `read ${n} letter${n > 1 ? "s" : ""}; no time measured: this browser's clock stood still (a virtual clock)`;
}

// Read at most one letter at a time; a request while busy is served once it is done.
function reader(model, grab) {
  let busy = false;
  let again = false;
  const run = async () => {
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    try {
      await read(model, grab());
    } finally {
      busy = false;
    }
    if (again) {
      again = false;
      run();
    }
  };
  return run;
}

function setupPad(model) {
  const pad = $("pad");
  const context = pad.getContext("2d", { willReadFrequently: true });
  const clear = () => {
    context.fillStyle = "#fff";
    context.fillRect(0, 0, pad.width, pad.height);
  };
  clear();
  context.lineWidth = PEN_FRACTION * pad.width;
  context.lineCap = context.lineJoin = "round";
  context.strokeStyle = "#000";
  const readPad = reader(model, () => context.getImageData(0, 0, pad.width, pad.height));
  const point = (event) => {
    const box = pad.getBoundingClientRect();
    return [((event.clientX - box.left) * pad.width) / box.width, ((event.clientY - box.top) * pad.height) / box.height];
  };
  let last = null;
  pad.addEventListener("pointerdown", (event) => {
    pad.setPointerCapture(event.pointerId);
    last = point(event);
    stroke([last, last]);
  });
  pad.addEventListener("pointermove", (event) => {
    if (!last) return;
    const next = point(event);
    stroke([last, next]);
    last = next;
    readPad();
  });
  const end = () => {
    if (last) readPad();
    last = null;
  };
  pad.addEventListener("pointerup", end);
  pad.addEventListener("pointercancel", end);
  function stroke(points) {
    context.beginPath();
    context.moveTo(...points[0]);
    for (const p of points.slice(1)) context.lineTo(...p);
    context.stroke();
  }
  $("clear").addEventListener("click", () => {
    clear();
    readPad();
  });
  return { stroke, readPad };
}

function setupCamera(model) {
  const video = $("video");
  const view = $("camera-view");
  const viewContext = view.getContext("2d");
  const roi = document.createElement("canvas");
  const roiContext = roi.getContext("2d", { willReadFrequently: true });
  let stream = null;
  const grab = () => {
    const side = Math.floor(Math.min(video.videoWidth, video.videoHeight) * ROI_FRACTION);
    const x = (video.videoWidth - side) >> 1;
    const y = (video.videoHeight - side) >> 1;
    roi.width = roi.height = Math.min(side, ROI_SIDE, MAX_WORK_SIDE);
    roiContext.drawImage(video, x, y, side, side, 0, 0, roi.width, roi.height);
    return roiContext.getImageData(0, 0, roi.width, roi.height);
  };
  const readFrame = reader(model, grab);
  const loop = () => {
    if (!stream) return;
    if (video.videoWidth) {
      view.width = video.videoWidth;
      view.height = video.videoHeight;
      viewContext.drawImage(video, 0, 0);
      const side = Math.floor(Math.min(view.width, view.height) * ROI_FRACTION);
      viewContext.strokeStyle = "#2ecc71";
      viewContext.lineWidth = Math.max(2, view.width / 160);
      viewContext.strokeRect((view.width - side) / 2, (view.height - side) / 2, side, side);
      readFrame();
    }
    requestAnimationFrame(loop);
  };
  const start = async () => {
    if (!navigator.mediaDevices?.getUserMedia) {
      throw new Error("no webcam here: the browser offers none (it needs https or 127.0.0.1)");
    }
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    video.srcObject = stream;
    await video.play();
    loop();
  };
  const stop = () => {
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
  };
  return { start, stop };
}

function setupModes(pad, camera) {
  const useCamera = async () => {
    show(false);
    try {
      await camera.start();
    } catch (error) {
      setStatus(`Webcam: ${error.message}`, true);
      show(true);
    }
  };
  const show = (drawing) => {
    $("mode-draw").classList.toggle("active", drawing);
    $("mode-camera").classList.toggle("active", !drawing);
    $("pad").hidden = !drawing;
    $("clear").hidden = !drawing;
    $("camera-view").hidden = drawing;
    $("hint").textContent = drawing
      ? "Draw one capital letter with a mouse or a finger."
      : "Hold one letter inside the green box: dark on light or light on dark.";
  };
  $("mode-draw").addEventListener("click", () => {
    camera.stop();
    show(true);
    pad.readPad();
  });
  $("mode-camera").addEventListener("click", useCamera);
  return useCamera;
}

function showAbout(model, site) {
  const spec = model.spec;
  const rows = [
    ["model", site ? `${site.source}${site.int8 ? " (int8)" : ""}, ${(site.bytes / 1e6).toFixed(2)} MB` : "model.onnx"],
    ["labels", `${model.labels.length}: ${model.labels[0]}\u2013${model.labels[model.labels.length - 1]}`],
    ["input", `${spec.size}\u00d7${spec.size}, ${spec.channels} channel, ${spec.polarity.replaceAll("_", " ")}, ` +
      `mean ${spec.mean}, std ${spec.std}, margin ${spec.margin}`],
    ["calibration", model.calibrated
      ? `temperature ${model.temperature.toFixed(3)}, '?' below ${model.minConfidence}`
      : "none (temperature 1, no '?' threshold)"],
    ["runtime", `onnxruntime-web ${site?.onnxruntime_web ?? ""} (WebAssembly, one thread)`],
  ];
  $("about").replaceChildren(
    ...rows.flatMap(([term, text]) => {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = term;
      dd.textContent = text;
      return [dt, dd];
    }),
  );
}

// ?demo=1: an "A" in three strokes, read as a drawing would be (for screenshots).
async function demo(pad) {
  const s = $("pad").width / 280;
  const strokes = [[[70, 240], [140, 40], [210, 240]], [[100, 165], [180, 165]]];
  for (const points of strokes) pad.stroke(points.map(([x, y]) => [x * s, y * s]));
  pad.readPad();
}

async function main() {
  let model;
  try {
    model = await Model.load("model.onnx");
  } catch (error) {
    setStatus(`Cannot load the model: ${error.message}`, true);
    if (params.has("selftest")) writeSelftest({ ok: false, cases: 0, agree: 0, max_abs_diff: null, error: String(error) });
    return;
  }
  const site = await fetch("site.json").then((r) => (r.ok ? r.json() : null)).catch(() => null);
  showAbout(model, site);
  setStatus(`Ready: ${model.labels.length} letters.`);
  const pad = setupPad(model);
  const useCamera = setupModes(pad, setupCamera(model));
  if (params.has("selftest")) {
    setStatus("Self-test running\u2026");
    const result = await runSelftest(model).catch((error) => ({ ok: false, cases: 0, agree: 0, max_abs_diff: null, error: String(error) }));
    writeSelftest(result);
    setStatus(`Self-test: ${result.ok ? "passed" : "FAILED"} (${result.cases} cases).`, !result.ok);
  } else if (params.has("demo")) {
    await demo(pad);
  } else if (params.has("camera")) {
    await useCamera();
  }
}

function writeSelftest(result) {
  const pre = $("selftest");
  pre.textContent = JSON.stringify(result);
  pre.hidden = false;
}

main();
