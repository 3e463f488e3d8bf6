// What `node .` runs (package.json "main", bundled as dist/function/member-greeter.mjs).
// It only turns on Node's compile cache, before startup.ts and the rest are loaded:
// on a cold start most of the time goes to compiling JavaScript, and the cache
// keeps V8's output between starts (in NODE_COMPILE_CACHE, else the temp dir).
// Where the cache cannot be written (a read-only file system) Node carries on without it.
import { enableCompileCache } from "node:module";

enableCompileCache();
await import("./startup.ts");
