// The README's `$ curl` examples and the output shown under each, and a check
// that runs one against a server and compares status line, headers and body.
// Used by test/readme.test.ts (`node .` in-process) and by the image test (the
// container), so both hold the README to what a user sees.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
export const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
export const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");

export interface Example {
  readonly command: string;
  readonly expected: string[];
}

/** The `$ curl …` lines of the console blocks, each with the output shown under it. */
export function curlExamples(markdown: string): Example[] {
  const examples: Example[] = [];
  for (const block of markdown.matchAll(/```console\n([\s\S]*?)```/g)) {
    let current: { command: string; expected: string[] } | undefined;
    for (const line of (block[1] ?? "").split("\n")) {
      if (line.startsWith("$ ")) {
        if (current) examples.push(current);
        current = { command: line.slice(2), expected: [] };
      } else if (current) {
        current.expected.push(line);
      }
    }
    if (current) examples.push(current);
  }
  return examples.map((e) => ({ ...e, expected: trimEnd(e.expected) }));
}

function trimEnd(lines: string[]): string[] {
  const out = [...lines];
  while (out.length > 0 && out.at(-1) === "") out.pop();
  return out;
}

// Values that differ on every call: a fresh id each reply.
const variable = new Set(["ce-id", "ce-time", "date"]);

/** Runs the example with its URL pointed at `baseUrl` and checks the answer is the one shown. */
export async function checkExample(example: Example, baseUrl: string): Promise<void> {
  assert.ok(example.command.startsWith("curl ") && example.command.includes("http://localhost:8080/"));
  const command = example.command.replace("http://localhost:8080/", `${baseUrl}/`);
  const { stdout } = await run("bash", ["-c", command], { cwd: repoRoot });
  const lines = stdout.replace(/\r/g, "").split("\n");
  const blank = lines.indexOf("");
  const [status, ...headers] = lines.slice(0, blank);
  const body = lines
    .slice(blank + 1)
    .join("\n")
    .trim();
  const shownBlank = example.expected.indexOf("");
  const [shownStatus, ...shownHeaders] = example.expected.slice(0, shownBlank);
  const shownBody = example.expected
    .slice(shownBlank + 1)
    .join("\n")
    .trim();

  assert.equal(status, shownStatus);
  const actual = new Map(headers.map((h) => [h.slice(0, h.indexOf(":")).toLowerCase(), h.slice(h.indexOf(":") + 1).trim()]));
  for (const shown of shownHeaders) {
    const name = shown.slice(0, shown.indexOf(":")).toLowerCase();
    assert.ok(actual.has(name), `header ${name} is shown in the README but not sent`);
    if (!variable.has(name)) assert.equal(actual.get(name), shown.slice(shown.indexOf(":") + 1).trim(), name);
  }
  assert.equal(body, shownBody);
}
