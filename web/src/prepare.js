// runtime/prepare.py in JavaScript: text as typed -> the text the model reads, and the translation
// back in the writer's casing (ALL CAPS, Title Case).

const WORD = /[\p{L}\p{N}_][\p{L}\p{N}_'’-]*/gu;
const NO_TITLE_CASE = new Set(["de", "lb"]);
const isUpper = (c) => c !== c.toLowerCase() && c === c.toUpperCase();
const isLower = (c) => c !== c.toUpperCase() && c === c.toLowerCase();
const isTitle = (c) => c !== c.toUpperCase() && c !== c.toLowerCase(); // "ǅ": no capital (str.isupper)
const isAlpha = (c) => /\p{L}/u.test(c);

export function normalize(text) {
  return text.normalize("NFC").replace(/\s+/gu, " ").trim();
}

export function casing(text, language) {
  const letters = [...text].filter((c) => isUpper(c) || isLower(c) || isTitle(c));
  if (letters.length >= 2 && letters.every(isUpper)) return "upper";
  const words = (text.match(WORD) || []).filter((w) => [...w].some(isAlpha));
  if (NO_TITLE_CASE.has(language) || words.length < 3) return "as_written";
  return words.every((w) => isUpper([...w].find(isAlpha))) ? "title" : "as_written";
}

function withFirstLetter(text, change) {
  const chars = [...text];
  const i = chars.findIndex(isAlpha);
  if (i < 0) return text;
  chars[i] = change(chars[i]);
  return chars.join("");
}

export function prepareSource(text, cfg) {
  const prepared = normalize(text);
  const kind = cfg.restore_case ? casing(prepared, cfg.source_language) : "as_written";
  return [kind === "as_written" ? prepared : withFirstLetter(prepared.toLowerCase(), (c) => c.toUpperCase()), kind];
}

export function restoreCasing(text, kind) {
  if (kind === "upper") return text.toUpperCase();
  if (kind === "title") return text.replace(WORD, (w) => w.slice(0, 1).toUpperCase() + w.slice(1));
  return text;
}
