// Runs the UpscalerJS ESRGAN layers models with the real TF.js executor (tfjs-layers + CPU backend)
// on seeded 16x16 images and writes their outputs as the fixture that
// tests/engine/nets/test_tfjs_layers.py compares engine/nets/tfjs_layers.py against.
// Inputs are bytes / 255 * the model's value range (255 for the RDN slim and medium models, 1 for
// the RRDN thick ones); inputs and outputs are stored as base64 (uint8 and little-endian float32).
//
// Re-run (needs node >= 18 and the npm registry; models from scripts/fetch_esrgan.sh):
//   scripts/esrgan_reference.sh
// which installs @tensorflow/tfjs-core, -layers and -backend-cpu (pinned) in a temp dir and runs
//   TFJS_DIR=<that dir> node scripts/esrgan_reference.mjs vendor/upscalerjs \
//       tests/engine/nets/fixtures/esrgan_reference.json
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(path.join(process.env.TFJS_DIR || process.cwd(), 'package.json'));
const tf = require('@tensorflow/tfjs-core');
require('@tensorflow/tfjs-backend-cpu');
const tfl = require('@tensorflow/tfjs-layers');

const [modelDir = 'vendor/upscalerjs', outFile = 'tests/engine/nets/fixtures/esrgan_reference.json'] = process.argv.slice(2);
const SIZE = 16;
const CASES = [
  ['slim', 2, 255, 1], ['medium', 2, 255, 2], ['thick', 2, 1, 3], ['slim', 4, 255, 4],
];

// The two custom layers of the thick (RRDN) models, written from their documented behaviour:
// MultiplyBeta scales by 0.2; PixelShuffle<n>x is depthToSpace with block n, NHWC.
class MultiplyBeta extends tfl.layers.Layer {
  static className = 'MultiplyBeta';
  call(inputs) { return tf.mul(Array.isArray(inputs) ? inputs[0] : inputs, 0.2); }
}
for (const n of [2, 3, 4, 8]) {
  const cls = class extends tfl.layers.Layer {
    static className = `PixelShuffle${n}x`;
    computeOutputShape(shape) { return [shape[0], shape[1] && shape[1] * n, shape[2] && shape[2] * n, shape[3] / (n * n)]; }
    call(inputs) { return tf.depthToSpace(Array.isArray(inputs) ? inputs[0] : inputs, n, 'NHWC'); }
  };
  tf.serialization.registerClass(cls);
}
tf.serialization.registerClass(MultiplyBeta);

function mulberry32(seed) {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = ((t + Math.imul(t ^ (t >>> 7), 61 | t)) | 0) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

// A smooth gradient with an edge and some noise: bytes, HWC.
function image(seed) {
  const rng = mulberry32(seed);
  const base = [rng() % 256, rng() % 256, rng() % 256];
  const img = new Uint8Array(SIZE * SIZE * 3);
  for (let y = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++) {
      for (let c = 0; c < 3; c++) {
        const edge = x + y > SIZE ? 60 : 0;
        const v = base[c] * 0.6 + (x * 5 + y * 3 * c) + edge + (rng() % 21) - 10;
        img[(y * SIZE + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return img;
}

async function load(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
  const specs = json.weightsManifest.flatMap((g) => g.weights);
  const buffers = json.weightsManifest.flatMap((g) => g.paths.map((p) => fs.readFileSync(path.join(dir, p))));
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tfl.loadLayersModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData }));
}

const b64 = (typed) => Buffer.from(typed.buffer, typed.byteOffset, typed.byteLength).toString('base64');
const cases = [];
for (const [size, scale, range, seed] of CASES) {
  const model = await load(path.join(modelDir, size, `x${scale}`));
  const bytes = image(seed);
  const x = tf.tensor4d(Float32Array.from(bytes, (v) => (v / 255) * range), [1, SIZE, SIZE, 3]);
  const y = model.predict(x);
  const out = new Float32Array(await y.data());
  cases.push({ model: `${size}/x${scale}`, scale, value_range: range, shape: y.shape, input: b64(bytes), output: b64(out) });
  console.log(`${size} x${scale}: output ${y.shape}, mean ${out.reduce((a, b) => a + b, 0) / out.length}`);
  tf.dispose([x, y]);
  model.dispose();
}
const fixture = { about: 'TF.js 4.22.0 (tfjs-layers, CPU backend) outputs of @upscalerjs/esrgan-* 1.0.0; see scripts/esrgan_reference.mjs', size: SIZE, cases };
fs.writeFileSync(outFile, JSON.stringify(fixture, null, 1) + '\n');
