// Production entry point (package.json "main"; `node .`). It only turns on
// Node's compile cache, before the rest of the function is loaded and compiled:
// on a cold start most of the time goes to compiling JavaScript, and the cache
// keeps V8's output between starts (in NODE_COMPILE_CACHE, else the temp dir).
// Where the cache cannot be written (a read-only file system) Node carries on without it.
import { enableCompileCache } from "node:module";

enableCompileCache();
await import("./main.ts");
