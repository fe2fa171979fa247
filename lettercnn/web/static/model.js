// The model as the Python runtime reads it (lettercnn/runtime.py): the .onnx file's own
// metadata gives the labels, the input spec and the calibration (temperature, '?'
// threshold); onnxruntime-web's single-threaded WASM backend runs it.

import * as ort from "./vendor/ort.wasm.bundle.min.mjs";

export const UNKNOWN = "?";
export const NO_GLYPH = "no glyph found";
export const NOT_SURE = "not a letter, or not sure";
// Letters many faces draw alike, told apart only by case (labels.LOOK_ALIKES).
export const LOOK_ALIKES = [["I", "L"]];
const REQUIRED_KEYS = ["labels", "input"];
const DEFAULT_SPEC = { size: 32, channels: 1, polarity: "white_on_black", mean: 0.5, std: 0.5, margin: 2 };

// One thread: no SharedArrayBuffer, so no cross-origin isolation headers are needed.
ort.env.wasm.numThreads = 1;
ort.env.wasm.proxy = false;

// ModelProto.metadata_props (field 14: StringStringEntryProto, key 1, value 2), read
// straight from the protobuf bytes: onnxruntime-web does not expose them.
export function readMetadata(bytes) {
  const text = new TextDecoder();
  let pos = 0;
  const varint = (end) => {
    let value = 0;
    let shift = 1;
    for (;;) {
      if (pos >= end) throw new Error("truncated model file");
      const byte = bytes[pos++];
      value += (byte & 0x7f) * shift;
      if (byte < 0x80) return value;
      shift *= 128;
    }
  };
  const fields = (end, onField) => {
    while (pos < end) {
      const key = varint(end);
      const field = Math.floor(key / 8);
      const wire = key % 8;
      if (wire === 0) varint(end);
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        const length = varint(end);
        onField(field, pos, pos + length);
        pos += length;
      } else throw new Error(`not an ONNX model (protobuf wire type ${wire})`);
    }
  };
  const metadata = {};
  fields(bytes.length, (field, start, end) => {
    if (field !== 14) return;
    const entry = {};
    const saved = pos;
    pos = start;
    fields(end, (inner, s, e) => {
      entry[inner] = text.decode(bytes.subarray(s, e));
    });
    pos = saved;
    try {
      metadata[entry[1]] = JSON.parse(entry[2]);
    } catch {
      metadata[entry[1]] = entry[2];
    }
  });
  return metadata;
}

export class Model {
  static async load(url) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`cannot fetch ${url}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const metadata = readMetadata(bytes);
    const missing = REQUIRED_KEYS.filter((key) => !(key in metadata));
    if (missing.length) throw new Error(`${url} has no lettercnn metadata (${missing.join(", ")} missing)`);
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: ["wasm"],
      graphOptimizationLevel: "all",
    });
    return new Model(session, metadata, bytes.length);
  }

  constructor(session, metadata, bytes) {
    this.session = session;
    this.metadata = metadata;
    this.bytes = bytes;
    this.labels = metadata.labels.map(String);
    this.spec = { ...DEFAULT_SPEC, ...metadata.input };
    const calibration = metadata.calibration;
    this.calibrated = calibration !== undefined && calibration !== null;
    this.temperature = this.calibrated ? Number(calibration.temperature) : 1;
    this.minConfidence = this.calibrated ? Number(calibration.min_confidence ?? 0) : 0;
    if (!(this.temperature > 0) || !(this.minConfidence >= 0 && this.minConfidence <= 1)) {
      throw new Error(`unreadable calibration in the model's metadata: ${JSON.stringify(calibration)}`);
    }
  }

  // Calibrated probabilities for one normalised input (Float32Array size*size):
  // the softmax of the logits divided by the temperature, in float64.
  async probabilities(input) {
    const size = this.spec.size;
    const tensor = new ort.Tensor("float32", input, [1, this.spec.channels, size, size]);
    const outputs = await this.session.run({ [this.session.inputNames[0]]: tensor });
    const logits = outputs[this.session.outputNames[0]].data;
    const scaled = Array.from(logits, (v) => v / this.temperature);
    const top = Math.max(...scaled);
    const exp = scaled.map((v) => Math.exp(v - top));
    const total = exp.reduce((a, b) => a + b, 0);
    return exp.map((v) => v / total);
  }

  // The answer for a row of probabilities, as Recognizer.decide: '?' below the threshold,
  // unless the two likeliest letters are a look-alike pair that reaches it together
  // (a plain bar: I or l), answered the likelier of the two (calibration.answered).
  decide(probabilities, topK = 3, minConfidence = this.minConfidence) {
    const order = probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
    const top = order.slice(0, topK).map(([p, i]) => [this.labels[i], p]);
    const [best, index] = order[0];
    const [second, other] = order.length > 1 ? order[1] : [0, -1];
    const [a, b] = [this.labels[index], this.labels[other]];
    const pair = LOOK_ALIKES.some(([x, y]) => (a === x && b === y) || (a === y && b === x));
    const alike = pair && best + second >= minConfidence;
    if (best >= minConfidence || alike) return { letter: this.labels[index], confidence: best, top, reason: null };
    return { letter: UNKNOWN, confidence: best, top, reason: NOT_SURE };
  }
}
