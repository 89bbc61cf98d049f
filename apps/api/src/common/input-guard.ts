import type { NextFunction, Request, Response } from 'express';
import { AppError } from './app-error';

/** Bodies nest at most this deep (the API's own DTOs need 3); deeper is refused before validation. */
export const MAX_INPUT_DEPTH = 32;

/**
 * C0 control characters except tab, line feed and carriage return, and DEL. NUL cannot be stored
 * by Postgres at all; the others have no business in names, descriptions or credentials and
 * make logs and terminals lie.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARACTER = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;

/** Percent-encoded control characters in a URL (path or query), and raw ones. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const URL_CONTROL_CHARACTER = /%(?:[01][0-9a-f]|7f)|[\u0000-\u001F\u007F]/i;

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const describeChar = (c: string): string =>
  `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;

/** A readable, bounded field path: attacker-chosen keys are cut short and never echo control characters. */
function pathText(path: string): string {
  // eslint-disable-next-line no-control-regex -- replacing control characters is the point
  const clean = path.replace(/[\u0000-\u001F\u007F]/g, '?');
  return clean.length > 80 ? `${clean.slice(0, 77)}...` : clean;
}

function checkString(value: string, where: string): string | undefined {
  const bad = CONTROL_CHARACTER.exec(value);
  if (bad) return `${pathText(where)} contains the control character ${describeChar(bad[0])}`;
  if (LONE_SURROGATE.test(value)) return `${pathText(where)} contains a lone UTF-16 surrogate`;
  return undefined;
}

/**
 * The first problem of a parsed input (a JSON body, a query object): a string or key holding a
 * control character or a lone surrogate, or nesting deeper than `maxDepth`. Iterative, so no
 * input can overflow the stack here (the validation pipe and class-transformer recurse: 5,000
 * levels of JSON used to crash them with a 500).
 */
export function findInputProblem(
  input: unknown,
  root: string,
  maxDepth = MAX_INPUT_DEPTH,
): string | undefined {
  const stack: Array<{ value: unknown; path: string; depth: number }> = [
    { value: input, path: root, depth: 0 },
  ];
  while (stack.length) {
    const { value, path, depth } = stack.pop()!;
    if (typeof value === 'string') {
      const problem = checkString(value, path);
      if (problem) return problem;
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    if (depth >= maxDepth) return `${pathText(path)} is nested deeper than ${maxDepth} levels`;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++)
        stack.push({ value: value[i], path: `${path}[${i}]`, depth: depth + 1 });
      continue;
    }
    for (const key of Object.keys(value)) {
      const problem = checkString(key, `a field name in ${path}`);
      if (problem) return problem;
      stack.push({
        value: (value as Record<string, unknown>)[key],
        path: `${path}.${key}`,
        depth: depth + 1,
      });
    }
  }
  return undefined;
}

/**
 * Express middleware, mounted after the body parsers: refuses (400 INVALID_ARGUMENT) a request
 * whose URL carries control characters, or whose query or body holds control characters, lone
 * surrogates or nesting beyond MAX_INPUT_DEPTH, before any guard, pipe or query sees it. One
 * place for every route, authenticated or not.
 */
export function inputGuard() {
  return (req: Request, _res: Response, next: NextFunction): void => {
    let problem: string | undefined;
    if (URL_CONTROL_CHARACTER.test(req.originalUrl)) problem = 'The URL contains a control character';
    else {
      try {
        problem = findInputProblem(req.query, 'query') ?? findInputProblem(req.body, 'body');
      } catch {
        problem = 'The query string is malformed';
      }
    }
    next(problem ? AppError.invalid('Invalid input', problem) : undefined);
  };
}
