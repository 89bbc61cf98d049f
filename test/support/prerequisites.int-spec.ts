import { describeWhen, missingNeeds } from './prerequisites';

describe('describeWhen: suites that need root or system tools', () => {
  const saved = process.env.CI;
  afterEach(() => {
    if (saved === undefined) delete process.env.CI;
    else process.env.CI = saved;
    jest.restoreAllMocks();
  });

  it('should find tools on PATH and by absolute path, and name the missing ones', () => {
    expect(missingNeeds({ tools: ['sh', process.execPath] })).toBeUndefined();
    expect(missingNeeds({ tools: ['sh', 'no-such-tool-x1'], install: 'apt-get install x1' })).toBe(
      'missing no-such-tool-x1 (apt-get install x1)',
    );
  });

  it('should report "not root" only to a non-root user', () => {
    expect(missingNeeds({ root: true }) === 'not root').toBe(process.getuid?.() !== 0);
  });

  it('should run the suite when the needs are met', () => {
    expect(describeWhen('a suite', { tools: ['sh'] })).toBe(describe);
  });

  it('should skip (reported as skipped, with a warning) outside CI when a tool is missing', () => {
    delete process.env.CI;
    const warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    expect(describeWhen('a suite', { tools: ['no-such-tool-x1'] })).toBe(describe.skip);
    expect(warn).toHaveBeenCalledWith('SKIPPING a suite: missing no-such-tool-x1');
  });

  it('should fail the file in CI when a tool is missing', () => {
    process.env.CI = 'true';
    expect(() => describeWhen('a suite', { tools: ['no-such-tool-x1'] })).toThrow(
      'a suite cannot run in CI: missing no-such-tool-x1',
    );
  });
});
