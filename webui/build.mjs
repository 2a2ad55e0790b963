// Copies the chat page's npm dependencies into static/vendor, where
// go:embed picks them up. Run it after changing package.json:
//
//	npm ci && node build.mjs     (or: go generate ./webui)
//
// Source-map comments are removed (the maps are not shipped, and the page
// must not request anything that does not exist), and each library's
// licence is copied beside it. VERSIONS.txt records what was copied.
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "static", "vendor");
mkdirSync(out, { recursive: true });

const libs = [
  { pkg: "marked", file: "lib/marked.esm.js", to: "marked.esm.js", licences: ["LICENSE"] },
  { pkg: "dompurify", file: "dist/purify.es.mjs", to: "purify.es.mjs", licences: ["LICENSE"] },
];

const lines = [];
for (const lib of libs) {
  const root = join(here, "node_modules", lib.pkg);
  const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
  const src = readFileSync(join(root, lib.file), "utf8").replace(/\n\/\/# sourceMappingURL=\S*\s*$/, "\n");
  writeFileSync(join(out, lib.to), src);
  for (const l of lib.licences) copyFileSync(join(root, l), join(out, `${lib.pkg}.${l}`));
  const sum = createHash("sha256").update(src).digest("hex");
  lines.push(`${lib.pkg}@${version} ${lib.file} -> ${lib.to} sha256:${sum}`);
}
writeFileSync(join(out, "VERSIONS.txt"), lines.join("\n") + "\n");
console.log(lines.join("\n"));
