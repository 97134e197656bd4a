// Throughput of Twilio's sms-segments-calculator on a corpus, for bench/segments_bench.py.
//
//   npm install --prefix /tmp/segcalc sms-segments-calculator@1.3.0
//   node bench/segments_bench.mjs /tmp/segcalc [seconds] < corpus.json      # corpus: a JSON list of strings
//
// Prints one JSON object: {messages_per_second, messages, seconds, calculator_version, node}.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const [dir, secondsArg] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: segments_bench.mjs CALCULATOR_DIR [seconds] < corpus.json\n');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(dir), 'package.json'));
const { SegmentedMessage } = require('sms-segments-calculator');
const { version } = require('sms-segments-calculator/package.json');

const corpus = JSON.parse(readFileSync(0, 'utf8'));
const seconds = Number(secondsArg ?? 3);

let sink = 0; // keeps the work observable so it is not optimised away
for (const text of corpus) sink += new SegmentedMessage(text).segmentsCount; // warm-up: let the JIT settle

let messages = 0;
const start = process.hrtime.bigint();
const deadline = start + BigInt(Math.round(seconds * 1e9));
let now = start;
while (now < deadline) {
  for (const text of corpus) sink += new SegmentedMessage(text).segmentsCount;
  messages += corpus.length;
  now = process.hrtime.bigint();
}
const elapsed = Number(now - start) / 1e9;
process.stdout.write(JSON.stringify({
  messages_per_second: messages / elapsed,
  messages,
  seconds: elapsed,
  calculator_version: version,
  node: process.version,
  checksum: sink,
}) + '\n');
