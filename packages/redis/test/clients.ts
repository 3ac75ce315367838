import { Cluster, Redis } from 'ioredis'
import { createClient, createCluster } from 'redis'
import { createClient as createClient6, createCluster as createCluster6 } from 'redis6'

/** A client of one library plus how to close it. */
export interface TestClient {
  name: string
  client: any
  /** CLIENT INFO `addr` of the connection commands go out on (single node only). */
  address(): Promise<string>
  quit(): Promise<void>
}

const addressFromInfo = (info: unknown) => /addr=(\S+)/.exec(String(info))?.[1] ?? ''

/** `node-redis-6*`: the same library at major 6 (what `npm install redis` gives today). */
export type SingleKind =
  | 'ioredis'
  | 'ioredis-resp2'
  | 'node-redis'
  | 'node-redis-resp3'
  | 'node-redis-6'
  | 'node-redis-6-resp3'

export async function singleClient(
  kind: SingleKind,
  port: number,
  extra: Record<string, unknown> = {},
): Promise<TestClient> {
  if (kind.startsWith('ioredis')) {
    const client = new Redis({
      host: '127.0.0.1',
      port,
      ...(kind === 'ioredis-resp2' ? { protocol: 2 } : {}),
      ...extra,
    } as any)
    client.on('error', () => {}) // connection errors surface as StoreErrors from the store
    return {
      name: kind,
      client,
      address: async () => addressFromInfo(await client.client('INFO')),
      quit: async () => {
        client.disconnect()
      },
    }
  }
  const create: (options: any) => any = kind.startsWith('node-redis-6') ? createClient6 : createClient
  const client = create({
    socket: { host: '127.0.0.1', port },
    ...(kind.endsWith('resp3') ? { RESP: 3 } : {}),
    ...extra,
  } as any)
  client.on('error', () => {})
  await client.connect()
  return {
    name: kind,
    client,
    address: async () => addressFromInfo(await client.sendCommand(['CLIENT', 'INFO'])),
    quit: async () => {
      client.destroy()
    },
  }
}

export type ClusterKind = 'ioredis-cluster' | 'node-redis-cluster' | 'node-redis-6-cluster'

export async function clusterClient(
  kind: ClusterKind,
  nodes: { host: string; port: number }[],
  extra: Record<string, unknown> = {},
): Promise<TestClient> {
  if (kind === 'ioredis-cluster') {
    const client = new Cluster(nodes, extra)
    client.on('error', () => {})
    await new Promise<void>((resolve, reject) => {
      client.once('ready', resolve)
      client.once('error', reject)
    })
    return {
      name: kind,
      client,
      address: async () => '',
      quit: async () => {
        client.disconnect()
      },
    }
  }
  const create: (options: any) => any = kind === 'node-redis-6-cluster' ? createCluster6 : createCluster
  const client = create({ rootNodes: nodes.map((n) => ({ socket: n })), ...extra } as any)
  client.on('error', () => {})
  await client.connect()
  return {
    name: kind,
    client,
    address: async () => '',
    quit: async () => {
      client.destroy()
    },
  }
}
