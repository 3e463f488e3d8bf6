// A user's clone has nothing beside it: no file in the repository may read
// outside it (the reference folder the project was developed next to, or an
// absolute path of the machine it was written on). Caches the project installs
// itself (~/.cache/member-greeter, .tools/) are named through HOME or the repo.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, it } from "node:test";
import { repoRoot } from "./support/kube.ts";

// Built from parts so that this file does not match itself.
const outside = [
  new RegExp(["\\.\\.", "shared"].join("/")),
  new RegExp(['"\\.\\."', '\\s*"shared"'].join(",")),
  new RegExp(["shared", "reference"].join("/")),
  new RegExp(["", "work", ""].join("/")),
];

const textFile = /\.(ts|js|mjs|sh|json|ya?ml|md|mod|txt)$|(^|\/)(Dockerfile|run)$/;

export function offendingLines(text: string): string[] {
  return text.split("\n").filter((line) => outside.some((pattern) => pattern.test(line)));
}

describe("the repository stands alone", () => {
  it("recognises a path outside the clone (the check can fail)", () => {
    assert.equal(offendingLines(`const dir = path.resolve(repoRoot, "..", "${"shared"}", "reference");`).length, 1);
    assert.equal(offendingLines(["see ..", "shared", "reference/x.md"].join("/")).length, 1);
    assert.equal(offendingLines("const dir = path.join(repoRoot, 'test');").length, 0);
  });

  it("no tracked file reads anything outside the repository", () => {
    const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: repoRoot, encoding: "utf8" })
      .split("\0")
      .filter((file) => file !== "" && textFile.test(file) && file !== "package-lock.json");
    assert.ok(files.length > 50, `only ${files.length} files listed`);
    const found: string[] = [];
    for (const file of files) {
      let text: string;
      try {
        text = readFileSync(path.join(repoRoot, file), "utf8");
      } catch {
        continue; // deleted in the work tree
      }
      for (const line of offendingLines(text)) found.push(`${file}: ${line.trim()}`);
    }
    assert.deepEqual(found, []);
  });
});
