// Builds dist/: the page (index.html), its JavaScript bundled into one module (app.js: our code,
// onnxruntime-web's wasm build, the SentencePiece WebAssembly build) and the two onnxruntime-web
// files it loads at run time (dist/ort/). Only these go into a site: `python -m export web`.
import * as esbuild from "esbuild";
import { copyFile, mkdir, rm } from "node:fs/promises";

// @sctg/sentencepiece-js imports node's fs (for its load-from-path, which the page never calls)
// and its WebAssembly glue requires fs, path, crypto url and module on node only: empty modules here
const nodeOnly = {
  name: "node-only",
  setup(build) {
    build.onResolve({ filter: /^(fs|path|crypto|url|module|worker_threads)$/ }, (args) => ({ path: args.path, namespace: "node-only" }));
    build.onLoad({ filter: /.*/, namespace: "node-only" }, () => ({
      contents: "export default {}; export function readFileSync() { throw new Error('no file system in a page'); }\n" +
        "export function createRequire() { return () => ({}); }",
      loader: "js",
    }));
  },
};

await rm("dist", { recursive: true, force: true });
await esbuild.build({
  entryPoints: ["src/app.js"], bundle: true, format: "esm", platform: "browser", target: "es2020",
  minify: true, legalComments: "external", outfile: "dist/app.js", plugins: [nodeOnly], logLevel: "warning",
});
await mkdir("dist/ort", { recursive: true });
for (const file of ["ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"]) {
  await copyFile(`node_modules/onnxruntime-web/dist/${file}`, `dist/ort/${file}`);
}
await copyFile("index.html", "dist/index.html");
