declare module 'wink-sentiment' {
  interface WinkSentimentResult {
    score: number
    normalizedScore: number
    tokenizedPhrase: { value: string; tag: string; score?: number; negation?: boolean }[]
  }
  function sentiment(phrase: string): WinkSentimentResult
  export default sentiment
}
