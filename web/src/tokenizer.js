// The folder's tokenizer (runtime/tokenizer.py): SentencePiece subwords through its WebAssembly build
// (the same ids as the Python package's, from the same .model files), or the word tokenizer.
import { SentencePieceProcessor } from "@sctg/sentencepiece-js";

const SPECIALS = ["<pad>", "<unk>", "<sos>", "<eos>"];
const UNK_ID = 1;

function base64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

class SentencePieceTokenizer {
  static async load(settings, files) {
    const self = new SentencePieceTokenizer();
    self.processors = {};
    for (const [side, field] of [["src", "source_model"], ["tgt", "target_model"]]) {
      const processor = new SentencePieceProcessor();
      await processor.loadFromB64StringModel(base64(files[settings[field]]));
      self.processors[side] = processor;
    }
    return self;
  }

  // a piece's SentencePiece id is its vocabulary id (the specials are ids 0..3 in both)
  ids(text, side = "src") {
    return this.processors[side].encodeIds(text);
  }

  text(ids, side = "tgt") {
    return this.processors[side].decodeIds(Int32Array.from(ids));
  }
}

// word tokens: French elisions first, words with inner hyphens and apostrophes, any other symbol
const W = "[\\p{L}\\p{N}_]";
const TOKEN = new RegExp(`(?<!${W})(?:jusqu|lorsqu|puisqu|quoiqu|qu|[cdjlmnst])'(?=${W})|${W}+(?:[-']${W}+)*|[^\\p{L}\\p{N}_\\s]`, "gu");
const NO_SPACE_BEFORE = new Set(".,!?;:)]}%»…");
const NO_SPACE_AFTER = new Set("([{«");

class WordTokenizer {
  constructor(settings, vocabularies) {
    this.lowercase = settings.lowercase ?? true;
    this.capitalize = settings.capitalize ?? true;
    this.vocabularies = vocabularies;
    this.index = { src: new Map(vocabularies.src.map((t, i) => [t, i])) };
  }

  ids(text, side = "src") {
    text = text.normalize("NFC").replace(/[\u2019\u2018\u02bc]/g, "'");
    if (this.lowercase) text = text.toLowerCase();
    return (text.match(TOKEN) || []).map((t) => this.index[side].get(t) ?? UNK_ID);
  }

  text(ids, side = "tgt") {
    const out = [];
    for (const id of ids) {
      const token = this.vocabularies[side][id];
      const last = out[out.length - 1];
      if (out.length && !(NO_SPACE_BEFORE.has(token[0]) || last.endsWith("'") || NO_SPACE_AFTER.has(last[last.length - 1]))) out.push(" ");
      out.push(token);
    }
    const text = out.join("");
    return this.lowercase && this.capitalize && text ? text[0].toUpperCase() + text.slice(1) : text;
  }
}

export async function loadTokenizer(config, files) {
  const json = (name) => JSON.parse(new TextDecoder().decode(files[name]));
  const settings = json("tokenizer.json");
  const vocabularies = { src: json("source_vocabulary.json"), tgt: json("target_vocabulary.json") };
  for (const side of ["src", "tgt"]) {
    if (SPECIALS.some((s, i) => vocabularies[side][i] !== s)) throw new Error(`the ${side} vocabulary does not start with the specials`);
  }
  if (settings.type === "sentencepiece") return SentencePieceTokenizer.load(settings, files);
  return new WordTokenizer(settings, vocabularies);  // "word", or format 1's tokenizer.json without "type"
}
