// A 2025-11-25 client of @modelcontextprotocol/sdk 1.x that declares the tasks extension at
// initialize (as the TypeScript SDK lets any client do), calling one tool per run.
// Usage: node sdk1_client.mjs URL TOOL ARGS_JSON -- prints {"result": ...} or {"error": ...}.
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const modules = process.env.PMCP_NODE_MODULES;
const load = (path) => import(pathToFileURL(join(modules, "@modelcontextprotocol/sdk/dist/esm", path)).href);
const { Client } = await load("client/index.js");
const { StreamableHTTPClientTransport } = await load("client/streamableHttp.js");

const [url, tool, args] = process.argv.slice(2);
const client = new Client(
  { name: "pmcp-interop-sdk1", version: "1.0.0" },
  { capabilities: { extensions: { "io.modelcontextprotocol/tasks": {} } } },
);
await client.connect(new StreamableHTTPClientTransport(new URL(url)));
let out;
try {
  out = { protocol: client.transport.protocolVersion, result: await client.callTool({ name: tool, arguments: JSON.parse(args) }) };
} catch (error) {
  out = { protocol: client.transport.protocolVersion, error: { code: error.code, message: error.message } };
}
console.log(JSON.stringify(out));
await client.close();
