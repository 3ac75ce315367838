import { Socket } from 'node:net'

/** A RESP2 reply: string, integer, null, an array of them, or an error reply. */
export type Reply = string | number | null | Reply[] | ReplyError

export class ReplyError extends Error {}

/** Parse one reply at `at`; undefined when the buffer holds only part of it. */
function parse(buffer: Buffer, at: number): { value: Reply; end: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', at)
  if (lineEnd < 0) return undefined
  const line = buffer.toString('utf8', at + 1, lineEnd)
  const next = lineEnd + 2
  switch (String.fromCharCode(buffer[at]!)) {
    case '+':
      return { value: line, end: next }
    case '-':
      return { value: new ReplyError(line), end: next }
    case ':':
      return { value: Number(line), end: next }
    case '$': {
      const length = Number(line)
      if (length < 0) return { value: null, end: next }
      if (buffer.length < next + length + 2) return undefined
      return { value: buffer.toString('utf8', next, next + length), end: next + length + 2 }
    }
    case '*': {
      const count = Number(line)
      if (count < 0) return { value: null, end: next }
      const items: Reply[] = []
      let end = next
      for (let i = 0; i < count; i++) {
        const item = parse(buffer, end)
        if (!item) return undefined
        items.push(item.value)
        end = item.end
      }
      return { value: items, end }
    }
    default:
      throw new Error(`unexpected RESP type "${line}"`)
  }
}

/**
 * Send one command to 127.0.0.1:port on a connection of its own and return the reply (an
 * error reply rejects). For the tests' admin work on the servers they own: cluster set-up,
 * roles, failovers. Rejects after `timeoutMs`.
 */
export function command(port: number, args: (string | number)[], timeoutMs = 2000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const socket = new Socket()
    let buffer = Buffer.alloc(0)
    const done = (error: Error | undefined, value?: Reply) => {
      socket.destroy()
      if (error) reject(error)
      else resolve(value ?? null)
    }
    socket.setTimeout(timeoutMs, () =>
      done(new Error(`no reply from port ${port} to ${String(args[0])} within ${timeoutMs} ms`)),
    )
    socket.once('error', (error) => done(error))
    socket.connect(port, '127.0.0.1', () => {
      const parts = args.map(String)
      socket.write(`*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`)
    })
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk])
      const reply = parse(buffer, 0)
      if (!reply) return
      if (reply.value instanceof ReplyError) done(reply.value)
      else done(undefined, reply.value)
    })
  })
}

/** `INFO <section>` as a map of its `field:value` lines. */
export async function info(port: number, section: string): Promise<Map<string, string>> {
  const text = String(await command(port, ['INFO', section]))
  const fields = new Map<string, string>()
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1))
  }
  return fields
}
