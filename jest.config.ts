import type { Config } from 'jest';

// Three tiers, named by suffix (see CONVENTIONS): unit specs beside the code,
// integration specs against real Postgres and a real broker, e2e specs against
// the API and agents started as real processes.
const common = {
  moduleFileExtensions: ['js', 'json', 'ts'],
  rootDir: '.',
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.spec.json' }] },
  moduleNameMapper: {
    '^@app/protocol$': '<rootDir>/libs/protocol/src',
    '^@app/protocol/(.*)$': '<rootDir>/libs/protocol/src/$1',
    '^@app/edge$': '<rootDir>/libs/edge/src',
    '^@app/edge/(.*)$': '<rootDir>/libs/edge/src/$1',
  },
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
};

const config: Config = {
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs}/**/*.spec.ts'] },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/{apps,libs,test}/**/*.int-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/timeout-integration.ts'],
    },
    {
      ...common,
      displayName: 'e2e',
      testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup-e2e.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      setupFilesAfterEnv: ['<rootDir>/test/support/timeout-e2e.ts'],
    },
  ],
};

export default config;
