// Bundles the function into dist/function/: one entry file and a few chunks,
// dependencies included, so the image needs no node_modules and a cold start
// resolves and reads a handful of files instead of ~140 packages. The
// Kubernetes client stays in a chunk of its own, loaded on first use only.
import { build } from "esbuild";
import { rm } from "node:fs/promises";

const outdir = "dist/function";
await rm(outdir, { recursive: true, force: true });
const result = await build({
  entryPoints: { "member-greeter": "functions/entry.ts" },
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node24",
  outdir,
  outExtension: { ".js": ".mjs" },
  chunkNames: "[name]-[hash]",
  // CommonJS dependencies (Express) call require(); give the ESM bundle one.
  banner: { js: 'import { createRequire as __greeterCreateRequire } from "node:module"; const require = __greeterCreateRequire(import.meta.url);' },
  minifySyntax: true,
  minifyWhitespace: true,
  keepNames: false,
  legalComments: "linked",
  metafile: true,
  logLevel: "warning",
});
const outputs = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith(".mjs"))
  .map(([file, out]) => `${file} ${(out.bytes / 1024).toFixed(0)} KiB`);
console.error(`bundled: ${outputs.join(", ")}`);
