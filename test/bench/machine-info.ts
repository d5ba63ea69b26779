/**
 * A description of the machine a result came from, stored with every result file: numbers
 * from a 2-core shared VM and from a workstation are not comparable without it.
 */
import { cpus, platform, release, totalmem } from 'node:os';
import * as tf from '@tensorflow/tfjs';

/** Facts about the host and the tfjs runtime at the time of a run. */
export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  tfjs: string;
  /** The tfjs backend active when the suite finished (null when none was ever set). */
  tfjsBackend: string | null;
}

/** Describes this machine and the tfjs backend currently active. */
export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpuModel: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    os: `${platform()} ${release()}`,
    node: process.version,
    tfjs: tf.version_core,
    tfjsBackend: tf.getBackend() ?? null,
  };
}
