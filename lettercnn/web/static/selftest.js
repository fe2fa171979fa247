// index.html?selftest=1: the page checks itself against Python (selftest/cases.json,
// written by `letters web`) and writes the result as JSON into <pre id="selftest">:
//   {"ok", "cases", "agree", "max_abs_diff", ...}
// ok: every answer equal to Python's and every probability within max_abs_diff (1e-3).

import { canonical, normalize } from "./preprocess.js";

function fromBase64(text) {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

async function loadPixels(url) {
  const image = new Image();
  image.src = url;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(image, 0, 0);
  return context.getImageData(0, 0, canvas.width, canvas.height);
}

function compare(model, expected, probabilities, tally) {
  const answer = model.decide(probabilities, 1).letter;
  const diff = Math.max(...probabilities.map((p, i) => Math.abs(p - expected.probabilities[i])));
  tally.cases += 1;
  tally.agreed += answer === expected.answer ? 1 : 0;
  tally.maxAbsDiff = Math.max(tally.maxAbsDiff, diff);
  if (answer !== expected.answer || diff > tally.limit) tally.failed.push({ name: expected.name, answer, expected: expected.answer, diff });
}

export async function runSelftest(model) {
  const response = await fetch("selftest/cases.json");
  if (!response.ok) throw new Error(`cannot fetch selftest/cases.json: HTTP ${response.status}`);
  const cases = await response.json();
  const tally = { cases: 0, agreed: 0, maxAbsDiff: 0, limit: cases.max_abs_diff, failed: [] };
  for (const expected of cases.tensor) {
    const probabilities = await model.probabilities(normalize(fromBase64(expected.glyph), model.spec));
    compare(model, expected, probabilities, tally);
  }
  let glyphMaxDiff = 0;
  const spent = { preprocess: 0, model: 0 };
  const images = await Promise.all(cases.drawn.map((expected) => loadPixels(`selftest/${expected.file}`)));
  await model.probabilities(normalize(new Uint8Array(model.spec.size ** 2), model.spec)); // warm up
  for (const [index, expected] of cases.drawn.entries()) {
    const pixels = images[index];
    const start = performance.now();
    const glyph = canonical(pixels.data, pixels.width, pixels.height, model.spec);
    const prepared = performance.now();
    // No whole glyph (blank, cut off): '?' without the model, as `letters recognize` answers.
    const probabilities = glyph.some((v) => v)
      ? await model.probabilities(normalize(glyph, model.spec))
      : new Array(model.labels.length).fill(0);
    spent.preprocess += prepared - start;
    spent.model += performance.now() - prepared;
    const python = fromBase64(expected.glyph);
    glyphMaxDiff = Math.max(glyphMaxDiff, ...glyph.map((v, i) => Math.abs(v - python[i])));
    compare(model, expected, probabilities, tally);
  }
  const agree = tally.cases ? tally.agreed / tally.cases : 0;
  const perLetter = (ms) => (cases.drawn.length ? ms / cases.drawn.length : null);
  return {
    ok: tally.cases >= 20 && agree === 1 && tally.maxAbsDiff <= tally.limit,
    cases: tally.cases,
    agree,
    max_abs_diff: tally.maxAbsDiff,
    tensor_cases: cases.tensor.length,
    drawn_cases: cases.drawn.length,
    glyph_max_diff: glyphMaxDiff,
    // The page's own clock over the drawn letters (preprocessing + model); under
    // --virtual-time-budget Chromium's clock stands still, so it reads 0 there.
    ms_per_letter: perLetter(spent.preprocess + spent.model),
    ms_preprocess: perLetter(spent.preprocess),
    ms_model: perLetter(spent.model),
    temperature: model.temperature,
    min_confidence: model.minConfidence,
    failed: tally.failed,
  };
}
