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
      '= finish(): rebuilding seeds and keys and removing self and pairwise masks.',
    'sent/client = mean over full-round clients of their five responses as socket.io would ' +
      'send them: binary fields at their byteLength plus the JSON text with placeholders ' +
      '(packet prefix, WebSocket framing and TCP/TLS left out). vs float32 = that / (params x ' +
      '4 bytes), the size of a plain float32 update.',
    'Dropout: round(d x n) clients from a seeded shuffle go silent, cycling after ShareKeys ' +
      '(their pairwise masks must be rebuilt and expanded by the coordinator: the expensive ' +
      'case), after MaskedInput and after the consistency check. "in mean" counts clients ' +
      'whose input is in the result; the plain round aggregates exactly those.',
    'check vs plain: the secure mean equals StreamingWeightedMean over the same updates ' +
      'within survivors / (scale x total weight) + 1e-6 (stochastic rounding), with identical ' +
      'total weight; "% of tol" is the worst element. Clip range 0.1, updates uniform in ' +
      '[-0.05, 0.05), 10-109 examples per client, default weight cap and scale.',
    'Graph: complete (Bonawitz et al. 2017) up to 100 clients; SecAgg+ (Bell et al. 2020) with ' +
      'the k chooseSecAggParams picks at 200 (k=80), and k forced to 70 in the extra ' +
      '100-client rows. t = Shamir threshold, by default ceil(2/3 of the k+1 holders). ' +
      '"aborted: SECAGG_BELOW_THRESHOLD": the coordinator output nothing because some secret ' +
      'it must rebuild had fewer than t share holders still answering. At 200 clients, 30% ' +
      'random dropout leaves some 81-holder neighbourhood below t=54 (correct behaviour, but a ' +
      'deployment expecting that much dropout needs a larger k or a lower t); the row after it ' +
      'uses t=41, the lowest that stays above half of a neighbourhood. SecAgg+ k=70 at 100 ' +
      'clients (t=48 of 71) aborts likewise at 30%, so its rows are 0% and 10%.',
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
