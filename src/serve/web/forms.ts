/**
 * The mix form: which inputs an agent's options get (from its JSON Schema),
 * and how a submitted form becomes mix entries again. Field names follow the
 * paths the server's errors use: `agents.<i>.weight`, `agents.<i>.options.<name>`.
 */
import type { FieldError } from '../../util/field-error.ts'
import type { MixEntry } from '../../rank/mix.ts'

interface Common {
  name: string
  label: string
  description?: string
  required: boolean
}

export type OptionField =
  | (Common & { kind: 'text'; default?: string; pattern?: string; maxLength?: number })
  | (Common & { kind: 'number'; integer: boolean; default?: number; min?: number; max?: number; exclusiveMin?: boolean; exclusiveMax?: boolean })
  | (Common & { kind: 'boolean'; default: boolean })
  | (Common & { kind: 'enum'; values: string[]; default?: string })
  | (Common & { kind: 'list'; default?: string[]; maxItems?: number })
  | (Common & { kind: 'multi'; values: string[]; default?: string[] })

/** Inputs for an agent's options; `json` when the schema has something simple inputs cannot express. */
export type OptionsForm = { kind: 'fields'; fields: OptionField[] } | { kind: 'json' }

type Schema = Record<string, unknown>
const isObj = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v)
const strings = (v: unknown): string[] | undefined => (Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined)

/** "halfLifeHours" → "Half life hours" */
export function humanize(name: string): string {
  const words = name
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/[-_]+/g, ' ')
    .toLowerCase()
  return words.charAt(0).toUpperCase() + words.slice(1)
}

function fieldFor(name: string, s: unknown, required: boolean): OptionField | null {
  if (!isObj(s)) return null
  const common: Common = {
    name,
    label: typeof s.title === 'string' ? s.title : humanize(name),
    description: typeof s.description === 'string' ? s.description : undefined,
    required,
  }
  const enumValues = strings(s.enum)
  const type = s.type
  if (enumValues && (type === 'string' || type === undefined)) {
    return { ...common, kind: 'enum', values: enumValues, default: typeof s.default === 'string' ? s.default : undefined }
  }
  if (type === 'string') {
    return {
      ...common,
      kind: 'text',
      default: typeof s.default === 'string' ? s.default : undefined,
      pattern: typeof s.pattern === 'string' ? s.pattern : undefined,
      maxLength: typeof s.maxLength === 'number' ? s.maxLength : undefined,
    }
  }
  if (type === 'number' || type === 'integer') {
    const num = (v: unknown) => (typeof v === 'number' ? v : undefined)
    return {
      ...common,
      kind: 'number',
      integer: type === 'integer',
      default: num(s.default),
      min: num(s.minimum) ?? num(s.exclusiveMinimum),
      max: num(s.maximum) ?? num(s.exclusiveMaximum),
      exclusiveMin: s.minimum === undefined && typeof s.exclusiveMinimum === 'number',
      exclusiveMax: s.maximum === undefined && typeof s.exclusiveMaximum === 'number',
    }
  }
  if (type === 'boolean') return { ...common, kind: 'boolean', default: s.default === true }
  if (type === 'array' && isObj(s.items)) {
    const items = s.items
    const itemEnum = strings(items.enum)
    if (itemEnum && (items.type === 'string' || items.type === undefined)) return { ...common, kind: 'multi', values: itemEnum, default: strings(s.default) }
    if (items.type === 'string')
      return { ...common, kind: 'list', default: strings(s.default), maxItems: typeof s.maxItems === 'number' ? s.maxItems : undefined }
  }
  return null
}

/** The inputs for an agent's options schema. */
export function optionsForm(schema: unknown): OptionsForm {
  if (!isObj(schema)) return { kind: 'json' }
  const props = schema.properties
  if (props === undefined) return schema.type === 'object' && schema.additionalProperties === false ? { kind: 'fields', fields: [] } : { kind: 'json' }
  if (!isObj(props)) return { kind: 'json' }
  const required = new Set(strings(schema.required) ?? [])
  const fields: OptionField[] = []
  for (const [name, s] of Object.entries(props)) {
    const f = fieldFor(name, s, required.has(name))
    if (!f) return { kind: 'json' }
    fields.push(f)
  }
  return { kind: 'fields', fields }
}

/** A form value as an input shows it. */
export function displayValue(f: OptionField, options: Record<string, unknown> | undefined): string {
  const v = options?.[f.name]
  if (v === undefined || v === null) return ''
  if (Array.isArray(v)) return v.map(String).join(', ')
  return typeof v === 'object' ? JSON.stringify(v) : String(v)
}

export function checkedValues(f: Extract<OptionField, { kind: 'multi' }>, options: Record<string, unknown> | undefined): string[] {
  return strings(options?.[f.name]) ?? f.default ?? []
}

export function booleanValue(f: Extract<OptionField, { kind: 'boolean' }>, options: Record<string, unknown> | undefined): boolean {
  const v = options?.[f.name]
  return typeof v === 'boolean' ? v : f.default
}

export type FormBody = Record<string, string | File | (string | File)[]>

const one = (body: FormBody, key: string): string | undefined => {
  const v = body[key]
  const s = Array.isArray(v) ? v[v.length - 1] : v
  return typeof s === 'string' ? s : undefined
}
const many = (body: FormBody, key: string): string[] => {
  const v = body[key]
  return (Array.isArray(v) ? v : v === undefined ? [] : [v]).filter((x): x is string => typeof x === 'string')
}

/** One agent row of the form as submitted. */
export interface FormRow {
  /** the row's index in the field names (rows added in the browser may leave gaps) */
  index: number
  agent: string
  /** the weight as a number, or the raw text when it is not one */
  weight: number | string
  options: Record<string, unknown>
  /** the raw JSON text of a JSON-fallback row */
  optionsJson?: string
}

export interface FieldProblem {
  field: string
  message: string
}

/**
 * Reads the agent rows of a submitted mix form, in index order. Problems a
 * form alone can tell (a JSON textarea that is not JSON, a number that is not
 * one) come back with the field they name; the rest is for resolveMix.
 */
export function readMixForm(body: FormBody, formOf: (agent: string) => OptionsForm | null): { rows: FormRow[]; problems: FieldProblem[] } {
  const indexes = new Set<number>()
  for (const key of Object.keys(body)) {
    const m = /^agents\.(\d{1,4})\.agent$/.exec(key)
    if (m) indexes.add(Number(m[1]))
  }
  const rows: FormRow[] = []
  const problems: FieldProblem[] = []
  for (const i of [...indexes].sort((a, b) => a - b)) {
    const p = `agents.${i}`
    const agent = (one(body, `${p}.agent`) ?? '').trim()
    const rawWeight = (one(body, `${p}.weight`) ?? '').trim()
    const weight = /^[-+\u2212]?\d+(\.\d+)?$/.test(rawWeight) ? Number(rawWeight.replace('\u2212', '-')) : rawWeight
    if (typeof weight === 'string') problems.push({ field: `${p}.weight`, message: 'a whole number from −100 to 100' })
    const row: FormRow = { index: i, agent, weight, options: {} }
    const form = formOf(agent)
    const json = one(body, `${p}.optionsJson`)
    if (json !== undefined || !form || form.kind === 'json') {
      row.optionsJson = json ?? ''
      const text = (json ?? '').trim()
      if (text) {
        try {
          const parsed: unknown = JSON.parse(text)
          if (!isObj(parsed)) throw new Error('not an object')
          row.options = parsed
        } catch {
          problems.push({ field: `${p}.options`, message: 'options must be a JSON object, like {"name": "value"}' })
        }
      }
      rows.push(row)
      continue
    }
    for (const f of form.fields) {
      const key = `${p}.options.${f.name}`
      switch (f.kind) {
        case 'text':
        case 'enum': {
          const v = (one(body, key) ?? '').trim()
          if (v !== '') row.options[f.name] = v
          break
        }
        case 'number': {
          const v = (one(body, key) ?? '').trim()
          if (v === '') break
          const n = Number(v)
          if (!Number.isFinite(n)) problems.push({ field: key, message: 'must be a number' })
          else row.options[f.name] = n
          break
        }
        case 'boolean': {
          if (one(body, `${key}.set`) === undefined && one(body, key) === undefined) break
          const v = one(body, key) !== undefined
          if (v !== f.default) row.options[f.name] = v
          break
        }
        case 'list': {
          const v = (one(body, key) ?? '')
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
          if (v.length) row.options[f.name] = v
          break
        }
        case 'multi': {
          if (one(body, `${key}.set`) === undefined && body[key] === undefined) break
          const v = many(body, key).filter((x) => f.values.includes(x))
          const same = f.default && v.length === f.default.length && v.every((x) => f.default!.includes(x))
          if (!same) row.options[f.name] = v
          break
        }
      }
    }
    rows.push(row)
  }
  return { rows, problems }
}

/** The entries a form's rows stand for. */
export function entriesOf(rows: FormRow[]): MixEntry[] {
  return rows.map((r) => ({ agent: r.agent, weight: r.weight as number, ...(Object.keys(r.options).length ? { options: r.options } : {}) }))
}

/**
 * A FieldError from the mix checks, naming `agents.<position>…`, as the form
 * field it is about: positions become the rows' form indexes.
 */
export function problemOf(err: FieldError, rows: FormRow[]): FieldProblem {
  const m = /^agents\.(\d+)(.*)$/.exec(err.field)
  const msg = err.message.startsWith(`${err.field}: `) ? err.message.slice(err.field.length + 2) : err.message
  if (m && rows[Number(m[1])]) return { field: `agents.${rows[Number(m[1])].index}${m[2]}`, message: msg }
  return { field: err.field, message: msg }
}

/**
 * The rendered field a problem belongs next to: the named field, else its
 * nearest rendered ancestor (`agents.1.options.include.3` → `…include`),
 * else the row, else the form.
 */
export function fieldForProblem(field: string, rendered: Set<string>): string {
  const parts = field.split('.')
  for (let n = parts.length; n > 0; n--) {
    const candidate = parts.slice(0, n).join('.')
    if (rendered.has(candidate)) return candidate
  }
  return 'form'
}
