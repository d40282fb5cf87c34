/**
 * Fails when code outside src/store/ runs SQL itself: a use of `.prepare`, `.transaction`, `.pragma` or
 * `.exec` on a better-sqlite3 database (npm run lint). Every SQL statement belongs to a store repository.
 *
 * It asks the TypeScript type checker which declaration a member access resolves to, so only the methods
 * better-sqlite3 declares count: RegExp#exec, a Redis `multi().exec()` or a method of our own that happens
 * to be called `prepare` do not. A reference without a call (`db.prepare.bind(db)`) counts too.
 *
 *   node scripts/check-sql.mjs [file ...]    (default: src/ and workers/, without src/store/ and tests)
 *
 * Plain JavaScript (types in JSDoc), so that `npm run lint` runs on any Node, like bin/node-check.js.
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const METHODS = new Set(['prepare', 'transaction', 'pragma', 'exec'])
const SQLITE_TYPES = `${path.sep}node_modules${path.sep}@types${path.sep}better-sqlite3${path.sep}`

/** @typedef {{ file: string, line: number, column: number, method: string, text: string }} SqlUse One SQL call found where it does not belong. */

/**
 * The files checked when none are named: the code under src/ and workers/, apart from the store and tests.
 * @returns {string[]}
 */
export function defaultFiles() {
  const all = ts.sys.readDirectory(ROOT, ['.ts'], undefined, ['src/**/*', 'workers/**/*'])
  return all.filter((f) => {
    const rel = path.relative(ROOT, f).split(path.sep).join('/')
    return !rel.startsWith('src/store/') && !rel.endsWith('.test.ts') && !rel.endsWith('.d.ts')
  })
}

/**
 * True when one of the symbol's declarations is in better-sqlite3's type declarations.
 * @param {ts.TypeChecker} checker
 * @param {ts.Symbol | undefined} sym
 * @returns {boolean}
 */
function declaredBySqlite(checker, sym) {
  if (!sym) return false
  // @NOTE an alias (`import type { Sqlite }`) or a union receiver can hand back a symbol whose declarations sit
  // behind an alias or are spread over several members; look through both
  const target = sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym
  const decls = target.declarations ?? []
  return decls.some((d) => path.normalize(d.getSourceFile().fileName).includes(SQLITE_TYPES))
}

/**
 * Finds every use of a better-sqlite3 SQL method in `files`.
 * @param {string[]} files
 * @returns {SqlUse[]}
 */
export function findSqlUses(files) {
  const parsed = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => {} })
  if (!parsed) throw new Error('tsconfig.json could not be read')
  const program = ts.createProgram({ rootNames: files, options: { ...parsed.options, noEmit: true } })
  const checker = program.getTypeChecker()
  const wanted = new Set(files.map((f) => path.resolve(f)))
  /** @type {SqlUse[]} */
  const uses = []
  for (const sf of program.getSourceFiles()) {
    if (!wanted.has(path.resolve(sf.fileName))) continue
    /** @param {ts.Node} node */
    const visit = (node) => {
      if (ts.isPropertyAccessExpression(node) && METHODS.has(node.name.text) && declaredBySqlite(checker, checker.getSymbolAtLocation(node.name))) {
        const { line, character } = sf.getLineAndCharacterOfPosition(node.name.getStart(sf))
        const text = sf.text.split('\n')[line].trim()
        uses.push({ file: path.relative(ROOT, sf.fileName), line: line + 1, column: character + 1, method: node.name.text, text })
      }
      ts.forEachChild(node, visit)
    }
    visit(sf)
  }
  return uses.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : a.line - b.line))
}

// @NOTE import.meta.main exists from Node 24 only: compare the entry file instead
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  const uses = findSqlUses(args.length ? args.map((f) => path.resolve(f)) : defaultFiles())
  for (const u of uses) console.log(`${u.file}:${u.line}:${u.column}  .${u.method}  ${u.text.length > 120 ? `${u.text.slice(0, 117)}...` : u.text}`)
  if (uses.length) {
    console.log(`\n${uses.length} SQL call${uses.length === 1 ? '' : 's'} outside src/store/: move the statement into a store repository.`)
    process.exitCode = 1
  } else {
    console.log('check-sql: no SQL outside src/store/')
  }
}
