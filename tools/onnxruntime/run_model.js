#!/usr/bin/env node
// Runs an ONNX model in ONNX Runtime (npm's onnxruntime-node) on tensors read from files and writes
// its outputs to files: quantsim's tests and demo prove their exported models with it
// (tests/testing/onnxruntime.h drives it from C++).
//
//   node run_model.js --model m.onnx --inputs in.json --outputs out.json
//                     [--optimization disabled|basic|extended|all] [--threads N]
//
// Tensor bundle (the format of --inputs and --outputs): a JSON manifest plus one raw data file,
// named by the manifest's "data" (relative to the manifest's folder), holding every tensor's
// elements back to back, little-endian, row-major (C order):
//
//   { "data": "in.bin",
//     "runs": [ { "x": { "dtype": "float32", "shape": [2, 3], "offset": 0, "bytes": 24 } },
//               { "x": { "dtype": "float32", "shape": [5, 3], "offset": 24, "bytes": 60 } } ] }
//
// Each element of "runs" is one session.run() with the named inputs; the model is loaded once, so
// a batch file of many runs costs one process and one session. The outputs bundle has the same
// form, one element per run, holding every output of the model in the model's output order
// (manifest "output_names" lists it). dtypes: float32, float64, int64, int32, int8, uint8, bool.
//
// ONNX Runtime is found in $QUANTSIM_ONNXRUNTIME_DIR (a folder holding node_modules/onnxruntime-node,
// as scripts/setup.sh installs it), else in ${XDG_CACHE_HOME:-~/.cache}/quantsim/onnxruntime-node-
// <the version tools/onnxruntime/package.json pins>. Exit status 0 on success; 2 for bad arguments;
// 1 with the runtime's message on stderr when ONNX Runtime fails.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

const kTypedArrays = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

function usage(message) {
  process.stderr.write(`run_model.js: ${message}\n`);
  process.exit(2);
}

function parseArguments(argv) {
  const options = {optimization: 'disabled', threads: 0};
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i];
    const value = argv[i + 1];
    if (value === undefined) usage(`${key} needs a value`);
    if (key === '--model') options.model = value;
    else if (key === '--inputs') options.inputs = value;
    else if (key === '--outputs') options.outputs = value;
    else if (key === '--optimization') options.optimization = value;
    else if (key === '--threads') options.threads = Number(value);
    else usage(`unknown argument ${key}`);
  }
  for (const required of ['model', 'inputs', 'outputs']) {
    if (!options[required]) usage(`--${required} is required`);
  }
  if (!['disabled', 'basic', 'extended', 'all'].includes(options.optimization)) {
    usage(`--optimization must be disabled, basic, extended or all, got ${options.optimization}`);
  }
  return options;
}

function onnxruntimeDir() {
  if (process.env.QUANTSIM_ONNXRUNTIME_DIR) return process.env.QUANTSIM_ONNXRUNTIME_DIR;
  const version = require(path.join(__dirname, 'package.json')).dependencies['onnxruntime-node'];
  const cache = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(cache, 'quantsim', `onnxruntime-node-${version}`);
}

function readBundle(manifestPath, ort) {
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  const data = fs.readFileSync(path.resolve(path.dirname(manifestPath), manifest.data));
  return manifest.runs.map((run) => {
    const feeds = {};
    for (const [name, entry] of Object.entries(run)) {
      const TypedArray = kTypedArrays[entry.dtype];
      if (!TypedArray) throw new Error(`${manifestPath}: input '${name}' has unsupported dtype ${entry.dtype}`);
      // A copy, aligned for the typed array (a Buffer slice need not be).
      const bytes = new Uint8Array(entry.bytes);
      bytes.set(data.subarray(entry.offset, entry.offset + entry.bytes));
      const values = new TypedArray(bytes.buffer);
      feeds[name] = new ort.Tensor(entry.dtype, entry.dtype === 'bool' ? Uint8Array.from(values) : values,
                                   entry.shape);
    }
    return feeds;
  });
}

function writeBundle(manifestPath, outputNames, results) {
  const dataName = path.basename(manifestPath).replace(/\.json$/, '') + '.bin';
  const chunks = [];
  let offset = 0;
  const runs = results.map((result) => {
    const run = {};
    for (const name of outputNames) {
      const tensor = result[name];
      const values = tensor.data;
      const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
      run[name] = {dtype: tensor.type, shape: tensor.dims.map(Number), offset, bytes: bytes.length};
      chunks.push(bytes);
      offset += bytes.length;
    }
    return run;
  });
  const dataPath = path.join(path.dirname(manifestPath), dataName);
  fs.writeFileSync(dataPath, Buffer.concat(chunks));
  fs.writeFileSync(manifestPath, JSON.stringify({data: dataName, output_names: outputNames, runs}));
}

async function main() {
  const options = parseArguments(process.argv.slice(2));
  const ort = require(path.join(onnxruntimeDir(), 'node_modules', 'onnxruntime-node'));
  const sessionOptions = {graphOptimizationLevel: options.optimization};
  if (options.threads > 0) sessionOptions.intraOpNumThreads = options.threads;
  const session = await ort.InferenceSession.create(options.model, sessionOptions);
  const runs = readBundle(options.inputs, ort);
  const results = [];
  for (const feeds of runs) results.push(await session.run(feeds));
  writeBundle(options.outputs, session.outputNames, results);
}

main().catch((error) => {
  process.stderr.write(`run_model.js: ${error && error.message ? error.message : error}\n`);
  process.exit(1);
});
