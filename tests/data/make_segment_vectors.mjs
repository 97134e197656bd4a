// Test vectors for webapp/messaging/segments.py, computed by Twilio's calculator (npm
// `sms-segments-calculator`, github.com/TwilioDevEd/message-segment-calculator), used as it is by
// default: encoding "auto", no smart encoding. Neither node_modules nor Twilio's code lives in the repo.
//
// How to run it (from the repository root):
//   npm install --prefix /tmp/segcalc sms-segments-calculator@1.3.0
//   node tests/data/make_segment_vectors.mjs --corpus > /tmp/segment_corpus.json   # the built-in corpus
//   node tests/data/make_segment_vectors.mjs /tmp/segcalc < /tmp/segment_corpus.json > tests/data/segment_vectors.json
//
// stdin (the corpus) is JSON: a list of strings, or of {id, text, expected_difference?} objects, or a
// vectors file made by this script (so the committed file can be fed back in to recompute it).
//
// Each vector: id, text, and what the calculator says: encoding ("GSM-7" | "UCS-2"), segments, units
// (septets or UTF-16 code units: the message size in bits without the headers, / 7 or / 16),
// segment_units (units per part, as the calculator splits them), characters (numberOfUnicodeScalars),
// number_of_characters (its numberOfCharacters: septets for GSM-7, graphemes for UCS-2) and
// ucs2_characters (distinct code points the calculator finds non-GSM on their own, first appearance
// first; [] for a GSM-7 message). `expected_difference` marks the few vectors where our counter follows
// GSM 03.38 and our contract instead: {reason, ours: {field: value}}.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

// ---------------------------------------------------------------- the corpus

const EXTENSION = { euro: '€', lbrace: '{', rbrace: '}', lbracket: '[', rbracket: ']', tilde: '~',
  backslash: '\\', pipe: '|', caret: '^', formfeed: '\f' };

// Deterministic PRNG (mulberry32) so the random part of the corpus is the same on every run.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ascii = (n) => {
  const base = 'The quick brown fox jumps over the lazy dog 0123456789. ';
  return base.repeat(Math.ceil(n / base.length) + 1).slice(0, n);
};

function buildCorpus() {
  const c = [];
  const add = (id, text, extra = {}) => c.push({ id, text, ...extra });

  add('empty', '', { expected_difference: {
    reason: 'The calculator always has one (empty) segment; our contract says 0 parts for the empty text (nothing is sent).',
    ours: { segments: 0 } } });
  for (const n of [1, 159, 160, 161, 305, 306, 307, 459, 460]) add(`ascii_${n}`, ascii(n));
  add('ascii_a_160', 'a'.repeat(160));
  add('ascii_a_161', 'a'.repeat(161));

  // Extension characters: alone, and with the escape pair straddling the 153-septet boundary.
  for (const [name, ch] of Object.entries(EXTENSION)) {
    add(`ext_${name}`, ch);
    add(`ext_${name}_straddle`, 'a'.repeat(152) + ch + 'a'.repeat(152)); // 306 septets, 3 parts
  }
  add('ext_all', Object.values(EXTENSION).join(''));
  add('ext_euro_152_plus_10', 'a'.repeat(152) + '€' + 'a'.repeat(10));
  add('ext_euro_153_plus_10', 'a'.repeat(153) + '€' + 'a'.repeat(10));
  add('ext_euro_at_306', 'a'.repeat(305) + '€' + 'a'.repeat(5)); // second boundary
  add('ext_euro_159_chars', 'a'.repeat(158) + '€'); // 160 septets: one part
  add('ext_euro_160_chars', 'a'.repeat(159) + '€'); // 161 septets
  add('ext_euro_161_chars', '€' + 'a'.repeat(160));
  add('ext_euro_160_chars_mid', 'a'.repeat(80) + '€' + 'a'.repeat(79));
  add('ext_many_braces', '{x}'.repeat(60));
  add('ext_only_euros_80', '€'.repeat(80)); // 160 septets
  add('ext_only_euros_81', '€'.repeat(81)); // 162 septets, every boundary on a pair

  // Newlines and carriage returns (LF and CR are GSM basic; CRLF is two septets).
  add('lf', 'Hi\nthere');
  add('cr', 'Hi\rthere');
  add('crlf', 'Hi\r\nthere');
  add('crlf_lines', 'Line one\r\nLine two\r\nLine three\r\n');
  add('lf_160', ('abcdefghi\n').repeat(16));
  add('crlf_161', ('abcdefg\r\n').repeat(18).slice(0, 161));
  add('crlf_straddle', 'a'.repeat(152) + '\r\n' + 'a'.repeat(10));
  add('crlf_ucs2', 'Hej ç\r\nok');

  // GSM basic letters people expect to be "special" (they are not) and Greek capitals.
  const basicLetters = ['é', 'ñ', 'ü', 'Ä', 'Ö', 'Å', 'Ø', 'Æ', 'ß', 'à', 'ò', 'Ç', 'è', 'ù', 'ì', 'É', 'Ñ', 'Ü',
    'ä', 'ö', 'å', 'ø', 'æ', '£', '¥', '¤', '¡', '¿', '§', '@', '$', '_',
    'Δ', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ'];
  for (const ch of basicLetters) add(`gsm_U+${ch.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`, ch);
  add('gsm_accents_sentence', 'Señor Müller, Ærø, Øst, Åse, Straße, à bientôt? Ça va: Δ Φ Γ Λ Ω Π Ψ Σ Θ Ξ');
  add('gsm_whole_basic_table',
    '@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§'
    + '¿abcdefghijklmnopqrstuvwxyzäöñüà');

  // Characters outside GSM: the whole message becomes UCS-2.
  const nonGsm = { c_cedilla: 'ç', backtick: '`', right_quote: '’', tab: '\t', a_acute: 'á', e_circumflex: 'ê',
    o_circumflex: 'ô', oe: 'œ', greek_alpha: 'α', nbsp: '\u00a0', zwsp: '\u200b', en_dash: '–', ellipsis: '…',
    left_dquote: '“', esc: '\x1b', del: '\x7f', cyrillic: 'Ж' };
  for (const [name, ch] of Object.entries(nonGsm)) add(`ucs2_${name}`, ch);
  add('ucs2_c_cedilla_sentence', 'Nous avons bien reçu votre candidature.');
  add('ucs2_backtick_sentence', 'Use the code `RELAY` at the door');
  add('ucs2_right_quote_sentence', 'We’ll call you tomorrow');
  add('ucs2_tab_sentence', 'Name:\tAnna\tRole:\tPicker');
  add('ucs2_chinese', '您好，我们想邀请您参加周二下午两点的面试。请回复“是”确认。');
  add('ucs2_arabic', 'مرحبا، نود دعوتك لإجراء مقابلة يوم الثلاثاء الساعة الثانية. يرجى الرد بنعم للتأكيد.');
  add('ucs2_70', 'ç' + 'a'.repeat(69));
  add('ucs2_71', 'ç' + 'a'.repeat(70));
  add('ucs2_134', 'ç' + 'a'.repeat(133));
  add('ucs2_135', 'ç' + 'a'.repeat(134));
  add('ucs2_201', 'ç' + 'a'.repeat(200));
  add('ucs2_202', 'ç' + 'a'.repeat(201));
  add('ucs2_ext_chars_cost_one', 'ç€{}[]~\\|^\f' + 'a'.repeat(60)); // 71 units: extension chars are 1 unit

  // Emoji, BMP and not, around 70 / 67.
  add('emoji_grin', '😀');
  add('emoji_check_bmp', '✅');
  add('emoji_bmp_70', '✅' + 'a'.repeat(69));
  add('emoji_bmp_71', '✅' + 'a'.repeat(70));
  add('emoji_35_grins', '😀'.repeat(35)); // 70 units
  add('emoji_36_grins', '😀'.repeat(36)); // 72 units
  add('emoji_67_units_then_more', 'a'.repeat(65) + '😀' + 'a'.repeat(10));
  add('emoji_69_plus_grin', 'a'.repeat(68) + '😀'); // 70 units, one part
  add('emoji_70_plus_grin', 'a'.repeat(69) + '😀'); // 71 units
  add('emoji_surrogate_straddle_67', 'ç' + 'a'.repeat(65) + '😀' + 'a'.repeat(66)); // 134 units, 3 parts
  add('emoji_surrogate_straddle_134', 'ç' + 'a'.repeat(132) + '😀' + 'a'.repeat(60)); // at the 2nd boundary
  add('emoji_grins_odd_offset', 'çç' + '😀'.repeat(50)); // 102 units, the boundary falls inside a pair
  add('emoji_thumbs_skin', '👍🏽');
  add('emoji_thumbs_skin_70', 'Thanks ' + '👍🏽' + 'a'.repeat(59)); // 70 units
  add('emoji_thumbs_skin_boundary', 'ç' + 'a'.repeat(64) + '👍🏽' + 'ok'); // a grapheme straddling 67
  add('emoji_family_zwj', '👨‍👩‍👧');
  add('emoji_family_zwj_70', '👨‍👩‍👧' + 'a'.repeat(62)); // 70 units
  add('emoji_family_zwj_71', '👨‍👩‍👧' + 'a'.repeat(63));
  add('emoji_family_zwj_boundary', 'ç' + 'a'.repeat(62) + '👨‍👩‍👧' + 'ok'); // straddles, same part count
  add('emoji_family_zwj_boundary_extra_part', 'ç' + 'a'.repeat(62) + '👨‍👩‍👧' + 'a'.repeat(61), {
    expected_difference: {
      reason: 'The calculator never splits a grapheme cluster (👨‍👩‍👧 is one, 8 code units), so it moves the whole '
        + 'family to part 2 and needs 3 parts; our rule only keeps escape and surrogate pairs '
        + 'whole (part 1 ends after 👨+ZWJ), so its 132 units fit in 2 parts of 66.',
      ours: { segments: 2 } } });
  add('emoji_flag_se', '🇸🇪');
  add('emoji_flags_70', 'Hej från 🇸🇪 och ' + '🇩🇪'.repeat(13)); // 18 + 52 = 70 units
  add('emoji_flags_71', 'Hej från 🇸🇪 och ' + '🇩🇪'.repeat(13) + '!');
  add('emoji_flag_boundary', 'ç' + 'a'.repeat(64) + '🇸🇪' + 'ok'); // straddles, same part count
  add('emoji_heart_vs16', 'Vi ses ❤️');
  add('emoji_mixed_line', 'Intervju bokad ✅ 📅 tisdag 14:00 📍 Göteborg 😀');

  // Realistic recruiting messages.
  add('real_sv', 'Hej Anna! Tack för din ansökan till tjänsten som lagerarbetare på Acme i Göteborg. '
    + 'Vi vill gärna boka en intervju på tisdag kl 14:00. Svara JA för att bekräfta eller ring oss på '
    + '031-123 45 67. Välkommen! Mvh, Erik på Acme Rekrytering');
  add('real_de', 'Hallo Jürgen, vielen Dank für Ihre Bewerbung als Lagerist bei Acme in München. Wir möchten '
    + 'Sie gerne zu einem Vorstellungsgespräch am Dienstag, 14:00 Uhr, in unsere Niederlassung '
    + '(Hauptstraße 12) einladen. Bitte antworten Sie mit JA zur Bestätigung oder NEIN, falls der Termin '
    + 'nicht passt. Mit freundlichen Grüßen, Ihr Acme-Recruiting-Team');
  add('real_fr', 'Bonjour Amélie, merci pour votre candidature au poste de préparatrice de commandes chez Acme à '
    + 'Lyon. Nous aimerions vous proposer un entretien mardi à 14h00. Êtes-vous disponible ? Répondez OUI '
    + 'pour confirmer. Cordialement, l’équipe recrutement d’Acme');
  add('real_fr_gsm', 'Bonjour Amelie, merci pour votre candidature chez Acme a Lyon. Entretien mardi a 14h00 : '
    + 'repondez OUI pour confirmer. A bientot !');
  add('real_en_price', 'Hi Sam, the role pays €18/h + {bonus}. Reply YES to book [Tue 2pm] ~ Acme | Careers');

  // Random texts: a fixed seed, lengths 0–500, from GSM, extension and non-GSM characters. Only
  // characters that are a grapheme on their own (no combining marks, ZWJ, skin tones, flags), so that
  // these vectors test the tables and the packing, not grapheme clustering.
  const gsmPool = [...'@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !"#¤%&\'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§'
    + '¿abcdefghijklmnopqrstuvwxyzäöñüà'];
  const letters = [...'abcdefghijklmnopqrstuvwxyz      eeaaoo'];
  const extPool = Object.values(EXTENSION);
  const nonGsmPool = [...'ç`’\táêôœαЖ–…“中文面试ع', '😀', '🎉', '✅', '☎', '📅'];
  const rand = mulberry32(20240611);
  const pick = (arr) => arr[Math.floor(rand() * arr.length)];
  for (let i = 0; i < 300; i++) {
    const length = Math.floor(rand() * 501);
    const kind = rand();
    // GSM only / GSM + extension / with non-GSM characters; rates vary so some texts have just one.
    const extRate = kind < 0.35 ? 0 : rand() * 0.1;
    const nonGsmRate = kind < 0.7 ? 0 : rand() * rand() * 0.3;
    let text = '';
    for (let j = 0; j < length; j++) {
      const r = rand();
      if (r < nonGsmRate) text += pick(nonGsmPool);
      else if (r < nonGsmRate + extRate) text += pick(extPool);
      else text += rand() < 0.7 ? pick(letters) : pick(gsmPool);
    }
    add(`random_${String(i).padStart(3, '0')}`, text);
  }
  return c;
}

// ---------------------------------------------------------------- the calculator

function loadCalculator(dir) {
  const require = createRequire(path.join(path.resolve(dir), 'package.json'));
  const { SegmentedMessage } = require('sms-segments-calculator');
  const { version } = require('sms-segments-calculator/package.json');
  return { SegmentedMessage, version };
}

function vector(SegmentedMessage, entry, nonGsmCache) {
  const m = new SegmentedMessage(entry.text); // encoding "auto", smartEncoding false: the defaults
  const bits = m.encodingName === 'GSM-7' ? 7 : 16;
  const segmentUnits = m.segments.map((s) => s.messageSizeInBits() / bits);
  let ucs2Characters = [];
  if (m.encodingName === 'UCS-2') {
    const seen = new Set();
    for (const cp of entry.text) { // code points
      if (seen.has(cp)) continue;
      seen.add(cp);
      if (!nonGsmCache.has(cp)) nonGsmCache.set(cp, new SegmentedMessage(cp).encodingName === 'UCS-2');
      if (nonGsmCache.get(cp)) ucs2Characters.push(cp);
    }
  }
  const v = {
    id: entry.id,
    text: entry.text,
    encoding: m.encodingName,
    segments: m.segmentsCount,
    units: m.messageSize / bits,
    segment_units: segmentUnits,
    characters: m.numberOfUnicodeScalars,
    number_of_characters: m.numberOfCharacters,
    ucs2_characters: ucs2Characters,
  };
  if (entry.expected_difference) v.expected_difference = entry.expected_difference;
  return v;
}

function main() {
  const arg = process.argv[2];
  if (arg === '--corpus') {
    process.stdout.write(JSON.stringify(buildCorpus(), null, 1) + '\n');
    return;
  }
  if (!arg) {
    process.stderr.write('usage: make_segment_vectors.mjs --corpus | make_segment_vectors.mjs CALCULATOR_DIR < corpus.json\n');
    process.exit(2);
  }
  const { SegmentedMessage, version } = loadCalculator(arg);
  let corpus = JSON.parse(readFileSync(0, 'utf8'));
  if (!Array.isArray(corpus)) corpus = corpus.vectors;
  const entries = corpus.map((e, i) => (typeof e === 'string' ? { id: `text_${i}`, text: e } : e));
  const ids = new Set();
  for (const e of entries) {
    if (ids.has(e.id)) throw new Error(`duplicate id ${e.id}`);
    ids.add(e.id);
  }
  const cache = new Map();
  const vectors = entries.map((e) => vector(SegmentedMessage, e, cache));
  // One vector per line: reviewable diffs when the calculator or the corpus changes.
  const head = {
    calculator: 'sms-segments-calculator',
    calculator_version: version,
    calculator_options: 'new SegmentedMessage(text): encoding "auto", smartEncoding false (the defaults)',
    generated_by: 'tests/data/make_segment_vectors.mjs',
  };
  const lines = Object.entries(head).map(([k, v]) => ` ${JSON.stringify(k)}: ${JSON.stringify(v)},`);
  process.stdout.write('{\n' + lines.join('\n') + '\n "vectors": [\n'
    + vectors.map((v) => '  ' + JSON.stringify(v)).join(',\n') + '\n ]\n}\n');
}

main();
