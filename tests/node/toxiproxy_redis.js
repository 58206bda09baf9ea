// Drives chaos-ctl's Toxiproxy API with the unmodified npm clients, as a Toxiproxy user's test
// would: node toxiproxy_redis.js API_URL REDIS_HOST:PORT. Fails (exit 1) at the first step that
// does not behave as Toxiproxy's would; prints what it measured.
const { Toxiproxy } = require("toxiproxy-node-client");
const { createClient } = require("redis");
const net = require("net");

const [api, upstream] = process.argv.slice(2);
const LATENCY = 200;

async function redisAt(listen) {
  const client = createClient({ url: `redis://${listen}`, socket: { reconnectStrategy: false } });
  client.on("error", () => {});
  await client.connect();
  return client;
}

async function pingMs(client) {
  const start = process.hrtime.bigint();
  const answer = await client.ping();
  if (answer !== "PONG") throw new Error(`PING answered ${answer}`);
  return Number(process.hrtime.bigint() - start) / 1e6;
}

function refused(listen) {
  const [host, port] = [listen.slice(0, listen.lastIndexOf(":")), listen.slice(listen.lastIndexOf(":") + 1)];
  return new Promise((resolve) => {
    const s = net.connect({ host, port: Number(port) });
    s.on("connect", () => { s.destroy(); resolve(false); });
    s.on("error", (e) => resolve(e.code === "ECONNREFUSED"));
  });
}

async function main() {
  const toxiproxy = new Toxiproxy(api);
  console.log(`version ${await toxiproxy.getVersion()}`.trim());
  const proxy = await toxiproxy.createProxy({ name: "redis", listen: "127.0.0.1:0", upstream });
  console.log(`proxy ${proxy.name} listen ${proxy.listen} enabled ${proxy.enabled}`);
  const client = await redisAt(proxy.listen);
  console.log(`ping_ms ${(await pingMs(client)).toFixed(1)}`);

  const toxic = await proxy.addToxic({ type: "latency", attributes: { latency: LATENCY } });
  const slow = await pingMs(client);
  console.log(`toxic ${toxic.name} ${JSON.stringify(toxic.attributes)} ping_ms ${slow.toFixed(1)}`);
  if (slow < LATENCY) throw new Error(`PING took ${slow} ms under a ${LATENCY} ms latency`);
  await toxic.remove();
  await pingMs(client);
  console.log("toxic removed");

  const down = await proxy.update({ enabled: false });
  if (down.enabled !== false) throw new Error("the proxy is still enabled");
  if (!(await refused(proxy.listen))) throw new Error("a disabled proxy accepted a connection");
  let closed = false;
  try { await client.ping(); } catch (e) { closed = true; }
  if (!closed) throw new Error("a connection through a disabled proxy still answered");
  console.log("disabled: refused and closed");
  const up = await proxy.update({ enabled: true });
  const again = await redisAt(up.listen);
  await pingMs(again);
  console.log("enabled: served");

  await proxy.addToxic({ type: "timeout", attributes: { timeout: 0 } });
  await toxiproxy.reset();
  const left = (await toxiproxy.getApi().get(`${api}/proxies/redis/toxics`)).data;
  if (left.length !== 0) throw new Error(`reset left toxics ${JSON.stringify(left)}`);
  await pingMs(again);
  console.log("reset: no toxics");
  await again.quit();
  await proxy.remove();
  console.log("ok");
}

main().then(() => process.exit(0), (e) => { console.error(`FAILED: ${e.stack || e}`); process.exit(1); });
