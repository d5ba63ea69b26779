import { CohortError } from '../../shared/errors';
import type { RoundRecordInput, RoundStatus, RoundSummary } from './store-types';

/** Largest value of the 32-bit integer columns (durations, counts, example counts). */
const INT32_MAX = 2 ** 31 - 1;

/**
 * Checks the rules of RoundRecordInput before anything is written, so that a coordinator bug
 * surfaces as a clear CohortError INTERNAL instead of a half-written round or a cryptic
 * constraint violation.
 */
export function validateRoundRecord(input: RoundRecordInput): void {
  const where = `round ${input.number}`;
  const fail = (message: string): never => {
    throw new CohortError('INTERNAL', `recordRound(${where}): ${message}`);
  };
  if (input.status !== 'completed' && input.status !== 'failed') {
    fail(`unknown status ${String(input.status)}`);
  }
  if (input.status === 'completed') {
    if (input.checkpoint === null) fail('a completed round needs its checkpoint');
    if (input.failureReason !== null || input.failureCode !== null) {
      fail('a completed round has no failure reason or code');
    }
  } else {
    if (input.checkpoint !== null) fail('a failed round has no checkpoint');
    if (input.failureReason === null || input.failureReason === '') {
      fail('a failed round needs a failure reason');
    }
  }
  const counts: Array<[string, number, number]> = [
    ['number', input.number, INT32_MAX],
    ['durationMs', input.durationMs, INT32_MAX],
    ['participants', input.participants, INT32_MAX],
    ['dropped', input.dropped, INT32_MAX],
    ['bytesReceived', input.bytesReceived, Number.MAX_SAFE_INTEGER],
  ];
  for (const participation of input.participations) {
    counts.push([`numExamples of ${participation.clientId}`, participation.numExamples, INT32_MAX]);
  }
  for (const [name, value, max] of counts) {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      fail(`${name} must be an integer in [0, ${max}], got ${value}`);
    }
  }
  if (input.number < 1) fail('round numbers start at 1');
  if (Number.isNaN(input.startedAt.getTime()) || Number.isNaN(input.finishedAt.getTime())) {
    fail('startedAt and finishedAt must be valid dates');
  }
  const seen = new Set<string>();
  for (const participation of input.participations) {
    if (seen.has(participation.clientId)) fail(`client ${participation.clientId} listed twice`);
    seen.add(participation.clientId);
  }
}

/** Stores NaN and infinities as null: SQLite cannot hold them and both databases must agree. */
export function finiteOrNull(value: number | null | undefined): number | null {
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/**
 * Copies bytes into a fresh Uint8Array over its own ArrayBuffer: the API hands out plain
 * Uint8Array (not Buffer views into a shared pool) and Prisma wants ArrayBuffer-backed input.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy;
}

/** A round row with its relations, as both generated Prisma clients return it. */
export interface RoundRow {
  number: number;
  attempt: number;
  status: string;
  failureReason: string | null;
  failureCode: string | null;
  secureAggregation: boolean;
  startedAt: Date;
  finishedAt: Date;
  durationMs: number;
  participantsCount: number;
  droppedCount: number;
  bytesReceived: bigint;
  trainLoss: number | null;
  testLoss: number | null;
  testAccuracy: number | null;
  participations: Array<{
    clientId: string;
    status: string;
    numExamples: number;
    errorCode: string | null;
    client: { displayName: string | null; platform: string };
  }>;
  metrics: Array<{ key: string; value: number | null }>;
  checkpoint: { modelHash: string; createdAt: Date } | null;
}

/** Maps a stored round to the API's RoundSummary (participations ordered by client id). */
export function toRoundSummary(row: RoundRow): RoundSummary {
  return {
    number: row.number,
    attempt: row.attempt,
    status: roundStatus(row.status),
    failureReason: row.failureReason,
    failureCode: row.failureCode,
    secureAggregation: row.secureAggregation,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    durationMs: row.durationMs,
    participants: row.participantsCount,
    dropped: row.droppedCount,
    bytesReceived: Number(row.bytesReceived),
    trainLoss: row.trainLoss,
    testLoss: row.testLoss,
    testAccuracy: row.testAccuracy,
    participations: row.participations
      .map((p) => ({
        clientId: p.clientId,
        displayName: p.client.displayName,
        platform: p.client.platform,
        status: participationStatus(p.status),
        numExamples: p.numExamples,
        errorCode: p.errorCode,
      }))
      .sort((a, b) => (a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0)),
    metrics: Object.fromEntries(row.metrics.map((m) => [m.key, m.value])),
    checkpoint: row.checkpoint
      ? { modelHash: row.checkpoint.modelHash, createdAt: row.checkpoint.createdAt }
      : null,
  };
}

const ROUND_STATUSES: readonly RoundStatus[] = ['running', 'completed', 'failed', 'aborted'];

function roundStatus(status: string): RoundStatus {
  const known = ROUND_STATUSES.find((s) => s === status);
  if (known) return known;
  throw new CohortError('DATABASE_ERROR', `unknown round status "${status}" in database`);
}

function participationStatus(status: string): 'completed' | 'dropped' | 'rejected' {
  if (status === 'completed' || status === 'dropped' || status === 'rejected') return status;
  throw new CohortError('DATABASE_ERROR', `unknown participation status "${status}" in database`);
}
