// Who may import whom (npm run lint). The rooms are the folders under src/:
//
//   contracts  queue payloads, queue names, job ids: types and tiny pure helpers
//   util       small pure helpers
//   ingest     sources, decoding, the ingester
//   store      every SQL statement: db, schema, writer, one repository per table family
//   score      agent SDK, host, sandbox, remote agents, labelers, built-in agents, the score stage
//   rank       pure ranking: scoring maths, mixing, cursors, explanations; no I/O, no SQL, no clock
//   feed       the application layer: the one room that combines store, score and rank
//   serve      HTTP only (XRPC methods, web pages, admin)
//   status     process reports, sampler, status collection
//   commands   the CLI commands
//
// Wiring (src/cli.ts, src/stages.ts, src/runtime.ts, src/edge-runtime.ts, src/context.ts, src/redis-server.ts, src/commands/,
// workers/) builds the parts and connects them; it may import anything, and nothing else imports it.
// src/config.ts and src/logger.ts may be imported from everywhere except the pure rooms.
//
// @NOTE `type-only` dependencies (import type, or named imports that are all types) vanish at run time;
// where a rule tolerates them it says so with dependencyTypesNot.

/** Folders of one room, as a path pattern. */
const room = (...names) => `^src/(${names.join('|')})/`

/** Modules that reach outside the process: a pure room imports none of them. */
const IO = [
  '^(node:)?(fs|fs/promises|net|http|https|http2|child_process|worker_threads|cluster|dgram|dns|dns/promises|tls|readline)$',
  '^node_modules/(better-sqlite3|ioredis|bullmq|drizzle-orm|@hono/node-server|ws)/',
]

/** The wiring files nothing outside the wiring imports. */
const WIRING_FILES = '^src/(cli|stages|runtime|edge-runtime|redis-server)\\.ts$'
/** Files allowed to import the wiring. */
const WIRING = ['^src/(cli|stages|runtime|edge-runtime|context|redis-server)\\.ts$', room('commands'), '^workers/']

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A file cycle means two files are one unit in disguise: merge them or move the shared part down.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'no-circular-folders',
      severity: 'error',
      comment: 'Folders form layers: when two folders import each other, one of them holds something that belongs in the other.',
      scope: 'folder',
      from: { path: '^(src|workers)/' },
      to: { circular: true },
    },
    {
      name: 'not-to-wiring',
      severity: 'error',
      comment: 'Only the wiring builds and connects the parts; the rooms get what they need passed in.',
      from: { path: '^src/', pathNot: WIRING },
      to: { path: [WIRING_FILES, room('commands'), '^workers/'] },
    },
    {
      name: 'context-type-only',
      severity: 'error',
      comment: 'A room may name the AppContext type, but not build or reach into one.',
      from: { path: '^src/', pathNot: WIRING },
      to: { path: '^src/context\\.ts$', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'sqlite-only-in-store',
      severity: 'error',
      comment: 'better-sqlite3 and drizzle belong to src/store/ (and drizzle.config.ts): every SQL statement lives there.',
      from: { path: '^(src|workers)/', pathNot: room('store') },
      to: { path: '^node_modules/(better-sqlite3|drizzle-orm|drizzle-kit)/' },
    },

    // contracts and util: the bottom of the house
    {
      name: 'contracts-stay-small',
      severity: 'error',
      comment: 'contracts hold types and tiny pure helpers: they import util only.',
      from: { path: room('contracts') },
      to: { path: '^src/', pathNot: room('contracts', 'util') },
    },
    {
      name: 'util-imports-nothing-of-ours',
      severity: 'error',
      comment: 'util holds small pure helpers that know nothing of the application.',
      from: { path: room('util') },
      to: { path: '^src/', pathNot: room('util') },
    },

    // rank is pure
    {
      name: 'rank-not-to-rooms-with-io',
      severity: 'error',
      comment: 'rank is pure ranking maths: no store, feed, serve, ingest, status or commands, not even their types.',
      from: { path: room('rank') },
      to: { path: room('store', 'feed', 'serve', 'ingest', 'status', 'commands', 'ops') },
    },
    {
      name: 'rank-no-io',
      severity: 'error',
      comment: 'rank does no I/O: no files, no SQL, no Redis, no queues, no network.',
      from: { path: room('rank') },
      to: { path: IO },
    },
    {
      name: 'rank-pure-values',
      severity: 'error',
      comment: 'rank takes values from rank, util, contracts and the agent SDK only; other modules it may name by type.',
      from: { path: room('rank') },
      to: {
        path: '^src/',
        pathNot: [room('rank', 'util', 'contracts', 'store', 'feed', 'serve', 'ingest', 'status', 'commands', 'ops'), '^src/score/sdk\\.ts$'],
        dependencyTypesNot: ['type-only'],
      },
    },

    // score
    {
      name: 'score-not-to-app-rooms',
      severity: 'error',
      comment: 'score runs agents on posts: it imports contracts, util, logger and config, not the rooms that use it.',
      from: { path: room('score') },
      to: { path: room('store', 'feed', 'serve', 'rank', 'ingest', 'status', 'commands', 'ops') },
    },

    // store
    {
      name: 'store-not-upward',
      severity: 'error',
      comment: 'store answers the rooms above it and never calls them.',
      from: { path: room('store') },
      to: { path: room('feed', 'serve', 'status', 'ingest', 'commands', 'ops') },
    },
    {
      name: 'store-types-only-from-rank-and-score',
      severity: 'error',
      comment: 'store may name a rank or score type where unavoidable, but runs none of their code.',
      from: { path: room('store') },
      to: { path: room('rank', 'score'), dependencyTypesNot: ['type-only'] },
    },

    // ingest
    {
      name: 'ingest-not-to-app-rooms',
      severity: 'error',
      comment: 'ingest reads sources and hands events on: contracts, util, its own store repository, config and logger.',
      from: { path: room('ingest') },
      to: { path: room('feed', 'serve', 'rank', 'score', 'status', 'commands', 'ops') },
    },

    // feed
    {
      name: 'feed-not-to-serve',
      severity: 'error',
      comment: 'feed is the application layer below HTTP: serve calls feed, never the other way.',
      from: { path: room('feed') },
      to: { path: room('serve', 'status', 'commands', 'ops') },
    },

    // serve
    {
      name: 'serve-not-to-store',
      severity: 'error',
      comment: 'serve is HTTP only and reaches data through feed (a store type may be named where unavoidable).',
      from: { path: room('serve') },
      to: { path: room('store'), dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'serve-not-to-ingest',
      severity: 'error',
      comment: 'serve does not reach into the ingest side.',
      from: { path: room('serve') },
      to: { path: room('ingest', 'commands', 'ops') },
    },

    // edge nodes
    {
      name: 'edge-without-sqlite',
      severity: 'error',
      comment: 'An edge node serves from Redis alone and never opens the SQLite file: its code runs nothing of src/store/.',
      from: { path: ['^src/serve/edge/', '^src/edge-runtime\\.ts$'] },
      to: { path: room('store'), dependencyTypesNot: ['type-only'] },
    },

    // status
    {
      name: 'status-only-watches',
      severity: 'error',
      comment: 'status collects reports through store and score types; it does not reach into the serving or ingest side.',
      from: { path: room('status') },
      to: { path: room('feed', 'serve', 'ingest', 'rank', 'commands', 'ops') },
    },
    {
      name: 'status-score-types-only',
      severity: 'error',
      comment: 'status may name score types, but runs no agent code.',
      from: { path: room('status') },
      to: { path: room('score'), dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // tests beside the code may reach anything they need to set up
    exclude: { path: '\\.test\\.ts$' },
    // keep `import type` in the graph (marked type-only) instead of dropping it as TypeScript's emit would
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.json', '.d.ts'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
}
