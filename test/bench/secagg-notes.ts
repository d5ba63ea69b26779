/**
 * How to read the secagg table: what each column measures, how the round is simulated, the
 * correctness check, and the published anchors it is meant to be compared with. Kept apart
 * from the suite so the measuring code stays short.
 */

/** The notes printed under the table, then `skipped` (what this run left out and why). */
export function secAggNotes(skipped: readonly string[]): string[] {
  return [
    'One process, clients simulated one after another: "secure round s" and "plain round ms" ' +
      "are the summed wall time of every party's timed work (client phase calls and " +
      'coordinator calls; update generation excluded), i.e. a round with no network and no ' +
      'parallelism between clients. secure/plain compares the two on the same cohort and ' +
      'dropouts. In a deployment clients run in parallel, so wall time is closer to one ' +
      "client's CPU plus the coordinator's.",
    'Each case runs its secure round once (the plain round 3 times, median kept). On the ' +
      'shared 2-core VM these numbers came from, rerunning one case moved client CPU by up to ' +
      '~50%: read trends across rows, not the second digit.',
    "CPU = process.cpuUsage (user + system, all threads, so WebCrypto's AES-CTR and X25519 " +
      'work on the libuv pool counts) around each call. client CPU = mean over clients that ' +
      'answered all five phases; coord. CPU = all receive/close/finish calls; "of it unmask" ' +
      '= finish(): rebuilding seeds and keys and removing self and pairwise masks, on the ' +
      "coordinator's unmask worker pool (one thread per core, each over a slice of the " +
      'vector, as `cohort coordinator` runs it); "unmask wall" is how long the round waits ' +
      'for it.',
    'sent/client = mean over full-round clients of their five responses as socket.io would ' +
      'send them: binary fields at their byteLength plus the JSON text with placeholders ' +
      '(packet prefix, WebSocket framing and TCP/TLS left out). vs float32 = that / (params x ' +
      '4 bytes), the size of a plain float32 update.',
    'Dropout: round(d x n) clients from a seeded shuffle go silent, cycling after ShareKeys ' +
      '(their pairwise masks must be rebuilt and expanded by the coordinator: the expensive ' +
      'case), after MaskedInput and after the consistency check. "in mean" counts clients ' +
      'whose input is in the result; the plain round aggregates exactly those.',
    'check vs plain: the secure mean equals StreamingWeightedMean over the same updates, and ' +
      'the secure mean train loss (masked as one more element, next to the weight) the plain ' +
      'example-weighted loss, within survivors / (scale x total weight) + 1e-6 (stochastic ' +
      'rounding; the loss error is first scaled by clip / 64, the scale it is masked at), with ' +
      'identical total weight; "% of tol" is the worst element. Clip range ' +
      '0.1, updates uniform in [-0.05, 0.05), losses in [0, 0.05), 10-109 examples per ' +
      'client, default weight cap and the derived scale.',
    'Graph: complete (Bonawitz et al. 2017) up to 100 clients; SecAgg+ (Bell et al. 2020) ' +
      'above, k = 10 x ceil(log2 n) rounded up to even (k=80 at 200). t = Shamir threshold, ' +
      'max(3, ceil(2/3 of the k+1 holders)). Every client derives k and t itself from the ' +
      'number of signed advertisements (graphParams) and refuses a config that names them, so ' +
      'no run can force either: the earlier t=41 row at 200 clients and the k=70 rows at 100 ' +
      'clients are gone. "aborted: SECAGG_BELOW_THRESHOLD": the coordinator output nothing ' +
      'because some secret it must rebuild had fewer than t share holders still answering. At ' +
      '200 clients, 30% random dropout leaves some 81-holder neighbourhood below t=54: correct ' +
      'behaviour (a lower t would resist fewer colluders, 2t - m - 1 of them), and a deployment ' +
      'expecting that much dropout must expect such rounds to fail.',
    'Anchors: Bonawitz et al. (CCS 2017) report ~1.7x bandwidth expansion and minutes of ' +
      'server time at 500-1000 clients with 10-30% dropout. Their 1.7x is against 16-bit ' +
      'values sent in the clear; here masked elements are 32-bit and the baseline is a float32 ' +
      'update, so the ratio is 1.0x plus key and share overhead (about 2x against a 16-bit ' +
      'plain update). Server times are not like for like either (other implementation, ' +
      "machine and sizes). Flower's SecAgg+ seeds its mask generator with 32 bits (an open " +
      'issue) and has no consistency check; Cohort expands masks with AES-256-CTR from 256-bit ' +
      'seeds and runs the signed consistency check (every survivor signs the survivor list ' +
      'before any share is revealed).',
    ...skipped,
  ];
}
