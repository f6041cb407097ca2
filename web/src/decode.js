// runtime/decode.py's greedy search in JavaScript, over onnxruntime-web sessions: the same stop rule
// (each sentence until its <eos> or its cap, the batch until all have ended) and the same state
// names, read from the graphs (runtime/state.py): hidden, cell (L, B, H); with attention input_feed,
// memory, keys and score_bias (formats 4-5) or src_lengths (formats 2-3); a format 4 shortlist folder's
// decoder also takes the output layer's rows (here: the whole vocabulary's, gathered once; a format 5
// folder's decoder.onnx holds the whole projection itself; a fixed shortlist's decoder_shortlist.onnx, format 7,
// its list's rows).
import * as ort from "onnxruntime-web/wasm";
import { decoderFile, weightsFile } from "./folder.js";

export const PAD_ID = 0, SOS_ID = 2, EOS_ID = 3;

const int64 = (values, dims) => new ort.Tensor("int64", BigInt64Array.from(values, BigInt), dims);

export class Model {
  static async create(files, config) {
    const self = new Model();
    const options = { executionProviders: ["wasm"], graphOptimizationLevel: "all" };
    // format 6: the graph refers to its weights as external data in <graph>.safetensors, at their offsets
    const session = (name) => ort.InferenceSession.create(files[name], config.format_version >= 6
      ? { ...options, externalData: [{ path: weightsFile(name), data: files[weightsFile(name)] }] } : options);
    self.encoder = await session("encoder.onnx");
    self.decoder = await session(decoderFile(config));  // a fixed shortlist's (format 7), else decoder.onnx
    self.config = config;
    self.stateInputs = self.decoder.inputNames.filter((n) => n !== "prev_ids");
    if (self.stateInputs.includes("out_weight")) {  // a format 4 shortlist folder: the whole vocabulary's rows
      const layer = await session("output_layer.onnx");
      const ids = Array.from({ length: config.tgt_vocab_size }, (_, i) => i);
      const rows = await layer.run({ candidates: int64(ids, [ids.length]) });
      self.outputLayer = { out_weight: rows.out_weight, out_bias: rows.out_bias, candidates: int64(ids, [ids.length]) };
    }
    return self;
  }

  // src (B rows of ids) -> the decoder's initial state
  async encode(rows) {
    const batch = rows.length, width = Math.max(...rows.map((r) => r.length));
    const ids = new Array(batch * width).fill(PAD_ID);
    rows.forEach((r, b) => r.forEach((id, s) => { ids[b * width + s] = id; }));
    const lengths = rows.map((r) => r.length);
    const state = await this.encoder.run({ src_ids: int64(ids, [batch, width]), src_lengths: int64(lengths, [batch]) });
    if (state.memory) {
      if (!state.score_bias) state.src_lengths = int64(lengths, [batch]);  // formats 2-3 mask from the lengths
      const hidden = state.hidden.dims[2];
      state.input_feed = new ort.Tensor("float32", new Float32Array(batch * hidden), [batch, hidden]);
    }
    return { ...state, ...this.outputLayer };
  }

  // prev (B ids) -> [next ids (B), the new state]: each new_* output replaces its part
  async step(prev, state) {
    const feeds = { prev_ids: int64(prev, [prev.length]) };
    for (const name of this.stateInputs) feeds[name] = state[name];
    const out = await this.decoder.run(feeds);
    const next = Array.from(out.next_ids.data, Number);
    const updated = { ...state };
    for (const [name, value] of Object.entries(out)) if (name.startsWith("new_")) updated[name.slice(4)] = value;
    return [next, updated];
  }
}

// rows (B source id lists), caps (B) -> each sentence's ids, <eos> excluded
export async function greedySearch(model, rows, caps) {
  let state = await model.encode(rows);
  let prev = rows.map(() => SOS_ID);
  const finished = rows.map(() => false), steps = [];
  for (let t = 0; t < Math.max(...caps); t++) {
    let next;
    [next, state] = await model.step(prev, state);
    prev = next.map((id, b) => (finished[b] ? PAD_ID : id));
    steps.push(prev);
    prev.forEach((id, b) => { finished[b] ||= id === EOS_ID || t + 1 >= caps[b]; });
    if (finished.every(Boolean)) break;
  }
  return rows.map((_, b) => {
    const row = steps.slice(0, caps[b]).map((s) => s[b]);
    const end = row.indexOf(EOS_ID);
    return end < 0 ? row : row.slice(0, end);
  });
}
