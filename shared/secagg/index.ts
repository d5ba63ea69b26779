/**
 * Secure aggregation (Bonawitz et al. 2017 with double masking, SecAgg+ neighbour graph of
 * Bell et al. 2020), transport-free: the coordinator and both clients import this one entry.
 */
export * from './client';
export * from './graph';
export * from './in-memory-round';
export * from './messages';
export * from './packing';
export * from './params';
export * from './prg';
export * from './quantize';
export * from './round-ledger';
export * from './round-view';
export * from './server';
export * from './shamir';
export * from './unmask';
export { SECAGG_DOMAIN } from './encoding';
export type { CryptoBackend } from './crypto-primitives';
export { secAggCryptoBackends, setSecAggCryptoBackend } from './crypto-primitives';
