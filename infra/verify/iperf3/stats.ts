/**
 * Summary statistics of repeated runs: median, spread and a Student-t 95 % confidence interval of
 * the mean. Pure: no I/O, no Pulumi.
 */

/**
 * Two-sided 95 % critical values of Student's t (the 0.975 quantile) by degrees of freedom, from
 * the NIST/SEMATECH e-Handbook of Statistical Methods, table 1.3.6.7.2
 * (https://www.itl.nist.gov/div898/handbook/eda/section3/eda3672.htm). `iperf3Runs` is at most 20,
 * so df ≤ 19; larger df use the largest tabulated df not above them (a slightly wider, safe interval).
 */
export const T_975: ReadonlyMap<number, number> = new Map([
  [1, 12.706],
  [2, 4.303],
  [3, 3.182],
  [4, 2.776],
  [5, 2.571],
  [6, 2.447],
  [7, 2.365],
  [8, 2.306],
  [9, 2.262],
  [10, 2.228],
  [11, 2.201],
  [12, 2.179],
  [13, 2.16],
  [14, 2.145],
  [15, 2.131],
  [16, 2.12],
  [17, 2.11],
  [18, 2.101],
  [19, 2.093],
  [20, 2.086],
  [21, 2.08],
  [22, 2.074],
  [23, 2.069],
  [24, 2.064],
  [25, 2.06],
  [26, 2.056],
  [27, 2.052],
  [28, 2.048],
  [29, 2.045],
  [30, 2.042],
  [40, 2.021],
  [50, 2.009],
  [60, 2.0],
  [80, 1.99],
  [100, 1.984],
]);

/** t(0.975, df) from {@link T_975}. */
export function tCritical975(df: number): number {
  if (!Number.isInteger(df) || df < 1) {
    throw new RangeError(`Student t needs a whole number of degrees of freedom >= 1 (got ${df}).`);
  }
  let best = 12.706;
  for (const [d, t] of T_975) {
    if (d <= df) {
      best = t;
    }
  }
  return best;
}

/** The formula behind every `ci95`, spelled out in outputs. */
export const CI95_METHOD =
  "mean ± t(0.975, n−1) · s / √n, s the sample standard deviation (n−1 denominator), t from NIST's table; needs n ≥ 2";

/** A 95 % confidence interval of the mean. */
export interface Interval {
  readonly low: number;
  readonly high: number;
}

/** Summary statistics of n ≥ 1 values, in one unit. */
export interface Stats {
  /** What the numbers are, e.g. `MiB/s`. */
  readonly unit: string;
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  /** Sample standard deviation (n−1); `null` for n = 1. */
  readonly stdev: number | null;
  /** 95 % confidence interval of the mean ({@link CI95_METHOD}); `null` for n = 1. */
  readonly ci95: Interval | null;
}

/** The median of sorted values. */
function medianOfSorted(sorted: readonly number[]): number {
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Median, min, max, mean, sample standard deviation and 95 % CI (Student t) of `values`. */
export function describe(values: readonly number[], unit: string): Stats {
  if (values.length === 0) {
    throw new RangeError(`no values to describe (${unit})`);
  }
  if (values.some((v) => !Number.isFinite(v))) {
    throw new RangeError(`values must be finite numbers (${unit}): ${values.join(", ")}`);
  }
  const n = values.length;
  const sorted = [...values].sort((a, b) => a - b);
  const mean = values.reduce((s, v) => s + v, 0) / n;
  let stdev: number | null = null;
  let ci95: Interval | null = null;
  if (n >= 2) {
    const ss = values.reduce((s, v) => s + (v - mean) ** 2, 0);
    stdev = Math.sqrt(ss / (n - 1));
    const half = (tCritical975(n - 1) * stdev) / Math.sqrt(n);
    ci95 = { low: mean - half, high: mean + half };
  }
  return {
    unit,
    n,
    median: medianOfSorted(sorted),
    min: sorted[0] as number,
    max: sorted[n - 1] as number,
    mean,
    stdev,
    ci95,
  };
}

/** The same statistics in another unit: every field is linear in the values, so it scales exactly. */
export function scaleStats(stats: Stats, factor: number, unit: string): Stats {
  return {
    unit,
    n: stats.n,
    median: stats.median * factor,
    min: stats.min * factor,
    max: stats.max * factor,
    mean: stats.mean * factor,
    stdev: stats.stdev === null ? null : stats.stdev * factor,
    ci95: stats.ci95 === null ? null : { low: stats.ci95.low * factor, high: stats.ci95.high * factor },
  };
}
