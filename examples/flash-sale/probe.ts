import { consumeAll } from '@andromeda/core'
import { createFlashSale } from './src/app.ts'
import { openDatabase } from './src/db.ts'
import { openStore } from './src/store.ts'
const db = await openDatabase({ url: 'postgres://postgres@127.0.0.1:5432/postgres', tablePrefix: 'andromeda_demo_probe_' }); await db.dropTables(); await db.migrate(); await db.upsertVouchers([{ code: 'A', limit: 100 }])
const st = await openStore({ url: 'redis://127.0.0.1:6379', prefix: 'andromeda-demo:probe:' }); await st.deleteOwnKeys()
const calls = new Map<string, number[]>()
const store = new Proxy(st.store, { get(t, p) { const v = (t as any)[p]; if (typeof v !== 'function') return v; return async (...a: any[]) => { const s = performance.now(); try { return await v.apply(t, a) } finally { const k = String(p); if (!calls.has(k)) calls.set(k, []); calls.get(k)!.push(performance.now() - s) } } } })
const origCount = db.countClaims
let dbt: number[] = []
db.countClaims = async (...a) => { const s = performance.now(); try { return await origCount(...a) } finally { dbt.push(performance.now() - s) } }
const sale = createFlashSale({ db, store, attemptsPerMinute: null })
for (const round of [1,2,3]) {
 calls.clear(); dbt = []
const t = performance.now()
const lat = await Promise.all(Array.from({ length: 200 }, async (_, i) => { const s = performance.now(); await consumeAll([{ quota: sale.perUser, id: `u${round}-${i}:A` }, { quota: sale.vouchers, id: 'A' }]); return performance.now() - s }))
console.log('total', (performance.now() - t).toFixed(0), 'max', Math.max(...lat).toFixed(0))
for (const [k, v] of calls) console.log(k, v.length, 'max', Math.max(...v).toFixed(1), 'sum', v.reduce((a, b) => a + b, 0).toFixed(0))
console.log('db count', dbt.length, 'max', Math.max(...dbt).toFixed(1))
}
await db.dropTables(); await st.deleteOwnKeys(); await st.close(); await db.close()
