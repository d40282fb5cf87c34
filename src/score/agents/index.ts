import type { AgentDefinition } from '../sdk.ts'
import authorDiversity from './author-diversity.ts'
import calm from './calm.ts'
import engagement from './engagement.ts'
import follows from './follows.ts'
import friendsLiked from './friends-liked.ts'
import hashtags from './hashtags.ts'
import keyword from './keyword.ts'
import labels from './labels.ts'
import language from './language.ts'
import likeMinded from './like-minded.ts'
import media from './media.ts'
import postType from './post-type.ts'
import recency from './recency.ts'
import topics from './topics.ts'

/** The built-in agents, keyed by id. */
export const BUILTIN_AGENTS: ReadonlyMap<string, AgentDefinition> = new Map(
  [recency, keyword, language, engagement, hashtags, media, postType, authorDiversity, calm, labels, follows, friendsLiked, likeMinded, topics].map((a) => [
    a.id,
    a as AgentDefinition,
  ]),
)
