/**
 * Synthetic Bluesky traffic, shaped exactly like Jetstream v1 JSON events.
 *
 * Everything is derived from a seeded PRNG (sfc32), so the same options give
 * byte-identical output. The mix of kinds and collections follows the live
 * network (mostly likes and follows, ~9% posts); likes, reposts, replies and
 * quotes target posts generated earlier, weighted by a Pareto "appeal" so a few
 * posts collect most engagement and many get none; deletes and updates only
 * ever touch records created earlier in the same stream.
 *
 * Key order follows the wire: the event and commit envelopes use Jetstream's
 * struct order, and records use sorted keys (Jetstream re-encodes the CBOR
 * record through a Go map, which marshals keys in sorted order).
 */
import { createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { finished } from 'node:stream/promises'

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export interface SyntheticOptions {
  /** PRNG seed, default 1. Same seed + same options → same events. */
  seed?: number
  /** Number of events to generate. */
  count: number
  /**
   * time_us of the first event. Default: Date.now()*1000 minus the expected
   * span, so the last event lands at about "now". Pass it explicitly when you
   * need byte-identical output across runs.
   */
  startTimeUs?: number
  /** Average event rate used to space time_us, default 800. */
  eventsPerSecond?: number
  /** Size of the author population, default 5000. */
  authors?: number
}

export interface StrongRef {
  cid: string
  uri: string
}

export interface BlobRef {
  $type: 'blob'
  mimeType: string
  ref: { $link: string }
  size: number
}

export interface AspectRatio {
  height: number
  width: number
}

export interface ImagesEmbed {
  $type: 'app.bsky.embed.images'
  images: Array<{ alt: string; aspectRatio?: AspectRatio; image: BlobRef }>
}

export interface ExternalEmbed {
  $type: 'app.bsky.embed.external'
  external: { description: string; thumb?: BlobRef; title: string; uri: string }
}

export interface VideoEmbed {
  $type: 'app.bsky.embed.video'
  alt?: string
  aspectRatio?: AspectRatio
  video: BlobRef
}

export interface RecordEmbed {
  $type: 'app.bsky.embed.record'
  record: StrongRef
}

export type PostEmbed = ImagesEmbed | ExternalEmbed | VideoEmbed | RecordEmbed

export interface TagFeature {
  $type: 'app.bsky.richtext.facet#tag'
  tag: string
}

export interface LinkFeature {
  $type: 'app.bsky.richtext.facet#link'
  uri: string
}

export interface Facet {
  features: Array<TagFeature | LinkFeature>
  /** UTF-8 byte offsets into the post text, end exclusive. */
  index: { byteEnd: number; byteStart: number }
}

export interface SelfLabels {
  $type: 'com.atproto.label.defs#selfLabels'
  values: Array<{ val: string }>
}

export interface PostRecord {
  $type: 'app.bsky.feed.post'
  createdAt: string
  embed?: PostEmbed
  facets?: Facet[]
  labels?: SelfLabels
  langs?: string[]
  reply?: { parent: StrongRef; root: StrongRef }
  text: string
}

export interface LikeRecord {
  $type: 'app.bsky.feed.like'
  createdAt: string
  subject: StrongRef
}

export interface RepostRecord {
  $type: 'app.bsky.feed.repost'
  createdAt: string
  subject: StrongRef
}

export interface FollowRecord {
  $type: 'app.bsky.graph.follow'
  createdAt: string
  subject: string
}

export type PostCollection = 'app.bsky.feed.post'
export type LikeCollection = 'app.bsky.feed.like'
export type RepostCollection = 'app.bsky.feed.repost'
export type FollowCollection = 'app.bsky.graph.follow'
export type SyntheticCollection = PostCollection | LikeCollection | RepostCollection | FollowCollection

/** A create or update: carries the new record and its CID. */
export interface CommitWrite<C extends SyntheticCollection, R> {
  rev: string
  operation: 'create' | 'update'
  collection: C
  rkey: string
  record: R
  cid: string
}

/** A delete: no record, no cid. */
export interface CommitDelete {
  rev: string
  operation: 'delete'
  collection: SyntheticCollection
  rkey: string
}

export type PostWrite = CommitWrite<PostCollection, PostRecord>
export type LikeWrite = CommitWrite<LikeCollection, LikeRecord>
export type RepostWrite = CommitWrite<RepostCollection, RepostRecord>
export type FollowWrite = CommitWrite<FollowCollection, FollowRecord>
export type JetstreamCommit = PostWrite | LikeWrite | RepostWrite | FollowWrite | CommitDelete

export type AccountStatus = 'deactivated' | 'takendown' | 'deleted' | 'suspended'

export interface IdentityInfo {
  did: string
  handle?: string
  seq: number
  time: string
}

export type AccountInfo =
  | { active: true; did: string; seq: number; time: string }
  | { active: false; did: string; seq: number; status: AccountStatus; time: string }

export interface JetstreamCommitEvent {
  did: string
  time_us: number
  kind: 'commit'
  commit: JetstreamCommit
}

export interface JetstreamIdentityEvent {
  did: string
  time_us: number
  kind: 'identity'
  identity: IdentityInfo
}

export interface JetstreamAccountEvent {
  did: string
  time_us: number
  kind: 'account'
  account: AccountInfo
}

export type JetstreamEvent = JetstreamCommitEvent | JetstreamIdentityEvent | JetstreamAccountEvent

// ---------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------

/**
 * Yields `opts.count` events. Treat them as read-only: later events may share
 * sub-objects with earlier ones (e.g. an update reuses the post's embed).
 */
export function* syntheticEvents(opts: SyntheticOptions): Generator<JetstreamEvent> {
  const world = new World(opts)
  for (let i = 0; i < world.count; i++) yield world.next()
}

/**
 * All events as JSON lines, joined by '\n', with a trailing '\n' ('' for count 0).
 * Lines average ~470 characters, so beyond ~1M events the string would pass
 * V8's maximum string length: use writeSyntheticJsonl() or syntheticEvents().
 */
export function syntheticJsonl(opts: SyntheticOptions): string {
  const lines: string[] = []
  for (const ev of syntheticEvents(opts)) lines.push(JSON.stringify(ev))
  return lines.length === 0 ? '' : lines.join('\n') + '\n'
}

/**
 * Streams the same bytes as syntheticJsonl() to `path` (overwriting it) without
 * holding them all in memory; use it for millions of events.
 */
export async function writeSyntheticJsonl(path: string, opts: SyntheticOptions): Promise<void> {
  const CHUNK = 4 << 20
  // A few chunks may be in flight while the next one is generated.
  const out = createWriteStream(path, { highWaterMark: 4 * CHUNK })
  try {
    let buf = Buffer.allocUnsafe(CHUNK)
    let off = 0
    for (const ev of syntheticEvents(opts)) {
      const line = JSON.stringify(ev)
      // UTF-16 length * 3 bounds the UTF-8 length.
      if (off + line.length * 3 + 1 > buf.length) {
        if (off > 0 && !out.write(buf.subarray(0, off))) await once(out, 'drain') // rejects on 'error'
        buf = Buffer.allocUnsafe(Math.max(CHUNK, line.length * 3 + 1))
        off = 0
      }
      off += buf.write(line, off, 'utf8')
      buf[off++] = 10
    }
    if (off > 0) out.write(buf.subarray(0, off))
    out.end()
    await finished(out)
  } catch (err) {
    out.destroy()
    throw err
  }
}

// ---------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------

/** RFC 4648 base32, lower case: CIDs and did:plc identifiers. */
const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
/** base32-sortable: TIDs. */
const S32 = '234567abcdefghijklmnopqrstuvwxyz'
const B32_CODES = Buffer.from(B32, 'latin1')
const S32_CODES = Buffer.from(S32, 'latin1')
const ALNUM64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const ALNUM62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
/**
 * The character after "bafyrei"/"bafkrei" carries 2 zero bits of the 0x20
 * digest-length byte, and the last character carries 2 bits of padding, so a
 * real sha-256 CIDv1 only has these characters in those positions.
 */
const CID_FIRST = 'abcdefgh'
const CID_LAST = 'aeimquy4'

/**
 * Identifiers are written byte by byte into this scratch buffer and decoded
 * once: that yields flat strings, which JSON.stringify serialises about twice
 * as fast as the rope strings that piecewise concatenation produces.
 */
const SCRATCH = Buffer.allocUnsafe(64)

/** Writes a TID (53-bit microsecond timestamp + 10-bit clock id) at SCRATCH[at..at+13). */
function writeTid(at: number, us: number, clock: number): void {
  const hi = Math.floor(us / 33554432) // bits 25..52
  const lo = us - hi * 33554432 // bits 0..24
  SCRATCH[at] = S32_CODES[(hi >>> 25) & 31]!
  SCRATCH[at + 1] = S32_CODES[(hi >>> 20) & 31]!
  SCRATCH[at + 2] = S32_CODES[(hi >>> 15) & 31]!
  SCRATCH[at + 3] = S32_CODES[(hi >>> 10) & 31]!
  SCRATCH[at + 4] = S32_CODES[(hi >>> 5) & 31]!
  SCRATCH[at + 5] = S32_CODES[hi & 31]!
  SCRATCH[at + 6] = S32_CODES[(lo >>> 20) & 31]!
  SCRATCH[at + 7] = S32_CODES[(lo >>> 15) & 31]!
  SCRATCH[at + 8] = S32_CODES[(lo >>> 10) & 31]!
  SCRATCH[at + 9] = S32_CODES[(lo >>> 5) & 31]!
  SCRATCH[at + 10] = S32_CODES[lo & 31]!
  SCRATCH[at + 11] = S32_CODES[(clock >>> 5) & 31]!
  SCRATCH[at + 12] = S32_CODES[clock & 31]!
}

/** Number of UTF-8 bytes in s[0, end). */
function utf8Length(s: string, end: number): number {
  let n = 0
  for (let i = 0; i < end; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) n += 1
    else if (c < 0x800) n += 2
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < end) {
      n += 4
      i++
    } else n += 3
  }
  return n
}

function capitalize(s: string): string {
  return s.length === 0 ? s : s[0]!.toUpperCase() + s.slice(1)
}

// ---------------------------------------------------------------------------
// Content: per-language templates and topic vocabulary
// ---------------------------------------------------------------------------

const TOPICS = ['cats', 'dogs', 'science', 'space', 'politics', 'music', 'art', 'football', 'cooking', 'coding', 'weather', 'gardening'] as const
const TOPIC_WEIGHTS = [10, 8, 6, 5, 12, 10, 10, 8, 7, 8, 6, 5]

const TOPIC_EMOJI: readonly (readonly string[])[] = [
  ['🐱', '😺', '🐈', '🐈‍⬛'],
  ['🐶', '🐕', '🦮', '🐾'],
  ['🔬', '🧪', '🧬', '📊'],
  ['🚀', '🌌', '🔭', '🪐', '✨'],
  ['🗳️', '📢', '🏛️', '📰'],
  ['🎶', '🎸', '🎧', '🎹'],
  ['🎨', '🖌️', '🖼️', '✏️'],
  ['⚽', '🏆', '🥅', '🔥'],
  ['🍳', '🍜', '🥘', '🍞'],
  ['💻', '⌨️', '🐛', '👩‍💻'],
  ['☀️', '🌧️', '❄️', '⛈️', '🌈'],
  ['🌱', '🌻', '🍅', '🪴'],
]
const TONE_EMOJI: readonly (readonly string[])[] = [
  ['❤️', '😍', '🥰', '😊', '🙌', '💙'],
  ['😡', '😤', '💀', '😞', '🙄', '😩'],
  ['🤔', '👀', '🧵', '🤷'],
]

/** Hashtags (without '#') per topic, English, used by every language. */
const EN_TAGS: readonly (readonly string[])[] = [
  ['cats', 'caturday', 'CatsOfBluesky'],
  ['dogs', 'DogsOfBluesky', 'puppy'],
  ['science', 'SciComm', 'research'],
  ['space', 'astronomy', 'JWST'],
  ['politics', 'news', 'vote'],
  ['music', 'nowplaying', 'vinyl'],
  ['art', 'BlueskyArt', 'illustration'],
  ['football', 'soccer', 'PremierLeague'],
  ['cooking', 'foodie', 'recipe'],
  ['coding', 'typescript', '100DaysOfCode'],
  ['weather', 'heatwave', 'storm'],
  ['gardening', 'GardeningTwitter', 'plants'],
]

/** A template split around its one noun placeholder. */
interface Tpl {
  pre: string
  post: string
  cap: boolean
  /** Ends with its own punctuation, so no sentence ending is added. */
  closed: boolean
}

function tpl(s: string): Tpl {
  const cap = s.includes('{N}')
  const [pre, post] = s.split(cap ? '{N}' : '{n}') as [string, string]
  const closed = /[?!？！…。]$/.test(s)
  return { pre, post, cap, closed }
}

interface LangPack {
  code: string
  sep: string
  ends: readonly string[]
  /** positive, negative, neutral */
  tones: readonly (readonly Tpl[])[]
  /** Noun phrases per topic (same order as TOPICS). */
  nouns: readonly (readonly string[])[]
  /** Native hashtag per topic. */
  tags: readonly string[]
  fillers: readonly string[]
  altPrefix: string
}

function pack(p: {
  code: string
  sep: string
  ends: string[]
  pos: string[]
  neg: string[]
  neu: string[]
  nouns: string[][]
  tags: string[]
  fillers: string[]
  altPrefix: string
}): LangPack {
  return {
    code: p.code,
    sep: p.sep,
    ends: p.ends,
    tones: [p.pos.map(tpl), p.neg.map(tpl), p.neu.map(tpl)],
    nouns: p.nouns,
    tags: p.tags,
    fillers: p.fillers,
    altPrefix: p.altPrefix,
  }
}

const EN = pack({
  code: 'en',
  sep: ' ',
  ends: ['.', '.', '.', '!', '', '!!', '...'],
  pos: [
    'I absolutely love {n}',
    '{N} made my whole day',
    'Honestly, {n} is wonderful',
    "Can't stop smiling about {n}",
    'So grateful for {n} today',
    '{N} is the best thing this week',
    'What a beautiful moment for {n}',
    'Shoutout to {n}, truly amazing',
  ],
  neg: [
    "I'm so angry about {n}",
    '{N} is terrible right now',
    'Really disappointed by {n}',
    'Why is {n} always such a mess?',
    'Sick and tired of {n}',
    '{N} is awful and nobody is talking about it',
    'Ugh, {n} ruined my afternoon',
  ],
  neu: [
    'Thinking about {n} again',
    'Anyone else following {n}?',
    'Quick thread on {n} 🧵',
    'Random thought about {n}',
    'Spent the afternoon on {n}',
    'Reading up on {n} tonight',
    'Hot take: {n} is overrated',
    'Does anyone have recommendations about {n}?',
  ],
  nouns: [
    ['my cat', "the neighbour's orange cat", 'these two kittens', 'a cat asleep in a sunbeam'],
    ['my dog', 'the puppy next door', 'our old golden retriever', 'dog park drama'],
    ['the new climate study', 'this CRISPR paper', 'peer review', 'the lab results'],
    ['the new JWST images', "tonight's launch", 'the aurora last night', 'the Mars rover photos'],
    ['the election', 'this new tax bill', 'the city council vote', 'the debate last night'],
    ['this new album', 'the concert last night', 'my vinyl collection', 'this guitar riff'],
    ['my latest painting', 'this watercolor sketch', 'the gallery opening', 'digital art commissions'],
    ['the match today', 'that last-minute goal', 'the transfer window', 'our defence'],
    ['homemade ramen', 'this sourdough loaf', "my grandmother's curry recipe", 'meal prep'],
    ['TypeScript generics', 'this Rust compiler error', 'a production outage', 'code review'],
    ['the heatwave', 'this endless rain', 'the first snow', 'the thunderstorm'],
    ['my tomato plants', 'the community garden', 'these sunflowers', 'composting'],
  ],
  tags: ['cats', 'dogs', 'science', 'space', 'politics', 'music', 'art', 'football', 'cooking', 'coding', 'weather', 'gardening'],
  fillers: ['lol', 'tbh.', 'Just saying.', 'Anyway.', 'More soon.', 'What do you all think?', 'Send help.', '10/10 would recommend.'],
  altPrefix: 'Photo of ',
})

const JA = pack({
  code: 'ja',
  sep: '',
  ends: ['。', '。', '！', '', 'w'],
  pos: ['{n}が本当に大好き', '{n}のおかげで最高の一日になった', '{n}、素晴らしすぎる', '{n}が楽しみすぎる', '{n}に癒された'],
  neg: ['{n}にめっちゃ腹が立つ', '{n}は最悪だ', '{n}にがっかりした', 'また{n}かよ…', '{n}、ひどすぎる'],
  neu: ['{n}についてちょっと考えてる', '今日は{n}の話', '{n}、みんなどう思う？', '{n}を調べてみた', 'そういえば{n}'],
  nouns: [
    ['うちの猫', '近所の野良猫', '子猫たち'],
    ['うちの犬', '散歩中の柴犬', '子犬'],
    ['新しい研究論文', '実験の結果', '量子コンピュータ'],
    ['ロケットの打ち上げ', 'ジェイムズ・ウェッブの画像', '昨夜の流星群'],
    ['選挙', '新しい法案', '国会の議論'],
    ['新しいアルバム', '昨日のライブ', 'このベースライン'],
    ['今描いてるイラスト', '美術館の展示', '水彩画'],
    ['今日の試合', '代表戦', 'あのゴール'],
    ['手作りのラーメン', '今日の晩ごはん', 'お弁当'],
    ['TypeScriptの型エラー', '本番環境の障害', 'コードレビュー'],
    ['この暑さ', '梅雨の雨', '台風'],
    ['ベランダのトマト', '家庭菜園', 'ひまわり'],
  ],
  tags: ['猫', '犬', '科学', '宇宙', '政治', '音楽', 'イラスト', 'サッカー', '料理', 'プログラミング', '天気', '家庭菜園'],
  fillers: ['草', 'まじで', 'おやすみなさい', 'とりあえず寝る'],
  altPrefix: '写真：',
})

const PT = pack({
  code: 'pt',
  sep: ' ',
  ends: ['.', '.', '!', '', '!!!', ' kkkk'],
  pos: ['Eu amo {n}', '{N} salvou meu dia', 'Que maravilha {n}', '{N} está incrível hoje', 'Muito feliz com {n}'],
  neg: ['Estou com muita raiva de {n}', '{N} está horrível', 'Que decepção {n}', 'Não aguento mais {n}', '{N} é uma vergonha'],
  neu: ['Pensando em {n} de novo', 'Alguém acompanhando {n}?', 'Hoje o assunto é {n}', 'Lendo sobre {n}', 'Sobre {n}, uma thread 🧵'],
  nouns: [
    ['meu gato', 'a gatinha da vizinha', 'esses filhotes de gato'],
    ['meu cachorro', 'o vira-lata da rua', 'o filhote novo'],
    ['o novo estudo sobre o clima', 'a pesquisa da universidade', 'o resultado do experimento'],
    ['as fotos do telescópio', 'o lançamento do foguete', 'a chuva de meteoros'],
    ['a eleição', 'o novo projeto de lei', 'o debate de ontem'],
    ['o álbum novo', 'o show de ontem', 'essa música'],
    ['minha pintura nova', 'a exposição do museu', 'esse desenho'],
    ['o jogo de hoje', 'aquele gol no final', 'o campeonato'],
    ['a feijoada caseira', 'esse pão de queijo', 'o almoço de domingo'],
    ['esse bug em produção', 'o código legado', 'a revisão de código'],
    ['esse calor', 'a chuva sem fim', 'a frente fria'],
    ['minha horta', 'as suculentas', 'os tomates do quintal'],
  ],
  tags: ['gatos', 'cachorros', 'ciência', 'astronomia', 'política', 'música', 'arte', 'futebol', 'culinária', 'programação', 'clima', 'jardinagem'],
  fillers: ['kkkkk', 'enfim.', 'sério.', 'bom dia!'],
  altPrefix: 'Foto de ',
})

const ES = pack({
  code: 'es',
  sep: ' ',
  ends: ['.', '.', '!', '', '...'],
  pos: ['Me encanta {n}', '{N} me alegró el día', 'Qué maravilla {n}', '{N} es lo mejor de la semana', 'Feliz con {n}'],
  neg: ['Estoy muy enfadado con {n}', '{N} es terrible', 'Qué decepción {n}', 'Estoy harta de {n}', '¿Por qué {n} siempre sale mal?'],
  neu: ['Pensando otra vez en {n}', '¿Alguien más siguiendo {n}?', 'Hoy toca hablar de {n}', 'Leyendo sobre {n}', 'Hilo sobre {n} 🧵'],
  nouns: [
    ['mi gato', 'la gatita del vecino', 'estos gatitos'],
    ['mi perro', 'el cachorro nuevo', 'los perros del parque'],
    ['el nuevo estudio climático', 'este artículo científico', 'los resultados del laboratorio'],
    ['las imágenes del telescopio', 'el lanzamiento de esta noche', 'la lluvia de estrellas'],
    ['las elecciones', 'la nueva ley', 'el debate de anoche'],
    ['el nuevo disco', 'el concierto de anoche', 'esta canción'],
    ['mi último cuadro', 'la exposición del museo', 'este boceto'],
    ['el partido de hoy', 'ese gol en el último minuto', 'el clásico'],
    ['la paella casera', 'esta tortilla de patatas', 'el pan recién hecho'],
    ['este error en producción', 'el código heredado', 'la revisión de código'],
    ['esta ola de calor', 'la lluvia', 'la primera nevada'],
    ['mi huerto', 'las plantas del balcón', 'los tomates'],
  ],
  tags: ['gatos', 'perros', 'ciencia', 'astronomía', 'política', 'música', 'arte', 'fútbol', 'cocina', 'programación', 'clima', 'jardinería'],
  fillers: ['jajaja', 'en fin.', 'buenas noches.', 'lo dejo aquí.'],
  altPrefix: 'Foto de ',
})

const DE = pack({
  code: 'de',
  sep: ' ',
  ends: ['.', '.', '!', '', '...'],
  pos: ['Ich liebe {n}', '{N} hat meinen Tag gerettet', '{N} ist einfach wunderbar', 'Freue mich so sehr über {n}', 'Großartig: {n}'],
  neg: ['Ich bin so wütend über {n}', '{N} ist echt schrecklich', 'Total enttäuscht von {n}', 'Schon wieder {n}, furchtbar', 'Mich nervt {n}'],
  neu: ['Denke gerade an {n}', 'Verfolgt noch jemand {n}?', 'Kurzer Thread über {n} 🧵', 'Lese gerade über {n}', 'Mal eine Frage zu {n}'],
  nouns: [
    ['meine Katze', 'die Katze der Nachbarn', 'diese kleinen Kätzchen'],
    ['mein Hund', 'der Welpe von nebenan', 'unser alter Dackel'],
    ['die neue Klimastudie', 'dieses Paper', 'die Laborergebnisse'],
    ['die neuen Teleskopbilder', 'der Raketenstart heute', 'die Polarlichter'],
    ['die Wahl', 'das neue Gesetz', 'die Debatte im Bundestag'],
    ['das neue Album', 'das Konzert gestern', 'dieser Song'],
    ['mein neues Bild', 'die Ausstellung im Museum', 'diese Skizze'],
    ['das Spiel heute', 'das späte Tor', 'die Bundesliga'],
    ['selbstgemachte Spätzle', 'dieses Sauerteigbrot', 'das Sonntagsessen'],
    ['dieser Bug in Produktion', 'TypeScript-Generics', 'das Code-Review'],
    ['die Hitze', 'der Dauerregen', 'der erste Schnee'],
    ['meine Tomaten', 'der Schrebergarten', 'die Sonnenblumen'],
  ],
  tags: ['Katzen', 'Hunde', 'Wissenschaft', 'Weltraum', 'Politik', 'Musik', 'Kunst', 'Fußball', 'Kochen', 'Programmieren', 'Wetter', 'Garten'],
  fillers: ['Naja.', 'Gute Nacht!', 'Ernsthaft.', 'Mehr dazu später.'],
  altPrefix: 'Foto von ',
})

const FR = pack({
  code: 'fr',
  sep: ' ',
  ends: ['.', '.', ' !', '', '...'],
  pos: ["J'adore {n}", '{N} a illuminé ma journée', "{N}, c'est merveilleux", 'Tellement heureuse pour {n}', 'Bravo pour {n}'],
  neg: ['Je suis furieux à cause de {n}', "{N}, c'est terrible", 'Vraiment déçu par {n}', 'Marre de {n}', '{N}, quelle honte'],
  neu: ['Je repense à {n}', 'Quelqu’un suit {n} ?', 'Petit fil sur {n} 🧵', 'Je lis des choses sur {n}', 'Question sur {n}'],
  nouns: [
    ['mon chat', 'le chat de la voisine', 'ces chatons'],
    ['mon chien', "le chiot d'à côté", 'notre vieux labrador'],
    ['la nouvelle étude sur le climat', 'cet article scientifique', 'les résultats du labo'],
    ['les nouvelles images du télescope', 'le lancement de ce soir', 'les aurores boréales'],
    ['les élections', 'la nouvelle loi', "le débat d'hier soir"],
    ['le nouvel album', "le concert d'hier", 'cette chanson'],
    ['ma dernière peinture', "l'expo au musée", 'ce croquis'],
    ['le match de ce soir', 'ce but à la dernière minute', 'le mercato'],
    ['la ratatouille maison', 'ce pain au levain', 'le déjeuner du dimanche'],
    ['ce bug en production', 'le code legacy', 'la revue de code'],
    ['la canicule', 'cette pluie interminable', 'la première neige'],
    ['mes tomates', 'le jardin partagé', 'les tournesols'],
  ],
  tags: ['chats', 'chiens', 'science', 'espace', 'politique', 'musique', 'art', 'football', 'cuisine', 'code', 'météo', 'jardinage'],
  fillers: ['Bref.', 'Bonne nuit !', 'Voilà.', 'À suivre.'],
  altPrefix: 'Photo de ',
})

const KO = pack({
  code: 'ko',
  sep: ' ',
  ends: ['.', '', '!', 'ㅋㅋ', '~'],
  pos: ['{n} 정말 너무 좋아요', '{n} 덕분에 하루가 행복했어요', '{n} 최고예요', '{n} 진짜 대박', '{n} 사랑해요'],
  neg: ['{n} 때문에 너무 화가 나요', '{n} 최악이에요', '{n} 실망스럽네요', '또 {n}… 진짜 싫다', '{n} 너무 끔찍해요'],
  neu: ['{n}에 대해 생각 중', '{n} 보신 분 있나요?', '오늘은 {n} 이야기', '{n} 찾아보는 중', '{n} 어떻게 생각하세요?'],
  nouns: [
    ['우리 고양이', '길고양이', '아기 고양이'],
    ['우리 강아지', '산책하는 강아지', '옆집 강아지'],
    ['새 연구 논문', '실험 결과', '기후 연구'],
    ['로켓 발사', '망원경 사진', '유성우'],
    ['선거', '새 법안', '어젯밤 토론'],
    ['새 앨범', '어제 콘서트', '이 노래'],
    ['새 그림', '전시회', '이 스케치'],
    ['오늘 경기', '마지막 골', '국가대표 경기'],
    ['집밥', '김치찌개', '오늘 저녁'],
    ['프로덕션 버그', '타입스크립트 에러', '코드 리뷰'],
    ['이 더위', '장마', '첫눈'],
    ['베란다 텃밭', '토마토', '해바라기'],
  ],
  tags: ['고양이', '강아지', '과학', '우주', '정치', '음악', '그림', '축구', '요리', '코딩', '날씨', '텃밭'],
  fillers: ['ㅋㅋㅋㅋ', '아무튼.', '잘 자요~', '진짜로.'],
  altPrefix: '사진: ',
})

/** Language choice: [weight, langs, pack for the text]. `null` langs = field omitted. */
const LANG_CHOICES: ReadonlyArray<readonly [number, readonly string[] | null, LangPack]> = [
  [55, ['en'], EN],
  [12, ['ja'], JA],
  [10, ['pt'], PT],
  [6, ['es'], ES],
  [5, ['de'], DE],
  [4, ['fr'], FR],
  [3, ['ko'], KO],
  [1.2, ['en', 'ja'], EN],
  [0.8, ['pt', 'en'], PT],
  [0.5, ['es', 'en'], ES],
  [0.5, ['de', 'en'], DE],
  [1.5, null, EN],
  [0.5, null, JA],
]
const PACK_BY_CODE: Record<string, LangPack> = { en: EN, ja: JA, pt: PT, es: ES, de: DE, fr: FR, ko: KO }

function cumulative(weights: readonly number[]): Float64Array {
  const total = weights.reduce((a, b) => a + b, 0)
  const out = new Float64Array(weights.length)
  let acc = 0
  for (let i = 0; i < weights.length; i++) {
    acc += weights[i]! / total
    out[i] = acc
  }
  out[weights.length - 1] = 1
  return out
}

const LANG_CUM = cumulative(LANG_CHOICES.map((c) => c[0]))
const TOPIC_CUM = cumulative(TOPIC_WEIGHTS)

const HANDLE_NAMES = [
  'alex',
  'sam',
  'jordan',
  'taylor',
  'maria',
  'yuki',
  'hana',
  'lucas',
  'sofia',
  'lena',
  'emma',
  'noah',
  'kenji',
  'mina',
  'joao',
  'ana',
  'pierre',
  'claire',
  'felix',
  'jonas',
  'diego',
  'carmen',
  'minjun',
  'jiwoo',
  'riley',
  'casey',
  'morgan',
  'nova',
  'pixel',
  'orbit',
  'fern',
  'basil',
  'mochi',
  'kiwi',
  'tofu',
  'sol',
]
const HANDLE_SUFFIXES = ['.bsky.social', '.bsky.social', '.bsky.social', '.bsky.social', '.bsky.social', '.com', '.dev', '.net', '.xyz', '.art']

const SLUG_WORDS = [
  'why',
  'new',
  'study',
  'finds',
  'best',
  'guide',
  'how',
  'the',
  'future',
  'of',
  'inside',
  'review',
  'week',
  'report',
  'explained',
  'first',
  'look',
  'record',
  'city',
  'plan',
  'update',
  'season',
  'photos',
  'history',
]
const TOPIC_SECTIONS = [
  'lifestyle',
  'lifestyle',
  'science',
  'science',
  'politics',
  'music',
  'artanddesign',
  'football',
  'food',
  'technology',
  'weather',
  'lifestyle',
]
const SITE_NAMES = ['The Guardian', 'Ars Technica', 'BBC News', 'YouTube', 'GitHub', 'Wikipedia', 'Substack', 'Spotify']

const IMAGE_RATIOS: readonly AspectRatio[] = [
  { height: 750, width: 1000 },
  { height: 1000, width: 750 },
  { height: 1000, width: 1000 },
  { height: 1125, width: 2000 },
  { height: 2000, width: 1125 },
  { height: 2796, width: 1290 },
  { height: 3024, width: 4032 },
]
const SELF_LABELS = ['nudity', 'nudity', 'sexual', 'porn', 'graphic-media']
const ACCOUNT_STATUS: readonly AccountStatus[] = ['deactivated', 'deactivated', 'deactivated', 'deactivated', 'takendown', 'deleted', 'deleted', 'suspended']

// Event mix (cumulative thresholds on one uniform draw).
const P_POST = 0.09
const P_LIKE = P_POST + 0.47
const P_FOLLOW = P_LIKE + 0.33
const P_REPOST = P_FOLLOW + 0.06
const P_POST_DELETE = P_REPOST + 0.018
const P_LIKE_DELETE = P_POST_DELETE + 0.024
const P_POST_UPDATE = P_LIKE_DELETE + 0.002
const P_IDENTITY = P_POST_UPDATE + 0.004
// remainder (~0.002): account

const POST_CAP = 1 << 16 // recent posts kept for engagement/replies/deletes
const LIKE_CAP = 1 << 14 // recent likes kept for like deletes
/**
 * Engagement window: the newest FEN_SIZE posts, sampled in proportion to a
 * Pareto-distributed appeal drawn when each post is created (Zipf-like counts).
 */
const FEN_SIZE = 1 << 13
const APPEAL_ALPHA = 1.1
const P_WEIGHTED = 0.9 // the rest of engagement picks any recent post, newest first
const DAY_US = 86_400_000_000

// ---------------------------------------------------------------------------
// Generator state
// ---------------------------------------------------------------------------

class World {
  readonly count: number
  private readonly meanGapUs: number
  private readonly nAuthors: number

  // sfc32 state
  private a = 0
  private b = 0
  private c = 0
  private d = 0

  private readonly dids: string[] = []
  /** Follow-popularity order: a random permutation of author indices. */
  private readonly famous: Int32Array
  private readonly inactive: Uint8Array
  private inactiveCount = 0

  private t: number
  private lastUs = -1
  private tidTs = -1
  private seq: number
  private nowUs = 0
  private nowIso = ''
  /** Whether the last sentence() came out without closing punctuation. */
  private openEnd = false
  private isoMs = -1
  private isoSec = -1
  /** "YYYY-MM-DDTHH:MM:SS.mmmZ" of the current event; the seconds part is cached. */
  private readonly isoBuf = Buffer.alloc(24)

  // ring of recent posts (struct of arrays, indexed by serial & (POST_CAP-1))
  private postTotal = 0
  private readonly pUri: string[] = new Array<string>(POST_CAP).fill('')
  private readonly pCid: string[] = new Array<string>(POST_CAP).fill('')
  private readonly pRkey: string[] = new Array<string>(POST_CAP).fill('')
  private readonly pRootUri: string[] = new Array<string>(POST_CAP).fill('')
  private readonly pRootCid: string[] = new Array<string>(POST_CAP).fill('')
  private readonly pAuthor = new Int32Array(POST_CAP)
  private readonly pTopic = new Uint8Array(POST_CAP)
  private readonly pDeleted = new Uint8Array(POST_CAP)
  private readonly pLangs: Array<readonly string[] | null> = new Array<readonly string[] | null>(POST_CAP).fill(null)
  private readonly pRecord: Array<PostRecord | null> = new Array<PostRecord | null>(POST_CAP).fill(null)

  /** Fenwick tree of integer appeal weights over slots serial & (FEN_SIZE-1). */
  private readonly fen = new Float64Array(FEN_SIZE + 1)
  private readonly fenWeight = new Float64Array(FEN_SIZE)
  private fenTotal = 0

  // ring of recent likes
  private likeTotal = 0
  private readonly lAuthor = new Int32Array(LIKE_CAP)
  private readonly lRkey: string[] = new Array<string>(LIKE_CAP).fill('')
  private readonly lDeleted = new Uint8Array(LIKE_CAP)

  constructor(opts: SyntheticOptions) {
    const count = opts.count
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`)
    const eps = opts.eventsPerSecond ?? 800
    if (!(eps > 0) || !Number.isFinite(eps)) throw new RangeError(`eventsPerSecond must be > 0, got ${eps}`)
    const authors = opts.authors ?? 5000
    if (!Number.isSafeInteger(authors) || authors < 2) throw new RangeError(`authors must be an integer >= 2, got ${authors}`)
    const seed = opts.seed ?? 1
    if (!Number.isFinite(seed)) throw new RangeError(`seed must be a finite number, got ${seed}`)

    this.count = count
    this.meanGapUs = 1e6 / eps
    this.nAuthors = authors
    const start = opts.startTimeUs ?? Date.now() * 1000 - Math.round(Math.max(0, count - 1) * this.meanGapUs)
    if (!Number.isSafeInteger(start) || start < 0) throw new RangeError(`startTimeUs must be a non-negative integer, got ${start}`)
    this.t = start

    // Seed sfc32 through splitmix32 so nearby seeds diverge immediately.
    let s = (Math.trunc(seed) ^ Math.trunc(seed / 4294967296)) >>> 0
    const sm = (): number => {
      s = (s + 0x9e3779b9) | 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
      return (z ^ (z >>> 16)) >>> 0
    }
    this.a = sm()
    this.b = sm()
    this.c = sm()
    this.d = sm()
    for (let i = 0; i < 12; i++) this.u32()

    for (let i = 0; i < authors; i++) this.dids.push(this.randomDid())
    this.famous = new Int32Array(authors)
    for (let i = 0; i < authors; i++) this.famous[i] = i
    for (let i = authors - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const tmp = this.famous[i]!
      this.famous[i] = this.famous[j]!
      this.famous[j] = tmp
    }
    this.inactive = new Uint8Array(authors)
    this.seq = 1_000_000_000 + this.int(1_000_000_000)
  }

  // -- PRNG ---------------------------------------------------------------

  private u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  private float(): number {
    return this.u32() / 4294967296
  }

  private int(n: number): number {
    return Math.floor(this.float() * n)
  }

  private chance(p: number): boolean {
    return this.float() < p
  }

  private pick<T>(arr: readonly T[]): T {
    return arr[this.int(arr.length)]!
  }

  private pickCum(cum: Float64Array): number {
    const r = this.float()
    let i = 0
    while (r >= cum[i]!) i++
    return i
  }

  /** Writes n random RFC-4648 base32 characters at SCRATCH[at..at+n). */
  private writeB32(at: number, n: number): void {
    let x = 0
    for (let i = 0; i < n; i++) {
      if (i % 6 === 0) x = this.u32()
      SCRATCH[at + i] = B32_CODES[x & 31]!
      x >>>= 5
    }
  }

  private charsFrom(alphabet: string, n: number): string {
    let out = ''
    for (let i = 0; i < n; i++) out += alphabet[this.u32() % alphabet.length]!
    return out
  }

  private randomDid(): string {
    SCRATCH.write('did:plc:', 0, 'latin1')
    this.writeB32(8, 24)
    return SCRATCH.toString('latin1', 0, 32)
  }

  /** A well-formed sha-256 CIDv1 string: "bafyrei…" (dag-cbor) or "bafkrei…" (raw). */
  private cid(prefix: 'bafyrei' | 'bafkrei'): string {
    const x = this.u32()
    SCRATCH.write(prefix, 0, 'latin1')
    SCRATCH[7] = CID_FIRST.charCodeAt(x & 7)
    this.writeB32(8, 50)
    SCRATCH[58] = CID_LAST.charCodeAt((x >>> 3) & 7)
    return SCRATCH.toString('latin1', 0, 59)
  }

  /** TID for the current event (monotonic timestamp, random clock id). */
  private tid(): string {
    writeTid(0, this.tidTs, this.u32() & 1023)
    return SCRATCH.toString('latin1', 0, 13)
  }

  // -- populations ---------------------------------------------------------

  /** An active author, skewed so a minority of accounts produce most activity. */
  private author(): number {
    let idx = 0
    for (let tries = 0; tries < 4; tries++) {
      const u = this.float()
      idx = Math.floor(u * u * this.nAuthors)
      if (this.inactive[idx] === 0) return idx
    }
    return idx
  }

  /** A follow target: heavily skewed toward a few popular accounts. */
  private followTarget(): string {
    if (this.chance(0.15)) return this.randomDid()
    const u = this.float()
    return this.dids[this.famous[Math.floor(u * u * u * this.nAuthors)]!]!
  }

  // -- posts ----------------------------------------------------------------

  private postValid(serial: number): boolean {
    return serial >= 0 && serial < this.postTotal && serial >= this.postTotal - POST_CAP && this.pDeleted[serial & (POST_CAP - 1)] === 0
  }

  /** A recent post, biased toward the newest. Returns a serial or -1. */
  private recentPost(exponent: number): number {
    const avail = Math.min(this.postTotal, POST_CAP)
    if (avail === 0) return -1
    for (let tries = 0; tries < 4; tries++) {
      const age = Math.floor(this.float() ** exponent * avail)
      const serial = this.postTotal - 1 - age
      if (this.postValid(serial)) return serial
    }
    return -1
  }

  /** Sets the appeal weight of the post in Fenwick slot `slot`. */
  private setWeight(slot: number, w: number): void {
    const delta = w - this.fenWeight[slot]!
    if (delta === 0) return
    this.fenWeight[slot] = w
    this.fenTotal += delta
    for (let i = slot + 1; i <= FEN_SIZE; i += i & -i) this.fen[i] = this.fen[i]! + delta
  }

  /** A post from the engagement window, chosen in proportion to its appeal; -1 if none. */
  private weightedPost(): number {
    if (this.fenTotal <= 0) return -1
    // 53-bit uniform so large totals keep full resolution.
    const u = (this.u32() * 2097152 + (this.u32() >>> 11)) / 9007199254740992
    let target = Math.floor(u * this.fenTotal)
    let pos = 0
    for (let step = FEN_SIZE; step > 0; step >>= 1) {
      const next = pos + step
      if (next <= FEN_SIZE && this.fen[next]! <= target) {
        pos = next
        target -= this.fen[next]!
      }
    }
    // pos is the 0-based slot; map it back to the newest serial using it.
    const newest = this.postTotal - 1
    const serial = newest - ((newest - pos) & (FEN_SIZE - 1))
    return this.postValid(serial) ? serial : -1
  }

  /**
   * A post to like/repost/reply to/quote: mostly by appeal among the newest
   * posts (heavy-tailed counts, many posts get nothing), otherwise any recent post.
   */
  private engagedPost(): number {
    if (this.chance(P_WEIGHTED)) {
      const serial = this.weightedPost()
      if (serial >= 0) return serial
    }
    return this.recentPost(3)
  }

  /** Subject for a like/repost: usually an earlier post, a few unknown ones. */
  private subject(): StrongRef {
    if (!this.chance(0.03)) {
      const serial = this.engagedPost()
      if (serial >= 0) {
        const slot = serial & (POST_CAP - 1)
        return { cid: this.pCid[slot]!, uri: this.pUri[slot]! }
      }
    }
    // A post we never saw: older, by someone outside the generated stream.
    const past = Math.max(0, this.nowUs - 1_000_000 - this.int(30) * DAY_US - this.int(DAY_US))
    const did = this.chance(0.5) ? this.randomDid() : this.dids[this.int(this.nAuthors)]!
    writeTid(0, past, this.u32() & 1023)
    const rkey = SCRATCH.toString('latin1', 0, 13)
    return { cid: this.cid('bafyrei'), uri: `at://${did}/app.bsky.feed.post/${rkey}` }
  }

  private pickLangs(): number {
    return this.pickCum(LANG_CUM)
  }

  private sentence(p: LangPack, topic: number, tone: number): string {
    const t = this.pick(p.tones[tone]!)
    const nouns = p.nouns[this.chance(0.85) ? topic : this.pickCum(TOPIC_CUM)]!
    const noun = this.pick(nouns)
    let s = t.pre + (t.cap ? capitalize(noun) : noun) + t.post
    if (t.pre === '' && !t.cap && p.code !== 'ja' && p.code !== 'ko') s = capitalize(s)
    const end = t.closed ? '' : this.pick(p.ends)
    this.openEnd = !t.closed && end === ''
    return s + end
  }

  private emoji(topic: number, tone: number): string {
    const n = this.chance(0.7) ? 1 : 1 + this.int(3)
    let out = ''
    for (let i = 0; i < n; i++) out += this.chance(0.5) ? this.pick(TOPIC_EMOJI[topic]!) : this.pick(TONE_EMOJI[tone]!)
    return out
  }

  /** Body text within `budget` UTF-16 units, at least 10 long. */
  private body(p: LangPack, topic: number, tone: number, budget: number): string {
    const r = this.float()
    const want = r < 0.45 ? 1 : r < 0.75 ? 2 : r < 0.9 ? 3 : 4 + this.int(4)
    let text = this.sentence(p, topic, tone)
    let open = this.openEnd
    if (text.length > budget) text = text.slice(0, budget)
    for (let i = 1; (i < want || text.length < 10) && i < 16; i++) {
      const filler = this.chance(0.12)
      const next = filler ? this.pick(p.fillers) : this.sentence(p, topic, this.chance(0.6) ? tone : 2)
      if (text.includes(next)) continue
      // A sentence left without an ending gets a full stop before the next one.
      const joined = (open ? text + p.ends[0]! : text) + p.sep + next
      open = !filler && this.openEnd
      if (joined.length > budget) break
      text = joined
    }
    if (this.chance(0.3)) {
      const e = this.emoji(topic, tone)
      const withEmoji = text + (p.sep === '' ? '' : ' ') + e
      if (withEmoji.length <= budget) text = withEmoji
    }
    while (text.length < 10) text += p.sep === '' ? '！' : '!'
    return text
  }

  private blob(mimeType: string, min: number, max: number): BlobRef {
    return { $type: 'blob', mimeType, ref: { $link: this.cid('bafkrei') }, size: min + this.int(max - min) }
  }

  private slug(topic: number): string {
    let s = TOPICS[topic]!
    const n = 2 + this.int(4)
    for (let i = 0; i < n; i++) s += '-' + this.pick(SLUG_WORDS)
    return s
  }

  private externalUrl(topic: number, site: number): string {
    switch (site) {
      case 0:
        return `https://www.theguardian.com/${TOPIC_SECTIONS[topic]!}/2024/sep/${1 + this.int(28)}/${this.slug(topic)}`
      case 1:
        return `https://arstechnica.com/${TOPIC_SECTIONS[topic]!}/2024/09/${this.slug(topic)}/`
      case 2:
        return `https://www.bbc.co.uk/news/articles/c${this.charsFrom('0123456789abcdefghijklmnopqrstuvwxyz', 10)}o`
      case 3:
        return `https://www.youtube.com/watch?v=${this.charsFrom(ALNUM64, 11)}`
      case 4:
        return `https://github.com/${this.pick(HANDLE_NAMES)}/${this.slug(topic)}`
      case 5:
        return `https://en.wikipedia.org/wiki/${capitalize(TOPICS[topic]!)}`
      case 6:
        return `https://${this.pick(HANDLE_NAMES)}.substack.com/p/${this.slug(topic)}`
      default:
        return `https://open.spotify.com/track/${this.charsFrom(ALNUM62, 22)}`
    }
  }

  /** Images (kind 0), video (kind 2) or a quote of post `quoted` (kind 3). */
  private mediaEmbed(p: LangPack, topic: number, kind: 0 | 2 | 3, quoted: number): PostEmbed {
    if (kind === 0) {
      const r = this.float()
      const n = r < 0.7 ? 1 : r < 0.82 ? 2 : r < 0.88 ? 3 : 4
      const images: ImagesEmbed['images'] = []
      for (let i = 0; i < n; i++) {
        const alt = this.chance(0.4) ? '' : p.altPrefix + this.pick(p.nouns[topic]!)
        const mime = this.chance(0.85) ? 'image/jpeg' : this.chance(0.66) ? 'image/png' : 'image/webp'
        const image = this.blob(mime, 40_000, 990_000)
        if (this.chance(0.9)) {
          const ar = this.pick(IMAGE_RATIOS)
          images.push({ alt, aspectRatio: { height: ar.height, width: ar.width }, image })
        } else {
          images.push({ alt, image })
        }
      }
      return { $type: 'app.bsky.embed.images', images }
    }
    if (kind === 2) {
      const ar = this.pick(IMAGE_RATIOS)
      const aspectRatio: AspectRatio = { height: ar.height, width: ar.width }
      if (this.chance(0.3)) {
        const alt = p.altPrefix + this.pick(p.nouns[topic]!)
        return { $type: 'app.bsky.embed.video', alt, aspectRatio, video: this.blob('video/mp4', 500_000, 50_000_000) }
      }
      return { $type: 'app.bsky.embed.video', aspectRatio, video: this.blob('video/mp4', 500_000, 50_000_000) }
    }
    const slot = quoted & (POST_CAP - 1)
    return { $type: 'app.bsky.embed.record', record: { cid: this.pCid[slot]!, uri: this.pUri[slot]! } }
  }

  private post(): JetstreamEvent {
    const author = this.author()
    const did = this.dids[author]!
    const rkey = this.tid()

    // reply?
    let parent = -1
    if (this.chance(0.3)) parent = this.engagedPost()
    const parentSlot = parent & (POST_CAP - 1)

    // language
    let langs: readonly string[] | null
    let p: LangPack
    if (parent >= 0 && this.chance(0.75)) {
      langs = this.pLangs[parentSlot] ?? null
      p = langs === null ? EN : (PACK_BY_CODE[langs[0]!] ?? EN)
    } else {
      const choice = LANG_CHOICES[this.pickLangs()]!
      langs = choice[1]
      p = choice[2]
    }

    const topic = parent >= 0 && this.chance(0.7) ? this.pTopic[parentSlot]! : this.pickCum(TOPIC_CUM)
    const toneR = this.float()
    const negBias = topic === 4 ? 0.25 : 0
    const tone = toneR < 0.45 - negBias ? 0 : toneR < 0.7 ? 1 : 2

    // embed kind: -1 none, 0 images, 1 external, 2 video, 3 quote
    let embedKind: -1 | 0 | 1 | 2 | 3 = -1
    let quoted = -1
    const er = this.float()
    if (er < 0.17) embedKind = 0
    else if (er < 0.23) embedKind = 1
    else if (er < 0.255) embedKind = 2
    else if (er < 0.295) {
      quoted = this.engagedPost()
      if (quoted >= 0) embedKind = 3
    }

    // facets: hashtags (~15%) and a link for some external embeds
    let tags: string[] | null = null
    if (this.chance(0.15)) {
      const r = this.float()
      const n = r < 0.6 ? 1 : r < 0.85 ? 2 : 3
      tags = []
      for (let i = 0; i < n; i++) {
        const tag =
          p !== EN && this.chance(0.6) ? p.tags[i === 0 ? topic : this.pickCum(TOPIC_CUM)]! : this.pick(EN_TAGS[i === 0 ? topic : this.pickCum(TOPIC_CUM)]!)
        if (!tags.includes(tag)) tags.push(tag)
      }
    }
    let link: string | null = null
    let external: ExternalEmbed | null = null
    if (embedKind === 1) {
      const site = this.int(8)
      const uri = this.externalUrl(topic, site)
      const title = capitalize(this.pick(EN.nouns[topic]!)) + ' | ' + SITE_NAMES[site]!
      const desc = this.sentence(EN, topic, 2)
      const ext: ExternalEmbed['external'] = { description: desc } as ExternalEmbed['external']
      if (this.chance(0.7)) ext.thumb = this.blob('image/jpeg', 20_000, 300_000)
      ext.title = title
      ext.uri = uri
      external = { $type: 'app.bsky.embed.external', external: ext }
      if (this.chance(0.5) && uri.length <= 100) link = uri
    }

    let reserved = 0
    if (tags !== null) for (const t of tags) reserved += t.length + 2
    if (link !== null) reserved += link.length + 1
    let text = this.body(p, topic, tone, 300 - reserved)

    // Assemble text + facets (JS offsets first, UTF-8 bytes after).
    const marks: Array<{ at: number; len: number; feature: TagFeature | LinkFeature }> = []
    if (link !== null) {
      text += ' '
      marks.push({ at: text.length, len: link.length, feature: { $type: 'app.bsky.richtext.facet#link', uri: link } })
      text += link
    }
    if (tags !== null) {
      if (this.chance(0.2)) {
        // tags up front: "#a #b text"
        let prefix = ''
        for (const tag of tags) {
          marks.push({ at: prefix.length, len: tag.length + 1, feature: { $type: 'app.bsky.richtext.facet#tag', tag } })
          prefix += '#' + tag + ' '
        }
        for (const m of marks) if (m.feature.$type === 'app.bsky.richtext.facet#link') m.at += prefix.length
        text = prefix + text
        marks.sort((x, y) => x.at - y.at)
      } else {
        for (const tag of tags) {
          text += ' '
          marks.push({ at: text.length, len: tag.length + 1, feature: { $type: 'app.bsky.richtext.facet#tag', tag } })
          text += '#' + tag
        }
      }
    }
    let facets: Facet[] | null = null
    if (marks.length > 0) {
      facets = []
      for (const m of marks) {
        const byteStart = utf8Length(text, m.at)
        const byteEnd = byteStart + utf8Length(text.slice(m.at, m.at + m.len), m.len)
        facets.push({ features: [m.feature], index: { byteEnd, byteStart } })
      }
    }

    let labels: SelfLabels | null = null
    if (this.chance(embedKind === 0 || embedKind === 2 ? 0.03 : 0.002)) {
      labels = { $type: 'com.atproto.label.defs#selfLabels', values: [{ val: this.pick(SELF_LABELS) }] }
    }

    // Record with sorted keys, like Jetstream's output.
    const record = { $type: 'app.bsky.feed.post', createdAt: this.nowIso } as PostRecord
    if (external !== null) record.embed = external
    else if (embedKind === 0 || embedKind === 2 || embedKind === 3) record.embed = this.mediaEmbed(p, topic, embedKind, quoted)
    if (facets !== null) record.facets = facets
    if (labels !== null) record.labels = labels
    if (langs !== null) record.langs = langs.slice()
    const uri = `at://${did}/app.bsky.feed.post/${rkey}`
    let rootUri = uri
    let rootCid = ''
    if (parent >= 0) {
      const parentRef: StrongRef = { cid: this.pCid[parentSlot]!, uri: this.pUri[parentSlot]! }
      const rootRef: StrongRef = { cid: this.pRootCid[parentSlot]!, uri: this.pRootUri[parentSlot]! }
      record.reply = { parent: parentRef, root: rootRef }
      rootUri = rootRef.uri
      rootCid = rootRef.cid
    }
    record.text = text

    const cid = this.cid('bafyrei')
    if (parent < 0) rootCid = cid

    const serial = this.postTotal++
    const slot = serial & (POST_CAP - 1)
    this.pUri[slot] = uri
    this.pCid[slot] = cid
    this.pRkey[slot] = rkey
    this.pRootUri[slot] = rootUri
    this.pRootCid[slot] = rootCid
    this.pAuthor[slot] = author
    this.pTopic[slot] = topic
    // Pareto appeal (integer, so the Fenwick sums stay exact); replies draw less.
    const appeal = Math.min(1e7, Math.floor(100 * (1 - this.float()) ** (-1 / APPEAL_ALPHA)))
    this.setWeight(serial & (FEN_SIZE - 1), parent >= 0 ? Math.ceil(appeal / 4) : appeal)
    this.pDeleted[slot] = 0
    this.pLangs[slot] = langs
    this.pRecord[slot] = record

    return this.commit(did, { rev: this.tid(), operation: 'create', collection: 'app.bsky.feed.post', rkey, record, cid })
  }

  private commit(did: string, commit: JetstreamCommit): JetstreamCommitEvent {
    return { did, time_us: this.nowUs, kind: 'commit', commit }
  }

  private like(): JetstreamEvent {
    const author = this.author()
    const did = this.dids[author]!
    const rkey = this.tid()
    const record: LikeRecord = { $type: 'app.bsky.feed.like', createdAt: this.nowIso, subject: this.subject() }
    const slot = this.likeTotal++ & (LIKE_CAP - 1)
    this.lAuthor[slot] = author
    this.lRkey[slot] = rkey
    this.lDeleted[slot] = 0
    return this.commit(did, { rev: this.tid(), operation: 'create', collection: 'app.bsky.feed.like', rkey, record, cid: this.cid('bafyrei') })
  }

  private repost(): JetstreamEvent {
    const did = this.dids[this.author()]!
    const record: RepostRecord = { $type: 'app.bsky.feed.repost', createdAt: this.nowIso, subject: this.subject() }
    return this.commit(did, { rev: this.tid(), operation: 'create', collection: 'app.bsky.feed.repost', rkey: this.tid(), record, cid: this.cid('bafyrei') })
  }

  private follow(): JetstreamEvent {
    const did = this.dids[this.author()]!
    let subject = this.followTarget()
    if (subject === did) subject = this.randomDid()
    const record: FollowRecord = { $type: 'app.bsky.graph.follow', createdAt: this.nowIso, subject }
    return this.commit(did, { rev: this.tid(), operation: 'create', collection: 'app.bsky.graph.follow', rkey: this.tid(), record, cid: this.cid('bafyrei') })
  }

  private postDelete(): JetstreamEvent | null {
    const serial = this.recentPost(2)
    if (serial < 0) return null
    const slot = serial & (POST_CAP - 1)
    this.pDeleted[slot] = 1
    if (serial > this.postTotal - 1 - FEN_SIZE) this.setWeight(serial & (FEN_SIZE - 1), 0)
    return this.commit(this.dids[this.pAuthor[slot]!]!, {
      rev: this.tid(),
      operation: 'delete',
      collection: 'app.bsky.feed.post',
      rkey: this.pRkey[slot]!,
    })
  }

  private likeDelete(): JetstreamEvent | null {
    const avail = Math.min(this.likeTotal, LIKE_CAP)
    if (avail === 0) return null
    for (let tries = 0; tries < 4; tries++) {
      const age = Math.floor(this.float() * this.float() * avail)
      const slot = (this.likeTotal - 1 - age) & (LIKE_CAP - 1)
      if (this.lDeleted[slot] !== 0) continue
      this.lDeleted[slot] = 1
      return this.commit(this.dids[this.lAuthor[slot]!]!, {
        rev: this.tid(),
        operation: 'delete',
        collection: 'app.bsky.feed.like',
        rkey: this.lRkey[slot]!,
      })
    }
    return null
  }

  private postUpdate(): JetstreamEvent | null {
    const serial = this.recentPost(2)
    if (serial < 0) return null
    const slot = serial & (POST_CAP - 1)
    const old = this.pRecord[slot]!
    // Same keys in the same (sorted) order; either add a self-label or edit the text.
    const record = { $type: old.$type, createdAt: old.createdAt } as PostRecord
    if (old.embed !== undefined) record.embed = old.embed
    if (old.facets !== undefined) record.facets = old.facets
    const addLabel = old.labels === undefined && this.chance(0.5)
    if (addLabel) record.labels = { $type: 'com.atproto.label.defs#selfLabels', values: [{ val: this.pick(SELF_LABELS) }] }
    else if (old.labels !== undefined) record.labels = old.labels
    if (old.langs !== undefined) record.langs = old.langs
    if (old.reply !== undefined) record.reply = old.reply
    record.text = !addLabel && old.text.length <= 300 - 9 ? old.text + ' (edited)' : old.text
    const cid = this.cid('bafyrei')
    this.pCid[slot] = cid
    this.pRecord[slot] = record
    if (this.pRootUri[slot] === this.pUri[slot]) this.pRootCid[slot] = cid
    return this.commit(this.dids[this.pAuthor[slot]!]!, {
      rev: this.tid(),
      operation: 'update',
      collection: 'app.bsky.feed.post',
      rkey: this.pRkey[slot]!,
      record,
      cid,
    })
  }

  private identity(): JetstreamEvent {
    const did = this.dids[this.int(this.nAuthors)]!
    let handle = this.pick(HANDLE_NAMES)
    if (this.chance(0.5)) handle += String(this.int(10_000))
    if (this.chance(0.3)) handle += '-' + this.pick(SLUG_WORDS)
    handle += this.pick(HANDLE_SUFFIXES)
    return { did, time_us: this.nowUs, kind: 'identity', identity: { did, handle, seq: this.seq, time: this.nowIso } }
  }

  private account(): JetstreamEvent {
    // Keep roughly 2% of authors inactive: deactivate until then, otherwise reactivate.
    const reactivate = this.inactiveCount > 0 && (this.inactiveCount >= this.nAuthors * 0.02 || this.chance(0.3))
    let idx = this.int(this.nAuthors)
    if (reactivate) {
      while (this.inactive[idx] === 0) idx = (idx + 1) % this.nAuthors
      this.inactive[idx] = 0
      this.inactiveCount--
      const did = this.dids[idx]!
      return { did, time_us: this.nowUs, kind: 'account', account: { active: true, did, seq: this.seq, time: this.nowIso } }
    }
    while (this.inactive[idx] !== 0) idx = (idx + 1) % this.nAuthors
    this.inactive[idx] = 1
    this.inactiveCount++
    const did = this.dids[idx]!
    const status = this.pick(ACCOUNT_STATUS)
    return { did, time_us: this.nowUs, kind: 'account', account: { active: false, did, seq: this.seq, status, time: this.nowIso } }
  }

  // -- main step --------------------------------------------------------------

  next(): JetstreamEvent {
    // Poisson arrivals; time_us strictly increasing.
    if (this.lastUs >= 0) this.t += -Math.log(1 - this.float()) * this.meanGapUs
    let us = Math.floor(this.t)
    if (us <= this.lastUs) us = this.lastUs + 1
    this.lastUs = us
    this.nowUs = us
    const ms = Math.floor(us / 1000)
    if (ms !== this.isoMs) {
      this.isoMs = ms
      const sec = Math.floor(ms / 1000)
      const frac = ms - sec * 1000
      if (sec !== this.isoSec) {
        const iso = new Date(sec * 1000).toISOString()
        // Years outside 0000-9999 change the length; keep them uncached.
        this.isoSec = iso.length === 24 ? sec : -1
        if (this.isoSec >= 0) this.isoBuf.write(iso, 0, 'latin1')
      }
      if (this.isoSec >= 0) {
        this.isoBuf[20] = 48 + Math.floor(frac / 100)
        this.isoBuf[21] = 48 + (Math.floor(frac / 10) % 10)
        this.isoBuf[22] = 48 + (frac % 10)
        this.nowIso = this.isoBuf.toString('latin1', 0, 24)
      } else {
        this.nowIso = new Date(ms).toISOString()
      }
    }
    this.tidTs = us > this.tidTs ? us : this.tidTs + 1
    this.seq += 1 + (this.u32() & 1)

    const r = this.float()
    let ev: JetstreamEvent | null
    if (r < P_POST) ev = this.post()
    else if (r < P_LIKE) ev = this.like()
    else if (r < P_FOLLOW) ev = this.follow()
    else if (r < P_REPOST) ev = this.repost()
    else if (r < P_POST_DELETE) ev = this.postDelete()
    else if (r < P_LIKE_DELETE) ev = this.likeDelete()
    else if (r < P_POST_UPDATE) ev = this.postUpdate()
    else if (r < P_IDENTITY) ev = this.identity()
    else ev = this.account()
    // Nothing to delete/update yet (start of stream): emit a like instead.
    return ev ?? this.like()
  }
}
