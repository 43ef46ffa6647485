// One timed run of OpenMined PSI's two-party protocol (psi.js, WebAssembly),
// for mpsi's peer comparison (bench/peers/README.md).
//
//   node bench.mjs --n 65536 --mode intersection|cardinality [--ds gcs|raw|bloom] [--fpr 1e-9] [--reps 1]
//   node bench.mjs --table results.jsonl     # print the summary table of a run.sh run
//
// Both parties hold n elements, n/2 of them in common. One run is the whole
// protocol as in the package README, in one process and one thread: the
// client creates its request, the server creates its setup message and
// processes the request, every message is serialised and deserialised, and
// the client computes the intersection (revealIntersection = true) or its
// size (false). The result size is checked. Each run prints one JSON line.
// Element generation is outside the timed region.
import { readFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { performance } from 'node:perf_hooks'
import PSI from '@openmined/psi.js'

function parseArgs(argv) {
  const o = { n: 4096, mode: 'cardinality', ds: 'gcs', fpr: 1e-9, reps: 1, seed: 4, table: null }
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]
    const v = argv[i + 1]
    switch (k) {
      case '--n': o.n = Number(v); i++; break
      case '--mode': o.mode = v; i++; break
      case '--ds': o.ds = v; i++; break
      case '--fpr': o.fpr = Number(v); i++; break
      case '--reps': o.reps = Number(v); i++; break
      case '--seed': o.seed = Number(v); i++; break
      case '--table': o.table = v; i++; break
      default: throw new Error(`unknown argument ${k}`)
    }
  }
  if (!Number.isInteger(o.n) || o.n < 2 || o.n % 2) throw new Error('--n must be an even integer ≥ 2')
  if (!['intersection', 'cardinality'].includes(o.mode)) throw new Error('--mode is intersection or cardinality')
  if (!['gcs', 'raw', 'bloom'].includes(o.ds)) throw new Error('--ds is gcs, raw or bloom')
  // psi.js 2.0.6 sizes the Golomb-compressed set's hash range as
  // numClientInputs^2 / fpr and serialises it with protobuf writeInt64,
  // which throws "Assertion failed" once that reaches 2^63 (n = 2^18 at
  // fpr 1e-9, after all the elliptic-curve work). Raise fpr to the smallest
  // power of ten that keeps it below 2^62; the JSON line records both.
  o.fprRequested = o.fpr
  const minFpr = (o.n * o.n) / 2 ** 62
  if (o.fpr < minFpr) o.fpr = 10 ** Math.ceil(Math.log10(minFpr))
  return o
}

// mulberry32: a seeded PRNG for benchmark inputs (never secrets).
function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// Two sets of n distinct decimal identifiers (up to 20 digits, like mpsi's
// benchmark) with n/2 in common, in independent orders.
function sets(n, seed) {
  const r = rng(seed * 1000003 + n)
  const seen = new Set()
  const all = []
  while (all.length < n + n / 2) {
    const v = (BigInt(Math.floor(r() * 2 ** 32)) << 32n) | BigInt(Math.floor(r() * 2 ** 32))
    const s = v.toString()
    if (seen.has(s)) continue
    seen.add(s)
    all.push(s)
  }
  const client = all.slice(0, n)
  const server = all.slice(n / 2)
  for (let i = server.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    ;[server[i], server[j]] = [server[j], server[i]]
  }
  return { client, server }
}

function runOnce(psi, o, client, server) {
  const reveal = o.mode === 'intersection'
  const ds = { gcs: psi.dataStructure.GCS, raw: psi.dataStructure.Raw, bloom: psi.dataStructure.BloomFilter }[o.ds]
  const t = {}
  let mark = performance.now()
  const lap = (name) => {
    const now = performance.now()
    t[name] = (now - mark) / 1000
    mark = now
  }
  const t0 = mark
  // Server and client instances (key generation).
  const srv = psi.server.createWithNewKey(reveal)
  const cli = psi.client.createWithNewKey(reveal)
  lap('keys_s')
  // 1. Client request.
  const reqBytes = cli.createRequest(client).serializeBinary()
  lap('client_request_s')
  // 2. Server setup and response.
  const setupBytes = srv.createSetupMessage(o.fpr, client.length, server, ds).serializeBinary()
  lap('server_setup_s')
  const respBytes = srv.processRequest(psi.request.deserializeBinary(reqBytes)).serializeBinary()
  lap('server_response_s')
  // 3. Client result.
  const setup = psi.serverSetup.deserializeBinary(setupBytes)
  const resp = psi.response.deserializeBinary(respBytes)
  const size = reveal ? cli.getIntersection(setup, resp).length : cli.getIntersectionSize(setup, resp)
  lap('client_result_s')
  const total = (mark - t0) / 1000
  srv.delete()
  cli.delete()
  return {
    total_s: total,
    ...t,
    result_size: size,
    bytes: { request: reqBytes.length, setup: setupBytes.length, response: respBytes.length },
  }
}

function table(path) {
  const rows = readFileSync(path, 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
  const best = new Map()
  for (const r of rows) {
    const key = `${r.mode}/${r.n}`
    const prev = best.get(key)
    if (r.status === 'ok' && (!prev || prev.status !== 'ok' || r.total_s < prev.total_s)) best.set(key, { ...r, runs: (prev?.runs ?? 0) + 1 })
    else if (!prev) best.set(key, { ...r, runs: 1 })
    else prev.runs++
  }
  const out = [...best.values()].sort((a, b) => (a.mode < b.mode ? -1 : a.mode > b.mode ? 1 : a.n - b.n))
  const pad = (s, w) => String(s).padStart(w)
  console.log(`${'mode'.padEnd(13)}${pad('n', 9)}${pad('ds', 6)}${pad('runs', 5)}${pad('best total s', 14)}${pad('elems/s/party', 15)}${pad('result', 9)}  status`)
  for (const r of out) {
    const ok = r.status === 'ok'
    console.log(
      `${r.mode.padEnd(13)}${pad(r.n, 9)}${pad(r.ds ?? '', 6)}${pad(r.runs, 5)}` +
        `${pad(ok ? r.total_s.toFixed(3) : '-', 14)}${pad(ok ? Math.round(r.elems_per_s_per_party) : '-', 15)}` +
        `${pad(ok ? r.result_size : '-', 9)}  ${r.status}`
    )
  }
}

const o = parseArgs(process.argv.slice(2))
if (o.table) {
  table(o.table)
} else {
  const psi = await PSI()
  const { client, server } = sets(o.n, o.seed)
  for (let rep = 0; rep < o.reps; rep++) {
    const load = loadavg()
    const r = runOnce(psi, o, client, server)
    const want = o.n / 2
    const line = {
      peer: 'openmined-psi.js',
      version: psi.package.version,
      mode: o.mode,
      ds: o.ds,
      fpr: o.fpr,
      fpr_requested: o.fprRequested,
      n: o.n,
      rep,
      ...r,
      want_size: want,
      elems_per_s_per_party: o.n / r.total_s,
      status: r.result_size === want ? 'ok' : 'wrong_size',
      loadavg_before: load.map((x) => Number(x.toFixed(2))),
      loadavg_after: loadavg().map((x) => Number(x.toFixed(2))),
      node: process.version,
      date: new Date().toISOString(),
    }
    console.log(JSON.stringify(line))
    if (line.status !== 'ok') process.exitCode = 2
  }
}
