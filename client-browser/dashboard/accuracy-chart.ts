import type { DashboardRound } from '../../shared/protocol/web';
import { formatLoss, formatPercent } from './format';
import type { ChartPoint } from './hook';
import type { LineChart } from '../ui/line-chart';
import { loadLineChart } from '../ui/line-chart';

const ACCURACY_COLOUR = '#2f6fde';
const LOSS_COLOUR = '#d9822b';

/**
 * The points the chart plots: one per round that completed with a test accuracy, oldest
 * first. A round retried after a failure appears once, with its latest completed attempt.
 */
export function chartPointsOf(history: readonly DashboardRound[]): ChartPoint[] {
  const byRound = new Map<number, DashboardRound>();
  for (const entry of history) {
    if (entry.status !== 'completed' || entry.testAccuracy === null) continue;
    const seen = byRound.get(entry.round);
    if (seen === undefined || entry.attempt >= seen.attempt) byRound.set(entry.round, entry);
  }
  return [...byRound.values()]
    .sort((a, b) => a.round - b.round)
    .map((entry) => ({ round: entry.round, accuracy: entry.testAccuracy, loss: entry.testLoss }));
}

/**
 * The global model's test accuracy (left axis, 0–100%) and test loss (right axis) per
 * round: one chart.js line chart, created once and updated in place without animation, so
 * a snapshot every second neither flickers nor leaks charts.
 */
export class AccuracyChart {
  private chart: LineChart | null = null;
  private pending: ChartPoint[] = [];

  /** @param onPlotted told what the chart plots after every update (the test hook). */
  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly onPlotted: (points: ChartPoint[]) => void,
  ) {}

  /** Loads chart.js and draws; until then (and if it fails) updates are just kept. */
  async start(): Promise<void> {
    const Chart = await loadLineChart();
    this.chart = new Chart(this.canvas, {
      type: 'line',
      data: {
        labels: [],
        datasets: [
          {
            label: 'test accuracy',
            data: [],
            yAxisID: 'accuracy',
            borderColor: ACCURACY_COLOUR,
            backgroundColor: ACCURACY_COLOUR,
            pointRadius: 3,
            spanGaps: true,
          },
          {
            label: 'test loss',
            data: [],
            yAxisID: 'loss',
            borderColor: LOSS_COLOUR,
            backgroundColor: LOSS_COLOUR,
            borderDash: [5, 4],
            pointRadius: 3,
            spanGaps: true,
          },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        interaction: { mode: 'index', intersect: false },
        plugins: {
          legend: { position: 'bottom', labels: { usePointStyle: true, boxHeight: 7 } },
          tooltip: {
            callbacks: {
              label: (item) => {
                const value = typeof item.raw === 'number' ? item.raw : null;
                return item.datasetIndex === 0
                  ? `test accuracy ${formatPercent(value)}`
                  : `test loss ${formatLoss(value)}`;
              },
            },
          },
        },
        scales: {
          x: { title: { display: true, text: 'round' } },
          accuracy: {
            type: 'linear',
            position: 'left',
            min: 0,
            max: 1,
            title: { display: true, text: 'test accuracy' },
            ticks: { callback: (value) => formatPercent(Number(value), 0) },
          },
          loss: {
            type: 'linear',
            position: 'right',
            beginAtZero: true,
            title: { display: true, text: 'test loss' },
            grid: { drawOnChartArea: false },
          },
        },
      },
    });
    this.update(this.pending);
  }

  /** Plots `points` (from {@link chartPointsOf}) in place of what was there. */
  update(points: ChartPoint[]): void {
    this.pending = points;
    const chart = this.chart;
    if (chart === null) return;
    chart.data.labels = points.map((point) => String(point.round));
    const [accuracy, loss] = chart.data.datasets;
    if (accuracy) accuracy.data = points.map((point) => point.accuracy);
    if (loss) loss.data = points.map((point) => point.loss);
    chart.update('none');
    this.onPlotted(points.map((point) => ({ ...point })));
  }
}
