// Parses Mermaid diagrams with Mermaid's own parser (what GitHub draws with), in a process of its
// own: Mermaid wants a DOM, and jsdom's window does not survive jest's environment. Reads a JSON
// array of diagram texts on stdin; writes a JSON array of errors (null where a diagram parses).
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
Object.assign(globalThis, { window: dom.window, document: dom.window.document });
const { default: mermaid } = await import('mermaid');
let input = '';
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const text of JSON.parse(input)) {
  try {
    await mermaid.parse(text);
    results.push(null);
  } catch (error) {
    results.push(String(error?.message ?? error));
  }
}
process.stdout.write(JSON.stringify(results));
