import type { SummaryRecord } from './page-state';
import type { LineChart } from '../ui/line-chart';
import { loadLineChart } from '../ui/line-chart';

/**
 * The global model's test accuracy after each round, as the coordinator reports it in its
 * round summaries: a line chart (chart.js, only the components it needs registered, no
 * animation) in the page's canvas. Rounds without an accuracy (failed, or evaluation off)
 * leave a gap.
 */
export class AccuracyChart {
  private chart: LineChart | null = null;
  private pending: readonly SummaryRecord[] = [];

  constructor(private readonly canvas: HTMLCanvasElement) {}

  /** Loads chart.js and draws; until then (and if it fails) updates are just kept. */
  async start(): Promise<void> {
    const Chart = await loadLineChart();
    this.chart = new Chart(this.canvas, {
      type: 'line',
      data: {
        labels: [],
        datasets: [
          {
            label: 'global test accuracy (%)',
            data: [],
            borderColor: '#2f6fde',
            backgroundColor: '#2f6fde',
            pointRadius: 3,
            spanGaps: false,
          },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        scales: {
          x: { title: { display: true, text: 'round' } },
          y: { min: 0, max: 100, title: { display: true, text: 'accuracy %' } },
        },
      },
    });
    this.update(this.pending);
  }

  /** Redraws from every summary received so far. */
  update(summaries: readonly SummaryRecord[]): void {
    this.pending = summaries;
    const chart = this.chart;
    if (chart === null) return;
    const byRound = new Map<number, number | null>();
    for (const s of summaries) {
      byRound.set(s.round, s.testAccuracy !== null ? s.testAccuracy * 100 : null);
    }
    const rounds = [...byRound.keys()].sort((a, b) => a - b);
    chart.data.labels = rounds.map(String);
    const dataset = chart.data.datasets[0];
    if (dataset) dataset.data = rounds.map((round) => byRound.get(round) ?? null);
    chart.update();
  }
}
