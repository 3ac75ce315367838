import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { type OwnRedis, startRedis, waitFor } from '@andromeda/test-utils'

const run = promisify(execFile)

export {
  freePort,
  hasRedisServerBinary,
  IN_CI,
  type OwnRedis,
  randomPrefix,
  redisAnswers as canConnect,
  requireService,
  SHARED_REDIS,
  startRedis,
} from '@andromeda/test-utils'

/** A local 3-primary Redis Cluster on loopback ports. */
export interface OwnCluster {
  readonly nodes: { host: string; port: number }[]
  stop(): Promise<void>
}

export async function startCluster(): Promise<OwnCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'andromeda-cluster-'))
  const servers: OwnRedis[] = []
  try {
    for (let i = 0; i < 3; i++) {
      const nodeDir = join(dir, `n${i}`)
      await run('mkdir', ['-p', nodeDir])
      servers.push(
        await startRedis(
          [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(nodeDir, 'nodes.conf'),
            '--cluster-node-timeout',
            '5000',
          ],
          undefined,
          nodeDir,
        ),
      )
    }
    const addresses = servers.map((s) => `127.0.0.1:${s.port}`)
    await run('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-replicas', '0', '--cluster-yes'])
    await waitFor(async () => {
      for (const s of servers) {
        const { stdout } = await run('redis-cli', ['-p', String(s.port), 'cluster', 'info'])
        if (!stdout.includes('cluster_state:ok')) return false
      }
      return true
    }, 'cluster_state:ok')
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop()))
    rmSync(dir, { recursive: true, force: true })
    throw error
  }
  return {
    nodes: servers.map((s) => ({ host: '127.0.0.1', port: s.port })),
    async stop() {
      await Promise.all(servers.map((s) => s.stop()))
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Delete every key under `prefix` through an ioredis client (SCAN + UNLINK, never FLUSH). */
export async function deleteKeys(client: import('ioredis').Redis, prefix: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) await client.unlink(...keys)
  } while (cursor !== '0')
}
