// The canonical recipe of lettercnn.preprocess (preprocess/glyph.py, choice.py), in JS,
// for what the page feeds the model: strokes drawn on the canvas and the webcam's ROI.
//
//   RGBA --gray--> [0, 1] --polarity, min-max stretch--> ink bright
//        --stretch + Otsu--> mask --components: frames, specks out; the letter and
//        its parts--> stands out? whole? (else no glyph) --crop, ink to white, fit keeping
//        the aspect inside the margin--> uint8 size x size --normalize--> float32
//
// Simpler than Python (README, "In the browser"): no illumination flattening (the
// light is stretched, not divided out: a shadow across a webcam frame is not
// removed), polarity from the border against the middle of the range, no erasing of
// ruled lines, no dropping of boxes drawn around the letter, and the caller scales
// a frame to at most MAX_WORK_SIDE with the browser's drawImage. On a clean drawing
// (black pen on white) every step is Python's, so the 32x32 images agree.
//
// Float32 steps round as numpy's float32 does (Math.fround); Python's round() and
// np.round() round half to even (roundHalfEven); resizes follow OpenCV's INTER_AREA
// (shrinking) and INTER_LINEAR (enlarging).

export const MAX_WORK_SIDE = 512;
const MIN_POLARITY_RANGE = 1e-6;
const MIN_CONTRAST = 0.08;
const NOISE_SIGMAS = 4.5;
const MIN_GLYPH_CONTRAST = 0.15;
const SPECK_FRACTION = 0.04;
const FRAME_FRACTION = 0.9;
const INSIDE_KEEP = 0.6;
const CENTRE_SIGMA = 0.35;
const PART_GAP_FRACTION = 0.16;
const UNDERLINE_MAX_HEIGHT = 0.12;
const UNDERLINE_WEIGHT = 0.2;
const DOT_AREA_FRACTION = 0.35;
const DOT_GAP_FRACTION = 0.5;
const CUT_OFF_MAX_SPAN = 0.75;

const f32 = Math.fround;

export function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// RGBA bytes to gray in [0, 1], float32: OpenCV's BGR2GRAY on 8-bit integers, / 255.
export function toGray(rgba, width, height) {
  const gray = new Float32Array(width * height);
  for (let i = 0, p = 0; i < gray.length; i++, p += 4) {
    gray[i] = (rgba[p] * 4899 + rgba[p + 1] * 9617 + rgba[p + 2] * 1868 + 8192) >> 14;
    gray[i] = f32(gray[i] / 255);
  }
  return gray;
}

function toLevels(bright) {
  const levels = new Uint8Array(bright.length);
  for (let i = 0; i < bright.length; i++) levels[i] = Math.trunc(f32(f32(bright[i] * 255) + 0.5));
  return levels;
}

function histogram(levels, mask) {
  const hist = new Float64Array(256);
  for (let i = 0; i < levels.length; i++) if (!mask || mask[i]) hist[levels[i]]++;
  return hist;
}

// The first level whose cumulative count reaches q of the total (np.searchsorted), 0..255.
function searchLevel(hist, q) {
  let total = 0;
  for (const count of hist) total += count;
  if (total <= 0) return -1;
  const goal = f32(f32(q) * total);
  let cdf = 0;
  for (let level = 0; level < 256; level++) {
    cdf += hist[level];
    if (cdf >= goal) return level;
  }
  return 255;
}

function quantile(levels, q, mask) {
  const level = searchLevel(histogram(levels, mask), q);
  return level < 0 ? 0 : level / 255;
}

// OpenCV's Otsu level of 8-bit values (THRESH_OTSU): the split with the largest between-class variance.
function otsu(hist) {
  let total = 0;
  for (const count of hist) total += count;
  const scale = 1 / total;
  let mu = 0;
  for (let i = 0; i < 256; i++) mu += i * hist[i];
  mu *= scale;
  const eps = 1.1920928955078125e-7; // FLT_EPSILON
  let q1 = 0;
  let mu1 = 0;
  let maxSigma = 0;
  let maxLevel = 0;
  for (let i = 0; i < 256; i++) {
    const p = hist[i] * scale;
    mu1 *= q1;
    q1 += p;
    const q2 = 1 - q1;
    if (Math.min(q1, q2) < eps || Math.max(q1, q2) > 1 - eps) continue;
    mu1 = (mu1 + i * p) / q1;
    const mu2 = (mu - q1 * mu1) / q2;
    const sigma = q1 * q2 * (mu2 - mu1) * (mu2 - mu1);
    if (sigma > maxSigma) {
      maxSigma = sigma;
      maxLevel = i;
    }
  }
  return maxLevel;
}

// Whether the ink is darker than the page: the border is page, so its median is
// compared with the middle of the image's range (1st to 99th percentile). Python
// decides by which side deviates more from a local median, then the border.
function darkInk(gray, width, height) {
  const ring = [];
  for (let x = 0; x < width; x++) ring.push(gray[x], gray[(height - 1) * width + x]);
  for (let y = 0; y < height; y++) ring.push(gray[y * width], gray[y * width + width - 1]);
  ring.sort((a, b) => a - b);
  const levels = toLevels(gray);
  const middle = (quantile(levels, 0.01) + quantile(levels, 0.99)) / 2;
  return ring[ring.length >> 1] > middle;
}

// The ink bright on a dark page, 0..1: the gray range stretched, inverted for dark ink.
export function glyphBright(gray, width, height) {
  let low = Infinity;
  let high = -Infinity;
  for (const v of gray) {
    if (v < low) low = v;
    if (v > high) high = v;
  }
  const bright = new Float32Array(gray.length);
  if (high - low < MIN_POLARITY_RANGE) return bright;
  const dark = darkInk(gray, width, height);
  const range = f32(high - low);
  for (let i = 0; i < gray.length; i++) {
    const stretched = f32(f32(gray[i] - low) / range);
    bright[i] = dark ? f32(1 - stretched) : stretched;
  }
  return bright;
}

// Everything brighter than the page after a contrast stretch, by Otsu; null when flat.
function thresholdMask(levels) {
  const hist = histogram(levels);
  const low = Math.max(searchLevel(hist, 0.05), 0) / 255;
  const high = Math.max(searchLevel(hist, 0.995), 0) / 255;
  if (high - low < MIN_CONTRAST) return null;
  const lut = new Uint8Array(256);
  for (let i = 0; i < 256; i++) lut[i] = Math.trunc(Math.min(Math.max((i / 255 - low) / (high - low), 0), 1) * 255);
  const stretched = new Uint8Array(levels.length);
  for (let i = 0; i < levels.length; i++) stretched[i] = lut[levels[i]];
  const level = otsu(histogram(stretched));
  const mask = new Uint8Array(levels.length);
  for (let i = 0; i < levels.length; i++) mask[i] = stretched[i] > level ? 1 : 0;
  return mask;
}

// 8-connected components: a label per pixel (0: none) and each one's box and area.
function components(mask, width, height) {
  const labels = new Int32Array(mask.length);
  const parts = [];
  const stack = [];
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || labels[start]) continue;
    const part = { x0: width, y0: height, x1: 0, y1: 0, area: 0 };
    parts.push(part);
    labels[start] = parts.length;
    stack.push(start);
    while (stack.length) {
      const i = stack.pop();
      const x = i % width;
      const y = (i - x) / width;
      part.area++;
      part.x0 = Math.min(part.x0, x);
      part.y0 = Math.min(part.y0, y);
      part.x1 = Math.max(part.x1, x + 1);
      part.y1 = Math.max(part.y1, y + 1);
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height) continue;
          const j = ny * width + nx;
          if (mask[j] && !labels[j]) {
            labels[j] = parts.length;
            stack.push(j);
          }
        }
      }
    }
  }
  return { labels, parts };
}

// Whether a part's box touches the image's edge (choice.py's touches_edge).
function touchesEdge(p, width, height) {
  return p.x0 === 0 || p.y0 === 0 || p.x1 >= width || p.y1 >= height;
}

// The letter in a mask, as a person would pick it (choice.py without rules and boxes):
// frames and specks out, then the big central part and the parts close to it.
export function chooseGlyph(mask, width, height) {
  const { labels, parts } = components(mask, width, height);
  if (!parts.length) return null;
  const frame = parts.map(
    (p) =>
      touchesEdge(p, width, height) && (p.x1 - p.x0 > FRAME_FRACTION * width || p.y1 - p.y0 > FRAME_FRACTION * height),
  );
  let pool = parts.map((_, i) => !frame[i]);
  if (!pool.some(Boolean)) pool = parts.map(() => true); // a tight crop touches all round
  const largest = Math.max(...parts.filter((_, i) => pool[i]).map((p) => p.area));
  const alive = parts.map((_, i) => i).filter((i) => pool[i] && parts[i].area >= SPECK_FRACTION * largest);
  const flat = parts.map((p) => p.y1 - p.y0 <= Math.max(2, UNDERLINE_MAX_HEIGHT * (p.x1 - p.x0)));
  let main = alive[0];
  let best = -Infinity;
  for (const i of alive) {
    const p = parts[i];
    const offset = Math.hypot(((p.x0 + p.x1) / 2 - width / 2) / width, ((p.y0 + p.y1) / 2 - height / 2) / height);
    const weight = p.area * Math.exp(-((offset / CENTRE_SIGMA) ** 2)) * (flat[i] ? UNDERLINE_WEIGHT : 1);
    if (weight > best) {
      best = weight;
      main = i;
    }
  }
  const group = new Set([main]);
  const box = { ...parts[main] };
  let groupArea = parts[main].area;
  for (let added = true; added; ) {
    added = false;
    const size = Math.max(box.x1 - box.x0, box.y1 - box.y0);
    for (const i of alive) {
      if (group.has(i) || (flat[i] && !flat[main])) continue;
      const o = parts[i];
      const gapX = Math.max(o.x0 - box.x1, box.x0 - o.x1, 0);
      const gapY = Math.max(o.y0 - box.y1, box.y0 - o.y1, 0);
      const overlapX = Math.min(o.x1, box.x1) - Math.max(o.x0, box.x0);
      const dot = o.area < DOT_AREA_FRACTION * groupArea && overlapX > 0 && gapX === 0 && gapY <= DOT_GAP_FRACTION * size;
      if (Math.max(gapX, gapY) <= PART_GAP_FRACTION * size || dot) {
        group.add(i);
        groupArea += o.area;
        Object.assign(box, {
          x0: Math.min(box.x0, o.x0), y0: Math.min(box.y0, o.y0), x1: Math.max(box.x1, o.x1), y1: Math.max(box.y1, o.y1),
        });
        added = true;
      }
    }
  }
  const chosen = new Uint8Array(mask.length);
  for (let i = 0; i < mask.length; i++) chosen[i] = labels[i] && group.has(labels[i] - 1) ? 1 : 0;
  return chosen;
}

function dilate3(mask, width, height, x0 = 0, y0 = 0, x1 = width, y1 = height) {
  const w = x1 - x0;
  const out = new Uint8Array(w * (y1 - y0));
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      let on = 0;
      for (let dy = -1; dy <= 1 && !on; dy++) {
        for (let dx = -1; dx <= 1 && !on; dx++) {
          const nx = x + dx;
          const ny = y + dy;
          if (nx >= x0 && ny >= y0 && nx < x1 && ny < y1 && mask[ny * width + nx]) on = 1;
        }
      }
      out[(y - y0) * w + (x - x0)] = on;
    }
  }
  return out;
}

function boundingBox(mask, width, height) {
  let x0 = width;
  let y0 = height;
  let x1 = 0;
  let y1 = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (!mask[y * width + x]) continue;
      x0 = Math.min(x0, x);
      y0 = Math.min(y0, y);
      x1 = Math.max(x1, x + 1);
      y1 = Math.max(y1, y + 1);
    }
  }
  return { x0, y0, x1, y1 };
}

// cv2.blur 3x3 (BORDER_REFLECT_101) of 8-bit levels.
function blur3(levels, width, height) {
  const reflect = (i, n) => (n === 1 ? 0 : i < 0 ? -i : i >= n ? 2 * n - 2 - i : i);
  const out = new Uint8Array(levels.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) sum += levels[reflect(y + dy, height) * width + reflect(x + dx, width)];
      }
      out[y * width + x] = Math.round(sum / 9);
    }
  }
  return out;
}

// Whether the glyph is ink rather than the page's noise (glyph.py, stands_out).
function standsOut(levels, mask, width, height) {
  const blurred = blur3(levels, width, height);
  const box = boundingBox(mask, width, height);
  const reach = (Math.max(box.y1 - 1 - box.y0, box.x1 - 1 - box.x0) >> 1) + 2;
  const top = Math.max(0, box.y0 - reach);
  const bottom = Math.min(height, box.y1 + reach);
  const left = Math.max(0, box.x0 - reach);
  const right = Math.min(width, box.x1 + reach);
  const near = dilate3(mask, width, height, left, top, right, bottom);
  const background = new Float64Array(256);
  for (let y = top; y < bottom; y++) {
    for (let x = left; x < right; x++) if (!near[(y - top) * (right - left) + (x - left)]) background[blurred[y * width + x]]++;
  }
  const median = searchLevel(background, 0.5);
  if (median < 0) return true; // nothing but glyph: a tight crop
  const spread = new Float64Array(256);
  for (let level = 0; level < 256; level++) spread[Math.abs(level - median)] += background[level];
  const mad = searchLevel(spread, 0.5);
  const ink = quantile(blurred, 0.9, mask) * 255;
  return ink - median >= Math.max(MIN_GLYPH_CONTRAST * 255, NOISE_SIGMAS * 1.4826 * Math.max(mad, 0.5));
}

// OpenCV's INTER_AREA shrink of a float32 image (computeResizeAreaTab, resizeArea).
function areaTable(ssize, dsize) {
  const scale = 1 / (dsize / ssize);
  const table = [];
  for (let d = 0; d < dsize; d++) {
    const fs1 = d * scale;
    const fs2 = fs1 + scale;
    const cell = Math.min(scale, ssize - fs1);
    const s2 = Math.min(Math.floor(fs2), ssize - 1);
    const s1 = Math.min(Math.ceil(fs1), s2);
    const taps = [];
    if (s1 - fs1 > 1e-3) taps.push([s1 - 1, f32((s1 - fs1) / cell)]);
    for (let s = s1; s < s2; s++) taps.push([s, f32(1 / cell)]);
    if (fs2 - s2 > 1e-3) taps.push([s2, f32(Math.min(Math.min(fs2 - s2, 1), cell) / cell)]);
    table.push(taps);
  }
  return table;
}

// OpenCV's INTER_LINEAR: pixel centres aligned, edges clamped.
function linearTable(ssize, dsize) {
  const scale = 1 / (dsize / ssize);
  const table = [];
  for (let d = 0; d < dsize; d++) {
    let f = f32((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = f32(f - s);
    if (s < 0) {
      s = 0;
      f = 0;
    }
    if (s >= ssize - 1) {
      s = ssize - 1;
      f = 0;
    }
    table.push(f === 0 ? [[s, 1]] : [[s, f32(1 - f)], [s + 1, f]]);
  }
  return table;
}

export function resize(src, width, height, newWidth, newHeight, area) {
  const make = area ? areaTable : linearTable;
  const xs = make(width, newWidth);
  const ys = make(height, newHeight);
  const out = new Float32Array(newWidth * newHeight);
  const row = new Float32Array(newWidth);
  for (let dy = 0; dy < newHeight; dy++) {
    const sum = new Float64Array(newWidth);
    for (const [sy, beta] of ys[dy]) {
      for (let dx = 0; dx < newWidth; dx++) {
        let acc = 0;
        for (const [sx, alpha] of xs[dx]) acc += src[sy * width + sx] * alpha;
        row[dx] = acc;
      }
      for (let dx = 0; dx < newWidth; dx++) sum[dx] += beta * row[dx];
    }
    for (let dx = 0; dx < newWidth; dx++) out[dy * newWidth + dx] = sum[dx];
  }
  return out;
}

// Crop the glyph, ink to full white, fit into size x size keeping the aspect inside the margin.
function glyphImage(bright, levels, mask, width, height, spec) {
  const box = boundingBox(mask, width, height);
  const keep = dilate3(mask, width, height);
  const notMask = mask.map((m) => 1 - m);
  const page = quantile(levels, 0.5, notMask);
  const background = f32(page);
  const span = f32(Math.max(quantile(levels, 0.9, mask) - page, 1e-6));
  const cropW = box.x1 - box.x0;
  const cropH = box.y1 - box.y0;
  const crop = new Float32Array(cropW * cropH);
  for (let y = 0; y < cropH; y++) {
    for (let x = 0; x < cropW; x++) {
      const i = (y + box.y0) * width + (x + box.x0);
      const v = f32(f32(bright[i] - background) / span);
      crop[y * cropW + x] = keep[i] ? Math.min(Math.max(v, 0), 1) : 0;
    }
  }
  return fit(crop, cropW, cropH, spec);
}

function fit(crop, cropW, cropH, spec) {
  const inner = spec.size - 2 * spec.margin;
  const scale = inner / Math.max(cropW, cropH);
  const newW = Math.max(1, roundHalfEven(cropW * scale));
  const newH = Math.max(1, roundHalfEven(cropH * scale));
  const resized = resize(crop, cropW, cropH, newW, newH, scale < 1);
  const glyph = new Uint8Array(spec.size * spec.size);
  const top = (spec.size - newH) >> 1;
  const left = (spec.size - newW) >> 1;
  for (let y = 0; y < newH; y++) {
    for (let x = 0; x < newW; x++) {
      const v = Math.min(Math.max(resized[y * newW + x], 0), 1);
      glyph[(y + top) * spec.size + x + left] = roundHalfEven(f32(v * 255));
    }
  }
  return glyph;
}

// The chosen glyph without its parts that touch the edge, when they are the lesser part
// (choice.py's inside_part: the second look); else null.
function insidePart(glyph, width, height) {
  const { labels, parts } = components(glyph, width, height);
  const touches = parts.map((p) => touchesEdge(p, width, height));
  let total = 0;
  let inside = 0;
  parts.forEach((p, i) => {
    total += p.area;
    if (!touches[i]) inside += p.area;
  });
  if (!touches.some(Boolean) || inside < INSIDE_KEEP * total) return null;
  const kept = new Uint8Array(glyph.length);
  for (let i = 0; i < glyph.length; i++) kept[i] = labels[i] && !touches[labels[i] - 1] ? 1 : 0;
  return kept;
}

// A letter cut off by the edge (glyph.py's cut_off): it touches the left or the right
// side (not both) and spans at most CUT_OFF_MAX_SPAN of the width, or the same with
// top and bottom.
function cutOff(mask, width, height) {
  const { x0, y0, x1, y1 } = boundingBox(mask, width, height);
  const sideways = (x0 === 0) !== (x1 === width) && x1 - x0 <= CUT_OFF_MAX_SPAN * width;
  const upright = (y0 === 0) !== (y1 === height) && y1 - y0 <= CUT_OFF_MAX_SPAN * height;
  return sideways || upright;
}

// RGBA pixels (a canvas's ImageData) to the canonical glyph: uint8 size x size,
// white on black; all black when there is no glyph (a blank canvas, a flat frame) or
// only part of one (cut off by the edge). When the first choice fails, a second look
// leaves out the parts touching the edge (glyph.py's canonical).
export function canonical(rgba, width, height, spec) {
  const bright = glyphBright(toGray(rgba, width, height), width, height);
  const levels = toLevels(bright);
  const threshold = thresholdMask(levels);
  let mask = threshold && chooseGlyph(threshold, width, height);
  for (const look of [0, 1]) {
    if (look && mask) mask = insidePart(mask, width, height); // without the parts touching the edge
    if (mask && standsOut(levels, mask, width, height) && !cutOff(mask, width, height)) {
      return glyphImage(bright, levels, mask, width, height, spec);
    }
  }
  return new Uint8Array(spec.size * spec.size);
}

// Canonical glyph to the model's input: (pixel / 255 - mean) / std, float32 (1, 1, size, size).
export function normalize(glyph, spec) {
  const input = new Float32Array(glyph.length);
  for (let i = 0; i < glyph.length; i++) input[i] = f32(f32(f32(glyph[i] / 255) - spec.mean) / spec.std);
  return input;
}
