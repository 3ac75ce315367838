/** What a completion used, in tokens, as language model APIs report it. */
export interface Completion {
  text: string
  inputTokens: number
  outputTokens: number
}

/** The slice of a language model API the service calls. */
export interface Model {
  /** Complete `prompt` with at most `maxTokens` output tokens; rejects when `signal` aborts. */
  complete(prompt: string, options: { maxTokens: number; signal: AbortSignal }): Promise<Completion>
}

/**
 * A stand-in for a language model API: it answers `delayMs` after the call (or when `signal`
 * aborts, with its reason), counts about 4 bytes of prompt to a token as byte-level tokenizers
 * do, and writes `min(maxTokens, 40)` tokens of output.
 */
export function createStubModel(options: { delayMs?: number } = {}): Model {
  const delayMs = options.delayMs ?? 0
  return {
    complete(prompt, { maxTokens, signal }) {
      return new Promise((resolve, reject) => {
        signal.throwIfAborted()
        const timer = setTimeout(() => {
          signal.removeEventListener('abort', onAbort)
          const outputTokens = Math.min(maxTokens, 40)
          resolve({
            text: `(${outputTokens} tokens about "${prompt.slice(0, 40)}")`,
            inputTokens: Math.ceil(Buffer.byteLength(prompt) / 4),
            outputTokens,
          })
        }, delayMs)
        const onAbort = () => {
          clearTimeout(timer)
          reject(signal.reason)
        }
        signal.addEventListener('abort', onAbort, { once: true })
      })
    },
  }
}
