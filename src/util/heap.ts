import v8 from 'node:v8'

/**
 * How far V8 lets the old generation grow past what was live after the last full collection before it collects
 * again, in percent (V8's own factor moves between 1.1 and 4 with its measure of GC speed).
 *
 * @NOTE the main process churns through many short-lived cached objects (parsed snapshots, overlays, pages, list
 * builds) that outlive a young-generation collection: with V8's own factor its old generation grew to 2–3 times what
 * was live (heapUsed 750–816 MB before a full collection, 250–320 MB after, in 200k-post benchmarks), and pages V8
 * gives back stay in the process's RSS, so the peak stays. At 1.5 the peak heap was 372 MB (`node bench/run.ts
 * --store-posts 200000`), with no measurable cost to serving or refresh (docs/performance.md).
 */
export const HEAP_GROWING_PERCENT = 50

/** Bounds the old generation's growth (see HEAP_GROWING_PERCENT), unless the process was started with its own setting. */
export function boundHeapGrowth(): void {
  if (process.execArgv.some((a) => a.startsWith('--heap-growing-percent') || a.startsWith('--heap_growing_percent'))) return
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`)
}
