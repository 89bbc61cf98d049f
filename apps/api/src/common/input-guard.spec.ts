import { findInputProblem, MAX_INPUT_DEPTH } from './input-guard';

describe('findInputProblem', () => {
  it('should accept ordinary input, tabs and line breaks included', () => {
    expect(
      findInputProblem({ name: 'acme', description: 'line 1\r\n\tline 2', tags: ['a', 'b'], n: 1 }, 'body'),
    ).toBeUndefined();
    expect(findInputProblem(undefined, 'body')).toBeUndefined();
    expect(findInputProblem({ emoji: 'ok \ud83d\ude00' }, 'body')).toBeUndefined();
  });

  it.each([
    ['NUL', { username: 'a\u0000b' }, 'body.username contains the control character U+0000'],
    ['ESC in an array', { list: ['ok', '\u001b[31m'] }, 'body.list[1] contains the control character U+001B'],
    ['DEL', { a: { b: 'x\u007f' } }, 'body.a.b contains the control character U+007F'],
    [
      'a control character in a key',
      { 'na\u0001me': 'x' },
      'a field name in body contains the control character U+0001',
    ],
    ['a lone high surrogate', { s: 'a\ud800' }, 'body.s contains a lone UTF-16 surrogate'],
    ['a lone low surrogate', { s: '\udc00b' }, 'body.s contains a lone UTF-16 surrogate'],
  ])('should name %s', (_what, input, problem) => {
    expect(findInputProblem(input, 'body')).toBe(problem);
  });

  it('should refuse nesting beyond the limit, and accept it up to the limit', () => {
    const nest = (depth: number): unknown => {
      let value: unknown = 'leaf';
      for (let i = 0; i < depth; i++) value = i % 2 ? { a: value } : [value];
      return value;
    };
    expect(findInputProblem(nest(MAX_INPUT_DEPTH), 'body')).toBeUndefined();
    expect(findInputProblem(nest(MAX_INPUT_DEPTH + 1), 'body')).toMatch(/nested deeper than 32 levels/);
  });

  it('should walk 100,000 levels without overflowing the stack', () => {
    const deep = JSON.parse(`${'['.repeat(100_000)}${']'.repeat(100_000)}`) as unknown;
    expect(findInputProblem(deep, 'body', Infinity)).toBeUndefined();
    expect(findInputProblem(deep, 'body')).toMatch(/nested deeper/);
  });

  it('should keep the path it reports short and free of control characters', () => {
    const problem = findInputProblem(
      { ['k'.repeat(500)]: { ['\u0001'.repeat(3)]: { x: '\u0000' } } },
      'body',
    )!;
    expect(problem).toMatch(/^a field name in body\.kkk.*\.\.\. contains the control character U\+0001$/);
    expect(problem.length).toBeLessThan(200);
    expect(problem).not.toMatch(/[\u0000-\u001f]/); // eslint-disable-line no-control-regex
  });
});
