/**
 * chart.js is ESM-only; this file is type-checked as CommonJS (the repository's tsconfig),
 * so the library comes in through a dynamic import, which esbuild inlines into the bundle.
 */
function importChartJs() {
  return import('chart.js');
}

/** The chart.js module. */
export type ChartJs = Awaited<ReturnType<typeof importChartJs>>;
/** A chart instance. */
export type LineChart = InstanceType<ChartJs['Chart']>;

/**
 * chart.js with what both pages' line charts use registered (line, linear and category
 * scales, points, tooltip, legend): one place decides the components both pages draw with.
 */
export async function loadLineChart(): Promise<ChartJs['Chart']> {
  const chartJs = await importChartJs();
  chartJs.Chart.register(
    chartJs.CategoryScale,
    chartJs.Legend,
    chartJs.LineController,
    chartJs.LineElement,
    chartJs.LinearScale,
    chartJs.PointElement,
    chartJs.Tooltip,
  );
  return chartJs.Chart;
}
