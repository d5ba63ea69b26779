/**
 * Loads `name` with Node's own require (outside jest's vm context; see environment.js). Each
 * package listed in jest.config.js's moduleNameMapper has a one-line stub calling this.
 */
module.exports = function nativeRequire(name) {
  const load = globalThis.__cohortNativeRequire;
  if (typeof load !== 'function') {
    throw new Error(`${name}: run under test/jest/environment.js (jest.config.js testEnvironment)`);
  }
  return load(name);
};
