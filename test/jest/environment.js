const { TestEnvironment } = require('jest-environment-node');

/**
 * Jest's Node environment plus one thing: the packages listed in jest.config.js's
 * moduleNameMapper (pure-JS crypto: tweetnacl, shamir-secret-sharing) are loaded by Node's own
 * `require`, outside jest's vm context. Code compiled inside a vm context pays for every
 * global lookup (`Float64Array`, `Math`) through the context's interceptors; for tweetnacl and
 * the Shamir field arithmetic that made them 20-70x slower under jest than in production,
 * which made every secure-aggregation suite slow. Typed arrays cross freely: jest's
 * environment already shares Node's Uint8Array and ArrayBuffer.
 */
class CohortTestEnvironment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    this.global.__cohortNativeRequire = require;
  }
}

module.exports = CohortTestEnvironment;
