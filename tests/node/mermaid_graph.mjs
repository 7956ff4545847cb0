// Parse Mermaid flowcharts with Mermaid's own parser and print what it understood.
// Input (stdin): a JSON list of diagram texts. Output (stdout): a JSON list with, for each,
// {"type", "nodes", "edges": [[from, to, label]], "subgraphs": {id: [node ids]}} or {"error"}.
// Mermaid needs a DOM for its sanitizer: jsdom provides one (no browser). Both are loaded from
// the node_modules folder given as the first argument (`.untangle-node/node_modules`).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.argv[2];
const require = createRequire(join(modules, "untangle.cjs"));
const load = async (name) => import(pathToFileURL(require.resolve(name)).href);
const { JSDOM } = await load("jsdom");
const { window } = new JSDOM("");
globalThis.window = window;
globalThis.document = window.document;
const { default: mermaid } = await load("mermaid");
mermaid.initialize({ startOnLoad: false, securityLevel: "strict" });

const texts = JSON.parse(readFileSync(0, "utf8"));
const results = [];
for (const text of texts) {
  try {
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(text);
    const db = diagram.db;
    const vertices = db.getVertices();
    const nodes = vertices instanceof Map ? [...vertices.keys()] : Object.keys(vertices);
    const edges = db.getEdges().map((e) => [e.start, e.end, e.text ?? ""]);
    const subgraphs = {};
    for (const sub of db.getSubGraphs()) subgraphs[sub.id] = sub.nodes;
    results.push({ type: diagram.type, nodes, edges, subgraphs });
  } catch (error) {
    results.push({ error: String(error?.message ?? error).split("\n").slice(0, 3).join("\n") });
  }
}
process.stdout.write(JSON.stringify(results));
