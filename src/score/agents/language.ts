import { z } from 'zod'
import { defineAgent, DROP, SDK_API_VERSION } from '../sdk.ts'

/** Keeps posts written in one of the chosen languages; drops the rest. */
export default defineAgent({
  id: 'language',
  version: '1.0.0',
  title: 'Language',
  description: 'Keeps posts declared in one of the chosen languages (ISO 639 codes such as "en", "ja"); drops the others.',
  api: SDK_API_VERSION,
  options: z.object({
    langs: z
      .array(z.string().regex(/^[a-zA-Z]{2,3}(-[a-zA-Z0-9]+)*$/, 'a language code such as "en" or "pt-BR"'))
      .min(1)
      .max(20)
      .transform((l) => l.map((x) => x.toLowerCase().split('-')[0])),
    /** keep posts that declare no language at all */
    keepUndeclared: z.boolean().default(false),
  }),
  needs: ['langs'],
  scoreBatch(posts, { options }) {
    const wanted = new Set(options.langs)
    return posts.map((p) => {
      if (p.langs.length === 0) return options.keepUndeclared ? 0 : DROP
      return p.langs.some((l) => wanted.has(l)) ? 1 : DROP
    })
  },
})
