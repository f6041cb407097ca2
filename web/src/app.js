// The page: loads and checks the model folder next to it, then translates what is typed (one
// sentence a line), or ?q=... on load. The result is the text of #translation; errors go to #error.
import { Translator } from "./translator.js";

const $ = (id) => document.getElementById(id);
const ORT_FILES = new URL("./ort/", import.meta.url).href;
const MODEL = new URL("./model/", import.meta.url).href;

function fail(error) {
  $("error").textContent = `Error: ${error.message || error}`;
  $("status").textContent = "";
  window.seq2seq.error = String(error.message || error);
}

async function run(translator) {
  const started = performance.now();
  $("status").textContent = "translating…";
  const lines = $("source").value.split("\n");
  const out = await translator.translate(lines);
  $("translation").textContent = out.join("\n");
  $("status").textContent = `${lines.length} line(s) in ${Math.round(performance.now() - started)} ms`;
  window.seq2seq.translated += 1;
}

async function main() {
  window.seq2seq = { translated: 0, error: null };
  const query = new URLSearchParams(location.search).get("q");
  if (query !== null) $("source").value = query;
  $("status").textContent = "loading the model…";
  let translator;
  try {
    translator = await Translator.load(MODEL, ORT_FILES);
  } catch (error) {
    return fail(error);
  }
  const { text } = translator;
  $("languages").textContent = `${text.source_language || "?"} → ${text.target_language || "?"}`;
  window.seq2seq.translator = translator;  // for scripts: translator.translate(lines), .tokenizer.ids(text)
  $("status").textContent = "ready";
  $("translate").disabled = false;
  $("translate").onclick = () => run(translator).catch(fail);
  if (query !== null) await run(translator).catch(fail);
}

main();
