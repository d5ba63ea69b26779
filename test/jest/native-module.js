/**
 * The moduleNameMapper target for packages loaded outside jest's vm context (see
 * environment.js). Jest hands this file the request through the mapped name's capture group
 * in a per-package stub; each stub is one line.
 */
module.exports = function nativeRequire(name) {
  const load = globalThis.__cohortNativeRequire;
  if (typeof load !== 'function') {
    throw new Error(`${name}: run under test/jest/environment.js (jest.config.js testEnvironment)`);
  }
  return load(name);
};
