// Generates textenc/testdata/t5_cases.json: T5 token ids from the official Hugging Face tokenizers
// library (Rust, npm package tokenizers@0.23.2) for the SD3 (t5/tokenizer.json, prepend "always")
// and FLUX (t5/flux/tokenizer.json, prepend "first") tokenizer files.
//
//   NODE_PATH=/path/to/node_modules node textenc/testdata/gen_t5_ids.js [shared/tokenizers dir]
//
// Keys: cases (hand-written prompts, repeated-char runs, seeded synthetic prompts), random (seeded
// random Unicode strings). Per case: text, sd3, flux (ids incl. EOS, no padding); sd3_exact /
// flux_exact only where a tokenizer built from the exact float32 scores (Unigram.init with the
// correctly rounded scores, as transformers' in-process spiece.model conversion has them) differs
// from the file's serde-parsed scores. "padded": truncation+padding (setTruncation + setPadding,
// pad id 0) on sd3. "added": extra added tokens (every flag combination) appended to the SD3 file,
// with the library's ids.
'use strict';
const fs = require('fs');
const path = require('path');
const { Tokenizer, Unigram, AddedToken } = require('tokenizers');

const shared = process.argv[2] || path.join(__dirname, '../../../shared/tokenizers');
const sd3File = path.join(shared, 't5/tokenizer.json');
const fluxFile = path.join(shared, 't5/flux/tokenizer.json');

function exactTokenizer(file) {
  const t = Tokenizer.fromFile(file);
  const j = JSON.parse(fs.readFileSync(file, 'utf8')); // JSON.parse rounds correctly
  t.setModel(Unigram.init(j.model.vocab, { unkId: j.model.unk_id }));
  return t;
}

const rep = (s, n) => s.repeat(n);
const prompts = [
  // plain prompts
  'a photo of a cat', 'A Photo Of A CAT, Highly Detailed, 8K UHD, DSLR',
  'a majestic lion standing on a rock at sunset, golden hour lighting, cinematic, 35mm film grain',
  'portrait of an old fisherman, wrinkles, weathered skin, dramatic chiaroscuro, oil painting',
  'isometric pixel art of a cozy coffee shop, warm colors, 16-bit',
  'An astronaut riding a horse on the moon; photorealistic; NASA archive photo (1969)',
  'cyberpunk city street at night, neon signs, rain reflections, blade runner style',
  '(masterpiece:1.2), [blurry], {best quality}, ((ultra detailed)), <lora:foo:0.8>',
  'Hello, world! It\'s a beautiful day... isn\'t it? (yes) [no] {maybe} #tag @user 50% & more; a:b "quoted"',
  'dog\'s they\'re I\'LL you\'d can\'t won\'t shouldn\'t\'ve y\'all o\'clock',
  'snake_case_words and kebab-case-words and CamelCaseWords and ALLCAPS',
  'supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis',
  // numbers, URLs, markup
  '3 apples and 42 oranges cost $12.50 in 2024, 1,000,000 stars, 3.14159, 1st 2nd 3rd',
  '0 00 007 1e10 -5 +7 12:30pm 2024-01-31 10/10 1/2 3x4 1080p 4k 60fps',
  'https://example.com/path?query=1&b=2#frag and www.test.org/index.html',
  'mail me at first.last+tag@example.co.uk or <b>bold</b> <i>html</i> &amp; &lt;',
  '`code` ~tilde~ ^caret^ |pipe| \\backslash\\ /slash/ *star* =eq= +plus+',
  // CJK, kana, hangul
  '一只可爱的猫坐在窗台上', '東京タワーの夜景、きれいな写真', '한국어 문장입니다. 고양이 사진',
  'ｶﾀｶﾅ halfwidth katakana ｶﾞｷﾞ ﾊﾟ', 'か\u3099 が ぱ は\u309a', '漢字とひらがなとカタカナのmix文',
  '各\u1100\u1161\u11a8 \u1100\u1161 ㄱㅏ 각', '中文，標點。「引號」『書名』！？',
  // accents and other scripts
  'café naïve résumé façade jalapeño Ångström Œuvre', 'Straße groß Größe Fuß', 'Ελληνικά γλώσσα ΟΔΟΣ',
  'Москва — столица России', 'İstanbul ΟΔΟΣ Ω K ſ ß ẞ', 'ğüşıöç Çalışkan', 'Tiếng Việt có dấu đầy đủ',
  'مرحبا بالعالم', 'שלום עולם', 'नमस्ते दुनिया क्षत्रिय', 'สวัสดีครับ ภาษาไทย', 'தமிழ் மொழி',
  'ქართული ენა', 'Հայերեն', 'ᚠᚢᚦᚨᚱᚲ runes', 'Ṁöŧłëŷ Ĉŕüë', 'Ꭰ Cherokee ᏣᎳᎩ',
  // decomposed accents, combining marks, grapheme sizes
  'e\u0301', 'cafe\u0301', 'A\u030a', 'o\u0308\u0304', 'a\u0301\u0302', 'a\u0301\u0302\u0303',
  'e\u0301\u0301', 'e\u0301\u0301\u0301', '\uff21\u0301', '\uff21\u0301\u0301', 'n\u0303o', ' \u0301',
  '\u0301a', 'x\u20dd', '\u0915\u094d\u0937', 'ff\u0301 \ufb00\u0301', '\u00bd\u0301', '1\u20e3',
  // ligatures, fullwidth, compatibility
  'ﬁ ﬂ ﬀ ﬃ ﬄ ﬅ', 'ＡＢＣ１２３ ｆｕｌｌｗｉｄｔｈ！', '①②③ ² ½ ™ ㎏ ㈱ № ℃ Ⅻ', '𝐀𝐁𝐂 𝕏 𝓗𝓮𝓵𝓵𝓸',
  '＜unk＞ ＜/s＞ ＜extra_id_1＞', '…‥ ‼ ⁇ ﹏ ︵', '“curly” ‘quotes’ — em – en … ellipsis',
  // zero-width and invisible chars
  'a\u200bb', '\u200b', 'zero\u200cwidth\u200djoiner', '\ufeffbom', 'soft\u00adhyphen', 'word\u2060joiner',
  '\u2061\u2062\u2063', 'a\u180eb', '\u200e\u200fdir marks', 'tag\udb40\udc41chars', 'a\u034fb',
  // emoji
  '🐶', 'a cute dog 🐶 wearing a red hat 🎩 ❤️ 👍🏽', '👨‍👩‍👧‍👦 family', '🏳️‍🌈 flag', '🇫🇷🇩🇪 flags',
  '🇫🇷🇩', '#️⃣ keycap', '👩🏽‍🚀 astronaut ✌🏿', '🐶🐶🐶', '😀x😀', '©®™ ‼️', '🫠 🪿 new emoji',
  'emoji\u200d🐶', '☺\ufe0f ☺\ufe0e', '👋🏻👋🏼👋🏽👋🏾👋🏿',
  // whitespace
  'a\u00a0b', 'a\u3000b', 'a\tb', 'a\nb', 'a\r\nb', 'a\rb', 'a\n\nb', '\r\n\r\n', 'tab\t\tseparated\tvalues',
  ' leading', '  two leading', 'trailing ', 'trailing two  ', 'a  b', 'a   b', 'a    b', 'a \t b', ' ',
  '   ', '\t', '\n', '', '\u2028line\u2029para', 'nel\u0085char', '\u00a0\u00a0nbsp lead', 'x\u2003y\u2009z',
  '  Leading and   multiple   spaces\tand\ttabs\nand newlines  ',
  // the replacement char itself, controls, odd code points
  '▁', '▁▁a', 'a▁b', ' ▁ ', '\u0000', 'a\u0000b', '\u0001\u0002\u001f', 'del\u007fete', '\ufffd', '\ue000pua',
  '\u0080\u009f c1', '\uffff', '\u{10ffff}', '\u{1d11e} music',
  // special-token literals (SD3 strips spaces around <extra_id_N>, FLUX does not)
  '<extra_id_1>', 'x<extra_id_1>y', 'a <extra_id_0> b', '  <extra_id_5>  x', 'x  <extra_id_5>  ',
  '</s>', 'a</s>b', 'a </s> b', '<pad>', '<unk>', '<pad><unk></s>', '<extra_id_99>', '<extra_id_100>',
  '<extra_id_1', '<<extra_id_1>>', '<extra_id_1><extra_id_2>', '\t<extra_id_3>\n', 'x\u00a0<extra_id_7>\u3000y',
  '<extra_id_10><extra_id_1>0', 'prompt </s> negative', '<s> bos </S> <PAD>',
];
// repeated characters: every dash run up to 60 (ties at 3k+1), and other runs
for (let n = 1; n <= 60; n++) prompts.push(rep('-', n));
for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20]) prompts.push(rep('m', n), rep('o', n), rep('z', n));
for (const c of ['=', '.', '!', '_', '*', '~', '#', 'x', 'a', '0', '9', 'ー', '…', '🐶', 'é']) {
  for (const n of [2, 5, 13, 46]) prompts.push(rep(c, n));
}
prompts.push('word ' + rep('-', 46) + ' word', rep('- ', 30), rep('ab', 25), rep('abc ', 20));
// long prompts (> 512 tokens) and a 77-token-ish benchmark prompt
const sentence = 'A highly detailed photograph of a red fox in a snowy forest, soft morning light, bokeh. ';
prompts.push(rep(sentence, 30), rep(sentence, 80), rep('ﬁ①é👍🏽 ', 200), rep('token ', 600));
// seeded synthetic prompts
const words = ['cat', 'dog', 'castle', 'neon', 'forest', 'portrait', 'cinematic', 'octane', 'render',
  'ultra', 'detailed', 'HDR', '8k', 'trending', 'artstation', 'by', 'greg', 'rutkowski', 'bokeh',
  'Ñandú', 'naïve', '東京', '서울', 'café', 'über', '🐱', '❤️', '(', ')', '[', ']', ':1.3', ',', '.', '!',
  '--', '---', '  ', '\t', '\u00a0', '\u3000', 'ﬁ', 'Ｘ', '\u0301', "'s", '<extra_id_2>', '</s>', 'zzz',
  'mmmm', 'oooooo', '1920x1080', 'f/1.8', '$100', '50%', 'e\u0301', '\u200b', '👍🏽', '🇯🇵'];
// mulberry32: a small deterministic PRNG (exact 32-bit integer arithmetic)
function prng(seed) {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) % n);
  };
}
const rnd = prng(20240917);
for (let i = 0; i < 80; i++) {
  const len = 1 + rnd(40);
  let s = '';
  for (let k = 0; k < len; k++) s += words[rnd(words.length)] + (rnd(4) === 0 ? '' : ' ');
  prompts.push(s);
}

// seeded random strings over many Unicode blocks plus T5-relevant snippets (key "random")
function randomStrings(n) {
  const r = prng(99);
  const blocks = [[0x20, 0x7e], [0x20, 0x7e], [0x20, 0x7e], [0x0, 0x20], [0x80, 0x24f], [0x250, 0x36f], [0x370, 0x52f],
    [0x590, 0x6ff], [0x900, 0xdff], [0xe00, 0xeff], [0x1100, 0x11ff], [0x1e00, 0x1fff], [0x2000, 0x206f],
    [0x2070, 0x2bff], [0x2e80, 0x2fdf], [0x3000, 0x30ff], [0x3130, 0x33ff], [0x4e00, 0x4eff], [0xa960, 0xa97f],
    [0xac00, 0xac60], [0xd7b0, 0xd7ff], [0xe000, 0xe010], [0xf900, 0xfaff], [0xfb00, 0xfb4f], [0xfe00, 0xfe6f],
    [0xff00, 0xffef], [0xfff0, 0xfffd], [0x1d400, 0x1d7ff], [0x1f000, 0x1faff], [0x1f1e6, 0x1f1ff],
    [0x1f3fb, 0x1f3ff], [0xe0000, 0xe007f], [0x10000, 0x1007f]];
  const snippets = ['\u200d', '\u200c', '\ufe0f', ' ', '  ', '\t', '\n', '\r\n', '<extra_id_3>', '</s>', '<unk>',
    '\u0301', '\u3099', '\uff9e', '-', '---', '▁'];
  const res = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    for (let k = 1 + r(24); k > 0; k--) {
      if (r(5) === 0) { s += snippets[r(snippets.length)]; continue; }
      const [a, b] = blocks[r(blocks.length)];
      const c = a + r(b - a + 1);
      s += String.fromCodePoint(c >= 0xd800 && c <= 0xdfff ? 0x41 : c);
    }
    res.push(s);
  }
  return res;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function main() {
  const sd3 = Tokenizer.fromFile(sd3File);
  const flux = Tokenizer.fromFile(fluxFile);
  const sd3x = exactTokenizer(sd3File);
  const fluxx = exactTokenizer(fluxFile);
  const encodeAll = async (texts) => {
    const seen = new Set();
    const cases = [];
    for (const text of texts) {
      if (seen.has(text)) continue;
      seen.add(text);
      const c = { text };
      c.sd3 = (await sd3.encode(text)).getIds();
      c.flux = (await flux.encode(text)).getIds();
      const a = (await sd3x.encode(text)).getIds();
      const b = (await fluxx.encode(text)).getIds();
      if (!same(a, c.sd3)) c.sd3_exact = a;
      if (!same(b, c.flux)) c.flux_exact = b;
      cases.push(c);
    }
    return cases;
  };
  const cases = await encodeAll(prompts);
  const random = await encodeAll(randomStrings(1000));
  const padded = [];
  const padTexts = ['a photo of a cat', '', rep(sentence, 30), rep('token ', 600), 'x<extra_id_1>y z'];
  for (const maxLength of [1, 2, 4, 77, 256, 512]) {
    const t = Tokenizer.fromFile(sd3File);
    t.setTruncation(maxLength);
    t.setPadding({ maxLength, padId: 0, padToken: '<pad>' });
    for (const text of padTexts) padded.push({ text, max_length: maxLength, sd3: (await t.encode(text)).getIds() });
  }
  // extra added tokens with every flag (T5's own are all normalized=false, and their lstrip is
  // invisible behind Strip(right)): tokenizer.json added_tokens entries + ids from the library
  const extra = [
    { content: 'XQZW', single_word: true, lstrip: false, rstrip: false, normalized: false },
    { content: 'QZW', single_word: false, lstrip: false, rstrip: false, normalized: false },
    { content: 'ØØ', single_word: false, lstrip: true, rstrip: true, normalized: false },
    { content: 'ǅ', single_word: false, lstrip: false, rstrip: false, normalized: true },
    { content: 'Ǆx', single_word: true, lstrip: false, rstrip: false, normalized: true },
    { content: 'ŊŊ', single_word: false, lstrip: true, rstrip: false, normalized: true },
  ];
  const ta = Tokenizer.fromFile(sd3File);
  ta.addAddedTokens(extra.map((e) => new AddedToken(e.content, false,
    { singleWord: e.single_word, leftStrip: e.lstrip, rightStrip: e.rstrip, normalized: e.normalized })));
  for (const e of extra) { e.id = ta.tokenToId(e.content); e.special = false; }
  const addedCases = [];
  for (const text of ['aXQZW', 'a XQZW b', 'XQZW', 'XQZWQZW', 'QZW_XQZW', 'a\u00a0ØØ\u3000 b', 'a ØØØØ b', ' ØØ', 'ØØ ',
    'x ǅ y', 'xǅy', 'ＤŽ', 'a\u01c4x b', '\u01c4x', 'ǅǅ', 'a ŊŊ b', 'a  ŊŊ', 'ŊŊŊ', 'x<extra_id_1> ØØ ǅ</s>']) {
    addedCases.push({ text, sd3: (await ta.encode(text)).getIds() });
  }
  const out = {
    about: 'T5 ids (incl. EOS 1, no padding) from HF tokenizers 0.23.2 (npm tokenizers) on shared/tokenizers/t5/tokenizer.json (sd3) and t5/flux/tokenizer.json (flux); *_exact where exact float32 scores change the result; padded = setTruncation+setPadding(pad 0) on sd3. Generated by gen_t5_ids.js.',
    cases,
    random,
    padded,
    added: { tokens: extra, cases: addedCases },
  };
  const dst = path.join(__dirname, 't5_cases.json');
  fs.writeFileSync(dst, JSON.stringify(out) + '\n');
  const nx = cases.filter((c) => c.sd3_exact || c.flux_exact).length;
  const nf = cases.filter((c) => !same(c.sd3, c.flux)).length;
  console.log(`${cases.length} cases + ${random.length} random (${nf} differ sd3/flux, ${nx} differ with exact scores), ${padded.length} padded -> ${dst}`);
}
main();
