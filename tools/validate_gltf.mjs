// Validate one glTF/GLB file with the Khronos glTF validator (npm package `gltf-validator`) and
// print its JSON report on stdout. Exit 0 when a report was produced (errors or not), 1 when the
// file could not be validated at all.
//
//   node tools/validate_gltf.mjs model.glb [--validator-dir DIR]
//
// The package is installed by `make validator` into .tools/ (git-ignored); --validator-dir or
// $GLTF_VALIDATOR_DIR points elsewhere. External resources (.gltf with separate files) are read
// from the file's folder.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const dirFlag = args.indexOf("--validator-dir");
const here = path.dirname(fileURLToPath(import.meta.url));
const validatorDir = dirFlag >= 0 ? args.splice(dirFlag, 2)[1]
  : (process.env.GLTF_VALIDATOR_DIR || path.join(here, "..", ".tools"));
if (args.length !== 1) {
  console.error("usage: node validate_gltf.mjs FILE [--validator-dir DIR]");
  process.exit(2);
}
const file = path.resolve(args[0]);

// The package lives outside this script's folder tree: resolve it from its install prefix.
const require = createRequire(path.join(path.resolve(validatorDir), "package.json"));
let validator;
try {
  validator = require("gltf-validator");
} catch (err) {
  console.error(`gltf-validator not found under ${validatorDir}: run \`make validator\``);
  process.exit(3);
}

try {
  const report = await validator.validateBytes(new Uint8Array(await readFile(file)), {
    uri: path.basename(file),
    maxIssues: 100,
    externalResourceFunction: async (uri) =>
      new Uint8Array(await readFile(path.resolve(path.dirname(file), decodeURIComponent(uri)))),
  });
  console.log(JSON.stringify(report));
} catch (err) {
  console.error(`cannot validate ${file}: ${err}`);
  process.exit(1);
}
