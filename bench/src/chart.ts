import * as vega from 'vega'
import * as vegaLite from 'vega-lite'
import type { ScenarioResult } from './harness.js'
import type { HttpFigure } from './http.js'

/** One bar: andromeda's figure over a peer's (or the floor's) in one scenario; above 1 is better. */
export interface RatioPoint {
  scenario: string
  against: string
  ratio: number
}

/** Throughput ratios: andromeda (the first figure of each scenario) ÷ every other contender. */
export function throughputRatios(results: ScenarioResult[], path: string): RatioPoint[] {
  return results.flatMap((result) => {
    const ours = result.figures[0]!
    return result.figures
      .slice(1)
      .map((f) => ({ scenario: `${path}: ${result.scenario}`, against: f.name, ratio: ours.median / f.median }))
  })
}

/** HTTP: each peer's added server CPU per request ÷ andromeda's (above 1: andromeda costs less). */
export function httpRatios(figures: HttpFigure[]): RatioPoint[] {
  const bare = (framework: string) => figures.find((f) => f.framework === framework)!
  const added = (f: HttpFigure) => Math.max(f.cpuMicrosPerRequest - bare(f.framework).cpuMicrosPerRequest, 0.1)
  const pairs: [string, string][] = [
    ['express-rate-limit (memory)', 'expressQuota + memory'],
    ['express-rate-limit (memory)', 'expressQuota + memory, refundWhen: false'],
    ['rate-limiter-flexible (memory) middleware', 'expressQuota + memory'],
    ['express-rate-limit + rate-limit-redis', 'expressQuota + redis'],
    ['rate-limiter-flexible (redis) middleware', 'expressQuota + redis'],
    ['@fastify/rate-limit (memory)', 'fastifyQuota + memory'],
    ['@fastify/rate-limit (memory)', 'fastifyQuota + memory, refundWhen: false'],
  ]
  return pairs.flatMap(([peer, ours]) => {
    const theirs = figures.find((f) => f.name === peer)
    const mine = figures.find((f) => f.name === ours)
    if (!theirs || !mine) return []
    return [
      { scenario: `HTTP: ${ours}, server CPU added per request`, against: peer, ratio: added(theirs) / added(mine) },
    ]
  })
}

/** The chart of every ratio, rendered to SVG with Vega-Lite (no canvas needed). */
export async function ratioChart(points: RatioPoint[], title: string): Promise<string> {
  const spec: vegaLite.TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    data: { values: points.map((p) => ({ ...p, ratio: Number(p.ratio.toFixed(3)) })) },
    width: 420,
    layer: [
      {
        mark: { type: 'bar', tooltip: true },
        encoding: {
          y: { field: 'scenario', type: 'nominal', title: null, sort: null, axis: { labelLimit: 420 } },
          yOffset: { field: 'against', type: 'nominal' },
          x: { field: 'ratio', type: 'quantitative', title: 'andromeda ÷ contender (above 1: andromeda ahead)' },
          color: {
            field: 'against',
            type: 'nominal',
            title: 'compared with',
            legend: { orient: 'bottom', columns: 2, labelLimit: 400 },
          },
        },
      },
      { mark: { type: 'rule', strokeDash: [4, 4] }, encoding: { x: { datum: 1 } } },
    ],
  }
  const { spec: compiled } = vegaLite.compile(spec)
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' })
  return view.toSVG()
}
