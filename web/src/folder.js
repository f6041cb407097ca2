// A model folder fetched over HTTP and checked as the Python runtime checks it (runtime/model_format.py):
// a format version this page reads, and the SHA-256 of every file it uses against config.json before
// any is used. It decodes greedily over the whole vocabulary with decoder.onnx, so it fetches none of
// a shortlist's files (format 5: shortlist.npz, output_layer.onnx, decoder_shortlist.onnx; format 6
// also their weights files), but for a format 4 folder's output layer, whose decoder.onnx takes its rows,
// and a fixed shortlist's decoder (format 7), which it decodes with instead of decoder.onnx.

export const READABLE_VERSIONS = [1, 2, 3, 4, 5, 6, 7, 8];
const SHORTLIST_GRAPHS = ["output_layer.onnx", "decoder_shortlist.onnx"];
// format 7: a shortlist without per-source lists is the same for every batch, so decoder_shortlist.onnx
// holds its rows and maps its columns to target ids itself: decoder.onnx's inputs and outputs, over the
// list (runtime/model_format.py fixed_shortlist). The Python runtime decodes with it unless told not to.
export const fixedShortlist = (config) => config.format_version >= 7 && config.shortlist != null
  && config.shortlist.per_source === 0;
export const decoderFile = (config) => (fixedShortlist(config) ? "decoder_shortlist.onnx" : "decoder.onnx");
const unused = (config) => {
  const version = config.format_version;
  if (fixedShortlist(config)) return ["shortlist.npz", "decoder.onnx", weightsFile("decoder.onnx")];
  return ["shortlist.npz", ...(version >= 5 ? SHORTLIST_GRAPHS : []),
    ...(version >= 6 ? SHORTLIST_GRAPHS.map(weightsFile) : [])];
};
const NEWEST = Math.max(...READABLE_VERSIONS);

// from format 6 each graph's weights are in <graph>.safetensors beside it (runtime/weights.py)
export const weightsFile = (graph) => graph.replace(/\.onnx$/, ".safetensors");
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export class FolderError extends Error {}

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new FolderError(`${url}: ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

export async function openFolder(base) {
  const config = JSON.parse(new TextDecoder().decode(await fetchBytes(`${base}config.json`)));
  const version = config.format_version;
  if (!READABLE_VERSIONS.includes(version)) {
    const fix = Number.isInteger(version) && version > NEWEST ? "this page is older than the model folder: export the site again"
      : "re-export the model folder";
    throw new FolderError(`model format version ${JSON.stringify(version)}; this page reads versions ${READABLE_VERSIONS.join(", ")}: ${fix}`);
  }
  const files = {};
  for (const [name, digest] of Object.entries(config.files || {})) {
    if (!NAME.test(name)) throw new FolderError(`config.json names a file ${JSON.stringify(name)} outside the folder`);
    if (unused(config).includes(name)) continue;
    const bytes = await fetchBytes(`${base}${name}`);
    if (hex(await crypto.subtle.digest("SHA-256", bytes)) !== digest) {
      throw new FolderError(`${name}: sha256 does not match config.json (file changed or corrupt); refused`);
    }
    files[name] = bytes;
  }
  return { config, files };
}
