/**
 * The registry of benchmark suites, in the order `npm run bench` runs them. Adding a suite is
 * one import and one entry here.
 */
import { accuracySuite } from './accuracy-suite';
import { aggregationSuite } from './aggregation-suite';
import { browserSuite } from './browser-suite';
import { clusterSuite } from './cluster-suite';
import type { BenchSuite } from './bench-types';
import { loadSuite } from './load-suite';
import { roundSuite } from './round-suite';
import { secaggSuite } from './secagg-suite';
import { trainingSuite } from './training-suite';

/** Suites by name. */
export const SUITES: Readonly<Record<string, BenchSuite>> = {
  aggregation: aggregationSuite,
  training: trainingSuite,
  secagg: secaggSuite,
  browser: browserSuite,
  load: loadSuite,
  round: roundSuite,
  accuracy: accuracySuite,
  cluster: clusterSuite,
};
