// Texts -> translations, as runtime.Translator does for one sentence a line (runtime/pipeline.py):
// prepared, tokenized, <sos> + ids (reversed) + <eos>, sorted by length into batches, decoded
// greedily, detokenized and given the writer's casing back.
import * as ort from "onnxruntime-web/wasm";
import { openFolder } from "./folder.js";
import { greedySearch, Model, EOS_ID, SOS_ID } from "./decode.js";
import { prepareSource, restoreCasing } from "./prepare.js";
import { loadTokenizer } from "./tokenizer.js";

const DEFAULT_TEXT = { source_language: null, target_language: null, restore_case: false };

export class Translator {
  static async load(base, ortFiles) {
    ort.env.wasm.wasmPaths = ortFiles;
    ort.env.wasm.numThreads = 1;  // threads need a cross-origin isolated page, which a plain static server is not
    const { config, files } = await openFolder(base);
    const self = new Translator();
    self.config = config;
    self.text = config.text || DEFAULT_TEXT;
    self.tokenizer = await loadTokenizer(config, files);
    self.model = await Model.create(files, config);
    return self;
  }

  sourceIds(text) {
    const ids = this.tokenizer.ids(text, "src").slice(0, Math.max(0, this.config.max_source_len - 2));
    if (this.config.reverse_source) ids.reverse();
    return [SOS_ID, ...ids, EOS_ID];
  }

  cap(length) {
    const d = this.config.decoding || {};
    return Math.floor(Math.min(d.max_len ?? 256, (d.max_len_a ?? 2) * length + (d.max_len_b ?? 10)));
  }

  async translate(lines, batchSize = 32) {
    const units = lines.map((line) => {
      const [prepared, kind] = prepareSource(line, this.text);
      const [lead, trail] = [line.match(/^\s*/u)[0], line.slice(line.trimEnd().length)];  // kept as written
      return { kind, lead, trail, ids: prepared ? this.sourceIds(prepared) : null };
    });
    units.forEach((u, i) => { if (u.ids && u.ids.length <= 2) out[i] = u.lead + u.trail; });  // no token: ""
    const order = units.map((u, i) => i).filter((i) => units[i].ids && units[i].ids.length > 2)
      .sort((a, b) => units[a].ids.length - units[b].ids.length);
    const out = lines.slice();  // blank lines come back as they are
    for (let start = 0; start < order.length; start += batchSize) {
      const keys = order.slice(start, start + batchSize);
      const rows = keys.map((k) => units[k].ids);
      const decoded = await greedySearch(this.model, rows, rows.map((r) => this.cap(r.length)));
      keys.forEach((k, j) => {
        const u = units[k];
        out[k] = u.lead + restoreCasing(this.tokenizer.text(decoded[j], "tgt"), u.kind) + u.trail;
      });
    }
    return out;
  }
}
