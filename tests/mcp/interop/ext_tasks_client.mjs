// The official requester: @modelcontextprotocol/client 2.x on 2026-07-28 with
// @modelcontextprotocol/ext-tasks, calling one tool per run and answering elicitations.
// Usage: node ext_tasks_client.mjs URL TOOL ARGS_JSON -- prints {"outcome": ...} or {"error": ...}.
// ext-tasks needs a raw request path for 2026-07-28 task traffic (`rawDispatch`); this one
// posts each request as the stateless wire wants it, with the routing headers.
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const modules = process.env.PMCP_NODE_MODULES;
const load = (name) => import(pathToFileURL(join(modules, name)).href);
const { Client, StreamableHTTPClientTransport } = await load("@modelcontextprotocol/client/dist/index.mjs");
const tasks = await load("@modelcontextprotocol/ext-tasks/dist/client/index.js");

const [url, tool, args] = process.argv.slice(2);
const VERSION = "2026-07-28";
const clientInfo = { name: "pmcp-interop-ext-tasks", version: "1.0.0" };
const clientCapabilities = { extensions: { "io.modelcontextprotocol/tasks": {} } };

const client = new Client(clientInfo, { capabilities: clientCapabilities, versionNegotiation: { mode: { pin: VERSION } } });
await client.connect(new StreamableHTTPClientTransport(new URL(url)));

let next = 1;
async function rawDispatch(request) {
  const body = { jsonrpc: "2.0", id: next++, ...request };
  const name = request.params?.taskId ?? request.params?.name;
  const headers = {
    "Content-Type": "application/json",
    Accept: "application/json, text/event-stream",
    "MCP-Protocol-Version": VERSION,
    "Mcp-Method": request.method,
    ...(typeof name === "string" ? { "Mcp-Name": name } : {}),
  };
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body) });
  let text = await response.text();
  if ((response.headers.get("content-type") ?? "").includes("text/event-stream")) {
    text = text.split("\n").filter((line) => line.startsWith("data:")).map((line) => line.slice(5)).pop();
  }
  const message = JSON.parse(text);
  return message.error ? { kind: "error", error: message.error } : { kind: "result", result: message.result };
}

const session = tasks.createTaskSessionFromClient(client, {
  endpointId: url,
  rawDispatch,
  v2RequestFraming: { protocolVersion: VERSION, clientInfo, clientCapabilities },
  onInputRequest: async (request) => ({ action: "accept", content: { confirm: true } }),
});
let out;
try {
  const execution = await session.callTool(tool, JSON.parse(args));
  const { outcome } = await execution.settle();
  out = { outcome, result: tasks.resultFromTaskOutcome(outcome) };
} catch (error) {
  out = { error: { name: error.name, code: error.code, message: error.message } };
} finally {
  await session.close();
  await client.close();
}
console.log(JSON.stringify(out));
