/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: require.resolve('./test/jest/environment.js'),
  // Pure-JS crypto runs outside jest's vm context, at production speed (see the environment).
  moduleNameMapper: {
    '^tweetnacl$': '<rootDir>/test/jest/native-tweetnacl.js',
    '^shamir-secret-sharing$': '<rootDir>/test/jest/native-shamir-secret-sharing.js',
  },
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.(t|j)sx?$': ['@swc/jest', { jsc: { target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  testTimeout: 120000,
  maxWorkers: 2,
  // Tests run in a new order every time (the seed is printed), so none can lean on another's
  // leftovers; rerun an order with `npx jest --seed=N`.
  randomize: true,
  showSeed: true,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
