// Bundles the function into dist/function/: one entry file and a few chunks,
// dependencies included, so the image needs no node_modules and a cold start
// resolves and reads a handful of files instead of ~140 packages. The
// Kubernetes client stays in a chunk of its own, loaded only where a cluster is
// configured, off the start-up path.
import { build, type Plugin } from "esbuild";
import { rm } from "node:fs/promises";
import { fileURLToPath } from "node:url";

const outdir = "dist/function";
const fromRoot = (path: string): string => fileURLToPath(new URL(`../${path}`, import.meta.url));

// The Kubernetes client chunk is most of what the first greeting waits for
// (issue 12: 2.9 MB, 71–130 ms). Three things shrink it to what the calls use:
// - the client's generated modules have no side effects, so the thousand API
//   and model classes the function never names are left out;
// - its ObjectSerializer, whose type map holds every model class, is replaced
//   by one for untyped objects (functions/kube-untyped-serializer.ts);
// - undici, its transport, is replaced by a module that refuses to be used
//   (functions/kube-no-undici.ts): our calls go through kube-transport.ts.
const slimKubeClient: Plugin = {
  name: "slim-kubernetes-client",
  setup(build) {
    const client = /[/\\]node_modules[/\\]@kubernetes[/\\]client-node[/\\]/;
    build.onResolve({ filter: /^undici$/ }, (args) => (client.test(args.importer) ? { path: fromRoot("functions/kube-no-undici.ts") } : undefined));
    build.onResolve({ filter: /[/\\]ObjectSerializer\.js$/ }, (args) =>
      client.test(args.importer) ? { path: fromRoot("functions/kube-untyped-serializer.ts") } : undefined,
    );
    build.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === slimKubeClient || !(client.test(args.importer) || args.path === "@kubernetes/client-node")) return undefined;
      const resolved = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: slimKubeClient });
      if (resolved.errors.length > 0 || !client.test(resolved.path)) return resolved.errors.length > 0 ? { errors: resolved.errors } : undefined;
      return { path: resolved.path, sideEffects: false };
    });
  },
};

// An ES module import of node:http makes Node load undici too, for http's lazy
// WebSocket exports: 16-50 ms and ~10 MiB for nothing (see functions/http-app.ts).
// Our modules take node:http from process.getBuiltinModule; this does the same
// for the dependencies' `import http from "node:http"` (the Kubernetes client's).
// CommonJS require() of it (Express) never built that facade.
const httpWithoutUndici: Plugin = {
  name: "node-http-without-undici",
  setup(build) {
    build.onResolve({ filter: /^(node:)?http$/ }, (args) => (args.kind === "import-statement" ? { path: "node:http", namespace: "builtin-http" } : undefined));
    // Its plain properties as named exports; not the lazy getters, which are what loads undici.
    const names = Object.entries(Object.getOwnPropertyDescriptors(process.getBuiltinModule("node:http")))
      .filter(([name, d]) => "value" in d && /^[A-Za-z_$][\w$]*$/.test(name))
      .map(([name]) => name);
    build.onLoad({ filter: /.*/, namespace: "builtin-http" }, () => ({
      contents: `const http = process.getBuiltinModule("node:http"); export default http; export const { ${names.join(", ")} } = http;`,
      loader: "js",
    }));
  },
};

// Express's index loads body-parser's four parsers (iconv-lite, qs, raw-body…),
// which the function never uses: it reads bodies itself (functions/read-body.ts).
const withoutBodyParser: Plugin = {
  name: "without-body-parser",
  setup(build) {
    build.onResolve({ filter: /^body-parser$/ }, (args) =>
      /[/\\]node_modules[/\\]express[/\\]/.test(args.importer) ? { path: fromRoot("functions/no-body-parser.ts") } : undefined,
    );
  },
};

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
  plugins: [slimKubeClient, httpWithoutUndici, withoutBodyParser],
});
const outputs = Object.entries(result.metafile.outputs)
  .filter(([file]) => file.endsWith(".mjs"))
  .map(([file, out]) => `${file} ${(out.bytes / 1024).toFixed(0)} KiB`);
console.error(`bundled: ${outputs.join(", ")}`);
